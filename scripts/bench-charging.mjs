#!/usr/bin/env node
// Charging throughput without SIP: records encoded as TS 32.298 aSRecords in BER and written
// to TS 32.297 files (the pick-up directory, fsync off as by default), and ACRs built and
// encoded for Diameter Rf, per second, on one core. The record is a terminating MESSAGE as
// the IM Server writes it.
// Usage: npx tsc -p tsconfig.json && node scripts/bench-charging.mjs [records]
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCdr } from '../build/as/src/charging/record.js';
import { encodeAsRecord } from '../build/as/src/charging/as-record.js';
import { Ts32297Writer } from '../build/as/src/charging/ts32297-writer.js';
import { acrMessage, buildAcr } from '../build/as/src/charging/diameter/rf-acr.js';
import { encodeMessage } from '../build/as/src/charging/diameter/codec.js';

const n = Number(process.argv[2] ?? 100_000);
const at = new Date('2026-12-07T13:15:42.500Z');
const cdr = (seq) => buildCdr({
  service: 'im', role: 'terminating', sipMethod: 'MESSAGE', sessionId: `call-${seq}@10.0.0.1`,
  callingParty: 'sip:alice@example.com', calledParty: 'sip:bob@example.com', requestTime: at, responseTime: at,
  statusCode: 200, outcome: 'delivered', chargingVector: 'icid-value=1f2e3d4c;orig-ioi=example.com',
  messageBody: { contentType: 'text/plain', contentLength: 42 },
}, { nodeId: 'bench', nodeAddress: '127.0.0.1', seq, now: at, generateIcid: () => 'x' });

const records = Array.from({ length: n }, (_, i) => cdr(i + 1));
const rate = (t0, count) => Math.round(count / (Number(process.hrtime.bigint() - t0) / 1e9));

let t0 = process.hrtime.bigint();
let bytes = 0;
for (const r of records) bytes += encodeAsRecord(r).length;
console.log(`BER aSRecord encode: ${rate(t0, n)} records/s (${(bytes / n).toFixed(0)} bytes each)`);

const dir = await mkdtemp(path.join(tmpdir(), 'bench-charging-'));
try {
  const writer = new Ts32297Writer({ dir, nodeId: 'bench', nodeAddress: '127.0.0.1' });
  await writer.open();
  t0 = process.hrtime.bigint();
  // as the charging service does: records of one turn of the event loop in one batch
  for (let i = 0; i < n; i += 100) await Promise.all(records.slice(i, i + 100).map((r) => writer.append(r)));
  await writer.close();
  console.log(`TS 32.297 files: ${rate(t0, n)} records/s encoded and written (${(await readdir(dir)).filter((f) => !f.startsWith('.')).length} closed files)`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

const id = { originHost: 'as1.example.com', originRealm: 'example.com', destinationRealm: 'example.com' };
t0 = process.hrtime.bigint();
bytes = 0;
for (const r of records) bytes += encodeMessage(acrMessage(buildAcr(r, id), false)).length;
console.log(`Rf ACR build + encode: ${rate(t0, n)} ACRs/s (${(bytes / n).toFixed(0)} bytes each)`);
