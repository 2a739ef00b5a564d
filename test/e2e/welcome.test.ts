/**
 * A user's first registration, through real Kamailio: the IM profile (im-policy document) is
 * created with the defaults and one MESSAGE from the service says where to edit it; the next
 * registration brings nothing, and a user who wrote a profile before keeps it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { receivedMessages, receiverScenario } from './im-scenarios.js';
import { DOMAIN, TestStack, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-welcome`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PROFILE = (user: string) => `/xcap-root/org.ims-as.im-policy/users/sip:${user}@${DOMAIN}/index`;

describe('First registration: the IM profile and one message about it', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(7660), { IM_WELCOME: 'true' });
    await stack.provisionUsers(['rita', 'sam'], pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** A device of `user` taking MESSAGEs, registered; wrapped so that sipp is not awaited here. */
  async function device(user: string) {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 30000 });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    return { uas };
  }

  it('creates the default profile and tells the user once where to edit it', async () => {
    const first = await device('rita');
    const got = await first.uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [msg] = receivedMessages(got.messages);
    assert.ok(msg, got.messages);
    assert.match(msg.header('From') ?? '', /<sip:service@example\.com>/);
    assert.match(msg.body, /IM profile was created/);
    assert.ok(msg.body.includes(`/org.ims-as.im-policy/users/sip:rita@${DOMAIN}/index`), msg.body);
    const rita = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'rita', pw('rita'));
    const profile = await rita.get(PROFILE('rita'));
    assert.equal(profile.status, 200, profile.body);
    assert.match(profile.body, /<deferred-delivery enabled="true"/);

    // a second device (and every later registration): no message
    const second = await device('rita');
    await sleep(1500);
    second.uas.process.kill();
    const quiet = await second.uas;
    assert.equal(receivedMessages(quiet.messages).length, 0, quiet.messages);
  });

  it('keeps a profile the user wrote before registering, and says it is in place', async () => {
    const sam = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'sam', pw('sam'));
    const own = '<im-policy xmlns="urn:ims-as:xml:im-policy"><history enabled="true"/></im-policy>';
    assert.equal((await sam.put(PROFILE('sam'), own, 'application/vnd.ims-as.im-policy+xml')).status, 201);
    const got = await (await device('sam')).uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.match(receivedMessages(got.messages)[0]?.body ?? '', /IM profile is in place/);
    assert.equal((await sam.get(PROFILE('sam'))).body, own);
  });
});
