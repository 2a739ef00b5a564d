/**
 * IM sessions through the core, SIP side, end to end: real Kamailio and AS, sipp as caller and
 * callee. An INVITE with an MSRP offer between two of our users passes the IM policies; the
 * callee is offered the AS's MSRP URI, the caller sees the AS's other URI in the answer (the
 * core rewrites it), the ACK and the BYE reach the other side through the core, the AS closes
 * the session on the BYE and writes one record per role; a blocked caller is refused like a
 * blocked MESSAGE.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { XcapClient } from '../helpers/xcap-client.js';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { headerValue, type MsrpMessage } from '../../as/src/msrp/message.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { callerScenario, calleeScenario, sdpAfter } from './msrp-session-scenarios.js';
import { receivedMessages, receiverScenario } from './im-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';
import { until } from '../helpers/until.js';
import { KamailioRpc } from '../../as/src/isc/kamailio-rpc.js';

/** The first MSRP media of an SDP (the one a session uses). */
const msrpMediaOf = (sdp: string) => parseMsrpMedia(sdp)[0];

const USERS = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  'gina',
  'frank',
  'hank',
  'ivan',
  'judy',
  'kate',
  'leo',
  'mia',
  'nina',
  'olga',
  'pete',
  'quinn',
  'ruth',
  'sam',
  'tina',
];
const pw = (user: string) => `${user}-pw-1`;
const IM_POLICY = (xui: string) => `/xcap-root/org.ims-as.im-policy/users/${xui}/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';
const INTERIM_SECONDS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The a=path each sipp party puts in its SDP (msrp-session-scenarios.ts), with its MSRP port. */
const callerPath = (port: number) => `msrp://127.0.0.1:${port}/caller-session;tcp`;
const calleePath = (port: number) => `msrp://127.0.0.1:${port}/callee-session;tcp`;

/** A SEND of `body` (or of bytes first..last of it, flag '+' or '$') from `from` to `to`. */
function send(
  tid: string,
  to: string,
  from: string,
  messageId: string,
  body: string,
  opts: { range?: [number, number]; report?: boolean; contentType?: string } = {},
): MsrpMessage {
  const whole = Buffer.from(body);
  const [first, last] = opts.range ?? [1, whole.length];
  return {
    head: {
      kind: 'request',
      tid,
      method: 'SEND',
      headers: [
        { name: 'To-Path', value: to },
        { name: 'From-Path', value: from },
        { name: 'Message-ID', value: messageId },
        ...(opts.report ? [{ name: 'Success-Report', value: 'yes' }] : []),
        { name: 'Byte-Range', value: `${first}-${last}/${whole.length}` },
        { name: 'Content-Type', value: opts.contentType ?? 'text/plain' },
      ],
    },
    body: whole.subarray(first - 1, last),
    flag: last === whole.length ? '$' : '+',
  };
}

/** A REPORT with status 200 for the whole of message `messageId` (`total` bytes). */
function report(tid: string, to: string, from: string, messageId: string, total: number): MsrpMessage {
  return {
    head: {
      kind: 'request',
      tid,
      method: 'REPORT',
      headers: [
        { name: 'To-Path', value: to },
        { name: 'From-Path', value: from },
        { name: 'Message-ID', value: messageId },
        { name: 'Byte-Range', value: `1-${total}/${total}` },
        { name: 'Status', value: '000 200 OK' },
      ],
    },
    flag: '$',
  };
}

/** The SDP a running sipp caller received in its 200 (read from its message trace as it is written). */
async function answerSdpSeenBy(dir: string): Promise<string> {
  return eventually(
    () => {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('_messages.log'))) {
        const sdp = sdpAfter(readFileSync(join(dir, f), 'utf8'), /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
        if (sdp && msrpMediaOf(sdp)) return sdp;
      }
      return undefined;
    },
    10000,
    'the 200 with SDP at the caller',
  );
}

/** The MSRP media of the answer a running sipp caller received in its 200. */
async function answerSeenBy(dir: string) {
  return msrpMediaOf(await answerSdpSeenBy(dir))!;
}

/** Each media section of an SDP (the session part first) as its lines, CR dropped. */
function sdpSections(sdp: string): string[][] {
  const out: string[][] = [[]];
  for (const line of sdp.split(/\r?\n/).filter(Boolean)) {
    if (line.startsWith('m=')) out.push([line]);
    else out[out.length - 1]!.push(line);
  }
  return out;
}

