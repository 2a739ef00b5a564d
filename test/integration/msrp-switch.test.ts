/**
 * The MSRP switch with real TCP (and TLS) connections: participants written in the test with
 * the format module connect to a switch in this process (the offerer) or are connected to by
 * it (the answerer), and check what arrives on the wire.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../as/src/log/logger.js';
import {
  type ContinuationFlag,
  type MsrpHeader,
  type MsrpMessage,
  byteRangeOf,
  headerValue,
  parseStatus,
} from '../../as/src/msrp/message.js';
import { type MsrpMessageEvent, MsrpSwitch, type MsrpSwitchOptions } from '../../as/src/msrp/switch.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { sleep, until } from '../helpers/until.js';
import { MsrpPeer, type Received } from './msrp-peer.js';

const A_PATH = 'msrp://127.0.0.1:7777/iau39soe2843z;tcp';

interface Session {
  a: MsrpPeer;
  b: MsrpPeer;
  uris: { offererSide: string; answererSide: string };
  bPath: string;
}

/** A session: the answerer listening (the switch connects to it), the offerer connected to the switch. */
async function session(sw: MsrpSwitch, key: string, tls = false, maxMessageBytes?: number): Promise<Session> {
  const uris = sw.open(key, {
    path: [A_PATH],
    acceptTypes: ['text/plain'],
    ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}),
  });
  const b = new MsrpPeer();
  const bPort = await b.listen();
  const bPath = `msrp://127.0.0.1:${bPort}/9di4eae923wzd;tcp`;
  sw.answered(key, { path: [bPath] });
  await b.waitFor('the binding SEND', (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'));
  const a = await MsrpPeer.connect(sw.port, tls);
  return { a, b, uris, bPath };
}

let tidCounter = 0;
const nextTid = () => `tid${String(++tidCounter).padStart(6, '0')}`;

interface ChunkSpec {
  to: string;
  from: string;
  messageId: string;
  body: Buffer | string;
  range?: string;
  flag?: ContinuationFlag;
  extra?: MsrpHeader[];
  contentType?: string;
  tid?: string;
}

function chunk(spec: ChunkSpec) {
  const body = typeof spec.body === 'string' ? Buffer.from(spec.body) : spec.body;
  const headers: MsrpHeader[] = [
    { name: 'To-Path', value: spec.to },
    { name: 'From-Path', value: spec.from },
    { name: 'Message-ID', value: spec.messageId },
    { name: 'Byte-Range', value: spec.range ?? `1-${body.length}/${body.length}` },
    ...(spec.extra ?? []),
    { name: 'Content-Type', value: spec.contentType ?? 'text/plain' },
  ];
  return {
    head: { kind: 'request' as const, tid: spec.tid ?? nextTid(), method: 'SEND', headers },
    body,
    flag: spec.flag ?? ('$' as const),
  };
}

const code = (r: Received | undefined) => (r && r.head.kind === 'response' ? r.head.code : undefined);
const bodies = (peer: MsrpPeer, messageId: string) =>
  peer.requests('SEND').filter((m) => headerValue(m.head, 'Message-ID') === messageId);

async function sent(peer: MsrpPeer, msg: MsrpMessage): Promise<Received> {
  peer.send(msg);
  await peer.waitFor(`response to ${msg.head.tid}`, () => peer.responseTo(msg.head.tid) !== undefined);
  return peer.responseTo(msg.head.tid)!;
}

function makeSwitch(extra: Partial<MsrpSwitchOptions> = {}): MsrpSwitch {
  return new MsrpSwitch({
    host: '127.0.0.1',
    port: 0,
    maxMessageBytes: 1024 * 1024,
    idleTimeoutMs: 0,
    log: createLogger('silent'),
    ...extra,
  });
}

describe('MSRP switch: relaying between two participants', () => {
  let sw: MsrpSwitch;
  const metrics = new Metrics();
  const events: MsrpMessageEvent[] = [];
  const ended: Array<{ sessionKey: string; reason: string }> = [];
  const peers: MsrpPeer[] = [];
  before(async () => {
    sw = makeSwitch({ metrics });
    sw.on('message', (e) => events.push(e));
    sw.on('ended', (e) => ended.push(e));
    await sw.start();
  });
  after(async () => {
    await sw.stop();
    for (const p of peers) await p.close();
  });
  async function open(key: string, maxMessageBytes?: number): Promise<Session> {
    const s = await session(sw, key, false, maxMessageBytes);
    peers.push(s.a, s.b);
    return s;
  }

  it('relays a SEND each way with the far leg paths, answers 200 on each hop, counts it', async () => {
    const { a, b, uris, bPath } = await open('call-1');
    const res = await sent(
      a,
      chunk({ to: uris.offererSide, from: A_PATH, messageId: '87652491', body: 'Hey Bob, are you there?' }),
    );
    assert.equal(code(res), 200);
    assert.equal(headerValue(res.head, 'To-Path'), A_PATH);
    assert.equal(headerValue(res.head, 'From-Path'), uris.offererSide);
    await b.waitFor('the relayed SEND', () => bodies(b, '87652491').length === 1);
    const relayed = bodies(b, '87652491')[0]!;
    assert.equal(relayed.body!.toString(), 'Hey Bob, are you there?');
    assert.equal(headerValue(relayed.head, 'To-Path'), bPath);
    assert.equal(headerValue(relayed.head, 'From-Path'), uris.answererSide);
    assert.equal(headerValue(relayed.head, 'Content-Type'), 'text/plain');
    assert.equal(relayed.flag, '$');
    await until('message event', () => events.some((e) => e.sessionKey === 'call-1'));
    const ev = events.find((e) => e.sessionKey === 'call-1')!;
    assert.deepEqual(
      { from: ev.from, bytes: ev.bytes, text: ev.text, isComposing: ev.isComposing },
      { from: 'offerer', bytes: 23, text: 'Hey Bob, are you there?', isComposing: false },
    );
    assert.deepEqual(sw.sessionStats('call-1'), {
      fromOfferer: { messages: 1, bytes: 23 },
      fromAnswerer: { messages: 0, bytes: 0 },
    });

    const back = await sent(
      b,
      chunk({ to: uris.answererSide, from: bPath, messageId: '456s9wlk3', body: "Hi, I'm Bob!" }),
    );
    assert.equal(code(back), 200);
    await a.waitFor('the SEND from B', () => bodies(a, '456s9wlk3').length === 1);
    assert.equal(headerValue(bodies(a, '456s9wlk3')[0]!.head, 'To-Path'), A_PATH);
    assert.equal(headerValue(bodies(a, '456s9wlk3')[0]!.head, 'From-Path'), uris.offererSide);
    assert.deepEqual(sw.sessionStats('call-1')?.fromAnswerer, { messages: 1, bytes: 12 });
    const text = await metrics.render();
    assert.match(text, /ims_as_msrp_messages_relayed_total\{from="offerer"\} 1/);
    assert.match(text, /ims_as_msrp_bytes_relayed_total\{from="answerer"\} 12/);
  });

  it('relays a chunked message and an interrupted one, both ways, chunk by chunk', async () => {
    const { a, b, uris, bPath } = await open('call-2');
    // A: three chunks, the second interrupted early with + and continued
    const whole = 'abcdefghijklmnopqrstuvwxyz0123';
    assert.equal(
      code(
        await sent(
          a,
          chunk({
            to: uris.offererSide,
            from: A_PATH,
            messageId: 'chunky1',
            body: whole.slice(0, 10),
            range: '1-10/30',
            flag: '+',
          }),
        ),
      ),
      200,
    );
    assert.equal(
      code(
        await sent(
          a,
          chunk({
            to: uris.offererSide,
            from: A_PATH,
            messageId: 'chunky1',
            body: whole.slice(10, 15),
            range: '11-20/30',
            flag: '+',
          }),
        ),
      ),
      200,
    );
    assert.equal(
      code(
        await sent(
          a,
          chunk({
            to: uris.offererSide,
            from: A_PATH,
            messageId: 'chunky1',
            body: whole.slice(15),
            range: '16-30/30',
            flag: '$',
          }),
        ),
      ),
      200,
    );
    await b.waitFor('three chunks', () => bodies(b, 'chunky1').length === 3);
    const got = bodies(b, 'chunky1');
    assert.deepEqual(
      got.map((m) => m.flag),
      ['+', '+', '$'],
    );
    assert.deepEqual(
      got.map((m) => byteRangeOf(m.head)),
      [
        { start: 1, total: 30 },
        { start: 11, total: 30 },
        { start: 16, total: 30 },
      ],
    );
    assert.equal(Buffer.concat(got.map((m) => m.body!)).toString(), whole);
    await until('message event', () => events.some((e) => e.messageId === 'chunky1'));
    assert.equal(events.find((e) => e.messageId === 'chunky1')!.text, whole);

    // chunks out of order: relayed as they come, the message counted once all arrived (no text: not in order)
    await sent(
      a,
      chunk({
        to: uris.offererSide,
        from: A_PATH,
        messageId: 'ooo1',
        body: 'KLMNOPQRST',
        range: '11-20/20',
        flag: '$',
      }),
    );
    await sleep(30);
    assert.equal(
      events.some((e) => e.messageId === 'ooo1'),
      false,
      'not complete with bytes 1-10 missing',
    );
    await sent(
      a,
      chunk({ to: uris.offererSide, from: A_PATH, messageId: 'ooo1', body: 'ABCDEFGHIJ', range: '1-10/20', flag: '+' }),
    );
    await until('out-of-order message complete', () => events.some((e) => e.messageId === 'ooo1'));
    const ooo = events.find((e) => e.messageId === 'ooo1')!;
    assert.deepEqual([ooo.bytes, ooo.text], [20, undefined]);
    assert.deepEqual(
      bodies(b, 'ooo1').map((m) => m.body!.toString()),
      ['KLMNOPQRST', 'ABCDEFGHIJ'],
    );

    // B: a message abandoned with # reaches A as abandoned, and is no message
    await sent(
      b,
      chunk({
        to: uris.answererSide,
        from: bPath,
        messageId: 'gone1',
        body: 'first part',
        range: '1-10/100',
        flag: '+',
      }),
    );
    await sent(
      b,
      chunk({ to: uris.answererSide, from: bPath, messageId: 'gone1', body: 'more', range: '11-14/100', flag: '#' }),
    );
    await a.waitFor('both chunks at A', () => bodies(a, 'gone1').length === 2);
    assert.deepEqual(
      bodies(a, 'gone1').map((m) => m.flag),
      ['+', '#'],
    );
    await sleep(50);
    assert.equal(
      events.some((e) => e.messageId === 'gone1'),
      false,
    );
    assert.equal(sw.sessionStats('call-2')?.fromAnswerer.messages, 0);
  });

  it("maps the answerer's success REPORT back to the offerer who asked for it", async () => {
    const { a, b, uris, bPath } = await open('call-3');
    await sent(
      a,
      chunk({
        to: uris.offererSide,
        from: A_PATH,
        messageId: 'rep1',
        body: 'report me',
        extra: [{ name: 'Success-Report', value: 'yes' }],
      }),
    );
    await b.waitFor('relayed', () => bodies(b, 'rep1').length === 1);
    assert.equal(headerValue(bodies(b, 'rep1')[0]!.head, 'Success-Report'), 'yes');
    b.send({
      head: {
        kind: 'request',
        tid: nextTid(),
        method: 'REPORT',
        headers: [
          { name: 'To-Path', value: uris.answererSide },
          { name: 'From-Path', value: bPath },
          { name: 'Message-ID', value: 'rep1' },
          { name: 'Byte-Range', value: '1-9/9' },
          { name: 'Status', value: '000 200 OK' },
        ],
      },
      flag: '$',
    });
    await a.waitFor('the REPORT at A', () => a.requests('REPORT').length === 1);
    const report = a.requests('REPORT')[0]!;
    assert.equal(headerValue(report.head, 'To-Path'), A_PATH);
    assert.equal(headerValue(report.head, 'From-Path'), uris.offererSide);
    assert.equal(headerValue(report.head, 'Message-ID'), 'rep1');
    assert.equal(headerValue(report.head, 'Byte-Range'), '1-9/9');
    assert.equal(parseStatus(headerValue(report.head, 'Status')!).code, 200);
    // REPORTs are not answered
    await sleep(50);
    assert.equal(b.received.filter((m) => m.head.kind === 'response').length, 0, 'no response to the REPORT');
  });

  it("turns the answerer's error response into a Failure-Report to the offerer, and refuses the rest of a message B stopped (413)", async () => {
    const { a, b, uris } = await open('call-4');
    b.autoRespond = false;
    const first = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'big1',
      body: '0123456789',
      range: '1-10/40',
      flag: '+',
    });
    assert.equal(code(await sent(a, first)), 200);
    await b.waitFor('relayed', () => bodies(b, 'big1').length === 1);
    b.respond(bodies(b, 'big1')[0]!.head, 413);
    await a.waitFor('failure report', () => a.requests('REPORT').length === 1);
    const report = a.requests('REPORT')[0]!;
    assert.equal(parseStatus(headerValue(report.head, 'Status')!).code, 413);
    assert.equal(headerValue(report.head, 'Message-ID'), 'big1');
    assert.equal(headerValue(report.head, 'Byte-Range'), '1-10/40');
    const next = await sent(
      a,
      chunk({
        to: uris.offererSide,
        from: A_PATH,
        messageId: 'big1',
        body: 'abcdefghij',
        range: '11-20/40',
        flag: '+',
      }),
    );
    assert.equal(code(next), 413);
    assert.equal(bodies(b, 'big1').length, 1, 'nothing more relayed');
  });

  it('answers 481 to an unknown session and to a To-Path that is not ours, 501 to AUTH, 400 to a bad Byte-Range', async () => {
    const { a, uris } = await open('call-5');
    const unknown = uris.offererSide.replace(/\/[0-9a-f]+;tcp$/, '/nosuchsession;tcp');
    assert.equal(code(await sent(a, chunk({ to: unknown, from: A_PATH, messageId: 'x1', body: 'x' }))), 481);
    const notOurs = uris.offererSide.replace('127.0.0.1', '192.0.2.1');
    assert.equal(code(await sent(a, chunk({ to: notOurs, from: A_PATH, messageId: 'x2', body: 'x' }))), 481);
    const auth = {
      head: {
        kind: 'request' as const,
        tid: nextTid(),
        method: 'AUTH',
        headers: [
          { name: 'To-Path', value: uris.offererSide },
          { name: 'From-Path', value: A_PATH },
        ],
      },
      flag: '$' as const,
    };
    assert.equal(code(await sent(a, auth)), 501);
    assert.equal(
      code(
        await sent(
          a,
          chunk({ to: uris.offererSide, from: A_PATH, messageId: 'x3', body: 'x', range: 'one-two/three' }),
        ),
      ),
      400,
    );
    // bytes beyond the total
    assert.equal(
      code(
        await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'x4', body: 'abcdef', range: '5-10/8' })),
      ),
      400,
    );
    // the connection is still usable
    assert.equal(
      code(await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'x5', body: 'fine' }))),
      200,
    );
  });

  it('answers 403 to a SEND whose From-Path is not the participant of the session, and does not bind to it', async () => {
    const uris = sw.open('call-5b', { path: [A_PATH] });
    const b = new MsrpPeer();
    peers.push(b);
    sw.answered('call-5b', { path: [`msrp://127.0.0.1:${await b.listen()}/b5b;tcp`] });
    const intruder = await MsrpPeer.connect(sw.port);
    peers.push(intruder);
    assert.equal(
      code(
        await sent(
          intruder,
          chunk({ to: uris.offererSide, from: 'msrp://127.0.0.1:6666/intruder;tcp', messageId: 'evil', body: 'x' }),
        ),
      ),
      403,
    );
    await intruder.close();
    await sleep(30);
    assert.ok(sw.sessionStats('call-5b'), 'the session survives the intruder leaving');
    const a = await MsrpPeer.connect(sw.port);
    peers.push(a);
    assert.equal(
      code(await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'mine', body: 'me' }))),
      200,
    );
  });

  it('answers 413 to a message above msrp.maxMessageBytes, and cuts one that grows past it with # on the far side', async () => {
    const { a, b, uris } = await open('call-6');
    const declared = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'huge1',
      body: 'x',
      range: `1-1/${2 * 1024 * 1024}`,
      flag: '+',
    });
    assert.equal(code(await sent(a, declared)), 413);
    assert.equal(bodies(b, 'huge1').length, 0);
    // total unknown: the switch notices while it streams
    const growing = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'huge2',
      body: Buffer.alloc(1024 * 1024 + 10, 0x61),
      range: '1-*/*',
    });
    assert.equal(code(await sent(a, growing)), 413);
    await b.waitFor('the cut chunk', () => bodies(b, 'huge2').length === 1);
    assert.equal(bodies(b, 'huge2')[0]!.flag, '#');
    assert.ok(bodies(b, 'huge2')[0]!.body!.length <= 1024 * 1024);
  });

  it("holds a file transfer's session to the size its offer declared (RFC 5547): 413 above it, declared or grown", async () => {
    const { a, b, uris } = await open('call-file', 100);
    const fits = chunk({ to: uris.offererSide, from: A_PATH, messageId: 'f1', body: Buffer.alloc(100, 0x62) });
    assert.equal(code(await sent(a, fits)), 200);
    const declared = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'f2',
      body: 'x',
      range: '1-1/101',
      flag: '+',
    });
    assert.equal(code(await sent(a, declared)), 413);
    const growing = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'f3',
      body: Buffer.alloc(150, 0x63),
      range: '1-*/*',
    });
    assert.equal(code(await sent(a, growing)), 413);
    await b.waitFor(
      'the whole file and the cut chunk',
      () => bodies(b, 'f1').length === 1 && bodies(b, 'f3').length === 1,
    );
    assert.equal(bodies(b, 'f2').length, 0);
    assert.equal(bodies(b, 'f3')[0]!.flag, '#');
  });

  it('Failure-Report: no gets no response, partial only errors', async () => {
    const { a, uris } = await open('call-7');
    const quiet = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'q1',
      body: 'shh',
      extra: [{ name: 'Failure-Report', value: 'no' }],
    });
    const partial = chunk({
      to: uris.offererSide,
      from: A_PATH,
      messageId: 'q2',
      body: 'shh',
      extra: [{ name: 'Failure-Report', value: 'partial' }],
    });
    a.send(quiet);
    a.send(partial);
    const check = chunk({ to: uris.offererSide, from: A_PATH, messageId: 'q3', body: 'loud' });
    assert.equal(code(await sent(a, check)), 200);
    assert.equal(a.responseTo(quiet.head.tid), undefined);
    assert.equal(a.responseTo(partial.head.tid), undefined);
  });

  it('flags is-composing indications in the message event and relays them', async () => {
    const { a, b, uris } = await open('call-8');
    const xml =
      '<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>';
    await sent(
      a,
      chunk({
        to: uris.offererSide,
        from: A_PATH,
        messageId: 'comp1',
        body: xml,
        contentType: 'application/im-iscomposing+xml',
      }),
    );
    await b.waitFor('relayed', () => bodies(b, 'comp1').length === 1);
    await until('event', () => events.some((e) => e.messageId === 'comp1'));
    assert.equal(events.find((e) => e.messageId === 'comp1')!.isComposing, true);
    // wrapped in CPIM, as RCS clients send it: still an indication, not a message
    const cpim = `From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\n\r\nContent-Type: application/im-iscomposing+xml\r\n\r\n${xml}`;
    await sent(
      a,
      chunk({ to: uris.offererSide, from: A_PATH, messageId: 'comp2', body: cpim, contentType: 'message/cpim' }),
    );
    const chat =
      'From: <sip:alice@example.com>\r\nTo: <sip:bob@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nhello';
    await sent(
      a,
      chunk({ to: uris.offererSide, from: A_PATH, messageId: 'chat1', body: chat, contentType: 'message/cpim' }),
    );
    await until(
      'events',
      () => events.some((e) => e.messageId === 'chat1') && events.some((e) => e.messageId === 'comp2'),
    );
    assert.equal(events.find((e) => e.messageId === 'comp2')!.isComposing, true);
    assert.deepEqual(
      { ...events.find((e) => e.messageId === 'chat1')! },
      {
        sessionKey: 'call-8',
        from: 'offerer',
        messageId: 'chat1',
        contentType: 'message/cpim',
        bytes: Buffer.byteLength(chat),
        text: chat,
        isComposing: false,
      },
    );
  });

  it('closes the connection on a framing error (wrong end-line, oversized head) and ends its session with an event', async () => {
    const { a, uris } = await open('call-9');
    assert.equal(
      code(await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'ok1', body: 'bind' }))),
      200,
    );
    a.write(
      `MSRP abcd1234 SEND\r\nTo-Path: ${uris.offererSide}\r\nFrom-Path: ${A_PATH}\r\nMessage-ID: z\r\n-------wrong999$\r\n`,
    );
    await until('closed', () => a.closed);
    await until('ended event', () => ended.some((e) => e.sessionKey === 'call-9'));
    assert.match(ended.find((e) => e.sessionKey === 'call-9')!.reason, /offerer lost: framing error/);
    assert.equal(sw.sessionStats('call-9'), undefined);

    const other = await MsrpPeer.connect(sw.port);
    peers.push(other);
    other.write(`MSRP abcd1234 SEND\r\nX-Filler: ${'y'.repeat(20000)}\r\n`);
    await until('closed after an oversized head', () => other.closed);
  });

  it("a dropped connection ends the session ('ended') and closes the other leg's connection", async () => {
    const { a, b, uris } = await open('call-10');
    await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'd1', body: 'bye soon' }));
    await b.close();
    await until('ended', () => ended.some((e) => e.sessionKey === 'call-10'));
    assert.match(ended.find((e) => e.sessionKey === 'call-10')!.reason, /answerer lost/);
    await until("the offerer's connection closed", () => a.closed);
  });

  it('a SEND that arrives before the answer waits for it', async () => {
    const uris = sw.open('call-11', { path: [A_PATH] });
    const a = await MsrpPeer.connect(sw.port);
    peers.push(a);
    const early = chunk({ to: uris.offererSide, from: A_PATH, messageId: 'early1', body: 'too soon?' });
    a.send(early);
    await sleep(300);
    const b = new MsrpPeer();
    peers.push(b);
    const bPath = `msrp://127.0.0.1:${await b.listen()}/late;tcp`;
    sw.answered('call-11', { path: [bPath] });
    await a.waitFor('response', () => a.responseTo(early.head.tid) !== undefined);
    assert.equal(code(a.responseTo(early.head.tid)), 200);
    await b.waitFor('relayed', () => bodies(b, 'early1').length === 1);
  });

  it('refuses (408) a SEND whose session is never answered, after the wait', async () => {
    const uris = sw.open('call-12', { path: [A_PATH] });
    const a = await MsrpPeer.connect(sw.port);
    peers.push(a);
    const started = Date.now();
    const res = await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'lonely', body: 'anyone?' }));
    assert.equal(code(res), 408);
    assert.ok(Date.now() - started >= 1900, 'waited about 2 s');
  });

  it('close() frees the session and its connections without an ended event', async () => {
    const { a, b, uris } = await open('call-13');
    await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'c1', body: 'last words' }));
    await sw.close('call-13', 'BYE');
    assert.equal(sw.sessionStats('call-13'), undefined);
    await until('both connections closed', () => a.closed && b.closed);
    assert.equal(
      ended.some((e) => e.sessionKey === 'call-13'),
      false,
    );
  });

  it('a=setup (RFC 6135): an active answerer connects to the switch, a passive offerer is connected to', async () => {
    // the offerer said passive: the switch connects to it and binds with a bodiless SEND
    const a = new MsrpPeer();
    peers.push(a);
    const aPath = `msrp://127.0.0.1:${await a.listen()}/passiveA;tcp`;
    const uris = sw.open('setup-1', { path: [aPath], setup: 'passive' });
    await a.waitFor('binding SEND to the passive offerer', (r) => r.some((m) => m.head.kind === 'request'));
    assert.equal(headerValue(a.received[0]!.head, 'From-Path'), uris.offererSide);
    // the answerer answered active: it connects to the switch itself
    sw.answered('setup-1', { path: ['msrp://127.0.0.1:9/activeB;tcp'], setup: 'active' });
    const b = await MsrpPeer.connect(sw.port);
    peers.push(b);
    assert.equal(
      code(
        await sent(
          b,
          chunk({
            to: uris.answererSide,
            from: 'msrp://127.0.0.1:9/activeB;tcp',
            messageId: 'act1',
            body: 'I called you',
          }),
        ),
      ),
      200,
    );
    await a.waitFor('relayed to the passive offerer', () => bodies(a, 'act1').length === 1);
    assert.equal(
      code(await sent(a, chunk({ to: uris.offererSide, from: aPath, messageId: 'act2', body: 'and back' }))),
      200,
    );
    await b.waitFor('relayed to the active answerer', () => bodies(b, 'act2').length === 1);
  });

  it('reuses one connection to the same answerer authority for two sessions', async () => {
    const b = new MsrpPeer();
    peers.push(b);
    const port = await b.listen();
    let accepted = 0;
    const server = (b as unknown as { server: import('node:net').Server }).server;
    server.on('connection', () => accepted++);
    sw.open('reuse-1', { path: [A_PATH] });
    sw.open('reuse-2', { path: [A_PATH] });
    sw.answered('reuse-1', { path: [`msrp://127.0.0.1:${port}/s1;tcp`] });
    sw.answered('reuse-2', { path: [`msrp://127.0.0.1:${port}/s2;tcp`] });
    await b.waitFor('two binding SENDs', (r) => r.filter((m) => m.head.kind === 'request').length === 2);
    assert.equal(accepted, 1);
  });
});

