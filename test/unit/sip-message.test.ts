import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseSipMessage,
  parseUri,
  parseValueParams,
  parseNameAddr,
  unquote,
  SipHeaders,
  SipRequest,
  SipResponse,
  SipParseError,
  UriParseError,
  splitHeaderList,
  headerKey,
  canonicalHeaderName,
  isListHeader,
  utf8ByteLength,
  type SipMessage,
} from '../../as/src/sip/index.js';

const CRLF = '\r\n';
/** Joins lines with CRLF; the caller provides the empty line and body. */
const msg = (...lines: string[]): string => lines.join(CRLF);

function parseError(reason: string, status = 400) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof SipParseError, `expected SipParseError, got ${String(err)}`);
    assert.equal(err.reason, reason);
    assert.equal(err.status, status);
    assert.doesNotMatch(err.reason, /[\r\n]/);
    return true;
  };
}

function asRequest(m: SipMessage): SipRequest {
  assert.equal(m.kind, 'request');
  assert.ok(m instanceof SipRequest);
  return m;
}

function asResponse(m: SipMessage): SipResponse {
  assert.equal(m.kind, 'response');
  assert.ok(m instanceof SipResponse);
  return m;
}

/** Minimal valid header block used by many tests. */
const CORE = [
  'Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds',
  'From: <sip:alice@atlanta.com>;tag=1928301774',
  'To: <sip:bob@biloxi.com>',
  'Call-ID: a84b4c76e66710@pc33.atlanta.com',
];

describe('parseSipMessage: realistic traffic', () => {
  test('MESSAGE from baresip', () => {
    const body = 'Hello Bob, lunch at 12?';
    const raw = msg(
      'MESSAGE sip:bob@ims.example.com SIP/2.0',
      'Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK5f2f0c3b8f1a2d4e;rport',
      'Max-Forwards: 70',
      'To: <sip:bob@ims.example.com>',
      'From: "Alice" <sip:alice@ims.example.com>;tag=7c9a0f3ad1b2e4c6',
      'Call-ID: 0a9c1e4f8b2d6a3c',
      'CSeq: 29518 MESSAGE',
      'User-Agent: baresip v3.10.0 (x86_64/linux)',
      'Content-Type: text/plain',
      `Content-Length: ${body.length}`,
      '',
      body,
    );
    const req = asRequest(parseSipMessage(raw));
    assert.equal(req.method, 'MESSAGE');
    assert.equal(req.uri, 'sip:bob@ims.example.com');
    assert.equal(req.callId, '0a9c1e4f8b2d6a3c');
    assert.deepEqual(req.cseq, { seq: 29518, method: 'MESSAGE' });
    assert.equal(req.from.displayName, 'Alice');
    assert.equal(req.from.uri, 'sip:alice@ims.example.com');
    assert.equal(req.from.tag, '7c9a0f3ad1b2e4c6');
    assert.equal(req.to.uri, 'sip:bob@ims.example.com');
    assert.equal(req.to.tag, undefined);
    assert.equal(req.headers.get('max-forwards'), '70');
    assert.equal(req.headers.get('User-Agent'), 'baresip v3.10.0 (x86_64/linux)');
    assert.equal(req.headers.get('content-type'), 'text/plain');
    assert.equal(req.headers.size, 9);
    assert.equal(req.body, body);
    assert.equal(parseUri(req.uri).user, 'bob');
  });

  test('PUBLISH with PIDF from sipp', () => {
    const pidf = [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@ims.example.com">',
      '  <tuple id="sipp-1">',
      '    <status><basic>open</basic></status>',
      '    <note>Available ✓ — café</note>',
      '  </tuple>',
      '</presence>',
    ].join(CRLF);
    const raw = msg(
      'PUBLISH sip:alice@ims.example.com SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4211-1-0',
      'From: sipp <sip:alice@ims.example.com>;tag=4211SIPpTag001',
      'To: <sip:alice@ims.example.com>',
      'Call-ID: 1-4211@127.0.0.1',
      'CSeq: 1 PUBLISH',
      'Max-Forwards: 70',
      'Contact: <sip:sipp@127.0.0.1:5061>',
      'Event: presence',
      'Expires: 3600',
      'Content-Type: application/pidf+xml',
      `Content-Length: ${Buffer.byteLength(pidf, 'utf8')}`,
      '',
      pidf,
    );
    const req = asRequest(parseSipMessage(raw));
    assert.equal(req.method, 'PUBLISH');
    assert.equal(req.from.displayName, 'sipp');
    assert.equal(req.from.tag, '4211SIPpTag001');
    assert.equal(req.callId, '1-4211@127.0.0.1');
    assert.deepEqual(req.cseq, { seq: 1, method: 'PUBLISH' });
    assert.equal(parseValueParams(req.headers.get('Event') ?? '').value, 'presence');
    assert.equal(req.headers.get('expires'), '3600');
    assert.deepEqual(req.headers.getAll('contact'), ['<sip:sipp@127.0.0.1:5061>']);
    assert.equal(req.body, pidf);
    assert.ok(req.body.endsWith('</presence>'));
    assert.notEqual(Buffer.byteLength(req.body), req.body.length); // the body really is non-ASCII
  });

  test('200 OK response to PUBLISH with SIP-ETag', () => {
    const raw = msg(
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-4211-1-0;received=127.0.0.1',
      'From: sipp <sip:alice@ims.example.com>;tag=4211SIPpTag001',
      'To: <sip:alice@ims.example.com>;tag=as6d1f3c',
      'Call-ID: 1-4211@127.0.0.1',
      'CSeq: 1 PUBLISH',
      'SIP-ETag: dx200xyz',
      'Expires: 1800',
      'Content-Length: 0',
      '',
      '',
    );
    const res = asResponse(parseSipMessage(raw));
    assert.equal(res.status, 200);
    assert.equal(res.reason, 'OK');
    assert.equal(res.to.tag, 'as6d1f3c');
    assert.deepEqual(res.cseq, { seq: 1, method: 'PUBLISH' });
    assert.equal(res.headers.get('sip-etag'), 'dx200xyz');
    assert.equal(res.body, '');
  });

  test('response reason phrases: with spaces, UTF-8, empty, missing', () => {
    const tail = [...CORE, 'CSeq: 1 INVITE', '', ''];
    assert.equal(
      asResponse(parseSipMessage(msg('SIP/2.0 481 Call/Transaction Does Not Exist', ...tail))).reason,
      'Call/Transaction Does Not Exist',
    );
    assert.equal(
      asResponse(parseSipMessage(msg('SIP/2.0 603 Abgelehnt – später', ...tail))).reason,
      'Abgelehnt – später',
    );
    assert.equal(asResponse(parseSipMessage(msg('SIP/2.0 180 ', ...tail))).reason, '');
    const r = asResponse(parseSipMessage(msg('SIP/2.0 183', ...tail)));
    assert.equal(r.status, 183);
    assert.equal(r.reason, '');
  });
});

