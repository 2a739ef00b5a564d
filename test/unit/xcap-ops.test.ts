import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attr, childElements, parseXml, serializeXml, type XmlDocument } from '../../as/src/xml/xml-tree.js';
import { parseNodeSelector, parseXcapUri } from '../../as/src/xdm/xcap-uri.js';
import {
  XCAP_ATT_CONTENT_TYPE,
  XCAP_EL_CONTENT_TYPE,
  XCAP_NS_CONTENT_TYPE,
  XcapOpError,
  deleteNode,
  getAttribute,
  getElement,
  getNamespaces,
  getNode,
  putAttribute,
  putElement,
  select,
  xcapErrorBody,
} from '../../as/src/xdm/xcap-ops.js';
import { RFC4826_CLOSE_FRIENDS } from '../helpers/rfc-examples.js';

const RL = 'urn:ietf:params:xml:ns:resource-lists';

// RFC 4825 section 6.3 watcherinfo example document.
const WATCHERINFO = `<?xml version="1.0"?>
<watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo"
             version="0" state="full">
  <watcher-list resource="sip:professor@example.net" package="presence">
    <watcher status="active"
             id="8ajksjda7s"
             duration-subscribed="509"
             event="approved" >sip:userA@example.net</watcher>
    <watcher status="pending"
             id="hh8juja87s997-ass7"
             display-name="Mr. Subscriber"
             event="subscribe">sip:userB@example.org</watcher>
  </watcher-list>
</watcherinfo>`;
const WI = 'urn:ietf:params:xml:ns:watcherinfo';

// RFC 4825 section 6.4 namespace example document.
const NS_DOC = `<?xml version="1.0" encoding="UTF-8"?>
<foo xmlns="urn:test:default-namespace">
  <ns1:bar xmlns:ns1="urn:test:namespace1-uri"
           xmlns="urn:test:namespace1-uri">
    <baz/>
    <ns2:baz xmlns:ns2="urn:test:namespace2-uri"/>
  </ns1:bar>
  <ns3:hi xmlns:ns3="urn:test:namespace3-uri">
    <there/>
  </ns3:hi>
</foo>`;
const NS_DEFAULT = 'urn:test:default-namespace';

const rl = () => parseXml(RFC4826_CLOSE_FRIENDS);
const sel = (text: string, query = '') =>
  parseXcapUri(`/resource-lists/users/sip:joe@example.com/index/~~/${text}${query ? '?' + query : ''}`, '')
    .nodeSelector!;
const nsSel = (text: string, query: string) =>
  parseXcapUri(`/test/users/sip:joe@example.com/index/~~/${text}?${query}`, '').nodeSelector!;

/** The children of the first list as "name uri-or-anchor" strings. */
function listing(doc: XmlDocument): string[] {
  const list = childElements(doc.root)[0]!;
  return childElements(list).map((e) => `${e.name} ${attr(e, 'uri') ?? attr(e, 'anchor') ?? ''}`.trim());
}

function opError(fn: () => unknown): { tag: string; status: number; ancestor?: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof XcapOpError, `expected XcapOpError, got ${String(e)}`);
    return e.ancestor !== undefined
      ? { tag: e.tag, status: e.status, ancestor: e.ancestor }
      : { tag: e.tag, status: e.status };
  }
  return { tag: 'no error', status: 0 };
}

const JOE = 'resource-lists/list[@name="close-friends"]/entry[@uri="sip:joe@example.com"]';
const LIST = 'resource-lists/list[@name="close-friends"]';

