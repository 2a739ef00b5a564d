/**
 * When the AS counts its evapi event stream up: only once the peer answered the hello with
 * a hello-ack naming that hello's id, never on the bare TCP connect. Scripted TCP peers
 * stand in for Kamailio (a unit test of stream-link.ts and event-stream.ts alone); the real
 * Kamailio's answer is exercised by every e2e test that waits for the stream.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { KamailioEventStream } from '../../as/src/isc/event-stream.js';
import { NetstringDecoder, encodeNetstring } from '../../as/src/isc/netstring.js';
import { Metrics } from '../../as/src/ops/metrics.js';

interface Peer {
  port: number;
  hellos: string[];
  connections: number;
}

let server: Server | undefined;
let stream: KamailioEventStream | undefined;
const sockets = new Set<Socket>();

afterEach(async () => {
  stream?.stop();
  stream = undefined;
  for (const s of sockets) s.destroy();
  sockets.clear();
  if (server) await new Promise((res) => server!.close(res));
  server = undefined;
});

/** A TCP peer on the evapi port; `answer` decides what it writes back to each hello. */
async function peer(answer: (hello: string, socket: Socket) => void): Promise<Peer> {
  const seen: Peer = { port: 0, hellos: [], connections: 0 };
  server = createServer((socket) => {
    seen.connections++;
    sockets.add(socket);
    socket.on('error', () => {});
    const decoder = new NetstringDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const p of decoder.push(chunk)) {
        seen.hellos.push(p);
        answer(p, socket);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  seen.port = (server.address() as { port: number }).port;
  return seen;
}

function streamTo(port: number, metrics: Metrics, logLines: string[]): KamailioEventStream {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  });
  return new KamailioEventStream({
    host: '127.0.0.1',
    port,
    secret: 's3cret',
    instance: 'as-test',
    links: 1,
    helloTimeoutMs: 300,
    onEvent: async () => undefined,
    onRequest: async () => ({ action: 'continue' }),
    log: pino({ level: 'info' }, sink),
    metrics,
  });
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

describe('event stream link: up only on the hello-ack', () => {
  test('a listener that accepts the connection and never answers is never counted up; it is dropped and retried', async () => {
    const silent = await peer(() => {});
    const metrics = new Metrics();
    const log: string[] = [];
    stream = streamTo(silent.port, metrics, log);
    let ups = 0;
    stream.on('up', () => ups++);
    stream.start();
    for (let i = 0; i < 15; i++) {
      await sleep(100);
      assert.equal(stream.isUp, false, `up after ${(i + 1) * 100} ms`);
    }
    assert.equal(ups, 0, 'no up event');
    assert.equal(stream.send('{"method":"NOTIFY"}'), false, 'takes no request');
    assert.match(silent.hellos[0] ?? '', /^hello s3cret as-test [1-9][0-9]*$/);
    assert.ok(silent.connections >= 2, `closed and retried (${silent.connections} connections)`);
    assert.ok(metrics.value('ims_as_isc_stream_resets_total', { reason: 'hello-unanswered' }) >= 1);
    assert.equal(
      log.filter((l) => l.includes('nothing answered the event stream hello')).length,
      1,
      'warned once per streak',
    );
    assert.equal(
      log.some((l) => l.includes('event stream connected')),
      false,
    );
  });

  test("a hello-ack with another id (another link's) does not count this link up", async () => {
    const wrong = await peer((hello, socket) => {
      const id = Number(hello.split(' ')[3]);
      socket.write(encodeNetstring(JSON.stringify({ type: 'hello-ack', id: id + 1 })));
    });
    stream = streamTo(wrong.port, new Metrics(), []);
    stream.start();
    await sleep(500);
    assert.ok(wrong.hellos.length >= 1);
    assert.equal(stream.isUp, false);
  });

  test("the answer naming the hello's id counts the link up: stream connected, requests taken", async () => {
    const kamailio = await peer((hello, socket) => {
      const [word, , , id] = hello.split(' ');
      if (word === 'hello') socket.write(encodeNetstring(JSON.stringify({ type: 'hello-ack', id: Number(id) })));
    });
    const log: string[] = [];
    stream = streamTo(kamailio.port, new Metrics(), log);
    const up = new Promise<void>((res) => stream!.on('up', () => res()));
    stream.start();
    await up;
    assert.equal(stream.isUp, true);
    assert.equal(kamailio.connections, 1);
    assert.ok(log.some((l) => l.includes('Kamailio event stream connected')));
    assert.equal(stream.send('{"method":"NOTIFY"}'), true);
    // and stays up past the hello timeout
    await sleep(500);
    assert.equal(stream.isUp, true);
    assert.equal(kamailio.connections, 1);
  });
});
