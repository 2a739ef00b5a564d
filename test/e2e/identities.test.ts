/**
 * Identities and addressing end to end: real Kamailio + AS + sipp. A user's provisioned
 * number (tel:, sip:...;user=phone) and aliases reach their registered contacts and their
 * presence, count as the user in pres-rules and IM policies (pres:/im: entries too), a
 * P-Preferred-Identity of one's own is asserted and another's refused, an unknown number 404.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildRecipientListMessage } from '../../as/src/im/formats/recipient-list.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { parseReginfo } from '../../as/src/registrations/reginfo.js';
import { TestStack, type SippResult, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-1`;
const auth = (u: string) => ['-au', u, '-ap', pw(u)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IM_POLICY_TYPE = 'application/vnd.ims-as.im-policy+xml';

/** alice lets bob see everything, naming him by his alias as a pres: URI. */
const RULES = `<?xml version="1.0" encoding="UTF-8"?>
<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cp:rule id="friends">
    <cp:conditions><cp:identity><cp:one id="pres:bob.b@example.com"/></cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions>
    <cp:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-devices><pr:all-devices/></pr:provide-devices>
      <pr:provide-note>true</pr:provide-note>
    </cp:transformations>
  </cp:rule>
</cp:ruleset>`;

/** REGISTER with To (and From) `sip:[$reg_as]@[$domain]` and `uriParams`, digest as -au, Contact at [$ct_port]; final `final`. */
function registerAs(final: number, uriParams = ''): { name: string; xml: string } {
  const request = (cseq: number, auth: boolean) => `
  <send retrans="500">
    <![CDATA[

      REGISTER sip:[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$reg_as]@[$domain]${uriParams}>;tag=[pid]r[call_number]
      To: <sip:[$reg_as]@[$domain]${uriParams}>
      Call-ID: [call_id]
      CSeq: ${cseq} REGISTER
      Contact: <sip:dev@[local_ip]:[$ct_port]>${auth ? '\n      [authentication]' : ''}
      Expires: 600
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>`;
  return {
    name: 'register-as',
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register-as">
  <Global variables="reg_as,domain,ct_port" />${request(1, false)}
  <recv response="401" auth="true" />${request(2, true)}
  <recv response="${final}" />
</scenario>`,
  };
}

function notifies(run: SippResult): string[] {
  return [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}

describe('identities: numbers, aliases, pres:/im: URIs, preferred identity', () => {
  let stack: TestStack;

  /** One MESSAGE to `ruri`, written as `scheme:[$to]...` for sipp, whose `to` is the user or number part. */
  const send = (user: string, ruri: string, body: string, final: number, headers?: string[], contentType?: string) => {
    const m = /^(\w+:)([^@;]+)(.*)$/.exec(ruri)!;
    const template = `${m[1]}[$to]${m[3]!.replace('@example.com', '@[$domain]')}`;
    return stack.sipp(messageScenario({ final, body, ruri: template, headers, contentType }), {
      set: { user, to: m[2]! },
      args: auth(user),
    });
  };

  /** A UA answering `count` MESSAGEs, registered as `user` (wrapped: awaiting a returned sipp run would wait for it to end). */
  async function online(user: string, count: number) {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 20000, args: ['-m', String(count)] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: auth(user),
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    return { uas };
  }

  before(async () => {
    stack = await TestStack.start(portsFrom(7860));
    const add = await stack.provision('add', 'alice', '--password', pw('alice'), '--tel', '+1-555-1234');
    assert.equal(add.code, 0, add.out);
    assert.match(add.out, /added sip:alice@example\.com with number \+15551234/);
    for (const u of ['bob', 'carol']) assert.equal((await stack.provision('add', u, '--password', pw(u))).code, 0);
    for (const [u, a] of [
      ['alice', 'alice.smith'],
      ['bob', 'bob.b'],
    ] as const) {
      const r = await stack.provision('add-alias', u, a);
      assert.equal(r.code, 0, r.out);
    }
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('keeps a number to one user: a second user with it is refused with a clear error', async () => {
    const taken = await stack.provision('set-tel', 'bob', '+15551234');
    assert.equal(taken.code, 1);
    assert.match(taken.out, /number \+15551234 already belongs to sip:alice@example\.com/);
    const again = await stack.provision('add', 'dora', '--password', pw('dora'), '--tel', 'tel:+15551234');
    assert.equal(again.code, 1);
    assert.match(again.out, /already belongs to sip:alice@example\.com/);
    const alias = await stack.provision('add-alias', 'carol', 'alice.smith');
    assert.equal(alias.code, 1);
    assert.match(alias.out, /already an alias of sip:alice@example\.com/);
    // set and take away again: carol's number and alias
    for (const args of [
      ['set-tel', 'carol', '+4930123456'],
      ['add-alias', 'carol', 'cee'],
      ['remove-tel', 'carol'],
      ['remove-alias', 'carol', 'cee'],
    ]) {
      const r = await stack.provision(...args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.out}`);
    }
    assert.match((await stack.provision('identities', 'carol')).out, /^tel: \(none\)\s*$/);
    const none = await stack.provision('remove-tel', 'carol');
    assert.equal(none.code, 1);
    assert.match(none.out, /has no number/);
    const ids = await stack.provision('identities', 'alice');
    assert.equal(ids.code, 0, ids.out);
    assert.match(ids.out, /tel: \+15551234/);
    assert.match(ids.out, /alias: sip:alice\.smith@example\.com/);
  });

  it("delivers MESSAGEs to the user, tel:, sip:+number;user=phone and an alias to the user's registered contact", async () => {
    const { uas } = await online('alice', 4);
    for (const [i, ruri] of [
      'sip:alice@example.com',
      'tel:+15551234',
      'sip:+1-555-1234@example.com;user=phone',
      'sip:alice.smith@example.com',
    ].entries()) {
      const r = await send('bob', ruri, `hello ${i}`, 200);
      assert.equal(r.exitCode, 0, `${ruri}: ${r.stdout}`);
    }
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const msgs = receivedMessages(got.messages);
    assert.deepEqual(
      msgs.map((m) => m.body),
      ['hello 0', 'hello 1', 'hello 2', 'hello 3'],
    );
    // delivered to alice's registered contact, asserted as bob
    for (const m of msgs) {
      assert.match(m.head, /^MESSAGE sip:alice@127\.0\.0\.1:\d+/);
      assert.equal(m.header('P-Asserted-Identity'), '<sip:bob@example.com>');
    }
  });

  it('answers 404 for a number nobody has, as tel: and as sip:...;user=phone', async () => {
    for (const ruri of ['tel:+15559999', 'sip:+15559999@example.com;user=phone']) {
      const r = await send('bob', ruri, 'anyone?', 404);
      assert.equal(r.exitCode, 0, `${ruri}: ${r.stdout}`);
    }
  });

  it('applies IM policy entries written as im: URIs and numbers to the user they name', async () => {
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'alice', pw('alice'));
    const put = await xcap.put(
      '/xcap-root/org.ims-as.im-policy/users/sip:alice@example.com/index',
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="im:carol@example.com"/></blocked></im-policy>',
      IM_POLICY_TYPE,
    );
    assert.equal(put.status, 201, put.body);
    // carol is blocked, whichever of alice's identities she writes to
    for (const ruri of ['sip:alice.smith@example.com', 'tel:+15551234']) {
      const r = await send('carol', ruri, 'let me in', 403);
      assert.equal(r.exitCode, 0, `${ruri}: ${r.stdout}`);
    }
  });

  it('asserts an alias the user prefers (P-Preferred-Identity) and refuses one of another user (403)', async () => {
    const { uas } = await online('bob', 2);
    const own = await send('alice', 'sip:bob@example.com', 'as my alias', 200, [
      'P-Preferred-Identity: <sip:alice.smith@example.com>',
    ]);
    assert.equal(own.exitCode, 0, own.stdout);
    const number = await send('alice', 'sip:bob@example.com', 'as my number', 200, [
      'P-Preferred-Identity: "Alice" <tel:+1-555-1234>',
    ]);
    assert.equal(number.exitCode, 0, number.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const [msg, byNumber] = receivedMessages(got.messages);
    assert.equal(msg?.header('P-Asserted-Identity'), '<sip:alice.smith@example.com>');
    assert.equal(msg?.header('P-Preferred-Identity'), undefined, 'the preference is not passed on');
    assert.equal(byNumber?.header('P-Asserted-Identity'), '<tel:+1-555-1234>');

    for (const foreign of [
      '<sip:bob.b@example.com>',
      '<sip:carol@example.com>',
      '<tel:+15559999>',
      '<pres:alice@example.com>',
    ]) {
      const r = await send('alice', 'sip:bob@example.com', 'as someone else', 403, [
        `P-Preferred-Identity: ${foreign}`,
      ]);
      assert.equal(r.exitCode, 0, `${foreign}: ${r.stdout}`);
      assert.match(r.messages, /SIP\/2\.0 403 Forbidden Preferred Identity/);
    }
  });

  it("gives alice's presence to a SUBSCRIBE for her alias and for her number, with rules naming the watcher by pres: alias", async () => {
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'alice', pw('alice'));
    const put = await xcap.put(
      '/xcap-root/pres-rules/users/sip:alice@example.com/index',
      RULES,
      'application/auth-policy+xml',
    );
    assert.ok(put.status === 200 || put.status === 201, put.body);
    const pub = await stack.sipp(
      {
        name: 'publish-alice',
        xml: publisherScenario([{ kind: 'initial', basic: 'open', note: 'at the desk', expires: 600, expect: 200 }]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);

    for (const [target, scheme] of [
      ['alice.smith', 'sip'],
      ['+15551234', 'tel'],
    ] as const) {
      let xml = subscriberScenario({ event: 'presence', accept: 'application/pidf+xml' });
      if (scheme === 'tel') xml = xml.replaceAll('sip:[$target]@[$domain]', 'tel:[$target]');
      const sub = await stack.sipp({ name: 'sub-bob', xml }, { set: { user: 'bob', target }, args: auth('bob') });
      assert.equal(sub.exitCode, 0, `${target}: ${sub.stdout}`);
      const first = notifies(sub)[0]!;
      assert.match(first, /Subscription-State: active/, target);
      assert.match(first, /<basic>open<\/basic>/, target);
      assert.match(first, /at the desk/, target);
      assert.match(first, /entity="sip:alice@example\.com"/, target);
    }
  });

  it('sends a URI-list MESSAGE to recipients named by im:, tel: and pres: URIs: one copy per user', async () => {
    const { uas } = await online('alice', 1);
    const { contentType, body } = buildRecipientListMessage({
      recipients: [{ uri: 'im:alice.smith@example.com' }, { uri: 'tel:+15551234' }, { uri: 'pres:carol@example.com' }],
      message: { contentType: 'text/plain', body: 'to both of you' },
    });
    const r = await send(
      'bob',
      'sip:im-exploder@example.com',
      body,
      202,
      ['Require: recipient-list-message'],
      contentType,
    );
    assert.equal(r.exitCode, 0, r.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.equal(receivedMessages(got.messages)[0]?.body, 'to both of you');
    // carol is offline: her copy is stored for her, and alice's two identities made one copy
    const carol = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'carol', pw('carol'));
    const stored = await eventually(
      async () => {
        const list = await carol.get('/im/users/sip:carol@example.com/deferred');
        const messages = (JSON.parse(list.body) as { messages: unknown[] }).messages;
        return messages.length > 0 ? messages : undefined;
      },
      5000,
      "carol's stored copy",
    );
    assert.equal(stored.length, 1);
    // the copies' charging records (terminating, same Call-ID): one for alice, one for carol
    const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
    const copies = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId && c.roleOfNode === 'terminating');
        return l.length >= 2 ? l : undefined;
      },
      5000,
      'the copies charged',
    );
    await sleep(500);
    const all = stack.cdrLines().filter((c) => c.sessionId === callId && c.roleOfNode === 'terminating');
    assert.equal(
      all.filter((c) => JSON.stringify(c).includes('sip:alice@example.com')).length,
      1,
      `one copy for alice, named twice: ${JSON.stringify(copies)}`,
    );
    assert.equal(all.filter((c) => JSON.stringify(c).includes('sip:carol@example.com')).length, 1);
  });

  it("applies a removed alias at once (Kamailio's cache of identities is emptied on the change)", async () => {
    assert.equal((await stack.provision('add-alias', 'alice', 'ally')).code, 0);
    const { uas } = await online('alice', 1);
    const before = await send('bob', 'sip:ally@example.com', 'to ally', 200);
    assert.equal(before.exitCode, 0, before.stdout);
    assert.equal((await uas).exitCode, 0);
    assert.equal((await stack.provision('remove-alias', 'alice', 'ally')).code, 0);
    // well within the cache's 60 s: nobody is ally any more
    const after = await send('bob', 'sip:ally@example.com', 'to ally again', 404);
    assert.equal(after.exitCode, 0, after.stdout);
  });

  it('refuses a pres: or im: Request-URI with 416 (RFC 3861: the sender resolves them to SIP first)', async () => {
    for (const scheme of ['im', 'pres']) {
      const r = await stack.sipp(
        messageScenario({ final: 416, body: 'x', ruri: `${scheme}:[$to]@[$domain]`, challenged: false }),
        { set: { user: 'bob', to: 'alice' } },
      );
      assert.equal(r.exitCode, 0, `${scheme}: ${r.stdout}`);
    }
  });

  it('registers a user under an alias: one registration for every public identity (mirror, reg event), MESSAGEs to each reach it; another user may not register it', async () => {
    assert.equal((await stack.provision('add', 'erin', '--password', pw('erin'), '--tel', '+15559876')).code, 0);
    assert.equal((await stack.provision('add-alias', 'erin', 'erin.e')).code, 0);
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 30000, args: ['-m', '3'] });
    await sleep(300);
    const reg = await stack.sipp(registerAs(200), {
      set: { reg_as: 'erin.e', ct_port: String(port) },
      args: auth('erin'),
    });
    assert.equal(reg.exitCode, 0, `${reg.stdout}\n${reg.messages}`);
    // the 200 lists the binding under the alias it was asked for
    assert.match(reg.messages, new RegExp(`SIP/2\\.0 200[^]*Contact: <sip:dev@127\\.0\\.0\\.1:${port}>`));

    // and every public identity of the set (RFC 7315 P-Associated-URI), the name first
    assert.match(
      reg.messages,
      /SIP\/2\.0 200[^]*P-Associated-URI: <sip:erin@example\.com>, <sip:erin\.e@example\.com>, <tel:\+15559876>/,
    );

    // the mirror has it under the user's own address of record
    const state = await eventually(
      async () => {
        const r = await stack.admin('GET', '/users/erin/state');
        return (r.json.registrations as unknown[]).length > 0 ? r : undefined;
      },
      5000,
      "erin's registration in the mirror",
    );
    assert.deepEqual(
      (state.json.registrations as Array<{ contact: string }>).map((r) => r.contact),
      [`sip:dev@127.0.0.1:${port}`],
    );

    // the reg event, subscribed through the alias, shows the whole implicit set with the contact
    const sub = await stack.sipp(
      { name: 'sub-reg', xml: subscriberScenario({ event: 'reg', accept: 'application/reginfo+xml' }) },
      { set: { user: 'erin', target: 'erin.e' }, args: auth('erin'), timeoutMs: 20000 },
    );
    assert.equal(sub.exitCode, 0, `${sub.stdout}\n${sub.messages}`);
    const body = /(<\?xml[\s\S]*?<\/reginfo>)/.exec(sub.messages)?.[1];
    assert.ok(body, sub.messages);
    const info = parseReginfo(body);
    assert.equal(info.aor, 'sip:erin@example.com');
    assert.equal(info.registrationState, 'active');
    assert.deepEqual(
      info.contacts.map((c) => c.uri),
      [`sip:dev@127.0.0.1:${port}`],
    );
    assert.deepEqual(info.implicit, ['sip:erin.e@example.com', 'tel:+15559876']);

    // every identity reaches the one contact
    for (const [i, ruri] of ['sip:erin@example.com', 'sip:erin.e@example.com', 'tel:+15559876'].entries()) {
      const r = await send('bob', ruri, `to erin ${i}`, 200);
      assert.equal(r.exitCode, 0, `${ruri}: ${r.stdout}`);
    }
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.deepEqual(
      receivedMessages(got.messages).map((m) => m.body),
      ['to erin 0', 'to erin 1', 'to erin 2'],
    );

    // her number as sip:...;user=phone registers the same way: a second contact of the one AoR
    const byNumber = stack.sippPort();
    const viaTel = await stack.sipp(registerAs(200, ';user=phone'), {
      set: { reg_as: '+15559876', ct_port: String(byNumber) },
      args: auth('erin'),
    });
    assert.equal(viaTel.exitCode, 0, `${viaTel.stdout}\n${viaTel.messages}`);
    const both = await eventually(
      async () => {
        const r = await stack.admin('GET', '/users/erin/state');
        const contacts = (r.json.registrations as Array<{ contact: string }>).map((c) => c.contact).sort();
        return contacts.length === 2 ? contacts : undefined;
      },
      5000,
      "erin's second contact in the mirror",
    );
    assert.deepEqual(both, [`sip:dev@127.0.0.1:${byNumber}`, `sip:dev@127.0.0.1:${port}`].sort());

    // bob authenticating for erin's alias: not one of his identities
    const theft = await stack.sipp(registerAs(403), {
      set: { reg_as: 'erin.e', ct_port: String(stack.sippPort()) },
      args: auth('bob'),
    });
    assert.equal(theft.exitCode, 0, `${theft.stdout}\n${theft.messages}`);
  });
});
