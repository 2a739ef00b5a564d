/**
 * Group chat over two AS processes on one store, end to end: real Kamailio, two real AS
 * processes with their event streams up (Kamailio's PICK_AS spreads the INVITEs over both by
 * Call-ID), sipp as each participant's SIP UA and the test's MSRP peers as their MSRP clients,
 * each connected to the MSRP switch of the instance that answered its INVITE. What the
 * participants must see (docs/conference.md, "Several instances"):
 *  - a message sent on either instance reaches every other participant exactly once, in order;
 *  - a private message (CPIM To naming one participant) reaches only that one, on whatever instance;
 *  - killing one instance (kill -9) makes its participants leave the conference-info state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { assertValidConferenceInfo } from '../helpers/conference-info-schema.js';
import { subscriberScenario } from './scenario-builder.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { callerScenario, sdpAfter } from './msrp-session-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';
import { cpimAt, msrpSend as send } from './conference-parties.js';

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory', 'oscar'];
const pw = (user: string) => `${user}-pw-confmulti`;
const SHARED = {
  AS_SHARED_STORE: 'true',
  AS_FEED_POLL_MS: '100',
  AS_LEASE_SECONDS: '3',
  MSRP_HOST: '127.0.0.1',
};

interface Joined {
  user: string;
  sipp: ReturnType<TestStack['sipp']>;
  peer: MsrpPeer;
  /** 0 or 1: the instance whose MSRP switch answered (its port in the focus's SDP). */
  instance: number;
  say(type: string, text: string): void;
}

