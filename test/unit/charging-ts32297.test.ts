import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, appendFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCdr, type Cdr } from '../../as/src/charging/record.js';
import {
  encodeFileHeader,
  encodeCdrHeader,
  headerTimestamp,
  nodeIpField,
  parseFileHeader,
  parseCdrHeader,
  decodeLostCdrIndicator,
  ts32297FileName,
  parseTs32297FileName,
  nextFileSequenceNumber,
} from '../../as/src/charging/ts32297-format.js';
import { Ts32297Writer, walkRecords } from '../../as/src/charging/ts32297-writer.js';
import { decodeAsRecord } from '../../as/src/charging/as-record-decode.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const T = new Date('2026-12-07T13:15:42.500Z');

function cdr(seq: number, pad = ''): Cdr {
  return buildCdr(
    {
      service: 'im',
      role: 'terminating',
      sipMethod: 'MESSAGE',
      sessionId: `call-${seq}${pad}`,
      callingParty: 'sip:alice@example.com',
      calledParty: 'sip:bob@example.com',
      requestTime: T,
      responseTime: T,
      statusCode: 200,
      outcome: 'delivered',
      chargingVector: 'icid-value=abc',
    },
    { nodeId: 'as1', nodeAddress: '127.0.0.1', seq, now: T, generateIcid: () => 'x' },
  );
}

