/**
 * Capabilities a client registers, through real Kamailio: a MESSAGE is forked only to the
 * contacts that can take one (RFC 3840 `methods` Contact parameter, or the REGISTER's Allow),
 * a contact that declared nothing gets it too, and a user whose every contact refuses MESSAGE
 * is not "delivered" to at all.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { TestStack, portsFrom } from './stack.js';

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
    await stack.provisionUsers(['alice', 'bob', 'carol'], pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** A UA of `user` answering one MESSAGE, registered with these capabilities (wrapped: an async function returning sipp's thenable would wait for it to exit). */
  async function device(user: string, contactParams: string, extra: string[] = []) {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 60000 });
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
});