describe('select', () => {
  it('selects elements by name, attribute predicate, position and wildcard', () => {
    const d = rl();
    const a = select(d, sel(JOE), RL);
    assert.equal(a.kind, 'element');
    assert.equal(a.kind === 'element' && attr(a.element, 'uri'), 'sip:joe@example.com');
    assert.equal(a.kind === 'element' && a.parent?.name, 'list');

    const b = select(d, sel(`${LIST}/entry[2]`), RL);
    assert.equal(b.kind === 'element' && attr(b.element, 'uri'), 'sip:nancy@example.com');

    const c = select(d, sel(`${LIST}/*[3]`), RL);
    assert.equal(c.kind === 'element' && c.element.name, 'external');

    const e = select(d, sel('*/*/*[2]'), RL);
    assert.equal(e.kind === 'element' && attr(e.element, 'uri'), 'sip:nancy@example.com');

    const f = select(d, sel(`${LIST}/entry[2][@uri="sip:nancy@example.com"]`), RL);
    assert.equal(f.kind === 'element' && attr(f.element, 'uri'), 'sip:nancy@example.com');
    // position-attr: the 1st entry is joe, so the attribute test fails
    assert.deepEqual(select(d, sel(`${LIST}/entry[1][@uri="sip:nancy@example.com"]`), RL), {
      kind: 'none',
      matchedSteps: 2,
      last: childElements(d.root)[0],
    });
    // attr-position: the 1st of the entries with that uri is nancy
    const g = select(d, sel(`${LIST}/entry[@uri="sip:nancy@example.com"][1]`), RL);
    assert.equal(g.kind === 'element' && attr(g.element, 'uri'), 'sip:nancy@example.com');
  });

  it('a step that matches several elements selects nothing ("many")', () => {
    const d = rl();
    const s = select(d, sel(`${LIST}/entry`), RL);
    assert.equal(s.kind, 'many');
    assert.equal(s.kind === 'many' && s.matchedSteps, 2);
    const t = select(d, sel(`${LIST}/entry/display-name`), RL);
    assert.equal(t.kind, 'many');
    assert.equal(t.kind === 'many' && t.matchedSteps, 2);
  });

  it('matches on expanded names, not prefixes (RFC 4825 section 6.4 example)', () => {
    const d = parseXml(NS_DOC);
    const one = select(
      d,
      nsSel('foo/a:bar/b:baz', 'xmlns(a=urn:test:namespace1-uri)xmlns(b=urn:test:namespace1-uri)'),
      NS_DEFAULT,
    );
    assert.equal(one.kind === 'element' && one.element.name, 'baz');
    const two = select(
      d,
      nsSel('foo/a:bar/b:baz', 'xmlns(a=urn:test:namespace1-uri)xmlns(b=urn:test:namespace2-uri)'),
      NS_DEFAULT,
    );
    assert.equal(two.kind === 'element' && two.element.name, 'ns2:baz');
    // the unprefixed 'bar' is in the usage's default namespace, which bar is not in
    assert.equal(select(d, nsSel('foo/bar', 'xmlns(a=urn:x)'), NS_DEFAULT).kind, 'none');
    // select() applies its defaultNs argument to unprefixed names
    assert.equal(select(d, parseNodeSelector('foo'), NS_DEFAULT).kind, 'element');
    assert.equal(select(d, parseNodeSelector('foo', new Map(), NS_DEFAULT)).kind, 'element');
    assert.equal(select(d, parseNodeSelector('foo')).kind, 'none');
  });

  it('selects attributes and namespace bindings', () => {
    const d = parseXml(WATCHERINFO);
    const a = select(d, sel('watcherinfo/watcher-list/watcher[@id="8ajksjda7s"]/@status'), WI);
    assert.deepEqual(a.kind === 'attribute' && [a.name, a.value], ['status', 'active']);
    assert.deepEqual(
      select(d, sel('watcherinfo/watcher-list/watcher[@id="8ajksjda7s"]/@display-name'), WI).kind,
      'none',
    );
    const n = select(d, sel('watcherinfo/watcher-list/namespace::*'), WI);
    assert.deepEqual(n.kind === 'namespaces' && [...n.bindings], [['', WI]]);
  });
});

