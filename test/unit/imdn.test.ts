import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IMDN_NS, imdnRequest, parseCpim, serializeCpim } from '../../as/src/im/formats/cpim.js';
import {
  IMDN_CONTENT_TYPE,
  IMDN_STATUSES,
  IMDN_XML_NS,
  ImdnParseError,
  buildImdn,
  buildImdnMessage,
  isImdnNotification,
  parseImdn,
  type Imdn,
  type ImdnKind,
} from '../../as/src/im/formats/imdn.js';

// The display notification of RFC 5438 section 7.1.1, as a client would pretty-print it.
const RFC5438_DISPLAYED = `<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <display-notification>
    <status>
      <displayed/>
    </status>
  </display-notification>
</imdn>
`;

function refused(reason: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof ImdnParseError, `expected ImdnParseError, got ${String(err)}`);
    assert.match(err.reason, reason);
    return true;
  };
}

function doc(inner: string, root = `<imdn xmlns="${IMDN_XML_NS}">`): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${root}${inner}</imdn>`;
}

const HEAD = '<message-id>m1</message-id><datetime>2024-01-01T00:00:00Z</datetime>';

describe('parseImdn', () => {
  it('reads the RFC 5438 display notification', () => {
    assert.deepEqual(parseImdn(RFC5438_DISPLAYED), {
      messageId: '34jk324j',
      dateTime: '2008-04-04T12:16:49-05:00',
      kind: 'display',
      status: 'displayed',
    });
  });

  it('reads every optional field, any prefix, and skips other namespaces', () => {
    const xml = `<?xml version="1.0"?>
<i:imdn xmlns:i="urn:ietf:params:xml:ns:imdn" xmlns:x="urn:example:ext">
  <i:message-id> abc </i:message-id>
  <i:datetime>2024-06-01T08:00:00+02:00</i:datetime>
  <i:recipient-uri>sip:bob@example.com</i:recipient-uri>
  <i:original-recipient-uri>sip:list@example.com</i:original-recipient-uri>
  <i:subject>Lunch &amp; more</i:subject>
  <x:whatever><i:message-id>not this one</i:message-id></x:whatever>
  <i:processing-notification><i:status><x:hint/><i:stored/></i:status></i:processing-notification>
  <x:trailer/>
