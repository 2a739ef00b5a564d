/**
 * Interop with a second real SIP client: two linphone-cli 5.1 (Debian's linphonec) user agents
 * register through Kamailio with an instance id (Kamailio's registrar hands them GRUUs),
 * PUBLISH their presence, SUBSCRIBE to each other, see each other online, and chat both ways
 * through the IM server: over UDP, and over TLS (sip: addresses with transport=tls)
 * to the core's TLS port, trusting only the stack's local CA (scripts/tls-setup.sh).
 *
 * How linphonec 5.1 is driven, and what the test allows for:
 *  - Commands on stdin. Its `[sip] sip_port` setting is not applied at start: `ports sip N`
 *    is the first command. It must have a writable HOME (its chat database): without one,
 *    `chat` crashes it.
 *  - It sends only REGISTER to the configured proxy; friend SUBSCRIBEs, PUBLISH and chat go to
 *    the host of the addresses involved. With no DNS for example.com here, its identity and
 *    buddies are written with the core's address (sip:alice@127.0.0.1:<port>): 127.0.0.1 is
 *    an alias of the domain, so Kamailio and the AS see alice@example.com.
 *  - It prints `Friend "<name>" <uri> is Online` when a NOTIFY says open, and
 *    `Message received from <uri>: <text>` for each MESSAGE.
 *  - Over TLS: `root_ca` names the CA and `verify_server_certs`/`verify_server_cn` make it check
 *    the chain and the host name. Its TLS library (mbedTLS) matches the host against DNS names
 *    only, so the generated certificate names 127.0.0.1 as a DNS name too. Its transports come
 *    from the file (`ports sip N` would turn TLS off): TLS only, no UDP or TCP listener.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PRES_RULES_TYPE, allowWatchers, presRulesPath } from '../helpers/pres-rules.js';
import { endChild } from '../helpers/end-child.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { DOMAIN, TestStack, eventually, portsFrom } from './stack.js';

const PW = (u: string) => `${u}-pw-linphone`;
const aor = (u: string) => `sip:${u}@${DOMAIN}`;

/** One headless linphonec: its own HOME, config and SIP port; commands on stdin, output kept. */
/** How a linphonec reaches the core: plain UDP, or TLS trusting only `ca` (the stack's local CA). */
type Transport = { kind: 'udp' } | { kind: 'tls'; ca: string };

class Linphone {
  readonly home: string;
  private child?: ChildProcess;
  private out = '';

  /** `core`: the core's host:port for this transport; addresses get ;transport=tls over TLS. */
  constructor(
    parent: string,
    readonly user: string,
    readonly port: number,
    readonly buddy: string,
    readonly core: string,
    readonly instance: string,
    readonly transport: Transport = { kind: 'udp' },
  ) {
    this.home = join(parent, `linphone-${user}`);
  }

  /** A SIP address of `user` on the core, as this client must write it to reach the core over its transport. */
  address(user: string): string {
    return `sip:${user}@${this.core}${this.transport.kind === 'tls' ? ';transport=tls' : ''}`;
  }

