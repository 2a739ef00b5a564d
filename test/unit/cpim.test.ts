import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ANONYMOUS_FROM,
  CPIM_HEADERS_NS,
  CpimMessage,
  CpimParseError,
  IMDN_NS,
  buildCpim,
  formatCpimAddress,
  imdnRequest,
  isImdnNotification,
  isRfc3339DateTime,
  parseCpim,
  parseCpimAddress,
  serializeCpim,
  withReplacedFrom,
} from '../../as/src/im/formats/cpim.js';

const crlf = (lines: string[]): string => lines.join('\r\n');
const lf = (lines: string[]): string => lines.join('\n');

// The example message of RFC 3862 section 6 (without the outer MIME header), written line by line.
const RFC3862_HEADERS = [
  'From: MR SANDERS <im:piglet@100akerwood.com>',
  'To: Depressed Donkey <im:eeyore@100akerwood.com>',
  'DateTime: 2000-12-13T13:40:00-08:00',
  'Subject: the weather will be fine today',
  "Subject:;lang=fr beau temps prevu pour aujourd'hui",
  'NS: MyFeatures <mid:MessageFeatures@id.foo.com>',
  'Require: MyFeatures.VitalMessageOption',
  'MyFeatures.VitalMessageOption: Confirmation-requested',
  'MyFeatures.WackyMessageOption: Use-silly-font',
];
const RFC3862_CONTENT_HEADERS = ['Content-type: text/xml; charset=utf-8', 'Content-ID: <1234567890@foo.com>'];
const RFC3862_CONTENT = '<body>\r\nHere is the text of my message.\r\n</body>\r\n';
const RFC3862 = crlf([...RFC3862_HEADERS, '', ...RFC3862_CONTENT_HEADERS, '', '']) + RFC3862_CONTENT;

// The IM of RFC 5438 section 7.1.1 asking for delivery and display notifications.
const RFC5438_IM = crlf([
  'From: Alice <im:alice@example.com>',
  'To: Bob <im:bob@example.com>',
  'NS: imdn <urn:ietf:params:imdn>',
  'imdn.Message-ID: 34jk324j',
  'DateTime: 2006-04-04T12:16:49-05:00',
  'imdn.Disposition-Notification: positive-delivery, display',
  '',
  'Content-type: text/plain',
  'Content-length: 12',
  '',
  'Hello World',
]);

function minimal(headers: string[], contentHeaders: string[] = ['Content-Type: text/plain'], content = 'hi'): string {
  return crlf([...headers, '', ...contentHeaders, '', content]);
}

function refused(reason: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof CpimParseError, `expected CpimParseError, got ${String(err)}`);
    assert.match(err.reason, reason);
    return true;
  };
}

