import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ANONYMOUS_URI,
  MAX_RECIPIENTS_HARD,
  RECIPIENT_LIST_HISTORY_DISPOSITION,
  RecipientListError,
  buildRecipientListMessage,
  parseRecipientListMessage,
  recipientListHistory,
  recipientListHistoryPart,
  type Recipient,
} from '../../as/src/im/formats/recipient-list.js';
import { parseMultipart } from '../../as/src/sip/multipart.js';
import { NamespaceScope, attrNS, childElements, parseXml, textContent } from '../../as/src/xml/xml-tree.js';

const crlf = (...lines: string[]): string => lines.join('\r\n');
const CT = 'multipart/mixed;boundary="rl-7f3a"';

/** A recipient-list MESSAGE body as a client would send it (written out by hand). */
function exampleBody(list: string, eol = '\r\n'): string {
  return [
    '--rl-7f3a',
    'Content-Type: text/plain;charset=UTF-8',
    'Content-Language: en',
    '',
    'The build is green again.',
    '--rl-7f3a',
    'Content-Type: application/resource-lists+xml',
    'Content-Disposition: recipient-list',
    '',
    list,
    '--rl-7f3a--',
    '',
  ].join(eol);
}

const LIST = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"',
  '    xmlns:cp="urn:ietf:params:xml:ns:copycontrol">',
  '  <list>',
  '    <entry uri="sip:ines@lab.example.org" cp:copyControl="to"><display-name>Ines</display-name></entry>',
  '    <entry uri="sip:omar@lab.example.org" cp:copyControl="to" cp:anonymize="true"/>',
  '    <entry uri="sip:pia@lab.example.org" cp:copyControl="cc"/>',
  '    <entry uri="tel:+44-20-7946-0018" cp:copyControl="cc" cp:anonymize="1"/>',
  '    <entry uri="sips:quinn@lab.example.org" cp:copyControl="bcc"/>',
  '    <entry uri="sip:ravi@lab.example.org"/>',
  '  </list>',
  '</resource-lists>',
].join('\n');

function refused(code: number, reason: string | RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof RecipientListError, `expected RecipientListError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (typeof reason === 'string') assert.equal(err.reason, reason);
    else assert.match(err.reason, reason);
    return true;
  };
}

function listBody(entries: string, extraNs = ''): string {
  return exampleBody(
    `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol"${extraNs}>${entries}</resource-lists>`,
  );
}

