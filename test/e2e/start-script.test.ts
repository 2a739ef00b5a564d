/**
 * The README's start command as an operator runs it: scripts/start.sh with its knobs, on a run
 * directory of its own. Several AS instances on one store; settings that always take effect;
 * secrets off every command line and private files; a start that fails loudly (and leaves
 * nothing running) when the stack is not healthy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { ROOT, eventually, portsFrom } from './stack.js';

const base = portsFrom(6860).sip;

interface Run {
  code: number;
  out: string;
}

function script(name: 'start' | 'stop', env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      [join(ROOT, 'scripts', `${name}.sh`)],
      { env: { ...process.env, SKIP_INSTALL: '1', MONGODB_URI: '', ...env }, timeout: 90_000 },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

function knobs(runDir: string, sip: number, instances: number): Record<string, string> {
  return {
    RUN_DIR: runDir,
    SIP_PORT: String(sip),
    KAMAILIO_RPC_PORT: String(sip + 1),
    KAMAILIO_EVAPI_PORT: String(sip + 2),
    ISC_PORT: String(sip + 3),
    XDM_PORT: String(sip + 6),
    AS_INSTANCES: String(instances),
    KAMAILIO_SHM_MB: '128',
    SIP_TLS_PORT: String(sip + 9),
  };
}

/** Whether a TLS handshake with 127.0.0.1:port verifies against `ca` for the name example.com. */
function tlsVerifies(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'example.com' }, () => {
      resolve(socket.authorized);
      socket.end();
    });
    socket.on('error', () => resolve(false));
  });
}

/** Status of an unauthenticated GET of the XCAP root over HTTPS, trusting `ca` only. */
function xcapOverHttps(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/xcap-root/xcap-caps/global/index',
        ca,
        servername: 'example.com',
        agent: false,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** The command line of every process on the machine. */
function commandLines(): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        return '';
      }
    });
}

