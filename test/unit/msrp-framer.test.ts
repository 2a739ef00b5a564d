import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FrameEvent, MsrpFramer } from '../../as/src/msrp/framer.js';

const crlf = (lines: string[]) => lines.map((l) => `${l}\r\n`).join('');
const SEND = crlf([
  'MSRP a786hjs2 SEND',
  'To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp',
  'From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp',
  'Message-ID: 87652491',
  'Byte-Range: 1-25/25',
  'Content-Type: text/plain',
  '',
  'Hey Bob, are you there?',
  '-------a786hjs2$',
]);

function feed(framer: MsrpFramer, data: Buffer, pieces: number[]): FrameEvent[] {
  const out: FrameEvent[] = [];
  let at = 0;
  for (const n of pieces) {
    out.push(...framer.push(data.subarray(at, at + n)));
    at += n;
  }
  out.push(...framer.push(data.subarray(at)));
  return out;
}

function summary(events: FrameEvent[]): { heads: string[]; body: string; ends: string[]; errors: string[] } {
  return {
    heads: events.flatMap((e) => (e.type === 'head' ? [e.head.tid] : [])),
    body: Buffer.concat(events.flatMap((e) => (e.type === 'body' ? [e.data] : []))).toString('latin1'),
    ends: events.flatMap((e) => (e.type === 'end' ? [e.flag] : [])),
    errors: events.flatMap((e) => (e.type === 'error' ? [e.reason] : [])),
  };
}

describe('MSRP framer: TCP data in any pieces', () => {
  it('frames the same message whatever the split, including one byte at a time', () => {
    const data = Buffer.from(SEND);
    for (const size of [1, 2, 3, 7, 13, 64, data.length]) {
      const pieces = Array.from({ length: Math.ceil(data.length / size) }, () => size);
      const s = summary(feed(new MsrpFramer(), data, pieces));
      assert.deepEqual(
        s,
        { heads: ['a786hjs2'], body: 'Hey Bob, are you there?', ends: ['$'], errors: [] },
        `pieces of ${size}`,
      );
    }
  });

  it('keeps body data that only looks like an end-line (another flag character, another transaction)', () => {
    const tricky = 'a\r\n-------a786hjs2X\r\nb\r\n-------other1$\r\nc';
    const data = Buffer.from(SEND.replace('Hey Bob, are you there?', tricky));
    for (const size of [1, 5, 1000]) {
      const s = summary(
        feed(
          new MsrpFramer(),
          data,
          Array.from({ length: Math.ceil(data.length / size) }, () => size),
        ),
      );
      assert.equal(s.body, tricky);
      assert.deepEqual(s.ends, ['$']);
    }
  });

  it('interrupted (#) and continued (+) end-lines, an empty body, and a bodiless request', () => {
    const interrupted = SEND.replace('-------a786hjs2$', '-------a786hjs2#');
    const empty = crlf([
      'MSRP emptyb0d SEND',
      'To-Path: msrp://h:1/s;tcp',
      'From-Path: msrp://g:2/t;tcp',
      'Message-ID: 2',
      'Byte-Range: 1-0/0',
      'Content-Type: text/plain',
      '',
      '',
      '-------emptyb0d+',
    ]);
    // lenient: an empty body written without the CRLF of its (empty) data part
    const bare = crlf([
      'MSRP emptyb1d SEND',
      'To-Path: msrp://h:1/s;tcp',
      'From-Path: msrp://g:2/t;tcp',
      'Message-ID: 2',
      'Content-Type: text/plain',
      '',
      '-------emptyb1d$',
    ]);
    const bodiless = crlf([
      'MSRP nobody12 SEND',
      'To-Path: msrp://h:1/s;tcp',
      'From-Path: msrp://g:2/t;tcp',
      'Message-ID: 3',
      '-------nobody12$',
    ]);
    const all = Buffer.from(interrupted + empty + bare + bodiless);
    for (const size of [1, 3, all.length]) {
      const events = feed(
        new MsrpFramer(),
        all,
        Array.from({ length: Math.ceil(all.length / size) }, () => size),
      );
      assert.deepEqual(summary(events).ends, ['#', '+', '$', '$']);
      const heads = events.filter((e) => e.type === 'head') as Array<Extract<FrameEvent, { type: 'head' }>>;
      assert.deepEqual(
        heads.map((h) => h.hasBody),
        [true, true, true, false],
      );
      assert.equal(summary(events).body, 'Hey Bob, are you there?');
      assert.deepEqual(summary(events).errors, []);
    }
  });

  it('streams a large body in pieces without holding it: each piece is handed on as it comes', () => {
    const framer = new MsrpFramer();
    const head = Buffer.from(
      crlf([
        'MSRP bigbig01 SEND',
        'To-Path: msrp://h:1/s;tcp',
        'From-Path: msrp://g:2/t;tcp',
        'Message-ID: 4',
        'Byte-Range: 1-*/*',
        'Content-Type: application/octet-stream',
        '',
      ]),
    );
    let bodyBytes = 0;
    framer.push(head);
    const piece = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 100; i++) {
      for (const ev of framer.push(piece)) if (ev.type === 'body') bodyBytes += ev.data.length;
      // everything but the few bytes that may start the end-line has been handed on
      assert.ok((i + 1) * piece.length - bodyBytes < 32, `held back ${(i + 1) * piece.length - bodyBytes} bytes`);
    }
    const end = framer.push(Buffer.from('\r\n-------bigbig01$\r\n'));
    for (const ev of end) if (ev.type === 'body') bodyBytes += ev.data.length;
    assert.equal(bodyBytes, 100 * piece.length);
    assert.deepEqual(summary(end).ends, ['$']);
  });

  it('refuses a head longer than the limit, even before its line ends, and stays failed', () => {
    const framer = new MsrpFramer(1024);
    const events = framer.push(Buffer.from(`MSRP abcd1234 SEND\r\nX-Long: ${'a'.repeat(2000)}`));
    assert.equal(summary(events).errors.length, 1);
    assert.match(summary(events).errors[0]!, /longer than 1024/);
    assert.equal(framer.failed, true);
    assert.deepEqual(framer.push(Buffer.from(SEND)), []);
  });

  it('refuses an end-line of another transaction after a bodiless head, a bad start line, a header without a colon', () => {
    const wrongEnd = crlf(['MSRP abcd1234 SEND', 'To-Path: msrp://h:1/s;tcp', '-------wxyz9876$']);
    for (const bad of [
      wrongEnd,
      'HTTP/1.1 200 OK\r\n',
      'MSRP abcd1234 SEND\r\nno colon here\r\n',
      'MSRP ab SEND\r\n',
    ]) {
      const s = summary(new MsrpFramer().push(Buffer.from(bad)));
      assert.equal(s.errors.length, 1, JSON.stringify(bad));
    }
  });

  it('tolerates blank lines between messages', () => {
    const s = summary(new MsrpFramer().push(Buffer.from(`\r\n${SEND}\r\n\r\n${SEND}`)));
    assert.deepEqual(s.ends, ['$', '$']);
  });
});
