#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, loadConfig, type AsConfig } from '../config/config.js';
import { KamailioRpc } from '../isc/kamailio-rpc.js';
import { silentLogger } from '../log/logger.js';
import { openStore } from '../store/open-store.js';
import { UserDirectory, UserError } from '../users/user-directory.js';

const DEFAULT_CONFIG = 'run/as.json';

const HELP = `ims-provision - manage the SIP users of the IMS application server

Usage:
  ims-provision add USER (--password PASS | --password-stdin)
  ims-provision passwd USER (--password PASS | --password-stdin)
  ims-provision remove USER
  ims-provision list

  USER is alice, alice@DOMAIN or sip:alice@DOMAIN (DOMAIN is sip.domain, default example.com).
  Only the digest HA1 of the password is stored.

Options:
  --config FILE   AS settings file (default ${DEFAULT_CONFIG} when it exists, as written by
                  scripts/start.sh; environment variables as for ims-as override it)
  --help          this text

While the AS runs it owns the embedded store, so the command goes through the AS's admin
API (admin.token); when the AS is stopped it opens the store itself.
`;

interface Args {
  cmd: string;
  user?: string;
  password?: string;
  config?: string;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`ims-provision: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv: string[]): Args {
  const rest: string[] = [];
  const args: Partial<Args> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (a === '--password') {
      args.password = argv[++i] ?? fail('--password needs a value');
    } else if (a === '--password-stdin') {
      args.password = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
    } else if (a === '--config') {
      args.config = argv[++i] ?? fail('--config needs a file');
    } else if (a.startsWith('--')) {
      fail(`unknown option ${a} (see --help)`);
    } else {
      rest.push(a);
    }
  }
  const [cmd, user] = rest;
  if (!cmd) fail('missing command (see --help)');
  if (['add', 'passwd', 'remove'].includes(cmd) && !user) fail(`${cmd} needs a USER`);
  if (['add', 'passwd'].includes(cmd) && args.password === undefined) fail(`${cmd} needs --password or --password-stdin`);
  if (!['add', 'passwd', 'remove', 'list'].includes(cmd)) fail(`unknown command '${cmd}' (see --help)`);
  return { ...args, cmd, user } as Args;
}

/** Runs the command through the running AS's admin API; undefined when the AS is not up. */
async function viaApi(cfg: AsConfig, a: Args): Promise<string | undefined> {
  if (!cfg.admin.token) return undefined;
  const base = `http://${cfg.isc.host}:${cfg.isc.port}/admin`;
  const headers = { authorization: `Bearer ${cfg.admin.token}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown) => {
    let res: Response;
    try {
      res = await fetch(base + path, { method, headers, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(5000) });
    } catch {
      return undefined; // not running
    }
    const text = await res.text();
    if (res.status >= 400) fail(((JSON.parse(text || '{}') as { error?: string }).error) ?? `HTTP ${res.status}`, 1);
    return text;
  };
  const user = encodeURIComponent(a.user ?? '');
  switch (a.cmd) {
    case 'add': {
      const r = await call('POST', '/users', { user: a.user, password: a.password });
      return r === undefined ? undefined : `added ${(JSON.parse(r) as { uri: string }).uri}`;
    }
    case 'passwd':
      return (await call('PUT', `/users/${user}/password`, { password: a.password })) === undefined ? undefined : `password changed for ${a.user}`;
    case 'remove':
      return (await call('DELETE', `/users/${user}`)) === undefined ? undefined : `removed ${a.user}`;
    default: {
      const r = await call('GET', '/users');
      return r === undefined ? undefined : (JSON.parse(r) as Array<{ uri: string }>).map((u) => u.uri).join('\n');
    }
  }
}

/** Runs the command on the store directly (the AS is stopped). */
async function viaStore(cfg: AsConfig, a: Args): Promise<string> {
  const store = await openStore({ mongodbUri: cfg.store.mongodbUri || undefined, dataDir: cfg.store.dataDir, log: silentLogger() });
  const kamailio = new KamailioRpc({ httpUrl: cfg.kamailio.httpUrl, secret: cfg.isc.secret, timeoutMs: 1000 });
  const users = new UserDirectory(store, cfg.sip.domain, async (u) => kamailio.htableDelete('cred', u).catch(() => undefined));
  try {
    switch (a.cmd) {
      case 'add': {
        const rec = await users.add(a.user!, a.password!);
        return `added sip:${rec.user}@${rec.domain}`;
      }
      case 'passwd':
        await users.setPassword(a.user!, a.password!);
        return `password changed for ${a.user}`;
      case 'remove':
        await users.remove(a.user!);
        return `removed ${a.user}`;
      default:
        return (await users.list()).map((u) => `sip:${u.user}@${u.domain}`).join('\n');
    }
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  let cfg: AsConfig;
  try {
    const file = a.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    cfg = loadConfig(file ? { file } : {});
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  try {
    const out = (await viaApi(cfg, a)) ?? (await viaStore(cfg, a));
    if (out) process.stdout.write(`${out}\n`);
  } catch (err) {
    if (err instanceof UserError) fail(err.message, 1);
    fail((err as Error).message, 1);
  }
}

void main();
