/**
 * Two AS processes on one store, end to end: real Kamailio, two real AS processes, sipp. The
 * watcher's subscription is served by instance A (the one Kamailio's stream reaches); the
 * presentity's pidf-manipulation document is written over XCAP to instance B; A must send
 * the NOTIFY with B's change, through the store's change feed (docs/isc.md section 6).
 *
 * Runs on an engine several processes can open: MongoDB (MONGODB_URI) or an embedded engine
 * that shares its data directory between processes (SQLite in WAL mode). With an embedded
 * engine that does not (NeDB locks its directory to one process), the second AS cannot start
 * and the test says so and skips.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { subscriberScenario } from './scenario-builder.js';
import { ROOT, TestStack, eventually, portsFrom, type SippResult } from './stack.js';

const PW = (u: string) => `${u}-pw-cluster`;
const ports = portsFrom(6760);
/** Instance B's own HTTP ports: between the stack's XCAP port and its sipp ports. */
const B_ISC = ports.xdm + 1;
const B_XDM = ports.xdm + 2;
const SHARED = { AS_SHARED_STORE: 'true', AS_FEED_POLL_MS: '100', AS_LEASE_SECONDS: '3', ...(process.env.MONGODB_URI ? { MONGODB_URI: process.env.MONGODB_URI } : {}) };

const ALLOW_BOB = `<?xml version="1.0" encoding="UTF-8"?>
<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
  <cp:rule id="bob">
    <cp:conditions><cp:identity><cp:one id="sip:bob@example.com"/></cp:identity></cp:conditions>
    <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions>
    <cp:transformations>
      <pr:provide-services><pr:all-services/></pr:provide-services>
      <pr:provide-persons><pr:all-persons/></pr:provide-persons>
      <pr:provide-note>true</pr:provide-note>
    </cp:transformations>
  </cp:rule>
</cp:ruleset>`;
const HARD_STATE = (note: string) => `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">
  <tuple id="hard"><status><basic>open</basic></status><note>${note}</note></tuple>
</presence>`;

