/**
 * Interop with a real SIP client: two baresip user agents (Debian's baresip-core 1.0.0)
 * register through Kamailio, PUBLISH their presence and SUBSCRIBE to each other (contacts
 * with ;presence=p2p), everything on 127.0.0.1. The test checks what the core and the AS saw
 * (registration events, PUBLISH and subscription CDRs, the composed document read through the
 * external-source API), then sets alice offline from baresip's command line
 * (/presence_offline, which PUBLISHes basic "closed") and checks that the composed document
 * follows and that bob's baresip, told by NOTIFY, reports alice's new status.
 *
 * Then instant messaging (pager mode) through Kamailio and the IM server: each baresip sends a
 * text/plain MESSAGE to the other (/message <text> of the contact module: to the current
 * contact, the buddy, the only one) and the other shows it (menu module: `<from>: "<text>"`);
 * then bob's baresip is stopped (it un-REGISTERs), alice's message is stored (202), and it is
 * delivered when bob's baresip starts and registers again. Charging records are checked for
 * each message (service im, both roles, delivered / deferred, then the deferred delivery).
 *
 * What baresip 1.0.0 does, and what the test allows for:
 *  - Its PIDF puts <dm:person> before <tuple> (not valid against RFC 3863's schema); the AS
 *    takes it and composes a valid document (tuples first).
 *  - At start its publisher sends TWO initial PUBLISHes (one from a 10 ms start timer, one on
 *    REGISTER success) and keeps only the entity tag of the last answer; the other
 *    publication is orphaned and lives until it expires. Hence a short publish interval
 *    (pubint) and a low PRESENCE_MIN_EXPIRES: the test waits until the orphan has expired
 *    (the document then holds one baresip tuple) before changing the status.
 *  - Its subscriber reads the first <basic> of a NOTIFY (and <rpid:away/>, <rpid:busy/>),
 *    and prints "<uri> changed status from X to Y" when a known status changes.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseXml } from '../../as/src/xml/xml-tree.js';
import { pidfManipulationUsage } from '../../as/src/xdm/usages/pidf-manipulation.js';
import { PRES_RULES_TYPE, allowWatchers } from '../helpers/pres-rules.js';
import { endChild } from '../helpers/end-child.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { DOMAIN, TestStack, eventually, portsFrom } from './stack.js';

const TOKEN = 'interop-baresip-token';
/** baresip's publish interval (s): also the lifetime of the publication it orphans at start. */
const PUBINT = 4;
const PW = (u: string) => `${u}-pw-interop`;
const aor = (u: string) => `sip:${u}@${DOMAIN}`;
const rulesDoc = (u: string) => `/xcap-root/pres-rules/users/${aor(u)}/index`;

const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** One SIP message of baresip's trace (-s): direction line, then the message. */
interface Traced {
  sent: boolean;
  text: string;
}

/** One headless baresip: its own config directory and SIP port, commands on stdin, output kept. */
class Baresip {
  readonly dir: string;
  private child?: ChildProcess;
  private out = '';

  constructor(
    parent: string,
    readonly user: string,
    readonly port: number,
    readonly buddy: string,
    readonly proxyPort: number,
  ) {
    this.dir = join(parent, `baresip-${user}`);
  }

