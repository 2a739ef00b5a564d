/**
 * Capabilities a client registers, through real Kamailio: a MESSAGE is forked only to the
 * contacts that can take one (RFC 3840 `methods` Contact parameter, or the REGISTER's Allow),
 * a contact that declared nothing gets it too, and a user whose every contact refuses MESSAGE
 * is not "delivered" to at all. The feature tags each contact registered are in the AS's
 * mirror (admin API, ims-ctl user); an MSRP session goes to the contacts that registered the
 * OMA IM feature tag; a MESSAGE's Accept-Contact (RFC 3841) picks the contacts it reaches.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { callerScenario, calleeScenario } from './msrp-session-scenarios.js';
import { ROOT, TestStack, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-caps`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** REGISTER [$user] at [$ct_port] with `contactParams` after the URI and `extra` header lines. */
function registerWith(contactParams: string, extra: string[] = []): { name: string; xml: string } {
  const request = (cseq: number, auth: boolean) => `
  <send retrans="500">
    <![CDATA[

      REGISTER sip:[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=[pid]r[call_number]
      To: <sip:[$user]@[$domain]>
      Call-ID: [call_id]
      CSeq: ${cseq} REGISTER
      Contact: <sip:[$user]@[local_ip]:[$ct_port]>${contactParams}${auth ? '\n      [authentication]' : ''}${extra.map((h) => `\n      ${h}`).join('')}
      Expires: 600
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>`;
  return {
    name: 'register-caps',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register-caps">
  <Global variables="user,domain,ct_port" />${request(1, false)}
  <recv response="401" auth="true" />${request(2, true)}
  <recv response="200" />
</scenario>`,
  };
}

describe('Capabilities a client registers', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(7560));
    await stack.provisionUsers(['alice', 'bob', 'carol', 'dave', 'erin', 'fred'], pw);
  });

  const peers: MsrpPeer[] = [];
  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** A UA of `user` answering one MESSAGE, registered with these capabilities (wrapped: an async function returning sipp's thenable would wait for it to exit). */
  async function device(
    user: string,
    contactParams: string,
    extra: string[] = [],
    scenario: { name: string; xml: string } = receiverScenario(),
    set: Record<string, string> = {},
  ) {
    const port = stack.sippPort();
    const uas = stack.sipp(scenario, { port, timeoutMs: 60000, set });
    await sleep(300);
    const reg = await stack.sipp(registerWith(contactParams, extra), {
      set: { user, ct_port: String(port) },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, `${reg.stdout}\n${reg.messages}`);
    return { uas };
  }

  it('forks a MESSAGE to the contacts that take MESSAGE and to those that declared nothing, not to one that declared it does not', async () => {
    const voiceOnly = await device('bob', ';methods="INVITE,ACK,BYE,CANCEL,OPTIONS"');
    const chat = await device('bob', ';methods="INVITE,ACK,BYE,CANCEL,MESSAGE"');
    const silent = await device('bob', '');
    const sent = await stack.sipp(messageScenario({ final: 200, body: 'to the devices that chat' }), {
      set: { user: 'alice', to: 'bob' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(sent.exitCode, 0, `${sent.stdout}\n${sent.messages}`);
    const [c, s] = await Promise.all([chat.uas, silent.uas]);
    // the forked copies have arrived; what did not reach the voice-only device never will
    await sleep(1000);
    voiceOnly.uas.process.kill();
    const v = await voiceOnly.uas;
    assert.equal(receivedMessages(c.messages).length, 1, 'the contact that registered MESSAGE');
    assert.equal(receivedMessages(s.messages).length, 1, 'the contact that declared no methods');
    assert.equal(receivedMessages(v.messages).length, 0, `the voice-only contact got nothing:\n${v.messages}`);
  });

  it("takes the methods from the REGISTER's Allow header too, and answers a MESSAGE no contact can take without delivering it", async () => {
    const onlyVoice = await device('carol', '', ['Allow: INVITE, ACK, BYE, CANCEL, OPTIONS']);
    const sent = await stack.sipp(messageScenario({ final: 480, body: 'nobody here chats' }), {
      set: { user: 'alice', to: 'carol' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(sent.exitCode, 0, `${sent.stdout}\n${sent.messages}`);
    await sleep(1000);
    onlyVoice.uas.process.kill();
    const got = await onlyVoice.uas;
    assert.equal(receivedMessages(got.messages).length, 0, got.messages);
  });

  const IM_DEVICE = ';+g.oma.sip-im;methods="INVITE,ACK,BYE,CANCEL,MESSAGE"';
  const ICSI_MMTEL = 'urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel';
  const VOICE_DEVICE = `;+g.3gpp.icsi-ref="${ICSI_MMTEL}";methods="INVITE,ACK,BYE,CANCEL"`;

  it("keeps each contact's feature tags in the mirror (admin API) and delivers a MESSAGE only to the contact that takes it", async () => {
    const im = await device('dave', IM_DEVICE);
    const voice = await device('dave', VOICE_DEVICE);
    // the registration event reaches the AS just after the 200 to the REGISTER: wait for both
    type Reg = { contact: string; params: Record<string, string> };
    let last: Reg[] = [];
    const regs = await eventually(
      async () => {
        const state = await stack.admin('GET', '/users/dave/state');
        assert.equal(state.status, 200);
        last = state.json.registrations as Reg[];
        return last.length === 2 ? last : undefined;
      },
      5000,
      "both of dave's contacts in the mirror",
    ).catch((err: Error) => assert.fail(`${err.message}: ${JSON.stringify(last)}`));
    const params = regs.map((r) => r.params);
    assert.ok(
      params.some((p) => p['+g.oma.sip-im'] === '' && p.methods === 'INVITE,ACK,BYE,CANCEL,MESSAGE'),
      JSON.stringify(params),
    );
    assert.ok(
      params.some((p) => p['+g.3gpp.icsi-ref'] === ICSI_MMTEL),
      JSON.stringify(params),
    );
    // and the operator's CLI prints them with each contact
    const ctl = await new Promise<{ code: number; out: string }>((res) =>
      execFile(
        process.execPath,
        [join(ROOT, 'build/as/src/cli/ims-ctl.js'), 'user', 'dave'],
        {
          env: {
            ...process.env,
            AS_CONFIG: '',
            ISC_PORT: String(stack.ports.isc),
            ISC_SECRET: stack.secret,
            AS_ADMIN_TOKEN: stack.adminToken,
          },
        },
        (err, stdout, stderr) => res({ code: err ? 1 : 0, out: stdout + stderr }),
      ),
    );
    assert.equal(ctl.code, 0, ctl.out);
    assert.match(ctl.out, /CAPABILITIES/);
    assert.match(ctl.out, /\+g\.oma\.sip-im methods=INVITE,ACK,BYE,CANCEL,MESSAGE/);
    assert.match(ctl.out, /\+g\.3gpp\.icsi-ref=urn%3Aurn-7%3A3gpp-service\.ims\.icsi\.mmtel/);

    const sent = await stack.sipp(messageScenario({ final: 200, body: 'for the chat device only' }), {
      set: { user: 'alice', to: 'dave' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(sent.exitCode, 0, `${sent.stdout}\n${sent.messages}`);
    const got = await im.uas;
    await sleep(1000);
    voice.uas.process.kill();
    const v = await voice.uas;
    assert.equal(receivedMessages(got.messages).length, 1);
    assert.equal(receivedMessages(v.messages).length, 0, v.messages);
  });

  it('sends an MSRP session INVITE to the contact with the IM feature tag, not to the voice device that takes INVITE too', async () => {
    const media = new MsrpPeer();
    peers.push(media);
    const msrpPort = await media.listen();
    const im = await device('erin', IM_DEVICE, [], calleeScenario(), { msrp_port: String(msrpPort) });
    const voice = await device('erin', VOICE_DEVICE, [], calleeScenario(), { msrp_port: String(msrpPort + 1) });
    const caller = await stack.sipp(callerScenario({ final: 200, holdMs: 500 }), {
      timeoutMs: 30000,
      set: { user: 'alice', to: 'erin', msrp_port: '9100' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(caller.exitCode, 0, `${caller.stdout}\n${caller.messages}`);
    const answered = await im.uas;
    assert.equal(answered.exitCode, 0, answered.messages);
    await sleep(1000);
    voice.uas.process.kill();
    const v = await voice.uas;
    assert.doesNotMatch(v.messages, /INVITE sip:/, 'the voice device was not offered the session');
  });

  it("follows a MESSAGE's Accept-Contact with require and explicit: only the contact that registered the IM tag gets it", async () => {
    // (registered in the other order than the tests above: whichever contact the registrar's
    // lookup puts in the Request-URI, the one not named goes)
    const plain = await device('fred', '');
    const im = await device('fred', IM_DEVICE);
    const sent = await stack.sipp(
      messageScenario({
        final: 200,
        body: 'to the IM client alone',
        headers: ['Accept-Contact: *;+g.oma.sip-im;require;explicit'],
      }),
      { set: { user: 'alice', to: 'fred' }, args: ['-au', 'alice', '-ap', pw('alice')] },
    );
    assert.equal(sent.exitCode, 0, `${sent.stdout}\n${sent.messages}`);
    const got = await im.uas;
    await sleep(1000);
    plain.uas.process.kill();
    const p = await plain.uas;
    assert.equal(receivedMessages(got.messages).length, 1);
    assert.equal(receivedMessages(p.messages).length, 0, p.messages);
  });
});
