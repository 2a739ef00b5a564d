/**
 * Deferred messaging of the IM server over the real embedded store: the message store
 * (order, quota, exactly-once removal, network storage, leases), store-and-forward (drain on
 * registration, retries, final failures, expiry, delivery notifications, handOver), the
 * conversation history and the per-user IM policies. Only what talks to the network is faked:
 * the UAC (scripted replies, recorded requests) and charging (collected events).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Charging } from '../../as/src/charging/charging.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import { deliveryNotifications } from '../../as/src/im/delivery-notifications.js';
import { parseCpim } from '../../as/src/im/formats/cpim.js';
import { parseImdn } from '../../as/src/im/formats/imdn.js';
import { ConversationHistory, type HistoryInput } from '../../as/src/im/history.js';
import { ImPolicies } from '../../as/src/im/im-policies.js';
import { MessageStore, type ImMessage, type StoredMessage } from '../../as/src/im/message-store.js';
import { StoreAndForward, type StoreAndForwardLimits } from '../../as/src/im/store-and-forward.js';
import type { UacClient, UacOutcome, UacRequest } from '../../as/src/isc/uac.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { Registrations } from '../../as/src/registrations/registrations.js';
import { openStore } from '../../as/src/store/open-store.js';
import type { Store } from '../../as/src/store/port.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';
import { XdmDocuments, type DocumentRef } from '../../as/src/xdm/document-store.js';
import { defaultImPolicy, IM_POLICY_NS, imPolicyUsage, type ImPolicy } from '../../as/src/xdm/usages/im-policy.js';
import { parsePidf, type PresenceDoc } from '../../as/src/presence/pidf/index.js';

const DOMAIN = 'example.com';
const ALICE = 'sip:alice@example.com';
const BOB = 'sip:bob@example.com';
const CAROL = 'sip:carol@example.com';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `cond` every 20 ms for up to `timeoutMs`; fails the test with `what` when it never holds. */
async function until(
  what: string | (() => string),
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 3000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end)
      assert.fail(`timed out after ${timeoutMs} ms waiting for: ${typeof what === 'string' ? what : what()}`);
    await sleep(20);
  }
}

/** One temp directory with an open embedded store per test. */
interface StoreEnv {
  dir: string;
  store: Store;
}

async function openTempStore(): Promise<StoreEnv> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ims-im-deferred-'));
  const store = await openStore({ dataDir: dir });
  assert.equal(store.engine, 'embedded');
  return { dir, store };
}

async function closeTempStore(env: StoreEnv | undefined): Promise<void> {
  if (!env) return;
  await env.store.close();
  await rm(env.dir, { recursive: true, force: true });
}

let msgNo = 0;
/** An instant message from Alice (a local user) unless overridden. */
function im(body: string, over: Partial<ImMessage> = {}): ImMessage {
  const n = ++msgNo;
  return {
    sender: ALICE,
    fromHeader: `<${ALICE}>;tag=from-${n}`,
    contentType: 'text/plain;charset=UTF-8',
    body,
    sentAt: new Date(Date.now() - 5_000),
    callId: `orig-call-${n}@ua.example.com`,
    chargingVector: `icid-value=icid-${n};orig-ioi=example.com`,
    privacy: false,
    kind: 'message',
    ...over,
  };
}

