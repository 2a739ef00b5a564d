/**
 * The application server's start and stop as an operator meets them, in process with its real
 * parts (embedded store in a temp dir, real ports; no Kamailio, the event stream off): a start
 * that fails half way (the XCAP port taken) leaves none of its ports open and its store usable
 * by the next start; a stop frees every port it held.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ApplicationServer } from '../../as/src/app.js';
import { loadConfig, type AsConfig } from '../../as/src/config/config.js';
import { silentLogger } from '../../as/src/log/logger.js';

function listening(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

function canListen(port: number): Promise<boolean> {
  return listening(port).then(
    (s) => new Promise<boolean>((resolve) => s.close(() => resolve(true))),
    () => false,
  );
}

/** Ports the system hands out now (all held at once, so they differ). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => listening(0)));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function configOn(ports: { isc: number; xdm: number; msrp: number; closed: number }, dir: string): AsConfig {
  const config = loadConfig({
    env: {
      ISC_SECRET: 'integration-test-secret-0123456789',
      AS_DATA_DIR: join(dir, 'data'),
      CDR_DIR: join(dir, 'cdr'),
      ISC_HOST: '127.0.0.1',
      ISC_PORT: String(ports.isc),
      XDM_HOST: '127.0.0.1',
      XDM_PORT: String(ports.xdm),
      MSRP_HOST: '127.0.0.1',
      MSRP_PORT: String(ports.msrp),
      KAMAILIO_HTTP_URL: `http://127.0.0.1:${ports.closed}`,
      LOG_LEVEL: 'silent',
      MONGODB_URI: '',
      AS_CONFIG: '',
    },
  });
  // (an empty KAMAILIO_EVAPI_ADDR reads as "not set"): no Kamailio here, so no event stream
  config.kamailio.evapiAddress = '';
  return config;
}

describe('application server start and stop', () => {
  it('a start failing at the XCAP port closes what it had opened; the next start on the same store runs', async () => {
    const [isc, xdm, msrp, closed] = (await freePorts(4)) as [number, number, number, number];
    const dir = mkdtempSync(join(tmpdir(), 'as-start-stop-'));
    dirs.push(dir);
    const config = configOn({ isc, xdm, msrp, closed }, dir);
    const blocker = await listening(xdm);
    try {
      await assert.rejects(
        ApplicationServer.start(config, silentLogger()),
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${xdm} \\(xdm\\.host/xdm\\.port\\): EADDRINUSE`),
      );
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    // the ISC port (opened just before the XCAP port) and the MSRP switch's port are free again
    assert.equal(await canListen(isc), true, 'ISC port left open by the failed start');
    assert.equal(await canListen(msrp), true, 'MSRP port left open by the failed start');

    const server = await ApplicationServer.start(configOn({ isc, xdm, msrp, closed }, dir), silentLogger());
    try {
      const res = await fetch(`http://127.0.0.1:${xdm}/not-xcap`);
      assert.equal(res.status, 404);
    } finally {
      await server.stop();
    }
    for (const [name, port] of Object.entries({ isc, xdm, msrp })) {
      assert.equal(await canListen(port), true, `${name} port still held after stop`);
    }
  });
});
