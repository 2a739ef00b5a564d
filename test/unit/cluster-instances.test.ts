/**
 * Two AS instances on one store, inside one process: the reactions declared in
 * as/src/reactions.ts run on the instance that made a change and on the other (through the
 * store's change feed) as declared; subscription dialogs are notified by the instance holding
 * them only, and adopted by another when it dies. Kamailio and the other services are fakes
 * that record what they were asked.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Charging } from '../../as/src/charging/charging.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import { StoreChangeFeed } from '../../as/src/cluster/store-change-feed.js';
import type { EventPackage, Subscription, SubscriptionEvent } from '../../as/src/events/event-package.js';
import { Notifier } from '../../as/src/events/notifier.js';
import { SubscriptionCharging } from '../../as/src/events/subscription-charging.js';
import { storedSubscription } from '../helpers/subscription-fixture.js';
import type { IscCall } from '../../as/src/isc/dispatcher.js';
import type { UacClient, UacRequest } from '../../as/src/isc/uac.js';
import { parseSipMessage, type SipRequest } from '../../as/src/sip/message.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { Publications } from '../../as/src/presence/publications.js';
import { Reactions, type ReactingParts } from '../../as/src/reactions.js';
import { Registrations } from '../../as/src/registrations/registrations.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { REACTION_FAILURES } from '../../as/src/util/contain.js';
import { TypedEmitter } from '../../as/src/util/typed-emitter.js';
import { XdmDocuments } from '../../as/src/xdm/document-store.js';
import { sleep, until } from '../helpers/until.js';

const ALICE = 'sip:alice@example.com';
/** The reacting services of one instance, recording each call as "service.method arg". */
class Recorder extends TypedEmitter<{ subscription: [SubscriptionEvent]; changed: [string] }> {
  readonly calls: string[] = [];
  failOn?: string;

  record(call: string): void {
    this.calls.push(call);
    if (this.failOn && call.startsWith(this.failOn)) throw new Error(`${call} failed`);
  }
}

