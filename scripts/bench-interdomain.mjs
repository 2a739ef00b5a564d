#!/usr/bin/env node
// MESSAGE/s from example.com to example.net, both operators on this machine (two Kamailio,
// two AS, a dnsmasq; the harness of test/e2e/interdomain-stack.ts, built), with the cores
// talking mutual TLS in one half of the run and TCP in the other, at the same offered rates.
// The sender is sipp as a trusted source of example.com (WITH_TRUSTED_PEER on one port: no
// digest round trip), the receiver one sipp UA registered as bob at example.net.
// Needs root (Kamailio runs in a mount namespace with the test's resolv.conf).
//
//   node scripts/bench-interdomain.mjs [OUT]      (after npx tsc -p tsconfig.json)
//   RATES="100 200" DURATION=10 node scripts/bench-interdomain.mjs
//
// Results: OUT/results.json and one line per run on stdout.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { Interdomain } = await import(join(ROOT, 'build/test/e2e/interdomain-stack.js'));
const OUT = resolve(process.argv[2] ?? '/tmp/bench-interdomain');
const RATES = (process.env.RATES ?? '100 200 400').split(/\s+/).filter(Boolean).map(Number);
const DURATION = Number(process.env.DURATION ?? 10);
const BASE = Number(process.env.BENCH_BASE ?? 8460);
mkdirSync(OUT, { recursive: true });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Starts sipp in `cwd`; `done` resolves with its exit code and output. */
function sipp(args, cwd) {
  const child = spawn('sipp', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise((res) => child.on('exit', (code) => res({ code, out })));
  return { child, done };
}

const SENDER = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="interdomain sender">
  <send retrans="500">
    <![CDATA[

      MESSAGE sip:bob@example.net SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:alice@example.com>;tag=[pid]m[call_number]
      To: <sip:bob@example.net>
      Call-ID: [call_id]
      CSeq: 1 MESSAGE
      Max-Forwards: 70
      Content-Type: text/plain
      Content-Length: [len]

      message [call_number] from example.com
    ]]>
  </send>
  <recv response="200" rtd="true" />
</scenario>
`;

function stats(dir) {
  const rows = readFileSync(join(dir, 'stat.csv'), 'utf8').trim().split('\n');
  const head = rows[0].split(';');
  const last = rows[rows.length - 1].split(';');
  const col = (n) => last[head.indexOf(n)];
  const [h, m, s, us] = String(col('ElapsedTime(C)')).split(':').map(Number);
  const elapsed = h * 3600 + m * 60 + s + (us || 0) / 1e6;
  const ok = Number(col('SuccessfulCall(C)'));
  return { ok, failed: Number(col('FailedCall(C)')), elapsedS: elapsed, achieved: elapsed > 0 ? Math.round(ok / elapsed) : 0 };
}

/**
 * CPU seconds used so far by one operator's processes, found in /proc by the stack's directory:
 * Kamailio names it on its command line, the AS in its environment (AS_DATA_DIR). The cost of
 * TLS between the cores shows here before it shows in the achieved rate.
 */
function cpuSeconds(stackDir) {
  const ticks = { kamailio: 0, as: 0 };
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const kind = cmdline.startsWith('kamailio') || cmdline.includes('/kamailio\0')
        ? (cmdline.includes(stackDir) ? 'kamailio' : undefined)
        : cmdline.includes('build/as/src/main.js') && readFileSync(`/proc/${pid}/environ`, 'utf8').includes(stackDir) ? 'as' : undefined;
      if (!kind) continue;
      // utime and stime: fields 14 and 15, counted after the command name's closing parenthesis
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks[kind] += Number(fields[11]) + Number(fields[12]);
    } catch {
      // the process ended while we read it
    }
  }
  return { kamailio: ticks.kamailio / 100, as: ticks.as / 100 };
}
const cpuOfBoth = (two) => ({ com: cpuSeconds(two.com.dir), net: cpuSeconds(two.net.dir) });
/** CPU milliseconds per MESSAGE between two readings of cpuOfBoth. */
function cpuPerMessage(before, after, messages) {
  const per = (a, b) => (messages > 0 ? Math.round(((a - b) * 1e6) / messages) / 1000 : NaN);
  return {
    kamailioComMs: per(after.com.kamailio, before.com.kamailio),
    asComMs: per(after.com.as, before.com.as),
    kamailioNetMs: per(after.net.kamailio, before.net.kamailio),
    asNetMs: per(after.net.as, before.net.as),
  };
}

const results = [];
for (const mode of ['tls', 'tcp']) {
  const offset = Number(process.env.E2E_PORT_OFFSET ?? 0);
  const senderPort = BASE + 30 + offset;
  const two = await Interdomain.start(BASE, {
    tcpOnly: mode === 'tcp',
    // TCP: the cores know each other by address; TLS: by certificate (the default)
    ...(mode === 'tcp' ? { peers: { com: 'example.net=127.0.0.2', net: 'example.com=127.0.0.1' } } : {}),
    kamailioDefines: ['WITH_TRUSTED_PEER', `TRUSTED_PEER_PORTS="^${senderPort}$"`, 'WITHOUT_ANTIFLOOD'],
    // one sender and one recipient: the per-user limits (issue 20) would cap the run, as in scripts/bench/stack.sh
    env: { LOG_LEVEL: 'warn', CDR_JSONL: 'false', IM_MESSAGES_PER_MINUTE: '0', IM_GROUP_MESSAGES_PER_MINUTE: '0', PRESENCE_SUBSCRIBES_PER_MINUTE: '0' },
  });
  try {
    await two.com.provisionUsers(['alice'], (u) => `${u}-bench`);
    await two.net.provisionUsers(['bob'], (u) => `${u}-bench`);
    const dir = join(OUT, mode);
    mkdirSync(join(dir, 'uas'), { recursive: true });
    writeFileSync(join(dir, 'sender.xml'), SENDER);
    const uasPort = two.net.sippPort();
    const uas = sipp(
      ['127.0.0.2:' + two.net.ports.sip, '-sf', join(ROOT, 'scripts/bench/scenarios/uas.xml'), '-i', '127.0.0.2', '-p', String(uasPort),
        '-cp', String(uasPort + 20000), '-mp', String(30000 + (uasPort % 5000) * 4), '-nostdin', '-m', '100000000'],
      join(dir, 'uas'),
    );
    await sleep(300);
    const reg = await two.net.sipp('register', {
      final: 200,
      set: { user: 'bob', ct_port: String(uasPort), expires: '3600' },
      args: ['-au', 'bob', '-ap', 'bob-bench'],
    });
    if (reg.exitCode !== 0) throw new Error(`registration failed: ${reg.stdout}`);
    for (const rate of RATES) {
      const rdir = join(dir, `r${rate}`);
      mkdirSync(rdir, { recursive: true });
      const cpuBefore = cpuOfBoth(two);
      const r = await sipp(
        ['127.0.0.1:' + two.com.ports.sip, '-sf', join(dir, 'sender.xml'), '-i', '127.0.0.1', '-p', String(senderPort),
          '-cp', String(senderPort + 20000), '-mp', String(30000 + (senderPort % 5000) * 4), '-nostdin',
          '-r', String(rate), '-m', String(rate * DURATION), '-trace_stat', '-stf', 'stat.csv', '-fd', '1',
          '-recv_timeout', '5000', '-timeout', `${DURATION + 30}s`],
        rdir,
      ).done;
      const measured = stats(rdir);
      const line = { mode, offered: rate, ...measured, sippExit: r.code, cpuPerMessage: cpuPerMessage(cpuBefore, cpuOfBoth(two), measured.ok) };
      results.push(line);
      console.log(JSON.stringify(line));
    }
    uas.child.kill('SIGTERM');
    await uas.done;
  } finally {
    await two.stop();
  }
}
writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2));
