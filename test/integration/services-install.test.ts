/**
 * The systemd units pass `systemd-analyze verify` (offline: it reads unit files, no running
 * systemd needed), and scripts/install-services.sh installs into a staging root without
 * touching the machine, and prints without writing in --dry-run.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const run = promisify(execFile);

async function verify(dir: string, units: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const out = await run('systemd-analyze', ['verify', ...units.map((u) => join(dir, u))], { cwd: dir });
    return { code: 0, stderr: out.stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

test('the units verify cleanly (no error, no warning); the template is checked as instance 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'units-'));
  try {
    cpSync(join(ROOT, 'packaging/systemd'), dir, { recursive: true });
    cpSync(join(dir, 'ims-as@.service'), join(dir, 'ims-as@1.service'));
    const result = await verify(dir, ['ims-kamailio.service', 'ims-as@1.service']);
    assert.equal(result.code, 0, result.stderr);
    // unknown keys and the like are only warnings (exit 0): they count as failures here
    assert.equal(result.stderr.trim(), '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verify does catch a broken unit (so the check above means something)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'units-'));
  try {
    const broken = readFileSync(join(ROOT, 'packaging/systemd/ims-kamailio.service'), 'utf8')
      .replace('ExecStart=/usr/sbin/kamailio', 'ExecStart=/usr/sbin/no-such-kamailio')
      .replace('[Service]', '[Service]\nRestartt=always');
    writeFileSync(join(dir, 'ims-kamailio.service'), broken);
    const result = await verify(dir, ['ims-kamailio.service']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /no-such-kamailio/);
    assert.match(result.stderr, /Restartt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('install-services.sh --prefix puts units, settings, state and the application in a staging root', async () => {
  const root = mkdtempSync(join(tmpdir(), 'svc-root-'));
  try {
    const env = { ...process.env, SIP_DOMAIN: 'ims.test', ISC_PORT: '17080', XDM_PORT: '18080' };
    const first = await run('bash', [join(ROOT, 'scripts/install-services.sh'), '--prefix', root, '--instances', '2'], {
      env,
    });
    assert.match(
      first.stdout,
      /systemctl daemon-reload && systemctl enable --now ims-kamailio.service ims-as@1.service ims-as@2.service/,
    );
    for (const unit of ['ims-as@.service', 'ims-kamailio.service']) {
      assert.equal(
        readFileSync(join(root, 'etc/systemd/system', unit), 'utf8'),
        readFileSync(join(ROOT, 'packaging/systemd', unit), 'utf8'),
      );
    }
    const settings = JSON.parse(readFileSync(join(root, 'etc/ims-as/as.json'), 'utf8')) as {
      sip: { domain: string };
      isc: { secret: string };
      admin: { token: string };
      store: { dataDir: string };
      charging: { cdrDir: string };
      cluster: { sharedStore: boolean };
    };
    assert.equal(settings.sip.domain, 'ims.test');
    assert.equal(settings.isc.secret.length, 32);
    assert.equal(settings.admin.token.length, 32);
    assert.equal(settings.store.dataDir, '/var/lib/ims-as/data');
    assert.equal(settings.charging.cdrDir, '/var/lib/ims-as/cdr');
    assert.equal(settings.cluster.sharedStore, true);
    // secrets readable by owner and group only
    assert.equal(statSync(join(root, 'etc/ims-as/as.json')).mode & 0o777, 0o640);
    assert.equal(statSync(join(root, 'etc/ims-as/kamailio-local.cfg')).mode & 0o777, 0o640);
    assert.match(readFileSync(join(root, 'etc/ims-as/instance-2.env'), 'utf8'), /ISC_PORT=17081\nXDM_PORT=18081\n/);
    const local = readFileSync(join(root, 'etc/ims-as/kamailio-local.cfg'), 'utf8');
    assert.ok(
      local.includes(`#!substdefs "/ISC_SECRET/${settings.isc.secret}/g"`),
      'Kamailio gets the same secret as the AS',
    );
    assert.equal(local.split(settings.isc.secret).length, 2, 'the secret is written once');
    assert.ok(local.includes('kamailio:ISC_SECRET@127.0.0.1:17080;'), 'Kamailio reaches instance 1 with the secret');
    assert.ok(local.includes('include_file "/opt/ims-as/kamailio-cfg/kamailio.cfg"'));
    assert.ok(existsSync(join(root, 'opt/ims-as/build/as/src/main.js')));
    assert.ok(existsSync(join(root, 'opt/ims-as/kamailio-cfg/kamailio.cfg')));
    assert.ok(existsSync(join(root, 'opt/ims-as/node_modules/better-sqlite3')));
    assert.equal(statSync(join(root, 'var/lib/ims-as/data')).mode & 0o777, 0o750);

    // the AS accepts the installed settings as they are (with the instance's environment)
    const check = await run('node', [join(root, 'opt/ims-as/build/as/src/main.js'), '--check-config'], {
      env: {
        ...process.env,
        AS_CONFIG: join(root, 'etc/ims-as/as.json'),
        ISC_PORT: '17081',
        XDM_PORT: '18081',
        AS_NODE_ID: 'n-2',
      },
    });
    assert.match(check.stdout, /"port": 17081/);

    // Kamailio accepts the unit's command line with the installed settings (kamailio -c):
    // ExecStart with kamailio.env's values put in as systemd does ($X: split into words,
    // ${X}: one word), the local config's include pointed at this checkout's kamailio.cfg
    const unitText = readFileSync(join(root, 'etc/systemd/system/ims-kamailio.service'), 'utf8');
    const envFile = Object.fromEntries(
      readFileSync(join(root, 'etc/ims-as/kamailio.env'), 'utf8')
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const localCfg = join(root, 'kamailio-local-check.cfg');
    writeFileSync(
      localCfg,
      local.replace('/opt/ims-as/kamailio-cfg/kamailio.cfg', join(ROOT, 'kamailio-cfg/kamailio.cfg')),
    );
    const words = /^ExecStart=(.*)$/m
      .exec(unitText)![1]!
      .split(/\s+/)
      .flatMap((w) =>
        /^\$[A-Z_]+$/.test(w)
          ? (envFile[w.slice(1)] ?? '').split(/\s+/).filter(Boolean)
          : [w.replace(/\$\{([A-Z_]+)\}/g, (_, k: string) => envFile[k] ?? '')],
      )
      .map((w) => (w === '/etc/ims-as/kamailio-local.cfg' ? localCfg : w));
    assert.equal(words[0], '/usr/sbin/kamailio');
    const args = words.slice(1).filter((w) => w !== '-DD' && w !== '-E');
    const yAt = args.indexOf('-Y');
    args.splice(yAt, 2);
    assert.ok(args.includes('SIP_DOMAIN="ims.test"'), args.join(' '));
    await run('kamailio', ['-c', ...args]);

    // a second run keeps what the operator has (secrets are not regenerated)
    const again = await run('bash', [join(ROOT, 'scripts/install-services.sh'), '--prefix', root], { env });
    assert.match(again.stdout, /kept \/etc\/ims-as\/as.json/);
    assert.equal(JSON.parse(readFileSync(join(root, 'etc/ims-as/as.json'), 'utf8')).isc.secret, settings.isc.secret);

    // the installed units verify where they were put
    const staged = mkdtempSync(join(tmpdir(), 'units-'));
    cpSync(join(root, 'etc/systemd/system'), staged, { recursive: true });
    cpSync(join(staged, 'ims-as@.service'), join(staged, 'ims-as@2.service'));
    const result = await verify(staged, ['ims-kamailio.service', 'ims-as@2.service']);
    rmSync(staged, { recursive: true, force: true });
    assert.equal(result.code, 0, result.stderr);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('install-services.sh --dry-run writes nothing and says what it would do', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'svc-dry-'));
  const root = join(parent, 'root');
  try {
    const out = await run('bash', [join(ROOT, 'scripts/install-services.sh'), '--prefix', root, '--dry-run']);
    assert.match(out.stdout, /would: write \/etc\/ims-as\/as.json \(mode 640\)/);
    assert.match(out.stdout, /would: install -m 644 .*ims-as@\.service .*\/etc\/systemd\/system\/ims-as@\.service/);
    assert.deepEqual(readdirSync(parent), [], 'nothing is created, not even the staging root');
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('install-services.sh refuses an unknown argument and a bad instance count with exit 2', async () => {
  for (const args of [['--bogus'], ['--instances', '9']]) {
    await assert.rejects(
      run('bash', [join(ROOT, 'scripts/install-services.sh'), ...args]),
      (err: { code: number }) => err.code === 2,
    );
  }
});
