#!/usr/bin/env node
// Rf alone, in one process: N MESSAGE records through Charging with Diameter Rf to the test
// CDF (test/fixtures/rf-cdf.escript, Erlang's diameter: a real peer over TCP), no SIP. Prints
// how long the records took to be stored and written, and how long until the CDF had
// answered every ACR: the ACRs per second the outbox and the CDF sustain between them.
//
//   npx tsc -p tsconfig.json && node scripts/profile-rf.mjs [N]      (N = 20000)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { Charging } = await import(join(ROOT, 'build/as/src/charging/charging.js'));
const { SqliteStore } = await import(join(ROOT, 'build/as/src/store/sqlite-store.js'));
const { TestCdf } = await import(join(ROOT, 'build/test/helpers/rf-cdf.js'));
const N = Number(process.argv[2] ?? 20000);
const PORT = Number(process.env.CDF_PORT ?? 3869);
const dir = mkdtempSync(join(tmpdir(), 'profile-rf-'));
const cdf = new TestCdf(PORT, join(dir, 'acr.log'));
await cdf.start();
const store = await SqliteStore.open(join(dir, 'data'));
const silent = { info() {}, warn() {}, error() {}, debug() {}, child() { return silent; } };
const charging = new Charging({
  store, nodeId: 'as1', nodeAddress: '127.0.0.1', cdrDir: join(dir, 'cdr'), log: silent, jsonl: false,
  interOperatorIdentifiers: { originatingIOI: 'home1.net', terminatingIOI: 'partner.example' },
  rf: { peers: [{ host: '127.0.0.1', port: PORT }], originHost: 'as1.home1.net', originRealm: 'home1.net',
    destinationRealm: 'test.example', hostIpAddress: '127.0.0.1', retryMs: 200, answerTimeoutMs: 5000, connectTimeoutMs: 2000 },
});
await charging.start();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const now = new Date();
const pending = [];
for (let i = 0; i < N; i++) {
  pending.push(charging.record({
    service: 'im', role: 'originating', sipMethod: 'MESSAGE', sessionId: `call-${i}@pc.home1.net`,
    callingParty: 'sip:alice@home1.net', calledParty: 'sip:bob@home1.net', requestTime: now, responseTime: now,
    statusCode: 200, outcome: 'delivered', messageBody: { contentType: 'text/plain', contentLength: 5 },
    chargingVector: 'icid-value=icid-1;orig-ioi=home1.net',
  }));
  if (i % 500 === 499) await new Promise((r) => setImmediate(r));
}
await Promise.all(pending);
const written = performance.now() - t0;
for (;;) {
  if ((await cdf.acrs()).length >= N) break;
  if (performance.now() - t0 > 300_000) break;
  await new Promise((r) => setTimeout(r, 100));
}
const all = performance.now() - t0;
const acrs = (await cdf.acrs()).length;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({ records: N, recordsWrittenMs: Math.round(written), acrsAnswered: acrs, allAnsweredMs: Math.round(all), acrPerSec: Math.round(acrs / (all / 1000)), asCpuShare: Number(((cpu.user + cpu.system) / 1000 / all).toFixed(2)), asCpuUsPerRecord: Math.round((cpu.user + cpu.system) / N) }));
await charging.stop();
await store.close();
await cdf.kill();
rmSync(dir, { recursive: true, force: true });