describe('MSRP switch: hostile input', () => {
  it('survives garbage, truncated and malformed frames on other connections while a session goes on', async () => {
    const sw = makeSwitch();
    const errors: Error[] = [];
    sw.on('error', (e) => errors.push(e));
    await sw.start();
    const { a, b, uris } = await session(sw, 'steady');
    try {
      let seed = 7;
      const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
      const inputs: Array<string | Buffer> = [
        Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256))),
        'MSRP',
        'MSRP abcd1234 SEND\r\n\r\n\r\n',
        'MSRP abcd1234 SEND\r\nTo-Path: \r\nFrom-Path: \r\n-------abcd1234$\r\n',
        `MSRP abcd1234 SEND\r\nTo-Path: ${uris.offererSide}\r\nFrom-Path: msrp://x:1/y;tcp\r\nMessage-ID: 1\r\nByte-Range: 99999999999999-1/2\r\n\r\nx\r\n-------abcd1234$\r\n`,
        `MSRP abcd1234 200 OK\r\nTo-Path: ${uris.offererSide}\r\n-------abcd1234$\r\n`,
        `MSRP abcd1234 REPORT\r\nTo-Path: ${uris.answererSide}\r\nFrom-Path: msrp://x:1/y;tcp\r\nMessage-ID: nope\r\nStatus: garbage\r\n-------abcd1234$\r\n`,
        `MSRP abcd1234 SEND\r\n${'X-H: v\r\n'.repeat(100)}`,
        `MSRP abcd1234 SEND\r\nTo-Path: ${uris.offererSide}\r\nFrom-Path: msrp://x:1/y;tcp\r\nMessage-ID: 2\r\n\r\nbody never ends`,
      ];
      for (const input of inputs) {
        const p = await MsrpPeer.connect(sw.port);
        p.write(input);
        await sleep(20);
        await p.close();
      }
      // the session on its own connections is unharmed
      assert.equal(
        code(await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 'still', body: 'still here' }))),
        200,
      );
      await b.waitFor('relayed', () => bodies(b, 'still').length === 1);
      assert.deepEqual(errors, []);
    } finally {
      await a.close();
      await b.close();
      await sw.stop();
    }
  });
});

