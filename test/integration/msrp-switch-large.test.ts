/**
 * A 50 MB message through the switch with bounded memory: the offerer streams one 50 MB chunk
 * (respecting TCP backpressure, as a client streaming a file does), the answerer counts what
 * arrives without keeping it; the process's memory must not grow by anything near the message.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../as/src/log/logger.js';
import { bodyPreamble, bodyTrailer, headerValue } from '../../as/src/msrp/message.js';
import { MsrpSwitch } from '../../as/src/msrp/switch.js';
import { until } from '../helpers/until.js';
import { MsrpPeer } from './msrp-peer.js';

const SIZE = 50 * 1024 * 1024;
const A_PATH = 'msrp://127.0.0.1:7777/bigsender;tcp';

// a collection before each reading, so the figure is what is retained, not garbage waiting
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function memoryRetained(): number {
  // twice: the first collection leaves freed Buffer memory to a concurrent sweeper
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

describe('MSRP switch: a 50 MB message', () => {
  let sw: MsrpSwitch;
  const events: Array<{ bytes: number; text?: string }> = [];
  before(async () => {
    sw = new MsrpSwitch({
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: 100 * 1024 * 1024,
      idleTimeoutMs: 0,
      log: createLogger('silent'),
    });
    sw.on('message', (e) => events.push(e));
    await sw.start();
  });
  after(() => sw.stop());

  it('streams through with the memory in use growing by far less than the message', async () => {
    const uris = sw.open('big', { path: [A_PATH] });
    const b = new MsrpPeer();
    b.keepBodiesUpTo = 0;
    const bPath = `msrp://127.0.0.1:${await b.listen()}/bigreceiver;tcp`;
    sw.answered('big', { path: [bPath] });
    await b.waitFor('binding SEND', (r) => r.length === 1);
    const a = await MsrpPeer.connect(sw.port);

    const baseline = memoryRetained();
    let peak = baseline;
    let samples = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, memoryRetained());
      samples++;
    }, 20);
    const tid = 'bigfile0001';
    a.write(
      bodyPreamble({
        kind: 'request',
        tid,
        method: 'SEND',
        headers: [
          { name: 'To-Path', value: uris.offererSide },
          { name: 'From-Path', value: A_PATH },
          { name: 'Message-ID', value: 'file-1' },
          { name: 'Byte-Range', value: `1-${SIZE}/${SIZE}` },
          { name: 'Content-Type', value: 'application/octet-stream' },
        ],
      }),
    );
    const piece = Buffer.alloc(64 * 1024, 0x5a);
    for (let sentBytes = 0; sentBytes < SIZE; sentBytes += piece.length) {
      if (!a.write(piece)) await once(a.socket!, 'drain');
    }
    a.write(bodyTrailer(tid, '$'));
    await a.waitFor('200', () => a.responseTo(tid) !== undefined, 60_000);
    await until('all bytes at the answerer', () => b.requests('SEND').length === 2, 60_000);
    clearInterval(sampler);

    const response = a.responseTo(tid)!.head;
    assert.equal(response.kind === 'response' && response.code, 200);
    assert.ok(samples >= 3, `memory sampled ${samples} times while the message flowed`);
    assert.equal(b.bodyBytes, SIZE);
    assert.equal(headerValue(b.requests('SEND')[1]!.head, 'Message-ID'), 'file-1');
    assert.equal(b.requests('SEND')[1]!.flag, '$');
    await until('message event', () => events.length === 1);
    assert.deepEqual(events[0], {
      sessionKey: 'big',
      from: 'offerer',
      messageId: 'file-1',
      contentType: 'application/octet-stream',
      bytes: SIZE,
      isComposing: false,
    });
    const growth = peak - baseline;
    assert.ok(
      growth < 8 * 1024 * 1024,
      `memory in use grew by ${(growth / 1048576).toFixed(1)} MB for a 50 MB message`,
    );
    await a.close();
    await b.close();
  });
});
