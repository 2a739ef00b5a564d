/**
 * No failure stops the AS, end to end with real Kamailio, AS and sipp on loopback:
 * - an unhandled rejection inside the running AS is logged and counted, and the AS keeps
 *   answering SIP (the rejection is injected: a module loaded with `node --import` rejects
 *   a promise on SIGUSR2, since a correct AS has no such bug to trigger from outside);
 * - a real store fault (the data directory is a small tmpfs that the test fills up, so the
 *   store's writes fail with ENOSPC) during MESSAGE traffic: clients get a prompt 503 with
 *   Retry-After, XCAP clients too, /health names the store, the AS does not exit, and once
 *   space is back the traffic succeeds and every message acknowledged 202 is delivered;
 * - SIGTERM during MESSAGE traffic: every request the AS took gets its real answer (no
 *   decision is left for Kamailio's fr_timer), and what was acknowledged is delivered after
 *   a restart.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { INJECTED_REJECTION } from './fixtures/reject-on-signal.js';
import { receivedMessages, receiverScenario } from './im-scenarios.js';
import { ROOT, TestStack, eventually, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol', 'dave', 'erin'];
const pw = (user: string) => `${user}-pw-1`;
const FIXTURE = join(ROOT, 'build/test/e2e/fixtures/reject-on-signal.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CAROLS_LIST = '/xcap-root/resource-lists/users/sip:carol@example.com/index';

/** A contact list of about 16 KB: its write needs new pages of the file system. */
function bigList(): string {
  const entries = Array.from({ length: 400 }, (_, i) => `<entry uri="sip:friend-${i}@example.com"/>`).join('');
  return `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="friends">${entries}</list></resource-lists>`;
}

/**
 * MESSAGEs from [$user] to [$to], each with its own text, that take whatever final answer
 * comes: the test reads the answers from the trace. A call that gets none fails in sipp
 * (its -timeout), so a hang shows.
 */
