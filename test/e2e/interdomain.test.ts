/**
 * Two operators end to end (issue 17): example.com (Kamailio on 127.0.0.1) and example.net
 * (Kamailio on 127.0.0.2), each with its own AS and store, finding each other through a real
 * DNS server (dnsmasq: NAPTR, SRV, A) and talking mutual TLS between the cores. Users on
 * sipp: alice and carol of example.com, bob and dave of example.net, each registered at their
 * own core. Pager MESSAGEs both ways (and a deferred one), what the sender gets when the other
 * domain cannot be reached (and what history and CDRs keep), and no open relay.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { headerValue } from '../../as/src/msrp/message.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { callerScenario, calleeScenario, sdpAfter } from './msrp-session-scenarios.js';
import { Interdomain } from './interdomain-stack.js';
import { eventually, type StackTls, type TestStack } from './stack.js';

const pw = (user: string) => `${user}-pw-17`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IM_POLICY = (xui: string) => `/xcap-root/org.ims-as.im-policy/users/${xui}/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';

/** One MESSAGE from `user` of `stack` to `ruri`, expecting `final`. */
function send(stack: TestStack, user: string, ruri: string, body: string, final: number) {
  return stack.sipp(messageScenario({ final, body, ruri: 'sip:[$to]' }), {
    set: { user, to: ruri.replace(/^sip:/, '') },
    args: ['-au', user, '-ap', pw(user)],
  });
}

/** Starts a UA answering `count` MESSAGEs, then registers `user` there at its own core. */
async function online(stack: TestStack, user: string, count: number) {
  const port = stack.sippPort();
  const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 20000, args: ['-m', String(count)] });
  await sleep(300);
  const reg = await stack.sipp('register', {
    final: 200,
    set: { user, ct_port: String(port), expires: '600' },
    args: ['-au', user, '-ap', pw(user)],
  });
  assert.equal(reg.exitCode, 0, reg.stdout);
  return { port, uas };
}

const callIdOf = (trace: string) => /Call-ID: (.*)/.exec(trace)![1]!.trim();

/**
 * One MESSAGE over TLS to a core's peer port, From `sip:mallory@<fromDomain>` to `ruri`,
 * presenting `cert` (none: no client certificate); the status line of the answer, or '' when
 * the connection ends without one.
 */
