import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NamespaceScope, parseXml, type XmlElement, type XmlNode } from '../../as/src/xml/xml-tree.js';
import { pidfManipulationUsage } from '../../as/src/xdm/usages/pidf-manipulation.js';
import { emptyProvideSet, type ProvideSet } from '../../as/src/xdm/usages/pres-rules.js';
import {
  CIPID_NS,
  PidfError,
  RPID_NS,
  applyTransformations,
  composePresence,
  elementName,
  expandedKey,
  makePerson,
  makeTuple,
  parsePidf,
  politeBlockDocument,
  rpidElement,
  serializePidf,
  sourceScopedId,
  type PresenceDoc,
  type PresenceSource,
} from '../../as/src/presence/pidf/index.js';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

// RFC 3863 section 6 (the basic example).
const RFC3863_BASIC = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="0.8">tel:+09012345678</contact>
  </tuple>
</presence>`;

// RFC 3863 section 6 (the example with prefixes and extensions).
const RFC3863_EXTENDED = `<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
    xmlns:myex="http://id.example.com/presence/"
    entity="pres:someone@example.com">
  <impp:tuple id="ck38g9">
    <impp:status>
      <impp:basic>open</impp:basic>
    </impp:status>
    <myex:mytupletag>Extended value in tuple</myex:mytupletag>
    <impp:contact priority="0.65">tel:+09012345678</impp:contact>
  </impp:tuple>
  <impp:tuple id="md6tt2">
    <impp:status>
      <impp:basic>closed</impp:basic>
      <myex:complexExtension>
        <myex:inner1>Extended value in status</myex:inner1>
        <myex:inner2>2</myex:inner2>
      </myex:complexExtension>
    </impp:status>
    <impp:contact priority="1.0">im:someone@mobilecarrier.net</impp:contact>
    <impp:note xml:lang="en">Don't Disturb Please!</impp:note>
    <impp:note xml:lang="fr">Ne derangez pas, s'il vous plait</impp:note>
    <impp:timestamp>2001-10-27T16:49:29Z</impp:timestamp>
  </impp:tuple>
  <impp:note xml:lang="en">I'll be in Tokyo next week</impp:note>
  <myex:myPresenceTag>Extended value in presence</myex:myPresenceTag>
</impp:presence>`;

// RFC 4479 (data model) style example: service, person and device.
const RFC4479 = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <rpid:relationship><rpid:self/></rpid:relationship>
    <contact>sip:someone@example.com</contact>
    <timestamp>2005-11-09T10:42:54Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:on-the-phone/>
    </rpid:activities>
    <c:homepage>http://example.com/~someone</c:homepage>
    <dm:timestamp>2005-11-09T10:42:54Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc122">
    <rpid:user-input>idle</rpid:user-input>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
  </dm:device>
</presence>`;

// RFC 4480 (RPID) section 3 style example: every RPID element; device before person.
const RFC4480 = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
 xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
 xmlns:lt="urn:ietf:params:xml:ns:location-type"
 xmlns:rp="urn:ietf:params:xml:ns:pidf:rpid"
 entity="pres:someone@example.com">
 <tuple id="bs35r9">
   <status>
     <basic>open</basic>
   </status>
   <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
   <rp:relationship><rp:self/></rp:relationship>
   <rp:service-class><rp:electronic/></rp:service-class>
   <contact priority="0.8">im:someone@mobilecarrier.net</contact>
   <note xml:lang="en">Don't Disturb Please!</note>
   <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
   <timestamp>2005-10-27T16:49:29Z</timestamp>
 </tuple>
 <tuple id="ty4658">
   <status>
     <basic>open</basic>
   </status>
   <rp:relationship><rp:assistant/></rp:relationship>
   <contact priority="1.0">mailto:secretary@example.com</contact>
 </tuple>
 <tuple id="eg92n8">
   <status>
     <basic>open</basic>
   </status>
   <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
   <rp:class>email</rp:class>
   <rp:service-class><rp:electronic/></rp:service-class>
   <rp:status-icon>http://example.com/mail.png</rp:status-icon>
   <contact priority="1.0">mailto:someone@example.com</contact>
 </tuple>
 <note>I'll be in Tokyo next week</note>
 <dm:device id="pc147">
   <rp:user-input idle-threshold="600" last-input="2004-10-21T13:20:00-05:00">idle</rp:user-input>
   <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
   <dm:note>PC</dm:note>
 </dm:device>
 <dm:person id="p1">
   <rp:activities from="2005-05-30T12:00:00+05:00" until="2005-05-30T17:00:00+05:00">
     <rp:note>Far away</rp:note>
     <rp:away/>
   </rp:activities>
   <rp:class>calendar</rp:class>
   <rp:mood>
     <rp:angry/>
     <rp:other>brooding</rp:other>
   </rp:mood>
   <rp:place-is>
     <rp:audio>
       <rp:noisy/>
     </rp:audio>
   </rp:place-is>
   <rp:place-type><lt:residence/></rp:place-type>
   <rp:privacy><rp:unknown/></rp:privacy>
   <rp:sphere>bowling league</rp:sphere>
   <rp:status-icon>http://example.com/play.gif</rp:status-icon>
   <rp:time-offset>-240</rp:time-offset>
   <dm:note>Scoring 120</dm:note>
   <dm:timestamp>2005-05-30T16:09:44+05:00</dm:timestamp>
 </dm:person>
</presence>`;

// What baresip publishes: dm:person BEFORE the tuple (not allowed by RFC 3863's schema).
const BARESIP = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    entity="sip:alice@example.com">
  <dm:person id="p4159">
    <rpid:activities><rpid:busy/></rpid:activities>
  </dm:person>
  <tuple id="t4109">
    <status>
      <basic>open</basic>
    </status>
    <contact>sip:alice@example.com</contact>
  </tuple>
</presence>`;

const CTX = { domain: 'example.com' };

/** Schema check of an output document with the project's PIDF validator (RFC 3863 + RFC 4479). */
function assertValid(xml: string): void {
  assert.deepEqual(pidfManipulationUsage.validate(parseXml(xml), CTX), [], xml);
}

