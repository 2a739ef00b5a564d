#!/usr/bin/env node
// XCAP throughput of the XDMS (issue #4): GET and PUT of a 100-entry resource-lists document,
// whole and by node selector, next to a bare koa handler measured on the same machine in the
// same run. The figure is the ratio XCAP / bare koa for the same method.
//
// Usage: npx tsc -p tsconfig.json && node scripts/bench-xcap.mjs [OUTDIR]   (default /tmp/bench-xcap)
// Knobs (environment): DURATION=10 (s per case), WARMUP=2 (s, unrecorded, per case),
//   CONNECTIONS=32, USERS=100, ENTRIES=100, DIGEST=1 (0: skip the digest-authenticated case),
//   ONLY=name,name (run only these cases, e.g. ONLY=koa-put,xcap-put-doc),
//   AS_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (extra node arguments for the AS, to profile it).
//
// What runs where (all on 127.0.0.1, nothing else is contacted):
// - the AS as a child process, `node build/as/src/main.js`, on the embedded store in a temp
//   dir, Kamailio pointed at a closed port and the evapi stream off. It trusts 127.0.0.1 as
//   an aggregation proxy (XDM_TRUSTED_PROXIES), so requests carry X-3GPP-Asserted-Identity
//   as they do behind an authenticating proxy (3GPP TS 33.222) and no digest round trip is
//   measured; the "digest" case measures the same GET with a precomputed Authorization;
// - the peer, a bare koa app in a second child process (this file with --peer): one handler
//   that returns the same document bytes for GET and reads a PUT body fully, then 200;
// - autocannon in this process (the load generator), one case after the other.
// Each autocannon connection owns a fixed subset of the users (user u goes to connection
// u mod CONNECTIONS), so no two in-flight requests touch the same document (while CONNECTIONS
// <= USERS): concurrent PUTs on one document without If-Match get 412s from the AS, and those
// are not what is measured here (USERS=1 CONNECTIONS=8 ONLY=xcap-put-doc shows them).
//
// Output: one table on stdout; OUTDIR/<case>.json (raw autocannon result), OUTDIR/summary.json,
// OUTDIR/as.log (the AS's log). Child processes are killed at the end, on SIGINT/SIGTERM, and
// by a watchdog if the run overstays its time.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');

const RL_TYPE = 'application/resource-lists+xml';
const EL_TYPE = 'application/xcap-el+xml';
const DOMAIN = 'example.com';

