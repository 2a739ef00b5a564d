import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type DocumentAddress,
  type DocumentLoader,
  type ResolveFailure,
  type ResolveOptions,
  type ResolvedList,
  parsePresListUri,
  resolveNamedList,
  resolveService,
} from '../../as/src/presence/rls/list-resolver.js';

const RL_NS = 'urn:ietf:params:xml:ns:resource-lists';
const ROOT = 'http://xcap.example.com:8080/xcap-root';
const ALICE = 'sip:alice@example.com';
const BOB = 'sip:bob@example.com';
/** These tests are about following references: every document is readable (authorization has its own test). */
const OPTS: ResolveOptions = { maxMembers: 100, maxDepth: 8, mayRead: () => true };

const rl = (lists: string): string =>
  `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="${RL_NS}">${lists}</resource-lists>`;
const rls = (services: string): string =>
  `<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="${RL_NS}">${services}</rls-services>`;
const key = (xui: string, path = 'index'): string => `resource-lists/users/${xui}/${path}`;
/** Absolute XCAP URI of a list, selector percent-encoded as clients send it. */
const listUri = (xui: string, ...names: string[]): string =>
  `${ROOT}/resource-lists/users/${xui}/index/~~/resource-lists/${names.map((n) => `list%5B@name=%22${n}%22%5D`).join('/')}`;

/** An in-memory loader over `documentKey`s that records every address asked for. */
function loader(docs: Record<string, string>): DocumentLoader & { asked: DocumentAddress[] } {
  const asked: DocumentAddress[] = [];
  const fn = async (ref: DocumentAddress): Promise<string | undefined> => {
    asked.push(ref);
    return docs[`${ref.auid}/${ref.tree}/${ref.xui}/${ref.path}`];
  };
  return Object.assign(fn, { asked });
}

function ok(r: ResolvedList | ResolveFailure | undefined): ResolvedList {
  assert.ok(r !== undefined && !('kind' in r), `expected a resolved list, got ${JSON.stringify(r)}`);
  return r;
}

function failed(
  r: ResolvedList | ResolveFailure | undefined,
  kind: ResolveFailure['kind'],
  detail?: RegExp,
): ResolveFailure {
  assert.ok(r !== undefined && 'kind' in r, `expected a failure, got ${JSON.stringify(r)}`);
  assert.equal(r.kind, kind, r.detail);
  if (detail) assert.match(r.detail, detail);
  return r;
}

const uris = (r: ResolvedList): string[] => r.members.map((m) => m.uri);

const aliceDoc = rl(
  '<list name="friends"><display-name>My friends</display-name>' +
    '<entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>' +
    '<list name="work"><entry uri="sip:carol@example.com"/><list name="deep"><entry uri="sip:dan@example.com"/></list></list>' +
    '<entry uri="sip:erin@example.com"/>' +
    '</list>' +
    '<list name="oma_buddylist"><entry uri="sip:frank@example.com"><display-name>Frank</display-name></entry></list>',
);

