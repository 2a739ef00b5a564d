import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Charging, CDR_COLLECTION, type ChargingOptions, type CdrDoc } from '../../as/src/charging/charging.js';
import { listCdrFiles } from '../../as/src/charging/cdr-file.js';
import { buildCdr, type Cdr, type ChargeableEvent } from '../../as/src/charging/record.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { silentLogger } from '../../as/src/log/logger.js';
import type { Collection, Doc, IndexSpec, Store } from '../../as/src/store/port.js';

let root: string;
let dataDir: string;
let cdrDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'charging-'));
  dataDir = path.join(root, 'data');
  cdrDir = path.join(root, 'cdr');
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

let callNo = 0;
function imEvent(over: Partial<ChargeableEvent> = {}): ChargeableEvent {
  callNo++;
  return {
    service: 'im',
    role: 'originating',
    sipMethod: 'MESSAGE',
    sessionId: `call-${callNo}@pc.home1.net`,
    callingParty: 'sip:alice@home1.net',
    calledParty: 'sip:bob@home1.net',
    requestTime: new Date(),
    responseTime: new Date(),
    statusCode: 200,
    outcome: 'delivered',
    messageBody: { contentType: 'text/plain', contentLength: 5 },
    ...over,
  };
}

interface Running {
  store: Store;
  charging: Charging;
}

async function startNode(opts: Partial<ChargingOptions> & { wrap?: (s: Store) => Store } = {}): Promise<Running> {
  const inner = await SqliteStore.open(dataDir);
  const store = opts.wrap ? opts.wrap(inner) : inner;
  const charging = new Charging({
    store,
    nodeId: 'as1',
    nodeAddress: '10.0.0.5',
    cdrDir,
    log: silentLogger(),
    ...opts,
  });
  await charging.start();
  return { store, charging };
}

async function stopNode(n: Running): Promise<void> {
  await n.charging.stop();
  await n.store.close();
}

/** All lines of this node's CDR files, in file order, parsed. */
async function fileRecords(nodeId = 'as1'): Promise<Cdr[]> {
  const out: Cdr[] = [];
  for (const f of await listCdrFiles(cdrDir, nodeId)) {
    const text = await readFile(f.path, 'utf8');
    assert.ok(text === '' || text.endsWith('\n'), `${f.name} ends with a newline`);
    for (const line of text.split('\n')) if (line !== '') out.push(JSON.parse(line) as Cdr);
  }
  return out;
}

