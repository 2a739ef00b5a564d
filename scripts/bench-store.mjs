#!/usr/bin/env node
// Start-up and memory of the AS over a large embedded store (issue 19: 1,000,000 CDRs and
// 100,000 stored messages; target: first request served within 2 s, under 250 MB resident).
//
//   node scripts/bench-store.mjs [--cdrs 1000000] [--messages 100000] [--dir DIR] [--keep]
//
// With --dir naming a directory kept by an earlier run (--keep), the fill is skipped.
//
// 1. fills a data directory through the embedded store itself (the services declare their
//    indexes, then documents go in with insertMany, 20,000 per transaction), and writes the
//    newest CDR to a CDR file as the running AS would have (else the AS would copy every
//    stored record to the files at start);
// 2. waits for the kernel to write the data back (sync), then starts the real AS
//    (build/as/src/main.js) over an empty data directory, then over the full one, and measures from spawn to the first GET /health answering 200, then the
//    resident memory (VmRSS) at that moment and 5 s later.
// Kamailio's JSON-RPC (which /health asks for its version) is a stub in this process: the
// measure is the AS's own start-up. Everything listens on 127.0.0.1; the script ends by itself.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { SqliteStore, DATABASE_FILE } = await import(path.join(ROOT, 'build/as/src/store/sqlite-store.js'));
const { Charging } = await import(path.join(ROOT, 'build/as/src/charging/charging.js'));
const { MessageStore } = await import(path.join(ROOT, 'build/as/src/im/message-store.js'));
const { buildCdr } = await import(path.join(ROOT, 'build/as/src/charging/record.js'));
const { CdrFileWriter } = await import(path.join(ROOT, 'build/as/src/charging/cdr-file.js'));
const { silentLogger } = await import(path.join(ROOT, 'build/as/src/log/logger.js'));

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
}
const CDRS = Number(arg('cdrs', '1000000'));
const MESSAGES = Number(arg('messages', '100000'));
const KEEP = process.argv.includes('--keep');
const CHUNK = 20_000;
const NODE_ID = 'bench';

const base = arg('dir', '') || (await mkdtemp(path.join(tmpdir(), 'ims-bench-store-')));
const fullDir = path.join(base, 'full');
const emptyDir = path.join(base, 'empty');

function cdrOf(seq, at) {
  const cdr = buildCdr(
    {
      service: 'im', role: seq % 2 ? 'originating' : 'terminating', sipMethod: 'MESSAGE',
      sessionId: `call-${seq}@pc.example.com`, callingParty: `sip:user${seq % 5000}@example.com`, calledParty: `sip:user${(seq * 7) % 5000}@example.com`,
      requestTime: at, responseTime: at, statusCode: 202, outcome: 'delivered',
      messageBody: { contentType: 'text/plain;charset=UTF-8', contentLength: 42 },
      chargingVector: `icid-value=bench-${seq};orig-ioi=example.com`,
    },
    { nodeId: NODE_ID, nodeAddress: '127.0.0.1', seq, now: at, generateIcid: () => `bench-${seq}` },
  );
  return cdr;
}

function messageOf(i, now) {
  const sentAt = new Date(now - 60_000 + i);
  const id = `${sentAt.getTime().toString().padStart(14, '0')}-${String(i % 1_000_000).padStart(6, '0')}-${NODE_ID}`;
  const body = `stored message ${i}: ${'lorem ipsum '.repeat(8)}`;
  return {
    _id: id, seq: id, recipient: `sip:offline${i % 2000}@example.com`,
    sender: `sip:user${i % 5000}@example.com`, fromHeader: `<sip:user${i % 5000}@example.com>;tag=${i}`,
    contentType: 'text/plain;charset=UTF-8', body, size: Buffer.byteLength(body), sentAt,
    callId: `msg-${i}@ua.example.com`, chargingVector: `icid-value=m-${i};orig-ioi=example.com`, privacy: false, kind: 'message',
    expiresAt: new Date(now + 7 * 86_400_000), state: 'pending', attempts: 0, nextAttemptAt: new Date(now + 3_600_000),
  };
}

