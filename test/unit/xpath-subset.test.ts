import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseXml } from '../../as/src/xml/xml-tree.js';
import {
  MAX_XPATH_LENGTH,
  UnsupportedXPath,
  compileXPath,
  selectNodes,
  stringValue,
  xpathNumber,
  xpathTree,
  type XPathNode,
} from '../../as/src/presence/filters/xpath-subset.js';

const PIDF = 'urn:ietf:params:xml:ns:pidf';
const RPID = 'urn:ietf:params:xml:ns:pidf:rpid';
const DM = 'urn:ietf:params:xml:ns:pidf:data-model';
const WI = 'urn:ietf:params:xml:ns:watcherinfo';

const B = new Map([
  ['pidf', PIDF],
  ['rpid', RPID],
  ['dm', DM],
  ['wi', WI],
]);

// The presence document of RFC 4660 section 7.1 plus a person, in our canonical layout.
const PRESENCE = parseXml(
  `<?xml version="1.0" encoding="UTF-8"?>` +
    `<presence xmlns="${PIDF}" xmlns:dm="${DM}" xmlns:rpid="${RPID}" entity="sip:presentity@example.com">` +
    `<tuple id="432sd"><status><basic>closed</basic></status><rpid:class>IM</rpid:class><contact priority="0.5">im:presentity@example.com</contact></tuple>` +
    `<tuple id="thr76jk"><status><basic>open</basic></status><rpid:class>voice</rpid:class><contact>tel:2224055555@example.com</contact><note>on the road</note></tuple>` +
    `<dm:person id="p1"><rpid:activities><rpid:busy/></rpid:activities></dm:person>` +
    `</presence>`,
).root;

// The watcher information document of RFC 4660 section 7.2.
const WINFO = parseXml(
  `<watcherinfo xmlns="${WI}" version="0" state="full">` +
    `<watcher-list resource="sip:presentity@example.com" package="presence">` +
    `<watcher status="active" id="a" duration-subscribed="509" expiration="20" event="approved">sip:watcherA@example.com</watcher>` +
    `<watcher status="pending" id="b" duration-subscribed="501" expiration="100" event="subscribe">sip:watcherB@example.com</watcher>` +
    `<watcher status="terminated" id="c" duration-subscribed="500" expiration="0" event="rejected">sip:watcherC@example.com</watcher>` +
    `<watcher status="active" id="d" duration-subscribed="20" expiration="30" event="approved">sip:watcherD@example.com</watcher>` +
    `</watcher-list></watcherinfo>`,
).root;

const presence = xpathTree(PRESENCE);
const winfo = xpathTree(WINFO);

