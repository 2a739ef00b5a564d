/**
 * Two AS processes on one store, end to end: real Kamailio, two real AS processes with their
 * event streams up, sipp. Kamailio hands the watcher's subscription to one of them (the
 * holder); the presentity's pidf-manipulation document is written over XCAP to the other;
 * the holder must send the NOTIFY with that change, learnt through the store's change feed
 * (docs/isc.md section 6). Then the holder is killed (kill -9): the other adopts the dialog,
 * re-sends the full state, and notifies the next change.
 *
 * Runs on the embedded SQLite engine (several processes share its data directory in WAL mode),
 * or on MongoDB when MONGODB_URI is set.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PRES_RULES_TYPE, allowWatchers, presRulesPath } from '../helpers/pres-rules.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom, type SippResult } from './stack.js';

const PW = (u: string) => `${u}-pw-cluster`;
const SHARED = {
  AS_SHARED_STORE: 'true',
  AS_FEED_POLL_MS: '100',
  AS_LEASE_SECONDS: '3',
  ...(process.env.MONGODB_URI ? { MONGODB_URI: process.env.MONGODB_URI } : {}),
};

const HARD_STATE = (note: string) => `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com">
  <tuple id="hard"><status><basic>open</basic></status><note>${note}</note></tuple>
</presence>`;

function notifies(run: SippResult): string[] {
  return [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
}

describe('two AS processes on one store', () => {
  let stack: TestStack;
  const subscriptions = async (i: number) =>
    Number(
      /^ims_as_subscriptions_total\{event="presence",kind="initial"\} (\d+)/m.exec(
        await stack.instanceMetrics(i),
      )?.[1] ?? 0,
    );
  const xcap = (i: number) => new XcapClient(`http://127.0.0.1:${stack.instancePorts(i).xdm}`, 'alice', PW('alice'));
  const pidfDoc = '/xcap-root/pidf-manipulation/users/sip:alice@example.com/index';

  before(async () => {
    stack = await TestStack.start(portsFrom(6760), SHARED);
    await stack.startInstance(1, SHARED);
    for (const i of [0, 1]) {
      await eventually(
        async () => (/^ims_as_isc_event_stream_up 1/m.test(await stack.instanceMetrics(i)) ? true : undefined),
        10000,
        `instance ${i} stream up`,
      );
    }
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', PW(u))).code, 0);
    assert.equal(
      (await xcap(0).put(presRulesPath('sip:alice@example.com'), allowWatchers('sip:bob@example.com'), PRES_RULES_TYPE))
        .status,
      201,
    );
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('a pidf-manipulation PUT served by one instance changes the NOTIFY the other sends', async (t) => {
    const before = [await subscriptions(0), await subscriptions(1)];
    const bob = stack.sipp(
      { name: 'sub-bob', xml: subscriberScenario({ event: 'presence', more: 1 }) },
      { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', PW('bob')], timeoutMs: 30000 },
    );
    await stack.sippLogged(bob.dir, /SUBSCRIBED/);
    const holder = (await subscriptions(0)) > before[0]! ? 0 : 1;
    const other = 1 - holder;
    assert.equal(await subscriptions(holder), before[holder]! + 1, 'one instance took the SUBSCRIBE');

    const put = await xcap(other).put(pidfDoc, HARD_STATE('written on the other'), 'application/pidf+xml');
    assert.equal(put.status, 201);
    const putAt = Date.now();
    await stack.sippLogged(bob.dir, /NOTIFIED 1/, 10000);
    t.diagnostic(
      `NOTIFY from the holder ${Date.now() - putAt} ms after the other instance answered the PUT (feed polled every ${SHARED.AS_FEED_POLL_MS} ms)`,
    );

    const run = await bob;
    assert.equal(run.exitCode, 0, run.stdout);
    const saw = notifies(run);
    assert.doesNotMatch(saw[0]!, /written on the other/);
    assert.match(saw[1]!, /written on the other/, 'the second NOTIFY carries what the other instance wrote');
    // and the holder sent it: the other instance sent no presence NOTIFY
    assert.doesNotMatch(await stack.instanceMetrics(other), /ims_as_notify_total\{event="presence"/);
    // each instance sees both alive, and the timer-driven jobs run on one of them only
    const health = async (i: number) =>
      (
        (await (await fetch(`http://127.0.0.1:${stack.instancePorts(i).isc}/health`)).json()) as {
          checks: { instances: { detail: string } };
        }
      ).checks.instances.detail;
    const [on0, on1] = [await health(0), await health(1)];
    assert.match(on0, /^alive: e2e, e2e-2;/);
    assert.match(on1, /^alive: e2e, e2e-2;/);
    const jobsOf = (detail: string) =>
      detail
        .split('jobs run here: ')[1]!
        .split(', ')
        .filter((j) => j !== 'none');
    assert.deepEqual([...jobsOf(on0), ...jobsOf(on1)].sort(), [
      'cdr-store-purge',
      'dialog-adoption',
      'im-deferred-sweep',
      'publication-expiry',
      'rls-backend-refresh',
    ]);
  });

  it('the holder is killed (kill -9): the other adopts the dialog, re-sends the state, and notifies the next change', async (t) => {
    const before = [await subscriptions(0), await subscriptions(1)];
    // (no un-SUBSCRIBE at the end: the dialog's instance is gone, the survivor serves it)
    const bob = stack.sipp(
      { name: 'sub-bob-2', xml: subscriberScenario({ event: 'presence', more: 2, unsubscribe: false }) },
      { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', PW('bob')], timeoutMs: 40000 },
    );
    await stack.sippLogged(bob.dir, /SUBSCRIBED/);
    const holder = (await subscriptions(0)) > before[0]! ? 0 : 1;
    const survivor = 1 - holder;

    const killedAt = Date.now();
    await stack.stopInstance(holder, 'SIGKILL');
    // the survivor adopts the dialog within its lease and sends the full state at once
    await stack.sippLogged(bob.dir, /NOTIFIED 1/, 20000);
    t.diagnostic(
      `the survivor re-sent the state ${Date.now() - killedAt} ms after kill -9 (lease ${SHARED.AS_LEASE_SECONDS} s, adoption job every 5 s)`,
    );

    const put = await xcap(survivor).put(pidfDoc, HARD_STATE('after the failover'), 'application/pidf+xml');
    assert.equal(put.status, 200);
    const run = await bob;
    assert.equal(run.exitCode, 0, run.stdout);
    const saw = notifies(run);
    assert.match(saw[1]!, /Subscription-State: active/);
    assert.match(saw[2]!, /after the failover/, 'the NOTIFY after the failover carries the change');
    const cseq = (n: string) => Number(/CSeq: (\d+) NOTIFY/.exec(n)?.[1]);
    assert.ok(
      cseq(saw[1]!) > cseq(saw[0]!) && cseq(saw[2]!) > cseq(saw[1]!),
      `CSeqs ${saw.map(cseq)}: the dialog goes on`,
    );
  });
});
