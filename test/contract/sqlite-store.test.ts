/**
 * What the embedded engine (SQLite) promises beyond the port's contract: several processes
 * on one database file, writes committed when their promise resolves, no lost or torn
 * write after kill -9, and the import of an old NeDB data directory.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DuplicateKeyError } from '../../as/src/store/port.js';
import { DATABASE_FILE, SqliteStore } from '../../as/src/store/sqlite-store.js';

const WORKER = fileURLToPath(new URL('../helpers/store-worker.js', import.meta.url));

interface WorkerRun {
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts the worker; `lines` holds every complete stdout line (an acknowledged operation). */
function startWorker(dir: string, ...args: string[]): WorkerRun {
  const child = spawn(process.execPath, [WORKER, dir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stderr })),
  );
  return { lines, exit, kill: (signal) => child.kill(signal) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('embedded store (SQLite)', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ims-sqlite-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps everything in one database file in WAL mode, and two stores open it at once', async () => {
    const first = await SqliteStore.open(dir);
    const second = await SqliteStore.open(dir);
    try {
      await first.collection('shared').insertOne({ _id: 'from-first', v: 1 });
      assert.deepEqual(await second.collection('shared').findOne({ _id: 'from-first' }), { _id: 'from-first', v: 1 });
      await second.collection('shared').updateOne({ _id: 'from-first' }, { $inc: { v: 1 } });
      assert.deepEqual(await first.collection('shared').findOne({ _id: 'from-first' }), { _id: 'from-first', v: 2 });
    } finally {
      await first.close();
      await second.close();
    }
    const raw = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
    try {
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
    assert.deepEqual(
      (await readdir(dir)).filter((f) => !f.startsWith(DATABASE_FILE)),
      [],
    );
  });

  it("a write's promise resolves once it is committed: another connection sees it then", async () => {
    const store = await SqliteStore.open(dir);
    const other = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
    try {
      const col = store.collection('visible');
      await col.ensureIndex({ fields: { k: 1 } });
      const seen = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          col
            .insertOne({ _id: `v${i}`, k: i })
            .then(() => other.prepare('SELECT count(*) FROM "c:visible" WHERE _id=?').pluck().get(`v${i}`)),
        ),
      );
      assert.deepEqual(
        seen,
        Array.from({ length: 20 }, () => 1),
      );
    } finally {
      other.close();
      await store.close();
    }
  });

  it('in one turn, a write that breaks a unique index fails alone; the others of the turn are committed', async () => {
    const store = await SqliteStore.open(dir);
    try {
      const col = store.collection('turn');
      await col.ensureIndex({ fields: { impu: 1 }, unique: true });
      const results = await Promise.allSettled([
        col.insertOne({ _id: '1', impu: 'sip:a@x' }),
        col.insertOne({ _id: '2', impu: 'sip:a@x' }),
        col.updateOne({ _id: 'c' }, { $inc: { n: 1 } }, { upsert: true }),
        col.insertOne({ _id: '3', impu: 'sip:b@x' }),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
      );
      assert.ok((results[1] as PromiseRejectedResult).reason instanceof DuplicateKeyError);
      assert.deepEqual(
        (await col.find({}, { sort: { _id: 1 } })).map((d) => d._id),
        ['1', '3', 'c'],
      );
    } finally {
      await store.close();
    }
  });

  it('stores documents as JSONB, and still reads, queries and updates rows written as JSON text', async () => {
    const sub = await mkdtemp(path.join(dir, 'jsonb-'));
    const store = await SqliteStore.open(sub);
    try {
      const coll = store.collection<{ _id: string; who: string; at?: Date; n?: number }>('mixed');
      await coll.ensureIndex({ fields: { who: 1 } });
      await coll.insertOne({ _id: 'new', who: 'alice', at: new Date(5) });
      // a row as the versions before JSONB wrote it: the document as JSON text
      const raw = new Database(path.join(sub, DATABASE_FILE));
      try {
        raw
          .prepare('INSERT INTO "c:mixed" (_id, doc) VALUES (?, ?)')
          .run('old', JSON.stringify({ _id: 'old', who: 'bob', at: { $$date: 7 } }));
        const types = raw.prepare('SELECT _id, typeof(doc) AS t FROM "c:mixed" ORDER BY _id').all() as Array<{
          _id: string;
          t: string;
        }>;
        assert.deepEqual(types, [
          { _id: 'new', t: 'blob' },
          { _id: 'old', t: 'text' },
        ]);
      } finally {
        raw.close();
      }
      assert.deepEqual(await coll.findOne({ who: 'bob' }), { _id: 'old', who: 'bob', at: new Date(7) });
      assert.deepEqual(await coll.findOne({ who: 'alice' }), { _id: 'new', who: 'alice', at: new Date(5) });
      await coll.updateOne({ _id: 'old' }, { $set: { n: 1 } });
      assert.deepEqual(await coll.findOne({ _id: 'old' }), { _id: 'old', who: 'bob', at: new Date(7), n: 1 });
      assert.deepEqual(
        (await coll.find({ who: { $in: ['alice', 'bob'] } }, { sort: { who: 1 } })).map((d) => d._id),
        ['new', 'old'],
      );
    } finally {
      await store.close();
    }
  });

  it("waits for another connection's write lock without holding the event loop", async () => {
    const sub = await mkdtemp(path.join(dir, 'locked-'));
    const store = await SqliteStore.open(sub);
    const other = new Database(path.join(sub, DATABASE_FILE));
    try {
      await store.collection('c').insertOne({ _id: 'first' });
      other.exec('BEGIN IMMEDIATE'); // another writer holds the lock across turns of the loop
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 10);
      const write = store.collection('c').insertOne({ _id: 'second' });
      // (a read issued now would wait with the write: it must see it)
      await sleep(300);
      other.exec('COMMIT');
      await write;
      clearInterval(ticker);
      assert.ok(ticks >= 15, `the event loop ran while the lock was held (${ticks} ticks of 10 ms in 300 ms)`);
      assert.deepEqual(await store.collection('c').findOne({ _id: 'second' }), { _id: 'second' });
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
      await store.close();
    }
  });

  it('a plain index refuses an array in its field (a multikey index takes it)', async () => {
    const store = await SqliteStore.open(dir);
    try {
      const col = store.collection('plain');
      await col.ensureIndex({ fields: { tag: 1 } });
      await assert.rejects(col.insertOne({ _id: 'a', tag: ['x', 'y'] }), /plain index and cannot hold an array/);
      await col.insertOne({ _id: 'b', tag: 'x' });
      await assert.rejects(col.updateOne({ _id: 'b' }, { $set: { tag: ['x'] } }), /cannot hold an array/);
      assert.deepEqual(await col.findOne({ _id: 'b' }), { _id: 'b', tag: 'x' });
    } finally {
      await store.close();
    }
  });

  it('the TTL sweep deletes expired documents from the file, not only from answers', async () => {
    const store = await SqliteStore.open(dir);
    try {
      const col = store.collection('sweep');
      await col.ensureIndex({ fields: { endedAt: 1 }, expireAfterSeconds: 1 });
      const old = new Date(Date.now() - 60_000);
      await col.insertMany(Array.from({ length: 2500 }, (_, i) => ({ _id: `o${i}`, endedAt: old })));
      await col.insertOne({ _id: 'keep', endedAt: new Date(Date.now() + 60_000) });
      await store.sweep();
    } finally {
      await store.close();
    }
    const raw = new Database(path.join(dir, DATABASE_FILE), { readonly: true });
    try {
      assert.deepEqual(raw.prepare('SELECT _id FROM "c:sweep"').pluck().all(), ['keep']);
    } finally {
      raw.close();
    }
  });

  it('two processes racing findOneAndUpdate on one file never see the same "before"', async () => {
    const raceDir = await mkdtemp(path.join(tmpdir(), 'ims-sqlite-race-'));
    try {
      const store = await SqliteStore.open(raceDir);
      await store.collection('race').insertOne({ _id: 'seq', n: 0 });
      await store.close();
      const each = 300;
      const workers = [
        startWorker(raceDir, 'race', String(each), 'go'),
        startWorker(raceDir, 'race', String(each), 'go'),
      ];
      // both open and ready, then both go at once
      const until = Date.now() + 20_000;
      while (!workers.every((w) => w.lines.includes('ready'))) {
        if (Date.now() > until) assert.fail('the racers did not get ready');
        await sleep(5);
      }
      await writeFile(path.join(raceDir, 'go'), '');
      const exits = await Promise.all(workers.map((w) => w.exit));
      for (const e of exits) assert.equal(e.code, 0, e.stderr);
      for (const w of workers) w.lines.splice(w.lines.indexOf('ready'), 1);
      const seen = workers
        .flatMap((w) => w.lines)
        .map(Number)
        .sort((a, b) => a - b);
      assert.deepEqual(
        seen,
        Array.from({ length: 2 * each }, (_, i) => i),
      );
      // both took part, interleaved (else this would not be a race)
      for (const w of workers) assert.equal(w.lines.length, each);
      const [a, b] = workers.map((w) => w.lines.map(Number));
      assert.ok(
        a && b && Math.max(...a) > Math.min(...b) && Math.max(...b) > Math.min(...a),
        'the two processes did not overlap',
      );
      const check = await SqliteStore.open(raceDir);
      assert.deepEqual(await check.collection('race').findOne({ _id: 'seq' }), { _id: 'seq', n: 2 * each });
      await check.close();
    } finally {
      await rm(raceDir, { recursive: true, force: true });
    }
  });

  it('kill -9 during writes loses no acknowledged write and tears none', async () => {
    for (const delayMs of [400, 1100]) {
      const crashDir = await mkdtemp(path.join(tmpdir(), 'ims-sqlite-crash-'));
      try {
        const worker = startWorker(crashDir, 'write-loop');
        // let it write for a while (at least some acknowledged writes), then kill it mid-flight
        const deadline = Date.now() + 20_000;
        while (worker.lines.length < 50 && Date.now() < deadline) await sleep(20);
        await sleep(delayMs);
        worker.kill('SIGKILL');
        const exit = await worker.exit;
        assert.equal(exit.signal, 'SIGKILL', exit.stderr);
        const acked = worker.lines.map(Number);
        assert.ok(acked.length >= 50, `only ${acked.length} writes acknowledged`);

        const store = await SqliteStore.open(crashDir);
        try {
          const docs = await store
            .collection<{ _id: string; i: number; payload: string; nested: { i: number; at: Date }; list: unknown[] }>(
              'journal',
            )
            .find({});
          const byI = new Map(docs.map((d) => [d.i, d]));
          for (const i of acked) assert.ok(byI.has(i), `acknowledged write ${i} lost`);
          for (const d of docs) {
            assert.equal(d._id, `w${d.i}`);
            assert.equal(d.payload, 'x'.repeat((d.i * 37) % 2000));
            assert.deepEqual(d.nested, { i: d.i, at: new Date(1_700_000_000_000 + d.i) });
            assert.deepEqual(d.list, [d.i, `${d.i}`]);
          }
          // the document and the counter were written in one transaction: both or neither
          const counter = await store.collection('journal_counter').findOne({ _id: 'count' });
          assert.equal(counter?.n, docs.length);
          assert.equal(counter?.last, Math.max(...docs.map((d) => d.i)));
        } finally {
          await store.close();
        }
      } finally {
        await rm(crashDir, { recursive: true, force: true });
      }
    }
  });
});