describe('resolveService: inline lists', () => {
  it('flattens an inline list with nested lists, keeping order, names and packages', async () => {
    const body = rls(
      '<service uri="sip:friends@example.com"><list name="x"><rl:display-name>Friends</rl:display-name>' +
        '<rl:entry uri="sip:bob@example.com"><rl:display-name>Bob</rl:display-name></rl:entry>' +
        '<rl:list name="inner"><rl:entry uri="sip:carol@example.com"/></rl:list>' +
        '<rl:entry uri=" sip:dan@example.com "/></list>' +
        '<packages><package>presence</package><package> reg </package></packages></service>' +
        '<service uri="sip:other@example.com"><list/></service>',
    );
    const load = loader({});
    // service URIs compare as the usage does: host case and URI parameters do not matter
    const r = ok(await resolveService(body, 'sip:friends@EXAMPLE.com;transport=tcp', load, OPTS));
    assert.deepEqual(r, {
      uri: 'sip:friends@EXAMPLE.com;transport=tcp',
      packages: ['presence', 'reg'],
      displayName: 'Friends',
      members: [
        { uri: 'sip:bob@example.com', displayName: 'Bob' },
        { uri: 'sip:carol@example.com' },
        { uri: 'sip:dan@example.com' },
      ],
      sources: [],
    });
    assert.equal(load.asked.length, 0);
    const other = ok(await resolveService(body, 'sip:other@example.com', load, OPTS));
    assert.deepEqual(other.packages, []);
    assert.deepEqual(other.members, []);
    assert.equal(other.displayName, undefined);
  });

  it('answers undefined for a service the document does not have, unreadable for a bad document', async () => {
    const load = loader({});
    assert.equal(
      await resolveService(rls('<service uri="sip:a@example.com"><list/></service>'), 'sip:b@example.com', load, OPTS),
      undefined,
    );
    failed(await resolveService('<rls-services', 'sip:a@example.com', load, OPTS), 'unreadable');
    failed(await resolveService(rl(''), 'sip:a@example.com', load, OPTS), 'unreadable', /not an rls-services document/);
    failed(
      await resolveService(rls('<service uri="sip:a@example.com"/>'), 'sip:a@example.com', load, OPTS),
      'unreadable',
      /neither/,
    );
    failed(
      await resolveService('<!DOCTYPE x [<!ENTITY e "e">]><rls-services/>', 'sip:a@example.com', load, OPTS),
      'unreadable',
    );
  });
});

