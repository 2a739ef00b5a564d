/**
 * scripts/install-debian-packages.sh never stops or disables a Kamailio the operator already
 * runs. The machine's package tools are replaced by stubs on PATH that record what they are
 * asked (dpkg-query answers from a list of installed packages, systemctl from a state file,
 * apt-get "installs" by adding to the list), so the script's real decisions are observed.
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const run = promisify(execFile);
/** Every package the script installs, read from its DEB_PACKAGES list (comments dropped). */
const ALL = (() => {
  const script = readFileSync(join(ROOT, 'scripts/install-debian-packages.sh'), 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('\n');
  const list = /DEB_PACKAGES=\(([^)]*)\)/.exec(script)?.[1] ?? '';
  return list.split(/\s+/).filter(Boolean);
})();

function fakeMachine(installed: string[], kamailioActive: boolean): { dir: string; calls: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'fake-apt-'));
  const bin = join(dir, 'bin');
  writeFileSync(join(dir, 'installed'), installed.map((p) => `${p}\n`).join(''));
  writeFileSync(join(dir, 'active'), kamailioActive ? 'yes' : 'no');
  writeFileSync(join(dir, 'calls'), '');
  const stub = (name: string, body: string) => {
    const path = join(bin, name);
    writeFileSync(path, `#!/usr/bin/env bash\nD=${JSON.stringify(dir)}\necho "${name} $*" >> "$D/calls"\n${body}\n`);
    chmodSync(path, 0o755);
  };
  mkdirSync(bin);
  stub(
    'dpkg-query',
    'p="${@: -1}"; if grep -qx "$p" "$D/installed"; then printf "install ok installed"; else exit 1; fi',
  );
  // installing the kamailio package starts its service, as Debian's does
  stub(
    'apt-get',
    'if [ "$1" = install ]; then for p in "$@"; do case "$p" in -*|install) ;; *) echo "$p" >> "$D/installed"; [ "$p" = kamailio ] && echo yes > "$D/active";; esac; done; fi; exit 0',
  );
  stub(
    'systemctl',
    'unit="${@: -1}"; case "$1" in is-active) [ "$unit" = kamailio ] && [ "$(cat "$D/active")" = yes ];; stop) [ "$unit" = kamailio ] && echo no > "$D/active";; *) exit 0;; esac',
  );
  stub('sudo', '"$@"');
  stub('id', 'echo 0');
  return { dir, calls: () => readFileSync(join(dir, 'calls'), 'utf8').split('\n').filter(Boolean) };
}

async function install(dir: string): Promise<string> {
  const out = await run('bash', [join(ROOT, 'scripts/install-debian-packages.sh')], {
    env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
  });
  return out.stdout;
}

test('a running Kamailio of the operator stays running and enabled when other packages are missing', async () => {
  const m = fakeMachine(
    ALL.filter((p) => p !== 'kamailio-presence-modules' && p !== 'sip-tester'),
    true,
  );
  try {
    const out = await install(m.dir);
    assert.ok(
      m
        .calls()
        .some(
          (c) => c.startsWith('apt-get install') && c.includes('kamailio-presence-modules') && c.includes('sip-tester'),
        ),
    );
    assert.deepEqual(
      m.calls().filter((c) => /^systemctl (stop|disable)/.test(c)),
      [],
    );
    assert.equal(readFileSync(join(m.dir, 'active'), 'utf8').trim(), 'yes');
    assert.match(out, /already running: left as it is/);
  } finally {
    rmSync(m.dir, { recursive: true, force: true });
  }
});

test('an installed but stopped Kamailio is not touched either', async () => {
  const m = fakeMachine(
    ALL.filter((p) => p !== 'linphone-cli'),
    false,
  );
  try {
    await install(m.dir);
    assert.deepEqual(
      m.calls().filter((c) => /^systemctl (stop|disable)/.test(c)),
      [],
    );
  } finally {
    rmSync(m.dir, { recursive: true, force: true });
  }
});

test('the system Kamailio that this run installed and the package started is stopped and disabled', async () => {
  const m = fakeMachine(['python3', 'make', 'g++'], false);
  try {
    const out = await install(m.dir);
    assert.deepEqual(
      m.calls().filter((c) => /^systemctl (stop|disable)/.test(c)),
      ['systemctl stop kamailio', 'systemctl disable kamailio'],
    );
    assert.match(out, /the package just started/);
  } finally {
    rmSync(m.dir, { recursive: true, force: true });
  }
});

test('nothing missing: no apt-get, no systemctl', async () => {
  const m = fakeMachine(ALL, true);
  try {
    assert.match(await install(m.dir), /Debian packages present/);
    assert.deepEqual(
      m.calls().filter((c) => !c.startsWith('dpkg-query')),
      [],
    );
  } finally {
    rmSync(m.dir, { recursive: true, force: true });
  }
});
