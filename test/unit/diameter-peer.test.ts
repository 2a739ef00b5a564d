/** The Diameter peer connection against a scripted TCP server (a unit test of peer.ts alone). */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import {
  decodeMessage,
  encodeMessage,
  messageLength,
  type DiameterMessage,
} from '../../as/src/charging/diameter/codec.js';
import { avp, readAvp } from '../../as/src/charging/diameter/dictionary.js';
import { DiameterPeer } from '../../as/src/charging/diameter/peer.js';

let server: Server | null = null;
afterEach(async () => {
  server?.close();
  server = null;
});

/** A server calling `onMessage` for each message, with a function to send on that connection. */
async function scripted(
  onMessage: (m: DiameterMessage, send: (m: DiameterMessage) => void, sock: Socket) => void,
): Promise<number> {
  server = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const len = messageLength(buf);
        if (len === undefined || buf.length < len) return;
        const m = decodeMessage(buf.subarray(0, len));
        buf = buf.subarray(len);
        onMessage(m, (out) => sock.write(encodeMessage(out)), sock);
      }
    });
    sock.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

const answer = (req: DiameterMessage, result: number): DiameterMessage => ({
  ...req,
  request: false,
  avps: [avp('Result-Code', result), avp('Origin-Host', 'cdf.test'), avp('Origin-Realm', 'test')],
});
const peerTo = (port: number, over: Partial<ConstructorParameters<typeof DiameterPeer>[0]> = {}) =>
  new DiameterPeer({
    host: '127.0.0.1',
    port,
    originHost: 'as1.home1.net',
    originRealm: 'home1.net',
    hostIpAddress: '127.0.0.1',
    ...over,
  });

describe('Diameter peer', () => {
  test('sends a CER with our identity and the accounting application, opens on CEA 2001', async () => {
    let cer: DiameterMessage | undefined;
    const port = await scripted((m, send) => {
      cer = m;
      send(answer(m, 2001));
    });
    const peer = peerTo(port);
    await peer.open();
    assert.equal(cer!.commandCode, 257);
    assert.equal(cer!.request, true);
    assert.equal(readAvp(cer!.avps, 'Origin-Host'), 'as1.home1.net');
    assert.equal(readAvp(cer!.avps, 'Host-IP-Address'), '127.0.0.1');
    assert.equal(readAvp(cer!.avps, 'Acct-Application-Id'), 3);
    assert.equal(readAvp(cer!.avps, 'Supported-Vendor-Id'), 10415);
    assert.equal(peer.remoteHost, 'cdf.test');
    peer.removeAllListeners();
    peer.on('down', () => undefined);
    await peer.close();
  });
  test('a CEA other than 2001 refuses the peer and closes the connection', async () => {
    let closed = false;
    const port = await scripted((m, send, sock) => {
      sock.on('close', () => (closed = true));
      send(answer(m, 5010));
    });
    const peer = peerTo(port);
    peer.on('down', () => undefined);
    await assert.rejects(peer.open(), /Result-Code 5010/);
    for (let i = 0; i < 100 && !closed; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(closed);
  });
  test("answers the peer's DWR with a DWA 2001 carrying the same identifiers", async () => {
    let dwa: DiameterMessage | undefined;
    const port = await scripted((m, send) => {
      if (m.commandCode === 257) {
        send(answer(m, 2001));
        send({
          commandCode: 280,
          applicationId: 0,
          hopByHop: 77,
          endToEnd: 88,
          request: true,
          proxiable: false,
          error: false,
          retransmit: false,
          avps: [avp('Origin-Host', 'cdf.test'), avp('Origin-Realm', 'test')],
        });
      } else if (m.commandCode === 280 && !m.request) dwa = m;
    });
    const peer = peerTo(port);
    peer.on('down', () => undefined);
    await peer.open();
    for (let i = 0; i < 100 && !dwa; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(dwa!.hopByHop, 77);
    assert.equal(dwa!.endToEnd, 88);
    assert.equal(readAvp(dwa!.avps, 'Result-Code'), 2001);
    await peer.close();
  });
  test('a watchdog without answer takes the peer down', async () => {
    const port = await scripted((m, send) => {
      if (m.commandCode === 257) send(answer(m, 2001)); // DWRs go unanswered
    });
    const peer = peerTo(port, { watchdogMs: 100 });
    await peer.open();
    const [err] = (await once(peer, 'down')) as [Error];
    assert.match(err.message, /watchdog/);
    assert.equal(peer.isOpen, false);
  });
  test('an unanswered request rejects after its timeout', async () => {
    const port = await scripted((m, send) => {
      if (m.commandCode === 257) send(answer(m, 2001));
    });
    const peer = peerTo(port);
    peer.on('down', () => undefined);
    await peer.open();
    const acr: DiameterMessage = {
      commandCode: 271,
      applicationId: 3,
      hopByHop: 0,
      endToEnd: 0,
      request: true,
      proxiable: true,
      error: false,
      retransmit: false,
      avps: [],
    };
    await assert.rejects(peer.request(acr, 100), /no answer within 100 ms/);
    await peer.close();
  });
});
