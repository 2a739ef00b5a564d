import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildRequest,
  buildResponse,
  replyHeaders,
  reasonPhrase,
  generateTag,
  generateBranch,
  generateCallId,
  parseSipMessage,
  formatNameAddr,
  isToken,
  SipRequest,
  SipResponse,
  type SipMessage,
} from '../../as/src/sip/index.js';

function asRequest(m: SipMessage): SipRequest {
  assert.ok(m instanceof SipRequest);
  return m;
}

function asResponse(m: SipMessage): SipResponse {
  assert.ok(m instanceof SipResponse);
  return m;
}

const dialogHeaders: Array<[string, string]> = [
  ['Via', 'SIP/2.0/UDP as.ims.example.com:5070;branch=z9hG4bKas1'],
  ['Max-Forwards', '70'],
  ['From', '<sip:alice@ims.example.com>;tag=ab12'],
  ['To', '<sip:bob@ims.example.com>'],
  ['Call-ID', 'cid-1@as.ims.example.com'],
  ['CSeq', '1 MESSAGE'],
];

describe('buildRequest', () => {
  test('exact wire format: CRLF, Content-Length last, empty line, body', () => {
    const wire = buildRequest({
      method: 'MESSAGE',
      uri: 'sip:bob@ims.example.com',
      headers: [...dialogHeaders, ['Content-Type', 'text/plain']],
      body: 'hi',
    });
    assert.equal(
      wire,
      'MESSAGE sip:bob@ims.example.com SIP/2.0\r\n' +
        'Via: SIP/2.0/UDP as.ims.example.com:5070;branch=z9hG4bKas1\r\n' +
        'Max-Forwards: 70\r\n' +
        'From: <sip:alice@ims.example.com>;tag=ab12\r\n' +
        'To: <sip:bob@ims.example.com>\r\n' +
        'Call-ID: cid-1@as.ims.example.com\r\n' +
        'CSeq: 1 MESSAGE\r\n' +
        'Content-Type: text/plain\r\n' +
        'Content-Length: 2\r\n' +
        '\r\n' +
        'hi',
    );
  });

  test('Content-Length always written (0 without body) and any given one replaced, in any spelling', () => {
    const noBody = buildRequest({ method: 'OPTIONS', uri: 'sip:x@y', headers: dialogHeaders });
    assert.ok(noBody.endsWith('CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n'));
    const replaced = buildRequest({
      method: 'MESSAGE',
      uri: 'sip:x@y',
      headers: [['Content-Length', '999'], ['l', '5'], ['content-length', '1'], ...dialogHeaders],
      body: 'abc',
    });
    assert.equal(replaced.match(/content-length|\r\nl:/gi)?.length, 1);
    assert.ok(replaced.endsWith('\r\nContent-Length: 3\r\n\r\nabc'));
  });

  test('Content-Length in UTF-8 bytes', () => {
    const body = 'Grüße 👋 日本';
    const wire = buildRequest({ method: 'MESSAGE', uri: 'sip:x@y', headers: dialogHeaders, body });
    assert.ok(wire.includes('\r\nContent-Length: 19\r\n\r\n'));
    assert.ok(wire.endsWith(body));
  });

  test('refuses header injection and invalid parts', () => {
    assert.throws(
      () => buildRequest({ method: 'MESSAGE', uri: 'sip:x@y', headers: [['Subject', 'a\r\nVia: evil']] }),
      TypeError,
    );
    assert.throws(() => buildRequest({ method: 'MESSAGE', uri: 'sip:x@y', headers: [['Subject', 'a\nb']] }), TypeError);
    assert.throws(() => buildRequest({ method: 'MESSAGE', uri: 'sip:x@y', headers: [['Bad Name', 'x']] }), TypeError);
    assert.throws(() => buildRequest({ method: 'MESSAGE', uri: 'sip:x@y', headers: [['', 'x']] }), TypeError);
    assert.throws(() => buildRequest({ method: 'MES SAGE', uri: 'sip:x@y', headers: [] }), TypeError);
    assert.throws(() => buildRequest({ method: '', uri: 'sip:x@y', headers: [] }), TypeError);
    assert.throws(() => buildRequest({ method: 'MESSAGE', uri: 'sip:x@y SIP/2.0\r\nX: y', headers: [] }), TypeError);
    assert.throws(() => buildRequest({ method: 'MESSAGE', uri: '', headers: [] }), TypeError);
  });

  test('round trip build -> parse (MESSAGE with UTF-8 body)', () => {
    const body = 'Olá, 世界! 🎉\r\nsecond line';
    const from = formatNameAddr({
      displayName: 'Zoë "Z" Ω',
      uri: 'sip:zoe@ims.example.com',
      params: { tag: generateTag() },
    });
    const wire = buildRequest({
      method: 'MESSAGE',
      uri: 'sip:bob@ims.example.com;transport=tcp',
      headers: [
        ['Via', `SIP/2.0/TCP as.ims.example.com;branch=${generateBranch()}`],
        ['From', from],
        ['To', '<sip:bob@ims.example.com>'],
        ['Call-ID', generateCallId('as.ims.example.com')],
        ['CSeq', '42 MESSAGE'],
        ['Content-Type', 'text/plain;charset=UTF-8'],
      ],
      body,
    });
    const req = asRequest(parseSipMessage(wire));
    assert.equal(req.method, 'MESSAGE');
    assert.equal(req.uri, 'sip:bob@ims.example.com;transport=tcp');
    assert.equal(req.body, body);
    assert.equal(req.from.displayName, 'Zoë "Z" Ω');
    assert.equal(req.from.uri, 'sip:zoe@ims.example.com');
    assert.equal(req.from.tag?.length, 12);
    assert.deepEqual(req.cseq, { seq: 42, method: 'MESSAGE' });
    assert.equal(req.headers.get('Content-Length'), String(Buffer.byteLength(body)));
    assert.equal(req.headers.get('content-type'), 'text/plain;charset=UTF-8');
  });

  test('a parsed message re-serialises from its SipHeaders', () => {
    const original = buildRequest({ method: 'MESSAGE', uri: 'sip:x@y', headers: dialogHeaders, body: 'ping' });
    const req = asRequest(parseSipMessage(original));
    const again = buildRequest({ method: req.method, uri: req.uri, headers: req.headers, body: req.body });
    assert.equal(again, original);
  });
});

