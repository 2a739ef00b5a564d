/**
 * Rf against a real Diameter peer from Debian: Erlang/OTP's diameter application as the CDF
 * (test/fixtures/rf-cdf.escript). Charging writes records; the CDF's log says which ACRs it
 * answered. tshark (Debian) decodes what went on the wire.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Charging } from '../../as/src/charging/charging.js';
import type { ChargeableEvent } from '../../as/src/charging/record.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { TestCdf } from '../helpers/rf-cdf.js';
import { until, sleep } from '../helpers/until.js';

const run = promisify(execFile);
const OFFSET = Number(process.env.E2E_PORT_OFFSET ?? 18000);
const PORT_A = OFFSET + 3868;
const PORT_B = OFFSET + 3869;

let root: string;
const cdfs: TestCdf[] = [];
const open: Array<{ charging: Charging; store: SqliteStore }> = [];

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'rf-cdf-'));
});
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.charging.stop();
    await o.store.close();
  }
  for (const c of cdfs.splice(0)) await c.kill();
  await rm(root, { recursive: true, force: true });
});

async function cdf(port: number, name: string): Promise<TestCdf> {
  const c = new TestCdf(port, path.join(root, `${name}.log`));
  cdfs.push(c);
  await c.start();
  return c;
}

async function node(ports: number[], nodeId = 'as1'): Promise<Charging> {
  const store = await SqliteStore.open(path.join(root, 'data'));
  const charging = new Charging({
    store,
    nodeId,
    nodeAddress: '127.0.0.1',
    cdrDir: path.join(root, 'cdr'),
    log: silentLogger(),
    jsonl: false,
    interOperatorIdentifiers: { originatingIOI: 'home1.net', terminatingIOI: 'partner.example' },
    rf: {
      peers: ports.map((port) => ({ host: '127.0.0.1', port })),
      originHost: `${nodeId}.home1.net`,
      originRealm: 'home1.net',
      destinationRealm: 'test.example',
      hostIpAddress: '127.0.0.1',
      retryMs: 200,
      answerTimeoutMs: 2000,
      connectTimeoutMs: 2000,
    },
  });
  await charging.start();
  open.push({ charging, store });
  return charging;
}

let callNo = 0;
function message(over: Partial<ChargeableEvent> = {}): ChargeableEvent {
  callNo++;
  return {
    service: 'im',
    role: 'originating',
    sipMethod: 'MESSAGE',
    sessionId: `call-${callNo}@pc.home1.net`,
    callingParty: 'sip:alice@home1.net',
    calledParty: 'sip:bob@home1.net',
    requestTime: new Date(),
    responseTime: new Date(),
    statusCode: 200,
    outcome: 'delivered',
    messageBody: { contentType: 'text/plain', contentLength: 5 },
    chargingVector: 'icid-value=icid-1;orig-ioi=home1.net',
    ...over,
  };
}
function subscriptionPart(n: number, last: boolean): ChargeableEvent {
  return {
    service: 'presence',
    role: 'terminating',
    sipMethod: 'SUBSCRIBE',
    sessionId: 'sub-1@pc.home1.net',
    event: 'presence',
    expires: last ? 0 : 600,
    callingParty: 'sip:alice@home1.net',
    calledParty: 'sip:bob@home1.net',
    requestTime: new Date(),
    responseTime: new Date(),
    statusCode: 200,
    outcome: last ? 'unsubscribed' : 'subscribed',
    recordSequenceNumber: n,
    chargingVector: 'icid-value=icid-sub-1',
    ...(last ? {} : { cause: 'serviceChange' as const }),
  };
}

const outboxCount = (c: Charging) => (c.rf ? c.rf.pending() : Promise.resolve(-1));

describe('Rf with Erlang diameter as the CDF', () => {
  test('a MESSAGE is an EVENT_RECORD; a subscription is START, INTERIM, STOP under one Session-Id', async () => {
    const a = await cdf(PORT_A, 'a');
    const charging = await node([PORT_A]);
    const msg = await charging.record(message());
    for (let n = 1; n <= 3; n++) await charging.record(subscriptionPart(n, n === 3));
    let acrs = await a.acrs();
    const deadline = Date.now() + 10_000;
    while (acrs.length < 4 && Date.now() < deadline) {
      await sleep(50);
      acrs = await a.acrs();
    }
    assert.equal(acrs.length, 4, JSON.stringify(acrs));
    // one-off records and chains go concurrently; within a chain the order is kept
    const event = acrs.filter((x) => x.sessionId === `as1.home1.net;${msg.recordId}`);
    assert.deepEqual(event, [
      { type: 'EVENT_RECORD', number: 0, retransmit: false, sessionId: `as1.home1.net;${msg.recordId}` },
    ]);
    const chain = acrs.filter((x) => x !== event[0]);
    assert.deepEqual(
      chain.map((x) => [x.type, x.number, x.retransmit]),
      [
        ['START_RECORD', 0, false],
        ['INTERIM_RECORD', 1, false],
        ['STOP_RECORD', 2, false],
      ],
    );
    assert.equal(new Set(chain.map((x) => x.sessionId)).size, 1);
    assert.equal(await outboxCount(charging), 0);
  });

  test('the CDF killed and restarted during traffic: every record answered once as new, resends flagged T', async () => {
    const a = await cdf(PORT_A, 'a');
    const charging = await node([PORT_A]);
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      const cdr = await charging.record(message());
      ids.push(`as1.home1.net;${cdr.recordId}`);
      if (i === 150) await a.kill();
      if (i === 300) await a.start();
    }
    const deadline = Date.now() + 20_000;
    while ((await outboxCount(charging)) > 0 && Date.now() < deadline) await sleep(100);
    assert.equal(await outboxCount(charging), 0, 'every record answered');
    const acrs = await a.acrs();
    // a resend written just as the CDF died never reaches it: what arrives flagged T is at most what was resent
    const flagged = acrs.filter((x) => x.retransmit).length;
    assert.ok(
      flagged <= charging.rf!.stats.retransmitted,
      `${flagged} ACRs flagged T, ${charging.rf!.stats.retransmitted} resent`,
    );
    const asNew = acrs.filter((x) => !x.retransmit).map((x) => x.sessionId);
    const all = new Set(acrs.map((x) => x.sessionId));
    assert.deepEqual([...all].sort(), [...ids].sort(), 'every record reached the CDF');
    assert.equal(new Set(asNew).size, asNew.length, 'no record sent twice as new');
    assert.ok(charging.rf!.stats.sent >= 400);
  });

  test('failover: with the first CDF gone, records go to the next configured peer', async () => {
    const a = await cdf(PORT_A, 'a');
    const b = await cdf(PORT_B, 'b');
    const charging = await node([PORT_A, PORT_B]);
    await charging.record(message());
    await until('first record at A', () => charging.rf!.stats.answered === 1, 10_000);
    await a.kill();
    for (let i = 0; i < 5; i++) await charging.record(message());
    const deadline = Date.now() + 15_000;
    while ((await outboxCount(charging)) > 0 && Date.now() < deadline) await sleep(100);
    assert.equal((await a.acrs()).length, 1);
    assert.equal((await b.acrs()).length, 5);
    assert.equal(charging.rf!.stats.peer, `127.0.0.1:${PORT_B}`);
  });

  test('records queued while no CDF is up are sent when one comes, kept across a restart of the AS', async () => {
    const first = await node([PORT_A]);
    for (let i = 0; i < 3; i++) await first.record(message());
    await sleep(300);
    assert.equal(await outboxCount(first), 3);
    const o = open.pop()!;
    await o.charging.stop();
    await o.store.close();
    const a = await cdf(PORT_A, 'a');
    const second = await node([PORT_A]);
    const deadline = Date.now() + 10_000;
    while ((await outboxCount(second)) > 0 && Date.now() < deadline) await sleep(100);
    const acrs = await a.acrs();
    assert.equal(acrs.length, 3);
    assert.ok(
      acrs.every((x) => x.type === 'EVENT_RECORD' && !x.retransmit),
      'never attempted before: not flagged T',
    );
  });

  test('tshark decodes what we send: IMS-Information AVPs, no malformed packet or expert warning', async () => {
    const a = await cdf(PORT_A, 'a');
    const pcap = path.join(root, 'rf.pcap');
    const capture = spawn('tshark', ['-i', 'lo', '-f', `tcp port ${PORT_A}`, '-w', pcap], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    capture.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    await until(
      () => `tshark capture start: ${err}`,
      () => err.includes('Capturing on'),
      15_000,
    );
    await sleep(1500); // dumpcap reports before its filter is attached
    const charging = await node([PORT_A]);
    await charging.record(message({ privateUserId: 'alice@home1.net' }));
    for (let n = 1; n <= 2; n++) await charging.record(subscriptionPart(n, n === 2));
    const deadline = Date.now() + 10_000;
    while ((await a.acrs()).length < 3 && Date.now() < deadline) await sleep(50);
    await sleep(300);
    const exited = new Promise((r) => capture.once('exit', r));
    capture.kill('SIGINT');
    await exited;
    const decodeAs = ['-d', `tcp.port==${PORT_A},diameter`];
    const { stdout: text } = await run('tshark', ['-r', pcap, ...decodeAs, '-V', '-Y', 'diameter'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    if (process.env.RF_KEEP_DECODE) await writeFile(process.env.RF_KEEP_DECODE, text);
    const has = (re: RegExp) => assert.ok(re.test(text), `tshark's decode lacks ${re}`);
    has(/Command Code: Accounting \(271\)/);
    has(/Command Code: Capabilities-Exchange \(257\)/);
    has(/IMS-Information/);
    has(/Role-Of-Node: TERMINATING_ROLE \(1\)/);
    has(/Node-Functionality: AS \(6\)/);
    has(/IMS-Charging-Identifier: icid-sub-1/);
    has(/SIP-Method: MESSAGE/);
    has(/Role-Of-Node: ORIGINATING_ROLE \(0\)/);
    // the IMPI of the authenticated sender, where known; the configured IOIs where the vector has none
    has(/User-Name: alice@home1\.net/);
    has(/Originating-IOI: home1\.net/);
    has(/Terminating-IOI: partner\.example/);
    assert.ok(!/Malformed/i.test(text), 'tshark reports a malformed packet');
    const { stdout: fields } = await run('tshark', [
      '-r',
      pcap,
      ...decodeAs,
      '-Y',
      'diameter.cmd.code == 271 && diameter.flags.request == 1',
      '-T',
      'fields',
      '-e',
      'diameter.Accounting-Record-Type',
    ]);
    assert.deepEqual(fields.trim().split('\n'), ['1', '2', '4']);
    const { stdout: users } = await run('tshark', [
      '-r',
      pcap,
      ...decodeAs,
      '-Y',
      'diameter.cmd.code == 271 && diameter.flags.request == 1',
      '-T',
      'fields',
      '-e',
      'diameter.User-Name',
    ]);
    assert.deepEqual(
      users.split('\n').slice(0, 3),
      ['alice@home1.net', '', ''],
      'User-Name only where the IMPI is known',
    );
    const { stdout: expert } = await run('tshark', ['-r', pcap, ...decodeAs, '-q', '-z', 'expert']);
    if (process.env.RF_KEEP_DECODE) await writeFile(`${process.env.RF_KEEP_DECODE}.expert`, expert);
    assert.doesNotMatch(expert, /\b(Error|Warning)s? \(/, expert);
  });

  test('two instances on one store drain one outbox: each record answered once as new', async () => {
    const a = await cdf(PORT_A, 'a');
    const one = await node([PORT_A], 'as1');
    const two = await node([PORT_A], 'as2');
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) {
      const cdr = await (i % 2 ? two : one).record(message());
      ids.push(`${cdr.nodeId}.home1.net;${cdr.recordId}`);
    }
    const deadline = Date.now() + 15_000;
    while ((await outboxCount(one)) > 0 && Date.now() < deadline) await sleep(100);
    const acrs = await a.acrs();
    assert.deepEqual([...new Set(acrs.map((x) => x.sessionId))].sort(), [...ids].sort());
    const asNew = acrs.filter((x) => !x.retransmit);
    assert.equal(new Set(asNew.map((x) => x.sessionId)).size, asNew.length, 'no record sent twice as new');
    assert.equal(acrs.length, 100);
    assert.equal(one.rf!.stats.answered + two.rf!.stats.answered, 100);
    // which instance sends is not fixed: the first to claim the shared outbox may take every record
  });
});
