#!/usr/bin/env node
// Group chat benchmark (issue 15), against a stack in benchmark mode (scripts/bench-conference.sh
// starts it, provisions the users and runs this):
//
//  (a) room: PARTICIPANTS users join one chat room, each by INVITE through Kamailio (the AS is
//      the focus and answers with its own MSRP path) and an MSRP client written with the AS's
//      format module. Latency: one SEND at a time, from its write until the last of the other
//      N-1 participants has it (p50, p99, max over the messages). Throughput: every participant
//      sending in turn, at most WINDOW messages not yet at all N-1 others; messages per second
//      the room carries (each one delivered N-1 times);
//  (b) memory: RSS and heap of the AS (its /metrics, after a full garbage collection through
//      its inspector) before and after the N joins, divided by N;
//  (c) set-ups: 3-party conferences per second: a room created through the admin API, 3 joins
//      (INVITE -> 200 -> ACK, MSRP connection bound), then 3 BYEs; CONCURRENCY at a time for
//      DURATION seconds; and ad-hoc ones: an INVITE to the conference factory with a recipient
//      list (RFC 5366) naming two registered users, whom the focus invites (dial-out); set up
//      when the creator and both invitees have their MSRP connection bound; then 3 BYEs.
//
// Participants are SIP UAs of this script on one UDP socket with a port the benchmark-mode
// core trusts (51xx: no digest round trips, the From user is the asserted identity).
//
//   node scripts/bench-conference.mjs --out DIR [--core 127.0.0.1:5290] [--metrics URL] ...   (--help)
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/bench-conference' },
    core: { type: 'string', default: '127.0.0.1:5290' },
    metrics: { type: 'string', default: 'http://127.0.0.1:5292/metrics' },
    admin: { type: 'string', default: 'http://127.0.0.1:5292/admin' },
    'sip-port': { type: 'string', default: '5164' },
    inspect: { type: 'string', default: '127.0.0.1:5289' },
    help: { type: 'boolean', short: 'h' },
  },
});
const env = (name, dflt) => process.env[name] ?? dflt;
const ONLY = env('ONLY', 'room,setup,adhoc').split(',').map((s) => s.trim()).filter(Boolean);
const PARTICIPANTS = Number(env('PARTICIPANTS', 100));
const DURATION = Number(env('DURATION', 10));
const LATENCY_MESSAGES = Number(env('LATENCY_MESSAGES', 200));
const MSG_BYTES = Number(env('MSG_BYTES', 100));
const WINDOW = Number(env('WINDOW', 8));
const JOIN_RATE = Number(env('JOIN_RATE', 50));
const CONCURRENCY = Number(env('CONCURRENCY', 4));
const DOMAIN = env('SIP_DOMAIN', 'example.com');
const FACTORY_USER = env('CONFERENCE_FACTORY_USER', 'conference-factory');
if (opt.help) {
  console.log(`usage: node --experimental-websocket scripts/bench-conference.mjs [--out DIR] [--core host:port] [--metrics URL]
         [--admin URL] [--sip-port N] [--inspect host:port]
  (normally run by scripts/bench-conference.sh, which starts the stack and provisions users p1..pN first;
  --sip-port is this script's UDP port, one the benchmark-mode core trusts (51xx); --inspect is the AS's
  inspector, used only to collect garbage before each memory reading of (b); the admin API needs
  AS_ADMIN_TOKEN in the environment)
env knobs:
  ONLY              phases, in this order: room,setup,adhoc (all); room is (a) and (b), setup and adhoc are (c)
  PARTICIPANTS      participants of the room in (a) and (b) (100)
  LATENCY_MESSAGES  messages sent one at a time for the latency of (a) (200)
  DURATION          seconds of the throughput run of (a) and of the set-up run of (c) (10)
  MSG_BYTES         text of each message in (a) (100 bytes)
  WINDOW            messages in flight in the throughput run, counted until all N-1 others have them (8)
  JOIN_RATE         joins per second into the room of (a) (50)
  CONCURRENCY       3-party conferences being set up at once in (c), rooms and ad-hoc alike (4)
  CONFERENCE_FACTORY_USER  user part of the AS's conference factory URI (conference-factory)
  SIP_DOMAIN        the core's domain (example.com)`);
  process.exit(0);
}
if (!existsSync(join(ROOT, 'build/as/src/msrp/framer.js'))) {
  console.error('build first: npx tsc -p tsconfig.json');
  process.exit(1);
}
const { MsrpFramer } = await import('../build/as/src/msrp/framer.js');
const { headerValue, serializeMessage } = await import('../build/as/src/msrp/message.js');
const { parseMsrpMedia } = await import('../build/as/src/msrp/sdp.js');
const { buildRequest, buildResponse, parseSipMessage, replyHeaders } = await import('../build/as/src/sip/index.js');