describe('parseCpim: RFC 3862 example', () => {
  const msg = parseCpim(RFC3862);

  it('reads the standard headers', () => {
    assert.deepEqual(msg.from, { display: 'MR SANDERS', uri: 'im:piglet@100akerwood.com' });
    assert.deepEqual(msg.to, [{ display: 'Depressed Donkey', uri: 'im:eeyore@100akerwood.com' }]);
    assert.deepEqual(msg.cc, []);
    assert.equal(msg.dateTime, '2000-12-13T13:40:00-08:00');
    assert.deepEqual(msg.subjects, [
      { text: 'the weather will be fine today' },
      { text: "beau temps prevu pour aujourd'hui", lang: 'fr' },
    ]);
    assert.equal(msg.subject, 'the weather will be fine today');
    assert.equal(msg.header('Require'), 'MyFeatures.VitalMessageOption');
  });

  it('keeps every header in order, values without the separating space', () => {
    assert.deepEqual(
      msg.headers.map((h) => [h.name, h.value]),
      [
        ['From', 'MR SANDERS <im:piglet@100akerwood.com>'],
        ['To', 'Depressed Donkey <im:eeyore@100akerwood.com>'],
        ['DateTime', '2000-12-13T13:40:00-08:00'],
        ['Subject', 'the weather will be fine today'],
        ['Subject', ";lang=fr beau temps prevu pour aujourd'hui"],
        ['NS', 'MyFeatures <mid:MessageFeatures@id.foo.com>'],
        ['Require', 'MyFeatures.VitalMessageOption'],
        ['MyFeatures.VitalMessageOption', 'Confirmation-requested'],
        ['MyFeatures.WackyMessageOption', 'Use-silly-font'],
      ],
    );
  });

  it('resolves namespaced headers by prefix and by URN', () => {
    assert.deepEqual([...msg.ns], [['MyFeatures', 'mid:MessageFeatures@id.foo.com']]);
    assert.equal(msg.header('VitalMessageOption', 'mid:MessageFeatures@id.foo.com'), 'Confirmation-requested');
    assert.equal(msg.header('MyFeatures.WackyMessageOption'), 'Use-silly-font');
    assert.equal(msg.header('myfeatures.wackymessageoption'), 'Use-silly-font');
    // a prefixed header is not a core header of the same local name
    assert.equal(msg.header('VitalMessageOption'), undefined);
    assert.equal(msg.header('VitalMessageOption', CPIM_HEADERS_NS), undefined);
  });

  it('reads the content part', () => {
    assert.equal(msg.contentType, 'text/xml');
    assert.equal(msg.contentTypeRaw, 'text/xml; charset=utf-8');
    assert.equal(msg.contentTypeParams.get('charset'), 'utf-8');
    assert.deepEqual(
      msg.contentHeaders.map((h) => [h.name, h.value]),
      [
        ['Content-type', 'text/xml; charset=utf-8'],
        ['Content-ID', '<1234567890@foo.com>'],
      ],
    );
    assert.equal(msg.contentHeader('content-id'), '<1234567890@foo.com>');
    assert.equal(msg.content, RFC3862_CONTENT);
  });

  it('serializes back byte for byte', () => {
    assert.equal(serializeCpim(msg), RFC3862);
    assert.equal(String(msg), RFC3862);
  });
});

describe('parseCpim: line ends and content', () => {
  it('round-trips the RFC 5438 IM byte for byte', () => {
    assert.equal(serializeCpim(parseCpim(RFC5438_IM)), RFC5438_IM);
  });

  it('accepts bare LF line ends and keeps the content as given', () => {
    const content = 'line 1\nline 2\r\n\r\nline 4  \n';
    const body = lf([...RFC3862_HEADERS, '', ...RFC3862_CONTENT_HEADERS, '', '']) + content;
    const msg = parseCpim(body);
    assert.equal(msg.from.uri, 'im:piglet@100akerwood.com');
    assert.equal(msg.subjects[1]?.lang, 'fr');
    assert.equal(msg.contentType, 'text/xml');
    assert.equal(msg.content, content);
    // headers come out with CRLF, the content untouched
    assert.equal(serializeCpim(msg), crlf([...RFC3862_HEADERS, '', ...RFC3862_CONTENT_HEADERS, '', '']) + content);
  });

  it('accepts mixed line ends in the header sections', () => {
    const msg = parseCpim('From: <sip:a@x>\nTo: <sip:b@x>\r\n\nContent-Type: text/plain\r\n\r\n');
    assert.deepEqual(msg.to, [{ uri: 'sip:b@x' }]);
    assert.equal(msg.content, '');
  });

  it('keeps a content that itself contains empty lines and header-like text', () => {
    const content = 'From: <sip:evil@x>\r\n\r\nContent-Type: text/html\r\n\r\n<b>x</b>';
    const msg = parseCpim(minimal(['From: <sip:a@x>'], ['Content-Type: text/plain'], content));
    assert.equal(msg.content, content);
    assert.equal(msg.from.uri, 'sip:a@x');
    assert.equal(msg.contentType, 'text/plain');
  });

  it('reads several To and cc, any header case, quoted and escaped display names', () => {
    const msg = parseCpim(
      minimal([
        'FROM: "Al \\"the boss\\" \\u00e9" <sip:al@x>',
        'to: <sip:b@x>',
        'To: "C, D" <sip:cd@x>',
        'CC: Eve <sip:e@x>',
        'datetime: 2024-02-29T23:59:60.5Z',
      ]),
    );
    assert.deepEqual(msg.from, { display: 'Al "the boss" \u00e9', uri: 'sip:al@x' });
    assert.deepEqual(msg.to, [{ uri: 'sip:b@x' }, { display: 'C, D', uri: 'sip:cd@x' }]);
    assert.deepEqual(msg.cc, [{ display: 'Eve', uri: 'sip:e@x' }]);
    assert.equal(msg.dateTime, '2024-02-29T23:59:60.5Z');
  });

  it('decodes escapes in Subject text', () => {
    const msg = parseCpim(minimal(['From: <sip:a@x>', 'Subject: caf\\u00e9 \\"ok\\" a\\\\b']));
    assert.equal(msg.subject, 'caf\u00e9 "ok" a\\b');
  });

  it('normalises a missing space after the colon', () => {
    const msg = parseCpim(minimal(['From:<sip:a@x>', 'X:value']));
    assert.equal(msg.header('X'), 'value');
    assert.equal(serializeCpim(msg), minimal(['From: <sip:a@x>', 'X: value']));
  });
});