async function tlsMessage(port: number, cert: StackTls | undefined, fromDomain: string, ruri: string): Promise<string> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    ca: readFileSync(sharedCa!, 'utf8'),
    servername: 'example.com',
    ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
  });
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString()));
  const ended = new Promise<void>((res) => {
    socket.on('error', () => res());
    socket.on('close', () => res());
  });
  const body = 'over TLS';
  const callId = `tls-${Math.random().toString(36).slice(2)}`;
  const request = [
    `MESSAGE ${ruri} SIP/2.0`,
    `Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK${callId}`,
    `From: <sip:mallory@${fromDomain}>;tag=${callId}`,
    `To: <${ruri}>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 MESSAGE',
    'Max-Forwards: 70',
    'Content-Type: text/plain',
    `Content-Length: ${body.length}`,
    '',
    body,
  ].join('\r\n');
  socket.once('secureConnect', () => socket.write(request));
  await Promise.race([
    ended,
    eventually(() => (/\r\n\r\n/.test(got) ? true : undefined), 5000, 'an answer over TLS').catch(() => undefined),
  ]);
  socket.destroy();
  // (a 100 Trying may come first)
  return (
    got
      .split(/\r\n\r\n/)
      .map((m) => m.split('\r\n')[0]!)
      .find((l) => !/^SIP\/2\.0 1\d\d /.test(l)) ?? ''
  );
}

/** The CA both operators' certificates chain to (set once the stacks run). */
let sharedCa: string | undefined;

// (ports clear of both operators' ranges: 8060+offset .. 8160+offset+99)
const SILENT_PORT = 8060 + 250 + Number(process.env.E2E_PORT_OFFSET ?? 0);
const TRUSTED_PORT = 8060 + 251 + Number(process.env.E2E_PORT_OFFSET ?? 0);
const NOT_TLS_PORT = 8060 + 252 + Number(process.env.E2E_PORT_OFFSET ?? 0);

describe('other domains: IM between example.com and example.net', () => {
  let two: Interdomain;
  let silent: Server | undefined;
  let notTls: Server | undefined;
  const silentSockets = new Set<Socket>();

  before(async () => {
    two = await Interdomain.start(8060, {
      // one trusted source of example.com's core (WITH_TRUSTED_PEER: benchmarks, an I-CSCF)
      kamailioDefines: ['WITH_TRUSTED_PEER', `TRUSTED_PEER_PORTS="^${TRUSTED_PORT}$"`],
      // example.org's core is known by its address only
      peers: { com: 'example.net=tls;example.org=127.0.0.3' },
      records: [
        // a domain whose server does not listen
        '--naptr-record=down.example,20,10,S,SIP+D2T,,_sip._tcp.down.example',
        '--srv-host=_sip._tcp.down.example,sip.down.example,5999,10,10',
        '--host-record=sip.down.example,127.0.0.9',
        // a domain whose server takes the connection and never answers
        '--naptr-record=silent.example,20,10,S,SIP+D2T,,_sip._tcp.silent.example',
        `--srv-host=_sip._tcp.silent.example,sip.silent.example,${SILENT_PORT},10,10`,
        '--host-record=sip.silent.example,127.0.0.9',
        // a domain that offers only TLS, whose server takes the connection and fails the handshake
        '--naptr-record=nottls.example,10,10,S,SIPS+D2T,,_sips._tcp.nottls.example',
        `--srv-host=_sips._tcp.nottls.example,sip.nottls.example,${NOT_TLS_PORT},10,10`,
        '--host-record=sip.nottls.example,127.0.0.9',
      ],
    });
    const server = createServer((socket) => {
      silentSockets.add(socket.on('error', () => undefined));
    });
    silent = server;
    await new Promise<void>((res) => server.listen(SILENT_PORT, '127.0.0.9', res));
    // answers the ClientHello with bytes that are not TLS, then closes: the handshake fails
    // after Kamailio has queued the request on its asynchronous connect
    const server2 = createServer((socket) => {
      silentSockets.add(socket.on('error', () => undefined));
      socket.once('data', () => socket.end('SIP/2.0 400 Not TLS\r\n\r\n'));
    });
    notTls = server2;
    await new Promise<void>((res) => server2.listen(NOT_TLS_PORT, '127.0.0.9', res));
    sharedCa = two.com.tls!.ca;
    await two.com.provisionUsers(['alice', 'carol'], pw);
    await two.net.provisionUsers(['bob', 'dave'], pw);
  });

  after(async () => {
    if (process.exitCode) console.log(two?.dumpLogs());
    await two?.stop();
    for (const socket of silentSockets) socket.destroy();
    await new Promise((res) => (silent ? silent.close(res) : res(undefined)));
    await new Promise((res) => (notTls ? notTls.close(res) : res(undefined)));
  });

  it('delivers a MESSAGE from alice@example.com to bob@example.net, found by NAPTR/SRV, over TLS, as alice', async () => {
    const { uas } = await online(two.net, 'bob', 1);
    const sent = await send(two.com, 'alice', 'sip:bob@example.net', 'hello from example.com', 200);
    assert.equal(sent.exitCode, 0, sent.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [msg] = receivedMessages(got.messages);
    assert.ok(msg, got.messages);
    assert.equal(msg.body, 'hello from example.com');
    assert.equal(msg.header('P-Asserted-Identity'), '<sip:alice@example.com>');
    // the hop between the cores: example.com's core sent it over TLS
    assert.match(msg.head, /\nVia: SIP\/2\.0\/TLS 127\.0\.0\.1:/, 'example.com relayed over TLS');
    // example.com's core looked example.net up in the test's DNS server
    assert.match(two.dns.queries, /query\[NAPTR\] example\.net from 127\.0\.0\.1/);
    const callId = callIdOf(sent.messages);
    const com = await eventually(
      () => two.com.cdrLines().find((c) => c.sessionId === callId && c.outcome === 'delivered'),
      5000,
      'the originating CDR at example.com',
    );
    assert.equal(com.roleOfNode, 'originating');
    const net = await eventually(
      () => two.net.cdrLines().find((c) => c.sessionId === callId && c.outcome === 'delivered'),
      5000,
      'the terminating CDR at example.net',
    );
    assert.equal(net.roleOfNode, 'terminating');
    assert.equal(net.callingPartyAddress, 'sip:alice@example.com');
  });

  it('delivers a MESSAGE the other way, bob@example.net to alice@example.com, asserted as bob', async () => {
    const { uas } = await online(two.com, 'alice', 1);
    const sent = await send(two.net, 'bob', 'sip:alice@example.com', 'hello from example.net', 200);
    assert.equal(sent.exitCode, 0, sent.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [msg] = receivedMessages(got.messages);
    assert.ok(msg, got.messages);
    assert.equal(msg.body, 'hello from example.net');
    assert.equal(msg.header('P-Asserted-Identity'), '<sip:bob@example.net>');
    assert.match(msg.head, /\nVia: SIP\/2\.0\/TLS 127\.0\.0\.2:/, 'example.net relayed over TLS');
  });

  it('defers a MESSAGE to dave@example.net while he is offline and delivers it when he registers at his core', async () => {
    const sent = await send(two.com, 'alice', 'sip:dave@example.net', 'while you were out', 202);
    assert.equal(sent.exitCode, 0, sent.stdout);
    const { uas } = await online(two.net, 'dave', 1);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [msg] = receivedMessages(got.messages);
    assert.ok(msg, got.messages);
    assert.equal(msg.body, 'while you were out');
    assert.match(msg.header('From') ?? '', /sip:alice@example\.com/);
  });

  it('answers 404 for a domain with no SIP server in DNS, 503 for one that cannot be reached; history and CDRs say so', async () => {
    const carolXcap = new XcapClient(
      `https://127.0.0.1:${two.com.ports.xdm}`,
      'carol',
      pw('carol'),
      'example.com',
      readFileSync(two.com.tls!.ca, 'utf8'),
    );
    const policy = await carolXcap.put(
      IM_POLICY('sip:carol@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><history enabled="true"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(policy.status, 201, policy.body);
    const nowhere = await send(two.com, 'carol', 'sip:someone@nowhere.invalid', 'anyone there?', 404);
    assert.equal(nowhere.exitCode, 0, nowhere.stdout);
    const down = await send(two.com, 'carol', 'sip:someone@down.example', 'are you up?', 503);
    assert.equal(down.exitCode, 0, down.stdout);
    const { uas } = await online(two.net, 'bob', 1);
    const ok = await send(two.com, 'carol', 'sip:bob@example.net', 'this one arrives', 200);
    assert.equal(ok.exitCode, 0, ok.stdout);
    assert.equal((await uas).exitCode, 0);

    for (const [trace, code] of [
      [nowhere.messages, 404],
      [down.messages, 503],
    ] as const) {
      const cdr = await eventually(
        () => two.com.cdrLines().find((c) => c.sessionId === callIdOf(trace) && c.outcome === 'failed'),
        5000,
        `the failed CDR (${code})`,
      );
      assert.equal(cdr.roleOfNode, 'originating');
    }
    // (archived when the outcome comes back, just after the sender's answer)
    const entries = await eventually(
      async () => {
        const history = await carolXcap.get('/im/users/sip:carol@example.com/history');
        const list = (JSON.parse(history.body) as { entries: Array<{ peer: string; status?: number }> }).entries;
        return list.length >= 3 ? list : undefined;
      },
      5000,
      "carol's three messages in her history",
    );
    assert.deepEqual(
      entries.map((e) => [e.peer, e.status]).sort(),
      [
        ['sip:bob@example.net', 200],
        ['sip:someone@down.example', 503],
        ['sip:someone@nowhere.invalid', 404],
      ],
      'each message is in the history with what became of it',
    );
  });

  it('answers 503, not 408, when the TLS handshake with the other domain fails after the request was queued on it', async () => {
    // (tm learns nothing of it: the failure route tells it from a silent server by the closed TLS connection)
    const r = await send(two.com, 'carol', 'sip:someone@nottls.example', 'over TLS?', 503);
    assert.equal(r.exitCode, 0, r.stdout);
    // (at fr_timer, 5 s: answering at the close itself, from event_route[tcp:closed] with
    // t_reply_callid, was tried; the transaction then ended without its failure route, and the
    // AS never learnt the outcome: no CDR, no history)
    const cdr = await eventually(
      () => two.com.cdrLines().find((c) => c.sessionId === callIdOf(r.messages) && c.outcome === 'failed'),
      5000,
      'the failed CDR',
    );
    assert.equal(cdr.roleOfNode, 'originating');
  });

  it('answers 408 when the other domain never answers, and says so in the history', async () => {
    const r = await send(two.com, 'carol', 'sip:someone@silent.example', 'hello?', 408);
    assert.equal(r.exitCode, 0, r.stdout);
    const carolXcap = new XcapClient(
      `https://127.0.0.1:${two.com.ports.xdm}`,
      'carol',
      pw('carol'),
      'example.com',
      readFileSync(two.com.tls!.ca, 'utf8'),
    );
    await eventually(
      async () => {
        const history = await carolXcap.get('/im/users/sip:carol@example.com/history');
        const list = (JSON.parse(history.body) as { entries: Array<{ peer: string; status?: number }> }).entries;
        return list.some((e) => e.peer === 'sip:someone@silent.example' && e.status === 408) ? true : undefined;
      },
      5000,
      'the 408 in the history',
    );
  });

  it("applies alice's IM policy to a sender of another domain: a rule naming sip:bob@example.net blocks him", async () => {
    const alice = new XcapClient(
      `https://127.0.0.1:${two.com.ports.xdm}`,
      'alice',
      pw('alice'),
      'example.com',
      readFileSync(two.com.tls!.ca, 'utf8'),
    );
    const put = await alice.put(
      IM_POLICY('sip:alice@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="sip:bob@example.net"/></blocked></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    try {
      const r = await send(two.net, 'bob', 'sip:alice@example.com', 'let me in', 403);
      assert.equal(r.exitCode, 0, r.stdout);
      // dave of the same domain is not named: his gets through
      const { uas } = await online(two.com, 'alice', 1);
      const d = await send(two.net, 'dave', 'sip:alice@example.com', 'hi from dave', 200);
      assert.equal(d.exitCode, 0, d.stdout);
      assert.deepEqual(
        receivedMessages((await uas).messages).map((m) => m.body),
        ['hi from dave'],
      );
    } finally {
      const del = await alice.delete(IM_POLICY('sip:alice@example.com'));
      assert.equal(del.status, 200, del.body);
    }
  });

  it('sets up an IM session (INVITE with an MSRP offer) from alice@example.com to bob@example.net; a message crosses both switches', async () => {
    const bob = new MsrpPeer();
    let alice: MsrpPeer | undefined;
    try {
      const bobPort = await bob.listen();
      const port = two.net.sippPort();
      const uas = two.net.sipp(calleeScenario(), { port, timeoutMs: 30000, set: { msrp_port: String(bobPort) } });
      await sleep(300);
      const reg = await two.net.sipp('register', {
        final: 200,
        set: { user: 'bob', ct_port: String(port), expires: '600' },
        args: ['-au', 'bob', '-ap', pw('bob')],
      });
      assert.equal(reg.exitCode, 0, reg.stdout);
      const caller = callerScenario({ final: 200, holdMs: 4000 });
      const uac = two.com.sipp(
        { name: caller.name, xml: caller.xml.replace(/sip:\[\$to\]@\[\$domain\]/g, 'sip:[$to]@example.net') },
        {
          timeoutMs: 30000,
          set: { user: 'alice', to: 'bob', msrp_port: '9100' },
          args: ['-au', 'alice', '-ap', pw('alice')],
        },
      );
      // example.net's switch binds to bob's path once the answer passes its core
      await bob.waitFor('the binding SEND at bob', (r) => r.some((m) => m.head.kind === 'request'), 10000);
      const answer = await eventually(
        () => {
          for (const f of readdirSync(uac.dir).filter((n) => n.endsWith('_messages.log'))) {
            const sdp = sdpAfter(readFileSync(join(uac.dir, f), 'utf8'), /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
            const media = sdp ? parseMsrpMedia(sdp)[0] : undefined;
            if (media) return media;
          }
          return undefined;
        },
        10000,
        'the 200 with SDP at alice',
      );
      // alice sees her own operator's switch, not the other domain's nor bob
      assert.equal(answer.port, two.com.ports.sip + 95);
      alice = await MsrpPeer.connect(answer.port);
      const text = 'Hello bob, from the other domain';
      alice.send({
        head: {
          kind: 'request',
          tid: 'tx-x1',
          method: 'SEND',
          headers: [
            { name: 'To-Path', value: answer.path[0]! },
            { name: 'From-Path', value: 'msrp://127.0.0.1:9100/caller-session;tcp' },
            { name: 'Message-ID', value: 'm-x1' },
            { name: 'Byte-Range', value: `1-${Buffer.byteLength(text)}/${Buffer.byteLength(text)}` },
            { name: 'Content-Type', value: 'text/plain' },
          ],
        },
        body: Buffer.from(text),
        flag: '$',
      });
      await bob.waitFor('the message at bob', (r) => r.some((m) => m.body?.toString() === text), 10000);
      const atBob = bob.requests('SEND').find((m) => m.body?.toString() === text)!;
      assert.equal(headerValue(atBob.head, 'To-Path'), `msrp://127.0.0.1:${bobPort}/callee-session;tcp`);
      // bob's side shows example.net's switch, not example.com's
      assert.match(headerValue(atBob.head, 'From-Path') ?? '', new RegExp(`:${two.net.ports.sip + 95}/`));
      const [caller200, callee] = [await uac, await uas];
      assert.equal(caller200.exitCode, 0, caller200.stdout);
      assert.equal(callee.exitCode, 0, callee.stdout);
    } finally {
      await alice?.close();
      await bob.close();
    }
  });

  it("binds a TLS peer to its certificate's domain: no certificate, another domain's, or a domain the certificate does not name is refused", async () => {
    const port = two.ops.com.peerTlsPort;
    const net = two.net.tls!;
    const org = await two.certificateFor('example.org');
    // no client certificate: the handshake itself fails on the peer port
    const bare = await tlsMessage(port, undefined, 'example.net', 'sip:carol@example.com');
    assert.equal(bare, '', 'nothing answered without a client certificate');
    // example.net's certificate, speaking for example.net: taken (carol is not online: deferred)
    assert.match(await tlsMessage(port, net, 'example.net', 'sip:carol@example.com'), /^SIP\/2\.0 (200|202) /);
    // example.net's certificate claiming example.org (configured by address): 403
    assert.match(await tlsMessage(port, net, 'example.org', 'sip:carol@example.com'), /^SIP\/2\.0 403 Forbidden Peer$/);
    // a certificate the CA signed for example.org, a domain not configured as a TLS peer: 403
    assert.match(await tlsMessage(port, org, 'example.org', 'sip:carol@example.com'), /^SIP\/2\.0 403 Forbidden Peer$/);
    assert.match(await tlsMessage(port, org, 'example.net', 'sip:carol@example.com'), /^SIP\/2\.0 403 Forbidden Peer$/);
  });

  it("asserts a trusted source's sender in the sender's own domain, never as one of our users", async () => {
    const { uas } = await online(two.com, 'alice', 1);
    const trusted = await two.com.sipp(
      messageScenario({ final: 200, body: 'via the trusted source', ruri: 'sip:[$to]', challenged: false }),
      { port: TRUSTED_PORT, set: { user: 'eve', domain: 'example.org', to: 'alice@example.com' } },
    );
    assert.equal(trusted.exitCode, 0, trusted.stdout);
    const [msg] = receivedMessages((await uas).messages);
    assert.equal(msg?.header('P-Asserted-Identity'), '<sip:eve@example.org>');
  });

  it('takes a request of a peer known by its address, as its own user', async () => {
    const { uas } = await online(two.com, 'alice', 1);
    const eve = two.com.sipp(
      messageScenario({ final: 200, body: 'from example.org', ruri: 'sip:[$to]', challenged: false }),
      { localIp: '127.0.0.3', set: { user: 'eve', domain: 'example.org', to: 'alice@example.com' } },
    );
    assert.equal((await eve).exitCode, 0, (await eve).stdout);
    const [msg] = receivedMessages((await uas).messages);
    assert.equal(msg?.header('P-Asserted-Identity'), '<sip:eve@example.org>');
  });

  it('refuses (403) a source that is not the configured peer of the domain it names, and relays nothing', async () => {
    const { uas } = await online(two.com, 'alice', 1);
    const cases = [
      // not a peer at all
      { ip: '127.0.0.4', domain: 'example.org', ruri: 'sip:alice@example.com' },
      // a peer speaking for a domain that is not its own (example.net is known by certificate)
      { ip: '127.0.0.3', domain: 'example.net', ruri: 'sip:alice@example.com' },
      // a peer asking us to relay to a third domain
      { ip: '127.0.0.3', domain: 'example.org', ruri: 'sip:bob@example.net' },
    ];
    for (const c of cases) {
      const r = await two.com.sipp(
        messageScenario({ final: 403, body: 'let me through', ruri: 'sip:[$to]', challenged: false }),
        { localIp: c.ip, set: { user: 'mallory', domain: c.domain, to: c.ruri.replace(/^sip:/, '') } },
      );
      assert.equal(r.exitCode, 0, `${JSON.stringify(c)}: ${r.stdout}`);
    }
    // one of ours without credentials: challenged, never relayed
    const bare = await two.com.sipp(
      messageScenario({ final: 407, body: 'relay me', ruri: 'sip:[$to]', challenged: false }),
      { localIp: '127.0.0.4', set: { user: 'alice', to: 'bob@example.net' } },
    );
    assert.equal(bare.exitCode, 0, bare.stdout);
    // and the same at example.net: a stranger in example.com's name gets 403 there too
    const atNet = await two.net.sipp(
      messageScenario({ final: 403, body: 'let me through', ruri: 'sip:[$to]', challenged: false }),
      { localIp: '127.0.0.4', set: { user: 'mallory', domain: 'example.com', to: 'alice@example.com' } },
    );
    assert.equal(atNet.exitCode, 0, atNet.stdout);
    // alice got none of them: the one real MESSAGE below is the first she sees
    const real = await send(two.net, 'bob', 'sip:alice@example.com', 'only this one', 200);
    assert.equal(real.exitCode, 0, real.stdout);
    const got = await uas;
    assert.deepEqual(
      receivedMessages(got.messages).map((m) => m.body),
      ['only this one'],
    );
  });
});
