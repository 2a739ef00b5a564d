/**
 * Registration event package (RFC 3680), end to end: a user's device subscribes to Event: reg
 * for the user's own address of record through Kamailio; a second device registering and then
 * unregistering each bring a NOTIFY with the reginfo document; nobody else may subscribe.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseReginfo } from '../../as/src/registrations/reginfo.js';
import { subscriberScenario } from './scenario-builder.js';
import { TestStack, portsFrom, type SippResult } from './stack.js';

const pw = (u: string) => `${u}-pw-reg`;
const auth = (u: string) => ['-au', u, '-ap', pw(u)];

function notifyBodies(run: SippResult): string[] {
  return [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n[\s\S]*?\r?\n\r?\n(<\?xml[\s\S]*?<\/reginfo>)/g)].map(
    (m) => m[1]!,
  );
}

describe('registration event package (Event: reg)', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(5960));
    for (const u of ['alice', 'bob']) assert.equal((await stack.provision('add', u, '--password', pw(u))).code, 0);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it("tells a subscribed device of the user's registrations as they come and go", async () => {
    const first = stack.sippPort();
    const reg1 = await stack.sipp('register', {
      final: 200,
      set: { user: 'alice', ct_port: String(first), expires: '600' },
      args: auth('alice'),
    });
    assert.equal(reg1.exitCode, 0, reg1.stdout);

    // full state, then the second device registering, then it unregistering
    const sub = stack.sipp(
      { name: 'sub-reg', xml: subscriberScenario({ event: 'reg', accept: 'application/reginfo+xml', more: 2 }) },
      { set: { user: 'alice', target: 'alice' }, args: auth('alice'), timeoutMs: 30000 },
    );
    await stack.sippLogged(sub.dir, /SUBSCRIBED/);
    const second = stack.sippPort();
    const reg2 = await stack.sipp('register', {
      final: 200,
      set: { user: 'alice', ct_port: String(second), expires: '600' },
      args: auth('alice'),
    });
    assert.equal(reg2.exitCode, 0, reg2.stdout);
    await stack.sippLogged(sub.dir, /NOTIFIED 1/);
    const unreg = await stack.sipp('register', {
      final: 200,
      set: { user: 'alice', ct_port: String(second), expires: '0' },
      args: auth('alice'),
    });
    assert.equal(unreg.exitCode, 0, unreg.stdout);

    const done = await sub;
    assert.equal(done.exitCode, 0, done.stdout);
    assert.match(done.messages, /Content-Type: application\/reginfo\+xml/);
    const docs = notifyBodies(done).map(parseReginfo);
    assert.ok(docs.length >= 3, `NOTIFYs with reginfo: ${docs.length}`);
    const [full, added, removed] = docs;
    assert.equal(full!.aor, 'sip:alice@example.com');
    assert.equal(full!.registrationState, 'active');
    assert.deepEqual(
      full!.contacts.map((c) => [c.uri, c.state]),
      [[`sip:alice@127.0.0.1:${first}`, 'active']],
    );
    assert.ok(
      full!.contacts[0]!.expires! > 500 && full!.contacts[0]!.expires! <= 600,
      `expires ${full!.contacts[0]!.expires}`,
    );
    assert.deepEqual(added!.contacts.map((c) => [c.uri, c.state, c.event]).sort(), [
      [`sip:alice@127.0.0.1:${first}`, 'active', 'registered'],
      [`sip:alice@127.0.0.1:${second}`, 'active', 'registered'],
    ]);
    const gone = removed!.contacts.find((c) => c.uri === `sip:alice@127.0.0.1:${second}`);
    assert.deepEqual([gone?.state, gone?.event], ['terminated', 'unregistered']);
    assert.ok(full!.version < added!.version && added!.version < removed!.version, 'versions increase');
  });

  it("refuses a subscription to somebody else's registrations with 403", async () => {
    const r = await stack.sipp(
      { name: 'sub-reg-bob', xml: subscriberScenario({ event: 'reg', expectFinal: 403 }) },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob') },
    );
    assert.equal(r.exitCode, 0, r.stdout);
  });
});
