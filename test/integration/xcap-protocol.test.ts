/**
 * The XCAP protocol (RFC 4825) of the XDMS over real HTTP: the real application server started
 * in-process (embedded store in a temp dir, no Kamailio), users provisioned through its user
 * directory, and an XCAP client that answers digest challenges and sends request paths exactly
 * as written (no client-side URL normalisation, so '..' and raw quotes reach the server).
 *
 * Fixtures: the RFC 4826 section 3.3 resource-lists and section 4.3 rls-services example
 * documents, and the RFC 4825 section 8.2.3 insertion example (its <root>/<el1>/<el2> shape
 * mapped onto a resource-lists list: entries, a comment, then an external).
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestResponse } from '../../as/src/http/digest.js';
import { allUsages } from '../../as/src/xdm/usages/index.js';
import {
  NamespaceScope,
  attr,
  childElements,
  parseXml,
  textContent,
  type XmlElement,
} from '../../as/src/xml/xml-tree.js';
import { XcapClient, rawRequest, type XcapReply } from '../helpers/xcap-client.js';
import { startAs, stopAs, type Running } from '../helpers/as-in-process.js';
import { RFC4826_RESOURCE_LISTS, RFC4826_RLS_SERVICES } from '../helpers/rfc-examples.js';

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const RL_NS = 'urn:ietf:params:xml:ns:resource-lists';
const RLS_NS = 'urn:ietf:params:xml:ns:rls-services';
const XCAP_ERROR_NS = 'urn:ietf:params:xml:ns:xcap-error';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

const RL_TYPE = 'application/resource-lists+xml';
const RLS_TYPE = 'application/rls-services+xml';
const EL_TYPE = 'application/xcap-el+xml';
const ATT_TYPE = 'application/xcap-att+xml';
const NS_TYPE = 'application/xcap-ns+xml';
const ERROR_TYPE = 'application/xcap-error+xml';

/**
 * The RFC 4825 section 8.2.3 insertion example (two el1, a comment, an el2) as a resource-lists
 * document: two entries, a comment, an external.
 */
const INSERTION_EXAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="root">
    <entry uri="sip:first@example.com"/>
    <entry uri="sip:second@example.com"/>
    <!-- comment -->
    <external anchor="http://xcap.example.com/resource-lists/users/sip:carol@example.com/index/~~/resource-lists/list%5b@name=%22first%22%5d"/>
  </list>
</resource-lists>
`;

const list = (name: string, entries: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="${name}">${entries.map((u) => `<entry uri="${u}"/>`).join('')}</list>
</resource-lists>
`;

const services = (...uris: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">${uris
    .map(
      (u) =>
        `<service uri="${u}"><resource-list>http://xcap.example.com/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list%5b@name=%22l1%22%5d</resource-list></service>`,
    )
    .join('')}</rls-services>
