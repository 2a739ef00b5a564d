/**
 * Chat rooms through the core, end to end: real Kamailio and AS, sipp as each participant's SIP
 * UA, the test's MSRP peers as their MSRP clients. The AS is the conference focus: it answers
 * the INVITE to the room URI itself (its own SDP, Contact ;isfocus), takes the BYE; every
 * message one participant sends reaches the others CPIM-wrapped, a CPIM To naming one
 * participant reaches only that one; a room and its last messages survive an AS restart and
 * are replayed to a joiner; one record per participant and one for the conference.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { assertValidConferenceInfo } from '../helpers/conference-info-schema.js';
import { subscriberScenario } from './scenario-builder.js';
import { headerValue } from '../../as/src/msrp/message.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { callerScenario, calleeScenario, sdpAfter } from './msrp-session-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';
import { callerPath as pathOf, cpimAt, msrpSend as send } from './conference-parties.js';

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'];
const pw = (user: string) => `${user}-pw-1`;

/**
 * The conference's owner in sipp: joins like callerScenario, then sends a REFER with
 * `Refer-To: <[$refer_to];method=BYE>` in its dialog with the focus, takes the 202 and the
 * NOTIFY (answered 200), then hangs up itself, or (`ended`) waits for the focus's BYE.
 */