async function fileSeqs(): Promise<number[]> {
  return (await fileRecords()).map((r) => r.localRecordSequenceNumber);
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/** Hooks around the `cdrs` collection of a store. */
function hookStore(
  inner: Store,
  hooks: {
    insertOne?: (doc: Doc, next: (d: Doc) => Promise<void>) => Promise<void>;
    insertMany?: (docs: readonly Doc[], next: (d: readonly Doc[]) => Promise<void>) => Promise<void>;
    ensureIndex?: (spec: IndexSpec) => void;
  },
): Store {
  return {
    engine: inner.engine,
    collection<T extends Doc>(name: string): Collection<T> {
      const c = inner.collection<T>(name);
      if (name !== CDR_COLLECTION) return c;
      return new Proxy(c, {
        get(target, prop) {
          if (prop === 'insertOne' && hooks.insertOne) {
            const hook = hooks.insertOne;
            return (doc: T) => hook(doc, (d) => target.insertOne(d as T));
          }
          if (prop === 'insertMany' && hooks.insertMany) {
            const hook = hooks.insertMany;
            return (docs: readonly T[]) => hook(docs, (d) => target.insertMany(d as readonly T[]));
          }
          if (prop === 'ensureIndex' && hooks.ensureIndex) {
            const hook = hooks.ensureIndex;
            return (spec: IndexSpec) => {
              hook(spec);
              return target.ensureIndex(spec);
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    },
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
}

describe('Charging', () => {
  test('record() stores the CDR and writes its line; query by session and party', async () => {
    const n = await startNode();
    const a = await n.charging.record(imEvent({ sessionId: 's-1' }));
    const b = await n.charging.record(
      imEvent({
        sessionId: 's-2',
        calledParty: 'sip:carol@home1.net',
        chargingVector: 'icid-value=xyz;orig-ioi=home1.net',
      }),
    );
    assert.equal(a.localRecordSequenceNumber, 1);
    assert.equal(a.recordId, 'as1:1');
    assert.equal(b.localRecordSequenceNumber, 2);
    assert.equal(b.imsChargingIdentifier, 'xyz');
    assert.match(a.imsChargingIdentifier, /^as1-[0-9a-f-]{36}$/);

    const doc = await n.store.collection<CdrDoc>(CDR_COLLECTION).findOne({ _id: 'as1:1' });
    assert.ok(doc);
    assert.ok(doc.storedAt instanceof Date);
    assert.equal(doc.sessionId, 's-1');

    assert.deepEqual(await n.charging.query({ sessionId: 's-2' }), [b]);
    assert.deepEqual(
      (await n.charging.query({ party: 'sip:alice@home1.net' })).map((r) => r.recordId),
      ['as1:1', 'as1:2'],
    );
    assert.deepEqual(
      (await n.charging.query({ party: 'sip:carol@home1.net' })).map((r) => r.recordId),
      ['as1:2'],
    );
    assert.deepEqual(await fileRecords(), [a, b], 'file lines are exactly the records');
    const m = n.charging.metrics();
    assert.equal(m.recordsWritten, 2);
    assert.equal(m.storeFailures, 0);
    assert.ok(m.fileBytes > 0);
    await stopNode(n);
  });

  test('an invalid event still leaves a record: incomplete, numbered in sequence, counted (no silent loss)', async () => {
    const n = await startNode();
    const bad = await n.charging.record(
      imEvent({
        sessionId: undefined as unknown as string,
        messageBody: { contentType: '', contentLength: 5 },
      }),
    );
    assert.equal(bad.localRecordSequenceNumber, 1);
    assert.equal(bad.sessionId, 'unknown');
    const extra =
      (bad as unknown as { extra?: Record<string, unknown> }).extra ??
      (bad as unknown as { recordExtensions?: Record<string, unknown> }).recordExtensions ??
      {};
    assert.equal(extra.incompleteRecord, true);
    assert.match(String(extra.invalidEvent), /sessionId/);
    // and in the 32.298 field a billing system reads: the closing event's details were lost
    assert.deepEqual(bad.incompleteCdrIndication, { acrStartLost: false, acrInterimLost: 'no', acrStopLost: true });
    assert.equal(n.charging.metrics().invalidEvents, 1);
    const next = await n.charging.record(imEvent());
    assert.equal(next.localRecordSequenceNumber, 2);
    assert.equal(next.incompleteCdrIndication, undefined, 'a good event makes a complete record');
    await stopNode(n);
  });

  test('record() before start() or after stop() rejects', async () => {
    const store = await SqliteStore.open(dataDir);
    const c = new Charging({ store, nodeId: 'as1', nodeAddress: 'x', cdrDir, log: silentLogger() });
    await assert.rejects(c.record(imEvent()));
    await c.start();
    await c.record(imEvent());
    await c.stop();
    await assert.rejects(c.record(imEvent()));
    await store.close();
  });

  test('indexes: seq, nodeId + seq, sessionId and a TTL on storedAt (default 30 days; 0 disables)', async () => {
    const specs: IndexSpec[] = [];
    const n = await startNode({ wrap: (s) => hookStore(s, { ensureIndex: (spec) => specs.push(spec) }) });
    await stopNode(n);
    assert.deepEqual(specs, [
      { fields: { localRecordSequenceNumber: 1 } },
      { fields: { nodeId: 1, localRecordSequenceNumber: 1 } },
      { fields: { sessionId: 1 } },
      { fields: { storedAt: 1 }, expireAfterSeconds: 30 * 86400 },
    ]);
    specs.length = 0;
    const n2 = await startNode({
      retentionDays: 0,
      wrap: (s) => hookStore(s, { ensureIndex: (spec) => specs.push(spec) }),
    });
    await stopNode(n2);
    assert.equal(
      specs.some((s) => s.expireAfterSeconds !== undefined),
      false,
    );
  });

  test('500 concurrent record() calls: seq 1..500, no gaps, file lines in seq order, 500 docs', async () => {
    let batches = 0;
    let singles = 0;
    const n = await startNode({
      wrap: (s) =>
        hookStore(s, {
          insertMany: async (docs, next) => {
            batches++;
            await next(docs);
          },
          insertOne: async (doc, next) => {
            singles++;
            await next(doc);
          },
        }),
    });
    const results = await Promise.all(range(1, 500).map(() => n.charging.record(imEvent())));
    assert.deepEqual(
      results.map((r) => r.localRecordSequenceNumber),
      range(1, 500),
      'numbers assigned in call order',
    );
    assert.deepEqual(await fileSeqs(), range(1, 500));
    assert.equal(await n.store.collection(CDR_COLLECTION).count({}), 500);
    assert.equal(singles, 0, 'records of one tick go to the store together');
    assert.ok(batches < 10, `${batches} insertMany calls for 500 records`);
    await stopNode(n);
  });

  test('file order holds when store inserts complete out of order', async () => {
    // Random insert latencies: completions arrive shuffled.
    const completed: number[] = [];
    const n = await startNode({
      wrap: (s) =>
        hookStore(s, {
          insertOne: async (doc, next) => {
            await sleep(Math.floor(Math.random() * 20));
            await next(doc);
            completed.push(doc.localRecordSequenceNumber as number);
          },
        }),
    });
    await Promise.all(range(1, 200).map(() => n.charging.record(imEvent())));
    assert.notDeepEqual(completed, range(1, 200), 'inserts really completed out of order');
    assert.deepEqual(await fileSeqs(), range(1, 200));
    await stopNode(n);
  });

  test('store failure: retried, then the call fails and the number is a logged gap', async () => {
    const attempts = new Map<number, number>();
    const n = await startNode({
      berFiles: { maxRecords: 1 }, // one record per 32.297 file: each header is seen
      wrap: (s) =>
        hookStore(s, {
          // the batch fails as a whole whenever the store is in trouble: every record then
          // goes down the one-by-one path, whose retries this test is about
          insertMany: async () => {
            throw new Error('batch refused');
          },
          insertOne: async (doc, next) => {
            const seq = doc.localRecordSequenceNumber as number;
            attempts.set(seq, (attempts.get(seq) ?? 0) + 1);
            if (seq === 2) throw new Error('store down');
            if (seq === 3 && attempts.get(seq) === 1) throw new Error('transient');
            if (seq === 4 && attempts.get(seq) === 1) {
              // The write lands but its answer is lost: the retry meets a duplicate of our own record.
              await next(doc);
              throw new Error('connection reset');
            }
            await next(doc);
          },
        }),
    });
    const p = range(1, 5).map(() => n.charging.record(imEvent()));
    const settled = await Promise.allSettled(p);
    assert.deepEqual(
      settled.map((s) => s.status),
      ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
    );
    assert.equal(attempts.get(2), 3, 'three attempts before giving up');
    assert.deepEqual(await fileSeqs(), [1, 3, 4, 5]);
    assert.equal(await n.store.collection(CDR_COLLECTION).count({}), 4);
    const m = n.charging.metrics();
    assert.equal(m.gaps, 1);
    assert.equal(m.storeFailures, 5); // 3 for seq 2, 1 for seq 3, 1 for seq 4
    assert.equal(m.recordsWritten, 4);
    // The number is not reused.
    assert.equal((await n.charging.record(imEvent())).localRecordSequenceNumber, 6);
    await stopNode(n);
    // the 32.297 files report the lost record in the header of the file opened after it
    const { readdir } = await import('node:fs/promises');
    const { parseFileHeader, parseTs32297FileName } = await import('../../as/src/charging/ts32297-format.js');
    const ber = (await readdir(cdrDir))
      .filter((f) => parseTs32297FileName(f))
      .sort((a, b) => parseTs32297FileName(a)!.fileSequenceNumber - parseTs32297FileName(b)!.fileSequenceNumber);
    const headers = await Promise.all(ber.map(async (f) => parseFileHeader(await readFile(path.join(cdrDir, f)))));
    assert.deepEqual(
      headers.map((h) => h.lostCdrs),
      [0, 1, 0, 0, 0],
      'files of records 1, 3, 4, 5, 6: the one after the gap says one lost',
    );
  });

  describe('crash recovery', () => {
    test('(a) a half-written last line is cut and the stored record re-appended exactly once', async () => {
      const n = await startNode();
      const recs = [];
      for (let i = 0; i < 4; i++) recs.push(await n.charging.record(imEvent()));
      await stopNode(n);
      // Simulate a crash in the middle of writing line 4 (the store has record 4).
      const [file] = await listCdrFiles(cdrDir, 'as1');
      const text = await readFile(file!.path, 'utf8');
      const lines = text.slice(0, -1).split('\n');
      const torn = lines.slice(0, 3).join('\n') + '\n' + lines[3]!.slice(0, Math.floor(lines[3]!.length / 2));
      await writeFile(file!.path, torn);

      const n2 = await startNode();
      const m0 = n2.charging.metrics();
      assert.equal(m0.linesReappended, 1);
      assert.equal(m0.nextSeq, 5);
      assert.deepEqual(await fileSeqs(), [1, 2, 3, 4]);
      assert.deepEqual(await fileRecords(), recs, 're-appended line equals the original record');
      assert.equal((await n2.charging.record(imEvent())).localRecordSequenceNumber, 5);
      await stopNode(n2);
      assert.deepEqual(await fileSeqs(), [1, 2, 3, 4, 5]);
    });

    test('(b) records stored but missing from the files are appended on start, in order', async () => {
      const n = await startNode();
      for (let i = 0; i < 5; i++) await n.charging.record(imEvent());
      await stopNode(n);
      // Crash after the store write, before the file write: drop lines 4 and 5 ...
      const [file] = await listCdrFiles(cdrDir, 'as1');
      const lines = (await readFile(file!.path, 'utf8')).split('\n');
      await writeFile(file!.path, lines.slice(0, 3).join('\n') + '\n');
      // ... and add records 6..8 that only reached the store, inserted out of order.
      const store = await SqliteStore.open(dataDir);
      const cdrs = store.collection<CdrDoc>(CDR_COLLECTION);
      for (const seq of [8, 6, 7]) {
        const cdr = buildCdr(imEvent(), {
          nodeId: 'as1',
          nodeAddress: '10.0.0.5',
          seq,
          now: new Date(),
          generateIcid: () => `icid-${seq}`,
        });
        await cdrs.insertOne({ ...cdr, _id: cdr.recordId, storedAt: new Date() } as unknown as CdrDoc);
      }
      // Another node's records in the same store are not ours to copy.
      const foreign = buildCdr(imEvent(), {
        nodeId: 'as2',
        nodeAddress: 'y',
        seq: 50,
        now: new Date(),
        generateIcid: () => 'f',
      });
      await cdrs.insertOne({ ...foreign, _id: foreign.recordId, storedAt: new Date() } as unknown as CdrDoc);
      await store.close();

      const n2 = await startNode();
      assert.equal(n2.charging.metrics().linesReappended, 5);
      assert.deepEqual(await fileSeqs(), range(1, 8));
      assert.equal((await fileRecords())[7]!.imsChargingIdentifier, 'icid-8');
      assert.equal((await n2.charging.record(imEvent())).localRecordSequenceNumber, 9);
      await stopNode(n2);
      assert.deepEqual(await fileRecords('as2'), []);
    });

    test('(c) restarting twice writes nothing twice', async () => {
      const n = await startNode();
      await Promise.all(range(1, 20).map(() => n.charging.record(imEvent())));
      await stopNode(n);
      // Leave the tail torn so that the first restart has something to repair.
      const files = await listCdrFiles(cdrDir, 'as1');
      const last = files[files.length - 1]!;
      const text = await readFile(last.path, 'utf8');
      await writeFile(last.path, text.slice(0, text.length - 30));

      for (let round = 0; round < 3; round++) {
        const r = await startNode();
        await r.charging.record(imEvent());
        await stopNode(r);
      }
      const counts = new Map<number, number>();
      for (const s of await fileSeqs()) counts.set(s, (counts.get(s) ?? 0) + 1);
      assert.deepEqual([...counts.keys()], range(1, 23), 'all seqs, in order');
      assert.ok(
        [...counts.values()].every((c) => c === 1),
        'each seq exactly once',
      );
      const store = await SqliteStore.open(dataDir);
      assert.equal(await store.collection(CDR_COLLECTION).count({ nodeId: 'as1' }), 23);
      await store.close();
    });

    test('start() after the files were lost entirely rebuilds them from the store', async () => {
      const n = await startNode();
      await Promise.all(range(1, 10).map(() => n.charging.record(imEvent())));
      await stopNode(n);
      await rm(cdrDir, { recursive: true, force: true });
      const n2 = await startNode();
      assert.deepEqual(await fileSeqs(), range(1, 10));
      await stopNode(n2);
    });

    test('a store emptied (e.g. by retention) continues numbering after the files', async () => {
      const n = await startNode();
      await Promise.all(range(1, 5).map(() => n.charging.record(imEvent())));
      await stopNode(n);
      const store = await SqliteStore.open(dataDir);
      await store.collection(CDR_COLLECTION).deleteMany({});
      await store.close();
      const n2 = await startNode();
      assert.equal((await n2.charging.record(imEvent())).localRecordSequenceNumber, 6);
      await stopNode(n2);
      assert.deepEqual(await fileSeqs(), range(1, 6));
    });
  });

  test('file failure: records still stored, files catch up from the store in order', async () => {
    const n = await startNode({ fileRetryMs: 30 });
    await n.charging.record(imEvent());
    // Break the file under the writer, as a failing disk would.
    const sinks = (
      n.charging as unknown as { writer: { sinks: Array<{ name: string; fh: { close(): Promise<void> } }> } }
    ).writer.sinks;
    const writer = sinks.find((s) => s.name === 'jsonl')!;
    await writer.fh.close();
    const during = await Promise.all(range(1, 10).map(() => n.charging.record(imEvent())));
    assert.deepEqual(
      during.map((r) => r.localRecordSequenceNumber),
      range(2, 11),
    );
    assert.equal(n.charging.metrics().fileDegraded, true);
    assert.equal(n.charging.metrics().fileFailures, 1);
    // The retry timer re-opens the writer and copies 2..11 from the store.
    for (let i = 0; i < 100 && n.charging.metrics().fileDegraded; i++) await sleep(10);
    assert.equal(n.charging.metrics().fileDegraded, false);
    await Promise.all(range(1, 5).map(() => n.charging.record(imEvent())));
    await stopNode(n);
    assert.deepEqual(await fileSeqs(), range(1, 16));
  });

  test('rotation through Charging keeps numbering continuous across files', async () => {
    const n = await startNode({ rotateBytes: 4096 });
    await Promise.all(range(1, 60).map(() => n.charging.record(imEvent())));
    await stopNode(n);
    const files = await listCdrFiles(cdrDir, 'as1');
    assert.ok(files.length > 2, `rotated (${files.length} files)`);
    assert.deepEqual(await fileSeqs(), range(1, 60));
    let expectFirst = 1;
    for (const f of files) {
      assert.equal(f.firstSeq, expectFirst, `${f.name} starts where the previous file ended`);
      const text = await readFile(f.path, 'utf8');
      expectFirst += text.split('\n').length - 1;
    }
  });
});

describe('Charging retention', () => {
  test('purgeExpired removes store records past retention, files keep them', async () => {
    // relative to the real clock: the store's own TTL index also looks at storedAt
    let clock = new Date(Date.now() - 2 * 86_400_000);
    const n = await startNode({ retentionDays: 1, now: () => clock });
    await n.charging.record(imEvent());
    await n.charging.record(imEvent());
    clock = new Date();
    await n.charging.record(imEvent());
    assert.equal(await n.charging.purgeExpired(), 2);
    assert.deepEqual(
      (await n.store.collection(CDR_COLLECTION).find({})).map((d) => d.localRecordSequenceNumber),
      [3],
    );
    assert.deepEqual(await fileSeqs(), [1, 2, 3]);
    await stopNode(n);
  });

  test('purgeBeyondMax keeps the newest maxStoredRecords in the store, files keep them all', async () => {
    const n = await startNode({ maxStoredRecords: 3 });
    for (let i = 0; i < 5; i++) await n.charging.record(imEvent());
    assert.equal(await n.charging.purgeBeyondMax(), 2);
    assert.deepEqual(
      (await n.store.collection(CDR_COLLECTION).find({}, { sort: { localRecordSequenceNumber: 1 } })).map(
        (d) => d.localRecordSequenceNumber,
      ),
      [3, 4, 5],
    );
    assert.equal(await n.charging.purgeBeyondMax(), 0);
    await stopNode(n);
    assert.deepEqual(await fileSeqs(), [1, 2, 3, 4, 5]);
  });
});

describe('Charging: TS 32.297 BER files next to the JSON Lines export', () => {
  async function berSeqs(): Promise<number[]> {
    const { readdir } = await import('node:fs/promises');
    const { parseTs32297FileName, parseFileHeader } = await import('../../as/src/charging/ts32297-format.js');
    const { walkRecords } = await import('../../as/src/charging/ts32297-writer.js');
    const { decodeAsRecord } = await import('../../as/src/charging/as-record-decode.js');
    const names = (await readdir(cdrDir))
      .filter((n) => parseTs32297FileName(n))
      .sort((a, b) => parseTs32297FileName(a)!.fileSequenceNumber - parseTs32297FileName(b)!.fileSequenceNumber);
    const out: number[] = [];
    for (const n of names) {
      const buf = await readFile(path.join(cdrDir, n));
      assert.equal(parseFileHeader(buf).cdrCount, walkRecords(buf).count);
      for (let at = parseFileHeader(buf).headerLength; at < buf.length;) {
        const len = buf.readUInt16BE(at);
        out.push(decodeAsRecord(buf, at + 5, at + 5 + len).localRecordSequenceNumber!);
        at += 5 + len;
      }
    }
    return out;
  }

  test('every record reaches a closed BER file once; a record stored but not filed (crash) is appended at the next start', async () => {
    const n = await startNode();
    await Promise.all(range(1, 4).map(() => n.charging.record(imEvent())));
    await stopNode(n);
    assert.deepEqual(await berSeqs(), range(1, 4));
    // as if the AS died after storing 5 and 6 but before writing them to any file
    const store = await SqliteStore.open(dataDir);
    for (const seq of [5, 6]) {
      const cdr = buildCdr(imEvent(), {
        nodeId: 'as1',
        nodeAddress: '10.0.0.5',
        seq,
        now: new Date(),
        generateIcid: () => `icid-${seq}`,
      });
      await store
        .collection<CdrDoc>(CDR_COLLECTION)
        .insertOne({ ...cdr, _id: cdr.recordId, storedAt: new Date() } as unknown as CdrDoc);
    }
    await store.close();
    const n2 = await startNode();
    assert.equal((await n2.charging.record(imEvent())).localRecordSequenceNumber, 7);
    await stopNode(n2);
    assert.deepEqual(await berSeqs(), range(1, 7), 'BER files: each number once, in order');
    assert.deepEqual(await fileSeqs(), range(1, 7), 'JSON Lines export too');
  });

  test('a failing 32.297 file: records stay stored, the files catch up from the store, each number once', async () => {
    const n = await startNode({ fileRetryMs: 30, jsonl: false });
    await n.charging.record(imEvent());
    // the disk fails under the open file
    const sinks = (
      n.charging as unknown as {
        writer: { sinks: Array<{ name: string; current: { fh: { close(): Promise<void> } } | null }> };
      }
    ).writer.sinks;
    await sinks.find((s) => s.name === 'ts32297')!.current!.fh.close();
    const during = await Promise.all(range(1, 5).map(() => n.charging.record(imEvent())));
    assert.deepEqual(
      during.map((r) => r.localRecordSequenceNumber),
      range(2, 6),
    );
    assert.equal(n.charging.metrics().fileFailures, 1);
    for (let i = 0; i < 100 && n.charging.metrics().fileDegraded; i++) await sleep(10);
    assert.equal(n.charging.metrics().fileDegraded, false);
    await n.charging.record(imEvent());
    await stopNode(n);
    assert.deepEqual(await berSeqs(), range(1, 7));
  });

  test('jsonl: false writes BER files only; berFiles: false JSON Lines only', async () => {
    const n = await startNode({ jsonl: false });
    await n.charging.record(imEvent());
    await stopNode(n);
    assert.deepEqual(await berSeqs(), [1]);
    assert.deepEqual(await fileSeqs(), []);
    const n2 = await startNode({ berFiles: false });
    await n2.charging.record(imEvent());
    await stopNode(n2);
    assert.deepEqual(await berSeqs(), [1]);
    assert.deepEqual(await fileSeqs(), range(1, 2), 'the export catches up from the store');
  });
});
