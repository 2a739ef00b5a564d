import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCdr, type ChargeableEvent } from '../../as/src/charging/record.js';
import { Ts32297Writer } from '../../as/src/charging/ts32297-writer.js';

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../as/src/cli/ims-cdr.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let file: string;
const N = 3000;
const T0 = Date.parse('2026-12-07T10:00:00.000Z');

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'ims-cdr-'));
  const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '192.0.2.7', now: () => new Date(T0) });
  await w.open();
  const writes: Promise<void>[] = [];
  for (let seq = 1; seq <= N; seq++) {
    const at = new Date(T0 + seq * 1000);
    const ev: ChargeableEvent = {
      service: 'im',
      role: seq % 2 ? 'originating' : 'terminating',
      sipMethod: 'MESSAGE',
      sessionId: `c${seq}`,
      callingParty: 'sip:alice@example.com',
      calledParty: 'sip:bob@example.com',
      requestTime: at,
      responseTime: at,
      statusCode: seq % 10 === 0 ? 480 : 200,
      outcome: seq % 10 === 0 ? 'failed' : 'delivered',
      ...(seq === 2
        ? {
            privateUserId: 'alice@example.com',
            chargingVector: 'icid-value=icid-2;orig-ioi=home1.net',
            incomplete: { acrInterimLost: 'unknown' as const },
          }
        : {}),
    };
    writes.push(
      w.append(
        buildCdr(ev, { nodeId: 'as1', nodeAddress: '192.0.2.7', seq, now: at, generateIcid: () => `icid-${seq}` }),
      ),
    );
  }
  await Promise.all(writes);
  await w.close();
  const [name] = (await readdir(dir)).filter((n) => !n.startsWith('.'));
  file = path.join(dir, name!);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const summary0 = (lines: Array<Record<string, unknown>>) => lines[lines.length - 1]!.summary as Record<string, unknown>;

describe('ims-cdr', () => {
  test('decodes every record to one JSON line, then a summary; progress on stderr', async () => {
    const r = await run(['--progress', file]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, N + 1);
    const first = lines[0]!;
    assert.equal(first.recordType, 69);
    assert.equal(first.localRecordSequenceNumber, 1);
    assert.equal(first.sipMethod, 'MESSAGE');
    assert.equal(first.imsChargingIdentifier, 'icid-1');
    assert.equal(first.nodeAddress, '192.0.2.7');
    assert.equal(first.privateUserId, undefined);
    assert.equal(first.incompleteCdrIndication, undefined);
    // the fields of issue 16 in the decoder's output
    const second = lines[1]!;
    assert.equal(second.privateUserId, 'alice@example.com');
    assert.deepEqual(second.interOperatorIdentifiers, { originatingIOI: 'home1.net' });
    assert.deepEqual(second.incompleteCdrIndication, {
      acrStartLost: false,
      acrInterimLost: 'unknown',
      acrStopLost: false,
    });
    assert.equal(summary0(lines).lostCdrs, 0);
    assert.equal(summary0(lines).lostCdrsExact, true);
    assert.deepEqual(
      lines.slice(0, N).map((l) => l.localRecordSequenceNumber),
      Array.from({ length: N }, (_, i) => i + 1),
    );
    const summary = lines[N]!.summary as Record<string, unknown>;
    assert.equal(summary.count, N);
    assert.equal(summary.firstTime, '2026-12-07T10:00:01.000Z');
    assert.equal(summary.lastTime, new Date(T0 + N * 1000).toISOString());
    assert.deepEqual(summary.causes, {
      serviceDeliveryEndSuccessfully: N - N / 10,
      unSuccessfulServiceDelivery: N / 10,
    });
    assert.equal(summary.wellFormed, true);
    assert.equal(summary.fileSequenceNumber, 1);
    assert.equal(summary.release, 18);
    assert.match(r.stderr, /100% \(\d+ of \d+ octets\)/);
  });

  test('--check: a sound file passes; a cut or miscounted file fails with the offset of the fault', async () => {
    const ok = await run(['--check', file]);
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout.trim().split('\n').length, 1, 'only the summary');
    const buf = await readFile(file);
    const cut = path.join(dir, 'cut');
    await writeFile(cut, buf.subarray(0, buf.length - 7));
    const bad = await run(['--check', cut]);
    assert.equal(bad.code, 1);
    const s = (
      JSON.parse(bad.stdout.trim()) as {
        summary: { wellFormed: boolean; faults: Array<{ offset: number; message: string }>; count: number };
      }
    ).summary;
    assert.equal(s.wellFormed, false);
    assert.equal(s.count, N - 1);
    assert.ok(
      s.faults.some((f) => /runs past the end/.test(f.message) && f.offset > 54),
      JSON.stringify(s.faults),
    );
    assert.ok(s.faults.some((f) => /file header says/.test(f.message)));
    assert.ok(s.faults.some((f) => /counts 3000 CDRs, the file holds 2999/.test(f.message)));
    const garbled = Buffer.from(buf);
    garbled[54 + 5] = 0x30; // the first record is no aSRecord
    await writeFile(cut, garbled);
    const g = await run(['--check', cut]);
    assert.equal(g.code, 1);
    assert.match(g.stdout, /not an aSRecord/);
  });

  test('usage errors exit 2', async () => {
    assert.equal((await run([])).code, 2);
    assert.equal((await run(['--bogus', file])).code, 2);
    assert.equal((await run(['--help'])).code, 0);
  });
});