function ownerScenario(opts: { final: 202 | 403; ended?: boolean; add?: boolean }): {
  name: string;
  xml: string;
} {
  const TAG = '[pid]o[call_number]';
  const sdp = [
    'v=0',
    'o=[$user] 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=message [$msrp_port] TCP/MSRP *',
    'a=accept-types:message/cpim text/plain',
    'a=path:msrp://127.0.0.1:[$msrp_port]/caller-session;tcp',
  ].join('\n');
  const invite = (cseq: number, auth: boolean) => `
  <send retrans="500"><![CDATA[

      INVITE sip:[$to]@[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:[$to]@[$domain]>
      Call-ID: [call_id]
      CSeq: ${cseq} INVITE${auth ? '\n      [authentication]' : ''}
      Contact: <sip:[$user]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

${sdp}
    ]]></send>`;
  const inDialog = (method: string, cseq: number, extra: string[] = []) => `
  <send retrans="500"><![CDATA[

      ${method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:[$to]@[$domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ${cseq} ${method}
      Contact: <sip:[$user]@[local_ip]:[local_port]>
      Max-Forwards: 70${extra.map((h) => `\n      ${h}`).join('')}
      Content-Length: 0

    ]]></send>`;
  const answer = `
  <send><![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]></send>`;
  const ack = (cseq: number, uri: string) => `
  <send><![CDATA[

      ACK ${uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:[$to]@[$domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ${cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>`;
  return {
    name: 'conf-owner',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="conf-owner">
  <Global variables="user,domain,to,msrp_port,refer_to" />
  ${invite(1, false)}
  <recv response="100" optional="true" />
  <recv response="407" auth="true" />
  ${ack(1, 'sip:[$to]@[$domain]')}
  ${invite(2, true)}
  <recv response="100" optional="true" />
  <recv response="200" rrs="true" />
  ${ack(2, '[next_url]')}
  <pause milliseconds="1500" />
  ${inDialog('REFER', 3, [opts.add ? 'Refer-To: <[$refer_to]>' : 'Refer-To: <[$refer_to];method=BYE>', 'Referred-By: <sip:[$user]@[$domain]>'])}
  <recv response="${opts.final}" />
  ${opts.final === 202 ? `<recv request="NOTIFY" timeout="10000" />${answer}` : ''}
  ${opts.ended ? `<recv request="BYE" timeout="10000" />${answer}` : `${inDialog('BYE', 4)}\n  <recv response="200" />`}
</scenario>`,
  };
}

/**
 * The creator of an ad-hoc conference in sipp: INVITE to the conference factory with a
 * multipart/mixed body (its SDP offer and an RFC 5366 recipient list naming [$invitees]'s
 * users), `Require: recipient-list-invite`; then it stays `holdMs` and hangs up.
 */
function adhocScenario(invitees: string[], holdMs: number): { name: string; xml: string } {
  const TAG = '[pid]a[call_number]';
  const body = [
    '--b0undary',
    'Content-Type: application/sdp',
    '',
    'v=0',
    'o=[$user] 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    'm=message [$msrp_port] TCP/MSRP *',
    'a=accept-types:message/cpim text/plain',
    'a=path:msrp://127.0.0.1:[$msrp_port]/caller-session;tcp',
    '--b0undary',
    'Content-Type: application/resource-lists+xml',
    'Content-Disposition: recipient-list',
    '',
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>',
    ...invitees.map((u) => `<entry uri="sip:${u}@[$domain]"/>`),
    '</list></resource-lists>',
    '--b0undary--',
  ].join('\n');
  const invite = (cseq: number, auth: boolean) => `
  <send retrans="500"><![CDATA[

      INVITE sip:conference-factory@[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:conference-factory@[$domain]>
      Call-ID: [call_id]
      CSeq: ${cseq} INVITE${auth ? '\n      [authentication]' : ''}
      Contact: <sip:[$user]@[local_ip]:[local_port]>
      Require: recipient-list-invite
      Max-Forwards: 70
      Content-Type: multipart/mixed;boundary=b0undary
      Content-Length: [len]

${body}
    ]]></send>`;
  const ack = (cseq: number, uri: string) => `
  <send><![CDATA[

      ACK ${uri} SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:conference-factory@[$domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ${cseq} ACK
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>`;
  return {
    name: 'conf-adhoc',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="conf-adhoc">
  <Global variables="user,domain,msrp_port" />
  ${invite(1, false)}
  <recv response="100" optional="true" />
  <recv response="407" auth="true" />
  ${ack(1, 'sip:conference-factory@[$domain]')}
  ${invite(2, true)}
  <recv response="100" optional="true" />
  <recv response="200" rrs="true" />
  ${ack(2, '[next_url]')}
  <pause milliseconds="${holdMs}" />
  <send retrans="500"><![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=${TAG}
      To: <sip:conference-factory@[$domain]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]></send>
  <recv response="200" />
</scenario>`,
  };
}

describe('Conference focus: chat rooms through Kamailio and the AS', () => {
  let stack: TestStack;
  let asMsrpPort = 0;
  const peers: MsrpPeer[] = [];

  before(async () => {
    const ports = portsFrom(8260);
    asMsrpPort = ports.sip + 40;
    stack = await TestStack.start(ports, {
      MSRP_PORT: String(asMsrpPort),
      MSRP_HOST: '127.0.0.1',
      CONFERENCE_REPLAY_MESSAGES: '2',
    });
    await stack.provisionUsers(USERS, pw);
  });

  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** `user` joins room `room` (sipp INVITE with its MSRP offer), stays `holdMs`, then BYEs. */
  function dialIn(
    user: string,
    room: string,
    msrpPort: number,
    opts: { holdMs?: number; final?: number; sdpLines?: string[]; hangUp?: boolean; headers?: string[] } = {},
  ) {
    return stack.sipp(
      callerScenario({
        ...(opts.headers ? { headers: opts.headers } : {}),
        final: opts.final ?? 200,
        holdMs: opts.holdMs ?? 8000,
        ...(opts.hangUp === false ? { hangUp: false } : {}),
        ...(opts.sdpLines ? { sdpLines: opts.sdpLines } : {}),
      }),
      { timeoutMs: 40000, set: { user, to: room, msrp_port: String(msrpPort) }, args: ['-au', user, '-ap', pw(user)] },
    );
  }

  /** The focus's 200 as a running sipp participant received it: its SDP and Contact. */
  async function focusAnswer(dir: string) {
    return eventually(
      () => {
        for (const f of readdirSync(dir).filter((n) => n.endsWith('_messages.log'))) {
          const trace = readFileSync(join(dir, f), 'utf8');
          const sdp = sdpAfter(trace, /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
          const media = sdp ? parseMsrpMedia(sdp)[0] : undefined;
          if (media) return { media, sdp: sdp!, trace };
        }
        return undefined;
      },
      10000,
      "the focus's 200 at the participant",
    );
  }

  /** Joins, connects the participant's MSRP client to the focus and binds it. */
  async function participant(
    user: string,
    room: string,
    msrpPort: number,
    opts: { sdpLines?: string[]; holdMs?: number; hangUp?: boolean; headers?: string[] } = {},
  ) {
    const sipp = dialIn(user, room, msrpPort, opts);
    const answer = await focusAnswer(sipp.dir);
    const focusPath = answer.media.path[0]!;
    const peer = await MsrpPeer.connect(asMsrpPort);
    peers.push(peer);
    const bind = send(focusPath, pathOf(msrpPort));
    peer.send(bind);
    await peer.waitFor('200 to the binding SEND', () => peer.responseTo(bind.head.tid) !== undefined);
    return {
      sipp,
      peer,
      focusPath,
      answer,
      say: (type: string, text: string) => peer.send(send(focusPath, pathOf(msrpPort), { type, text })),
    };
  }

  it("three participants: each sees the others' messages with the sender named, a private message reaches only its target; BYE leaves; one record per participant and one for the conference", async () => {
    const made = await stack.provision('room', 'add', 'lobby', '--owner', 'alice', '--subject', 'The lobby');
    assert.equal(made.code, 0, made.out);
    assert.match(made.out, /sip:lobby@example\.com/);

    const a = await participant('alice', 'lobby', 9301);
    const b = await participant('bob', 'lobby', 9302, { sdpLines: ['a=nickname:Bobby'] });
    const c = await participant('carol', 'lobby', 9303);

    // the focus answered itself: its own SDP (the AS's MSRP switch), Contact with ;isfocus
    assert.match(a.answer.trace, /Contact: <sip:lobby@127\.0\.0\.1:\d+>;isfocus/);
    assert.equal(a.answer.media.port, asMsrpPort);
    assert.match(a.focusPath, new RegExp(`^msrp://127\\.0\\.0\\.1:${asMsrpPort}/[^/;]+;tcp$`));
    assert.match(a.answer.sdp, /^s=The lobby$/m);
    assert.notEqual(a.focusPath, b.focusPath, 'each participant has its own MSRP session with the focus');

    a.say('text/plain', 'Hello from Alice');
    await b.peer.waitFor('alice at bob', () => cpimAt(b.peer).some((m) => m.content === 'Hello from Alice'));
    await c.peer.waitFor('alice at carol', () => cpimAt(c.peer).some((m) => m.content === 'Hello from Alice'));
    const atB = cpimAt(b.peer).find((m) => m.content === 'Hello from Alice')!;
    assert.equal(atB.from.uri, 'sip:alice@example.com');
    assert.equal(atB.to[0]!.uri, 'sip:lobby@example.com');
    assert.equal(atB.contentType, 'text/plain');

    // bob chose a nickname: the others see it
    b.say('text/plain', 'Bob here');
    await a.peer.waitFor('bob at alice', () => cpimAt(a.peer).some((m) => m.content === 'Bob here'));
    await c.peer.waitFor('bob at carol', () => cpimAt(c.peer).some((m) => m.content === 'Bob here'));
    const bobAtA = cpimAt(a.peer).find((m) => m.content === 'Bob here')!;
    assert.equal(bobAtA.from.display, 'Bobby');
    assert.equal(bobAtA.from.uri, 'sip:bob@example.com');

    // carol to bob only (CPIM To naming him), then to everyone
    c.say(
      'message/cpim',
      'From: <sip:carol@example.com>\r\nTo: <sip:bob@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nJust for you, Bob',
    );
    c.say('text/plain', 'For everyone');
    await b.peer.waitFor('the private message at bob', () =>
      cpimAt(b.peer).some((m) => m.content === 'Just for you, Bob'),
    );
    await a.peer.waitFor('the public one at alice', () => cpimAt(a.peer).some((m) => m.content === 'For everyone'));
    await b.peer.waitFor('the public one at bob', () => cpimAt(b.peer).some((m) => m.content === 'For everyone'));
    assert.ok(!cpimAt(a.peer).some((m) => m.content === 'Just for you, Bob'), 'alice never gets the private message');
    assert.ok(!cpimAt(c.peer).some((m) => m.content.includes('Just for you')), 'nor does its sender');
    // a message the focus cannot fan out is refused on MSRP, not answered 200
    const nobody = send(c.focusPath, pathOf(9303), {
      type: 'message/cpim',
      text: 'From: <sip:carol@example.com>\r\nTo: <sip:zed@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nanyone?',
    });
    c.peer.send(nobody);
    const unreadable = send(c.focusPath, pathOf(9303), { type: 'message/cpim', text: 'not CPIM at all' });
    c.peer.send(unreadable);
    await c.peer.waitFor(
      'the refusals',
      () => !!c.peer.responseTo(nobody.head.tid) && !!c.peer.responseTo(unreadable.head.tid),
    );
    assert.equal((c.peer.responseTo(nobody.head.tid)!.head as { code: number }).code, 403);
    assert.equal((c.peer.responseTo(unreadable.head.tid)!.head as { code: number }).code, 400);
    // nobody receives their own messages back
    assert.ok(!cpimAt(a.peer).some((m) => m.content === 'Hello from Alice'));

    // each participant's BYE (sipp, after its hold) is answered by the focus
    const done = await Promise.all([a.sipp, b.sipp, c.sipp]);
    for (const d of done) assert.equal(d.exitCode, 0, `${d.stdout}\n${d.messages}`);

    const cdrs = await eventually(
      () => {
        const l = stack
          .cdrLines()
          .filter((r) => (r.extra as Record<string, unknown> | undefined)?.conference === 'sip:lobby@example.com');
        return l.length === 4 ? l : undefined;
      },
      8000,
      'three participant records and one conference record',
    );
    const byWho = new Map(
      cdrs
        .filter((r) => (r.extra as Record<string, unknown>).conferenceRole === 'participant')
        .map((r) => [r.callingPartyAddress as string, r]),
    );
    assert.deepEqual([...byWho.keys()].sort(), [
      'sip:alice@example.com',
      'sip:bob@example.com',
      'sip:carol@example.com',
    ]);
    const alice = byWho.get('sip:alice@example.com')!;
    assert.equal(alice.calledPartyAddress, 'sip:lobby@example.com');
    assert.equal(alice.causeForRecordClosing, 'serviceDeliveryEndSuccessfully');
    const ax = alice.extra as Record<string, unknown>;
    assert.equal(ax.messagesSent, 1);
    assert.equal(ax.bytesSent, Buffer.byteLength('Hello from Alice'));
    assert.equal(ax.messagesReceived, 2, "bob's and carol's public messages");
    assert.equal((byWho.get('sip:carol@example.com')!.extra as Record<string, unknown>).messagesSent, 2);
    const conf = cdrs.find((r) => (r.extra as Record<string, unknown>).conferenceRole === 'controlling')!;
    const cx = conf.extra as Record<string, unknown>;
    assert.equal(cx.participants, 3);
    assert.equal(cx.messages, 4);
  });

  it('a room survives an AS restart and replays its last messages (2 here) to a joiner; a taken nickname is refused', async () => {
    const made = await stack.provision('room', 'add', 'attic', '--owner', 'dave');
    assert.equal(made.code, 0, made.out);
    const d = await participant('dave', 'attic', 9311, { holdMs: 3000 });
    const e = await participant('erin', 'attic', 9312, { holdMs: 3000, sdpLines: ['a=nickname:Erin'] });
    // a third with erin's nickname (case aside) is refused while she is there
    const twin = await dialIn('alice', 'attic', 9313, { final: 403, sdpLines: ['a=nickname:erin'] });
    assert.equal(twin.exitCode, 0, twin.stdout);
    assert.match(twin.messages, /SIP\/2\.0 403 Nickname Taken/);
    for (const text of ['one', 'two', 'three']) d.say('text/plain', text);
    await e.peer.waitFor('three messages at erin', () => cpimAt(e.peer).length === 3);
    for (const s of await Promise.all([d.sipp, e.sipp])) assert.equal(s.exitCode, 0, `${s.stdout}\n${s.messages}`);

    await stack.stopAs();
    await stack.startAs();
    const list = await stack.provision('room', 'list');
    assert.match(list.out, /sip:attic@example\.com owner sip:dave@example\.com/);

    const late = await eventually(
      async () => {
        try {
          return await participant('bob', 'attic', 9314, { holdMs: 1500 });
        } catch {
          return undefined;
        }
      },
      15000,
      'a join after the restart',
    );
    await late.peer.waitFor('the replayed messages', () => cpimAt(late.peer).length === 2);
    assert.deepEqual(
      cpimAt(late.peer).map((m) => [m.content, m.from.uri]),
      [
        ['two', 'sip:dave@example.com'],
        ['three', 'sip:dave@example.com'],
      ],
    );
    assert.equal((await late.sipp).exitCode, 0);
  });

  it("a pre-defined group (XDMS groups usage): its members join its conference by INVITE to the group URI, a non-member gets 403 with the group policy's reason", async () => {
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'carol', pw('carol'));
    const put = await xcap.put(
      '/xcap-root/org.openmobilealliance.groups/users/sip:carol@example.com/index',
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:crew@example.com"><list>' +
        '<entry uri="sip:carol@example.com"/><entry uri="sip:erin@example.com"/></list></list-service></group>',
      'application/vnd.oma.poc.groups+xml',
    );
    assert.equal(put.status, 201, put.body);
    const outsider = await dialIn('dave', 'crew', 9321, { final: 403 });
    assert.equal(outsider.exitCode, 0, outsider.stdout);
    assert.match(
      outsider.messages,
      /SIP\/2\.0 403 Forbidden[^]*Warning: 399 example\.com "sip:dave@example\.com is not a member of the group"/,
    );

    const c = await participant('carol', 'crew', 9322, { holdMs: 3000 });
    const e = await participant('erin', 'crew', 9323, { holdMs: 3000 });
    assert.match(c.answer.trace, /Contact: <sip:crew@127\.0\.0\.1:\d+>;isfocus/);
    e.say('text/plain', 'crew, assemble');
    await c.peer.waitFor('erin at carol', () => cpimAt(c.peer).some((m) => m.content === 'crew, assemble'));
    const got = cpimAt(c.peer).find((m) => m.content === 'crew, assemble')!;
    assert.equal(got.from.uri, 'sip:erin@example.com');
    assert.equal(got.to[0]!.uri, 'sip:crew@example.com');
    for (const s of await Promise.all([c.sipp, e.sipp])) assert.equal(s.exitCode, 0, `${s.stdout}\n${s.messages}`);
    await eventually(
      () =>
        stack
          .cdrLines()
          .some(
            (r) =>
              (r.extra as Record<string, unknown> | undefined)?.conference === 'sip:crew@example.com' &&
              (r.extra as Record<string, unknown>).kind === 'group',
          ) || undefined,
      8000,
      "the group conference's record",
    );
  });

  it('a full room refuses one more participant with 486 and a Warning', async () => {
    const made = await stack.provision('room', 'add', 'booth', '--owner', 'alice', '--max', '2');
    assert.equal(made.code, 0, made.out);
    const a = await participant('alice', 'booth', 9331, { holdMs: 2500 });
    const b = await participant('bob', 'booth', 9332, { holdMs: 2500 });
    const third = await dialIn('carol', 'booth', 9333, { final: 486 });
    assert.equal(third.exitCode, 0, third.stdout);
    assert.match(
      third.messages,
      /SIP\/2\.0 486 Busy Here[^]*Warning: 399 example\.com "the room is full \(at most 2 participants\)"/,
    );
    const runs = await Promise.all([a.sipp, b.sipp]);
    for (const s of runs) assert.equal(s.exitCode, 0, `${s.stdout}\n${s.messages}`);
    // Kamailio's dialog module does not keep the focus's dialogs (it would for 12 h)
    const callIds = runs.map((r) => /Call-ID: (.*)/.exec(r.messages)![1]!.trim());
    await eventually(
      async () => {
        const dialogs = (await stack.kamailioRpc('dlg.list')) as Array<Record<string, unknown>> | null;
        return (dialogs ?? []).some((d) => callIds.includes(String(d['call-id']))) ? undefined : true;
      },
      6000,
      "the focus's dialogs gone from Kamailio's dialog module",
    );
  });

  it("REFER with method=BYE from the owner removes a participant (the focus's BYE through Kamailio; 202, then a NOTIFY with the sipfrag), from anyone else 403; naming the conference ends it for everyone", async () => {
    const made = await stack.provision('room', 'add', 'hall', '--owner', 'alice');
    assert.equal(made.code, 0, made.out);
    const refer = (user: string, msrpPort: string, target: string, opts: { final: 202 | 403; ended?: boolean }) =>
      stack.sipp(ownerScenario(opts), {
        timeoutMs: 30000,
        set: { user, to: 'hall', msrp_port: msrpPort, refer_to: target },
        args: ['-au', user, '-ap', pw(user)],
      });
    const b = await participant('bob', 'hall', 9341, { hangUp: false, holdMs: 1 });
    const c = await participant('carol', 'hall', 9342, { holdMs: 6000 });
    const notOwner = await refer('dave', '9344', 'sip:bob@example.com', { final: 403 });
    assert.equal(notOwner.exitCode, 0, `${notOwner.stdout}\n${notOwner.messages}`);
    const owner = await refer('alice', '9343', 'sip:bob@example.com', { final: 202 });
    assert.equal(owner.exitCode, 0, `${owner.stdout}\n${owner.messages}`);
    assert.match(owner.messages, /NOTIFY sip:alice@127\.0\.0\.1:\d+ SIP\/2\.0/);
    assert.match(owner.messages, /Event: refer;id=3/);
    assert.match(owner.messages, /Content-Type: message\/sipfrag[^]*?\r?\n\r?\nSIP\/2\.0 200 OK/);
    const bob = await b.sipp;
    assert.equal(bob.exitCode, 0, `bob gets the focus's BYE: ${bob.stdout}\n${bob.messages}`);
    assert.match(bob.messages, /BYE sip:bob@127\.0\.0\.1:\d+ SIP\/2\.0[^]*From: <sip:hall@example\.com>;tag=/);
    await b.peer.waitFor("bob's MSRP connection closed", () => b.peer.closed, 5000);
    assert.equal((await c.sipp).exitCode, 0);
    const booted = stack
      .cdrLines()
      .find(
        (r) =>
          r.callingPartyAddress === 'sip:bob@example.com' &&
          (r.extra as Record<string, unknown> | undefined)?.conference === 'sip:hall@example.com',
      );
    assert.equal((booted?.extra as Record<string, unknown> | undefined)?.reason, 'removed by the owner');

    // the owner names the conference itself: everyone, the owner last, gets the focus's BYE
    const e = await participant('erin', 'hall', 9345, { hangUp: false, holdMs: 1 });
    const ender = await refer('alice', '9346', 'sip:hall@example.com', { final: 202, ended: true });
    assert.equal(ender.exitCode, 0, `${ender.stdout}\n${ender.messages}`);
    assert.equal((await e.sipp).exitCode, 0, 'erin gets the BYE too');
    // the participants it booted together end it once: one record per conference session of
    // the room (two here: all left after the removal, then erin's join began another), not one per leaver
    await new Promise((r) => setTimeout(r, 500));
    const hallSessions = stack
      .cdrLines()
      .filter(
        (r) =>
          (r.extra as Record<string, unknown> | undefined)?.conferenceRole === 'controlling' &&
          r.calledPartyAddress === 'sip:hall@example.com',
      )
      .map((r) => r.sessionId);
    assert.equal(hallSessions.length, 2, JSON.stringify(hallSessions));
    assert.equal(new Set(hallSessions).size, 2, `one record per conference session: ${JSON.stringify(hallSessions)}`);
  });

  it('the roster follows the focus: the owner watching the room (Event: conference) gets the participants, an anonymous one as anonymous, who is anonymous in the messages too', async () => {
    const made = await stack.provision('room', 'add', 'forum', '--owner', 'alice', '--subject', 'Open forum');
    assert.equal(made.code, 0, made.out);
    const b = await participant('bob', 'forum', 9351, { holdMs: 6000 });
    const watch = stack.sipp(
      {
        name: 'conference-alice',
        xml: subscriberScenario({ event: 'conference', accept: 'application/conference-info+xml', more: 1 }),
      },
      { set: { user: 'alice', target: 'forum' }, args: ['-au', 'alice', '-ap', pw('alice')], timeoutMs: 30000 },
    );
    await stack.sippLogged(watch.dir, /SUBSCRIBED/);
    const c = await participant('carol', 'forum', 9352, { holdMs: 4000, headers: ['Privacy: id'] });
    c.say('text/plain', 'guess who');
    await b.peer.waitFor('the anonymous message at bob', () => cpimAt(b.peer).some((m) => m.content === 'guess who'));
    const anon = cpimAt(b.peer).find((m) => m.content === 'guess who')!;
    assert.equal(anon.from.uri, 'sip:anonymous@anonymous.invalid');
    assert.doesNotMatch(
      b.peer
        .requests('SEND')
        .map((m) => m.body?.toString() ?? '')
        .join(''),
      /carol/,
    );

    const run = await watch;
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.messages}`);
    const docs = [...run.messages.matchAll(/<\?xml[\s\S]*?<\/conference-info>/g)].map((m) => m[0]);
    assert.ok(docs.length >= 2, run.messages);
    for (const d of docs) assertValidConferenceInfo(d);
    assert.match(docs[0]!, /state="full"/);
    assert.match(docs[0]!, /<subject>Open forum<\/subject>/);
    assert.match(
      docs[0]!,
      /<user entity="sip:bob@example\.com"[^>]*>[\s\S]*?<status>connected<\/status>[\s\S]*?<joining-method>dialed-in<\/joining-method>/,
    );
    assert.match(docs[1]!, /state="partial"/);
    assert.match(docs[1]!, /anonymous\.invalid/);
    assert.doesNotMatch(docs.join(''), /carol/, 'the anonymous participant is never named');
    for (const s of await Promise.all([b.sipp, c.sipp])) assert.equal(s.exitCode, 0, `${s.stdout}\n${s.messages}`);
  });

  it("REFER from a participant adds a user: the focus dials out through Kamailio (its INVITE, tm's ACK), connects to the invitee's MSRP path, and the invitee takes part; NOTIFY sipfrag 200 to the referrer", async () => {
    const made = await stack.provision('room', 'add', 'porch', '--owner', 'erin');
    assert.equal(made.code, 0, made.out);
    const d = new MsrpPeer();
    peers.push(d);
    const dPort = await d.listen();
    const port = stack.sippPort();
    const uas = stack.sipp(calleeScenario({ hangUpAfterMs: 3000 }), {
      port,
      timeoutMs: 30000,
      set: { msrp_port: String(dPort) },
    });
    await new Promise((r) => setTimeout(r, 300));
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'dave', ct_port: String(port), expires: '600' },
      args: ['-au', 'dave', '-ap', pw('dave')],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const e = await participant('erin', 'porch', 9361, { holdMs: 8000 });
    const referrer = stack.sipp(ownerScenario({ final: 202, add: true }), {
      timeoutMs: 30000,
      set: { user: 'carol', to: 'porch', msrp_port: '9362', refer_to: 'sip:dave@example.com' },
      args: ['-au', 'carol', '-ap', pw('carol')],
    });
    // the focus connects to dave's MSRP path and binds it
    await d.waitFor("the focus's binding SEND", () => d.requests('SEND').length > 0, 10000);
    const focusSide = headerValue(d.requests('SEND')[0]!.head, 'From-Path')!;
    e.say('text/plain', 'welcome, Dave');
    await d.waitFor('erin at dave', () => cpimAt(d).some((m) => m.content === 'welcome, Dave'));
    d.send(send(focusSide, `msrp://127.0.0.1:${dPort}/callee-session;tcp`, { type: 'text/plain', text: 'thanks!' }));
    await e.peer.waitFor('dave at erin', () => cpimAt(e.peer).some((m) => m.content === 'thanks!'));
    assert.equal(cpimAt(e.peer).find((m) => m.content === 'thanks!')!.from.uri, 'sip:dave@example.com');
    const r = await referrer;
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
    assert.match(r.messages, /Content-Type: message\/sipfrag[^]*?\r?\n\r?\nSIP\/2\.0 200 OK/);
    const callee = await uas;
    assert.equal(
      callee.exitCode,
      0,
      `dave got the INVITE and tm's ACK, and his BYE was answered: ${callee.stdout}\n${callee.messages}`,
    );
    assert.match(
      callee.messages,
      /INVITE sip:dave@127\.0\.0\.1:\d+ SIP\/2\.0[^]*From: <sip:porch@example\.com>;tag=[^]*Referred-By: <sip:carol@example\.com>/,
    );
    assert.equal((await e.sipp).exitCode, 0);
  });

  it('an ad-hoc conference: an INVITE to the conference factory with a recipient list (RFC 5366) makes the focus invite every listed user; all three talk; one conference record of kind adhoc', async () => {
    /** A registered callee (sipp) with its MSRP client listening, hanging up after `ms`. */
    const invitee = async (user: string, ms: number) => {
      const peer = new MsrpPeer();
      peers.push(peer);
      const mPort = await peer.listen();
      const port = stack.sippPort();
      const uas = stack.sipp(calleeScenario({ hangUpAfterMs: ms }), {
        port,
        timeoutMs: 30000,
        set: { msrp_port: String(mPort) },
      });
      await new Promise((r) => setTimeout(r, 300));
      const reg = await stack.sipp('register', {
        final: 200,
        set: { user, ct_port: String(port), expires: '600' },
        args: ['-au', user, '-ap', pw(user)],
      });
      assert.equal(reg.exitCode, 0, reg.stdout);
      return { peer, uas, mPort };
    };
    const bob = await invitee('bob', 5000);
    const carol = await invitee('carol', 5000);
    const creator = stack.sipp(adhocScenario(['bob', 'carol'], 6000), {
      timeoutMs: 30000,
      set: { user: 'alice', msrp_port: '9371' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    const answer = await focusAnswer(creator.dir);
    assert.match(answer.trace, /Contact: <sip:adhoc-[0-9a-f]+@127\.0\.0\.1:\d+>;isfocus/);
    const confUri = /Contact: <sip:(adhoc-[0-9a-f]+)@/.exec(answer.trace)![1]!;
    const a = await MsrpPeer.connect(asMsrpPort);
    peers.push(a);
    const focusPath = answer.media.path[0]!;
    const bind = send(focusPath, pathOf(9371));
    a.send(bind);
    await a.waitFor('200 to the binding SEND', () => a.responseTo(bind.head.tid) !== undefined);
    for (const x of [bob, carol])
      await x.peer.waitFor("the focus's binding SEND", () => x.peer.requests('SEND').length > 0, 10000);
    a.send(send(focusPath, pathOf(9371), { type: 'text/plain', text: 'ad-hoc hello' }));
    for (const x of [bob, carol])
      await x.peer.waitFor('alice at the invitee', () => cpimAt(x.peer).some((m) => m.content === 'ad-hoc hello'));
    const got = cpimAt(bob.peer).find((m) => m.content === 'ad-hoc hello')!;
    assert.equal(got.from.uri, 'sip:alice@example.com');
    assert.equal(got.to[0]!.uri, `sip:${confUri}@example.com`);
    const bobSide = headerValue(bob.peer.requests('SEND')[0]!.head, 'From-Path')!;
    bob.peer.send(
      send(bobSide, `msrp://127.0.0.1:${bob.mPort}/callee-session;tcp`, { type: 'text/plain', text: 'bob too' }),
    );
    await a.waitFor('bob at alice', () => cpimAt(a).some((m) => m.content === 'bob too'));
    await carol.peer.waitFor('bob at carol', () => cpimAt(carol.peer).some((m) => m.content === 'bob too'));
    for (const r of await Promise.all([creator, bob.uas, carol.uas]))
      assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
    assert.match(
      (await bob.uas).messages,
      /INVITE sip:bob@[^]*From: <sip:adhoc-[0-9a-f]+@example\.com>;tag=[^]*Referred-By: <sip:alice@example\.com>/,
    );
    const conf = await eventually(
      () =>
        stack
          .cdrLines()
          .find(
            (r) =>
              (r.extra as Record<string, unknown> | undefined)?.conference === `sip:${confUri}@example.com` &&
              (r.extra as Record<string, unknown>).conferenceRole === 'controlling',
          ),
      8000,
      "the ad-hoc conference's record",
    );
    assert.equal((conf.extra as Record<string, unknown>).kind, 'adhoc');
    assert.equal((conf.extra as Record<string, unknown>).participants, 3);
  });
});
