/**
 * The secret written once (scripts/kamailio-local-cfg.sh, used by scripts/start.sh and
 * scripts/install-services.sh) reaches both places Kamailio uses it, with the real Kamailio on
 * kamailio-cfg/kamailio.cfg: the password Kamailio sends the AS over HTTP (here a REGISTER's
 * credential lookup, GET /isc/credentials, to a stand-in HTTP server that records the
 * Authorization header) and the X-ISC-Secret the AS must send on /RPC.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const run = promisify(execFile);
const base = 7360 + Number(process.env.E2E_PORT_OFFSET ?? 0);
const ports = { sip: base, rpc: base + 1, isc: base + 2, evapi: base + 3 };

async function localCfg(secret: string): Promise<string> {
  const { stdout } = await run('bash', [
    join(ROOT, 'scripts/kamailio-local-cfg.sh'),
    secret,
    `127.0.0.1:${ports.isc}`,
    join(ROOT, 'kamailio-cfg/kamailio.cfg'),
  ]);
  return stdout;
}

async function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 8000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const secret of ['Abc123-xyz.9~_', 'with/slash&amp']) {
  describe(`the ISC secret written once (${secret})`, () => {
    let dir = '';
    let kamailio: ChildProcess | undefined;
    let as: Server | undefined;
    const seen: IncomingMessage[] = [];
    let log = '';

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'ksecret-'));
      const text = await localCfg(secret);
      writeFileSync(join(dir, 'local.cfg'), text, { mode: 0o600 });
      as = createServer((req, res) => {
        seen.push(req);
        res.writeHead(404).end();
      });
      await new Promise<void>((r) => as!.listen(ports.isc, '127.0.0.1', r));
      kamailio = spawn(
        'kamailio',
        [
          '-f',
          join(dir, 'local.cfg'),
          '-DD',
          '-E',
          '-m',
          '64',
          '-M',
          '16',
          '-Y',
          dir,
          '-A',
          `SIP_PORT=${ports.sip}`,
          '-A',
          `RPC_PORT=${ports.rpc}`,
          '-A',
          `EVAPI_ADDR="127.0.0.1:${ports.evapi}"`,
          '-A',
          'NCHILDREN=2',
          '-A',
          'NASYNC=1',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      kamailio.stdout!.on('data', (d: Buffer) => {
        log += d.toString();
      });
      kamailio.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
      });
      await eventually(
        'Kamailio on /RPC',
        async () =>
          await fetch(`http://127.0.0.1:${ports.rpc}/RPC`).then(
            (r) => r.status,
            () => undefined,
          ),
      );
    });

    after(async () => {
      if (kamailio && kamailio.exitCode === null) {
        const gone = new Promise((r) => kamailio!.once('exit', r));
        kamailio.kill('SIGTERM');
        await gone;
      }
      await new Promise((r) => as?.close(r));
      rmSync(dir, { recursive: true, force: true });
    });

    it('appears once in the local config (twice when the substitution would misread it)', () => {
      assert.equal(readFileSync(join(dir, 'local.cfg'), 'utf8').split(secret).length, secret.includes('/') ? 3 : 2);
    });

    it('is the password Kamailio sends the AS over HTTP', async () => {
      const register = [
        `REGISTER sip:example.com SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${ports.sip + 9};branch=z9hG4bK-secret-${Date.now()}`,
        'Max-Forwards: 70',
        'From: <sip:alice@example.com>;tag=1',
        'To: <sip:alice@example.com>',
        `Call-ID: secret-${Date.now()}@test`,
        'CSeq: 1 REGISTER',
        `Contact: <sip:alice@127.0.0.1:${ports.sip + 9}>`,
        'Authorization: Digest username="alice", realm="example.com", nonce="x", uri="sip:example.com", response="00000000000000000000000000000000"',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(ports.sip + 9, '127.0.0.1', r));
      try {
        sock.send(register, ports.sip, '127.0.0.1');
        const req = await eventually('the credential lookup', () =>
          seen.find((r) => r.url?.startsWith('/isc/credentials')),
        );
        assert.equal(
          req.headers.authorization,
          `Basic ${Buffer.from(`kamailio:${secret}`).toString('base64')}`,
          log.slice(-2000),
        );
      } finally {
        sock.close();
      }
    });

    it('is the X-ISC-Secret Kamailio takes on /RPC, and nothing else is', async () => {
      const rpc = (s: string) =>
        fetch(`http://127.0.0.1:${ports.rpc}/RPC`, {
          method: 'POST',
          headers: { 'X-ISC-Secret': s, 'Content-Type': 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', method: 'core.version', id: 1 }),
        });
      const ok = await rpc(secret);
      assert.equal(ok.status, 200);
      assert.match(await ok.text(), /kamailio/);
      assert.equal((await rpc('ISC_SECRET')).status, 403);
      assert.equal((await rpc(secret + 'x')).status, 403);
    });
  });
}
