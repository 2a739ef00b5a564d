/**
 * Reloading a running AS (SIGHUP, POST /admin/reload) under traffic: a limit changed in the
 * configuration file applies at once (a MESSAGE over the new im.maxMessageBytes is refused
 * 413 with the new Max-Message-Size), while a stream of MESSAGEs sent meanwhile through the
 * real Kamailio sees no failed transaction; a changed setting that needs a restart is named
 * in the log and in the admin answer, and is not applied; an invalid file changes nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { messageScenario } from './im-scenarios.js';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-1`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reload of the settings on a running AS', () => {
  let stack: TestStack;
  let configFile = '';
  const writeConfig = (settings: Record<string, unknown>) =>
    writeFileSync(configFile, JSON.stringify(settings, null, 2));
  const send = (body: string, final: number, extra: string[] = []) =>
    stack.sipp(messageScenario({ final, body }), {
      set: { user: 'alice', to: 'bob' },
      args: ['-au', 'alice', '-ap', pw('alice'), ...extra],
    });

  before(async () => {
    // the stack's own settings come from the environment; the file holds what the test changes
    const dir = mkdtempSync(join(tmpdir(), 'reload-cfg-'));
    configFile = join(dir, 'as.json');
    writeFileSync(configFile, JSON.stringify({ im: { maxMessageBytes: 4000 }, charging: { rotateSeconds: 3600 } }));
    // (LOG_LEVEL empty: the file's log.level counts, so that a reload can change it)
    stack = await TestStack.start(portsFrom(7060), { AS_CONFIG: configFile, LOG_LEVEL: '' });
    await stack.provisionUsers(['alice', 'bob'], pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('SIGHUP applies a new im.maxMessageBytes during traffic with no failed transaction', async () => {
    const big = 'x'.repeat(1500);
    // before: 1500 bytes are within the limit (bob is offline: stored, 202)
    const accepted = await send(big, 202);
    assert.equal(accepted.exitCode, 0, accepted.stdout);

    // 120 small MESSAGEs at 20 per second, the reload in their middle
    const traffic = send('still flowing', 202, ['-m', '120', '-r', '20', '-l', '20']);
    await sleep(2500);
    writeConfig({ im: { maxMessageBytes: 1000 }, charging: { rotateSeconds: 60 }, xdm: { maxDepth: 20 } });
    stack.signalAsNoExit('SIGHUP');
    await eventually(
      () => (/settings reloaded/.test(stack.logOf('as')) ? true : undefined),
      5000,
      'the reload log line',
    );

    const refused = await send(big, 413);
    assert.equal(refused.exitCode, 0, refused.stdout);
    assert.match(refused.messages, /SIP\/2\.0 413[\s\S]*Max-Message-Size: 1000/);

    const flow = await traffic;
    assert.equal(flow.exitCode, 0, `every MESSAGE of the traffic got its 202:\n${flow.stdout.slice(-3000)}`);
    assert.match(flow.stdout, /Successful call\s+\|\s+\d+\s+\|\s+120/);
    assert.ok(stack.asRunning, 'the AS is still running');

    const log = stack.logOf('as');
    const reloaded = log.split('\n').find((l) => l.includes('settings reloaded'))!;
    assert.match(reloaded, /"path":"im.maxMessageBytes","env":"IM_MAX_MESSAGE_BYTES","from":4000,"to":1000/);
    assert.match(reloaded, /"path":"charging.rotateSeconds"/);
    // a setting that needs a restart is named, and not applied
    assert.match(log, /take effect only after a restart: xdm.maxDepth/);
  });

  it('a reloaded log.level reaches every component: info lines stop at warn and come back at info', async () => {
    const infoLinesOf = (log: string) => log.split('\n').filter((l) => l.includes('"level":"info"')).length;
    const register = async () => {
      const r = await stack.sipp('register', {
        final: 200,
        set: { user: 'bob', ct_port: String(stack.sippPort()), expires: '60' },
        args: ['-au', 'bob', '-ap', pw('bob')],
      });
      assert.equal(r.exitCode, 0, r.stdout);
    };
    writeConfig({
      im: { maxMessageBytes: 1000 },
      charging: { rotateSeconds: 60 },
      xdm: { maxDepth: 20 },
      log: { level: 'warn' },
    });
    const quiet = await stack.admin('POST', '/reload');
    assert.deepEqual(
      (quiet.json.applied as Array<{ path: string }>).map((c) => c.path),
      ['log.level'],
    );
    assert.match(stack.logOf('as'), /"to":"warn"[^\n]*settings reloaded/, 'the reload to warn is itself still logged');
    const before = infoLinesOf(stack.logOf('as'));
    await register();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(infoLinesOf(stack.logOf('as')), before, 'no info line from any component at warn');

    writeConfig({
      im: { maxMessageBytes: 1000 },
      charging: { rotateSeconds: 60 },
      xdm: { maxDepth: 20 },
      log: { level: 'info' },
    });
    assert.equal((await stack.admin('POST', '/reload')).status, 200);
    await register();
    await eventually(
      () =>
        /"svc":"registrations"[^\n]*registration (registered|refreshed)/.test(
          stack.logOf('as').split('"to":"info"')[1] ?? '',
        )
          ? true
          : undefined,
      5000,
      'an info line of the registrations component after the reload to info',
    );
  });

  it('reloaded presence expiry bounds apply to PUBLISH and SUBSCRIBE at once (423 with the new Min-Expires)', async () => {
    const publish = (expect: number) =>
      stack.sipp(
        { name: 'publish', xml: publisherScenario([{ kind: 'initial', basic: 'open', expires: 90, expect }]) },
        { set: { user: 'alice' }, args: ['-au', 'alice', '-ap', pw('alice')] },
      );
    const subscribe = (expectFinal: number) =>
      stack.sipp(
        {
          name: 'subscribe',
          xml: subscriberScenario({ event: 'presence', expires: 90, expectFinal, unsubscribe: true }),
        },
        { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', pw('bob')] },
      );
    const accepted = await publish(200);
    assert.equal(accepted.exitCode, 0, accepted.stdout);

    writeConfig({
      im: { maxMessageBytes: 1000 },
      charging: { rotateSeconds: 60 },
      xdm: { maxDepth: 20 },
      presence: { minExpires: 120 },
    });
    const r = await stack.admin('POST', '/reload');
    assert.deepEqual(
      (r.json.applied as Array<{ path: string; to: unknown }>).map((c) => [c.path, c.to]),
      [['presence.minExpires', 120]],
    );
    const brief = await publish(423);
    assert.equal(brief.exitCode, 0, brief.stdout);
    assert.match(brief.messages, /SIP\/2\.0 423[\s\S]*Min-Expires: 120/);
    const sub = await subscribe(423);
    assert.equal(sub.exitCode, 0, sub.stdout);
    assert.match(sub.messages, /SIP\/2\.0 423[\s\S]*Min-Expires: 120/);
  });

  it('POST /admin/reload answers what was applied and what needs a restart; an invalid file changes nothing', async () => {
    writeConfig({
      im: { maxMessageBytes: 1200 },
      charging: { rotateSeconds: 60 },
      xdm: { maxDepth: 20 },
      presence: { minExpires: 120 },
    });
    const ok = await stack.admin('POST', '/reload');
    assert.equal(ok.status, 200);
    assert.deepEqual(
      (ok.json.applied as Array<{ path: string; to: unknown }>).map((c) => [c.path, c.to]),
      [['im.maxMessageBytes', 1200]],
    );
    // still different from the running value: the first reload did not apply it
    assert.deepEqual(
      (ok.json.needRestart as Array<{ path: string; from: unknown }>).map((c) => [c.path, c.from]),
      [['xdm.maxDepth', 32]],
    );

    writeConfig({ im: { maxMessageBytes: 'lots' } });
    const bad = await stack.admin('POST', '/reload');
    assert.equal(bad.status, 422);
    assert.match(JSON.stringify(bad.json.problems), /im.maxMessageBytes/);
    const still = await send('y'.repeat(1300), 413);
    assert.equal(still.exitCode, 0, 'the limit of the last valid reload (1200) still holds');
    assert.match(still.messages, /Max-Message-Size: 1200/);
    assert.match(await stack.metrics(), /ims_as_config_reloads_total\{result="refused"\} 1/);

    const noToken = await fetch(`http://127.0.0.1:${stack.ports.isc}/admin/reload`, { method: 'POST' });
    assert.equal(noToken.status, 401);
    assert.ok(readFileSync(configFile, 'utf8'));
  });
});