/** An element by expanded names (prefixes and declarations do not matter). */
function canonEl(el: XmlElement, parent: NamespaceScope = NamespaceScope.root()): unknown {
  const scope = parent.child(el);
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attributes ?? {})) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
    const e = scope.expandAttribute(k);
    attrs[`{${e.ns ?? ''}}${e.local}`] = v;
  }
  const kids = (el.elements ?? []).map((n: XmlNode) => (n.type === 'element' ? canonEl(n, scope) : n));
  return { name: expandedKey(scope.expand(el.name)), attrs, kids };
}

/** The model without `raw`, with elements compared by expanded names. */
function strip(doc: PresenceDoc): unknown {
  const els = (l: XmlElement[] | undefined): unknown => l?.map((e) => canonEl(e));
  const comp = <T extends { elements: XmlElement[]; raw?: XmlElement; statusElements?: XmlElement[] }>(
    c: T,
  ): unknown => {
    const { raw: _raw, ...rest } = c;
    return { ...rest, elements: els(c.elements), statusElements: els(c.statusElements) };
  };
  return JSON.parse(
    JSON.stringify({
      entity: doc.entity,
      notes: doc.notes,
      tuples: doc.tuples.map(comp),
      persons: doc.persons.map(comp),
      devices: doc.devices.map(comp),
      extensions: els(doc.extensions),
    }),
  );
}

function pidfError(fn: () => unknown, reason: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PidfError, String(e));
    assert.match(e.reason, reason);
    assert.doesNotMatch(e.reason, /[\r\n]/);
    return true;
  });
}

function count(haystack: string, needle: string): number {
  return haystack.split(needle).length - 1;
}

// ---------------------------------------------------------------------------
// Parsing and serialization
// ---------------------------------------------------------------------------

describe('parsePidf', () => {
  it('parses the RFC 3863 basic example', () => {
    const d = parsePidf(RFC3863_BASIC);
    assert.equal(d.entity, 'pres:someone@example.com');
    assert.equal(d.tuples.length, 1);
    const t = d.tuples[0]!;
    assert.equal(t.id, 'sg89ae');
    assert.equal(t.basic, 'open');
    assert.deepEqual(t.contact, { uri: 'tel:+09012345678', priority: '0.8' });
    assert.deepEqual(t.notes, []);
    assert.deepEqual(t.elements, []);
    assert.deepEqual([d.persons, d.devices, d.notes, d.extensions], [[], [], [], []]);
    assert.ok(t.raw);
  });

  it('parses the RFC 3863 prefixed example with extensions in tuple, status and presence', () => {
    const d = parsePidf(Buffer.from(RFC3863_EXTENDED, 'utf8'));
    const [a, b] = d.tuples;
    assert.equal(a?.elements.length, 1);
    assert.deepEqual(elementName(a!.elements[0]!), { ns: 'http://id.example.com/presence/', local: 'mytupletag' });
    assert.equal(b?.basic, 'closed');
    assert.equal(b?.statusElements?.length, 1);
    assert.deepEqual(elementName(b!.statusElements![0]!), {
      ns: 'http://id.example.com/presence/',
      local: 'complexExtension',
    });
    assert.deepEqual(b?.contact, { uri: 'im:someone@mobilecarrier.net', priority: '1.0' });
    assert.deepEqual(b?.notes, [
      { text: "Don't Disturb Please!", lang: 'en' },
      { text: "Ne derangez pas, s'il vous plait", lang: 'fr' },
    ]);
    assert.equal(b?.timestamp, '2001-10-27T16:49:29Z');
    assert.deepEqual(d.notes, [{ text: "I'll be in Tokyo next week", lang: 'en' }]);
    assert.equal(d.extensions.length, 1);
    // kept elements are standalone: they carry the declaration they need
    assert.equal(d.extensions[0]?.attributes?.['xmlns:myex'], 'http://id.example.com/presence/');
    assert.equal(a?.raw?.attributes?.['xmlns:impp'], 'urn:ietf:params:xml:ns:pidf');
  });

  it('parses the RFC 4479 example: service, person, device', () => {
    const d = parsePidf(RFC4479);
    assert.equal(d.tuples[0]?.deviceId, 'mac:8asd7d7d70');
    assert.equal(d.tuples[0]?.timestamp, '2005-11-09T10:42:54Z');
    assert.equal(d.persons[0]?.id, 'p1');
    assert.deepEqual(d.persons[0]?.activities, ['on-the-phone']);
    assert.equal(d.persons[0]?.timestamp, '2005-11-09T10:42:54Z');
    assert.deepEqual(elementName(d.persons[0]!.elements[1]!), { ns: CIPID_NS, local: 'homepage' });
    assert.equal(d.devices[0]?.deviceId, 'mac:8asd7d7d70');
    assert.equal(d.devices[0]?.userInput, 'idle');
  });

  it('parses the RFC 4480 example: every RPID element and the derived summaries', () => {
    const d = parsePidf(RFC4480);
    assert.equal(d.tuples.length, 3);
    assert.equal(d.tuples[2]?.classValue, 'email');
    const p = d.persons[0]!;
    assert.deepEqual(p.activities, ['away']);
    assert.deepEqual(p.mood, ['angry', 'other']);
    assert.deepEqual(p.placeType, ['residence']);
    assert.deepEqual(p.privacy, ['unknown']);
    assert.equal(p.classValue, 'calendar');
    assert.deepEqual(p.notes, [{ text: 'Scoring 120' }]);
    assert.equal(p.elements.length, 9);
    assert.equal(d.devices[0]?.userInput, 'idle');
    assert.deepEqual(d.devices[0]?.notes, [{ text: 'PC' }]);
    assert.deepEqual(d.notes, [{ text: "I'll be in Tokyo next week" }]);
  });

  it('accepts baresip order (person before tuple) and tuples/persons/devices in any order', () => {
    const d = parsePidf(BARESIP);
    assert.equal(d.tuples[0]?.id, 't4109');
    assert.deepEqual(d.persons[0]?.activities, ['busy']);
  });

  it('reads OMA service-description as a summary', () => {
    const d =
      parsePidf(`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:op="urn:oma:xml:prs:pidf:oma-pres" entity="sip:a@example.com">
      <tuple id="a"><status><basic>open</basic></status>
      <op:service-description><op:service-id>org.openmobilealliance:IM-session</op:service-id><op:version> 1.0 </op:version></op:service-description>
      </tuple></presence>`);
    assert.deepEqual(d.tuples[0]?.serviceDescription, {
      serviceId: 'org.openmobilealliance:IM-session',
      version: '1.0',
    });
  });

  it('is lenient on optional things: bad priority, bad timestamp, unknown pidf elements, case of basic', () => {
    const d = parsePidf(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@example.com">
      <tuple id="a"><status><basic> Open </basic></status><contact priority="2">sip:a@h</contact>
        <timestamp>yesterday</timestamp><bogus/></tuple><bogus/></presence>`);
    const t = d.tuples[0]!;
    assert.equal(t.basic, 'open');
    assert.deepEqual(t.contact, { uri: 'sip:a@h' });
    assert.equal(t.timestamp, undefined);
    assert.deepEqual(t.elements, []);
    assert.deepEqual(d.extensions, []);
    // a tuple with an empty status is fine
    assert.equal(
      parsePidf(
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><tuple id="x"><status/></tuple></presence>',
      ).tuples[0]?.basic,
      undefined,
    );
  });

  it('refuses what a presence document must have, with a SIP reason phrase', () => {
    const P = 'xmlns="urn:ietf:params:xml:ns:pidf"';
    pidfError(() => parsePidf(`<presence ${P}><tuple id="a"><status/></tuple></presence>`), /without entity/);
    pidfError(() => parsePidf(`<presence ${P} entity=" "/>`), /without entity/);
    pidfError(() => parsePidf(`<presence ${P} entity="not a uri"/>`), /entity is not a URI/);
    pidfError(
      () => parsePidf(`<presence ${P} entity="sip:a@b"><tuple><status/></tuple></presence>`),
      /tuple without id/,
    );
    pidfError(
      () => parsePidf(`<presence ${P} entity="sip:a@b"><tuple id="t1"><contact>sip:a@b</contact></tuple></presence>`),
      /tuple "t1" has no status/,
    );
    pidfError(
      () =>
        parsePidf(
          `<presence ${P} entity="sip:a@b"><tuple id="t1"><status><basic>maybe</basic></status></tuple></presence>`,
        ),
      /invalid basic/,
    );
    pidfError(() => parsePidf(`<presence entity="sip:a@b"/>`), /root element is not presence/);
    pidfError(() => parsePidf(`<presence xmlns="urn:example" entity="sip:a@b"/>`), /root element is not presence/);
    pidfError(
      () =>
        parsePidf(
          `<presence ${P} xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:a@b"><dm:person/></presence>`,
        ),
      /person without id/,
    );
    pidfError(
      () =>
        parsePidf(
          `<presence ${P} xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:a@b"><tuple id="x"><status/></tuple><dm:person id="x"/></presence>`,
        ),
      /id "x" used twice/,
    );
    pidfError(
      () => parsePidf(`<!DOCTYPE presence [<!ENTITY x "y">]><presence ${P} entity="sip:a@b"/>`),
      /DOCTYPE not allowed/,
    );
    pidfError(() => parsePidf(`<presence ${P} entity="sip:a@b"><tuple>`), /malformed XML/);
    pidfError(() => parsePidf(Buffer.from([0x3c, 0xff, 0xfe])), /not UTF-8/);
  });
});