/** A resource-lists document: one list "l" with `n` entries, each with a display-name. */
function resourceList(user, n) {
  const entries = [];
  for (let i = 1; i <= n; i++) {
    entries.push(`    <entry uri="sip:${user}-c${i}@${DOMAIN}">\n      <display-name>Contact ${i} of ${user}</display-name>\n    </entry>`);
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">\n  <list name="l">\n${entries.join('\n')}\n  </list>\n</resource-lists>\n`;
}

// ---------------------------------------------------------------------------------------
// Peer mode: the bare koa app (a child process of the benchmark)
// ---------------------------------------------------------------------------------------

if (process.argv[2] === '--peer') {
  const port = Number(process.argv[3]);
  const entries = Number(process.argv[4] ?? 100);
  const { default: Koa } = await import('koa');
  const body = Buffer.from(resourceList('u000', entries));
  const app = new Koa();
  app.use(async (ctx) => {
    if (ctx.method === 'GET') {
      ctx.set('ETag', '"peer-etag-0123456789"');
      ctx.type = RL_TYPE;
      ctx.body = body;
      return;
    }
    if (ctx.method === 'PUT') {
      const chunks = [];
      for await (const chunk of ctx.req) chunks.push(chunk);
      const received = Buffer.concat(chunks);
      // the reply an XCAP PUT gets: 200, an ETag, no body and no Content-Type
      ctx.set('ETag', `"peer-${received.length}"`);
      ctx.status = 200;
      ctx.body = '';
      ctx.remove('Content-Type');
      return;
    }
    ctx.status = 405;
  });
  const server = app.listen(port, '127.0.0.1', () => process.send?.('ready'));
  server.keepAliveTimeout = 65_000;
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

// ---------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------

async function main() {
  const outDir = resolve(process.argv[2] ?? '/tmp/bench-xcap');
  const DURATION = Number(process.env.DURATION ?? 10);
  const WARMUP = Number(process.env.WARMUP ?? 2);
  const CONNECTIONS = Number(process.env.CONNECTIONS ?? 32);
  const USERS = Number(process.env.USERS ?? 100);
  const ENTRIES = Number(process.env.ENTRIES ?? 100);
  const DIGEST = (process.env.DIGEST ?? '1') !== '0';
  for (const [k, v] of Object.entries({ DURATION, WARMUP, CONNECTIONS, USERS, ENTRIES })) {
    if (!Number.isInteger(v) || v < (k === 'WARMUP' ? 0 : 1)) throw new Error(`${k} must be a positive integer`);
  }
  if (ENTRIES < 37) throw new Error('ENTRIES must be at least 37 (the node cases select entry 37)');

  const mainJs = join(repo, 'build/as/src/main.js');
  try {
    readFileSync(mainJs);
  } catch {
    throw new Error(`${mainJs} missing: run npx tsc -p tsconfig.json first`);
  }
  const { default: autocannon } = await import('autocannon');
  const { digestResponse } = await import('../build/as/src/http/digest.js');

  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(join(os.tmpdir(), 'bench-xcap-'));
  const children = new Set();

  // ---- cleanup: every exit path kills the children and removes the temp dir
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      console.error(`\n${sig}: stopping`);
      cleanup();
      process.exit(130);
    });
  }
  const cases = 7;
  const budgetMs = (cases * (DURATION + WARMUP) + 180) * 1000;
  const watchdog = setTimeout(() => {
    console.error(`watchdog: the run took more than ${budgetMs / 1000} s, stopping`);
    cleanup();
    process.exit(3);
  }, budgetMs);
  watchdog.unref();

  const [iscPort, xdmPort, closedPort, peerPort] = await freePorts(4);
  const adminToken = 'bench-admin-token-0123456789';
  const logFd = openSync(join(outDir, 'as.log'), 'w');
  const asArgs = (process.env.AS_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const as = spawn(process.execPath, [...asArgs, mainJs], {
    cwd: repo,
    stdio: ['ignore', logFd, logFd],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ISC_SECRET: 'bench-xcap-secret-0123456789abcdef',
      ISC_PORT: String(iscPort),
      XDM_PORT: String(xdmPort),
      XDM_TRUSTED_PROXIES: '127.0.0.1',
      AS_DATA_DIR: join(work, 'data'),
      CDR_DIR: join(work, 'cdr'),
      KAMAILIO_HTTP_URL: `http://127.0.0.1:${closedPort}`,
      KAMAILIO_EVAPI_ADDR: '',
      MONGODB_URI: '',
      AS_CONFIG: '',
      AS_ADMIN_TOKEN: adminToken,
      SIP_DOMAIN: DOMAIN,
      LOG_LEVEL: 'info',
      NODE_ENV: 'production',
    },
  });
  closeSync(logFd);
  children.add(as);
  as.on('exit', (code, signal) => {
    if (!cleaned) {
      console.error(`the AS exited (code ${code}, signal ${signal}) during the run; see ${join(outDir, 'as.log')}`);
      cleanup();
      process.exit(1);
    }
  });

  const peer = spawn(process.execPath, [fileURLToPath(import.meta.url), '--peer', String(peerPort), String(ENTRIES)], {
    cwd: repo,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(peer);
  const peerReady = new Promise((res, rej) => {
    peer.once('message', (m) => (m === 'ready' ? res() : rej(new Error(`peer: ${m}`))));
    peer.once('exit', (code) => rej(new Error(`the koa peer exited (code ${code})`)));
  });

  const xcapBase = `http://127.0.0.1:${xdmPort}`;
  const peerBase = `http://127.0.0.1:${peerPort}`;
  await waitHttp(xcapBase + '/', 20_000, 'the AS (XCAP port)');
  await peerReady;

  // ---- provisioning: users through the admin API, one document each over XCAP
  const users = Array.from({ length: USERS }, (_, i) => `u${String(i).padStart(3, '0')}`);
  const docPath = (u) => `/xcap-root/resource-lists/users/sip:${u}@${DOMAIN}/index`;
  const ENTRY = 'resource-lists/list%5b@name=%22l%22%5d/entry%5b37%5d';
  const nodePath = (u) => `${docPath(u)}/~~/${ENTRY}`;
  const namePath = (u) => `${docPath(u)}/~~/${ENTRY}/display-name`;
  const asserted = (u) => ({ 'X-3GPP-Asserted-Identity': `<sip:${u}@${DOMAIN}>` });
  const docs = new Map(users.map((u) => [u, Buffer.from(resourceList(u, ENTRIES))]));
  const renamed = Buffer.from('<display-name>Contact 37 (renamed)</display-name>');

  const t0 = Date.now();
  for (const u of users) {
    const r = await fetch(`http://127.0.0.1:${iscPort}/admin/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: u, password: `pw-${u}-secret` }),
    });
    if (r.status !== 201) throw new Error(`provisioning ${u}: ${r.status} ${await r.text()}`);
  }
  for (const u of users) {
    const r = await fetch(xcapBase + docPath(u), { method: 'PUT', headers: { ...asserted(u), 'content-type': RL_TYPE }, body: docs.get(u) });
    if (r.status !== 201) throw new Error(`PUT ${docPath(u)}: ${r.status} ${await r.text()}`);
  }
  console.log(`provisioned ${USERS} users and ${USERS} documents of ${ENTRIES} entries (${docs.get(users[0]).length} bytes each) in ${Date.now() - t0} ms`);

  // ---- sanity: each case answers what it should before it is measured
  {
    const g = await fetch(xcapBase + docPath(users[0]), { headers: asserted(users[0]) });
    const body = await g.text();
    if (g.status !== 200 || body !== docs.get(users[0]).toString()) throw new Error(`whole GET: ${g.status}, body differs from what was PUT`);
    const n = await fetch(xcapBase + nodePath(users[0]), { headers: asserted(users[0]) });
    const nb = await n.text();
    if (n.status !== 200 || !nb.includes(`sip:${users[0]}-c37@`)) throw new Error(`node GET: ${n.status} ${nb}`);
    const p = await fetch(xcapBase + namePath(users[0]), { method: 'PUT', headers: { ...asserted(users[0]), 'content-type': EL_TYPE }, body: renamed });
    if (p.status !== 200) throw new Error(`element PUT: ${p.status} ${await p.text()}`);
    const k = await fetch(peerBase + docPath(users[0]));
    if (k.status !== 200 || (await k.arrayBuffer()).byteLength !== docs.get(users[0]).length) throw new Error('peer GET');
    const kp = await fetch(peerBase + docPath(users[0]), { method: 'PUT', headers: { 'content-type': RL_TYPE }, body: docs.get(users[0]) });
    if (kp.status !== 200) throw new Error(`peer PUT: ${kp.status}`);
  }

  // ---- digest: one challenge, then each request carries a precomputed Authorization for its URI
  const authorizations = new Map();
  const prepareDigest = async () => {
    const c = await fetch(xcapBase + docPath(users[0]));
    const m = /nonce="([^"]+)"/.exec(c.headers.get('www-authenticate') ?? '');
    if (c.status !== 401 || !m) throw new Error(`no digest challenge: ${c.status}`);
    const realm = /realm="([^"]+)"/.exec(c.headers.get('www-authenticate'))[1];
    for (const u of users) {
      authorizations.set(u, digestResponse({ username: u, password: `pw-${u}-secret`, realm, nonce: m[1], method: 'GET', uri: docPath(u), nc: '00000001', cnonce: `cn-${u}` }));
    }
    const r = await fetch(xcapBase + docPath(users[0]), { headers: { authorization: authorizations.get(users[0]) } });
    if (r.status !== 200) throw new Error(`digest GET: ${r.status}`);
    const again = await fetch(xcapBase + docPath(users[0]), { headers: { authorization: authorizations.get(users[0]) } });
    if (again.status !== 200) throw new Error(`digest GET with a reused Authorization: ${again.status}`);
  };

  // ---- the cases
  const CASES = [
    { name: 'koa-get', label: 'bare koa GET (peer)', base: peerBase, peer: true,
      req: (u) => ({ method: 'GET', path: docPath(u) }) },
    { name: 'xcap-get-doc', label: 'XCAP GET whole document', base: xcapBase, vs: 'koa-get',
      req: (u) => ({ method: 'GET', path: docPath(u), headers: asserted(u) }) },
    { name: 'xcap-get-node', label: 'XCAP GET entry[37]', base: xcapBase, vs: 'koa-get',
      req: (u) => ({ method: 'GET', path: nodePath(u), headers: asserted(u) }) },
    ...(DIGEST ? [{ name: 'xcap-get-doc-digest', label: 'XCAP GET whole document, digest', base: xcapBase, vs: 'koa-get', before: prepareDigest,
      req: (u) => ({ method: 'GET', path: docPath(u), headers: { authorization: authorizations.get(u) } }) }] : []),
    { name: 'koa-put', label: 'bare koa PUT (peer)', base: peerBase, peer: true,
      req: (u) => ({ method: 'PUT', path: docPath(u), headers: { 'content-type': RL_TYPE }, body: docs.get(u) }) },
    { name: 'xcap-put-doc', label: 'XCAP PUT whole document', base: xcapBase, vs: 'koa-put',
      req: (u) => ({ method: 'PUT', path: docPath(u), headers: { ...asserted(u), 'content-type': RL_TYPE }, body: docs.get(u) }) },
    { name: 'xcap-put-node', label: 'XCAP PUT entry[37]/display-name', base: xcapBase, vs: 'koa-put',
      req: (u) => ({ method: 'PUT', path: namePath(u), headers: { ...asserted(u), 'content-type': EL_TYPE }, body: renamed }) },
  ];

  const only = (process.env.ONLY ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const name of only) if (!CASES.some((c) => c.name === name)) throw new Error(`ONLY: no case ${name} (cases: ${CASES.map((c) => c.name).join(', ')})`);
  if (only.length) CASES.splice(0, CASES.length, ...CASES.filter((c) => only.includes(c.name)));

  const loadBefore = os.loadavg();
  const results = {};
  for (const c of CASES) {
    await c.before?.();
    const server = c.peer ? peer : as;
    if (WARMUP > 0) await cannon(autocannon, c, users, CONNECTIONS, WARMUP);
    const cpu0 = procCpu(server.pid);
    const busy0 = machineBusy();
    const gen0 = process.cpuUsage();
    const wall0 = process.hrtime.bigint();
    const r = await cannon(autocannon, c, users, CONNECTIONS, DURATION);
    const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
    const gen = process.cpuUsage(gen0);
    const serverCpu = (procCpu(server.pid) - cpu0) / wall;
    const genCpu = (gen.user + gen.system) / 1e6 / wall;
    // what else ran on the machine meanwhile (other processes, the kernel): all busy CPU less ours
    const otherCpu = Math.max(0, (machineBusy() - busy0) / wall - serverCpu - genCpu);
    writeFileSync(join(outDir, `${c.name}.json`), JSON.stringify({ ...r, serverCpu, generatorCpu: genCpu, otherCpu }, null, 2));
    results[c.name] = { case: c, r, serverCpu, genCpu, otherCpu };
    const codes = Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => `${k}:${v.count}`).join(' ');
    console.log(`  ${c.label.padEnd(34)} ${fmt(r.requests.average).padStart(8)} req/s  [${codes}]  server CPU ${(serverCpu * 100).toFixed(0)}%, generator CPU ${(genCpu * 100).toFixed(0)}%, other ${(otherCpu * 100).toFixed(0)}%`);
  }
  const loadAfter = os.loadavg();

  // ---- the table
  // cost: server CPU microseconds per request, a figure other load on the machine disturbs less
  // than requests/s (a server that does not get a whole core serves fewer requests, at the same cost)
  const costOf = (name) => (results[name].serverCpu / results[name].r.requests.average) * 1e6;
  const rows = CASES.map((c) => {
    const { r, serverCpu, genCpu, otherCpu } = results[c.name];
    const peerOk = c.vs && results[c.vs];
    return {
      case: c.label,
      name: c.name,
      peer: Boolean(c.peer),
      rps: r.requests.average,
      total: r.requests.total,
      p50: r.latency.p50,
      p99: r.latency.p99,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      ratio: peerOk ? r.requests.average / results[c.vs].r.requests.average : null,
      costUs: costOf(c.name),
      costRatio: peerOk ? costOf(c.vs) / costOf(c.name) : null,
      serverCpu,
      genCpu,
      otherCpu,
    };
  });
  const cpu = os.cpus();
  const machine = {
    cpus: `${cpu.length} x ${cpu[0]?.model ?? '?'}`,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    autocannon: JSON.parse(readFileSync(join(repo, 'node_modules/autocannon/package.json'), 'utf8')).version,
  };
  const header = ['case', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'non-2xx', 'vs koa', 'server µs CPU/req', 'vs koa by CPU', 'server CPU', 'gen CPU', 'other CPU'];
  const ratio = (x, v) => (v === null ? (x.peer ? '1' : '-') : v < 0.1 ? v.toFixed(3) : v.toFixed(2));
  const pct = (v) => `${(v * 100).toFixed(0)}%`;
  const table = [
    `| ${header.join(' | ')} |`,
    `| --- |${' ---: |'.repeat(header.length - 1)}`,
    ...rows.map((x) => `| ${x.case} | ${fmt(x.rps)} | ${ms(x.p50)} | ${ms(x.p99)} | ${x.errors} | ${x.non2xx} | ${ratio(x, x.ratio)} | ${fmt(x.costUs)} | ${ratio(x, x.costRatio)} | ${pct(x.serverCpu)} | ${pct(x.genCpu)} | ${pct(x.otherCpu)} |`),
  ].join('\n');
  console.log('');
  console.log(`machine: ${machine.cpus}, ${machine.memGiB} GiB, ${machine.os}, Node ${machine.node}, autocannon ${machine.autocannon}`);
  console.log(`run: ${DURATION} s per case after ${WARMUP} s warm-up, ${CONNECTIONS} connections, pipelining 1, ${USERS} users, ${ENTRIES}-entry documents`);
  console.log(`load average before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
  console.log('');
  console.log(table);
  console.log('');
  console.log('vs koa: requests/s of the case / requests/s of the bare koa handler for the same method; vs koa by CPU: the same ratio from server CPU per request (koa cost / case cost). Latency: whole ms (the resolution of autocannon), 2xx replies only. CPU: share of one core over the measured run (server: the AS or the peer; gen: autocannon; other: everything else on the machine).');
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify({
    date: new Date().toISOString(), machine, loadBefore, loadAfter,
    settings: { DURATION, WARMUP, CONNECTIONS, USERS, ENTRIES, pipelining: 1, documentBytes: docs.get(users[0]).length },
    rows, table,
  }, null, 2));
  console.log(`raw results: ${outDir}/*.json, AS log: ${outDir}/as.log`);

  // ---- stop: the AS gets SIGTERM (it compacts its store), the peer too; SIGKILL if they hang
  cleaned = true; // from here on a child's exit is expected
  await Promise.all([as, peer].map((c) => stopChild(c)));
  rmSync(work, { recursive: true, force: true });
  clearTimeout(watchdog);
}

/** One autocannon run of a case; connection k gets the users u with u mod connections = k. */
function cannon(autocannon, c, users, connections, duration) {
  const perUser = users.map((u) => c.req(u));
  let nextClient = 0;
  return new Promise((resolve, reject) => {
    const inst = autocannon({
      url: c.base,
      connections,
      pipelining: 1,
      duration,
      timeout: 10,
      requests: perUser,
      setupClient: (client) => {
        const k = nextClient++ % connections;
        const mine = perUser.filter((_, i) => i % connections === k);
        client.setRequests((mine.length ? mine : perUser).map((r) => ({ ...r })));
      },
    }, (err, result) => (err ? reject(err) : resolve(result)));
    inst.on('error', reject);
  });
}

/** CPU seconds (user + system) a process has used, from /proc. */
function procCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** CPU seconds all cores spent busy since boot (/proc/stat: everything but idle and iowait). */
function machineBusy() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return NaN;
  }
}

/** autocannon records whole milliseconds: 0 is "under 1 ms". */
function ms(n) {
  return n === 0 ? '<1' : String(n);
}

function fmt(n) {
  return Math.round(n).toLocaleString('en-US');
}

async function freePorts(n) {
  const servers = [];
  const ports = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise((res, rej) => {
      s.once('error', rej);
      s.listen(0, '127.0.0.1', res);
    });
    servers.push(s);
    ports.push(s.address().port);
  }
  await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  return ports;
}

async function waitHttp(url, ms, what) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch {
      if (Date.now() > until) throw new Error(`${what} did not answer on ${url} within ${ms / 1000} s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function stopChild(c) {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const kill = setTimeout(() => c.kill('SIGKILL'), 10_000);
    c.once('exit', () => {
      clearTimeout(kill);
      res();
    });
    c.kill('SIGTERM');
  });
}