  start(): void {
    mkdirSync(join(this.home, '.local/share/linphone'), { recursive: true });
    const rc = join(this.home, 'linphonerc');
    const tls =
      this.transport.kind === 'tls'
        ? // the server's certificate must chain to the local CA and name the host (127.0.0.1)
          // its own TLS listening port is what it connects from, and it takes it from the file (the
          // `ports sip` command would set UDP only and turn TLS off)
          [
            `root_ca=${this.transport.ca}`,
            'verify_server_certs=1',
            'verify_server_cn=1',
            'sip_port=0',
            'sip_tcp_port=0',
            `sip_tls_port=${this.port}`,
          ]
        : [];
    writeFileSync(
      rc,
      [
        '[sip]',
        'default_proxy=0',
        'use_ipv6=0',
        'bind_address=127.0.0.1',
        'register_only_when_network_is_up=0',
        ...tls,
        '[proxy_0]',
        `contact_parameters=+sip.instance="<urn:uuid:${this.instance}>"`,
        `reg_proxy=<sip:${this.core}${this.transport.kind === 'tls' ? ';transport=tls' : ''}>`,
        `reg_identity=sip:${this.user}@${this.core}`,
        'reg_expires=300',
        'reg_sendregister=1',
        'publish=1',
        '[auth_info_0]',
        `username=${this.user}`,
        `passwd=${PW(this.user)}`,
        `realm=${DOMAIN}`,
        `domain=${this.core}`,
        '[friend_0]',
        `url="${this.buddy}" <${this.address(this.buddy)}>`,
        'pol=accept',
        'subscribe=1',
        '',
      ].join('\n'),
    );
    const child = spawn('linphonec', ['-c', rc, '-d', '0'], {
      env: { ...process.env, HOME: this.home },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stdin!.on('error', () => {});
    child.on('exit', (code, signal) => (this.out += `\n[linphonec ${this.user} exited: ${code ?? signal}]\n`));
    if (this.transport.kind === 'udp') this.command(`ports sip ${this.port}`);
  }

  get output(): string {
    return this.out;
  }

  command(line: string): void {
    this.child?.stdin?.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    await endChild(this.child, () => this.command('quit'), 4000);
  }
}

/**
 * Every TLS connection the core holds is one a client opened to its TLS port, one per client:
 * the NOTIFYs and MESSAGEs for them went back over those, the core opened none of its own
 * (to a client's listening port, or to itself).
 */
async function assertOnlyClientConnections(stack: TestStack): Promise<void> {
  const conns = (await stack.kamailioRpc('tls.list')) as Array<{ dst_port: number; src_port: number; state: string }>;
  assert.equal(conns.length, 2, JSON.stringify(conns));
  for (const c of conns)
    assert.equal(c.dst_port, stack.ports.tls, `a connection the core did not accept: ${JSON.stringify(c)}`);
}

/** The pair over `kind`: UDP to the core's SIP port, or TLS to its TLS port with the stack's local CA. */
function interop(kind: Transport['kind'], portBase: number): void {
  describe(`interop: two linphone-cli clients through Kamailio, the Presence Server and the IM server, over ${kind.toUpperCase()}`, () => {
    let stack: TestStack;
    let alice: Linphone;
    let bob: Linphone;

    before(async () => {
      stack = await TestStack.start(portsFrom(portBase), {}, { tls: kind === 'tls' });
      const transport: Transport = kind === 'tls' ? { kind, ca: stack.tls!.ca } : { kind };
      const ca = kind === 'tls' ? readFileSync(stack.tls!.ca, 'utf8') : undefined;
      for (const u of ['alice', 'bob']) {
        const r = await stack.provision('add', u, '--password', PW(u));
        assert.equal(r.code, 0, r.out);
      }
      for (const [u, w] of [
        ['alice', 'bob'],
        ['bob', 'alice'],
      ] as const) {
        const xcap = new XcapClient(`${ca ? 'https' : 'http'}://127.0.0.1:${stack.ports.xdm}`, u, PW(u), DOMAIN, ca);
        const put = await xcap.put(presRulesPath(aor(u)), allowWatchers(aor(w)), PRES_RULES_TYPE);
        assert.equal(put.status, 201, put.body);
      }
      const core = `127.0.0.1:${kind === 'tls' ? stack.ports.tls : stack.ports.sip}`;
      alice = new Linphone(
        stack.dir,
        'alice',
        stack.sippPort(),
        'bob',
        core,
        '6d1f9a52-0c4e-4e7b-9a53-2b7c1f0e8a01',
        transport,
      );
      bob = new Linphone(
        stack.dir,
        'bob',
        stack.sippPort(),
        'alice',
        core,
        '6d1f9a52-0c4e-4e7b-9a53-2b7c1f0e8a02',
        transport,
      );
    });

    after(async () => {
      await alice?.stop();
      await bob?.stop();
      if (process.exitCode)
        console.log(`--- alice ---\n${alice?.output}\n--- bob ---\n${bob?.output}\n${stack?.dumpLogs()}`);
      await stack?.stop();
    });

    it('registers both (with GRUUs), publishes, subscribes both ways, and each sees the other online', async () => {
      alice.start();
      bob.start();
      await eventually(
        () => (/Friend "bob" <sip:bob@[^>]+> is Online/.test(alice.output) ? true : undefined),
        20000,
        'alice sees bob online',
      );
      await eventually(
        () => (/Friend "alice" <sip:alice@[^>]+> is Online/.test(bob.output) ? true : undefined),
        20000,
        'bob sees alice online',
      );
      if (kind === 'tls') {
        // registered over TLS: the core's location service holds each contact on its TLS socket.
        // (Each client listens on TLS only, no UDP or TCP: every NOTIFY and MESSAGE it shows came that way.)
        for (const u of ['alice', 'bob']) {
          const found = JSON.stringify(await stack.kamailioRpc('ul.lookup', ['location', u]));
          assert.match(found, new RegExp(`"Socket":"tls:127\\.0\\.0\\.1:${stack.ports.tls}"`), `${u}: ${found}`);
          assert.match(found, /transport=tls/i, `${u}'s contact names TLS: ${found}`);
        }
        await assertOnlyClientConnections(stack);
      }
      // what the core and the AS saw: both registered, both published, both subscribed
      const cdrs = stack.cdrLines();
      for (const u of ['alice', 'bob']) {
        assert.ok(
          cdrs.some(
            (c) =>
              c.service === 'presence' &&
              c.sipMethod === 'PUBLISH' &&
              String(c.callingPartyAddress ?? '').includes(aor(u)),
          ),
          `${u} published: ${JSON.stringify(cdrs.map((c) => [c.service, c.sipMethod, c.callingPartyAddress]))}`,
        );
        assert.ok(
          cdrs.some(
            (c) =>
              c.service === 'presence' &&
              c.sipMethod === 'SUBSCRIBE' &&
              String(c.callingPartyAddress ?? '').includes(aor(u)),
          ),
          `${u} subscribed`,
        );
      }
    });

    it('chats both ways through the IM server, charged on both roles', async () => {
      alice.command(`chat ${alice.address('bob')} hello bob, from linphone`);
      await eventually(
        () => (/Message received from sip:alice@[^:]+: hello bob, from linphone/.test(bob.output) ? true : undefined),
        10000,
        "bob gets alice's message",
      );
      bob.command(`chat ${bob.address('alice')} hi alice, linphone here`);
      await eventually(
        () => (/Message received from sip:bob@[^:]+: hi alice, linphone here/.test(alice.output) ? true : undefined),
        10000,
        "alice gets bob's message",
      );
      const delivered = await eventually(
        () => {
          const l = stack.cdrLines().filter((c) => c.service === 'im' && c.outcome === 'delivered');
          return l.length >= 4 ? l : undefined;
        },
        5000,
        'four delivered IM records',
      );
      assert.deepEqual([...new Set(delivered.map((c) => c.roleOfNode))].sort(), ['originating', 'terminating']);
      if (kind === 'tls') await assertOnlyClientConnections(stack);
    });

    it('un-SUBSCRIBEs in the dialog when they quit (in-dialog requests follow the route set back to the AS)', async () => {
      await alice.stop();
      await bob.stop();
      const closed = await eventually(
        () => {
          const l = stack.cdrLines().filter((c) => c.service === 'presence' && c.outcome === 'subscription-closed');
          return l.length >= 2 ? l : undefined;
        },
        5000,
        'both subscriptions closed',
      );
      for (const c of closed)
        assert.equal((c.extra as { reason?: string } | undefined)?.reason, 'unsubscribed', JSON.stringify(c));
      assert.deepEqual(closed.map((c) => String(c.callingPartyAddress)).sort(), [aor('alice'), aor('bob')]);
    });
  });
}

interop('udp', 6560);
interop('tls', 7260);
