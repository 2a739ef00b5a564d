/**
 * A group's policy in pager mode, end to end: real Kamailio + AS + sipp on loopback. A
 * non-member's MESSAGE to a group is refused (403 with the reason) and reaches no member; a
 * member given by an entry-ref to the owner's resource list receives; a group's rules let a
 * named non-member send; anonymity the group does not allow is refused; a group over its
 * max-participant-count is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { TestStack, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol', 'dan', 'erin'];
const pw = (user: string) => `${user}-pw-1`;
const GROUPS = (xui: string) => `/xcap-root/org.openmobilealliance.groups/users/${xui}/index`;
const GROUPS_TYPE = 'application/vnd.oma.poc.groups+xml';
const LISTS = (xui: string) => `/xcap-root/resource-lists/users/${xui}/index`;
const LISTS_TYPE = 'application/resource-lists+xml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('group policy in pager mode (real Kamailio, sipp)', () => {
  let stack: TestStack;

  const xcap = (user: string) => new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, user, pw(user));
  const send = (user: string, to: string, body: string, final: number, headers?: string[]) =>
    stack.sipp(messageScenario({ final, body, ...(headers ? { headers } : {}) }), {
      set: { user, to },
      args: ['-au', user, '-ap', pw(user)],
    });

  /** A UA taking `count` MESSAGEs, registered as `user`. */
  async function online(user: string, count: number, timeoutMs = 15000) {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs, args: ['-m', String(count)] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // wrapped: an async function returning sipp's thenable itself would wait for sipp to exit
    return { uas };
  }

  const copiesVia = (group: string, callId: string) =>
    stack
      .cdrLines()
      .filter((c) => c.serviceType === 'im' || c.service === 'im')
      .filter((c) => {
        const extra = (c.extra ?? c.recordExtensions ?? {}) as Record<string, unknown>;
        return c.sessionId === callId && extra.via === group && c.calledPartyAddress !== group;
      });

  before(async () => {
    stack = await TestStack.start(portsFrom(7960));
    await stack.provisionUsers(USERS, pw);
    const alice = xcap('alice');
    const lists = await alice.put(
      LISTS('sip:alice@example.com'),
      '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="friends">' +
        '<entry uri="sip:carol@example.com"/></list></resource-lists>',
      LISTS_TYPE,
    );
    assert.equal(lists.status, 201, lists.body);
    const groups = await alice.put(
      GROUPS('sip:alice@example.com'),
      '<group xmlns="urn:oma:xml:poc:list-service" xmlns:cp="urn:ietf:params:xml:ns:common-policy">' +
        // no rules: its members (bob by entry, carol by an entry-ref to alice's friends) may send
        '<list-service uri="sip:crew@example.com"><list><entry uri="sip:bob@example.com"/>' +
        '<entry-ref ref="resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22friends%22%5D/entry%5B@uri=%22sip:carol@example.com%22%5D"/>' +
        '</list></list-service>' +
        // rules: erin, who is no member, may send; members are not named, so they may not
        '<list-service uri="sip:board@example.com"><list><entry uri="sip:carol@example.com"/></list>' +
        '<cp:ruleset><cp:rule id="erin"><cp:conditions><cp:identity><cp:one id="sip:erin@example.com"/></cp:identity></cp:conditions>' +
        '<cp:actions><join-handling>allow</join-handling></cp:actions></cp:rule></cp:ruleset></list-service>' +
        // three members, room for two
        '<list-service uri="sip:duo@example.com"><list><entry uri="sip:bob@example.com"/><entry uri="sip:carol@example.com"/>' +
        '<entry uri="sip:dan@example.com"/></list><max-participant-count>2</max-participant-count></list-service>' +
        '</group>',
      GROUPS_TYPE,
    );
    assert.equal(groups.status, 201, groups.body);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it("a non-member's MESSAGE is refused 403 with the reason and exploded to nobody; a member's reaches the entry-ref member", async () => {
    const { uas: carol } = await online('carol', 1);
    const refused = await send('dan', 'crew', 'let me in', 403);
    assert.equal(refused.exitCode, 0, refused.stdout);
    assert.match(refused.messages, /SIP\/2\.0 403 Forbidden By Group Policy/);
    assert.match(refused.messages, /^Warning: 399 example\.com "sip:dan@example\.com is not a member of the group"/m);
    const refusedCallId = /Call-ID: (.*)/.exec(refused.messages)![1]!.trim();

    const ok = await send('bob', 'crew', 'hello crew', 202);
    assert.equal(ok.exitCode, 0, ok.stdout);
    const got = await carol;
    const okCallId = /Call-ID: (.*)/.exec(ok.messages)![1]!.trim();
    assert.equal(got.exitCode, 0, JSON.stringify(copiesVia('sip:crew@example.com', okCallId)) + got.stdout);
    const bodies = receivedMessages(got.messages).map((m) => m.body);
    assert.deepEqual(bodies, ['hello crew'], "carol (an entry-ref member) gets bob's message and never dan's");
    assert.deepEqual(copiesVia('sip:crew@example.com', refusedCallId), [], 'no copy of the refused message');
  });

  it("the group's rules decide when it has some: a named non-member may send, a member not named may not", async () => {
    const { uas: carol } = await online('carol', 1);
    const fromErin = await send('erin', 'board', 'from erin', 202);
    assert.equal(fromErin.exitCode, 0, fromErin.stdout);
    const got = await carol;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.equal(receivedMessages(got.messages)[0]?.body, 'from erin');

    const fromCarol = await send('carol', 'board', 'from carol', 403);
    assert.equal(fromCarol.exitCode, 0, fromCarol.stdout);
    assert.match(
      fromCarol.messages,
      /^Warning: 399 example\.com "the group's rules do not allow sip:carol@example\.com"/m,
    );
  });

  it('anonymity the group does not allow: 403', async () => {
    const r = await send('bob', 'crew', 'who am I', 403, ['Privacy: id']);
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /^Warning: 399 example\.com "the group does not allow anonymous participants"/m);
  });

  it("more members than the group's max-participant-count: 403 Too Many Participants", async () => {
    const r = await send('bob', 'duo', 'three is a crowd', 403);
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /SIP\/2\.0 403 Too Many Participants/);
    assert.match(r.messages, /^Warning: 399 example\.com "the group is limited to 2 participants"/m);
  });
});
