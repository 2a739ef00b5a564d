import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../as/src/log/logger.js';
import { type MsrpMessageEvent, MsrpSwitch } from '../../as/src/msrp/switch.js';
import { headerValue } from '../../as/src/msrp/message.js';
import { until } from '../helpers/until.js';
import { MsrpPeer } from './msrp-peer.js';

const A_PATH = 'msrp://127.0.0.1:7777/iau39soe2843z;tcp';

/** A switch, an offerer connected to it and an answerer it connected to, for one session. */
async function session(sw: MsrpSwitch, key: string): Promise<{ a: MsrpPeer; b: MsrpPeer; uris: { offererSide: string; answererSide: string }; bPath: string }> {
  const uris = sw.open(key, { path: [A_PATH], acceptTypes: ['text/plain'] });
  const b = new MsrpPeer();
  const bPort = await b.listen();
  const bPath = `msrp://127.0.0.1:${bPort}/9di4eae923wzd;tcp`;
  sw.answered(key, { path: [bPath] });
  // the switch opens the answerer's leg with a bodiless SEND
  await b.waitFor('the binding SEND', (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'));
  const a = await MsrpPeer.connect(sw.port);
  return { a, b, uris, bPath };
}

function send(tid: string, to: string, from: string, messageId: string, body: string, extra: Array<{ name: string; value: string }> = []) {
  const bytes = Buffer.from(body);
  return {
    head: {
      kind: 'request' as const,
      tid,
      method: 'SEND',
      headers: [
        { name: 'To-Path', value: to },
        { name: 'From-Path', value: from },
        { name: 'Message-ID', value: messageId },
        { name: 'Byte-Range', value: `1-${bytes.length}/${bytes.length}` },
        ...extra,
        { name: 'Content-Type', value: 'text/plain' },
      ],
    },
    body: bytes,
    flag: '$' as const,
  };
}

describe('MSRP switch: relaying between two participants', () => {
  let sw: MsrpSwitch;
  const events: MsrpMessageEvent[] = [];
  before(async () => {
    sw = new MsrpSwitch({ host: '127.0.0.1', port: 0, maxMessageBytes: 1024 * 1024, idleTimeoutMs: 0, log: createLogger('silent') });
    sw.on('message', (e) => events.push(e));
    await sw.start();
  });
  after(async () => {
    await sw.stop();
  });

  it('relays a SEND from the offerer to the answerer with the answerer leg paths, answers 200 on each hop', async () => {
    const { a, b, uris, bPath } = await session(sw, 'call-1');
    a.send(send('a786hjs2', uris.offererSide, A_PATH, '87652491', 'Hey Bob, are you there?'));
    await a.waitFor('200 to the SEND', () => a.responseTo('a786hjs2') !== undefined);
    assert.equal((a.responseTo('a786hjs2')!.head as { code: number }).code, 200);
    assert.equal(headerValue(a.responseTo('a786hjs2')!.head, 'To-Path'), A_PATH);
    assert.equal(headerValue(a.responseTo('a786hjs2')!.head, 'From-Path'), uris.offererSide);
    await b.waitFor('the relayed SEND', (r) => r.filter((m) => m.body?.length).length === 1);
    const relayed = b.received.find((m) => m.body?.length)!;
    assert.equal(relayed.body!.toString(), 'Hey Bob, are you there?');
    assert.equal(headerValue(relayed.head, 'To-Path'), bPath);
    assert.equal(headerValue(relayed.head, 'From-Path'), uris.answererSide);
    assert.equal(headerValue(relayed.head, 'Message-ID'), '87652491');
    assert.equal(headerValue(relayed.head, 'Content-Type'), 'text/plain');
    assert.equal(relayed.flag, '$');
    await until('message event', () => events.some((e) => e.sessionKey === 'call-1'));
    const ev = events.find((e) => e.sessionKey === 'call-1')!;
    assert.deepEqual({ from: ev.from, bytes: ev.bytes, text: ev.text, isComposing: ev.isComposing }, { from: 'offerer', bytes: 23, text: 'Hey Bob, are you there?', isComposing: false });
    assert.deepEqual(sw.sessionStats('call-1'), { fromOfferer: { messages: 1, bytes: 23 }, fromAnswerer: { messages: 0, bytes: 0 } });

    // and back: the answerer's SEND reaches the offerer on the connection the offerer opened
    b.send(send('dkei38sd', uris.answererSide, bPath, '456s9wlk3', "Hi, I'm Bob!"));
    await a.waitFor('the SEND from B', (r) => r.some((m) => m.head.kind === 'request' && m.body?.toString() === "Hi, I'm Bob!"));
    const back = a.received.find((m) => m.head.kind === 'request' && m.body?.length)!;
    assert.equal(headerValue(back.head, 'To-Path'), A_PATH);
    assert.equal(headerValue(back.head, 'From-Path'), uris.offererSide);
    await b.waitFor('200 to B', () => b.responseTo('dkei38sd') !== undefined);
    assert.deepEqual(sw.sessionStats('call-1')?.fromAnswerer, { messages: 1, bytes: 12 });
    await a.close();
    await b.close();
  });
});
