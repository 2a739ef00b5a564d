import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  NodeSelectorError,
  XcapUriError,
  encodeXcapPath,
  nodeUri,
  parseNodeSelector,
  parseXcapUri,
  parseXmlnsQuery,
  selectorPrefixText,
  selectorText,
} from '../../as/src/xdm/xcap-uri.js';

const RL = 'urn:ietf:params:xml:ns:resource-lists';
const WI = 'urn:ietf:params:xml:ns:watcherinfo';

function uriError(fn: () => unknown): { kind: string; status: number } {
  try {
    fn();
  } catch (e) {
    if (e instanceof XcapUriError) return { kind: e.kind, status: e.status };
    if (e instanceof NodeSelectorError) return { kind: 'selector', status: e.status };
    throw e;
  }
  return { kind: 'none', status: 0 };
}

describe('parseXcapUri: document selector', () => {
  it('parses the users tree with an encoded node selector (RFC 4825 section 6 style)', () => {
    const path =
      '/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d/entry%5b1%5d/@uri';
    const u = parseXcapUri(path, '/xcap-root', { defaultNamespace: RL });
    assert.equal(u.auid, 'resource-lists');
    assert.equal(u.tree, 'users');
    assert.equal(u.xui, 'sip:alice@example.com');
    assert.equal(u.documentPath, 'index');
    assert.deepEqual(u.documentSegments, ['index']);
    assert.equal(u.documentSelectorRaw, '/xcap-root/resource-lists/users/sip:alice@example.com/index');
    assert.equal(u.raw, path);
    assert.equal(u.nodeSelectorText, 'resource-lists/list[@name="friends"]/entry[1]/@uri');
    assert.deepEqual(u.nodeSelector, {
      steps: [
        { name: { ns: RL, local: 'resource-lists' }, text: 'resource-lists' },
        {
          name: { ns: RL, local: 'list' },
          attr: { name: { local: 'name' }, value: 'friends' },
          text: 'list[@name="friends"]',
        },
        { name: { ns: RL, local: 'entry' }, position: 1, text: 'entry[1]' },
      ],
      terminal: { kind: 'attribute', name: { local: 'uri' }, text: '@uri' },
    });
  });

  it('parses the global tree, nested document paths and XCAP roots at the top', () => {
    const g = parseXcapUri('/services/xcap-caps/global/index', '/services');
    assert.equal(g.tree, 'global');
    assert.equal(g.xui, undefined);
    assert.equal(g.documentPath, 'index');
    assert.equal(g.nodeSelector, undefined);

    const d = parseXcapUri('/pres-rules/users/sip:bob@example.com/dir/sub/doc.xml', '');
    assert.equal(d.auid, 'pres-rules');
    assert.equal(d.documentPath, 'dir/sub/doc.xml');
    assert.deepEqual(d.documentSegments, ['dir', 'sub', 'doc.xml']);

    const v = parseXcapUri('/org.openmobilealliance.pres-rules/users/sip:bob@example.com/pres-rules', '/');
    assert.equal(v.auid, 'org.openmobilealliance.pres-rules');
    assert.equal(v.documentPath, 'pres-rules');
  });

  it('percent-decodes each segment (XUI with escaped characters)', () => {
    const u = parseXcapUri('/x/resource-lists/users/sip%3Aalice%40example.com/my%20list.xml', '/x');
    assert.equal(u.xui, 'sip:alice@example.com');
    assert.equal(u.documentPath, 'my list.xml');
    const t = parseXcapUri('/x/resource-lists/users/tel:+1-555-0100/index', '/x');
    assert.equal(t.xui, 'tel:+1-555-0100');
  });

  it('treats an encoded ~~ segment as the separator', () => {
    const u = parseXcapUri('/resource-lists/users/sip:a@b/index/%7E%7E/resource-lists', '', {
      defaultNamespace: () => RL,
    });
    assert.equal(u.documentPath, 'index');
    assert.deepEqual(u.nodeSelector?.steps[0]?.name, { ns: RL, local: 'resource-lists' });
  });

  it('takes the query from the path or from opts.query', () => {
    const a = parseXcapUri('/rl/users/sip:a@b/index/~~/p:x?xmlns(p=urn:test)', '');
    assert.deepEqual(a.nodeSelector?.steps[0]?.name, { ns: 'urn:test', local: 'x', prefix: 'p' });
    assert.equal(a.namespaceBindings.get('p'), 'urn:test');
    const b = parseXcapUri('/rl/users/sip:a@b/index/~~/p:x', '', { query: 'xmlns(p=urn:other)' });
    assert.deepEqual(b.nodeSelector?.steps[0]?.name, { ns: 'urn:other', local: 'x', prefix: 'p' });
  });

  it('refuses paths outside the XCAP root (404)', () => {
    assert.deepEqual(
      uriError(() => parseXcapUri('/other/resource-lists/users/sip:a@b/index', '/xcap-root')),
      {
        kind: 'not-xcap-root',
        status: 404,
      },
    );
    assert.deepEqual(
      uriError(() => parseXcapUri('/xcap-rootx/resource-lists/users/sip:a@b/index', '/xcap-root')),
      {
        kind: 'not-xcap-root',
        status: 404,
      },
    );
  });

  it('refuses documents that cannot exist (404 bad-path)', () => {
    const bad = [
      '/r/resource-lists/users/sip:a@b/../index',
      '/r/resource-lists/users/sip:a@b/./index',
      '/r/resource-lists/users/sip:a@b/%2e%2e/index',
      '/r/resource-lists/users/../../etc/passwd',
      '/r/resource-lists/users/sip:a@b//index',
      '/r/resource-lists/users/sip:a@b/index/',
      '/r/resource-lists/users/sip:a@b/in%00dex',
      '/r/resource-lists/users/sip:a@b/a%5Cb',
      '/r/resource-lists/users/sip:a@b/a\\b',
      '/r/resource-lists/users/sip:a@b/a%2Fb',
      '/r/resource-lists/users/sip%2Fa@b/index',
      '/r/resource-lists/users/sip:a@b',
      '/r/resource-lists/users',
      '/r/resource-lists/global',
      '/r/resource-lists/other/index',
      '/r/resource-lists',
      '/r/',
      '/r',
      '/r/..%2F/users/x/index',
      '/r/.hidden/users/x/index',
    ];
    for (const p of bad)
      assert.deepEqual(
        uriError(() => parseXcapUri(p, '/r')),
        { kind: 'bad-path', status: 404 },
        p,
      );
  });

  it('refuses malformed encodings (400)', () => {
    assert.deepEqual(
      uriError(() => parseXcapUri('/r/rl/users/sip:a@b/in%zzdex', '/r')),
      { kind: 'bad-encoding', status: 400 },
    );
    assert.deepEqual(
      uriError(() => parseXcapUri('/r/rl/users/sip:a@b/%C3%28', '/r')),
      { kind: 'bad-encoding', status: 400 },
    );
    assert.deepEqual(
      uriError(() => parseXcapUri('/r/rl/users/sip:a@b/index/~~/a%5', '/r')),
      { kind: 'bad-encoding', status: 400 },
    );
  });

  it('refuses bad node selectors in a URI (400)', () => {
    assert.deepEqual(
      uriError(() => parseXcapUri('/r/rl/users/sip:a@b/index/~~/', '/r')),
      { kind: 'selector', status: 400 },
    );
    assert.deepEqual(
      uriError(() => parseXcapUri('/r/rl/users/sip:a@b/index/~~/q:x', '/r')),
      { kind: 'selector', status: 400 },
    );
  });
});

