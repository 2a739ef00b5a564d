/**
 * The conference event package (RFC 4575) end to end: real Kamailio hands SUBSCRIBE
 * Event: conference for our conference URIs to the AS, sipp subscribes and answers NOTIFYs.
 *
 * The focus (INVITE, BYE, REFER to rooms and groups) is written on another branch and is not
 * in this one: the test drives the roster through its API instead, as a second AS instance
 * on the same store would (ConferenceRoster over the AS's SQLite file, with its own
 * store-backed change feed). The AS hears each Change 'conference' through the feed, as it
 * hears another instance's, and notifies the dialogs it holds. Every NOTIFY body is validated
 * against the RFC 4575 schema with xmllint.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StoreChangeFeed } from '../../as/src/cluster/store-change-feed.js';
import { ConferenceRoster } from '../../as/src/conference/roster.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { assertValidConferenceInfo } from '../helpers/conference-info-schema.js';
import { subscriberScenario } from './scenario-builder.js';
import { TestStack, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol', 'dave'];
const pw = (user: string) => `${user}-pw-1`;
const ROOM = 'sip:planning@example.com';

describe('conference event package (real Kamailio, sipp; roster driven through its API)', () => {
  let stack: TestStack;
  let store: SqliteStore;
  let feed: StoreChangeFeed;
  let roster: ConferenceRoster;

  const subscribe = (user: string, target: string, o: Parameters<typeof subscriberScenario>[0]) =>
    stack.sipp(
      { name: `conference-${user}`, xml: subscriberScenario(o) },
      { set: { user, target }, args: ['-au', user, '-ap', pw(user)], timeoutMs: 40000 },
    );

  before(async () => {
    stack = await TestStack.start(portsFrom(8060), { AS_SHARED_STORE: 'true', AS_FEED_POLL_MS: '50' });
    await stack.provisionUsers(USERS, pw);
    store = await SqliteStore.open(join(stack.dir, 'data'));
    feed = new StoreChangeFeed({ store, instance: 'test-focus', pollMs: 50, log: silentLogger() });
    await feed.start();
    roster = new ConferenceRoster(store, feed);
    await roster.open({
      _id: ROOM,
      kind: 'room',
      owner: 'sip:alice@example.com',
      subject: 'Release planning',
      maxParticipants: 20,
      focusInstance: 'test-focus',
    });
    await roster.upsertParticipant(ROOM, {
      uri: 'sip:bob@example.com',
      displayName: 'Bob',
      anonymous: false,
      status: 'connected',
      joiningMethod: 'dialed-in',
      endpoint: 'sip:bob@127.0.0.1:5999',
      joinedAt: new Date(),
    });
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await feed?.stop();
    await store?.close();
    await stack?.stop();
  });

  it('refuses a watcher who neither owns nor takes part (403) and an unknown conference (404)', async () => {
    const outsider = await subscribe('carol', 'planning', { event: 'conference', expectFinal: 403 });
    assert.equal(outsider.exitCode, 0, outsider.stdout);
    assert.match(outsider.messages, /^Warning: 399 [^\r\n]*only the owner and the participants may watch/m);
    const unknown = await subscribe('bob', 'nothing-here', { event: 'conference', expectFinal: 404 });
    assert.equal(unknown.exitCode, 0, unknown.stdout);
  });

  it('the owner may watch without taking part: full state, then un-SUBSCRIBE', async () => {
    const r = await subscribe('alice', 'planning', { event: 'conference', accept: 'application/conference-info+xml' });
    assert.equal(r.exitCode, 0, r.stdout);
    const doc = /<\?xml[\s\S]*?<\/conference-info>/.exec(r.messages)?.[0];
    assert.ok(doc, r.messages);
    assertValidConferenceInfo(doc);
    assert.match(doc, /state="full"/);
    assert.match(doc, /<user entity="sip:bob@example\.com"/);
  });

  it('a participant gets the full state, partial states as the roster changes (versions growing), and a final NOTIFY when it ends', async () => {
    const sub = subscribe('bob', 'planning', {
      event: 'conference',
      accept: 'application/conference-info+xml',
      more: 3,
      unsubscribe: false,
    });
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    // someone dialled out to carol, who is ringing
    await roster.upsertParticipant(ROOM, {
      uri: 'sip:carol@example.com',
      anonymous: false,
      status: 'alerting',
      joiningMethod: 'dialed-out',
      invitedBy: 'sip:bob@example.com',
    });
    await stack.sippLogged(sub.dir, /NOTIFIED 1/);
    // dave joins asking for privacy
    await roster.upsertParticipant(ROOM, {
      uri: 'sip:dave@example.com',
      displayName: 'Dave Secret',
      anonymous: true,
      status: 'connected',
      joiningMethod: 'dialed-in',
      endpoint: 'sip:dave@127.0.0.1:5998',
      dialog: { callId: 'dave-call', remoteTag: 'd1', localTag: 'f1' },
      joinedAt: new Date(),
    });
    await stack.sippLogged(sub.dir, /NOTIFIED 2/);
    await roster.end(ROOM);
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);

    const notifies = [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
    assert.equal(notifies.length, 4, `four NOTIFYs expected, trace:\n${run.messages}`);
    const docs = notifies.slice(0, 3).map((n) => {
      const doc = /<\?xml[\s\S]*?<\/conference-info>/.exec(n)?.[0];
      assert.ok(doc, n);
      assert.match(n, /Content-Type: application\/conference-info\+xml/);
      assertValidConferenceInfo(doc);
      return doc;
    });
    for (const n of notifies) assert.match(n, /Event: conference/);
    const versions = docs.map((d) => Number(/version="(\d+)"/.exec(d)?.[1]));
    assert.ok(versions[0]! < versions[1]! && versions[1]! < versions[2]!, `versions grow: ${versions.join(', ')}`);

    assert.match(docs[0]!, /state="full"/);
    assert.match(docs[0]!, /<subject>Release planning<\/subject>/);
    assert.match(
      docs[0]!,
      /<user entity="sip:bob@example\.com" state="full"><display-text>Bob<\/display-text><endpoint entity="sip:bob@127\.0\.0\.1:5999"><status>connected<\/status>/,
    );
    assert.match(docs[0]!, /<type>message<\/type>/);

    assert.match(docs[1]!, /state="partial"/);
    assert.match(
      docs[1]!,
      /<user entity="sip:carol@example\.com" state="full"><endpoint><status>alerting<\/status><joining-method>dialed-out<\/joining-method><joining-info><by>sip:bob@example\.com<\/by>/,
    );
    assert.doesNotMatch(docs[1]!, /sip:bob@example\.com" state/, 'bob did not change: not repeated');

    assert.match(docs[2]!, /state="partial"/);
    assert.match(
      docs[2]!,
      /<user entity="sip:anonymous-[0-9a-f]+@anonymous\.invalid" state="full"><display-text>Anonymous<\/display-text>/,
    );
    assert.doesNotMatch(docs[2]!, /dave|Dave Secret|5998/, 'nothing of the anonymous participant shows');

    assert.match(notifies[3]!, /Subscription-State: terminated;reason=noresource/);
    // the final NOTIFY carries the conference's final state in full: nobody connected, not active
    const last = /<\?xml[\s\S]*?<\/conference-info>/.exec(notifies[3]!)?.[0];
    assert.ok(last, `the final NOTIFY has a body:\n${notifies[3]}`);
    assert.match(notifies[3]!, /Content-Type: application\/conference-info\+xml/);
    assertValidConferenceInfo(last);
    assert.match(last, /state="full"/);
    assert.ok(Number(/version="(\d+)"/.exec(last)?.[1]) > versions[2]!, 'its version follows the others');
    assert.match(last, /<user-count>0<\/user-count><active>false<\/active>/);
    assert.doesNotMatch(last, /<status>connected<\/status>/);
    assert.match(last, /<user entity="sip:bob@example\.com" state="full">[^]*?<status>disconnected<\/status>/);
  });

  it('SUBSCRIBE to a conference that ended: 404', async () => {
    const r = await subscribe('bob', 'planning', { event: 'conference', expectFinal: 404 });
    assert.equal(r.exitCode, 0, r.stdout);
  });
});