describe('MSRP switch: idle timeout', () => {
  it('ends a session with no traffic for idleTimeoutMs', async () => {
    const sw = makeSwitch({ idleTimeoutMs: 200 });
    const ended: string[] = [];
    sw.on('ended', (e) => ended.push(`${e.sessionKey}: ${e.reason}`));
    await sw.start();
    try {
      const { a, b } = await session(sw, 'idle-1');
      await until('idle end', () => ended.length === 1, 3000);
      assert.match(ended[0]!, /^idle-1: msrp idle timeout/);
      await a.close();
      await b.close();

      // a chunk flowing slowly for longer than the timeout is traffic: the session stays
      const slow = await session(sw, 'idle-2');
      const tid = 'slowchunk01';
      slow.a.write(
        `MSRP ${tid} SEND\r\nTo-Path: ${slow.uris.offererSide}\r\nFrom-Path: ${A_PATH}\r\nMessage-ID: slow1\r\nByte-Range: 1-160/160\r\nContent-Type: text/plain\r\n\r\n`,
      );
      for (const piece of ['a', 'b', 'c', 'd'].map((c) => c.repeat(40))) {
        await sleep(120);
        slow.a.write(piece);
      }
      slow.a.write(`\r\n-------${tid}$\r\n`);
      await slow.a.waitFor('200', () => slow.a.responseTo(tid) !== undefined);
      assert.equal(code(slow.a.responseTo(tid)), 200);
      assert.equal(ended.length, 1, 'idle-2 did not end while its chunk flowed');
      await slow.a.close();
      await slow.b.close();
    } finally {
      await sw.stop();
    }
  });
});