describe('resolveService: references', () => {
  it('follows a resource-list reference into a nested list (percent-encoded selector, XCAP root prefix)', async () => {
    const load = loader({ [key(ALICE)]: aliceDoc });
    const body = rls(
      `<service uri="sip:work@example.com"><resource-list>\n  ${listUri(ALICE, 'friends', 'work')}\n</resource-list></service>`,
    );
    const r = ok(await resolveService(body, 'sip:work@example.com', load, OPTS));
    assert.deepEqual(uris(r), ['sip:carol@example.com', 'sip:dan@example.com']);
    assert.deepEqual(r.sources, [key(ALICE)]);
    assert.deepEqual(load.asked, [{ auid: 'resource-lists', tree: 'users', xui: ALICE, path: 'index' }]);
  });

  it('accepts unencoded selectors, other schemes and hosts, no root path, and xmlns() bindings', async () => {
    const load = loader({ [key(ALICE)]: aliceDoc });
    const plain = `https://xcap.example.org/resource-lists/users/${ALICE}/index/~~/resource-lists/list[@name="friends"]`;
    const r = ok(
      await resolveService(
        rls(`<service uri="sip:f@example.com"><resource-list>${plain}</resource-list></service>`),
        'sip:f@example.com',
        load,
        OPTS,
      ),
    );
    assert.equal(r.displayName, 'My friends');
    assert.deepEqual(uris(r), [
      'sip:bob@example.com',
      'sip:carol@example.com',
      'sip:dan@example.com',
      'sip:erin@example.com',
    ]);
    const prefixed = `xcap://h/r/resource-lists/users/${encodeURIComponent(ALICE)}/index/~~/p:resource-lists/p:list%5B@name=%22oma_buddylist%22%5D?xmlns(p=${RL_NS})`;
    const r2 = ok(
      await resolveService(
        rls(`<service uri="sip:f@example.com"><resource-list>${prefixed}</resource-list></service>`),
        'sip:f@example.com',
        load,
        OPTS,
      ),
    );
    assert.deepEqual(r2.members, [{ uri: 'sip:frank@example.com', displayName: 'Frank' }]);
  });

  it('follows external anchors and entry-refs through the loader', async () => {
    const bobDoc = rl(
      '<list name="b"><entry uri="sip:carol@example.com"><display-name>Carol</display-name></entry>' +
        '<entry uri="sip:dan@example.com"><display-name>Dan (Bob\'s)</display-name></entry></list>',
    );
    const ref = (uri: string) =>
      `resource-lists/users/${BOB}/index/~~/resource-lists/list%5B@name=%22b%22%5D/entry%5B@uri=%22${uri}%22%5D`;
    const main = rl(
      `<list name="all"><entry uri="sip:zed@example.com"/><external anchor="${listUri(BOB, 'b')}"><display-name>ignored</display-name></external>` +
        `<entry uri="sip:yan@example.com"/></list>` +
        `<list name="refs"><entry-ref ref="${ref('sip:carol@example.com')}"/>` +
        `<entry-ref ref="${ref('sip:dan@example.com')}"><display-name>Dan</display-name></entry-ref></list>`,
    );
    const load = loader({ [key(ALICE)]: main, [key(BOB)]: bobDoc });
    const all = ok(await resolveNamedList(ALICE, 'all', 'sip:alice;pres-list=all@example.com', load, OPTS));
    assert.deepEqual(all.members, [
      { uri: 'sip:zed@example.com' },
      { uri: 'sip:carol@example.com', displayName: 'Carol' },
      { uri: 'sip:dan@example.com', displayName: "Dan (Bob's)" },
      { uri: 'sip:yan@example.com' },
    ]);
    assert.deepEqual(all.sources, [key(ALICE), key(BOB)]);
    const refs = ok(await resolveNamedList(ALICE, 'refs', 'sip:alice;pres-list=refs@example.com', load, OPTS));
    // the entry-ref's own display-name wins over the referenced entry's
    assert.deepEqual(refs.members, [
      { uri: 'sip:carol@example.com', displayName: 'Carol' },
      { uri: 'sip:dan@example.com', displayName: 'Dan' },
    ]);
    assert.deepEqual(refs.sources, [key(ALICE), key(BOB)]);
  });

  it("reads only documents the owner may read: another user's list is forbidden, and not even read", async () => {
    const load = loader({
      [key(ALICE)]: aliceDoc,
      [key(BOB)]: rl('<list name="b"><entry uri="sip:secret@example.com"/></list>'),
    });
    const asAlice: ResolveOptions = { ...OPTS, mayRead: (ref) => ref.tree === 'users' && ref.xui === ALICE };
    const direct = failed(
      await resolveService(
        rls(`<service uri="sip:s@example.com"><resource-list>${listUri(BOB, 'b')}</resource-list></service>`),
        'sip:s@example.com',
        load,
        asAlice,
      ),
      'forbidden',
      /sip:bob@example.com/,
    );
    assert.deepEqual(direct.sources, []);
    const viaExternal = rls(
      `<service uri="sip:s@example.com"><list><rl:external anchor="${listUri(BOB, 'b')}"/></list></service>`,
    );
    failed(await resolveService(viaExternal, 'sip:s@example.com', load, asAlice), 'forbidden');
    const entryRef = rls(
      `<service uri="sip:s@example.com"><list><rl:entry-ref ref="resource-lists/users/${BOB}/index/~~/resource-lists/list%5B@name=%22b%22%5D/entry%5B1%5D"/></list></service>`,
    );
    failed(await resolveService(entryRef, 'sip:s@example.com', load, asAlice), 'forbidden');
    assert.ok(!load.asked.some((a) => a.xui === BOB), "bob's document never read");
    // alice's own lists resolve as before
    ok(
      await resolveService(
        rls(`<service uri="sip:s@example.com"><resource-list>${listUri(ALICE, 'friends')}</resource-list></service>`),
        'sip:s@example.com',
        load,
        asAlice,
      ),
    );
  });

  it('reports missing documents and lists as bad references, with the documents read so far', async () => {
    const load = loader({ [key(ALICE)]: aliceDoc });
    const missingDoc = await resolveService(
      rls(`<service uri="sip:s@example.com"><resource-list>${listUri(BOB, 'b')}</resource-list></service>`),
      'sip:s@example.com',
      load,
      OPTS,
    );
    assert.deepEqual(
      failed(missingDoc, 'bad-reference', /no document resource-lists\/users\/sip:bob@example.com\/index/).sources,
      [key(BOB)],
    );
    const missingList = await resolveService(
      rls(`<service uri="sip:s@example.com"><resource-list>${listUri(ALICE, 'nope')}</resource-list></service>`),
      'sip:s@example.com',
      load,
      OPTS,
    );
    failed(missingList, 'bad-reference', /selects nothing/);
    const viaExternal = rls(
      `<service uri="sip:s@example.com"><list><rl:external anchor="${listUri(ALICE, 'friends', 'gone')}"/></list></service>`,
    );
    failed(await resolveService(viaExternal, 'sip:s@example.com', load, OPTS), 'bad-reference', /selects nothing/);
    const entryRef = rls(
      `<service uri="sip:s@example.com"><list><rl:entry-ref ref="resource-lists/users/${ALICE}/index/~~/resource-lists/list%5B@name=%22friends%22%5D/entry%5B@uri=%22sip:x@y%22%5D"/></list></service>`,
    );
    failed(await resolveService(entryRef, 'sip:s@example.com', load, OPTS), 'bad-reference', /selects nothing/);
  });

  it('refuses references that cannot be followed', async () => {
    const load = loader({
      [key(ALICE)]: aliceDoc,
      'resource-lists/global/index': aliceDoc,
      [`pres-rules/users/${ALICE}/index`]: aliceDoc,
    });
    const cases: Array<[string, RegExp]> = [
      [`<resource-list>not a uri</resource-list>`, /not an absolute XCAP URI/],
      [
        `<resource-list>${ROOT}/pres-rules/users/${ALICE}/index/~~/resource-lists/list%5B@name=%22friends%22%5D</resource-list>`,
        /not the XCAP URI of a resource-lists document/,
      ],
      [
        `<resource-list>${ROOT}/resource-lists/global/index/~~/resource-lists/list%5B@name=%22friends%22%5D</resource-list>`,
        /users tree/,
      ],
      [`<resource-list>${ROOT}/resource-lists/users/${ALICE}/index</resource-list>`, /does not select a list/],
      [
        `<resource-list>${ROOT}/resource-lists/users/${ALICE}/index/~~/resource-lists/list%5B@name=%22friends%22%5D/@name</resource-list>`,
        /does not select a list/,
      ],
      [
        `<resource-list>${ROOT}/resource-lists/users/${ALICE}/index/~~/resource-lists/list%5B@name=%22friends%22%5D/entry%5B1%5D</resource-list>`,
        /selects <entry>, not a list/,
      ],
      [
        `<resource-list>${ROOT}/resource-lists/users/${ALICE}/index/~~/resource-lists/list%5B@name=%22friends%22</resource-list>`,
        /unterminated predicate/,
      ],
      [
        `<resource-list>${ROOT}/resource-lists/users/${ALICE}/index/~~/resource-lists/list%ZZ</resource-list>`,
        /malformed percent-encoding/,
      ],
      [
        `<resource-list>${ROOT}/resource-lists/users/${ALICE}/index/~~/resource-lists/*</resource-list>`,
        /more than one element/,
      ],
      [
        `<list><rl:entry-ref ref="${ROOT}/resource-lists/users/${ALICE}/index/~~/resource-lists/list%5B1%5D/entry%5B1%5D"/></list>`,
        /must be relative/,
      ],
      [
        `<list><rl:entry-ref ref="resource-lists/users/${ALICE}/index/~~/resource-lists/list%5B1%5D"/></list>`,
        /selects <list>, not an entry/,
      ],
    ];
    for (const [content, detail] of cases) {
      const r = await resolveService(
        rls(`<service uri="sip:s@example.com">${content}</service>`),
        'sip:s@example.com',
        load,
        OPTS,
      );
      failed(r, 'bad-reference', detail);
    }
    // a loaded document that is not a resource-lists document
    const junk = loader({ [key(ALICE)]: '<resource-lists xmlns="urn:example:other"/>', [key(BOB)]: '<resource-lists' });
    failed(
      await resolveService(
        rls(`<service uri="sip:s@example.com"><resource-list>${listUri(ALICE, 'a')}</resource-list></service>`),
        'sip:s@example.com',
        junk,
        OPTS,
      ),
      'unreadable',
    );
    failed(
      await resolveService(
        rls(`<service uri="sip:s@example.com"><resource-list>${listUri(BOB, 'a')}</resource-list></service>`),
        'sip:s@example.com',
        junk,
        OPTS,
      ),
      'unreadable',
    );
  });
});

