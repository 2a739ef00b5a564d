import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NamespaceScope,
  XmlError,
  attr,
  attrNS,
  childElements,
  findChildren,
  localName,
  parseXml,
  prefixOf,
  serializeXml,
  textContent,
  xmlNamespaces,
  type XmlElement,
} from '../../as/src/xml/xml-tree.js';
import { RFC4826_CLOSE_FRIENDS, RFC5025_PRES_RULES } from '../helpers/rfc-examples.js';

function kindOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof XmlError, `expected XmlError, got ${String(e)}`);
    return e.kind;
  }
  return 'no error';
}

describe('parseXml: hostile input', () => {
  it('refuses billion laughs without expanding anything', () => {
    const lol = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol9;</lolz>`;
    assert.equal(
      kindOf(() => parseXml(lol)),
      'doctype-forbidden',
    );
    assert.equal(
      kindOf(() => parseXml(Buffer.from(lol))),
      'doctype-forbidden',
    );
  });

  it('refuses external entities (SYSTEM and parameter entities)', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`;
    assert.equal(
      kindOf(() => parseXml(xxe)),
      'doctype-forbidden',
    );
    const pe = `<!DOCTYPE foo [<!ENTITY % pe SYSTEM "http://evil.example/x.dtd"> %pe;]><foo/>`;
    assert.equal(
      kindOf(() => parseXml(pe)),
      'doctype-forbidden',
    );
    const ext = `<!DOCTYPE foo SYSTEM "http://evil.example/foo.dtd"><foo/>`;
    assert.equal(
      kindOf(() => parseXml(ext)),
      'doctype-forbidden',
    );
  });

  it('refuses any DOCTYPE, even harmless, and lower-case/spaced variants', () => {
    assert.equal(
      kindOf(() => parseXml('<!DOCTYPE a><a/>')),
      'doctype-forbidden',
    );
    assert.equal(
      kindOf(() => parseXml('<!doctype a><a/>')),
      'doctype-forbidden',
    );
    assert.equal(
      kindOf(() => parseXml('<a/><!ENTITY x "y">')),
      'doctype-forbidden',
    );
    // but the text "<!DOCTYPE" inside a comment or CDATA is just text
    const d = parseXml('<a><!-- <!DOCTYPE x> --><![CDATA[<!ENTITY y "z">]]></a>');
    assert.deepEqual(d.root.elements, [
      { type: 'comment', comment: ' <!DOCTYPE x> ' },
      { type: 'cdata', cdata: '<!ENTITY y "z">' },
    ]);
  });

  it('refuses entity references that would need a DTD, accepts predefined and numeric ones', () => {
    assert.equal(
      kindOf(() => parseXml('<a>&lol;</a>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a x="&nbsp;"/>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a>&amp</a>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a>&#0;</a>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a>&#x1;</a>')),
      'not-well-formed',
    );
    const d = parseXml('<a x="&quot;&apos;&#65;">&lt;&gt;&amp;&#x1F600;&#233;</a>');
    assert.equal(attr(d.root, 'x'), `"'A`);
    assert.equal(textContent(d.root), '<>&😀é');
  });

  it('refuses invalid UTF-8 and non-UTF-8 encoding declarations', () => {
    assert.equal(
      kindOf(() => parseXml(Buffer.from([0x3c, 0x61, 0x3e, 0xc3, 0x28, 0x3c, 0x2f, 0x61, 0x3e]))),
      'not-utf-8',
    );
    // Latin-1 "é" as a single byte
    assert.equal(
      kindOf(() => parseXml(Buffer.from('<a>caf\xe9</a>', 'latin1'))),
      'not-utf-8',
    );
    // overlong encoding of '/'
    assert.equal(
      kindOf(() => parseXml(Buffer.from([0x3c, 0x61, 0xc0, 0xaf, 0x3e]))),
      'not-utf-8',
    );
    assert.equal(
      kindOf(() => parseXml('<?xml version="1.0" encoding="ISO-8859-1"?><a/>')),
      'not-utf-8',
    );
    // valid UTF-8 with a BOM is fine
    const d = parseXml(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<a>café</a>')]));
    assert.equal(textContent(d.root), 'café');
  });

  it('enforces the size limit in bytes', () => {
    assert.equal(
      kindOf(() => parseXml('<a>' + 'x'.repeat(100) + '</a>', { maxBytes: 100 })),
      'too-large',
    );
    assert.equal(
      kindOf(() => parseXml(Buffer.from('<a>' + 'é'.repeat(40) + '</a>'), { maxBytes: 80 })),
      'too-large',
    );
    assert.equal(
      kindOf(() => parseXml('<a>' + 'é'.repeat(40) + '</a>', { maxBytes: 80 })),
      'too-large',
    );
    assert.equal(parseXml('<a>' + 'é'.repeat(30) + '</a>', { maxBytes: 80 }).root.name, 'a');
    assert.equal(
      kindOf(() => parseXml('<a>' + 'x'.repeat(1024 * 1024) + '</a>')),
      'too-large',
    );
  });

  it('enforces the depth limit', () => {
    const deep = (n: number) => '<e>'.repeat(n) + '</e>'.repeat(n);
    assert.equal(parseXml(deep(64)).root.name, 'e');
    assert.equal(
      kindOf(() => parseXml(deep(65))),
      'too-deep',
    );
    assert.equal(
      kindOf(() => parseXml(deep(4), { maxDepth: 3 })),
      'too-deep',
    );
    assert.equal(
      kindOf(() => parseXml('<e><e><e><e/></e></e></e>', { maxDepth: 3 })),
      'too-deep',
    );
    assert.equal(
      kindOf(() => parseXml(deep(100000))),
      'too-deep',
    );
  });

  it('refuses malformed structure', () => {
    for (const bad of [
      '',
      '   ',
      'text',
      '<a/><b/>',
      '<a/>tail',
      'head<a/>',
      '<a><b></a>',
      '<a><b>',
      '<a',
      '<a x="1" x="2"/>',
      '<a x=1/>',
      '<a x="<"/>',
      '<a>]]></a>',
      '<a>\u0001</a>',
      '<a>\uFFFE</a>',
      '<a:b:c/>',
      '<a/><?xml version="1.0"?>',
      '<a><!-- x -- y --></a>',
      '<![CDATA[x]]><a/>',
      '<a x="1"y="2"/>',
      '<a __proto__="x"/>',
    ]) {
      assert.equal(
        kindOf(() => parseXml(bad)),
        'not-well-formed',
        JSON.stringify(bad),
      );
    }
    assert.equal(
      kindOf(() => parseXml('<a>\uD800</a>')),
      'not-well-formed',
    );
  });

  it('refuses undefined prefixes and illegal namespace declarations', () => {
    assert.equal(
      kindOf(() => parseXml('<p:a/>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a p:x="1"/>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a xmlns:p="urn:p"/><!-- --> ')),
      'no error',
    );
    assert.equal(
      kindOf(() => parseXml('<a><b xmlns:p="urn:p"/><p:c/></a>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a xmlns:p=""/>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a xmlns:xmlns="urn:x"/>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a xmlns:xml="urn:x"/>')),
      'not-well-formed',
    );
    assert.equal(
      kindOf(() => parseXml('<a xmlns:p="urn:u" xmlns:q="urn:u" p:x="1" q:x="2"/>')),
      'not-well-formed',
    );
    // the xml prefix is always bound
    assert.equal(attr(parseXml('<a xml:lang="en"/>').root, 'xml:lang'), 'en');
    // unprefixed and prefixed attribute with the same local name are distinct
    assert.equal(
      kindOf(() => parseXml('<a xmlns:p="urn:u" x="1" p:x="2"/>')),
      'no error',
    );
  });
});

describe('parseXml: tree shape', () => {
  it('keeps the element format of xml-js, drops ignorable whitespace, keeps mixed content', () => {
    const d = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c -->\n<a xmlns="urn:x">\n <b x="1">t &amp; u </b>\n <c>  </c>\n <d>x <e/> y</d>\n</a>\n<?pi after?>',
    );
    assert.deepEqual(d, {
      declaration: { attributes: { version: '1.0', encoding: 'UTF-8' } },
      root: {
        type: 'element',
        name: 'a',
        attributes: { xmlns: 'urn:x' },
        elements: [
          { type: 'element', name: 'b', attributes: { x: '1' }, elements: [{ type: 'text', text: 't & u ' }] },
          { type: 'element', name: 'c' },
          {
            type: 'element',
            name: 'd',
            elements: [
              { type: 'text', text: 'x ' },
              { type: 'element', name: 'e' },
              { type: 'text', text: ' y' },
            ],
          },
        ],
      },
    });
  });

  it('keeps whitespace text between children when the element has other text', () => {
    const d = parseXml('<p>a<b/> <i/>c</p>');
    assert.deepEqual(d.root.elements, [
      { type: 'text', text: 'a' },
      { type: 'element', name: 'b' },
      { type: 'text', text: ' ' },
      { type: 'element', name: 'i' },
      { type: 'text', text: 'c' },
    ]);
  });

  it('normalises line ends and attribute whitespace per XML 1.0', () => {
    const d = parseXml('<a x="1\t2\r\n3" y="4&#10;5&#9;6">l1\r\nl2\rl3</a>');
    assert.equal(attr(d.root, 'x'), '1 2 3');
    assert.equal(attr(d.root, 'y'), '4\n5\t6');
    assert.equal(textContent(d.root), 'l1\nl2\nl3');
  });

  it('attr() reads own properties only', () => {
    const d = parseXml('<a constructor="c"/>');
    assert.equal(attr(d.root, 'constructor'), 'c');
    assert.equal(attr(parseXml('<a/>').root, 'constructor'), undefined);
    assert.equal(attr(parseXml('<a b="1"/>').root, 'toString'), undefined);
  });
});

