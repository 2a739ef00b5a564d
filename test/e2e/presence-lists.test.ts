/**
 * Presence lists and efficient notification end to end, real Kamailio + AS + sipp on
 * loopback: the Resource List Server (RFC 4662) over rls-services and resource-lists set
 * through XCAP (authorization per member, partial RLMI notifications, a membership change,
 * 421 without eventlist, a 500-member list split within the NOTIFY size limit, charging),
 * partial PIDF (RFC 5263), filters (RFC 4660/4661) and rate control (RFC 6446).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseMultipart, relatedRoot } from '../../as/src/sip/multipart.js';
import { parseRlmi, type RlmiList } from '../../as/src/presence/rls/rlmi.js';
import { applyPidfPatch } from '../helpers/pidf-patch.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom, type SippResult } from './stack.js';

const PW = (u: string) => `${u}-pw-lists`;
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina'];
const LIST_ACCEPT = 'multipart/related, application/rlmi+xml, application/pidf+xml';
const EVENTLIST = ['Supported: eventlist'];
const MAX_NOTIFY = 45000;

const rules = (handling: string, who: string) => `<?xml version="1.0" encoding="UTF-8"?>
<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cp:rule id="r1">
    <cp:conditions><cp:identity><cp:one id="${who}"/></cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>${handling}</pr:sub-handling></cp:actions>
    <cp:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-note>true</pr:provide-note>
    </cp:transformations>
  </cp:rule>
</cp:ruleset>`;

const rlsServices = (members: string[]) => `<?xml version="1.0" encoding="UTF-8"?>
<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <service uri="sip:alice-friends@example.com">
    <list name="friends">${members.map((m) => `<rl:entry uri="sip:${m}@example.com"><rl:display-name>${m}</rl:display-name></rl:entry>`).join('')}</list>
    <packages><package>presence</package></packages>
  </service>
</rls-services>`;

/** NOTIFYs a sipp run received, in order, retransmissions left out: the whole message (start line excluded). */
function notifies(run: SippResult): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const m of run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)) {
    const cseq = header(m[1]!, 'CSeq') ?? '';
    if (seen.has(cseq)) continue;
    seen.add(cseq);
    out.push(m[1]!);
  }
  return out;
}

/** The NOTIFYs that carry a list state (the final one may carry none). */
function listNotifies(run: SippResult): ListNotify[] {
  return notifies(run)
    .filter((m) => header(m, 'Content-Type'))
    .map(listNotify);
}

function header(msg: string, name: string): string | undefined {
  return new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(msg)?.[1]?.trim();
}

/** Body of a traced message: everything after the first empty line, with the trace's LF endings back to CRLF. */
function body(msg: string): string {
  const i = msg.search(/\r?\n\r?\n/);
  return i < 0
    ? ''
    : msg
        .slice(i)
        .replace(/^\r?\n\r?\n/, '')
        .replace(/\r?\n/g, '\r\n')
        .replace(/\r\n$/, '');
}

interface ListNotify {
  rlmi: RlmiList;
  /** Member documents by Content-ID (without brackets). */
  parts: Map<string, { type: string; body: string }>;
  bytes: number;
  subscriptionState: string;
}

function listNotify(msg: string): ListNotify {
  const ct = header(msg, 'Content-Type')!;
  assert.match(ct, /^multipart\/related/);
  const b = body(msg);
  const mp = parseMultipart(b, ct);
  const root = relatedRoot(mp)!;
  assert.equal(root.contentType?.type, 'application/rlmi+xml');
  const parts = new Map<string, { type: string; body: string }>();
  for (const p of mp.parts)
    if (p !== root) parts.set(p.contentId!.replace(/^<|>$/g, ''), { type: p.contentType!.type, body: p.body });
  return {
    rlmi: parseRlmi(root.body),
    parts,
    bytes: Buffer.byteLength(b, 'utf8'),
    subscriptionState: header(msg, 'Subscription-State') ?? '',
  };
}