describe('GET', () => {
  it('returns an element as in the document, with the namespace declarations it needs', () => {
    const d = rl();
    assert.equal(
      getElement(d, sel(JOE), RL),
      '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:joe@example.com"><display-name>Joe Smith</display-name></entry>',
    );
    const w = parseXml(WATCHERINFO);
    assert.equal(
      getElement(w, sel('watcherinfo/watcher-list/watcher[@id="8ajksjda7s"]'), WI),
      '<watcher xmlns="urn:ietf:params:xml:ns:watcherinfo" status="active" id="8ajksjda7s" duration-subscribed="509" event="approved">sip:userA@example.net</watcher>',
    );
    const n = parseXml(NS_DOC);
    const q = 'xmlns(a=urn:test:namespace1-uri)xmlns(b=urn:test:namespace2-uri)';
    assert.equal(
      getElement(n, nsSel('foo/a:bar/b:baz', q), NS_DEFAULT),
      '<ns2:baz xmlns:ns2="urn:test:namespace2-uri"/>',
    );
    assert.equal(getElement(n, nsSel('foo/a:bar/a:baz', q), NS_DEFAULT), '<baz xmlns="urn:test:namespace1-uri"/>');
    assert.equal(
      getElement(n, nsSel('foo/c:hi', 'xmlns(c=urn:test:namespace3-uri)'), NS_DEFAULT),
      '<ns3:hi xmlns="urn:test:default-namespace" xmlns:ns3="urn:test:namespace3-uri"><there/></ns3:hi>',
    );
    // the returned fragment parses on its own and means the same
    assert.equal(
      parseXml(getElement(n, nsSel('foo/c:hi', 'xmlns(c=urn:test:namespace3-uri)'), NS_DEFAULT)).root.name,
      'ns3:hi',
    );
  });

  it('adds declarations for prefixes used only by attributes and descendants', () => {
    const d = parseXml(
      '<r xmlns="urn:r" xmlns:p="urn:p" xmlns:q="urn:q" xmlns:unused="urn:u"><e p:a="1"><q:f/></e></r>',
    );
    assert.equal(
      getElement(d, parseNodeSelector('r/e'), 'urn:r'),
      '<e xmlns="urn:r" xmlns:p="urn:p" xmlns:q="urn:q" p:a="1"><q:f/></e>',
    );
  });

  it('returns attribute values escaped for application/xcap-att+xml', () => {
    const d = rl();
    assert.equal(getAttribute(d, sel(`${JOE}/@uri`), RL), 'sip:joe@example.com');
    const e = parseXml('<r xmlns="urn:r"><e v="a &amp; &quot;b&quot; &lt;c&gt;"/></r>');
    assert.equal(getAttribute(e, parseNodeSelector('r/e/@v'), 'urn:r'), 'a &amp; &quot;b&quot; &lt;c&gt;');
  });

  it('returns namespace bindings (RFC 4825 section 7.10)', () => {
    const n = parseXml(NS_DOC);
    assert.equal(
      getNamespaces(n, nsSel('foo/a:bar/a:baz/namespace::*', 'xmlns(a=urn:test:namespace1-uri)'), NS_DEFAULT),
      '<baz xmlns="urn:test:namespace1-uri" xmlns:ns1="urn:test:namespace1-uri"/>',
    );
    assert.equal(
      getNamespaces(n, nsSel('foo/a:bar/namespace::*', 'xmlns(a=urn:test:namespace1-uri)'), NS_DEFAULT),
      '<ns1:bar xmlns="urn:test:namespace1-uri" xmlns:ns1="urn:test:namespace1-uri"/>',
    );
    assert.equal(
      getNamespaces(n, parseNodeSelector('foo/namespace::*'), NS_DEFAULT),
      '<foo xmlns="urn:test:default-namespace"/>',
    );
  });

  it('getNode dispatches on the terminal and gives the content type', () => {
    const d = rl();
    assert.deepEqual(getNode(d, sel(`${JOE}/display-name`), RL), {
      contentType: XCAP_EL_CONTENT_TYPE,
      body: '<display-name xmlns="urn:ietf:params:xml:ns:resource-lists">Joe Smith</display-name>',
    });
    assert.deepEqual(getNode(d, sel(`${LIST}/@name`), RL), {
      contentType: XCAP_ATT_CONTENT_TYPE,
      body: 'close-friends',
    });
    assert.deepEqual(getNode(d, sel(`${LIST}/namespace::*`), RL), {
      contentType: XCAP_NS_CONTENT_TYPE,
      body: '<list xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>',
    });
  });

  it('404 for nothing or several selected', () => {
    const d = rl();
    assert.deepEqual(
      opError(() => getElement(d, sel(`${LIST}/entry[@uri="sip:nobody@example.com"]`), RL)),
      { tag: 'not-found', status: 404 },
    );
    assert.deepEqual(
      opError(() => getElement(d, sel(`${LIST}/entry`), RL)),
      { tag: 'many-selected', status: 404 },
    );
    assert.deepEqual(
      opError(() => getAttribute(d, sel(`${JOE}/@nothere`), RL)),
      { tag: 'not-found', status: 404 },
    );
    assert.deepEqual(
      opError(() => getElement(d, sel('other-root'), RL)),
      { tag: 'not-found', status: 404 },
    );
  });
});