describe('serializeXml', () => {
  it('escapes text and attribute values', () => {
    const el: XmlElement = {
      type: 'element',
      name: 'a',
      attributes: { x: `<&>"'\t\n\r` },
      elements: [{ type: 'text', text: `<&>"' ]]> \r\n` }],
    };
    const s = serializeXml(el);
    assert.equal(s, `<a x="&lt;&amp;&gt;&quot;'&#9;&#10;&#13;">&lt;&amp;&gt;"' ]]&gt; &#13;\n</a>`);
    const back = parseXml(s).root;
    assert.equal(attr(back, 'x'), `<&>"'\t\n\r`);
    assert.equal(textContent(back), `<&>"' ]]> \r\n`);
  });

  it('replaces characters XML cannot carry with U+FFFD', () => {
    const s = serializeXml({
      type: 'element',
      name: 'a',
      attributes: { v: 'x\u0000y' },
      elements: [{ type: 'text', text: 'b\u0007c' }],
    });
    assert.equal(s, '<a v="x\uFFFDy">b\uFFFDc</a>');
    assert.equal(parseXml(s).root.name, 'a');
  });

  it('writes the declaration on request and splits "]]>" in CDATA', () => {
    const doc = parseXml('<a><![CDATA[x]]></a>');
    doc.root.elements = [{ type: 'cdata', cdata: 'p]]>q' }];
    assert.equal(serializeXml(doc), '<?xml version="1.0" encoding="UTF-8"?><a><![CDATA[p]]]]><![CDATA[>q]]></a>');
    assert.equal(serializeXml(doc, { declaration: false }), '<a><![CDATA[p]]]]><![CDATA[>q]]></a>');
    assert.equal(
      serializeXml(doc.root, { declaration: true }).startsWith('<?xml version="1.0" encoding="UTF-8"?><a>'),
      true,
    );
    assert.equal(textContent(parseXml(serializeXml(doc)).root), 'p]]>q');
  });

  it('refuses to write names that are not QNames', () => {
    assert.throws(() => serializeXml({ type: 'element', name: 'a b' }), XmlError);
    assert.throws(() => serializeXml({ type: 'element', name: 'a', attributes: { 'x"y': '1' } }), XmlError);
  });

  it('round-trips the RFC 4826 resource-lists document', () => {
    const d1 = parseXml(RFC4826_CLOSE_FRIENDS);
    const s = serializeXml(d1);
    const d2 = parseXml(s);
    assert.deepEqual(d2, d1);
    assert.equal(serializeXml(d2), s);
    const list = childElements(d1.root)[0]!;
    assert.equal(attr(list, 'name'), 'close-friends');
    const entries = childElements(list);
    assert.deepEqual(
      entries.map((e) => [e.name, attr(e, 'uri') ?? attr(e, 'anchor'), textContent(e)]),
      [
        ['entry', 'sip:joe@example.com', 'Joe Smith'],
        ['entry', 'sip:nancy@example.com', 'Nancy Gross'],
        [
          'external',
          'http://xcap.example.org/resource-lists/users/sip:a@example.org/index/~~/resource-lists/list%5b@name=%22mkting%22%5d',
          'Marketing',
        ],
      ],
    );
  });

  it('round-trips the RFC 5025 pres-rules document', () => {
    const d1 = parseXml(RFC5025_PRES_RULES);
    const d2 = parseXml(serializeXml(d1));
    assert.deepEqual(d2, d1);
    const scope = NamespaceScope.root().child(d1.root);
    const rule = findChildren(d1.root, scope, xmlNamespaces.commonPolicy, 'rule')[0]!;
    assert.equal(attr(rule, 'id'), 'a');
    const tr = findChildren(rule, scope, xmlNamespaces.commonPolicy, 'transformations')[0]!;
    const schemes = findChildren(
      findChildren(tr, scope, xmlNamespaces.presRules, 'provide-services')[0]!,
      scope,
      xmlNamespaces.presRules,
      'service-uri-scheme',
    );
    assert.deepEqual(schemes.map(textContent), ['sip', 'mailto']);
    const unk = findChildren(tr, scope, xmlNamespaces.presRules, 'provide-unknown-attribute')[0]!;
    assert.equal(attr(unk, 'ns'), 'urn:vendor-specific:foo-namespace');
    assert.equal(attr(unk, 'name'), 'foo');
    assert.equal(textContent(unk), 'true');
  });
});