function anyFinalMessages(tag: string): { name: string; xml: string } {
  const request = (cseq: number, auth: boolean) => `
  <send retrans="500">
    <![CDATA[

      MESSAGE sip:[$to]@[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=[pid]m[call_number]
      To: <sip:[$to]@[$domain]>
      Call-ID: [call_id]
      CSeq: ${cseq} MESSAGE${auth ? '\n      [authentication]' : ''}
      Max-Forwards: 70
      Content-Type: text/plain
      Content-Length: [len]

${tag} [call_id]
    ]]>
  </send>`;
  return {
    name: `any-final-${tag}`,
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="any-final">
  <Global variables="user,domain,to" />
  ${request(1, false)}
  <recv response="407" auth="true" optional="true" next="auth" />
  <recv response="202" optional="true" next="end" />
  <recv response="500" optional="true" next="end" />
  <recv response="503" next="end" />
  <label id="auth" />
  ${request(2, true)}
  <recv response="202" optional="true" next="end" />
  <recv response="500" optional="true" next="end" />
  <recv response="503" next="end" />
  <label id="end" />
</scenario>`,
  };
}

interface Final {
  code: number;
  retryAfter: boolean;
}

/** The final answer of each call (by Call-ID) in a sipp trace. */
function finals(trace: string): Map<string, Final> {
  const out = new Map<string, Final>();
  const re = /message received[^\n]*\n+(SIP\/2\.0 (\d{3})[^\n]*\n[\s\S]*?)(?=\n-{20,}|$)/g;
  for (let m = re.exec(trace); m; m = re.exec(trace)) {
    const code = Number(m[2]);
    if (code < 200 || code === 407) continue;
    const callId = /\nCall-ID:\s*([^\r\n]+)/i.exec(m[1]!)?.[1]?.trim();
    if (callId) out.set(callId, { code, retryAfter: /\nRetry-After:\s*\d+/i.test(m[1]!) });
  }
  return out;
}

/** Counts answers by code. */
function tally(fs: Map<string, Final>): Record<number, number> {
  const t: Record<number, number> = {};
  for (const f of fs.values()) t[f.code] = (t[f.code] ?? 0) + 1;
  return t;
}

/** A small tmpfs for the store's data directory, or why there can be none here. */
function mountTmpfs(megabytes: number): { dir: string } | { why: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ims-store-fault-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return {
      why: `cannot mount a tmpfs here (${String((err as { stderr?: Buffer }).stderr ?? err).trim()}): the store fault test needs root and mount`,
    };
  }
}

/** Fills the file system under `dir` with one file until it is full; returns the file. */
function fillUp(dir: string): string {
  const file = join(dir, 'filler');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return file;
}

async function health(
  stack: TestStack,
): Promise<{ status: number; body: { checks: Record<string, { ok: boolean; detail: string }> } }> {
  const res = await fetch(`http://127.0.0.1:${stack.ports.isc}/health`, { signal: AbortSignal.timeout(5000) });
  return {
    status: res.status,
    body: (await res.json()) as { checks: Record<string, { ok: boolean; detail: string }> },
  };
}

function metricValue(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('resilience: no failure stops the AS', () => {
  let stack: TestStack;
  const tmpfs = mountTmpfs(16);

  before(async () => {
    const dataDir = 'dir' in tmpfs ? join(tmpfs.dir, 'data') : '';
    stack = await TestStack.start(portsFrom(6660), {
      NODE_OPTIONS: `--import=${pathToFileURL(FIXTURE).href}`,
      IM_SWEEP_SECONDS: '1',
      IM_RETRY_BASE_SECONDS: '1',
      ...(dataDir ? { AS_DATA_DIR: dataDir } : {}),
    });
    await stack.provisionUsers(USERS, pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
    if ('dir' in tmpfs) {
      execFileSync('umount', [tmpfs.dir]);
      rmSync(tmpfs.dir, { recursive: true, force: true });
    }
  });

  /** `count` MESSAGEs from alice to `to` at `rate`/s; their finals by Call-ID. */
  async function messages(
    to: string,
    tag: string,
    count: number,
    rate: number,
    onStarted?: () => void,
  ): Promise<Map<string, Final>> {
    const run = stack.sipp(anyFinalMessages(tag), {
      set: { user: 'alice', to },
      timeoutMs: 20000,
      args: ['-au', 'alice', '-ap', pw('alice'), '-m', String(count), '-r', String(rate), '-l', String(count)],
    });
    onStarted?.();
    const r = await run;
    const got = finals(r.messages);
    assert.equal(
      got.size,
      count,
      `every MESSAGE gets a final answer (sipp exit ${r.exitCode}):\n${r.stdout.slice(-2000)}`,
    );
    return got;
  }

  /** Registers `user` on a UA that takes up to `count` MESSAGEs; their bodies once it is done. */
  async function deliverTo(user: string, count: number, quietMs: number): Promise<string[]> {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: quietMs, args: ['-m', String(count)] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const r = await uas;
    return receivedMessages(r.messages).map((m) => m.body.trim());
  }

  it('survives an unhandled rejection: logs it with its cause, counts it, and still answers SIP', async () => {
    stack.signalAs('SIGUSR2');
    const text = await eventually(
      async () => {
        const m = await stack.metrics();
        return metricValue(m, 'ims_as_process_unhandled_rejections_total') >= 1 ? m : undefined;
      },
      5000,
      'the rejection counted',
    );
    assert.equal(metricValue(text, 'ims_as_process_unhandled_rejections_total'), 1);
    // logged with its cause (the log line may reach us a moment after the metric)
    await eventually(
      () =>
        stack
          .logOf('as')
          .split('\n')
          .some((l) => l.includes('unhandled rejection') && l.includes(INJECTED_REJECTION)) || undefined,
      3000,
      'the rejection logged with its cause',
    );
    await sleep(200);
    assert.ok(stack.asRunning, 'the AS is still running');
    const answered = await messages('erin', 'after-rejection', 3, 10);
    assert.deepEqual(tally(answered), { 202: 3 }, 'MESSAGEs to an offline user are still stored and acknowledged');
    assert.equal((await health(stack)).status, 200);
  });

  it('without the handler the same injected rejection ends a Node process (the test above could fail)', async () => {
    const child = spawn(
      process.execPath,
      ['--import', pathToFileURL(FIXTURE).href, '-e', 'setInterval(() => {}, 1000)'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await sleep(500);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGUSR2');
    const code = await Promise.race([exited, sleep(5000).then(() => 'still running' as const)]);
    if (code === 'still running') child.kill('SIGKILL');
    assert.equal(code, 1, stderr);
    assert.match(stderr, new RegExp(INJECTED_REJECTION));
  });

  it(
    'store full during traffic: 503 with Retry-After (SIP and XCAP), /health names the store, then serves again and loses nothing acknowledged',
    { skip: 'why' in tmpfs ? tmpfs.why : false },
    async () => {
      const dir = (tmpfs as { dir: string }).dir;
      const before = await messages('bob', 'before-fault', 10, 20);
      assert.deepEqual(tally(before), { 202: 10 });

      const filler = fillUp(dir);
      let during: Map<string, Final>;
      const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'carol', pw('carol'));
      try {
        during = await messages('bob', 'during-fault', 10, 20);
        const put = await xcap.put(CAROLS_LIST, bigList(), 'application/resource-lists+xml');
        assert.equal(put.status, 503, 'XCAP PUT while the store is full');
        assert.match(put.headers.get('retry-after') ?? '', /^\d+$/);
        const h = await health(stack);
        assert.equal(h.status, 503);
        assert.equal(h.body.checks.store?.ok, false);
        // ENOSPC from the file system, or SQLite's own word for it (SQLITE_FULL)
        assert.match(h.body.checks.store?.detail ?? '', /ENOSPC|disk is full/);
        assert.ok(stack.asRunning, 'the AS is still running');
      } finally {
        unlinkSync(filler);
      }
      // every MESSAGE was answered (none hung): 503 with Retry-After, decided by the AS (not
      // Kamailio's fr_timer); a few may still fit in the unused end of a datafile's last page
      // (a full tmpfs refuses new pages only), and those are acknowledged 202 and kept
      const t = tally(during);
      assert.deepEqual(
        Object.keys(t).filter((c) => c !== '202' && c !== '503'),
        [],
        JSON.stringify(t),
      );
      assert.ok(
        (t[503] ?? 0) >= during.size / 2,
        `most MESSAGEs refused while the store is full: ${JSON.stringify(t)}`,
      );
      for (const [callId, f] of during)
        if (f.code === 503) assert.ok(f.retryAfter, `${callId}: 503 without Retry-After`);
      const m = await stack.metrics();
      assert.equal(
        metricValue(m, 'ims_as_isc_decisions_total{service="im",method="MESSAGE",decision="store-unavailable"}'),
        t[503],
        'the AS decided the 503s',
      );

      // space is back: the same AS serves again without a restart
      await eventually(
        async () => ((await health(stack)).status === 200 ? true : undefined),
        15000,
        '/health back to 200',
      );
      const afterFault = await messages('bob', 'after-fault', 10, 20);
      assert.deepEqual(tally(afterFault), { 202: 10 });
      const xcapAgain = await xcap.put(CAROLS_LIST, bigList(), 'application/resource-lists+xml');
      assert.ok(xcapAgain.status === 201 || xcapAgain.status === 200, `XCAP PUT after the fault: ${xcapAgain.status}`);

      // every MESSAGE acknowledged 202 reaches bob once he registers, exactly once
      const acknowledgedDuring = [...during].filter(([, f]) => f.code === 202).map(([callId]) => callId);
      const acknowledged = [...before.keys(), ...acknowledgedDuring, ...afterFault.keys()];
      // (a refused message delivered anyway would take the place of an acknowledged one)
      const delivered = await deliverTo('bob', acknowledged.length, 12000);
      for (const callId of acknowledged) {
        const copies = delivered.filter((b) => b.endsWith(` ${callId}`)).length;
        assert.equal(copies, 1, `acknowledged MESSAGE ${callId} delivered ${copies} times`);
      }
      // and what was refused (503) never shows up later: the client may well send it again
      const refused = [...during].filter(([, f]) => f.code === 503).map(([callId]) => callId);
      for (const callId of refused)
        assert.ok(!delivered.some((b) => b.endsWith(` ${callId}`)), `MESSAGE ${callId} was answered 503 but delivered`);
    },
  );

  it('SIGTERM during traffic: every request the AS took gets its real answer, and what was acknowledged is delivered after a restart', async () => {
    const sent = 300;
    let stopped: Promise<number | null> | undefined;
    const got = await messages('dave', 'shutdown', sent, 150, () => {
      // about a second into the run, while decisions are in flight
      setTimeout(() => {
        stopped = stack.signalAs('SIGTERM').exited;
      }, 1000);
    });
    assert.equal(await stopped, 0, 'the AS stopped cleanly');
    const t = tally(got);
    assert.ok((t[202] ?? 0) > 0, `some MESSAGEs answered before the stop: ${JSON.stringify(t)}`);
    assert.ok((t[503] ?? 0) > 0, `the stop came during the traffic: ${JSON.stringify(t)}`);
    assert.deepEqual(
      Object.keys(t).filter((c) => c !== '202' && c !== '503'),
      [],
      JSON.stringify(t),
    );
    // a decision the AS dropped would leave Kamailio to answer after fr_timer, and say so
    assert.doesNotMatch(stack.logOf('kamailio'), /AS gave no decision|could not hand/);
    assert.doesNotMatch(
      stack.logOf('as'),
      /decision not sent|stopped with decisions unanswered|closed with decisions or frames unconfirmed/,
    );

    await stack.startAs();
    const accepted = [...got].filter(([, f]) => f.code === 202).map(([callId]) => callId);
    const delivered = await deliverTo('dave', accepted.length, 20000);
    for (const callId of accepted) {
      assert.equal(
        delivered.filter((b) => b.endsWith(` ${callId}`)).length,
        1,
        `acknowledged MESSAGE ${callId} delivered once`,
      );
    }
  });
});
