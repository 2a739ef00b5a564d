/**
 * The IM server's MSRP end point for deferred sessions, on a real loopback socket: a whole
 * message is handed up; one above its bound is refused with 413 (RFC 4975 section 7.3.1)
 * and reported to the session (a file too large for a stored message leaves a note in
 * history). The switch in front of it is played by the test.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DeferredEndpoint, type DeferredSessionRefusal } from '../../as/src/im/deferred-endpoint.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { MsrpFramer } from '../../as/src/msrp/framer.js';
import { serializeMessage, type MsrpHead } from '../../as/src/msrp/message.js';

const FROM = 'msrp://127.0.0.1:2855/switch-side;tcp';

function sendChunk(tid: string, to: string, body: string, range: string, flag: '+' | '$'): Buffer {
  return serializeMessage({
    head: {
      kind: 'request',
      tid,
      method: 'SEND',
      headers: [
        { name: 'To-Path', value: to },
        { name: 'From-Path', value: FROM },
        { name: 'Message-ID', value: `m-${tid}` },
        { name: 'Byte-Range', value: range },
        { name: 'Content-Type', value: 'text/plain' },
      ],
    },
    body: Buffer.from(body),
    flag,
  });
}

describe('deferred session end point', () => {
  const endpoint = new DeferredEndpoint({ maxMessageBytes: 10, log: silentLogger() });
  let socket: Socket;
  const heads: MsrpHead[] = [];

  before(async () => {
    await endpoint.start();
  });
  after(async () => {
    socket?.destroy();
    await endpoint.stop();
  });

  async function answers(n: number): Promise<MsrpHead[]> {
    for (let i = 0; i < 100 && heads.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    return heads.slice(0, n);
  }

  it('hands a whole message up, and refuses one above its bound with 413, telling the session', async () => {
    const messages: string[] = [];
    const refusals: DeferredSessionRefusal[] = [];
    const path = endpoint.open(
      's1',
      (m) => messages.push(m.body.toString()),
      (r) => refusals.push(r),
    );
    const port = Number(/:(\d+)\//.exec(path)![1]);
    socket = connect(port, '127.0.0.1');
    const framer = new MsrpFramer();
    socket.on('data', (d: Buffer) => {
      for (const ev of framer.push(d)) if (ev.type === 'head') heads.push(ev.head);
    });
    await new Promise((r) => socket.once('connect', r));
    socket.write(sendChunk('tx0001', path, 'short', '1-5/5', '$'));
    // no total announced: the first chunk fits, the second one crosses the bound of 10 bytes
    socket.write(sendChunk('tx0002', path, 'eight by', '1-8/*', '+'));
    socket.write(sendChunk('tx0003', path, 'tes more', '9-16/*', '$'));
    const got = await answers(3);
    assert.deepEqual(
      got.map((h) => [h.tid, h.kind === 'response' ? h.code : h.method]),
      [
        ['tx0001', 200],
        ['tx0002', 200],
        ['tx0003', 413],
      ],
    );
    assert.deepEqual(messages, ['short']);
    assert.equal(refusals.length, 1);
    assert.deepEqual([refusals[0]!.code, refusals[0]!.contentType], [413, 'text/plain']);
    endpoint.close('s1');
  });
});
