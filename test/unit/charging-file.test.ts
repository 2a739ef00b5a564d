import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile, appendFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CdrFileWriter, cdrFileName, listCdrFiles } from '../../as/src/charging/cdr-file.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cdr-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rec = (seq: number, pad = 'x'.repeat(40)) => ({ localRecordSequenceNumber: seq, recordId: `as1:${seq}`, pad });

async function readLines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), `${path.basename(file)} ends with a newline`);
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

async function allSeqs(nodeId = 'as1'): Promise<number[]> {
  const seqs: number[] = [];
  for (const f of await listCdrFiles(dir, nodeId)) {
    for (const line of await readLines(f.path)) {
      seqs.push((JSON.parse(line) as { localRecordSequenceNumber: number }).localRecordSequenceNumber);
    }
  }
  return seqs;
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('CdrFileWriter', () => {
  test('file name format', () => {
    assert.equal(
      cdrFileName('as1', new Date('2024-05-01T09:08:07.654Z'), 42),
      'cdr-as1-20240501T090807-000000000042.jsonl',
    );
    assert.equal(cdrFileName('node/../x', new Date(0), 1), 'cdr-node_.._x-19700101T000000-000000000001.jsonl');
  });

  test('records appended in the same tick are written with one write call', async () => {
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    assert.equal(await w.lastSequenceInFiles(), 0);
    const ps = range(1, 100).map((s) => w.append(rec(s)));
    await Promise.all(ps);
    assert.equal(w.stats.writeCalls, 1);
    assert.equal(w.stats.linesWritten, 100);
    assert.equal(w.stats.filesCreated, 1);
    // Appends in later ticks form later batches.
    await w.append(rec(101));
    await w.append(rec(102));
    assert.equal(w.stats.writeCalls, 3);
    // Appends made while a batch is being written join the next batch together.
    const more = range(103, 110).map((s) => w.append(rec(s)));
    await Promise.all(more);
    assert.equal(w.stats.writeCalls, 4);
    await w.close();
    assert.deepEqual(await allSeqs(), range(1, 110));
    const files = await listCdrFiles(dir, 'as1');
    assert.equal(files.length, 1);
    assert.equal(w.stats.bytesWritten, (await stat(files[0]!.path)).size);
  });

  test('each append resolves only once its line is in the file', async () => {
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    await w.open();
    await w.append(rec(1));
    const file = w.currentFile!;
    assert.equal((await readLines(file)).length, 1);
    await w.append(rec(2));
    assert.equal((await readLines(file)).length, 2);
    await w.close();
  });

  test('rotation by size: two files, intact lines, continuous seqs, no file above the limit', async () => {
    const lineBytes = Buffer.byteLength(JSON.stringify(rec(10)) + '\n');
    const rotateBytes = lineBytes * 10; // seqs 1..9 are one byte shorter, so 10 of them fit
    const w = new CdrFileWriter({ dir, nodeId: 'as1', rotateBytes });
    await w.open();
    await Promise.all(range(1, 15).map((s) => w.append(rec(s))));
    await w.close();
    const files = await listCdrFiles(dir, 'as1');
    assert.equal(files.length, 2);
    assert.equal(files[0]!.firstSeq, 1);
    assert.equal(files[1]!.firstSeq, 11);
    for (const f of files) {
      assert.ok((await stat(f.path)).size <= rotateBytes, `${f.name} within rotateBytes`);
      for (const line of await readLines(f.path)) JSON.parse(line);
    }
    assert.deepEqual(await allSeqs(), range(1, 15));
    assert.equal(w.stats.writeCalls, 2, 'one batch split across the rotation: one write per file');
  });

  test('rotation by age (injected clock)', async () => {
    let now = new Date('2024-05-01T10:00:00Z');
    const w = new CdrFileWriter({ dir, nodeId: 'as1', rotateSeconds: 60, now: () => now });
    await w.open();
    await w.append(rec(1));
    now = new Date('2024-05-01T10:00:59Z');
    await w.append(rec(2));
    now = new Date('2024-05-01T10:01:00Z');
    await w.append(rec(3));
    await w.close();
    const files = await listCdrFiles(dir, 'as1');
    assert.deepEqual(
      files.map((f) => f.name),
      ['cdr-as1-20240501T100000-000000000001.jsonl', 'cdr-as1-20240501T100100-000000000003.jsonl'],
    );
    assert.deepEqual(await allSeqs(), [1, 2, 3]);
  });

  test('a sequence number not above the last is refused (no line twice)', async () => {
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    await w.open();
    await w.append(rec(5));
    await assert.rejects(w.append(rec(5)), RangeError);
    await assert.rejects(w.append(rec(3)), RangeError);
    await assert.rejects(w.append({ localRecordSequenceNumber: 0 }), TypeError);
    await w.append(rec(6));
    await w.close();
    // ... and after re-opening, the numbers found on disk are the floor.
    const w2 = new CdrFileWriter({ dir, nodeId: 'as1' });
    assert.equal(await w2.lastSequenceInFiles(), 6);
    await assert.rejects(w2.append(rec(6)), RangeError);
    await w2.close();
    assert.deepEqual(await allSeqs(), [5, 6]);
  });

  test('recovery truncates a half-written last line and returns the last complete seq', async () => {
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    await w.open();
    await Promise.all(range(1, 3).map((s) => w.append(rec(s))));
    const file = w.currentFile!;
    await w.close();
    const before = await readFile(file, 'utf8');
    const half = JSON.stringify(rec(4)).slice(0, 25);
    await appendFile(file, half);

    const w2 = new CdrFileWriter({ dir, nodeId: 'as1' });
    const report = await w2.open();
    assert.equal(report.lastSeq, 3);
    assert.equal(report.truncatedBytes, half.length);
    assert.equal(await readFile(file, 'utf8'), before, 'file is back to its complete lines');
    // The next write starts a new file; the old one is not touched again.
    await w2.append(rec(4));
    await w2.close();
    assert.equal(await readFile(file, 'utf8'), before);
    assert.equal((await listCdrFiles(dir, 'as1')).length, 2);
    assert.deepEqual(await allSeqs(), [1, 2, 3, 4]);
  });

  test('recovery cuts complete but invalid last lines, and removes a file left empty', async () => {
    const old = path.join(dir, cdrFileName('as1', new Date('2024-01-01T00:00:00Z'), 1));
    await writeFile(old, [rec(1), rec(2)].map((r) => JSON.stringify(r) + '\n').join(''));
    const newest = path.join(dir, cdrFileName('as1', new Date('2024-01-01T01:00:00Z'), 3));
    // Only garbage: a torn line padded with NULs then a newline, then a JSON line without a seq.
    await writeFile(newest, '{"localRecordSequenceNumber":3,"pa\u0000\u0000\n{"hello":1}\n');
    // Another node's file is ignored.
    const other = path.join(dir, cdrFileName('as2', new Date('2024-01-01T02:00:00Z'), 99));
    await writeFile(other, JSON.stringify(rec(99)) + '\n{broken');

    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    const report = await w.open();
    assert.equal(report.lastSeq, 2);
    assert.deepEqual(report.removedFiles, [path.basename(newest)]);
    assert.deepEqual((await readdir(dir)).sort(), [path.basename(old), path.basename(other)].sort());
    assert.ok((await readFile(other, 'utf8')).endsWith('{broken'), "other node's file untouched");
    await w.close();
  });

  test('a file with no complete line at all is removed; no files means 0', async () => {
    const only = path.join(dir, cdrFileName('as1', new Date('2024-01-01T00:00:00Z'), 1));
    await writeFile(only, '{"localRecordSequenceNumber":1,"rec');
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    assert.equal(await w.lastSequenceInFiles(), 0);
    assert.deepEqual(await readdir(dir), []);
    await w.close();
  });

  test('recovery reads the tail of a large file (lines longer than the read window)', async () => {
    const big = 'y'.repeat(150 * 1024);
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    await w.open();
    await w.append(rec(1, big));
    await w.append(rec(2, big));
    const file = w.currentFile!;
    await w.close();
    await appendFile(file, JSON.stringify(rec(3, big)).slice(0, 100 * 1024));
    const w2 = new CdrFileWriter({ dir, nodeId: 'as1' });
    assert.equal(await w2.lastSequenceInFiles(), 2);
    await w2.close();
    assert.deepEqual(await allSeqs(), [1, 2]);
  });

  test('fsync: true writes and syncs', async () => {
    const w = new CdrFileWriter({ dir, nodeId: 'as1', fsync: true, rotateBytes: 200 });
    await w.open();
    await Promise.all(range(1, 5).map((s) => w.append(rec(s))));
    await w.close();
    assert.deepEqual(await allSeqs(), range(1, 5));
  });

  test('a failed write rejects the batch and later appends until re-opened', async () => {
    const w = new CdrFileWriter({ dir, nodeId: 'as1' });
    await w.open();
    await w.append(rec(1));
    // Break the handle under the writer (as a failing disk would).
    await (w as unknown as { fh: { close(): Promise<void> } }).fh.close();
    const a = w.append(rec(2));
    const b = w.append(rec(3));
    await assert.rejects(a);
    await assert.rejects(b);
    assert.equal(w.isBroken, true);
    await assert.rejects(w.append(rec(4)));
    const report = await w.open();
    assert.equal(report.lastSeq, 1);
    assert.equal(w.isBroken, false);
    await w.append(rec(2));
    await w.close();
    assert.deepEqual(await allSeqs(), [1, 2]);
  });
});