describe('resolution limits', () => {
  it('detects a list that refers to itself, and a cycle of two lists', async () => {
    const self = rl(
      `<list name="a"><entry uri="sip:x@example.com"/><external anchor="${listUri(ALICE, 'a')}"/></list>`,
    );
    failed(await resolveNamedList(ALICE, 'a', 'sip:l@example.com', loader({ [key(ALICE)]: self }), OPTS), 'loop');
    // the loop may also close from a nested list back to its ancestor
    const nested = rl(`<list name="a"><list name="n"><external anchor="${listUri(ALICE, 'a')}"/></list></list>`);
    failed(await resolveNamedList(ALICE, 'a', 'sip:l@example.com', loader({ [key(ALICE)]: nested }), OPTS), 'loop');
    const docs = {
      [key(ALICE)]: rl(
        `<list name="a"><entry uri="sip:x@example.com"/><external anchor="${listUri(BOB, 'b')}"/></list>`,
      ),
      [key(BOB)]: rl(
        `<list name="b"><entry uri="sip:y@example.com"/><external anchor="${listUri(ALICE, 'a')}"/></list>`,
      ),
    };
    const cycle = failed(
      await resolveService(
        rls(`<service uri="sip:s@example.com"><resource-list>${listUri(ALICE, 'a')}</resource-list></service>`),
        'sip:s@example.com',
        loader(docs),
        OPTS,
      ),
      'loop',
      /reached again/,
    );
    assert.deepEqual(cycle.sources, [key(ALICE), key(BOB)]);
  });

  it('does not take a list reached twice on different branches for a loop', async () => {
    const doc = rl(
      `<list name="top"><external anchor="${listUri(ALICE, 'shared')}"/><list name="x"><external anchor="${listUri(ALICE, 'shared')}"/></list>` +
        `<entry uri="sip:z@example.com"/></list><list name="shared"><entry uri="sip:s@example.com"/></list>`,
    );
    const r = ok(await resolveNamedList(ALICE, 'top', 'sip:l@example.com', loader({ [key(ALICE)]: doc }), OPTS));
    assert.deepEqual(uris(r), ['sip:s@example.com', 'sip:z@example.com']);
  });

  it('fails with loop when lists nest deeper than maxDepth', async () => {
    const load = loader({ [key(ALICE)]: aliceDoc });
    // friends > work > deep: three lists open at once
    ok(await resolveNamedList(ALICE, 'friends', 'sip:l@example.com', load, { ...OPTS, maxMembers: 10, maxDepth: 3 }));
    failed(
      await resolveNamedList(ALICE, 'friends', 'sip:l@example.com', load, { ...OPTS, maxMembers: 10, maxDepth: 2 }),
      'loop',
      /deeper than 2/,
    );
    // a > b > c through externals across two documents
    const chain = {
      [key(ALICE)]: rl(
        `<list name="a"><external anchor="${listUri(BOB, 'b')}"/></list><list name="c"><entry uri="sip:c@example.com"/></list>`,
      ),
      [key(BOB)]: rl(`<list name="b"><external anchor="${listUri(ALICE, 'c')}"/></list>`),
    };
    ok(
      await resolveNamedList(ALICE, 'a', 'sip:l@example.com', loader(chain), { ...OPTS, maxMembers: 10, maxDepth: 3 }),
    );
    failed(
      await resolveNamedList(ALICE, 'a', 'sip:l@example.com', loader(chain), { ...OPTS, maxMembers: 10, maxDepth: 2 }),
      'loop',
    );
  });

  it('fails with too-many past maxMembers distinct members; duplicates do not count', async () => {
    const doc = rl(
      '<list name="l"><entry uri="sip:a@x"/><entry uri="sip:b@x"/><list><entry uri="sip:a@x"/></list><entry uri="sip:c@x"/></list>',
    );
    const load = loader({ [key(ALICE)]: doc });
    ok(await resolveNamedList(ALICE, 'l', 'sip:l@x', load, { ...OPTS, maxMembers: 3, maxDepth: 4 }));
    failed(
      await resolveNamedList(ALICE, 'l', 'sip:l@x', load, { ...OPTS, maxMembers: 2, maxDepth: 4 }),
      'too-many',
      /more than 2/,
    );
  });

  it('de-duplicates members, first occurrence winning, through the canonical form', async () => {
    const doc = rl(
      '<list name="l"><entry uri="sip:Bob@Example.COM"><display-name>First</display-name></entry><entry uri="sip:carol@example.com"/>' +
        '<list><entry uri="sip:Bob@example.com"><display-name>Second</display-name></entry><entry uri="bogus"/></list>' +
        '<entry uri="sip:bob@example.com"/></list>',
    );
    const load = loader({ [key(ALICE)]: doc });
    const plain = ok(await resolveNamedList(ALICE, 'l', 'sip:l@x', load, OPTS));
    assert.deepEqual(uris(plain), [
      'sip:Bob@Example.COM',
      'sip:carol@example.com',
      'sip:Bob@example.com',
      'bogus',
      'sip:bob@example.com',
    ]);
    const canonical = (u: string): string | undefined => {
      const m = /^sip:([^@]+)@(.+)$/i.exec(u);
      return m ? `sip:${m[1]}@${(m[2] ?? '').toLowerCase()}` : undefined;
    };
    const r = ok(await resolveNamedList(ALICE, 'l', 'sip:l@x', load, { ...OPTS, canonical }));
    assert.deepEqual(r.members, [
      { uri: 'sip:Bob@example.com', displayName: 'First' },
      { uri: 'sip:carol@example.com' },
      { uri: 'sip:bob@example.com' },
    ]);
  });
});