describe('MSRP switch: TLS (msrps)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'msrp-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('listens with TLS, gives msrps: URIs and relays over it', async () => {
    const sw = makeSwitch({
      tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) },
    });
    await sw.start();
    try {
      const { a, b, uris } = await session(sw, 'tls-1', true);
      assert.match(uris.offererSide, /^msrps:\/\/127\.0\.0\.1:\d+\/[0-9a-f]+;tcp$/);
      assert.equal(
        code(await sent(a, chunk({ to: uris.offererSide, from: A_PATH, messageId: 't1', body: 'secret' }))),
        200,
      );
      await b.waitFor('relayed', () => bodies(b, 't1').length === 1);
      assert.equal(bodies(b, 't1')[0]!.body!.toString(), 'secret');
      await a.close();
      await b.close();

      // an answerer whose path is msrps: the switch connects to it over TLS
      const tlsB = new MsrpPeer();
      const tlsPath = `msrps://127.0.0.1:${await tlsB.listen({ cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) })}/tlsB;tcp`;
      const u2 = sw.open('tls-2', { path: [A_PATH] });
      sw.answered('tls-2', { path: [tlsPath] });
      await tlsB.waitFor('binding SEND over TLS', (r) => r.length === 1);
      const a2 = await MsrpPeer.connect(sw.port, true);
      assert.equal(
        code(await sent(a2, chunk({ to: u2.offererSide, from: A_PATH, messageId: 't2', body: 'both legs encrypted' }))),
        200,
      );
      await tlsB.waitFor('relayed over TLS', () => bodies(tlsB, 't2').length === 1);
      assert.equal(headerValue(bodies(tlsB, 't2')[0]!.head, 'To-Path'), tlsPath);
      await a2.close();
      await tlsB.close();
    } finally {
      await sw.stop();
    }
  });
});
