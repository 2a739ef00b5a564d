/**
 * The README's start command as an operator runs it: scripts/start.sh with its knobs, on a run
 * directory of its own. Several AS instances on one store; settings that always take effect;
 * secrets off every command line and private files; a start that fails loudly (and leaves
 * nothing running) when the stack is not healthy.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { ROOT, eventually, portsFrom } from './stack.js';

const base = portsFrom(6860).sip;

interface Run { code: number; out: string }

function script(name: 'start' | 'stop', env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile('bash', [join(ROOT, 'scripts', `${name}.sh`)], { env: { ...process.env, SKIP_INSTALL: '1', MONGODB_URI: '', ...env }, timeout: 90_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }));
  });
}

function knobs(runDir: string, sip: number, instances: number): Record<string, string> {
  return {
    RUN_DIR: runDir, SIP_PORT: String(sip), KAMAILIO_RPC_PORT: String(sip + 1), KAMAILIO_EVAPI_PORT: String(sip + 2),
    ISC_PORT: String(sip + 3), XDM_PORT: String(sip + 6), AS_INSTANCES: String(instances), KAMAILIO_SHM_MB: '128',
  };
}

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** The command line of every process on the machine. */
function commandLines(): string[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
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
      const health = await (await fetch(`http://127.0.0.1:${port}/health`)).json() as { status: string };
      assert.equal(health.status, 'ok', `instance on ${port}`);
    }
    const kamailioLog = readFileSync(join(runDir, 'logs/kamailio.log'), 'utf8');
    assert.match(kamailioLog, /AS instance \S+ up \(2 instances\)/, 'Kamailio sees both instances');
    assert.match(kamailioLog, /AS instance \S+-1 up/);
    assert.match(kamailioLog, /AS instance \S+-2 up/);

    // secrets: in files only this user reads, never on a command line
    const cfg = JSON.parse(readFileSync(join(runDir, 'as.json'), 'utf8')) as { isc: { secret: string }; admin: { token: string } };
    const args = commandLines();
    assert.ok(args.some((a) => a.includes(join(runDir, 'kamailio/kamailio-local.cfg'))), 'Kamailio runs on the local config');
    assert.equal(args.filter((a) => a.includes(cfg.isc.secret) || a.includes(cfg.admin.token)).length, 0, 'no command line holds a secret');
    assert.equal(mode(join(runDir, 'as.json')), '600');
    assert.equal(mode(join(runDir, 'kamailio/kamailio-local.cfg')), '600');
    for (const dir of ['', 'data', 'cdr', 'logs', 'kamailio']) assert.equal(mode(join(runDir, dir)), '700', `run/${dir}`);
    for (const f of readdirSync(join(runDir, 'data'))) assert.equal(Number.parseInt(mode(join(runDir, 'data', f)), 8) & 0o077, 0, `data/${f} is private`);

    const stop = await script('stop', { RUN_DIR: runDir });
    assert.equal(stop.code, 0, stop.out);
    assert.match(stop.out, /stopped kamailio[\s\S]*stopped as-1[\s\S]*stopped as-2/);
    assert.deepEqual(readdirSync(runDir).filter((f) => f.endsWith('.pid')), []);
  });

  it('applies the ports given at every start, not only at the first', async () => {
    const other = base + 10;
    const r = await script('start', knobs(runDir, other, 1));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`SIP \\(Kamailio\\)\\s+udp\\+tcp 127\\.0\\.0\\.1:${other}`));
    const health = await (await fetch(`http://127.0.0.1:${other + 3}/health`)).json() as { status: string; checks: Record<string, { ok: boolean }> };
    assert.equal(health.status, 'ok');
    assert.equal(health.checks.kamailio?.ok, true, 'the AS reaches Kamailio on the new RPC port');
    const cfg = JSON.parse(readFileSync(join(runDir, 'as.json'), 'utf8')) as { isc: { port: number }; kamailio: { httpUrl: string } };
    assert.equal(cfg.isc.port, other + 3);
    assert.equal(cfg.kamailio.httpUrl, `http://127.0.0.1:${other + 1}`);
    assert.equal((await script('stop', { RUN_DIR: runDir })).code, 0);
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
      assert.deepEqual(readdirSync(runDir).filter((f) => f.endsWith('.pid')), [], 'nothing left running');
      assert.equal(existsSync(join(runDir, 'as-1.pid')), false);
      // no process of this run survives, not even Kamailio children whose main process died
      const left = await eventually(() => {
        const running = commandLines().filter((a) => a.includes(runDir));
        return running.length === 0 ? running : undefined;
      }, 5000, 'no process of the failed start');
      assert.deepEqual(left, []);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise((res) => squatter.close(res));
    }
  });
});
