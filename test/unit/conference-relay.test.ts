/**
 * The relay of a conference's messages between instances (as/src/conference/relay.ts): what
 * the instance that took a SEND puts on the change feed, and which of its legs another
 * instance delivers it to.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resourceOf } from '../../as/src/cluster/changes.js';
import { fanOut, type Seat } from '../../as/src/conference/fan-out.js';
import { CPIM_HEADROOM_BYTES, relayOf, relayTargets, type RelayedMessage } from '../../as/src/conference/relay.js';
import { parseCpim } from '../../as/src/im/formats/cpim.js';

const ROOM = 'sip:lobby@example.com';
const NOW = new Date('2026-12-07T10:00:00.000Z');
// alice and bob here (instance as-1), carol (nickname Cee) and dave on as-2
const alice: Seat = { key: 'a', uri: 'sip:alice@example.com', anonymous: false };
const bob: Seat = { key: 'b', uri: 'sip:bob@example.com', anonymous: false };
const carol: Seat = { key: 'c', uri: 'sip:carol@example.com', nickname: 'Cee', anonymous: false };
const dave: Seat = { key: 'd', uri: 'sip:dave@example.com', anonymous: true };
const seats = [alice, bob, carol, dave];
const remoteKeys = new Set(['c', 'd']);
const meta = { conference: ROOM, origin: 'as-1', sender: 'a', at: NOW, remoteKeys };

function out(contentType: string, body: string) {
  const o = fanOut(ROOM, alice, seats, contentType, Buffer.from(body), NOW);
  assert.ok(!('refuse' in o));
  return o;
}
const privateTo = (to: string, text: string) =>
  out('message/cpim', `From: <sip:alice@example.com>\r\nTo: ${to}\r\n\r\nContent-Type: text/plain\r\n\r\n${text}`);

describe('conference relay between instances', () => {
  it('a message to the room travels once, for every leg elsewhere, as the CPIM the local recipients got', () => {
    const o = out('text/plain', 'hello all');
    const msg = relayOf(o, meta, 1024);
    assert.ok(msg && !('tooLarge' in msg));
    assert.equal(msg.kind, 'conference-message');
    assert.equal(msg.uri, ROOM);
    assert.equal(msg.origin, 'as-1');
    assert.equal(msg.sender, 'a');
    assert.equal(msg.at, NOW.toISOString());
    assert.equal(msg.to, undefined, 'every leg of the conference');
    assert.equal(msg.body, o.body);
    assert.equal(parseCpim(msg.body).from.uri, 'sip:alice@example.com');
    assert.equal(msg.isComposing, false);
    assert.equal(resourceOf(msg), `conference-message:${ROOM}`, 'its own chain, not behind roster NOTIFYs');
  });

  it('a private message names only the remote legs it is for; one for local legs only is not relayed', () => {
    const toCarol = relayOf(privateTo('"Cee" <sip:anonymous@anonymous.invalid>', 'psst'), meta, 1024);
    assert.ok(toCarol && !('tooLarge' in toCarol));
    assert.deepEqual(toCarol.to, ['c']);
    assert.equal(relayOf(privateTo('<sip:bob@example.com>', 'bob only'), meta, 1024), undefined);
  });

  it('is-composing is relayed and flagged (never counted as a message)', () => {
    const o = out('application/im-iscomposing+xml', '<isComposing/>');
    const msg = relayOf(o, meta, 1024);
    assert.ok(msg && !('tooLarge' in msg));
    assert.equal(msg.isComposing, true);
  });

  it('never carries more than the conference largest message plus CPIM headers', () => {
    const big = out('text/plain', 'x'.repeat(6000));
    assert.deepEqual(relayOf(big, meta, 1000), { tooLarge: Buffer.byteLength(big.body) });
    assert.ok(Buffer.byteLength(big.body) <= 6000 + CPIM_HEADROOM_BYTES);
    const fits = relayOf(big, meta, 6000);
    assert.ok(fits && !('tooLarge' in fits));
  });

  it('another instance delivers to its legs that were there when it was said, never the sender', () => {
    const msg = relayOf(out('text/plain', 'hi'), meta, 1024) as RelayedMessage;
    const before = new Date(NOW.getTime() - 1000);
    const later = new Date(NOW.getTime() + 1);
    assert.deepEqual(
      relayTargets(msg, [
        { key: 'c', joinedAt: before },
        { key: 'd', joinedAt: NOW },
        { key: 'e', joinedAt: later },
        { key: 'a', joinedAt: before },
      ]),
      ['c', 'd'],
      'e joined after it (a room replays it to e instead)',
    );
  });

  it('a private message reaches only the legs it names', () => {
    const msg = relayOf(privateTo('<sip:dave@example.com>\r\nTo: "Cee" <sip:x@example.com>', 'two of you'), meta, 1024);
    // dave is anonymous: his real URI does not single him out; carol by her nickname does
    assert.ok(msg && !('tooLarge' in msg));
    assert.deepEqual(msg.to, ['c']);
    assert.deepEqual(
      relayTargets(msg, [
        { key: 'c', joinedAt: NOW },
        { key: 'd', joinedAt: NOW },
      ]),
      ['c'],
    );
  });
});
