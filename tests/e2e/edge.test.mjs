// The CDN edge in Chromium: `millions up` on a small topology (etcd, one PostgreSQL, one web node,
// one balancer, one edge, both with HTTPS beside HTTP). Through the public URL (the balancer) a
// user signs up and uploads a photo: the page's app.css and app.js and the photo's <img> come
// from the edge's origin; a second load (a fresh browser cache) is answered by the edge from its
// cache (X-Cache: HIT, and the edge's hit counter); the page served over HTTPS takes all three
// from the edge's HTTPS listener, with no plain load; the runner's dashboard shows the edge's hit
// ratio and origin offload.
// Then the edge is killed and held down: the page still works, each of those three falling back
// to the public origin (web/loader.js, setImage in web/app.js). The only console errors allowed
// are the failed edge fetches of that last load; any other console error or warning, or page
// error, fails the test.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Checks, freePort, launch, png } from './lib.mjs';

const c = new Checks();
const bin = process.env.MILLIONS_BIN;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'millions-edge-'));
fs.chmodSync(tmp, 0o755); // PostgreSQL runs as another user
const lbPort = await freePort();
const lbTlsPort = await freePort();
const edgePort = await freePort();
const edgeTlsPort = await freePort();
const edgeAdmin = await freePort();
const runnerAdmin = await freePort();
const topo = path.join(tmp, 'topology.toml');
fs.writeFileSync(topo, `[deployment]
name = "edge"
[[dc]]
name = "dc1"
[runner]
run_dir = "${tmp}/run"
admin = "127.0.0.1:${runnerAdmin}"
[etcd]
listen = "127.0.0.1:${await freePort()}"
peer_listen = "127.0.0.1:${await freePort()}"
[web]
threads = 1
blocking_threads = 2
[[web.node]]
name = "web1"
listen = "127.0.0.1:${await freePort()}"
[[postgres.node]]
name = "pg1"
listen = "127.0.0.1:${await freePort()}"
rest = "127.0.0.1:${await freePort()}"
[lb]
tls_cert = "${tmp}/run/tls/cert.pem"
tls_key = "${tmp}/run/tls/key.pem"
[[lb.node]]
name = "lb1"
listen = "127.0.0.1:${lbPort}"
tls_listen = "127.0.0.1:${lbTlsPort}"
admin = "127.0.0.1:${await freePort()}"
[edge]
threads = 1
disk_dir = "${tmp}/run/edge"
purge_token_file = "${tmp}/run/edge-purge-token"
[[edge.node]]
name = "edge1"
listen = "127.0.0.1:${edgePort}"
tls_listen = "127.0.0.1:${edgeTlsPort}"
admin = "127.0.0.1:${edgeAdmin}"
`);
const millions = (...args) => execFileSync(bin, [...args, '--topology', topo],
  { cwd: tmp, timeout: 120000, encoding: 'utf8' });
const GLOBAL_TIMEOUT_MS = 240000;
const timer = setTimeout(() => {
  console.error('FAIL: global timeout');
  try { millions('down'); } catch (e) { /* best effort */ }
  process.exit(1);
}, GLOBAL_TIMEOUT_MS);

// One step of the flow: a failed step is counted and ends the flow (later steps depend on it).
async function step(name, fn) {
  let ok = false;
  let why = '';
  try {
    const r = await fn();
    ok = r === undefined ? true : Boolean(r);
  } catch (e) {
    why = ': ' + e.message.split('\n')[0];
  }
  c.check(ok, name + why);
  if (ok) console.log(`ok - ${name}`);
  else throw new Error('stopped after a failed step');
}

// A page in a fresh context (its own HTTP cache: a load that must reach the edge, not the
// browser's cache), recording every response and every failed request. With `edgeDown`, the
// console errors of failed loads from the edge are expected (Chromium logs each one); anything
// else on the console is a problem.
async function newPage(edgeDown) {
  // The certificate is `up`'s self-signed one: HTTPS errors are ignored, mixed content is not.
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 }, ignoreHTTPSErrors: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(20000);
  const seen = { responses: [], failed: [], expected: [] };
  page.on('response', (r) => seen.responses.push(r));
  page.on('requestfailed', (r) => seen.failed.push(r.url()));
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const from = m.location().url || '';
    if (edgeDown && m.type() === 'error' && from.startsWith(edge + '/') &&
        m.text() === 'Failed to load resource: net::ERR_CONNECTION_REFUSED') {
      seen.expected.push(from);
      return;
    }
    problems.push(`console ${m.type()}: ${m.text()} (${from})`);
  });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  return { page, seen };
}

