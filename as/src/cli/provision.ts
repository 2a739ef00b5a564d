#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, loadConfig, type AsConfig } from '../config/config.js';
import { KamailioRpc } from '../isc/kamailio-rpc.js';
import { silentLogger } from '../log/logger.js';
import { openStore } from '../store/open-store.js';
import { UserDirectory, UserError, type UserIdentities } from '../users/user-directory.js';
import { ChatRooms } from '../conference/chat-rooms.js';
import { Progress } from './progress.js';

const DEFAULT_CONFIG = 'run/as.json';

const HELP = `ims-provision - manage the SIP users of the IMS application server

Usage:
  ims-provision add USER (--password PASS | --password-stdin) [--tel +15551234]
  ims-provision passwd USER (--password PASS | --password-stdin)
  ims-provision remove USER
  ims-provision list
  ims-provision import FILE        one "user,password" per line (# comments allowed)
  ims-provision bar-im USER        the user may no longer send instant messages (403)
  ims-provision unbar-im USER
  ims-provision set-tel USER NUMBER    the user's E.164 number (tel:NUMBER and
                                   sip:NUMBER@DOMAIN;user=phone reach them); one per user,
                                   and a number belongs to one user only
  ims-provision remove-tel USER
  ims-provision add-alias USER ALIAS   sip:ALIAS@DOMAIN is another public identity of USER:
                                   it reaches USER's registered contacts and counts as USER
  ims-provision remove-alias USER ALIAS
  ims-provision identities USER    the user's number and aliases
  ims-provision room add NAME --owner USER [--subject TEXT] [--max N] [--private]
                                   a chat room sip:NAME@DOMAIN (conference focus of the AS);
                                   --private: only its owner may join; --max: most participants
  ims-provision room list
  ims-provision room remove NAME

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
  tel?: string;
  /** The second operand: NUMBER of set-tel, ALIAS of add-alias/remove-alias. */
  arg?: string;
  config?: string;
  owner?: string;
  subject?: string;
  max?: number;
  private?: boolean;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`ims-provision: ${message}\n`);
  process.exit(code);
}

/** The commands that name a user (the first word after the command). */
const USER_COMMANDS = [
  'add',
  'passwd',
  'remove',
  'bar-im',
  'unbar-im',
  'set-tel',
  'remove-tel',
  'add-alias',
  'remove-alias',
  'identities',
];

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
    } else if (a === '--tel') {
      args.tel = argv[++i] ?? fail('--tel needs a number such as +15551234');
    } else if (a === '--owner') {
      args.owner = argv[++i] ?? fail('--owner needs a user');
    } else if (a === '--subject') {
      args.subject = argv[++i] ?? fail('--subject needs a text');
    } else if (a === '--max') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 2) fail('--max needs a whole number of at least 2');
      args.max = v;
    } else if (a === '--private') {
      args.private = true;
    } else if (a === '--config') {
      args.config = argv[++i] ?? fail('--config needs a file');
    } else if (a.startsWith('--')) {
      fail(`unknown option ${a} (see --help)`);
    } else {
      rest.push(a);
    }
  }
  const [cmd, user, arg] = rest;
  if (!cmd) fail('missing command (see --help)');
  if (USER_COMMANDS.includes(cmd) && !user) fail(`${cmd} needs a USER`);
  if (cmd === 'set-tel' && !arg) fail('set-tel needs a NUMBER (+15551234)');
  if (['add-alias', 'remove-alias'].includes(cmd) && !arg) fail(`${cmd} needs an ALIAS`);
  if (args.tel !== undefined && cmd !== 'add') fail('--tel goes with add (set-tel changes a number)');
  if (cmd === 'import' && !user) fail('import needs a FILE');
  if (cmd === 'room') {
    if (!user || !['add', 'list', 'remove'].includes(user)) fail('room needs add, list or remove');
    if (user !== 'list' && !arg) fail(`room ${user} needs a NAME`);
    if (user === 'add' && !args.owner) fail('room add needs --owner USER');
  }
  if (['add', 'passwd'].includes(cmd) && args.password === undefined)
    fail(`${cmd} needs --password or --password-stdin`);
  if (![...USER_COMMANDS, 'list', 'import', 'room'].includes(cmd)) fail(`unknown command '${cmd}' (see --help)`);
  return { ...args, cmd, user, arg } as Args;
}

/** What the commands need, served by the running AS's admin API or by the store itself. */
interface UserBackend {
  add(user: string, password: string, tel?: string): Promise<string>;
  setTel(user: string, tel: string | undefined): Promise<void>;
  addAlias(user: string, alias: string): Promise<string>;
  removeAlias(user: string, alias: string): Promise<void>;
  identities(user: string): Promise<UserIdentities>;
  passwd(user: string, password: string): Promise<void>;
  remove(user: string): Promise<void>;
  setImBarred(user: string, barred: boolean): Promise<void>;
  list(): Promise<string[]>;
  addRoom(r: { name: string; owner: string; subject?: string; max?: number; private?: boolean }): Promise<string>;
  listRooms(): Promise<string[]>;
  removeRoom(name: string): Promise<void>;
  close(): Promise<void>;
}

/** The running AS's admin API; undefined when the AS is not up (or the API is off). */
async function apiBackend(cfg: AsConfig): Promise<UserBackend | undefined> {
  if (!cfg.admin.token) return undefined;
  const base = `http://${cfg.isc.host}:${cfg.isc.port}/admin`;
  const headers = { authorization: `Bearer ${cfg.admin.token}`, 'content-type': 'application/json' };
  const call = async (method: string, path: string, body?: unknown): Promise<string> => {
    const res = await fetch(base + path, {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    if (res.status >= 400)
      throw new UserError(
        (JSON.parse(text || '{}') as { error?: string }).error ?? `HTTP ${res.status}`,
        res.status === 409 ? 'exists' : res.status === 404 ? 'missing' : 'invalid',
      );
    return text;
  };
  try {
    await call('GET', '/users');
  } catch (err) {
    if (err instanceof UserError) throw err; // the AS answered: a real error (e.g. wrong token)
    return undefined; // not running
  }
  const enc = encodeURIComponent;
  return {
    add: async (user, password, tel) =>
      (
        JSON.parse(await call('POST', '/users', { user, password, ...(tel !== undefined ? { tel } : {}) })) as {
          uri: string;
        }
      ).uri,
    setTel: async (user, tel) =>
      void (tel === undefined
        ? await call('DELETE', `/users/${enc(user)}/tel`)
        : await call('PUT', `/users/${enc(user)}/tel`, { tel })),
    addAlias: async (user, alias) =>
      (JSON.parse(await call('POST', `/users/${enc(user)}/aliases`, { alias })) as { uri: string }).uri,
    removeAlias: async (user, alias) => void (await call('DELETE', `/users/${enc(user)}/aliases/${enc(alias)}`)),
    identities: async (user) => JSON.parse(await call('GET', `/users/${enc(user)}/identities`)) as UserIdentities,
    passwd: async (user, password) => void (await call('PUT', `/users/${enc(user)}/password`, { password })),
    remove: async (user) => void (await call('DELETE', `/users/${enc(user)}`)),
    setImBarred: async (user, barred) => void (await call('PUT', `/users/${enc(user)}/im-barred`, { barred })),
    list: async () => (JSON.parse(await call('GET', '/users')) as Array<{ uri: string }>).map((u) => u.uri),
    addRoom: async (r) => (JSON.parse(await call('POST', '/rooms', r)) as { uri: string }).uri,
    listRooms: async () =>
      (JSON.parse(await call('GET', '/rooms')) as Array<{ uri: string; owner: string }>).map(
        (r) => `${r.uri} owner ${r.owner}`,
      ),
    removeRoom: async (name) => void (await call('DELETE', `/rooms/${enc(name)}`)),
    close: async () => undefined,
  };
}

/** The store itself, for when the AS is stopped. */
async function storeBackend(cfg: AsConfig): Promise<UserBackend> {
  const store = await openStore({
    mongodbUri: cfg.store.mongodbUri || undefined,
    dataDir: cfg.store.dataDir,
    log: silentLogger(),
  });
  const kamailio = new KamailioRpc({ httpUrl: cfg.kamailio.httpUrl, secret: cfg.isc.secret, timeoutMs: 1000 });
  const users = new UserDirectory(store, cfg.sip.domain, async (u) => {
    await kamailio.htableDelete('cred', u).catch(() => undefined);
    await kamailio.htableFlush('ident').catch(() => undefined);
  });
  const rooms = new ChatRooms(store, cfg.sip.domain, (name) => users.exists(name));
  return {
    addRoom: async (r) =>
      (
        await rooms.add({
          name: r.name,
          owner: r.owner,
          private: r.private === true,
          ...(r.subject !== undefined ? { subject: r.subject } : {}),
          ...(r.max !== undefined ? { maxParticipants: r.max } : {}),
        })
      )._id,
    listRooms: async () => (await rooms.list()).map((r) => `${r._id} owner ${r.owner}`),
    removeRoom: (name) => rooms.remove(name),
    add: async (user, password, tel) => {
      const rec = await users.add(user, password, tel);
      return `sip:${rec.user}@${rec.domain}`;
    },
    setTel: (user, tel) => users.setTel(user, tel),
    addAlias: (user, alias) => users.addAlias(user, alias),
    removeAlias: (user, alias) => users.removeAlias(user, alias),
    identities: async (user) => {
      if (!(await users.exists(user))) throw new UserError(`no user ${user}`, 'missing');
      return users.identitiesOf(user);
    },
    passwd: (user, password) => users.setPassword(user, password),
    remove: (user) => users.remove(user),
    setImBarred: (user, barred) => users.setImBarred(user, barred),
    list: async () => (await users.list()).map((u) => `sip:${u.user}@${u.domain}`),
    close: () => store.close(),
  };
}

/** Lines of "user,password" (or ';'); blank lines and # comments skipped. */
async function importUsers(backend: UserBackend, file: string): Promise<string> {
  const lines = readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let added = 0;
  let existing = 0;
  const progress = new Progress(lines.length, 'users');
  for (const [i, line] of lines.entries()) {
    const m = /^([^,;\s]+)\s*[,;]\s*(.+)$/.exec(line);
    if (!m) throw new UserError(`${file}:${i + 1}: expected "user,password"`, 'invalid');
    try {
      await backend.add(m[1]!, m[2]!);
      added++;
    } catch (err) {
      if (!(err instanceof UserError && err.code === 'exists'))
        throw new UserError(`${file}:${i + 1}: ${(err as Error).message}`, 'invalid');
      existing++;
    }
    progress.update(i + 1);
  }
  return `imported ${added} users, ${existing} already existed`;
}

async function run(backend: UserBackend, a: Args): Promise<string> {
  switch (a.cmd) {
    case 'add': {
      const uri = await backend.add(a.user!, a.password!, a.tel);
      return a.tel ? `added ${uri} with number ${(await backend.identities(a.user!)).tel}` : `added ${uri}`;
    }
    case 'set-tel':
      await backend.setTel(a.user!, a.arg!);
      return `${a.user} now has number ${(await backend.identities(a.user!)).tel}`;
    case 'remove-tel':
      await backend.setTel(a.user!, undefined);
      return `${a.user} has no number now`;
    case 'add-alias':
      return `${await backend.addAlias(a.user!, a.arg!)} is now an alias of ${a.user}`;
    case 'remove-alias':
      await backend.removeAlias(a.user!, a.arg!);
      return `${a.arg} is no longer an alias of ${a.user}`;
    case 'identities': {
      const ids = await backend.identities(a.user!);
      return [`tel: ${ids.tel ?? '(none)'}`, ...ids.aliases.map((x) => `alias: ${x}`)].join('\n');
    }
    case 'passwd':
      await backend.passwd(a.user!, a.password!);
      return `password changed for ${a.user}`;
    case 'remove':
      await backend.remove(a.user!);
      return `removed ${a.user}`;
    case 'import':
      return importUsers(backend, a.user!);
    case 'room':
      if (a.user === 'add')
        return `added room ${await backend.addRoom({
          name: a.arg!,
          owner: a.owner!,
          ...(a.subject !== undefined ? { subject: a.subject } : {}),
          ...(a.max !== undefined ? { max: a.max } : {}),
          ...(a.private ? { private: true } : {}),
        })}`;
      if (a.user === 'remove') {
        await backend.removeRoom(a.arg!);
        return `removed room ${a.arg}`;
      }
      return (await backend.listRooms()).join('\n');
    case 'bar-im':
    case 'unbar-im':
      await backend.setImBarred(a.user!, a.cmd === 'bar-im');
      return `${a.user} ${a.cmd === 'bar-im' ? 'may no longer' : 'may again'} send instant messages`;
    default:
      return (await backend.list()).join('\n');
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
    const backend = (await apiBackend(cfg)) ?? (await storeBackend(cfg));
    try {
      const out = await run(backend, a);
      if (out) process.stdout.write(`${out}\n`);
    } finally {
      await backend.close();
    }
  } catch (err) {
    if (err instanceof UserError) fail(err.message, 1);
    fail((err as Error).message, 1);
  }
}

void main();