describe('two instances on one store', () => {
  let dir = '';
  let store: SqliteStore;
  const feeds: StoreChangeFeed[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cluster-instances-'));
    store = await SqliteStore.open(dir);
  });
  afterEach(async () => {
    for (const f of feeds.splice(0)) await f.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function instance(id: string) {
    const rec = new Recorder();
    const metrics = new Metrics();
    const docs = new XdmDocuments(store);
    const publications = new Publications(store, { log: silentLogger(), metrics });
    const registrations = new Registrations(store, silentLogger());
    const feed = new StoreChangeFeed({ store, instance: id, pollMs: 20, log: silentLogger(), metrics });
    feeds.push(feed);
    const parts = {
      docs,
      publications,
      registrations,
      backend: rec,
      notifier: Object.assign(rec, {
        resourceChanged: async (event: string, resource: string) =>
          void rec.record(`notifier.resourceChanged ${event} ${resource}`),
      }),
      presenceState: {
        forget: (e: string) => rec.record(`presenceState.forget ${e}`),
        clear: () => rec.record('presenceState.clear'),
      },
      authorizer: {
        forget: (e: string) => rec.record(`authorizer.forget ${e}`),
        clear: () => rec.record('authorizer.clear'),
      },
      imPolicies: {
        forget: (e: string) => rec.record(`imPolicies.forget ${e}`),
        clear: () => rec.record('imPolicies.clear'),
      },
      users: { forget: (e: string) => rec.record(`users.forget ${e}`), clear: () => rec.record('users.clear') },
      lists: {
        documentChanged: async (ref: { auid: string }) => rec.record(`lists.documentChanged ${ref.auid}`),
        forgetGrants: () => rec.record('lists.forgetGrants'),
      },
      presence: {
        rulesChanged: async (ref: { xui: string }) => rec.record(`presence.rulesChanged ${ref.xui}`),
        networkSource: async (c: { aor: string }) => rec.record(`presence.networkSource ${c.aor}`),
      },
      regPackage: { noteChange: (c: { kind: string }) => rec.record(`regPackage.noteChange ${c.kind}`) },
      forward: {
        registrationChanged: (c: { aor: string }) => rec.record(`forward.registrationChanged ${c.aor}`),
        presenceChanged: async (user: string) => rec.record(`forward.presenceChanged ${user}`),
        policyChanged: async (user: string) => rec.record(`forward.policyChanged ${user}`),
      },
      imActivity: { policyChanged: async (user: string) => rec.record(`imActivity.policyChanged ${user}`) },
      dropCredentials: async (user: string) => rec.record(`kamailio.dropCredentials ${user}`),
      identities: { load: async () => rec.record('identities.load') },
      dropIdentityCache: async () => rec.record('kamailio.dropIdentityCache'),
    } as unknown as ReactingParts;
    const reactions = new Reactions(feed, parts, { log: silentLogger(), metrics });
    await feed.start();
    return { id, rec, metrics, docs, publications, registrations, reactions };
  }

  it('a document written on B: B reacts at once, A through the feed, with the same reactions in the same order', async () => {
    const a = await instance('as-a');
    const b = await instance('as-b');
    await b.docs.put({ auid: 'pidf-manipulation', tree: 'users', xui: ALICE, path: 'index' }, '<presence/>', {
      kind: 'any',
    });
    const expected = [
      `presenceState.forget ${ALICE}`,
      'lists.documentChanged pidf-manipulation',
      `notifier.resourceChanged xcap-diff ${ALICE}`,
      `notifier.resourceChanged presence ${ALICE}`,
    ];
    await until("B's own reactions", () => b.rec.calls.length === expected.length, 200);
    assert.deepEqual(b.rec.calls, expected);
    await until("A's reactions through the feed", () => a.rec.calls.length === expected.length);
    assert.deepEqual(a.rec.calls, expected);
    await sleep(100);
    assert.equal(a.rec.calls.length, expected.length, 'applied once');
    assert.equal(b.rec.calls.length, expected.length, 'its own change read back is not applied again');
  });

  it("work that must happen once (the network presence source, deferred delivery, Kamailio's cache) runs on the instance that made the change only", async () => {
    const a = await instance('as-a');
    const b = await instance('as-b');
    await b.registrations.apply({
      type: 'registration',
      aor: ALICE,
      ts: '100',
      contacts: [{ uri: 'sip:alice@192.0.2.1', expires: Math.floor(Date.now() / 1000) + 600 }],
    });
    await b.reactions.userChanged('alice');
    await until("A's reactions", () => a.rec.calls.length === 4);
    await sleep(100);
    // (the user's reactions run beside the registration's: another resource)
    assert.deepEqual(
      a.rec.calls.filter((c) => !c.startsWith('users.') && !c.startsWith('identities.')),
      ['regPackage.noteChange registered', `notifier.resourceChanged reg ${ALICE}`],
    );
    assert.deepEqual(
      a.rec.calls.filter((c) => c.startsWith('users.')),
      ['users.forget alice'],
      'A heard the user change too: it only drops its copy of the record',
    );
    await until(
      () => `B's reactions (so far: ${b.rec.calls.join(', ')})`,
      () => b.rec.calls.length === 8,
    );
    assert.deepEqual(
      b.rec.calls.filter((c) => c.startsWith('users.')),
      ['users.forget alice'],
    );
    assert.deepEqual(
      b.rec.calls.filter((c) => !c.startsWith('kamailio.') && !c.startsWith('users.') && !c.startsWith('identities.')),
      [
        'regPackage.noteChange registered',
        `notifier.resourceChanged reg ${ALICE}`,
        `presence.networkSource ${ALICE}`,
        `forward.registrationChanged ${ALICE}`,
      ],
    );
    assert.deepEqual(
      b.rec.calls.filter((c) => c.startsWith('kamailio.')),
      ['kamailio.dropCredentials alice', 'kamailio.dropIdentityCache'],
    );
    // numbers and aliases are rebuilt on every instance (LocalDomain.canonical reads them)
    assert.ok(a.rec.calls.includes('identities.load') && b.rec.calls.includes('identities.load'));
  });

  it("keeps the order of one presentity's changes on the other instance, and a failing reaction stops nothing", async () => {
    const a = await instance('as-a');
    const b = await instance('as-b');
    a.rec.failOn = 'presenceState.forget';
    for (const s of ['one', 'two', 'three'])
      await b.publications.setSource(ALICE, 'presence', s, '<presence/>', 'application/pidf+xml');
    await until('three NOTIFY fan-outs on A', () => a.rec.calls.filter((c) => c.startsWith('notifier')).length === 3);
    assert.deepEqual(
      a.rec.calls,
      Array.from({ length: 3 }, () => [
        `presenceState.forget ${ALICE}`,
        `notifier.resourceChanged presence ${ALICE}`,
      ]).flat(),
    );
    assert.equal(a.metrics.value(REACTION_FAILURES, { reaction: 'publication:presence-cache' }), 3);
    // held messages (presence-aware delivery) are looked at once, by the instance whose publication it was
    await until("B's reactions", () => b.rec.calls.length === 9);
    assert.deepEqual(
      b.rec.calls,
      Array.from({ length: 3 }, () => [
        `presenceState.forget ${ALICE}`,
        `notifier.resourceChanged presence ${ALICE}`,
        `forward.presenceChanged ${ALICE}`,
      ]).flat(),
    );
  });
});

describe('subscription dialogs held by one instance', () => {
  let dir = '';
  let store: SqliteStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cluster-dialogs-'));
    store = await SqliteStore.open(dir);
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const pkg: EventPackage = {
    name: 'test',
    service: 'presence',
    defaultExpires: 600,
    minExpires: 60,
    maxExpires: 3600,
    contentTypes: ['text/plain'],
    admit: async () => ({ state: 'active', resource: ALICE }),
    content: async () => ({ contentType: 'text/plain', body: 'state' }),
  };

  /** What every notifier of a test handed to charging. */
  let charged: ChargeableEvent[] = [];
  beforeEach(() => {
    charged = [];
  });

  function notifier(instance: string, sent: UacRequest[]): Notifier {
    const uac = {
      send: async (r: UacRequest) => (sent.push(r), { code: 200, reason: 'OK', timedOut: false, at: new Date() }),
    };
    const n = new Notifier({
      store,
      uac: uac as unknown as UacClient,
      contact: 'sip:notifier@127.0.0.1',
      instance,
      log: silentLogger(),
      metrics: new Metrics(),
    }).register(pkg);
    const charging = { record: async (e: ChargeableEvent) => void charged.push(e) } as unknown as Charging;
    new SubscriptionCharging(charging, { log: silentLogger() }).attach(n);
    return n;
  }

  /** A live dialog of bob watching alice, held by `owner` (its CSeq ceiling stored at 64). */
  const dialog = (owner: string): Subscription => storedSubscription('call|ft|tt', 'test', ALICE, { owner });

  /** Two started notifiers on the store, and the dialog, held by the first. */
  async function twoNotifiers() {
    const sentA: UacRequest[] = [];
    const sentB: UacRequest[] = [];
    const a = notifier('as-a', sentA);
    const b = notifier('as-b', sentB);
    // stored before the instances start, as after a restart: each learns the dialogs it holds from the store
    await store.collection<Subscription>('subscriptions').insertOne(dialog('as-a'));
    await a.start();
    await b.start();
    return { a, b, sentA, sentB };
  }

  const cseqs = (sent: UacRequest[]) =>
    sent.map((r) => Number(r.headers.find(([n]) => n === 'CSeq')![1].split(' ')[0]));

  it('only the holder notifies; after it dies another adopts the dialog and goes on above its CSeqs', async () => {
    const { a, b, sentA, sentB } = await twoNotifiers();

    assert.equal(await b.resourceChanged('test', ALICE), 0, 'B does not hold the dialog');
    assert.equal(await a.resourceChanged('test', ALICE), 1);
    await until("A's NOTIFY", () => sentA.length === 1);
    assert.equal(sentB.length, 0);

    // A dies: B adopts the dialog (what the dialog-adoption job does for a lapsed heartbeat)
    a.stop();
    assert.equal(await b.adopt('as-a'), 1);
    assert.equal(await b.adopt('as-a'), 0, 'adopted once');
    // the adopter sends the full state at once (changes made while nobody held it reached nobody)
    await until("B's NOTIFY on adoption", () => sentB.length === 1);
    assert.equal(await b.resourceChanged('test', ALICE), 1);
    await until("B's NOTIFY of the next change", () => sentB.length === 2);
    assert.ok(cseqs(sentB)[0]! > cseqs(sentA)[0]!, `B's CSeq ${cseqs(sentB)[0]} must follow A's ${cseqs(sentA)[0]}`);
    assert.ok(cseqs(sentB)[1]! > cseqs(sentB)[0]!);
    b.stop();
  });

  it('an in-dialog refresh served by the other instance moves the dialog there; the old holder goes quiet', async () => {
    const { a, b, sentA, sentB } = await twoNotifiers();
    assert.equal(await a.resourceChanged('test', ALICE), 1);
    await until("A's NOTIFY", () => sentA.length === 1);

    const refresh = [
      `SUBSCRIBE sip:notifier@127.0.0.1 SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-1',
      'From: <sip:bob@example.com>;tag=ft',
      `To: <${ALICE}>;tag=tt`,
      'Call-ID: call',
      'CSeq: 2 SUBSCRIBE',
      'Event: test',
      'Expires: 600',
      'Contact: <sip:bob@192.0.2.2>',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const call: IscCall = {
      req: {
        v: 1,
        service: 'presence',
        method: 'SUBSCRIBE',
        ruri: 'sip:notifier@127.0.0.1',
        srcIp: '127.0.0.1',
        srcPort: 5060,
        proto: 'udp',
        toTag: 'tt',
        ts: '0',
        msg: refresh,
      },
      sip: parseSipMessage(refresh) as SipRequest,
      receivedAt: new Date(),
      log: silentLogger(),
    };
    const decision = await b.handleSubscribe(call);
    assert.equal((decision as { code: number }).code, 200);
    await until("B's NOTIFY answering the refresh", () => sentB.length === 1);
    assert.ok(cseqs(sentB)[0]! > cseqs(sentA)[0]!, `B's CSeq ${cseqs(sentB)[0]} must follow A's ${cseqs(sentA)[0]}`);
    assert.equal((await store.collection<Subscription>('subscriptions').findOne({ _id: 'call|ft|tt' }))!.owner, 'as-b');

    assert.equal(await a.resourceChanged('test', ALICE), 0, 'A holds it no more');
    assert.equal(await b.resourceChanged('test', ALICE), 1);
    await until("B's second NOTIFY", () => sentB.length === 2);
    assert.equal(sentA.length, 1);
    await until("the refresh's partial record", () => charged.some((e) => e.outcome === 'subscription-refreshed'));
    assert.ok(
      charged.every((e) => e.incomplete === undefined),
      'a dialog moved by a refresh lost nothing: its records are complete',
    );
    a.stop();
    b.stop();
  });

  /** An un-SUBSCRIBE of the test dialog, handled by `n`; resolves with the closing record handed to charging. */
  async function unsubscribe(n: Notifier, cseq: number): Promise<ChargeableEvent> {
    const text = [
      `SUBSCRIBE sip:notifier@127.0.0.1 SIP/2.0`,
      `Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-u${cseq}`,
      'From: <sip:bob@example.com>;tag=ft',
      `To: <${ALICE}>;tag=tt`,
      'Call-ID: call',
      `CSeq: ${cseq} SUBSCRIBE`,
      'Event: test',
      'Expires: 0',
      'Contact: <sip:bob@192.0.2.2>',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const call: IscCall = {
      req: {
        v: 1,
        service: 'presence',
        method: 'SUBSCRIBE',
        ruri: 'sip:notifier@127.0.0.1',
        srcIp: '127.0.0.1',
        srcPort: 5060,
        proto: 'udp',
        toTag: 'tt',
        ts: '0',
        msg: text,
      },
      sip: parseSipMessage(text) as SipRequest,
      receivedAt: new Date(),
      log: silentLogger(),
    };
    assert.equal(((await n.handleSubscribe(call)) as { code: number }).code, 200);
    await until('the closing record', () => charged.some((e) => e.outcome === 'subscription-closed'));
    return charged.find((e) => e.outcome === 'subscription-closed')!;
  }

  it('a restart after an unclean stop marks the dialogs it held; a clean stop saves their counts and marks nothing', async () => {
    const sent: UacRequest[] = [];
    await store.collection<Subscription>('subscriptions').insertOne(dialog('as-a'));
    const first = notifier('as-a', sent);
    await first.start();
    assert.equal(await first.resourceChanged('test', ALICE), 1);
    await until('a NOTIFY', () => sent.length === 1);
    // clean: stopped and saved; the next run resumes with the exact count and nothing lost
    first.stop();
    await first.saveState();
    const second = notifier('as-a', sent);
    await second.start();
    assert.equal(
      (await store.collection<Subscription>('subscriptions').findOne({ _id: 'call|ft|tt' }))!.stateLost,
      undefined,
    );
    assert.equal(await second.resourceChanged('test', ALICE), 1);
    await until('a second NOTIFY', () => sent.length === 2);
    // unclean: the process dies (no saveState); the next run marks what it held
    second.stop();
    const third = notifier('as-a', sent);
    await third.start();
    const closing = await unsubscribe(third, 5);
    assert.deepEqual(closing.incomplete, { acrInterimLost: 'unknown' });
    assert.equal(
      (closing.extra as { notifyCount: number }).notifyCount >= 1,
      true,
      'the count saved at the clean stop survives',
    );
    third.stop();
  });

  it('after a clean stop and start the closing record is complete, with the exact NOTIFY count', async () => {
    const sent: UacRequest[] = [];
    await store.collection<Subscription>('subscriptions').insertOne(dialog('as-a'));
    const first = notifier('as-a', sent);
    await first.start();
    // two NOTIFYs: the store learns the count at the first (a CSeq reservation), not at the second
    assert.equal(await first.resourceChanged('test', ALICE), 1);
    await until('a NOTIFY', () => sent.length === 1);
    assert.equal(await first.resourceChanged('test', ALICE), 1);
    await until('a second NOTIFY', () => sent.length === 2);
    first.stop();
    await first.saveState();
    const second = notifier('as-a', sent);
    await second.start();
    const closing = await unsubscribe(second, 4);
    assert.equal(closing.incomplete, undefined);
    // two NOTIFYs before the restart, the final one after it
    assert.equal((closing.extra as { notifyCount: number }).notifyCount, 3);
    second.stop();
  });

  it('a dialog adopted from a dead instance: its records from then on say interim records may be lost', async () => {
    const { a, b, sentB } = await twoNotifiers();
    a.stop();
    assert.equal(await b.adopt('as-a'), 1);
    await until("B's NOTIFY on adoption", () => sentB.length === 1);
    const unsubscribe = [
      `SUBSCRIBE sip:notifier@127.0.0.1 SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK-2',
      'From: <sip:bob@example.com>;tag=ft',
      `To: <${ALICE}>;tag=tt`,
      'Call-ID: call',
      'CSeq: 3 SUBSCRIBE',
      'Event: test',
      'Expires: 0',
      'Contact: <sip:bob@192.0.2.2>',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const call: IscCall = {
      req: {
        v: 1,
        service: 'presence',
        method: 'SUBSCRIBE',
        ruri: 'sip:notifier@127.0.0.1',
        srcIp: '127.0.0.1',
        srcPort: 5060,
        proto: 'udp',
        toTag: 'tt',
        ts: '0',
        msg: unsubscribe,
      },
      sip: parseSipMessage(unsubscribe) as SipRequest,
      receivedAt: new Date(),
      log: silentLogger(),
    };
    assert.equal(((await b.handleSubscribe(call)) as { code: number }).code, 200);
    await until('the closing record', () => charged.some((e) => e.outcome === 'subscription-closed'));
    assert.deepEqual(charged.find((e) => e.outcome === 'subscription-closed')!.incomplete, {
      acrInterimLost: 'unknown',
    });
    b.stop();
  });
});
