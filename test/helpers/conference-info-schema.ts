/**
 * Validation of application/conference-info+xml documents against the RFC 4575 schema
 * (test/fixtures/rfc4575/conference-info.xsd) with xmllint (libxml2-utils, installed by
 * scripts/install-debian-packages.sh): an independent check of what the AS emits.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const SCHEMA = path.resolve('test/fixtures/rfc4575/conference-info.xsd');

/** Throws with xmllint's complaint when `body` is not valid against the schema. */
export function assertValidConferenceInfo(body: string): void {
  const dir = mkdtempSync(path.join(process.env.TMPDIR ?? tmpdir(), 'conf-info-'));
  try {
    const file = path.join(dir, 'doc.xml');
    writeFileSync(file, body);
    try {
      execFileSync('xmllint', ['--noout', '--schema', SCHEMA, file], { stdio: 'pipe' });
    } catch (err) {
      const e = err as { stderr?: Buffer };
      throw new Error(`not valid against RFC 4575: ${e.stderr?.toString() ?? String(err)}\n${body}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