describe('TS 32.297 layout, byte for byte', () => {
  test('header timestamp: month, day, hour, minute, +00:00', () => {
    // 12 (1100) 7 (00111) 13 (01101) 15 (001111) + (1) 0 (00000) 0 (000000)
    assert.equal(
      headerTimestamp(T).toString(2).padStart(32, '0'),
      '1100' + '00111' + '01101' + '001111' + '1' + '00000' + '000000',
    );
    assert.equal(headerTimestamp(T), 0xc3b4f800);
  });
  test('file header of 54 octets', () => {
    const h = encodeFileHeader({
      fileLength: 0x1234,
      openedAt: T,
      lastAppendAt: new Date('2026-01-02T03:04:00Z'),
      cdrCount: 3,
      fileSequenceNumber: 42,
      closureReason: 'size',
      nodeIp: nodeIpField('10.1.2.3'),
      lostCdrs: 0,
    });
    assert.equal(
      hex(h),
      [
        '00001234', // file length
        '00000036', // header length 54
        'e0',
        'e0', // release identifier 7 (10 or later) / version 0, high and low
        'c3b4f800', // opened 12-07 13:15 +0000
        '110c4800', // last append 01-02 03:04 +0000: 0001 00010 00011 000100 1 00000 000000
        '00000003', // CDR count
        '0000002a', // file sequence number 42
        '01', // closure: size
        'ff'.repeat(16) + '0a010203', // node IPv4
        '00', // lost CDRs: none
        '0000',
        '0000', // routeing filter, private extension: empty
        '08',
        '08', // release extensions: 10 + 8 = Release 18
      ].join(''),
    );
    const p = parseFileHeader(h);
    assert.deepEqual(
      [
        p.headerLength,
        p.highRelease,
        p.lowRelease,
        p.cdrCount,
        p.fileSequenceNumber,
        p.closureReason,
        p.nodeIp,
        p.lostCdrs,
      ],
      [54, 18, 18, 3, 42, 'size', '10.1.2.3', 0],
    );
    assert.deepEqual(p.opened, { month: 12, day: 7, hour: 13, minute: 15, offsetMinutes: 0 });
  });
  test('lost-CDR indicator: 0 none, high bit + exact count, 0xFF for 127 or more', () => {
    const lostOctet = (n: number) =>
      encodeFileHeader({
        fileLength: 54,
        openedAt: T,
        lastAppendAt: T,
        cdrCount: 0,
        fileSequenceNumber: 1,
        closureReason: 'normal',
        nodeIp: nodeIpField('10.1.2.3'),
        lostCdrs: n,
      })[47];
    assert.deepEqual([0, 1, 2, 126, 127, 5000].map(lostOctet), [0x00, 0x81, 0x82, 0xfe, 0xff, 0xff]);
    assert.deepEqual(decodeLostCdrIndicator(0x83), { lostCdrs: 3, lostCdrsExact: true });
    assert.deepEqual(decodeLostCdrIndicator(0xff), { lostCdrs: 127, lostCdrsExact: false });
    assert.deepEqual(decodeLostCdrIndicator(0x80), { lostCdrs: 1, lostCdrsExact: false });
    assert.deepEqual(decodeLostCdrIndicator(0x05), { lostCdrs: 5, lostCdrsExact: false });
  });
  test('node address field for IPv6 and a name', () => {
    assert.equal(hex(nodeIpField('::1')), 'ffffffff' + '0'.repeat(31) + '1');
    assert.equal(hex(nodeIpField('as.example.com')), 'ff'.repeat(20));
  });
  test('CDR header: length, Release 18, BER, TS 32.260', () => {
    assert.equal(hex(encodeCdrHeader(300)), '012c' + 'e0' + '29' + '08');
    assert.deepEqual(parseCdrHeader(encodeCdrHeader(300), 0), {
      length: 300,
      release: 18,
      version: 0,
      format: 1,
      tsNumber: 9,
      headerLength: 5,
    });
    assert.throws(() => encodeCdrHeader(70000), RangeError);
  });
  test('file name and sequence numbers', () => {
    assert.equal(ts32297FileName('as1', 42, T), 'as1_-_42.20261207_-_1315+0000');
    assert.deepEqual(parseTs32297FileName('as1_-_42.20261207_-_1315+0000'), { nodeId: 'as1', fileSequenceNumber: 42 });
    assert.equal(parseTs32297FileName('cdr-as1.jsonl'), undefined);
    assert.equal(nextFileSequenceNumber(4294967295), 1);
  });
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cdr-32297-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function picked(): Promise<string[]> {
  return (await readdir(dir))
    .filter((n) => !n.startsWith('.'))
    .sort((a, b) => parseTs32297FileName(a)!.fileSequenceNumber - parseTs32297FileName(b)!.fileSequenceNumber);
}

async function seqsOf(name: string): Promise<number[]> {
  const buf = await readFile(path.join(dir, name));
  const out: number[] = [];
  for (let at = parseFileHeader(buf).headerLength; at < buf.length;) {
    const h = parseCdrHeader(buf, at)!;
    out.push(decodeAsRecord(buf, at + h.headerLength, at + h.headerLength + h.length).localRecordSequenceNumber!);
    at += h.headerLength + h.length;
  }
  return out;
}

describe('Ts32297Writer', () => {
  test('records go to a file that appears in the pick-up directory only when closed, with a true header', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    assert.equal((await w.open()).lastSeq, 0);
    await Promise.all([w.append(cdr(1)), w.append(cdr(2)), w.append(cdr(3))]);
    assert.deepEqual(await picked(), [], 'nothing to pick up while the file is open');
    assert.deepEqual(await readdir(path.join(dir, '.open')), ['as1_-_1.20261207_-_1315+0000']);
    await w.close();
    assert.deepEqual(await picked(), ['as1_-_1.20261207_-_1315+0000']);
    const buf = await readFile(path.join(dir, 'as1_-_1.20261207_-_1315+0000'));
    const h = parseFileHeader(buf);
    assert.equal(h.fileLength, buf.length);
    assert.equal(h.cdrCount, 3);
    assert.equal(h.fileSequenceNumber, 1);
    assert.equal(h.closureReason, 'normal');
    assert.equal(h.nodeIp, '127.0.0.1');
    assert.deepEqual(await seqsOf('as1_-_1.20261207_-_1315+0000'), [1, 2, 3]);
    // the file is the header followed by CDR header + exactly the BER of each record
    const { encodeAsRecord } = await import('../../as/src/charging/as-record.js');
    const expected = Buffer.concat([
      buf.subarray(0, 54),
      ...[1, 2, 3].map((s) => {
        const r = encodeAsRecord(cdr(s));
        return Buffer.concat([encodeCdrHeader(r.length), r]);
      }),
    ]);
    assert.equal(hex(buf), hex(expected));
  });

  test('closed by record count, then by size; numbered 1, 2, 3 …', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', maxRecords: 2, now: () => T });
    await w.open();
    for (let s = 1; s <= 5; s++) await w.append(cdr(s));
    await w.close();
    const names = await picked();
    assert.equal(names.length, 3);
    assert.deepEqual(await Promise.all(names.map(seqsOf)), [[1, 2], [3, 4], [5]]);
    assert.deepEqual(
      await Promise.all(names.map(async (n) => parseFileHeader(await readFile(path.join(dir, n))).closureReason)),
      ['count', 'count', 'normal'],
    );
    const one = (await readFile(path.join(dir, names[2]!))).length - 54;
    const w2 = new Ts32297Writer({
      dir,
      nodeId: 'as1',
      nodeAddress: '127.0.0.1',
      maxBytes: 54 + 2 * one + 10,
      now: () => T,
    });
    assert.equal((await w2.open()).lastSeq, 5);
    await Promise.all([6, 7, 8].map((s) => w2.append(cdr(s))));
    await w2.close();
    const after = (await picked()).slice(3);
    assert.deepEqual(await Promise.all(after.map(seqsOf)), [[6, 7], [8]]);
    assert.equal(parseFileHeader(await readFile(path.join(dir, after[0]!))).closureReason, 'size');
    assert.equal(parseFileHeader(await readFile(path.join(dir, after[0]!))).fileSequenceNumber, 4);
  });

  test('closed by age even when no record follows', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', maxSeconds: 1 });
    await w.open();
    await w.append(cdr(1));
    await new Promise((r) => setTimeout(r, 1300));
    const names = await picked();
    assert.equal(names.length, 1);
    assert.equal(parseFileHeader(await readFile(path.join(dir, names[0]!))).closureReason, 'time');
    await w.close();
  });

  test('a crash: the open file is repaired (torn record cut) and closed at the next open; no number twice', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    await w.open();
    await Promise.all([1, 2, 3].map((s) => w.append(cdr(s))));
    // the process dies here: no close; half a record follows
    const open = path.join(dir, '.open', 'as1_-_1.20261207_-_1315+0000');
    const { encodeAsRecord } = await import('../../as/src/charging/as-record.js');
    const r4 = encodeAsRecord(cdr(4));
    await appendFile(open, Buffer.concat([encodeCdrHeader(r4.length), r4]).subarray(0, 20));
    const w2 = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    const rep = await w2.open();
    assert.equal(rep.lastSeq, 3);
    assert.equal(rep.truncatedBytes, 20);
    assert.deepEqual(rep.recoveredFiles, ['as1_-_1.20261207_-_1315+0000']);
    assert.deepEqual(await picked(), ['as1_-_1.20261207_-_1315+0000']);
    const buf = await readFile(path.join(dir, 'as1_-_1.20261207_-_1315+0000'));
    assert.equal(parseFileHeader(buf).cdrCount, 3);
    assert.equal(parseFileHeader(buf).fileLength, buf.length);
    assert.deepEqual(parseFileHeader(buf).opened, { month: 12, day: 7, hour: 13, minute: 15, offsetMinutes: 0 });
    await assert.rejects(w2.append(cdr(3)), RangeError);
    await w2.append(cdr(4));
    await w2.close();
    assert.deepEqual(await Promise.all((await picked()).map(seqsOf)), [[1, 2, 3], [4]]);
  });

  test('a file already taken by the mediation system still counts: numbers continue', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    await w.open();
    await w.append(cdr(1));
    await w.close();
    await unlink(path.join(dir, 'as1_-_1.20261207_-_1315+0000'));
    const w2 = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    assert.equal((await w2.open()).lastSeq, 1);
    await w2.append(cdr(2));
    await w2.close();
    assert.deepEqual(await picked(), ['as1_-_2.20261207_-_1315+0000']);
  });

  test('an open file with no complete record is removed; walkRecords stops at the first fault', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    await w.open();
    await w.append(cdr(1));
    const open = path.join(dir, '.open', 'as1_-_1.20261207_-_1315+0000');
    const buf = await readFile(open);
    assert.deepEqual(walkRecords(buf), { count: 1, lastSeq: 1, validLength: buf.length });
    assert.deepEqual(walkRecords(buf.subarray(0, buf.length - 1)), { count: 0, lastSeq: 0, validLength: 54 });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(open, buf.subarray(0, 60));
    const rep = await new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1' }).open();
    assert.deepEqual(rep.removedFiles, ['as1_-_1.20261207_-_1315+0000']);
    assert.equal(rep.lastSeq, 0);
    assert.deepEqual(await picked(), []);
  });

  test('lost CDRs: a record the encoder refuses is counted and reported in the next file header, the files go on', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', maxRecords: 2, now: () => T });
    await w.open();
    await w.append(cdr(1));
    // a cause no IMS enumeration value encodes: the BER encoder throws on it
    await w.append({ ...cdr(2), causeForRecordClosing: 'noSuchCause' as never });
    await w.append(cdr(3));
    await w.append(cdr(4));
    await w.append(cdr(5));
    await w.close();
    const names = await picked();
    assert.deepEqual(await Promise.all(names.map(seqsOf)), [
      [1, 3],
      [4, 5],
    ]);
    const headers = await Promise.all(names.map(async (n) => parseFileHeader(await readFile(path.join(dir, n)))));
    assert.deepEqual(
      headers.map((h) => [h.lostCdrs, h.lostCdrsExact]),
      [
        [0, true],
        [1, true],
      ],
      'the loss is reported once, by the file opened after it',
    );
    assert.equal(w.stats.recordsLost, 1);
  });

  test('lost CDRs: a write error whose records are never offered again is counted; the count survives a restart', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    await w.open();
    await w.append(cdr(1));
    // the disk fails on the next write
    const inject = w as unknown as { writeAt: (...a: unknown[]) => Promise<void> };
    const real = inject.writeAt;
    inject.writeAt = async () => {
      throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    };
    await assert.rejects(w.append(cdr(2)), /no space/);
    assert.equal(w.isBroken, true);
    inject.writeAt = real;
    // re-opened (the open file with record 1 is closed); record 2 is not offered again (its source lost it), 3 is
    const rep = await w.open();
    assert.equal(rep.lastSeq, 1);
    await w.append(cdr(3));
    await w.close();
    // a restart with the count pending: a new writer reports it in its first file
    const w2 = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    await w2.open();
    await w2.append(cdr(6));
    await w2.close();
    const names = await picked();
    assert.deepEqual(await Promise.all(names.map(seqsOf)), [[1], [3], [6]]);
    const lost = await Promise.all(names.map(async (n) => parseFileHeader(await readFile(path.join(dir, n))).lostCdrs));
    assert.deepEqual(
      lost,
      [0, 1, 2],
      'record 2 in the file after the error, records 4 and 5 in the first file after the restart',
    );
  });

  test('lost CDRs: a write error whose records are offered again after the re-open loses nothing', async () => {
    const w = new Ts32297Writer({ dir, nodeId: 'as1', nodeAddress: '127.0.0.1', now: () => T });
    await w.open();
    await w.append(cdr(1));
    const inject = w as unknown as { writeAt: (...a: unknown[]) => Promise<void> };
    const real = inject.writeAt;
    inject.writeAt = async () => {
      throw new Error('EIO');
    };
    await assert.rejects(w.append(cdr(2)), /EIO/);
    inject.writeAt = real;
    await w.open();
    await w.append(cdr(2));
    await w.close();
    const names = await picked();
    assert.deepEqual(await Promise.all(names.map(seqsOf)), [[1], [2]]);
    assert.deepEqual(
      await Promise.all(names.map(async (n) => parseFileHeader(await readFile(path.join(dir, n))).lostCdrs)),
      [0, 0],
    );
    assert.equal(w.stats.recordsLost, 0);
  });
});
