#!/usr/bin/env node
import { ApplicationServer } from './app.js';
import { ConfigError, loadConfig, settingsHelp } from './config/config.js';
import { createLogger } from './log/logger.js';
import { Metrics } from './ops/metrics.js';
import { guardProcess } from './util/process-guard.js';
import { VERSION } from './version.js';

const HELP = `ims-as ${VERSION} - IMS application server for Kamailio (Presence, IM, XDMS, charging)

Usage: ims-as [--config FILE] [--check-config] [--help] [--version]

  --config FILE     JSON settings file (same as AS_CONFIG=FILE); keys are the dotted names below
  --check-config    validate the configuration, print it (secrets hidden) and exit
  --help            this text

Kamailio hands requests to the AS over HTTP (the ISC endpoint); start both with
scripts/start.sh, which generates the shared secret and passes it to each.

Settings (environment variable, file key, meaning, default); environment wins over file:
${settingsHelp()}

Endpoints on isc.host:isc.port:
  POST /isc/request, /isc/event, GET /isc/credentials   Kamailio only (address + secret)
  GET  /health   dependencies (store, Kamailio); 503 when one is down
  GET  /metrics  Prometheus text
  /admin/users   provisioning API (Bearer AS_ADMIN_TOKEN), used by ims-provision
  POST /admin/reload  same as SIGHUP (Bearer AS_ADMIN_TOKEN)
  GET  /admin/ui      the operator page (admin token; see docs/operations.md)

Signals: SIGTERM/SIGINT drain what is in flight and stop; SIGHUP re-reads the settings and
applies those marked (reload) in the list above, logging the changed ones that need a restart.

XCAP on xdm.host:xdm.port: HTTPS only when XDM_TLS_CERT and XDM_TLS_KEY name a certificate
and its key (scripts/start.sh sets them; TLS=0 scripts/start.sh does not); with both empty,
plain HTTP, for development or behind a proxy that ends TLS.
`;

function parseArgs(argv: string[]): { config?: string; check: boolean } {
  const out: { config?: string; check: boolean } = { check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (a === '--version') {
      process.stdout.write(`${VERSION}\n`);
      process.exit(0);
    } else if (a === '--config') {
      const v = argv[++i];
      if (!v) fail('--config needs a file name');
      out.config = v;
    } else if (a === '--check-config') {
      out.check = true;
    } else {
      fail(`unknown argument '${a}' (see --help)`);
    }
  }
  return out;
}

function fail(message: string): never {
  process.stderr.write(`ims-as: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let config;
  try {
    config = loadConfig(args.config ? { file: args.config } : {});
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  if (args.check) {
    const shown = {
      ...config,
      isc: { ...config.isc, secret: '***' },
      admin: { token: config.admin.token ? '***' : '' },
    };
    process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
    return;
  }
  const log = createLogger(config.log.level, { node: config.node.id });
  const metrics = new Metrics();
  let server: ApplicationServer | undefined;
  let stopping: Promise<void> | undefined;
  // one stop, whoever asks first (a signal, or the guard after an uncaught exception)
  const stopOnce = () => (stopping ??= server ? server.stop() : Promise.resolve());
  guardProcess({ log, metrics, stop: stopOnce });
  // SIGHUP reloads (its default would end the process); one arriving during the start waits for none
  process.on('SIGHUP', () => {
    if (!server || stopping) return;
    log.info({ signal: 'SIGHUP' }, 'signal received: reloading the settings');
    server.reload('SIGHUP');
  });
  const reread = () => loadConfig(args.config ? { file: args.config } : {});
  try {
    server = await ApplicationServer.start(config, log, metrics, reread);
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'could not start');
    process.stderr.write(`ims-as: could not start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const onSignal = (signal: string) => {
    if (stopping) return;
    log.info({ signal }, 'signal received');
    stopOnce().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`ims-as: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