describe('xmlns() query', () => {
  it('parses several bindings, whitespace, escapes and percent-encoding', () => {
    const m = parseXmlnsQuery('xmlns(a=urn:namespace1-uri)xmlns(b=urn:namespace2-uri)');
    assert.deepEqual(
      [...m],
      [
        ['a', 'urn:namespace1-uri'],
        ['b', 'urn:namespace2-uri'],
      ],
    );
    assert.deepEqual(
      [...parseXmlnsQuery('xmlns(%20a%20=%20urn:x%20)%20xmlns(b=urn:y)')],
      [
        ['a', 'urn:x'],
        ['b', 'urn:y'],
      ],
    );
    assert.equal(parseXmlnsQuery('xmlns(a=urn:x^(1^)^^)').get('a'), 'urn:x(1)^');
    assert.equal(parseXmlnsQuery('xmlns(a=urn:one)xmlns(a=urn:two)').get('a'), 'urn:two');
    assert.equal(
      parseXmlnsQuery('xmlns(xml=http://www.w3.org/XML/1998/namespace)').get('xml'),
      'http://www.w3.org/XML/1998/namespace',
    );
  });

  it('refuses anything else (400 bad-query)', () => {
    for (const q of [
      'foo',
      'xmlns(a)',
      'xmlns(a=urn:x',
      'xmlns(a=)',
      'xmlns(=urn:x)',
      'xmlns(a:b=urn:x)',
      'xmlns(xml=urn:x)',
      'xmlns(xmlns=urn:x)',
      'xmlns(a=urn:x)junk',
      'xmlns(a=urn(x))',
      'xpointer(/a)',
      'xmlns(a=u^x)',
    ]) {
      assert.deepEqual(
        uriError(() => parseXmlnsQuery(q)),
        { kind: 'bad-query', status: 400 },
        q,
      );
    }
  });
});

