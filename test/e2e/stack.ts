/**
 * End-to-end harness: the real Kamailio (Debian package) with kamailio-cfg/kamailio.cfg, the
 * real AS (build/as/src/main.js) and sipp, all on 127.0.0.1 with ports derived from a base
 * so test files never collide with each other or with a stack started by scripts/start.sh.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const SCENARIOS = join(ROOT, 'test/e2e/scenarios');
export const DOMAIN = 'example.com';

export interface Ports {
  sip: number;
  rpc: number;
  isc: number;
  evapi: number;
  xdm: number;
  /** Kamailio's SIP over TLS port (listening only when the stack is started with TLS). */
  tls: number;
  /** First of the SIP ports handed to sipp instances (see sipp() for their other ports). */
  sippBase: number;
}

/** Ports of one test file, from its base. E2E_PORT_OFFSET shifts every file's ports, so two
 * checkouts can run their end-to-end tests on one machine at the same time. */
export function portsFrom(fileBase: number): Ports {
  const base = fileBase + Number(process.env.E2E_PORT_OFFSET ?? 0);
  return {
    sip: base,
    rpc: base + 1,
    isc: base + 2,
    evapi: base + 3,
    xdm: base + 4,
    tls: base + 9,
    sippBase: base + 10,
  };
}

function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  return new Promise((res, rej) => {
    const tick = async () => {
      if (await check().catch(() => false)) return res();
      if (Date.now() > until) return rej(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 100);
    };
    void tick();
  });
}

/** TLS of a stack: certificates made by scripts/tls-setup.sh in the stack's directory. */
export interface StackTls {
  /** The local CA clients trust, and the server's certificate and key it signed. */
  ca: string;
  cert: string;
  key: string;
}

export interface StackOptions {
  /** SIP over TLS on ports.tls and XCAP over HTTPS on ports.xdm, with a generated local CA. */
  tls?: boolean;
  /** With tls: Kamailio takes its certificates from this tls.cfg instead of TLS_CERT/TLS_KEY/TLS_CA
   * (written by the caller, after the certificates exist: see makeTls). */
  kamailioTlsConfig?: (tls: StackTls) => string;
  /** More -A defines for Kamailio (e.g. 'ANTIFLOOD_MESSAGE=10'). */
  kamailioDefines?: string[];
  /** The SIP domain this stack serves (default DOMAIN). */
  domain?: string;
  /** The loopback address Kamailio listens on (default 127.0.0.1; the AS stays on 127.0.0.1). */
  ip?: string;
  /** With tls: certificates already made (e.g. two stacks signed by one CA), instead of makeTls. */
  tlsFiles?: StackTls;
  /** A resolv.conf Kamailio resolves through instead of the machine's: Kamailio then runs in a
   * mount namespace of its own (unshare --mount, needs root) with this file bind-mounted over
   * /etc/resolv.conf, so other processes on the machine are not affected. */
  resolvConf?: string;
}

