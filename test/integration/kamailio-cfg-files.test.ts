/**
 * kamailio-cfg as an admin uses it, checked by the real Kamailio (`kamailio -c`, no process
 * left running): kamailio.cfg finds its included as-interface.cfg whatever the working
 * directory and whichever file includes it; an optional kamailio-local-override.cfg sets
 * defines without editing the product file, and its absence is no error; the domain's IP
 * alias follows LISTEN_IP.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
const CFG = join(ROOT, 'kamailio-cfg/kamailio.cfg');
const run = promisify(execFile);
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'kcfg-'));
  dirs.push(d);
  return d;
}

/** `kamailio -c` on `file` from `cwd`: its output (listeners and aliases) when the config is accepted. */
async function check(file: string, cwd: string, defines: string[] = []): Promise<string> {
  const { stdout, stderr } = await run(
    'kamailio',
    ['-c', '-M', '16', '-f', file, ...defines.flatMap((d) => ['-A', d])],
    { cwd },
  );
  const out = stdout + stderr;
  assert.match(out, /config file ok/, out);
  return out;
}

/** The aliases section of `kamailio -c` output. */
function aliases(out: string): string {
  return out.slice(out.indexOf('Aliases:'));
}

describe('kamailio-cfg files', () => {
  it('kamailio.cfg includes as-interface.cfg from any working directory', async () => {
    for (const cwd of ['/', scratch(), join(ROOT, 'kamailio-cfg')]) await check(CFG, cwd);
  });

  it('a local file elsewhere that defines the secret and includes kamailio.cfg works (scripts/start.sh, the systemd unit)', async () => {
    const dir = scratch();
    const local = join(dir, 'kamailio-local.cfg');
    writeFileSync(
      local,
      `#!KAMAILIO\n#!define ISC_SECRET "s"\n#!define AS_HTTPCON "as=>http://kamailio:s@127.0.0.1:7080;timeout=2"\ninclude_file "${CFG}"\n`,
    );
    await check(local, scratch());
  });

  it('kamailio-local-override.cfg in the working directory sets defines; without it the defaults apply', async () => {
    const dir = scratch();
    assert.match(aliases(await check(CFG, dir)), /example\.com/);
    writeFileSync(join(dir, 'kamailio-local-override.cfg'), '#!define SIP_DOMAIN "override.test"\n');
    const out = aliases(await check(CFG, dir));
    assert.match(out, /override\.test/);
    assert.doesNotMatch(out, /example\.com/);
  });

  it('the IP alias of the domain is the listen address', async () => {
    const out = aliases(await check(CFG, scratch(), ['LISTEN_IP=127.0.0.2']));
    assert.match(out, /127\.0\.0\.2/);
    assert.doesNotMatch(out, /127\.0\.0\.1/);
  });
});
