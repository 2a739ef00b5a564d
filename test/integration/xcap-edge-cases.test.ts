/**
 * XCAP edge cases found by attacking the XDMS (issue #12), over real HTTP against the real
 * application server: a body shorter than its Content-Length, `Expect: 100-continue` with a
 * body above the limit, what a broken or abandoned request leaves in the JSON log, one
 * Content-Type form for every usage, and xcap-caps against the RFC 4825 schema (xmllint).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { allUsages } from '../../as/src/xdm/usages/index.js';
import { rawRequest } from '../helpers/xcap-client.js';
import { startAs, stopAs, type Running } from '../helpers/as-in-process.js';

const ALICE = 'sip:alice@example.com';
const ASSERTED = `X-3GPP-Asserted-Identity: ${ALICE}\r\n`;
const RL_PATH = `/xcap-root/resource-lists/users/${ALICE}/index`;
const LARGE_LIMIT = 512 * 1024;

/** A resource-lists document of about `bytes` (above the checker's inline size: checked in its worker thread). */
function largeList(bytes: number, last = ''): string {
  const entries: string[] = [];
  for (let i = 0, size = 200; size < bytes; i++) {
    const e = `<entry uri="sip:c${i}@example.com"><display-name>Contact ${i}</display-name></entry>`;
    entries.push(e);
    size += e.length;
  }
  return `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="l">${entries.join('')}${last}</list></resource-lists>`;
}

/**
 * Writes `head` (and nothing more) on a new connection and collects what comes back until the
 * server closes it or `waitMs` pass. `endWrite` half-closes our side after writing, as a client
 * that gave up sending would.
 */
function exchange(
  port: number,
  head: string,
  waitMs: number,
  endWrite = false,
): Promise<{ text: string; ms: number; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head);
      if (endWrite) socket.end();
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, ms: Date.now() - started, closed: false });
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: Date.now() - started, closed: true });
    });
    socket.on('error', reject);
  });
}