describe('parseCpim: namespaces', () => {
  it('finds imdn headers by URN whatever prefix the sender chose', () => {
    const msg = parseCpim(
      minimal([
        'From: <sip:a@x>',
        'NS: x <urn:ietf:params:imdn>',
        'x.Message-ID: abc123',
        'x.Disposition-Notification: display',
      ]),
    );
    assert.deepEqual([...msg.ns], [['x', 'urn:ietf:params:imdn']]);
    assert.equal(msg.header('Message-ID', IMDN_NS), 'abc123');
    assert.equal(msg.header('message-id', 'URN:IETF:PARAMS:IMDN'), 'abc123');
    assert.equal(msg.header('x.Message-ID'), 'abc123');
    // "imdn" is not declared here, but is the well-known prefix of the same URN
    assert.equal(msg.header('imdn.Message-ID'), 'abc123');
    assert.equal(msg.header('Message-ID'), undefined);
    assert.deepEqual(imdnRequest(msg), { messageId: 'abc123', dispositions: new Set(['display']), recordRoutes: [] });
  });

  it('does not take a prefix bound to another URN for imdn', () => {
    const msg = parseCpim(minimal(['From: <sip:a@x>', 'NS: imdn <urn:example:not-imdn>', 'imdn.Message-ID: nope']));
    assert.equal(msg.header('Message-ID', IMDN_NS), undefined);
    assert.equal(msg.header('Message-ID', 'urn:example:not-imdn'), 'nope');
    assert.equal(imdnRequest(msg).messageId, undefined);
  });

  it('reads an undeclared imdn prefix as the imdn namespace', () => {
    const msg = parseCpim(minimal(['From: <sip:a@x>', 'imdn.Message-ID: m1']));
    assert.equal(msg.header('Message-ID', IMDN_NS), 'm1');
  });

  it('matches other undeclared prefixes literally', () => {
    const msg = parseCpim(minimal(['From: <sip:a@x>', 'foo.Bar: 1']));
    assert.equal(msg.header('foo.Bar'), '1');
    assert.equal(msg.header('Bar'), undefined);
  });

  it('resolves a prefix positionally, then by a later declaration', () => {
    const msg = parseCpim(
      minimal([
        'From: <sip:a@x>',
        'p.Early: 1',
        'NS: p <urn:example:one>',
        'p.Mid: 2',
        'NS: p <urn:example:two>',
        'p.Late: 3',
      ]),
    );
    assert.equal(msg.header('Early', 'urn:example:one'), '1');
    assert.equal(msg.header('Mid', 'urn:example:one'), '2');
    assert.equal(msg.header('Late', 'urn:example:two'), '3');
    assert.equal(msg.header('Late', 'urn:example:one'), undefined);
    assert.equal(msg.ns.get('p'), 'urn:example:two');
  });

  it('keeps unprefixed names in the core namespace even after a prefix-less NS', () => {
    const msg = parseCpim(minimal(['NS: <urn:example:other>', 'From: <sip:a@x>']));
    assert.equal(msg.ns.get(''), 'urn:example:other');
    assert.equal(msg.from.uri, 'sip:a@x');
  });

  it('counts a prefixed From in the core namespace as a From', () => {
    const msg = parseCpim(minimal(['NS: c <urn:ietf:params:cpim-headers:>', 'c.From: <sip:a@x>']));
    assert.equal(msg.from.uri, 'sip:a@x');
    assert.throws(
      () => parseCpim(minimal(['NS: c <urn:ietf:params:cpim-headers:>', 'c.From: <sip:a@x>', 'From: <sip:b@x>'])),
      refused(/More than one From/),
    );
  });
});