describe('resolveNamedList (OMA buddy lists)', () => {
  it("resolves a top-level list of the owner's index document", async () => {
    const load = loader({ [key(ALICE)]: aliceDoc });
    const r = ok(
      await resolveNamedList(ALICE, 'oma_buddylist', 'sip:alice;pres-list=oma_buddylist@example.com', load, OPTS),
    );
    assert.deepEqual(r, {
      uri: 'sip:alice;pres-list=oma_buddylist@example.com',
      packages: [],
      members: [{ uri: 'sip:frank@example.com', displayName: 'Frank' }],
      sources: [key(ALICE)],
    });
    assert.deepEqual(load.asked, [{ auid: 'resource-lists', tree: 'users', xui: ALICE, path: 'index' }]);
  });

  it('answers not-found for a missing document or list (nested lists are not top-level lists)', async () => {
    const noDoc = failed(
      await resolveNamedList(BOB, 'x', 'sip:bob;pres-list=x@example.com', loader({}), OPTS),
      'not-found',
    );
    assert.deepEqual(noDoc.sources, [key(BOB)]);
    failed(
      await resolveNamedList(
        ALICE,
        'work',
        'sip:alice;pres-list=work@example.com',
        loader({ [key(ALICE)]: aliceDoc }),
        OPTS,
      ),
      'not-found',
      /no list "work"/,
    );
  });

  it('parses pres-list URIs', () => {
    assert.deepEqual(parsePresListUri('sip:alice;pres-list=oma_buddylist@example.com'), {
      owner: 'sip:alice@example.com',
      list: 'oma_buddylist',
    });
    assert.deepEqual(parsePresListUri('sips:alice;foo=1;Pres-List=my%20list@Example.COM:5061;transport=tls'), {
      owner: 'sip:alice@example.com',
      list: 'my list',
    });
    assert.deepEqual(parsePresListUri('sip:%61lice;pres-list=a@example.com'), {
      owner: 'sip:alice@example.com',
      list: 'a',
    });
    assert.equal(parsePresListUri('sip:alice@example.com'), undefined);
    assert.equal(parsePresListUri('sip:alice@example.com;pres-list=x'), undefined);
    assert.equal(parsePresListUri('sip:alice;pres-list=@example.com'), undefined);
    assert.equal(parsePresListUri('sip:alice;pres-list@example.com'), undefined);
    assert.equal(parsePresListUri('sip:;pres-list=x@example.com'), undefined);
    assert.equal(parsePresListUri('tel:+15551234;pres-list=x'), undefined);
    assert.equal(parsePresListUri('not a uri'), undefined);
  });
});
