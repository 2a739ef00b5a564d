/**
 * Requests inside a participant's dialog with the focus, end to end: real Kamailio hands
 * them to the AS (no Route set, to the focus's Contact at the core), the focus answers. A
 * re-INVITE with the same MSRP offer gets 200 with the focus's SDP (same a=path); one with a
 * new a=path re-binds the participant's leg: its MSRP client on the new path sends and
 * receives, the old connection is closed. UPDATE without a body 200; INFO naming an Info
 * Package 469 with Recv-Info; a legacy INFO 200; OPTIONS 200 with Allow; MESSAGE in the
 * dialog 405 with Allow. Real sipp, the test's MSRP peers.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { sdpAfter } from './msrp-session-scenarios.js';
import { ConferenceParties, callerPath, cpimAt, msrpSend } from './conference-parties.js';
import { TestStack, portsFrom } from './stack.js';

const USERS = ['alice', 'bob'];
const pw = (user: string) => `${user}-pw-dlg`;

/** alice's UA: joins, then sends the in-dialog requests this test is about, waits, and BYEs. */
function dialogScenario(holdMs: number): { name: string; xml: string } {
  const TAG = '[pid]d[call_number]';
  const sdp = (portVar: string) =>
    [
      'v=0',
      'o=[$user] 1 1 IN IP4 127.0.0.1',
      's=-',
      'c=IN IP4 127.0.0.1',
      't=0 0',
      `m=message [$${portVar}] TCP/MSRP *`,
      'a=accept-types:message/cpim text/plain',
      `a=path:msrp://127.0.0.1:[$${portVar}]/caller-session;tcp`,
    ].join('\n');
  const request = (o: {
    method: string;
    cseq: number;
    uri: string;
    auth?: boolean;
    extra?: string[];
    body?: { type: string; text: string };
    inDialog: boolean;
  }) => `
  <send retrans="500"><![CDATA[

      ${o.method} ${o.uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:[$to]@[$domain]>${o.inDialog ? '[peer_tag_param]' : ''}
      Call-ID: [call_id]
      CSeq: ${o.cseq} ${o.method}${o.auth ? '\n      [authentication]' : ''}
      Contact: <sip:[$user]@[local_ip]:[local_port]>
      Max-Forwards: 70${(o.extra ?? []).map((h) => `\n      ${h}`).join('')}${o.body ? `\n      Content-Type: ${o.body.type}` : ''}
      Content-Length: [len]
${o.body ? `\n${o.body.text}` : '\n'}
    ]]></send>`;
  const ack = (cseq: number, uri: string, inDialog: boolean) => `
  <send><![CDATA[

      ACK ${uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:[$to]@[$domain]>${inDialog ? '[peer_tag_param]' : ''}
      Call-ID: [call_id]
      CSeq: ${cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>`;
  const inDialog = (
    method: string,
    cseq: number,
    final: number,
    extra: string[] = [],
    body?: { type: string; text: string },
  ) => `
  ${request({ method, cseq, uri: '[next_url]', inDialog: true, extra, ...(body ? { body } : {}) })}
  <recv response="100" optional="true" />
  <recv response="${final}" />`;
  return {
    name: 'focus-dialog',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="focus-dialog">
  <Global variables="user,domain,to,msrp_port,msrp_port2" />
  ${request({ method: 'INVITE', cseq: 1, uri: 'sip:[$to]@[$domain]', inDialog: false, body: { type: 'application/sdp', text: sdp('msrp_port') } })}
  <recv response="100" optional="true" />
  <recv response="407" auth="true" />
  ${ack(1, 'sip:[$to]@[$domain]', true)}
  ${request({ method: 'INVITE', cseq: 2, uri: 'sip:[$to]@[$domain]', auth: true, inDialog: false, body: { type: 'application/sdp', text: sdp('msrp_port') } })}
  <recv response="100" optional="true" />
  <recv response="200" rrs="true" />
  ${ack(2, '[next_url]', true)}
  <nop><action><log message="JOINED" /></action></nop>
  <pause milliseconds="1000" />
  ${inDialog('INVITE', 3, 200, [], { type: 'application/sdp', text: sdp('msrp_port') })}
  ${ack(3, '[next_url]', true)}
  ${inDialog('INVITE', 4, 200, [], { type: 'application/sdp', text: sdp('msrp_port2') })}
  ${ack(4, '[next_url]', true)}
  <nop><action><log message="MOVED" /></action></nop>
  ${inDialog('UPDATE', 5, 200)}
  ${inDialog('INFO', 6, 469, ['Info-Package: foo'], { type: 'application/foo', text: 'bar' })}
  ${inDialog('INFO', 7, 200)}
  ${inDialog('OPTIONS', 8, 200)}
  ${inDialog('MESSAGE', 9, 405, [], { type: 'text/plain', text: 'in the dialog' })}
  <pause milliseconds="${holdMs}" />
  ${inDialog('BYE', 10, 200)}
</scenario>`,
  };
}

describe('requests in a focus dialog (real Kamailio, sipp, MSRP)', () => {
  let stack: TestStack;
  let parties: ConferenceParties;
  let asMsrpPort = 0;

  before(async () => {
    const ports = portsFrom(8660);
    asMsrpPort = ports.sip + 40;
    stack = await TestStack.start(ports, { MSRP_PORT: String(asMsrpPort), MSRP_HOST: '127.0.0.1' });
    await stack.provisionUsers(USERS, pw);
    parties = new ConferenceParties(stack, asMsrpPort, pw);
    const made = await stack.provision('room', 'add', 'den', '--owner', 'alice');
    assert.equal(made.code, 0, made.out);
  });

  after(async () => {
    await parties?.close();
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('re-INVITE (same path, then a new one: the leg is re-bound), UPDATE, INFO 469 and legacy 200, OPTIONS 200, MESSAGE 405', async () => {
    const bob = await parties.dialIn('bob', 'den', 9661, { holdMs: 15000 });
    const alice = stack.sipp(dialogScenario(6000), {
      timeoutMs: 40000,
      set: { user: 'alice', to: 'den', msrp_port: '9662', msrp_port2: '9663' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    await stack.sippLogged(alice.dir, /JOINED/);
    const trace = () =>
      readdirSync(alice.dir)
        .filter((n) => n.endsWith('_messages.log'))
        .map((f) => readFileSync(join(alice.dir, f), 'utf8'))
        .join('\n');
    const first = parseMsrpMedia(sdpAfter(trace(), /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/)!)[0]!;
    const focusPath = first.path[0]!;
    // alice's MSRP client on her first path
    const old = await MsrpPeer.connect(asMsrpPort);
    parties.peers.push(old);
    const bind = msrpSend(focusPath, callerPath(9662));
    old.send(bind);
    await old.waitFor('200 to the binding SEND', () => old.responseTo(bind.head.tid) !== undefined);

    await stack.sippLogged(alice.dir, /MOVED/, 15000);
    const same = parseMsrpMedia(sdpAfter(trace(), /SIP\/2\.0 200 OK[^]*?CSeq: 3 INVITE/)!)[0]!;
    const moved = parseMsrpMedia(sdpAfter(trace(), /SIP\/2\.0 200 OK[^]*?CSeq: 4 INVITE/)!)[0]!;
    assert.deepEqual(same.path, [focusPath], "the focus's answer keeps its path");
    assert.deepEqual(moved.path, [focusPath]);
    assert.match(trace(), /SIP\/2\.0 200 OK[^]*?CSeq: 3 INVITE[^]*?Contact: <sip:den@127\.0\.0\.1:\d+>;isfocus/);

    // the old connection is let go; the client on the new path binds and talks
    await old.waitFor('the old connection closed', () => old.closed, 5000);
    const fresh = await MsrpPeer.connect(asMsrpPort);
    parties.peers.push(fresh);
    const rebind = msrpSend(focusPath, callerPath(9663));
    fresh.send(rebind);
    await fresh.waitFor('200 to the new binding', () => fresh.responseTo(rebind.head.tid) !== undefined);
    assert.equal((fresh.responseTo(rebind.head.tid)!.head as { code: number }).code, 200);
    fresh.send(msrpSend(focusPath, callerPath(9663), { type: 'text/plain', text: 'from my new path' }));
    await bob.peer.waitFor('alice at bob', () => cpimAt(bob.peer).some((m) => m.content === 'from my new path'));
    bob.say('back to you');
    await fresh.waitFor('bob at alice, new path', () => cpimAt(fresh).some((m) => m.content === 'back to you'));

    const done = await alice;
    assert.equal(done.exitCode, 0, `${done.stdout}\n${done.messages}`);
    const all = done.messages;
    /** The final response alice's UA received to the request of that CSeq. */
    const answer = (cseq: string) =>
      all
        .split(/\n-{10,}[^\n]*\n/)
        .find(
          (block) =>
            /^UDP message received[^\n]*\n\s*SIP\/2\.0 [2-6]\d\d /.test(block) && block.includes(`CSeq: ${cseq}`),
        ) ?? '';
    const ALLOW = 'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, INFO, REFER';
    assert.match(answer('5 UPDATE'), /SIP\/2\.0 200 OK/);
    assert.match(answer('6 INFO'), /SIP\/2\.0 469 Bad Info Package/);
    assert.match(answer('6 INFO'), /\nRecv-Info: *\r?\n/);
    assert.match(answer('7 INFO'), /SIP\/2\.0 200 OK/);
    assert.match(answer('8 OPTIONS'), /SIP\/2\.0 200 OK/);
    assert.ok(answer('8 OPTIONS').includes(ALLOW), answer('8 OPTIONS'));
    assert.match(answer('9 MESSAGE'), /SIP\/2\.0 405 Method Not Allowed/);
    assert.ok(answer('9 MESSAGE').includes(ALLOW), answer('9 MESSAGE'));
    const b = await bob.sipp;
    assert.equal(b.exitCode, 0, b.stdout);
  });
});