describe('parseCpim: refusals', () => {
  const from = 'From: <sip:a@x>';

  it('more than 100 message or content headers', () => {
    const hundred = Array.from({ length: 99 }, (_, i) => `X-H${i}: v`);
    assert.equal(parseCpim(minimal([from, ...hundred])).headers.length, 100);
    assert.throws(
      () => parseCpim(minimal([from, ...hundred, 'X-Last: v'])),
      refused(/^More than 100 CPIM message headers$/),
    );
    const content = ['Content-Type: text/plain', ...Array.from({ length: 100 }, (_, i) => `X-C${i}: v`)];
    assert.throws(() => parseCpim(minimal([from], content)), refused(/^More than 100 CPIM content headers$/));
  });

  it('a header section longer than 16 KiB', () => {
    const big = 'X-Big: ' + 'a'.repeat(16 * 1024);
    assert.throws(() => parseCpim(minimal([from, big])), refused(/^CPIM message headers longer than 16384 bytes$/));
    assert.throws(
      () => parseCpim(minimal([from], ['Content-Type: text/plain', big])),
      refused(/^CPIM content headers longer than 16384 bytes$/),
    );
    // counted in UTF-8 bytes: 8200 two-byte characters (16400 bytes) though only 8208 UTF-16 units
    const wide = 'X-Wide: ' + '\u00e9'.repeat(8200);
    assert.throws(() => parseCpim(minimal([from, wide])), refused(/longer than 16384 bytes/));
    // a body without any line break stops at the limit
    assert.throws(() => parseCpim('x'.repeat(100_000)), refused(/longer than 16384 bytes/));
  });

  it('a missing empty line after either section', () => {
    assert.throws(
      () => parseCpim('From: <sip:a@x>\r\nTo: <sip:b@x>'),
      refused(/^Missing empty line after the CPIM message headers$/),
    );
    assert.throws(
      () => parseCpim('From: <sip:a@x>\r\n\r\nContent-Type: text/plain'),
      refused(/^Missing empty line after the CPIM content headers$/),
    );
    assert.throws(() => parseCpim(''), refused(/^Missing empty line/));
  });

  it('a header line without a colon', () => {
    assert.throws(() => parseCpim(minimal([from, 'just text'])), refused(/^CPIM message header line without a colon$/));
    assert.throws(
      () => parseCpim(crlf([from, '', 'Content-Type: text/plain', 'hello', '', 'x'])),
      refused(/^CPIM content header line without a colon$/),
    );
    // the content follows the content headers without its empty line
    assert.throws(
      () => parseCpim(crlf([from, '', 'Content-Type: text/plain', 'Hello world', ''])),
      refused(/without a colon/),
    );
  });

  it('an invalid header name', () => {
    assert.throws(() => parseCpim(minimal([from, 'Bad Name: x'])), refused(/^Invalid CPIM message header name$/));
    assert.throws(() => parseCpim(minimal([from, 'a.b.c: x'])), refused(/^Invalid CPIM message header name$/));
    assert.throws(() => parseCpim(minimal([from, ': x'])), refused(/^Invalid CPIM message header name$/));
    assert.throws(() => parseCpim(minimal([from, ' folded: x'])), refused(/^Invalid CPIM message header name$/));
  });

  it('control characters in a header', () => {
    assert.throws(() => parseCpim(minimal([from, 'X: a\rb'])), refused(/^Control character in a CPIM message header$/));
    assert.throws(() => parseCpim(minimal([from, 'X: a\u0000b'])), refused(/^Control character/));
    assert.equal(parseCpim(minimal([from, 'X: a\tb'])).header('X'), 'a\tb');
  });

  it('a From that is not a name-addr, a missing or repeated From', () => {
    for (const bad of [
      'sip:a@x',
      '<sip:a@x> trailing',
      '"unterminated <sip:a@x>',
      '<sip:a@x',
      '<not a uri>',
      '<>',
      'A "B" <sip:a@x>',
    ]) {
      assert.throws(() => parseCpim(minimal([`From: ${bad}`])), refused(/^Malformed From: /), bad);
    }
    assert.throws(() => parseCpim(minimal(['To: <sip:b@x>'])), refused(/^Missing From header$/));
    assert.throws(() => parseCpim(minimal([from, 'From: <sip:b@x>'])), refused(/^More than one From header$/));
    assert.throws(() => parseCpim(minimal([from, 'To: sip:b@x'])), refused(/^Malformed To: /));
    assert.throws(() => parseCpim(minimal([from, 'cc: <sip:b@x>>'])), refused(/^Malformed cc: /));
  });

  it('a malformed NS', () => {
    assert.throws(() => parseCpim(minimal([from, 'NS: imdn urn:ietf:params:imdn'])), refused(/^Malformed NS header$/));
    assert.throws(() => parseCpim(minimal([from, 'NS: a.b <urn:x>'])), refused(/^Malformed NS header$/));
  });

  it('a missing, repeated or malformed Content-Type', () => {
    assert.throws(
      () => parseCpim(minimal([from], ['Content-ID: <1@x>'])),
      refused(/^Missing Content-Type in the CPIM content headers$/),
    );
    assert.throws(() => parseCpim(crlf([from, '', '', 'hi'])), refused(/^Missing Content-Type/));
    assert.throws(
      () => parseCpim(minimal([from], ['Content-Type: text/plain', 'content-type: text/html'])),
      refused(/^More than one Content-Type/),
    );
    assert.throws(() => parseCpim(minimal([from], ['Content-Type: text'])), refused(/^Malformed Content-Type/));
    assert.throws(
      () => parseCpim(minimal([from], ['Content-Type: text/plain; charset="utf-8'])),
      refused(/^Malformed Content-Type/),
    );
  });

  it('reasons are short printable ASCII', () => {
    try {
      parseCpim(minimal(['From: <sip:\u00e9@x> \u00e9']));
      assert.fail('should have thrown');
    } catch (e) {
      assert.ok(e instanceof CpimParseError);
      assert.match(e.reason, /^[\x20-\x7e]{1,100}$/);
      assert.equal(e.message, e.reason);
    }
  });
});