async function fill() {
  const started = Date.now();
  const store = await SqliteStore.open(fullDir);
  // the services declare their indexes, as at every start of the AS
  const charging = new Charging({ store, nodeId: NODE_ID, nodeAddress: '127.0.0.1', cdrDir: path.join(fullDir, 'cdr-unused'), log: silentLogger() });
  await charging.start();
  await charging.stop();
  await new MessageStore(store, NODE_ID).start();
  const cdrs = store.collection('cdrs');
  const now = Date.now();
  let last;
  for (let from = 1; from <= CDRS; from += CHUNK) {
    const docs = [];
    for (let seq = from; seq < Math.min(from + CHUNK, CDRS + 1); seq++) {
      const at = new Date(now - (CDRS - seq) * 100);
      last = cdrOf(seq, at);
      docs.push({ ...last, _id: last.recordId, storedAt: at });
    }
    await cdrs.insertMany(docs);
    if ((from - 1) % 200_000 === 0) process.stderr.write(`[fill] ${from - 1} CDRs\n`);
  }
  const messages = store.collection('im_deferred');
  for (let from = 0; from < MESSAGES; from += CHUNK) {
    const docs = [];
    for (let i = from; i < Math.min(from + CHUNK, MESSAGES); i++) docs.push(messageOf(i, now));
    await messages.insertMany(docs);
  }
  await store.close();
  // the newest record is in the files, as the running AS would have left it
  const writer = new CdrFileWriter({ dir: path.join(fullDir, 'cdr'), nodeId: NODE_ID, rotateBytes: 16 << 20, rotateSeconds: 3600, fsync: false, log: silentLogger(), now: () => new Date() });
  await writer.open();
  if (last) await writer.append(last);
  await writer.close();
  const bytes = (await stat(path.join(fullDir, DATABASE_FILE))).size;
  return { seconds: (Date.now() - started) / 1000, databaseMB: Math.round(bytes / 1e6) };
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Kamailio's JSON-RPC as far as /health needs it. */
async function rpcStub() {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let id = 1;
      try {
        id = JSON.parse(body).id ?? 1;
      } catch {
        // an unparsable request still gets an answer
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: 'kamailio 5.6 (bench stub)' }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function rssMB(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024);
}

function get(port, pathName) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

async function startAs(dataDir, stub) {
  const iscPort = await freePort();
  const env = {
    ...process.env,
    AS_CONFIG: '', MONGODB_URI: '', AS_DATA_DIR: dataDir, CDR_DIR: path.join(dataDir, 'cdr'), AS_NODE_ID: NODE_ID,
    ISC_PORT: String(iscPort), ISC_SECRET: randomBytes(16).toString('hex'), XDM_PORT: String(await freePort()),
    KAMAILIO_HTTP_URL: `http://127.0.0.1:${stub.address().port}`, KAMAILIO_EVAPI_ADDR: '', LOG_LEVEL: 'warn',
  };
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'build/as/src/main.js')], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let firstOkMs;
  for (const deadline = performance.now() + 60_000; performance.now() < deadline; ) {
    if ((await get(iscPort, '/health')) === 200) {
      firstOkMs = Math.round(performance.now() - spawnedAt);
      break;
    }
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const result = { firstHealthOkMs: firstOkMs ?? null, rssAtFirstOkMB: firstOkMs ? await rssMB(child.pid) : null };
  if (firstOkMs) {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    result.rssAfter5sMB = await rssMB(child.pid);
  }
  child.kill('SIGTERM');
  await exited;
  return result;
}

const stub = await rpcStub();
try {
  const reuse = await stat(path.join(fullDir, DATABASE_FILE)).then(() => true, () => false);
  const filled = reuse
    ? { seconds: null, reused: true, databaseMB: Math.round((await stat(path.join(fullDir, DATABASE_FILE))).size / 1e6) }
    : await fill();
  // the fill may leave data for the kernel to write back: a restart of a running AS meets its
  // data on disk, so the measure starts after that write-back
  const synced = performance.now();
  spawnSync('sync');
  filled.syncSeconds = Math.round(performance.now() - synced) / 1000;
  const empty = await startAs(emptyDir, stub);
  const full = await startAs(fullDir, stub);
  console.log(
    JSON.stringify(
      {
        machine: { cpus: cpus().length, model: cpus()[0]?.model, memGB: Math.round(totalmem() / 2 ** 30), node: process.version },
        data: { cdrs: CDRS, messages: MESSAGES, fillSeconds: filled.seconds, syncSeconds: filled.syncSeconds, reused: Boolean(filled.reused), databaseMB: filled.databaseMB },
        asOverEmptyStore: empty,
        asOverFullStore: full,
      },
      null,
      2,
    ),
  );
} finally {
  stub.close();
  if (!KEEP) await rm(base, { recursive: true, force: true });
  else console.error(`[bench] data kept in ${base}`);
}