describe('serializePidf', () => {
  it('writes the RFC 3863 basic example canonically', () => {
    assert.equal(
      serializePidf(parsePidf(RFC3863_BASIC)),
      '<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:someone@example.com">' +
        '<tuple id="sg89ae"><status><basic>open</basic></status><contact priority="0.8">tel:+09012345678</contact></tuple></presence>',
    );
  });

  for (const [name, xml] of [
    ['RFC 3863 basic', RFC3863_BASIC],
    ['RFC 3863 extended', RFC3863_EXTENDED],
    ['RFC 4479', RFC4479],
    ['RFC 4480', RFC4480],
    ['baresip', BARESIP],
  ] as const) {
    it(`round-trips the ${name} document: same model, valid, idempotent`, () => {
      const first = parsePidf(xml);
      const out = serializePidf(first);
      assertValid(out);
      const again = parsePidf(out);
      assert.deepEqual(strip(again), strip(first));
      assert.equal(serializePidf(again), out);
      assert.doesNotMatch(out, /DOCTYPE/);
      assert.ok(out.startsWith('<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf"'));
    });
  }

  it('writes baresip order in the strict order: tuples first, then dm:person', () => {
    const out = serializePidf(parsePidf(BARESIP));
    assert.ok(out.indexOf('<tuple') < out.indexOf('<dm:person'), out);
    assert.equal(
      out,
      '<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"' +
        ' xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com"><tuple id="t4109"><status><basic>open</basic></status>' +
        '<contact>sip:alice@example.com</contact></tuple><dm:person id="p4159"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>',
    );
  });

  it('writes the RFC 4479 order inside components: status, deviceID, extensions, contact, notes, timestamp', () => {
    const out = serializePidf(parsePidf(RFC4480));
    const tuple = out.slice(out.indexOf('<tuple id="bs35r9">'), out.indexOf('</tuple>'));
    const order = [
      '<status>',
      '<dm:deviceID>',
      '<rpid:relationship>',
      '<rpid:service-class>',
      '<contact',
      '<note xml:lang="en">',
      '<note xml:lang="fr">',
      '<timestamp>',
    ];
    const pos = order.map((o) => tuple.indexOf(o));
    assert.ok(
      pos.every((p, i) => p >= 0 && (i === 0 || p > (pos[i - 1] ?? 0))),
      tuple,
    );
    // RFC 4480's rp: prefix becomes the canonical rpid:, lt: stays lt:
    assert.match(out, /<rpid:place-type><lt:residence\/><\/rpid:place-type>/);
    // persons before devices
    assert.ok(out.indexOf('<dm:person ') < out.indexOf('<dm:device '));
    // one declaration per namespace, on the root
    for (const ns of [
      'urn:ietf:params:xml:ns:pidf:data-model',
      'urn:ietf:params:xml:ns:pidf:rpid',
      'urn:ietf:params:xml:ns:location-type',
    ]) {
      assert.equal(count(out, `"${ns}"`), 1, ns);
    }
    assert.equal(count(out, 'xmlns'), 4);
  });

  it('keeps unknown namespaces byte-for-byte, declared once on the root', () => {
    const ext =
      '<x:foo a="1" x:b="2 &amp; 3"><x:bar>t &amp; u &lt;v&gt;</x:bar><!-- kept --><y:baz xml:lang="de">z</y:baz></x:foo>';
    const xml = `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:x="urn:example:x" entity="sip:a@example.com">
      <tuple id="t" xmlns:y="urn:example:y"><status><basic>open</basic></status>${ext}</tuple>
      <dm:person xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:y="urn:example:y" id="p">${ext}</dm:person>
      ${ext.replace(/y:/g, 'x:')}
    </presence>`;
    const out = serializePidf(parsePidf(xml));
    assertValid(out);
    assert.equal(count(out, ext), 2, out);
    assert.equal(count(out, ext.replace(/y:/g, 'x:')), 1, out);
    assert.equal(count(out, 'xmlns:x="urn:example:x"'), 1);
    assert.equal(count(out, 'xmlns:y="urn:example:y"'), 1);
    assert.ok(out.indexOf('xmlns:x=') < out.indexOf('entity='), 'declarations are on the root');
  });

  it('renames clashing or default-namespace prefixes of unknown namespaces, keeping the meaning', () => {
    const a = parsePidf(
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><e:x xmlns:e="urn:one">1</e:x><rpid:y xmlns:rpid="urn:not-rpid">2</rpid:y><z xmlns="urn:dflt"><w/></z></presence>`,
    );
    const b = parsePidf(
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><e:q xmlns:e="urn:two">3</e:q></presence>`,
    );
    const doc: PresenceDoc = { ...a, extensions: [...a.extensions, ...b.extensions] };
    const out = serializePidf(doc);
    assertValid(out);
    assert.match(out, /<e:x>1<\/e:x>/);
    assert.match(out, /<ns1:y>2<\/ns1:y>/); // 'rpid' is reserved for RPID
    assert.match(out, /<ns2:z><ns2:w\/><\/ns2:z>/);
    assert.match(out, /<ns3:q>3<\/ns3:q>/); // 'e' already means urn:one
    const back = parsePidf(out);
    assert.deepEqual(
      back.extensions.map((e) => elementName(e)),
      [
        { ns: 'urn:one', local: 'x' },
        { ns: 'urn:not-rpid', local: 'y' },
        { ns: 'urn:dflt', local: 'z' },
        { ns: 'urn:two', local: 'q' },
      ],
    );
  });

  it('is byte-stable: equal models give equal bytes, whatever the source formatting', () => {
    const defaultNs = RFC3863_EXTENDED.replace(/impp:/g, '').replace('xmlns:impp=', 'xmlns=').replace(/>\s+</g, '><');
    assert.notEqual(defaultNs, RFC3863_EXTENDED);
    const a = serializePidf(parsePidf(RFC3863_EXTENDED));
    const b = serializePidf(parsePidf(defaultNs));
    assert.equal(a, b);
    assert.equal(serializePidf(parsePidf(RFC4480)), serializePidf(parsePidf(RFC4480)));
  });

  it('serializes hand-built models (derived fields are summaries; elements are what is written)', () => {
    const doc: PresenceDoc = {
      entity: 'sip:bob@example.com',
      tuples: [
        makeTuple({
          id: 't1',
          basic: 'open',
          contact: { uri: 'sip:bob@192.0.2.1', priority: '1' },
          elements: [rpidElement('class', 'work')],
        }),
      ],
      persons: [
        makePerson({
          id: 'p',
          elements: [rpidElement('activities', ['meeting'])],
          notes: [{ text: 'a < b & c', lang: 'en' }],
        }),
      ],
      devices: [{ id: 'nodev', elements: [], notes: [] }],
      notes: [],
      extensions: [],
    };
    assert.equal(doc.tuples[0]?.classValue, 'work');
    assert.deepEqual(doc.persons[0]?.activities, ['meeting']);
    const out = serializePidf(doc);
    assertValid(out);
    assert.match(out, /<rpid:class>work<\/rpid:class>/);
    assert.match(out, /<dm:note xml:lang="en">a &lt; b &amp; c<\/dm:note>/);
    assert.doesNotMatch(out, /nodev/); // a device without dm:deviceID cannot be valid
  });
});