describe('parseRecipientListMessage', () => {
  it('reads recipients with copy control, anonymize and display name, and the message part (CRLF)', () => {
    const out = parseRecipientListMessage(exampleBody(LIST), CT);
    assert.deepEqual(out.recipients, [
      { uri: 'sip:ines@lab.example.org', copy: 'to', anonymize: false, display: 'Ines' },
      { uri: 'sip:omar@lab.example.org', copy: 'to', anonymize: true },
      { uri: 'sip:pia@lab.example.org', copy: 'cc', anonymize: false },
      { uri: 'tel:+44-20-7946-0018', copy: 'cc', anonymize: true },
      { uri: 'sips:quinn@lab.example.org', copy: 'bcc', anonymize: false },
      { uri: 'sip:ravi@lab.example.org', copy: 'to', anonymize: false },
    ]);
    assert.deepEqual(out.message, {
      contentType: 'text/plain;charset=UTF-8',
      body: 'The build is green again.',
      headers: [['Content-Language', 'en']],
    });
  });

  it('accepts bare LF line endings, preamble, epilogue and the list part first', () => {
    const body = [
      'preamble text',
      '--rl-7f3a',
      'Content-Disposition: recipient-list',
      'Content-Type: application/resource-lists+xml',
      '',
      LIST,
      '--rl-7f3a',
      'Content-Type: message/cpim',
      '',
      'From: <sip:ines@lab.example.org>',
      '',
      'Content-Type: text/plain',
      '',
      'hi',
      '--rl-7f3a--',
      'epilogue',
    ].join('\n');
    const out = parseRecipientListMessage(body, CT);
    assert.equal(out.recipients.length, 6);
    assert.equal(out.message.contentType, 'message/cpim');
    assert.equal(out.message.body, 'From: <sip:ines@lab.example.org>\n\nContent-Type: text/plain\n\nhi');
    assert.deepEqual(out.message.headers, []);
  });

  it('defaults the message content type to text/plain when the part has none', () => {
    const body = crlf(
      '--b',
      '',
      'plain words',
      '--b',
      'Content-Type: application/resource-lists+xml',
      'Content-Disposition: recipient-list',
      '',
      LIST,
      '--b--',
    );
    const out = parseRecipientListMessage(body, 'multipart/mixed; boundary=b');
    assert.equal(out.message.contentType, 'text/plain');
    assert.equal(out.message.body, 'plain words');
  });

  it('flattens nested lists, ignores extension elements and de-duplicates by URI keeping the first', () => {
    const entries =
      '<list name="team"><display-name>Team</display-name>' +
      '<entry uri="sip:Ines@Lab.Example.org"/>' +
      '<list name="sub"><entry uri="sip:pia@lab.example.org" cp:copyControl="cc"/>' +
      '<x:note>ignored</x:note>' +
      '<list><entry uri="SIP:ines@LAB.EXAMPLE.ORG" cp:copyControl="bcc"/><entry uri="sip:ines@lab.example.org"/></list>' +
      '</list></list>' +
      '<list><entry uri="sip:pia@lab.example.org;transport=tcp" cp:copyControl="bcc"/>' +
      '<entry uri="sip:pia@lab.example.org:5070"/>' +
      '<entry uri="tel:+1-202-555-0100"/><entry uri="tel:+12025550100"/></list>';
    const out = parseRecipientListMessage(listBody(entries, ' xmlns:x="urn:example:ext"'), CT);
    assert.deepEqual(
      out.recipients.map((r) => [r.uri, r.copy]),
      [
        ['sip:Ines@Lab.Example.org', 'to'],
        ['sip:pia@lab.example.org', 'cc'],
        // the user part is case-sensitive: a different recipient (scheme and host are not)
        ['SIP:ines@LAB.EXAMPLE.ORG', 'bcc'],
        ['sip:pia@lab.example.org:5070', 'to'],
        ['tel:+1-202-555-0100', 'to'],
      ],
    );
  });

  it('honours copyControl written without the namespace (a blind copy must stay blind)', () => {
    const out = parseRecipientListMessage(
      listBody('<list><entry uri="sip:zed@lab.example.org" copyControl="bcc" anonymize="true"/></list>'),
      CT,
    );
    assert.deepEqual(out.recipients, [{ uri: 'sip:zed@lab.example.org', copy: 'bcc', anonymize: true }]);
  });

  it('reads copyControl under any prefix bound to the copycontrol namespace', () => {
    const body = exampleBody(
      '<rl:resource-lists xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:cc="urn:ietf:params:xml:ns:copycontrol">' +
        '<rl:list><rl:entry uri="sip:a@lab.example.org" cc:copyControl="cc"/></rl:list></rl:resource-lists>',
    );
    assert.deepEqual(parseRecipientListMessage(body, CT).recipients, [
      { uri: 'sip:a@lab.example.org', copy: 'cc', anonymize: false },
    ]);
  });

  describe('refusals', () => {
    it('415 when the body is not multipart/mixed, with Accept', () => {
      assert.throws(
        () => parseRecipientListMessage('hello', 'text/plain'),
        (err: unknown) => {
          assert.ok(err instanceof RecipientListError);
          assert.equal(err.code, 415);
          assert.equal(err.accept, 'multipart/mixed');
          return true;
        },
      );
      assert.throws(
        () => parseRecipientListMessage(exampleBody(LIST), 'multipart/related;type="text/plain";boundary=rl-7f3a'),
        refused(415, /multipart\/mixed/),
      );
    });

    it('415 when the recipient-list part is not resource-lists', () => {
      const body = crlf(
        '--b',
        'Content-Type: text/plain',
        '',
        'hi',
        '--b',
        'Content-Type: text/uri-list',
        'Content-Disposition: recipient-list',
        '',
        'sip:a@x',
        '--b--',
      );
      assert.throws(
        () => parseRecipientListMessage(body, 'multipart/mixed;boundary=b'),
        (err: unknown) => {
          assert.ok(err instanceof RecipientListError);
          assert.equal(err.code, 415);
          assert.equal(err.accept, 'application/resource-lists+xml');
          return true;
        },
      );
    });

    it('400 for a malformed Content-Type or multipart body', () => {
      assert.throws(
        () => parseRecipientListMessage(exampleBody(LIST), 'multipart/mixed;boundary="x'),
        refused(400, 'malformed Content-Type'),
      );
      assert.throws(
        () => parseRecipientListMessage('--rl-7f3a\r\n\r\nx\r\n', CT),
        refused(400, 'malformed multipart body: missing closing boundary delimiter'),
      );
      assert.throws(
        () => parseRecipientListMessage(exampleBody(LIST), 'multipart/mixed'),
        refused(400, 'malformed multipart body: missing boundary parameter'),
      );
    });

    it('400 when the recipient-list part is missing or doubled', () => {
      const noList = crlf(
        '--b',
        'Content-Type: text/plain',
        '',
        'hi',
        '--b',
        'Content-Type: application/resource-lists+xml',
        '',
        LIST,
        '--b--',
      );
      assert.throws(
        () => parseRecipientListMessage(noList, 'multipart/mixed;boundary=b'),
        refused(400, 'missing recipient-list part'),
      );
      const twoLists = crlf(
        '--b',
        'Content-Type: text/plain',
        '',
        'hi',
        '--b',
        'Content-Type: application/resource-lists+xml',
        'Content-Disposition: recipient-list',
        '',
        LIST,
        '--b',
        'Content-Type: application/resource-lists+xml',
        'Content-Disposition: recipient-list',
        '',
        LIST,
        '--b--',
      );
      assert.throws(
        () => parseRecipientListMessage(twoLists, 'multipart/mixed;boundary=b'),
        refused(400, 'more than one recipient-list part'),
      );
    });

    it('400 when the message part is missing or doubled', () => {
      const onlyList = crlf(
        '--b',
        'Content-Type: application/resource-lists+xml',
        'Content-Disposition: recipient-list',
        '',
        LIST,
        '--b--',
      );
      assert.throws(
        () => parseRecipientListMessage(onlyList, 'multipart/mixed;boundary=b'),
        refused(400, 'missing message part'),
      );
      const twoMessages = crlf(
        '--b',
        'Content-Type: text/plain',
        '',
        'a',
        '--b',
        'Content-Type: text/plain',
        '',
        'b',
        '--b',
        'Content-Type: application/resource-lists+xml',
        'Content-Disposition: recipient-list',
        '',
        LIST,
        '--b--',
      );
      assert.throws(
        () => parseRecipientListMessage(twoMessages, 'multipart/mixed;boundary=b'),
        refused(400, 'more than one message part'),
      );
    });

    it('400 for entry-ref and external', () => {
      assert.throws(
        () =>
          parseRecipientListMessage(
            listBody(
              '<list><entry uri="sip:a@x.org"/><entry-ref ref="resource-lists/users/sip:a@x.org/index/~~/resource-lists/list%5b@name=%22f%22%5d/entry%5b@uri=%22sip:b@x.org%22%5d"/></list>',
            ),
            CT,
          ),
        refused(400, 'list references are not supported in a recipient list'),
      );
      assert.throws(
        () =>
          parseRecipientListMessage(
            listBody(
              '<list><list><external anchor="http://xcap.x.org/resource-lists/users/sip:a@x.org/index/~~/resource-lists/list%5b@name=%22f%22%5d"/></list></list>',
            ),
            CT,
          ),
        refused(400, 'list references are not supported in a recipient list'),
      );
    });

    it('takes im: and pres: recipients (RFC 3860/3859) as the same address as sip:', () => {
      const m = parseRecipientListMessage(
        listBody('<list><entry uri="im:a@x.org"/><entry uri="sip:a@x.org"/><entry uri="pres:b@x.org"/></list>'),
        CT,
      );
      assert.deepEqual(
        m.recipients.map((r) => r.uri),
        ['im:a@x.org', 'pres:b@x.org'],
      );
    });

    it('400 for non SIP/tel URIs, entries without uri, bad attribute values', () => {
      assert.throws(
        () => parseRecipientListMessage(listBody('<list><entry uri="mailto:a@x.org"/></list>'), CT),
        refused(400, 'recipient URIs must be sip, sips, tel, im or pres URIs'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody('<list><entry uri="http://x.org/"/></list>'), CT),
        refused(400, 'recipient URIs must be sip, sips, tel, im or pres URIs'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody('<list><entry/></list>'), CT),
        refused(400, 'recipient list entry without a uri'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody('<list><entry uri="sip:a@x.org" cp:copyControl="from"/></list>'), CT),
        refused(400, 'invalid copyControl value in the recipient list'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody('<list><entry uri="sip:a@x.org" cp:anonymize="yes"/></list>'), CT),
        refused(400, 'invalid anonymize value in the recipient list'),
      );
    });

    it('400 for XML that is malformed, has a DOCTYPE, or is not resource-lists', () => {
      assert.throws(
        () => parseRecipientListMessage(exampleBody('<resource-lists'), CT),
        refused(400, 'malformed recipient list XML'),
      );
      const doctype =
        '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "sip:x@y">]><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="&e;"/></list></resource-lists>';
      assert.throws(
        () => parseRecipientListMessage(exampleBody(doctype), CT),
        refused(400, 'malformed recipient list XML'),
      );
      assert.throws(
        () => parseRecipientListMessage(exampleBody('<resource-lists><list/></resource-lists>'), CT),
        refused(400, 'recipient list is not a resource-lists document'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody('<entry uri="sip:a@x.org"/>'), CT),
        refused(400, 'unexpected element entry in the recipient list'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody('<list><bogus/></list>'), CT),
        refused(400, 'unexpected element bogus in the recipient list'),
      );
    });

    it('400 for an empty list', () => {
      assert.throws(
        () => parseRecipientListMessage(listBody('<list/><list><list/></list>'), CT),
        refused(400, 'recipient list is empty'),
      );
    });
  });

  describe('recipient limits', () => {
    const entries = (n: number) =>
      '<list>' + Array.from({ length: n }, (_, i) => `<entry uri="sip:u${i}@lab.example.org"/>`).join('') + '</list>';

    it('accepts exactly the configured maximum and refuses one more with 403', () => {
      assert.equal(parseRecipientListMessage(listBody(entries(5)), CT, { maxRecipients: 5 }).recipients.length, 5);
      assert.throws(
        () => parseRecipientListMessage(listBody(entries(6)), CT, { maxRecipients: 5 }),
        refused(403, 'too many recipients (max 5)'),
      );
    });

    it('counts distinct recipients, not entries', () => {
      const dup = '<list>' + '<entry uri="sip:same@lab.example.org"/>'.repeat(20) + '</list>';
      assert.equal(parseRecipientListMessage(listBody(dup), CT, { maxRecipients: 1 }).recipients.length, 1);
    });

    it('applies the hard maximum with 400, whatever the configuration', () => {
      assert.equal(MAX_RECIPIENTS_HARD, 1000);
      assert.equal(parseRecipientListMessage(listBody(entries(1000)), CT).recipients.length, 1000);
      assert.throws(
        () => parseRecipientListMessage(listBody(entries(1001)), CT),
        refused(400, 'too many recipients (max 1000)'),
      );
      assert.throws(
        () => parseRecipientListMessage(listBody(entries(1001)), CT, { maxRecipients: 5000 }),
        refused(400, 'too many recipients (max 1000)'),
      );
    });

    it('rejects a nonsensical configuration', () => {
      assert.throws(() => parseRecipientListMessage(listBody(entries(1)), CT, { maxRecipients: -1 }), TypeError);
      assert.throws(() => parseRecipientListMessage(listBody(entries(1)), CT, { maxRecipients: 2.5 }), TypeError);
    });
  });
});

