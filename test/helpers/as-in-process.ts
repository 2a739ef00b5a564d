/**
 * The real application server started in this process for HTTP-level tests: embedded store in a
 * temp dir, no Kamailio (its HTTP URL points at a closed port, the event stream is off), ports
 * taken from 5600-5699.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationServer } from '../../as/src/app.js';
import { loadConfig } from '../../as/src/config/config.js';
import { silentLogger, type Logger } from '../../as/src/log/logger.js';

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const taken = new Set<number>();
/** A port of 5600-5699 nothing listens on (starting at a random place, other files use the range too). */
async function freePort(): Promise<number> {
  const offset = Math.floor(Math.random() * 100);
  for (let i = 0; i < 100; i++) {
    const p = 5600 + ((offset + i) % 100);
    if (taken.has(p)) continue;
    if (await canListen(p)) {
      taken.add(p);
      return p;
    }
  }
  throw new Error('no free port in 5600-5699');
}

export interface Running {
  server: ApplicationServer;
  dir: string;
  /** http://127.0.0.1:<XDM_PORT> */
  base: string;
  /** The XCAP root URI the server puts in generated documents and error reports. */
  rootUri: string;
}

export async function startAs(extraEnv: Record<string, string> = {}, log: Logger = silentLogger()): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'xcap-protocol-'));
  const [isc, xdm, msrp, closed] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = loadConfig({
    env: {
      ISC_SECRET: 'integration-test-secret-0123456789',
      AS_DATA_DIR: join(dir, 'data'),
      CDR_DIR: join(dir, 'cdr'),
      ISC_PORT: String(isc),
      XDM_PORT: String(xdm),
      MSRP_PORT: String(msrp),
      KAMAILIO_HTTP_URL: `http://127.0.0.1:${closed}`,
      KAMAILIO_EVAPI_ADDR: '',
      LOG_LEVEL: 'silent',
      MONGODB_URI: '',
      AS_CONFIG: '',
      XDM_MAX_DOCUMENT_BYTES: String(64 * 1024),
      ...extraEnv,
    },
  });
  // loadConfig reads an empty variable as "not set" (so KAMAILIO_EVAPI_ADDR='' falls back to
  // the default address): switch the event stream off here, nothing in this file needs it
  config.kamailio.evapiAddress = '';
  const server = await ApplicationServer.start(config, log);
  return { server, dir, base: `http://127.0.0.1:${xdm}`, rootUri: `http://127.0.0.1:${xdm}/xcap-root` };
}

export async function stopAs(r: Running | undefined): Promise<void> {
  if (!r) return;
  await r.server.stop();
  rmSync(r.dir, { recursive: true, force: true });
}
