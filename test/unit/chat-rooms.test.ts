import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChatRooms } from '../../as/src/conference/chat-rooms.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { UserError } from '../../as/src/users/user-directory.js';

describe('chat rooms (store)', () => {
  let root: string;
  let store: SqliteStore;
  let rooms: ChatRooms;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'chat-rooms-'));
    store = await SqliteStore.open(path.join(root, 'data'));
    rooms = new ChatRooms(store, 'example.com', async (name) => name === 'alice');
    await rooms.start();
  });
  after(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('adds a room at sip:<name>@<domain> with its owner as a SIP URI, and lists it', async () => {
    const r = await rooms.add({ name: 'Lobby', owner: 'bob', subject: 'Hi', maxParticipants: 5 });
    assert.equal(r._id, 'sip:lobby@example.com');
    assert.equal(r.owner, 'sip:bob@example.com');
    assert.equal((await rooms.get('sip:lobby@example.com'))?.subject, 'Hi');
    assert.deepEqual(
      (await rooms.list()).map((x) => x._id),
      ['sip:lobby@example.com'],
    );
  });

  it("refuses a taken name, a user's name, a bad name, a maximum below 2 and a bad owner", async () => {
    const code = async (p: Promise<unknown>) => {
      try {
        await p;
        return 'none';
      } catch (err) {
        assert.ok(err instanceof UserError);
        return err.code;
      }
    };
    assert.equal(await code(rooms.add({ name: 'lobby', owner: 'bob' })), 'exists');
    assert.equal(await code(rooms.add({ name: 'alice', owner: 'bob' })), 'exists');
    assert.equal(await code(rooms.add({ name: 'no spaces', owner: 'bob' })), 'invalid');
    assert.equal(await code(rooms.add({ name: 'tiny', owner: 'bob', maxParticipants: 1 })), 'invalid');
    assert.equal(await code(rooms.add({ name: 'odd', owner: 'a b@c' })), 'invalid');
    assert.equal(await code(rooms.remove('nowhere')), 'missing');
  });

  it('keeps only the newest N messages of a room and gives the last ones oldest first; removal forgets them', async () => {
    const room = 'sip:lobby@example.com';
    const t0 = Date.parse('2026-12-07T10:00:00Z');
    for (let i = 1; i <= 5; i++)
      await rooms.remember(room, { contentType: 'message/cpim', body: `m${i}`, at: new Date(t0 + i * 1000) }, 3);
    assert.deepEqual(
      (await rooms.lastMessages(room, 10)).map((m) => m.body),
      ['m3', 'm4', 'm5'],
    );
    assert.deepEqual(
      (await rooms.lastMessages(room, 2)).map((m) => m.body),
      ['m4', 'm5'],
    );
    assert.deepEqual(await rooms.lastMessages(room, 0), []);
    await rooms.remove('lobby');
    assert.equal(await rooms.get(room), undefined);
    assert.deepEqual(await rooms.lastMessages(room, 10), []);
  });
});
