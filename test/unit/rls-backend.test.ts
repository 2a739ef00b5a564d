/**
 * The list server's back-end subscriptions to members in other domains (as/src/presence/rls/
 * backend.ts): refreshed inside their dialog (same Call-ID, both tags, next CSeq, the route set
 * of the 2xx), a new dialog only when the notifier no longer knows the old one, and an
 * un-SUBSCRIBE in the dialog when no list holds the member any more. The UAC is a fake that
 * records what would be sent; the store is the real embedded one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { SingletonJob } from '../../as/src/cluster/singleton-jobs.js';
import type { UacClient, UacOutcome, UacRequest } from '../../as/src/isc/uac.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { BackendSubscriptions } from '../../as/src/presence/rls/backend.js';
import { openStore } from '../../as/src/store/open-store.js';
import type { Store } from '../../as/src/store/port.js';

const BOB = 'sip:bob@example.net';
const header = (r: UacRequest, name: string) => r.headers.find(([n]) => n === name)?.[1];

describe('RLS back-end subscriptions: refreshed inside their dialog', () => {
  let dir: string;
  let store: Store;
  let sent: UacRequest[];
  let answers: Array<Partial<UacOutcome>>;
  let wanted: boolean;
  let sweep: () => Promise<unknown>;
  let backend: BackendSubscriptions;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ims-rls-backend-'));
    store = await openStore({ dataDir: dir });
    sent = [];
    answers = [];
    wanted = true;
    const uac = {
      send: (req: UacRequest): Promise<UacOutcome> => {
        sent.push(req);
        const a = answers.shift() ?? {};
        return Promise.resolve({ code: 200, reason: 'OK', timedOut: false, at: new Date(), ...a });
      },
    } as unknown as UacClient;
    backend = new BackendSubscriptions({
      store,
      uac,
      identity: 'sip:rls@example.com',
      contact: 'sip:rls@127.0.0.1:5060',
      stillWanted: () => Promise.resolve(wanted),
      log: silentLogger(),
      metrics: new Metrics(),
    });
    backend.start({ add: (job: SingletonJob) => (sweep = job.run) });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Waits until the back-end record holds the dialog of its 2xx. */
  async function dialogSetUp(): Promise<void> {
    const records = store.collection<{ _id: string; dialog?: unknown }>('rls_backend');
    for (let i = 0; i < 50; i++) {
      if ((await records.findOne({ _id: BOB }))?.dialog) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail('the 2xx dialog was never kept');
  }

  /** Makes the subscription due for renewal. */
  async function due(): Promise<void> {
    await store.collection('rls_backend').updateOne({ _id: BOB }, { $set: { expiresAt: new Date() } });
  }

  it('sends the refresh inside the dialog the 2xx set up, along its route set', async () => {
    answers.push({
      dialog: {
        remoteTag: 'net-tag',
        remoteTarget: 'sip:ps@127.0.0.2:5070',
        routeSet: ['<sip:127.0.0.2:5072;transport=tls;lr>'],
      },
    });
    await backend.view(BOB);
    await dialogSetUp();
    const [first] = sent;
    assert.equal(first!.ruri, BOB);
    assert.equal(header(first!, 'CSeq'), '1 SUBSCRIBE');

    await due();
    await sweep();
    assert.equal(sent.length, 2);
    const refresh = sent[1]!;
    assert.equal(refresh.ruri, 'sip:ps@127.0.0.2:5070', 'to the remote target');
    assert.equal(header(refresh, 'Call-ID'), header(first!, 'Call-ID'), 'same dialog');
    assert.equal(header(refresh, 'From'), header(first!, 'From'), 'our tag kept');
    assert.equal(header(refresh, 'To'), `<${BOB}>;tag=net-tag`);
    assert.equal(header(refresh, 'CSeq'), '2 SUBSCRIBE');
    assert.equal(header(refresh, 'Route'), '<sip:127.0.0.2:5072;transport=tls;lr>');
    assert.equal(refresh.nexthop, 'sip:127.0.0.2:5072;transport=tls;lr');
    assert.equal(header(refresh, 'Expires'), '600');

    // the next one goes on counting
    await due();
    await sweep();
    assert.equal(header(sent[2]!, 'CSeq'), '3 SUBSCRIBE');
    assert.equal(header(sent[2]!, 'Call-ID'), header(first!, 'Call-ID'));
  });

  it('starts a new dialog when the notifier answers the refresh 481', async () => {
    answers.push({ dialog: { remoteTag: 't1', remoteTarget: 'sip:ps@127.0.0.2:5070', routeSet: [] } });
    await backend.view(BOB);
    await dialogSetUp();
    answers.push({ code: 481, reason: 'Call/Transaction Does Not Exist' });
    await due();
    await sweep();
    assert.equal(sent.length, 3);
    assert.equal(header(sent[1]!, 'To'), `<${BOB}>;tag=t1`);
    assert.equal(sent[1]!.nexthop, undefined, 'no route set: straight to the target');
    const fresh = sent[2]!;
    assert.equal(fresh.ruri, BOB);
    assert.equal(header(fresh, 'To'), `<${BOB}>`);
    assert.notEqual(header(fresh, 'Call-ID'), header(sent[0]!, 'Call-ID'));
    assert.equal(header(fresh, 'CSeq'), '1 SUBSCRIBE');
  });

  it('ends the subscription inside its dialog (Expires: 0) when no list holds the member any more', async () => {
    answers.push({ dialog: { remoteTag: 't2', remoteTarget: 'sip:ps@127.0.0.2:5070', routeSet: [] } });
    await backend.view(BOB);
    await dialogSetUp();
    wanted = false;
    await due();
    await sweep();
    const end = sent[1]!;
    assert.equal(header(end, 'Expires'), '0');
    assert.equal(header(end, 'To'), `<${BOB}>;tag=t2`);
    assert.equal(header(end, 'Call-ID'), header(sent[0]!, 'Call-ID'));
    assert.equal(await store.collection('rls_backend').findOne({ _id: BOB }), null);
  });
});