const OUT = resolve(opt.out);
mkdirSync(OUT, { recursive: true });
const [coreHost, corePort] = opt.core.split(':');
const SIP_PORT = Number(opt['sip-port']);
const ADMIN_TOKEN = env('AS_ADMIN_TOKEN', '');

const t0 = Date.now();
const progress = (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, ok, ms) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

// ------------------------------------------------------------------ SIP user agents
// One UDP socket for every participant; transactions told apart by Via branch, dialogs by Call-ID.
const sip = createSocket('udp4');
const pendingByBranch = new Map();
/** Registered users of (c)'s ad-hoc conferences: user -> handler of the focus's INVITE. */
const invitees = new Map();
let seq = 0;
const token = (prefix) => `${prefix}${process.pid.toString(36)}${(++seq).toString(36)}`;
sip.on('message', (data, rinfo) => {
  let msg;
  try {
    msg = parseSipMessage(data.toString('utf8'));
  } catch {
    return;
  }
  if (msg.kind === 'request') {
    const user = /^sips?:([^@;]+)@/.exec(msg.uri)?.[1];
    if (msg.method === 'INVITE' && user && invitees.has(user)) return invitees.get(user)(msg, rinfo);
    // the focus's own other requests (ACK of its INVITE, a BYE when it ends a participant): 200, nothing more
    if (msg.method !== 'ACK') sip.send(buildResponse({ status: 200, headers: replyHeaders(msg) }), rinfo.port, rinfo.address);
    return;
  }
  const branch = /branch=([^;,\s]+)/.exec(msg.headers.get('Via') ?? '')?.[1];
  pendingByBranch.get(branch)?.(msg);
});

/** Sends a request, retransmitting every 500 ms until a response (a final one for non-INVITE); resolves with the final response. */
function transaction(method, uri, headers, body, timeoutMs = 10_000) {
  const branch = token('z9hG4bK');
  const text = buildRequest({ method, uri, headers: [[ 'Via', `SIP/2.0/UDP 127.0.0.1:${SIP_PORT};branch=${branch};rport` ], ...headers], body });
  return new Promise((resolveFinal, reject) => {
    let provisional = false;
    const resend = setInterval(() => {
      if (!provisional || method !== 'INVITE') sip.send(text, Number(corePort), coreHost);
    }, 500);
    const timer = setTimeout(() => finish(new Error(`no final response to ${method} ${uri}`)), timeoutMs);
    const finish = (err, res) => {
      clearInterval(resend);
      clearTimeout(timer);
      pendingByBranch.delete(branch);
      if (err) reject(err);
      else resolveFinal(res);
    };
    pendingByBranch.set(branch, (res) => {
      if (res.status < 200) provisional = true;
      else finish(undefined, res);
    });
    sip.send(text, Number(corePort), coreHost);
  });
}

let msrpPortSeq = 0;
/**
 * One participant: INVITE to the room through the core (an MSRP offer, active side), ACK, then
 * its MSRP connection to the AS's path bound by a bodiless SEND. `onText(body)` sees every
 * message the focus sends it.
 */
