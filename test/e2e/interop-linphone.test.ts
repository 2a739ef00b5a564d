/**
 * Interop with a second real SIP client: two linphone-cli 5.1 (Debian's linphonec) user agents
 * register through Kamailio with an instance id (Kamailio's registrar hands them GRUUs),
 * PUBLISH their presence, SUBSCRIBE to each other, see each other online, and chat both ways
 * through the IM server, over UDP on 127.0.0.1.
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
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PRES_RULES_TYPE, allowWatchers, presRulesPath } from '../helpers/pres-rules.js';
import { endChild } from '../helpers/end-child.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { DOMAIN, TestStack, eventually, portsFrom } from './stack.js';

const PW = (u: string) => `${u}-pw-linphone`;
const aor = (u: string) => `sip:${u}@${DOMAIN}`;

/** One headless linphonec: its own HOME, config and SIP port; commands on stdin, output kept. */
class Linphone {
  readonly home: string;
  private child?: ChildProcess;
  private out = '';

  constructor(parent: string, readonly user: string, readonly port: number, readonly buddy: string, readonly core: string, readonly instance: string) {
    this.home = join(parent, `linphone-${user}`);
  }

  start(): void {
    mkdirSync(join(this.home, '.local/share/linphone'), { recursive: true });
    const rc = join(this.home, 'linphonerc');
    writeFileSync(rc, [
      '[sip]', 'default_proxy=0', 'use_ipv6=0', 'bind_address=127.0.0.1', 'register_only_when_network_is_up=0',
      '[proxy_0]',
      `contact_parameters=+sip.instance="<urn:uuid:${this.instance}>"`,
      `reg_proxy=<sip:${this.core}>`, `reg_identity=sip:${this.user}@${this.core}`,
      'reg_expires=300', 'reg_sendregister=1', 'publish=1',
      '[auth_info_0]', `username=${this.user}`, `passwd=${PW(this.user)}`, `realm=${DOMAIN}`, `domain=${this.core}`,
      '[friend_0]', `url="${this.buddy}" <sip:${this.buddy}@${this.core}>`, 'pol=accept', 'subscribe=1',
      '',
    ].join('\n'));
    const child = spawn('linphonec', ['-c', rc, '-d', '0'], { env: { ...process.env, HOME: this.home }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stdin!.on('error', () => {});
    child.on('exit', (code, signal) => (this.out += `\n[linphonec ${this.user} exited: ${code ?? signal}]\n`));
    this.command(`ports sip ${this.port}`);
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

describe('interop: two linphone-cli clients through Kamailio, the Presence Server and the IM server', () => {
  let stack: TestStack;
  let alice: Linphone;
  let bob: Linphone;

  before(async () => {
    stack = await TestStack.start(portsFrom(6560));
    for (const u of ['alice', 'bob']) {
      const r = await stack.provision('add', u, '--password', PW(u));
      assert.equal(r.code, 0, r.out);
    }
    for (const [u, w] of [['alice', 'bob'], ['bob', 'alice']] as const) {
      const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, u, PW(u));
      const put = await xcap.put(presRulesPath(aor(u)), allowWatchers(aor(w)), PRES_RULES_TYPE);
      assert.equal(put.status, 201, put.body);
    }
    const core = `127.0.0.1:${stack.ports.sip}`;
    alice = new Linphone(stack.dir, 'alice', stack.sippPort(), 'bob', core, '6d1f9a52-0c4e-4e7b-9a53-2b7c1f0e8a01');
    bob = new Linphone(stack.dir, 'bob', stack.sippPort(), 'alice', core, '6d1f9a52-0c4e-4e7b-9a53-2b7c1f0e8a02');
  });

  after(async () => {
    await alice?.stop();
    await bob?.stop();
    if (process.exitCode) console.log(`--- alice ---\n${alice?.output}\n--- bob ---\n${bob?.output}\n${stack?.dumpLogs()}`);
    await stack?.stop();
  });

  it('registers both (with GRUUs), publishes, subscribes both ways, and each sees the other online', async () => {
    alice.start();
    bob.start();
    await eventually(() => (/Friend "bob" <sip:bob@[^>]+> is Online/.test(alice.output) ? true : undefined), 20000, 'alice sees bob online');
    await eventually(() => (/Friend "alice" <sip:alice@[^>]+> is Online/.test(bob.output) ? true : undefined), 20000, 'bob sees alice online');
    // what the core and the AS saw: both registered, both published, both subscribed
    const cdrs = stack.cdrLines();
    for (const u of ['alice', 'bob']) {
      assert.ok(cdrs.some((c) => c.service === 'presence' && c.sipMethod === 'PUBLISH' && String(c.callingPartyAddress ?? '').includes(aor(u))), `${u} published: ${JSON.stringify(cdrs.map((c) => [c.service, c.sipMethod, c.callingPartyAddress]))}`);
      assert.ok(cdrs.some((c) => c.service === 'presence' && c.sipMethod === 'SUBSCRIBE' && String(c.callingPartyAddress ?? '').includes(aor(u))), `${u} subscribed`);
    }
  });

  it('chats both ways through the IM server, charged on both roles', async () => {
    alice.command(`chat sip:bob@127.0.0.1:${stack.ports.sip} hello bob, from linphone`);
    await eventually(() => (/Message received from sip:alice@[^:]+: hello bob, from linphone/.test(bob.output) ? true : undefined), 10000, 'bob gets alice\'s message');
    bob.command(`chat sip:alice@127.0.0.1:${stack.ports.sip} hi alice, linphone here`);
    await eventually(() => (/Message received from sip:bob@[^:]+: hi alice, linphone here/.test(alice.output) ? true : undefined), 10000, 'alice gets bob\'s message');
    const delivered = await eventually(() => {
      const l = stack.cdrLines().filter((c) => c.service === 'im' && c.outcome === 'delivered');
      return l.length >= 4 ? l : undefined;
    }, 5000, 'four delivered IM records');
    assert.deepEqual([...new Set(delivered.map((c) => c.roleOfNode))].sort(), ['originating', 'terminating']);
  });
});