// ---------------------------------------------------------------------------
// Composition
// ---------------------------------------------------------------------------

const T0 = Date.parse('2024-05-01T10:00:00Z');
const at = (s: number): Date => new Date(T0 + s * 1000);
const HEAD =
  '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">';

const PHONE = parsePidf(`${HEAD}
  <tuple id="t1"><status><basic>open</basic></status><contact>sip:alice@192.0.2.10</contact></tuple>
  <dm:person id="pp"><rpid:activities><rpid:on-the-phone/></rpid:activities>
    <dm:note xml:lang="en">On a call</dm:note><dm:note xml:lang="fr">Au telephone</dm:note></dm:person>
  <dm:device id="d1"><dm:deviceID>urn:uuid:phone</dm:deviceID></dm:device>
</presence>`);
const DESKTOP = parsePidf(`${HEAD}
  <tuple id="t1"><status><basic>closed</basic></status><contact>sip:alice@192.0.2.20</contact></tuple>
  <dm:person id="pd"><rpid:activities><rpid:away/></rpid:activities><rpid:mood><rpid:bored/></rpid:mood>
    <ex:foo xmlns:ex="urn:example:ext">kept</ex:foo>
    <dm:note xml:lang="en">Away</dm:note><dm:note xml:lang="de">Weg</dm:note></dm:person>
</presence>`);
const NETWORK = parsePidf(`${HEAD}
  <tuple id="reg"><status><basic>open</basic></status><contact>sip:alice@example.com</contact></tuple>
</presence>`);