  start(): void {
    mkdirSync(this.dir, { recursive: true });
    // Only what is needed: the stdio UI (commands from our pipe), one codec, the aubridge audio
    // driver (no sound device is opened), accounts, contacts (also /message to the current
    // contact), menu (commands; prints the messages received) and presence.
    // No STUN/TURN/ICE, no uuid, no ctrl/http listeners. SIP bound to 127.0.0.1 only, the DNS
    // server on 127.0.0.1 too (never asked: the outbound proxy is an address).
    writeFileSync(
      join(this.dir, 'config'),
      [
        'poll_method epoll',
        `sip_listen 127.0.0.1:${this.port}`,
        'net_interface 127.0.0.1',
        'dns_server 127.0.0.1:53',
        'module_path /usr/lib/baresip/modules',
        'module stdio.so',
        'module g711.so',
        'module aubridge.so',
        'module_tmp account.so',
        'module_app contact.so',
        'module_app menu.so',
        'module_app presence.so',
        'audio_player aubridge,nil',
        'audio_source aubridge,nil',
        'audio_alert aubridge,nil',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(this.dir, 'accounts'),
      `<sip:${this.user}@${DOMAIN}>;auth_pass=${PW(this.user)};outbound="sip:127.0.0.1:${this.proxyPort};transport=udp";regint=600;pubint=${PUBINT}\n`,
    );
    writeFileSync(join(this.dir, 'contacts'), `"${this.buddy}" <${aor(this.buddy)}>;presence=p2p\n`);
    // -s: SIP trace on stdout (what baresip sent and received)
    const child = spawn('baresip', ['-f', this.dir, '-s'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stdin!.on('error', () => {}); // it may be gone when we write
    child.on('exit', (code, signal) => (this.out += `\n[baresip ${this.user} exited: ${code ?? signal}]\n`));
  }

  /** Everything it printed, colours removed. */
  get output(): string {
    return stripAnsi(this.out);
  }

  /** The SIP messages of its trace, in order (those printed after output offset `from`). */
  messages(from = 0): Traced[] {
    return this.output
      .slice(from)
      .split(/^#\n/m)
      .slice(1)
      .flatMap((block) => {
        const m = /^(?:UDP|TCP) (\S+) -> (\S+)\n([\s\S]*)$/.exec(block);
        return m ? [{ sent: m[1] === `127.0.0.1:${this.port}`, text: m[3]! }] : [];
      });
  }

  command(line: string): void {
    this.child?.stdin?.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    await endChild(this.child, (c) => c.kill('SIGTERM'), 3000); // baresip un-PUBLISHes, un-SUBSCRIBEs and un-REGISTERs, then exits
  }
}

const requestLine = (t: Traced) => t.text.split('\n', 1)[0]!;
const header = (t: Traced, name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(t.text)?.[1]?.trim();
const body = (t: Traced) =>
  t.text
    .split(/\n\r?\n/)
    .slice(1)
    .join('\n\n');
const statusOf = (t: Traced) => Number(/^SIP\/2\.0 (\d{3}) /.exec(requestLine(t))?.[1] ?? 0);
const isMessage = (t: Traced) => requestLine(t).startsWith('MESSAGE ');
/** The text a traced MESSAGE carries: its body, Content-Length long (baresip prints more after it). */
const messageText = (t: Traced) => body(t).slice(0, Number(header(t, 'Content-Length') ?? 0));
/** The contact URI in the last REGISTER `ua` sent that was not a removal (baresip 1.0.0: `sip:<user>-0x<address>@<ip>:<port>`). */
const registeredContact = (ua: Baresip, from = 0) => {
  const reg = ua
    .messages(from)
    .filter((m) => m.sent && requestLine(m).startsWith('REGISTER ') && !/;expires=0\b/.test(header(m, 'Contact') ?? ''))
    .at(-1);
  return reg ? /<([^>]+)>/.exec(header(reg, 'Contact') ?? '')?.[1] : undefined;
};
/** The responses to the MESSAGE with this Call-ID in a trace (received or sent). */
const answersTo = (msgs: Traced[], callId: string, sent: boolean) =>
  msgs.filter(
    (m) =>
      m.sent === sent &&
      statusOf(m) > 0 &&
      header(m, 'Call-ID') === callId &&
      / MESSAGE$/.test(header(m, 'CSeq') ?? ''),
  );

interface ComposedTuple {
  id: string;
  basic: string;
  contact?: string;
}

/** The tuples of a composed document, in document order. */
function tuplesOf(doc: string): ComposedTuple[] {
  return [...doc.matchAll(/<tuple id="([^"]+)">([\s\S]*?)<\/tuple>/g)].map((m) => {
    const contact = /<contact[^>]*>([^<]*)<\/contact>/.exec(m[2]!)?.[1];
    return {
      id: m[1]!,
      basic: /<basic>([^<]*)<\/basic>/.exec(m[2]!)?.[1] ?? '',
      ...(contact !== undefined ? { contact } : {}),
    };
  });
}

/** A composed document must be valid PIDF (RFC 3863 + RFC 4479): tuples, then the person. */
function assertValidComposed(doc: string): void {
  assert.deepEqual(pidfManipulationUsage.validate(parseXml(doc), { domain: DOMAIN }), [], doc);
  const lastTuple = doc.lastIndexOf('<tuple ');
  const person = doc.search(/<[A-Za-z0-9_-]+:person[ >]/);
  assert.ok(lastTuple > 0, `tuples in ${doc}`);
  if (person >= 0) assert.ok(person > lastTuple, `the person comes after the tuples: ${doc}`);
}

describe('interop: two baresip clients through Kamailio and the Presence Server', () => {
  let stack: TestStack;
  let alice: Baresip;
  let bob: Baresip;
  let failed = false;

  const composed = async (u: string): Promise<string> => {
    const r = await fetch(`http://127.0.0.1:${stack.ports.isc}/presence/${aor(u)}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: AbortSignal.timeout(3000),
    });
    const text = await r.text();
    assert.equal(r.status, 200, text);
    return text;
  };
  /** alice's document once it holds exactly one tuple her baresip published, with that basic status. */
  const aliceDocWith = async (basic: string, timeoutMs: number): Promise<string> => {
    let last = '';
    return eventually(
      async () => {
        const doc = (last = await composed('alice'));
        const own = tuplesOf(doc).filter((t) => t.contact === aor('alice'));
        return own.length === 1 && own[0]!.basic === basic ? doc : undefined;
      },
      timeoutMs,
      `alice's composed document with one baresip tuple "${basic}"`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${last}`);
    });
  };

  /**
   * `ua` sends `text` to its current contact (its buddy: the first and only one) with the menu's
   * /message command; resolves with the MESSAGE it sent and the final answer it got to it (a
   * digest challenge aside).
   */
  const chat = async (ua: Baresip, text: string) => {
    const from = ua.output.length;
    ua.command(`/message ${text}`);
    const sent = await eventually(
      () => ua.messages(from).find((m) => m.sent && isMessage(m) && messageText(m) === text),
      5000,
      `${ua.user}'s baresip sent the MESSAGE`,
    );
    const callId = header(sent, 'Call-ID')!;
    const answer = await eventually(
      () =>
        answersTo(ua.messages(from), callId, false).find(
          (m) => statusOf(m) >= 200 && statusOf(m) !== 401 && statusOf(m) !== 407,
        ),
      5000,
      `the final answer to ${ua.user}'s MESSAGE`,
    );
    return { sent, callId, answer };
  };
  /** The MESSAGE with this text from `sender` that `ua`'s baresip received (after output offset `from`). */
  const receivedBy = (ua: Baresip, sender: string, text: string, from: number, timeoutMs = 5000) =>
    eventually(
      () =>
        ua
          .messages(from)
          .find(
            (m) =>
              !m.sent && isMessage(m) && messageText(m) === text && header(m, 'From')?.includes(`<${aor(sender)}>`),
          ),
      timeoutMs,
      `${ua.user}'s baresip received "${text}" from ${sender}`,
    );
  const imCdrs = (callId: string) => stack.cdrLines().filter((c) => c.service === 'im' && c.sessionId === callId);
  const deferredFor = async (u: string) => {
    const r = await new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, u, PW(u)).get(`/im/users/${aor(u)}/deferred`);
    assert.equal(r.status, 200, r.body);
    return (
      JSON.parse(r.body) as { messages: Array<{ from: string; contentType: string; size: number; state: string }> }
    ).messages;
  };

  before(async () => {
    failed = true; // until set up
    stack = await TestStack.start(portsFrom(5660), { PRESENCE_EXTERNAL_TOKEN: TOKEN, PRESENCE_MIN_EXPIRES: '2' });
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
    for (const [u, watcher] of [
      ['alice', 'bob'],
      ['bob', 'alice'],
    ] as const) {
      const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, u, PW(u));
      assert.equal((await xcap.put(rulesDoc(u), allowWatchers(aor(watcher)), PRES_RULES_TYPE)).status, 201);
    }
    // baresip also listens for SIP/TLS on the port after its SIP port: two ports each
    const sipPort = () => {
      const p = stack.sippPort();
      stack.sippPort();
      return p;
    };
    alice = new Baresip(stack.dir, 'alice', sipPort(), 'bob', stack.ports.sip);
    bob = new Baresip(stack.dir, 'bob', sipPort(), 'alice', stack.ports.sip);
    alice.start();
    bob.start();
    failed = false;
  });

  after(async () => {
    await Promise.all([alice?.stop(), bob?.stop()]);
    // E2E_DUMP=1 prints everything on success too (what baresip sent and received)
    if (failed || process.env.E2E_DUMP) {
      console.log(stack?.dumpLogs());
      console.log(`--- baresip alice ---\n${alice?.output}\n--- baresip bob ---\n${bob?.output}`);
    }
    await stack?.stop();
  });

  it('registers, publishes and subscribes both ways; a status change from baresip reaches the document and the buddy', async () => {
    try {
      // --- REGISTER: baresip says so, and the core told the AS (registration events)
      for (const ua of [alice, bob]) {
        await eventually(
          () => (/All 1 useragent registered successfully/.test(ua.output) ? true : undefined),
          10000,
          `${ua.user} registered`,
        );
      }
      await eventually(
        async () => {
          const m = /^ims_as_isc_events_total\{type="registration"\} (\d+)/m.exec(await stack.metrics());
          return m && Number(m[1]) >= 2 ? true : undefined;
        },
        5000,
        'two registration events at the AS',
      );

      // --- PUBLISH: each one published (CDRs), with baresip's own body (person before tuple)
      const published = (u: string) =>
        stack
          .cdrLines()
          .filter((c) => c.sipMethod === 'PUBLISH' && c.callingPartyAddress === aor(u) && c.statusCode === 200);
      for (const u of ['alice', 'bob'])
        await eventually(() => (published(u).length > 0 ? true : undefined), 10000, `a PUBLISH CDR of ${u}`);
      for (const ua of [alice, bob]) {
        // (its start-up timer may also send one with <basic>unknown</basic>, which is refused: 400)
        const pub = ua
          .messages()
          .find(
            (m) =>
              m.sent &&
              requestLine(m).startsWith('PUBLISH ') &&
              header(m, 'Content-Type') === 'application/pidf+xml' &&
              /<basic>open<\/basic>/.test(body(m)),
          );
        assert.ok(pub, `${ua.user}'s baresip sent a PUBLISH with a PIDF body, basic open`);
        assert.equal(header(pub, 'Event'), 'presence');
        assert.match(
          body(pub),
          /<dm:person[^>]*>[\s\S]*<tuple id="t4109">/,
          "baresip's PIDF: person first, then its tuple",
        );
        // and it got an entity tag back
        assert.ok(
          ua
            .messages()
            .some(
              (m) =>
                !m.sent &&
                /^SIP\/2\.0 200/.test(requestLine(m)) &&
                / PUBLISH$/m.test(header(m, 'CSeq') ?? '') &&
                header(m, 'SIP-ETag'),
            ),
        );
      }

      // --- SUBSCRIBE: each to the other, opened by the AS
      const opened = (watcher: string, presentity: string) =>
        stack
          .cdrLines()
          .some(
            (c) =>
              c.outcome === 'subscription-opened' &&
              c.event === 'presence' &&
              c.callingPartyAddress === aor(watcher) &&
              c.calledPartyAddress === aor(presentity),
          );
      await eventually(
        () => (opened('bob', 'alice') && opened('alice', 'bob') ? true : undefined),
        10000,
        'both presence subscriptions opened',
      );
      for (const [ua, buddy] of [
        [alice, 'bob'],
        [bob, 'alice'],
      ] as const) {
        await eventually(
          () =>
            ua
              .messages()
              .find(
                (m) =>
                  !m.sent &&
                  requestLine(m).startsWith('NOTIFY ') &&
                  header(m, 'From')?.includes(aor(buddy)) &&
                  /^active/.test(header(m, 'Subscription-State') ?? ''),
              ),
          5000,
          `${ua.user}'s baresip got an active NOTIFY from ${buddy}`,
        );
      }

      // --- the composed document reflects alice's publication: valid, her tuple open. Her
      // orphaned start-up publication (see the module comment) must have expired first.
      const before = await aliceDocWith('open', (PUBINT + 6) * 1000);
      assertValidComposed(before);
      const tuples = tuplesOf(before);
      assert.equal(tuples[0]!.contact, aor('alice'), `her own publication's tuple comes first: ${before}`);
      assert.ok(
        tuples.some((t) => t.id === 'network' && t.basic === 'open'),
        `registered: the network tuple is open: ${before}`,
      );
      // bob's baresip has seen her online (the last NOTIFY it got from her, first <basic> open)
      await eventually(
        () => {
          const last = bob
            .messages()
            .filter((m) => !m.sent && requestLine(m).startsWith('NOTIFY ') && header(m, 'From')?.includes(aor('alice')))
            .at(-1);
          if (!last) return undefined;
          const basic = /<basic>([^<]*)<\/basic>/.exec(body(last))?.[1];
          return basic === 'open' && tuplesOf(body(last)).filter((t) => t.contact === aor('alice')).length === 1
            ? true
            : undefined;
        },
        5000,
        "bob's baresip told that alice is open",
      );

      // --- alice goes offline from baresip's command line
      const withBody = () => published('alice').filter((c) => c.messageBody !== undefined).length;
      const bodiesBefore = withBody();
      const aliceFrom = alice.output.length;
      const bobFrom = bob.output.length;
      alice.command('/presence_offline');
      await eventually(
        () =>
          /presence: update status of 'sip:alice@example\.com' from 'Online' to 'Offline'/.test(
            alice.output.slice(aliceFrom),
          )
            ? true
            : undefined,
        5000,
        "alice's baresip took the command",
      );
      // (a) the document follows: her tuple closed, still valid
      const afterDoc = await aliceDocWith('closed', 5000);
      assertValidComposed(afterDoc);
      assert.equal(tuplesOf(afterDoc)[0]!.basic, 'closed', afterDoc);
      const closedPublish = alice
        .messages(aliceFrom)
        .find((m) => m.sent && requestLine(m).startsWith('PUBLISH ') && /<basic>closed<\/basic>/.test(body(m)));
      assert.ok(closedPublish, "alice's baresip PUBLISHed basic closed");
      assert.ok(header(closedPublish, 'SIP-If-Match'), 'a modification of the tracked publication (SIP-If-Match)');
      // (b) bob's baresip got the NOTIFY and says so
      await eventually(
        () =>
          /<sip:alice@example\.com> changed status from Online to Offline/.test(bob.output.slice(bobFrom))
            ? true
            : undefined,
        5000,
        "bob's baresip reports alice offline",
      );
      const notified = bob
        .messages(bobFrom)
        .find((m) => !m.sent && requestLine(m).startsWith('NOTIFY ') && header(m, 'From')?.includes(aor('alice')));
      assert.ok(notified, "bob's baresip got a NOTIFY from alice after the change");
      assert.equal(/<basic>([^<]*)<\/basic>/.exec(body(notified))?.[1], 'closed', "its first tuple: alice's, closed");
      assertValidComposed(body(notified));
      assert.ok(withBody() > bodiesBefore, 'the AS charged a PUBLISH with a body from alice (the modification)');
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  it('chats both ways: a MESSAGE from one baresip reaches the other through Kamailio and the IM server, charged on both roles', async () => {
    try {
      for (const [from, to, text] of [
        [alice, bob, 'hello bob, lunch at noon?'],
        [bob, alice, 'sure alice, see you at 12'],
      ] as const) {
        const toFrom = to.output.length;
        const { sent, callId, answer } = await chat(from, text);
        assert.ok(requestLine(sent).startsWith(`MESSAGE ${aor(to.user)} SIP/2.0`), sent.text);
        assert.equal(header(sent, 'Content-Type'), 'text/plain');
        assert.equal(statusOf(answer), 200, `${from.user}'s baresip got a 200 for it: ${answer.text}`);
        // the other baresip got it (same Call-ID: proxied, not re-originated), with the asserted
        // identity of the sender, answered 200 and shows it
        const got = await receivedBy(to, from.user, text, toFrom);
        const contact = registeredContact(to);
        assert.ok(contact?.endsWith(`@127.0.0.1:${to.port}`), `${to.user}'s registered contact: ${contact}`);
        assert.ok(
          requestLine(got).startsWith(`MESSAGE ${contact} SIP/2.0`),
          `to the contact it registered: ${requestLine(got)}`,
        );
        assert.equal(header(got, 'Call-ID'), callId);
        assert.equal(header(got, 'Content-Type'), 'text/plain');
        assert.equal(header(got, 'P-Asserted-Identity'), `<${aor(from.user)}>`);
        assert.deepEqual(
          answersTo(to.messages(toFrom), callId, true).map(statusOf),
          [200],
          `${to.user}'s baresip answered 200`,
        );
        await eventually(
          () => (to.output.slice(toFrom).includes(`${aor(from.user)}: "${text}"`) ? true : undefined),
          5000,
          `${to.user}'s baresip shows the message`,
        );
        // charging: one record per role, both delivered with the device's 200
        const cdrs = await eventually(
          () => {
            const l = imCdrs(callId);
            return l.length === 2 ? l : undefined;
          },
          5000,
          `two IM CDRs for ${callId}`,
        );
        assert.deepEqual(cdrs.map((c) => c.roleOfNode).sort(), ['originating', 'terminating']);
        for (const c of cdrs) {
          assert.equal(c.outcome, 'delivered', JSON.stringify(c));
          assert.equal(c.statusCode, 200);
          assert.equal(c.sipMethod, 'MESSAGE');
          assert.equal(c.callingPartyAddress, aor(from.user));
          assert.equal(c.calledPartyAddress, aor(to.user));
          assert.deepEqual(c.messageBody, { contentType: 'text/plain', contentLength: text.length });
        }
      }
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  it('stores a message for bob while his baresip is off (202) and delivers it when it registers again', async () => {
    try {
      // bob's baresip stops: it un-REGISTERs (and gets 200) before it exits
      const stopFrom = bob.output.length;
      await bob.stop();
      const unregister = bob
        .messages(stopFrom)
        .filter(
          (m) =>
            m.sent &&
            requestLine(m).startsWith('REGISTER ') &&
            (header(m, 'Expires') === '0' || /;expires=0\b/.test(header(m, 'Contact') ?? '')),
        )
        .at(-1);
      assert.ok(unregister, `bob's baresip un-REGISTERed: ${bob.output.slice(stopFrom)}`);
      assert.ok(
        bob
          .messages(stopFrom)
          .some((m) => !m.sent && statusOf(m) === 200 && header(m, 'CSeq') === header(unregister, 'CSeq')),
        'and got a 200 for it',
      );

      // alice's message is stored: 202 Accepted, charged deferred on both roles, in bob's mailbox
      const text = 'bob, are you there?';
      const { callId, answer } = await chat(alice, text);
      assert.match(requestLine(answer), /^SIP\/2\.0 202 Accepted/, answer.text);
      const stored = await eventually(
        () => {
          const l = imCdrs(callId);
          return l.length === 2 ? l : undefined;
        },
        5000,
        'two deferred IM CDRs',
      );
      assert.deepEqual(stored.map((c) => c.roleOfNode).sort(), ['originating', 'terminating']);
      for (const c of stored) {
        assert.equal(c.outcome, 'deferred', JSON.stringify(c));
        assert.equal(c.statusCode, 202);
        assert.equal(c.callingPartyAddress, aor('alice'));
        assert.equal(c.calledPartyAddress, aor('bob'));
      }
      const mailbox = await deferredFor('bob');
      assert.equal(mailbox.length, 1, JSON.stringify(mailbox));
      assert.match(mailbox[0]!.from, /sip:alice@example\.com/);
      assert.equal(mailbox[0]!.contentType, 'text/plain');
      assert.equal(mailbox[0]!.size, text.length);

      // bob's baresip again: once registered, the IM server delivers the stored message
      const startFrom = bob.output.length;
      bob.start();
      await eventually(
        () => (/All 1 useragent registered successfully/.test(bob.output.slice(startFrom)) ? true : undefined),
        10000,
        'bob registered again',
      );
      const got = await receivedBy(bob, 'alice', text, startFrom, 10000);
      const contact = registeredContact(bob, startFrom);
      assert.ok(contact?.endsWith(`@127.0.0.1:${bob.port}`), `bob's new registered contact: ${contact}`);
      assert.ok(
        requestLine(got).startsWith(`MESSAGE ${contact} SIP/2.0`),
        `to the contact it registered now: ${requestLine(got)}`,
      );
      assert.equal(header(got, 'Content-Type'), 'text/plain');
      assert.equal(header(got, 'P-Asserted-Identity'), `<${aor('alice')}>`);
      assert.match(
        header(got, 'Date') ?? '',
        /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/,
        'the time alice sent it',
      );
      assert.deepEqual(
        answersTo(bob.messages(startFrom), header(got, 'Call-ID')!, true).map(statusOf),
        [200],
        "bob's baresip answered 200",
      );
      await eventually(
        () => (bob.output.slice(startFrom).includes(`${aor('alice')}: "${text}"`) ? true : undefined),
        5000,
        "bob's baresip shows the message",
      );
      // charged once more: the deferred delivery (terminating), under alice's Call-ID
      const delivered = await eventually(
        () => imCdrs(callId).find((c) => c.outcome === 'delivered'),
        5000,
        'the deferred delivery CDR',
      );
      assert.equal(delivered.roleOfNode, 'terminating');
      assert.equal(delivered.statusCode, 200);
      assert.equal(delivered.callingPartyAddress, aor('alice'));
      assert.equal(delivered.calledPartyAddress, aor('bob'));
      assert.deepEqual(
        [
          (delivered.extra as Record<string, unknown> | undefined)?.deferred,
          (delivered.extra as Record<string, unknown> | undefined)?.attempts,
        ],
        [true, 1],
        `a deferred delivery, first attempt: ${JSON.stringify(delivered)}`,
      );
      assert.equal(imCdrs(callId).length, 3, 'deferred (both roles), then delivered');
      await eventually(
        async () => ((await deferredFor('bob')).length === 0 ? true : undefined),
        5000,
        "bob's mailbox empty",
      );
    } catch (err) {
      failed = true;
      throw err;
    }
  });
});
