/**
 * The operator page: one HTML document with its style and a small script, no framework.
 * The script reads /admin/ui/overview every few seconds (counts, rates, the last hour's
 * samples, health) and draws each rate as an SVG line; a search box shows one user
 * (/admin/ui/users/<user>). Pure: text only. Numbers carry data-* hooks for tests.
 */
export const OPERATOR_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ims-as operator</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; } h2 { font-size: 1.05em; margin: 1.4em 0 .5em; }
  .muted { color: #667; }
  .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(165px, 1fr)); gap: .6em; }
  .card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: .6em .8em; }
  .card .v { font-size: 1.6em; font-weight: 600; }
  .plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: .6em; }
  svg { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; width: 100%; height: 120px; }
  table { border-collapse: collapse; background: #fff; } td, th { border: 1px solid #dde1e7; padding: .25em .6em; text-align: left; }
  .ok { color: #17803d; font-weight: 600; } .bad { color: #b42318; font-weight: 600; }
  input { font: inherit; padding: .3em; width: 18em; } button { font: inherit; }
</style>
</head>
<body>
<h1>ims-as operator page</h1>
<div class="muted" id="meta">loading…</div>

<h2>Now</h2>
<div class="cards" id="counts"></div>

<h2>Rates (last hour)</h2>
<div class="plots" id="plots"></div>

<h2>Dependencies</h2>
<table id="health"><tr><th>dependency</th><th>state</th><th>detail</th></tr></table>

<h2>One user</h2>
<form id="search"><input id="user" placeholder="alice or sip:alice@domain" autocomplete="off"> <button>Show</button></form>
<div id="userview"></div>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '-').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
const hash = new URLSearchParams(location.hash.slice(1));
const RATES = [
  ['iscDecisions', 'ISC decisions /s'], ['iscEvents', 'ISC events /s'], ['notifies', 'NOTIFYs /s'],
  ['cdrs', 'CDRs written /s'], ['uacRequests', 'AS-originated requests /s'], ['streamResets', 'stream resets /s'],
];

async function get(path) {
  const res = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (!res.ok) throw new Error(path + ': HTTP ' + res.status);
  return res.json();
}

function card(key, label, value) {
  return '<div class="card"><div class="muted">' + esc(label) + '</div><div class="v" data-count="' + esc(key) + '">' + esc(value) + '</div></div>';
}

/** One rate as a line over the last hour: x is time, y from 0 to the largest value seen. */
function plot(key, label, series) {
  const W = 320, H = 110, pad = 4;
  const pts = series.map((r) => [r.t, r.perSecond[key] ?? 0]);
  const max = Math.max(1, ...pts.map((p) => p[1]));
  const t1 = pts.length ? pts[pts.length - 1][0] : Date.now(), t0 = t1 - 3600e3;
  const x = (t) => pad + ((t - t0) / 3600e3) * (W - 2 * pad);
  const y = (v) => H - pad - (v / max) * (H - 2 * pad - 14);
  const line = pts.map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
  const last = pts.length ? pts[pts.length - 1][1] : 0;
  return '<svg viewBox="0 0 ' + W + ' ' + H + '" data-plot="' + key + '" data-points="' + pts.length + '">' +
    '<text x="6" y="14" font-size="11" fill="#445">' + esc(label) + ': ' + last + ' (max ' + max + ')</text>' +
    '<path d="' + line + '" fill="none" stroke="#2563eb" stroke-width="1.6"/></svg>';
}

async function refresh() {
  try {
    const o = await get('/admin/ui/overview');
    const c = o.counts;
    const subs = Object.entries(c.subscriptions);
    const latest = o.rates || { perSecond: {} };
    $('counts').innerHTML = [
      card('registeredUsers', 'registered users', c.registeredUsers),
      ...subs.map(([p, n]) => card('subscriptions.' + p, p + ' subscriptions', n)),
      card('publications', 'publications', c.publications),
      card('storedMessages', 'stored messages', c.storedMessages),
      card('cdrsWritten', 'CDRs written', c.cdrsWritten),
      card('iscDecisionsTotal', 'ISC decisions (total)', o.totals.iscDecisions),
      card('iscDecisionsPerSecond', 'ISC decisions /s (last minute)', latest.perSecond.iscDecisions ?? 0),
      card('decisionMeanMs', 'decision latency mean (ms, last minute)', latest.decisionMeanMs ?? '-'),
      card('decisionP95Ms', 'decision latency p95 (ms, last minute)', latest.decisionP95Ms ?? '-'),
      card('sessions', 'open sessions / conferences', 'n/a'),
    ].join('');
    $('plots').innerHTML = RATES.map(([k, l]) => plot(k, l, o.series)).join('');
    $('health').innerHTML = '<tr><th>dependency</th><th>state</th><th>detail</th></tr>' + Object.entries(o.health.checks).map(([k, h]) =>
      '<tr data-health="' + esc(k) + '"><td>' + esc(k) + '</td><td class="' + (h.ok ? 'ok">up' : 'bad">DOWN') + '</td><td>' + esc(h.detail) + '</td></tr>').join('');
    $('meta').textContent = 'version ' + o.version + ' · node ' + o.node + ' · sample every ' + o.sampleSeconds + ' s · ' + o.series.length + ' intervals · updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'yes';
  } catch (err) {
    $('meta').textContent = 'cannot read the overview: ' + err.message;
  }
}

function subsTable(list) {
  if (!list.length) return '<div class="muted">none</div>';
  return '<table><tr><th>event</th><th>watcher</th><th>resource</th><th>state</th><th>expires</th></tr>' + list.map((s) =>
    '<tr><td>' + esc(s.event) + '</td><td>' + esc(s.watcher) + '</td><td>' + esc(s.resource) + '</td><td>' + esc(s.state) + '</td><td>' + esc(s.expiresAt) + '</td></tr>').join('') + '</table>';
}

async function showUser(user) {
  const out = $('userview');
  try {
    const u = await get('/admin/ui/users/' + encodeURIComponent(user));
    const m = u.storedMessages;
    out.innerHTML = '<h3 data-user="' + esc(u.aor) + '">' + esc(u.aor) + '</h3>' +
      '<div class="cards">' + card('user.registrations', 'registrations', u.registrations.length) + card('user.subscriptions', 'subscriptions', u.subscriptions.length) +
      card('user.watchers', 'watchers', u.watchers.length) + card('user.storedMessages', 'stored messages', m.count) + card('user.historySize', 'history entries', u.historySize) + '</div>' +
      '<h4>Registrations</h4>' + (u.registrations.length ? '<table><tr><th>contact</th><th>expires</th><th>capabilities</th></tr>' + u.registrations.map((r) => '<tr><td>' + esc(r.contact) + '</td><td>' + esc(r.expires) + '</td><td>' + esc(Object.entries(r.params || {}).map(([k, v]) => v === '' ? k : k + '=' + v).join(' ')) + '</td></tr>').join('') + '</table>' : '<div class="muted">none</div>') +
      '<h4>Subscriptions</h4>' + subsTable(u.subscriptions) + '<h4>Watchers</h4>' + subsTable(u.watchers) +
      '<h4>Stored messages</h4>' + (m.messages.length ? '<table><tr><th>from</th><th>kind</th><th>size</th><th>sent</th></tr>' + m.messages.map((x) => '<tr><td>' + esc(x.from) + '</td><td>' + esc(x.kind) + '</td><td>' + esc(x.size) + '</td><td>' + esc(x.sentAt) + '</td></tr>').join('') + '</table>' : '<div class="muted">none</div>');
  } catch (err) {
    out.innerHTML = '<div class="bad">' + esc(err.message) + '</div>';
  }
}

$('search').addEventListener('submit', (e) => { e.preventDefault(); if ($('user').value) showUser($('user').value); });
if (hash.get('user')) { $('user').value = hash.get('user'); showUser(hash.get('user')); }
refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
`;

/**
 * Without the token: a form that keeps the token in a cookie for /admin/ui (strict same-site,
 * so other sites cannot use it) and loads the page again. `#token=...` in the address fills it.
 */
export const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ims-as operator: admin token</title></head>
<body style="font: 14px system-ui, sans-serif; margin: 2em">
<h1 style="font-size: 1.2em">ims-as operator page</h1>
<p>The admin token (<code>admin.token</code> in the AS settings) is needed.</p>
<form id="f"><input id="t" type="password" size="40" autocomplete="off"> <button>Open</button></form>
<script>
"use strict";
function keep(token) {
  document.cookie = 'ims_admin=' + encodeURIComponent(token) + '; Path=/admin/ui; SameSite=Strict';
  const h = new URLSearchParams(location.hash.slice(1));
  h.delete('token');
  location.replace(location.pathname + (h.toString() ? '#' + h.toString() : ''));
  setTimeout(() => location.reload(), 50);
}
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) keep(fromHash);
document.getElementById('f').addEventListener('submit', (e) => { e.preventDefault(); keep(document.getElementById('t').value); });
</script>
</body></html>
`;
