/**
 * Conference participants for end-to-end tests: sipp as each participant's SIP UA, the test's
 * MSRP peer as its MSRP client (dialling in, or registered and answering the focus's dial-out,
 * or declining it), and readers of what they received.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { headerValue, type MsrpMessage } from '../../as/src/msrp/message.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { parseCpim } from '../../as/src/im/formats/cpim.js';
import { callerScenario, calleeScenario, sdpAfter } from './msrp-session-scenarios.js';
import { eventually, type TestStack } from './stack.js';

/** The a=path a sipp participant puts in its SDP (msrp-session-scenarios.ts). */
export const callerPath = (port: number) => `msrp://127.0.0.1:${port}/caller-session;tcp`;

let tids = 0;
/** A whole SEND (or a bodiless one that only binds the connection). */
export function msrpSend(to: string, from: string, body?: { type: string; text: string }): MsrpMessage {
  const id = `cp${String(++tids).padStart(8, '0')}`;
  const bytes = body ? Buffer.from(body.text) : undefined;
  return {
    head: {
      kind: 'request',
      tid: id,
      method: 'SEND',
      headers: [
        { name: 'To-Path', value: to },
        { name: 'From-Path', value: from },
        { name: 'Message-ID', value: `m-${id}` },
        ...(bytes
          ? [
              { name: 'Byte-Range', value: `1-${bytes.length}/${bytes.length}` },
              { name: 'Content-Type', value: body!.type },
            ]
          : []),
      ],
    },
    ...(bytes ? { body: bytes } : {}),
    flag: '$',
  };
}

/** The CPIM messages a peer received, parsed. */
export function cpimAt(peer: MsrpPeer) {
  return peer
    .requests('SEND')
    .filter((m) => m.body && m.body.length > 0)
    .map((m) => parseCpim(m.body!.toString()));
}

/** NOTIFYs in a sipp trace, in order: headers and body each. */
export function notifiesIn(messages: string): string[] {
  return [...messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}

export class ConferenceParties {
  readonly peers: MsrpPeer[] = [];

  constructor(
    private readonly stack: TestStack,
    private readonly asMsrpPort: number,
    private readonly pw: (user: string) => string,
  ) {}

  /**
   * `user` dials in to `target` (sipp INVITE with its MSRP offer), binds its MSRP client to
   * the focus, stays `holdMs` and BYEs (or, `hangUp: false`, waits for the focus's BYE).
   */
  async dialIn(user: string, target: string, msrpPort: number, opts: { holdMs?: number; hangUp?: boolean } = {}) {
    const sipp = this.stack.sipp(
      callerScenario({ final: 200, holdMs: opts.holdMs ?? 8000, ...(opts.hangUp === false ? { hangUp: false } : {}) }),
      {
        timeoutMs: 40000,
        set: { user, to: target, msrp_port: String(msrpPort) },
        args: ['-au', user, '-ap', this.pw(user)],
      },
    );
    const answer = await eventually(
      () => {
        for (const f of readdirSync(sipp.dir).filter((n) => n.endsWith('_messages.log'))) {
          const trace = readFileSync(join(sipp.dir, f), 'utf8');
          const sdp = sdpAfter(trace, /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
          const media = sdp ? parseMsrpMedia(sdp)[0] : undefined;
          if (media) return { media, trace };
        }
        return undefined;
      },
      10000,
      `the focus's 200 at ${user}`,
    );
    const peer = await MsrpPeer.connect(this.asMsrpPort);
    this.peers.push(peer);
    const focusPath = answer.media.path[0]!;
    const bind = msrpSend(focusPath, callerPath(msrpPort));
    peer.send(bind);
    await peer.waitFor('200 to the binding SEND', () => peer.responseTo(bind.head.tid) !== undefined);
    return {
      sipp,
      peer,
      answer,
      say: (text: string) => peer.send(msrpSend(focusPath, callerPath(msrpPort), { type: 'text/plain', text })),
    };
  }

  /**
   * `user` registered with a sipp UA that answers the focus's INVITE (its MSRP client
   * listening) and then waits for the focus's BYE, or hangs up after `hangUpAfterMs`.
   */
  async invitee(user: string, opts: { hangUpAfterMs?: number } = {}) {
    const peer = new MsrpPeer();
    this.peers.push(peer);
    const mPort = await peer.listen();
    const { uas } = await this.registered(
      user,
      calleeScenario(opts.hangUpAfterMs !== undefined ? { hangUpAfterMs: opts.hangUpAfterMs } : {}),
      { msrp_port: String(mPort) },
    );
    /** What the invitee says in the conference, on the session the focus opened. */
    const say = (text: string) => {
      const focusSide = headerValue(peer.requests('SEND')[0]!.head, 'From-Path')!;
      peer.send(msrpSend(focusSide, `msrp://127.0.0.1:${mPort}/callee-session;tcp`, { type: 'text/plain', text }));
    };
    return { peer, uas, say };
  }

  /** `user` registered with a sipp UA that answers an INVITE with `code` (603 Decline, 486 Busy Here). */
  async refuser(user: string, code: number, reason: string) {
    return this.registered(user, refuserScenario(code, reason), {});
  }

  private async registered(user: string, scenario: { name: string; xml: string }, set: Record<string, string>) {
    const port = this.stack.sippPort();
    const uas = this.stack.sipp(scenario, { port, timeoutMs: 40000, set });
    await new Promise((r) => setTimeout(r, 300));
    const reg = await this.stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', this.pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // wrapped: the running sipp is a promise, which an async function's return would wait for
    return { uas };
  }

  async close(): Promise<void> {
    await Promise.all(this.peers.map((p) => p.close()));
  }
}

/** A UAS answering one INVITE with a final refusal, and taking its ACK. */
function refuserScenario(code: number, reason: string): { name: string; xml: string } {
  return {
    name: `refuse-${code}`,
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="refuse ${code}">
  <Global variables="domain" />
  <recv request="INVITE" />
  <send>
    <![CDATA[

      SIP/2.0 ${code} ${reason}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]r[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Server: sipp-refuser [$domain]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" />
</scenario>`,
  };
}
