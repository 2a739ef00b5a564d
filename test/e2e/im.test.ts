/**
 * IM Server, pager mode, end to end: real Kamailio + AS + sipp on loopback. Delivery with CPIM
 * kept intact, the recipient's policy (block, discard), size limit, deferred delivery in order
 * when the recipient registers (and across an AS restart), delivery notifications, group and
 * URI-list explosion, privacy, the retrieval and history interfaces, operator barring, expiry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildRecipientListMessage } from '../../as/src/im/formats/recipient-list.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { DOMAIN, TestStack, eventually, portsFrom } from './stack.js';

const USERS = [
  'alice',
  'bob',
  'carol',
  'dan',
  'erin',
  'gina',
  'hank',
  'ivan',
  'judy',
  'kim',
  'lena',
  'mia',
  'nora',
  'otto',
  'pia',
];
const pw = (user: string) => `${user}-pw-1`;
const IM_POLICY = (xui: string) => `/xcap-root/org.ims-as.im-policy/users/${xui}/index`;
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';
const GROUPS = (xui: string) => `/xcap-root/org.openmobilealliance.groups/users/${xui}/index`;
const GROUPS_TYPE = 'application/vnd.oma.poc.groups+xml';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shared steps of the IM tests on one stack. */
class ImActions {
  constructor(readonly stack: TestStack) {}

  xcap(user: string): XcapClient {
    return new XcapClient(`http://127.0.0.1:${this.stack.ports.xdm}`, user, pw(user));
  }

  /** One MESSAGE from `user`; resolves with sipp's result (exit code 0: the expected final came). */
  send(
    user: string,
    to: string,
    body: string,
    opts: { final: number; contentType?: string; headers?: string[]; ruri?: string },
  ) {
    return this.stack.sipp(
      messageScenario({
        final: opts.final,
        body,
        contentType: opts.contentType,
        headers: opts.headers,
        ruri: opts.ruri,
      }),
      {
        set: { user, to },
        args: ['-au', user, '-ap', pw(user)],
      },
    );
  }

  /** Starts a UA answering `count` MESSAGEs on a fresh port, then registers `user` there. */
  async online(user: string, count: number, opts: { timeoutMs?: number } = {}) {
    const port = this.stack.sippPort();
    const uas = this.stack.sipp(receiverScenario(), {
      port,
      timeoutMs: opts.timeoutMs ?? 15000,
      args: ['-m', String(count)],
    });
    await sleep(300);
    const reg = await this.stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    return { port, uas };
  }

  /** A UA answering `count` MESSAGEs on a port that is already registered. */
  async listen(port: number, count: number, timeoutMs = 15000) {
    const uas = this.stack.sipp(receiverScenario(), { port, timeoutMs, args: ['-m', String(count)] });
    await sleep(300);
    // wrapped: an async function returning the thenable itself would wait for sipp to exit
    return { uas };
  }

  cdrs(filter: (c: Record<string, unknown>) => boolean) {
    return this.stack
      .cdrLines()
      .filter((c) => c.serviceType === 'im' || c.service === 'im')
      .filter(filter);
  }
}

function cdrExtra(c: Record<string, unknown>): Record<string, unknown> {
  return (c.extra ?? c.recordExtensions ?? {}) as Record<string, unknown>;
}