function threeSources(): PresenceSource[] {
  return [
    { sourceId: 'phone', doc: PHONE, publishedAt: at(20) },
    { sourceId: 'desktop', doc: DESKTOP, publishedAt: at(10) },
    { sourceId: 'network', doc: NETWORK, publishedAt: at(0) },
  ];
}

describe('composePresence', () => {
  it('keeps every tuple, makes colliding ids unique, merges the persons newest-wins per kind and per note language', () => {
    const doc = composePresence('sip:alice@example.com', threeSources());
    assert.equal(doc.entity, 'sip:alice@example.com');
    // sources in sourceId order: desktop, network, phone; t1 collides -> both renamed
    assert.deepEqual(
      doc.tuples.map((t) => [t.id, t.basic]),
      [
        [sourceScopedId('desktop', 't1'), 'closed'],
        ['reg', 'open'],
        [sourceScopedId('phone', 't1'), 'open'],
      ],
    );
    assert.match(doc.tuples[0]!.id, /^s[0-9a-f]{8}-t1$/);
    assert.equal(doc.persons.length, 1);
    const p = doc.persons[0]!;
    assert.equal(p.id, 'pp'); // the newest person's id
    assert.deepEqual(p.activities, ['on-the-phone']); // phone is newer
    assert.deepEqual(p.mood, ['bored']); // only the desktop has a mood
    assert.deepEqual(
      p.elements.map((e) => elementName(e).local),
      ['activities', 'mood', 'foo'], // fixed order: RPID by name, then other namespaces
    );
    assert.deepEqual(p.notes, [
      { text: 'Weg', lang: 'de' },
      { text: 'On a call', lang: 'en' },
      { text: 'Au telephone', lang: 'fr' },
    ]);
    assert.deepEqual(
      doc.devices.map((d) => d.id),
      ['d1'],
    );
    const out = serializePidf(doc);
    assertValid(out);
    assert.match(out, /<ex:foo>kept<\/ex:foo>/);
  });

  it('is deterministic: source order does not matter', () => {
    const a = serializePidf(composePresence('sip:alice@example.com', threeSources()));
    const b = serializePidf(composePresence('sip:alice@example.com', threeSources().reverse()));
    assert.equal(a, b);
  });

  it("uses the person's own timestamp (clamped to the publication time) to decide which source is newest", () => {
    const old = parsePidf(
      `${HEAD}<dm:person id="a"><rpid:activities><rpid:away/></rpid:activities><dm:timestamp>2024-05-01T10:00:01Z</dm:timestamp></dm:person></presence>`,
    );
    const fresh = parsePidf(
      `${HEAD}<dm:person id="b"><rpid:activities><rpid:busy/></rpid:activities></dm:person></presence>`,
    );
    const future = parsePidf(
      `${HEAD}<dm:person id="c"><rpid:activities><rpid:sleeping/></rpid:activities><dm:timestamp>2030-01-01T00:00:00Z</dm:timestamp></dm:person></presence>`,
    );
    // republished late, but its data is old: the fresher source wins
    let doc = composePresence('sip:alice@example.com', [
      { sourceId: 'a', doc: old, publishedAt: at(100) },
      { sourceId: 'b', doc: fresh, publishedAt: at(50) },
    ]);
    assert.deepEqual(doc.persons[0]?.activities, ['busy']);
    assert.equal(doc.persons[0]?.id, 'b');
    // a timestamp in the future counts as the publication time
    doc = composePresence('sip:alice@example.com', [
      { sourceId: 'b', doc: fresh, publishedAt: at(50) },
      { sourceId: 'c', doc: future, publishedAt: at(40) },
    ]);
    assert.deepEqual(doc.persons[0]?.activities, ['busy']);
  });

  it('adds hard state (pidf-manipulation): its tuples are included and its person elements win', () => {
    const hard = parsePidf(`${HEAD}
      <tuple id="vm"><status><basic>open</basic></status><contact>sip:voicemail@example.com</contact></tuple>
      <dm:person id="hp"><rpid:activities><rpid:vacation/></rpid:activities>
        <dm:note xml:lang="en">On holiday until June</dm:note></dm:person></presence>`);
    const doc = composePresence('sip:alice@example.com', threeSources(), hard);
    assert.deepEqual(
      doc.tuples.map((t) => t.id),
      [sourceScopedId('desktop', 't1'), 'reg', sourceScopedId('phone', 't1'), 'vm'],
    );
    const p = doc.persons[0]!;
    assert.equal(p.id, 'hp');
    assert.deepEqual(p.activities, ['vacation']); // hard beats the newer phone
    assert.deepEqual(p.mood, ['bored']); // kinds the hard state lacks come from soft state
    assert.deepEqual(p.notes, [
      { text: 'Weg', lang: 'de' },
      { text: 'On holiday until June', lang: 'en' },
      { text: 'Au telephone', lang: 'fr' },
    ]);
    assertValid(serializePidf(doc));
  });

  it('merges presence-level notes and extensions, and gives the neutral document when nothing is published', () => {
    const a = parsePidf(
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>old</note><e:x xmlns:e="urn:e">1</e:x></presence>`,
    );
    const b = parsePidf(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>new</note></presence>`);
    const doc = composePresence('sip:a@b', [
      { sourceId: 'a', doc: a, publishedAt: at(1) },
      { sourceId: 'b', doc: b, publishedAt: at(2) },
    ]);
    assert.deepEqual(doc.notes, [{ text: 'new' }]);
    assert.equal(doc.extensions.length, 1);
    assert.deepEqual(composePresence('sip:a@b', []), politeBlockDocument('sip:a@b'));
  });
});

// ---------------------------------------------------------------------------
// Transformations
// ---------------------------------------------------------------------------

