/**
 * Pager-mode is-composing (RFC 3994) end to end: real Kamailio + AS + sipp. An
 * `application/im-iscomposing+xml` MESSAGE (bare, or wrapped in CPIM) reaches a registered
 * recipient and is answered 480 for an offline one; it leaves no charging record, no history
 * entry and no stored message. An ordinary MESSAGE between the same users, sent right after,
 * still gets all three.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-14`;
const IM_POLICY = (xui: string) => `/xcap-root/org.ims-as.im-policy/users/${xui}/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';
const COMPOSING_TYPE = 'application/im-iscomposing+xml';
const COMPOSING =
  '<?xml version="1.0" encoding="UTF-8"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><contenttype>text/plain</contenttype><refresh>60</refresh></isComposing>';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const callIdOf = (trace: string) => /Call-ID: (.*)/.exec(trace)![1]!.trim();

describe('IM server, pager mode: is-composing is delivered or refused, never charged, archived or stored', () => {
  let stack: TestStack;
  const xcap = (user: string) => new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, user, pw(user));

  before(async () => {
    stack = await TestStack.start(portsFrom(7460), { IM_SWEEP_SECONDS: '1' });
    await stack.provisionUsers(['ann', 'ben', 'cid'], pw);
    for (const user of ['ann', 'ben', 'cid']) {
      const put = await xcap(user).put(
        IM_POLICY(`sip:${user}@example.com`),
        '<im-policy xmlns="urn:ims-as:xml:im-policy"><history enabled="true" max-messages="50"/></im-policy>',
        IM_POLICY_TYPE,
      );
      assert.equal(put.status, 201, put.body);
    }
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  function send(to: string, body: string, final: number, contentType: string) {
    return stack.sipp(messageScenario({ final, body, contentType }), {
      set: { user: 'ann', to },
      args: ['-au', 'ann', '-ap', pw('ann')],
    });
  }

  async function historyOf(user: string): Promise<Array<{ direction: string; peer: string; contentType?: string }>> {
    const r = await xcap(user).get(`/im/users/sip:${user}@example.com/history`);
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as { entries: Array<{ direction: string; peer: string; contentType?: string }> })
      .entries;
  }

  it('online recipient gets it, offline recipient: 480; only the ordinary MESSAGEs are charged, archived and stored', async () => {
    // ben is online and answers two MESSAGEs
    const port = stack.sippPort();
    const ben = stack.sipp(receiverScenario(), { port, timeoutMs: 20000, args: ['-m', '2'] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'ben', ct_port: String(port), expires: '600' },
      args: ['-au', 'ben', '-ap', pw('ben')],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);

    const typingToBen = await send('ben', COMPOSING, 200, COMPOSING_TYPE);
    assert.equal(typingToBen.exitCode, 0, typingToBen.messages.slice(-2000));
    const textToBen = await send('ben', 'hello ben', 200, 'text/plain');
    assert.equal(textToBen.exitCode, 0, textToBen.messages.slice(-2000));
    const atBen = await ben;
    assert.equal(atBen.exitCode, 0, atBen.stdout);
    const got = receivedMessages(atBen.messages);
    assert.deepEqual(
      got.map((m) => m.header('Content-Type')),
      [COMPOSING_TYPE, 'text/plain'],
      'both reached the registered recipient, in order',
    );

    // cid is offline: the indication is refused without storage, a CPIM-wrapped one too; the text is stored
    const typingToCid = await send('cid', COMPOSING, 480, COMPOSING_TYPE);
    assert.equal(typingToCid.exitCode, 0, typingToCid.messages.slice(-2000));
    assert.match(typingToCid.messages, /SIP\/2\.0 480 Temporarily Unavailable/);
    const wrapped = [
      'From: <sip:ann@example.com>',
      'To: <sip:cid@example.com>',
      '',
      `Content-Type: ${COMPOSING_TYPE}`,
      '',
      COMPOSING,
    ].join('\n');
    const wrappedToCid = await send('cid', wrapped, 480, 'message/cpim');
    assert.equal(wrappedToCid.exitCode, 0, wrappedToCid.messages.slice(-2000));
    const textToCid = await send('cid', 'hello cid', 202, 'text/plain');
    assert.equal(textToCid.exitCode, 0, textToCid.messages.slice(-2000));

    // charging: the ordinary MESSAGEs have both roles' records; the indications none
    const composingCalls = [typingToBen, typingToCid, wrappedToCid].map((r) => callIdOf(r.messages));
    const ordinary = [textToBen, textToCid].map((r) => callIdOf(r.messages));
    const cdrs = await eventually(
      () => {
        const lines = stack.cdrLines();
        return ordinary.every((id) => lines.filter((c) => c.sessionId === id).length === 2) ? lines : undefined;
      },
      5000,
      "the ordinary MESSAGEs' records",
    );
    assert.deepEqual(
      cdrs.filter((c) => c.sessionId === ordinary[0]).map((c) => c.outcome),
      ['delivered', 'delivered'],
    );
    assert.deepEqual(
      cdrs.filter((c) => c.sessionId === ordinary[1]).map((c) => c.outcome),
      ['deferred', 'deferred'],
    );
    assert.deepEqual(
      cdrs.filter((c) => composingCalls.includes(c.sessionId as string)),
      [],
      'no record for any is-composing MESSAGE',
    );
    assert.ok(
      cdrs.every((c) => (c.messageBody as { contentType?: string } | undefined)?.contentType !== COMPOSING_TYPE),
    );

    // history: the texts only
    assert.deepEqual((await historyOf('ann')).map((e) => [e.direction, e.peer]).sort(), [
      ['sent', 'sip:ben@example.com'],
      ['sent', 'sip:cid@example.com'],
    ]);
    assert.deepEqual(
      (await historyOf('ben')).map((e) => [e.direction, e.peer]),
      [['received', 'sip:ann@example.com']],
    );
    assert.deepEqual(
      (await historyOf('cid')).map((e) => [e.direction, e.peer]),
      [['received', 'sip:ann@example.com']],
    );

    // storage: cid's mailbox holds the text only
    const stored = await xcap('cid').get('/im/users/sip:cid@example.com/deferred');
    assert.equal(stored.status, 200, stored.body);
    const messages = (JSON.parse(stored.body) as { messages: Array<{ id: string }> }).messages;
    assert.equal(messages.length, 1);
    const one = await xcap('cid').get(`/im/users/sip:cid@example.com/deferred/${messages[0]!.id}`);
    assert.equal((JSON.parse(one.body) as { body: string }).body, 'hello cid\r\n');
  });
});
