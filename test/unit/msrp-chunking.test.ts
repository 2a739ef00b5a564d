import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteCoverage, Reassembly, checkChunk, chunkMessage } from '../../as/src/msrp/chunking.js';
import { parseMessages } from '../../as/src/msrp/framer.js';
import { byteRangeOf, serializeMessage } from '../../as/src/msrp/message.js';

describe('MSRP chunking', () => {
  it('cuts a message into ranges, + on all but the last, and the chunks read back into the message', () => {
    const body = Buffer.from('abcdefghijklmnopqrstuvwxy');
    const chunks = chunkMessage(body, 10);
    assert.deepEqual(
      chunks.map((c) => [c.range.start, c.range.end, c.range.total, c.flag]),
      [
        [1, 10, 25, '+'],
        [11, 20, 25, '+'],
        [21, 25, 25, '$'],
      ],
    );
    const wire = Buffer.concat(
      chunks.map((c, i) =>
        serializeMessage({
          head: {
            kind: 'request',
            tid: `tid0000${i}`,
            method: 'SEND',
            headers: [
              { name: 'To-Path', value: 'msrp://h:1/s;tcp' },
              { name: 'From-Path', value: 'msrp://g:2/t;tcp' },
              { name: 'Message-ID', value: 'm1' },
              { name: 'Byte-Range', value: `${c.range.start}-${c.range.end}/${c.range.total}` },
              { name: 'Content-Type', value: 'text/plain' },
            ],
          },
          body: c.data,
          flag: c.flag,
        }),
      ),
    );
    const r = new Reassembly(1000);
    for (const m of parseMessages(wire)) assert.deepEqual(r.add(byteRangeOf(m.head), m.body!, m.flag), { ok: true });
    assert.equal(r.state, 'complete');
    assert.equal(r.body().toString(), body.toString());
  });

  it('reassembles chunks out of order, a resent range counted once', () => {
    const r = new Reassembly(1000);
    r.add({ start: 11, end: 20, total: 20 }, Buffer.from('KLMNOPQRST'), '$');
    assert.equal(r.state, 'receiving');
    r.add({ start: 6, end: 12, total: 20 }, Buffer.from('FGHIJKL'), '+');
    r.add({ start: 1, end: 5, total: 20 }, Buffer.from('ABCDE'), '+');
    assert.equal(r.state, 'complete');
    assert.equal(r.receivedBytes, 20);
    assert.equal(r.body().toString(), 'ABCDEFGHIJKLMNOPQRST');
  });

  it('a chunk interrupted early (+ before its range-end) is continued where it stopped', () => {
    const r = new Reassembly(1000);
    r.add({ start: 1, end: 20, total: 20 }, Buffer.from('ABCDEFG'), '+');
    r.add({ start: 8, total: 20 }, Buffer.from('HIJKLMNOPQRST'), '$');
    assert.equal(r.state, 'complete');
    assert.equal(r.body().toString(), 'ABCDEFGHIJKLMNOPQRST');
  });

  it('# ends the message as interrupted, keeping what arrived', () => {
    const r = new Reassembly(1000);
    r.add({ start: 1, total: 100 }, Buffer.from('ABCDE'), '#');
    assert.equal(r.state, 'interrupted');
    assert.equal(r.body().toString(), 'ABCDE');
    assert.equal(r.add({ start: 6, total: 100 }, Buffer.from('F'), '$').ok, false);
  });

  it('refuses bytes beyond the total (400), a changed total (400), and a message above the limit (413)', () => {
    assert.deepEqual(checkChunk({ start: 8, end: 12, total: 10 }, 5, undefined, 1000), {
      ok: false,
      code: 400,
      reason: 'bytes 8-12 beyond the total 10',
    });
    assert.equal(checkChunk({ start: 1, end: 12, total: 10 }, 0, undefined, 1000).ok, false);
    assert.deepEqual(checkChunk({ start: 1, total: 20 }, 3, 10, 1000), {
      ok: false,
      code: 400,
      reason: 'total changed from 10 to 20',
    });
    assert.deepEqual(checkChunk({ start: 1, total: 2000 }, 0, undefined, 1000), {
      ok: false,
      code: 413,
      reason: 'message of 2000 bytes above 1000',
    });
    assert.deepEqual(checkChunk({ start: 990 }, 20, undefined, 1000), {
      ok: false,
      code: 413,
      reason: 'message passes 1000 bytes',
    });
    const r = new Reassembly(1000);
    assert.equal(r.add({ start: 8, end: 12, total: 10 }, Buffer.from('abcde'), '$').ok, false);
    assert.equal(r.state, 'refused');
    assert.equal(r.refusal?.code, 400);
  });

  it('a total of * is learnt from the $ chunk', () => {
    const r = new Reassembly(1000);
    r.add({ start: 1 }, Buffer.from('abc'), '+');
    r.add({ start: 4 }, Buffer.from('def'), '$');
    assert.equal(r.state, 'complete');
    assert.equal(r.body().toString(), 'abcdef');
  });

  it('coverage merges touching and overlapping spans', () => {
    const c = new ByteCoverage();
    c.add(5, 9);
    c.add(1, 3);
    assert.equal(c.contiguous, 3);
    c.add(4, 4);
    assert.equal(c.contiguous, 9);
    c.add(2, 7);
    assert.equal(c.bytes, 9);
    assert.ok(c.covers(9));
    assert.ok(!c.covers(10));
  });
});
