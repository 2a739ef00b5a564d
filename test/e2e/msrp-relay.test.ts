/**
 * Our MSRP framing checked by a peer we did not write: Kamailio's own `msrp` module (C, an
 * RFC 4976 relay, in the Debian kamailio package) sits between a client and the AS's switch.
 * The client AUTHs with the relay, puts the relay's Use-Path in front of its own URI (as its
 * SDP a=path would), and sends through the relay to the switch's URI; the switch relays to the
 * answerer and back through the relay to the client.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../as/src/log/logger.js';
import { type MsrpHeader, type MsrpMessage, headerValue } from '../../as/src/msrp/message.js';
import { MsrpSwitch, type MsrpMessageEvent } from '../../as/src/msrp/switch.js';
import { endChild } from '../helpers/end-child.js';
import { sleep, until } from '../helpers/until.js';
import { MsrpPeer, type Received } from '../integration/msrp-peer.js';
import { portsFrom } from './stack.js';

const ports = portsFrom(7660);
const RELAY_PORT = ports.sip;
const SWITCH_PORT = ports.sip + 2;
const CLIENT_URI = 'msrp://127.0.0.1:9876/clientA1;tcp';

/** The relay-only Kamailio config the benchmark uses too (scripts/bench/msrp-relay.cfg), run from the repository. */
const RELAY_CFG = fileURLToPath(new URL('../../../scripts/bench/msrp-relay.cfg', import.meta.url));

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

let tidCounter = 0;
const nextTid = () => `relay${String(++tidCounter).padStart(6, '0')}`;

function send(
  to: string,
  from: string,
  messageId: string,
  body: string,
  range?: string,
  flag: '$' | '+' | '#' = '$',
  extra: MsrpHeader[] = [],
): MsrpMessage {
  const bytes = Buffer.from(body);
  return {
    head: {
      kind: 'request',
      tid: nextTid(),
      method: 'SEND',
      headers: [
        { name: 'To-Path', value: to },
        { name: 'From-Path', value: from },
        { name: 'Message-ID', value: messageId },
        { name: 'Byte-Range', value: range ?? `1-${bytes.length}/${bytes.length}` },
        ...extra,
        { name: 'Content-Type', value: 'text/plain' },
      ],
    },
    body: bytes,
    flag,
  };
}

const code = (r: Received | undefined) => (r && r.head.kind === 'response' ? r.head.code : undefined);

