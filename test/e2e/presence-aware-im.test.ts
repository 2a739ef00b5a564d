/**
 * Presence-aware messaging end to end, real Kamailio + AS + sipp on loopback: a registered
 * user whose IM policy has <presence-aware-delivery/> and who publishes closed gets nothing
 * on their device (the sender gets 202, the message waits in their mailbox); when they publish
 * open the held messages arrive in order; a busy one's held message goes to a new device. Without
 * the setting a closed user gets the message at once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { publisherScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol', 'dora'];
const pw = (user: string) => `${user}-pw-pim`;
const IM_POLICY = (user: string) => `/xcap-root/org.ims-as.im-policy/users/sip:${user}@example.com/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';
const policyDoc = (inner: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><im-policy xmlns="urn:ims-as:xml:im-policy">${inner}</im-policy>`;
const COMPOSING =
  '<?xml version="1.0" encoding="UTF-8"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>60</refresh></isComposing>';
/** Open, but the person is busy (RFC 4480). */
const BUSY_PIDF = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:[$user]@[$domain]">
  <tuple id="t[pid]"><status><basic>open</basic></status></tuple>
  <dm:person id="p[pid]"><rpid:activities><rpid:busy/></rpid:activities></dm:person>
</presence>`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Listed {
  messages: Array<{ id: string; state: string; from: string }>;
}

describe('presence-aware messaging through Kamailio', () => {
  let stack: TestStack;
  const auth = (u: string) => ['-au', u, '-ap', pw(u)];
  const xcap = (u: string) => new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, u, pw(u));

  before(async () => {
    stack = await TestStack.start(portsFrom(7860), { IM_SWEEP_SECONDS: '1' });
    await stack.provisionUsers(USERS, pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  const send = (from: string, to: string, body: string, final: number, contentType?: string) =>
    stack.sipp(messageScenario({ final, body, ...(contentType ? { contentType } : {}) }), {
      set: { user: from, to },
      args: auth(from),
    });

  /** A UA answering `count` MESSAGEs, registered for `user`. */
  async function online(user: string, count: number, timeoutMs = 30000) {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs, args: ['-m', String(count)] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: auth(user),
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // wrapped: an async function returning the thenable itself would wait for sipp to exit
    return { uas };
  }

  async function publish(user: string, basic: 'open' | 'closed', note: string) {
    const run = await stack.sipp(
      {
        name: `publish-${basic}`,
        xml: publisherScenario([{ kind: 'initial', basic, note, expires: 600, expect: 200 }]),
      },
      { set: { user }, args: auth(user) },
    );
    assert.equal(run.exitCode, 0, run.stdout);
  }

  async function mailbox(user: string): Promise<Listed['messages']> {
    const r = await xcap(user).get(`/im/users/sip:${user}@example.com/deferred`);
    assert.equal(r.status, 200, r.body);
    return (JSON.parse(r.body) as Listed).messages;
  }

  it('refuses a hold-when the schema does not know with 409', async () => {
    const r = await xcap('bob').put(
      IM_POLICY('bob'),
      policyDoc('<presence-aware-delivery hold-when="closed away"/>'),
      IM_POLICY_TYPE,
    );
    assert.equal(r.status, 409, r.body);
    assert.match(r.body, /schema-validation-error/);
  });

  it('holds messages for a registered user whose presence is closed (202, nothing on the device) and delivers them in order when it opens', async () => {
    const put = await xcap('bob').put(
      IM_POLICY('bob'),
      policyDoc('<presence-aware-delivery hold-when="closed busy"/>'),
      IM_POLICY_TYPE,
    );
    assert.ok(put.status === 200 || put.status === 201, put.body);
    const { uas: device } = await online('bob', 3);
    await publish('bob', 'closed', 'gone for the day');

    for (const n of [1, 2, 3]) {
      const r = await send('alice', 'bob', `held ${n}`, 202);
      assert.equal(r.exitCode, 0, `message ${n}: ${r.stdout}`);
    }
    // a typing indication is not stored: nobody to see it now
    const typing = await send('alice', 'bob', COMPOSING, 480, 'application/im-iscomposing+xml');
    assert.equal(typing.exitCode, 0, typing.stdout);
    assert.match(typing.messages, /SIP\/2\.0 480[\s\S]*Warning: [^\r\n]*presence is closed/);

    // still waiting in bob's mailbox well after the answers: the device got nothing
    await sleep(2000);
    const waiting = await mailbox('bob');
    assert.deepEqual(
      waiting.map((m) => m.state),
      ['waiting', 'waiting', 'waiting'],
    );
    const held = await eventually(
      () => {
        const l = stack
          .cdrLines()
          .filter(
            (c) =>
              c.calledPartyAddress === 'sip:bob@example.com' &&
              c.outcome === 'deferred' &&
              c.roleOfNode === 'terminating',
          );
        return l.length === 3 ? l : undefined;
      },
      5000,
      'three terminating deferred CDRs',
    );
    assert.ok(
      held.every((c) => ((c.extra ?? c.recordExtensions ?? {}) as Record<string, unknown>).heldBy === 'closed'),
    );

    // another of bob's devices publishes open: the held messages go, in order
    await publish('bob', 'open', 'back');
    const got = await device;
    assert.equal(got.exitCode, 0, got.stdout);
    const msgs = receivedMessages(got.messages);
    assert.deepEqual(
      msgs.map((m) => m.body),
      ['held 1', 'held 2', 'held 3'],
    );
    assert.ok(msgs.every((m) => /<sip:alice@example\.com>/.test(m.header('From') ?? '')));
    await eventually(async () => ((await mailbox('bob')).length === 0 ? true : undefined), 5000, "bob's mailbox empty");
  });

  it('holds while the person is busy (RPID), and a new device registering gets the held message', async () => {
    const put = await xcap('dora').put(
      IM_POLICY('dora'),
      policyDoc('<presence-aware-delivery hold-when="busy"/>'),
      IM_POLICY_TYPE,
    );
    assert.ok(put.status === 200 || put.status === 201, put.body);
    const { uas: phone } = await online('dora', 1);
    const busy = await stack.sipp(
      {
        name: 'publish-busy',
        xml: publisherScenario([{ kind: 'initial', expires: 600, expect: 200, rawBody: BUSY_PIDF }]),
      },
      { set: { user: 'dora' }, args: auth('dora') },
    );
    assert.equal(busy.exitCode, 0, busy.stdout);
    const r = await send('alice', 'dora', 'while busy', 202);
    assert.equal(r.exitCode, 0, r.stdout);
    await sleep(1500);
    assert.deepEqual(
      (await mailbox('dora')).map((m) => m.state),
      ['waiting'],
      'busy: held, the phone got nothing',
    );

    // a second device of dora's comes online: it asked for her messages
    const { uas: laptop } = await online('dora', 1);
    const got = await laptop;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.deepEqual(
      receivedMessages(got.messages).map((m) => m.body),
      ['while busy'],
    );
    // Kamailio forks to every contact: the phone takes the same delivery
    const phoneGot = await phone;
    assert.equal(phoneGot.exitCode, 0, phoneGot.stdout);
    assert.deepEqual(
      receivedMessages(phoneGot.messages).map((m) => m.body),
      ['while busy'],
    );
    await eventually(
      async () => ((await mailbox('dora')).length === 0 ? true : undefined),
      5000,
      "dora's mailbox empty",
    );
  });

  it('without the setting a registered user whose presence is closed gets the message at once', async () => {
    const { uas: device } = await online('carol', 1);
    await publish('carol', 'closed', 'gone for the day');
    const r = await send('alice', 'carol', 'straight through', 200);
    assert.equal(r.exitCode, 0, r.stdout);
    const got = await device;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.deepEqual(
      receivedMessages(got.messages).map((m) => m.body),
      ['straight through'],
    );
    assert.deepEqual(await mailbox('carol'), []);
  });
});