describe('PUT element', () => {
  it('creates a new element after the last sibling (created = true) without touching the input', () => {
    const d = rl();
    const before = serializeXml(d);
    const r = putElement(
      d,
      sel(`${LIST}/entry[@uri="sip:bob@example.com"]`),
      '<entry uri="sip:bob@example.com">\n  <display-name>Bob Jones</display-name>\n</entry>',
      RL,
    );
    assert.equal(r.created, true);
    assert.deepEqual(listing(r.doc), [
      'entry sip:joe@example.com',
      'entry sip:nancy@example.com',
      'external http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkting%22%5d',
      'entry sip:bob@example.com',
    ]);
    assert.equal(
      getElement(r.doc, sel(`${LIST}/entry[@uri="sip:bob@example.com"]`), RL),
      '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:bob@example.com"><display-name>Bob Jones</display-name></entry>',
    );
    assert.equal(serializeXml(d), before);
  });

  it('replaces an existing element in place (created = false)', () => {
    const r = putElement(
      rl(),
      sel(JOE),
      '<entry uri="sip:joe@example.com"><display-name>Joseph</display-name></entry>',
      RL,
    );
    assert.equal(r.created, false);
    assert.deepEqual(listing(r.doc).slice(0, 2), ['entry sip:joe@example.com', 'entry sip:nancy@example.com']);
    assert.equal(
      getElement(r.doc, sel(`${JOE}/display-name`), RL),
      '<display-name xmlns="urn:ietf:params:xml:ns:resource-lists">Joseph</display-name>',
    );
    // by position, with a different attribute: still entry[2]
    const p = putElement(rl(), sel(`${LIST}/entry[2]`), '<entry uri="sip:zed@example.com"/>', RL);
    assert.equal(p.created, false);
    assert.deepEqual(listing(p.doc).slice(0, 3), [
      'entry sip:joe@example.com',
      'entry sip:zed@example.com',
      listing(rl())[2],
    ]);
  });

  it('GET then PUT of the same element leaves the document unchanged', () => {
    const d = rl();
    const body = getElement(d, sel(JOE), RL);
    const r = putElement(d, sel(JOE), body, RL);
    assert.deepEqual(r.doc, d);
    // and the redundant default-namespace declaration was not stored
    assert.equal(serializeXml(r.doc), serializeXml(d));
  });

  it('inserts by position among same-name siblings (RFC 4825 section 8.2.3)', () => {
    const third = putElement(rl(), sel(`${LIST}/entry[3]`), '<entry uri="sip:carol@example.com"/>', RL);
    assert.equal(third.created, true);
    assert.deepEqual(listing(third.doc), [
      'entry sip:joe@example.com',
      'entry sip:nancy@example.com',
      'entry sip:carol@example.com',
      listing(rl())[2],
    ]);
    // entry[1] + attribute that joe lacks: new element goes first
    const first = putElement(
      rl(),
      sel(`${LIST}/entry[1][@uri="sip:first@example.com"]`),
      '<entry uri="sip:first@example.com"/>',
      RL,
    );
    assert.equal(first.created, true);
    assert.deepEqual(listing(first.doc).slice(0, 3), [
      'entry sip:first@example.com',
      'entry sip:joe@example.com',
      'entry sip:nancy@example.com',
    ]);
    // wildcard position: becomes the 4th element overall
    const star = putElement(rl(), sel(`${LIST}/*[4]`), '<entry uri="sip:last@example.com"/>', RL);
    assert.equal(listing(star.doc)[3], 'entry sip:last@example.com');
    // external[2]: after the only external
    const ext = putElement(rl(), sel(`${LIST}/external[2]`), '<external anchor="http://x/y"/>', RL);
    assert.deepEqual(listing(ext.doc).slice(2), [listing(rl())[2], 'external http://x/y']);
    // a new child in an element without element children
    const dn = putElement(
      rl(),
      sel(`${JOE}/display-name[@xml:lang="fr"]`),
      '<display-name xml:lang="fr">Jo</display-name>',
      RL,
    );
    assert.equal(
      getElement(dn.doc, sel(JOE), RL),
      '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:joe@example.com"><display-name>Joe Smith</display-name><display-name xml:lang="fr">Jo</display-name></entry>',
    );
  });

  it('refuses positions that cannot be reached (cannot-insert)', () => {
    assert.deepEqual(
      opError(() => putElement(rl(), sel(`${LIST}/entry[5]`), '<entry uri="sip:x@example.com"/>', RL)),
      {
        tag: 'cannot-insert',
        status: 409,
      },
    );
    assert.deepEqual(
      opError(() => putElement(rl(), sel(`${LIST}/entry[0]`), '<entry uri="sip:x@example.com"/>', RL)),
      {
        tag: 'cannot-insert',
        status: 409,
      },
    );
  });

  it('no-parent with the closest existing ancestor', () => {
    const a = opError(() =>
      putElement(rl(), sel('resource-lists/list[@name="nope"]/entry'), '<entry uri="sip:x@example.com"/>', RL),
    );
    assert.deepEqual(a, { tag: 'no-parent', status: 409, ancestor: 'resource-lists' });
    const b = opError(() =>
      putElement(
        rl(),
        sel(`${LIST}/entry[@uri="sip:ghost@example.com"]/display-name`),
        '<display-name>x</display-name>',
        RL,
      ),
    );
    assert.deepEqual(b, { tag: 'no-parent', status: 409, ancestor: LIST });
    const c = opError(() => putElement(rl(), sel('other/list'), '<list/>', RL));
    assert.deepEqual(c, { tag: 'no-parent', status: 409, ancestor: '' });
    // an ambiguous parent is no parent either
    const m = opError(() => putElement(rl(), sel(`${LIST}/entry/foo`), '<foo/>', RL));
    assert.deepEqual(m, { tag: 'no-parent', status: 409, ancestor: LIST });
    // the error body, with the ancestor as a URI
    try {
      putElement(rl(), sel('resource-lists/list[@name="nope"]/entry'), '<entry uri="sip:x@example.com"/>', RL);
    } catch (e) {
      assert.ok(e instanceof XcapOpError);
      assert.equal(
        xcapErrorBody(e, { documentUri: 'http://xcap.example.com/resource-lists/users/sip:joe@example.com/index' }),
        '<?xml version="1.0" encoding="UTF-8"?><xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"><no-parent><ancestor>http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists</ancestor></no-parent></xcap-error>',
      );
    }
  });

  it('cannot-insert when the body would not be selected by the URI', () => {
    // name mismatch
    assert.deepEqual(
      opError(() => putElement(rl(), sel(JOE), '<external anchor="http://x"/>', RL)),
      { tag: 'cannot-insert', status: 409 },
    );
    // attribute predicate mismatch on replace
    assert.deepEqual(
      opError(() => putElement(rl(), sel(JOE), '<entry uri="sip:other@example.com"/>', RL)),
      { tag: 'cannot-insert', status: 409 },
    );
    // attribute predicate mismatch on create
    assert.deepEqual(
      opError(() =>
        putElement(rl(), sel(`${LIST}/entry[@uri="sip:a@example.com"]`), '<entry uri="sip:b@example.com"/>', RL),
      ),
      {
        tag: 'cannot-insert',
        status: 409,
      },
    );
    // namespace mismatch: same local name, other namespace
    assert.deepEqual(
      opError(() => putElement(rl(), sel(JOE), '<entry xmlns="urn:other" uri="sip:joe@example.com"/>', RL)),
      {
        tag: 'cannot-insert',
        status: 409,
      },
    );
    // creating where the selector matches several elements
    assert.deepEqual(
      opError(() => putElement(rl(), sel(`${LIST}/entry`), '<entry uri="sip:x@example.com"/>', RL)),
      { tag: 'cannot-insert', status: 409 },
    );
    // replacing the root with another name
    assert.deepEqual(
      opError(() => putElement(rl(), sel('resource-lists'), '<other/>', RL)),
      { tag: 'cannot-insert', status: 409 },
    );
  });

  it('not-xml-frag for bodies that are not exactly one element', () => {
    for (const body of [
      '',
      '   ',
      'text',
      '<entry uri="a"/><entry uri="b"/>',
      '<entry uri="a"/>tail',
      '<entry uri="a">',
      '<!DOCTYPE x><entry uri="a"/>',
      '<entry uri="a">&ext;</entry>',
      '<p:entry uri="a"/>',
    ]) {
      assert.deepEqual(
        opError(() => putElement(rl(), sel(`${LIST}/entry[@uri="a"]`), body, RL)),
        { tag: 'not-xml-frag', status: 409 },
        body,
      );
    }
    assert.deepEqual(
      opError(() => putElement(rl(), sel(`${LIST}/entry[@uri="a"]`), Buffer.from([0x3c, 0x65, 0xff, 0x2f, 0x3e]), RL)),
      {
        tag: 'not-utf-8',
        status: 409,
      },
    );
    // an XML declaration in front is tolerated
    const r = putElement(
      rl(),
      sel(`${LIST}/entry[@uri="a"]`),
      '<?xml version="1.0" encoding="UTF-8"?>\n<entry uri="a"/>',
      RL,
    );
    assert.equal(r.created, true);
  });

  it("keeps the fragment's own namespace declarations when they differ from the document", () => {
    const q = 'xmlns(a=urn:test:namespace1-uri)xmlns(b=urn:test:namespace2-uri)xmlns(c=urn:other)';
    // declared in the body, same prefix bound to another namespace in the parent scope: kept
    const r1 = putElement(parseXml(NS_DOC), nsSel('foo/a:bar/c:x', q), '<ns1:x xmlns:ns1="urn:other"/>', NS_DEFAULT);
    assert.equal(getElement(r1.doc, nsSel('foo/a:bar/c:x', q), NS_DEFAULT), '<ns1:x xmlns:ns1="urn:other"/>');
    const bar1 = childElements(r1.doc.root)[0]!;
    assert.deepEqual(
      childElements(bar1).map((e) => [e.name, e.attributes]),
      [
        ['baz', undefined],
        ['ns2:baz', { 'xmlns:ns2': 'urn:test:namespace2-uri' }],
        ['ns1:x', { 'xmlns:ns1': 'urn:other' }],
      ],
    );
    // undeclared prefix in the body: takes the binding in scope at the parent
    const r2 = putElement(parseXml(NS_DOC), nsSel('foo/a:bar/a:y', q), '<ns1:y/>', NS_DEFAULT);
    assert.equal(r2.created, true);
    assert.deepEqual(
      childElements(childElements(r2.doc.root)[0]!).map((e) => e.name),
      ['baz', 'ns2:baz', 'ns1:y'],
    );
    // unprefixed body: takes the default namespace in scope at the parent (namespace1 here)
    const r3 = putElement(parseXml(NS_DOC), nsSel('foo/a:bar/a:z', q), '<z/>', NS_DEFAULT);
    assert.equal(getElement(r3.doc, nsSel('foo/a:bar/a:z', q), NS_DEFAULT), '<z xmlns="urn:test:namespace1-uri"/>');
    // a redundant declaration is dropped, a differing default one kept
    const r4 = putElement(
      parseXml(NS_DOC),
      nsSel('foo/a:bar/b:w', q),
      '<w xmlns="urn:test:namespace2-uri" xmlns:ns1="urn:test:namespace1-uri"/>',
      NS_DEFAULT,
    );
    const w = childElements(childElements(r4.doc.root)[0]!)[2]!;
    assert.deepEqual(w.attributes, { xmlns: 'urn:test:namespace2-uri' });
    // the result re-parses to the same tree
    assert.deepEqual(parseXml(serializeXml(r1.doc)), r1.doc);
  });
});