describe('embedded store: import of a NeDB data directory', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ims-nedb-import-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('imports live documents (later lines win, tombstones delete, Dates stay Dates) and keeps the old files', async () => {
    const users = [
      '{"_id":"alice","ha1":"old","createdAt":{"$$date":1700000000000}}',
      '{"_id":"bob","ha1":"b1","tags":["x","y"],"sub":{"at":{"$$date":5}}}',
      '{"$$indexCreated":{"fieldName":"ha1","unique":false,"sparse":false}}',
      '{"_id":"alice","ha1":"new","createdAt":{"$$date":1700000000000}}',
      '{"_id":"carol","ha1":"c1"}',
      '{"$$deleted":true,"_id":"carol"}',
      '{"_id":"dave","ha1":"torn by a cra', // a crash in the middle of an append
    ].join('\n');
    await writeFile(path.join(dir, 'users.db'), `${users}\n`);
    const cdrs = Array.from(
      { length: 12_000 },
      (_, i) => `{"_id":"r${i}","localRecordSequenceNumber":${i + 1},"storedAt":{"$$date":${Date.now()}}}`,
    );
    await writeFile(path.join(dir, 'cdrs.db'), `${cdrs.join('\n')}\n`);

    let store = await SqliteStore.open(dir);
    try {
      const u = store.collection('users');
      assert.deepEqual(await u.find({}, { sort: { _id: 1 } }), [
        { _id: 'alice', ha1: 'new', createdAt: new Date(1_700_000_000_000) },
        { _id: 'bob', ha1: 'b1', tags: ['x', 'y'], sub: { at: new Date(5) } },
      ]);
      assert.equal(await store.collection('cdrs').count({}), 12_000);
      assert.deepEqual((await readdir(dir)).filter((f) => !f.startsWith(DATABASE_FILE)).sort(), [
        'cdrs.db.imported',
        'users.db.imported',
      ]);
      await u.insertOne({ _id: 'erin', ha1: 'e1' });
    } finally {
      await store.close();
    }
    // the next start imports nothing again
    store = await SqliteStore.open(dir);
    try {
      assert.deepEqual(
        (await store.collection('users').find({}, { sort: { _id: 1 } })).map((d) => d._id),
        ['alice', 'bob', 'erin'],
      );
    } finally {
      await store.close();
    }
  });

  it('an import interrupted before the rename is done again without duplicates', async () => {
    const again = await mkdtemp(path.join(tmpdir(), 'ims-nedb-again-'));
    try {
      await writeFile(path.join(again, 'pubs.db'), '{"_id":"p1","v":1}\n{"_id":"p2","v":2}\n');
      await (await SqliteStore.open(again)).close();
      // as if the process had died after copying but before renaming the datafile
      await writeFile(path.join(again, 'pubs.db'), '{"_id":"p1","v":10}\n{"_id":"p2","v":2}\n');
      const store = await SqliteStore.open(again);
      try {
        assert.deepEqual(await store.collection('pubs').find({}, { sort: { _id: 1 } }), [
          { _id: 'p1', v: 10 },
          { _id: 'p2', v: 2 },
        ]);
      } finally {
        await store.close();
      }
    } finally {
      await rm(again, { recursive: true, force: true });
    }
  });
});
