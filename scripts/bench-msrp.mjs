#!/usr/bin/env node
// IM sessions benchmark (issue 14), against a stack in benchmark mode and Kamailio's msrp relay
// (scripts/bench-msrp.sh starts both and runs this):
//
//  (a) setup: session set-ups per second through Kamailio and the AS, INVITE (MSRP offer) ->
//      200 (its SDP rewritten to the AS's MSRP URI by the core) -> ACK -> BYE, sipp at each
//      rate of SETUP_RATES; the AS connects to the callee's MSRP path (this script's answerer)
//      and binds it, as in a real session;
//  (b) send: SESSIONS sessions set up through the core and the AS, one MSRP client per
//      session (written with the AS's own format module) sending SENDs of MSG_BYTES through
//      the AS's switch to this script's answerer; then the same traffic (same clients, same
//      size, same window) through Kamailio's msrp relay (RFC 4976, the peer we did not write)
//      to the same answerer, in the same run. The figure is the ratio switch / relay;
//  (c) memory: RSS and heap of the AS (its /metrics) before and after IDLE_SESSIONS idle open
//      sessions (SIP dialog up, both MSRP legs bound), divided by their number.
//
// Flow control is end to end in both (b) cases: a client has at most WINDOW messages that the
// answerer has not received yet (a relay answers 200 before it forwards, so its 200s say
// nothing about delivery).
//
//   node scripts/bench-msrp.mjs --out DIR [--core 127.0.0.1:5290] [--metrics URL] ...   (--help)
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MsrpFramer } from '../build/as/src/msrp/framer.js';
import { headerValue, serializeMessage } from '../build/as/src/msrp/message.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    out: { type: 'string', default: '/tmp/bench-msrp' },
    core: { type: 'string', default: '127.0.0.1:5290' },
    metrics: { type: 'string', default: 'http://127.0.0.1:5292/metrics' },
    'as-msrp': { type: 'string', default: '127.0.0.1:5288' },
    relay: { type: 'string', default: '127.0.0.1:5287' },
    'answerer-port': { type: 'string', default: '5286' },
    inspect: { type: 'string', default: '127.0.0.1:5289' },
    help: { type: 'boolean', short: 'h' },
  },
});
const env = (name, dflt) => process.env[name] ?? dflt;
const ONLY = env('ONLY', 'setup,memory,send').split(',').map((s) => s.trim()).filter(Boolean);
const SETUP_RATES = env('SETUP_RATES', '50 100 200').split(/\s+/).filter(Boolean).map(Number);
const SETUP_HOLD_MS = Number(env('SETUP_HOLD_MS', 1000));
const DURATION = Number(env('DURATION', 10));
const WARMUP = Number(env('WARMUP', 2));
const USERS = Number(env('USERS', 1000));
const SESSIONS = Number(env('SESSIONS', 100));
const MSG_BYTES = Number(env('MSG_BYTES', 1024));
const WINDOW = Number(env('WINDOW', 8));
const IDLE_SESSIONS = Number(env('IDLE_SESSIONS', 10000));
const OPEN_RATE = Number(env('OPEN_RATE', 200));
if (opt.help) {
  console.log(`usage: node --experimental-websocket scripts/bench-msrp.mjs [--out DIR] [--core host:port] [--metrics URL] [--as-msrp host:port]
         [--relay host:port] [--answerer-port N] [--inspect host:port]
  (normally run by scripts/bench-msrp.sh, which starts the stack and the relay first; --inspect is the AS's
  inspector, used only to collect garbage before each memory reading of (c))
env knobs:
  ONLY           phases to run, in this order: setup,memory,send (all)
  SETUP_RATES    session set-ups per second offered in (a), e.g. "50 100 200"
  SETUP_HOLD_MS  time between ACK and BYE in (a) (1000; with 0 the BYE overtakes the AS's connection to the callee)
  DURATION       seconds per measured run (10); WARMUP seconds before (b) measures (2)
  USERS          registered callees b1..bN (1000; the wrapper provisions them)
  SESSIONS       sessions (and MSRP clients) carrying traffic in (b) (100)
  MSG_BYTES      body size of each SEND in (b) (1024)
  WINDOW         messages in flight per client in (b), counted until the answerer has them (8)
  IDLE_SESSIONS  idle open sessions measured in (c) (10000)
  OPEN_RATE      INVITEs per second when opening the sessions of (b) and (c) (200)`);
  process.exit(0);
}
const OUT = resolve(opt.out);
mkdirSync(join(OUT, 'runs'), { recursive: true });
const [asMsrpHost, asMsrpPort] = opt['as-msrp'].split(':');
const [relayHost, relayPort] = opt.relay.split(':');
const ANSWERER_PORT = Number(opt['answerer-port']);
/** The port the callers' SDP names; nobody listens there (the offerer is the active side). */
const CALLER_MSRP_PORT = 5285;
const SC = join(ROOT, 'scripts/bench/scenarios');
const SIPP_COMMON = ['-i', '127.0.0.1', '-t', 'u1', '-nostdin', '-buff_size', '4194304', '-max_recv_loops', '10000', '-max_sched_loops', '10000',
  '-trace_err', '-trace_stat', '-stf', 'stat.csv', '-fd', '1'];

