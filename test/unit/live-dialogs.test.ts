import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveDialogs } from '../../as/src/events/live-dialogs.js';

test('knows which resources and list members the dialogs held here are about', () => {
  const live = new LiveDialogs();
  assert.equal(live.about('presence', 'sip:alice@x'), false);
  live.add('d1', 'presence', 'sip:alice@x');
  live.add('d2', 'presence', 'sip:friends@x', ['sip:bob@x', 'sip:carol@x']);
  assert.equal(live.about('presence', 'sip:alice@x'), true);
  assert.equal(live.about('presence.winfo', 'sip:alice@x'), false, 'another event package');
  assert.equal(live.watching('presence', 'sip:bob@x'), true);
  assert.equal(live.about('presence', 'sip:bob@x'), false, 'a member is not a direct resource');
  live.extend('d2', ['sip:dave@x']);
  assert.equal(live.watching('presence', 'sip:dave@x'), true);
  live.extend('unknown', ['sip:erin@x']);
  assert.equal(live.watching('presence', 'sip:erin@x'), false, 'a dialog not held here is not extended');
  live.remove('d2');
  assert.equal(live.watching('presence', 'sip:bob@x'), false);
  assert.equal(live.watching('presence', 'sip:dave@x'), false);
  assert.equal(live.about('presence', 'sip:alice@x'), true);
  assert.equal(live.size, 1);
});

test('a resource stays known while any of its dialogs is held here', () => {
  const live = new LiveDialogs();
  live.add('d1', 'reg', 'sip:alice@x');
  live.add('d2', 'reg', 'sip:alice@x');
  live.add('d1', 'reg', 'sip:alice@x'); // a refresh taking a dialog it already holds
  live.remove('d1');
  assert.equal(live.about('reg', 'sip:alice@x'), true);
  live.remove('d2');
  assert.equal(live.about('reg', 'sip:alice@x'), false);
  assert.equal(live.has('d2'), false);
});
