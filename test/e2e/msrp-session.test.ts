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
import { XcapClient } from '../helpers/xcap-client.js';
import { msrpMediaOf } from '../../as/src/im/session-sdp.js';
import { callerScenario, calleeScenario, sdpAfter } from './msrp-session-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol'];
const pw = (user: string) => `${user}-pw-1`;
const IM_POLICY = (xui: string) => `/xcap-root/org.ims-as.im-policy/users/${xui}/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('IM sessions (SIP side): INVITE with an MSRP offer through Kamailio and the AS', () => {
  let stack: TestStack;
  let asMsrpPort = 0;

  before(async () => {
    const ports = portsFrom(7460);
    asMsrpPort = ports.sip + 40;
    stack = await TestStack.start(ports, { MSRP_PORT: String(asMsrpPort), MSRP_HOST: '127.0.0.1' });
    await stack.provisionUsers(USERS, pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** Starts a callee UA on a fresh port and registers `user` there. */
  async function callee(user: string, msrpPort: number) {
    const port = stack.sippPort();
    const uas = stack.sipp(calleeScenario(), { port, timeoutMs: 30000, set: { msrp_port: String(msrpPort) } });
    await sleep(300);
    const reg = await stack.sipp('register', { final: 200, set: { user, ct_port: String(port), expires: '600' }, args: ['-au', user, '-ap', pw(user)] });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // wrapped: an async function returning the thenable itself would wait for sipp to exit
    return { uas };
  }

  function call(user: string, to: string, opts: Parameters<typeof callerScenario>[0], msrpPort: number) {
    return stack.sipp(callerScenario(opts), { timeoutMs: 30000, set: { user, to, msrp_port: String(msrpPort) }, args: ['-au', user, '-ap', pw(user)] });
  }

  it('sets up a session with the AS in both media paths; ACK and BYE reach the other side; one CDR per role', async () => {
    const { uas } = await callee('bob', 9101);
    const uac = await call('alice', 'bob', { final: 200, holdMs: 500 }, 9100);
    const got = await uas;
    assert.equal(uac.exitCode, 0, `caller: ${uac.stdout}\n${uac.messages}`);
    assert.equal(got.exitCode, 0, `callee (ACK and BYE expected): ${got.stdout}\n${got.messages}`);

    // the callee was offered the AS's MSRP URI, not the caller's
    const offer = msrpMediaOf(sdpAfter(got.messages, /INVITE sip:/)!);
    assert.ok(offer, got.messages);
    assert.equal(offer.path.length, 1);
    assert.match(offer.path[0]!, new RegExp(`^msrp://127\\.0\\.0\\.1:${asMsrpPort}/[0-9a-f]+b;tcp$`));
    assert.equal(offer.port, asMsrpPort);
    assert.equal(offer.host, '127.0.0.1');
    assert.deepEqual(offer.acceptTypes, ['text/plain', 'message/cpim'], 'the offer keeps the caller\'s accept-types');

    // the caller got the callee's answer with the AS's other URI in it
    const answer = msrpMediaOf(sdpAfter(uac.messages, /SIP\/2\.0 200 OK[\s\S]*?CSeq: 2 INVITE/)!);
    assert.ok(answer, uac.messages);
    assert.deepEqual(answer.path.length, 1);
    assert.match(answer.path[0]!, new RegExp(`^msrp://127\\.0\\.0\\.1:${asMsrpPort}/[0-9a-f]+a;tcp$`));
    assert.equal(answer.port, asMsrpPort);
    assert.equal(offer.path[0]!.replace(/b;tcp$/, ''), answer.path[0]!.replace(/a;tcp$/, ''), 'both sides name one session of the AS');
    assert.doesNotMatch(uac.messages, /callee-session/, 'the callee\'s own path never reaches the caller');
    assert.doesNotMatch(got.messages, /caller-session/, 'the caller\'s own path never reaches the callee');

    const callId = /Call-ID: (.*)/.exec(uac.messages)![1]!.trim();
    const cdrs = await eventually(() => {
      const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.sipMethod === 'INVITE');
      return l.length === 2 ? l : undefined;
    }, 5000, 'two session CDRs');
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
      assert.equal(typeof extra.messagesFromCaller, 'number');
    }
    assert.match(await stack.metrics(), /im_sessions_open 0\b/);
  });

  it('refuses a caller the callee blocks with 403, like a blocked MESSAGE, and charges it', async () => {
    const carol = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'carol', pw('carol'));
    const put = await carol.put(IM_POLICY('sip:carol@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="sip:alice@example.com"/></blocked></im-policy>', IM_POLICY_TYPE);
    assert.equal(put.status, 201, put.body);
    const r = await call('alice', 'carol', { final: 403 }, 9102);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
    assert.match(r.messages, /SIP\/2\.0 403 Forbidden/);
    const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
    const cdrs = await eventually(() => {
      const l = stack.cdrLines().filter((c) => c.sessionId === callId);
      return l.length === 2 ? l : undefined;
    }, 5000, 'two rejection CDRs');
    for (const c of cdrs) {
      assert.equal(c.outcome, 'rejected');
      assert.equal((c.extra as Record<string, unknown>).reason, 'blocked by recipient');
    }
  });

  it('answers 480 for a callee with no registered device (deferred sessions are not offered)', async () => {
    // carol never registered a device
    const r = await call('bob', 'carol', { final: 480 }, 9103);
    assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
  });
});