const t0 = Date.now();
const progress = (msg) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, ok, ms) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

// ------------------------------------------------------------------ sipp runs
const children = new Set();
/** Starts sipp in OUT/runs/<name>; resolves with its exit code. */
function sipp(name, args) {
  const dir = join(OUT, 'runs', name);
  mkdirSync(dir, { recursive: true });
  const child = spawn('sipp', [opt.core, ...args, ...SIPP_COMMON], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const output = [];
  child.stdout.on('data', (d) => output.push(d));
  child.stderr.on('data', (d) => output.push(d));
  const done = new Promise((resolveExit) => child.on('exit', (code) => {
    children.delete(child);
    writeFileSync(join(dir, 'sipp.out'), Buffer.concat(output));
    resolveExit(code ?? 1);
  }));
  return { dir, child, done };
}
function stopChildren() {
  for (const c of children) c.kill('SIGTERM');
}
process.on('exit', stopChildren);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

function sippStats(dir) {
  return new Promise((resolveStats) => {
    const p = spawn('node', [join(ROOT, 'scripts/bench/sipp-stats.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = [];
    p.stdout.on('data', (d) => out.push(d));
    p.on('exit', () => {
      try {
        resolveStats(JSON.parse(Buffer.concat(out).toString()));
      } catch {
        resolveStats(undefined);
      }
    });
  });
}

/** The sessions a held caller has logged: call number, sipp pid, the AS URI of its answer. */
function heldSessions(dir) {
  const file = readdirSync(dir).find((f) => f.endsWith('_logs.log'));
  if (!file) return [];
  return readFileSync(join(dir, file), 'utf8').split('\n').map((l) => /^SESSION (\d+) (\d+) (msrps?:\/\/\S+)/.exec(l)).filter(Boolean)
    .map((m) => ({ callNumber: m[1], pid: m[2], asUri: m[3], callerUri: `msrp://127.0.0.1:${CALLER_MSRP_PORT}/a${m[1]}x${m[2]};tcp` }));
}

let callerCsvRows = 0;
/** Injection file a<i>;b<k> with `rows` rows (rewritten only when a longer one is needed). */
function callerCsv(rows) {
  const file = join(OUT, 'callers.csv');
  if (rows > callerCsvRows) {
    const lines = ['SEQUENTIAL'];
    for (let i = 1; i <= rows; i++) lines.push(`a${i};b${((i - 1) % USERS) + 1}`);
    writeFileSync(file, lines.join('\n') + '\n');
    callerCsvRows = rows;
  }
  return file;
}

// ------------------------------------------------------------------ AS metrics
async function asMetrics() {
  const text = await (await fetch(opt.metrics)).text();
  const value = (name) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
  return {
    rss: value('process_resident_memory_bytes'),
    heapUsed: value('nodejs_heap_size_used_bytes'),
    msrpSessions: value('ims_as_msrp_sessions_open'),
    imSessions: value('ims_as_im_sessions_open'),
    msrpConnections: value('ims_as_msrp_connections_open'),
  };
}

/**
 * A full garbage collection in the AS through its inspector (the AS runs with --inspect on
 * loopback in the benchmark), so that the heap read after it is what the sessions retain.
 * False when there is no inspector or no WebSocket (Node 20 needs --experimental-websocket).
 */
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

// ------------------------------------------------------------------ the MSRP answerer
// Where every callee's a=path points, and where the relay forwards: answers each SEND with 200,
// counts bodiless SENDs (the AS binding its leg) and the benchmark's messages per client.
const answerer = { bindings: 0, messages: 0, bytes: 0, deliveredByClient: new Map(), onDelivered: undefined, errors: 0, sockets: new Set() };
const answererServer = createServer((socket) => {
  answerer.sockets.add(socket);
  socket.on('close', () => answerer.sockets.delete(socket));
  const framer = new MsrpFramer();
  let current;
  socket.on('data', (data) => {
    socket.cork();
    for (const ev of framer.push(data)) {
      if (ev.type === 'head') current = { head: ev.head, bytes: 0, hasBody: ev.hasBody };
      else if (ev.type === 'body' && current) current.bytes += ev.data.length;
      else if (ev.type === 'end' && current) {
        const { head } = current;
        if (head.kind === 'request' && head.method === 'SEND') {
          socket.write(serializeMessage({
            head: { kind: 'response', tid: head.tid, code: 200, comment: 'OK', headers: [
              { name: 'To-Path', value: headerValue(head, 'From-Path').split(' ')[0] },
              { name: 'From-Path', value: headerValue(head, 'To-Path').split(' ').at(-1) },
            ] },
            flag: '$',
          }));
          const client = /^c(\d+)m/.exec(headerValue(head, 'Message-ID') ?? '');
          if (!current.hasBody) answerer.bindings++;
          else if (client && ev.flag === '$') {
            answerer.messages++;
            answerer.bytes += current.bytes;
            const i = Number(client[1]);
            answerer.deliveredByClient.set(i, (answerer.deliveredByClient.get(i) ?? 0) + 1);
            answerer.onDelivered?.(i);
          }
        }
        current = undefined;
      } else if (ev.type === 'error') {
        answerer.errors++;
        socket.destroy();
      }
    }
    process.nextTick(() => socket.uncork());
  });
  socket.on('error', () => undefined);
});

// ------------------------------------------------------------------ MSRP clients
/** One participant's connection: collects response codes, answers nothing (no SEND comes to it). */
function msrpClient(host, port) {
  return new Promise((resolveClient, reject) => {
    const socket = connect({ host, port: Number(port) });
    const client = { socket, codes: new Map(), waiting: new Map(), closed: false };
    const framer = new MsrpFramer();
    socket.on('data', (data) => {
      for (const ev of framer.push(data)) {
        if (ev.type === 'head' && ev.head.kind === 'response') {
          client.codes.set(ev.head.code, (client.codes.get(ev.head.code) ?? 0) + 1);
          const w = client.waiting.get(ev.head.tid);
          if (w) {
            client.waiting.delete(ev.head.tid);
            w(ev.head);
          }
        }
      }
    });
    socket.on('close', () => (client.closed = true));
    socket.once('connect', () => {
      socket.on('error', () => undefined);
      resolveClient(client);
    });
    socket.once('error', reject);
  });
}
function request(client, msg, timeoutMs = 10_000) {
  return new Promise((resolveResponse, reject) => {
    const timer = setTimeout(() => {
      client.waiting.delete(msg.head.tid);
      reject(new Error(`no response to ${msg.head.method} ${msg.head.tid}`));
    }, timeoutMs);
    client.waiting.set(msg.head.tid, (head) => {
      clearTimeout(timer);
      resolveResponse(head);
    });
    client.socket.write(serializeMessage(msg));
  });
}
let tidSeq = 0;
const newTid = () => `bt${(++tidSeq).toString(36).padStart(6, '0')}`;
function sendMessage(toPath, fromPath, messageId, body) {
  return {
    head: { kind: 'request', tid: newTid(), method: 'SEND', headers: [
      { name: 'To-Path', value: toPath }, { name: 'From-Path', value: fromPath }, { name: 'Message-ID', value: messageId },
      ...(body ? [{ name: 'Byte-Range', value: `1-${body.length}/${body.length}` }, { name: 'Content-Type', value: 'text/plain' }] : []),
    ] },
    ...(body ? { body } : {}),
    flag: '$',
  };
}
async function connectAll(n, make) {
  const out = [];
  // a few at a time: a burst of thousands of SYNs overflows the listen backlog
  for (let i = 0; i < n; i += 100) out.push(...(await Promise.all(Array.from({ length: Math.min(100, n - i) }, (_, k) => make(i + k)))));
  return out;
}

// ------------------------------------------------------------------ sessions through the core
/** Opens n held sessions through the core and the AS; resolves when every caller has its answer. */
async function openHeldSessions(name, n) {
  const held = sipp(name, ['-sf', join(SC, 'msrp-caller-held.xml'), '-inf', callerCsv(n), '-set', 'msrp_port', String(CALLER_MSRP_PORT),
    '-p', '5161', '-cp', '5171', '-mp', '5180', '-r', String(OPEN_RATE), '-m', String(n), '-l', String(n), '-trace_logs']);
  let last = -1;
  await until(`${n} sessions answered`, async () => {
    const got = heldSessions(held.dir).length;
    if (got !== last && (got % 1000 === 0 || got === n)) progress(`  ${got} of ${n} sessions answered`);
    last = got;
    if (held.child.exitCode !== null) throw new Error(`sipp ended early (see ${held.dir}/sipp.out)`);
    return got >= n;
  }, 30_000 + (n / OPEN_RATE) * 3000);
  return { held, sessions: heldSessions(held.dir) };
}
/** Ends the sessions by dropping the callers' MSRP connections (the AS sends BYE both ways). */
async function endHeldSessions(held, clients) {
  for (const c of clients) c.socket.destroy();
  const code = await Promise.race([held.done, sleep(60_000 + clients.length * 20).then(() => 'timeout')]);
  if (code === 'timeout') {
    progress(`  the held caller had not seen every BYE after the wait; stopping it (${held.dir})`);
    held.child.kill('SIGTERM');
    await held.done;
  }
  await until('no MSRP session open in the AS', async () => (await asMetrics()).msrpSessions === 0, 30_000).catch((err) => progress(`  ${err.message}`));
}

// ------------------------------------------------------------------ (a) set-ups per second
async function setupPhase() {
  const rows = [];
  for (const rate of SETUP_RATES) {
    progress(`(a) session set-ups at ${rate}/s for ${DURATION} s`);
    const bindingsBefore = answerer.bindings;
    const run = sipp(`setup-${rate}`, ['-sf', join(SC, 'msrp-caller.xml'), '-inf', callerCsv(rate * DURATION), '-set', 'msrp_port', String(CALLER_MSRP_PORT),
      '-p', '5161', '-cp', '5171', '-mp', '5180', '-r', String(rate), '-m', String(rate * DURATION), '-l', String(rate * (6 + Math.ceil(SETUP_HOLD_MS / 1000))), '-d', String(SETUP_HOLD_MS),
      '-recv_timeout', '5000', '-trace_rtt', '-rtt_freq', '1']);
    await run.done;
    const s = await sippStats(run.dir);
    // every session the AS anchored binds the callee's leg with a bodiless SEND at the answerer
    // the last calls' hold is not set-up time: set-ups per second over the run less one hold
    const setupsPerSec = s ? s.ok / Math.max(s.elapsedS - SETUP_HOLD_MS / 1000, 1e-3) : NaN;
    rows.push({ rate, ...s, setupsPerSec, anchored: answerer.bindings - bindingsBefore });
    progress(`    ${JSON.stringify(rows.at(-1))}`);
    await sleep(6000); // tm's wait timer and the dialogs' ends drain before the next rate
    // what the AS still holds once every session has ended (both should be 0)
    const m = await asMetrics();
    Object.assign(rows.at(-1), { msrpSessionsLeft: m.msrpSessions, msrpConnectionsLeft: m.msrpConnections });
    progress(`    after the drain: ${m.msrpSessions} MSRP sessions and ${m.msrpConnections} MSRP connections open in the AS`);
  }
  return rows;
}

// ------------------------------------------------------------------ (b) SEND traffic
/** Drives `clients` (each with toPath/fromPath) for WARMUP + DURATION s; returns the measured rates. */
async function drive(label, clients) {
  const body = Buffer.alloc(MSG_BYTES, 'x');
  const sent = new Array(clients.length).fill(0);
  let running = true;
  const pump = (i) => {
    const c = clients[i];
    if (c.closed) return;
    c.socket.cork();
    while (running && sent[i] - (answerer.deliveredByClient.get(i) ?? 0) < WINDOW) {
      sent[i]++;
      c.socket.write(serializeMessage(sendMessage(c.toPath, c.fromPath, `c${i}m${sent[i]}`, body)));
    }
    process.nextTick(() => c.socket.uncork());
  };
  answerer.deliveredByClient.clear();
  answerer.onDelivered = pump;
  for (const c of clients) c.codes.clear();
  clients.forEach((_, i) => pump(i));
  await sleep(WARMUP * 1000);
  const start = { messages: answerer.messages, bytes: answerer.bytes, at: process.hrtime.bigint(), cpu: process.cpuUsage() };
  await sleep(DURATION * 1000);
  const seconds = Number(process.hrtime.bigint() - start.at) / 1e9;
  const messages = answerer.messages - start.messages;
  const bytes = answerer.bytes - start.bytes;
  const genCpu = process.cpuUsage(start.cpu);
  running = false;
  // in-flight messages arrive before the next case
  await until(`${label}: messages in flight delivered`, async () => clients.every((c, i) => c.closed || (answerer.deliveredByClient.get(i) ?? 0) >= sent[i]), 10_000)
    .catch((err) => progress(`  ${err.message}`));
  answerer.onDelivered = undefined;
  const codes = {};
  for (const c of clients) for (const [code, n] of c.codes) codes[code] = (codes[code] ?? 0) + n;
  const lost = sent.reduce((a, b) => a + b, 0) - [...answerer.deliveredByClient.values()].reduce((a, b) => a + b, 0);
  return {
    label, sessions: clients.length, seconds, messages, msgPerSec: messages / seconds, mbPerSec: bytes / seconds / 1e6,
    responses: codes, undelivered: lost, generatorCpu: (genCpu.user + genCpu.system) / 1e6 / seconds,
  };
}

async function sendPhase() {
  progress(`(b) opening ${SESSIONS} sessions through the core and the AS at ${OPEN_RATE}/s`);
  const bindingsBefore = answerer.bindings;
  const { held, sessions } = await openHeldSessions('send-sessions', SESSIONS);
  await until('the AS bound every answerer leg', () => answerer.bindings - bindingsBefore >= SESSIONS, 30_000);
  const viaSwitch = await connectAll(sessions.length, async (i) => Object.assign(await msrpClient(asMsrpHost, asMsrpPort), { toPath: sessions[i].asUri, fromPath: sessions[i].callerUri }));
  progress(`(b) ${SESSIONS} clients sending ${MSG_BYTES}-byte SENDs through the AS's switch, window ${WINDOW}, ${WARMUP} + ${DURATION} s`);
  const switchResult = await drive("AS's switch", viaSwitch);
  progress(`    ${JSON.stringify(switchResult)}`);
  progress('(b) ending those sessions (MSRP connections dropped: the AS sends BYE both ways)');
  await endHeldSessions(held, viaSwitch);

  progress(`(b) ${SESSIONS} clients AUTH with Kamailio's msrp relay`);
  const viaRelay = await connectAll(SESSIONS, async (i) => {
    const c = await msrpClient(relayHost, relayPort);
    const fromPath = `msrp://127.0.0.1:${CALLER_MSRP_PORT}/r${i}client;tcp`;
    const auth = { head: { kind: 'request', tid: newTid(), method: 'AUTH', headers: [
      { name: 'To-Path', value: `msrp://${relayHost}:${relayPort};tcp` }, { name: 'From-Path', value: fromPath }] }, flag: '$' };
    const response = await request(c, auth);
    const usePath = headerValue(response, 'Use-Path');
    if (response.code !== 200 || !usePath) throw new Error(`AUTH with the relay: ${response.code}`);
    return Object.assign(c, { fromPath, toPath: `${usePath} msrp://127.0.0.1:${ANSWERER_PORT}/r${i}answerer;tcp` });
  });
  progress(`(b) the same traffic through Kamailio's msrp relay`);
  const relayResult = await drive("Kamailio's msrp relay", viaRelay);
  progress(`    ${JSON.stringify(relayResult)}`);
  for (const c of viaRelay) c.socket.destroy();
  return [switchResult, relayResult];
}

// ------------------------------------------------------------------ (c) memory per idle session
async function memoryPhase() {
  await sleep(3000);
  const collected = await collectGarbageInAs();
  if (!collected) progress('(c) no garbage collection in the AS (no inspector at --inspect, or no WebSocket): the heap figures are noisy');
  const before = await asMetrics();
  progress(`(c) AS before: RSS ${(before.rss / 2 ** 20).toFixed(1)} MiB, heap used ${(before.heapUsed / 2 ** 20).toFixed(1)} MiB, ${before.msrpSessions} MSRP sessions open`);
  progress(`(c) opening ${IDLE_SESSIONS} sessions at ${OPEN_RATE}/s`);
  const bindingsBefore = answerer.bindings;
  const { held, sessions } = await openHeldSessions('idle-sessions', IDLE_SESSIONS);
  await until('the AS bound every answerer leg', () => answerer.bindings - bindingsBefore >= IDLE_SESSIONS, 60_000);
  progress(`(c) ${IDLE_SESSIONS} callers connect and bind their leg (bodiless SEND)`);
  const clients = await connectAll(sessions.length, async (i) => {
    const c = await msrpClient(asMsrpHost, asMsrpPort);
    const response = await request(c, sendMessage(sessions[i].asUri, sessions[i].callerUri, `bind${i}`));
    if (response.code !== 200) throw new Error(`binding SEND of session ${i}: ${response.code}`);
    return c;
  });
  await sleep(5000);
  if (collected) await collectGarbageInAs();
  const after = await asMetrics();
  progress(`(c) AS after: RSS ${(after.rss / 2 ** 20).toFixed(1)} MiB, heap used ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB, ${after.msrpSessions} MSRP sessions, ${after.msrpConnections} connections`);
  progress('(c) ending them');
  await endHeldSessions(held, clients);
  return { sessions: IDLE_SESSIONS, garbageCollected: collected, before, after, rssPerSession: (after.rss - before.rss) / IDLE_SESSIONS, heapPerSession: (after.heapUsed - before.heapUsed) / IDLE_SESSIONS };
}

// ------------------------------------------------------------------ run
function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padStart(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`, ...rows.map(line)].join('\n');
}
const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-');

await new Promise((r) => answererServer.listen(ANSWERER_PORT, '127.0.0.1', r));
const loadBefore = loadavg();
const results = {};
try {
  if (!existsSync(join(ROOT, 'build/as/src/msrp/framer.js'))) throw new Error('build first: npx tsc -p tsconfig.json');
  progress(`machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`);
  for (const phase of ONLY) {
    if (phase === 'setup') results.setup = await setupPhase();
    else if (phase === 'memory') results.memory = await memoryPhase();
    else if (phase === 'send') results.send = await sendPhase();
    else throw new Error(`unknown phase ${phase} (setup, memory, send)`);
  }
} finally {
  answererServer.close();
  // the AS may keep its connection to the answerer; it must not keep this process alive
  for (const socket of answerer.sockets) socket.destroy();
  stopChildren();
}
const loadAfter = loadavg();
writeFileSync(join(OUT, 'results.json'), JSON.stringify({ knobs: { SETUP_RATES, SETUP_HOLD_MS, DURATION, WARMUP, USERS, SESSIONS, MSG_BYTES, WINDOW, IDLE_SESSIONS, OPEN_RATE }, loadBefore, loadAfter, results }, null, 2));

console.log('');
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
if (results.setup) {
  console.log(`\n(a) session set-ups through Kamailio and the AS (INVITE -> 200 -> ACK -> ${SETUP_HOLD_MS} ms -> BYE), ${DURATION} s per rate; achieved = successful set-ups / (run time - one hold); setup ms = INVITE to 200 (4 ms sipp tick); left open = MSRP sessions / connections the AS still had 6 s after the run`);
  console.log(table(['offered/s', 'achieved/s', 'ok', 'failed', 'retrans', 'setup p50 / p99 / max ms', 'callee legs bound by the AS', 'left open'],
    results.setup.map((r) => [r.rate, fmt(r.setupsPerSec), r.ok, r.failed, r.retrans, `${r.p50ms} / ${r.p99ms} / ${r.maxMs}`, r.anchored, `${r.msrpSessionsLeft} / ${r.msrpConnectionsLeft}`])));
}
if (results.send) {
  const [sw, relay] = results.send;
  console.log(`\n(b) MSRP SEND through one intermediary, ${SESSIONS} sessions, ${MSG_BYTES}-byte bodies, window ${WINDOW}, ${DURATION} s measured after ${WARMUP} s`);
  console.log(table(['path', 'messages/s', 'MB/s', 'responses to clients', 'undelivered', 'generator CPU'],
    results.send.map((r) => [r.label, fmt(r.msgPerSec), fmt(r.mbPerSec, 2), JSON.stringify(r.responses), r.undelivered, `${fmt(r.generatorCpu * 100)} %`])));
  console.log(`ratio AS's switch / Kamailio's msrp relay (messages/s): ${fmt(sw.msgPerSec / relay.msgPerSec, 2)}`);
}
if (results.memory) {
  const m = results.memory;
  const mib = (b) => fmt(b / 2 ** 20, 1);
  console.log(`\n(c) memory of the AS per idle open session (SIP dialog up, both MSRP legs bound), ${m.sessions} sessions, ${m.garbageCollected ? 'read after a full garbage collection in the AS' : 'NO forced garbage collection (noisy)'}`);
  console.log(table(['', 'before', 'after', 'per session'], [
    ['RSS MiB', mib(m.before.rss), mib(m.after.rss), `${fmt(m.rssPerSession / 1024, 1)} KB`],
    ['heap used MiB', mib(m.before.heapUsed), mib(m.after.heapUsed), `${fmt(m.heapPerSession / 1024, 1)} KB`],
  ]));
}
console.log(`\nraw: ${OUT}/results.json, sipp runs in ${OUT}/runs/`);
process.exit(0);