/** The value of a header of a recorded request (first occurrence, case-insensitive name). */
function header(req: UacRequest, name: string): string | undefined {
  return req.headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/** The UAC fake: answers each request with the code `answer` picks (200 by default) and records it. */
class FakeUac {
  readonly requests: UacRequest[] = [];
  answer: (req: UacRequest, index: number) => number = () => 200;

  async send(req: UacRequest): Promise<UacOutcome> {
    const index = this.requests.push(req) - 1;
    const code = this.answer(req, index);
    return { code, reason: code < 300 ? 'OK' : `Failure ${code}`, timedOut: false, at: new Date() };
  }

  bodiesTo(uri: string): string[] {
    return this.requests.filter((r) => r.ruri === uri).map((r) => r.body ?? '');
  }
}

/** The charging fake: collects every event. */
class FakeCharging {
  readonly events: ChargeableEvent[] = [];

  async record(event: ChargeableEvent): Promise<void> {
    this.events.push(event);
  }
}

let regTs = 1_000;
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

async function register(regs: Registrations, aor: string): Promise<void> {
  const user = aor.slice(4, aor.indexOf('@'));
  const changes = await regs.apply({
    type: 'registration',
    aor,
    ts: String(++regTs),
    contacts: [{ uri: `sip:${user}@192.0.2.10:5060`, expires: inAnHour() }],
  });
  assert.equal(changes[0]?.kind, 'registered');
}

const SMALL_LIMITS: StoreAndForwardLimits = {
  deferredExpirySeconds: 3600,
  notificationExpirySeconds: 600,
  deferredQuota: 100,
  retryBaseSeconds: 1,
  retryMaxSeconds: 3600,
  maxDeliveryAttempts: 100,
  sweepSeconds: 1,
};

/** Everything a StoreAndForward test works with. */
interface Harness {
  forward: StoreAndForward;
  messages: MessageStore;
  regs: Registrations;
  uac: FakeUac;
  charging: FakeCharging;
  metrics: Metrics;
  docs: XdmDocuments;
  /** What the recipients' own presence says (presence-aware delivery), by user. */
  presence: Map<string, PresenceDoc>;
  policies: ImPolicies;
  /** Sweeps that got as far as asking for due recipients (counted when the answer arrives). */
  sweepsSeen(): number;
  /** Resolves when no drain runs and `requests` requests were sent. */
  settled(requests: number): Promise<void>;
}

describe('IM deferred messaging', () => {
  let env: StoreEnv | undefined;
  const started: StoreAndForward[] = [];

  beforeEach(async () => {
    env = await openTempStore();
  });

  afterEach(async () => {
    // stop every StoreAndForward (no timer left), let running drains end, then close the store
    for (const f of started.splice(0)) {
      await f.stop();
      await until('drains to end after stop()', () => f.activeDrains === 0);
    }
    await closeTempStore(env);
    env = undefined;
  });

  function storeOf(): Store {
    assert.ok(env, 'store not open');
    return env.store;
  }

  /** A started StoreAndForward over the real store, with the network faked; waits for its first sweep. */
  async function harness(
    limits: Partial<StoreAndForwardLimits> = {},
    opts: { beforeStart?: (h: Harness) => Promise<void> } = {},
  ): Promise<Harness> {
    const store = storeOf();
    const log = silentLogger();
    const messages = new MessageStore(store, 'node-a');
    let sweeps = 0;
    const due = messages.dueRecipients.bind(messages);
    messages.dueRecipients = async (now, limit) => {
      const r = await due(now, limit);
      sweeps++;
      return r;
    };
    const regs = new Registrations(store, log);
    const docs = new XdmDocuments(store);
    await docs.start();
    const policies = new ImPolicies(docs);
    const uac = new FakeUac();
    const charging = new FakeCharging();
    const metrics = new Metrics();
    const presence = new Map<string, PresenceDoc>();
    const forward = new StoreAndForward({
      presenceOf: async (u) => presence.get(u),
      store: messages,
      uac: uac as unknown as UacClient,
      registrations: regs,
      charging: charging as unknown as Charging,
      policyOf: (u) => policies.of(u),
      domain: DOMAIN,
      limits: { ...SMALL_LIMITS, ...limits },
      metrics,
      log,
    });
    const h: Harness = {
      forward,
      messages,
      regs,
      uac,
      charging,
      metrics,
      docs,
      presence,
      policies,
      sweepsSeen: () => sweeps,
      settled: (n) =>
        until(
          () =>
            `${n} requests sent and no drain running (sent: ${uac.requests.map((r) => `${r.body} ${header(r, 'CSeq')}`).join(', ')}; drains: ${forward.activeDrains})`,
          () => uac.requests.length === n && forward.activeDrains === 0,
        ),
    };
    // what as/src/reactions.ts declares for a registration change made here
    regs.on('change', (ch) => forward.registrationChanged(ch));
    await opts.beforeStart?.(h);
    await forward.start();
    started.push(forward);
    // the sweep start() launches has read the due recipients: from here on, sweeps come every sweepSeconds
    await until('the first sweep', () => sweeps >= 1);
    return h;
  }

  async function pendingOf(h: Harness, recipient: string): Promise<StoredMessage[]> {
    return h.messages.pending(recipient, 100);
  }

  // ------------------------------------------------------------------ MessageStore

  describe('MessageStore', () => {
    it('gives messages saved in order increasing seq, even within one millisecond, and lists them oldest first', async () => {
      const ms = new MessageStore(storeOf(), 'node-a');
      await ms.start();
      const sentAt = new Date('2024-05-01T10:00:00.123Z');
      const saved: StoredMessage[] = [];
      for (const body of ['one', 'two', 'three', 'four']) {
        const r = await ms.save(BOB, im(body, { sentAt }), { expiresAt: new Date(Date.now() + 60_000), quota: 10 });
        assert.notEqual(r, 'full');
        saved.push(r as StoredMessage);
      }
      for (let i = 1; i < saved.length; i++) {
        assert.ok(saved[i]!.seq > saved[i - 1]!.seq, `seq ${saved[i]!.seq} must sort after ${saved[i - 1]!.seq}`);
      }
      const first = saved[0]!;
      assert.equal(first._id, first.seq);
      assert.match(first.seq, /^01714557600123-\d{6}-node-a$/);
      assert.equal(first.recipient, BOB);
      assert.equal(first.state, 'pending');
      assert.equal(first.attempts, 0);
      assert.equal(first.size, 3);
      assert.deepEqual(first.nextAttemptAt, sentAt);

      // pending() lists them in save order, and honours its limit
      const pending = await ms.pending(BOB, 10);
      assert.deepEqual(
        pending.map((m) => m.body),
        ['one', 'two', 'three', 'four'],
      );
      assert.deepEqual(
        (await ms.pending(BOB, 2)).map((m) => m.body),
        ['one', 'two'],
      );
      assert.ok(pending[0]!.sentAt instanceof Date);
      assert.deepEqual(await ms.pending(CAROL, 10), []);
    });

    it('an earlier sentAt sorts first whatever the save order', async () => {
      const ms = new MessageStore(storeOf(), 'node-a');
      const q = { expiresAt: new Date(Date.now() + 60_000), quota: 10 };
      await ms.save(BOB, im('later', { sentAt: new Date(2_000_000) }), q);
      await ms.save(BOB, im('earlier', { sentAt: new Date(1_000_000) }), q);
      assert.deepEqual(
        (await ms.pending(BOB, 10)).map((m) => m.body),
        ['earlier', 'later'],
      );
    });

    it('refuses a message beyond the quota with "full", per recipient', async () => {
      const ms = new MessageStore(storeOf(), 'node-a');
      const q = { expiresAt: new Date(Date.now() + 60_000), quota: 2 };
      assert.notEqual(await ms.save(BOB, im('1'), q), 'full');
      assert.notEqual(await ms.save(BOB, im('2'), q), 'full');
      assert.equal(await ms.save(BOB, im('3'), q), 'full');
      assert.equal(await ms.count(BOB), 2);
      // another recipient has its own quota
      assert.notEqual(await ms.save(CAROL, im('c'), q), 'full');
      // kept copies count too
      const kept = await ms.save(CAROL, im('k'), { ...q, state: 'kept' });
      assert.notEqual(kept, 'full');
      assert.equal(await ms.save(CAROL, im('c2'), q), 'full');
    });

    it('removes a message exactly once', async () => {
      const ms = new MessageStore(storeOf(), 'node-a');
      const saved = (await ms.save(BOB, im('once'), {
        expiresAt: new Date(Date.now() + 60_000),
        quota: 10,
      })) as StoredMessage;
      // the recipient must match when given
      assert.equal(await ms.remove(saved._id, CAROL), false);
      const [a, b] = await Promise.all([ms.remove(saved._id, BOB), ms.remove(saved._id, BOB)]);
      assert.deepEqual([a, b].sort(), [false, true]);
      assert.equal(await ms.remove(saved._id, BOB), false);
      assert.equal(await ms.get(BOB, saved._id), null);
      assert.equal(await ms.count(BOB), 0);
    });

    it('frees a place in a full mailbox when a message is removed, and corrects a drifted counter', async () => {
      const store = storeOf();
      const ms = new MessageStore(store, 'node-a');
      const q = { expiresAt: new Date(Date.now() + 60_000), quota: 2 };
      const m1 = (await ms.save(BOB, im('one'), q)) as StoredMessage;
      await ms.save(BOB, im('two'), q);
      assert.equal(await ms.save(BOB, im('three'), q), 'full');
      assert.equal(await ms.remove(m1._id, BOB), true);
      assert.notEqual(await ms.save(BOB, im('three'), q), 'full', 'the removal freed a place');
      assert.equal(await ms.save(BOB, im('four'), q), 'full');
      // an instance that stopped between counting and storing leaves the counter too high
      await store.collection('im_mailboxes').updateOne({ _id: BOB }, { $set: { count: 99 } });
      const two = await ms.pending(BOB, 10);
      assert.equal(await ms.remove(two[0]!._id, BOB), true);
      assert.notEqual(await ms.save(BOB, im('five'), q), 'full', 'recounted from the messages themselves');
      assert.equal(await ms.count(BOB), 2);
    });

    it('keep() turns a pending message into a kept one that pending() no longer lists', async () => {
      const ms = new MessageStore(storeOf(), 'node-a');
      const q = { expiresAt: new Date(Date.now() + 60_000), quota: 10 };
      const m1 = (await ms.save(BOB, im('first'), q)) as StoredMessage;
      const m2 = (await ms.save(BOB, im('second'), q)) as StoredMessage;
      assert.equal(await ms.keep(m1._id), true);
      assert.equal(await ms.keep(m1._id), false, 'a kept message is not kept twice');
      assert.deepEqual(
        (await ms.pending(BOB, 10)).map((m) => m._id),
        [m2._id],
      );
      assert.equal((await ms.get(BOB, m1._id))?.state, 'kept');
      // the retrieval interface still lists both, oldest first, and pages with `after`
      assert.deepEqual(
        (await ms.list(BOB, { limit: 10 })).map((m) => [m.body, m.state]),
        [
          ['first', 'kept'],
          ['second', 'pending'],
        ],
      );
      assert.deepEqual(
        (await ms.list(BOB, { limit: 10, after: m1.seq })).map((m) => m.body),
        ['second'],
      );
      assert.equal(await ms.count(BOB), 2);
    });

    it('a lease is held by one instance until it expires or is released', async () => {
      const store = storeOf();
      const a = new MessageStore(store, 'node-a');
      const b = new MessageStore(store, 'node-b');
      const minute = () => new Date(Date.now() + 60_000);

      assert.equal(await a.lease(BOB, minute()), true);
      assert.equal(await b.lease(BOB, minute()), false, 'B cannot take a valid lease of A');
      assert.equal(await a.lease(BOB, minute()), true, 'A renews its own lease');
      // B releasing does not free A's lease
      await b.release(BOB);
      assert.equal(await b.lease(BOB, minute()), false);
      // other recipients are independent
      assert.equal(await b.lease(CAROL, minute()), true);
      assert.equal(await a.lease(CAROL, minute()), false);

      // release frees it for the other instance
      await a.release(BOB);
      assert.equal(await b.lease(BOB, minute()), true);
      assert.equal(await a.lease(BOB, minute()), false);
      await b.release(BOB);

      // a lease that ran out is taken over
      assert.equal(await a.lease(BOB, new Date(Date.now() - 1000)), true);
      assert.equal(await b.lease(BOB, minute()), true, 'B takes an expired lease');
      assert.equal(await a.lease(BOB, minute()), false);
      await b.release(BOB);

      // ... also one that was valid a moment ago
      assert.equal(await a.lease(BOB, new Date(Date.now() + 150)), true);
      assert.equal(await b.lease(BOB, minute()), false, 'still valid');
      await until('B to take the lease once it expired', () => b.lease(BOB, minute()));
      assert.equal(await a.lease(BOB, minute()), false);
    });
  });

  // ------------------------------------------------------------------ StoreAndForward: drains

  describe('StoreAndForward', () => {
    it('stores for an offline user and drains in order when the user registers', async () => {
      const h = await harness();
      const sentAt = new Date(Date.now() - 2_000);
      const sent = [
        im('first', { sentAt }),
        im('second', { sentAt }),
        im('third', { sentAt, privacy: true, fromHeader: '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=anon' }),
      ];
      const ids: string[] = [];
      for (const m of sent) {
        const r = await h.forward.defer(BOB, m);
        assert.equal(r.result, 'deferred');
        if (r.result === 'deferred') ids.push(r.id);
      }
      assert.equal(await h.messages.count(BOB), 3);
      assert.equal(h.uac.requests.length, 0, 'nothing is sent to an offline user');
      assert.equal(h.metrics.value('ims_as_im_deferred_total', { result: 'stored' }), 3);

      await register(h.regs, BOB);
      await h.settled(3);

      assert.deepEqual(
        h.uac.requests.map((r) => r.body),
        ['first', 'second', 'third'],
      );
      h.uac.requests.forEach((req, i) => {
        const m = sent[i]!;
        assert.equal(req.method, 'MESSAGE');
        assert.equal(req.ruri, BOB);
        assert.equal(req.viaCore, true);
        assert.equal(header(req, 'To'), `<${BOB}>`);
        assert.equal(header(req, 'From'), m.fromHeader);
        assert.equal(header(req, 'Date'), sentAt.toUTCString(), 'the recipient is told when the message was sent');
        assert.equal(header(req, 'Call-ID'), `${ids[i]}@${DOMAIN}`);
        assert.equal(header(req, 'CSeq'), '1 MESSAGE');
        assert.equal(header(req, 'Content-Type'), 'text/plain;charset=UTF-8');
        assert.equal(header(req, 'P-Charging-Vector'), m.chargingVector);
        assert.equal(header(req, 'P-Asserted-Identity'), m.privacy ? undefined : `<${ALICE}>`);
      });

      assert.equal(await h.messages.count(BOB), 0, 'each delivered message is removed');
      assert.equal(h.charging.events.length, 3, 'each delivered message is charged once');
      h.charging.events.forEach((ev, i) => {
        assert.equal(ev.service, 'im');
        assert.equal(ev.role, 'terminating');
        assert.equal(ev.outcome, 'delivered');
        assert.equal(ev.statusCode, 200);
        assert.equal(ev.sessionId, sent[i]!.callId);
        assert.equal(ev.callingParty, ALICE, 'the asserted sender is charged even when anonymous to the recipient');
        assert.equal(ev.calledParty, BOB);
        assert.deepEqual(ev.requestTime, sentAt);
        assert.deepEqual(ev.messageBody, {
          contentType: 'text/plain',
          contentLength: Buffer.byteLength(sent[i]!.body),
        });
        assert.equal(ev.extra?.deferred, true);
        assert.equal(ev.extra?.attempts, 1);
      });
      assert.equal(h.metrics.value('ims_as_im_deferred_delivered_total', { kind: 'message' }), 3);
    });

    it('a retryable failure stops the drain, keeps the message and its successors, and backs off', async () => {
      const h = await harness();
      const ids: string[] = [];
      const sent = ['m1', 'm2', 'm3'].map((body) => im(body));
      for (const m of sent) {
        const r = await h.forward.defer(BOB, m);
        assert.equal(r.result, 'deferred');
        if (r.result === 'deferred') ids.push(r.id);
      }
      // while Bob is offline a sweep puts his mailbox off: registering is what drains it
      await until('the offline mailbox to be postponed', async () =>
        (await pendingOf(h, BOB)).every((m) => m.nextAttemptAt.getTime() > Date.now() + 600_000),
      );

      h.uac.answer = () => 480;
      await register(h.regs, BOB);
      const failedAt = Date.now();
      await h.settled(1);

      assert.deepEqual(
        h.uac.requests.map((r) => r.body),
        ['m1'],
        'the drain stops at the first failure',
      );
      const left = await pendingOf(h, BOB);
      assert.deepEqual(
        left.map((m) => m.body),
        ['m1', 'm2', 'm3'],
      );
      const head = left[0]!;
      assert.equal(head.attempts, 1);
      assert.ok(
        head.nextAttemptAt.getTime() >= failedAt + 900,
        `next attempt ${head.nextAttemptAt.toISOString()} must be about retryBaseSeconds later`,
      );
      assert.ok(head.nextAttemptAt.getTime() <= Date.now() + 1_100);
      assert.deepEqual(
        left.slice(1).map((m) => m.attempts),
        [0, 0],
      );
      assert.equal(h.charging.events.length, 0, 'nothing charged yet');
      assert.equal(h.metrics.value('ims_as_im_deferred_retries_total', { code: '480' }), 1);

      // the sweep retries when due: same Call-ID, next CSeq, then the rest in order
      h.uac.answer = () => 200;
      await until('the retry', () => h.uac.requests.length === 4 && h.forward.activeDrains === 0);
      assert.deepEqual(
        h.uac.requests.map((r) => r.body),
        ['m1', 'm1', 'm2', 'm3'],
      );
      const [first, retry] = h.uac.requests;
      assert.equal(header(retry!, 'Call-ID'), header(first!, 'Call-ID'));
      assert.equal(header(retry!, 'Call-ID'), `${ids[0]}@${DOMAIN}`);
      assert.equal(header(retry!, 'CSeq'), '2 MESSAGE');
      assert.ok(Date.now() - failedAt >= 900, 'not retried before the backoff');
      assert.deepEqual(
        h.charging.events.map((e) => [e.sessionId, e.outcome, e.extra?.attempts]),
        [
          [sent[0]!.callId, 'delivered', 2],
          [sent[1]!.callId, 'delivered', 1],
          [sent[2]!.callId, 'delivered', 1],
        ],
      );
      assert.equal(await h.messages.count(BOB), 0);
    });

    it('does not retry before the backoff even when later messages wait behind the failed one', async () => {
      // a device that keeps answering 486 while registered: every new message is deferred behind the first
      const h = await harness({ retryBaseSeconds: 30 });
      await register(h.regs, BOB);
      await h.settled(0);
      h.uac.answer = () => 486;
      await h.forward.defer(BOB, im('m1'));
      await until('m1 tried', () => h.uac.requests.length >= 1 && h.forward.activeDrains === 0);
      const afterM1 = h.uac.requests.length;
      await h.forward.defer(BOB, im('m2'));
      // a new message makes the drain try the head again (and stop there)
      await until('the head tried again', () => h.uac.requests.length > afterM1 && h.forward.activeDrains === 0);
      const tries = h.uac.requests.length;
      assert.deepEqual(
        h.uac.requests.map((r) => r.body),
        new Array<string>(tries).fill('m1'),
        'only the head is tried',
      );
      assert.deepEqual(
        h.uac.requests.map((r) => header(r, 'CSeq')),
        h.uac.requests.map((_, i) => `${i + 1} MESSAGE`),
      );
      const [head] = await pendingOf(h, BOB);
      assert.equal(head?.attempts, tries);
      assert.ok(head!.nextAttemptAt.getTime() > Date.now() + 50_000, 'backoff of at least 60 s by now');

      // two full sweeps later nothing was retried: the head's backoff holds the whole mailbox
      const seen = h.sweepsSeen();
      await until('two more sweeps', () => h.sweepsSeen() >= seen + 2);
      await until('no drain running', () => h.forward.activeDrains === 0);
      assert.equal(
        h.uac.requests.length,
        tries,
        `retried before the backoff: ${h.uac.requests.map((r) => `${r.body} ${header(r, 'CSeq')}`).join(', ')}`,
      );
      assert.deepEqual(
        (await pendingOf(h, BOB)).map((m) => [m.body, m.attempts]),
        [
          ['m1', tries],
          ['m2', 0],
        ],
      );
    });

    it('a message the device keeps failing is given up after maxDeliveryAttempts: charged failed, sender told, the next ones delivered', async () => {
      const h = await harness({ maxDeliveryAttempts: 3 });
      h.forward.notificationFactory = deliveryNotifications(new LocalDomain(DOMAIN));
      await register(h.regs, ALICE);
      await h.forward.defer(
        BOB,
        im('poison', {
          imdn: { messageId: 'msg-poison-1', dateTime: '2024-05-01T10:00:00Z', positive: false, negative: true },
        }),
      );
      await h.forward.defer(BOB, im('good 1'));
      // the device fails this one every time (a 5xx it cannot get past), and takes the others
      h.uac.answer = (req) => (req.body === 'poison' ? 500 : 200);
      await register(h.regs, BOB);
      await until(
        'the poison given up and the next delivered',
        async () => (await h.messages.count(BOB)) === 0 && h.forward.activeDrains === 0,
        15000,
      );

      assert.deepEqual(
        h.uac.bodiesTo(BOB),
        ['poison', 'poison', 'poison', 'good 1'],
        'three attempts, then the queue goes on',
      );
      const outcomes = h.charging.events.map((e) => [e.outcome, e.statusCode, e.cause]);
      assert.deepEqual(outcomes, [
        ['failed', 500, 'unSuccessfulServiceDelivery'],
        ['delivered', 200, undefined],
      ]);
      assert.equal(h.charging.events[0]!.extra?.reason, 'gave up after 3 attempts (last answer 500)');
      const note = h.uac.requests.find((r) => r.ruri === ALICE);
      assert.ok(note, 'a failed notification went to Alice');
      assert.equal(parseImdn(parseCpim(note.body ?? '').content).status, 'failed');
      assert.equal(h.metrics.value('ims_as_im_deferred_given_up_total', { code: '500' }), 1);
    });

    it('a final failure removes the message, charges it rejected, notifies the sender and goes on', async () => {
      const h = await harness();
      h.forward.notificationFactory = deliveryNotifications(new LocalDomain(DOMAIN));
      await register(h.regs, ALICE);
      await h.forward.defer(
        BOB,
        im('bad', {
          imdn: { messageId: 'msg-bad-1', dateTime: '2024-05-01T10:00:00Z', positive: false, negative: true },
        }),
      );
      await h.forward.defer(BOB, im('good 1'));
      await h.forward.defer(BOB, im('good 2'));
      h.uac.answer = (req) => (req.body === 'bad' ? 415 : 200);

      await register(h.regs, BOB);
      await h.settled(4);

      assert.deepEqual(h.uac.bodiesTo(BOB), ['bad', 'good 1', 'good 2']);
      const note = h.uac.requests.find((r) => r.ruri === ALICE);
      assert.ok(note, 'a failed notification went to Alice');
      const imdn = parseImdn(parseCpim(note.body ?? '').content);
      assert.equal(imdn.kind, 'delivery');
      assert.equal(imdn.status, 'failed');
      assert.equal(imdn.messageId, 'msg-bad-1');

      assert.deepEqual(
        h.charging.events.map((e) => [e.outcome, e.statusCode]),
        [
          ['rejected', 415],
          ['delivered', 200],
          ['delivered', 200],
        ],
      );
      assert.equal(h.charging.events[0]!.extra?.reason, 'recipient answered 415');
      assert.equal(h.charging.events[0]!.extra?.deferred, true);
      assert.equal(await h.messages.count(BOB), 0);
      assert.equal(h.metrics.value('ims_as_im_deferred_refused_total', { code: '415' }), 1);
    });

    it('sends a positive delivery notification to a local sender who asked for one', async () => {
      const h = await harness();
      h.forward.notificationFactory = deliveryNotifications(new LocalDomain(DOMAIN));
      await register(h.regs, ALICE);
      await h.forward.defer(
        BOB,
        im('tell me', {
          imdn: { messageId: 'imdn-id-42', dateTime: '2024-05-01T10:00:00Z', positive: true, negative: false },
        }),
      );
      await h.forward.defer(BOB, im('no receipt wanted'));

      await register(h.regs, BOB);
      await h.settled(3);

      assert.deepEqual(
        h.uac.requests.map((r) => r.ruri),
        [BOB, ALICE, BOB],
        'the notification follows the delivery it reports',
      );
      const note = h.uac.requests[1]!;
      assert.equal(note.viaCore, true);
      assert.equal(header(note, 'Content-Type'), 'message/cpim');
      assert.equal(header(note, 'To'), `<${ALICE}>`);
      assert.equal(header(note, 'From'), `<${BOB}>`);
      const body = note.body ?? '';
      assert.match(body, /<delivered\/>/);
      assert.match(body, /<message-id>imdn-id-42<\/message-id>/);
      const cpim = parseCpim(body);
      assert.equal(cpim.from.uri, BOB);
      assert.equal(cpim.contentType, 'message/imdn+xml');
      const imdn = parseImdn(cpim.content);
      assert.deepEqual(
        [imdn.kind, imdn.status, imdn.messageId, imdn.dateTime],
        ['delivery', 'delivered', 'imdn-id-42', '2024-05-01T10:00:00Z'],
      );

      // notifications are the service's own traffic: only the two messages are charged
      assert.deepEqual(
        h.charging.events.map((e) => [e.calledParty, e.outcome]),
        [
          [BOB, 'delivered'],
          [BOB, 'delivered'],
        ],
      );
      assert.equal(h.metrics.value('ims_as_im_notifications_total', { status: 'delivered', result: 'delivered' }), 1);
      assert.equal(await h.messages.count(BOB), 0);
      assert.equal(await h.messages.count(ALICE), 0);
    });

    it('an expired message is removed by the sweep, charged expired once, and notified as failed', async () => {
      const h = await harness({ deferredExpirySeconds: 60 });
      h.forward.notificationFactory = deliveryNotifications(new LocalDomain(DOMAIN));
      await register(h.regs, ALICE);
      const sentAt = new Date(Date.now() - 120_000); // expired a minute ago
      const r = await h.forward.defer(
        BOB,
        im('too late', {
          sentAt,
          imdn: { messageId: 'late-1', dateTime: '2024-05-01T10:00:00Z', positive: true, negative: true },
        }),
      );
      assert.equal(r.result, 'deferred');

      await until(
        'the expired message to go and its notification to be sent',
        async () => (await h.messages.count(BOB)) === 0 && h.uac.requests.length === 1 && h.forward.activeDrains === 0,
      );
      assert.equal(h.uac.bodiesTo(BOB).length, 0, 'never delivered');
      const imdn = parseImdn(parseCpim(h.uac.requests[0]!.body ?? '').content);
      assert.equal(h.uac.requests[0]!.ruri, ALICE);
      assert.deepEqual([imdn.status, imdn.messageId], ['failed', 'late-1']);
      assert.equal(h.charging.events.length, 1);
      const ev = h.charging.events[0]!;
      assert.deepEqual([ev.outcome, ev.statusCode, ev.calledParty, ev.extra?.deferred], ['expired', 408, BOB, true]);
      assert.equal(h.metrics.value('ims_as_im_deferred_expired_total', { kind: 'message' }), 1);

      // a later sweep or a registration does not charge it again
      await register(h.regs, BOB);
      const seen = h.sweepsSeen();
      await until('another sweep', () => h.sweepsSeen() > seen);
      await until('no drain running', () => h.forward.activeDrains === 0);
      assert.equal(h.charging.events.length, 1);
      assert.equal(h.uac.requests.length, 1);
    });

    it('an expired message in a draining mailbox is dropped, and the next one delivered', async () => {
      const h = await harness({ deferredExpirySeconds: 60 });
      await h.forward.defer(BOB, im('expired', { sentAt: new Date(Date.now() - 120_000) }));
      await h.forward.defer(BOB, im('fresh'));
      await register(h.regs, BOB);
      await until(
        'the mailbox to empty',
        async () => (await h.messages.count(BOB)) === 0 && h.uac.requests.length === 1 && h.forward.activeDrains === 0,
      );
      assert.deepEqual(h.uac.bodiesTo(BOB), ['fresh']);
      assert.deepEqual(h.charging.events.map((e) => e.outcome).sort(), ['delivered', 'expired']);
    });

    it('expires a delivered copy kept by network storage without charging it', async () => {
      const h = await harness();
      await h.messages.save(BOB, im('kept copy'), { expiresAt: new Date(Date.now() - 1000), quota: 10, state: 'kept' });
      await until('the copy to expire', async () => (await h.messages.count(BOB)) === 0);
      assert.equal(h.charging.events.length, 0);
      assert.equal(h.metrics.value('ims_as_im_deferred_expired_total', { kind: 'message' }), 0);
    });

    it('defer() refuses beyond the quota', async () => {
      const h = await harness({ deferredQuota: 2 });
      assert.equal((await h.forward.defer(BOB, im('1'))).result, 'deferred');
      assert.equal((await h.forward.defer(BOB, im('2'))).result, 'deferred');
      assert.deepEqual(await h.forward.defer(BOB, im('3')), { result: 'full' });
      assert.equal(h.metrics.value('ims_as_im_deferred_total', { result: 'full' }), 1);
      assert.equal(await h.messages.count(BOB), 2);
    });

    it('keeps a delivered message when the recipient has network storage on', async () => {
      const h = await harness();
      const ref: DocumentRef = { auid: imPolicyUsage.auid, tree: 'users', xui: BOB, path: 'index' };
      await h.docs.put(
        ref,
        `<im-policy xmlns="${IM_POLICY_NS}"><deferred-delivery enabled="true" network-storage="true"/></im-policy>`,
        { kind: 'any' },
      );
      await h.forward.defer(BOB, im('keep me'));
      await register(h.regs, BOB);
      await h.settled(1);
      assert.deepEqual(await pendingOf(h, BOB), []);
      assert.deepEqual(
        (await h.messages.list(BOB, { limit: 10 })).map((m) => [m.body, m.state]),
        [['keep me', 'kept']],
      );
      assert.deepEqual(
        h.charging.events.map((e) => e.outcome),
        ['delivered'],
      );
    });

    // ---------------------------------------------------------------- handOver

    describe('handOver', () => {
      const policy = (over: Partial<ImPolicy['deferredDelivery']> = {}): ImPolicy => {
        const p = defaultImPolicy();
        p.deferredDelivery = { ...p.deferredDelivery, ...over };
        return p;
      };

      it('delivers to a registered user, keeping a copy when network storage is on', async () => {
        const h = await harness();
        await register(h.regs, BOB);
        assert.deepEqual(await h.forward.handOver(BOB, im('plain'), policy()), { result: 'delivered', code: 200 });
        assert.equal(await h.messages.count(BOB), 0, 'no copy without network storage');

        assert.deepEqual(await h.forward.handOver(BOB, im('stored too'), policy({ networkStorage: true })), {
          result: 'delivered',
          code: 200,
        });
        const stored = await h.messages.list(BOB, { limit: 10 });
        assert.deepEqual(
          stored.map((m) => [m.body, m.state]),
          [['stored too', 'kept']],
        );

        // a notification is never kept
        assert.deepEqual(
          await h.forward.handOver(BOB, im('note', { kind: 'notification' }), policy({ networkStorage: true })),
          { result: 'delivered', code: 200 },
        );
        assert.equal(await h.messages.count(BOB), 1);

        assert.deepEqual(h.uac.bodiesTo(BOB), ['plain', 'stored too', 'note']);
        const req = h.uac.requests[0]!;
        assert.equal(req.viaCore, true);
        assert.equal(header(req, 'CSeq'), '1 MESSAGE');
        assert.match(header(req, 'Call-ID') ?? '', /^[0-9a-f-]{36}@example\.com$/);
      });

      it('stores the message when the registered device answers a retryable failure', async () => {
        // no periodic sweep during this test: the retry count below must be exact
        const h = await harness({ sweepSeconds: 60 });
        await register(h.regs, BOB);
        h.uac.answer = () => 480;
        const r = await h.forward.handOver(BOB, im('busy now'), policy());
        assert.equal(r.result, 'deferred');
        assert.ok(r.result === 'deferred');
        // deferring for a registered user drains at once: the stored copy is tried (and fails) too
        await h.settled(2);
        const stored = await h.messages.get(BOB, r.id);
        assert.equal(stored?.body, 'busy now');
        assert.equal(stored?.state, 'pending');
        assert.equal(stored?.attempts, 1);
        assert.equal(header(h.uac.requests[1]!, 'Call-ID'), `${r.id}@${DOMAIN}`);
        assert.equal(h.charging.events.length, 0);
      });

      it('an is-composing copy is delivered to a registered user and never stored, kept or deferred', async () => {
        // no periodic sweep during this test: the request count below must be exact
        const h = await harness({ sweepSeconds: 60 });
        const composing = (body: string) =>
          im(body, { kind: 'composing', contentType: 'application/im-iscomposing+xml' });
        // offline, deferral on: unavailable, nothing stored
        assert.deepEqual(await h.forward.handOver(BOB, composing('typing 1'), policy({ networkStorage: true })), {
          result: 'unavailable',
        });
        await register(h.regs, BOB);
        // online with network storage: delivered, no copy kept
        assert.deepEqual(await h.forward.handOver(BOB, composing('typing 2'), policy({ networkStorage: true })), {
          result: 'delivered',
          code: 200,
        });
        // online but the device answers a retryable failure: not deferred either
        h.uac.answer = () => 480;
        assert.deepEqual(await h.forward.handOver(BOB, composing('typing 3'), policy()), { result: 'unavailable' });
        assert.equal(await h.messages.count(BOB), 0);
        assert.deepEqual(h.uac.bodiesTo(BOB), ['typing 2', 'typing 3']);
        assert.equal(h.charging.events.length, 0);
      });

      it('reports a final failure of the registered device as refused, storing nothing', async () => {
        const h = await harness();
        await register(h.regs, BOB);
        h.uac.answer = () => 415;
        assert.deepEqual(await h.forward.handOver(BOB, im('unsupported'), policy()), { result: 'refused', code: 415 });
        assert.equal(await h.messages.count(BOB), 0);
        assert.equal(h.uac.requests.length, 1);
      });

      it('is unavailable for an offline user without deferral, but still defers a notification', async () => {
        const h = await harness();
        const off = policy({ enabled: false });
        assert.deepEqual(await h.forward.handOver(BOB, im('offline'), off), { result: 'unavailable' });
        assert.equal(await h.messages.count(BOB), 0);

        const r = await h.forward.handOver(BOB, im('receipt', { kind: 'notification' }), off);
        assert.equal(r.result, 'deferred');
        assert.ok(r.result === 'deferred');
        const stored = await h.messages.get(BOB, r.id);
        assert.equal(stored?.kind, 'notification');
        // notifications are kept a shorter time
        assert.equal(
          stored!.expiresAt.getTime() - stored!.sentAt.getTime(),
          SMALL_LIMITS.notificationExpirySeconds * 1000,
        );
        assert.equal(h.uac.requests.length, 0, 'nothing sent to an offline user');

        // with deferral on, an offline user's message is stored
        assert.equal((await h.forward.handOver(BOB, im('later'), policy())).result, 'deferred');
        assert.equal(await h.messages.count(BOB), 2);
      });
    });
  });

  // ------------------------------------------------------------------ presence-aware delivery

  describe('presence-aware delivery', () => {
    const pidf = (basic: 'open' | 'closed', activity?: string) =>
      parsePidf(
        `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="${BOB}">` +
          `<tuple id="t"><status><basic>${basic}</basic></status></tuple>` +
          (activity ? `<dm:person id="p"><rpid:activities><rpid:${activity}/></rpid:activities></dm:person>` : '') +
          '</presence>',
      );
    const holding = (holdWhen = 'closed busy'): ImPolicy => {
      const p = defaultImPolicy();
      p.presenceAwareDelivery.holdWhen = holdWhen.split(' ') as ImPolicy['presenceAwareDelivery']['holdWhen'];
      return p;
    };
    /** Bob's im-policy document with the setting, as the XCAP server would store it. */
    const setHold = async (h: Harness, holdWhen: string | undefined) => {
      const element = holdWhen === undefined ? '' : `<presence-aware-delivery hold-when="${holdWhen}"/>`;
      await h.docs.put(
        { auid: imPolicyUsage.auid, tree: 'users', xui: BOB, path: 'index' },
        `<im-policy xmlns="${IM_POLICY_NS}">${element}</im-policy>`,
        { kind: 'any' },
      );
      // what the im-policy-cache reaction does
      h.policies.forget(BOB);
    };

    it("holds a registered user's mailbox while the presence says closed, and drains it in order when it opens", async () => {
      const h = await harness({ sweepSeconds: 60 });
      await setHold(h, 'closed busy');
      await register(h.regs, BOB);
      // the new device's drain (of an empty mailbox) is over before anything is held
      await until('drains to end', () => h.forward.activeDrains === 0);
      h.presence.set(BOB, pidf('closed'));
      assert.equal(await h.forward.heldBy(BOB, holding()), 'closed');
      for (const body of ['one', 'two', 'three'])
        assert.equal((await h.forward.defer(BOB, im(body))).result, 'deferred');
      await sleep(200);
      await until('drains to end', () => h.forward.activeDrains === 0);
      assert.equal(h.uac.requests.length, 0, 'nothing goes to the registered device while closed');
      assert.equal((await pendingOf(h, BOB)).length, 3);

      // busy is held as well; a publication that does not open changes nothing
      h.presence.set(BOB, pidf('open', 'on-the-phone'));
      await h.forward.presenceChanged(BOB);
      await sleep(150);
      await until('drains to end', () => h.forward.activeDrains === 0);
      assert.equal(h.uac.requests.length, 0, 'on the phone: still held');

      h.presence.set(BOB, pidf('open'));
      await h.forward.presenceChanged(BOB);
      await h.settled(3);
      assert.deepEqual(h.uac.bodiesTo(BOB), ['one', 'two', 'three'], 'in the order received');
      assert.equal(await h.messages.count(BOB), 0);
    });

    it('a new device gets the held messages; a refresh of a known one does not', async () => {
      const h = await harness({ sweepSeconds: 60 });
      await setHold(h, 'closed');
      await register(h.regs, BOB);
      // the new device's drain (of an empty mailbox) is over before anything is held
      await until('drains to end', () => h.forward.activeDrains === 0);
      h.presence.set(BOB, pidf('closed'));
      await h.forward.defer(BOB, im('held'));
      // the same contact again: a refresh
      const refreshed = await h.regs.apply({
        type: 'registration',
        aor: BOB,
        ts: String(++regTs),
        contacts: [{ uri: 'sip:bob@192.0.2.10:5060', expires: inAnHour() }],
      });
      assert.equal(refreshed[0]?.kind, 'refreshed');
      await sleep(150);
      await until('drains to end', () => h.forward.activeDrains === 0);
      assert.equal(h.uac.requests.length, 0, 'a refresh does not lift the hold');
      const added = await h.regs.apply({
        type: 'registration',
        aor: BOB,
        ts: String(++regTs),
        contacts: [
          { uri: 'sip:bob@192.0.2.10:5060', expires: inAnHour() },
          { uri: 'sip:bob@192.0.2.11:5060', expires: inAnHour() },
        ],
      });
      assert.ok(added.some((c) => c.kind === 'registered'));
      await h.settled(1);
      assert.deepEqual(h.uac.bodiesTo(BOB), ['held']);
    });

    it('switching the setting off lets the held messages go; without it nothing is held', async () => {
      const h = await harness({ sweepSeconds: 60 });
      await setHold(h, 'closed');
      await register(h.regs, BOB);
      // the new device's drain (of an empty mailbox) is over before anything is held
      await until('drains to end', () => h.forward.activeDrains === 0);
      h.presence.set(BOB, pidf('closed'));
      await h.forward.defer(BOB, im('held'));
      await sleep(100);
      await until('drains to end', () => h.forward.activeDrains === 0);
      assert.equal(h.uac.requests.length, 0);
      await setHold(h, undefined);
      await h.forward.policyChanged(BOB);
      await h.settled(1);
      assert.equal(
        await h.forward.heldBy(BOB, defaultImPolicy()),
        undefined,
        'without the setting: never held, whatever the presence',
      );
      assert.equal(
        await h.forward.heldBy(BOB, holding('busy')),
        undefined,
        'closed is not among the chosen conditions',
      );
    });

    it('handOver stores a group copy for a held user and delivers it to an unheld one', async () => {
      const h = await harness({ sweepSeconds: 60 });
      await setHold(h, 'closed busy');
      await register(h.regs, BOB);
      // the new device's drain (of an empty mailbox) is over before anything is held
      await until('drains to end', () => h.forward.activeDrains === 0);
      h.presence.set(BOB, pidf('open', 'busy'));
      const r = await h.forward.handOver(BOB, im('copy'), holding());
      assert.equal(r.result, 'deferred');
      const composing = im('typing', { kind: 'composing', contentType: 'application/im-iscomposing+xml' });
      assert.deepEqual(
        await h.forward.handOver(BOB, composing, holding()),
        { result: 'unavailable' },
        'typing is never stored',
      );
      await sleep(100);
      await until('drains to end', () => h.forward.activeDrains === 0);
      assert.equal(h.uac.requests.length, 0);
      h.presence.set(BOB, pidf('open'));
      assert.deepEqual(await h.forward.handOver(BOB, im('direct'), holding()), { result: 'delivered', code: 200 });
      await h.forward.presenceChanged(BOB);
      await h.settled(2);
      assert.deepEqual(h.uac.bodiesTo(BOB), ['direct', 'copy']);
    });
  });

  // ------------------------------------------------------------------ ConversationHistory

  describe('ConversationHistory', () => {
    const base = Date.parse('2024-05-01T10:00:00Z');
    const entry = (i: number, over: Partial<HistoryInput> = {}): HistoryInput => ({
      owner: BOB,
      direction: i % 2 ? 'received' : 'sent',
      peer: i % 3 === 0 ? CAROL : ALICE,
      at: new Date(base + i * 1000),
      contentType: 'text/plain',
      body: `entry ${i}`,
      callId: `h-${i}@ua`,
      ...over,
    });

    it('keeps the newest `limit` entries and lists them newest first, by peer and before a seq', async () => {
      const history = new ConversationHistory(storeOf(), {
        nodeId: 'node-a',
        maxMessages: 100_000,
        warnPercent: 100,
        warn: () => undefined,
      });
      await history.start();
      for (let i = 1; i <= 7; i++) await history.archive(entry(i), 5);
      await history.archive(entry(1, { owner: CAROL, peer: BOB }), 5);

      assert.equal(await history.count(BOB), 5);
      const all = await history.list(BOB, { limit: 100 });
      assert.deepEqual(
        all.map((e) => e.body),
        ['entry 7', 'entry 6', 'entry 5', 'entry 4', 'entry 3'],
        'entries 1 and 2 dropped',
      );
      assert.deepEqual(
        (await history.list(BOB, { limit: 2 })).map((e) => e.body),
        ['entry 7', 'entry 6'],
      );
      assert.deepEqual(
        (await history.list(BOB, { limit: 100, peer: CAROL })).map((e) => e.body),
        ['entry 6', 'entry 3'],
      );
      const e5 = all.find((e) => e.body === 'entry 5')!;
      assert.deepEqual(
        (await history.list(BOB, { limit: 100, before: e5.seq })).map((e) => e.body),
        ['entry 4', 'entry 3'],
      );
      assert.deepEqual(
        (await history.list(BOB, { limit: 100, before: e5.seq, peer: ALICE })).map((e) => e.body),
        ['entry 4'],
      );
      assert.equal(e5.size, 7);
      assert.equal((await history.get(BOB, e5._id))?.callId, 'h-5@ua');
      assert.equal(await history.get(CAROL, e5._id), null, 'another owner cannot read it');
      assert.equal(await history.count(CAROL), 1);
    });

    it('warns once when the level is crossed, and again after a removal brought it below', async () => {
      const warnings: Array<[string, string]> = [];
      const history = new ConversationHistory(storeOf(), {
        nodeId: 'node-a',
        maxMessages: 100_000,
        warnPercent: 80,
        warn: (o, t) => warnings.push([o, t]),
      });
      await history.start();
      const limit = 5; // level: 4 entries
      for (let i = 1; i <= 3; i++) await history.archive(entry(i), limit);
      assert.equal(warnings.length, 0);
      await history.archive(entry(4), limit);
      assert.equal(warnings.length, 1, 'told when the 4th entry arrives');
      assert.equal(warnings[0]![0], BOB);
      assert.match(warnings[0]![1], /holds 4 of 5 messages/);
      for (let i = 5; i <= 8; i++) await history.archive(entry(i), limit);
      assert.equal(warnings.length, 1, 'not told again while it stays above the level');
      assert.equal(await history.count(BOB), 5);

      // one removal leaves 4 (still at the level): no re-arm
      const ids = (await history.list(BOB, { limit: 10 })).map((e) => e._id);
      assert.equal(await history.remove(BOB, ids[0]!, limit), true);
      assert.equal(await history.remove(BOB, ids[0]!, limit), false);
      await history.archive(entry(9), limit);
      assert.equal(warnings.length, 1);

      // below the level, then crossing it again: told again, once
      const now = (await history.list(BOB, { limit: 10 })).map((e) => e._id);
      assert.equal(now.length, 5);
      await history.remove(BOB, now[0]!, limit);
      await history.remove(BOB, now[1]!, limit);
      assert.equal(await history.count(BOB), 3);
      await history.archive(entry(10), limit);
      assert.equal(warnings.length, 2);
      assert.match(warnings[1]![1], /holds 4 of 5 messages/);
      await history.archive(entry(11), limit);
      assert.equal(warnings.length, 2);

      // another owner has its own flag
      for (let i = 1; i <= 4; i++) await history.archive(entry(i, { owner: CAROL }), limit);
      assert.deepEqual(
        warnings.map((w) => w[0]),
        [BOB, BOB, CAROL],
      );
    });
  });

  // ------------------------------------------------------------------ ImPolicies

  describe('ImPolicies', () => {
    const ref: DocumentRef = { auid: imPolicyUsage.auid, tree: 'users', xui: BOB, path: 'index' };

    it('reads the default policy, then the stored document, then its replacement', async () => {
      const docs = new XdmDocuments(storeOf());
      await docs.start();
      const policies = new ImPolicies(docs);

      assert.deepEqual(await policies.of(BOB), defaultImPolicy());

      await docs.put(
        ref,
        `<?xml version="1.0" encoding="UTF-8"?>
<im-policy xmlns="${IM_POLICY_NS}" mode="allow-only" blocked-action="discard">
  <blocked><entry uri="sips:mallory@evil.example"/><domain>Spam.Example</domain></blocked>
  <allowed><entry uri="sip:alice@example.com"/></allowed>
  <deferred-delivery enabled="false" network-storage="true"/>
  <history enabled="true" max-messages="250"/>
</im-policy>`,
        { kind: 'any' },
      );
      policies.forget(BOB); // what the im-policy-cache reaction does (as/src/reactions.ts)
      const first = await policies.of(BOB);
      assert.deepEqual(first, {
        mode: 'allow-only',
        blockedAction: 'discard',
        blocked: { uris: ['sip:mallory@evil.example'], domains: ['spam.example'] },
        allowed: { uris: [ALICE], domains: [] },
        deferredDelivery: { enabled: false, networkStorage: true },
        history: { enabled: true, maxMessages: 250, conversations: [] },
        presenceAwareDelivery: { holdWhen: [] },
        publishImActivity: true,
        fileTransfer: { enabled: true, acceptTypes: [] },
      });
      assert.equal(await policies.of(BOB), first, 'unchanged document: the parsed policy is reused');
      assert.deepEqual(await policies.of(CAROL), defaultImPolicy(), 'other users keep the default');

      await docs.put(
        ref,
        `<im-policy xmlns="${IM_POLICY_NS}" mode="block-list">
  <deferred-delivery enabled="true" network-storage="false"/>
  <history enabled="false" max-messages="10"/>
</im-policy>`,
        { kind: 'any' },
      );
      assert.equal(await policies.of(BOB), first, 'kept until the document reaction says it changed');
      policies.forget(BOB); // what the im-policy-cache reaction does (as/src/reactions.ts)
      const second = await policies.of(BOB);
      assert.notEqual(second, first);
      assert.deepEqual(second, {
        ...defaultImPolicy(),
        deferredDelivery: { enabled: true, networkStorage: false },
        history: { enabled: false, maxMessages: 10, conversations: [] },
      });

      await docs.delete(ref, { kind: 'any' });
      policies.forget(BOB);
      assert.deepEqual(await policies.of(BOB), defaultImPolicy(), 'deleted document: back to the default');
    });

    it('sees a document replaced through another XdmDocuments over the same store once the change is told', async () => {
      const store = storeOf();
      const reader = new XdmDocuments(store);
      const writer = new XdmDocuments(store);
      const policies = new ImPolicies(reader);
      await writer.put(
        ref,
        `<im-policy xmlns="${IM_POLICY_NS}"><history enabled="true" max-messages="5"/></im-policy>`,
        { kind: 'any' },
      );
      assert.equal((await policies.of(BOB)).history.maxMessages, 5);
      await writer.put(
        ref,
        `<im-policy xmlns="${IM_POLICY_NS}"><history enabled="true" max-messages="6"/></im-policy>`,
        { kind: 'any' },
      );
      // the writer's instance publishes the change; every instance's reactions forget the policy
      policies.forget(BOB);
      assert.equal((await policies.of(BOB)).history.maxMessages, 6);
    });
  });
});