describe('PUT attribute', () => {
  it('creates and replaces attributes', () => {
    const c = putAttribute(rl(), sel(`${JOE}/@note`), 'a &amp; b &quot;c&quot;', RL);
    assert.equal(c.created, true);
    assert.equal(getAttribute(c.doc, sel(`${JOE}/@note`), RL), 'a &amp; b &quot;c&quot;');
    const e = select(c.doc, sel(`${JOE}/@note`), RL);
    assert.equal(e.kind === 'attribute' && e.value, 'a & b "c"');

    const r = putAttribute(rl(), sel('resource-lists/list/@name'), 'best-friends', RL);
    assert.equal(r.created, false);
    assert.equal(attr(childElements(r.doc.root)[0]!, 'name'), 'best-friends');
  });

  it('declares a prefix for a namespaced attribute when none is in scope', () => {
    const r = putAttribute(rl(), sel(`${JOE}/@v:tag`, 'xmlns(v=urn:vendor)'), 'x', RL);
    const joe = select(r.doc, sel(JOE), RL);
    assert.ok(joe.kind === 'element');
    assert.deepEqual(joe.element.attributes, { uri: 'sip:joe@example.com', 'xmlns:v': 'urn:vendor', 'v:tag': 'x' });
    // an existing prefix for the namespace is reused
    const s = putAttribute(rl(), sel(`${JOE}/@i:type`, 'xmlns(i=http://www.w3.org/2001/XMLSchema-instance)'), 'y', RL);
    const joe2 = select(s.doc, sel(JOE), RL);
    assert.deepEqual(joe2.kind === 'element' && joe2.element.attributes, {
      uri: 'sip:joe@example.com',
      'xsi:type': 'y',
    });
  });

  it('refuses values that are not attribute values, and missing elements', () => {
    for (const v of ['a < b', 'a & b', '&nbsp;', '&#0;', `both " and '`]) {
      assert.deepEqual(
        opError(() => putAttribute(rl(), sel(`${JOE}/@x`), v, RL)),
        { tag: 'not-xml-att-value', status: 409 },
        v,
      );
    }
    assert.deepEqual(
      opError(() => putAttribute(rl(), sel(`${LIST}/entry[@uri="sip:ghost@example.com"]/@x`), '1', RL)),
      {
        tag: 'no-parent',
        status: 409,
        ancestor: LIST,
      },
    );
    assert.deepEqual(
      opError(() => putAttribute(rl(), sel(`${LIST}/entry/@x`), '1', RL)),
      { tag: 'no-parent', status: 409, ancestor: LIST },
    );
    // changing the attribute the selector depends on
    assert.deepEqual(
      opError(() => putAttribute(rl(), sel(`${LIST}/@name`), 'other', RL)),
      { tag: 'cannot-insert', status: 409 },
    );
    assert.deepEqual(
      opError(() => putAttribute(rl(), sel(`${LIST}/namespace::*`), 'x', RL)),
      { tag: 'not-allowed', status: 405 },
    );
  });

  it('normalises literal whitespace in attribute values', () => {
    const r = putAttribute(rl(), sel(`${JOE}/@x`), 'a\tb\nc&#10;d', RL);
    const s = select(r.doc, sel(`${JOE}/@x`), RL);
    assert.equal(s.kind === 'attribute' && s.value, 'a b c\nd');
  });
});

