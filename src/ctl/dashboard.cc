#include "ctl/dashboard.h"

namespace millions::ctl {

std::string_view DashboardHtml() {
  static constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>millions dashboard</title>
<link rel="icon" href="data:,">
<style>
body{margin:0;font:14px/1.4 system-ui,sans-serif;background:#f4f5f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center}
main{padding:1rem;display:grid;gap:1rem}
.dc{background:#fff;border-radius:8px;padding:.8rem;box-shadow:0 1px 3px #0002}
.tier{margin:.4rem 0}.tier h3{margin:.2rem 0;font-size:.95rem;color:#556}
.node{display:inline-block;border:1px solid #ccd;border-radius:6px;padding:.4rem .6rem;margin:.2rem;min-width:210px;vertical-align:top}
.running{border-left:6px solid #2f9e44}.starting{border-left:6px solid #f59f00}
.failed{border-left:6px solid #e03131}.stopped{border-left:6px solid #868e96}
.node button{font-size:.75rem;margin:.15rem .1rem 0 0}
table{border-collapse:collapse}td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #eee}
.bad{color:#e03131;font-weight:bold}
.graphs{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:.6rem}
.graph{border:1px solid #e3e5ee;border-radius:6px;padding:.3rem .5rem}.graph h4{margin:.1rem 0;font-size:.85rem;color:#334}
.graph svg{width:100%;height:auto}.legend{font-size:11px;color:#556}.legend span{margin-right:.6rem;white-space:nowrap}
.legend i{display:inline-block;width:10px;height:3px;margin-right:3px;vertical-align:middle}
#ranges button.on{background:#1d2330;color:#fff}
#arch svg{display:block;margin-bottom:.4rem}#arch text{font-size:11px;fill:#1d2330}
#events{max-height:240px;overflow:auto;font-family:monospace;font-size:12px;background:#fff;padding:.5rem;border-radius:8px}
</style></head><body>
<header><strong>millions</strong><span id="summary"></span>
<form id="login" hidden><input id="token" type="password" placeholder="admin token (RUN_DIR/admin.token)" size="40" autocomplete="off">
<button>Use</button></form>
<span style="margin-left:auto">web nodes <input id="webcount" type="number" min="1" max="32" style="width:4em">
<button id="scale">Scale</button></span></header>
<main>
<section class="dc" id="alertbox" hidden><h3>Alerts <a id="promlink" style="font-weight:normal;font-size:.85rem" target="_blank">Prometheus</a></h3>
<table id="alerts"><thead><tr><th style="text-align:left">alert</th><th style="text-align:left">state</th>
<th style="text-align:left">where</th><th style="text-align:left">since</th><th style="text-align:left">summary</th></tr></thead><tbody></tbody></table></section>
<section class="dc" id="archbox"><h3>Architecture <span style="font-weight:normal;color:#889">live from the runner: tiers left to right, one row per data centre</span></h3><div id="arch"></div></section>
<section class="dc" id="graphbox"><h3>Over time <span id="ranges"><button data-range="5m" class="on">5 min</button>
<button data-range="30m">30 min</button><button data-range="3h">3 h</button></span>
<span id="graphnote" style="font-weight:normal;color:#889"></span></h3><div id="graphs" class="graphs"></div></section>
<section id="dcs"></section>
<section class="dc" id="dcdbbox" hidden><h3>Database by data centre <span style="font-weight:normal;color:#889">which DC takes writes; each standby cluster's lag behind it (docs/datacentres.md)</span></h3>
<table id="dcdb"><thead><tr><th style="text-align:left">dc</th><th style="text-align:left">takes writes</th>
<th style="text-align:left">Patroni scope</th><th>replication lag (bytes)</th></tr></thead><tbody></tbody></table></section>
<section class="dc" id="shardbox" hidden><h3>Shards <span style="font-weight:normal;color:#889">database clusters and the shard map in etcd</span></h3>
<table id="shards"><thead><tr><th style="text-align:left">cluster</th><th style="text-align:left">Patroni scope</th>
<th style="text-align:left">primary</th><th>members</th><th>logical shards</th><th>map version</th></tr></thead><tbody></tbody></table></section>
<section class="dc" id="reshardbox" hidden><h3>Reshard <span style="font-weight:normal;color:#889">the plan in etcd (millions reshard --status)</span></h3>
<div id="reshard"></div></section>
<section class="dc"><h3>Tiers</h3><table id="tiers"><thead><tr><th style="text-align:left">tier</th>
<th>requests/s</th><th>p99 ms</th><th>errors/s</th><th>db connections</th></tr></thead><tbody></tbody></table></section>
<section class="dc"><h3>Cache</h3><table id="cache"><thead><tr><th>hit ratio</th><th>L1 hits/s</th>
<th>L2 hits/s</th><th>loads/s</th><th>database reads/s</th></tr></thead><tbody><tr><td>–</td><td></td><td></td><td></td><td></td></tr></tbody></table></section>
<section class="dc" id="bizbox"><h3>Business <span style="font-weight:normal;color:#889">UTC days, from the cache tier (every web node reports the same figures)</span></h3>
<table id="biz"><thead><tr><th>active users today</th><th>yesterday</th><th>sign-ups today</th><th>log-ins</th>
<th>uploads</th><th>edits</th><th>follows</th></tr></thead><tbody><tr><td>–</td><td></td><td></td><td></td><td></td><td></td><td></td></tr></tbody></table>
<table id="cohorts" style="margin-top:.5rem"><thead><tr><th style="text-align:left">sign-up cohort</th><th>users</th>
<th>day-1 retention</th><th>day-7 retention</th></tr></thead><tbody><tr><td colspan="4" style="text-align:left">no sign-ups in the last 4 weeks</td></tr></tbody></table></section>
<section class="dc" id="edgebox" hidden><h3>CDN edge <span style="font-weight:normal;color:#889">ratios since the edges started</span></h3>
<table id="edge"><thead><tr><th>hit ratio</th><th>origin offload</th><th>hits/s</th><th>misses/s</th>
<th>stale/s</th><th>passed/s</th><th>KiB/s from cache</th><th>KiB/s from origin</th></tr></thead>
<tbody><tr><td>–</td><td>–</td><td></td><td></td><td></td><td></td><td></td><td></td></tr></tbody></table></section>
<section class="dc"><h3>Queue and autoscaling</h3>
<table id="autoscale"><tbody>
<tr data-k="backlog"><th style="text-align:left">backlog (jobs waiting or running)</th><td>–</td></tr>
<tr data-k="oldest"><th style="text-align:left">oldest job's age s</th><td>–</td></tr>
<tr data-k="jobs"><th style="text-align:left">jobs/s</th><td>–</td></tr>
<tr data-k="workers"><th style="text-align:left">workers</th><td>–</td></tr>
<tr data-k="web"><th style="text-align:left">web nodes</th><td>–</td></tr>
<tr data-k="webload"><th style="text-align:left">web in flight · CPU/node · p99 ms</th><td>–</td></tr>
<tr data-k="lag"><th style="text-align:left">fan-out lag s</th><td>–</td></tr>
</tbody></table>
<div id="autonow" style="font-size:12px;color:#556;margin:.4rem 0"></div>
<table id="decisions"><thead><tr><th style="text-align:left">time</th><th style="text-align:left">tier</th>
<th>from → to</th><th style="text-align:left">reason</th></tr></thead><tbody><tr><td colspan="4" style="text-align:left">no scaling yet</td></tr></tbody></table></section>
<section class="dc"><h3>Last chaos matrix <span id="matrixat" style="font-weight:normal;color:#889"></span></h3>
<table id="matrix"><thead><tr><th style="text-align:left">fault</th><th style="text-align:left">target</th>
<th>write gap s</th><th>failed writes</th><th>failed reads</th><th>lost</th><th>duplicated</th>
<th>healthy after s</th><th>jobs</th><th>jobs lost</th><th>jobs dup</th><th>job p99 s</th></tr></thead><tbody><tr><td colspan="12" style="text-align:left">none run yet: <code>millions chaos matrix</code></td></tr></tbody></table></section>
<section><h3>Events</h3><div id="events"></div></section>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
let prev = null;
// The admin token (docs/security.md): `up` prints this page's URL with #token=...; the fragment
// never reaches a server. It is kept for this tab only and sent as a bearer token on every call,
// which no other site can make a browser do.
let token = sessionStorage.getItem('millions-admin-token') || '';
if (location.hash.startsWith('#token=')) {
  token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem('millions-admin-token', token);
  history.replaceState(null, '', location.pathname);
}
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('millions-admin-token', token);
  $('login').hidden = true;
  refresh();
});
async function api(path, opts = {}) {
  const r = await fetch(path, {...opts, headers: {Authorization: 'Bearer ' + token}});
  if (r.status === 401) {
    $('login').hidden = false;
    throw new Error('the admin token is missing or wrong');
  }
  return r;
}
async function act(name, action) {
  await api(`/api/nodes/${encodeURIComponent(name)}/${action}`, {method: 'POST'});
  refresh();
}
$('scale').addEventListener('click', async () => {
  $('scale').disabled = true;
  await api('/api/scale/web?n=' + Number($('webcount').value), {method: 'POST'});
  $('scale').disabled = false;
  refresh();
});
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
function renderNodes(status) {
  const byDc = new Map();
  for (const n of status.nodes) {
    if (!byDc.has(n.dc)) byDc.set(n.dc, new Map());
    const tiers = byDc.get(n.dc);
    const tier = n.role === 'postgres' || n.role === 'patroni' || n.role === 'etcd' ? 'data' : n.role;
    if (!tiers.has(tier)) tiers.set(tier, []);
    tiers.get(tier).push(n);
  }
  const out = [];
  for (const [dc, tiers] of byDc) {
    const box = el('div', undefined, 'dc');
    box.append(el('h2', dc));
    for (const [tier, nodes] of tiers) {
      const t = el('div', undefined, 'tier');
      t.append(el('h3', tier));
      for (const n of nodes) {
        const card = el('div', undefined, 'node ' + n.state);
        card.dataset.node = n.name;
        card.append(el('div', `${n.name} · ${n.role}${n.db_role ? '/' + n.db_role : ''}`));
        card.append(el('div', `${n.address} · ${n.state} · pid ${n.pid}`));
        if (n.role === 'postgres' && n.timeline !== undefined)
          card.append(el('div', `timeline ${n.timeline}` +
                                (n.db_role === 'replica' ? ` · lag ${n.lag_bytes ?? '?'} B` : '')));
        if ((n.role === 'redis' || n.role === 'timeline') && n.used_memory_bytes !== undefined) {
          const mib = (b) => (b / 1048576).toFixed(1);
          const cap = n.maxmemory_bytes > 0 ? ` / ${mib(n.maxmemory_bytes)}` : '';
          card.append(el('div', `${mib(n.used_memory_bytes)}${cap} MiB · ${n.keys} keys · ` +
                                `${n.evicted_keys} evicted`));
        }
        if (n.role === 'timeline' && n.link !== undefined) card.append(el('div', `link ${n.link}`));
        if (n.role === 'nats' && n.streams !== undefined)
          card.append(el('div', `${n.streams} streams · ${n.messages} msgs · ` +
                                `${(n.stored_bytes / 1024).toFixed(1)} KiB` +
                                (n.meta_leader ? ` · leader ${n.meta_leader}` : '')));
        if (n.role !== 'postgres') {
          for (const a of ['kill', 'stop', 'cont', 'restart']) {
            const b = el('button', a);
            b.dataset.action = a;
            b.addEventListener('click', () => act(n.name, a));
            card.append(b);
          }
        }
        t.append(card);
      }
      box.append(t);
    }
    out.push(box);
  }
  $('dcs').replaceChildren(...out);
  const web = status.nodes.filter((n) => n.role === 'web').length;
  if (document.activeElement !== $('webcount')) $('webcount').value = web;
  $('summary').textContent = `${status.nodes.filter((n) => n.state === 'running').length}/${status.nodes.length} running`;
  $('events').replaceChildren(...status.events.slice().reverse().map((e) => el('div', `${e.ts}  ${e.text}`)));
  renderShards(status.shards || []);
  renderDcDb((status.dcs || []).filter((d) => d.cluster));
  renderReshard(status.reshard);
}
function renderDcDb(dcs) {
  $('dcdbbox').hidden = dcs.length === 0;
  $('dcdb').tBodies[0].replaceChildren(...dcs.map((d) => {
    const tr = el('tr');
    const lag = d.replication_lag_bytes === undefined ? '-'
              : d.replication_lag_bytes < 0 ? 'unreachable' : d.replication_lag_bytes;
    for (const v of [d.dc, d.takes_writes ? 'yes' : 'no (standby)', d.cluster, lag])
      tr.append(el('td', String(v)));
    return tr;
  }));
}
function renderReshard(r) {
  $('reshardbox').hidden = !r;
  if (!r) return;
  const n = r.shards_total || 0, done = r.shards_switched || 0;
  const width = 30, fill = n ? Math.round(width * done / n) : 0;
  const eta = r.eta_s < 0 ? '?' : `${Math.floor(r.eta_s / 60)}:${String(Math.round(r.eta_s % 60)).padStart(2, '0')}`;
  const moves = Object.entries(r.moves || {}).map(([s, k]) => `${s} ${k}`).join(', ');
  const pause = r.pause_max_ms < 0 ? 'none yet' : `p50 ${r.pause_p50_ms} ms, p99 ${r.pause_p99_ms} ms, max ${r.pause_max_ms} ms`;
  $('reshard').replaceChildren(
    el('div', `${r.state}${r.holder ? ' (' + r.holder + ')' : ''}: map version ${r.from_version} -> ${r.to_version}`),
    el('div', `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${done}/${n} logical shards switched  ${r.users} users  ${r.rows} rows  ${Math.round(r.rows_per_s)} rows/s  ETA ${eta}`),
    el('div', `moves: ${moves}`),
    el('div', `write pause per shard: ${pause}`));
  $('reshard').style.fontFamily = 'monospace';
}
function renderShards(shards) {
  $('shardbox').hidden = shards.length === 0;
  $('shards').tBodies[0].replaceChildren(...shards.map((s) => {
    const tr = el('tr');
    for (const v of [s.cluster, s.scope, s.primary ?? 'none (failover)', (s.members || []).join(' '),
                     s.logical_shards ?? '?', s.map_version ?? '?'])
      tr.append(el('td', String(v)));
    return tr;
  }));
}
function p99(buckets, total) {
  if (!total) return 0;
  for (const [le, c] of buckets) if (c >= 0.99 * total) return le === Infinity ? NaN : le * 1000;
  return NaN;
}
function renderTiers(m) {
  const rows = [];
  for (const [tier, cur] of Object.entries(m.tiers)) {
    const old = prev && prev.tiers[tier];
    const dt = prev ? (m.at - prev.at) / 1000 : 0;
    let rps = 0, eps = 0, q = 0;
    if (old && dt > 0) {
      rps = (cur.requests - old.requests) / dt;
      eps = (cur.errors - old.errors) / dt;
      const deltas = cur.buckets.map(([le, c], i) => [le, c - (old.buckets[i] ? old.buckets[i][1] : 0)]);
      q = p99(deltas, cur.requests - old.requests);
    }
    const tr = el('tr');
    tr.append(el('td', tier), el('td', rps.toFixed(1)), el('td', isNaN(q) ? '>10000' : q.toFixed(1)),
              el('td', eps.toFixed(2)), el('td', String(cur.db_connections)));
    tr.firstChild.style.textAlign = 'left';
    rows.push(tr);
  }
  $('tiers').tBodies[0].replaceChildren(...rows);
  // Hit ratio beside the database's read rate: what the cache saves, as it happens.
  const oc = prev && prev.cache, cc = m.cache;
  const dtc = prev ? (m.at - prev.at) / 1000 : 0;
  if (oc && cc && dtc > 0) {
    const r = (k) => (cc[k] - oc[k]) / dtc;
    const hits = r('l1_hits') + r('l2_hits');
    const ratio = hits + r('loads') > 0 ? hits / (hits + r('loads')) : NaN;
    const tr = el('tr');
    tr.append(el('td', isNaN(ratio) ? '–' : (100 * ratio).toFixed(1) + '%'),
              el('td', r('l1_hits').toFixed(1)), el('td', r('l2_hits').toFixed(1)),
              el('td', r('loads').toFixed(1)), el('td', r('db_reads').toFixed(1)));
    $('cache').tBodies[0].replaceChildren(tr);
  }
  prev = m;
}
// The edges' hit ratio (hit / (hit + miss + stale)) and origin offload (bytes from the cache
// over all bytes) as the runner sums them, and rates from the last two scrapes. Before `prev`
// moves on (renderTiers).
function renderEdge(m) {
  $('edgebox').hidden = !m.edge;
  if (!m.edge) return;
  const e = m.edge, o = prev && prev.edge, dt = prev ? (m.at - prev.at) / 1000 : 0;
  const pct = (v) => v === null ? '–' : (100 * v).toFixed(1) + '%';
  const r = (k, d) => o && dt > 0 ? (Math.max(0, e[k] - o[k]) / d / dt).toFixed(1) : '–';
  const tr = el('tr');
  tr.append(el('td', pct(e.hit_ratio)), el('td', pct(e.offload)), el('td', r('hit', 1)),
            el('td', r('miss', 1)), el('td', r('stale', 1)), el('td', r('pass', 1)),
            el('td', r('bytes_cache', 1024)), el('td', r('bytes_origin', 1024)));
  $('edge').tBodies[0].replaceChildren(tr);
}
// Business figures (GET /api/metrics' "business"): today's and yesterday's active users, today's
// events, and the 14 latest sign-up cohorts with their day-1 and day-7 retention.
function renderBusiness(m) {
  const b = m.business;
  if (!b) return;
  const n = (v) => v === null || v === undefined ? '–' : String(Math.round(v));
  const pct = (v) => v === null || v === undefined ? '–' : (100 * v).toFixed(1) + '%';
  const ev = (k) => n(b.events_today[k]);
  const tr = el('tr');
  tr.append(el('td', n(b.active_day)), el('td', n(b.active_previous_day)), el('td', ev('signup')),
            el('td', ev('login')), el('td', ev('upload')), el('td', ev('edit')), el('td', ev('follow')));
  $('biz').tBodies[0].replaceChildren(tr);
  if (!b.cohorts.length) return;
  $('cohorts').tBodies[0].replaceChildren(...b.cohorts.slice(0, 14).map((c) => {
    const r = el('tr');
    r.append(el('td', c.day), el('td', n(c.users)), el('td', pct(c.day1)), el('td', pct(c.day7)));
    r.children[0].style.textAlign = 'left';
    return r;
  }));
}
function renderMatrix(x) {
  if (!x || !x.rows || !x.rows.length) return;
  $('matrixat').textContent = (x.finished ? 'finished ' : 'running, ') + (x.updated_at || '');
  const num = (v, d) => (v === null || v === undefined) ? '–' : Number(v).toFixed(d);
  $('matrix').tBodies[0].replaceChildren(...x.rows.map((r) => {
    const tr = el('tr');
    const bad = r.lost > 0 || r.duplicated > 0;
    tr.append(el('td', r.fault), el('td', r.target), el('td', num(r.write_gap_s, 1)),
              el('td', num(r.failed_writes, 0)), el('td', num(r.failed_reads, 0)),
              el('td', num(r.lost, 0), bad ? 'bad' : ''), el('td', num(r.duplicated, 0), bad ? 'bad' : ''),
              el('td', num(r.health_s, 1)), el('td', num(r.jobs_accepted, 0)),
              el('td', num(r.jobs_lost, 0), r.jobs_lost > 0 ? 'bad' : ''),
              el('td', num(r.jobs_duplicated, 0), r.jobs_duplicated > 0 ? 'bad' : ''),
              el('td', num(r.job_p99_s, 2)));
    tr.children[0].style.textAlign = tr.children[1].style.textAlign = 'left';
    return tr;
  }));
}
// The autoscaler's latest samples (a dash when a measure is absent) and its decisions.
function renderAutoscale(a) {
  const w = a.worker || {}, h = a.web || {};
  const num = (v, d) => (v === null || v === undefined) ? '–' : Number(v).toFixed(d);
  const bounds = (t) => t.nodes === undefined ? '–' :
    `${t.nodes}` + (t.enabled ? ` (autoscaled ${t.min}..${t.max})` : '');
  const cells = {
    backlog: num(w.backlog, 0), oldest: num(w.oldest_age_ms == null ? null : w.oldest_age_ms / 1000, 1),
    jobs: num(w.jobs_per_s, 1), workers: bounds(w), web: bounds(h),
    webload: h.nodes === undefined ? '–' : `${num(h.in_flight, 0)} · ${num(h.cpu, 2)} · ${num(h.p99_ms, 0)}`,
    lag: num(w.fanout_lag_s, 2),
  };
  for (const tr of $('autoscale').tBodies[0].rows) tr.cells[1].textContent = cells[tr.dataset.k];
  $('autonow').textContent = ['worker', 'web'].filter((k) => a[k] && a[k].reason)
    .map((k) => `${k}: ${a[k].reason}`).join(' · ');
  if (!a.decisions || !a.decisions.length) return;
  $('decisions').tBodies[0].replaceChildren(...a.decisions.slice().reverse().map((d) => {
    const tr = el('tr');
    tr.append(el('td', d.ts), el('td', d.tier), el('td', `${d.from} → ${d.to}`),
              el('td', d.reason + (d.error ? ` (failed: ${d.error})` : ''), d.error ? 'bad' : ''));
    tr.children[0].style.textAlign = tr.children[1].style.textAlign = tr.children[3].style.textAlign = 'left';
    return tr;
  }));
}
// Prometheus' active alerts (the runner asks it); the box stays hidden without Prometheus.
function renderAlerts(a) {
  $('alertbox').hidden = !a.prometheus;
  if (!a.prometheus) return;
  $('promlink').href = a.prometheus;
  const rows = a.alerts.map((x) => {
    const tr = el('tr', '', x.state === 'firing' ? 'bad' : '');
    for (const v of [x.name, x.state, [x.tier, x.node, x.dc].filter(Boolean).join(' · '), x.since, x.summary]) {
      const td = el('td', v || '');
      td.style.textAlign = 'left';
      tr.append(td);
    }
    return tr;
  });
  if (!rows.length) {
    const td = el('td', a.error || 'none: every objective is met');
    td.colSpan = 5;
    td.style.textAlign = 'left';
    rows.push(el('tr'));
    rows[0].append(td);
  }
  $('alerts').tBodies[0].replaceChildren(...rows);
}
// The running architecture as an SVG per data centre: tiers as columns in the order a request
// meets them, nodes as boxes coloured by state, the database primary outlined, a node down red.
const ARCH_TIERS = [['dns', 'DNS'], ['edge', 'CDN edge'], ['lb', 'balancers'], ['web', 'web'],
  ['worker', 'workers'], ['redis', 'cache'], ['timeline', 'timeline'], ['nats', 'queue'],
  ['patroni', 'Patroni'], ['postgres', 'PostgreSQL'], ['etcd', 'etcd'], ['prometheus', 'Prometheus']];
const SVGNS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const STATE_FILL = {running: '#d3f9d8', starting: '#fff3bf', failed: '#ffc9c9', stopped: '#e9ecef'};
function renderArch(status) {
  const dcs = new Map();
  for (const n of status.nodes) {
    if (!dcs.has(n.dc)) dcs.set(n.dc, new Map());
    const col = dcs.get(n.dc);
    if (!col.has(n.role)) col.set(n.role, []);
    col.get(n.role).push(n);
  }
  const W = 128, H = 36, GX = 18, GY = 8, TOP = 34;
  const out = [];
  for (const [dc, cols] of dcs) {
    const tiers = ARCH_TIERS.filter(([r]) => cols.has(r));
    for (const r of cols.keys()) if (!ARCH_TIERS.some(([k]) => k === r)) tiers.push([r, r]);
    const rows = Math.max(...tiers.map(([r]) => cols.get(r).length));
    const width = tiers.length * (W + GX) + 10, height = TOP + rows * (H + GY) + 6;
    const root = svg('svg', {width, height, viewBox: `0 0 ${width} ${height}`, 'data-dc': dc});
    root.append(svg('text', {x: 2, y: 12, 'font-weight': 'bold'}, dc));
    tiers.forEach(([role, title], i) => {
      const x = 4 + i * (W + GX);
      root.append(svg('text', {x: x + W / 2, y: 28, 'text-anchor': 'middle', fill: '#556'}, title));
      if (i > 0) root.append(svg('line', {x1: x - GX + 2, y1: 24, x2: x - 2, y2: 24, stroke: '#aab', 'stroke-width': 1}));
      cols.get(role).forEach((n, j) => {
        const y = TOP + j * (H + GY);
        const down = n.state === 'failed' || n.state === 'stopped';
        const primary = n.db_role === 'primary';
        const g = svg('g', {class: 'archnode', 'data-node': n.name, 'data-state': n.state});
        g.append(svg('rect', {x, y, width: W, height: H, rx: 5, fill: STATE_FILL[n.state] || '#fff',
          stroke: down ? '#e03131' : primary ? '#1c7ed6' : '#99a', 'stroke-width': primary || down ? 2.5 : 1}));
        g.append(svg('text', {x: x + 6, y: y + 14}, n.name));
        const sub = down ? `${n.state} (down)` : (n.db_role || n.state);
        g.append(svg('text', {x: x + 6, y: y + 28, fill: down ? '#c92a2a' : primary ? '#1864ab' : '#556'}, sub));
        g.append(svg('title', {}, `${n.name} · ${n.role} · ${n.address} · ${n.state}`));
        root.append(g);
      });
    });
    out.push(root);
  }
  $('arch').replaceChildren(...out);
}
// Graphs over time from Prometheus, through the runner's named queries (GET /api/graphs/NAME),
// drawn as SVG paths: one line per series, gaps where samples are missing.
let graphRange = '5m', graphList = null, graphsAt = 0;
const COLORS = ['#1c7ed6', '#e8590c', '#2f9e44', '#ae3ec9', '#f59f00', '#0ca678', '#e03131', '#5c7cfa', '#868e96'];
const RANGE_S = {'5m': 300, '30m': 1800, '3h': 10800};
function fmt(v, unit) {
  if (unit === 'ratio') return (100 * v).toFixed(v < 0.1 ? 1 : 0) + '%';
  if (unit === 's') return v < 1 ? (1000 * v).toFixed(v < 0.01 ? 1 : 0) + ' ms' : v.toFixed(1) + ' s';
  if (unit === 'bytes') {
    const u = ['B', 'KiB', 'MiB', 'GiB']; let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return v.toFixed(v < 10 && (i || v % 1) ? 1 : 0) + ' ' + u[i];
  }
  const n = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.01 || v === 0 ? v.toFixed(2) : v.toPrecision(1);
  return n + (unit === 'req/s' ? '/s' : '');
}
function drawGraph(g, answer) {
  const box = el('div', undefined, 'graph');
  box.dataset.graph = g.name;
  box.append(el('h4', g.title));
  const W = 360, H = 130, L = 52, B = 16;
  const root = svg('svg', {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none'});
  const end = Date.now() / 1000, start = end - RANGE_S[graphRange];
  const series = answer.series || [];
  let max = 0;
  for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
  // Ratios never above 100%; a small one (errors) keeps its own scale.
  max = max > 0 ? (g.unit === 'ratio' ? Math.min(1, Math.max(max * 1.1, 0.01)) : max * 1.1) : 1;
  const X = (t) => L + (W - L - 4) * (t - start) / (end - start);
  const Y = (v) => 4 + (H - B - 8) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', {x1: L, x2: W - 4, y1: Y(f * max), y2: Y(f * max), stroke: '#eee'}));
    root.append(svg('text', {x: L - 4, y: Y(f * max) + 4, 'text-anchor': 'end', 'font-size': 10, fill: '#778'}, fmt(f * max, g.unit)));
  }
  root.append(svg('text', {x: L, y: H - 2, 'font-size': 10, fill: '#778'}, `-${graphRange}`));
  root.append(svg('text', {x: W - 4, y: H - 2, 'font-size': 10, fill: '#778', 'text-anchor': 'end'}, 'now'));
  const legend = el('div', undefined, 'legend');
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    let d = '', last = null;
    const gap = 3 * RANGE_S[graphRange] / 150;
    for (const [t, v] of s.points) {
      d += (last === null || t - last > gap ? 'M' : 'L') + X(t).toFixed(1) + ' ' + Y(v).toFixed(1) + ' ';
      last = t;
    }
    root.append(svg('path', {d, fill: 'none', stroke: color, 'stroke-width': 1.5, 'data-points': s.points.length}));
    const item = el('span', s.label);
    const sw = el('i'); sw.style.background = color;
    item.prepend(sw);
    legend.append(item);
  });
  if (!series.length) root.append(svg('text', {x: (L + W) / 2, y: H / 2, 'text-anchor': 'middle', fill: '#99a'}, answer.error || 'no data yet'));
  box.append(root, legend);
  return box;
}
async function refreshGraphs(force) {
  if (!force && Date.now() - graphsAt < 5000) return;
  graphsAt = Date.now();
  if (!graphList) graphList = await (await api('/api/graphs')).json();
  if (!graphList.prometheus) {
    $('graphnote').textContent = 'no Prometheus in this topology: add a [prometheus] section for graphs over time';
    $('ranges').hidden = true;
    return;
  }
  $('graphnote').textContent = '';
  const range = graphRange;
  const answers = await Promise.all(graphList.graphs.map(async (g) =>
    (await api(`/api/graphs/${g.name}?range=${range}`)).json()));
  if (range !== graphRange) return;
  $('graphs').replaceChildren(...graphList.graphs.map((g, i) => drawGraph(g, answers[i])));
}
for (const b of document.querySelectorAll('#ranges button')) {
  b.addEventListener('click', () => {
    graphRange = b.dataset.range;
    for (const o of document.querySelectorAll('#ranges button')) o.classList.toggle('on', o === b);
    refreshGraphs(true).catch(() => {});
  });
}
async function refresh() {
  try {
    const s = await (await api('/api/status')).json();
    renderNodes(s);
    renderArch(s);
    const m = await (await api('/api/metrics')).json();
    for (const t of Object.values(m.tiers)) t.buckets = t.buckets.map(([le, c]) => [le === '+Inf' ? Infinity : Number(le), c]);
    m.at = Date.now();
    renderEdge(m);
    renderBusiness(m);
    renderTiers(m);
    renderMatrix(await (await api('/api/chaos-matrix')).json());
    renderAutoscale(await (await api('/api/autoscale')).json());
    renderAlerts(await (await api('/api/alerts')).json());
    await refreshGraphs(false);
  } catch (e) { $('summary').textContent = $('login').hidden ? 'runner unreachable' : 'admin token needed'; }
}
refresh();
setInterval(refresh, 2000);
</script></body></html>)html";
  return kPage;
}

}  // namespace millions::ctl
