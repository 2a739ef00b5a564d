import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InChat } from '../../as/src/im/in-chat.js';

test('a user stays in a chat while any session or conference holds them, and leaves with the last', async () => {
  const said: string[] = [];
  const inChat = new InChat(async (user, state) => void said.push(`${user} ${state}`));
  await inChat.enter('sip:alice@example.com'); // a one-to-one session
  await inChat.enter('sip:alice@example.com'); // and a conference
  await inChat.enter('sip:bob@example.com');
  await inChat.leave('sip:alice@example.com'); // the session ends: still in the conference
  assert.deepEqual(said, ['sip:alice@example.com chat', 'sip:bob@example.com chat']);
  assert.equal(inChat.count('sip:alice@example.com'), 1);
  await inChat.leave('sip:alice@example.com');
  assert.deepEqual(said.slice(2), ['sip:alice@example.com none']);
  await inChat.leave('sip:alice@example.com'); // a stray leave says nothing and counts nothing below 0
  assert.equal(said.length, 3);
  assert.equal(inChat.count('sip:alice@example.com'), 0);
});
