/**
 * The IM server as a presence source (as/src/im/im-activity.ts): imActivity(user, 'chat' |
 * 'none') over the real embedded store, real publications, composition and IM policies; and
 * presence-aware delivery reading the user's own presence past the server's tuples.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ImActivity } from '../../as/src/im/im-activity.js';
import { ImPolicies } from '../../as/src/im/im-policies.js';
import { presenceHold } from '../../as/src/im/presence-hold.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { parsePidf } from '../../as/src/presence/pidf/index.js';
import { PresenceState } from '../../as/src/presence/presence-state.js';
import { Publications } from '../../as/src/presence/publications.js';
import { openStore } from '../../as/src/store/open-store.js';
import type { Store } from '../../as/src/store/port.js';
import { XdmDocuments } from '../../as/src/xdm/document-store.js';
import { IM_POLICY_NS, imPolicyUsage } from '../../as/src/xdm/usages/im-policy.js';

const BOB = 'sip:bob@example.com';
const PIDF = 'application/pidf+xml';
const closedPidf = `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${BOB}"><tuple id="phone"><status><basic>closed</basic></status></tuple></presence>`;

describe('IM activity: the IM server publishing presence for a user', () => {
  let dir = '';
  let store: Store;
  let docs: XdmDocuments;
  let publications: Publications;
  let state: PresenceState;
  let policies: ImPolicies;
  let activity: ImActivity;
  let changes: string[];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ims-im-activity-'));
    store = await openStore({ dataDir: dir });
    docs = new XdmDocuments(store);
    await docs.start();
    publications = new Publications(store, { log: silentLogger(), metrics: new Metrics() });
    await publications.start();
    state = new PresenceState({ publications, docs, log: silentLogger() });
    policies = new ImPolicies(docs);
    activity = new ImActivity({ publications, policyOf: (u) => policies.of(u), log: silentLogger() });
    changes = [];
    // what as/src/reactions.ts does on every publication change
    publications.on('changed', ({ entity }) => {
      changes.push(entity);
      state.forget(entity);
    });
  });

  afterEach(async () => {
    publications.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const setPolicy = async (inner: string) => {
    await docs.put(
      { auid: imPolicyUsage.auid, tree: 'users', xui: BOB, path: 'index' },
      `<im-policy xmlns="${IM_POLICY_NS}">${inner}</im-policy>`,
      { kind: 'any' },
    );
    policies.forget(BOB);
  };

  it("'chat' adds an open IM-session tuple that watchers see; 'none' takes it away", async () => {
    assert.equal(await activity.imActivity(BOB, 'chat'), 'published');
    assert.deepEqual(changes, [BOB], 'a publication change: watchers are notified');
    const view = parsePidf(await state.view(BOB));
    const tuple = view.tuples.find((t) => t.id === 'im-activity');
    assert.ok(tuple, 'the tuple is in the composed presence');
    assert.equal(tuple.basic, 'open');
    assert.equal(tuple.serviceDescription?.serviceId, 'org.openmobilealliance:IM-session');
    assert.deepEqual(
      tuple.notes.map((n) => n.text),
      ['In a chat'],
    );
    assert.match(await state.view(BOB), /session-participation[^>]*>\s*<[^>]*basic[^>]*>open</);

    assert.equal(await activity.imActivity(BOB, 'none'), 'removed');
    assert.equal((await publications.of(BOB, 'presence')).length, 0);
    assert.equal(
      parsePidf(await state.view(BOB)).tuples.some((t) => t.id === 'im-activity'),
      false,
    );
    assert.deepEqual(changes, [BOB, BOB]);
    await activity.imActivity(BOB, 'none');
    assert.equal(changes.length, 2, 'removing what is not there changes nothing');
  });

  it('a user who switched it off gets nothing published, and the opt-out removes what was', async () => {
    await activity.imActivity(BOB, 'chat');
    await setPolicy('<publish-im-activity enabled="false"/>');
    await activity.policyChanged(BOB);
    assert.equal((await publications.of(BOB, 'presence')).length, 0, 'removed at the opt-out');
    assert.equal(await activity.imActivity(BOB, 'chat'), 'opted-out');
    assert.equal((await publications.of(BOB, 'presence')).length, 0);

    await setPolicy('<publish-im-activity enabled="true"/>');
    await activity.policyChanged(BOB);
    assert.equal(await activity.imActivity(BOB, 'chat'), 'published');
    assert.equal((await publications.of(BOB, 'presence')).length, 1);
  });

  it("presence-aware delivery reads what the user says: the server's open tuples (chat, registration) do not open it", async () => {
    await publications.publish({ entity: BOB, event: 'presence', body: closedPidf, contentType: PIDF, expires: 600 });
    await activity.imActivity(BOB, 'chat');
    await publications.setSource(
      BOB,
      'presence',
      'network',
      `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${BOB}"><tuple id="network"><status><basic>open</basic></status></tuple></presence>`,
      PIDF,
    );
    const everything = parsePidf(await state.view(BOB));
    assert.equal(
      everything.tuples.filter((t) => t.basic === 'open').length,
      2,
      "watchers see the server's open tuples",
    );
    const own = await state.ownPresence(BOB);
    assert.deepEqual(
      own?.tuples.map((t) => t.id),
      ['phone'],
    );
    assert.equal(presenceHold(own, ['closed']), 'closed');
    assert.equal(
      await new PresenceState({ publications, docs, log: silentLogger() }).ownPresence('sip:nobody@example.com'),
      undefined,
      'nothing published: nothing said',
    );
  });
});