describe('namespaces', () => {
  const DOC = `<r xmlns="urn:default" xmlns:a="urn:a1">
    <a:x a:attr="1" plain="2"/>
    <y xmlns:a="urn:a2">
      <a:x/>
      <z xmlns="">
        <w/>
        <a:x xmlns:a="urn:a3"/>
      </z>
      <q xmlns="urn:other"/>
    </y>
  </r>`;

  it('resolves default namespaces and redeclared prefixes', () => {
    const d = parseXml(DOC);
    const s0 = NamespaceScope.root();
    assert.equal(s0.resolve(undefined), undefined);
    assert.equal(s0.resolve('xml'), xmlNamespaces.xml);
    const sr = s0.child(d.root);
    assert.deepEqual(sr.expand('r'), { ns: 'urn:default', local: 'r' });
    assert.deepEqual(sr.expand('a:x'), { ns: 'urn:a1', local: 'x' });
    assert.deepEqual(sr.expand('b:x'), { ns: undefined, local: 'x' });
    assert.deepEqual([...sr.bindings()].sort(), [
      ['', 'urn:default'],
      ['a', 'urn:a1'],
    ]);
    const [x, y] = childElements(d.root) as [XmlElement, XmlElement];
    assert.equal(attrNS(x, sr, 'urn:a1', 'attr'), '1');
    assert.equal(attrNS(x, sr, undefined, 'plain'), '2');
    assert.equal(attrNS(x, sr, 'urn:default', 'plain'), undefined);
    assert.deepEqual(sr.expandAttribute('plain'), { ns: undefined, local: 'plain' });

    const sy = sr.child(y);
    assert.equal(sy.resolve('a'), 'urn:a2');
    assert.equal(sy.resolve(undefined), 'urn:default');
    const [ax, z, q] = childElements(y) as [XmlElement, XmlElement, XmlElement];
    assert.deepEqual(sy.child(ax).expand(ax.name), { ns: 'urn:a2', local: 'x' });
    const sz = sy.child(z);
    assert.equal(sz.resolve(undefined), undefined);
    assert.equal(sz.bindings().has(''), false);
    const [w, ax3] = childElements(z) as [XmlElement, XmlElement];
    assert.deepEqual(sz.child(w).expand(w.name), { ns: undefined, local: 'w' });
    assert.deepEqual(sz.child(ax3).expand(ax3.name), { ns: 'urn:a3', local: 'x' });
    assert.deepEqual(sy.child(q).expand(q.name), { ns: 'urn:other', local: 'q' });
    assert.equal(sy.prefixFor('urn:a2'), 'a');
    assert.equal(sy.prefixFor('urn:a1'), undefined);
    assert.equal(sy.prefixFor('urn:default'), '');
  });

  it('findChildren matches expanded names, with the scope of the element or of its parent', () => {
    const d = parseXml(DOC);
    const s0 = NamespaceScope.root();
    const sr = s0.child(d.root);
    assert.equal(findChildren(d.root, s0, 'urn:a1', 'x').length, 1);
    assert.equal(findChildren(d.root, sr, 'urn:a1', 'x').length, 1);
    assert.equal(findChildren(d.root, sr, 'urn:a2', 'x').length, 0);
    const y = findChildren(d.root, sr, 'urn:default', 'y')[0]!;
    assert.equal(findChildren(y, sr, 'urn:a2', 'x').length, 1);
    // z undeclares the default namespace, which applies to its own name
    assert.equal(findChildren(y, sr, 'urn:default', 'z').length, 0);
    assert.equal(findChildren(y, sr, undefined, 'z').length, 1);
    assert.equal(findChildren(y, sr, 'urn:other', 'q').length, 1);
    assert.equal(findChildren(y, sr, 'urn:default', 'q').length, 0);
    const z = findChildren(y, sr, undefined, 'z')[0]!;
    assert.equal(findChildren(z, sr.child(y), undefined, 'w').length, 1);
    assert.equal(findChildren(z, sr.child(y), 'urn:a3', 'x').length, 1);
  });

  it('localName / prefixOf', () => {
    assert.equal(localName({ type: 'element', name: 'cp:rule' }), 'rule');
    assert.equal(prefixOf({ type: 'element', name: 'cp:rule' }), 'cp');
    assert.equal(localName('entry'), 'entry');
    assert.equal(prefixOf('entry'), undefined);
  });

  it('lists the project namespaces', () => {
    assert.equal(xmlNamespaces.resourceLists, 'urn:ietf:params:xml:ns:resource-lists');
    assert.equal(xmlNamespaces.omaGroups, 'urn:oma:xml:poc:list-service');
    assert.equal(xmlNamespaces.omaPresRules, 'urn:oma:xml:xdm:common-policy');
    assert.equal(xmlNamespaces.pidfDiff, 'urn:ietf:params:xml:ns:pidf-diff');
    assert.equal(xmlNamespaces.xcapError, 'urn:ietf:params:xml:ns:xcap-error');
  });
});