describe('buildResponse / replyHeaders', () => {
  const invite = asRequest(
    parseSipMessage(
      [
        'SUBSCRIBE sip:bob@ims.example.com SIP/2.0',
        'Via: SIP/2.0/UDP scscf.ims.example.com:6060;branch=z9hG4bKs1, SIP/2.0/UDP pcscf.ims.example.com;branch=z9hG4bKp1',
        'Via: SIP/2.0/UDP [2001:db8::5]:5060;rport=5060;branch=z9hG4bKue1',
        'Record-Route: <sip:scscf.ims.example.com:6060;lr>',
        'Record-Route: <sip:pcscf.ims.example.com;lr>',
        'Max-Forwards: 68',
        'f: "Alice" <sip:alice@ims.example.com>;tag=a1',
        't: <sip:bob@ims.example.com>',
        'i: sub-77@ue',
        'CSeq: 9 SUBSCRIBE',
        'Event: presence',
        'Contact: <sip:alice@[2001:db8::5]:5060>',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    ),
  );

  test('replyHeaders copies Via (in order), From, To + tag, Call-ID, CSeq', () => {
    assert.deepEqual(replyHeaders(invite, { toTag: 'srv1' }), [
      ['Via', 'SIP/2.0/UDP scscf.ims.example.com:6060;branch=z9hG4bKs1'],
      ['Via', 'SIP/2.0/UDP pcscf.ims.example.com;branch=z9hG4bKp1'],
      ['Via', 'SIP/2.0/UDP [2001:db8::5]:5060;rport=5060;branch=z9hG4bKue1'],
      ['From', '"Alice" <sip:alice@ims.example.com>;tag=a1'],
      ['To', '<sip:bob@ims.example.com>;tag=srv1'],
      ['Call-ID', 'sub-77@ue'],
      ['CSeq', '9 SUBSCRIBE'],
    ]);
  });

  test('replyHeaders: Record-Route on request, no tag for 100 or without toTag, existing tag kept', () => {
    const rr = replyHeaders(invite, { toTag: 'x', recordRoute: true });
    assert.deepEqual(
      rr.filter(([n]) => n === 'Record-Route'),
      [
        ['Record-Route', '<sip:scscf.ims.example.com:6060;lr>'],
        ['Record-Route', '<sip:pcscf.ims.example.com;lr>'],
      ],
    );
    assert.deepEqual(
      replyHeaders(invite, { toTag: 'x', status: 100 }).find(([n]) => n === 'To'),
      ['To', '<sip:bob@ims.example.com>'],
    );
    assert.deepEqual(
      replyHeaders(invite).find(([n]) => n === 'To'),
      ['To', '<sip:bob@ims.example.com>'],
    );
    const inDialog = asRequest(
      parseSipMessage(
        'NOTIFY sip:alice@ue SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:bob@x>;tag=b\r\nTo: <sip:alice@x>;tag=a\r\nCall-ID: c\r\nCSeq: 2 NOTIFY\r\n\r\n',
      ),
    );
    assert.deepEqual(
      replyHeaders(inDialog, { toTag: 'new' }).find(([n]) => n === 'To'),
      ['To', '<sip:alice@x>;tag=a'],
    );
    assert.throws(() => replyHeaders(invite, { toTag: 'bad tag' }), TypeError);
  });

  test('200 OK for the SUBSCRIBE: exact wire, parses back with the same dialog identifiers', () => {
    const wire = buildResponse({
      status: 200,
      headers: [
        ...replyHeaders(invite, { toTag: 'srv1', recordRoute: true }),
        ['Expires', '600'],
        ['Contact', '<sip:ps.ims.example.com:5070>'],
      ],
    });
    assert.equal(
      wire,
      'SIP/2.0 200 OK\r\n' +
        'Via: SIP/2.0/UDP scscf.ims.example.com:6060;branch=z9hG4bKs1\r\n' +
        'Via: SIP/2.0/UDP pcscf.ims.example.com;branch=z9hG4bKp1\r\n' +
        'Via: SIP/2.0/UDP [2001:db8::5]:5060;rport=5060;branch=z9hG4bKue1\r\n' +
        'Record-Route: <sip:scscf.ims.example.com:6060;lr>\r\n' +
        'Record-Route: <sip:pcscf.ims.example.com;lr>\r\n' +
        'From: "Alice" <sip:alice@ims.example.com>;tag=a1\r\n' +
        'To: <sip:bob@ims.example.com>;tag=srv1\r\n' +
        'Call-ID: sub-77@ue\r\n' +
        'CSeq: 9 SUBSCRIBE\r\n' +
        'Expires: 600\r\n' +
        'Contact: <sip:ps.ims.example.com:5070>\r\n' +
        'Content-Length: 0\r\n' +
        '\r\n',
    );
    const res = asResponse(parseSipMessage(wire));
    assert.equal(res.status, 200);
    assert.equal(res.reason, 'OK');
    assert.equal(res.callId, invite.callId);
    assert.deepEqual(res.cseq, invite.cseq);
    assert.equal(res.from.tag, 'a1');
    assert.equal(res.to.tag, 'srv1');
    assert.deepEqual(res.headers.getAll('Via'), invite.headers.getAll('Via'));
  });

  test('custom reason, UTF-8 body, round trip', () => {
    const body = '<?xml version="1.0"?><note>ça marche</note>';
    const wire = buildResponse({
      status: 488,
      reason: 'Not Acceptable Here (codec)',
      headers: replyHeaders(invite, { toTag: 't' }),
      body,
    });
    const res = asResponse(parseSipMessage(wire));
    assert.equal(res.status, 488);
    assert.equal(res.reason, 'Not Acceptable Here (codec)');
    assert.equal(res.body, body);
    assert.equal(res.headers.get('l'), String(Buffer.byteLength(body)));
  });

  test('invalid status or reason', () => {
    assert.throws(() => buildResponse({ status: 99, headers: [] }), TypeError);
    assert.throws(() => buildResponse({ status: 700, headers: [] }), TypeError);
    assert.throws(() => buildResponse({ status: 200.5, headers: [] }), TypeError);
    assert.throws(() => buildResponse({ status: 200, reason: 'OK\r\nVia: x', headers: [] }), TypeError);
  });

  test('reasonPhrase', () => {
    assert.equal(reasonPhrase(100), 'Trying');
    assert.equal(reasonPhrase(202), 'Accepted');
    assert.equal(reasonPhrase(400), 'Bad Request');
    assert.equal(reasonPhrase(412), 'Conditional Request Failed');
    assert.equal(reasonPhrase(481), 'Call/Transaction Does Not Exist');
    assert.equal(reasonPhrase(489), 'Bad Event');
    assert.equal(reasonPhrase(505), 'Version Not Supported');
    assert.equal(reasonPhrase(299), 'Success');
    assert.equal(reasonPhrase(499), 'Client Error');
    assert.equal(buildResponse({ status: 423, headers: [] }).split('\r\n')[0], 'SIP/2.0 423 Interval Too Brief');
  });
});

describe('identifier generators', () => {
  test('tags: 12 token chars, unique', () => {
    const tags = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const t = generateTag();
      assert.match(t, /^[A-Za-z0-9_-]{12}$/);
      assert.ok(isToken(t));
      tags.add(t);
    }
    assert.equal(tags.size, 5000);
  });

  test('branches start with the magic cookie, are tokens, unique', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const b = generateBranch();
      assert.ok(b.startsWith('z9hG4bK'));
      assert.match(b, /^z9hG4bK[A-Za-z0-9_-]{16}$/);
      seen.add(b);
    }
    assert.equal(seen.size, 5000);
  });

  test('Call-IDs: UUID, optional @host, unique', () => {
    assert.match(generateCallId(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.match(generateCallId('as.ims.example.com'), /^[0-9a-f-]{36}@as\.ims\.example\.com$/);
    assert.notEqual(generateCallId('h'), generateCallId('h'));
    assert.throws(() => generateCallId('bad host'), TypeError);
  });
});