describe('Presence lists, partial state, filters and rate control through Kamailio', () => {
  let stack: TestStack;
  const auth = (u: string) => ['-au', u, '-ap', PW(u)];
  const xcap = (u: string) => new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, u, PW(u));
  /** Sets a presentity's "calendar" source over the external source API: one source, replaced each time. */
  const setSource = async (user: string, basic: 'open' | 'closed', note: string) => {
    const res = await fetch(`http://127.0.0.1:${stack.ports.isc}/presence/sip:${user}@example.com/sources/calendar`, {
      method: 'PUT',
      headers: { authorization: 'Bearer lists-token', 'content-type': 'application/pidf+xml', expires: '600' },
      body: `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:${user}@example.com"><tuple id="cal"><status><basic>${basic}</basic></status><note>${note}</note></tuple></presence>`,
    });
    assert.equal(res.status, 204);
  };
  const publish = async (user: string, basic: 'open' | 'closed', note: string) => {
    const run = await stack.sipp(
      { name: `pub-${user}`, xml: publisherScenario([{ kind: 'initial', basic, note, expires: 600, expect: 200 }]) },
      { set: { user }, args: auth(user) },
    );
    assert.equal(run.exitCode, 0, run.stdout);
  };

  before(async () => {
    // an open domain with "allow" by default: the 500 members need no provisioning or rules
    stack = await TestStack.start(portsFrom(6060), {
      PRESENCE_OPEN_DOMAIN: 'true',
      PRESENCE_DEFAULT_SUB_HANDLING: 'allow',
      PRESENCE_MAX_NOTIFY_BYTES: String(MAX_NOTIFY),
      PRESENCE_EXTERNAL_TOKEN: 'lists-token',
    });
    for (const u of USERS) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
    // carol wants to be asked, dave blocks alice; bob allows her (by default)
    assert.equal(
      (
        await xcap('carol').put(
          '/xcap-root/pres-rules/users/sip:carol@example.com/index',
          rules('confirm', 'sip:alice@example.com'),
          'application/auth-policy+xml',
        )
      ).status,
      201,
    );
    assert.equal(
      (
        await xcap('dave').put(
          '/xcap-root/pres-rules/users/sip:dave@example.com/index',
          rules('block', 'sip:alice@example.com'),
          'application/auth-policy+xml',
        )
      ).status,
      201,
    );
    for (const u of ['bob', 'carol', 'dave']) await publish(u, 'open', `${u} is in`);
    const put = await xcap('alice').put(
      '/xcap-root/rls-services/users/sip:alice@example.com/index',
      rlsServices(['bob', 'carol', 'dave']),
      'application/rls-services+xml',
    );
    assert.equal(put.status, 201, put.body);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('serves a 3-member list: allowed, pending and blocked members, then a partial NOTIFY for one change', async () => {
    const sub = stack.sipp(
      {
        name: 'list-sub',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: EVENTLIST, more: 1 }),
      },
      { set: { user: 'alice', target: 'alice-friends' }, args: auth('alice'), timeoutMs: 30000 },
    );
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    await publish('bob', 'closed', 'bob went out');
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(run.messages, /SIP\/2\.0 200 OK[\s\S]*?Require: eventlist/);
    const [first, second] = listNotifies(run);

    assert.equal(first!.rlmi.fullState, true);
    assert.equal(first!.rlmi.uri, 'sip:alice-friends@example.com');
    const byUri = new Map(first!.rlmi.resources.map((r) => [r.uri, r]));
    assert.deepEqual([...byUri.keys()].sort(), [
      'sip:bob@example.com',
      'sip:carol@example.com',
      'sip:dave@example.com',
    ]);
    const bob = byUri.get('sip:bob@example.com')!.instances[0]!;
    assert.equal(bob.state, 'active');
    assert.match(first!.parts.get(bob.cid!)!.body, /bob is in/);
    assert.equal(byUri.get('sip:carol@example.com')!.instances[0]!.state, 'pending');
    assert.deepEqual(byUri.get('sip:dave@example.com')!.instances[0], {
      id: byUri.get('sip:dave@example.com')!.instances[0]!.id,
      state: 'terminated',
      reason: 'rejected',
    });
    // neither the pending nor the blocked member's document leaks
    assert.equal(first!.parts.size, 1);
    assert.doesNotMatch(run.messages, /carol is in|dave is in/);

    assert.equal(second!.rlmi.fullState, false);
    assert.equal(second!.rlmi.version, first!.rlmi.version + 1);
    assert.deepEqual(
      second!.rlmi.resources.map((r) => r.uri),
      ['sip:bob@example.com'],
    );
    assert.match([...second!.parts.values()][0]!.body, /bob went out/);

    // one record per list dialog, with the number of resources
    const cdrs = await eventually(
      () => {
        const lines = stack
          .cdrLines()
          .filter((c) => c.sipMethod === 'SUBSCRIBE' && c.sessionId === header(notifies(run)[0]!, 'Call-ID'));
        return lines.some((c) => c.outcome === 'subscription-closed') ? lines : undefined;
      },
      5000,
      'list subscription CDRs',
    );
    assert.ok(
      cdrs.every(
        (c) =>
          c.calledPartyAddress === 'sip:alice-friends@example.com' && c.callingPartyAddress === 'sip:alice@example.com',
      ),
    );
    const opened = cdrs.find((c) => c.outcome === 'subscription-opened');
    assert.ok(opened, JSON.stringify(cdrs));
    assert.deepEqual(
      {
        list: (opened.extra as Record<string, unknown>).list,
        resources: (opened.extra as Record<string, unknown>).resources,
      },
      { list: true, resources: 3 },
    );
    const closed = cdrs.find((c) => c.outcome === 'subscription-closed');
    assert.equal((closed?.extra as Record<string, unknown> | undefined)?.resources, 3);
  });

  it('answers 421 with Require: eventlist to a list SUBSCRIBE without Supported: eventlist', async () => {
    const run = await stack.sipp(
      { name: 'list-421', xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, expectFinal: 421 }) },
      { set: { user: 'alice', target: 'alice-friends' }, args: auth('alice') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(run.messages, /SIP\/2\.0 421[^\n]*\n[\s\S]*?Require: eventlist/);
  });

  it('refuses a list to anyone but its owner', async () => {
    const run = await stack.sipp(
      {
        name: 'list-403',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: EVENTLIST, expectFinal: 403 }),
      },
      { set: { user: 'bob', target: 'alice-friends' }, args: auth('bob') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
  });

  it("never lets a service take over a user's address: bob's presence stays subscribable", async () => {
    // erin tries to make bob's address of record a list of hers
    const hijack =
      `<?xml version="1.0" encoding="UTF-8"?><rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">` +
      `<service uri="sip:bob@example.com"><list><rl:entry uri="sip:erin@example.com"/></list></service></rls-services>`;
    const put = await xcap('erin').put(
      '/xcap-root/rls-services/users/sip:erin@example.com/hijack',
      hijack,
      'application/rls-services+xml',
    );
    assert.equal(put.status, 409, put.body);
    assert.match(put.body, /constraint-failure/);
    // a plain SUBSCRIBE to bob (no eventlist) still reaches bob's presence
    const run = await stack.sipp(
      { name: 'hijack-sub', xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml' }) },
      { set: { user: 'alice', target: 'bob' }, args: auth('alice') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(notifies(run)[0]!, /bob is in|bob went out/);
  });

  it('gives a user provisioned after a service took that address their own presence back', async () => {
    // gina's service is in her namespace and nobody has the address yet: accepted
    const doc =
      `<?xml version="1.0" encoding="UTF-8"?><rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">` +
      `<service uri="sip:gina-pal@example.com"><list><rl:entry uri="sip:bob@example.com"/></list></service></rls-services>`;
    assert.equal(
      (
        await xcap('gina').put(
          '/xcap-root/rls-services/users/sip:gina@example.com/pal',
          doc,
          'application/rls-services+xml',
        )
      ).status,
      201,
    );
    // then the operator provisions a user with that very address
    assert.equal((await stack.provision('add', 'gina-pal', '--password', PW('gina-pal'))).code, 0);
    await publish('gina-pal', 'open', 'gina-pal is here');
    const run = await stack.sipp(
      { name: 'pal-sub', xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml' }) },
      { set: { user: 'alice', target: 'gina-pal' }, args: auth('alice') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(notifies(run)[0]!, /gina-pal is here/);
  });

  it("resolves a list with its owner's XCAP rights: a reference into another user's tree is refused, not disclosed", async () => {
    const secret =
      `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">` +
      `<list name="private"><entry uri="sip:bobs-secret-friend@example.com"/></list></resource-lists>`;
    assert.equal(
      (
        await xcap('bob').put(
          '/xcap-root/resource-lists/users/sip:bob@example.com/index',
          secret,
          'application/resource-lists+xml',
        )
      ).status,
      201,
    );
    const bobsList = `http://127.0.0.1:${stack.ports.xdm}/xcap-root/resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list%5b@name=%22private%22%5d`;
    // gina may not read it herself
    assert.equal((await xcap('gina').get(new URL(bobsList).pathname)).status, 403);
    const peek =
      `<?xml version="1.0" encoding="UTF-8"?><rls-services xmlns="urn:ietf:params:xml:ns:rls-services">` +
      `<service uri="sip:gina-peek@example.com"><resource-list>${bobsList}</resource-list></service></rls-services>`;
    assert.equal(
      (
        await xcap('gina').put(
          '/xcap-root/rls-services/users/sip:gina@example.com/index',
          peek,
          'application/rls-services+xml',
        )
      ).status,
      201,
    );
    const run = await stack.sipp(
      {
        name: 'list-peek',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: EVENTLIST, expectFinal: 403 }),
      },
      { set: { user: 'gina', target: 'gina-peek' }, args: auth('gina') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(run.messages, /SIP\/2\.0 403[\s\S]*?Warning: 399 [^\n]*may not read/);
    assert.doesNotMatch(run.messages, /bobs-secret-friend/);
  });

  it('changes an active list subscription at once when the list changes over XCAP', async () => {
    const sub = stack.sipp(
      {
        name: 'list-edit',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: EVENTLIST, more: 1 }),
      },
      { set: { user: 'alice', target: 'alice-friends' }, args: auth('alice'), timeoutMs: 30000 },
    );
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    const put = await xcap('alice').put(
      '/xcap-root/rls-services/users/sip:alice@example.com/index',
      rlsServices(['bob', 'carol', 'dave', 'erin']),
      'application/rls-services+xml',
    );
    assert.equal(put.status, 200, put.body);
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    const [, changed] = listNotifies(run);
    assert.equal(changed!.rlmi.fullState, true);
    assert.deepEqual(changed!.rlmi.resources.map((r) => r.uri).sort(), [
      'sip:bob@example.com',
      'sip:carol@example.com',
      'sip:dave@example.com',
      'sip:erin@example.com',
    ]);
  });

  it('subscribes once to a member of another domain (back-end SUBSCRIBE through Kamailio) and shows its NOTIFYs in the list', async () => {
    // a presence server of another domain on 127.0.0.2 (not one of our aliases)
    const remote = stack.sipp('remote-presence-server', {
      port: 5099,
      set: { note: 'carol abroad' },
      args: ['-i', '127.0.0.2', '-bind_local'],
      timeoutMs: 30000,
    });
    const doc =
      `<?xml version="1.0" encoding="UTF-8"?><rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">` +
      `<service uri="sip:frank-mixed@example.com"><list><rl:entry uri="sip:bob@example.com"/><rl:entry uri="sip:carol@127.0.0.2:5099"/></list></service>` +
      `<service uri="sip:frank-other@example.com"><list><rl:entry uri="sip:carol@127.0.0.2:5099"/></list></service></rls-services>`;
    assert.equal(
      (
        await xcap('frank').put(
          '/xcap-root/rls-services/users/sip:frank@example.com/index',
          doc,
          'application/rls-services+xml',
        )
      ).status,
      201,
    );
    const sub = stack.sipp(
      {
        name: 'list-remote',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: EVENTLIST, more: 1 }),
      },
      { set: { user: 'frank', target: 'frank-mixed' }, args: auth('frank'), timeoutMs: 30000 },
    );
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    const rem = await remote;
    assert.equal(rem.exitCode, 0, rem.stdout);
    // the back-end SUBSCRIBE came from the list server, not from the watcher
    assert.match(rem.messages, /SUBSCRIBE sip:carol@127\.0\.0\.2:5099 SIP\/2\.0[\s\S]*?From: <sip:rls@example\.com>/);
    const [first, second] = listNotifies(run);
    const carolFirst = first!.rlmi.resources.find((r) => r.uri === 'sip:carol@127.0.0.2:5099')!;
    assert.equal(carolFirst.instances[0]!.state, 'pending', 'no state from the other domain yet');
    const carol = second!.rlmi.resources.find((r) => r.uri === 'sip:carol@127.0.0.2:5099')!;
    assert.equal(carol.instances[0]!.state, 'active');
    assert.match(second!.parts.get(carol.instances[0]!.cid!)!.body, /carol abroad/);
    // a second list holding the same member shares the back-end subscription: no new SUBSCRIBE
    // (the remote sipp took exactly one), and it shows the state at once
    const other = await stack.sipp(
      {
        name: 'list-remote-2',
        xml: subscriberScenario({ event: 'presence', accept: LIST_ACCEPT, headers: EVENTLIST }),
      },
      { set: { user: 'frank', target: 'frank-other' }, args: auth('frank'), timeoutMs: 20000 },
    );
    assert.equal(other.exitCode, 0, other.stdout);
    const [shared] = listNotifies(other);
    assert.equal(shared!.rlmi.resources[0]!.instances[0]!.state, 'active');
    assert.match([...shared!.parts.values()][0]!.body, /carol abroad/);
  });

  it('splits the state of a 500-member buddy list across NOTIFYs within the size limit', async () => {
    const entries = Array.from({ length: 500 }, (_, i) => `<entry uri="sip:member${i}@example.com"/>`).join('');
    const put = await xcap('gina').put(
      '/xcap-root/resource-lists/users/sip:gina@example.com/index',
      `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="oma_buddylist">${entries}</list></resource-lists>`,
      'application/resource-lists+xml',
    );
    assert.equal(put.status, 201, put.body);
    // the first NOTIFY and its continuations; no member changes afterwards
    const probe = stack.sipp(
      {
        name: 'list-500',
        xml: subscriberScenario({
          event: 'presence',
          accept: LIST_ACCEPT,
          headers: EVENTLIST,
          more: 20,
          notifyTimeoutMs: 3000,
          unsubscribe: false,
        }),
      },
      { set: { user: 'gina', target: 'gina;pres-list=oma_buddylist' }, args: auth('gina'), timeoutMs: 30000 },
    );
    const run = await probe;
    const got = listNotifies(run);
    assert.ok(got.length > 1, `expected a split, got ${got.length} NOTIFY(s): ${run.stdout.slice(-2000)}`);
    for (const n of got) assert.ok(n.bytes <= MAX_NOTIFY, `a NOTIFY body of ${n.bytes} bytes is above ${MAX_NOTIFY}`);
    assert.equal(got[0]!.rlmi.fullState, true);
    assert.equal(got[0]!.rlmi.resources.length, 500, 'the full state names every member');
    for (const n of got.slice(1)) assert.equal(n.rlmi.fullState, false);
    got.forEach((n, i) => assert.equal(n.rlmi.version, got[0]!.rlmi.version + i));
    const documents = got.reduce((sum, n) => sum + n.parts.size, 0);
    assert.equal(
      documents,
      500,
      `every member document arrives exactly once; documents per NOTIFY: ${got.map((n) => n.parts.size).join(' ')}; sipp exit ${run.exitCode} after ${run.elapsedMs} ms: ${run.stdout.slice(-1500)}`,
    );
    const seen = new Set(got.flatMap((n) => n.rlmi.resources.filter((r) => r.instances[0]?.cid).map((r) => r.uri)));
    assert.equal(seen.size, 500);
  });

  it('sends partial PIDF to a watcher that accepts it: full first, then only what changed', async () => {
    await setSource('frank', 'open', 'first note');
    const sub = stack.sipp(
      {
        name: 'diff-sub',
        xml: subscriberScenario({
          event: 'presence',
          accept: 'application/pidf+xml, application/pidf-diff+xml',
          more: 2,
        }),
      },
      { set: { user: 'bob', target: 'frank' }, args: auth('bob'), timeoutMs: 30000 },
    );
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    await setSource('frank', 'open', 'second note');
    await stack.sippLogged(sub.dir, /NOTIFIED 1/);
    await setSource('frank', 'closed', 'second note');
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    const msgs = notifies(run);
    for (const m of msgs.slice(0, 3)) assert.equal(header(m, 'Content-Type'), 'application/pidf-diff+xml');
    assert.match(body(msgs[0]!), /<(\w+:)?pidf-full[^>]*version="1"/);
    let state = applyPidfPatch(undefined, body(msgs[0]!));
    for (const m of msgs.slice(1, 3)) {
      assert.match(body(m), /<(\w+:)?pidf-diff/);
      assert.doesNotMatch(body(m), /first note/, 'a partial document carries only the change');
      state = applyPidfPatch(state, body(m));
    }
    assert.equal(state.version, 3);
    assert.match(state.pidf, /second note/);
    assert.match(state.pidf, /<basic>closed<\/basic>/);
  });

  it('applies a filter: a note change is not notified, a change of basic status is', async () => {
    await setSource('erin', 'open', 'morning');
    const filter = `<?xml version="1.0" encoding="UTF-8"?>
<filter-set xmlns="urn:ietf:params:xml:ns:simple-filter" xmlns:pidf="urn:ietf:params:xml:ns:pidf">
  <ns-bindings><ns-binding prefix="pidf" urn="urn:ietf:params:xml:ns:pidf"/></ns-bindings>
  <filter id="basic-only"><trigger><changed>/pidf:presence/pidf:tuple/pidf:status/pidf:basic</changed></trigger></filter>
</filter-set>`;
    const sub = stack.sipp(
      {
        name: 'filter-sub',
        xml: subscriberScenario({
          event: 'presence',
          more: 1,
          body: { type: 'application/simple-filter+xml', text: filter },
        }),
      },
      { set: { user: 'bob', target: 'erin' }, args: auth('bob'), timeoutMs: 30000 },
    );
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    await setSource('erin', 'open', 'noon');
    await new Promise((r) => setTimeout(r, 700));
    await setSource('erin', 'closed', 'evening');
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    const msgs = notifies(run);
    assert.match(body(msgs[0]!), /morning/);
    assert.doesNotMatch(run.messages, /noon/, 'the note-only change was not notified');
    assert.match(body(msgs[1]!), /<basic>closed<\/basic>/);
  });

  it('answers an unsupported filter body type with 415', async () => {
    const run = await stack.sipp(
      {
        name: 'filter-415',
        xml: subscriberScenario({
          event: 'presence',
          expectFinal: 415,
          body: { type: 'text/plain', text: 'basic only please' },
        }),
      },
      { set: { user: 'bob', target: 'erin' }, args: auth('bob') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
  });

  it('coalesces a burst of changes into one NOTIFY with the latest state under max-rate (RFC 6446)', async () => {
    await setSource('dave', 'open', 'burst 0');
    const sub = stack.sipp(
      {
        name: 'rate-sub',
        xml: subscriberScenario({ event: 'presence;max-rate=0.25', more: 1, notifyTimeoutMs: 10000 }),
      },
      { set: { user: 'bob', target: 'dave' }, args: auth('bob'), timeoutMs: 30000 },
    );
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    const burstAt = Date.now();
    for (const n of [1, 2, 3]) await setSource('dave', 'open', `burst ${n}`);
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);
    const msgs = notifies(run);
    assert.match(header(msgs[0]!, 'Subscription-State')!, /;max-rate=0\.25/);
    // the initial NOTIFY, one NOTIFY with the last of the burst, then the final one
    assert.equal(msgs.length, 3, msgs.map((m) => header(m, 'Subscription-State')).join(' | '));
    assert.match(body(msgs[1]!), /burst 3/);
    assert.doesNotMatch(run.messages, /burst 1|burst 2/);
    assert.ok(Date.now() - burstAt >= 2000, 'the coalesced NOTIFY waited for the interval');
  });
});