/** Makes the local CA and the server certificate for DOMAIN in `dir` with scripts/tls-setup.sh. */
export function makeTls(dir: string, domain = DOMAIN): Promise<StackTls> {
  return new Promise((res, rej) => {
    execFile('bash', [join(ROOT, 'scripts/tls-setup.sh'), dir, domain], (err, _out, stderr) => {
      if (err) return rej(new Error(`tls-setup.sh failed: ${stderr}`));
      res({ ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') });
    });
  });
}

export interface SippResult {
  exitCode: number;
  dir: string;
  stdout: string;
  /** Everything sipp received and sent (-trace_msg). */
  messages: string;
  elapsedMs: number;
}

/** sipp's first media port for a UA on `port`: 61000-65396, four ports per UA. */
export function sippMediaPort(port: number): number {
  return 61000 + (port % 1100) * 4;
}

export class TestStack {
  readonly dir: string;
  readonly secret = randomBytes(16).toString('hex');
  readonly adminToken = randomBytes(16).toString('hex');
  private as?: ChildProcess;
  /** Further AS instances on the same store and Kamailio (index 1, 2), see startInstance. */
  private readonly instances = new Map<number, ChildProcess>();
  private kamailio?: ChildProcess;
  private readonly logs: { as: string[]; kamailio: string[] } = { as: [], kamailio: [] };
  private nextSippPort: number;
  /** Certificates of a stack started with TLS. */
  tls?: StackTls;
  private kamailioTlsConfig?: string;
  private kamailioDefines: string[] = [];
  /** The SIP domain served and Kamailio's address (StackOptions domain, ip). */
  domain = DOMAIN;
  ip = '127.0.0.1';
  private resolvConf?: string;

  constructor(
    readonly ports: Ports,
    private readonly extraEnv: Record<string, string> = {},
  ) {
    this.dir = mkdtempSync(join(tmpdir(), 'ims-e2e-'));
    this.nextSippPort = ports.sippBase;
  }

  get cdrDir(): string {
    return join(this.dir, 'cdr');
  }

  get asEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      SIP_DOMAIN: this.domain,
      SIP_DOMAIN_ALIASES: this.ip,
      ISC_PORT: String(this.ports.isc),
      ISC_SECRET: this.secret,
      KAMAILIO_HTTP_URL: `http://${this.ip}:${this.ports.rpc}`,
      KAMAILIO_SIP_URI: `sip:${this.ip}:${this.ports.sip}`,
      KAMAILIO_EVAPI_ADDR: `127.0.0.1:${this.ports.evapi}`,
      XDM_PORT: String(this.ports.xdm),
      // each AS instance has an MSRP switch of its own: primary base+95, instance i base+95+i
      MSRP_PORT: String(this.ports.sip + 95),
      AS_DATA_DIR: join(this.dir, 'data'),
      CDR_DIR: this.cdrDir,
      CDR_JSONL: 'true',
      AS_ADMIN_TOKEN: this.adminToken,
      AS_NODE_ID: 'e2e',
      LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'info',
      MONGODB_URI: '',
      AS_CONFIG: '',
      // the first-registration message would be one more MESSAGE for every test UA: on in its own test
      IM_WELCOME: 'false',
      ...(this.tls ? { XDM_TLS_CERT: this.tls.cert, XDM_TLS_KEY: this.tls.key } : {}),
      ...this.extraEnv,
    };
  }

  /** Starts the AS (with `env` added to its settings), then Kamailio. */
  static async start(ports: Ports, env: Record<string, string> = {}, opts: StackOptions = {}): Promise<TestStack> {
    const s = new TestStack(ports, env);
    s.kamailioDefines = opts.kamailioDefines ?? [];
    s.domain = opts.domain ?? DOMAIN;
    s.ip = opts.ip ?? '127.0.0.1';
    s.resolvConf = opts.resolvConf;
    if (opts.tls) {
      s.tls = opts.tlsFiles ?? (await makeTls(join(s.dir, 'tls'), s.domain));
      if (opts.kamailioTlsConfig) {
        s.kamailioTlsConfig = join(s.dir, 'kamailio-tls.cfg');
        writeFileSync(s.kamailioTlsConfig, opts.kamailioTlsConfig(s.tls));
      }
    }
    await s.startAs();
    await s.startKamailio();
    return s;
  }

  async startAs(): Promise<void> {
    this.as = spawn(process.execPath, [join(ROOT, 'build/as/src/main.js')], {
      env: this.asEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.as.stdout!.on('data', (d: Buffer) => this.logs.as.push(d.toString()));
    this.as.stderr!.on('data', (d: Buffer) => this.logs.as.push(d.toString()));
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${this.ports.isc}/metrics`, { signal: AbortSignal.timeout(1000) })).ok,
      15000,
      'the AS',
    );
  }

  /**
   * Ports and settings of AS instance `i` (0 is the one start() runs): its own ISC/ops and
   * XCAP ports (base+5.. for instances 1 and 2) and node id, the same store, CDR directory,
   * secret and Kamailio.
   */
  instancePorts(i: number): { isc: number; xdm: number } {
    if (i === 0) return { isc: this.ports.isc, xdm: this.ports.xdm };
    if (i < 1 || i > 2) throw new RangeError('instances 1 and 2 only (ports base+5..base+8)');
    return { isc: this.ports.sip + 3 + 2 * i, xdm: this.ports.sip + 4 + 2 * i };
  }

  /** Starts one more AS process (instance 1 or 2) beside the first, on the same store. */
  async startInstance(i: number, env: Record<string, string> = {}): Promise<void> {
    const { isc, xdm } = this.instancePorts(i);
    const child = spawn(process.execPath, [join(ROOT, 'build/as/src/main.js')], {
      env: {
        ...this.asEnv,
        ISC_PORT: String(isc),
        XDM_PORT: String(xdm),
        MSRP_PORT: String(this.ports.sip + 95 + i),
        AS_NODE_ID: `e2e-${i + 1}`,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tag = `[as${i + 1}] `;
    child.stdout!.on('data', (d: Buffer) => this.logs.as.push(tag + d.toString()));
    child.stderr!.on('data', (d: Buffer) => this.logs.as.push(tag + d.toString()));
    this.instances.set(i, child);
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${isc}/metrics`, { signal: AbortSignal.timeout(1000) })).ok,
      15000,
      `AS instance ${i}`,
    );
  }

  /** Ends AS instance `i` with `signal` (SIGKILL: a crash) and waits for it to exit. */
  async stopInstance(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = i === 0 ? this.as : this.instances.get(i);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  /** The /metrics text of AS instance `i`. */
  async instanceMetrics(i: number): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.instancePorts(i).isc}/metrics`)).text();
  }

  async stopAs(): Promise<void> {
    const as = this.as;
    // (a process killed by a signal keeps exitCode null: it has exited all the same)
    if (!as || as.exitCode !== null || as.signalCode !== null) return;
    const exited = new Promise((r) => as.once('exit', r));
    as.kill('SIGTERM');
    await exited;
  }

  /** Sends `signal` to the AS; resolves with its exit code once it exits. */
  signalAs(signal: NodeJS.Signals): { exited: Promise<number | null> } {
    const as = this.as;
    if (!as || as.exitCode !== null) throw new Error('the AS is not running');
    const exited = new Promise<number | null>((r) => as.once('exit', (code) => r(code)));
    as.kill(signal);
    return { exited };
  }

  /** Sends `signal` to the AS without waiting for an exit (SIGHUP: a reload). */
  signalAsNoExit(signal: NodeJS.Signals): void {
    if (!this.as || this.as.exitCode !== null) throw new Error('the AS is not running');
    this.as.kill(signal);
  }

  /** Whether the AS process is still running. */
  get asRunning(): boolean {
    return !!this.as && this.as.exitCode === null && this.as.signalCode === null;
  }

  /** Everything the AS or Kamailio logged so far (untruncated). */
  logOf(which: 'as' | 'kamailio'): string {
    return this.logs[which].join('');
  }

  private async startKamailio(): Promise<void> {
    const { sip, rpc, isc, evapi } = this.ports;
    const args = [
      '-f',
      join(ROOT, 'kamailio-cfg/kamailio.cfg'),
      '-DD',
      '-E',
      '-m',
      '256',
      '-M',
      '16',
      '-Y',
      this.dir,
      '-P',
      join(this.dir, 'kamailio.pid'),
      '-A',
      `SIP_DOMAIN="${this.domain}"`,
      '-A',
      `LISTEN_IP=${this.ip}`,
      '-A',
      `SIP_PORT=${sip}`,
      '-A',
      `RPC_PORT=${rpc}`,
      '-A',
      `ISC_SECRET="${this.secret}"`,
      '-A',
      `AS_HTTPCON="as=>http://kamailio:${this.secret}@127.0.0.1:${isc};timeout=2"`,
      '-A',
      `EVAPI_ADDR="127.0.0.1:${evapi}"`,
      '-A',
      'NCHILDREN=4',
      '-A',
      'NASYNC=4',
      ...(this.tls ? ['-A', 'WITH_TLS', '-A', `TLS_PORT=${this.ports.tls}`] : []),
      ...(this.tls && this.kamailioTlsConfig ? ['-A', `TLS_CONFIG="${this.kamailioTlsConfig}"`] : []),
      ...(this.tls && !this.kamailioTlsConfig
        ? ['-A', `TLS_CERT="${this.tls.cert}"`, '-A', `TLS_KEY="${this.tls.key}"`, '-A', `TLS_CA="${this.tls.ca}"`]
        : []),
      ...this.kamailioDefines.flatMap((d) => ['-A', d]),
    ];
    // unshare without --fork execs its command: the child is Kamailio itself (signals reach it)
    this.kamailio = this.resolvConf
      ? spawn(
          'unshare',
          ['--mount', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec kamailio "$@"', this.resolvConf, ...args],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        )
      : spawn('kamailio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.kamailio.stdout!.on('data', (d: Buffer) => this.logs.kamailio.push(d.toString()));
    this.kamailio.stderr!.on('data', (d: Buffer) => this.logs.kamailio.push(d.toString()));
    await waitFor(
      async () => {
        const r = await fetch(`http://${this.ip}:${rpc}/RPC`, {
          method: 'POST',
          headers: { 'x-isc-secret': this.secret, 'content-type': 'application/json' },
          body: '{"jsonrpc":"2.0","method":"core.version","id":1}',
          signal: AbortSignal.timeout(1000),
        });
        return r.ok;
      },
      15000,
      'Kamailio',
    );
  }

  /** Calls one of Kamailio's RPC commands (jsonrpcs over its HTTP listener, with the secret); its result. */
  async kamailioRpc(method: string, params: unknown[] = []): Promise<unknown> {
    const r = await fetch(`http://${this.ip}:${this.ports.rpc}/RPC`, {
      method: 'POST',
      headers: { 'x-isc-secret': this.secret, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await r.json()) as { result?: unknown; error?: unknown };
    if (body.error !== undefined) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
    return body.result;
  }

  /** Runs the provisioning CLI against this stack (through the running AS's admin API). */
  provision(...args: string[]): Promise<{ code: number; out: string }> {
    return new Promise((res) => {
      execFile(
        process.execPath,
        [join(ROOT, 'build/as/src/cli/provision.js'), ...args],
        { env: this.asEnv },
        (err, stdout, stderr) =>
          res({
            code: err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0,
            out: stdout + stderr,
          }),
      );
    });
  }

  /** Provisions each user with its password; fails on the first the CLI refuses. */
  async provisionUsers(users: readonly string[], password: (user: string) => string): Promise<void> {
    for (const u of users) {
      const r = await this.provision('add', u, '--password', password(u));
      if (r.code !== 0) throw new Error(`provisioning ${u} failed (${r.code}): ${r.out}`);
    }
  }

  /** Allocates a local port for one sipp instance. */
  sippPort(): number {
    return this.nextSippPort++;
  }

  /**
   * Runs sipp with a scenario from test/e2e/scenarios, `__FINAL__` replaced by the expected
   * final response code. Resolves when sipp exits (0: every call went as the scenario says).
   */
  sipp(
    scenario: string | { name: string; xml: string; latin1?: boolean },
    opts: {
      final?: number;
      port?: number;
      set?: Record<string, string>;
      args?: string[];
      timeoutMs?: number;
      background?: boolean;
      localIp?: string;
    } = {},
  ): Promise<SippResult> & { process: ChildProcess; dir: string } {
    const name = typeof scenario === 'string' ? scenario : scenario.name;
    const dir = mkdtempSync(join(this.dir, `sipp-${name}-`));
    const source =
      typeof scenario === 'string' ? readFileSync(join(SCENARIOS, `${scenario}.xml`), 'utf8') : scenario.xml;
    const xml = source.replace(/__FINAL__/g, String(opts.final ?? 200));
    const file = join(dir, `${name}.xml`);
    // latin1: each character below U+0100 becomes the byte of that value, so a scenario can
    // send bytes that are not UTF-8 (the scenario declares ISO-8859-1)
    writeFileSync(file, xml, typeof scenario === 'object' && scenario.latin1 ? 'latin1' : 'utf8');
    const port = opts.port ?? this.sippPort();
    const set = Object.entries({ domain: this.domain, ...opts.set }).flatMap(([k, v]) => ['-set', k, v]);
    const args = [
      `${this.ip}:${this.ports.sip}`,
      '-sf',
      file,
      '-i',
      opts.localIp ?? this.ip,
      '-p',
      String(port),
      // control port and the media ports sipp always binds, clear of every SIP port; the media
      // ports above the kernel's ephemeral range (32768-60999), where no outgoing connection
      // can take them first (a CI run lost a test to "Unable to bind audio RTP socket")
      '-cp',
      String(port + 20000),
      '-mp',
      String(sippMediaPort(port)),
      '-m',
      '1',
      '-nostdin',
      '-trace_msg',
      '-trace_err',
      '-trace_logs',
      '-timeout',
      `${Math.ceil((opts.timeoutMs ?? 10000) / 1000)}s`,
      '-timeout_error',
      ...set,
      ...(opts.args ?? []),
    ];
    const started = Date.now();
    const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stdout += d.toString()));
    const done = new Promise<SippResult>((res) => {
      child.once('exit', (code) => {
        const trace = readdirSync(dir).filter((f) => f.endsWith('_messages.log'));
        const messages = trace.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
        res({ exitCode: code ?? -1, dir, stdout, messages, elapsedMs: Date.now() - started });
      });
    });
    return Object.assign(done, { process: child, dir });
  }

  /** Waits until a running sipp logged a line matching `pattern` (its <log> actions). */
  async sippLogged(dir: string, pattern: RegExp, timeoutMs = 10000): Promise<void> {
    await eventually(
      () => {
        const logs = readdirSync(dir).filter((f) => f.endsWith('_logs.log'));
        return logs.some((f) => pattern.test(readFileSync(join(dir, f), 'utf8'))) ? true : undefined;
      },
      timeoutMs,
      `sipp log ${pattern}`,
    );
  }

  /** CDR lines written so far (all files of this node, in order). */
  cdrLines(): Array<Record<string, unknown>> {
    let files: string[] = [];
    try {
      files = readdirSync(this.cdrDir)
        .filter((f) => f.endsWith('.jsonl'))
        .sort();
    } catch {
      return [];
    }
    return files.flatMap((f) =>
      readFileSync(join(this.cdrDir, f), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
  }

  /** Calls the AS's admin API with this stack's token. */
  async admin(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await fetch(`http://127.0.0.1:${this.ports.isc}/admin${path}`, {
      method,
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(20000),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.ports.isc}/metrics`)).text();
  }

  /** Everything the primary AS logged so far (JSON lines). */
  asLog(): string {
    return this.logs.as.join('');
  }

  dumpLogs(): string {
    return `--- AS log ---\n${this.logs.as.join('').slice(-6000)}\n--- Kamailio log ---\n${this.logs.kamailio.join('').slice(-6000)}`;
  }

  async stop(): Promise<void> {
    for (const i of this.instances.keys()) await this.stopInstance(i);
    await this.stopAs();
    const k = this.kamailio;
    if (k && k.exitCode === null) {
      const exited = new Promise((r) => k.once('exit', r));
      k.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (k.exitCode === null) k.kill('SIGKILL');
    }
    if (process.env.E2E_KEEP) {
      writeFileSync(join(this.dir, 'as.log'), this.logs.as.join(''));
      writeFileSync(join(this.dir, 'kamailio.log'), this.logs.kamailio.join(''));
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Polls until `fn` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  fn: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