describe('privacy: withReplacedFrom', () => {
  it('replaces only the From line; everything else stays byte-identical', () => {
    const msg = parseCpim(RFC3862);
    const anon = withReplacedFrom(msg, ANONYMOUS_FROM);
    assert.deepEqual(anon.from, { display: 'Anonymous', uri: 'sip:anonymous@anonymous.invalid' });
    assert.equal(
      serializeCpim(anon),
      RFC3862.replace(
        'From: MR SANDERS <im:piglet@100akerwood.com>',
        'From: "Anonymous" <sip:anonymous@anonymous.invalid>',
      ),
    );
    assert.equal(anon.content, RFC3862_CONTENT);
    assert.deepEqual(anon.headers.slice(1), msg.headers.slice(1));
    assert.deepEqual(anon.contentHeaders, msg.contentHeaders);
    // the original is untouched
    assert.equal(msg.from.uri, 'im:piglet@100akerwood.com');
  });

  it('keeps the position and spelling of a From that is not first', () => {
    const body = minimal(
      ['NS: imdn <urn:ietf:params:imdn>', 'from: "Bob" <sip:bob@x>', 'imdn.Message-ID: q'],
      ['Content-Type: text/plain'],
      'secret\n',
    );
    const anon = withReplacedFrom(parseCpim(body), '"Anonymous" <sip:anonymous@anonymous.invalid>');
    assert.equal(
      serializeCpim(anon),
      body.replace('from: "Bob" <sip:bob@x>', 'from: "Anonymous" <sip:anonymous@anonymous.invalid>'),
    );
    assert.equal(anon.header('Message-ID', IMDN_NS), 'q');
  });

  it('refuses a From string that is not an address', () => {
    assert.throws(() => withReplacedFrom(parseCpim(RFC3862), 'sip:anonymous@anonymous.invalid'), TypeError);
  });
});

