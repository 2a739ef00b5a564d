/**
 * The conference roster over the embedded store (SQLite), as two AS instances use it: each its
 * own connection to one database file and its own store-backed change feed. What one instance
 * writes, the other reads, and hears about as a 'conference' change.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Change } from '../../as/src/cluster/changes.js';
import { resourceOf } from '../../as/src/cluster/changes.js';
import type { ChangeOrigin } from '../../as/src/cluster/change-feed.js';
import { StoreChangeFeed } from '../../as/src/cluster/store-change-feed.js';
import { ConferenceRoster, type ConferenceParticipant } from '../../as/src/conference/roster.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { until } from '../helpers/until.js';

interface Instance {
  store: SqliteStore;
  feed: StoreChangeFeed;
  roster: ConferenceRoster;
  heard: Array<{ change: Change; origin: ChangeOrigin }>;
}

const ROOM = 'sip:room1@example.com';

function participant(uri: string, extra: Partial<ConferenceParticipant> = {}): ConferenceParticipant {
  return { uri, anonymous: false, status: 'connected', joiningMethod: 'dialed-in', ...extra };
}

describe('conference roster on a shared embedded store', () => {
  let dir: string;
  const instances: Instance[] = [];

  async function instance(id: string): Promise<Instance> {
    const store = await SqliteStore.open(dir);
    const feed = new StoreChangeFeed({ store, instance: id, pollMs: 20, log: silentLogger() });
    const heard: Instance['heard'] = [];
    feed.listen({ change: async (change, origin) => void heard.push({ change, origin }), resync: () => {} });
    await feed.start();
    const inst = { store, feed, roster: new ConferenceRoster(store, feed), heard };
    instances.push(inst);
    return inst;
  }

  before(async () => {
    dir = await mkdtemp(path.join(process.env.TMPDIR ?? tmpdir(), 'conf-roster-'));
  });

  after(async () => {
    for (const i of instances) {
      await i.feed.stop();
      await i.store.close();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('opens once, idempotent on the URI, from either instance', async () => {
    const [a, b] = [await instance('as-1'), await instance('as-2')];
    const opened = await a.roster.open({
      _id: ROOM,
      kind: 'room',
      owner: 'sip:alice@example.com',
      focusInstance: 'as-1',
    });
    assert.equal(opened.version, 1);
    assert.deepEqual(opened.participants, []);
    const again = await b.roster.open({ _id: ROOM, kind: 'room', subject: 'other', focusInstance: 'as-2' });
    assert.equal(again.focusInstance, 'as-1', 'the live conference is returned, not replaced');
    assert.equal(again.version, 1);
    assert.equal(again.subject, undefined);
    assert.ok(again.createdAt instanceof Date);
  });

  it('a participant written by one instance is read by the other, version bumped, change heard remotely', async () => {
    const [a, b] = instances as [Instance, Instance];
    const joinedAt = new Date('2026-12-07T10:00:00Z');
    const c = await a.roster.upsertParticipant(
      ROOM,
      participant('sip:bob@example.com', {
        displayName: 'Bob',
        endpoint: 'sip:bob@10.0.0.2:5070',
        dialog: { callId: 'c1', remoteTag: 'r1', localTag: 'l1' },
        joinedAt,
      }),
    );
    assert.equal(c.version, 2);
    const seen = await b.roster.get(ROOM);
    assert.equal(seen?.version, 2);
    assert.equal(seen?.participants.length, 1);
    assert.equal(seen?.participants[0]?.displayName, 'Bob');
    assert.deepEqual(seen?.participants[0]?.dialog, { callId: 'c1', remoteTag: 'r1', localTag: 'l1' });
    assert.equal(seen?.participants[0]?.joinedAt?.getTime(), joinedAt.getTime(), 'dates round-trip as Dates');
    await until('as-2 hears the conference change', () =>
      b.heard.some((h) => h.origin === 'remote' && h.change.kind === 'conference' && h.change.uri === ROOM),
    );
    assert.ok(a.heard.some((h) => h.origin === 'local' && h.change.kind === 'conference'));
    assert.equal(resourceOf({ kind: 'conference', uri: ROOM }), `conference:${ROOM}`);
  });

  it('updates a participant in place by uri (no duplicate)', async () => {
    const [, b] = instances as [Instance, Instance];
    const c = await b.roster.upsertParticipant(ROOM, participant('sip:bob@example.com', { status: 'on-hold' }));
    assert.equal(c.version, 3);
    assert.equal(c.participants.length, 1);
    assert.equal(c.participants[0]?.status, 'on-hold');
    assert.equal(c.participants[0]?.displayName, undefined, 'the participant is replaced as given');
  });

  it('concurrent joins from both instances lose nobody, one version per write', async () => {
    const [a, b] = instances as [Instance, Instance];
    const uris = Array.from({ length: 20 }, (_, i) => `sip:user${i}@example.com`);
    await Promise.all(uris.map((u, i) => (i % 2 ? a : b).roster.upsertParticipant(ROOM, participant(u))));
    const c = await a.roster.get(ROOM);
    assert.equal(c?.participants.length, 21);
    assert.deepEqual(new Set(c?.participants.map((p) => p.uri)), new Set(['sip:bob@example.com', ...uris]));
    assert.equal(c?.version, 3 + 20);
  });

  it('a hundred participants of one instance leaving at once are all written (its writes queue, not race)', async () => {
    const a = instances[0]!;
    const big = 'sip:big-room@example.com';
    await a.roster.open({ _id: big, kind: 'room', focusInstance: 'as-a' });
    const uris = Array.from({ length: 100 }, (_, i) => `sip:p${i}@example.com`);
    for (const u of uris) await a.roster.upsertParticipant(big, participant(u));
    await Promise.all(uris.map((u) => a.roster.upsertParticipant(big, participant(u, { status: 'disconnected' }))));
    const c = await a.roster.get(big);
    assert.equal(c?.participants.filter((p) => p.status === 'disconnected').length, 100);
  });

  it('end disconnects everyone, bumps the version once, and a new open starts afresh above it', async () => {
    const [a, b] = instances as [Instance, Instance];
    await b.roster.end(ROOM);
    const ended = await a.roster.get(ROOM);
    assert.ok(ended?.endedAt instanceof Date);
    assert.equal(ended?.version, 24);
    assert.ok(ended?.participants.every((p) => p.status === 'disconnected' && p.leftAt instanceof Date));
    await b.roster.end(ROOM);
    assert.equal((await a.roster.get(ROOM))?.version, 24, 'ending an ended conference changes nothing');
    const reopened = await a.roster.open({ _id: ROOM, kind: 'room', focusInstance: 'as-1' });
    assert.equal(reopened.version, 25);
    assert.equal(reopened.endedAt, undefined);
    assert.deepEqual(reopened.participants, []);
  });

  it('an unknown conference: get undefined, upsert refused', async () => {
    const [a] = instances as [Instance];
    assert.equal(await a.roster.get('sip:nothing@example.com'), undefined);
    await assert.rejects(
      a.roster.upsertParticipant('sip:nothing@example.com', participant('sip:x@example.com')),
      /no conference/,
    );
  });
  it('endIfEmpty: not while anyone is connected on another instance; then once, by the instance whose write ends it', async () => {
    const [a, b] = instances as [Instance, Instance];
    const uri = 'sip:split-room@example.com';
    await a.roster.open({ _id: uri, kind: 'room', focusInstance: 'as-1' });
    await a.roster.upsertParticipant(uri, participant('sip:ann@example.com', { instance: 'as-1', leg: 'k1' }));
    await b.roster.upsertParticipant(uri, participant('sip:ben@example.com', { instance: 'as-2', leg: 'k2' }));
    assert.deepEqual(
      (await b.roster.get(uri))?.participants.map((p) => [p.uri, p.instance, p.leg]),
      [
        ['sip:ann@example.com', 'as-1', 'k1'],
        ['sip:ben@example.com', 'as-2', 'k2'],
      ],
      'which instance holds each leg is in the roster',
    );
    // as-1's last participant leaves: as-2 still holds ben, the conference goes on
    await a.roster.upsertParticipant(
      uri,
      participant('sip:ann@example.com', { status: 'disconnected', instance: 'as-1' }),
    );
    assert.equal(await a.roster.endIfEmpty(uri), false);
    assert.equal((await b.roster.get(uri))?.endedAt, undefined);
    // ben leaves; both instances ask at once: it ends once
    await b.roster.upsertParticipant(
      uri,
      participant('sip:ben@example.com', { status: 'disconnected', instance: 'as-2' }),
    );
    const asked = await Promise.all([a.roster.endIfEmpty(uri), b.roster.endIfEmpty(uri)]);
    assert.deepEqual(asked.filter(Boolean).length, 1, `one instance ended it: ${asked}`);
    assert.ok((await a.roster.get(uri))?.endedAt instanceof Date);
  });

  it("instanceGone: a dead instance's participants leave as failed, the others stay; a conference left empty ends", async () => {
    const [a, b] = instances as [Instance, Instance];
    const mixed = 'sip:mixed@example.com';
    const onlyDead = 'sip:only-dead@example.com';
    await a.roster.open({ _id: mixed, kind: 'room', focusInstance: 'as-1' });
    await a.roster.open({ _id: onlyDead, kind: 'adhoc', focusInstance: 'as-2' });
    await a.roster.upsertParticipant(mixed, participant('sip:ann@example.com', { instance: 'as-1', leg: 'k1' }));
    await b.roster.upsertParticipant(mixed, participant('sip:ben@example.com', { instance: 'as-2', leg: 'k2' }));
    await b.roster.upsertParticipant(onlyDead, participant('sip:cat@example.com', { instance: 'as-2', leg: 'k3' }));
    const before = (await a.roster.get(mixed))!.version;
    const ended = await a.roster.instanceGone('as-2');
    assert.deepEqual(ended, [onlyDead]);
    const m = (await a.roster.get(mixed))!;
    assert.equal(m.endedAt, undefined);
    assert.equal(m.version, before + 1);
    assert.deepEqual(
      m.participants.map((p) => [p.uri, p.status, p.disconnectionMethod]),
      [
        ['sip:ann@example.com', 'connected', undefined],
        ['sip:ben@example.com', 'disconnected', 'failed'],
      ],
    );
    assert.ok(m.participants[1]!.leftAt instanceof Date);
    const o = (await a.roster.get(onlyDead))!;
    assert.ok(o.endedAt instanceof Date);
    assert.equal(o.participants[0]!.status, 'disconnected');
    assert.deepEqual(await a.roster.instanceGone('as-2'), [], 'adopting twice changes nothing');
    assert.equal((await a.roster.get(mixed))!.version, before + 1);
  });
});