describe('scripts/start.sh', () => {
  let runDir: string;

  before(() => {
    runDir = mkdtempSync(join(tmpdir(), 'ims-start-'));
  });

  // each test starts from a stopped stack, whatever the one before it left
  afterEach(async () => {
    await script('stop', { RUN_DIR: runDir });
  });

  after(() => {
    rmSync(runDir, { recursive: true, force: true });
  });

  it('starts Kamailio and two AS instances on one store, healthy, with no secret on a command line and private files', async () => {
    const r = await script('start', knobs(runDir, base, 2));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /IMS stack running \(domain example\.com, 2 AS instance\(s\)\)/);
    assert.match(r.out, /instance 1: \{"status":"ok"[\s\S]*\(http 200, event stream 1\)/);
    assert.match(r.out, /instance 2: \{"status":"ok"[\s\S]*\(http 200, event stream 1\)/);
    for (const port of [base + 3, base + 4]) {
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string };
      assert.equal(health.status, 'ok', `instance on ${port}`);
    }
    const kamailioLog = readFileSync(join(runDir, 'logs/kamailio.log'), 'utf8');
    assert.match(kamailioLog, /AS instance \S+ up \(2 instances\)/, 'Kamailio sees both instances');
    assert.match(kamailioLog, /AS instance \S+-1 up/);
    assert.match(kamailioLog, /AS instance \S+-2 up/);

    // secrets: in files only this user reads, never on a command line
    const cfg = JSON.parse(readFileSync(join(runDir, 'as.json'), 'utf8')) as {
      isc: { secret: string };
      admin: { token: string };
    };
    const args = commandLines();
    assert.ok(
      args.some((a) => a.includes(join(runDir, 'kamailio/kamailio-local.cfg'))),
      'Kamailio runs on the local config',
    );
    assert.equal(
      args.filter((a) => a.includes(cfg.isc.secret) || a.includes(cfg.admin.token)).length,
      0,
      'no command line holds a secret',
    );
    assert.equal(mode(join(runDir, 'as.json')), '600');
    assert.equal(mode(join(runDir, 'kamailio/kamailio-local.cfg')), '600');
    for (const dir of ['', 'data', 'cdr', 'logs', 'kamailio'])
      assert.equal(mode(join(runDir, dir)), '700', `run/${dir}`);
    for (const f of readdirSync(join(runDir, 'data')))
      assert.equal(Number.parseInt(mode(join(runDir, 'data', f)), 8) & 0o077, 0, `data/${f} is private`);

    const stop = await script('stop', { RUN_DIR: runDir });
    assert.equal(stop.code, 0, stop.out);
    assert.match(stop.out, /stopped kamailio[\s\S]*stopped as-1[\s\S]*stopped as-2/);
    assert.deepEqual(
      readdirSync(runDir).filter((f) => f.endsWith('.pid')),
      [],
    );
  });

  it('makes a local CA on the first start and serves SIP over TLS and XCAP over HTTPS with it', async () => {
    const r = await script('start', knobs(runDir, base, 1));
    assert.equal(r.code, 0, r.out);
    const ca = join(runDir, 'tls/ca.pem');
    assert.match(r.out, new RegExp(`SIP over TLS\\s+tls 127\\.0\\.0\\.1:${base + 9}`));
    assert.match(r.out, new RegExp(`CA for clients\\s+${ca.replace(/[.]/g, '\\.')}`));
    assert.match(r.out, new RegExp(`XCAP root \\(XDMS\\)\\s+https://127\\.0\\.0\\.1:${base + 6}/xcap-root`));
    assert.equal(mode(join(runDir, 'tls')), '700');
    for (const key of ['ca.key', 'server.key']) assert.equal(mode(join(runDir, 'tls', key)), '600', key);
    const caPem = readFileSync(ca, 'utf8');
    assert.equal(
      await tlsVerifies(base + 9, caPem),
      true,
      "Kamailio's certificate chains to the CA and names example.com",
    );
    assert.equal(await xcapOverHttps(base + 6, caPem), 401, 'XCAP over HTTPS asks for credentials');
    const cfg = JSON.parse(readFileSync(join(runDir, 'as.json'), 'utf8')) as {
      xdm: { tlsCert: string; tlsKey: string };
    };
    assert.equal(cfg.xdm.tlsCert, join(runDir, 'tls/server.pem'));
    assert.equal((await script('stop', { RUN_DIR: runDir })).code, 0);

    // the next start keeps the CA clients were told to trust
    const again = await script('start', knobs(runDir, base, 1));
    assert.equal(again.code, 0, again.out);
    assert.equal(readFileSync(ca, 'utf8'), caPem);
    assert.equal(await tlsVerifies(base + 9, caPem), true);
  });

  it('applies the ports given at every start, not only at the first', async () => {
    const other = base + 10;
    const r = await script('start', knobs(runDir, other, 1));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`SIP \\(Kamailio\\)\\s+udp\\+tcp 127\\.0\\.0\\.1:${other}`));
    const health = (await (await fetch(`http://127.0.0.1:${other + 3}/health`)).json()) as {
      status: string;
      checks: Record<string, { ok: boolean }>;
    };
    assert.equal(health.status, 'ok');
    assert.equal(health.checks.kamailio?.ok, true, 'the AS reaches Kamailio on the new RPC port');
    const cfg = JSON.parse(readFileSync(join(runDir, 'as.json'), 'utf8')) as {
      isc: { port: number };
      kamailio: { httpUrl: string };
    };
    assert.equal(cfg.isc.port, other + 3);
    assert.equal(cfg.kamailio.httpUrl, `http://127.0.0.1:${other + 1}`);
    assert.equal((await script('stop', { RUN_DIR: runDir })).code, 0);
  });

  it("uses the operator's certificate, key and CA when given (TLS_CERT, TLS_KEY, TLS_CA), for SIP and XCAP", async () => {
    // the operator's PKI: another CA, made apart from the run directory
    const own = mkdtempSync(join(tmpdir(), 'ims-own-pki-'));
    try {
      const made = await new Promise<Run>((resolve) =>
        execFile('bash', [join(ROOT, 'scripts/tls-setup.sh'), own, 'example.com'], (err, stdout, stderr) =>
          resolve({ code: err ? 1 : 0, out: stdout + stderr }),
        ),
      );
      assert.equal(made.code, 0, made.out);
      // a certificate without its key is refused before anything starts
      const half = await script('start', { ...knobs(runDir, base, 1), TLS_CERT: join(own, 'server.pem') });
      assert.equal(half.code, 2, half.out);
      assert.match(half.out, /TLS_CERT and TLS_KEY go together/);
      const r = await script('start', {
        ...knobs(runDir, base, 1),
        TLS_CERT: join(own, 'server.pem'),
        TLS_KEY: join(own, 'server.key'),
        TLS_CA: join(own, 'ca.pem'),
      });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`TLS certificate\\s+${join(own, 'server.pem').replace(/[.]/g, '\\.')}`));
      const ownCa = readFileSync(join(own, 'ca.pem'), 'utf8');
      // only the operator's CA signed it: the certificate Kamailio presents is theirs
      assert.equal(await tlsVerifies(base + 9, ownCa), true, "Kamailio presents the operator's certificate");
      assert.equal(await xcapOverHttps(base + 6, ownCa), 401, 'so does the XCAP server');
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('turns TLS off when told (TLS=0): plain XCAP over HTTP, no TLS listener, whatever an earlier start had', async () => {
    const r = await script('start', { ...knobs(runDir, base, 1), TLS: '0' });
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /SIP over TLS/);
    assert.match(r.out, new RegExp(`XCAP root \\(XDMS\\)\\s+http://127\\.0\\.0\\.1:${base + 6}/xcap-root`));
    const plain = await fetch(`http://127.0.0.1:${base + 6}/xcap-root/xcap-caps/global/index`);
    assert.equal(plain.status, 401);
    assert.equal(await tlsVerifies(base + 9, 'unused'), false, 'nothing listens for TLS');
    const cfg = JSON.parse(readFileSync(join(runDir, 'as.json'), 'utf8')) as { xdm: { tlsCert: string } };
    assert.equal(cfg.xdm.tlsCert, '');
  });

  it('fails, says why and stops what it started when the stack is not healthy', async () => {
    // something else holds the event stream port: Kamailio cannot bind it
    const held = new Set<Socket>();
    const squatter: Server = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((res) => squatter.listen(base + 2, '127.0.0.1', () => res()));
    try {
      const r = await script('start', knobs(runDir, base, 1));
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.out, /not healthy|did not start/);
      assert.deepEqual(
        readdirSync(runDir).filter((f) => f.endsWith('.pid')),
        [],
        'nothing left running',
      );
      assert.equal(existsSync(join(runDir, 'as-1.pid')), false);
      // no process of this run survives, not even Kamailio children whose main process died
      const left = await eventually(
        () => {
          const running = commandLines().filter((a) => a.includes(runDir));
          return running.length === 0 ? running : undefined;
        },
        5000,
        'no process of the failed start',
      );
      assert.deepEqual(left, []);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((res) => squatter.close(res));
    }
  });
});
