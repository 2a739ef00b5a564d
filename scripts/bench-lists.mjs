#!/usr/bin/env node
// Presence list benchmark, against a running stack in benchmark mode (scripts/bench-lists.sh
// starts one): a small UDP SIP client of our own, because a list's state arrives in a number
// of NOTIFYs that varies with the size limit, which sipp scenarios cannot follow.
//
//  1. list fetches/s: SUBSCRIBE (Expires: 0, Supported: eventlist) to a 100-member list, the
//     200 and every NOTIFY of its state up to the terminating one, at each rate of RATES;
//  2. bytes on the wire: 100 presence changes spread over the members, seen by watchers with
//     and without partial notification (RFC 5263), for one presentity and for the list.
//
//   node scripts/bench-lists.mjs --core 127.0.0.1:5290 --isc 127.0.0.1:5292 --xcap 127.0.0.1:5294 --admin-token T
//   RATES="50 100 200" DURATION=5 MEMBERS=100 CHANGES=100
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { parseSipMessage } from '../build/as/src/sip/message.js';
import { XcapClient } from '../build/test/helpers/xcap-client.js';

const { values: opt } = parseArgs({
  options: {
    core: { type: 'string', default: '127.0.0.1:5290' },
    isc: { type: 'string', default: '127.0.0.1:5292' },
    xcap: { type: 'string', default: '127.0.0.1:5294' },
    'admin-token': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opt.help || !opt['admin-token']) {
  console.log('usage: node scripts/bench-lists.mjs --admin-token TOKEN [--core host:port] [--isc host:port] [--xcap host:port]\n' +
    'env: RATES (list fetches per second, e.g. "50 100 200"), DURATION (s per rate), MEMBERS (100), CHANGES (100)');
  process.exit(opt.help ? 0 : 2);
}
const RATES = (process.env.RATES ?? '50 100 200').split(/\s+/).filter(Boolean).map(Number);
const DURATION = Number(process.env.DURATION ?? 5);
const MEMBERS = Number(process.env.MEMBERS ?? 100);
const CHANGES = Number(process.env.CHANGES ?? 100);
const DOMAIN = 'example.com';
const [coreHost, corePort] = opt.core.split(':');
const OWNER = 'listowner';
const PASSWORD = randomBytes(9).toString('base64url');

// ---------------------------------------------------------------- a minimal UDP user agent
const sock = createSocket('udp4');
// a port the core trusts in benchmark mode (WITH_TRUSTED_PEER: 5160-5199), so no digest round trips
await new Promise((r) => sock.bind(Number(process.env.BENCH_PORT ?? 5170), '127.0.0.1', r));
const localPort = sock.address().port;
/** Pending client transactions by Call-ID + CSeq; dialog handlers by Call-ID. */
const transactions = new Map();
const dialogs = new Map();
let wireBytes = new Map();

sock.on('message', (buf) => {
  let msg;
  try {
    msg = parseSipMessage(buf.toString('utf8'));
  } catch {
    return;
  }
  const callId = msg.headers.get('Call-ID');
  if (msg.kind === 'response') {
    const key = `${callId} ${msg.headers.get('CSeq')}`;
    const t = transactions.get(key);
    if (t && msg.status >= 200) {
      transactions.delete(key);
      clearInterval(t.retrans);
      t.resolve(msg);
    }
    return;
  }
  // a request: answer 200 and hand it to its dialog
  const ok = ['SIP/2.0 200 OK', ...msg.headers.getAll('Via').map((v) => `Via: ${v}`), `From: ${msg.headers.get('From')}`, `To: ${msg.headers.get('To')}`,
    `Call-ID: ${callId}`, `CSeq: ${msg.headers.get('CSeq')}`, 'Content-Length: 0', '', ''].join('\r\n');
  sock.send(ok, Number(corePort), coreHost);
  if (msg.method === 'NOTIFY') {
    wireBytes.set(callId, (wireBytes.get(callId) ?? 0) + buf.length);
    dialogs.get(callId)?.(msg);
  }
}
);

let seq = 0;
/** Sends a request (retransmitted like UDP SIP does) and resolves with its final response. */
function request(method, ruri, from, extraHeaders, body = '', callId = `${++seq}-${randomBytes(6).toString('hex')}@bench`, cseq = 1) {
  const text = [`${method} ${ruri} SIP/2.0`, `Via: SIP/2.0/UDP 127.0.0.1:${localPort};branch=z9hG4bK${randomBytes(8).toString('hex')};rport`, 'Max-Forwards: 70',
    `From: <${from}>;tag=${randomBytes(4).toString('hex')}`, `To: <${ruri}>`, `Call-ID: ${callId}`, `CSeq: ${cseq} ${method}`,
    `Contact: <sip:bench@127.0.0.1:${localPort}>`, ...extraHeaders, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
  return new Promise((resolve) => {
    const t = { resolve, retrans: setInterval(() => sock.send(text, Number(corePort), coreHost), 500) };
    transactions.set(`${callId} ${cseq} ${method}`, t);
    sock.send(text, Number(corePort), coreHost);
    setTimeout(() => {
      if (transactions.delete(`${callId} ${cseq} ${method}`)) {
        clearInterval(t.retrans);
        resolve(undefined);
      }
    }, 8000);
  });
}

const pidf = (user, basic, note, activity) => `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:${user}@${DOMAIN}">` +
  `<tuple id="phone"><status><basic>${basic}</basic></status><contact priority="0.8">sip:${user}@${DOMAIN}</contact><note>${note}</note></tuple>` +
  `<tuple id="desktop"><status><basic>open</basic></status><contact priority="0.5">sip:${user}@desk.${DOMAIN}</contact></tuple>` +
  `<dm:person id="p1"><rpid:activities><rpid:${activity}/></rpid:activities><rpid:mood><rpid:happy/></rpid:mood><dm:note>at the office</dm:note></dm:person>` +
  `<dm:device id="d1"><dm:deviceID>mac:00112233${user.length}</dm:deviceID></dm:device></presence>`;

const etags = new Map();
async function publish(user, basic, note, activity) {
  const etag = etags.get(user);
  const res = await request('PUBLISH', `sip:${user}@${DOMAIN}`, `sip:${user}@${DOMAIN}`,
    ['Event: presence', 'Expires: 3600', 'Content-Type: application/pidf+xml', ...(etag ? [`SIP-If-Match: ${etag}`] : [])], pidf(user, basic, note, activity));
  if (res?.status !== 200) throw new Error(`PUBLISH ${user}: ${res?.status ?? 'timeout'}`);
  etags.set(user, res.headers.get('SIP-ETag'));
}

/** A subscription; resolves once the state is complete (every NOTIFY up to the full list, or the terminating one for a fetch). */
function subscribe(target, { expires, list, diff, onNotify }) {
  const callId = `${++seq}-${randomBytes(6).toString('hex')}@bench`;
  const accept = [list ? 'multipart/related, application/rlmi+xml' : '', 'application/pidf+xml', diff ? 'application/pidf-diff+xml' : ''].filter(Boolean).join(', ');
  let done;
  const complete = new Promise((r) => (done = r));
  dialogs.set(callId, (msg) => {
    onNotify?.(msg);
    const state = msg.headers.get('Subscription-State') ?? '';
    if (state.startsWith('terminated')) return done(true);
    if (expires > 0) done(true);
  });
  const sent = request('SUBSCRIBE', target, `sip:${OWNER}@${DOMAIN}`, ['Event: presence', `Accept: ${accept}`, `Expires: ${expires}`, ...(list ? ['Supported: eventlist'] : [])], '', callId);
  return { callId, sent, complete };
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

// ---------------------------------------------------------------- set-up
const admin = await fetch(`http://${opt.isc}/admin/users`, {
  method: 'POST', headers: { authorization: `Bearer ${opt['admin-token']}`, 'content-type': 'application/json' },
  body: JSON.stringify({ user: OWNER, password: PASSWORD }),
});
if (admin.status !== 201) throw new Error(`cannot create ${OWNER}: ${admin.status} ${await admin.text()}`);
const members = Array.from({ length: MEMBERS }, (_, i) => `member${i}`);
const xcap = new XcapClient(`http://${opt.xcap}`, OWNER, PASSWORD);
const LIST_URI = `sip:${OWNER}-list@${DOMAIN}`;
const doc = `<?xml version="1.0" encoding="UTF-8"?><rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">` +
  `<service uri="${LIST_URI}"><list>${members.map((m) => `<rl:entry uri="sip:${m}@${DOMAIN}"/>`).join('')}</list><packages><package>presence</package></packages></service></rls-services>`;
const put = await xcap.put(`/xcap-root/rls-services/users/sip:${OWNER}@${DOMAIN}/index`, doc, 'application/rls-services+xml');
if (put.status !== 201 && put.status !== 200) throw new Error(`rls-services PUT: ${put.status} ${put.body}`);
for (const m of members) await publish(m, 'open', `${m} is reachable`, 'working');
console.log(`[bench-lists] ${MEMBERS} members published; list ${LIST_URI}`);

// ---------------------------------------------------------------- 1. list fetches per second
const results = [];
for (const rate of RATES) {
  const total = rate * DURATION;
  const latencies = [];
  let failed = 0;
  let notifyCount = 0;
  const started = Date.now();
  const runs = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    const s = subscribe(LIST_URI, { expires: 0, list: true, onNotify: () => notifyCount++ });
    runs.push((async () => {
      const res = await s.sent;
      const ok = res?.status === 200 && (await Promise.race([s.complete, new Promise((r) => setTimeout(() => r(false), 8000))]));
      dialogs.delete(s.callId);
      if (ok) latencies.push(performance.now() - t0);
      else failed++;
    })());
  }
  await Promise.all(runs);
  const elapsed = (Date.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const r = { rate, attempted: total, completed: latencies.length, failed, perSecond: +(latencies.length / elapsed).toFixed(1), notifiesPerFetch: +(notifyCount / Math.max(1, latencies.length)).toFixed(2), p50ms: +pct(latencies, 0.5).toFixed(1), p99ms: +pct(latencies, 0.99).toFixed(1) };
  results.push(r);
  console.log(`[bench-lists] list fetch ${JSON.stringify(r)}`);
  await new Promise((r2) => setTimeout(r2, 1000));
}

// ---------------------------------------------------------------- 2. bytes on the wire, full vs partial
wireBytes = new Map();
const watchers = {
  presentityFull: subscribe(`sip:${members[0]}@${DOMAIN}`, { expires: 600, list: false, diff: false }),
  presentityPartial: subscribe(`sip:${members[0]}@${DOMAIN}`, { expires: 600, list: false, diff: true }),
  listFull: subscribe(LIST_URI, { expires: 600, list: true, diff: false }),
  listPartial: subscribe(LIST_URI, { expires: 600, list: true, diff: true }),
};
for (const w of Object.values(watchers)) await w.sent;
await new Promise((r) => setTimeout(r, 2000)); // the initial (full) state, split or not
const baseline = Object.fromEntries(Object.entries(watchers).map(([k, w]) => [k, wireBytes.get(w.callId) ?? 0]));
// 100 changes: the first presentity changes every time (it is the one the single watchers see),
// the list's members in turn; each change flips one thing (a note, the basic status, an activity)
for (let i = 0; i < CHANGES; i++) {
  const who = i % 2 === 0 ? members[0] : members[(i * 7) % MEMBERS];
  const kind = i % 3;
  await publish(who, kind === 1 ? (i % 2 ? 'closed' : 'open') : 'open', kind === 0 ? `change ${i}` : `${who} is reachable`, kind === 2 ? (i % 2 ? 'meeting' : 'working') : 'working');
  await new Promise((r) => setTimeout(r, 30));
}
await new Promise((r) => setTimeout(r, 2000));
const after = Object.fromEntries(Object.entries(watchers).map(([k, w]) => [k, (wireBytes.get(w.callId) ?? 0) - baseline[k]]));
console.log(`[bench-lists] NOTIFY bytes for ${CHANGES} changes (after the initial state): ${JSON.stringify(after)}`);
console.log(`[bench-lists] partial/full ratio: presentity ${(after.presentityPartial / after.presentityFull).toFixed(3)}, list ${(after.listPartial / after.listFull).toFixed(3)}`);
console.log(JSON.stringify({ fetch: results, bytes: after, initial: baseline }));
sock.close();
process.exit(0);
