/**
 * Every query the services run while serving (not at start-up) is answered through an
 * index on the embedded store: the services run for real over a recording store, and each
 * recorded filter is put to EXPLAIN QUERY PLAN. A full scan of a collection's table
 * (`SCAN c:<collection>`) fails the test, and so does a sort without an index on a query
 * with a limit (the newest CDR, the next deferred messages, the newest history entries),
 * and a search for a list member's watchers that does not start from the member.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Charging } from '../../as/src/charging/charging.js';
import type { EventPackage } from '../../as/src/events/event-package.js';
import { Notifier } from '../../as/src/events/notifier.js';
import { ConversationHistory } from '../../as/src/im/history.js';
import { MessageStore } from '../../as/src/im/message-store.js';
import type { UacClient } from '../../as/src/isc/uac.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { Publications } from '../../as/src/presence/publications.js';
import { Registrations } from '../../as/src/registrations/registrations.js';
import type { Collection, Doc, Filter, FindOptions, Store } from '../../as/src/store/port.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { XdmDocuments } from '../../as/src/xdm/document-store.js';

interface Recorded {
  collection: string;
  method: string;
  filter: Filter;
  options: FindOptions;
}

const FILTERED = new Set([
  'findOne',
  'find',
  'count',
  'updateOne',
  'updateMany',
  'replaceOne',
  'findOneAndUpdate',
  'deleteOne',
  'deleteMany',
]);

/** The store as the services see it, noting each filtered call while `recording` is on. */
function recordingStore(inner: Store, seen: Recorded[], recording: () => boolean): Store {
  return {
    engine: inner.engine,
    ping: () => inner.ping(),
    close: () => inner.close(),
    collection<T extends Doc>(name: string): Collection<T> {
      const col = inner.collection<T>(name);
      return new Proxy(col, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (recording() && FILTERED.has(String(prop))) {
              const options = prop === 'find' ? ((args[1] as FindOptions | undefined) ?? {}) : {};
              seen.push({ collection: name, method: String(prop), filter: args[0] as Filter, options });
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    },
  };
}

describe('embedded store: the services query through indexes', () => {
  let dir = '';
  let sqlite: SqliteStore;
  const seen: Recorded[] = [];
  let recording = false;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ims-plans-'));
    sqlite = await SqliteStore.open(path.join(dir, 'data'));
  });
  after(async () => {
    await sqlite.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('notifier, publications, registrations, message store, history, XDM documents and charging', async () => {
    const store = recordingStore(sqlite, seen, () => recording);
    const log = silentLogger();
    const charging = new Charging({
      store,
      nodeId: 'as1',
      nodeAddress: '127.0.0.1',
      cdrDir: path.join(dir, 'cdr'),
      log,
    });
    const notifier = new Notifier({
      store,
      uac: {} as UacClient,
      contact: 'sip:as@127.0.0.1',
      log,
      metrics: new Metrics(),
    });
    notifier.register({ name: 'presence', listsMembers: true } as unknown as EventPackage);
    const pubs = new Publications(store, { log: silentLogger() });
    const regs = new Registrations(store, log);
    const messages = new MessageStore(store, 'as1');
    const history = new ConversationHistory(store, {
      nodeId: 'as1',
      maxMessages: 100,
      warnPercent: 90,
      warn: () => undefined,
    });
    const xdm = new XdmDocuments(store);
    await charging.start();
    // a dialog on bob and a list dialog watching him, held before a restart: a change to bob
    // is looked up in the store only when this instance holds a dialog about him
    const dialog = (id: string, over: Record<string, unknown>) => ({
      _id: id,
      event: 'presence',
      watcher: 'sip:carol@example.com',
      callId: id,
      fromTag: 'f',
      toTag: 't',
      remoteParty: '<sip:carol@example.com>;tag=f',
      localParty: '<sip:x@example.com>',
      remoteTarget: 'sip:carol@192.0.2.3',
      routeSet: [],
      localCseq: 64,
      remoteCseq: 1,
      state: 'active',
      expiresAt: new Date(Date.now() + 3_600_000),
      accept: ['application/pidf+xml'],
      createdAt: new Date(),
      notifyCount: 0,
      data: {},
      ...over,
    });
    await sqlite
      .collection('subscriptions')
      .insertMany([
        dialog('direct', { resource: 'sip:bob@example.com' }),
        dialog('list', { resource: 'sip:carol-friends@example.com', watches: ['sip:bob@example.com'] }),
      ]);
    await notifier.start();
    notifier.stop(); // (queries only: no NOTIFY leaves)
    await pubs.start();
    await messages.start();
    await history.start();
    await xdm.start();

    recording = true;
    const bob = 'sip:bob@example.com';
    await notifier.resourceChanged('presence', bob);
    const published = await pubs.publish({
      entity: bob,
      event: 'presence',
      body: '<presence/>',
      contentType: 'application/pidf+xml',
      expires: 60,
    });
    assert.ok(published.ok);
    await pubs.publish({ entity: bob, event: 'presence', ifMatch: published.etag, expires: 60 });
    await pubs.of(bob, 'presence');
    await regs.apply({
      type: 'registration',
      aor: bob,
      ts: '1',
      contacts: [{ uri: 'sip:bob@192.0.2.1', expires: Date.now() / 1000 + 3600 }],
    });
    await regs.contacts(bob);
    const msg = {
      sender: 'sip:alice@example.com',
      fromHeader: '<sip:alice@example.com>;tag=1',
      contentType: 'text/plain',
      body: 'hi',
      sentAt: new Date(),
      callId: 'c1@x',
      chargingVector: 'icid-value=1',
      privacy: false,
      kind: 'message' as const,
    };
    const saved = await messages.save(bob, msg, { expiresAt: new Date(Date.now() + 3_600_000), quota: 100 });
    assert.ok(saved !== 'full');
    await messages.pending(bob, 50);
    await messages.list(bob, { limit: 50 });
    await messages.count(bob);
    await messages.expired(new Date(), 500);
    await messages.dueRecipients(new Date(), 1000);
    await messages.attemptFailed(saved._id, new Date(Date.now() + 1000));
    await messages.postpone(bob, new Date(Date.now() + 60_000));
    assert.ok(await messages.lease(bob, new Date(Date.now() + 30_000)));
    await messages.release(bob);
    await messages.remove(saved._id, bob);
    await history.archive(
      {
        owner: bob,
        direction: 'received',
        peer: 'sip:alice@example.com',
        at: new Date(),
        contentType: 'text/plain',
        body: 'hi',
        callId: 'c1@x',
      },
      100,
    );
    await history.list(bob, { limit: 20 });
    await history.count(bob);
    const ref = { auid: 'resource-lists', tree: 'users' as const, xui: bob, path: 'index' };
    await xdm.put(ref, '<resource-lists/>', { kind: 'any' });
    await xdm.get(ref);
    await xdm.list({ xui: bob });
    await xdm.isFree('pres-rules', 'uri', bob);
    const cdr = await charging.record({
      service: 'im',
      role: 'terminating',
      sipMethod: 'MESSAGE',
      sessionId: 'c1@x',
      callingParty: 'sip:alice@example.com',
      calledParty: bob,
      requestTime: new Date(),
      responseTime: new Date(),
      statusCode: 200,
      outcome: 'delivered',
      messageBody: { contentType: 'text/plain', contentLength: 2 },
    });
    await charging.query({ sessionId: cdr.sessionId });
    recording = false;
    await charging.stop();
    notifier.stop();

    const collections = new Set(seen.map((r) => r.collection));
    for (const c of [
      'subscriptions',
      'publications',
      'registrations',
      'im_deferred',
      'im_mailboxes',
      'im_history',
      'xcap_documents',
      'cdrs',
    ]) {
      assert.ok(collections.has(c), `no query on ${c} recorded`);
    }
    const failures: string[] = [];
    for (const r of seen) {
      const plan = await sqlite.explain(r.collection, r.filter, r.options);
      const fullScan = plan.some((line) => line.startsWith(`SCAN c:${r.collection}`));
      const unindexedSort =
        r.options.limit !== undefined && plan.some((line) => line.includes('TEMP B-TREE FOR ORDER BY'));
      // a list member's watchers: found from the multikey side table by the member, not among all subscriptions of the event
      const watchersByEvent =
        'watches' in r.filter && !plan[0]?.startsWith(`SEARCH c:${r.collection} USING INDEX sqlite_autoindex`);
      if (fullScan || unindexedSort || watchersByEvent)
        failures.push(
          `${r.collection}.${r.method}(${JSON.stringify(r.filter)}, ${JSON.stringify(r.options)}):\n    ${plan.join('\n    ')}`,
        );
    }
    assert.deepEqual(failures, [], `queries not served by an index:\n${failures.join('\n')}`);
  });
});