describe('DELETE', () => {
  it('deletes an element selected by attribute', () => {
    const d = rl();
    const r = deleteNode(d, sel(`${LIST}/entry[@uri="sip:nancy@example.com"]`), RL);
    assert.deepEqual(listing(r.doc), ['entry sip:joe@example.com', listing(d)[2]]);
    assert.equal(listing(d).length, 3);
  });

  it('cannot-delete when another sibling would shift into the position (RFC 4825 section 8.2.5)', () => {
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel(`${LIST}/entry[1]`), RL)),
      { tag: 'cannot-delete', status: 409 },
    );
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel(`${LIST}/*[2]`), RL)),
      { tag: 'cannot-delete', status: 409 },
    );
    // the last of its kind can be deleted by position
    const r = deleteNode(rl(), sel(`${LIST}/entry[2]`), RL);
    assert.deepEqual(listing(r.doc), ['entry sip:joe@example.com', listing(rl())[2]]);
    const s = deleteNode(rl(), sel(`${LIST}/*[3]`), RL);
    assert.deepEqual(listing(s.doc), ['entry sip:joe@example.com', 'entry sip:nancy@example.com']);
  });

  it('deletes attributes', () => {
    const r = deleteNode(rl(), sel(`${LIST}/external/@anchor`), RL);
    const ext = select(r.doc, sel(`${LIST}/external`), RL);
    assert.equal(ext.kind === 'element' && ext.element.attributes, undefined);
    // the selector of the element depended on the attribute: afterwards it selects nothing, which is fine
    const n = deleteNode(rl(), sel(`${LIST}/@name`), RL);
    assert.equal(attr(childElements(n.doc.root)[0]!, 'name'), undefined);
    // an attribute whose element is selected by position only
    const w = deleteNode(parseXml(WATCHERINFO), sel('watcherinfo/watcher-list/watcher[2]/@display-name'), WI);
    const s2 = select(w.doc, sel('watcherinfo/watcher-list/watcher[2]'), WI);
    assert.deepEqual(s2.kind === 'element' && s2.element.attributes, {
      status: 'pending',
      id: 'hh8juja87s997-ass7',
      event: 'subscribe',
    });
  });

  it('404 for missing or ambiguous nodes, refuses root and namespace deletion', () => {
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel(`${LIST}/entry[@uri="sip:ghost@example.com"]`), RL)),
      { tag: 'not-found', status: 404 },
    );
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel(`${LIST}/entry`), RL)),
      { tag: 'many-selected', status: 404 },
    );
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel(`${JOE}/@ghost`), RL)),
      { tag: 'not-found', status: 404 },
    );
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel('resource-lists'), RL)),
      { tag: 'cannot-delete', status: 409 },
    );
    assert.deepEqual(
      opError(() => deleteNode(rl(), sel(`${LIST}/namespace::*`), RL)),
      { tag: 'not-allowed', status: 405 },
    );
  });
});