</i:imdn>`;
    assert.deepEqual(parseImdn(Buffer.from(xml)), {
      messageId: 'abc',
      dateTime: '2024-06-01T08:00:00+02:00',
      recipientUri: 'sip:bob@example.com',
      originalRecipientUri: 'sip:list@example.com',
      subject: 'Lunch & more',
      kind: 'processing',
      status: 'stored',
    });
  });

  it('refuses a wrong root', () => {
    assert.throws(() => parseImdn('<imdn>x</imdn>'), refused(/root is not/));
    assert.throws(() => parseImdn(`<imdnx xmlns="${IMDN_XML_NS}"/>`), refused(/root is not/));
    assert.throws(() => parseImdn('<imdn xmlns="urn:ietf:params:xml:ns:pidf"/>'), refused(/root is not/));
  });

  it('refuses what the XML layer refuses', () => {
    assert.throws(
      () => parseImdn('<!DOCTYPE imdn [<!ENTITY x "y">]><imdn/>'),
      refused(/^Invalid IMDN: doctype-forbidden$/),
    );
    assert.throws(() => parseImdn(doc(HEAD + '<display-notification>')), refused(/^Invalid IMDN: not-well-formed$/));
    assert.throws(
      () => parseImdn(doc(`<subject>${'x'.repeat(70_000)}</subject>`)),
      refused(/^Invalid IMDN: too-large$/),
    );
    assert.throws(() => parseImdn(''), refused(/not-well-formed/));
  });

  it('refuses missing, empty or repeated required fields', () => {
    const note = '<delivery-notification><status><delivered/></status></delivery-notification>';
    assert.throws(
      () => parseImdn(doc('<datetime>2024-01-01T00:00:00Z</datetime>' + note)),
      refused(/missing message-id/),
    );
    assert.throws(() => parseImdn(doc('<message-id>m</message-id>' + note)), refused(/missing datetime/));
    assert.throws(
      () => parseImdn(doc('<message-id> </message-id><datetime>2024-01-01T00:00:00Z</datetime>' + note)),
      refused(/empty message-id/),
    );
    assert.throws(
      () => parseImdn(doc(HEAD + '<message-id>m2</message-id>' + note)),
      refused(/more than one message-id/),
    );
  });

  it('refuses anything but exactly one notification with one status value of its kind', () => {
    assert.throws(() => parseImdn(doc(HEAD)), refused(/exactly one notification/));
    assert.throws(
      () =>
        parseImdn(
          doc(
            HEAD +
              '<delivery-notification><status><delivered/></status></delivery-notification><display-notification><status><displayed/></status></display-notification>',
          ),
        ),
      refused(/exactly one notification/),
    );
    assert.throws(
      () => parseImdn(doc(HEAD + '<delivery-notification/>')),
      refused(/delivery-notification needs one status/),
    );
    assert.throws(
      () => parseImdn(doc(HEAD + '<delivery-notification><status/></delivery-notification>')),
      refused(/exactly one value/),
    );
    assert.throws(
      () =>
        parseImdn(doc(HEAD + '<delivery-notification><status><delivered/><failed/></status></delivery-notification>')),
      refused(/exactly one value/),
    );
    assert.throws(
      () => parseImdn(doc(HEAD + '<delivery-notification><status><displayed/></status></delivery-notification>')),
      refused(/displayed is not a delivery status/),
    );
    assert.throws(
      () => parseImdn(doc(HEAD + '<display-notification><status><stored/></status></display-notification>')),
      refused(/stored is not a display status/),
    );
  });
});

describe('buildImdn', () => {
  it('writes the schema order with every field, escaped', () => {
    const xml = buildImdn({
      messageId: 'id<1>',
      dateTime: '2024-01-01T00:00:00Z',
      recipientUri: 'sip:bob@example.com',
      originalRecipientUri: 'sip:list@example.com',
      subject: 'a & b',
      kind: 'delivery',
      status: 'failed',
    });
    assert.equal(
      xml,
      '<?xml version="1.0" encoding="UTF-8"?><imdn xmlns="urn:ietf:params:xml:ns:imdn">' +
        '<message-id>id&lt;1&gt;</message-id><datetime>2024-01-01T00:00:00Z</datetime>' +
        '<recipient-uri>sip:bob@example.com</recipient-uri><original-recipient-uri>sip:list@example.com</original-recipient-uri>' +
        '<subject>a &amp; b</subject><delivery-notification><status><failed/></status></delivery-notification></imdn>',
    );
  });

  it('round-trips every kind and status through parseImdn', () => {
    for (const kind of Object.keys(IMDN_STATUSES) as ImdnKind[]) {
      for (const status of IMDN_STATUSES[kind]) {
        const imdn = { messageId: `m-${kind}-${status}`, dateTime: '2008-04-04T12:16:49-05:00', kind, status } as Imdn;
        assert.deepEqual(parseImdn(buildImdn(imdn)), imdn, `${kind}/${status}`);
        assert.match(
          buildImdn(imdn),
          new RegExp(`<${kind}-notification><status><${status}/></status></${kind}-notification></imdn>$`),
        );
      }
    }
    assert.deepEqual(IMDN_STATUSES.delivery, ['delivered', 'failed', 'forbidden', 'error']);
    assert.deepEqual(IMDN_STATUSES.display, ['displayed', 'forbidden', 'error']);
    assert.deepEqual(IMDN_STATUSES.processing, ['processed', 'stored', 'forbidden', 'error']);
  });

  it('refuses values the RFC does not allow', () => {
    const base = { messageId: 'm', dateTime: '2024-01-01T00:00:00Z' };
    assert.throws(
      () => buildImdn({ ...base, kind: 'display', status: 'delivered' } as unknown as Imdn),
      /not a display status/,
    );
    assert.throws(() => buildImdn({ ...base, kind: 'bogus', status: 'error' } as unknown as Imdn), /unknown IMDN kind/);
    assert.throws(
      () => buildImdn({ ...base, messageId: ' ', kind: 'delivery', status: 'delivered' }),
      /message-id is empty/,
    );
    assert.throws(
      () => buildImdn({ ...base, dateTime: 'yesterday', kind: 'delivery', status: 'delivered' }),
      /RFC 3339/,
    );
  });
});

describe('buildImdnMessage', () => {
  const imdn: Imdn = {
    messageId: '34jk324j',
    dateTime: '2008-04-04T12:16:49-05:00',
    recipientUri: 'sip:bob@example.com',
    kind: 'delivery',
    status: 'delivered',
  };

  it('is a CPIM message with the RFC 5438 section 7 headers that parseCpim reads back', () => {
    const built = buildImdnMessage({
      from: { display: 'Bob', uri: 'sip:bob@example.com' },
      to: { uri: 'sip:alice@example.com' },
      dateTime: '2008-04-04T12:16:50-05:00',
      messageId: 'd834jied93rf',
      imdn,
    });
    const text = serializeCpim(built);
    assert.equal(
      text,
      [
        'From: "Bob" <sip:bob@example.com>',
        'To: <sip:alice@example.com>',
        'DateTime: 2008-04-04T12:16:50-05:00',
        'NS: imdn <urn:ietf:params:imdn>',
        'imdn.Message-ID: d834jied93rf',
        '',
        'Content-Type: message/imdn+xml',
        'Content-Disposition: notification',
        '',
        buildImdn(imdn),
      ].join('\r\n'),
    );
    const msg = parseCpim(text);
    assert.deepEqual(msg.from, { display: 'Bob', uri: 'sip:bob@example.com' });
    assert.deepEqual(msg.to, [{ uri: 'sip:alice@example.com' }]);
    assert.equal(msg.dateTime, '2008-04-04T12:16:50-05:00');
    assert.equal(msg.ns.get('imdn'), IMDN_NS);
    assert.equal(msg.header('Message-ID', IMDN_NS), 'd834jied93rf');
    assert.equal(msg.header('Disposition-Notification', IMDN_NS), undefined);
    assert.equal(msg.contentType, IMDN_CONTENT_TYPE);
    assert.equal(msg.contentHeader('Content-Disposition'), 'notification');
    assert.equal(isImdnNotification(msg), true);
    assert.equal(imdnRequest(msg).dispositions.size, 0);
    assert.deepEqual(parseImdn(msg.content), imdn);
  });

  it('writes IMDN-Route headers in the order given', () => {
    const msg = buildImdnMessage({
      from: { uri: 'sip:bob@example.com' },
      to: { uri: 'sip:alice@example.com' },
      dateTime: '2024-01-01T00:00:00Z',
      messageId: 'n2',
      imdn,
      routes: ['sip:im1.example.com;lr', 'sip:im2.example.com'],
    });
    assert.deepEqual(msg.headerValues('IMDN-Route', IMDN_NS), ['<sip:im1.example.com;lr>', '<sip:im2.example.com>']);
    assert.throws(
      () =>
        buildImdnMessage({
          ...{ from: { uri: 'sip:b@x' }, to: { uri: 'sip:a@x' }, dateTime: '2024-01-01T00:00:00Z', imdn },
          messageId: 'has space',
        }),
      TypeError,
    );
    assert.throws(
      () =>
        buildImdnMessage({ from: { uri: 'sip:b@x' }, to: { uri: 'sip:a@x' }, dateTime: 'now', messageId: 'n', imdn }),
      /RFC 3339/,
    );
  });

  it('tells notifications from ordinary messages', () => {
    const plain = parseCpim('From: <sip:a@x>\r\n\r\nContent-Type: text/plain\r\n\r\nhi');
    assert.equal(isImdnNotification(plain), false);
    const upper = parseCpim('From: <sip:a@x>\r\n\r\nContent-Type: Message/IMDN+XML; charset=utf-8\r\n\r\n<imdn/>');
    assert.equal(isImdnNotification(upper), true);
  });
});
