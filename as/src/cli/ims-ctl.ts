#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/config.js';
import { fields, table, type Cell } from './table.js';

const CONFIG_CANDIDATES = ['run/as.json', '/etc/ims-as/as.json'];

const HELP = `ims-ctl - look at and act on a running IMS application server (its admin API)

Usage: ims-ctl [options] COMMAND [ARGS]

Commands:
  health                        dependencies (store, Kamailio, event stream) and version
  user USER                     registrations, subscriptions, watchers, stored messages, history size
  subscriptions [--package P]   live subscriptions, counted by event package (presence, reg, ...)
  end-subscription ID           end one subscription (final NOTIFY, reason=deactivated)
  expire-mailbox USER           expire every message waiting for USER (CDRs and failure notices as at expiry)
  cdrs [--limit N] [--follow]   this instance's latest CDRs; --follow prints new ones as they come
  reload                        re-read the settings (as SIGHUP): what was applied, what needs a restart
  conference list               group chat conferences live on this instance and their participants
  conference end URI            end a conference: the focus sends BYE to every participant, the
                                conference's records are written and its watchers get the final
                                NOTIFY (URI: sip:lobby@DOMAIN, or a room's or group's name)

  USER is alice, alice@DOMAIN or sip:alice@DOMAIN.

Options:
  --json          JSON instead of tables
  --config FILE   AS settings (default: ${CONFIG_CANDIDATES.join(', then ')}, the first that exists;
                  environment variables as for ims-as override it): address and admin token
  --url URL       the AS's admin address instead (e.g. http://127.0.0.1:7080)
  --token TOKEN   the admin token instead (or AS_ADMIN_TOKEN)
  --help          this text

Exit codes: 0 ok, 1 the AS refused or failed (or health is degraded), 2 bad usage.
`;

interface Args {
  cmd: string;
  arg?: string;
  json: boolean;
  config?: string;
  url?: string;
  token?: string;
  pkg?: string;
  limit: number;
  follow: boolean;
}

function fail(message: string, code = 2): never {
  process.stderr.write(`ims-ctl: ${message}\n`);
  process.exit(code);
}

const COMMANDS: Record<string, 'none' | 'required'> = {
  health: 'none',
  user: 'required',
  subscriptions: 'none',
  'end-subscription': 'required',
  'expire-mailbox': 'required',
  cdrs: 'none',
  reload: 'none',
  conference: 'required',
};

function parseArgs(argv: string[]): Args {
  const rest: string[] = [];
  const a: Args = { cmd: '', json: false, limit: 20, follow: false };
  const value = (i: number, name: string) => argv[i] ?? fail(`${name} needs a value`);
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i]!;
    if (x === '--help' || x === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (x === '--json') a.json = true;
    else if (x === '--follow' || x === '-f') a.follow = true;
    else if (x === '--config') a.config = value(++i, x);
    else if (x === '--url') a.url = value(++i, x);
    else if (x === '--token') a.token = value(++i, x);
    else if (x === '--package') a.pkg = value(++i, x);
    else if (x === '--limit') {
      a.limit = Number(value(++i, x));
      if (!Number.isInteger(a.limit) || a.limit < 1) fail('--limit must be a positive number');
    } else if (x.startsWith('-')) fail(`unknown option ${x} (see --help)`);
    else rest.push(x);
  }
  const [cmd, arg, extra, more] = rest;
  if (!cmd) fail('missing command (see --help)');
  const want = COMMANDS[cmd];
  if (!want) fail(`unknown command '${cmd}' (see --help)`);
  if (want === 'required' && !arg) fail(`${cmd} needs an argument (see --help)`);
  if (cmd === 'conference') {
    // two words: conference list | conference end URI
    if (arg === 'list' && !extra) return { ...a, cmd: 'conference-list' };
    if (arg === 'end' && extra && !more) return { ...a, cmd: 'conference-end', arg: extra };
    fail('conference needs list, or end URI (see --help)');
  }
  if ((want === 'none' && arg) || extra) fail(`too many arguments for ${cmd}`);
  return { ...a, cmd, arg };
}

/** Where the admin API is and its token: flags, else the settings file and environment. */
function target(a: Args): { base: string; token: string } {
  let base = a.url;
  let token = a.token ?? process.env.AS_ADMIN_TOKEN ?? '';
  if (!base || !token) {
    const file = a.config ?? CONFIG_CANDIDATES.find((f) => existsSync(f));
    try {
      const cfg = loadConfig(file ? { file } : {});
      base ??= `http://${cfg.isc.host}:${cfg.isc.port}`;
      token ||= cfg.admin.token;
    } catch (err) {
      if (err instanceof ConfigError) fail(`${err.message}\n(or give --url and --token)`);
      throw err;
    }
  }
  if (!token) fail('no admin token: set admin.token in the settings, AS_ADMIN_TOKEN or --token');
  return { base: base.replace(/\/+$/, ''), token };
}