// The <img> of the first photo card once it has loaded: its natural size and where it came from.
// An error is not the end (setImage's fallback then loads another src): it fails after 10 s.
function firstImage(page) {
  return page.locator('#mine .photo img').first().evaluate((img) => new Promise((resolve, reject) => {
    const done = () => resolve({ w: img.naturalWidth, h: img.naturalHeight, src: img.currentSrc });
    if (img.complete && img.naturalWidth) done();
    else img.addEventListener('load', done, { once: true });
    setTimeout(() => reject(new Error(`image did not load: ${img.src}`)), 10000);
  }));
}

// app.css applied: it sets the body's font (the browser's default is a serif).
const styled = (page) => page.evaluate(() => getComputedStyle(document.body).fontFamily.includes('system-ui'));

const fetched = (seen, re) => seen.responses.filter((r) => re.test(new URL(r.url()).pathname));

// A sample of the edge's own /metrics, e.g. edgeMetric('requests_total{result="hit"}').
async function edgeMetric(name) {
  const text = await (await fetch(`http://127.0.0.1:${edgeAdmin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`millions_edge_${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}
const edgeHits = () => edgeMetric('requests_total{result="hit"}');

async function logIn(page) {
  await page.goto(publicUrl);
  await page.waitForSelector('#view-auth:not([hidden])');
  await page.fill('#login-handle', 'edge_e2e');
  await page.fill('#login-password', 'password123');
  await page.click('#login-submit');
  await page.waitForSelector('#mine .photo:has-text("through the edge")');
}

let browser = null;
let publicUrl = '';
let edge = '';
const problems = [];
try {
  execFileSync(bin, ['up', topo, '--detach'], { cwd: tmp, timeout: 150000, stdio: 'ignore' });
  browser = await launch();

  await step('status --json names the public URL and the edge', async () => {
    const st = JSON.parse(millions('status', '--json'));
    publicUrl = st.endpoints.public;
    edge = (st.endpoints.edge || '').replace(/\/$/, '');
    return publicUrl === `http://127.0.0.1:${lbPort}/` && edge === `http://127.0.0.1:${edgePort}` &&
      st.nodes.some((n) => n.name === 'edge1' && n.role === 'edge' && n.state === 'running');
  });

  const first = await newPage(false);
  await step('sign-up and upload through the public URL', async () => {
    const { page } = first;
    await page.goto(publicUrl);
    await page.waitForSelector('#view-auth:not([hidden])');
    await page.fill('#signup-handle', 'edge_e2e');
    await page.fill('#signup-password', 'password123');
    await page.click('#signup-submit');
    await page.waitForSelector('#view-mine:not([hidden])');
    await page.setInputFiles('#upload-file', { name: 'pic.png', mimeType: 'image/png', buffer: png(32, 24) });
    await page.fill('#upload-caption', 'through the edge');
    await page.click('#upload-submit');
    await page.waitForSelector('#mine .photo:has-text("through the edge")');
    const img = await firstImage(page);
    return img.w === 32 && img.h === 24;
  });

  await step('app.css, app.js and the photo came from the edge, the API from the public URL', async () => {
    const { page, seen } = first;
    const css = fetched(seen, /^\/assets\/app\.[0-9a-f]+\.css$/);
    const js = fetched(seen, /^\/assets\/app\.[0-9a-f]+\.js$/);
    const media = fetched(seen, /^\/media\//);
    const api = fetched(seen, /^\/api\//);
    const onEdge = (rs) => rs.length > 0 && rs.every((r) => r.url().startsWith(edge + '/') && r.ok());
    const img = await firstImage(page);
    return onEdge(css) && onEdge(js) && onEdge(media) && img.src.startsWith(edge + '/media/') &&
      api.length > 0 && api.every((r) => r.url().startsWith(publicUrl)) && await styled(page);
  });

  await step('a second load (a fresh browser cache) is answered from the edge: X-Cache HIT', async () => {
    const before = await edgeHits();
    const { page, seen } = await newPage(false);
    await logIn(page);
    await firstImage(page);
    const fromEdge = seen.responses.filter((r) => r.url().startsWith(edge + '/'));
    const hit = (re) => fetched({ responses: fromEdge }, re).some((r) => r.headers()['x-cache'] === 'HIT');
    const after = await edgeHits();
    await page.context().close();
    return hit(/^\/assets\/app\.[0-9a-f]+\.css$/) && hit(/^\/assets\/app\.[0-9a-f]+\.js$/) &&
      hit(/^\/media\//) && after - before >= 3;
  });

  await step('a page served over HTTPS loads its files and photos from the edge over HTTPS', async () => {
    const { page, seen } = await newPage(false);
    const httpsUrl = `https://127.0.0.1:${lbTlsPort}/`;
    const edgeTls = `https://127.0.0.1:${edgeTlsPort}`;
    await page.goto(httpsUrl);
    await page.waitForSelector('#view-auth:not([hidden])');
    await page.fill('#login-handle', 'edge_e2e');
    await page.fill('#login-password', 'password123');
    await page.click('#login-submit');
    await page.waitForSelector('#mine .photo:has-text("through the edge")');
    const img = await firstImage(page);
    const onTlsEdge = (re) => {
      const rs = fetched(seen, re);
      return rs.length > 0 && rs.every((r) => r.url().startsWith(edgeTls + '/') && r.ok());
    };
    const plain = seen.responses.concat(seen.failed.map((u) => ({ url: () => u })))
      .filter((r) => r.url().startsWith('http://'));
    const ok = onTlsEdge(/^\/assets\/app\.[0-9a-f]+\.css$/) && onTlsEdge(/^\/assets\/app\.[0-9a-f]+\.js$/) &&
      onTlsEdge(/^\/media\//) && img.src.startsWith(edgeTls + '/media/') && img.w === 32 &&
      plain.length === 0 && await styled(page);
    if (!ok) console.error('https page:', seen.responses.map((r) => `${r.status()} ${r.url()}`), 'failed:', seen.failed);
    await page.context().close();
    return ok;
  });

  await step("the dashboard shows the edge's hit ratio and origin offload", async () => {
    const n = {};
    for (const k of ['requests_total{result="hit"}', 'requests_total{result="miss"}',
      'requests_total{result="stale"}', 'bytes_total{source="cache"}', 'bytes_total{source="origin"}']) {
      n[k] = await edgeMetric(k);
    }
    const hits = n['requests_total{result="hit"}'];
    const ratio = hits / (hits + n['requests_total{result="miss"}'] + n['requests_total{result="stale"}']);
    const cache = n['bytes_total{source="cache"}'];
    const offload = cache / (cache + n['bytes_total{source="origin"}']);
    const pct = (v) => (100 * v).toFixed(1) + '%';
    const { page } = await newPage(false);
    const adminToken = fs.readFileSync(path.join(tmp, 'run', 'admin.token'), 'utf8').trim();
    await page.goto(`http://127.0.0.1:${runnerAdmin}/#token=${adminToken}`);
    await page.waitForSelector('#tiers td:text-is("edge")');
    await page.waitForSelector(`#edge td:text-is("${pct(ratio)}")`);
    // No [prometheus] here: the graphs area says so, and the architecture still draws.
    await page.waitForSelector('#graphnote:has-text("no Prometheus")');
    await page.waitForSelector('#arch g.archnode[data-node="edge1"]');
    const cells = await page.locator('#edge tbody td').allTextContents();
    await page.context().close();
    if (cells[1] !== pct(offload)) console.error('edge row:', cells, 'offload', pct(offload));
    return ratio > 0 && ratio < 1 && offload > 0 && cells[1] === pct(offload);
  });

  await step('the edge is killed and held down', async () => {
    millions('chaos', 'kill', 'edge1', '--hold', '90');
    const deadline = Date.now() + 10000;
    for (;;) {
      try {
        await fetch(edge + '/livez');
      } catch (e) {
        return true; // connection refused: down
      }
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  await step('with the edge down the page still works from the public origin', async () => {
    const { page, seen } = await newPage(true);
    await logIn(page); // app.js ran: the UI renders and logs in
    const img = await firstImage(page);
    const css = fetched(seen, /^\/assets\/app\.[0-9a-f]+\.css$/);
    const js = fetched(seen, /^\/assets\/app\.[0-9a-f]+\.js$/);
    const onOrigin = (rs) => rs.length > 0 && rs.every((r) => r.url().startsWith(publicUrl) && r.ok());
    const triedEdge = (re) => seen.failed.some((u) => u.startsWith(edge + '/') && re.test(new URL(u).pathname));
    const ok = img.w === 32 && img.h === 24 && img.src.startsWith(publicUrl + 'media/') &&
      onOrigin(css) && onOrigin(js) && await styled(page) &&
      triedEdge(/^\/assets\/app\.[0-9a-f]+\.css$/) && triedEdge(/^\/assets\/app\.[0-9a-f]+\.js$/) &&
      triedEdge(/^\/media\//);
    if (!ok) console.error('responses:', seen.responses.map((r) => `${r.status()} ${r.url()}`), 'failed:', seen.failed);
    // Exactly the failed edge fetches were excused on the console, nothing else.
    return ok && seen.expected.length > 0 && seen.expected.every((u) => seen.failed.includes(u));
  });
} catch (e) {
  if (e.message !== 'stopped after a failed step') c.check(false, 'edge flow: ' + e.message);
} finally {
  for (const p of problems) console.error('FAIL:', p);
  c.check(problems.length === 0, 'no console errors or warnings but the dead edge\'s, no page errors');
  if (browser) await browser.close().catch(() => {});
  try {
    millions('down');
  } catch (e) { c.check(false, 'down: ' + e.message); }
  // PostgreSQL's files are 100 MB a run: kept only when something failed, to be read.
  if (c.failed === 0) fs.rmSync(tmp, { recursive: true, force: true });
  else console.log(`run dir: ${tmp}/run`);
  clearTimeout(timer);
}
c.finish();
