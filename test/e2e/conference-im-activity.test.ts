/**
 * The IM activity of a user in a chat room, end to end (issue 20: the IM server publishes
 * presence on a user's behalf, a network source the user can switch off): real Kamailio and
 * AS, sipp as the room's participant and as the watcher, the test's MSRP peer as the
 * participant's MSRP client. A watcher of alice's presence sees the IM server's tuple
 * (as/src/im/formats/im-activity-pidf.ts) when she joins a room, keeps it while she is there,
 * and loses it after her BYE; a user whose IM policy says <publish-im-activity enabled="false"/>
 * gets no such tuple while in the same room.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { subscriberScenario } from './scenario-builder.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { callerScenario, sdpAfter } from './msrp-session-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';
import { callerPath as pathOf, msrpSend as send } from './conference-parties.js';

const USERS = ['alice', 'bob', 'carol'];
const pw = (user: string) => `${user}-pw-act`;
const IM_POLICY = (user: string) => `/xcap-root/org.ims-as.im-policy/users/sip:${user}@example.com/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The IM server's tuple as im-activity-pidf.ts writes it. */
const IM_TUPLE = /<tuple id="im-activity">[\s\S]*?<\/tuple>/;

/** NOTIFYs a sipp run received, in order: headers and body text each. */
function notifies(messages: string): string[] {
  return [...messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}

describe('IM activity of a user in a chat room (real Kamailio, sipp, MSRP)', () => {
  let stack: TestStack;
  let asMsrpPort = 0;
  const peers: MsrpPeer[] = [];
  const auth = (u: string) => ['-au', u, '-ap', pw(u)];

  before(async () => {
    const ports = portsFrom(8360);
    asMsrpPort = ports.sip + 40;
    stack = await TestStack.start(ports, {
      MSRP_PORT: String(asMsrpPort),
      MSRP_HOST: '127.0.0.1',
      PRESENCE_DEFAULT_SUB_HANDLING: 'allow',
    });
    await stack.provisionUsers(USERS, pw);
    const made = await stack.provision('room', 'add', 'cafe', '--owner', 'alice');
    assert.equal(made.code, 0, made.out);
  });

  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** `user` joins the room (sipp INVITE), binds its MSRP client, stays `holdMs`, then BYEs. */
  async function joinRoom(user: string, msrpPort: number, holdMs: number) {
    const sipp = stack.sipp(callerScenario({ final: 200, holdMs }), {
      timeoutMs: 40000,
      set: { user, to: 'cafe', msrp_port: String(msrpPort) },
      args: auth(user),
    });
    const media = await eventually(
      () => {
        for (const f of readdirSync(sipp.dir).filter((n) => n.endsWith('_messages.log'))) {
          const sdp = sdpAfter(readFileSync(join(sipp.dir, f), 'utf8'), /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
          const m = sdp ? parseMsrpMedia(sdp)[0] : undefined;
          if (m) return m;
        }
        return undefined;
      },
      10000,
      "the focus's 200",
    );
    const peer = await MsrpPeer.connect(asMsrpPort);
    peers.push(peer);
    const focusPath = media.path[0]!;
    const bind = send(focusPath, pathOf(msrpPort));
    peer.send(bind);
    await peer.waitFor('200 to the binding SEND', () => peer.responseTo(bind.head.tid) !== undefined);
    return {
      sipp,
      peer,
      say: (text: string) => peer.send(send(focusPath, pathOf(msrpPort), { type: 'text/plain', text })),
    };
  }

  it("a watcher of alice sees the IM server's in-a-chat tuple when she joins a room, keeps it while she stays, and loses it after her BYE", async () => {
    const watcher = stack.sipp(
      {
        name: 'watch-alice',
        xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml', more: 2, notifyTimeoutMs: 30000 }),
      },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob'), timeoutMs: 60000 },
    );
    await stack.sippLogged(watcher.dir, /SUBSCRIBED/);

    const alice = await joinRoom('alice', 9411, 7000);
    await stack.sippLogged(watcher.dir, /NOTIFIED 1/);
    // she talks in the room for a while: her presence does not change while she is there
    alice.say('Hello, room');
    await sleep(2500);
    assert.equal(alice.sipp.process.exitCode, null, 'alice is still in the room');
    const logs = readdirSync(watcher.dir)
      .filter((f) => f.endsWith('_logs.log'))
      .map((f) => readFileSync(join(watcher.dir, f), 'utf8'))
      .join('');
    assert.doesNotMatch(logs, /NOTIFIED 2/, 'no NOTIFY while alice stays in the room');

    const left = await alice.sipp;
    assert.equal(left.exitCode, 0, `${left.stdout}\n${left.messages}`);
    const run = await watcher;
    assert.equal(run.exitCode, 0, `${run.stdout}\n${run.messages}`);

    const seen = notifies(run.messages);
    assert.equal(seen.length, 4, `first, joined, left, final NOTIFY expected:\n${run.messages}`);
    assert.doesNotMatch(seen[0]!, IM_TUPLE, 'not in a chat before she joins');
    const tuple = IM_TUPLE.exec(seen[1]!)?.[0];
    assert.ok(tuple, `the in-a-chat tuple once she joined:\n${seen[1]}`);
    assert.match(seen[1]!, /Content-Type: application\/pidf\+xml/);
    assert.match(seen[1]!, /entity="sip:alice@example\.com"/);
    assert.match(tuple, /<basic>open<\/basic>/);
    assert.match(tuple, /<note[^>]*>In a chat<\/note>/);
    assert.match(tuple, /<(\w+:)?service-id>org\.openmobilealliance:IM-session<\/(\w+:)?service-id>/);
    assert.match(tuple, /<(\w+:)?session-participation><(\w+:)?basic>open<\/(\w+:)?basic>/);
    assert.doesNotMatch(seen[2]!, IM_TUPLE, 'gone after her BYE');
    assert.doesNotMatch(seen[3]!, IM_TUPLE);
  });

  it('publishes nothing for a user who switched the IM activity off in her IM policy, in the same room where another user gets it', async () => {
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'carol', pw('carol'));
    const put = await xcap.put(
      IM_POLICY('carol'),
      '<?xml version="1.0" encoding="UTF-8"?><im-policy xmlns="urn:ims-as:xml:im-policy"><publish-im-activity enabled="false"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.ok(put.status === 201 || put.status === 200, put.body);

    const carol = await joinRoom('carol', 9412, 9000);
    const alice = await joinRoom('alice', 9413, 9000);
    // the control: alice, in the room with carol, is seen in a chat (the publication is there)
    const ofAlice = await eventually(
      async () => {
        const r = await stack.sipp(
          { name: 'peek-alice', xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml' }) },
          { set: { user: 'bob', target: 'alice' }, args: auth('bob') },
        );
        return IM_TUPLE.test(notifies(r.messages)[0] ?? '') ? r : undefined;
      },
      10000,
      "alice's in-a-chat tuple",
    );
    assert.equal(ofAlice.exitCode, 0, ofAlice.stdout);
    // carol joined before alice: had anything been published for her, it would be there by now
    const ofCarol = await stack.sipp(
      { name: 'peek-carol', xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml' }) },
      { set: { user: 'bob', target: 'carol' }, args: auth('bob') },
    );
    assert.equal(ofCarol.exitCode, 0, ofCarol.stdout);
    const first = notifies(ofCarol.messages)[0] ?? '';
    assert.match(first, /Subscription-State: active/);
    assert.doesNotMatch(first, IM_TUPLE, `carol opted out:\n${first}`);
    assert.doesNotMatch(first, /In a chat/);

    for (const done of await Promise.all([carol.sipp, alice.sipp])) assert.equal(done.exitCode, 0, done.stdout);
  });
});