class ApiError extends Error {}

async function call(
  t: { base: string; token: string },
  method: string,
  path: string,
): Promise<{ status: number; body: unknown }> {
  let res: Response;
  try {
    res = await fetch(t.base + path, {
      method,
      headers: { authorization: `Bearer ${t.token}` },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new ApiError(
      `the AS does not answer at ${t.base} (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message})`,
    );
  }
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: kept as text
  }
  return { status: res.status, body };
}

async function must(
  t: { base: string; token: string },
  method: string,
  path: string,
): Promise<Record<string, unknown>> {
  const r = await call(t, method, path);
  if (r.status === 401 || r.status === 403) throw new ApiError(`the AS refused the admin token (HTTP ${r.status})`);
  if (r.status >= 400) throw new ApiError((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
  return r.body as Record<string, unknown>;
}

type Row = Record<string, Cell>;
const subsTable = (subs: Row[]) =>
  table(
    ['id', 'event', 'watcher', 'resource', 'state', 'expires', 'notifies'],
    subs.map((s) => [s.id, s.event, s.watcher, s.resource, s.state, s.expiresAt, s.notifies]),
  );

function cdrRow(c: Row): Cell[] {
  return [
    c.localRecordSequenceNumber,
    c.recordOpeningTime,
    c.service ?? c.serviceType,
    c.roleOfNode,
    c.callingPartyAddress,
    c.calledPartyAddress,
    c.outcome,
    c.sessionId,
  ];
}
const CDR_COLUMNS = ['seq', 'time', 'service', 'role', 'from', 'to', 'outcome', 'session'];

async function run(a: Args): Promise<number> {
  const t = target(a);
  const out = (json: unknown, text: () => string) =>
    process.stdout.write(`${a.json ? JSON.stringify(json, null, 2) : text()}\n`);
  const enc = encodeURIComponent;
  switch (a.cmd) {
    case 'health': {
      const r = await call(t, 'GET', '/health');
      const h = r.body as {
        status: string;
        version: string;
        uptimeSeconds: number;
        checks: Record<string, { ok: boolean; detail: string }>;
      };
      if (typeof h !== 'object' || !h.checks)
        throw new ApiError(`unexpected answer from ${t.base}/health (HTTP ${r.status})`);
      out(
        h,
        () =>
          `${fields([
            ['status', h.status],
            ['version', h.version],
            ['uptime (s)', h.uptimeSeconds],
          ])}\n\n${table(
            ['dependency', 'ok', 'detail'],
            Object.entries(h.checks).map(([k, c]) => [k, c.ok ? 'yes' : 'NO', c.detail]),
          )}`,
      );
      return h.status === 'ok' ? 0 : 1;
    }
    case 'user': {
      const u = await must(t, 'GET', `/admin/users/${enc(a.arg!)}/state`);
      const stored = u.storedMessages as { count: number; messages: Row[] };
      out(u, () =>
        [
          fields([
            ['user', u.aor as string],
            ['registrations', (u.registrations as Row[]).length],
            ['subscriptions', (u.subscriptions as Row[]).length],
            ['watchers', (u.watchers as Row[]).length],
            ['stored messages', stored.count],
            ['history size', u.historySize as number],
          ]),
          '',
          'Registrations',
          table(
            ['contact', 'expires', 'received', 'capabilities'],
            (u.registrations as Row[]).map((r) => [r.contact, r.expires, r.received, capabilitiesText(r.params)]),
          ),
          '',
          'Subscriptions (as watcher)',
          subsTable(u.subscriptions as Row[]),
          '',
          'Watchers (subscribed to this user)',
          subsTable(u.watchers as Row[]),
          '',
          'Stored messages',
          table(
            ['id', 'from', 'kind', 'state', 'size', 'sent', 'expires', 'attempts'],
            stored.messages.map((m) => [m.id, m.from, m.kind, m.state, m.size, m.sentAt, m.expiresAt, m.attempts]),
          ),
        ].join('\n'),
      );
      return 0;
    }
    case 'subscriptions': {
      const s = await must(t, 'GET', `/admin/subscriptions${a.pkg ? `?package=${enc(a.pkg)}` : ''}`);
      const by = s.byPackage as Record<string, number>;
      out(
        s,
        () =>
          `${table(
            ['package', 'live'],
            Object.entries(by)
              .sort()
              .map(([k, v]) => [k, v]),
          )}\n\n${subsTable(s.subscriptions as Row[])}${
            (s.subscriptions as Row[]).length < (s.total as number)
              ? `\n(${(s.subscriptions as Row[]).length} of ${s.total as number} shown)`
              : ''
          }`,
      );
      return 0;
    }
    case 'end-subscription': {
      const r = await call(t, 'DELETE', `/admin/subscriptions/${enc(a.arg!)}`);
      if (r.status !== 204) throw new ApiError((r.body as { error?: string }).error ?? `HTTP ${r.status}`);
      out({ ended: a.arg }, () => `subscription ${a.arg!} ended (final NOTIFY sent, reason=deactivated)`);
      return 0;
    }
    case 'expire-mailbox': {
      const r = await must(t, 'POST', `/admin/users/${enc(a.arg!)}/mailbox/expire`);
      out(r, () => `${r.expired as number} stored message(s) for ${r.aor as string} expired`);
      return 0;
    }
    case 'conference-list': {
      const r = (await call(t, 'GET', '/admin/conferences')) as { status: number; body: unknown };
      if (r.status === 401) throw new ApiError('the AS refused the admin token (HTTP 401)');
      if (r.status >= 400) throw new ApiError(`HTTP ${r.status}`);
      const list = r.body as Row[];
      out(list, () =>
        table(
          ['conference', 'kind', 'owner', 'since', 'participants'],
          list.map((c) => [c.uri, c.kind, c.owner, c.startedAt, (c.participants as unknown as string[]).join(' ')]),
        ),
      );
      return 0;
    }
    case 'conference-end': {
      const r = await must(t, 'DELETE', `/admin/conferences/${enc(a.arg!)}`);
      out(
        r,
        () =>
          `conference ${r.uri as string} ended: BYE sent to ${r.participants as number} participant(s), ${r.byesAnswered as number} answered`,
      );
      return 0;
    }
    case 'reload': {
      const r = await call(t, 'POST', '/admin/reload');
      const b = r.body as { ok: boolean; applied?: Row[]; needRestart?: Row[]; problems?: string[] };
      if (r.status === 401) throw new ApiError('the AS refused the admin token (HTTP 401)');
      out(b, () =>
        b.ok
          ? `applied:\n${table(
              ['setting', 'from', 'to'],
              (b.applied ?? []).map((c) => [c.path, JSON.stringify(c.from), JSON.stringify(c.to)]),
            )}\n\nneed a restart:\n${table(
              ['setting', 'running', 'configured'],
              (b.needRestart ?? []).map((c) => [c.path, JSON.stringify(c.from), JSON.stringify(c.to)]),
            )}`
          : `refused, running settings kept:\n  - ${(b.problems ?? []).join('\n  - ')}`,
      );
      return b.ok ? 0 : 1;
    }
    case 'cdrs': {
      let r = await must(t, 'GET', `/admin/cdrs?limit=${a.limit}`);
      let rows = r.cdrs as Row[];
      if (!a.follow) {
        out(rows, () => table(CDR_COLUMNS, rows.map(cdrRow)));
        return 0;
      }
      // follow: one line (or JSON object) per record as it comes, until interrupted
      const print = (cdrs: Row[], header: boolean) => {
        if (a.json) for (const c of cdrs) process.stdout.write(`${JSON.stringify(c)}\n`);
        else if (cdrs.length || header) {
          const lines = table(CDR_COLUMNS, cdrs.map(cdrRow)).split('\n');
          process.stdout.write(`${(header ? lines : lines.slice(2)).join('\n')}\n`);
        }
      };
      print(rows, true);
      let last = Number(r.nextSeq) - 1;
      for (;;) {
        await new Promise((res) => setTimeout(res, 1000));
        r = await must(t, 'GET', `/admin/cdrs?after=${last}&limit=1000`);
        rows = r.cdrs as Row[];
        print(rows, false);
        if (rows.length) last = Number(rows[rows.length - 1]!.localRecordSequenceNumber);
      }
    }
    default:
      return fail(`unknown command ${a.cmd}`);
  }
}

run(parseArgs(process.argv.slice(2))).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ApiError) fail(err.message, 1);
    fail((err as Error).stack ?? String(err), 1);
  },
);

/** A contact's registered parameters as `name=value` pairs (`+g.oma.sip-im methods=INVITE,MESSAGE`). */
function capabilitiesText(params: unknown): string {
  if (!params || typeof params !== 'object') return '';
  return Object.entries(params as Record<string, string>)
    .map(([name, value]) => (value === '' ? name : `${name}=${value}`))
    .join(' ');
}