describe('parseSipMessage: torture cases (RFC 4475 style)', () => {
  test('folded headers, odd whitespace, unknown headers, compact forms (wsinv-like)', () => {
    const raw = msg(
      'INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0',
      'TO :',
      ' sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n',
      'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
      '  ;',
      '  tag = 98asjd8',
      'MaX-fOrWaRdS: 0068',
      'Call-ID: wsinv.ndaksdj@192.0.2.1',
      'Content-Length   : 150',
      'cseq: 0009',
      '  INVITE',
      'Via  : SIP  /   2.0',
      ' /UDP',
      '    192.0.2.2;branch=390skdjuw',
      's :',
      'NewFangledHeader:   newfangled value',
      ' continued newfangled value',
      'UnknownHeaderWithUnusualValue: ;;,,;;,;',
      'Content-Type: application/sdp',
      'Route:',
      ' <sip:services.example.com;lr;unknownwith=value;unknown-no-value>',
      'v:  SIP  / 2.0  / TCP     spindle.example.com   ;',
      '  branch  =   z9hG4bK9ikj8  ,',
      ' SIP  /    2.0   / UDP  192.168.255.111   ; branch=',
      ' z9hG4bK30239',
      'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =',
      '      newvalue ;',
      '  secondparam ; q = 0.33',
      '',
      'v=0',
      'o=mhandley 29739 7272939 IN IP4 192.0.2.3',
      's=-',
      'c=IN IP4 192.0.2.4',
      't=0 0',
      'm=audio 49217 RTP/AVP 0 12',
      'm=video 3227 RTP/AVP 31',
      'a=rtpmap:31 LPC',
      '',
    );
    const req = asRequest(parseSipMessage(raw));
    assert.equal(req.method, 'INVITE');
    assert.equal(req.uri, 'sip:vivekg@chair-dnrc.example.com;unknownparam');
    assert.deepEqual(req.cseq, { seq: 9, method: 'INVITE' });
    assert.equal(req.to.uri, 'sip:vivekg@chair-dnrc.example.com');
    assert.equal(req.to.tag, '1918181833n');
    assert.equal(req.from.displayName, 'J Rosenberg \\"');
    assert.equal(req.from.uri, 'sip:jdrosen@example.com');
    assert.equal(req.from.tag, '98asjd8');
    assert.equal(req.headers.get('Max-Forwards'), '0068');
    assert.equal(req.headers.get('Subject'), '');
    assert.equal(req.headers.get('newfangledheader'), 'newfangled value continued newfangled value');
    assert.equal(req.headers.get('UnknownHeaderWithUnusualValue'), ';;,,;;,;');
    assert.equal(req.headers.get('Route'), '<sip:services.example.com;lr;unknownwith=value;unknown-no-value>');
    assert.deepEqual(req.headers.getAll('via'), [
      'SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw',
      'SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8',
      'SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239',
    ]);
    const contacts = req.headers.getAll('Contact');
    assert.equal(contacts.length, 1);
    assert.equal(
      contacts[0],
      '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; secondparam ; q = 0.33',
    );
    // Content-Length (150) is exactly the SDP body
    assert.equal(Buffer.byteLength(req.body), 150);
    assert.ok(req.body.startsWith('v=0\r\n'));
    assert.ok(req.body.endsWith('a=rtpmap:31 LPC\r\n'));
    // canonical names in iteration order (compact forms expanded, unknown names as written)
    assert.deepEqual(
      [...req.headers].map(([n]) => n),
      [
        'To',
        'From',
        'Max-Forwards',
        'Call-ID',
        'Content-Length',
        'CSeq',
        'Via',
        'Subject',
        'NewFangledHeader',
        'UnknownHeaderWithUnusualValue',
        'Content-Type',
        'Route',
        'Via',
        'Contact',
      ],
    );
  });

  test('all compact header forms are expanded', () => {
    const raw = msg(
      'SUBSCRIBE sip:presentity@example.com SIP/2.0',
      'v: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKc',
      'f: <sip:watcher@example.com>;tag=w1',
      't: <sip:presentity@example.com>',
      'i: compact-1@192.0.2.1',
      'CSeq: 7 SUBSCRIBE',
      'm: <sip:watcher@192.0.2.1>',
      'c: application/pidf+xml',
      'e: gzip',
      'k: eventlist',
      's: status',
      'o: presence',
      'u: presence, dialog',
      'r: <sip:carol@example.com>',
      'b: <sip:alice@example.com>',
      'x: 1800;refresher=uac',
      'y: abc',
      'a: *;+g.oma.sip-im',
      'j: *;audio',
      'd: proxy',
      'l: 0',
      '',
      '',
    );
    const req = asRequest(parseSipMessage(raw));
    assert.deepEqual(req.headers.toArray(), [
      ['Via', 'SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKc'],
      ['From', '<sip:watcher@example.com>;tag=w1'],
      ['To', '<sip:presentity@example.com>'],
      ['Call-ID', 'compact-1@192.0.2.1'],
      ['CSeq', '7 SUBSCRIBE'],
      ['Contact', '<sip:watcher@192.0.2.1>'],
      ['Content-Type', 'application/pidf+xml'],
      ['Content-Encoding', 'gzip'],
      ['Supported', 'eventlist'],
      ['Subject', 'status'],
      ['Event', 'presence'],
      ['Allow-Events', 'presence, dialog'],
      ['Refer-To', '<sip:carol@example.com>'],
      ['Referred-By', '<sip:alice@example.com>'],
      ['Session-Expires', '1800;refresher=uac'],
      ['Identity', 'abc'],
      ['Accept-Contact', '*;+g.oma.sip-im'],
      ['Reject-Contact', '*;audio'],
      ['Request-Disposition', 'proxy'],
      ['Content-Length', '0'],
    ]);
    // lookups by compact or full name, any case
    assert.equal(req.headers.get('o'), 'presence');
    assert.equal(req.headers.get('EVENT'), 'presence');
    assert.equal(req.headers.get('I'), 'compact-1@192.0.2.1');
    assert.deepEqual(req.headers.getAll('u'), ['presence', 'dialog']);
    assert.deepEqual(req.headers.getAll('allow-events'), ['presence', 'dialog']);
    assert.equal(req.callId, 'compact-1@192.0.2.1');
  });

  test('case-insensitive header names and SIP version; case-sensitive method kept', () => {
    const raw = msg(
      'NewMethod sip:bob@biloxi.com sip/2.0',
      'VIA: SIP/2.0/UDP host;branch=z9hG4bKx',
      'fROM: <sip:a@b>;tag=1',
      'tO: <sip:bob@biloxi.com>',
      'CALL-ID: x1',
      'cSeQ: 3 NewMethod',
      '',
      '',
    );
    const req = asRequest(parseSipMessage(raw));
    assert.equal(req.method, 'NewMethod');
    assert.equal(req.callId, 'x1');
    assert.equal(req.headers.get('via'), 'SIP/2.0/UDP host;branch=z9hG4bKx');
    assert.equal(req.headers.has('Via'), true);
    assert.equal(req.headers.has('v'), true);
    assert.equal(req.headers.has('Route'), false);
    assert.deepEqual(
      [...req.headers].map(([n]) => n),
      ['Via', 'From', 'To', 'Call-ID', 'CSeq'],
    );
  });

  test('multiple headers of one name, comma lists with quoted commas and angle brackets', () => {
    const raw = msg(
      'REGISTER sip:registrar.biloxi.com SIP/2.0',
      'Via: SIP/2.0/UDP proxy.biloxi.com;branch=z9hG4bK1, SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK2;received=[2001:db8::9]',
      'Via: SIP/2.0/TCP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7',
      'From: "Bob, the Builder" <sip:bob@biloxi.com>;tag=456248',
      'To: "Bob, the Builder" <sip:bob@biloxi.com>',
      'Call-ID: 843817637684230@998sdasdh09',
      'CSeq: 1826 REGISTER',
      'Contact: "Mr. Watson, Jr." <sip:watson@worcester.bell-telephone.com;x=a,b>;q=0.7;expires=3600, <mailto:watson@bell-telephone.com> ;q=0.1',
      'Contact: <sip:bob@192.0.2.4>;+sip.instance="<urn:uuid:a,b>";reg-id=1',
      'Supported: path, gruu,outbound ,  ,',
      'Supported: 100rel',
      'Date: Sat, 13 Nov 2010 23:29:00 GMT',
      'WWW-Authenticate: Digest realm="biloxi.com", qop="auth,auth-int", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5',
      'Privacy: id;header',
      'User-Agent: Foo/1.0 (a, b)',
      'P-Asserted-Identity: "Bob, B" <sip:bob@biloxi.com>, <tel:+15550100>',
      'Record-Route: <sip:p2.example.com;lr>, <sip:p1.example.com;lr>',
      'Record-Route: <sip:p0.example.com;lr>',
      'Content-Length: 0',
      '',
      '',
    );
    const req = asRequest(parseSipMessage(raw));
    const h = req.headers;
    assert.equal(
      h.get('Via'),
      'SIP/2.0/UDP proxy.biloxi.com;branch=z9hG4bK1, SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK2;received=[2001:db8::9]',
    );
    assert.deepEqual(h.getAll('Via'), [
      'SIP/2.0/UDP proxy.biloxi.com;branch=z9hG4bK1',
      'SIP/2.0/UDP [2001:db8::9]:5070;branch=z9hG4bK2;received=[2001:db8::9]',
      'SIP/2.0/TCP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7',
    ]);
    assert.equal(h.getLines('via').length, 2);
    assert.deepEqual(h.getAll('Contact'), [
      '"Mr. Watson, Jr." <sip:watson@worcester.bell-telephone.com;x=a,b>;q=0.7;expires=3600',
      '<mailto:watson@bell-telephone.com> ;q=0.1',
      '<sip:bob@192.0.2.4>;+sip.instance="<urn:uuid:a,b>";reg-id=1',
    ]);
    assert.deepEqual(h.getAll('supported'), ['path', 'gruu', 'outbound', '100rel']);
    assert.deepEqual(h.getAll('Date'), ['Sat, 13 Nov 2010 23:29:00 GMT']);
    assert.equal(h.getAll('WWW-Authenticate').length, 1);
    assert.deepEqual(h.getAll('Privacy'), ['id;header']);
    assert.deepEqual(h.getAll('User-Agent'), ['Foo/1.0 (a, b)']);
    assert.deepEqual(h.getAll('From'), ['"Bob, the Builder" <sip:bob@biloxi.com>;tag=456248']);
    assert.deepEqual(h.getAll('P-Asserted-Identity'), ['"Bob, B" <sip:bob@biloxi.com>', '<tel:+15550100>']);
    assert.deepEqual(h.getAll('record-route'), [
      '<sip:p2.example.com;lr>',
      '<sip:p1.example.com;lr>',
      '<sip:p0.example.com;lr>',
    ]);
    assert.deepEqual(h.getAll('Route'), []);
    assert.equal(req.from.displayName, 'Bob, the Builder');
    assert.equal(req.to.displayName, 'Bob, the Builder');
    const instance = unquote(parseNameAddr(h.getAll('Contact')[2] ?? '').params.get('+sip.instance') ?? '');
    assert.equal(instance, '<urn:uuid:a,b>');
  });

  test('escaped characters and IPv6 in the Request-URI (RFC 4475 esc01/ipv6 style)', () => {
    const raw = msg(
      'INVITE sip:sips%3Auser%40example.com@[2001:db8::10]:5070;transport=udp SIP/2.0',
      'To: sip:%75se%72@example.com',
      'From: <sip:I%20have%20spaces@example.net>;tag=938',
      'Max-Forwards: 87',
      'i: esc01.239409asdfakjkn23onasd0-3234',
      'CSeq: 234234 INVITE',
      'Via: SIP/2.0/UDP [2001:db8::9:1]:5060;branch=z9hG4bKkdjuw',
      'Contact: <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>',
      'l: 0',
      '',
      '',
    );
    const req = asRequest(parseSipMessage(raw));
    const ruri = parseUri(req.uri);
    assert.equal(ruri.userDecoded, 'sips:user@example.com');
    assert.equal(ruri.host, '[2001:db8::10]');
    assert.equal(ruri.port, 5070);
    assert.equal(parseUri(req.to.uri).userDecoded, 'user');
    assert.equal(parseUri(req.from.uri).userDecoded, 'I have spaces');
    const contact = parseUri(req.headers.getAll('Contact')[0]?.slice(1, -1) ?? '');
    assert.equal(contact.userDecoded, 'caller');
    assert.deepEqual(
      [...contact.params],
      [
        ['%6c%72', ''],
        ['n%61me', 'v%61lue%25%34%31'],
      ],
    );
  });

  test('unknown Request-URI scheme is a valid message; parseUri refuses it with 416', () => {
    const raw = msg('OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0', ...CORE, 'CSeq: 1 OPTIONS', '', '');
    const req = asRequest(parseSipMessage(raw));
    assert.equal(req.uri, 'nobodyKnowsThisScheme:totallyopaquecontent');
    assert.throws(
      () => parseUri(req.uri),
      (err: unknown) => err instanceof UriParseError && err.status === 416,
    );
  });

  test('bare LF line endings and mixed endings', () => {
    const lf = ['OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 5 OPTIONS', 'Content-Length: 4', '', 'ab\nc'].join('\n');
    const req = asRequest(parseSipMessage(lf));
    assert.equal(req.callId, 'a84b4c76e66710@pc33.atlanta.com');
    assert.equal(req.headers.get('To'), '<sip:bob@biloxi.com>');
    assert.equal(req.body, 'ab\nc');
    const mixed = 'OPTIONS sip:x@y SIP/2.0\r\n' + CORE.join('\n') + '\r\nCSeq: 5 OPTIONS\n\r\nbody';
    const m = asRequest(parseSipMessage(mixed));
    assert.equal(m.headers.get('from'), '<sip:alice@atlanta.com>;tag=1928301774');
    assert.equal(m.body, 'body');
  });

  test('leading CRLFs (keep-alives) before the start line are skipped', () => {
    const req = asRequest(
      parseSipMessage('\r\n\r\n' + msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 5 OPTIONS', '', '')),
    );
    assert.equal(req.method, 'OPTIONS');
  });

  test('header values are trimmed; empty values allowed; colon in value kept', () => {
    const raw = msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 5 OPTIONS', 'Subject:', 'X-Time:\t 12:30:00 \t', '', '');
    const h = parseSipMessage(raw).headers;
    assert.equal(h.get('subject'), '');
    assert.equal(h.has('Subject'), true);
    assert.equal(h.get('x-time'), '12:30:00');
  });
});

describe('parseSipMessage: body and Content-Length', () => {
  const head = (cl: string | null): string[] => [
    'MESSAGE sip:bob@b SIP/2.0',
    ...CORE,
    'CSeq: 2 MESSAGE',
    ...(cl === null ? [] : [`Content-Length: ${cl}`]),
    '',
  ];

  test('Content-Length counts UTF-8 bytes, not UTF-16 code units', () => {
    const body = 'Grüße 👋 日本';
    assert.equal(body.length, 11);
    assert.equal(Buffer.byteLength(body), 19);
    assert.equal(parseSipMessage(msg(...head('19'), body)).body, body);
    assert.equal(parseSipMessage(msg(...head('12'), body)).body, 'Grüße 👋');
    assert.equal(parseSipMessage(msg(...head('16'), body)).body, 'Grüße 👋 日');
    // a Content-Length computed from the JS string length (11) cuts inside the emoji
    assert.throws(() => parseSipMessage(msg(...head('11'), body)), parseError('Content-Length mismatch'));
  });

  test('body longer than Content-Length is truncated (ASCII and UTF-8)', () => {
    assert.equal(parseSipMessage(msg(...head('5'), 'hello world')).body, 'hello');
    assert.equal(parseSipMessage(msg(...head('0'), 'junk')).body, '');
    assert.equal(parseSipMessage(msg(...head('2'), 'ü€x')).body, 'ü');
    assert.equal(parseSipMessage(msg(...head('5'), 'ü€x')).body, 'ü€');
    assert.equal(parseSipMessage(msg(...head('6'), 'ü€x')).body, 'ü€x');
  });

  test('Content-Length cutting inside a multi-byte character is a mismatch', () => {
    for (const cl of ['1', '3', '4']) {
      assert.throws(() => parseSipMessage(msg(...head(cl), 'ü€x')), parseError('Content-Length mismatch'), cl);
    }
  });

  test('Content-Length larger than the body is a mismatch', () => {
    assert.throws(() => parseSipMessage(msg(...head('12'), 'hello world')), parseError('Content-Length mismatch'));
    assert.throws(() => parseSipMessage(msg(...head('10'), 'héllo')), parseError('Content-Length mismatch'));
    assert.throws(() => parseSipMessage(msg(...head('9999999999'), '')), parseError('Content-Length mismatch'));
  });

  test('malformed or conflicting Content-Length', () => {
    assert.throws(() => parseSipMessage(msg(...head('-1'), '')), parseError('Malformed Content-Length'));
    assert.throws(() => parseSipMessage(msg(...head('abc'), '')), parseError('Malformed Content-Length'));
    assert.throws(() => parseSipMessage(msg(...head('1 2'), 'xyz')), parseError('Malformed Content-Length'));
    const twoCl = ['MESSAGE sip:bob@b SIP/2.0', ...CORE, 'CSeq: 2 MESSAGE', 'Content-Length: 3', 'l: 5', '', 'hello'];
    assert.throws(() => parseSipMessage(msg(...twoCl)), parseError('Content-Length mismatch'));
    const sameCl = ['MESSAGE sip:bob@b SIP/2.0', ...CORE, 'CSeq: 2 MESSAGE', 'Content-Length: 3', 'l: 3', '', 'hello'];
    assert.equal(parseSipMessage(msg(...sameCl)).body, 'hel');
  });

  test('no Content-Length: the body is everything after the empty line', () => {
    assert.equal(parseSipMessage(msg(...head(null), 'a\r\n\r\nb\r\n')).body, 'a\r\n\r\nb\r\n');
    assert.equal(parseSipMessage(msg(...head(null), '')).body, '');
  });
});

describe('parseSipMessage: errors', () => {
  const tail = [...CORE, 'CSeq: 1 OPTIONS', '', ''];

  test('empty input', () => {
    assert.throws(() => parseSipMessage(''), parseError('Empty message'));
    assert.throws(() => parseSipMessage('\r\n\r\n'), parseError('Empty message'));
  });

  test('missing CRLF CRLF after the headers', () => {
    assert.throws(() => parseSipMessage('OPTIONS sip:x@y SIP/2.0'), parseError('Missing empty line after headers'));
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 1 OPTIONS')),
      parseError('Missing empty line after headers'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 1 OPTIONS', '')),
      parseError('Missing empty line after headers'),
    );
  });

  test('malformed request lines', () => {
    for (const line of [
      'OPTIONS sip:x@y',
      'OPTIONS  sip:x@y SIP/2.0',
      'OPTIONS sip:x@y  SIP/2.0',
      'OPTIONS sip:x@y SIP/2.0 extra',
      'OPTIONS sip:x @y SIP/2.0',
      'OPT@ONS sip:x@y SIP/2.0',
      ' OPTIONS sip:x@y SIP/2.0',
      'OPTIONS sip:x@y HTTP/1.1',
      'OPTIONS\tsip:x@y\tSIP/2.0',
      'SIP/2.0',
      'SIP/2.0 2000 OK',
      'SIP/2.0 099 Too Low',
      'SIP/2.0 700 Too High',
      'SIP/2.0 20 OK',
      'SIP/2.0 200OK',
    ]) {
      assert.throws(() => parseSipMessage(msg(line, ...tail)), parseError('Malformed start line'), line);
    }
  });

  test('Request-URI without a scheme', () => {
    assert.throws(
      () => parseSipMessage(msg('OPTIONS alice@example.com SIP/2.0', ...tail)),
      parseError('Malformed Request-URI'),
    );
  });

  test('unsupported SIP version gives 505', () => {
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/7.0', ...tail)),
      parseError('SIP Version Not Supported', 505),
    );
    assert.throws(() => parseSipMessage(msg('SIP/1.0 200 OK', ...tail)), parseError('SIP Version Not Supported', 505));
  });

  test('malformed header lines carry the line number (start line = 1)', () => {
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', CORE[0] as string, 'This is not a header', ...tail)),
      parseError('Malformed header line 3'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ' folded first line', ...tail)),
      parseError('Malformed header line 2'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'Bad Name: x', ...tail)),
      parseError('Malformed header line 6'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ': no name', ...tail)),
      parseError('Malformed header line 2'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', 'Ünïcode: x', ...tail)),
      parseError('Malformed header line 2'),
    );
  });

  test('missing, duplicated or malformed mandatory headers', () => {
    const without = (name: string): string[] => CORE.filter((l) => !l.startsWith(name));
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...without('Call-ID'), 'CSeq: 1 OPTIONS', '', '')),
      parseError('Missing Call-ID header'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...without('From'), 'CSeq: 1 OPTIONS', '', '')),
      parseError('Missing From header'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...without('To'), 'CSeq: 1 OPTIONS', '', '')),
      parseError('Missing To header'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, '', '')),
      parseError('Missing CSeq header'),
    );
    assert.throws(() => parseSipMessage(msg('SIP/2.0 200 OK', ...CORE, '', '')), parseError('Missing CSeq header'));
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'i: other', 'CSeq: 1 OPTIONS', '', '')),
      parseError('Multiple Call-ID headers'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 1 OPTIONS', 'CSeq: 2 OPTIONS', '', '')),
      parseError('Multiple CSeq headers'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'f: <sip:c@d>', 'CSeq: 1 OPTIONS', '', '')),
      parseError('Multiple From headers'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'To: <sip:c@d>', 'CSeq: 1 OPTIONS', '', '')),
      parseError('Multiple To headers'),
    );
    for (const cseq of [
      'OPTIONS',
      '1',
      'x OPTIONS',
      '-1 OPTIONS',
      '1 OPTIONS x',
      '4294967296 OPTIONS',
      '12345678901 OPTIONS',
    ]) {
      assert.throws(
        () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, `CSeq: ${cseq}`, '', '')),
        parseError('Malformed CSeq header'),
        cseq,
      );
    }
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 1 INVITE', '', '')),
      parseError('CSeq method mismatch'),
    );
    assert.throws(
      () => parseSipMessage(msg('OPTIONS sip:x@y SIP/2.0', ...CORE, 'CSeq: 1 options', '', '')),
      parseError('CSeq method mismatch'),
    );
  });

  test('malformed From/To only fail when accessed', () => {
    const raw = msg(
      'OPTIONS sip:x@y SIP/2.0',
      'From: Alice sip:alice@atlanta.com',
      'To: <sip:bob@biloxi.com',
      'Call-ID: c',
      'CSeq: 1 OPTIONS',
      '',
      '',
    );
    const req = parseSipMessage(raw);
    assert.equal(req.callId, 'c');
    assert.throws(() => req.from, parseError('Malformed From header'));
    assert.throws(() => req.to, parseError('Malformed To header'));
  });
});