/** The history entries as [uri, copyControl, count, display] tuples. */
function historyEntries(xml: string): Array<[string, string | undefined, string | undefined, string | undefined]> {
  const doc = parseXml(xml);
  const scope = NamespaceScope.root().child(doc.root);
  assert.equal(scope.expand(doc.root.name).ns, 'urn:ietf:params:xml:ns:resource-lists');
  const lists = childElements(doc.root);
  assert.equal(lists.length, 1);
  return childElements(lists[0]!).map((e) => {
    const dn = childElements(e)[0];
    return [
      e.attributes?.uri ?? '',
      attrNS(e, scope, 'urn:ietf:params:xml:ns:copycontrol', 'copyControl'),
      attrNS(e, scope, 'urn:ietf:params:xml:ns:copycontrol', 'count'),
      dn ? textContent(dn) : undefined,
    ];
  });
}

describe('recipientListHistory', () => {
  it('lists to then cc recipients, drops bcc, aggregates anonymized ones per kind', () => {
    const { recipients } = parseRecipientListMessage(exampleBody(LIST), CT);
    const xml = recipientListHistory(recipients);
    assert.ok(
      xml.startsWith(
        '<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol">',
      ),
    );
    assert.deepEqual(historyEntries(xml), [
      ['sip:ines@lab.example.org', 'to', undefined, 'Ines'],
      ['sip:ravi@lab.example.org', 'to', undefined, undefined],
      [ANONYMOUS_URI, 'to', '1', undefined],
      ['sip:pia@lab.example.org', 'cc', undefined, undefined],
      [ANONYMOUS_URI, 'cc', '1', undefined],
    ]);
    assert.ok(!xml.includes('quinn'), 'bcc recipient leaked into the history');
    assert.ok(!xml.includes('omar') && !xml.includes('7946'), 'anonymized recipient leaked into the history');
  });

  it('counts several anonymized recipients in one entry and escapes values', () => {
    const rs: Recipient[] = [
      { uri: 'sip:a@x.org', copy: 'to', anonymize: true },
      { uri: 'sip:b@x.org', copy: 'to', anonymize: true },
      { uri: 'sip:c@x.org', copy: 'cc', anonymize: false, display: 'C & "co" <ltd>' },
      { uri: 'sip:d@x.org', copy: 'bcc', anonymize: true },
    ];
    const xml = recipientListHistory(rs);
    assert.deepEqual(historyEntries(xml), [
      [ANONYMOUS_URI, 'to', '2', undefined],
      ['sip:c@x.org', 'cc', undefined, 'C & "co" <ltd>'],
    ]);
    assert.match(xml, /<display-name>C &amp; "co" &lt;ltd&gt;<\/display-name>/);
  });

  it('gives an empty list when every recipient is blind', () => {
    assert.equal(
      recipientListHistory([{ uri: 'sip:a@x.org', copy: 'bcc', anonymize: false }]),
      '<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol"><list/></resource-lists>',
    );
  });

  it('comes as a part with the recipient-list-history disposition', () => {
    const part = recipientListHistoryPart([{ uri: 'sip:a@x.org' }]);
    assert.deepEqual(part.headers, [
      ['Content-Type', 'application/resource-lists+xml'],
      ['Content-Disposition', 'recipient-list-history; handling=optional'],
    ]);
    assert.equal(RECIPIENT_LIST_HISTORY_DISPOSITION, 'recipient-list-history; handling=optional');
    assert.deepEqual(historyEntries(part.body), [['sip:a@x.org', 'to', undefined, undefined]]);
  });
});