describe('group chat over two AS instances on one store', () => {
  let stack: TestStack;
  const peers: MsrpPeer[] = [];
  const sipps: Array<ReturnType<TestStack['sipp']>> = [];
  const msrpPortOf = (i: number) => stack.ports.sip + 95 + i;
  const participants = async (i: number) =>
    Number(/^ims_as_conference_participants (\d+)/m.exec(await stack.instanceMetrics(i))?.[1] ?? 0);

  before(async () => {
    stack = await TestStack.start(portsFrom(8460), SHARED);
    await stack.startInstance(1, SHARED);
    for (const i of [0, 1]) {
      await eventually(
        async () => (/^ims_as_isc_event_stream_up 1/m.test(await stack.instanceMetrics(i)) ? true : undefined),
        10000,
        `instance ${i} stream up`,
      );
    }
    await stack.provisionUsers(USERS, pw);
    const made = await stack.provision('room', 'add', 'hall', '--owner', 'alice');
    assert.equal(made.code, 0, made.out);
  });

  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    // the participants' sipp wait for a BYE that will not come: ended before their directory goes
    for (const s of sipps) if (s.process.exitCode === null && s.process.signalCode === null) s.process.kill('SIGTERM');
    await Promise.all(sipps);
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** `user` joins the hall (sipp stays in the dialog), its MSRP client connects to the instance that answered. */
  async function enter(user: string, n: number): Promise<Joined> {
    const pathOf = `msrp://127.0.0.1:${stack.ports.sip + 60 + n}/caller-session;tcp`;
    const sipp = stack.sipp(callerScenario({ final: 200, holdMs: 120000, hangUp: false }), {
      timeoutMs: 150000,
      set: { user, to: 'hall', msrp_port: String(stack.ports.sip + 60 + n) },
      args: ['-au', user, '-ap', pw(user)],
    });
    sipps.push(sipp);
    const media = await eventually(
      () => {
        for (const f of readdirSync(sipp.dir).filter((x) => x.endsWith('_messages.log'))) {
          const sdp = sdpAfter(readFileSync(join(sipp.dir, f), 'utf8'), /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
          const m = sdp ? parseMsrpMedia(sdp)[0] : undefined;
          if (m) return m;
        }
        return undefined;
      },
      10000,
      `the focus's 200 at ${user}`,
    );
    const instance = [0, 1].find((i) => media.port === msrpPortOf(i));
    assert.ok(instance !== undefined, `the focus's MSRP port ${media.port} is one of the instances'`);
    const focusPath = media.path[0]!;
    const peer = await MsrpPeer.connect(media.port);
    peers.push(peer);
    const bind = send(focusPath, pathOf);
    peer.send(bind);
    await peer.waitFor(`200 to ${user}'s binding SEND`, () => peer.responseTo(bind.head.tid) !== undefined);
    return { user, sipp, peer, instance, say: (type, text) => peer.send(send(focusPath, pathOf, { type, text })) };
  }

  it('messages from each instance reach every other participant once, in order; a private one only its target; a killed instance takes its participants out of the conference', async () => {
    // join until both instances hold legs (the Call-ID hash decides, not the test)
    const joined: Joined[] = [];
    for (const user of USERS) {
      joined.push(await enter(user, joined.length));
      const on = [0, 1].map((i) => joined.filter((j) => j.instance === i).length);
      if (joined.length >= 3 && on[0]! > 0 && on[1]! > 0) break;
    }
    const on = (i: number) => joined.filter((j) => j.instance === i);
    console.log(`legs: ${joined.map((j) => `${j.user}@instance${j.instance}`).join(', ')}`);
    assert.ok(on(0).length > 0 && on(1).length > 0, `both instances hold legs: ${joined.map((j) => j.instance)}`);
    // the instances say the same: their gauges count the legs each holds
    await eventually(
      async () =>
        (await participants(0)) === on(0).length && (await participants(1)) === on(1).length ? true : undefined,
      5000,
      'per-instance participant gauges',
    );

    // one participant on each instance says three things, in order
    const senders = [on(0)[0]!, on(1)[0]!];
    for (const s of senders) for (const k of [1, 2, 3]) s.say('text/plain', `${s.user} says ${k}`);
    for (const r of joined) {
      const expected = senders.filter((s) => s !== r).flatMap((s) => [1, 2, 3].map((k) => `${s.user} says ${k}`));
      await r.peer.waitFor(`${expected.length} messages at ${r.user}`, () =>
        expected.every((t) => cpimAt(r.peer).some((m) => m.content === t)),
      );
    }
    // a moment for any duplicate still on its way
    await new Promise((res) => setTimeout(res, 1000));
    for (const r of joined) {
      const got = cpimAt(r.peer).filter((m) => / says \d$/.test(m.content));
      for (const s of senders) {
        const fromS = got.filter((m) => m.content.startsWith(`${s.user} says`)).map((m) => m.content);
        if (s === r) assert.deepEqual(fromS, [], `${r.user} never gets its own messages`);
        else
          assert.deepEqual(
            fromS,
            [1, 2, 3].map((k) => `${s.user} says ${k}`),
            `${r.user}: ${s.user}'s messages once each, in order (instances ${s.instance} -> ${r.instance})`,
          );
        const m = got.find((x) => x.content.startsWith(`${s.user} says`));
        if (m) assert.equal(m.from.uri, `sip:${s.user}@example.com`);
      }
    }

    // a late joiner (on whichever instance) gets the room's history once, whoever said it where
    const said = senders.flatMap((s) => [1, 2, 3].map((k) => `${s.user} says ${k}`));
    const late = await enter(USERS[joined.length]!, joined.length);
    await late.peer.waitFor(`the replay at ${late.user} (instance ${late.instance})`, () =>
      said.every((t) => cpimAt(late.peer).some((m) => m.content === t)),
    );
    await new Promise((res) => setTimeout(res, 1000));
    for (const s of senders)
      assert.deepEqual(
        cpimAt(late.peer)
          .map((m) => m.content)
          .filter((t) => t.startsWith(`${s.user} says`)),
        [1, 2, 3].map((k) => `${s.user} says ${k}`),
        `${late.user} gets ${s.user}'s messages once each, in order, by replay`,
      );
    joined.push(late);
    console.log(`late joiner: ${late.user}@instance${late.instance}`);

    // a private message across instances: from the first on instance 0 to the first on instance 1
    const [from, target] = [on(0)[0]!, on(1)[0]!];
    from.say(
      'message/cpim',
      `From: <sip:${from.user}@example.com>\r\nTo: <sip:${target.user}@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nOnly for ${target.user}`,
    );
    // and one back, private, from instance 1 to instance 0
    target.say(
      'message/cpim',
      `From: <sip:${target.user}@example.com>\r\nTo: <sip:${from.user}@example.com>\r\n\r\nContent-Type: text/plain\r\n\r\nOnly for ${from.user}`,
    );
    await target.peer.waitFor('the private message at its target', () =>
      cpimAt(target.peer).some((m) => m.content === `Only for ${target.user}`),
    );
    await from.peer.waitFor('the private reply at its target', () =>
      cpimAt(from.peer).some((m) => m.content === `Only for ${from.user}`),
    );
    await new Promise((res) => setTimeout(res, 1000));
    for (const r of joined) {
      const priv = cpimAt(r.peer).filter((m) => m.content.startsWith('Only for '));
      const mine = r === target ? [`Only for ${target.user}`] : r === from ? [`Only for ${from.user}`] : [];
      assert.deepEqual(
        priv.map((m) => m.content),
        mine,
        `${r.user} (instance ${r.instance}) gets only the private messages for it`,
      );
    }

    // instance 1 dies: its participants' MSRP is gone, so they leave the conference
    await stack.stopInstance(1, 'SIGKILL');
    let lastSeen = '';
    const survivorsView = await eventually(
      async () => {
        const r = await stack.sipp(
          {
            name: 'conference-watch',
            xml: subscriberScenario({ event: 'conference', accept: 'application/conference-info+xml' }),
          },
          { set: { user: 'alice', target: 'hall' }, args: ['-au', 'alice', '-ap', pw('alice')], timeoutMs: 20000 },
        );
        lastSeen = `${r.exitCode}\n${r.messages}`;
        const doc = /<\?xml[\s\S]*?<\/conference-info>/.exec(r.messages)?.[0];
        if (r.exitCode !== 0 || !doc) return undefined;
        const gone = on(1).every((j) =>
          new RegExp(
            `<user entity="sip:${j.user}@example\\.com"[^>]*>(?:(?!</user>)[\\s\\S])*<status>disconnected</status><joining-method>dialed-in</joining-method>(?:(?!</user>)[\\s\\S])*<disconnection-method>failed</disconnection-method>`,
          ).test(doc),
        );
        return gone ? doc : undefined;
      },
      40000,
      "instance 1's participants shown as gone",
    ).catch((err: unknown) => {
      console.log(`last conference watch:\n${lastSeen}`);
      throw err;
    });
    assertValidConferenceInfo(survivorsView);
    for (const j of on(0))
      assert.match(
        survivorsView,
        new RegExp(
          `<user entity="sip:${j.user}@example\\.com"[^>]*>(?:(?!</user>)[\\s\\S])*<status>connected</status>`,
        ),
        `${j.user} on the survivor is still there`,
      );
    assert.match(survivorsView, new RegExp(`<user-count>${on(0).length}</user-count>`));

    // and the survivor's participants still talk to each other (or at least the room is alive)
    if (on(0).length > 1) {
      on(0)[0]!.say('text/plain', 'after the crash');
      await on(0)[1]!.peer.waitFor('a message after the crash', () =>
        cpimAt(on(0)[1]!.peer).some((m) => m.content === 'after the crash'),
      );
    }
  });

  it('the last instance killed and started again: its old participants are gone, so the conference has ended', async () => {
    // nobody is left to adopt instance 0's work: only its own start can tell its legs are gone
    await stack.stopInstance(0, 'SIGKILL');
    await stack.startAs();
    await eventually(
      async () => (/^ims_as_isc_event_stream_up 1/m.test(await stack.instanceMetrics(0)) ? true : undefined),
      10000,
      'instance 0 stream up again',
    );
    const watch = await stack.sipp(
      { name: 'conference-after-restart', xml: subscriberScenario({ event: 'conference', expectFinal: 404 }) },
      { set: { user: 'alice', target: 'hall' }, args: ['-au', 'alice', '-ap', pw('alice')], timeoutMs: 20000 },
    );
    assert.equal(watch.exitCode, 0, `a watch of the hall is 404 (its conference ended):\n${watch.messages}`);
  });
});
