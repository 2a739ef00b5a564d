import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fanOut, shownAs, type Seat } from '../../as/src/conference/fan-out.js';
import { focusAnswerSdp, nicknameKey, nicknameProblem, offeredNickname } from '../../as/src/conference/focus-sdp.js';
import { parseCpim } from '../../as/src/im/formats/cpim.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';

const ROOM = 'sip:lobby@example.com';
const alice: Seat = { key: 'a', uri: 'sip:alice@example.com', anonymous: false };
const bob: Seat = { key: 'b', uri: 'sip:bob@example.com', nickname: 'Bobby', anonymous: false };
const carol: Seat = { key: 'c', uri: 'sip:carol@example.com', anonymous: true };
const seats = [alice, bob, carol];
const NOW = new Date('2026-12-07T10:00:00.000Z');
const cpim = (to: string, content: string, type = 'text/plain') =>
  Buffer.from(`From: <sip:x@example.com>\r\nTo: ${to}\r\n\r\nContent-Type: ${type}\r\n\r\n${content}`);

describe('conference fan-out', () => {
  it('a plain text message goes to everyone else, CPIM-wrapped, from the sender to the conference', () => {
    const out = fanOut(ROOM, alice, seats, 'text/plain', Buffer.from('hi all'), NOW);
    assert.ok(!('refuse' in out));
    assert.deepEqual(out.to, ['b', 'c']);
    assert.equal(out.private, false);
    assert.equal(out.isComposing, false);
    const m = parseCpim(out.body);
    assert.equal(m.from.uri, 'sip:alice@example.com');
    assert.equal(m.from.display, undefined);
    assert.deepEqual(
      m.to.map((t) => t.uri),
      [ROOM],
    );
    assert.equal(m.dateTime, '2026-12-07T10:00:00.000Z');
    assert.equal(m.contentType, 'text/plain');
    assert.equal(m.content, 'hi all');
  });

  it('shows a nickname as the display name, and an anonymous participant as anonymous', () => {
    assert.deepEqual(shownAs(bob), { display: 'Bobby', uri: 'sip:bob@example.com' });
    assert.deepEqual(shownAs(carol), { display: 'Anonymous', uri: 'sip:anonymous@anonymous.invalid' });
    assert.deepEqual(shownAs({ ...carol, nickname: 'Cee' }), {
      display: 'Cee',
      uri: 'sip:anonymous@anonymous.invalid',
    });
    const out = fanOut(ROOM, carol, seats, 'text/plain', Buffer.from('who am I'), NOW);
    assert.ok(!('refuse' in out));
    assert.doesNotMatch(out.body, /carol/, "the anonymous sender's URI never reaches the others");
  });

  it('a CPIM To naming one participant (by URI or by nickname) reaches only that one', () => {
    const byUri = fanOut(ROOM, carol, seats, 'message/cpim', cpim('<sip:bob@example.com>', 'psst'), NOW);
    assert.ok(!('refuse' in byUri));
    assert.deepEqual(byUri.to, ['b']);
    assert.equal(byUri.private, true);
    assert.equal(parseCpim(byUri.body).content, 'psst');
    const byNick = fanOut(ROOM, alice, seats, 'message/cpim', cpim('"bobby" <sip:whatever@example.com>', 'psst'), NOW);
    assert.ok(!('refuse' in byNick));
    assert.deepEqual(byNick.to, ['b']);
  });

  it('an anonymous participant cannot be singled out by its real URI', () => {
    const out = fanOut(ROOM, alice, seats, 'message/cpim', cpim('<sip:carol@example.com>', 'found you'), NOW);
    assert.ok('refuse' in out);
  });

  it('a CPIM To naming the conference itself is a message to everyone', () => {
    const out = fanOut(ROOM, alice, seats, 'message/cpim', cpim(`<${ROOM}>`, 'hi'), NOW);
    assert.ok(!('refuse' in out));
    assert.deepEqual(out.to, ['b', 'c']);
    assert.equal(out.private, false);
  });

  it('refuses unreadable CPIM and a To naming nobody present', () => {
    assert.ok('refuse' in fanOut(ROOM, alice, seats, 'message/cpim', Buffer.from('nonsense'), NOW));
    assert.ok('refuse' in fanOut(ROOM, alice, seats, 'message/cpim', cpim('<sip:zed@example.com>', 'x'), NOW));
  });

  it('marks is-composing indications', () => {
    const out = fanOut(ROOM, alice, seats, 'application/im-iscomposing+xml', Buffer.from('<isComposing/>'), NOW);
    assert.ok(!('refuse' in out));
    assert.equal(out.isComposing, true);
  });
});

describe('focus SDP and nicknames', () => {
  it('reads a=nickname from an offer', () => {
    assert.equal(offeredNickname('v=0\r\nm=message 9 TCP/MSRP *\r\na=nickname: Bobby \r\n'), 'Bobby');
    assert.equal(offeredNickname('v=0\r\nm=message 9 TCP/MSRP *\r\n'), undefined);
    assert.equal(offeredNickname('a=nickname:\r\n'), undefined);
  });

  it('accepts printable nicknames up to 40 characters, compared without case', () => {
    assert.equal(nicknameProblem('Bobby'), undefined);
    assert.match(nicknameProblem('x'.repeat(41))!, /40/);
    assert.ok(nicknameProblem('a<b'));
    assert.ok(nicknameProblem('a"b'));
    assert.equal(nicknameKey(' Bobby '), nicknameKey('bobby'));
  });

  it("builds an answer naming the AS's MSRP URI, passive unless the participant is", () => {
    const sdp = focusAnswerSdp({
      host: '192.0.2.1',
      port: 2855,
      path: 'msrp://192.0.2.1:2855/abc;tcp',
      proto: 'TCP/MSRP',
      setup: 'passive',
      subject: 'The\r\nlobby',
      version: 7,
    });
    const m = parseMsrpMedia(sdp)[0]!;
    assert.deepEqual(m.path, ['msrp://192.0.2.1:2855/abc;tcp']);
    assert.equal(m.port, 2855);
    assert.equal(m.address, '192.0.2.1');
    assert.equal(m.setup, 'passive');
    assert.deepEqual(m.acceptTypes, ['message/cpim', 'text/plain']);
    assert.match(sdp, /^s=The lobby\r$/m);
  });
});

describe('Refer-To at the focus', () => {
  it('reads the user and the method, without parameters or headers', async () => {
    const { referTarget, sipfrag } = await import('../../as/src/conference/refer-to.js');
    assert.deepEqual(referTarget('<sip:bob@example.com;method=BYE>'), { uri: 'sip:bob@example.com', method: 'BYE' });
    assert.deepEqual(referTarget('"Bob" <sip:bob@example.com;method=bye?Reason=x>'), {
      uri: 'sip:bob@example.com',
      method: 'BYE',
    });
    assert.deepEqual(referTarget('<sip:carol@example.com>'), { uri: 'sip:carol@example.com', method: 'INVITE' });
    assert.equal(referTarget('<mailto:x@example.com>'), undefined);
    assert.equal(referTarget('<<broken'), undefined);
    assert.equal(sipfrag(200, 'OK'), 'SIP/2.0 200 OK\r\n');
  });
});