`;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** Path of a user's document, e.g. doc('alice', 'index'). */
const doc = (user: string, name: string, auid = 'resource-lists') =>
  `/xcap-root/${auid}/users/sip:${user}@example.com/${name}`;
/** Path of a node: document + /~~/ + selector (sent as written). */
const node = (document: string, selector: string) => `${document}/~~/${selector}`;

/** A reply without a body must not claim a Content-Type either. */
function assertEmpty(r: XcapReply, status: number, what = ''): void {
  assert.equal(r.status, status, `${what} status (body: ${r.body})`);
  assert.equal(r.body, '', `${what} body`);
  assert.equal(r.contentType, undefined, `${what} Content-Type of an empty reply`);
}

/** The condition element of an application/xcap-error+xml 409 reply. */
function xcapError(r: XcapReply, tag: string): XmlElement {
  assert.equal(r.status, 409, `409 expected, got ${r.status}: ${r.body}`);
  assert.equal(r.contentType, ERROR_TYPE);
  const d = parseXml(r.body);
  const scope = NamespaceScope.root().child(d.root);
  assert.deepEqual(scope.expand(d.root.name), { ns: XCAP_ERROR_NS, local: 'xcap-error' });
  const kids = childElements(d.root);
  assert.equal(kids.length, 1, r.body);
  assert.equal(kids[0]!.name, tag, r.body);
  return kids[0]!;
}

/** The element children of the element at `selector` as "name uri|anchor" strings, from a GET. */
async function children(c: XcapClient, document: string, selector: string): Promise<string[]> {
  const r = await c.get(node(document, selector));
  assert.equal(r.status, 200, r.body);
  assert.equal(r.contentType, EL_TYPE);
  return childElements(parseXml(r.body).root).map((e) =>
    `${e.name} ${attr(e, 'uri') ?? attr(e, 'anchor') ?? attr(e, 'name') ?? ''}`.trim(),
  );
}

/** Every file under `dir` (relative paths), for "nothing written" checks. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, `${rel}${name}/`);
      else out.push(`${rel}${name}`);
    }
  };
  walk(dir, '');
  return out.sort();
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

describe('XCAP protocol over HTTP (RFC 4825)', () => {
  let as: Running;
  let alice: XcapClient;
  let bob: XcapClient;
  let carol: XcapClient;

  before(async () => {
    as = await startAs();
    await as.server.users.add('alice', 'pw-alice');
    await as.server.users.add('bob', 'pw-bob');
    await as.server.users.add('carol', 'pw-carol');
    alice = new XcapClient(as.base, 'alice', 'pw-alice');
    bob = new XcapClient(as.base, 'bob', 'pw-bob');
    carol = new XcapClient(as.base, 'carol', 'pw-carol');
  });

  after(async () => {
    await stopAs(as);
  });

  describe('rls-services global index (RFC 4826 4.5)', () => {
    it("is the union of every user's services, read-only", async () => {
      const mine = doc('alice', 'global-test', 'rls-services');
      const theirs = doc('bob', 'global-test', 'rls-services');
      assert.equal((await alice.put(mine, services('sip:alice-friends@example.com'), RLS_TYPE)).status, 201);
      assert.equal((await bob.put(theirs, services('sip:bob-team@example.com'), RLS_TYPE)).status, 201);
      const g = await carol.get('/xcap-root/rls-services/global/index');
      assert.equal(g.status, 200);
      assert.equal(g.contentType, RLS_TYPE);
      assert.match(g.body, /uri="sip:alice-friends@example\.com"/);
      assert.match(g.body, /uri="sip:bob-team@example\.com"/);
      assert.equal(
        (await carol.put('/xcap-root/rls-services/global/index', services('sip:x@example.com'), RLS_TYPE)).status,
        403,
      );
      assert.equal((await alice.delete(mine)).status, 200);
      assert.equal((await bob.delete(theirs)).status, 200);
      assert.doesNotMatch((await carol.get('/xcap-root/rls-services/global/index')).body, /alice-friends/);
    });
  });

  describe('concurrent writers without preconditions', () => {
    it('all succeed (the last writer wins) and the document is one of theirs, whole', async () => {
      const path = doc('alice', 'race');
      const bodies = Array.from({ length: 8 }, (_, i) => list('l', [`sip:w${i}@example.com`]));
      const replies = await Promise.all(bodies.map((b) => alice.put(path, b, RL_TYPE)));
      assert.deepEqual(
        replies.map((r) => r.status).filter((st) => st !== 200 && st !== 201),
        [],
        'no 412 without a precondition',
      );
      const final = await alice.get(path);
      assert.ok(bodies.includes(final.body), "the stored document is exactly one writer's");
    });
  });

  describe('whole documents', () => {
    it('PUT creates (201 + ETag), GET returns it as stored, PUT replaces (200 + new ETag), DELETE removes', async () => {
      const d = doc('alice', 'index');
      const created = await alice.put(d, RFC4826_RESOURCE_LISTS, RL_TYPE);
      assertEmpty(created, 201, 'create');
      assert.ok(created.etag, 'ETag on 201');

      const got = await alice.get(d);
      assert.equal(got.status, 200);
      assert.equal(got.etag, created.etag);
      assert.equal(got.contentType, RL_TYPE);
      assert.equal(got.body, RFC4826_RESOURCE_LISTS, 'the document round-trips byte for byte');

      const replacement = list('friends', ['sip:bill@example.com', 'sip:carol@example.com']);
      const replaced = await alice.put(d, replacement, RL_TYPE);
      assertEmpty(replaced, 200, 'replace');
      assert.ok(replaced.etag);
      assert.notEqual(replaced.etag, created.etag);
      const again = await alice.get(d);
      assert.equal(again.etag, replaced.etag);
      assert.equal(again.body, replacement);

      const deleted = await alice.delete(d);
      assertEmpty(deleted, 200, 'delete');
      assertEmpty(await alice.get(d), 404, 'GET after DELETE');
      assertEmpty(await alice.delete(d), 404, 'second DELETE');
    });

    it('accepts a Content-Type with parameters, refuses a wrong or missing one with 415 and stores nothing', async () => {
      const d = doc('alice', 'types');
      for (const type of ['application/xml', 'text/xml', RLS_TYPE, EL_TYPE, 'text/plain']) {
        assertEmpty(await alice.put(d, RFC4826_RESOURCE_LISTS, type), 415, type);
      }
      assertEmpty(await alice.request('PUT', d, { body: RFC4826_RESOURCE_LISTS }), 415, 'no Content-Type');
      assertEmpty(await alice.get(d), 404, 'nothing stored');
      assert.equal((await alice.put(d, RFC4826_RESOURCE_LISTS, `${RL_TYPE}; charset="UTF-8"`)).status, 201);
    });
  });

  describe('element selectors', () => {
    const d = doc('alice', 'elements');
    let etag: string;

    before(async () => {
      const r = await alice.put(d, RFC4826_RESOURCE_LISTS, RL_TYPE);
      assert.equal(r.status, 201);
      etag = r.etag!;
    });

    const BILL =
      '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:bill@example.com"><display-name>Bill Doe</display-name></entry>';
    const JOE =
      '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:joe@example.com"><display-name>Joe Smith</display-name></entry>';
    const NANCY =
      '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:nancy@example.com"><display-name>Nancy Gross</display-name></entry>';

    async function getEl(selector: string, expected: string): Promise<void> {
      const r = await alice.get(node(d, selector));
      assert.equal(r.status, 200, `${selector}: ${r.status} ${r.body}`);
      assert.equal(r.contentType, EL_TYPE, selector);
      assert.equal(r.etag, etag, `${selector}: the ETag of the document`);
      assert.equal(r.body, expected, selector);
    }

    it('GET by name (the element with the namespace declarations it needs)', async () => {
      await getEl('resource-lists/list/entry', BILL);
      await getEl(
        'resource-lists/list/list/display-name',
        '<display-name xmlns="urn:ietf:params:xml:ns:resource-lists">Close Friends</display-name>',
      );
    });

    it('GET by position', async () => {
      await getEl('resource-lists/list[1]/list[1]/entry[2]', NANCY);
      await getEl('resource-lists/list/list/entry[1]', JOE);
      assertEmpty(await alice.get(node(d, 'resource-lists/list/list/entry[3]')), 404, 'entry[3]');
    });

    it('GET by attribute predicate, percent-encoded and not', async () => {
      await getEl(
        'resource-lists/list%5B@name=%22friends%22%5D/list%5B@name=%22close-friends%22%5D/entry%5B@uri=%22sip:joe@example.com%22%5D',
        JOE,
      );
      await getEl('resource-lists/list%5b@name=%22friends%22%5d/entry', BILL);
      await getEl(
        'resource-lists/list[@name="friends"]/list[@name="close-friends"]/entry[@uri="sip:joe@example.com"]',
        JOE,
      );
      await getEl(
        "resource-lists/list[@name='friends']/list[@name='close-friends']/entry[@uri='sip:nancy@example.com']",
        NANCY,
      );
      assertEmpty(await alice.get(node(d, 'resource-lists/list[@name="enemies"]')), 404, 'no such list');
    });

    it('GET by position and attribute combined', async () => {
      await getEl(
        'resource-lists/list[@name="friends"]/list[@name="close-friends"]/entry[2][@uri="sip:nancy@example.com"]',
        NANCY,
      );
      // by-pos-attr: the 1st entry is joe, whose uri does not match
      assertEmpty(
        await alice.get(
          node(
            d,
            'resource-lists/list[@name="friends"]/list[@name="close-friends"]/entry[1][@uri="sip:nancy@example.com"]',
          ),
        ),
        404,
        'pos then attr',
      );
      // attribute first: the 1st of the entries with that uri
      await getEl(
        'resource-lists/list[@name="friends"]/list[@name="close-friends"]/entry[@uri="sip:nancy@example.com"][1]',
        NANCY,
      );
    });

    it('GET with the wildcard', async () => {
      await getEl('resource-lists/*/*[1]', BILL);
      await getEl('*/*[@name="friends"]/*[3]/*[3]', NANCY);
      const ref = await alice.get(node(d, 'resource-lists/list/*[2]'));
      assert.equal(ref.status, 200);
      assert.equal(parseXml(ref.body).root.name, 'entry-ref');
      // several elements match the last step: nothing is selected
      assertEmpty(await alice.get(node(d, 'resource-lists/list/list/*')), 404, 'wildcard matching several');
    });

    it('GET with namespace prefixes bound in the query', async () => {
      await getEl(
        'p:resource-lists/p:list[@name="friends"]/p:entry?xmlns(p=urn:ietf:params:xml:ns:resource-lists)',
        BILL,
      );
      await getEl('resource-lists/rl:list/list/rl:entry[2]?xmlns(rl=urn:ietf:params:xml:ns:resource-lists)', NANCY);
      // percent-encoded query, two bindings
      await getEl(
        'a:resource-lists/b:list/a:entry?xmlns(a=urn:ietf:params:xml:ns:resource-lists)%20xmlns(b=urn%3Aietf%3Aparams%3Axml%3Ans%3Aresource-lists)',
        BILL,
      );
      // a prefix bound to another namespace selects nothing; an unbound prefix is a bad selector
      assertEmpty(await alice.get(node(d, 'p:resource-lists?xmlns(p=urn:example:other)')), 404, 'other namespace');
      assertEmpty(await alice.get(node(d, 'p:resource-lists/p:list')), 400, 'unbound prefix');
    });

    it('PUT refuses an element body with the wrong Content-Type (415)', async () => {
      for (const type of [RL_TYPE, 'application/xml', ATT_TYPE]) {
        assertEmpty(
          await alice.put(
            node(d, 'resource-lists/list/entry[@uri="sip:new@example.com"]'),
            '<entry uri="sip:new@example.com"/>',
            type,
          ),
          415,
          type,
        );
      }
      assert.equal((await alice.get(d)).etag, etag, 'document unchanged');
    });
  });

  describe('element PUT and DELETE (RFC 4825 section 8.2.3 insertion rules)', () => {
    const d = doc('alice', 'insertion');
    const LIST = 'resource-lists/list[@name="root"]';
    let etag: string;

    before(async () => {
      const r = await alice.put(d, INSERTION_EXAMPLE, RL_TYPE);
      assert.equal(r.status, 201);
      etag = r.etag!;
    });

    async function put(selector: string, body: string, status: number): Promise<void> {
      const r = await alice.put(node(d, selector), body, EL_TYPE);
      assertEmpty(r, status, selector);
      assert.ok(r.etag && r.etag !== etag, `${selector}: a new ETag`);
      etag = r.etag;
      assert.equal((await alice.get(d)).etag, etag, 'GET sees the new ETag');
    }

    it('with a position, the new element becomes the n-th of its name: after the last one, before the comment', async () => {
      await put(`${LIST}/entry[3]`, '<entry uri="sip:third@example.com"/>', 201);
      assert.deepEqual(await children(alice, d, LIST), [
        'entry sip:first@example.com',
        'entry sip:second@example.com',
        'entry sip:third@example.com',
        'external http://xcap.example.com/resource-lists/users/sip:carol@example.com/index/~~/resource-lists/list%5b@name=%22first%22%5d',
      ]);
      const whole = (await alice.get(d)).body;
      assert.ok(
        whole.indexOf('sip:third@example.com') < whole.indexOf('<!-- comment -->'),
        `the comment stays after the inserted entry:\n${whole}`,
      );
      assert.ok(whole.indexOf('<!-- comment -->') < whole.indexOf('<external'), whole);
    });

    it('without a position, the new element goes after the last element child', async () => {
      await put(`${LIST}/entry[@uri="sip:fourth@example.com"]`, '<entry uri="sip:fourth@example.com"/>', 201);
      const kids = await children(alice, d, LIST);
      assert.equal(kids.length, 5);
      assert.equal(kids[3]!.split(' ')[0], 'external');
      assert.equal(kids[4], 'entry sip:fourth@example.com');
    });

    it('position and attribute: [1][@uri=...] of an absent entry is inserted first', async () => {
      await put(`${LIST}/entry[1][@uri="sip:zero@example.com"]`, '<entry uri="sip:zero@example.com"/>', 201);
      const kids = await children(alice, d, LIST);
      assert.deepEqual(kids.slice(0, 2), ['entry sip:zero@example.com', 'entry sip:first@example.com']);
      // and the wildcard counts every element: *[7] is a new last element
      await put(`${LIST}/*[7]`, '<entry uri="sip:seventh@example.com"/>', 201);
      const after7 = await children(alice, d, LIST);
      assert.equal(after7.length, 7);
      assert.equal(after7[6], 'entry sip:seventh@example.com');
    });

    it('replaces an existing element in place (200), by attribute and by position', async () => {
      await put(
        `${LIST}/entry[@uri="sip:second@example.com"]`,
        '<entry uri="sip:second@example.com"><display-name>Second</display-name></entry>',
        200,
      );
      const got = await alice.get(node(d, `${LIST}/entry[@uri="sip:second@example.com"]`));
      assert.equal(
        got.body,
        '<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:second@example.com"><display-name>Second</display-name></entry>',
      );
      const before = await children(alice, d, LIST);
      await put(`${LIST}/entry[3]`, '<entry uri="sip:deux@example.com"/>', 200);
      const after = await children(alice, d, LIST);
      assert.deepEqual(
        after,
        before.map((k, i) => (i === 2 ? 'entry sip:deux@example.com' : k)),
      );
    });

    it('GET of an element and PUT of the same body leaves the content unchanged', async () => {
      const sel = node(d, LIST);
      const before = await alice.get(sel);
      const whole = (await alice.get(d)).body;
      await put(LIST, before.body, 200);
      assert.equal((await alice.get(sel)).body, before.body);
      assert.equal((await alice.get(d)).body, whole);
    });

    it('DELETE of an element (200 + ETag), then GET 404', async () => {
      const sel = node(d, `${LIST}/entry[@uri="sip:fourth@example.com"]`);
      const r = await alice.delete(sel);
      assertEmpty(r, 200, 'delete');
      assert.ok(r.etag && r.etag !== etag);
      etag = r.etag;
      assertEmpty(await alice.get(sel), 404, 'GET after DELETE');
      assertEmpty(await alice.delete(sel), 404, 'second DELETE');
      assert.ok(!(await children(alice, d, LIST)).includes('entry sip:fourth@example.com'));
    });
  });

  describe('attribute selectors', () => {
    const d = doc('alice', 'attributes');
    const BILL_URI = 'resource-lists/list[@name="friends"]/entry/@uri';
    const NESTED_NAME = 'resource-lists/list[@name="friends"]/list/@name';

    before(async () => {
      assert.equal((await alice.put(d, RFC4826_RESOURCE_LISTS, RL_TYPE)).status, 201);
    });

    it('GET returns the value as it would appear in the document (application/xcap-att+xml)', async () => {
      const current = (await alice.get(d)).etag;
      const r = await alice.get(node(d, BILL_URI));
      assert.equal(r.status, 200);
      assert.equal(r.contentType, ATT_TYPE);
      assert.equal(r.etag, current);
      assert.equal(r.body, 'sip:bill@example.com');
      assert.equal((await alice.get(node(d, 'resource-lists/list/list/entry[2]/@uri'))).body, 'sip:nancy@example.com');
      assertEmpty(await alice.get(node(d, 'resource-lists/list/entry/@nope')), 404, 'absent attribute');
    });

    it('PUT replaces (200) and creates (201); DELETE removes (200)', async () => {
      const replaced = await alice.put(node(d, BILL_URI), 'sip:william@example.com', ATT_TYPE);
      assertEmpty(replaced, 200, 'replace');
      assert.ok(replaced.etag);
      assert.equal((await alice.get(node(d, BILL_URI))).body, 'sip:william@example.com');
      assert.equal((await alice.get(node(d, 'resource-lists/list/entry[@uri="sip:william@example.com"]'))).status, 200);

      const deleted = await alice.delete(node(d, NESTED_NAME));
      assertEmpty(deleted, 200, 'delete');
      assert.ok(deleted.etag && deleted.etag !== replaced.etag);
      assertEmpty(await alice.get(node(d, NESTED_NAME)), 404, 'GET after DELETE');

      const created = await alice.put(node(d, NESTED_NAME), 'best &amp; closest', ATT_TYPE);
      assertEmpty(created, 201, 'create');
      assert.equal((await alice.get(node(d, NESTED_NAME))).body, 'best &amp; closest', 'escaped as in the document');
      assert.equal(
        (await alice.get(node(d, 'resource-lists/list/list[@name="best%20&amp;%20closest"]/display-name'))).status,
        200,
      );
    });

    it('PUT creates a namespaced attribute bound through the query', async () => {
      const sel = node(d, 'resource-lists/list/list/entry[1]/@n:note?xmlns(n=urn:example:notes)');
      assertEmpty(await alice.put(sel, 'met at work', ATT_TYPE), 201, 'create');
      const r = await alice.get(sel);
      assert.equal(r.body, 'met at work');
      const el = parseXml((await alice.get(node(d, 'resource-lists/list/list/entry[1]'))).body).root;
      const scope = NamespaceScope.root().child(el);
      const qname = Object.keys(el.attributes ?? {}).find((k) => k.endsWith(':note'))!;
      assert.equal(scope.expandAttribute(qname).ns, 'urn:example:notes');
    });

    it('refuses a wrong Content-Type (415) and a required attribute DELETE (409 schema-validation-error)', async () => {
      const current = (await alice.get(d)).etag;
      assertEmpty(await alice.put(node(d, BILL_URI), 'sip:x@example.com', EL_TYPE), 415, 'el type');
      assertEmpty(await alice.put(node(d, BILL_URI), 'sip:x@example.com', 'text/plain'), 415, 'text/plain');
      xcapError(await alice.delete(node(d, BILL_URI)), 'schema-validation-error');
      assert.equal((await alice.get(d)).etag, current, 'document unchanged');
    });
  });

  describe('namespace selector', () => {
    const d = doc('alice', 'namespaces');

    before(async () => {
      assert.equal((await alice.put(d, RFC4826_RESOURCE_LISTS, RL_TYPE)).status, 201);
      // the RFC example with other service URIs: the RFC's own are used by the uniqueness test
      const rls = RFC4826_RLS_SERVICES.replace('sip:mybuddies@', 'sip:alice-ns-buddies@').replace(
        'sip:marketing@',
        'sip:alice-ns-marketing@',
      );
      assert.equal((await alice.put(doc('alice', 'index', 'rls-services'), rls, RLS_TYPE)).status, 201);
    });

    it('GET returns the bindings in scope (application/xcap-ns+xml)', async () => {
      const r = await alice.get(node(d, 'resource-lists/list[@name="friends"]/namespace::*'));
      assert.equal(r.status, 200);
      assert.equal(r.contentType, NS_TYPE);
      assert.equal(r.etag, (await alice.get(d)).etag);
      const el = parseXml(r.body).root;
      assert.equal(el.name, 'list');
      assert.deepEqual(el.attributes, { xmlns: RL_NS, 'xmlns:xsi': XSI_NS });
      assert.equal(childElements(el).length, 0);

      const rls = await alice.get(
        node(
          doc('alice', 'index', 'rls-services'),
          'rls-services/service[@uri="sip:alice-ns-marketing@example.com"]/list/rl:entry[2]/namespace::*?xmlns(rl=urn:ietf:params:xml:ns:resource-lists)',
        ),
      );
      assert.equal(rls.status, 200, rls.body);
      const e = parseXml(rls.body).root;
      assert.equal(e.name, 'rl:entry');
      assert.deepEqual(e.attributes, { xmlns: RLS_NS, 'xmlns:rl': RL_NS, 'xmlns:xsi': XSI_NS });
    });

    it('PUT and DELETE are 405 with Allow: GET', async () => {
      const sel = node(d, 'resource-lists/list[@name="friends"]/namespace::*');
      const current = (await alice.get(d)).etag;
      for (const type of [NS_TYPE, EL_TYPE]) {
        const r = await alice.put(sel, `<list xmlns="${RL_NS}"/>`, type);
        assertEmpty(r, 405, `PUT ${type}`);
        assert.equal(r.headers.get('allow'), 'GET');
      }
      const del = await alice.delete(sel);
      assertEmpty(del, 405, 'DELETE');
      assert.equal(del.headers.get('allow'), 'GET');
      assert.equal((await alice.get(d)).etag, current, 'document unchanged');
    });
  });

  describe('preconditions (ETags)', () => {
    const d = doc('alice', 'preconditions');
    const quoted = (e: string | undefined) => `"${e}"`;

    it('If-Match with the current ETag succeeds, with an old one 412 (whole document, element, DELETE)', async () => {
      const v1 = await alice.put(d, list('friends', ['sip:a@example.com']), RL_TYPE);
      assert.equal(v1.status, 201);
      const v2 = await alice.put(d, list('friends', ['sip:b@example.com']), RL_TYPE, { 'If-Match': quoted(v1.etag) });
      assertEmpty(v2, 200, 'If-Match current');
      assert.notEqual(v2.etag, v1.etag);

      assertEmpty(
        await alice.put(d, list('friends', ['sip:c@example.com']), RL_TYPE, { 'If-Match': quoted(v1.etag) }),
        412,
        'If-Match old',
      );
      const el = node(d, 'resource-lists/list/entry[@uri="sip:c@example.com"]');
      assertEmpty(
        await alice.put(el, '<entry uri="sip:c@example.com"/>', EL_TYPE, { 'If-Match': quoted(v1.etag) }),
        412,
        'element If-Match old',
      );
      assertEmpty(await alice.delete(d, { 'If-Match': quoted(v1.etag) }), 412, 'DELETE If-Match old');
      assertEmpty(await alice.get(d, { 'If-Match': quoted(v1.etag) }), 412, 'GET If-Match old');
      const still = await alice.get(d);
      assert.equal(still.etag, v2.etag, 'nothing changed');
      assert.equal(still.body, list('friends', ['sip:b@example.com']));

      const v3 = await alice.put(el, '<entry uri="sip:c@example.com"/>', EL_TYPE, { 'If-Match': quoted(v2.etag) });
      assertEmpty(v3, 201, 'element If-Match current');
      const v4 = await alice.delete(el, { 'If-Match': quoted(v3.etag) });
      assertEmpty(v4, 200, 'element DELETE If-Match current');
      const scratch = doc('alice', 'preconditions-delete');
      const s1 = await alice.put(scratch, list('gone', []), RL_TYPE);
      assertEmpty(await alice.delete(scratch, { 'If-Match': '"stale"' }), 412, 'DELETE If-Match other');
      assertEmpty(await alice.delete(scratch, { 'If-Match': quoted(s1.etag) }), 200, 'DELETE If-Match current');
      assertEmpty(await alice.get(scratch), 404, 'deleted');
    });

    it('If-Match: * on a missing document and If-None-Match: * on an existing one are 412', async () => {
      const missing = doc('alice', 'never-created');
      assertEmpty(await alice.put(missing, list('x', []), RL_TYPE, { 'If-Match': '*' }), 412, 'If-Match: * on missing');
      assertEmpty(await alice.get(missing), 404, 'still missing');
      assertEmpty(await alice.delete(missing, { 'If-Match': '*' }), 404, 'DELETE of a missing document');

      const created = await alice.put(missing, list('x', []), RL_TYPE, { 'If-None-Match': '*' });
      assertEmpty(created, 201, 'If-None-Match: * on missing');
      assertEmpty(
        await alice.put(missing, list('y', []), RL_TYPE, { 'If-None-Match': '*' }),
        412,
        'If-None-Match: * on existing',
      );
      assertEmpty(
        await alice.put(missing, list('y', []), RL_TYPE, { 'If-None-Match': quoted(created.etag) }),
        412,
        'If-None-Match: current',
      );
      assert.equal(
        (await alice.put(missing, list('y', []), RL_TYPE, { 'If-Match': '*' })).status,
        200,
        'If-Match: * on existing',
      );
    });

    it('GET with If-None-Match of the current ETag is 304 with the ETag; with another one 200', async () => {
      const r = await alice.get(d);
      assert.equal(r.status, 200);
      const nm = await alice.get(d, { 'If-None-Match': quoted(r.etag) });
      assertEmpty(nm, 304, 'If-None-Match current');
      assert.equal(nm.etag, r.etag);
      const el = await alice.get(node(d, 'resource-lists/list'), { 'If-None-Match': quoted(r.etag) });
      assertEmpty(el, 304, 'element GET If-None-Match current');
      assert.equal(el.etag, r.etag);
      const other = await alice.get(d, { 'If-None-Match': '"not-the-etag", "nor-this"' });
      assert.equal(other.status, 200);
      assert.equal(other.body, r.body);
      assert.equal((await alice.get(d, { 'If-Match': quoted(r.etag) })).status, 200);
    });

    it("two clients PUT with the same ETag at once: one 200, one 412, and the winner's document is stored", async () => {
      const one = new XcapClient(as.base, 'alice', 'pw-alice');
      const two = new XcapClient(as.base, 'alice', 'pw-alice');
      const cd = doc('alice', 'concurrent');
      // authenticate both first so that the two PUTs reach the server together
      let etag = (await one.put(cd, list('race', []), RL_TYPE)).etag;
      assert.equal((await two.get(cd)).status, 200);
      for (let round = 0; round < 5; round++) {
        const bodies = [list('race', [`sip:one${round}@example.com`]), list('race', [`sip:two${round}@example.com`])];
        const replies = await Promise.all([
          one.put(cd, bodies[0]!, RL_TYPE, { 'If-Match': quoted(etag) }),
          two.put(cd, bodies[1]!, RL_TYPE, { 'If-Match': quoted(etag) }),
        ]);
        assert.deepEqual(replies.map((r) => r.status).sort(), [200, 412], `round ${round}`);
        const winner = replies.findIndex((r) => r.status === 200);
        const stored = await alice.get(cd);
        assert.equal(stored.etag, replies[winner]!.etag);
        assert.equal(stored.body, bodies[winner], "exactly the winner's body");
        etag = stored.etag;
      }
    });

    it('concurrent element PUTs without preconditions are both applied (nothing lost)', async () => {
      const one = new XcapClient(as.base, 'alice', 'pw-alice');
      const two = new XcapClient(as.base, 'alice', 'pw-alice');
      const cd = doc('alice', 'concurrent-elements');
      assert.equal((await one.put(cd, list('race', []), RL_TYPE)).status, 201);
      assert.equal((await two.get(cd)).status, 200);
      const sel = (u: string) => node(cd, `resource-lists/list/entry[@uri="${u}"]`);
      const uris = ['sip:p@example.com', 'sip:q@example.com', 'sip:r@example.com', 'sip:s@example.com'];
      const replies = await Promise.all(
        uris.map((u, i) => (i % 2 ? two : one).put(sel(u), `<entry uri="${u}"/>`, EL_TYPE)),
      );
      assert.deepEqual(
        replies.map((r) => r.status),
        [201, 201, 201, 201],
      );
      const kids = await children(alice, cd, 'resource-lists/list');
      assert.deepEqual(
        [...kids].sort(),
        uris.map((u) => `entry ${u}`),
      );
    });
  });

  describe('409 conflict reports (application/xcap-error+xml)', () => {
    const d = doc('alice', 'conflicts');
    let etag: string;

    before(async () => {
      const r = await alice.put(d, RFC4826_RESOURCE_LISTS, RL_TYPE);
      assert.equal(r.status, 201);
      etag = r.etag!;
    });

    /** The document was not changed by the refused request. */
    async function unchanged(): Promise<void> {
      assert.equal((await alice.get(d)).etag, etag, 'document unchanged');
    }

    it('not-well-formed', async () => {
      xcapError(
        await alice.put(d, `<resource-lists xmlns="${RL_NS}"><list></resource-lists>`, RL_TYPE),
        'not-well-formed',
      );
      xcapError(
        await alice.put(d, `<resource-lists xmlns="${RL_NS}">&undefined;</resource-lists>`, RL_TYPE),
        'not-well-formed',
      );
      xcapError(await alice.put(d, '', RL_TYPE), 'not-well-formed');
      await unchanged();
    });

    it('not-xml-frag', async () => {
      const sel = node(d, 'resource-lists/list[@name="friends"]/entry[@uri="sip:frag@example.com"]');
      xcapError(
        await alice.put(sel, '<entry uri="sip:frag@example.com"/><entry uri="sip:frag2@example.com"/>', EL_TYPE),
        'not-xml-frag',
      );
      xcapError(await alice.put(sel, 'text <entry uri="sip:frag@example.com"/>', EL_TYPE), 'not-xml-frag');
      xcapError(await alice.put(sel, '<entry uri="sip:frag@example.com">', EL_TYPE), 'not-xml-frag');
      xcapError(await alice.put(sel, '', EL_TYPE), 'not-xml-frag');
      await unchanged();
    });

    it('not-xml-att-value', async () => {
      const sel = node(d, 'resource-lists/list[@name="friends"]/list/@name');
      xcapError(await alice.put(sel, 'a<b', ATT_TYPE), 'not-xml-att-value');
      xcapError(await alice.put(sel, 'a & b', ATT_TYPE), 'not-xml-att-value');
      xcapError(await alice.put(sel, `both " and '`, ATT_TYPE), 'not-xml-att-value');
      await unchanged();
    });

    it('schema-validation-error (an entry without uri, an unknown element)', async () => {
      const e = xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="friends"]/entry[2]'),
          '<entry><display-name>No URI</display-name></entry>',
          EL_TYPE,
        ),
        'schema-validation-error',
      );
      assert.match(attr(e, 'phrase') ?? '', /uri/);
      xcapError(
        await alice.put(node(d, 'resource-lists/list[@name="friends"]/foo'), '<foo/>', EL_TYPE),
        'schema-validation-error',
      );
      xcapError(
        await alice.put(
          d,
          `<resource-lists xmlns="${RL_NS}"><entry uri="sip:x@example.com"/></resource-lists>`,
          RL_TYPE,
        ),
        'schema-validation-error',
      );
      await unchanged();
    });

    it('no-parent names the closest existing ancestor as an absolute XCAP URI', async () => {
      const documentUri = `${as.rootUri}/resource-lists/users/sip:alice@example.com/conflicts`;
      const e = xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="nope"]/entry[@uri="sip:x@example.com"]'),
          '<entry uri="sip:x@example.com"/>',
          EL_TYPE,
        ),
        'no-parent',
      );
      const ancestor = textContent(childElements(e).find((k) => k.name === 'ancestor')!);
      assert.equal(ancestor, `${documentUri}/~~/resource-lists`);

      const deeper = xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="friends"]/list[@name="ghost"]/entry[@uri="sip:x@example.com"]'),
          '<entry uri="sip:x@example.com"/>',
          EL_TYPE,
        ),
        'no-parent',
      );
      const deeperAncestor = textContent(childElements(deeper).find((k) => k.name === 'ancestor')!);
      assert.ok(deeperAncestor.startsWith(`${documentUri}/~~/`), deeperAncestor);
      // the ancestor URI really selects the existing list
      const got = await alice.get(deeperAncestor.slice(as.base.length));
      assert.equal(got.status, 200, deeperAncestor);
      assert.equal(attr(parseXml(got.body).root, 'name'), 'friends');

      // a node PUT into a document that does not exist
      const none = xcapError(
        await alice.put(node(doc('alice', 'no-such-document'), 'resource-lists/list'), '<list name="a"/>', EL_TYPE),
        'no-parent',
      );
      const home = textContent(childElements(none).find((k) => k.name === 'ancestor')!);
      assert.equal(
        decodeURIComponent(home).replace(/\/$/, ''),
        `${as.rootUri}/resource-lists/users/sip:alice@example.com`,
      );
      assertEmpty(await alice.get(doc('alice', 'no-such-document')), 404, 'nothing created');

      // an attribute of an element that does not exist
      const att = xcapError(
        await alice.put(node(d, 'resource-lists/list[@name="ghost"]/@name'), 'ghost', ATT_TYPE),
        'no-parent',
      );
      assert.equal(
        textContent(childElements(att).find((k) => k.name === 'ancestor')!),
        `${documentUri}/~~/resource-lists`,
      );
      await unchanged();
    });

    it('cannot-insert', async () => {
      // the body would not be selected by the request URI
      xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="friends"]/entry[@uri="sip:x@example.com"]'),
          '<entry uri="sip:y@example.com"/>',
          EL_TYPE,
        ),
        'cannot-insert',
      );
      // a position that cannot be reached
      xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="friends"]/list/entry[5]'),
          '<entry uri="sip:x@example.com"/>',
          EL_TYPE,
        ),
        'cannot-insert',
      );
      // a second root element
      xcapError(await alice.put(node(d, 'other-root'), '<other-root/>', EL_TYPE), 'cannot-insert');
      await unchanged();
    });

    it('cannot-delete', async () => {
      // another entry would become entry[1]
      xcapError(await alice.delete(node(d, 'resource-lists/list[@name="friends"]/list/entry[1]')), 'cannot-delete');
      // the root element (delete the document instead)
      xcapError(await alice.delete(node(d, 'resource-lists')), 'cannot-delete');
      await unchanged();
    });

    it('uniqueness-failure inside a document, with an alt-value that is free', async () => {
      // two entries with the same URI in one list
      const dup = xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="friends"]/entry[2]'),
          '<entry uri="sip:bill@example.com"/>',
          EL_TYPE,
        ),
        'uniqueness-failure',
      );
      const exists = childElements(dup);
      assert.equal(exists.length, 1);
      assert.equal(exists[0]!.name, 'exists');
      assert.match(attr(exists[0]!, 'field') ?? '', /entry\/@uri$/);
      // two lists with the same name: the server proposes another one
      const sameName = xcapError(
        await alice.put(node(d, 'resource-lists/list[2]'), '<list name="friends"/>', EL_TYPE),
        'uniqueness-failure',
      );
      const ex = childElements(sameName)[0]!;
      assert.equal(attr(ex, 'field'), 'resource-lists/list/@name');
      const alts = childElements(ex)
        .filter((k) => k.name === 'alt-value')
        .map(textContent);
      assert.ok(alts.length > 0, sameName.name);
      assert.ok(!alts.includes('friends'));
      await unchanged();
      const r = await alice.put(node(d, 'resource-lists/list[2]'), `<list name="${alts[0]}"/>`, EL_TYPE);
      assertEmpty(r, 201, 'PUT with the alt-value');
      etag = r.etag!;
    });

    it('uniqueness-failure across documents (rls-services service URI), with alt-values really free', async () => {
      // the RFC's example with its service URIs in alice's namespace (sip:alice-<name>@example.com);
      // one of her documents holds its first service URI, another the first obvious alternative
      const rfc = RFC4826_RLS_SERVICES.replace(/sip:(mybuddies|marketing)@/g, 'sip:alice-$1@');
      const first = doc('alice', 'u-first', 'rls-services');
      assert.equal((await alice.put(first, services('sip:alice-mybuddies@example.com'), RLS_TYPE)).status, 201);
      assert.equal(
        (
          await alice.put(
            doc('alice', 'u-second', 'rls-services'),
            services('sip:alice-mybuddies1@example.com'),
            RLS_TYPE,
          )
        ).status,
        201,
      );

      const target = doc('alice', 'unique', 'rls-services');
      const e = xcapError(await alice.put(target, rfc, RLS_TYPE), 'uniqueness-failure');
      const ex = childElements(e);
      assert.equal(ex.length, 1);
      assert.equal(ex[0]!.name, 'exists');
      assert.equal(attr(ex[0]!, 'field'), 'rls-services/service/@uri');
      const alts = childElements(ex[0]!)
        .filter((k) => k.name === 'alt-value')
        .map(textContent);
      assert.ok(alts.length > 0, 'alt-values proposed');
      assert.ok(!alts.includes('sip:alice-mybuddies@example.com'), 'not the taken value');
      assert.ok(!alts.includes('sip:alice-mybuddies1@example.com'), 'not the other taken value either');
      assertEmpty(await alice.get(target), 404, 'nothing stored');

      const retry = await alice.put(target, rfc.replace('sip:alice-mybuddies@example.com', alts[0]!), RLS_TYPE);
      assertEmpty(retry, 201, 'PUT with the alt-value');
      // and now that value is taken for her other documents
      xcapError(
        await alice.put(doc('alice', 'u-third', 'rls-services'), services(alts[0]!), RLS_TYPE),
        'uniqueness-failure',
      );

      // the same through an element PUT: her first document adds a service with the marketing URI
      const firstEtag = (await alice.get(first)).etag;
      const el = xcapError(
        await alice.put(
          node(first, 'rls-services/service[@uri="sip:alice-marketing@example.com"]'),
          '<service uri="sip:alice-marketing@example.com"><resource-list>http://xcap.example.com/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22l1%22%5d</resource-list></service>',
          EL_TYPE,
        ),
        'uniqueness-failure',
      );
      const elExists = childElements(el)[0]!;
      assert.equal(attr(elExists, 'field'), 'rls-services/service/@uri');
      const elAlts = childElements(elExists).map(textContent);
      assert.ok(elAlts.length > 0 && !elAlts.includes('sip:alice-marketing@example.com'), el.name);
      assert.equal((await alice.get(first)).etag, firstEtag, 'the first document unchanged');
    });

    it("constraint-failure for a service URI outside the owner's namespace or at a user's address", async () => {
      const bobs = doc('bob', 'claims', 'rls-services');
      // another user's address, his own address, and a name in another user's namespace
      for (const uri of [
        'sip:alice@example.com',
        'sip:bob@example.com',
        'sip:alice-friends@example.com',
        'sip:friends@example.com',
      ]) {
        const e = xcapError(await bob.put(bobs, services(uri), RLS_TYPE), 'constraint-failure');
        assert.match(attr(e, 'phrase') ?? '', /namespace/, uri);
      }
      // through an element PUT as well
      assert.equal((await bob.put(bobs, services('sip:bob-friends@example.com'), RLS_TYPE)).status, 201);
      xcapError(
        await bob.put(
          node(bobs, 'rls-services/service[@uri="sip:alice@example.com"]'),
          '<service uri="sip:alice@example.com"><list/></service>',
          EL_TYPE,
        ),
        'constraint-failure',
      );
      // a user whose name starts with "bob-" holds an address in bob's namespace: never a service
      await as.server.users.add('bob-pal', 'pw-bob-pal');
      const pal = xcapError(
        await bob.put(doc('bob', 'pal', 'rls-services'), services('sip:bob-pal@example.com'), RLS_TYPE),
        'constraint-failure',
      );
      assert.match(attr(pal, 'phrase') ?? '', /address of a user/);
      assert.equal((await bob.delete(bobs)).status, 200);
    });

    it('constraint-failure', async () => {
      const e = xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="friends"]/entry[@uri="not%20a%20uri"]'),
          '<entry uri="not a uri"/>',
          EL_TYPE,
        ),
        'constraint-failure',
      );
      assert.ok((attr(e, 'phrase') ?? '').length > 0, 'a phrase says which constraint');
      xcapError(await alice.put(d, list('bad', ['mailto']), RL_TYPE), 'constraint-failure');
      await unchanged();
    });

    it('not-utf-8', async () => {
      const bad = Buffer.concat([
        Buffer.from(`<resource-lists xmlns="${RL_NS}"><list name="`),
        Buffer.from([0xc3, 0x28, 0xff]),
        Buffer.from('"/></resource-lists>'),
      ]);
      xcapError(await alice.put(d, bad, RL_TYPE), 'not-utf-8');
      xcapError(await alice.put(doc('alice', 'latin1'), bad, RL_TYPE), 'not-utf-8');
      assertEmpty(await alice.get(doc('alice', 'latin1')), 404, 'nothing stored');
      const frag = Buffer.concat([
        Buffer.from('<entry uri="sip:x@example.com"><display-name>'),
        Buffer.from([0xe9]),
        Buffer.from('</display-name></entry>'),
      ]);
      xcapError(
        await alice.put(node(d, 'resource-lists/list[@name="friends"]/entry[@uri="sip:x@example.com"]'), frag, EL_TYPE),
        'not-utf-8',
      );
      xcapError(
        await alice.put(node(d, 'resource-lists/list[@name="friends"]/@name'), Buffer.from([0x66, 0x80]), ATT_TYPE),
        'not-utf-8',
      );
      await unchanged();
    });
  });

  describe('other failures', () => {
    const d = doc('alice', 'failures');

    before(async () => {
      assert.equal((await alice.put(d, RFC4826_RESOURCE_LISTS, RL_TYPE)).status, 201);
    });

    it('400 for a node selector or query that does not parse', async () => {
      for (const sel of [
        'resource-lists/list[@name="friends"',
        'resource-lists/list[@name=friends]',
        'resource-lists/list]',
        'resource-lists/list[@name="a"][@uri="b"]',
        'resource-lists/following-sibling::list',
        'resource-lists//list',
        'resource-lists/list[last()]',
        'resource-lists/list%ZZ',
      ]) {
        assertEmpty(await alice.get(node(d, sel)), 400, sel);
      }
      assertEmpty(await alice.get(node(d, 'resource-lists?foo=bar')), 400, 'bad query');
      assertEmpty(
        await alice.put(node(d, 'resource-lists/list[@name="friends"'), '<list/>', EL_TYPE),
        400,
        'PUT with a bad selector',
      );
    });

    it('404 for an unknown auid, a missing document, a selector matching nothing, a path outside the root', async () => {
      assertEmpty(await alice.get('/xcap-root/no-such-auid/users/sip:alice@example.com/index'), 404, 'unknown auid');
      assertEmpty(
        await alice.put('/xcap-root/no-such-auid/users/sip:alice@example.com/index', RFC4826_RESOURCE_LISTS, RL_TYPE),
        404,
        'PUT unknown auid',
      );
      assertEmpty(await alice.get(doc('alice', 'missing')), 404, 'missing document');
      const nothing = await alice.get(node(d, 'resource-lists/list[@name="enemies"]'));
      assertEmpty(nothing, 404, 'selector matching nothing');
      assert.equal(nothing.etag, undefined, 'a 404 has no ETag');
      // preconditions do not turn a missing node into 304 or 412
      const current = (await alice.get(d)).etag;
      assertEmpty(
        await alice.get(node(d, 'resource-lists/list[@name="enemies"]'), { 'If-None-Match': `"${current}"` }),
        404,
        'If-None-Match on a missing node',
      );
      assertEmpty(
        await alice.get(node(d, 'resource-lists/list[@name="enemies"]'), { 'If-Match': '"old"' }),
        404,
        'If-Match on a missing node',
      );
      assertEmpty(await alice.delete(node(d, 'resource-lists/list[@name="enemies"]')), 404, 'DELETE matching nothing');
      assertEmpty(await alice.get(node(d, 'resource-lists/list/list/entry')), 404, 'selector matching several');
      assertEmpty(await alice.get('/xcap-root/resource-lists/people/sip:alice@example.com/index'), 404, 'unknown tree');
      assertEmpty(await alice.get('/xcap-root/resource-lists/users/sip:alice@example.com'), 404, 'no document');
      assertEmpty(
        await alice.get('/not-xcap/resource-lists/users/sip:alice@example.com/index'),
        404,
        'outside the XCAP root',
      );
    });

    it('405 with Allow for other methods', async () => {
      for (const method of ['POST', 'PATCH', 'OPTIONS']) {
        const r = await alice.request(method, d, {
          body: RFC4826_RESOURCE_LISTS,
          headers: { 'content-type': RL_TYPE },
        });
        assertEmpty(r, 405, method);
        assert.deepEqual(
          r.headers
            .get('allow')
            ?.split(/\s*,\s*/)
            .sort(),
          ['DELETE', 'GET', 'PUT'],
        );
      }
    });

    it('413 for a body over XDM_MAX_DOCUMENT_BYTES (declared or chunked), nothing stored', async () => {
      const entries = Array.from({ length: 2000 }, (_, i) => `sip:user${i}@example.com`);
      const big = list('big', entries);
      assert.ok(Buffer.byteLength(big) > 64 * 1024);
      const target = doc('alice', 'big');
      assertEmpty(await alice.put(target, big, RL_TYPE), 413, 'Content-Length');
      assertEmpty(
        await alice.request('PUT', target, { body: big, chunked: true, headers: { 'content-type': RL_TYPE } }),
        413,
        'chunked',
      );
      assertEmpty(
        await alice.put(
          node(d, 'resource-lists/list[@name="big"]'),
          `<list name="big">${entries.map((u) => `<entry uri="${u}"/>`).join('')}</list>`,
          EL_TYPE,
        ),
        413,
        'element',
      );
      assertEmpty(await alice.get(target), 404, 'nothing stored');
      // just under the limit is fine
      const fits = list('fits', entries.slice(0, 1500));
      assert.ok(Buffer.byteLength(fits) < 64 * 1024);
      assert.equal((await alice.put(target, fits, RL_TYPE)).status, 201);
    });

    it('refuses DOCTYPE and entity declarations (billion laughs, external entity) with 409, nothing stored', async () => {
      const laughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="&lol9;"/></resource-lists>`;
      const xxe = `<?xml version="1.0"?>
<!DOCTYPE resource-lists [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="&x;"/></resource-lists>`;
      for (const [name, body] of [
        ['laughs', laughs],
        ['xxe', xxe],
      ] as const) {
        const target = doc('alice', name);
        const e = xcapError(await alice.put(target, body, RL_TYPE), 'constraint-failure');
        assert.match(attr(e, 'phrase') ?? '', /DOCTYPE/);
        assertEmpty(await alice.get(target), 404, `${name}: nothing stored`);
      }
      // not inside an element body either
      const frag = xcapError(
        await alice.put(
          node(d, 'resource-lists/list[@name="lol"]'),
          '<!DOCTYPE x [<!ENTITY a "b">]><list name="lol"/>',
          EL_TYPE,
        ),
        'not-xml-frag',
      );
      assert.ok(frag);
    });

    it('refuses nesting deeper than the limit, as a document and as an element, nothing stored', async () => {
      const depth = 40; // the default limit is 32
      const nested = `<list name="l0">${Array.from({ length: depth }, (_, i) => `<list name="l${i + 1}">`).join('')}${'</list>'.repeat(depth)}</list>`;
      const target = doc('alice', 'deep');
      xcapError(
        await alice.put(target, `<resource-lists xmlns="${RL_NS}">${nested}</resource-lists>`, RL_TYPE),
        'constraint-failure',
      );
      assertEmpty(await alice.get(target), 404, 'nothing stored');

      const before = (await alice.get(d)).etag;
      // as an element: the server's limit again (not the parser's own 64 levels)
      const r = await alice.put(
        node(d, 'resource-lists/list[@name="l0"]'),
        `<list xmlns="${RL_NS}" name="l0">${nested.slice('<list name="l0">'.length)}`,
        EL_TYPE,
      );
      assert.match(attr(xcapError(r, 'cannot-insert'), 'phrase') ?? '', /deep/);
      assert.equal((await alice.get(d)).etag, before, 'document unchanged');
      // and a whole document that the server stored can always be written back
      const whole = await alice.get(d);
      assert.equal((await alice.put(d, whole.body, RL_TYPE)).status, 200);
    });

    it('path traversal (.., %2e%2e, encoded slashes) is 404 and writes nothing anywhere', async () => {
      const filesBefore = filesUnder(as.dir);
      const paths = [
        '/xcap-root/resource-lists/users/sip:alice@example.com/../sip:bob@example.com/index',
        '/xcap-root/resource-lists/users/sip:alice@example.com/%2e%2e/sip:bob@example.com/index',
        '/xcap-root/resource-lists/users/sip:alice@example.com/%2E%2E/%2E%2E/%2E%2E/%2E%2E/tmp/evil',
        '/xcap-root/resource-lists/users/sip:alice@example.com/.%2e/.%2e/data/xcap_documents.db',
        '/xcap-root/resource-lists/users/sip:alice@example.com/..%2Fsip:bob@example.com%2Findex',
        '/xcap-root/resource-lists/users/sip:alice@example.com/dir%2Fdoc',
        '/xcap-root/resource-lists/users/sip:alice@example.com/dir%5Cdoc',
        '/xcap-root/resource-lists/users/sip:alice@example.com/./index',
        '/xcap-root/resource-lists/users/sip:alice@example.com//index',
        '/xcap-root/resource-lists/users/..%2F..%2Fetc/passwd',
        '/xcap-root/resource-lists/users/%2e%2e/index',
        '/xcap-root/../../../tmp/evil',
        '/xcap-root/%2e%2e/%2e%2e/tmp/evil',
        '/xcap-root/resource-lists/users/sip:alice@example.com/index%00.xml',
      ];
      for (const p of paths) {
        assertEmpty(await alice.put(p, list('evil', []), RL_TYPE), 404, `PUT ${p}`);
        assertEmpty(await alice.get(p), 404, `GET ${p}`);
        assertEmpty(await alice.delete(p), 404, `DELETE ${p}`);
      }
      assertEmpty(await bob.get(doc('bob', 'index')), 404, "nothing written into bob's tree");
      assert.equal((await alice.get(d)).status, 200, "alice's document still there");
      // the store's files are all that exist, and still only those
      const filesAfter = filesUnder(as.dir);
      assert.deepEqual(
        filesAfter.filter((f) => !filesBefore.includes(f) && !f.startsWith('data/') && !f.startsWith('cdr/')),
        [],
      );
      assert.ok(!filesAfter.some((f) => /evil|passwd/.test(f)), filesAfter.join(', '));
    });

    it("403 for a user touching another user's tree", async () => {
      const bobs = doc('bob', 'index');
      assert.equal((await bob.put(bobs, list('mine', ['sip:bob2@example.com']), RL_TYPE)).status, 201);
      const bobEtag = (await bob.get(bobs)).etag;
      assertEmpty(await alice.get(bobs), 403, 'GET');
      assertEmpty(await alice.put(bobs, list('stolen', []), RL_TYPE), 403, 'PUT');
      assertEmpty(await alice.delete(bobs), 403, 'DELETE');
      assertEmpty(await alice.get(node(bobs, 'resource-lists/list')), 403, 'GET element');
      assertEmpty(await alice.put(doc('bob', 'new'), list('x', []), RL_TYPE), 403, 'PUT a new document');
      assertEmpty(
        await alice.get('/xcap-root/resource-lists/users/sip:bob@127.0.0.1/index'),
        403,
        'through a domain alias',
      );
      assertEmpty(
        await alice.get('/xcap-root/resource-lists/users/sip:alice@other.example.org/index'),
        403,
        'a foreign domain',
      );
      assert.equal((await bob.get(bobs)).etag, bobEtag, "bob's document unchanged");
      // her own tree through the domain alias is hers
      assert.equal((await alice.get('/xcap-root/resource-lists/users/sip:alice@127.0.0.1/failures')).status, 200);
    });

    it('403 for a PUT or DELETE of a global document', async () => {
      assertEmpty(
        await alice.put('/xcap-root/rls-services/global/index', RFC4826_RLS_SERVICES, RLS_TYPE),
        403,
        'PUT rls-services global',
      );
      assertEmpty(await alice.delete('/xcap-root/rls-services/global/index'), 403, 'DELETE rls-services global');
      assertEmpty(
        await alice.put('/xcap-root/xcap-caps/global/index', '<xcap-caps/>', 'application/xcap-caps+xml'),
        403,
        'PUT xcap-caps',
      );
      assertEmpty(
        await alice.put('/xcap-root/resource-lists/global/index', RFC4826_RESOURCE_LISTS, RL_TYPE),
        403,
        'PUT resource-lists global',
      );
    });

    it('401 without credentials or with a wrong password', async () => {
      const anon = await rawRequest(as.base, 'GET', d);
      assertEmpty(anon, 401, 'no credentials');
      assert.match(anon.headers.get('www-authenticate') ?? '', /^Digest realm="example\.com", qop="auth"/);
      assertEmpty(
        await rawRequest(as.base, 'PUT', d, { body: list('x', []), headers: { 'content-type': RL_TYPE } }),
        401,
        'PUT without credentials',
      );
      assertEmpty(await new XcapClient(as.base, 'alice', 'wrong').get(d), 401, 'wrong password');
      assertEmpty(await new XcapClient(as.base, 'mallory', 'pw-mallory').get(d), 401, 'unknown user');
      // credentials computed for another request URI or method are not accepted
      const nonce = /nonce="([^"]+)"/.exec(anon.headers.get('www-authenticate') ?? '')?.[1] ?? '';
      const other = doc('alice', 'elements');
      const auth = digestResponse({
        username: 'alice',
        password: 'pw-alice',
        realm: 'example.com',
        nonce,
        method: 'GET',
        uri: other,
      });
      assert.equal(
        (await rawRequest(as.base, 'GET', other, { headers: { authorization: auth } })).status,
        200,
        'for their own URI they are fine',
      );
      assertEmpty(await rawRequest(as.base, 'GET', d, { headers: { authorization: auth } }), 401, 'another URI');
      assertEmpty(
        await rawRequest(as.base, 'DELETE', other, { headers: { authorization: auth } }),
        401,
        'another method',
      );
      assert.equal((await alice.get(other)).status, 200, 'and nothing was deleted');
      // the asserted-identity header means nothing without a trusted proxy
      assertEmpty(
        await rawRequest(as.base, 'GET', d, { headers: { 'X-3GPP-Asserted-Identity': 'sip:alice@example.com' } }),
        401,
        'asserted identity from an untrusted peer',
      );
    });
  });

  describe('generated documents', () => {
    it('xcap-caps lists every auid and namespace', async () => {
      const r = await alice.get('/xcap-root/xcap-caps/global/index');
      assert.equal(r.status, 200);
      assert.equal(r.contentType, 'application/xcap-caps+xml');
      assert.ok(r.etag);
      const root = parseXml(r.body).root;
      assert.equal(NamespaceScope.root().child(root).expand(root.name).ns, 'urn:ietf:params:xml:ns:xcap-caps');
      const section = (name: string) =>
        childElements(childElements(root).find((e) => e.name === name)!).map(textContent);
      const auids = section('auids');
      const namespaces = section('namespaces');
      for (const u of allUsages()) {
        assert.ok(auids.includes(u.auid), `auid ${u.auid}`);
        for (const ns of [u.defaultNamespace, ...(u.namespaces ?? [])])
          assert.ok(namespaces.includes(ns), `namespace ${ns}`);
      }
      for (const a of [
        'xcap-caps',
        'resource-lists',
        'rls-services',
        'pres-rules',
        'pidf-manipulation',
        'org.openmobilealliance.xcap-directory',
      ]) {
        assert.ok(auids.includes(a), a);
      }
      for (const ns of [
        RL_NS,
        RLS_NS,
        'urn:ietf:params:xml:ns:pres-rules',
        'urn:ietf:params:xml:ns:common-policy',
        'urn:ietf:params:xml:ns:pidf',
      ]) {
        assert.ok(namespaces.includes(ns), ns);
      }
      assert.equal(new Set(auids).size, auids.length, 'no duplicates');
      // node selectors work on it too, and it is cacheable by ETag
      const one = await alice.get('/xcap-root/xcap-caps/global/index/~~/xcap-caps/auids/auid[1]');
      assert.equal(one.status, 200);
      assert.equal(one.contentType, EL_TYPE);
      assertEmpty(
        await alice.get('/xcap-root/xcap-caps/global/index', { 'If-None-Match': `"${r.etag}"` }),
        304,
        'If-None-Match',
      );
      assertEmpty(await alice.get('/xcap-root/xcap-caps/global/other'), 404, 'no other global document');
      const none = await alice.get('/xcap-root/xcap-caps/global/index/~~/xcap-caps/auids/auid[999]', {
        'If-None-Match': `"${r.etag}"`,
      });
      assertEmpty(none, 404, 'a missing node of a generated document');
      assert.equal(none.etag, undefined);
    });

    it("xcap-directory lists the user's documents with their current ETags, and nothing of another user", async () => {
      // make sure both users have documents of more than one usage
      const mine = [doc('alice', 'dir-one'), doc('alice', 'dir-two', 'rls-services')];
      assert.equal((await alice.put(mine[0]!, list('d', []), RL_TYPE)).status, 201);
      assert.equal((await alice.put(mine[1]!, services('sip:alice-dir-two@example.com'), RLS_TYPE)).status, 201);
      assert.equal((await bob.put(doc('bob', 'dir-bob'), list('d', []), RL_TYPE)).status, 201);
      // one of them changed after creation: the directory has the new ETag
      assert.equal(
        (
          await alice.put(
            node(mine[0]!, 'resource-lists/list/entry[@uri="sip:z@example.com"]'),
            '<entry uri="sip:z@example.com"/>',
            EL_TYPE,
          )
        ).status,
        201,
      );

      const path = '/xcap-root/org.openmobilealliance.xcap-directory/users/sip:alice@example.com/directory.xml';
      const r = await alice.get(path);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.contentType, 'application/vnd.oma.xcap-directory+xml');
      assert.ok(r.etag);
      const root = parseXml(r.body).root;
      assert.equal(root.name, 'xcap-directory');
      const entries: Array<{ auid: string; uri: string; etag: string }> = [];
      for (const folder of childElements(root)) {
        assert.equal(folder.name, 'folder');
        for (const e of childElements(folder))
          entries.push({ auid: attr(folder, 'auid')!, uri: attr(e, 'uri')!, etag: attr(e, 'etag')! });
      }
      assert.ok(entries.length >= 10, `alice has many documents by now (${entries.length})`);
      assert.ok(!r.body.includes('bob'), 'nothing of bob');
      for (const m of mine)
        assert.ok(
          entries.some((e) => e.uri === as.rootUri + m.slice('/xcap-root'.length)),
          `${m} listed`,
        );
      for (const e of entries) {
        assert.ok(e.uri.startsWith(`${as.rootUri}/${e.auid}/users/sip:alice@example.com/`), e.uri);
        const got = await alice.get(e.uri.slice(as.base.length));
        assert.equal(got.status, 200, e.uri);
        assert.equal(got.etag, e.etag, `current ETag of ${e.uri}`);
      }
      assertEmpty(
        await alice.get('/xcap-root/org.openmobilealliance.xcap-directory/users/sip:bob@example.com/directory.xml'),
        403,
        "bob's directory",
      );
      const put = await alice.put(path, r.body, 'application/vnd.oma.xcap-directory+xml');
      assertEmpty(put, 405, 'PUT of the directory');
      assert.equal(put.headers.get('allow'), 'GET');
      // the directory changes with the documents
      assert.equal((await alice.delete(mine[0]!)).status, 200);
      const after = await alice.get(path);
      assert.notEqual(after.etag, r.etag);
      assert.ok(!after.body.includes('/dir-one"'), 'deleted document no longer listed');
    });
  });

  describe('trusted aggregation proxy (X-3GPP-Asserted-Identity)', () => {
    let proxied: Running;

    before(async () => {
      proxied = await startAs({ XDM_TRUSTED_PROXIES: '127.0.0.1' });
    });

    after(async () => {
      await stopAs(proxied);
    });

    it('accepts the asserted identity from a trusted address without digest', async () => {
      const asAlice = { 'X-3GPP-Asserted-Identity': 'sip:alice@example.com' };
      const d = doc('alice', 'index');
      const put = await rawRequest(proxied.base, 'PUT', d, {
        body: RFC4826_RESOURCE_LISTS,
        headers: { ...asAlice, 'content-type': RL_TYPE },
      });
      assertEmpty(put, 201, 'PUT as alice');
      const got = await rawRequest(proxied.base, 'GET', d, { headers: asAlice });
      assert.equal(got.status, 200);
      assert.equal(got.etag, put.etag);
      assert.equal(got.body, RFC4826_RESOURCE_LISTS);
      assert.equal(
        (
          await rawRequest(proxied.base, 'GET', d, {
            headers: { 'X-3GPP-Asserted-Identity': '<sip:alice@example.com>' },
          })
        ).status,
        200,
        'name-addr form',
      );
      // the asserted identity is the user: not another one's tree
      assertEmpty(
        await rawRequest(proxied.base, 'GET', d, { headers: { 'X-3GPP-Asserted-Identity': 'sip:bob@example.com' } }),
        403,
        "bob on alice's tree",
      );
      assertEmpty(
        await rawRequest(proxied.base, 'GET', d, {
          headers: { 'X-3GPP-Asserted-Identity': 'sip:alice@elsewhere.example.org' },
        }),
        403,
        'identity of a foreign domain',
      );
      // no header: digest as usual
      assertEmpty(await rawRequest(proxied.base, 'GET', d), 401, 'no header, no credentials');
    });

    it('ignores the header on a server without trusted proxies', async () => {
      const r = await rawRequest(as.base, 'GET', doc('alice', 'failures'), {
        headers: { 'X-3GPP-Asserted-Identity': 'sip:alice@example.com' },
      });
      assertEmpty(r, 401, 'header ignored');
    });
  });
});