function sel(expr: string, tree = presence, bindings: ReadonlyMap<string, string> = B): XPathNode[] {
  return compileXPath(expr, bindings).select(tree);
}
function values(expr: string, tree = presence, bindings: ReadonlyMap<string, string> = B): string[] {
  return sel(expr, tree, bindings).map(stringValue);
}
function ids(expr: string, tree = winfo): string[] {
  return sel(expr, tree).map((n) => (n.kind === 'element' ? (n.element.attributes?.['id'] ?? '?') : `@${n.name}`));
}
function unsupported(expr: string, bindings: ReadonlyMap<string, string> = B): UnsupportedXPath {
  try {
    compileXPath(expr, bindings);
  } catch (e) {
    assert.ok(e instanceof UnsupportedXPath, `expected UnsupportedXPath for ${expr}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected UnsupportedXPath for ${expr}`);
}

describe('xpath-subset: location paths', () => {
  it('absolute child paths', () => {
    assert.deepEqual(values('/pidf:presence/pidf:tuple/pidf:status/pidf:basic'), ['closed', 'open']);
    assert.equal(sel('/pidf:presence').length, 1);
    assert.deepEqual(sel('/pidf:tuple'), [], 'the first step matches the root element only');
  });

  it('// descendant steps, at the start and in the middle', () => {
    assert.deepEqual(values('//pidf:basic'), ['closed', 'open']);
    assert.deepEqual(values('/pidf:presence//rpid:class'), ['IM', 'voice']);
    assert.equal(sel('//pidf:presence').length, 1, '// includes the root element');
    assert.equal(sel('//rpid:busy').length, 1);
  });

  it('* and prefix:* wildcards', () => {
    assert.deepEqual(values('/*/*/pidf:status/*'), ['closed', 'open']);
    assert.deepEqual(values('/pidf:presence/pidf:tuple/rpid:*'), ['IM', 'voice']);
    assert.equal(sel('/pidf:presence/*').length, 3);
  });

  it('attribute as the last step, including after //', () => {
    assert.deepEqual(values('//pidf:tuple/@id'), ['432sd', 'thr76jk']);
    assert.deepEqual(values('/pidf:presence/@entity'), ['sip:presentity@example.com']);
    assert.deepEqual(values('//@status', winfo), ['active', 'pending', 'terminated', 'active']);
    assert.deepEqual(values('//pidf:contact/@*'), ['0.5']);
  });

  it('namespace declarations are not attributes', () => {
    const all = sel('/pidf:presence/@*');
    assert.deepEqual(
      all.map((n) => (n.kind === 'attribute' ? n.name : '')),
      ['entity'],
    );
  });

  it('. and .. steps', () => {
    assert.deepEqual(values('//pidf:basic/../../@id'), ['432sd', 'thr76jk']);
    assert.deepEqual(values('//pidf:basic/.'), ['closed', 'open']);
  });

  it('| unions come back in document order without duplicates', () => {
    const r = sel('//pidf:contact | //pidf:basic | //pidf:basic');
    assert.deepEqual(r.map(stringValue), ['closed', 'im:presentity@example.com', 'open', 'tel:2224055555@example.com']);
  });

  it('tolerates whitespace and line breaks between tokens (RFC examples wrap expressions)', () => {
    assert.deepEqual(ids(`/wi:watcherinfo/wi:watcher-list[@package="presence"]/\n   wi:watcher[@status="active"]`), [
      'a',
      'd',
    ]);
  });
});

describe('xpath-subset: predicates', () => {
  it('[@attr="v"] and [@attr=\'v\']', () => {
    assert.deepEqual(ids('//wi:watcher[@status="pending"]'), ['b']);
    assert.deepEqual(ids("//wi:watcher[@status='active']"), ['a', 'd']);
  });

  it('[child="v"] and multi-step relative paths (RFC 4660 7.1.2)', () => {
    assert.deepEqual(values('//pidf:tuple[rpid:class="IM"]/pidf:contact'), ['im:presentity@example.com']);
    assert.deepEqual(values('//pidf:tuple[pidf:status/pidf:basic="open"]/rpid:class'), ['voice']);
    assert.deepEqual(values('//pidf:tuple/pidf:status[pidf:basic="open"]/pidf:basic'), ['open']);
    assert.deepEqual(values('/pidf:presence/pidf:tuple[*/pidf:basic="closed"]/@id'), ['432sd']);
  });

  it('or / and / parentheses (RFC 4661 6.1, RFC 4660 7.2.3)', () => {
    assert.deepEqual(
      values(
        '/pidf:presence/pidf:tuple[rpid:class="IM" or rpid:class="SMS"\n or rpid:class="MMS"]/pidf:status/pidf:basic',
      ),
      ['closed'],
    );
    assert.deepEqual(ids('//wi:watcher[@status="terminated" and @event="rejected"]'), ['c']);
    assert.deepEqual(ids('//wi:watcher[(@status="active" or @status="pending") and @expiration="100"]'), ['b']);
  });

  it('numeric comparisons (RFC 4660 7.2.2, RFC 4661 section 5)', () => {
    assert.deepEqual(ids('/wi:watcherinfo/wi:watcher-list[@package="presence"]/wi:watcher[@duration-subscribed>500]'), [
      'a',
      'b',
    ]);
    assert.deepEqual(ids('//wi:watcher[@duration-subscribed<500]'), ['d']);
    assert.deepEqual(ids('//wi:watcher[@duration-subscribed>=500]'), ['a', 'b', 'c']);
    assert.deepEqual(ids('//wi:watcher[@expiration=20]'), ['a']);
    assert.deepEqual(ids('//wi:watcher[500 < @duration-subscribed]'), ['a', 'b'], 'literal on the left');
  });

  it('!= is true when some node differs (XPath 1.0)', () => {
    assert.deepEqual(ids('//wi:watcher[@status!="active"]'), ['b', 'c']);
  });

  it('[n] and [last()] positions, per parent after //', () => {
    assert.deepEqual(ids('//wi:watcher[2]'), ['b']);
    assert.deepEqual(ids('//wi:watcher[last()]'), ['d']);
    assert.deepEqual(values('//pidf:tuple[1]/@id'), ['432sd']);
    assert.deepEqual(values('/pidf:presence/*[3]/@id'), ['p1']);
  });

  it('predicates apply in turn: positions restart after each', () => {
    assert.deepEqual(ids('//wi:watcher[@status="active"][2]'), ['d']);
    assert.deepEqual(ids('//wi:watcher[2][@status="active"]'), []);
  });

  it('[path] alone tests existence', () => {
    assert.deepEqual(values('//pidf:tuple[pidf:note]/@id'), ['thr76jk']);
    assert.deepEqual(values('//pidf:contact[@priority]'), ['im:presentity@example.com']);
  });

  it('[. = "v"] compares the context node itself', () => {
    assert.deepEqual(values('//pidf:basic[.="open"]/../../@id'), ['thr76jk']);
  });
});

describe('xpath-subset: names and namespaces (RFC 4661 section 5)', () => {
  it('an unprefixed name is in no namespace: it does not match PIDF elements', () => {
    assert.deepEqual(sel('/presence/tuple'), []);
    assert.deepEqual(sel('//basic'), []);
  });

  it('matches no-namespace documents', () => {
    const t = xpathTree(parseXml('<a><b x="1">one</b><b x="2">two</b></a>').root);
    assert.deepEqual(values('/a/b[@x="2"]', t, new Map()), ['two']);
  });

  it('an ns-binding of the empty prefix names unprefixed element names (not attributes)', () => {
    const withDefault = new Map([['', PIDF]]);
    assert.deepEqual(values('/presence/tuple/status/basic', presence, withDefault), ['closed', 'open']);
    assert.deepEqual(values('//tuple/@id', presence, withDefault), ['432sd', 'thr76jk']);
  });

  it('the xml prefix is always bound', () => {
    const t = xpathTree(parseXml(`<p xmlns="${PIDF}"><note xml:lang="en">hi</note></p>`).root);
    assert.deepEqual(values('//pidf:note/@xml:lang', t), ['en']);
  });

  it('prefixes of the document do not matter, only the bindings', () => {
    const t = xpathTree(parseXml(`<x:presence xmlns:x="${PIDF}" entity="sip:a@b"><x:tuple id="t"/></x:presence>`).root);
    assert.deepEqual(values('/pidf:presence/pidf:tuple/@id', t), ['t']);
  });
});

describe('xpath-subset: outside the subset', () => {
  it('throws UnsupportedXPath with a position', () => {
    const e = unsupported('//pidf:tuple/text()');
    assert.ok(e.position > 0);
    assert.equal(e.expression, '//pidf:tuple/text()');
  });

  for (const expr of [
    'pidf:tuple', // relative
    '/',
    '',
    '/child::pidf:presence',
    '//pidf:tuple[contains(pidf:note, "x")]',
    '//pidf:tuple[not(pidf:note)]',
    '//pidf:tuple[$v]',
    '//pidf:tuple[1 + 1]',
    '//pidf:tuple[pidf:status[pidf:basic]]',
    '//pidf:tuple[pidf:note = pidf:contact]',
    '//pidf:tuple["x"]',
    '//@id/pidf:x',
    '//pidf:tuple[@id="x"',
    '//pidf:tuple[@id="x]',
    '//pidf:tuple]',
    '//unbound:tuple',
    '//pidf:tuple[last() = 1]',
    '/pidf:presence/..[1]',
  ]) {
    it(`refuses ${JSON.stringify(expr)}`, () => {
      unsupported(expr);
    });
  }

  it('refuses overlong expressions', () => {
    unsupported(`/${'a/'.repeat(MAX_XPATH_LENGTH)}b`);
  });

  it('names the unbound prefix', () => {
    assert.match(unsupported('//x:tuple').message, /prefix "x" is not bound/);
  });
});

describe('xpath-subset: helpers', () => {
  it('selectNodes accepts an element or a tree', () => {
    assert.equal(selectNodes(PRESENCE, '//pidf:tuple', B).length, 2);
    assert.equal(selectNodes(presence, '//pidf:tuple', B).length, 2);
  });

  it('xpathNumber follows XPath number()', () => {
    assert.equal(xpathNumber(' 509 '), 509);
    assert.equal(xpathNumber('-1.5'), -1.5);
    assert.ok(Number.isNaN(xpathNumber('1e3')));
    assert.ok(Number.isNaN(xpathNumber('')));
  });

  it('a compiled expression is reusable across documents', () => {
    const x = compileXPath('//pidf:basic', B);
    const other = xpathTree(
      parseXml(
        `<presence xmlns="${PIDF}" entity="sip:a@b"><tuple id="z"><status><basic>open</basic></status></tuple></presence>`,
      ).root,
    );
    assert.equal(x.select(presence).length, 2);
    assert.equal(x.select(other).length, 1);
    assert.equal(x.source, '//pidf:basic');
  });
});