describe('buildRecipientListMessage', () => {
  it('builds what parseRecipientListMessage reads back (round trip)', () => {
    const recipients: Recipient[] = [
      { uri: 'sip:ines@lab.example.org', copy: 'to', anonymize: false, display: 'Inès Ø' },
      { uri: 'sip:omar@lab.example.org', copy: 'cc', anonymize: true },
      { uri: 'tel:+15551234567', copy: 'bcc', anonymize: false },
    ];
    const message = {
      contentType: 'text/plain;charset=UTF-8',
      body: 'line one\r\nline two\r\n',
      headers: [['Content-Language', 'fr']] as Array<[string, string]>,
    };
    const built = buildRecipientListMessage({ recipients, message });
    assert.match(built.contentType, /^multipart\/mixed;boundary=mp-[0-9a-f]{32}$/);
    const parsed = parseRecipientListMessage(built.body, built.contentType);
    assert.deepEqual(parsed.recipients, recipients);
    assert.deepEqual(parsed.message, message);
    // Deterministic: same input, same bytes.
    assert.equal(buildRecipientListMessage({ recipients, message }).body, built.body);
  });

  it('writes the message part first, then the recipient-list part, with the given boundary', () => {
    const built = buildRecipientListMessage({
      recipients: [{ uri: 'sip:a@x.org' }, { uri: 'sip:b@x.org', copy: 'bcc', anonymize: true }],
      message: { contentType: 'text/plain', body: 'hey' },
      boundary: 'fixed',
    });
    assert.equal(built.contentType, 'multipart/mixed;boundary=fixed');
    const mp = parseMultipart(built.body, built.contentType);
    assert.deepEqual(
      mp.parts.map((p) => p.headers),
      [
        [['Content-Type', 'text/plain']],
        [
          ['Content-Type', 'application/resource-lists+xml'],
          ['Content-Disposition', 'recipient-list'],
        ],
      ],
    );
    assert.equal(mp.parts[0]?.body, 'hey');
    assert.equal(
      mp.parts[1]?.body,
      '<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol"><list>' +
        '<entry uri="sip:a@x.org" cp:copyControl="to"/><entry uri="sip:b@x.org" cp:copyControl="bcc" cp:anonymize="true"/></list></resource-lists>',
    );
  });
});