function notifies(run: SippResult): string[] {
  return [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}

/** Starts instance B on the stack's store; resolves false (with its output) if it cannot share it. */
function startSecondAs(stack: TestStack): Promise<{ child: ChildProcess; started: boolean; output: string }> {
  const env = { ...stack.asEnv, ISC_PORT: String(B_ISC), XDM_PORT: String(B_XDM), AS_NODE_ID: 'e2e-b', KAMAILIO_EVAPI_ADDR: '' };
  const child = spawn(process.execPath, [join(ROOT, 'build/as/src/main.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const up = async () => (await fetch(`http://127.0.0.1:${B_ISC}/metrics`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined))?.ok === true;
  return eventually(async () => (child.exitCode !== null ? 'exited' : (await up()) ? 'up' : undefined), 15000, 'the second AS')
    .then((state) => ({ child, started: state === 'up', get output() { return output; } }));
}

describe('two AS processes on one store', () => {
  let stack: TestStack;
  let b: { child: ChildProcess; started: boolean; readonly output: string } | undefined;
  let skipReason: string | false = false;

  before(async () => {
    stack = await TestStack.start(ports, SHARED);
    b = await startSecondAs(stack);
    if (!b.started) {
      skipReason = `the second AS could not open the store the first one holds (${/data directory[^"\\]*|LOCK[^"\\]*|store[^"\\]{0,120}/.exec(b.output)?.[0] ?? 'see its output'}): this build's embedded engine is one process's; run with MONGODB_URI or the SQLite engine`;
      return;
    }
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
  });

  after(async () => {
    if (process.exitCode) console.log(`${stack?.dumpLogs()}\n--- AS B ---\n${b?.output.slice(-6000)}`);
    if (b?.child.exitCode === null) {
      const exited = new Promise((r) => b!.child.once('exit', r));
      b.child.kill('SIGTERM');
      await exited;
    }
    await stack?.stop();
  });

  it('a pidf-manipulation PUT served by B changes the NOTIFY that A sends', async (t) => {
    if (skipReason) {
      t.skip(skipReason);
      return;
    }
    const aliceOnA = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'alice', PW('alice'));
    const aliceOnB = new XcapClient(`http://127.0.0.1:${B_XDM}`, 'alice', PW('alice'));
    assert.equal((await aliceOnA.put('/xcap-root/pres-rules/users/sip:alice@example.com/index', ALLOW_BOB, 'application/auth-policy+xml')).status, 201);

    // bob's subscription: Kamailio hands it to A (B has no event stream), A holds the dialog
    const bob = stack.sipp({ name: 'sub-bob', xml: subscriberScenario({ event: 'presence', more: 1 }) }, { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', PW('bob')], timeoutMs: 30000 });
    await stack.sippLogged(bob.dir, /SUBSCRIBED/);

    const put = await aliceOnB.put('/xcap-root/pidf-manipulation/users/sip:alice@example.com/index', HARD_STATE('written on B'), 'application/pidf+xml');
    assert.equal(put.status, 201);
    const putAt = Date.now();
    await stack.sippLogged(bob.dir, /NOTIFIED 1/, 10000);
    t.diagnostic(`NOTIFY from A ${Date.now() - putAt} ms after B answered the PUT (feed polled every ${SHARED.AS_FEED_POLL_MS} ms)`);

    const run = await bob;
    assert.equal(run.exitCode, 0, run.stdout);
    const saw = notifies(run);
    assert.doesNotMatch(saw[0]!, /written on B/);
    assert.match(saw[1]!, /written on B/, 'the second NOTIFY carries what B wrote');
    // and it was A that sent it: B's metrics count no NOTIFY
    const bMetrics = await (await fetch(`http://127.0.0.1:${B_ISC}/metrics`)).text();
    assert.doesNotMatch(bMetrics, /notify_total\{event="presence"/);
    // each instance sees both alive, and the timer-driven jobs run on one of them only
    const health = async (port: number) => ((await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { checks: { instances: { detail: string } } }).checks.instances.detail;
    const [onA, onB] = [await health(stack.ports.isc), await health(B_ISC)];
    assert.match(onA, /^alive: e2e, e2e-b;/);
    assert.match(onB, /^alive: e2e, e2e-b;/);
    const jobsOf = (detail: string) => detail.split('jobs run here: ')[1]!.split(', ').filter((j) => j !== 'none');
    assert.deepEqual([...jobsOf(onA), ...jobsOf(onB)].sort(), ['cdr-store-purge', 'dialog-adoption', 'im-deferred-sweep', 'publication-expiry', 'rls-backend-refresh']);
  });

  it('A is killed (kill -9): B adopts its dialog and the watcher keeps getting NOTIFYs', async (t) => {
    if (skipReason) {
      t.skip(skipReason);
      return;
    }
    const aliceOnB = new XcapClient(`http://127.0.0.1:${B_XDM}`, 'alice', PW('alice'));
    // (no un-SUBSCRIBE at the end: with A gone Kamailio has no AS to hand it to)
    const bob = stack.sipp({ name: 'sub-bob-2', xml: subscriberScenario({ event: 'presence', more: 1, unsubscribe: false }) }, { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', PW('bob')], timeoutMs: 40000 });
    await stack.sippLogged(bob.dir, /SUBSCRIBED/);

    const a = (stack as unknown as { as: ChildProcess }).as;
    const killedAt = Date.now();
    a.kill('SIGKILL');
    await eventually(() => (/subscription dialogs adopted/.test(b!.output) ? true : undefined), 20000, 'B adopting A\'s dialogs');
    t.diagnostic(`B adopted A's dialogs ${Date.now() - killedAt} ms after kill -9 (lease ${SHARED.AS_LEASE_SECONDS} s, adoption job every 5 s)`);

    const put = await aliceOnB.put('/xcap-root/pidf-manipulation/users/sip:alice@example.com/index', HARD_STATE('after the failover'), 'application/pidf+xml');
    assert.equal(put.status, 200);
    const run = await bob;
    assert.equal(run.exitCode, 0, run.stdout);
    const saw = notifies(run);
    assert.match(saw[1]!, /after the failover/, 'the NOTIFY after the failover carries the change');
    const cseq = (n: string) => Number(/CSeq: (\d+) NOTIFY/.exec(n)?.[1]);
    assert.ok(cseq(saw[1]!) > cseq(saw[0]!), `CSeq ${cseq(saw[1]!)} after ${cseq(saw[0]!)}: the dialog goes on`);
  });
});