const X_NS = 'urn:example:x';
const FULL = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
  xmlns:lt="urn:ietf:params:xml:ns:location-type" xmlns:x="${X_NS}" entity="sip:carol@example.com">
  <tuple id="voice">
    <status><basic>open</basic><x:substatus>ringing</x:substatus></status>
    <dm:deviceID>urn:uuid:dev-1</dm:deviceID>
    <rpid:class>work</rpid:class>
    <rpid:relationship><rpid:self/></rpid:relationship>
    <rpid:service-class><rpid:electronic/></rpid:service-class>
    <rpid:status-icon>http://example.com/phone.png</rpid:status-icon>
    <rpid:user-input idle-threshold="600" last-input="2024-05-01T09:00:00Z">idle</rpid:user-input>
    <x:foo>tuple-ext</x:foo>
    <contact priority="0.9">sip:carol@192.0.2.1</contact>
    <note xml:lang="en">desk phone</note>
    <timestamp>2024-05-01T10:00:00Z</timestamp>
  </tuple>
  <tuple id="mail">
    <status><basic>open</basic></status>
    <rpid:class>email</rpid:class>
    <contact>mailto:carol@example.com</contact>
  </tuple>
  <note>presence note</note>
  <dm:person id="me">
    <rpid:activities><rpid:note>lunch</rpid:note><rpid:meal/></rpid:activities>
    <rpid:class>personal</rpid:class>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-is><rpid:audio><rpid:quiet/></rpid:audio></rpid:place-is>
    <rpid:place-type><lt:restaurant/></rpid:place-type>
    <rpid:privacy><rpid:audio/></rpid:privacy>
    <rpid:sphere>work</rpid:sphere>
    <rpid:status-icon>http://example.com/me.png</rpid:status-icon>
    <rpid:time-offset>120</rpid:time-offset>
    <rpid:user-input idle-threshold="300" last-input="2024-05-01T09:30:00Z">active</rpid:user-input>
    <c:homepage>http://example.com/carol</c:homepage>
    <x:foo>person-ext</x:foo>
    <dm:note>person note</dm:note>
    <dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc">
    <rpid:class>office</rpid:class>
    <rpid:user-input>active</rpid:user-input>
    <dm:deviceID>urn:uuid:dev-1</dm:deviceID>
    <dm:note>device note</dm:note>
  </dm:device>
  <dm:device id="mobile">
    <dm:deviceID>urn:uuid:dev-2</dm:deviceID>
  </dm:device>
  <x:top>top-ext</x:top>