describe('XCAP edge cases (issue #12)', () => {
  let as: Running;
  let port: number;
  const logLines: string[] = [];

  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        logLines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    as = await startAs(
      { XDM_TRUSTED_PROXIES: '127.0.0.1', XDM_MAX_DOCUMENT_BYTES: String(LARGE_LIMIT) },
      pino({ level: 'debug' }, sink),
    );
    port = Number(new URL(as.base).port);
    await as.server.users.add('alice', 'pw-alice');
  });

  after(async () => {
    await stopAs(as);
  });

  it('checks large documents (off the event loop) with the same answers as small ones', async () => {
    const headers = { 'x-3gpp-asserted-identity': ALICE, 'content-type': 'application/resource-lists+xml' };
    const path = `/xcap-root/resource-lists/users/${ALICE}/large`;
    const good = largeList(200 * 1024);
    const put = await rawRequest(as.base, 'PUT', path, { body: good, headers });
    assert.equal(put.status, 201, put.body);
    assert.equal((await rawRequest(as.base, 'GET', path, { headers })).body, good);
    const schema = await rawRequest(as.base, 'PUT', path, { body: largeList(200 * 1024, '<entry/>'), headers });
    assert.equal(schema.status, 409);
    assert.match(schema.body, /<schema-validation-error/);
    const broken = await rawRequest(as.base, 'PUT', path, { body: good.replace('</resource-lists>', ''), headers });
    assert.equal(broken.status, 409);
    assert.match(broken.body, /<not-well-formed/);
    const dup = await rawRequest(as.base, 'PUT', path, {
      body: largeList(200 * 1024, '<entry uri="sip:c1@example.com"/>'),
      headers,
    });
    assert.equal(dup.status, 409);
    assert.match(dup.body, /<uniqueness-failure/);
    // what the worker found about claims reaches the server's checks as well
    const rls = `<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"><service uri="sip:alice@example.com"><list>${'<entry xmlns="urn:ietf:params:xml:ns:resource-lists" uri="sip:x@example.com"/>'.repeat(1)}</list></service>${'<!-- padding -->'.repeat(2000)}</rls-services>`;
    const claim = await rawRequest(as.base, 'PUT', `/xcap-root/rls-services/users/${ALICE}/index`, {
      body: rls,
      headers: { ...headers, 'content-type': 'application/rls-services+xml' },
    });
    assert.equal(claim.status, 409);
    assert.match(claim.body, /<constraint-failure/);
    assert.equal(
      (await rawRequest(as.base, 'GET', path, { headers })).body,
      good,
      'refused versions left the stored one alone',
    );

    // node operations on the large document (done in the worker as well)
    const list = `${path}/~~/resource-lists/list%5b@name=%22l%22%5d`;
    const entry = await rawRequest(as.base, 'GET', `${list}/entry%5b@uri=%22sip:c5@example.com%22%5d`, { headers });
    assert.equal(entry.status, 200);
    assert.equal(entry.headers.get('content-type'), 'application/xcap-el+xml');
    assert.match(
      entry.body,
      /^<entry [^>]*uri="sip:c5@example.com"[^>]*><display-name>Contact 5<\/display-name><\/entry>$/,
    );
    assert.equal(
      (await rawRequest(as.base, 'GET', `${list}/entry%5b@uri=%22sip:nobody@example.com%22%5d`, { headers })).status,
      404,
    );
    const added = await rawRequest(as.base, 'PUT', `${list}/entry%5b@uri=%22sip:new@example.com%22%5d`, {
      body: '<entry uri="sip:new@example.com"/>',
      headers: { ...headers, 'content-type': 'application/xcap-el+xml' },
    });
    assert.equal(added.status, 201, added.body);
    const renamed = await rawRequest(as.base, 'PUT', `${list}/entry%5b@uri=%22sip:c7@example.com%22%5d/display-name`, {
      body: '<display-name>Seven</display-name>',
      headers: { ...headers, 'content-type': 'application/xcap-el+xml' },
    });
    assert.equal(renamed.status, 200, renamed.body);
    const attr = await rawRequest(as.base, 'PUT', `${list}/@name`, {
      body: 'l',
      headers: { ...headers, 'content-type': 'application/xcap-att+xml' },
    });
    assert.equal(attr.status, 200, attr.body);
    assert.equal(
      (await rawRequest(as.base, 'DELETE', `${list}/entry%5b@uri=%22sip:c9@example.com%22%5d`, { headers })).status,
      200,
    );
    const orphan = await rawRequest(as.base, 'PUT', `${path}/~~/resource-lists/list%5b@name=%22none%22%5d/entry`, {
      body: '<entry uri="sip:x@example.com"/>',
      headers: { ...headers, 'content-type': 'application/xcap-el+xml' },
    });
    assert.equal(orphan.status, 409);
    assert.match(orphan.body, /<no-parent>[\s\S]*<ancestor>/);
    const dupEntry = await rawRequest(as.base, 'PUT', `${list}/entry%5b@uri=%22sip:c3@example.com%22%5d%5b2%5d`, {
      body: '<entry uri="sip:c3@example.com"/>',
      headers: { ...headers, 'content-type': 'application/xcap-el+xml' },
    });
    assert.equal(dupEntry.status, 409, dupEntry.body);
    const now = (await rawRequest(as.base, 'GET', path, { headers })).body;
    assert.match(now, /<entry uri="sip:new@example.com"\/>/);
    assert.match(now, /<display-name>Seven<\/display-name>/);
    assert.doesNotMatch(now, /sip:c9@example.com"/);
    assert.equal(now.match(/sip:c3@example.com"/g)?.length, 1);

    // the global rls-services index built from large documents, and a node of it
    const members = Array.from({ length: 400 }, (_, i) => `<rl:entry uri="sip:m${i}@example.com"/>`).join('');
    const big = `<rls-services xmlns="urn:ietf:params:xml:ns:rls-services" xmlns:rl="urn:ietf:params:xml:ns:resource-lists"><service uri="sip:alice-big@example.com"><list>${members}</list></service></rls-services>`;
    assert.equal(
      (
        await rawRequest(as.base, 'PUT', `/xcap-root/rls-services/users/${ALICE}/big`, {
          body: big,
          headers: { ...headers, 'content-type': 'application/rls-services+xml' },
        })
      ).status,
      201,
    );
    const index = await rawRequest(as.base, 'GET', '/xcap-root/rls-services/global/index', { headers });
    assert.equal(index.status, 200);
    assert.match(index.body, /<service [^>]*uri="sip:alice-big@example.com"/);
    assert.equal(index.body.match(/sip:m\d+@example.com/g)?.length, 400);
    const service = await rawRequest(
      as.base,
      'GET',
      '/xcap-root/rls-services/global/index/~~/rls-services/service%5b@uri=%22sip:alice-big@example.com%22%5d/list/rl:entry%5b400%5d?xmlns(rl=urn:ietf:params:xml:ns:resource-lists)',
      { headers },
    );
    assert.equal(service.status, 200, service.body);
    assert.match(service.body, /sip:m399@example.com/);
  });

  it('answers a body shorter than its Content-Length with 408 within seconds, and closes the connection', async () => {
    const head = `PUT ${RL_PATH} HTTP/1.1\r\nHost: x\r\n${ASSERTED}Content-Type: application/resource-lists+xml\r\nContent-Length: 100\r\n\r\n<resource-lists`;
    const r = await exchange(port, head, 15000);
    assert.match(r.text, /^HTTP\/1\.1 408 /, r.text);
    assert.ok(r.ms < 8000, `answered after ${r.ms} ms`);
    assert.ok(r.closed, 'the connection is closed: the missing bytes can never be a next request');
  });

  it('refuses Expect: 100-continue with a Content-Length above the limit with 413, never 100', async () => {
    const head = `PUT ${RL_PATH} HTTP/1.1\r\nHost: x\r\n${ASSERTED}Content-Type: application/resource-lists+xml\r\nExpect: 100-continue\r\nContent-Length: 10000000\r\n\r\n`;
    const r = await exchange(port, head, 5000);
    assert.match(r.text, /^HTTP\/1\.1 413 /, r.text);
    assert.doesNotMatch(r.text, /100 Continue/);
    // a body within the limit still gets its 100 and goes through
    const body = '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>';
    const ok = await rawRequest(as.base, 'PUT', RL_PATH, {
      body,
      headers: {
        expect: '100-continue',
        'content-type': 'application/resource-lists+xml',
        'x-3gpp-asserted-identity': ALICE,
      },
    });
    assert.ok(ok.status === 201 || ok.status === 200, `status ${ok.status}`);
  });

  it('logs a broken or abandoned request as one JSON line with its message, without a stack', async () => {
    const before = logLines.length;
    const stderr: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      stderr.push(String(chunk));
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      // the client sends part of the body and hangs up
      const head = `PUT ${RL_PATH} HTTP/1.1\r\nHost: x\r\n${ASSERTED}Content-Type: application/resource-lists+xml\r\nContent-Length: 100\r\n\r\n<resource`;
      await exchange(port, head, 3000, true);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      process.stderr.write = write;
    }
    const lines = logLines.slice(before);
    assert.ok(lines.length > 0, 'the abandoned request is logged');
    for (const l of lines) {
      const o = JSON.parse(l) as Record<string, unknown>;
      assert.equal(JSON.stringify(o).includes('    at '), false, `a stack in ${l}`);
      assert.equal('stack' in o || 'err' in o, false, l);
    }
    assert.ok(
      lines.some((l) => /abandoned by the client/.test(l) && /"error":"aborted"/.test(l)),
      lines.join('\n'),
    );
    assert.equal(stderr.join('').includes('    at '), false, `a stack on stderr: ${stderr.join('')}`);
  });

  it('answers every usage with its media type in one form (no charset parameter on some only)', async () => {
    const headers = { 'x-3gpp-asserted-identity': ALICE };
    const docs: Record<string, string> = {
      'pidf-manipulation': '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"/>',
      'resource-lists': '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>',
      'pres-rules': '<ruleset xmlns="urn:ietf:params:xml:ns:common-policy"/>',
    };
    const seen: string[] = [];
    for (const u of allUsages()) {
      const doc = docs[u.auid];
      if (!doc) continue;
      const path = `/xcap-root/${u.auid}/users/${ALICE}/index`;
      const put = await rawRequest(as.base, 'PUT', path, {
        body: doc,
        headers: { ...headers, 'content-type': u.mimeType },
      });
      assert.ok(put.status === 201 || put.status === 200, `${u.auid}: ${put.status} ${put.body}`);
      const get = await rawRequest(as.base, 'GET', path, { headers });
      assert.equal(get.headers.get('content-type'), u.mimeType, u.auid);
      seen.push(u.auid);
    }
    assert.equal(seen.length, Object.keys(docs).length, `usages checked: ${seen.join(', ')}`);
    for (const path of [
      '/xcap-root/xcap-caps/global/index',
      '/xcap-root/rls-services/global/index',
      `/xcap-root/org.openmobilealliance.xcap-directory/users/${ALICE}/directory.xml`,
    ]) {
      const r = await rawRequest(as.base, 'GET', path, { headers });
      assert.equal(r.status, 200, path);
      assert.doesNotMatch(r.headers.get('content-type') ?? '', /;/, path);
    }
  });

  it('serves an xcap-caps document valid against the RFC 4825 schema (xmllint), with <extensions>', async () => {
    const r = await rawRequest(as.base, 'GET', '/xcap-root/xcap-caps/global/index', {
      headers: { 'x-3gpp-asserted-identity': ALICE },
    });
    assert.equal(r.status, 200);
    // clients validate with schemas where <extensions> is required, though the RFC's has it optional
    assert.match(r.body, /<\/auids>\s*<extensions\s*\/?>/);
    const dir = mkdtempSync(join(tmpdir(), 'xcap-caps-'));
    try {
      writeFileSync(join(dir, 'caps.xml'), r.body);
      // throws (non-zero exit) when the document does not validate
      const out = execFileSync('xmllint', ['--noout', '--schema', 'schemas/xcap-caps.xsd', join(dir, 'caps.xml')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      assert.equal(out, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