describe('IM sessions (SIP side): INVITE with an MSRP offer through Kamailio and the AS', () => {
  let stack: TestStack;
  let asMsrpPort = 0;

  before(async () => {
    const ports = portsFrom(7460);
    asMsrpPort = ports.sip + 40;
    stack = await TestStack.start(ports, {
      MSRP_PORT: String(asMsrpPort),
      MSRP_HOST: '127.0.0.1',
      MSRP_MAX_MESSAGE_BYTES: '100000',
      // longer than every other test's session (the longest holds about 4 s)
      MSRP_INTERIM_RECORD_SECONDS: String(INTERIM_SECONDS),
    });
    await stack.provisionUsers(USERS, pw);
  });

  /** MSRP peers of the tests, closed whatever happens (a listening peer would keep the process alive). */
  const peers: MsrpPeer[] = [];
  const peer = (p: MsrpPeer) => (peers.push(p), p);

  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** Starts a callee UA on a fresh port and registers `user` there. */
  async function callee(
    user: string,
    msrpPort: number,
    opts: Parameters<typeof calleeScenario>[0] = {},
    set: Record<string, string> = {},
  ) {
    const port = stack.sippPort();
    const uas = stack.sipp(calleeScenario(opts), {
      port,
      timeoutMs: 30000,
      set: { msrp_port: String(msrpPort), ...set },
    });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // wrapped: an async function returning the thenable itself would wait for sipp to exit
    return { uas };
  }

  function call(user: string, to: string, opts: Parameters<typeof callerScenario>[0], msrpPort: number) {
    return stack.sipp(callerScenario(opts), {
      timeoutMs: 30000,
      set: { user, to, msrp_port: String(msrpPort) },
      args: ['-au', user, '-ap', pw(user)],
    });
  }

  it('sets up a session with the AS in both media paths, relays messages both ways (chunked, with REPORTs); the BYE ends both legs, closes the connections, one CDR per role with the counts', async () => {
    // bob keeps a history: the session's text messages go into it
    const bobXcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'bob', pw('bob'));
    const put = await bobXcap.put(
      IM_POLICY('sip:bob@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><history enabled="true" max-messages="10"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const { uas } = await callee('bob', bPort);
    const uac = call('alice', 'bob', { final: 200, holdMs: 4000 }, 9100);

    // the switch binds to the callee's path as soon as the answer passes the core
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const bound = b.requests('SEND')[0]!;
    assert.equal(headerValue(bound.head, 'To-Path'), calleePath(bPort));
    const answererSide = headerValue(bound.head, 'From-Path')!;
    const answer = await answerSeenBy(uac.dir);
    assert.equal(answer.path.length, 1);
    const offererSide = answer.path[0]!;
    assert.match(
      offererSide,
      new RegExp(`^msrp://127\\.0\\.0\\.1:${asMsrpPort}/[^/;]+;tcp$`),
      'the caller sees the AS, not the callee',
    );
    assert.equal(answer.port, asMsrpPort);
    assert.equal(answer.address, '127.0.0.1');

    // caller -> callee, whole, asking for a success report
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-a1', offererSide, callerPath(9100), 'm-a1', 'Hello Bob, through the AS', { report: true }));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-a1') !== undefined);
    assert.equal((a.responseTo('tx-a1')!.head as { code: number }).code, 200);
    await b.waitFor('the message at the callee', () =>
      b.requests('SEND').some((m) => m.body?.toString() === 'Hello Bob, through the AS'),
    );
    const atB = b.requests('SEND').find((m) => m.body?.toString() === 'Hello Bob, through the AS')!;
    assert.equal(headerValue(atB.head, 'To-Path'), calleePath(bPort));
    assert.equal(headerValue(atB.head, 'From-Path'), answererSide);
    // the callee reports success; the caller gets the REPORT on its own connection
    b.send(report('tx-r1', answererSide, calleePath(bPort), 'm-a1', Buffer.byteLength('Hello Bob, through the AS')));
    await a.waitFor('the REPORT at the caller', () => a.requests('REPORT').length === 1);
    const rep = a.requests('REPORT')[0]!;
    assert.equal(headerValue(rep.head, 'Message-ID'), 'm-a1');
    assert.match(headerValue(rep.head, 'Status')!, /^000 200/);
    assert.equal(headerValue(rep.head, 'To-Path'), callerPath(9100));

    // callee -> caller in two chunks
    const text = 'Hi Alice, this one comes in two chunks';
    b.send(send('tx-b1', answererSide, calleePath(bPort), 'm-b1', text, { range: [1, 10], report: true }));
    b.send(
      send('tx-b2', answererSide, calleePath(bPort), 'm-b1', text, {
        range: [11, Buffer.byteLength(text)],
        report: true,
      }),
    );
    await a.waitFor(
      'both chunks at the caller',
      () =>
        a.requests('SEND').filter((m) => headerValue(m.head, 'Message-ID') === 'm-b1').length >= 1 &&
        Buffer.concat(
          a
            .requests('SEND')
            .filter((m) => headerValue(m.head, 'Message-ID') === 'm-b1')
            .map((m) => m.body ?? Buffer.alloc(0)),
        ).toString() === text,
    );
    await b.waitFor(
      '200s to both chunks',
      () => b.responseTo('tx-b1') !== undefined && b.responseTo('tx-b2') !== undefined,
    );
    a.send(report('tx-r2', offererSide, callerPath(9100), 'm-b1', Buffer.byteLength(text)));
    await b.waitFor('the REPORT at the callee', () =>
      b.requests('REPORT').some((m) => headerValue(m.head, 'Message-ID') === 'm-b1'),
    );

    // the caller's BYE (sipp, after its hold) reaches the callee and ends the MSRP session
    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    assert.equal(calleeDone.exitCode, 0, `callee (ACK and BYE expected): ${calleeDone.stdout}\n${calleeDone.messages}`);
    await until('both MSRP connections closed by the AS', () => a.closed && b.closed, 5000);

    // the callee was offered the AS's other URI, never the caller's own
    const offer = msrpMediaOf(sdpAfter(calleeDone.messages, /INVITE sip:/)!);
    assert.ok(offer, calleeDone.messages);
    assert.deepEqual(offer.path, [answererSide]);
    assert.equal(offer.port, asMsrpPort);
    assert.deepEqual(offer.acceptTypes, ['text/plain', 'message/cpim'], "the offer keeps the caller's accept-types");
    assert.doesNotMatch(caller.messages, /callee-session/, "the callee's own path never reaches the caller");
    assert.doesNotMatch(calleeDone.messages, /caller-session/, "the caller's own path never reaches the callee");

    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    assert.deepEqual(cdrs.map((c) => c.roleOfNode).sort(), ['originating', 'terminating']);
    for (const c of cdrs) {
      assert.equal(c.outcome, 'ended');
      assert.equal(c.statusCode, 200);
      assert.equal(c.causeForRecordClosing, 'serviceDeliveryEndSuccessfully');
      assert.equal(c.callingPartyAddress, 'sip:alice@example.com');
      assert.equal(c.calledPartyAddress, 'sip:bob@example.com');
      const extra = c.extra as Record<string, unknown>;
      assert.equal(extra.reason, 'BYE');
      assert.ok(Date.parse(String(extra.sessionEnd)) >= Date.parse(String(extra.sessionStart)), JSON.stringify(extra));
      assert.deepEqual(
        [extra.messagesFromCaller, extra.bytesFromCaller, extra.messagesToCaller, extra.bytesToCaller],
        [1, Buffer.byteLength('Hello Bob, through the AS'), 1, Buffer.byteLength(text)],
      );
    }
    assert.match(await stack.metrics(), /ims_as_im_sessions_open 0\b/);
    const history = JSON.parse((await bobXcap.get('/im/users/sip:bob@example.com/history')).body) as {
      entries: Array<{ id: string; direction: string; peer: string }>;
    };
    assert.deepEqual(history.entries.map((e) => [e.direction, e.peer]).sort(), [
      ['received', 'sip:alice@example.com'],
      ['sent', 'sip:alice@example.com'],
    ]);
    const kept = await Promise.all(
      history.entries.map(
        async (e) =>
          JSON.parse((await bobXcap.get(`/im/users/sip:bob@example.com/history/${e.id}`)).body) as { body: string },
      ),
    );
    assert.deepEqual(kept.map((e) => e.body).sort(), ['Hello Bob, through the AS', text]);
    await a.close();
    await b.close();
  });

  it('ends the session with a BYE to both sides when an MSRP connection drops', async () => {
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    // a callee of its own: bob's contact of the first test is still registered (a fork to it is another test)
    const { uas } = await callee('dave', bPort);
    const uac = call('alice', 'dave', { final: 200, holdMs: 0, hangUp: false }, 9104);
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-d1', offererSide, callerPath(9104), 'm-d1', 'about to drop'));
    await b.waitFor('the message at the callee', () =>
      b.requests('SEND').some((m) => m.body?.toString() === 'about to drop'),
    );
    await a.close();

    // the AS has Kamailio end the dialog: both parties get a BYE and answer it
    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(caller.exitCode, 0, `caller (BYE expected): ${caller.stdout}\n${caller.messages}`);
    assert.equal(calleeDone.exitCode, 0, `callee (BYE expected): ${calleeDone.stdout}\n${calleeDone.messages}`);
    await until("the callee's MSRP connection closed", () => b.closed, 5000);
    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    for (const c of cdrs) {
      assert.equal(c.outcome, 'ended');
      assert.equal(c.causeForRecordClosing, 'unSuccessfulServiceDelivery');
      assert.match(String((c.extra as Record<string, unknown>).reason), /^media: msrp connection of the offerer lost/);
      assert.equal((c.extra as Record<string, unknown>).messagesFromCaller, 1);
    }
    await b.close();
  });

  it("ends the session on the callee's BYE: it reaches the caller through the core, the MSRP connections close, two CDRs", async () => {
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const { uas } = await callee('erin', bPort, { hangUpAfterMs: 1500 });
    const uac = call('alice', 'erin', { final: 200, holdMs: 0, hangUp: false }, 9105);
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-e1', offererSide, callerPath(9105), 'm-e1', 'before the callee leaves'));
    await b.waitFor('the message at the callee', () =>
      b.requests('SEND').some((m) => m.body?.toString() === 'before the callee leaves'),
    );
    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(calleeDone.exitCode, 0, `callee (its BYE answered): ${calleeDone.stdout}\n${calleeDone.messages}`);
    assert.equal(caller.exitCode, 0, `caller (BYE expected): ${caller.stdout}\n${caller.messages}`);
    assert.match(
      caller.messages,
      /BYE sip:alice@127\.0\.0\.1:\d+ SIP\/2\.0[^]*CSeq: 1 BYE/,
      "the callee's BYE itself, through the core",
    );
    await until('both MSRP connections closed by the AS', () => a.closed && b.closed, 5000);
    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    for (const c of cdrs) {
      assert.equal(c.outcome, 'ended');
      assert.equal((c.extra as Record<string, unknown>).reason, 'BYE');
      assert.equal((c.extra as Record<string, unknown>).messagesFromCaller, 1);
    }
  });

  it("takes a BYE that crosses the MSRP side's end as the same end: one record per role, no error in the AS's log", async () => {
    // what Kamailio 5.6 answers when asked to end a dialog it no longer holds
    const rpc = new KamailioRpc({ httpUrl: `http://127.0.0.1:${stack.ports.rpc}`, secret: stack.secret });
    assert.equal(await rpc.terminateDialog('no-such-call', 'f', 't'), 'gone');

    const logFrom = stack.asLog().length;
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const { uas } = await callee('ivan', bPort, { hangUpAfterMs: 800 });
    const uac = call('alice', 'ivan', { final: 200, holdMs: 0, hangUp: false }, 9110);
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-i1', offererSide, callerPath(9110), 'm-i1', 'racing'));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-i1') !== undefined);
    // the callee hangs up 800 ms after its ACK; the caller's MSRP connection drops at that moment
    await eventually(
      () =>
        readdirSync(uas.dir)
          .filter((n) => n.endsWith('_messages.log'))
          .some((f) => /\nACK sip:/.test(readFileSync(join(uas.dir, f), 'utf8')))
          ? true
          : undefined,
      10000,
      'the ACK at the callee',
    );
    await sleep(790);
    await a.close();
    // (either party's sipp may see a BYE it did not script, depending on who won: not asserted)
    const [caller] = await Promise.all([uac, uas]);
    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    assert.deepEqual(cdrs.map((c) => c.roleOfNode).sort(), ['originating', 'terminating']);
    await sleep(500);
    assert.equal(
      stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE').length,
      2,
      'no second record',
    );
    const errors = stack
      .asLog()
      .slice(logFrom)
      .split('\n')
      .filter((l) => /"level":"(error|fatal)"/.test(l));
    assert.deepEqual(errors, [], 'no error logged by the AS');
    assert.doesNotMatch(await stack.metrics(), /ims_as_reaction_failures_total\{reaction="im:anchor-ended"\}/);
    await b.close();
  });

  it('anchors a re-INVITE inside a session like the first offer: the caller keeps its leg, the callee that moved to a new path is bound there', async () => {
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const moved = peer(new MsrpPeer());
    const movedPort = await moved.listen();
    const { uas } = await callee('judy', bPort, { reinviteMovesTo: 'msrp_port2' }, { msrp_port2: String(movedPort) });
    const uac = call('alice', 'judy', { final: 200, reinviteAfterMs: 1000, holdMs: 3000 }, 9111);
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const answererSide = headerValue(b.requests('SEND')[0]!.head, 'From-Path')!;
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-j1', offererSide, callerPath(9111), 'm-j1', 'before the re-INVITE'));
    await b.waitFor('the first message at the old path', () =>
      b.requests('SEND').some((m) => m.body?.toString() === 'before the re-INVITE'),
    );

    // the re-INVITE's answer moved the callee: the switch binds its new path, leaves the old one
    await moved.waitFor(
      "the switch's binding SEND at the new path",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const rebound = moved.requests('SEND')[0]!;
    assert.equal(headerValue(rebound.head, 'To-Path'), `msrp://127.0.0.1:${movedPort}/callee-moved;tcp`);
    assert.equal(headerValue(rebound.head, 'From-Path'), answererSide, "the AS's leg towards the callee is the same");
    await until('the old path left', () => b.closed, 5000);

    // the caller's leg was kept: same connection, same URI
    a.send(send('tx-j2', offererSide, callerPath(9111), 'm-j2', 'after the re-INVITE'));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-j2') !== undefined);
    assert.equal((a.responseTo('tx-j2')!.head as { code: number }).code, 200);
    await moved.waitFor('the message at the new path', () =>
      moved.requests('SEND').some((m) => m.body?.toString() === 'after the re-INVITE'),
    );
    assert.equal(a.closed, false);

    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    assert.equal(calleeDone.exitCode, 0, `callee: ${calleeDone.stdout}\n${calleeDone.messages}`);
    // both SDPs of the re-INVITE's exchange name the AS, never the other party
    const reoffer = sdpAfter(calleeDone.messages, /INVITE sip:callee@[^]*?CSeq: 3 INVITE/);
    assert.ok(reoffer, calleeDone.messages);
    assert.deepEqual(msrpMediaOf(reoffer)!.path, [answererSide]);
    const reanswer = sdpAfter(caller.messages, /SIP\/2\.0 200 OK[^]*?CSeq: 3 INVITE/);
    assert.ok(reanswer, caller.messages);
    assert.deepEqual(msrpMediaOf(reanswer)!.path, [offererSide]);
    assert.doesNotMatch(calleeDone.messages, /caller-session/);
    assert.doesNotMatch(caller.messages, /callee-moved|callee-session/);

    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    for (const c of cdrs) {
      assert.equal(c.outcome, 'ended');
      assert.equal((c.extra as Record<string, unknown>).reason, 'BYE');
      assert.equal((c.extra as Record<string, unknown>).messagesFromCaller, 2);
    }
  });

  /** The SDP of the message that starts with `startLine` in a sipp trace, never reaching into a later message. */
  const sdpOfOne = (trace: string, startLine: string, cseq: string) =>
    sdpAfter(trace, new RegExp(`${startLine}(?:(?!\\r?\\n\\r?\\n)[^])*?CSeq: ${cseq}`));

  for (const [method, user, port] of [
    ['INVITE', 'quinn', 9118],
    ['UPDATE', 'ruth', 9119],
  ] as const) {
    it(`anchors a re-offer from the callee (${method}) like the first offer: the caller sees the AS's leg, the callee's new path is bound, the caller's leg stays`, async () => {
      const b = peer(new MsrpPeer());
      const bPort = await b.listen();
      const moved = peer(new MsrpPeer());
      const movedPort = await moved.listen();
      const { uas } = await callee(
        user,
        bPort,
        { reoffer: { afterMs: 1500, method } },
        { msrp_port2: String(movedPort) },
      );
      const uac = call('alice', user, { final: 200, answersReoffer: method, holdMs: 2500 }, port);
      await b.waitFor(
        "the switch's binding SEND",
        (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
        10000,
      );
      const answererSide = headerValue(b.requests('SEND')[0]!.head, 'From-Path')!;
      const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
      const a = peer(await MsrpPeer.connect(asMsrpPort));
      a.send(send('tx-r1', offererSide, callerPath(port), 'm-r1', `before the ${method}`));
      await b.waitFor('the first message at the old path', () =>
        b.requests('SEND').some((m) => m.body?.toString() === `before the ${method}`),
      );

      // the callee moved: once the caller's answer is in, the switch binds the new path
      await moved.waitFor(
        "the switch's binding SEND at the callee's new path",
        (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
        10000,
      );
      const rebound = moved.requests('SEND')[0]!;
      assert.equal(headerValue(rebound.head, 'To-Path'), `msrp://127.0.0.1:${movedPort}/callee-moved;tcp`);
      assert.equal(headerValue(rebound.head, 'From-Path'), answererSide, "the AS's leg towards the callee is the same");
      await until('the old path left', () => b.closed, 5000);
      a.send(send('tx-r2', offererSide, callerPath(port), 'm-r2', `after the ${method}`));
      await a.waitFor('200 to the SEND', () => a.responseTo('tx-r2') !== undefined);
      assert.equal((a.responseTo('tx-r2')!.head as { code: number }).code, 200);
      await moved.waitFor('the message at the new path', () =>
        moved.requests('SEND').some((m) => m.body?.toString() === `after the ${method}`),
      );
      assert.equal(a.closed, false, "the caller's connection stays");

      const [caller, calleeDone] = await Promise.all([uac, uas]);
      assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
      assert.equal(calleeDone.exitCode, 0, `callee: ${calleeDone.stdout}\n${calleeDone.messages}`);
      // the re-offer reached the caller naming the AS's leg towards the caller, and the
      // answer reached the callee naming the AS's leg towards the callee
      const reoffer = sdpOfOne(caller.messages, `${method} sip:alice@`, `1 ${method}`);
      assert.ok(reoffer, caller.messages);
      assert.deepEqual(msrpMediaOf(reoffer)!.path, [offererSide]);
      const reanswer = sdpOfOne(calleeDone.messages, 'SIP/2\\.0 200 OK', `1 ${method}`);
      assert.ok(reanswer, calleeDone.messages);
      assert.deepEqual(msrpMediaOf(reanswer)!.path, [answererSide]);
      assert.doesNotMatch(caller.messages, /callee-moved|callee-session/);
      assert.doesNotMatch(calleeDone.messages, /caller-session/);

      const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
      const cdrs = await eventually(
        () => {
          const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
          return l.length === 2 ? l : undefined;
        },
        5000,
        'two session CDRs',
      );
      for (const c of cdrs) {
        assert.equal(c.outcome, 'ended');
        assert.equal((c.extra as Record<string, unknown>).reason, 'BYE');
        assert.equal((c.extra as Record<string, unknown>).messagesFromCaller, 2);
      }
    });
  }

  it('writes interim records per role while a session lasts, chained with the final record under one ICID, each counting its own span', async () => {
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const { uas } = await callee('kate', bPort);
    const uac = call('alice', 'kate', { final: 200, holdMs: 2 * INTERIM_SECONDS * 1000 + 1500 }, 9112);
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const callId = await eventually(
      () => {
        for (const f of readdirSync(uac.dir).filter((n) => n.endsWith('_messages.log'))) {
          const id = /Call-ID: (.*)/.exec(readFileSync(join(uac.dir, f), 'utf8'))?.[1]?.trim();
          if (id) return id;
        }
        return undefined;
      },
      5000,
      "the caller's Call-ID",
    );
    const recordsOf = () => stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-k1', offererSide, callerPath(9112), 'm-k1', 'in the first span'));
    await b.waitFor('the first message', () =>
      b.requests('SEND').some((m) => m.body?.toString() === 'in the first span'),
    );
    await eventually(
      () => (recordsOf().length >= 2 ? true : undefined),
      INTERIM_SECONDS * 1000 + 5000,
      'the first interim records',
    );
    a.send(send('tx-k2', offererSide, callerPath(9112), 'm-k2', 'second span'));
    await b.waitFor('the second message', () => b.requests('SEND').some((m) => m.body?.toString() === 'second span'));
    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    assert.equal(calleeDone.exitCode, 0, `callee: ${calleeDone.stdout}\n${calleeDone.messages}`);
    const all = await eventually(
      () => (recordsOf().length === 6 ? recordsOf() : undefined),
      5000,
      'two interim records and the final one, per role',
    );
    for (const role of ['originating', 'terminating']) {
      const chain = all
        .filter((c) => c.roleOfNode === role)
        .sort((x, y) => Number(x.recordSequenceNumber) - Number(y.recordSequenceNumber));
      assert.deepEqual(
        chain.map((c) => {
          const extra = c.extra as Record<string, unknown>;
          return [
            c.recordSequenceNumber,
            c.outcome,
            c.causeForRecordClosing,
            extra.messagesFromCaller,
            extra.bytesFromCaller,
          ];
        }),
        [
          [1, 'interim', 'timeLimit', 1, Buffer.byteLength('in the first span')],
          [2, 'interim', 'timeLimit', 1, Buffer.byteLength('second span')],
          [3, 'ended', 'serviceDeliveryEndSuccessfully', 0, 0],
        ],
        role,
      );
      assert.equal(new Set(chain.map((c) => c.imsChargingIdentifier)).size, 1, 'one ICID');
    }
  });

  it('hides a caller who asks for privacy from the callee in every request of the dialog, the BYE included', async () => {
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const { uas } = await callee('gina', bPort);
    const uac = call('alice', 'gina', { final: 200, holdMs: 300, headers: ['Privacy: id'] }, 9107);
    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    assert.equal(calleeDone.exitCode, 0, `callee: ${calleeDone.stdout}\n${calleeDone.messages}`);
    // (the caller's own Contact and SDP origin are its to hide: RFC 3323 user-provided privacy)
    const froms = [...calleeDone.messages.matchAll(/\n(INVITE|ACK|BYE) [^]*?\nFrom: ([^\r\n]*)/g)].map((m) => [
      m[1],
      m[2],
    ]);
    assert.deepEqual(
      froms.map(([method]) => method),
      ['INVITE', 'ACK', 'BYE'],
    );
    for (const [method, from] of froms)
      assert.match(from!, /^(?:"?Anonymous"? )?<sip:anonymous@anonymous\.invalid>;tag=/, `${method} From: ${from}`);
    assert.doesNotMatch(calleeDone.messages, /P-Asserted-Identity/i);
    // and the caller sees its own identity in everything that comes back
    assert.match(caller.messages, /SIP\/2\.0 200 OK[^]*?\nFrom: <sip:alice@example\.com>;tag=/);
  });

  for (const variant of [
    {
      name: 'shares the session-level c= with audio: the MSRP media gets a c= of its own',
      callee: 'frank',
      answer: { address: '127.0.0.2', mediaBefore: [['m=audio 6000 RTP/AVP 0']] },
      msrpPort: 9108,
    },
    {
      name: 'has a c= of its own next to audio: only that c= changes',
      callee: 'hank',
      answer: { address: '127.0.0.2', mediaBefore: [['m=audio 6000 RTP/AVP 0']], messageAddress: '127.0.0.4' },
      msrpPort: 9109,
    },
  ]) {
    it(`moves only the MSRP media to the AS when offer and answer carry audio too (the MSRP media ${variant.name})`, async () => {
      const b = peer(new MsrpPeer());
      const bPort = await b.listen();
      const { uas } = await callee(variant.callee, bPort, { sdp: variant.answer });
      const uac = call(
        'alice',
        variant.callee,
        {
          final: 200,
          holdMs: 300,
          sdp: { address: '127.0.0.3', mediaBefore: [['m=audio 5000 RTP/AVP 0', 'a=sendrecv']] },
        },
        variant.msrpPort,
      );
      const [caller, calleeDone] = await Promise.all([uac, uas]);
      assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
      assert.equal(calleeDone.exitCode, 0, `callee: ${calleeDone.stdout}\n${calleeDone.messages}`);

      // the caller's answer: the callee's audio address stays, the MSRP media names the AS
      const answerSdp = sdpAfter(caller.messages, /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/)!;
      const [session, audio, message] = sdpSections(answerSdp);
      assert.ok(session!.includes('c=IN IP4 127.0.0.2'), answerSdp);
      assert.deepEqual(audio, ['m=audio 6000 RTP/AVP 0'], answerSdp);
      assert.equal(message![0], `m=message ${asMsrpPort} TCP/MSRP *`, answerSdp);
      assert.deepEqual(
        message!.filter((l) => l.startsWith('c=')),
        ['c=IN IP4 127.0.0.1'],
        `one c= in the MSRP media, the AS's: ${answerSdp}`,
      );
      const answered = msrpMediaOf(answerSdp)!;
      assert.match(answered.path[0]!, new RegExp(`^msrp://127\\.0\\.0\\.1:${asMsrpPort}/`));
      assert.equal(answered.address, '127.0.0.1');

      // the callee's offer (rewritten by the AS): the caller's audio keeps its address too
      const offerSdp = sdpAfter(calleeDone.messages, /INVITE sip:/)!;
      const [offerSession, offerAudio, offerMessage] = sdpSections(offerSdp);
      assert.ok(offerSession!.includes('c=IN IP4 127.0.0.3'), offerSdp);
      assert.deepEqual(offerAudio, ['m=audio 5000 RTP/AVP 0', 'a=sendrecv'], offerSdp);
      assert.deepEqual(
        offerMessage!.filter((l) => l.startsWith('c=')),
        ['c=IN IP4 127.0.0.1'],
        offerSdp,
      );
      assert.equal(msrpMediaOf(offerSdp)!.port, asMsrpPort);
      await b.close();
    });
  }

  it('refuses a caller the callee blocks with 403, like a blocked MESSAGE, and charges it', async () => {
    const carol = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'carol', pw('carol'));
    const put = await carol.put(
      IM_POLICY('sip:carol@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="sip:alice@example.com"/></blocked></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    const r = await call('alice', 'carol', { final: 403 }, 9102);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
    assert.match(r.messages, /SIP\/2\.0 403 Forbidden/);
    const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId);
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two rejection CDRs',
    );
    for (const c of cdrs) {
      assert.equal(c.outcome, 'rejected');
      assert.equal((c.extra as Record<string, unknown>).reason, 'blocked by recipient');
    }
  });

  it("refuses a file transfer (RFC 5547) larger than the operator's limit with 488 and Max-Message-Size", async () => {
    const r = call(
      'alice',
      'bob',
      {
        final: 488,
        sdpLines: ['a=file-selector:name:"big.bin" type:application/octet-stream size:100001', 'a=sendonly'],
      },
      9106,
    );
    const done = await r;
    assert.equal(done.exitCode, 0, `${done.stdout}\n${done.messages}`);
    assert.match(done.messages, /SIP\/2\.0 488 Not Acceptable Here[^]*Max-Message-Size: 100000/);
  });

  it("refuses a file offer the callee's IM policy does not take (488, Warning), and holds a taken file to the size its offer declared (413 above)", async () => {
    const leo = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'leo', pw('leo'));
    const put = await leo.put(
      IM_POLICY('sip:leo@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><file-transfer accept-types="image/*" max-size="50000"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    const b = peer(new MsrpPeer());
    const bPort = await b.listen();
    const { uas } = await callee('leo', bPort);

    const pdf = await call(
      'alice',
      'leo',
      { final: 488, sdpLines: ['a=file-selector:name:"r.pdf" type:application/pdf size:2000', 'a=sendonly'] },
      9113,
    );
    assert.equal(pdf.exitCode, 0, `${pdf.stdout}\n${pdf.messages}`);
    assert.match(
      pdf.messages,
      /SIP\/2\.0 488 Not Acceptable Here[^]*Warning: 399 example\.com "the recipient takes no files of type application\/pdf"/,
    );

    const photo = 'twenty bytes of png!';
    const uac = call(
      'alice',
      'leo',
      {
        final: 200,
        holdMs: 2500,
        sdpLines: [`a=file-selector:name:"p.png" type:image/png size:${photo.length}`, 'a=sendonly'],
      },
      9113,
    );
    await b.waitFor(
      "the switch's binding SEND",
      (r) => r.some((m) => m.head.kind === 'request' && m.head.method === 'SEND'),
      10000,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-l1', offererSide, callerPath(9113), 'm-l1', photo));
    await a.waitFor('200 to the file', () => a.responseTo('tx-l1') !== undefined);
    assert.equal((a.responseTo('tx-l1')!.head as { code: number }).code, 200);
    await b.waitFor('the file at the callee', () => b.requests('SEND').some((m) => m.body?.toString() === photo));
    a.send(send('tx-l2', offererSide, callerPath(9113), 'm-l2', `${photo}+`));
    await a.waitFor('the answer to a larger one', () => a.responseTo('tx-l2') !== undefined);
    assert.equal((a.responseTo('tx-l2')!.head as { code: number }).code, 413);
    const [caller, calleeDone] = await Promise.all([uac, uas]);
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    assert.equal(calleeDone.exitCode, 0, `callee: ${calleeDone.stdout}\n${calleeDone.messages}`);
    assert.ok(
      !b.requests('SEND').some((m) => headerValue(m.head, 'Message-ID') === 'm-l2'),
      'the larger one never reached the callee',
    );
  });

  it('answers 480 for a callee with no registered device whose IM policy turns deferred delivery off', async () => {
    const nina = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'nina', pw('nina'));
    const put = await nina.put(
      IM_POLICY('sip:nina@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><deferred-delivery enabled="false"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    // nina never registered a device
    const r = await call('bob', 'nina', { final: 480 }, 9103);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
  });

  it('takes a session to a user with no registered device (deferred session): its messages, CPIM headers kept, reach the user as MESSAGEs when they register', async () => {
    // mia never registered a device: the IM server answers for her
    const uac = call('alice', 'mia', { final: 200, holdMs: 2500 }, 9114);
    const answer = await answerSeenBy(uac.dir);
    const offererSide = answer.path[0]!;
    assert.match(offererSide, new RegExp(`^msrp://127\\.0\\.0\\.1:${asMsrpPort}/`));
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    const cpim = [
      'From: <sip:alice@example.com>',
      'To: <sip:mia@example.com>',
      'DateTime: 2026-12-07T10:00:00Z',
      '',
      'Content-Type: text/plain',
      '',
      'Hello Mia, for later',
    ].join('\r\n');
    a.send(send('tx-m1', offererSide, callerPath(9114), 'm-m1', cpim, { contentType: 'message/cpim', report: true }));
    const plain = 'second one, in two chunks';
    a.send(send('tx-m2', offererSide, callerPath(9114), 'm-m2', plain, { range: [1, 7] }));
    a.send(send('tx-m3', offererSide, callerPath(9114), 'm-m2', plain, { range: [8, plain.length] }));
    await a.waitFor(
      '200 to each SEND',
      () => ['tx-m1', 'tx-m2', 'tx-m3'].every((t) => a.responseTo(t) !== undefined),
      10000,
    );
    for (const t of ['tx-m1', 'tx-m2', 'tx-m3']) assert.equal((a.responseTo(t)!.head as { code: number }).code, 200, t);
    // the IM server took the message for mia: the success report the caller asked for
    await a.waitFor('the REPORT of the first message', () => a.requests('REPORT').length === 1);
    const rep = a.requests('REPORT')[0]!;
    assert.equal(headerValue(rep.head, 'Message-ID'), 'm-m1');
    assert.match(headerValue(rep.head, 'Status')!, /^000 200/);
    assert.equal(headerValue(rep.head, 'To-Path'), callerPath(9114));
    assert.equal(headerValue(rep.head, 'Byte-Range'), `1-${Buffer.byteLength(cpim)}/${Buffer.byteLength(cpim)}`);
    const caller = await uac;
    assert.equal(caller.exitCode, 0, `caller (its BYE answered by the AS): ${caller.stdout}\n${caller.messages}`);
    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    for (const c of cdrs) {
      assert.equal(c.outcome, 'ended');
      assert.equal((c.extra as Record<string, unknown>).reason, 'BYE (deferred session)');
      assert.equal((c.extra as Record<string, unknown>).messagesFromCaller, 2);
    }

    // mia registers: both messages come as MESSAGEs from alice, in order, as they were sent
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 15000, args: ['-m', '2'] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'mia', ct_port: String(port), expires: '600' },
      args: ['-au', 'mia', '-ap', pw('mia')],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, `${got.stdout}\n${got.messages}`);
    const msgs = receivedMessages(got.messages);
    assert.deepEqual(
      msgs.map((m) => [m.header('Content-Type'), m.body]),
      [
        ['message/cpim', cpim],
        ['text/plain', plain],
      ],
    );
    for (const m of msgs) assert.match(m.header('From') ?? '', /sip:alice@example\.com/);
  });
  it("ends a deferred session with the AS's own BYE through the core when the caller's MSRP connection drops: one record per role", async () => {
    // pete never registered a device: the IM server answers for him
    const uac = call('alice', 'pete', { final: 200, holdMs: 0, hangUp: false }, 9117);
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-p1', offererSide, callerPath(9117), 'm-p1', 'stored, then gone'));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-p1') !== undefined, 10000);
    assert.equal((a.responseTo('tx-p1')!.head as { code: number }).code, 200);
    await a.close();

    const caller = await uac;
    assert.equal(caller.exitCode, 0, `caller (a BYE from the AS expected): ${caller.stdout}\n${caller.messages}`);
    const bye = /BYE sip:alice@127\.0\.0\.1:\d+ SIP\/2\.0[^]*?\n\s*\n/.exec(caller.messages)?.[0];
    assert.ok(bye, caller.messages);
    assert.match(bye, /From: <sip:pete@example\.com>;tag=\S+/);
    assert.match(bye, /To: <sip:alice@example\.com>;tag=\S+c/);
    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two session CDRs',
    );
    for (const c of cdrs) {
      assert.equal(c.outcome, 'ended');
      assert.equal(c.causeForRecordClosing, 'unSuccessfulServiceDelivery');
      assert.match(String((c.extra as Record<string, unknown>).reason), /^media: msrp connection of the offerer lost/);
      assert.equal((c.extra as Record<string, unknown>).messagesFromCaller, 1);
    }
    await sleep(1000);
    assert.equal(
      stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE').length,
      2,
      'charged once',
    );
  });

  it('takes a text file for a user with no registered device (deferred session) held to its declared size (413 above) and delivers it as a MESSAGE on registration; a file above the limit gets 488', async () => {
    const tooBig = await call(
      'alice',
      'olga',
      { final: 488, sdpLines: ['a=file-selector:name:"big.txt" type:text/plain size:100001', 'a=sendonly'] },
      9116,
    );
    assert.equal(tooBig.exitCode, 0, `${tooBig.stdout}\n${tooBig.messages}`);
    assert.match(tooBig.messages, /SIP\/2\.0 488 Not Acceptable Here[^]*Max-Message-Size: 100000/);

    const notes = 'the notes, kept for later delivery';
    const uac = call(
      'alice',
      'olga',
      {
        final: 200,
        holdMs: 2500,
        sdpLines: [`a=file-selector:name:"notes.txt" type:text/plain size:${notes.length}`, 'a=sendonly'],
      },
      9115,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    // held to the size its offer declared, as in a live session: two bytes more get 413
    a.send(send('tx-o0', offererSide, callerPath(9115), 'm-o0', `${notes}!!`));
    await a.waitFor('the answer to the oversized SEND', () => a.responseTo('tx-o0') !== undefined, 10000);
    assert.equal((a.responseTo('tx-o0')!.head as { code: number }).code, 413);
    a.send(send('tx-o1', offererSide, callerPath(9115), 'm-o1', notes, { report: true }));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-o1') !== undefined, 10000);
    assert.equal((a.responseTo('tx-o1')!.head as { code: number }).code, 200);
    await a.waitFor('the REPORT of the file', () => a.requests('REPORT').length === 1);
    assert.match(headerValue(a.requests('REPORT')[0]!.head, 'Status')!, /^000 200/);
    const caller = await uac;
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);

    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 15000, args: ['-m', '1'] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'olga', ct_port: String(port), expires: '600' },
      args: ['-au', 'olga', '-ap', pw('olga')],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, `${got.stdout}\n${got.messages}`);
    const msgs = receivedMessages(got.messages);
    assert.deepEqual(
      msgs.map((m) => [m.header('Content-Type'), m.body]),
      [['text/plain', notes]],
    );
    assert.match(msgs[0]!.header('From') ?? '', /sip:alice@example\.com/);
  });
  it('does not keep a binary file sent in a deferred session (a pager MESSAGE carries text): the refusal is in the history of the offline user, with 415', async () => {
    const samXcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'sam', pw('sam'));
    const put = await samXcap.put(
      IM_POLICY('sip:sam@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><history enabled="true" max-messages="10"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    const zip = 'PK\u0003\u0004\u0000\u0000';
    const uac = call(
      'alice',
      'sam',
      {
        final: 200,
        holdMs: 2500,
        sdpLines: [`a=file-selector:name:"a.zip" type:application/zip size:${zip.length}`, 'a=sendonly'],
      },
      9120,
    );
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-s1', offererSide, callerPath(9120), 'm-s1', zip, { contentType: 'application/zip' }));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-s1') !== undefined, 10000);
    assert.equal((a.responseTo('tx-s1')!.head as { code: number }).code, 200);
    const caller = await uac;
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    const entries = await eventually(
      async () => {
        const h = JSON.parse((await samXcap.get('/im/users/sip:sam@example.com/history')).body) as {
          entries: Array<{ id: string; direction: string; peer: string }>;
        };
        return h.entries.length > 0 ? h.entries : undefined;
      },
      5000,
      "the refusal in sam's history",
    );
    assert.deepEqual(
      entries.map((e) => [e.direction, e.peer]),
      [['received', 'sip:alice@example.com']],
    );
    const entry = JSON.parse((await samXcap.get(`/im/users/sip:sam@example.com/history/${entries[0]!.id}`)).body) as {
      body: string;
      status?: number;
    };
    assert.equal(entry.status, 415);
    assert.match(entry.body, /^"a\.zip" \(application\/zip\) for later delivery was not kept: not text/);
    assert.match(await stack.metrics(), /ims_as_im_session_deferred_messages_total\{result="file-refused"\} 1\b/);
  });
  it('writes interim records for a deferred session as for a live one: chained with the final record, each counting its span', async () => {
    // tina never registered a device: the IM server answers for her
    const uac = call('alice', 'tina', { final: 200, holdMs: INTERIM_SECONDS * 1000 + 1500 }, 9121);
    const offererSide = (await answerSeenBy(uac.dir)).path[0]!;
    const a = peer(await MsrpPeer.connect(asMsrpPort));
    a.send(send('tx-h1', offererSide, callerPath(9121), 'm-h1', 'kept for tina'));
    await a.waitFor('200 to the SEND', () => a.responseTo('tx-h1') !== undefined, 10000);
    const caller = await uac;
    assert.equal(caller.exitCode, 0, `caller: ${caller.stdout}\n${caller.messages}`);
    const callId = /Call-ID: (.*)/.exec(caller.messages)![1]!.trim();
    const recordsOf = () => stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
    const all = await eventually(
      () => (recordsOf().length === 4 ? recordsOf() : undefined),
      5000,
      'an interim record and the final one, per role',
    );
    for (const role of ['originating', 'terminating']) {
      const chain = all
        .filter((c) => c.roleOfNode === role)
        .sort((x, y) => Number(x.recordSequenceNumber) - Number(y.recordSequenceNumber));
      assert.deepEqual(
        chain.map((c) => {
          const extra = c.extra as Record<string, unknown>;
          return [c.recordSequenceNumber, c.outcome, c.causeForRecordClosing, extra.messagesFromCaller];
        }),
        [
          [1, 'interim', 'timeLimit', 1],
          [2, 'ended', 'serviceDeliveryEndSuccessfully', 0],
        ],
        role,
      );
    }
  });
});