async function joinRoom(user, room, onText) {
  const callId = token('cb');
  const fromTag = token('t');
  const localPath = `msrp://127.0.0.1:${40000 + (++msrpPortSeq % 20000)}/${callId};tcp`;
  const sdp = ['v=0', `o=${user} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    `m=message ${40000 + (msrpPortSeq % 20000)} TCP/MSRP *`, 'a=accept-types:message/cpim text/plain', 'a=accept-wrapped-types:*',
    `a=path:${localPath}`, 'a=setup:active', ''].join('\r\n');
  const from = `<sip:${user}@${DOMAIN}>;tag=${fromTag}`;
  const roomUri = `sip:${room}@${DOMAIN}`;
  const started = nowMs();
  const res = await transaction('INVITE', roomUri, [
    ['Max-Forwards', '70'], ['From', from], ['To', `<${roomUri}>`], ['Call-ID', callId], ['CSeq', '1 INVITE'],
    ['Contact', `<sip:${user}@127.0.0.1:${SIP_PORT}>`], ['Content-Type', 'application/sdp']], sdp);
  if (res.status !== 200) throw new Error(`${user} joining ${room}: ${res.status} ${res.reason} ${res.headers.get('Warning') ?? ''}`);
  const contact = /<([^>]+)>/.exec(res.headers.get('Contact') ?? '')?.[1];
  const to = res.headers.get('To');
  const asPath = parseMsrpMedia(res.body)[0]?.path;
  if (!contact || !to || !asPath?.length) throw new Error(`${user} joining ${room}: 200 without Contact, To or MSRP path`);
  // the 2xx's ACK goes straight to the focus's Contact (the core): a new transaction
  const ackBranch = token('z9hG4bK');
  sip.send(buildRequest({ method: 'ACK', uri: contact, headers: [['Via', `SIP/2.0/UDP 127.0.0.1:${SIP_PORT};branch=${ackBranch};rport`],
    ['Max-Forwards', '70'], ['From', from], ['To', to], ['Call-ID', callId], ['CSeq', '1 ACK']] }), Number(corePort), coreHost);
  const toPath = asPath.join(' ');
  const asUrl = /^msrps?:\/\/([^:/;]+):(\d+)/.exec(asPath[0]);
  const msrp = await msrpConnection(asUrl[1], Number(asUrl[2]), onText);
  const bound = await msrp.request(sendRequest(toPath, localPath));
  if (bound.code !== 200) throw new Error(`${user}: binding SEND answered ${bound.code}`);
  return {
    user, msrp, setupMs: nowMs() - started,
    send: (body) => msrp.socket.write(serializeMessage(sendRequest(toPath, localPath, body))),
    async leave() {
      const bye = await transaction('BYE', contact, [['Max-Forwards', '70'], ['From', from], ['To', to], ['Call-ID', callId], ['CSeq', '2 BYE']]);
      msrp.socket.destroy();
      return bye.status;
    },
  };
}

// ------------------------------------------------------------------ MSRP clients
let tidSeq = 0;
function sendRequest(toPath, fromPath, body) {
  const tid = `bc${(++tidSeq).toString(36).padStart(6, '0')}`;
  return {
    head: { kind: 'request', tid, method: 'SEND', headers: [
      { name: 'To-Path', value: toPath }, { name: 'From-Path', value: fromPath }, { name: 'Message-ID', value: `m${tid}` },
      ...(body ? [{ name: 'Byte-Range', value: `1-${body.length}/${body.length}` }, { name: 'Content-Type', value: 'text/plain' }] : []),
    ] },
    ...(body ? { body } : {}),
    flag: '$',
  };
}
/** A participant's MSRP connection: answers the focus's SENDs (unless Failure-Report: no), hands their bodies on. */
function msrpConnection(host, port, onText) {
  return new Promise((resolveConn, reject) => {
    const socket = connect({ host, port });
    const conn = wireMsrp(socket, onText);
    socket.once('connect', () => {
      socket.on('error', () => undefined);
      resolveConn(conn);
    });
    socket.once('error', reject);
  });
}
/** Reads MSRP on `socket`: responses settle `request`s, SENDs are answered and their bodies handed to `onText(body, head)`. */
function wireMsrp(socket, onText) {
  const waiting = new Map();
  const conn = { socket, codes: new Map(), request: undefined };
  conn.request = (msg, timeoutMs = 10_000) => new Promise((resolveResponse, rejectResponse) => {
    const timer = setTimeout(() => {
      waiting.delete(msg.head.tid);
      rejectResponse(new Error(`no response to SEND ${msg.head.tid}`));
    }, timeoutMs);
    waiting.set(msg.head.tid, (head) => {
      clearTimeout(timer);
      resolveResponse(head);
    });
    socket.write(serializeMessage(msg));
  });
  const framer = new MsrpFramer();
  let current;
  socket.on('data', (data) => {
    for (const ev of framer.push(data)) {
      if (ev.type === 'head') {
        current = { head: ev.head, chunks: [] };
        if (ev.head.kind === 'response') {
          conn.codes.set(ev.head.code, (conn.codes.get(ev.head.code) ?? 0) + 1);
          const w = waiting.get(ev.head.tid);
          if (w) {
            waiting.delete(ev.head.tid);
            w(ev.head);
          }
        }
      } else if (ev.type === 'body' && current) current.chunks.push(ev.data);
      else if (ev.type === 'end' && current) {
        const { head } = current;
        if (head.kind === 'request' && head.method === 'SEND') {
          if ((headerValue(head, 'Failure-Report') ?? 'yes') !== 'no') {
            socket.write(serializeMessage({ head: { kind: 'response', tid: head.tid, code: 200, comment: 'OK', headers: [
              { name: 'To-Path', value: headerValue(head, 'From-Path').split(' ')[0] },
              { name: 'From-Path', value: headerValue(head, 'To-Path').split(' ').at(-1) }] }, flag: '$' }));
          }
          onText(current.chunks.length ? Buffer.concat(current.chunks).toString('utf8') : '', head);
        }
        current = undefined;
      } else if (ev.type === 'error') socket.destroy();
    }
  });
  return conn;
}

// ------------------------------------------------------------------ the AS
async function asMetrics() {
  const text = await (await fetch(opt.metrics)).text();
  const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: value('process_resident_memory_bytes'), heapUsed: value('nodejs_heap_size_used_bytes') };
}
/** A full garbage collection in the AS through its inspector, so the heap read after it is what it retains. */
async function collectGarbageInAs() {
  if (typeof WebSocket === 'undefined') return false;
  let target;
  try {
    target = (await (await fetch(`http://${opt.inspect}/json/list`)).json())[0]?.webSocketDebuggerUrl;
  } catch {
    return false;
  }
  if (!target) return false;
  const ws = new WebSocket(target);
  try {
    await new Promise((resolveOpen, reject) => {
      ws.onopen = resolveOpen;
      ws.onerror = () => reject(new Error('inspector connection failed'));
    });
    await new Promise((resolveGc, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to HeapProfiler.collectGarbage')), 30_000);
      ws.onmessage = (ev) => {
        if (JSON.parse(String(ev.data)).id === 1) {
          clearTimeout(timer);
          resolveGc();
        }
      };
      ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    });
    return true;
  } finally {
    ws.close();
  }
}
async function admin(method, path, body) {
  const res = await fetch(`${opt.admin}${path}`, {
    method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
}

// ------------------------------------------------------------------ statistics
const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : NaN);
const summary = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return { count: s.length, p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
};

// ------------------------------------------------------------------ (a) + (b) one room of N
async function roomPhase() {
  const room = `bench-room-${process.pid}`;
  await admin('POST', '/rooms', { name: room, owner: 'p1', subject: 'benchmark' });
  await sleep(2000);
  const collected = await collectGarbageInAs();
  if (!collected) progress('(b) no garbage collection in the AS (no inspector at --inspect, or no WebSocket): the heap figures are noisy');
  const before = await asMetrics();
  progress(`(b) AS before: RSS ${(before.rss / 2 ** 20).toFixed(1)} MiB, heap used ${(before.heapUsed / 2 ** 20).toFixed(1)} MiB`);

  // a message's token -> { sentAt, arrived, done }
  const inFlight = new Map();
  let onComplete;
  const arrived = (text) => {
    const id = /bench#(\d+)#/.exec(text)?.[1];
    const m = id && inFlight.get(id);
    if (!m) return;
    if (++m.arrived === PARTICIPANTS - 1) {
      inFlight.delete(id);
      m.done(nowMs() - m.sentAt);
    }
  };
  progress(`(a) ${PARTICIPANTS} participants join ${room} at ${JOIN_RATE}/s`);
  const joins = [];
  for (let i = 1; i <= PARTICIPANTS; i++) {
    // settled here so that a refused join does not go unhandled while the others are sent
    joins.push(joinRoom(`p${i}`, room, arrived).then((m) => ({ m }), (err) => ({ err })));
    if (i % 50 === 0) progress(`  ${i} of ${PARTICIPANTS} INVITEs sent`);
    await sleep(1000 / JOIN_RATE);
  }
  const settled = await Promise.all(joins);
  const refused = settled.filter((j) => j.err);
  const members = settled.filter((j) => j.m).map((j) => j.m);
  if (refused.length) {
    await Promise.all(members.map((m) => m.leave().catch(() => 0)));
    throw new Error(`${refused.length} of ${PARTICIPANTS} joins failed, the first: ${refused[0].err.message}`);
  }
  progress(`(a) all ${members.length} joined`);
  await sleep(3000);
  if (collected) await collectGarbageInAs();
  const after = await asMetrics();
  progress(`(b) AS after: RSS ${(after.rss / 2 ** 20).toFixed(1)} MiB, heap used ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB`);
  const memory = { participants: PARTICIPANTS, garbageCollected: collected, before, after,
    rssPerParticipant: (after.rss - before.rss) / PARTICIPANTS, heapPerParticipant: (after.heapUsed - before.heapUsed) / PARTICIPANTS };

  let msgSeq = 0;
  const pad = 'x'.repeat(Math.max(0, MSG_BYTES - 24));
  const post = (sender) => new Promise((done) => {
    const id = String(++msgSeq);
    inFlight.set(id, { sentAt: nowMs(), arrived: 0, done });
    sender.send(Buffer.from(`bench#${id}#${pad}`.slice(0, Math.max(MSG_BYTES, id.length + 7))));
  });
  progress(`(a) latency: ${LATENCY_MESSAGES} messages one at a time, senders in turn`);
  const latencies = [];
  for (let k = 0; k < LATENCY_MESSAGES; k++) {
    const ms = await Promise.race([post(members[k % members.length]), sleep(10_000).then(() => undefined)]);
    if (ms === undefined) throw new Error(`message ${k + 1} did not reach all ${PARTICIPANTS - 1} others in 10 s`);
    latencies.push(ms);
    if ((k + 1) % 50 === 0) progress(`  ${k + 1} of ${LATENCY_MESSAGES}`);
  }
  const latency = summary(latencies);
  progress(`    to all others: p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms, max ${latency.max.toFixed(2)} ms`);

  progress(`(a) throughput: every participant sending in turn, window ${WINDOW}, ${DURATION} s`);
  let completed = 0;
  let running = true;
  let turn = 0;
  const throughputLatencies = [];
  const lane = async () => {
    while (running) {
      const ms = await Promise.race([post(members[turn++ % members.length]), sleep(10_000).then(() => undefined)]);
      if (ms === undefined) throw new Error(`a message did not reach all ${PARTICIPANTS - 1} others in 10 s`);
      completed++;
      throughputLatencies.push(ms);
    }
  };
  const start = nowMs();
  const cpuAtStart = process.cpuUsage();
  let laneError;
  const lanes = Array.from({ length: WINDOW }, () => lane().catch((err) => {
    running = false;
    laneError = err;
  }));
  await sleep(DURATION * 1000);
  const countAtEnd = completed;
  const seconds = (nowMs() - start) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  running = false;
  await Promise.all(lanes);
  if (laneError) throw laneError;
  const throughput = { seconds, messages: countAtEnd, msgPerSec: countAtEnd / seconds, deliveriesPerSec: (countAtEnd * (PARTICIPANTS - 1)) / seconds,
    latencyUnderLoad: summary(throughputLatencies),
    // near 1: this one process (every participant) was the limit, not the AS
    generatorCpu: (cpu.user + cpu.system) / 1e6 / seconds };
  progress(`    ${throughput.msgPerSec.toFixed(1)} messages/s into the room, ${throughput.deliveriesPerSec.toFixed(0)} deliveries/s`);
  const errors = {};
  for (const m of members) for (const [code, n] of m.msrp.codes) if (code !== 200) errors[code] = (errors[code] ?? 0) + n;

  progress('(a) everyone leaves (BYE)');
  const byes = await Promise.all(members.map((m) => m.leave().catch(() => 0)));
  await admin('DELETE', `/rooms/${room}`).catch((err) => progress(`  ${err.message}`));
  return { room: { participants: PARTICIPANTS, joinMs: summary(members.map((m) => m.setupMs)), latency, throughput, msrpErrors: errors,
    byesOk: byes.filter((s) => s === 200).length }, memory };
}

// ------------------------------------------------------------------ (c) 3-party set-ups
async function setupPhase() {
  progress(`(c) 3-party conferences: room through the admin API, 3 joins, 3 BYEs; ${CONCURRENCY} at a time for ${DURATION} s`);
  let done = 0;
  let failed = 0;
  let n = 0;
  const setupMs = [];
  const rooms = [];
  let running = true;
  const slot = async (s) => {
    while (running) {
      const room = `bench3-${process.pid}-${++n}`;
      const started = nowMs();
      try {
        await admin('POST', '/rooms', { name: room, owner: `p${3 * s + 1}` });
        rooms.push(room);
        const three = await Promise.all([1, 2, 3].map((k) => joinRoom(`p${3 * s + k}`, room, () => undefined)));
        setupMs.push(nowMs() - started);
        done++;
        await Promise.all(three.map((p) => p.leave()));
      } catch (err) {
        failed++;
        if (failed <= 5) progress(`  ${room}: ${err.message}`);
      }
    }
  };
  const start = nowMs();
  const slots = Array.from({ length: CONCURRENCY }, (_, s) => slot(s));
  await sleep(DURATION * 1000);
  const countAtEnd = done;
  const seconds = (nowMs() - start) / 1000;
  running = false;
  await Promise.all(slots);
  progress(`    ${countAtEnd} set up in ${seconds.toFixed(1)} s, ${failed} failed; removing the ${rooms.length} rooms`);
  for (const room of rooms) await admin('DELETE', `/rooms/${room}`).catch(() => undefined);
  return { concurrency: CONCURRENCY, seconds, conferences: countAtEnd, failed, perSec: countAtEnd / seconds, setupMs: summary(setupMs) };
}

// ------------------------------------------------------------------ (c) ad-hoc 3-party set-ups
// The invitees' MSRP side: the focus's switch connects here (it is active toward an invitee) and
// binds with a bodiless SEND whose To-Path names the invitee's session.
const invitedSessions = new Map();
const inviteeMsrp = createServer((socket) => {
  socket.on('error', () => undefined);
  wireMsrp(socket, (_text, head) => {
    const id = /\/([^/;]+);tcp$/.exec(headerValue(head, 'To-Path').split(' ').at(-1))?.[1];
    const waiter = id && invitedSessions.get(id);
    if (waiter) {
      invitedSessions.delete(id);
      waiter();
    }
  });
});
let inviteeMsrpPort;

/** Registers `user` at the core with this script's socket as its contact; its INVITEs from the focus are answered 200. */
async function registerInvitee(user, onBound) {
  const res = await transaction('REGISTER', `sip:${DOMAIN}`, [['Max-Forwards', '70'], ['From', `<sip:${user}@${DOMAIN}>;tag=${token('r')}`],
    ['To', `<sip:${user}@${DOMAIN}>`], ['Call-ID', token('reg')], ['CSeq', '1 REGISTER'], ['Contact', `<sip:${user}@127.0.0.1:${SIP_PORT}>`], ['Expires', '600']]);
  if (res.status !== 200) throw new Error(`REGISTER ${user}: ${res.status} ${res.reason}`);
  const answered = new Map();
  invitees.set(user, (req, rinfo) => {
    // a retransmitted INVITE gets the same 200 again
    const again = answered.get(req.callId);
    if (again) return sip.send(again, rinfo.port, rinfo.address);
    const id = token('inv');
    const localTag = token('t');
    const sdp = ['v=0', `o=${user} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=message ${inviteeMsrpPort} TCP/MSRP *`,
      'a=accept-types:message/cpim text/plain', 'a=accept-wrapped-types:*', `a=path:msrp://127.0.0.1:${inviteeMsrpPort}/${id};tcp`, 'a=setup:passive', ''].join('\r\n');
    const focusContact = /<([^>]+)>/.exec(req.headers.get('Contact') ?? '')?.[1];
    const routes = req.headers.getAll('Record-Route');
    const to = `${req.headers.get('To')};tag=${localTag}`;
    invitedSessions.set(id, () => onBound({
      user,
      // the invitee's BYE: in the dialog the focus's INVITE set up (route set from its Record-Route)
      leave: async () => (await transaction('BYE', focusContact, [...routes.map((r) => ['Route', r]), ['Max-Forwards', '70'],
        ['From', to], ['To', req.headers.get('From')], ['Call-ID', req.callId], ['CSeq', '1 BYE']])).status,
    }));
    const ok = buildResponse({ status: 200, headers: [...replyHeaders(req, { toTag: localTag, recordRoute: true }),
      ['Contact', `<sip:${user}@127.0.0.1:${SIP_PORT}>`], ['Content-Type', 'application/sdp']], body: sdp });
    answered.set(req.callId, ok);
    setTimeout(() => answered.delete(req.callId), 32_000).unref();
    sip.send(ok, rinfo.port, rinfo.address);
  });
}

/** The creator: INVITE to the factory with its SDP offer and a recipient list naming the two invitees (RFC 5366). */
async function createAdhoc(user, inviteeUsers) {
  const callId = token('ca');
  const fromTag = token('t');
  const localPath = `msrp://127.0.0.1:40000/${callId};tcp`;
  const body = ['--b0undary', 'Content-Type: application/sdp', '', 'v=0', `o=${user} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
    'm=message 40000 TCP/MSRP *', 'a=accept-types:message/cpim text/plain', `a=path:${localPath}`, 'a=setup:active', '',
    '--b0undary', 'Content-Type: application/resource-lists+xml', 'Content-Disposition: recipient-list', '',
    '<?xml version="1.0" encoding="UTF-8"?>', '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>',
    ...inviteeUsers.map((u) => `<entry uri="sip:${u}@${DOMAIN}"/>`), '</list></resource-lists>', '--b0undary--', ''].join('\r\n');
  const factory = `sip:${FACTORY_USER}@${DOMAIN}`;
  const from = `<sip:${user}@${DOMAIN}>;tag=${fromTag}`;
  const res = await transaction('INVITE', factory, [['Max-Forwards', '70'], ['From', from], ['To', `<${factory}>`], ['Call-ID', callId],
    ['CSeq', '1 INVITE'], ['Contact', `<sip:${user}@127.0.0.1:${SIP_PORT}>`], ['Require', 'recipient-list-invite'],
    ['Content-Type', 'multipart/mixed;boundary=b0undary']], body);
  if (res.status !== 200) throw new Error(`${user} creating an ad-hoc conference: ${res.status} ${res.reason} ${res.headers.get('Warning') ?? ''}`);
  const contact = /<([^>]+)>/.exec(res.headers.get('Contact') ?? '')?.[1];
  const to = res.headers.get('To');
  const asPath = parseMsrpMedia(res.body)[0]?.path;
  if (!contact || !to || !asPath?.length) throw new Error(`${user}: the factory's 200 without Contact, To or MSRP path`);
  sip.send(buildRequest({ method: 'ACK', uri: contact, headers: [['Via', `SIP/2.0/UDP 127.0.0.1:${SIP_PORT};branch=${token('z9hG4bK')};rport`],
    ['Max-Forwards', '70'], ['From', from], ['To', to], ['Call-ID', callId], ['CSeq', '1 ACK']] }), Number(corePort), coreHost);
  const asUrl = /^msrps?:\/\/([^:/;]+):(\d+)/.exec(asPath[0]);
  const msrp = await msrpConnection(asUrl[1], Number(asUrl[2]), () => undefined);
  const bound = await msrp.request(sendRequest(asPath.join(' '), localPath));
  if (bound.code !== 200) throw new Error(`${user}: binding SEND answered ${bound.code}`);
  return {
    async leave() {
      const bye = await transaction('BYE', contact, [['Max-Forwards', '70'], ['From', from], ['To', to], ['Call-ID', callId], ['CSeq', '2 BYE']]);
      msrp.socket.destroy();
      return bye.status;
    },
  };
}

async function adhocPhase() {
  await new Promise((r) => inviteeMsrp.listen(0, '127.0.0.1', r));
  inviteeMsrpPort = inviteeMsrp.address().port;
  // each slot's invitees, registered once; a slot runs one conference at a time, so one waiter per user
  const boundWaiters = new Map();
  for (let s = 0; s < CONCURRENCY; s++)
    for (const u of [`p${3 * s + 2}`, `p${3 * s + 3}`]) await registerInvitee(u, (leg) => boundWaiters.get(u)?.(leg));
  progress(`(c) ad-hoc 3-party conferences: INVITE to the factory naming 2 registered users, the focus invites both; ${CONCURRENCY} at a time for ${DURATION} s`);
  let done = 0;
  let failed = 0;
  const setupMs = [];
  let running = true;
  const slot = async (s) => {
    const two = [`p${3 * s + 2}`, `p${3 * s + 3}`];
    while (running) {
      const started = nowMs();
      const legs = two.map((u) => new Promise((resolveLeg, reject) => {
        const timer = setTimeout(() => {
          boundWaiters.delete(u);
          reject(new Error(`the focus's INVITE to ${u} was not answered and bound in 10 s`));
        }, 10_000);
        boundWaiters.set(u, (leg) => {
          clearTimeout(timer);
          boundWaiters.delete(u);
          resolveLeg(leg);
        });
      }));
      const creating = createAdhoc(`p${3 * s + 1}`, two);
      const [creator, ...invited] = await Promise.allSettled([creating, ...legs]);
      const parts = [creator, ...invited].filter((r) => r.status === 'fulfilled').map((r) => r.value);
      if (parts.length === 3) {
        setupMs.push(nowMs() - started);
        done++;
      } else {
        failed++;
        const why = [creator, ...invited].find((r) => r.status === 'rejected').reason;
        if (failed <= 5) progress(`  ad-hoc set-up failed: ${why.message}`);
      }
      await Promise.all(parts.map((p) => p.leave().catch(() => 0)));
    }
  };
  const start = nowMs();
  const slots = Array.from({ length: CONCURRENCY }, (_, s) => slot(s));
  await sleep(DURATION * 1000);
  const countAtEnd = done;
  const seconds = (nowMs() - start) / 1000;
  running = false;
  await Promise.all(slots);
  inviteeMsrp.close();
  progress(`    ${countAtEnd} set up in ${seconds.toFixed(1)} s, ${failed} failed`);
  return { concurrency: CONCURRENCY, seconds, conferences: countAtEnd, failed, perSec: countAtEnd / seconds, setupMs: summary(setupMs) };
}

// ------------------------------------------------------------------ run
function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padStart(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`, ...rows.map(line)].join('\n');
}
const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');

await new Promise((r) => sip.bind(SIP_PORT, '127.0.0.1', r));
const loadBefore = loadavg();
const results = {};
try {
  progress(`machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  for (const phase of ONLY) {
    if (phase === 'room') Object.assign(results, await roomPhase());
    else if (phase === 'setup') results.setup = await setupPhase();
    else if (phase === 'adhoc') results.adhoc = await adhocPhase();
    else throw new Error(`unknown phase ${phase} (room, setup, adhoc)`);
  }
} finally {
  sip.close();
}
const loadAfter = loadavg();
const knobs = { PARTICIPANTS, LATENCY_MESSAGES, DURATION, MSG_BYTES, WINDOW, JOIN_RATE, CONCURRENCY };
writeFileSync(join(OUT, 'results.json'), JSON.stringify({ knobs, loadBefore, loadAfter, results }, null, 2));

console.log('');
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
const ms = (x) => fmt(x, 2);
if (results.room) {
  const r = results.room;
  console.log(`\n(a) one chat room, ${r.participants} participants joined through Kamailio, ${MSG_BYTES}-byte text messages (the focus wraps each in CPIM)`);
  console.log(table(['measure', 'p50 ms', 'p99 ms', 'max ms', 'count'], [
    ['join (INVITE to bound MSRP)', ms(r.joinMs.p50), ms(r.joinMs.p99), ms(r.joinMs.max), r.joinMs.count],
    ['one SEND to all N-1 others, alone', ms(r.latency.p50), ms(r.latency.p99), ms(r.latency.max), r.latency.count],
    [`same, window ${WINDOW} in turn`, ms(r.throughput.latencyUnderLoad.p50), ms(r.throughput.latencyUnderLoad.p99), ms(r.throughput.latencyUnderLoad.max), r.throughput.latencyUnderLoad.count],
  ]));
  console.log(table(['messages/s into the room', 'deliveries/s', 'seconds', 'generator CPU', 'non-200 MSRP responses', 'BYEs answered 200'],
    [[fmt(r.throughput.msgPerSec, 1), fmt(r.throughput.deliveriesPerSec), fmt(r.throughput.seconds, 1), `${fmt(r.throughput.generatorCpu * 100)} %`,
      JSON.stringify(r.msrpErrors), `${r.byesOk} / ${r.participants}`]]));
}
if (results.memory) {
  const m = results.memory;
  const mib = (b) => fmt(b / 2 ** 20, 1);
  console.log(`\n(b) memory of the AS per participant, ${m.participants} in one room, ${m.garbageCollected ? 'read after a full garbage collection in the AS' : 'NO forced garbage collection (noisy)'}`);
  console.log(table(['', 'before MiB', 'after MiB', 'per participant'], [
    ['RSS', mib(m.before.rss), mib(m.after.rss), `${fmt(m.rssPerParticipant / 1024, 1)} KB`],
    ['heap used', mib(m.before.heapUsed), mib(m.after.heapUsed), `${fmt(m.heapPerParticipant / 1024, 1)} KB`],
  ]));
}
if (results.setup) {
  const s = results.setup;
  console.log(`\n(c) 3-party conference set-ups (admin API room + 3 joins; then 3 BYEs), ${s.concurrency} at a time`);
  console.log(table(['conferences/s', 'set up', 'failed', 'set-up p50 ms', 'p99 ms', 'max ms'],
    [[fmt(s.perSec, 1), s.conferences, s.failed, ms(s.setupMs.p50), ms(s.setupMs.p99), ms(s.setupMs.max)]]));
}
if (results.adhoc) {
  const s = results.adhoc;
  console.log(`\n(c) ad-hoc 3-party conference set-ups (INVITE to the factory with a recipient list of 2 registered users, the focus dials out to both; then 3 BYEs), ${s.concurrency} at a time`);
  console.log(table(['conferences/s', 'set up', 'failed', 'set-up p50 ms', 'p99 ms', 'max ms'],
    [[fmt(s.perSec, 1), s.conferences, s.failed, ms(s.setupMs.p50), ms(s.setupMs.p99), ms(s.setupMs.max)]]));
}
console.log(`\nJSON: ${JSON.stringify({ knobs, results })}`);
console.log(`raw: ${OUT}/results.json`);
process.exit(0);
