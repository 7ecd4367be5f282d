// The runner's dashboard in Chromium: `millions up` on a small test topology; the page shows
// every node (the timeline store's with their roles), Prometheus' alerts box, the architecture
// drawing and a graph over time with data points, the Business box, a kill from its
// button is reflected (the node is restarted with a new pid and the event is listed), and there
// are no console errors.
// The admin API needs the token `up` printed: without it the page asks for it and the API
// answers 401; the URL `up` prints (with #token=) opens it.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Checks, freePort, launch, watchConsole } from './lib.mjs';

const c = new Checks();
const bin = process.env.MILLIONS_BIN;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'millions-dash-'));
fs.chmodSync(tmp, 0o755);
const admin = await freePort();
const web1Port = await freePort();
const promPort = await freePort();
const topo = path.join(tmp, 'topology.toml');
fs.writeFileSync(topo, `[deployment]
name = "dash"
[[dc]]
name = "dc1"
[runner]
run_dir = "${tmp}/run"
admin = "127.0.0.1:${admin}"
[etcd]
listen = "127.0.0.1:${await freePort()}"
peer_listen = "127.0.0.1:${await freePort()}"
[web]
threads = 1
blocking_threads = 2
[[web.node]]
name = "web1"
listen = "127.0.0.1:${web1Port}"
[[web.node]]
name = "web2"
listen = "127.0.0.1:${await freePort()}"
[[postgres.node]]
name = "pg1"
listen = "127.0.0.1:${await freePort()}"
rest = "127.0.0.1:${await freePort()}"
[[redis.node]]
name = "redis1"
listen = "127.0.0.1:${await freePort()}"
[[timeline.node]]
name = "timeline1"
listen = "127.0.0.1:${await freePort()}"
[[timeline.node]]
name = "timeline2"
listen = "127.0.0.1:${await freePort()}"
[workers]
threads = 1
[prometheus]
listen = "127.0.0.1:${promPort}"
scrape_interval_ms = 1000
alert_for_s = 1
`);
const timer = setTimeout(() => { console.error('FAIL: global timeout'); process.exit(1); }, 150000);
const upOut = execFileSync(bin, ['up', topo, '--detach'], { cwd: tmp, timeout: 120000 }).toString();
const adminToken = fs.readFileSync(path.join(tmp, 'run', 'admin.token'), 'utf8').trim();
const dashUrl = upOut.match(/http:\/\/\S+#token=[0-9a-f]{64}/);
c.check(dashUrl && dashUrl[0] === `http://127.0.0.1:${admin}/#token=${adminToken}`,
  `up prints the dashboard URL with its token: ${upOut.trim()}`);
const bare = await fetch(`http://127.0.0.1:${admin}/api/status`);
c.check(bare.status === 401, `the admin API without the token: ${bare.status}`);
const browser = await launch();
const problems = [];
try {
  const page = await browser.newPage();
  watchConsole(page, problems);
  page.setDefaultTimeout(20000);
  // Without the token: the page asks for it (its API calls got 401).
  const plain = await browser.newPage();
  await plain.goto(`http://127.0.0.1:${admin}/`);
  await plain.waitForFunction(() => !document.getElementById('login').hidden &&
    document.getElementById('summary').textContent === 'admin token needed');
  c.check(true, 'no token: the page asks for it');
  await plain.close();
  await page.goto(`http://127.0.0.1:${admin}/#token=${adminToken}`);
  await page.waitForFunction(() => location.hash === '');
  c.check(true, 'the token leaves the address bar once read');
  for (const name of ['etcd', 'pg1', 'pg1-pg', 'redis1', 'web1', 'web2']) {
    await page.waitForSelector(`.node[data-node="${name}"]`);
    c.check(true, `dashboard shows ${name}`);
  }
  await page.waitForSelector('.node[data-node="pg1-pg"]:has-text("postgres/primary")');
  c.check(true, 'the primary is marked');
  await page.waitForSelector('.node[data-node="timeline1"]:has-text("timeline/primary")');
  await page.waitForSelector('.node[data-node="timeline2"]:has-text("timeline/replica")');
  await page.waitForSelector('.node[data-node="timeline2"]:has-text("link up")');
  c.check(true, "the timeline store's primary and its linked replica are marked");
  await page.waitForSelector('#tiers td:has-text("web")');
  c.check(true, 'the web tier has a metrics row');
  // No [[edge.node]] here: no edge section (edge.test.mjs checks it with one).
  c.check(await page.isHidden('#edgebox'), 'no CDN edge section without an edge');
  // Prometheus runs: the alerts box links it and lists its alerts (or says there are none).
  await page.waitForSelector('#alertbox:not([hidden]) #alerts tbody tr');
  c.check(await page.getAttribute('#promlink', 'href') === `http://127.0.0.1:${promPort}/`,
    'the alerts box links Prometheus');
  // The architecture drawing: a box per node, PostgreSQL's primary marked.
  await page.waitForSelector('#arch svg[data-dc="dc1"] g.archnode[data-node="pg1-pg"]:has-text("primary")');
  await page.waitForSelector('#arch g.archnode[data-node="web2"][data-state="running"]');
  c.check(true, 'the architecture drawing shows the nodes and the primary');
  await page.click('.node[data-node="web2"] button[data-action="stop"]');
  await page.waitForSelector('#arch g.archnode[data-node="web2"][data-state="stopped"]:has-text("down")');
  await page.click('.node[data-node="web2"] button[data-action="cont"]');
  await page.waitForSelector('#arch g.archnode[data-node="web2"][data-state="running"]');
  c.check(true, 'the drawing shows a paused node down, then up again');
  // Graphs over time from Prometheus through the runner: the nodes' memory (the runner's own
  // /metrics, from /proc) drawn with several points; a name outside the table is refused.
  await page.waitForFunction(() => {
    const p = document.querySelector('.graph[data-graph="node_rss"] path[data-points]');
    return p && Number(p.dataset.points) > 2 && /^M[\d.]+ [\d.]+ (L[\d.]+ [\d.]+ ){2,}/.test(p.getAttribute('d'));
  }, null, { timeout: 40000 });
  c.check(true, 'a graph is drawn with data points');
  const auth = { headers: { Authorization: `Bearer ${adminToken}` } };
  c.check((await fetch(`http://127.0.0.1:${admin}/metrics`)).status === 401,
    "the runner's /metrics needs the token");
  const host = await (await fetch(`http://127.0.0.1:${admin}/metrics`, auth)).text();
  c.check(/millions_node_cpu_seconds_total\{node="pg1",role="patroni",dc="dc1"\} [\d.]+/.test(host),
    'the runner exports host metrics per node');
  c.check((await fetch(`http://127.0.0.1:${admin}/api/graphs/up?range=5m`, auth)).status === 400,
    'a graph outside the table is refused');
  await page.click('#ranges button[data-range="30m"]');
  await page.waitForSelector('.graph[data-graph="requests"] svg text:text-is("-30m")');
  c.check(true, 'the range selector redraws the graphs');
  // The autoscaler's table: both web nodes counted; no worker exports a fan-out lag, so a dash.
  await page.waitForSelector('#autoscale tr[data-k="web"] td:text-is("2")');
  c.check(true, 'the autoscaling table counts the web nodes');
  const lag = await page.textContent('#autoscale tr[data-k="lag"] td');
  c.check(lag === '–', `fan-out lag with no worker metric is a dash: ${lag}`);
  // Reads of one user for a few seconds: the cache table shows a hit ratio.
  const web = `http://127.0.0.1:${web1Port}`;
  const made = await fetch(`${web}/api/users`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ handle: 'dashcache', password: 'password123' }),
  });
  const user = await made.json();
  const until = Date.now() + 7000;
  const reads = (async () => {
    while (Date.now() < until) await (await fetch(`${web}/api/users/${user.id}`)).text();
  })();
  await page.waitForSelector('#cache td:has-text("%")', { timeout: 15000 });
  c.check(true, 'the cache table shows a hit ratio beside database reads');
  await page.waitForSelector('.node[data-node="redis1"]:has-text("MiB")');
  c.check(true, "the cache node's card shows its memory and keys");
  await reads;
  // The sign-up reaches the Business box (from the cache node, through either web node): one
  // active user and one sign-up today, and today's cohort of one.
  await page.waitForSelector('#biz tbody td:first-child:text-is("1")', { timeout: 15000 });
  const biz = await page.$$eval('#biz tbody td', (tds) => tds.map((t) => t.textContent));
  c.check(biz[2] === '1', `the Business box counts today's sign-up: ${biz}`);
  const today = new Date().toISOString().slice(0, 10);
  await page.waitForSelector(`#cohorts tbody tr:has(td:text-is("${today}")) td:text-is("1")`);
  c.check(true, "the Business box lists today's sign-up cohort");
  const before = await page.textContent('.node[data-node="web1"]');
  const pid = before.match(/pid (\d+)/)[1];
  await page.click('.node[data-node="web1"] button[data-action="kill"]');
  await page.waitForSelector('#events div:has-text("web1: killed by signal 9")');
  c.check(true, 'the kill is in the event log');
  await page.waitForFunction((old) => {
    const t = document.querySelector('.node[data-node="web1"]').textContent;
    return t.includes('running') && !t.includes('pid ' + old);
  }, pid, { timeout: 30000 });
  c.check(true, 'web1 is shown running again with a new pid');
  await page.screenshot({ path: path.join(tmp, 'dashboard.png'), fullPage: true });
} catch (e) {
  c.check(false, 'dashboard flow: ' + e.message);
} finally {
  for (const p of problems) c.check(false, p);
  await browser.close();
  try {
    execFileSync(bin, ['down', '--topology', topo], { timeout: 120000, stdio: 'ignore' });
  } catch (e) { c.check(false, 'down: ' + e.message); }
  clearTimeout(timer);
}
c.finish();