describe('xcapErrorBody (RFC 4825 section 11)', () => {
  const head = '<?xml version="1.0" encoding="UTF-8"?><xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error">';
  it('writes each condition', () => {
    assert.equal(xcapErrorBody({ tag: 'not-well-formed' }), `${head}<not-well-formed/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'not-utf-8' }), `${head}<not-utf-8/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'schema-validation-error' }), `${head}<schema-validation-error/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'not-xml-frag' }), `${head}<not-xml-frag/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'not-xml-att-value' }), `${head}<not-xml-att-value/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'cannot-insert' }), `${head}<cannot-insert/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'cannot-delete' }), `${head}<cannot-delete/></xcap-error>`);
    assert.equal(xcapErrorBody({ tag: 'no-parent' }), `${head}<no-parent/></xcap-error>`);
    assert.equal(
      xcapErrorBody({ tag: 'no-parent', ancestor: 'http://x/a?b&c' }),
      `${head}<no-parent><ancestor>http://x/a?b&amp;c</ancestor></no-parent></xcap-error>`,
    );
    assert.equal(
      xcapErrorBody({ tag: 'constraint-failure', phrase: 'URI must be "sip:" & valid' }),
      `${head}<constraint-failure phrase="URI must be &quot;sip:&quot; &amp; valid"/></xcap-error>`,
    );
    assert.equal(
      xcapErrorBody({
        tag: 'uniqueness-failure',
        exists: [
          { field: 'rls-services/service/@uri', altValues: ['sip:mybuddies@example.com', 'sip:buddies2@example.com'] },
          { field: 'resource-lists/list/@name' },
        ],
      }),
      `${head}<uniqueness-failure><exists field="rls-services/service/@uri"><alt-value>sip:mybuddies@example.com</alt-value><alt-value>sip:buddies2@example.com</alt-value></exists><exists field="resource-lists/list/@name"/></uniqueness-failure></xcap-error>`,
    );
    // well-formed and in the xcap-error namespace
    const d = parseXml(xcapErrorBody({ tag: 'uniqueness-failure', exists: [{ field: 'a', altValues: ['<x>'] }] }));
    assert.equal(attr(d.root, 'xmlns'), 'urn:ietf:params:xml:ns:xcap-error');
  });

  it('from XcapOpError, with or without a document URI', () => {
    const e = new XcapOpError('no-parent', 'x', { ancestor: 'resource-lists/list[@name="a b"]' });
    assert.equal(e.status, 409);
    assert.equal(
      xcapErrorBody(e),
      `${head}<no-parent><ancestor>resource-lists/list[@name="a b"]</ancestor></no-parent></xcap-error>`,
    );
    assert.equal(
      xcapErrorBody(e, { documentUri: 'http://h/rl/users/u/index' }),
      `${head}<no-parent><ancestor>http://h/rl/users/u/index/~~/resource-lists/list%5B@name=%22a%20b%22%5D</ancestor></no-parent></xcap-error>`,
    );
    assert.equal(
      xcapErrorBody(new XcapOpError('no-parent', 'x', { ancestor: '' }), { documentUri: 'http://h/d' }),
      `${head}<no-parent><ancestor>http://h/d</ancestor></no-parent></xcap-error>`,
    );
    assert.equal(xcapErrorBody(new XcapOpError('cannot-delete', 'x')), `${head}<cannot-delete/></xcap-error>`);
    assert.throws(() => xcapErrorBody(new XcapOpError('not-found', 'x')));
  });
});