describe("MSRP through Kamailio's msrp relay (RFC 4976) to the AS's switch", () => {
  let dir: string;
  let kamailio: ChildProcess | undefined;
  const kamailioLog: string[] = [];
  let sw: MsrpSwitch;
  const events: MsrpMessageEvent[] = [];
  const peers: MsrpPeer[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'msrp-relay-'));
    kamailio = spawn(
      'kamailio',
      [
        '-f',
        RELAY_CFG,
        '-A',
        `RELAY_PORT=${RELAY_PORT}`,
        '-A',
        `RELAY_ADDR="127.0.0.1:${RELAY_PORT}"`,
        '-A',
        `NEXT_HOP_ADDR="127.0.0.1:${SWITCH_PORT}"`,
        '-DD',
        '-E',
        '-m',
        '64',
        '-M',
        '8',
        '-Y',
        dir,
        '-P',
        join(dir, 'kamailio.pid'),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    kamailio.stdout!.on('data', (d: Buffer) => kamailioLog.push(d.toString()));
    kamailio.stderr!.on('data', (d: Buffer) => kamailioLog.push(d.toString()));
    const end = Date.now() + 15_000;
    while (!(await portOpen(RELAY_PORT))) {
      if (Date.now() > end || kamailio.exitCode !== null)
        throw new Error(`Kamailio relay did not start:\n${kamailioLog.join('').slice(-3000)}`);
      await sleep(100);
    }
    sw = new MsrpSwitch({
      host: '127.0.0.1',
      port: SWITCH_PORT,
      maxMessageBytes: 10 * 1024 * 1024,
      idleTimeoutMs: 0,
      log: createLogger('silent'),
    });
    sw.on('message', (e) => events.push(e));
    await sw.start();
  });

  after(async () => {
    for (const p of peers) await p.close();
    await sw?.stop();
    await endChild(kamailio, (c) => c.kill('SIGTERM'), 3000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('AUTH with the relay, then messages both ways between the client behind it and the answerer, chunked too, and a success REPORT back', async () => {
    const client = await MsrpPeer.connect(RELAY_PORT);
    peers.push(client);
    const auth: MsrpMessage = {
      head: {
        kind: 'request',
        tid: nextTid(),
        method: 'AUTH',
        headers: [
          { name: 'To-Path', value: `msrp://127.0.0.1:${RELAY_PORT};tcp` },
          { name: 'From-Path', value: CLIENT_URI },
        ],
      },
      flag: '$',
    };
    client.send(auth);
    await client.waitFor('the AUTH response', () => client.responseTo(auth.head.tid) !== undefined);
    const authResponse = client.responseTo(auth.head.tid)!;
    assert.equal(code(authResponse), 200, kamailioLog.join('').slice(-2000));
    const usePath = headerValue(authResponse.head, 'Use-Path');
    assert.ok(usePath, 'a Use-Path from the relay');

    // the session: the client's a=path is the relay's Use-Path then its own URI
    const uris = sw.open('relay-1', { path: [usePath, CLIENT_URI] });
    const b = new MsrpPeer();
    peers.push(b);
    const bPath = `msrp://127.0.0.1:${await b.listen()}/answererB;tcp`;
    sw.answered('relay-1', { path: [bPath] });
    await b.waitFor('binding SEND', (r) => r.length === 1);

    // client -> relay -> switch -> answerer
    const first = send(
      `${usePath} ${uris.offererSide}`,
      CLIENT_URI,
      'viaRelay1',
      'Hello through a relay we did not write',
    );
    client.send(first);
    await b
      .waitFor(
        'the SEND at the answerer',
        (r) => r.some((m) => headerValue(m.head, 'Message-ID') === 'viaRelay1'),
        10_000,
      )
      .catch((err: Error) => {
        throw new Error(
          `${err.message}; the client got ${JSON.stringify(client.received.map((m) => m.head))}; Kamailio's log ends:\n${kamailioLog.join('').slice(-3000)}`,
        );
      });
    const atB = b.received.find((m) => headerValue(m.head, 'Message-ID') === 'viaRelay1')!;
    assert.equal(atB.body!.toString(), 'Hello through a relay we did not write');
    assert.equal(headerValue(atB.head, 'From-Path'), uris.answererSide);
    assert.equal(code(client.responseTo(first.head.tid)), 200);
    await until('message event', () => events.some((e) => e.messageId === 'viaRelay1'));

    // a chunked message through the relay
    client.send(send(`${usePath} ${uris.offererSide}`, CLIENT_URI, 'viaRelay2', 'first half, ', '1-12/24', '+'));
    client.send(send(`${usePath} ${uris.offererSide}`, CLIENT_URI, 'viaRelay2', 'second half.', '13-24/24', '$'));
    await until('the chunked message whole', () => events.some((e) => e.messageId === 'viaRelay2'), 10_000);
    assert.equal(events.find((e) => e.messageId === 'viaRelay2')!.text, 'first half, second half.');

    // answerer -> switch -> relay -> client: the switch's framing read by Kamailio's parser
    b.send(send(uris.answererSide, bPath, 'backThrough1', 'And back through the relay'));
    await client.waitFor(
      'the SEND at the client',
      (r) => r.some((m) => headerValue(m.head, 'Message-ID') === 'backThrough1'),
      10_000,
    );
    const atClient = client.received.find((m) => headerValue(m.head, 'Message-ID') === 'backThrough1')!;
    assert.equal(atClient.body!.toString(), 'And back through the relay');
    assert.equal(headerValue(atClient.head, 'To-Path'), CLIENT_URI);
    assert.match(
      headerValue(atClient.head, 'From-Path')!,
      new RegExp(`${uris.offererSide.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`),
    );
    assert.deepEqual(sw.sessionStats('relay-1'), {
      fromOfferer: { messages: 2, bytes: 38 + 24 },
      fromAnswerer: { messages: 1, bytes: 26 },
    });

    // a success REPORT asked by the client comes back to it through the relay
    client.send(
      send(`${usePath} ${uris.offererSide}`, CLIENT_URI, 'reportMe1', 'tell me it arrived', undefined, '$', [
        { name: 'Success-Report', value: 'yes' },
      ]),
    );
    await b.waitFor(
      'the SEND asking a report',
      (r) => r.some((m) => headerValue(m.head, 'Message-ID') === 'reportMe1'),
      10_000,
    );
    b.send({
      head: {
        kind: 'request',
        tid: nextTid(),
        method: 'REPORT',
        headers: [
          { name: 'To-Path', value: uris.answererSide },
          { name: 'From-Path', value: bPath },
          { name: 'Message-ID', value: 'reportMe1' },
          { name: 'Byte-Range', value: '1-18/18' },
          { name: 'Status', value: '000 200 OK' },
        ],
      },
      flag: '$',
    });
    await client.waitFor(
      'the REPORT at the client',
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'REPORT'),
      10_000,
    );
    const report = client.requests('REPORT')[0]!;
    assert.equal(headerValue(report.head, 'Message-ID'), 'reportMe1');
    assert.equal(headerValue(report.head, 'To-Path'), CLIENT_URI);
    assert.equal(headerValue(report.head, 'Byte-Range'), '1-18/18');
    assert.equal(headerValue(report.head, 'Status'), '000 200 OK');
  });
});