describe('SipHeaders', () => {
  test('construct from pairs: canonical names, trimmed values, iteration in order', () => {
    const h = new SipHeaders([
      ['call-id', ' abc '],
      ['v', 'SIP/2.0/UDP a;branch=z9hG4bK1'],
      ['X-Custom', 'x'],
    ]);
    assert.equal(h.size, 3);
    assert.deepEqual(
      [...h],
      [
        ['Call-ID', 'abc'],
        ['Via', 'SIP/2.0/UDP a;branch=z9hG4bK1'],
        ['X-Custom', 'x'],
      ],
    );
    assert.deepEqual([...h.entries()], h.toArray());
    assert.equal(h.get('x-custom'), 'x');
    assert.equal(h.get('missing'), undefined);
    assert.deepEqual(h.getAll('missing'), []);
    assert.deepEqual(h.getLines('missing'), []);
  });

  test('append / set / delete keep order and lookups consistent', () => {
    const h = new SipHeaders([
      ['Route', '<sip:a;lr>'],
      ['To', '<sip:t@x>'],
      ['Route', '<sip:b;lr>'],
    ]);
    assert.deepEqual(h.getAll('route'), ['<sip:a;lr>', '<sip:b;lr>']);
    h.append('route', '<sip:c;lr>, <sip:d;lr>');
    assert.deepEqual(h.getAll('Route'), ['<sip:a;lr>', '<sip:b;lr>', '<sip:c;lr>', '<sip:d;lr>']);
    h.set('Route', '<sip:z;lr>');
    assert.deepEqual(h.toArray(), [
      ['Route', '<sip:z;lr>'],
      ['To', '<sip:t@x>'],
    ]);
    h.set('Subject', 'new');
    assert.equal(h.get('s'), 'new');
    assert.equal(h.delete('route'), 1);
    assert.equal(h.delete('route'), 0);
    assert.deepEqual(h.toArray(), [
      ['To', '<sip:t@x>'],
      ['Subject', 'new'],
    ]);
  });

  test('large header sets use an index and stay consistent through mutation', () => {
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i < 60; i++) pairs.push([`X-H${i % 20}`, String(i)]);
    const h = new SipHeaders(pairs);
    assert.equal(h.get('x-h3'), '3');
    assert.deepEqual(h.getAll('X-H3'), ['3', '23', '43']);
    h.append('x-h3', 'new');
    assert.deepEqual(h.getAll('X-H3'), ['3', '23', '43', 'new']);
    assert.equal(h.delete('X-H3'), 4);
    assert.equal(h.has('x-h3'), false);
    assert.equal(h.get('x-h4'), '4');
    assert.equal(h.size, 57);
  });

  test('helpers: headerKey, canonicalHeaderName, isListHeader, splitHeaderList, utf8ByteLength', () => {
    assert.equal(headerKey('I'), 'call-id');
    assert.equal(headerKey('WWW-Authenticate'), 'www-authenticate');
    assert.equal(canonicalHeaderName('call-id'), 'Call-ID');
    assert.equal(canonicalHeaderName('m'), 'Contact');
    assert.equal(canonicalHeaderName('cseq'), 'CSeq');
    assert.equal(canonicalHeaderName('www-authenticate'), 'WWW-Authenticate');
    assert.equal(canonicalHeaderName('sip-etag'), 'SIP-ETag');
    assert.equal(canonicalHeaderName('x-Foo'), 'x-Foo');
    assert.equal(isListHeader('Via'), true);
    assert.equal(isListHeader('k'), true);
    assert.equal(isListHeader('Service-Route'), true);
    assert.equal(isListHeader('Path'), true);
    assert.equal(isListHeader('Privacy'), false);
    assert.equal(isListHeader('Date'), false);
    assert.equal(isListHeader('From'), false);
    assert.equal(isListHeader('Authorization'), false);
    assert.deepEqual(splitHeaderList('a, "b,\\",c" <x,y>;p, ,c'), ['a', '"b,\\",c" <x,y>;p', 'c']);
    assert.deepEqual(splitHeaderList('  '), []);
    assert.deepEqual(splitHeaderList('<sip:a@b>;x="unterminated, c'), ['<sip:a@b>;x="unterminated, c']);
    assert.equal(utf8ByteLength('abc'), 3);
    assert.equal(utf8ByteLength('é€😀'), 2 + 3 + 4);
  });
});

describe('SipRequest / SipResponse constructors', () => {
  test('validate mandatory headers like the parser', () => {
    const req = new SipRequest({
      method: 'MESSAGE',
      uri: 'sip:bob@b',
      headers: [
        ...CORE.map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
        ['CSeq', '4 MESSAGE'],
      ],
      body: 'hi',
    });
    assert.equal(req.kind, 'request');
    assert.deepEqual(req.cseq, { seq: 4, method: 'MESSAGE' });
    assert.equal(req.from.tag, '1928301774');
    assert.equal(req.body, 'hi');
    assert.throws(
      () => new SipResponse({ status: 200, reason: 'OK', headers: [['Call-ID', 'x']] }),
      parseError('Missing CSeq header'),
    );
  });
});