</presence>`;

/** All components, no attributes. */
function components(): ProvideSet {
  const p = emptyProvideSet();
  p.services.all = true;
  p.persons.all = true;
  p.devices.all = true;
  return p;
}

describe('applyTransformations', () => {
  const doc = parsePidf(FULL);
  const fullBytes = serializePidf(doc);

  it('provide-all-attributes with all components shows the document unchanged', () => {
    const p = components();
    p.allAttributes = true;
    assert.equal(serializePidf(applyTransformations(doc, p)), fullBytes);
    assertValid(fullBytes);
  });

  it('nothing granted: nothing shown', () => {
    const out = applyTransformations(doc, emptyProvideSet());
    assert.deepEqual([out.tuples, out.persons, out.devices, out.notes, out.extensions], [[], [], [], [], []]);
    assert.equal(
      serializePidf(out),
      '<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:carol@example.com"/>',
    );
  });

  it('components without attribute permissions keep id, basic, contact and timestamps only', () => {
    const out = applyTransformations(doc, components());
    const s = serializePidf(out);
    assertValid(s);
    const voice = out.tuples[0]!;
    assert.equal(voice.basic, 'open');
    assert.deepEqual(voice.contact, { uri: 'sip:carol@192.0.2.1', priority: '0.9' });
    assert.equal(voice.timestamp, '2024-05-01T10:00:00Z');
    assert.deepEqual(
      [voice.elements, voice.notes, voice.deviceId, voice.statusElements],
      [[], [], undefined, undefined],
    );
    assert.equal(voice.raw, undefined);
    assert.deepEqual(out.persons[0]?.elements, []);
    assert.equal(out.persons[0]?.timestamp, '2024-05-01T10:00:00Z');
    assert.equal(out.devices[0]?.deviceId, 'urn:uuid:dev-1'); // mandatory in a device: always kept
    assert.deepEqual([out.notes, out.extensions], [[], []]);
    assert.equal(
      s,
      '<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" entity="sip:carol@example.com">' +
        '<tuple id="voice"><status><basic>open</basic></status><contact priority="0.9">sip:carol@192.0.2.1</contact><timestamp>2024-05-01T10:00:00Z</timestamp></tuple>' +
        '<tuple id="mail"><status><basic>open</basic></status><contact>mailto:carol@example.com</contact></tuple>' +
        '<dm:person id="me"><dm:timestamp>2024-05-01T10:00:00Z</dm:timestamp></dm:person>' +
        '<dm:device id="pc"><dm:deviceID>urn:uuid:dev-1</dm:deviceID></dm:device><dm:device id="mobile"><dm:deviceID>urn:uuid:dev-2</dm:deviceID></dm:device></presence>',
    );
  });

  // permission -> the RPID elements (local names) it reveals, per component
  const table: Array<[keyof ProvideSet, string, { tuple?: number; person?: number; device?: number }]> = [
    ['activities', 'activities', { person: 1 }],
    ['class', 'class', { tuple: 2, person: 1, device: 1 }],
    ['mood', 'mood', { person: 1 }],
    ['placeIs', 'place-is', { person: 1 }],
    ['placeType', 'place-type', { person: 1 }],
    ['privacy', 'privacy', { person: 1 }],
    ['relationship', 'relationship', { tuple: 1 }],
    ['sphere', 'sphere', { person: 1 }],
    ['statusIcon', 'status-icon', { tuple: 1, person: 1 }],
    ['timeOffset', 'time-offset', { person: 1 }],
  ];
  const rpidCount = (d: PresenceDoc, local: string, where: 'tuple' | 'person' | 'device'): number => {
    const lists =
      where === 'tuple'
        ? d.tuples.map((t) => t.elements)
        : where === 'person'
          ? d.persons.map((p) => p.elements)
          : d.devices.map((x) => x.elements);
    return lists.flat().filter((e) => elementName(e).ns === RPID_NS && elementName(e).local === local).length;
  };
  for (const [perm, local, where] of table) {
    it(`provide-${local}: on shows rpid:${local}, off hides it`, () => {
      const off = applyTransformations(doc, components());
      const p = components();
      (p as unknown as Record<string, boolean>)[perm] = true;
      const on = applyTransformations(doc, p);
      for (const w of ['tuple', 'person', 'device'] as const) {
        assert.equal(rpidCount(on, local, w), where[w] ?? 0, `${w} with ${String(perm)}`);
        assert.equal(rpidCount(off, local, w), 0, `${w} without ${String(perm)}`);
      }
      // nothing else shows up
      const others =
        on.persons[0]!.elements.length +
        on.tuples.flatMap((t) => t.elements).length +
        on.devices.flatMap((d) => d.elements).length;
      assert.equal(others, (where.tuple ?? 0) + (where.person ?? 0) + (where.device ?? 0));
      assertValid(serializePidf(on));
    });
  }

  it('provide-activities keeps rpid:note inside only with provide-note', () => {
    const p = components();
    p.activities = true;
    let s = serializePidf(applyTransformations(doc, p));
    assert.match(s, /<rpid:activities><rpid:meal\/><\/rpid:activities>/);
    p.note = true;
    s = serializePidf(applyTransformations(doc, p));
    assert.match(s, /<rpid:activities><rpid:note>lunch<\/rpid:note><rpid:meal\/><\/rpid:activities>/);
  });

  it('provide-user-input: false / bare / thresholds / full', () => {
    const view = (level: ProvideSet['userInput']): string => {
      const p = components();
      p.userInput = level;
      const s = serializePidf(applyTransformations(doc, p));
      assertValid(s);
      return s;
    };
    assert.doesNotMatch(view('false'), /user-input/);
    const bare = view('bare');
    assert.match(bare, /<rpid:user-input>idle<\/rpid:user-input>/);
    assert.match(bare, /<rpid:user-input>active<\/rpid:user-input>/);
    assert.doesNotMatch(bare, /threshold|last-input/);
    const thr = view('thresholds');
    assert.match(thr, /<rpid:user-input idle-threshold="600">idle<\/rpid:user-input>/);
    assert.doesNotMatch(thr, /last-input/);
    const full = view('full');
    assert.match(
      full,
      /<rpid:user-input idle-threshold="600" last-input="2024-05-01T09:00:00Z">idle<\/rpid:user-input>/,
    );
    assert.match(
      full,
      /<rpid:user-input idle-threshold="300" last-input="2024-05-01T09:30:00Z">active<\/rpid:user-input>/,
    );
  });

  it('provide-note: every note (presence, tuple, person, device) on or off', () => {
    const off = applyTransformations(doc, components());
    assert.deepEqual([off.notes, off.tuples[0]?.notes, off.persons[0]?.notes, off.devices[0]?.notes], [[], [], [], []]);
    const p = components();
    p.note = true;
    const on = applyTransformations(doc, p);
    assert.deepEqual(on.notes, [{ text: 'presence note' }]);
    assert.deepEqual(on.tuples[0]?.notes, [{ text: 'desk phone', lang: 'en' }]);
    assert.deepEqual(on.persons[0]?.notes, [{ text: 'person note' }]);
    assert.deepEqual(on.devices[0]?.notes, [{ text: 'device note' }]);
  });

  it("provide-deviceID: the tuple's dm:deviceID on or off", () => {
    assert.equal(applyTransformations(doc, components()).tuples[0]?.deviceId, undefined);
    const p = components();
    p.deviceID = true;
    assert.equal(applyTransformations(doc, p).tuples[0]?.deviceId, 'urn:uuid:dev-1');
  });

  it('provide-unknown-attribute: by namespace and local name, wherever the element is', () => {
    const p = components();
    p.unknownAttributes = [{ ns: X_NS, name: 'foo' }];
    let out = applyTransformations(doc, p);
    let s = serializePidf(out);
    assertValid(s);
    assert.match(s, /<x:foo>tuple-ext<\/x:foo>/);
    assert.match(s, /<x:foo>person-ext<\/x:foo>/);
    assert.doesNotMatch(s, /top-ext|substatus|homepage|service-class/);
    p.unknownAttributes = [
      { ns: X_NS, name: 'substatus' },
      { ns: X_NS, name: 'top' },
      { ns: CIPID_NS, name: 'homepage' },
      { ns: RPID_NS, name: 'service-class' },
    ];
    out = applyTransformations(doc, p);
    s = serializePidf(out);
    assertValid(s);
    assert.match(s, /<status><basic>open<\/basic><x:substatus>ringing<\/x:substatus><\/status>/);
    assert.match(s, /<x:top>top-ext<\/x:top>/);
    assert.match(s, /<c:homepage>http:\/\/example.com\/carol<\/c:homepage>/);
    assert.match(s, /<rpid:service-class><rpid:electronic\/><\/rpid:service-class>/);
    assert.doesNotMatch(s, /x:foo/);
  });

  it('provide-services by service-uri, service-uri-scheme, occurrence-id and class', () => {
    const ids = (f: (p: ProvideSet) => void): string[] => {
      const p = emptyProvideSet();
      f(p);
      return applyTransformations(doc, p).tuples.map((t) => t.id);
    };
    assert.deepEqual(
      ids((p) => p.services.serviceUris.push('sip:carol@192.0.2.1;transport=tcp')),
      ['voice'],
    );
    assert.deepEqual(
      ids((p) => p.services.serviceUriSchemes.push('mailto')),
      ['mail'],
    );
    assert.deepEqual(
      ids((p) => p.services.occurrenceIds.push('mail')),
      ['mail'],
    );
    assert.deepEqual(
      ids((p) => p.services.classes.push('work')),
      ['voice'],
    );
    assert.deepEqual(
      ids((p) => p.services.classes.push('nothing')),
      [],
    );
    assert.deepEqual(
      ids((p) => (p.services.all = true)),
      ['voice', 'mail'],
    );
  });

  it('provide-persons and provide-devices: all, by class, by occurrence-id, by deviceID', () => {
    const view = (f: (p: ProvideSet) => void): [string[], string[]] => {
      const p = emptyProvideSet();
      f(p);
      const out = applyTransformations(doc, p);
      return [out.persons.map((x) => x.id), out.devices.map((x) => x.id)];
    };
    assert.deepEqual(
      view((p) => p.persons.classes.push('personal')),
      [['me'], []],
    );
    assert.deepEqual(
      view((p) => p.persons.classes.push('work')),
      [[], []],
    );
    assert.deepEqual(
      view((p) => p.persons.occurrenceIds.push('me')),
      [['me'], []],
    );
    assert.deepEqual(
      view((p) => p.devices.deviceIds.push('URN:uuid:dev-2')),
      [[], ['mobile']],
    );
    assert.deepEqual(
      view((p) => p.devices.classes.push('office')),
      [[], ['pc']],
    );
    assert.deepEqual(
      view((p) => p.devices.occurrenceIds.push('pc')),
      [[], ['pc']],
    );
    assert.deepEqual(
      view((p) => (p.devices.all = true)),
      [[], ['pc', 'mobile']],
    );
  });

  it('matches occurrence-id against the id as published when composition renamed it', () => {
    const composed = composePresence('sip:alice@example.com', threeSources());
    const p = emptyProvideSet();
    p.services.occurrenceIds.push('t1');
    assert.equal(applyTransformations(composed, p).tuples.length, 2);
  });

  it('does not modify its input', () => {
    const before = JSON.stringify(doc);
    const p = components();
    p.userInput = 'bare';
    p.activities = true;
    applyTransformations(doc, p);
    assert.equal(JSON.stringify(doc), before);
    assert.equal(serializePidf(doc), fullBytes);
  });
});

describe('politeBlockDocument', () => {
  it('is one closed tuple and nothing else, stable for the entity', () => {
    const d = politeBlockDocument('sip:alice@example.com');
    assert.equal(d.tuples.length, 1);
    const t = d.tuples[0]!;
    assert.equal(t.basic, 'closed');
    assert.deepEqual(
      [t.contact, t.timestamp, t.deviceId, t.raw, t.statusElements],
      [undefined, undefined, undefined, undefined, undefined],
    );
    assert.deepEqual([t.notes, t.elements, d.persons, d.devices, d.notes, d.extensions], [[], [], [], [], [], []]);
    const s = serializePidf(d);
    assert.match(
      s,
      /^<\?xml version="1.0" encoding="UTF-8"\?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="t[0-9a-f]{8}"><status><basic>closed<\/basic><\/status><\/tuple><\/presence>$/,
    );
    assert.equal(serializePidf(politeBlockDocument('sip:alice@example.com')), s);
    assert.notEqual(serializePidf(politeBlockDocument('sip:bob@example.com')), s);
    assertValid(s);
    // what a watcher with all services sees of a presentity with no state is the same bytes
    const p = emptyProvideSet();
    p.services.all = true;
    assert.equal(serializePidf(applyTransformations(composePresence('sip:alice@example.com', []), p)), s);
  });
});

// ---------------------------------------------------------------------------
// Speed
// ---------------------------------------------------------------------------

describe('performance', () => {
  it('parses, composes, authorizes and serializes a 100-tuple document in a few ms', (t) => {
    const tuples = Array.from(
      { length: 100 },
      (_, i) =>
        `<tuple id="t${i}"><status><basic>${i % 2 ? 'open' : 'closed'}</basic></status><dm:deviceID>urn:uuid:d${i}</dm:deviceID>` +
        `<rpid:class>c${i % 5}</rpid:class><rpid:user-input idle-threshold="600">active</rpid:user-input><x:ext a="${i}">v${i}</x:ext>` +
        `<contact priority="0.5">sip:u${i}@192.0.2.${i}</contact><note xml:lang="en">service ${i}</note><timestamp>2024-05-01T10:00:00Z</timestamp></tuple>`,
    ).join('');
    const big = `<?xml version="1.0" encoding="UTF-8"?><presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:x="urn:example:x" entity="sip:big@example.com">${tuples}<dm:person id="p"><rpid:activities><rpid:busy/></rpid:activities><dm:note>n</dm:note></dm:person></presence>`;
    const provide = components();
    provide.class = true;
    provide.userInput = 'bare';
    const small = parsePidf(BARESIP);
    const run = (): { parse: number; compose: number; authorize: number; serialize: number; out: string } => {
      const t0 = performance.now();
      const doc = parsePidf(big);
      const t1 = performance.now();
      const composed = composePresence('sip:big@example.com', [
        { sourceId: 'big', doc, publishedAt: at(1) },
        { sourceId: 'phone', doc: small, publishedAt: at(2) },
        { sourceId: 'net', doc: NETWORK, publishedAt: at(0) },
      ]);
      const t2 = performance.now();
      const view = applyTransformations(composed, provide);
      const t3 = performance.now();
      serializePidf(composed);
      const out = serializePidf(view);
      const t4 = performance.now();
      return { parse: t1 - t0, compose: t2 - t1, authorize: t3 - t2, serialize: t4 - t3, out };
    };
    for (let i = 0; i < 20; i++) run(); // warm up
    const n = 100;
    const sum = { parse: 0, compose: 0, authorize: 0, serialize: 0 };
    let out = '';
    for (let i = 0; i < n; i++) {
      const r = run();
      sum.parse += r.parse;
      sum.compose += r.compose;
      sum.authorize += r.authorize;
      sum.serialize += r.serialize;
      out = r.out;
    }
    const avg = Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, +(v / n).toFixed(3)])) as typeof sum;
    const total = avg.parse + avg.compose + avg.authorize + avg.serialize;
    t.diagnostic(
      `100-tuple document (${big.length} bytes), mean of ${n} runs in ms: ${JSON.stringify(avg)}, total ${total.toFixed(3)}`,
    );
    assertValid(out);
    assert.equal(parsePidf(out).tuples.length, 102);
    assert.ok(total < 50, `too slow: ${total} ms`);
  });
});
