/**
 * ims-ctl against a running stack (real Kamailio, the AS, sipp): after known traffic (a
 * registration, a presence subscription, messages stored for an offline user) the tables
 * and JSON show what the AS holds; ending a subscription sends the watcher its final
 * NOTIFY; expiring a mailbox ends its messages with CDRs; health and bad tokens.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { messageScenario } from './im-scenarios.js';
import { subscriberScenario } from './scenario-builder.js';
import { ROOT, TestStack, eventually, portsFrom, type SippResult } from './stack.js';

const pw = (u: string) => `${u}-pw-ctl`;
const auth = (u: string) => ['-au', u, '-ap', pw(u)];

describe('ims-ctl against a running AS', () => {
  let stack: TestStack;
  let alicePort = 0;
  let watcher: Promise<SippResult> & { dir: string };

  const ctl = (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((res) => {
      execFile(
        process.execPath,
        [join(ROOT, 'build/as/src/cli/ims-ctl.js'), ...args],
        {
          env: {
            ...process.env,
            AS_CONFIG: '',
            ISC_PORT: String(stack.ports.isc),
            ISC_SECRET: stack.secret,
            AS_ADMIN_TOKEN: stack.adminToken,
          },
        },
        (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const json = async (...args: string[]) => {
    const r = await ctl(...args, '--json');
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  };

  before(async () => {
    stack = await TestStack.start(portsFrom(7160));
    await stack.provisionUsers(['alice', 'bob', 'carol'], pw);
    alicePort = stack.sippPort();
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'alice', ct_port: String(alicePort), expires: '600' },
      args: auth('alice'),
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // bob watches alice (pending: she has not decided); the one NOTIFY after the first is the final one
    watcher = stack.sipp(
      {
        name: 'watch-alice',
        xml: subscriberScenario({
          event: 'presence',
          accept: 'application/pidf+xml',
          more: 1,
          unsubscribe: false,
          notifyTimeoutMs: 30000,
        }),
      },
      { set: { user: 'bob', target: 'alice' }, args: auth('bob'), timeoutMs: 40000 },
    );
    await stack.sippLogged(watcher.dir, /SUBSCRIBED/);
    for (const text of ['first for carol', 'second for carol']) {
      const r = await stack.sipp(messageScenario({ final: 202, body: text }), {
        set: { user: 'alice', to: 'carol' },
        args: auth('alice'),
      });
      assert.equal(r.exitCode, 0, r.stdout);
    }
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('user: registrations, watchers, subscriptions and stored messages, as a table and as JSON', async () => {
    const table = await ctl('user', 'alice');
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^user:\s+sip:alice@example\.com$/m);
    assert.match(table.stdout, /^registrations:\s+1$/m);
    assert.match(table.stdout, /^watchers:\s+1$/m);
    assert.match(table.stdout, new RegExp(`sip:alice@127\\.0\\.0\\.1:${alicePort}`));
    assert.match(table.stdout, /presence\s+sip:bob@example\.com\s+sip:alice@example\.com\s+pending/);

    const bob = await json('user', 'sip:bob@example.com');
    assert.deepEqual(
      (bob.subscriptions as Array<Record<string, unknown>>).map((s) => [s.event, s.resource, s.state]),
      [['presence', 'sip:alice@example.com', 'pending']],
    );
    assert.deepEqual(bob.registrations, []);

    const carol = await json('user', 'carol');
    const stored = carol.storedMessages as { count: number; messages: Array<Record<string, unknown>> };
    assert.equal(stored.count, 2);
    assert.deepEqual(
      stored.messages.map((m) => [m.from, m.state]),
      [
        ['sip:alice@example.com', 'pending'],
        ['sip:alice@example.com', 'pending'],
      ],
    );
    assert.equal(typeof carol.historySize, 'number');

    const nobody = await ctl('user', 'mallory@elsewhere.example');
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /not a user of example\.com/);
  });

  it('subscriptions by package, then end-subscription sends the watcher its final NOTIFY', async () => {
    const all = await json('subscriptions');
    assert.equal((all.byPackage as Record<string, number>).presence, 1);
    const listed = await ctl('subscriptions', '--package', 'presence');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^presence\s+1$/m);
    const [sub] = (await json('subscriptions', '--package', 'presence')).subscriptions as Array<{ id: string }>;

    const ended = await ctl('end-subscription', sub!.id);
    assert.equal(ended.code, 0, ended.stderr);
    const done = await watcher;
    assert.equal(done.exitCode, 0, done.stdout);
    assert.match(done.messages, /Subscription-State: terminated;reason=deactivated/);
    assert.equal(((await json('subscriptions')).byPackage as Record<string, number>).presence, undefined);

    const again = await ctl('end-subscription', sub!.id);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no live subscription/);
  });

  it('expire-mailbox ends the stored messages with their CDRs; cdrs shows them', async () => {
    const r = await ctl('expire-mailbox', 'carol');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 stored message\(s\) for sip:carol@example\.com expired/);
    assert.equal(((await json('user', 'carol')).storedMessages as { count: number }).count, 0);

    const cdrs = await eventually(
      async () => {
        const list = (await json('cdrs', '--limit', '50')) as unknown as Array<Record<string, unknown>>;
        return list.filter((c) => c.outcome === 'expired').length === 2 ? list : undefined;
      },
      5000,
      'two expired CDRs',
    );
    assert.ok(cdrs.every((c) => typeof c.localRecordSequenceNumber === 'number'));
    const table = await ctl('cdrs', '--limit', '3');
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^SEQ\s+TIME\s+SERVICE\s+ROLE\s+FROM\s+TO\s+OUTCOME\s+SESSION$/);
    assert.equal(lines.length, 2 + 3, 'header, rule and the last three records');
    assert.match(lines.at(-1)!, /expired/);
  });

  it('cdrs --follow prints the records of new traffic as they are written; reload reports applied and restart settings', async () => {
    const follow = spawn(
      process.execPath,
      [join(ROOT, 'build/as/src/cli/ims-ctl.js'), 'cdrs', '--follow', '--json', '--limit', '1'],
      {
        env: {
          ...process.env,
          AS_CONFIG: '',
          ISC_PORT: String(stack.ports.isc),
          ISC_SECRET: stack.secret,
          AS_ADMIN_TOKEN: stack.adminToken,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    follow.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => follow.once('exit', r));
    try {
      await eventually(() => (out.split('\n').filter(Boolean).length >= 1 ? true : undefined), 5000, 'the latest CDR');
      const already = out.split('\n').filter(Boolean).length;
      const r = await stack.sipp(messageScenario({ final: 202, body: 'followed' }), {
        set: { user: 'alice', to: 'carol' },
        args: auth('alice'),
      });
      assert.equal(r.exitCode, 0, r.stdout);
      const callId = /Call-ID: (.*)/.exec(r.messages)![1]!.trim();
      const fresh = await eventually(
        () => {
          const lines = out
            .split('\n')
            .filter(Boolean)
            .slice(already)
            .map((l) => JSON.parse(l) as Record<string, unknown>);
          return lines.some((c) => c.sessionId === callId) ? lines : undefined;
        },
        8000,
        'the new CDR on the follow output',
      );
      const seqs = fresh.map((c) => c.localRecordSequenceNumber as number);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'in order, each once',
      );
      assert.equal(new Set(seqs).size, seqs.length);
    } finally {
      follow.kill('SIGINT');
      await exited;
    }

    const reload = await ctl('reload');
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, /^applied:\nSETTING\s+FROM\s+TO/m);
    assert.match(reload.stdout, /need a restart:\nSETTING\s+RUNNING\s+CONFIGURED/);
  });

  it('health as a table (exit 0), and a wrong token or a stopped AS is an error (exit 1)', async () => {
    const h = await ctl('health');
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^status:\s+ok$/m);
    assert.match(h.stdout, /^store\s+yes\s/m);
    assert.match(h.stdout, /^kamailio\s+yes\s/m);

    const wrong = await ctl('subscriptions', '--token', 'not-the-token');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /refused the admin token/);
    const away = await ctl('health', '--url', 'http://127.0.0.1:1', '--token', 'x');
    assert.equal(away.code, 1);
    assert.match(away.stderr, /does not answer/);
    const usage = await ctl('user');
    assert.equal(usage.code, 2);
  });
});