describe('parseNodeSelector', () => {
  it('RFC 4825 section 6.3 watcherinfo examples', () => {
    const s = parseNodeSelector('watcherinfo/watcher-list/watcher[@id="8ajksjda7s"]', new Map(), WI);
    assert.deepEqual(
      s.steps.map((x) => x.name),
      [
        { ns: WI, local: 'watcherinfo' },
        { ns: WI, local: 'watcher-list' },
        { ns: WI, local: 'watcher' },
      ],
    );
    assert.deepEqual(s.steps[2]?.attr, { name: { local: 'id' }, value: '8ajksjda7s' });
    assert.equal(s.terminal, undefined);

    const a = parseNodeSelector('watcherinfo/watcher-list/watcher[@id="8ajksjda7s"]/@status', new Map(), WI);
    assert.deepEqual(a.terminal, { kind: 'attribute', name: { local: 'status' }, text: '@status' });

    const ns = parseNodeSelector('watcherinfo/watcher-list/namespace::*', new Map(), WI);
    assert.deepEqual(ns.terminal, { kind: 'namespace', text: 'namespace::*' });
    assert.equal(ns.steps.length, 2);
  });

  it('RFC 4825 section 6.3 namespace example: prefixes come from the query, not the document', () => {
    const u = parseXcapUri(
      '/test/users/sip:joe@example.com/index/~~/foo/a:bar/b:baz?xmlns(a=urn:namespace1-uri)xmlns(b=urn:namespace2-uri)',
      '',
      { defaultNamespace: 'urn:test:default-namespace' },
    );
    assert.deepEqual(
      u.nodeSelector?.steps.map((s) => s.name),
      [
        { ns: 'urn:test:default-namespace', local: 'foo' },
        { ns: 'urn:namespace1-uri', local: 'bar', prefix: 'a' },
        { ns: 'urn:namespace2-uri', local: 'baz', prefix: 'b' },
      ],
    );
  });

  it('accepts unencoded predicates, single quotes, and / inside values', () => {
    const u = parseXcapUri(
      `/rl/users/sip:a@b/index/~~/resource-lists/list[@name='fr/ends']/entry[@uri="sip:x@y;a=b/c"]`,
      '',
      {
        defaultNamespace: RL,
      },
    );
    assert.equal(u.nodeSelector?.steps.length, 3);
    assert.equal(u.nodeSelector?.steps[1]?.attr?.value, 'fr/ends');
    assert.equal(u.nodeSelector?.steps[2]?.attr?.value, 'sip:x@y;a=b/c');
  });

  it('decodes references in predicate values', () => {
    const s = parseNodeSelector('a[@n="x&quot;y&amp;z&#65;&lt;"]');
    assert.equal(s.steps[0]?.attr?.value, 'x"y&zA<');
    assert.equal(parseNodeSelector(`a[@n='it"s']`).steps[0]?.attr?.value, 'it"s');
  });

  it('wildcards, positions and both predicate orders', () => {
    const s = parseNodeSelector('*/list[2]/*[3]/entry[2][@uri="sip:a@b"]/entry[@uri="sip:c@d"][1]', new Map(), RL);
    assert.equal(s.steps[0]?.name, '*');
    assert.equal(s.steps[0]?.position, undefined);
    assert.equal(s.steps[1]?.position, 2);
    assert.equal(s.steps[2]?.name, '*');
    assert.equal(s.steps[2]?.position, 3);
    assert.equal(s.steps[3]?.position, 2);
    assert.equal(s.steps[3]?.attr?.value, 'sip:a@b');
    assert.equal(s.steps[3]?.predicateOrder, 'position-attr');
    assert.equal(s.steps[4]?.position, 1);
    assert.equal(s.steps[4]?.predicateOrder, 'attr-position');
    assert.equal(s.steps[1]?.predicateOrder, undefined);
  });

  it('unprefixed element names take the default namespace, unprefixed attributes none; prefixed ones resolve', () => {
    const b = new Map([['cp', 'urn:ietf:params:xml:ns:common-policy']]);
    const s = parseNodeSelector('cp:ruleset/cp:rule[@cp:id="a"]/@xml:lang', b, 'urn:ietf:params:xml:ns:pres-rules');
    assert.deepEqual(s.steps[1]?.attr?.name, { ns: 'urn:ietf:params:xml:ns:common-policy', local: 'id', prefix: 'cp' });
    assert.deepEqual(s.terminal, {
      kind: 'attribute',
      name: { ns: 'http://www.w3.org/XML/1998/namespace', local: 'lang', prefix: 'xml' },
      text: '@xml:lang',
    });
    assert.deepEqual(parseNodeSelector('x').steps[0]?.name, { local: 'x' });
  });

  it('refuses syntax errors, unsupported selectors and undefined prefixes (400)', () => {
    const bad = [
      '',
      'a//b',
      '/a',
      'a/',
      'a[',
      'a]',
      'a[1',
      'a[@x=y]',
      'a[@x="1]',
      'a[@x="1"]x',
      'a[@x="1"][@y="2"]',
      'a[1][2]',
      'a[foo]',
      'a[last()]',
      'a[@x="<"]',
      'a[@x="&foo;"]',
      'a[@x="a"b"]',
      'a[@="1"]',
      'a[@xmlns="u"]',
      '@x',
      'namespace::*',
      'a/@x/b',
      'a/namespace::*/b',
      'a/child::b',
      'a/text()',
      '1a',
      'a b',
      'p:a',
      'a/@p:x',
      'a[@p:x="1"]',
      'a/@xmlns',
      'a/@xmlns:p',
      'a/@*',
      'a:b:c',
    ];
    for (const t of bad) {
      assert.throws(
        () => parseNodeSelector(t, new Map([['q', 'urn:q']])),
        (e: unknown) => e instanceof NodeSelectorError && e.status === 400,
        t,
      );
    }
  });

  it('reproduces selector text and builds URIs', () => {
    const s = parseNodeSelector('resource-lists/list[@name="friends"]/entry[1]/@uri', new Map(), RL);
    assert.equal(selectorText(s), 'resource-lists/list[@name="friends"]/entry[1]/@uri');
    assert.equal(selectorPrefixText(s, 2), 'resource-lists/list[@name="friends"]');
    assert.equal(selectorPrefixText(s, 0), '');
    assert.equal(encodeXcapPath('resource-lists/list[@name="a b"]'), 'resource-lists/list%5B@name=%22a%20b%22%5D');
    assert.equal(
      nodeUri('http://xcap.example.com/resource-lists/users/sip:a@b/index', 'resource-lists/list[@name="friends"]'),
      'http://xcap.example.com/resource-lists/users/sip:a@b/index/~~/resource-lists/list%5B@name=%22friends%22%5D',
    );
    assert.equal(nodeUri('http://x/doc', ''), 'http://x/doc');
    // the encoded form parses back to the same selector
    const u = parseXcapUri('/rl/users/sip:a@b/index/~~/' + encodeXcapPath(selectorText(s)), '', {
      defaultNamespace: RL,
    });
    assert.deepEqual(u.nodeSelector, s);
  });
});
