/**
 * Presence Server end to end, real Kamailio + AS + sipp on loopback: publication (RFC 3903)
 * and its errors, subscriptions shaped by the presentity's pres-rules set over XCAP (allow,
 * confirm, polite-block, block), watcher info, a rule change taking effect at once,
 * expiry with reason=timeout, the network presence source, and a restart of the AS.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { ROOT, TestStack, eventually, portsFrom, type SippResult } from './stack.js';

const PW = (u: string) => `${u}-pw-presence`;
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const RULES = (extra = '') => `<?xml version="1.0" encoding="UTF-8"?>
<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cp:rule id="friends">
    <cp:conditions><cp:identity><cp:one id="sip:bob@example.com"/>${extra}</cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions>
    <cp:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-devices><pr:all-devices/></pr:provide-devices>
      <pr:provide-note>true</pr:provide-note>
    </cp:transformations>
  </cp:rule>
  <cp:rule id="polite">
    <cp:conditions><cp:identity><cp:one id="sip:dave@example.com"/></cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>polite-block</pr:sub-handling></cp:actions>
  </cp:rule>
  <cp:rule id="blocked">
    <cp:conditions><cp:identity><cp:one id="sip:erin@example.com"/></cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>block</pr:sub-handling></cp:actions>
  </cp:rule>
</cp:ruleset>`;
const RULES_DOC = '/xcap-root/pres-rules/users/sip:alice@example.com/index';

/** NOTIFYs a sipp run received, in order: headers and body text each. */
function notifies(run: SippResult): string[] {
  return [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}

describe('Presence Server through Kamailio', () => {
  let stack: TestStack;
  let alice: XcapClient;
  const auth = (u: string) => ['-au', u, '-ap', PW(u)];

  before(async () => {
    stack = await TestStack.start(portsFrom(5560), {
      PRESENCE_MIN_EXPIRES: '2',
      PRESENCE_EXTERNAL_TOKEN: 'external-token-123',
    });
    for (const u of USERS) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
    alice = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'alice', PW('alice'));
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('takes a publication through its life: initial, refresh, modify, remove (SIP-ETag each time)', async () => {
    const run = await stack.sipp(
      {
        name: 'publish-life',
        xml: publisherScenario([
          { kind: 'initial', basic: 'open', note: 'first', expect: 200 },
          { kind: 'refresh', expect: 200 },
          { kind: 'modify', basic: 'closed', expect: 200 },
          { kind: 'stale', expect: 412 },
          { kind: 'remove', expect: 200 },
        ]),
      },
      { set: { user: 'frank' }, args: auth('frank') },
    );
    assert.equal(run.exitCode, 0, run.stdout);
    const etags = [...run.messages.matchAll(/SIP-ETag: (\S+)/g)].map((m) => m[1]);
    // initial, refresh and modify each get a new tag; the removal gets none
    assert.equal(etags.length, 3, run.messages);
    assert.equal(new Set(etags).size, 3, 'a new entity tag for every successful PUBLISH');
  });

  it('answers PUBLISH errors with the specific code', async () => {
    const cases: Array<[string, Parameters<typeof publisherScenario>[0][number]]> = [
      ['unknown event', { kind: 'initial', event: 'dialog', expect: 489 }],
      ['wrong content type', { kind: 'initial', contentType: 'text/plain', rawBody: 'open', expect: 415 }],
      ['not well-formed', { kind: 'initial', rawBody: '<presence xmlns="urn:ietf:params:xml:ns:pidf"', expect: 400 }],
      // (sipp reads "[...]" as its own keywords, so the internal-subset form of this attack is
      // covered by the XML unit tests; an external DTD is refused the same way)
      [
        'DOCTYPE',
        {
          kind: 'initial',
          rawBody:
            '<?xml version="1.0"?><!DOCTYPE presence SYSTEM "http://127.0.0.1:1/evil.dtd"><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:x@y"/>',
          expect: 400,
        },
      ],
      ['too brief', { kind: 'initial', basic: 'open', expires: 1, expect: 423 }],
      ['unknown entity tag', { kind: 'stale', expect: 412 }],
    ];
    for (const [what, step] of cases) {
      const run = await stack.sipp(
        { name: 'publish-error', xml: publisherScenario([step]) },
        { set: { user: 'frank' }, args: auth('frank') },
      );
      assert.equal(run.exitCode, 0, `${what}: ${run.stdout}`);
    }
  });

  it("shapes each watcher's view by pres-rules: allow, confirm (pending), polite-block, block (403)", async () => {
    assert.equal((await alice.put(RULES_DOC, RULES(), 'application/auth-policy+xml')).status, 201);
    const pub = await stack.sipp(
      {
        name: 'publish-alice',
        xml: publisherScenario([{ kind: 'initial', basic: 'open', note: 'in a meeting', expires: 600, expect: 200 }]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);

    const bob = await stack.sipp(
      { name: 'sub-bob', xml: subscriberScenario({ event: 'presence', accept: 'application/pidf+xml' }) },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob') },
    );
    assert.equal(bob.exitCode, 0, bob.stdout);
    const bobSaw = notifies(bob);
    assert.match(bobSaw[0]!, /Subscription-State: active;expires=\d+/);
    assert.match(bobSaw[0]!, /<basic>open<\/basic>/);
    assert.match(bobSaw[0]!, /in a meeting/);

    const dave = await stack.sipp(
      { name: 'sub-dave', xml: subscriberScenario({ event: 'presence' }) },
      { set: { user: 'dave', target: 'alice' }, args: auth('dave') },
    );
    assert.equal(dave.exitCode, 0, dave.stdout);
    const daveSaw = notifies(dave)[0]!;
    assert.match(daveSaw, /Subscription-State: active/);
    assert.match(daveSaw, /<basic>closed<\/basic>/, 'polite-block looks like an offline user');
    assert.doesNotMatch(daveSaw, /meeting/);

    const erin = await stack.sipp(
      { name: 'sub-erin', xml: subscriberScenario({ event: 'presence', expectFinal: 403 }) },
      { set: { user: 'erin', target: 'alice' }, args: auth('erin') },
    );
    assert.equal(erin.exitCode, 0, erin.stdout);

    const carol = await stack.sipp(
      { name: 'sub-carol', xml: subscriberScenario({ event: 'presence' }) },
      { set: { user: 'carol', target: 'alice' }, args: auth('carol') },
    );
    assert.equal(carol.exitCode, 0, carol.stdout);
    const [carolSaw, carolFinal] = notifies(carol);
    assert.match(carolSaw!, /Subscription-State: pending/);
    assert.doesNotMatch(carolSaw!, /<presence/, 'a pending watcher learns nothing');
    // nor when she leaves: the final NOTIFY of her un-SUBSCRIBE carries no document either
    assert.match(carolFinal!, /Subscription-State: terminated/);
    assert.doesNotMatch(carolFinal!, /<presence|meeting/, 'a pending watcher learns nothing as it leaves');
  });

  it('tells the presentity who watches (winfo) and lets a rule change approve a pending watcher at once', async () => {
    // carol waits, pending, for one more NOTIFY: the one her approval brings
    const carol = stack.sipp(
      { name: 'sub-carol-wait', xml: subscriberScenario({ event: 'presence', more: 1 }) },
      { set: { user: 'carol', target: 'alice' }, args: auth('carol'), timeoutMs: 30000 },
    );
    await stack.sippLogged(carol.dir, /SUBSCRIBED/);
    // two more NOTIFYs: carol approved, then carol gone (she un-SUBSCRIBEs when done)
    const winfo = stack.sipp(
      {
        name: 'winfo-alice',
        xml: subscriberScenario({ event: 'presence.winfo', accept: 'application/watcherinfo+xml', more: 2 }),
      },
      { set: { user: 'alice', target: 'alice' }, args: auth('alice'), timeoutMs: 30000 },
    );
    await stack.sippLogged(winfo.dir, /SUBSCRIBED/);

    const current = await alice.get(RULES_DOC);
    const put = await alice.put(
      RULES_DOC,
      RULES('<cp:one id="sip:carol@example.com"/>'),
      'application/auth-policy+xml',
      { 'If-Match': `"${current.etag}"` },
    );
    assert.equal(put.status, 200);

    const c = await carol;
    assert.equal(c.exitCode, 0, c.stdout);
    const carolSaw = notifies(c);
    assert.match(carolSaw[0]!, /Subscription-State: pending/);
    assert.match(carolSaw[1]!, /Subscription-State: active/);
    assert.match(carolSaw[1]!, /in a meeting/, 'approved: the document arrives with the activation');

    const w = await winfo;
    assert.equal(w.exitCode, 0, w.stdout);
    const wSaw = notifies(w);
    assert.match(wSaw[0]!, /state="full"/);
    assert.match(wSaw[0]!, /status="pending" event="subscribe"[^>]*>sip:carol@example\.com</);
    assert.match(wSaw[1]!, /state="partial"/);
    assert.match(wSaw[1]!, /status="active" event="approved"[^>]*>sip:carol@example\.com</);
    assert.match(wSaw[2]!, /status="terminated" event="timeout"[^>]*>sip:carol@example\.com</);
  });

  it('notifies an allowed watcher of a change, and ends a subscription on time with reason=timeout', async () => {
    const bob = stack.sipp(
      {
        name: 'sub-bob-short',
        xml: subscriberScenario({ event: 'presence', expires: 4, more: 2, unsubscribe: false }),
      },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob'), timeoutMs: 30000 },
    );
    await stack.sippLogged(bob.dir, /SUBSCRIBED/);
    const pub = await stack.sipp(
      {
        name: 'publish-change',
        xml: publisherScenario([{ kind: 'initial', basic: 'closed', note: 'gone home', expires: 600, expect: 200 }]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);
    const run = await bob;
    assert.equal(run.exitCode, 0, run.stdout);
    const saw = notifies(run);
    assert.match(saw[1]!, /gone home/);
    assert.match(saw[2]!, /Subscription-State: terminated;reason=timeout/);
  });

  it('makes registration state a presence source of its own (the network tuple)', async () => {
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'frank', ct_port: '5999', expires: '300' },
      args: auth('frank'),
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const doc = await eventually(
      async () => {
        const r = await fetch(`http://127.0.0.1:${stack.ports.isc}/presence/sip:frank@example.com`, {
          headers: { authorization: 'Bearer external-token-123' },
        });
        const t = await r.text();
        return /<tuple id="[^"]*network"/.test(t) && /<basic>open<\/basic>/.test(t) ? t : undefined;
      },
      5000,
      'network tuple open',
    );
    assert.match(doc, /entity="sip:frank@example\.com"/);
  });

  it('takes an external source over HTTP, composed with the others', async () => {
    const put = await fetch(`http://127.0.0.1:${stack.ports.isc}/presence/sip:frank@example.com/sources/calendar`, {
      method: 'PUT',
      headers: { authorization: 'Bearer external-token-123', 'content-type': 'application/pidf+xml', expires: '600' },
      body: '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:frank@example.com"><tuple id="cal"><status><basic>closed</basic></status><note>On holiday</note></tuple></presence>',
    });
    assert.equal(put.status, 204);
    const bad = await fetch(`http://127.0.0.1:${stack.ports.isc}/presence/sip:frank@example.com/sources/calendar`, {
      method: 'PUT',
      headers: { authorization: 'Bearer wrong', 'content-type': 'application/pidf+xml' },
      body: '<x/>',
    });
    assert.equal(bad.status, 401);
    const doc = await (
      await fetch(`http://127.0.0.1:${stack.ports.isc}/presence/sip:frank@example.com`, {
        headers: { authorization: 'Bearer external-token-123' },
      })
    ).text();
    assert.match(doc, /On holiday/);
    assert.match(doc, /network/);
  });

  it('refuses a SUBSCRIBE whose Contact is not one SIP URI with 400, and keeps nothing of it', async () => {
    const initial = () =>
      stack
        .metrics()
        .then((m) => Number(/^ims_as_subscriptions_total\{event="presence",kind="initial"\} (\d+)/m.exec(m)?.[1] ?? 0));
    const before = await initial();
    for (const [i, contact] of ['<<garbage>>', '*', '<mailto:frank@example.com>'].entries()) {
      const r = await stack.sipp(
        { name: `sub-bad-contact-${i}`, xml: subscriberScenario({ event: 'presence', contact, expectFinal: 400 }) },
        { set: { user: 'frank', target: 'alice' }, args: auth('frank') },
      );
      assert.equal(r.exitCode, 0, `${contact}: ${r.stdout}\n${r.messages}`);
      assert.match(r.messages, /SIP\/2\.0 400 Bad Contact/, contact);
    }
    assert.equal(await initial(), before, 'no subscription was made');
  });

  it('refuses with 403 a SUBSCRIBE whose Contact is a third party (another host, another user), and accepts a contact the watcher registered', async () => {
    const refused = () =>
      stack
        .metrics()
        .then((m) => Number(/^ims_as_subscribe_target_refused_total\{event="presence"\} (\d+)/m.exec(m)?.[1] ?? 0));
    const initial = () =>
      stack
        .metrics()
        .then((m) => Number(/^ims_as_subscriptions_total\{event="presence",kind="initial"\} (\d+)/m.exec(m)?.[1] ?? 0));
    const before = await initial();
    for (const [i, contact] of ['<sip:victim@192.0.2.1:5060>', '<sip:bob@example.com>'].entries()) {
      const r = await stack.sipp(
        { name: `sub-third-party-${i}`, xml: subscriberScenario({ event: 'presence', contact, expectFinal: 403 }) },
        { set: { user: 'frank', target: 'alice' }, args: auth('frank') },
      );
      assert.equal(r.exitCode, 0, `${contact}: ${r.stdout}\n${r.messages}`);
      assert.match(
        r.messages,
        /SIP\/2\.0 403 Forbidden[\s\S]*Warning: 399 - "Contact (is neither the source address nor a registered contact|names another user)"/,
        contact,
      );
    }
    assert.equal(await initial(), before, 'no subscription was made');
    assert.equal(await refused(), 2);
    // a client behind NAT subscribes with the Contact it registered: that address is its own
    const register = readFileSync(join(ROOT, 'test/e2e/scenarios/register.xml'), 'utf8').replace(
      /\[local_ip\]:\[\$ct_port\]/g,
      '192.0.2.44:[$ct_port]',
    );
    const reg = await stack.sipp(
      { name: 'register-nat', xml: register },
      { final: 200, set: { user: 'frank', ct_port: '5062', expires: '300' }, args: auth('frank') },
    );
    assert.equal(reg.exitCode, 0, reg.stdout);
    const own = subscriberScenario({
      event: 'presence',
      contact: '<sip:frank@192.0.2.44:5062>',
      expectFinal: 299,
    }).replace('response="299"', 'response="200"');
    // (the registration event reaches the AS a moment after the REGISTER's 200)
    await eventually(
      async () => {
        // (to carol: a watcher left at alice would show in her watcher info below)
        const r = await stack.sipp(
          { name: 'sub-registered-contact', xml: own },
          { set: { user: 'frank', target: 'carol' }, args: auth('frank') },
        );
        return r.exitCode === 0 ? r : undefined;
      },
      5000,
      'SUBSCRIBE with the registered contact accepted',
    );
    assert.equal(await initial(), before + 1);
  });

  it('shows a watcher who asks for privacy as anonymous, and applies anonymous-request rules to it', async () => {
    const anonRule = `<cp:rule id="anonymous">
    <cp:conditions><ocp:anonymous-request xmlns:ocp="urn:oma:xml:xdm:common-policy"/></cp:conditions>
    <cp:actions><pr:sub-handling>polite-block</pr:sub-handling></cp:actions>
  </cp:rule>
</cp:ruleset>`;
    const put = await alice.put(RULES_DOC, RULES().replace('</cp:ruleset>', anonRule), 'application/auth-policy+xml');
    assert.ok(put.status === 200 || put.status === 201, put.body);
    // frank has no rule of his own: as himself he would wait (pending); asking for privacy,
    // the anonymous-request rule answers for him (polite-block: a closed document)
    const frank = await stack.sipp(
      {
        name: 'sub-frank-private',
        xml: subscriberScenario({ event: 'presence', expires: 8, unsubscribe: false, headers: ['Privacy: id'] }),
      },
      { set: { user: 'frank', target: 'alice' }, args: auth('frank') },
    );
    assert.equal(frank.exitCode, 0, frank.stdout);
    const [frankSaw] = notifies(frank);
    assert.match(frankSaw!, /Subscription-State: active/);
    assert.match(frankSaw!, /<basic>closed<\/basic>/);
    const w = await stack.sipp(
      {
        name: 'winfo-alice-anon',
        xml: subscriberScenario({ event: 'presence.winfo', accept: 'application/watcherinfo+xml' }),
      },
      { set: { user: 'alice', target: 'alice' }, args: auth('alice') },
    );
    assert.equal(w.exitCode, 0, w.stdout);
    const [list] = notifies(w);
    assert.match(list!, /status="active"[^>]*>sip:anonymous@anonymous\.invalid</);
    assert.doesNotMatch(list!, /frank/, 'the presentity does not learn who it is');
  });

  it("notifies a watcher whose Contact is its GRUU (RFC 5627) through the core's location service", async () => {
    // erin registers with an instance id and gets a public GRUU from Kamailio's registrar
    const uuid = 'urn:uuid:5b0e2f64-9c3a-4b6e-8f21-7d3c1e0a9b42';
    const port = stack.sippPort();
    const register = readFileSync(join(ROOT, 'test/e2e/scenarios/register.xml'), 'utf8').replace(
      /Contact: <sip:\[\$user\]@\[local_ip\]:\[\$ct_port\]>/g,
      `Contact: <sip:[$user]@[local_ip]:[$ct_port]>;+sip.instance="<${uuid}>"\n      Supported: gruu`,
    );
    const reg = await stack.sipp(
      { name: 'register-gruu', xml: register },
      { final: 200, set: { user: 'erin', ct_port: String(port), expires: '300' }, args: auth('erin') },
    );
    assert.equal(reg.exitCode, 0, reg.stdout);
    const gruu = `sip:erin@example.com;gr=${uuid}`;
    assert.ok(reg.messages.includes(`pub-gruu="${gruu}"`), reg.messages);
    // then watches her own presence from that port, naming the GRUU as her Contact: every
    // NOTIFY is addressed to the GRUU, which only the location service resolves
    const sub = await stack.sipp(
      { name: 'sub-erin-gruu', xml: subscriberScenario({ event: 'presence', contact: `<${gruu}>` }) },
      { port, set: { user: 'erin', target: 'erin' }, args: auth('erin') },
    );
    assert.equal(sub.exitCode, 0, `${sub.stdout}\n${sub.messages.slice(-3000)}`);
    const [first, final] = notifies(sub);
    assert.match(first!, /Subscription-State: active/);
    assert.match(final!, /Subscription-State: terminated/);
    // (the location service put the registered contact in the Request-URI, as RFC 5627 says)
    assert.match(sub.messages, new RegExp(`NOTIFY sip:erin@127\\.0\\.0\\.1:${port} SIP/2\\.0`));
  });

  it('every frame Kamailio sent so far matched schemas/isc-*.schema.json', async () => {
    const m = await stack.metrics();
    assert.match(m, /^ims_as_isc_decisions_total\{/m, 'requests were decided');
    assert.doesNotMatch(m, /^ims_as_isc_frames_refused_total\{[^}]*\} [1-9]/m);
    // live state read from the store at the scrape, and the standard process metrics
    for (const event of ['presence', 'presence.winfo', 'reg', 'xcap-diff'])
      assert.match(
        m,
        new RegExp(`^ims_as_subscriptions_active\\{event="${event.replace('.', '\\.')}"\\} \\d+$`, 'm'),
        event,
      );
    assert.match(m, /^ims_as_publications_live \d+$/m);
    assert.match(m, /^process_resident_memory_bytes \d+/m);
  });

  it('keeps subscriptions across an AS restart: the next change is still notified', async () => {
    const bob = stack.sipp(
      { name: 'sub-bob-restart', xml: subscriberScenario({ event: 'presence', more: 1 }) },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob'), timeoutMs: 40000 },
    );
    await stack.sippLogged(bob.dir, /SUBSCRIBED/);
    await stack.stopAs();
    await stack.startAs();
    await eventually(
      async () => (/ims_as_isc_event_stream_up 1/.test(await stack.metrics()) ? true : undefined),
      10000,
      'event stream back',
    );
    const pub = await stack.sipp(
      {
        name: 'publish-after-restart',
        xml: publisherScenario([
          { kind: 'initial', basic: 'open', note: 'back after restart', expires: 600, expect: 200 },
        ]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);
    const run = await bob;
    assert.equal(run.exitCode, 0, run.stdout);
    assert.match(notifies(run)[1]!, /back after restart/);
  });
});

describe('a composed presence document over presence.maxComposedBytes', () => {
  const LIMIT = 4096;
  let stack: TestStack;
  const auth = (u: string) => ['-au', u, '-ap', PW(u)];

  before(async () => {
    stack = await TestStack.start(portsFrom(7160), {
      PRESENCE_DEFAULT_SUB_HANDLING: 'allow',
      PRESENCE_MAX_COMPOSED_BYTES: String(LIMIT),
    });
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('reaches the watcher reduced within the limit (notes dropped, every tuple and its basic status kept), counted', async () => {
    // three devices of alice publish, each with a long note: composed, about 9 KB
    for (let i = 0; i < 3; i++) {
      const pub = await stack.sipp(
        {
          name: `publish-big-${i}`,
          xml: publisherScenario([
            { kind: 'initial', basic: i === 1 ? 'open' : 'closed', note: `device ${i} `.repeat(300), expect: 200 },
          ]),
        },
        { set: { user: 'alice' }, args: auth('alice') },
      );
      assert.equal(pub.exitCode, 0, pub.stdout);
    }
    const sub = await stack.sipp(
      {
        name: 'sub-big',
        xml: subscriberScenario({ event: 'presence', contact: '<sip:[$user]@[local_ip]:[local_port];transport=udp>' }),
      },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob') },
    );
    assert.equal(sub.exitCode, 0, `${sub.stdout}\n${sub.messages}`);
    const [first] = notifies(sub);
    const body = first!.slice(first!.indexOf('<?xml'));
    assert.ok(Buffer.byteLength(body.trimEnd(), 'utf8') <= LIMIT, `body of ${Buffer.byteLength(body, 'utf8')} bytes`);
    assert.equal((body.match(/<tuple /g) ?? []).length, 3, body);
    assert.match(body, /<basic>open<\/basic>/);
    assert.doesNotMatch(body, /<note/);
    assert.match(await stack.metrics(), /^ims_as_presence_document_reductions_total\{step="notes"\} [1-9]/m);
  });

  // (Kamailio's udp_mtu switch applies to what it relays, not to the NOTIFYs t_uac_send
  // creates for the AS: a Contact without transport gets UDP, kamailio-cfg/README.md)
  it('sends a NOTIFY above 1,300 bytes by TCP to a watcher whose Contact asks for TCP', async () => {
    const pub = await stack.sipp(
      {
        name: 'publish-mid',
        xml: publisherScenario([{ kind: 'initial', basic: 'open', note: 'medium '.repeat(300), expect: 200 }]),
      },
      { set: { user: 'bob' }, args: auth('bob') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);
    // the watcher subscribes over UDP and names TCP in its Contact (where it listens too)
    const port = stack.sippPort();
    let notify = '';
    const server = createServer((conn) => {
      conn.on('data', (d) => {
        notify += d.toString('utf8');
        const head = notify.split('\r\n\r\n')[0]!;
        const lines = head.split('\r\n').filter((l) => /^(Via|From|To|Call-ID|CSeq):/i.test(l));
        if (/^NOTIFY /.test(notify) && /Content-Length: *\d+/i.test(head))
          conn.write(`SIP/2.0 200 OK\r\n${lines.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`);
      });
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const xml = subscriberScenario({
        event: 'presence',
        contact: '<sip:[$user]@[local_ip]:[local_port];transport=tcp>',
        expectFinal: 299,
      }).replace('response="299"', 'response="200"');
      const sub = await stack.sipp(
        { name: 'sub-tcp-notify', xml },
        { port, set: { user: 'alice', target: 'bob' }, args: auth('alice') },
      );
      assert.equal(sub.exitCode, 0, `${sub.stdout}\n${sub.messages}`);
      await eventually(() => (/<\/presence>/.test(notify) ? true : undefined), 5000, 'the NOTIFY over TCP');
    } finally {
      server.close();
    }
    assert.match(notify, /^NOTIFY sip:alice@127\.0\.0\.1:\d+;transport=tcp SIP\/2\.0\r\nVia: SIP\/2\.0\/TCP /);
    assert.ok(Buffer.byteLength(notify, 'utf8') > 1300);
    assert.match(notify, /medium medium/);
  });
});
