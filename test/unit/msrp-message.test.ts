import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMessage, parseMessages } from '../../as/src/msrp/framer.js';
import {
  MsrpSyntaxError,
  byteRangeOf,
  failureReportOf,
  formatByteRange,
  headerValue,
  orderHeaders,
  parseByteRange,
  parseStatus,
  serializeMessage,
  successReportOf,
} from '../../as/src/msrp/message.js';
import { buildReport, responseTo, shouldRespond } from '../../as/src/msrp/report.js';
import { msrpReason } from '../../as/src/msrp/status.js';

const crlf = (lines: string[]) => lines.map((l) => `${l}\r\n`).join('');

// RFC 4975 section 4: Alice's first SEND to Bob and Bob's response (written from the example's facts).
const HEY_BOB = crlf([
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
const HEY_BOB_OK = crlf([
  'MSRP a786hjs2 200 OK',
  'To-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp',
  'From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp',
  '-------a786hjs2$',
]);
// RFC 4975 section 10.1 (basic IM session) and 10.2 (XHTML content, reports asked).
const HI_ALICE = crlf([
  'MSRP d93kswow SEND',
  'To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp',
  'From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp',
  'Message-ID: 12339sdqwer',
  'Byte-Range: 1-16/16',
  'Content-Type: text/plain',
  '',
  "Hi, I'm Alice!",
  '-------d93kswow$',
]);
const XHTML_HEAD = [
  'MSRP d93kswow SEND',
  'To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp',
  'From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp',
  'Message-ID: 12339sdqwer',
  'Byte-Range: 1-106/106',
  'Success-Report: yes',
  'Failure-Report: no',
  'Content-Type: text/html',
];
// RFC 4975 section 10.5: Bob's positive report about the XHTML message.
const POSITIVE_REPORT = crlf([
  'MSRP dkei38sd REPORT',
  'To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp',
  'From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp',
  'Message-ID: 12339sdqwer',
  'Byte-Range: 1-106/106',
  'Status: 000 200 OK',
  '-------dkei38sd$',
]);

describe('MSRP messages: the RFC 4975 examples byte for byte', () => {
  it('reads the first SEND of section 4 and writes it back identically', () => {
    const m = parseMessage(HEY_BOB);
    assert.equal(m.head.kind, 'request');
    assert.equal(m.head.tid, 'a786hjs2');
    assert.equal(m.head.kind === 'request' && m.head.method, 'SEND');
    assert.equal(headerValue(m.head, 'to-path'), 'msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp');
    assert.equal(headerValue(m.head, 'Message-ID'), '87652491');
    assert.deepEqual(byteRangeOf(m.head), { start: 1, end: 25, total: 25 });
    // the body is what the end-line delimits; the example's range counts the CRLF before it too
    assert.equal(m.body!.toString(), 'Hey Bob, are you there?');
    assert.equal(m.flag, '$');
    assert.equal(serializeMessage(m).toString(), HEY_BOB);
  });

  it('reads and writes the 200 response, with no body', () => {
    const m = parseMessage(HEY_BOB_OK);
    assert.deepEqual(
      {
        kind: m.head.kind,
        code: m.head.kind === 'response' && m.head.code,
        comment: m.head.kind === 'response' && m.head.comment,
      },
      { kind: 'response', code: 200, comment: 'OK' },
    );
    assert.equal(m.body, undefined);
    assert.equal(serializeMessage(m).toString(), HEY_BOB_OK);
  });

  it('builds the response of a request from the request: To-Path the first From-Path URI, From-Path ours', () => {
    const req = parseMessage(HEY_BOB).head;
    assert.equal(req.kind, 'request');
    if (req.kind !== 'request') return;
    const res = responseTo(
      req,
      200,
      'msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp',
      'msrp://atlanta.example.com:7654/jshA7weztas;tcp',
    );
    assert.equal(serializeMessage({ head: res, flag: '$' }).toString(), HEY_BOB_OK);
  });

  it('section 10.1 and 10.2: the SENDs, reports asked for, headers kept in order', () => {
    const basic = parseMessage(HI_ALICE);
    assert.equal(basic.body!.toString(), "Hi, I'm Alice!");
    assert.equal(serializeMessage(basic).toString(), HI_ALICE);
    const body = '<html><body>\r\n<p>See the <a href="http://example.com/">example</a></p>\r\n</body></html>';
    const xhtml = crlf([...XHTML_HEAD, '', body, '-------d93kswow$']);
    const m = parseMessage(xhtml);
    assert.equal(successReportOf(m.head), true);
    assert.equal(failureReportOf(m.head), 'no');
    assert.equal(m.body!.toString(), body);
    assert.equal(serializeMessage(m).toString(), xhtml);
  });

  it('section 10.5: the positive REPORT, built from its facts and read back', () => {
    const built = buildReport({
      tid: 'dkei38sd',
      toPath: 'msrp://alicepc.example.com:7777/iau39soe2843z;tcp',
      fromPath: 'msrp://bob.example.com:8888/9di4eae923wzd;tcp',
      messageId: '12339sdqwer',
      range: { start: 1, end: 106, total: 106 },
      code: 200,
    });
    assert.equal(serializeMessage({ head: built, flag: '$' }).toString(), POSITIVE_REPORT);
    const m = parseMessage(POSITIVE_REPORT);
    assert.deepEqual(parseStatus(headerValue(m.head, 'Status')!), { namespace: '000', code: 200, comment: 'OK' });
  });

  it('reads several messages back to back in one buffer', () => {
    const all = parseMessages(Buffer.from(HEY_BOB + HEY_BOB_OK + POSITIVE_REPORT));
    assert.deepEqual(
      all.map((m) => m.head.tid),
      ['a786hjs2', 'a786hjs2', 'dkei38sd'],
    );
  });
});

describe('MSRP header values', () => {
  it('Byte-Range with * for an unknown end or total', () => {
    assert.deepEqual(parseByteRange('1-*/*'), { start: 1 });
    assert.deepEqual(parseByteRange('11-*/50'), { start: 11, total: 50 });
    assert.deepEqual(parseByteRange('1-0/0'), { start: 1, end: 0, total: 0 });
    assert.equal(formatByteRange({ start: 11, total: 50 }), '11-*/50');
    assert.equal(formatByteRange({ start: 1 }), '1-*/*');
    for (const bad of ['0-5/5', 'a-5/5', '1-5', '5-2/9', '1--5/5', ''])
      assert.throws(() => parseByteRange(bad), MsrpSyntaxError, bad);
  });

  it('an absent Byte-Range means the whole message in this chunk', () => {
    const m = parseMessage(
      crlf([
        'MSRP abcd1234 SEND',
        'To-Path: msrp://h:1/s;tcp',
        'From-Path: msrp://g:2/t;tcp',
        'Message-ID: 1',
        '',
        'x',
        '-------abcd1234$',
      ]),
    );
    assert.deepEqual(byteRangeOf(m.head), { start: 1 });
  });

  it('report defaults: Success-Report no, Failure-Report yes; bad values refused', () => {
    const head = { kind: 'request' as const, tid: 'abcd', method: 'SEND', headers: [] };
    assert.equal(successReportOf(head), false);
    assert.equal(failureReportOf(head), 'yes');
    assert.throws(
      () => failureReportOf({ ...head, headers: [{ name: 'Failure-Report', value: 'maybe' }] }),
      MsrpSyntaxError,
    );
    assert.throws(
      () => successReportOf({ ...head, headers: [{ name: 'Success-Report', value: 'partial' }] }),
      MsrpSyntaxError,
    );
  });

  it('Failure-Report decides which responses are sent: no → none, partial → errors only', () => {
    assert.deepEqual([shouldRespond('yes', 200), shouldRespond('yes', 481)], [true, true]);
    assert.deepEqual([shouldRespond('partial', 200), shouldRespond('partial', 413)], [false, true]);
    assert.deepEqual([shouldRespond('no', 200), shouldRespond('no', 400)], [false, false]);
  });

  it('Status with and without a comment; reasons of the codes', () => {
    assert.deepEqual(parseStatus('000 413 Message Too Large'), {
      namespace: '000',
      code: 413,
      comment: 'Message Too Large',
    });
    assert.deepEqual(parseStatus('000 481'), { namespace: '000', code: 481 });
    assert.throws(() => parseStatus('200 OK'), MsrpSyntaxError);
    assert.equal(msrpReason(481), 'Session Does Not Exist');
    assert.equal(msrpReason(413), 'Message Too Large');
  });

  it('orders To-Path and From-Path first and the MIME headers last', () => {
    const ordered = orderHeaders([
      { name: 'Content-Type', value: 'text/plain' },
      { name: 'Message-ID', value: '1' },
      { name: 'From-Path', value: 'f' },
      { name: 'Byte-Range', value: '1-1/1' },
      { name: 'To-Path', value: 't' },
    ]);
    assert.deepEqual(
      ordered.map((h) => h.name),
      ['To-Path', 'From-Path', 'Message-ID', 'Byte-Range', 'Content-Type'],
    );
  });

  it('refuses bad transaction ids and header names on output', () => {
    assert.throws(
      () => serializeMessage({ head: { kind: 'request', tid: 'ab', method: 'SEND', headers: [] }, flag: '$' }),
      MsrpSyntaxError,
    );
    assert.throws(
      () =>
        serializeMessage({
          head: { kind: 'request', tid: 'abcd', method: 'SEND', headers: [{ name: 'X', value: 'a\r\nb' }] },
          flag: '$',
        }),
      MsrpSyntaxError,
    );
  });
});
