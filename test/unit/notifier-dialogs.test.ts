import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Charging } from '../../as/src/charging/charging.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import type { EventPackage, Subscription } from '../../as/src/events/event-package.js';
import { Notifier } from '../../as/src/events/notifier.js';
import { SubscriptionCharging } from '../../as/src/events/subscription-charging.js';
import type { UacClient, UacOutcome, UacRequest } from '../../as/src/isc/uac.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { storedSubscription } from '../helpers/subscription-fixture.js';

// The notifier's per-dialog machinery (coalescing, rate control, expiry, the end of a dialog)
// with a fake UAC and a package whose state is a counter: no Kamailio, no SIP parsing.

const ALICE = 'sip:alice@example.com';

/** A UAC whose NOTIFYs complete when the test says so (or at once). */
class FakeUac {
  readonly sent: UacRequest[] = [];
  private waiting: Array<() => void> = [];
  holdReplies = false;

  async send(r: UacRequest): Promise<UacOutcome> {
    this.sent.push(r);
    if (this.holdReplies) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return { code: 200, reason: 'OK', timedOut: false, at: new Date() };
  }

  answerAll(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const resolve of w) resolve();
  }

  header(i: number, name: string): string | undefined {
    return this.sent[i]?.headers.find(([n]) => n === name)?.[1];
  }

  cseq(i: number): number {
    return Number(this.header(i, 'CSeq')!.split(' ')[0]);
  }
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const quiet = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('notifier: one run-time object per dialog', () => {
  let dir: string;
  const stores: SqliteStore[] = [];
  let state = 0;
  const pkg: EventPackage = {
    name: 'test',
    service: 'presence',
    defaultExpires: 600,
    minExpires: 1,
    maxExpires: 3600,
    contentTypes: ['text/plain'],
    admit: async () => ({ state: 'active', resource: ALICE }),
    content: async () => ({ contentType: 'text/plain', body: `state-${state}` }),
  };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'notifier-dialogs-'));
  });
  after(async () => {
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  let n = 0;
  /** A started notifier holding one fresh live dialog of bob watching alice. */
  async function oneDialog(over: Partial<Subscription> = {}) {
    const id = `call-${++n}|ft|tt`;
    // a store of its own: a notifier starts with every live dialog it finds
    const store = await SqliteStore.open(path.join(dir, String(n)));
    stores.push(store);
    const uac = new FakeUac();
    const charged: ChargeableEvent[] = [];
    const notifier = new Notifier({
      store,
      uac: uac as unknown as UacClient,
      contact: 'sip:notifier@127.0.0.1',
      log: silentLogger(),
      metrics: new Metrics(),
    }).register(pkg);
    const charging = { record: async (e: ChargeableEvent) => void charged.push(e) } as unknown as Charging;
    new SubscriptionCharging(charging, { log: silentLogger() }).attach(notifier);
    const resource = ALICE.replace('alice', `alice${n}`);
    await store
      .collection<Subscription>('subscriptions')
      .insertOne(storedSubscription(id, 'test', resource, { chargedParts: 1, ...over }));
    await notifier.start();
    const change = () => notifier.resourceChanged('test', resource);
    const heldObjects = () => (notifier as unknown as { dialogs: Map<string, unknown> }).dialogs.size;
    return { id, uac, notifier, change, charged, heldObjects };
  }

  it('changes arriving while a NOTIFY is in flight coalesce into one NOTIFY with the latest state', async () => {
    const { uac, notifier, change } = await oneDialog();
    uac.holdReplies = true;
    state = 1;
    assert.equal(await change(), 1);
    await until('the first NOTIFY', () => uac.sent.length === 1);
    for (state = 2; state <= 6; state++) await change();
    state = 6;
    await quiet(50);
    assert.equal(uac.sent.length, 1, 'nothing else leaves while a NOTIFY is in flight');
    uac.answerAll();
    await until('the coalesced NOTIFY', () => uac.sent.length === 2);
    assert.equal(uac.sent[1]!.body, 'state-6', 'the coalesced NOTIFY carries the latest state');
    assert.ok(uac.cseq(1) > uac.cseq(0), 'CSeq grows');
    uac.answerAll();
    await quiet(50);
    assert.equal(uac.sent.length, 2, 'five changes, one NOTIFY');
    notifier.stop();
  });

  it('a max-rate holds later changes until its interval ends, then sends the latest once (RFC 6446)', async () => {
    const { uac, notifier, change } = await oneDialog({ rate: { maxRate: 4 } });
    state = 10;
    await change();
    await until('the first NOTIFY', () => uac.sent.length === 1);
    const firstAt = Date.now();
    state = 11;
    await change();
    state = 12;
    await change();
    await quiet(100);
    assert.equal(uac.sent.length, 1, 'held back by max-rate 4/s');
    await until('the held NOTIFY', () => uac.sent.length === 2);
    assert.ok(Date.now() - firstAt >= 200, `sent ${Date.now() - firstAt} ms after the first: at most 4 per second`);
    assert.equal(uac.sent[1]!.body, 'state-12');
    await quiet(300);
    assert.equal(uac.sent.length, 2);
    notifier.stop();
  });

  it('an expiry sends the final NOTIFY, writes the closing record and leaves no object or timer behind', async () => {
    const { uac, notifier, charged, heldObjects } = await oneDialog({
      expiresAt: new Date(Date.now() + 300),
      notifyCount: 3,
    });
    assert.equal(heldObjects(), 1, 'the armed expiry');
    await until('the final NOTIFY', () => uac.sent.length === 1);
    assert.equal(uac.header(0, 'Subscription-State'), 'terminated;reason=timeout');
    await until('the closing record', () => charged.length === 1);
    assert.equal(charged[0]!.cause, 'timeLimit');
    assert.equal(charged[0]!.outcome, 'subscription-closed');
    assert.equal(charged[0]!.recordSequenceNumber, 2, 'the last part of the chain the opening record began');
    await until('the dialog object dropped', () => heldObjects() === 0);
    notifier.stop();
  });

  it('end() says why in the final NOTIFY; a change afterwards sends nothing', async () => {
    const { id, uac, notifier, change, heldObjects } = await oneDialog();
    await notifier.end(id, 'deactivated');
    await until('the final NOTIFY', () => uac.sent.length === 1);
    assert.equal(uac.header(0, 'Subscription-State'), 'terminated;reason=deactivated');
    assert.equal(await change(), 0, 'an ended dialog is not looked up any more');
    await quiet(50);
    assert.equal(uac.sent.length, 1);
    await until('the dialog object dropped', () => heldObjects() === 0);
    notifier.stop();
  });

  it('stop() disarms every dialog: an expiry due after it sends nothing', async () => {
    const { uac, notifier } = await oneDialog({ expiresAt: new Date(Date.now() + 150) });
    notifier.stop();
    await quiet(400);
    assert.equal(uac.sent.length, 0);
  });
});