describe('IM server (pager mode): policy, deferred delivery, IMDN, groups, history', () => {
  let stack: TestStack;
  let im: ImActions;
  let alicePort = 0;

  before(async () => {
    stack = await TestStack.start(portsFrom(5760), {
      IM_MAX_MESSAGE_BYTES: '2000',
      IM_SWEEP_SECONDS: '1',
      IM_RETRY_BASE_SECONDS: '1',
    });
    im = new ImActions(stack);
    await stack.provisionUsers(USERS, pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it("delivers a CPIM message intact, with the sender's asserted identity, and charges both roles", async () => {
    const { uas } = await im.online('bob', 1);
    const cpim = [
      'From: "Alice" <sip:alice@example.com>',
      'To: <sip:bob@example.com>',
      'DateTime: 2026-11-22T10:00:00Z',
      'Subject: lunch',
      '',
      'Content-Type: text/plain;charset=utf-8',
      '',
      'shall we meet at noon?',
    ].join('\n');
    const sent = await im.send('alice', 'bob', cpim, { final: 200, contentType: 'message/cpim' });
    assert.equal(sent.exitCode, 0, sent.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [msg] = receivedMessages(got.messages);
    assert.ok(msg, got.messages);
    assert.equal(msg.header('Content-Type'), 'message/cpim');
    assert.equal(msg.body.replace(/\r\n/g, '\n'), cpim, 'the CPIM body arrives byte for byte (line ends aside)');
    assert.equal(msg.header('P-Asserted-Identity'), '<sip:alice@example.com>');
    const callId = /Call-ID: (.*)/.exec(sent.messages)![1]!.trim();
    const lines = await eventually(
      () => {
        const l = im.cdrs((c) => c.sessionId === callId && c.outcome === 'delivered');
        return l.length === 2 ? l : undefined;
      },
      5000,
      'two delivered CDRs',
    );
    assert.deepEqual(lines.map((c) => c.roleOfNode).sort(), ['originating', 'terminating']);
    assert.equal((lines[0]!.messageBody as { contentType: string }).contentType, 'message/cpim');
  });

  it('refuses a malformed CPIM body with 400', async () => {
    const r = await im.send('alice', 'bob', 'this is not a CPIM message', { final: 400, contentType: 'message/cpim' });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /SIP\/2\.0 400 Malformed CPIM/);
  });

  it('answers 403 when the recipient blocks the sender, and discards silently when asked to', async () => {
    const carol = im.xcap('carol');
    const put = await carol.put(
      IM_POLICY('sip:carol@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="sip:alice@example.com"/></blocked></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    const r = await im.send('alice', 'carol', 'let me in', { final: 403 });
    assert.equal(r.exitCode, 0, r.stdout);

    const mia = im.xcap('mia');
    const put2 = await mia.put(
      IM_POLICY('sip:mia@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy" blocked-action="discard"><blocked><domain>example.com</domain></blocked></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put2.status, 201, put2.body);
    const d = await im.send('alice', 'mia', 'you will not see this', { final: 200 });
    assert.equal(d.exitCode, 0, d.stdout);
    const callId = /Call-ID: (.*)/.exec(d.messages)![1]!.trim();
    const [cdr] = await eventually(
      () => {
        const l = im.cdrs((c) => c.sessionId === callId && c.roleOfNode === 'terminating');
        return l.length ? l : undefined;
      },
      5000,
      'the discard CDR',
    );
    assert.equal(cdr!.outcome, 'discarded');
    // mia has no device: a delivered message would have been stored for her instead
    const listed = await mia.get('/im/users/sip:mia@example.com/deferred');
    assert.deepEqual(JSON.parse(listed.body), { messages: [] });
  });

  it('answers 413 with the largest size accepted for a message over the limit', async () => {
    const r = await im.send('alice', 'bob', 'x'.repeat(2500), { final: 413 });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /SIP\/2\.0 413[\s\S]*Max-Message-Size: 2000/);
  });

  it('stores messages for an offline user (202) and delivers them in order when the user registers', async () => {
    const calls: string[] = [];
    for (const n of [1, 2, 3]) {
      const r = await im.send('alice', 'dan', `deferred ${n}`, { final: 202 });
      assert.equal(r.exitCode, 0, r.stdout);
      calls.push(/Call-ID: (.*)/.exec(r.messages)![1]!.trim());
    }
    const stored = await eventually(
      () => {
        const l = im.cdrs((c) => calls.includes(c.sessionId as string) && c.outcome === 'deferred');
        return l.length === 6 ? l : undefined;
      },
      5000,
      'deferred CDRs, both roles',
    );
    assert.ok(stored.every((c) => c.statusCode === 202));

    const { uas } = await im.online('dan', 3);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const msgs = receivedMessages(got.messages);
    assert.deepEqual(
      msgs.map((m) => m.body),
      ['deferred 1', 'deferred 2', 'deferred 3'],
    );
    for (const m of msgs) {
      assert.match(m.header('From') ?? '', /<sip:alice@example\.com>/);
      assert.match(m.header('Date') ?? '', /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/, 'the time it was sent');
      assert.equal(m.header('P-Asserted-Identity'), '<sip:alice@example.com>');
    }
    const delivered = await eventually(
      () => {
        const l = im.cdrs((c) => calls.includes(c.sessionId as string) && c.outcome === 'delivered');
        return l.length === 3 ? l : undefined;
      },
      5000,
      'a delivery CDR per stored message',
    );
    assert.ok(delivered.every((c) => cdrExtra(c).deferred === true && c.roleOfNode === 'terminating'));
  });

  it('sends a "delivered" notification (IMDN) when a stored message that asked for one is delivered', async () => {
    const a = await im.online('alice', 1);
    alicePort = a.port;
    const cpim = [
      'From: <sip:alice@example.com>',
      'To: <sip:erin@example.com>',
      'DateTime: 2026-11-22T10:05:00Z',
      'NS: imdn <urn:ietf:params:imdn>',
      'imdn.Message-ID: msg-erin-1',
      'imdn.Disposition-Notification: positive-delivery, negative-delivery',
      '',
      'Content-Type: text/plain',
      '',
      'tell me when you get this',
    ].join('\n');
    const r = await im.send('alice', 'erin', cpim, { final: 202, contentType: 'message/cpim' });
    assert.equal(r.exitCode, 0, r.stdout);
    const erin = await im.online('erin', 1);
    const got = await erin.uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.match(receivedMessages(got.messages)[0]!.body, /tell me when you get this/);
    const note = await a.uas;
    assert.equal(note.exitCode, 0, note.stdout);
    const [imdn] = receivedMessages(note.messages);
    assert.ok(imdn, note.messages);
    assert.equal(imdn.header('Content-Type'), 'message/cpim');
    assert.match(imdn.body, /Content-Type: message\/imdn\+xml/);
    assert.match(imdn.body, /<message-id>msg-erin-1<\/message-id>/);
    assert.match(imdn.body, /<delivery-notification><status><delivered\/><\/status><\/delivery-notification>/);
    assert.doesNotMatch(imdn.body, /Disposition-Notification/, 'a notification asks for no notification');
  });

  it('explodes a group message to each member: one online gets it now, one offline when registering', async () => {
    const alice = im.xcap('alice');
    const doc =
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:team@example.com"><list>' +
      '<entry uri="sip:alice@example.com"/><entry uri="sip:gina@example.com"/><entry uri="sip:hank@example.com"/></list></list-service></group>';
    const put = await alice.put(GROUPS('sip:alice@example.com'), doc, GROUPS_TYPE);
    assert.equal(put.status, 201, put.body);

    const gina = await im.online('gina', 1);
    const r = await im.send('alice', 'team', 'team meeting at 3', { final: 202 });
    assert.equal(r.exitCode, 0, r.stdout);
    const got = await gina.uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [copy] = receivedMessages(got.messages);
    assert.equal(copy!.body, 'team meeting at 3');
    assert.match(copy!.header('From') ?? '', /sip:alice@example\.com/);

    const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
    const copies = await eventually(
      () => {
        const l = im.cdrs(
          (c) =>
            c.sessionId === callId &&
            cdrExtra(c).via === 'sip:team@example.com' &&
            c.calledPartyAddress !== 'sip:team@example.com',
        );
        return l.length === 2 ? l : undefined;
      },
      5000,
      'a CDR per copy',
    );
    const byMember = Object.fromEntries(copies.map((c) => [c.calledPartyAddress, c.outcome]));
    assert.deepEqual(
      byMember,
      { 'sip:gina@example.com': 'delivered', 'sip:hank@example.com': 'deferred' },
      'the sender gets no copy',
    );

    const hank = await im.online('hank', 1);
    const late = await hank.uas;
    assert.equal(late.exitCode, 0, late.stdout);
    assert.equal(receivedMessages(late.messages)[0]!.body, 'team meeting at 3');
  });

  it('refuses nested groups: over XCAP, and at message time for a group that became nested later', async () => {
    const gina = im.xcap('gina');
    const nested = await gina.put(
      GROUPS('sip:gina@example.com'),
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:outer@example.com"><list><entry uri="sip:team@example.com"/></list></list-service></group>',
      GROUPS_TYPE,
    );
    assert.equal(nested.status, 409, nested.body);
    assert.match(nested.body, /<constraint-failure phrase="[^"]*groups may not contain groups/);

    const ok = await gina.put(
      GROUPS('sip:gina@example.com'),
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:loop@example.com"><list><entry uri="sip:later@example.com"/><entry uri="sip:bob@example.com"/></list></list-service></group>',
      GROUPS_TYPE,
    );
    assert.equal(ok.status, 201, ok.body);
    const hank = im.xcap('hank');
    const later = await hank.put(
      GROUPS('sip:hank@example.com'),
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:later@example.com"><list><entry uri="sip:loop@example.com"/></list></list-service></group>',
      GROUPS_TYPE,
    );
    assert.equal(later.status, 409, 'its member loop@ is a group already');
    const later2 = await hank.put(
      GROUPS('sip:hank@example.com'),
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:later@example.com"><list><entry uri="sip:ivan@example.com"/></list></list-service></group>',
      GROUPS_TYPE,
    );
    assert.equal(later2.status, 201, later2.body);
    // from a member: a non-member is refused by the group's policy before its members are looked at
    const r = await im.send('bob', 'loop', 'round and round', { final: 403 });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /SIP\/2\.0 403 Nested Groups Not Allowed/);
  });

  it('explodes a URI-list MESSAGE (RFC 5365) and forwards only the message part', async () => {
    const lena = await im.online('lena', 1);
    const { contentType, body } = buildRecipientListMessage({
      recipients: [{ uri: 'sip:lena@example.com' }, { uri: 'sip:kim@example.com', copy: 'cc' }],
      message: { contentType: 'text/plain', body: 'to both of you' },
    });
    const r = await im.send('alice', 'im-exploder', body, {
      final: 202,
      contentType,
      headers: ['Require: recipient-list-message'],
    });
    assert.equal(r.exitCode, 0, r.stdout);
    const got = await lena.uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [copy] = receivedMessages(got.messages);
    assert.equal(copy!.body, 'to both of you');
    assert.equal(copy!.header('Content-Type'), 'text/plain');

    const noRequire = await im.send('alice', 'im-exploder', body, { final: 403, contentType });
    assert.equal(noRequire.exitCode, 0, noRequire.stdout);
    const elsewhere = await im.send('alice', 'bob', body, {
      final: 420,
      contentType,
      headers: ['Require: recipient-list-message'],
    });
    assert.equal(elsewhere.exitCode, 0, elsewhere.stdout);
    assert.match(elsewhere.messages, /Unsupported: recipient-list-message/);
  });

  it('lets the user list, fetch and delete stored messages over HTTP, and nobody else', async () => {
    const r = await im.send('alice', 'kim', 'second for kim', { final: 202 });
    assert.equal(r.exitCode, 0, r.stdout);
    const kim = im.xcap('kim');
    const list = await kim.get('/im/users/sip:kim@example.com/deferred');
    assert.equal(list.status, 200, list.body);
    const messages = (
      JSON.parse(list.body) as { messages: Array<{ id: string; from: string; size: number; via?: string }> }
    ).messages;
    assert.equal(messages.length, 2);
    assert.equal(messages[0]!.via, 'sip:im-exploder@example.com');
    assert.match(messages[1]!.from, /sip:alice@example\.com/);
    const one = await kim.get(`/im/users/sip:kim@example.com/deferred/${messages[1]!.id}`);
    // sipp ends the body it sends with a line break; the server keeps it as sent
    assert.equal((JSON.parse(one.body) as { body: string }).body, 'second for kim\r\n');
    const del = await kim.delete(`/im/users/sip:kim@example.com/deferred/${messages[0]!.id}`);
    assert.equal(del.status, 204);
    const again = await kim.delete(`/im/users/sip:kim@example.com/deferred/${messages[0]!.id}`);
    assert.equal(again.status, 404);
    const nosy = await im.xcap('bob').get('/im/users/sip:kim@example.com/deferred');
    assert.equal(nosy.status, 403);
    const anonymous = await fetch(`http://127.0.0.1:${stack.ports.xdm}/im/users/sip:kim@example.com/deferred`);
    assert.equal(anonymous.status, 401);

    const online = await im.online('kim', 1);
    const got = await online.uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.deepEqual(
      receivedMessages(got.messages).map((m) => m.body),
      ['second for kim'],
      'the deleted one is not delivered',
    );
  });

  it('hides a sender who asks for privacy from the recipient, not from charging', async () => {
    const judy = await im.online('judy', 1);
    const r = await im.send('alice', 'judy', 'guess who', { final: 200, headers: ['Privacy: id'] });
    assert.equal(r.exitCode, 0, r.stdout);
    const got = await judy.uas;
    const [msg] = receivedMessages(got.messages);
    assert.ok(msg, got.messages);
    assert.match(msg.header('From') ?? '', /sip:anonymous@anonymous\.invalid/);
    assert.doesNotMatch(msg.head, /alice/i, 'nothing in the request names alice');
    const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
    const cdr = await eventually(
      () => im.cdrs((c) => c.sessionId === callId && c.outcome === 'delivered')[0],
      5000,
      'CDR',
    );
    assert.equal(cdr.callingPartyAddress, 'sip:alice@example.com');
  });

  it('keeps the history of a user who enabled it, lists and deletes it, and warns when nearly full', async () => {
    const alice = im.xcap('alice');
    const put = await alice.put(
      IM_POLICY('sip:alice@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><history enabled="true" max-messages="2"/></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    const { uas: notice } = await im.listen(alicePort, 1);
    for (const text of ['first for the record', 'second for the record']) {
      const r = await im.send('alice', 'ivan', text, { final: 202 });
      assert.equal(r.exitCode, 0, r.stdout);
    }
    const list = await alice.get('/im/users/sip:alice@example.com/history');
    const entries = (JSON.parse(list.body) as { entries: Array<{ id: string; direction: string; peer: string }> })
      .entries;
    assert.deepEqual(
      entries.map((e) => [e.direction, e.peer]),
      [
        ['sent', 'sip:ivan@example.com'],
        ['sent', 'sip:ivan@example.com'],
      ],
    );
    const first = await alice.get(`/im/users/sip:alice@example.com/history/${entries[1]!.id}`);
    assert.equal((JSON.parse(first.body) as { body: string }).body, 'first for the record\r\n');
    const warned = await notice;
    assert.equal(warned.exitCode, 0, warned.stdout);
    assert.match(receivedMessages(warned.messages)[0]!.body, /history holds 2 of 2 messages/);
    assert.equal((await alice.delete(`/im/users/sip:alice@example.com/history/${entries[0]!.id}`)).status, 204);
    const after = JSON.parse((await alice.get('/im/users/sip:alice@example.com/history')).body) as {
      entries: unknown[];
    };
    assert.equal(after.entries.length, 1);
  });

  it('keeps one conversation a user asked for while the rest of the history stays off', async () => {
    const nora = im.xcap('nora');
    const put = await nora.put(
      IM_POLICY('sip:nora@example.com'),
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><history><conversation uri="sip:otto@example.com"/></history></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    for (const to of ['otto', 'pia']) {
      const r = await im.send('nora', to, `hello ${to}`, { final: 202 });
      assert.equal(r.exitCode, 0, r.stdout);
    }
    const list = await nora.get('/im/users/sip:nora@example.com/history');
    const entries = (JSON.parse(list.body) as { entries: Array<{ direction: string; peer: string }> }).entries;
    assert.deepEqual(
      entries.map((e) => [e.direction, e.peer]),
      [['sent', 'sip:otto@example.com']],
    );
  });

  it('refuses messages from a user the operator barred', async () => {
    const bar = await stack.provision('bar-im', 'alice');
    assert.equal(bar.code, 0, bar.out);
    assert.match(bar.out, /alice may no longer send instant messages/);
    const r = await im.send('alice', 'bob', 'am I barred?', { final: 403 });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /403 Sender Barred/);
    assert.equal((await stack.admin('PUT', '/users/alice/im-barred', { barred: false })).status, 204);
    assert.equal((await stack.admin('PUT', '/users/alice/im-barred', { barred: 'no' })).status, 400);
  });

  it('every frame Kamailio sent so far matched schemas/isc-*.schema.json', async () => {
    const m = await stack.metrics();
    assert.match(m, /^ims_as_isc_decisions_total\{/m, 'requests were decided');
    assert.doesNotMatch(m, /^ims_as_isc_frames_refused_total\{[^}]*\} [1-9]/m);
  });

  it('keeps stored messages across an AS restart and delivers them afterwards', async () => {
    await stack.stopAs();
    await stack.startAs();
    // ivan has the two history messages stored; add one after the restart
    const r = await im.send('alice', 'ivan', 'after the restart', { final: 202 });
    assert.equal(r.exitCode, 0, r.stdout);
    const ivan = await im.online('ivan', 3);
    const got = await ivan.uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.deepEqual(
      receivedMessages(got.messages).map((m) => m.body),
      ['first for the record', 'second for the record', 'after the restart'],
    );
  });
});

describe('IM server: expiry of stored messages', () => {
  let stack: TestStack;
  let im: ImActions;

  before(async () => {
    stack = await TestStack.start(portsFrom(5860), { IM_DEFERRED_EXPIRY_SECONDS: '3', IM_SWEEP_SECONDS: '1' });
    im = new ImActions(stack);
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', pw(u))).code, 0);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('expires an undelivered message, charges it as expired and tells the sender it failed', async () => {
    const alice = await im.online('alice', 1, { timeoutMs: 20000 });
    const cpim = [
      'From: <sip:alice@example.com>',
      'To: <sip:bob@example.com>',
      'DateTime: 2026-11-22T11:00:00Z',
      'NS: imdn <urn:ietf:params:imdn>',
      'imdn.Message-ID: msg-bob-9',
      'imdn.Disposition-Notification: negative-delivery',
      '',
      'Content-Type: text/plain',
      '',
      'you will never read this',
    ].join('\n');
    const r = await im.send('alice', 'bob', cpim, { final: 202, contentType: 'message/cpim' });
    assert.equal(r.exitCode, 0, r.stdout);
    const note = await alice.uas;
    assert.equal(note.exitCode, 0, note.stdout);
    const [imdn] = receivedMessages(note.messages);
    assert.match(imdn!.body, /<message-id>msg-bob-9<\/message-id>/);
    assert.match(imdn!.body, /<status><failed\/><\/status>/);
    const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
    const cdr = await eventually(
      () => im.cdrs((c) => c.sessionId === callId && c.outcome === 'expired')[0],
      5000,
      'expired CDR',
    );
    assert.equal(cdr.calledPartyAddress, 'sip:bob@example.com');
    const list = await im.xcap('bob').get('/im/users/sip:bob@example.com/deferred');
    assert.deepEqual(JSON.parse(list.body), { messages: [] });
    assert.equal(DOMAIN, 'example.com');
  });
});