describe('imdnRequest', () => {
  it('reads the RFC 5438 example', () => {
    assert.deepEqual(imdnRequest(parseCpim(RFC5438_IM)), {
      messageId: '34jk324j',
      dispositions: new Set(['positive-delivery', 'display']),
      recordRoutes: [],
    });
  });

  it('takes case-insensitive tokens from every header, drops unknown ones, reads record routes in order', () => {
    const msg = parseCpim(
      minimal([
        'From: <sip:a@x>',
        'NS: imdn <urn:ietf:params:imdn>',
        'imdn.Message-ID:  m-9 ',
        'imdn.Disposition-Notification: Negative-Delivery ,FANCY, ,processing',
        'imdn.Disposition-Notification: DISPLAY',
        'imdn.IMDN-Record-Route: <sip:im1.example.com;lr>',
        'imdn.IMDN-Record-Route: garbage',
        'imdn.IMDN-Record-Route: "IM server" <sip:im2.example.com>',
      ]),
    );
    const req = imdnRequest(msg);
    assert.equal(req.messageId, 'm-9');
    assert.deepEqual([...req.dispositions].sort(), ['display', 'negative-delivery', 'processing']);
    assert.deepEqual(req.recordRoutes, ['sip:im1.example.com;lr', 'sip:im2.example.com']);
  });

  it('is empty without imdn headers', () => {
    assert.deepEqual(imdnRequest(parseCpim(minimal(['From: <sip:a@x>']))), {
      messageId: undefined,
      dispositions: new Set(),
      recordRoutes: [],
    });
  });

  it('never asks for notifications on a notification', () => {
    const msg = parseCpim(
      minimal(
        [
          'From: <sip:a@x>',
          'NS: imdn <urn:ietf:params:imdn>',
          'imdn.Message-ID: n1',
          'imdn.Disposition-Notification: positive-delivery',
        ],
        ['Content-Type: message/imdn+xml', 'Content-Disposition: notification'],
        '<imdn/>',
      ),
    );
    assert.equal(isImdnNotification(msg), true);
    assert.equal(imdnRequest(msg).dispositions.size, 0);
    assert.equal(imdnRequest(msg).messageId, 'n1');
    assert.equal(isImdnNotification(parseCpim(RFC5438_IM)), false);
  });
});

