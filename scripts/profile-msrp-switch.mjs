#!/usr/bin/env node
// The MSRP switch's SEND path in one process, for profiling (node --cpu-prof) and a quick
// before/after figure: SESSIONS sessions through an MsrpSwitch on loopback, each with an
// offerer client sending MSG_BYTES SENDs (WINDOW unanswered at most, end to end: a message
// counts when the answerer got it) and an answerer that answers 200. No Kamailio, no SIP.
// Prints msg/s and the process's CPU time per message (driver included).
// The driver shares the process with the switch, so its own cost is in every figure alike.
//
//   npx tsc -p tsconfig.json && node [--cpu-prof --cpu-prof-dir DIR] scripts/profile-msrp-switch.mjs
//   SESSIONS=20 MSG_BYTES=1024 WINDOW=8 DURATION=8 WARMUP=2 [BUILD=dir of another build]
import { connect, createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// BUILD: another compiled tree (an older build) to compare with, same driver
const BUILD = resolve(process.env.BUILD ?? resolve(dirname(fileURLToPath(import.meta.url)), '../build'));
const load = (path) => import(pathToFileURL(resolve(BUILD, path)).href);
const { MsrpFramer } = await load('as/src/msrp/framer.js');
const { headerValue, serializeMessage } = await load('as/src/msrp/message.js');
const { MsrpSwitch } = await load('as/src/msrp/switch.js');
const { createLogger } = await load('as/src/log/logger.js');

const env = (name, dflt) => Number(process.env[name] ?? dflt);
const SESSIONS = env('SESSIONS', 20);
const MSG_BYTES = env('MSG_BYTES', 1024);
const WINDOW = env('WINDOW', 8);
const DURATION = env('DURATION', 8);
const WARMUP = env('WARMUP', 2);

const sw = new MsrpSwitch({ host: '127.0.0.1', port: 0, maxMessageBytes: 1 << 20, idleTimeoutMs: 0, log: createLogger('silent') });
await sw.start();

// the answerer: 200 to every SEND, counts the benchmark's messages per session
const delivered = new Map();
const answerer = createServer((socket) => {
  const framer = new MsrpFramer();
  let head;
  socket.on('data', (data) => {
    for (const ev of framer.push(data)) {
      if (ev.type === 'head') head = ev.head;
      else if (ev.type === 'end' && head?.kind === 'request' && head.method === 'SEND') {
        const res = { kind: 'response', tid: head.tid, code: 200, comment: 'OK', headers: [
          { name: 'To-Path', value: headerValue(head, 'From-Path') },
          { name: 'From-Path', value: headerValue(head, 'To-Path').split(' ').at(-1) },
        ] };
        socket.write(serializeMessage({ head: res, flag: '$' }));
        const to = headerValue(head, 'To-Path');
        if (headerValue(head, 'Byte-Range')) delivered.get(to)?.();
      }
    }
  });
  socket.on('error', () => socket.destroy());
});
await new Promise((r) => answerer.listen(0, '127.0.0.1', r));
const answererPort = answerer.address().port;

let tid = 0;
const body = Buffer.alloc(MSG_BYTES, 0x61);
let counting = false;
let count = 0;
const clients = [];
for (let i = 0; i < SESSIONS; i++) {
  const callerPath = `msrp://127.0.0.1:7000/c${i};tcp`;
  const calleePath = `msrp://127.0.0.1:${answererPort}/b${i};tcp`;
  const uris = sw.open(`s${i}`, { path: [callerPath], acceptTypes: ['text/plain'] });
  sw.answered(`s${i}`, { path: [calleePath] });
  const socket = connect(sw.port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.setNoDelay(true);
  socket.on('data', () => undefined);
  let inFlight = 0;
  let n = 0;
  const pump = () => {
    while (inFlight < WINDOW) {
      inFlight++;
      const t = `t${++tid}`.padEnd(8, '0');
      socket.write(serializeMessage({ head: { kind: 'request', tid: t, method: 'SEND', headers: [
        { name: 'To-Path', value: uris.offererSide },
        { name: 'From-Path', value: callerPath },
        { name: 'Message-ID', value: `m${i}x${++n}` },
        { name: 'Byte-Range', value: `1-${MSG_BYTES}/${MSG_BYTES}` },
        { name: 'Content-Type', value: 'text/plain' },
      ] }, body, flag: '$' }));
    }
  };
  delivered.set(calleePath, () => {
    inFlight--;
    if (counting) count++;
    if (!stopped) pump();
  });
  clients.push({ socket, pump });
}
let stopped = false;
for (const c of clients) c.pump();
await new Promise((r) => setTimeout(r, WARMUP * 1000));
counting = true;
const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
await new Promise((r) => setTimeout(r, DURATION * 1000));
counting = false;
stopped = true;
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
// CPU time per message says more than the rate on a shared machine (the rate follows the load)
console.log(JSON.stringify({
  sessions: SESSIONS, msgBytes: MSG_BYTES, window: WINDOW, seconds: Number(seconds.toFixed(2)),
  msgPerSec: Math.round(count / seconds), cpuUsPerMsg: Number(((cpu.user + cpu.system) / count).toFixed(1)),
  cpuShare: Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2)),
}));
for (const c of clients) c.socket.destroy();
await sw.stop();
answerer.close();
