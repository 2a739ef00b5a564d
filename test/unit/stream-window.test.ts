import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NetstringDecoder } from '../../as/src/isc/netstring.js';
import { STREAM_WINDOW_BYTES, StreamWindow, frameBytes, withAck } from '../../as/src/isc/stream-window.js';

const payload = (i: number, size = 100) =>
  JSON.stringify({ method: 'NOTIFY', callId: `c${i}`, body: 'x'.repeat(size) });
const decode = (data: Buffer) => new NetstringDecoder().push(data).map((p) => JSON.parse(p) as Record<string, unknown>);

describe('stream window (evapi flow control)', () => {
  it('puts the ack marker first, on the last frame of a batch only', () => {
    assert.equal(withAck('{"a":1}', 7), '{"ack":7,"a":1}');
    assert.equal(withAck('{}', 8), '{"ack":8}');
    assert.throws(() => withAck('[1]', 1), TypeError);
    const w = new StreamWindow();
    for (let i = 0; i < 3; i++) w.push(payload(i));
    const batch = w.next(0)!;
    assert.equal(batch.frames, 3);
    const frames = decode(batch.data);
    assert.deepEqual(
      frames.map((f) => f.callId),
      ['c0', 'c1', 'c2'],
    );
    assert.deepEqual(
      frames.map((f) => f.ack),
      [undefined, undefined, batch.id],
    );
    assert.match(batch.data.toString(), new RegExp(`\\{"ack":${batch.id},"method"`));
    assert.equal(w.next(0), undefined, 'nothing queued');
  });

  it('never has more than the window unconfirmed, and moves on when Kamailio confirms', () => {
    const w = new StreamWindow();
    for (let i = 0; i < 200; i++) w.push(payload(i, 900));
    const first = w.next(0)!;
    assert.ok(first.data.length <= STREAM_WINDOW_BYTES);
    assert.ok(first.frames > 20 && first.frames < 40, `${first.frames} frames`);
    let sent = first.frames;
    const seen: string[] = decode(first.data).map((f) => String(f.callId));
    let last = first;
    for (let b = w.next(0); b; b = w.next(0)) {
      sent += b.frames;
      seen.push(...decode(b.data).map((f) => String(f.callId)));
      last = b;
    }
    assert.ok(
      w.inFlightBytes <= STREAM_WINDOW_BYTES && w.inFlightBytes > STREAM_WINDOW_BYTES - 2000,
      `${w.inFlightBytes} unconfirmed`,
    );
    assert.equal(w.next(0), undefined, 'the window is full');
    assert.equal(w.ack(last.id + 1), false, 'an id never sent');
    assert.equal(w.ack(last.id), true);
    assert.equal(w.inFlightBytes, 0);
    for (let b = w.next(1); b; b = w.next(1)) {
      assert.ok(w.inFlightBytes <= STREAM_WINDOW_BYTES);
      sent += b.frames;
      seen.push(...decode(b.data).map((f) => String(f.callId)));
      w.ack(b.id);
    }
    assert.equal(sent, 200);
    assert.deepEqual(
      seen,
      Array.from({ length: 200 }, (_, i) => `c${i}`),
      'in order, each once',
    );
  });

  it('lets small batches share the window; a confirmation covers the batches before it', () => {
    const w = new StreamWindow(1000, 1);
    w.push(payload(1));
    const a = w.next(5)!;
    w.push(payload(2));
    const b = w.next(6)!;
    assert.equal(w.oldestSentAt, 5);
    assert.equal(w.inFlightBytes, a.data.length + b.data.length);
    assert.equal(w.ack(b.id), true);
    assert.equal(w.inFlightBytes, 0);
    assert.equal(w.oldestSentAt, undefined);
    assert.equal(w.ack(a.id), false, 'already covered');
  });

  it('sends a frame larger than the window alone once the window is empty', () => {
    const w = new StreamWindow(500);
    w.push(payload(1, 10));
    w.push(payload(2, 2000));
    const a = w.next(0)!;
    assert.equal(a.frames, 1);
    assert.equal(w.next(0), undefined);
    w.ack(a.id);
    const b = w.next(0)!;
    assert.equal(b.frames, 1);
    assert.equal(decode(b.data)[0]!.callId, 'c2');
  });

  it('hands back what was never written when the stream goes down', () => {
    const w = new StreamWindow(1000);
    for (let i = 0; i < 30; i++) w.push(payload(i));
    const a = w.next(0)!;
    const unsent = w.reset();
    assert.equal(unsent.length, 30 - a.frames);
    assert.equal(JSON.parse(unsent[0]!).callId, `c${a.frames}`);
    assert.equal(w.inFlightBytes, 0);
    assert.equal(w.queued, 0);
    assert.equal(w.ack(a.id), false);
  });

  it('starts ids at a random point per window and keeps them within 32 bits', () => {
    const a = new StreamWindow();
    const b = new StreamWindow();
    a.push(payload(1));
    b.push(payload(1));
    assert.notEqual(a.next(0)!.id, b.next(0)!.id);
    const w = new StreamWindow(STREAM_WINDOW_BYTES, 2 ** 31 - 1);
    w.push(payload(1));
    assert.equal(w.next(0)!.id, 2 ** 31 - 1);
    w.push(payload(2));
    assert.equal(w.next(0)!.id, 1);
  });

  it('counts frame bytes as they go on the wire', () => {
    assert.equal(frameBytes('héllo'), '6:héllo,'.length + 1);
    assert.equal(frameBytes(''), 3);
  });
});