describe('buildCpim', () => {
  it('writes the standard headers in order and parses back', () => {
    const msg = buildCpim({
      from: { display: 'Alice "A"', uri: 'sip:alice@example.com' },
      to: [{ uri: 'sip:bob@example.com' }, { display: 'Carol', uri: 'sip:carol@example.com' }],
      cc: [{ uri: 'sip:dave@example.com' }],
      dateTime: '2024-05-01T10:00:00.000Z',
      subject: { text: 'caf\u00e9\nnext', lang: 'fr' },
      ns: { imdn: IMDN_NS },
      headers: [
        { name: 'imdn.Message-ID', value: 'id-1' },
        { name: 'imdn.Disposition-Notification', value: 'positive-delivery, display' },
      ],
      contentType: 'text/plain;charset=utf-8',
      contentHeaders: [{ name: 'Content-Length', value: '6' }],
      content: 'Hello\n',
    });
    const text = serializeCpim(msg);
    assert.equal(
      text,
      crlf([
        'From: "Alice \\"A\\"" <sip:alice@example.com>',
        'To: <sip:bob@example.com>',
        'To: "Carol" <sip:carol@example.com>',
        'cc: <sip:dave@example.com>',
        'DateTime: 2024-05-01T10:00:00.000Z',
        'Subject:;lang=fr caf\u00e9\\nnext',
        'NS: imdn <urn:ietf:params:imdn>',
        'imdn.Message-ID: id-1',
        'imdn.Disposition-Notification: positive-delivery, display',
        '',
        'Content-Type: text/plain;charset=utf-8',
        'Content-Length: 6',
        '',
        'Hello\n',
      ]),
    );
    const back = parseCpim(text);
    assert.deepEqual(back.from, { display: 'Alice "A"', uri: 'sip:alice@example.com' });
    assert.deepEqual(back.subjects, [{ text: 'caf\u00e9\nnext', lang: 'fr' }]);
    assert.equal(back.contentTypeParams.get('charset'), 'utf-8');
    assert.deepEqual([...imdnRequest(back).dispositions], ['positive-delivery', 'display']);
    assert.equal(serializeCpim(back), text);
  });

  it('takes a single To and no optional fields', () => {
    const msg = buildCpim({ from: { uri: 'sip:a@x' }, to: { uri: 'sip:b@x' }, contentType: 'text/plain', content: '' });
    assert.equal(serializeCpim(msg), 'From: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\nContent-Type: text/plain\r\n\r\n');
    assert.ok(msg instanceof CpimMessage);
  });

  it('refuses input that would not parse back', () => {
    const base = { from: { uri: 'sip:a@x' }, to: { uri: 'sip:b@x' }, contentType: 'text/plain', content: 'x' };
    assert.throws(
      () => buildCpim({ ...base, headers: [{ name: 'imdn.Message-ID', value: '1' }] }),
      /prefix not declared/,
    );
    assert.throws(
      () => buildCpim({ ...base, headers: [{ name: 'X-Inject', value: 'a\r\nFrom: <sip:evil@x>' }] }),
      TypeError,
    );
    assert.throws(() => buildCpim({ ...base, headers: [{ name: 'Bad Name', value: 'a' }] }), TypeError);
    assert.throws(() => buildCpim({ ...base, from: { uri: 'sip:a b@x' } }), TypeError);
    assert.throws(() => buildCpim({ ...base, dateTime: '2024-05-01 10:00' }), /RFC 3339/);
    assert.throws(
      () => buildCpim({ ...base, contentHeaders: [{ name: 'content-type', value: 'text/html' }] }),
      TypeError,
    );
    assert.throws(() => buildCpim({ ...base, contentType: 'nonsense' }), /Malformed Content-Type/);
    assert.throws(() => buildCpim({ ...base, ns: { 'a.b': 'urn:x' } }), TypeError);
    const many = Array.from({ length: 100 }, (_, i) => ({ name: `X-${i}`, value: 'v' }));
    assert.throws(() => buildCpim({ ...base, headers: many }), /More than 100/);
  });
});

describe('address and date helpers', () => {
  it('parses and formats addresses', () => {
    assert.deepEqual(parseCpimAddress('  <im:a@x>  '), { uri: 'im:a@x' });
    assert.deepEqual(parseCpimAddress('"" <sip:a@x>'), { display: '', uri: 'sip:a@x' });
    assert.deepEqual(parseCpimAddress('"tab\\there" <sip:a@x>'), { display: 'tab\there', uri: 'sip:a@x' });
    assert.equal(
      formatCpimAddress({ display: 'back\\slash "q"\u0001', uri: 'sip:a@x' }),
      '"back\\\\slash \\"q\\"\\u0001" <sip:a@x>',
    );
    assert.equal(formatCpimAddress({ display: '', uri: 'sip:a@x' }), '<sip:a@x>');
    const odd = { display: 'x\u0007"\\y', uri: 'tel:+15551234' };
    assert.deepEqual(parseCpimAddress(formatCpimAddress(odd)), odd);
    assert.throws(() => formatCpimAddress({ uri: '<sip:a@x>' }), TypeError);
  });

  it('checks RFC 3339 date-times', () => {
    for (const ok of [
      '2000-12-13T13:40:00-08:00',
      '2024-01-01T00:00:00Z',
      '2024-01-01t00:00:00.123456+05:30',
      '2016-12-31T23:59:60Z',
    ]) {
      assert.equal(isRfc3339DateTime(ok), true, ok);
    }
    for (const bad of [
      '2024-01-01',
      '2024-01-01T00:00:00',
      '2024-13-01T00:00:00Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01T00:00:00+0100',
      '2024-01-01T00:00:00+24:00',
      '',
    ]) {
      assert.equal(isRfc3339DateTime(bad), false, bad);
    }
  });
});
