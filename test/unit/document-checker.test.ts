/**
 * The XCAP server's document checker: the same outcome inline and in its worker thread, a
 * failed check answered (never left pending) and the checker usable afterwards, pending checks
 * failed on close.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { DocumentChecker } from '../../as/src/xdm/document-checker.js';
import { parseXcapUri } from '../../as/src/xdm/xcap-uri.js';

const CTX = { xui: 'sip:joe@example.com', domain: 'example.com' };
const LIMITS = { maxBytes: 1024 * 1024, maxDepth: 32 };

function list(entries: number, extra = ''): Buffer {
  const e = Array.from({ length: entries }, (_, i) => `<entry uri="sip:c${i}@example.com"/>`).join('');
  return Buffer.from(
    `<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list name="l">${e}${extra}</list></resource-lists>`,
  );
}

describe('DocumentChecker', () => {
  const inline = new DocumentChecker({
    limits: LIMITS,
    inlineBelowBytes: Number.MAX_SAFE_INTEGER,
    log: silentLogger(),
    metrics: new Metrics(),
  });
  const worker = new DocumentChecker({
    limits: LIMITS,
    inlineBelowBytes: 0,
    log: silentLogger(),
    metrics: new Metrics(),
  });
  after(() => Promise.all([inline.close(), worker.close()]));

  it('gives the same outcome in the worker as inline', async () => {
    assert.equal(worker.offloads(1), true);
    assert.equal(inline.offloads(1 << 20), false);
    for (const body of [
      list(50),
      list(50, '<entry/>'),
      list(50, '<entry uri="sip:c1@example.com"/>'),
      Buffer.from('<resource-lists'),
      Buffer.from([0x3c, 0xff, 0x3e]),
    ]) {
      assert.deepEqual(
        await worker.check('resource-lists', body, CTX),
        await inline.check('resource-lists', body, CTX),
      );
    }
    const sel = parseXcapUri(
      '/x/resource-lists/users/sip:joe@example.com/index/~~/resource-lists/list/entry%5b@uri=%22sip:c1@example.com%22%5d',
      '/x',
      {},
    ).nodeSelector!;
    const got = await worker.node('resource-lists', list(3).toString(), sel, { kind: 'get' }, CTX);
    assert.ok('node' in got && /sip:c1@example.com/.test(got.node.body), JSON.stringify(got));
    const gone = await worker.node('resource-lists', list(3).toString(), sel, { kind: 'delete' }, CTX);
    assert.ok(
      'changed' in gone && !gone.changed.text.includes('sip:c1@') && gone.changed.facts.problems.length === 0,
      JSON.stringify(gone),
    );
    const missing = await worker.node('resource-lists', list(1).toString(), sel, { kind: 'get' }, CTX);
    assert.ok('opError' in missing && missing.opError.tag === 'not-found', JSON.stringify(missing));
  });

  it('answers a check that fails in the worker with an error, and goes on working', async () => {
    await assert.rejects(
      worker.check('no-such-usage', list(1), CTX),
      /document check failed: no application usage no-such-usage/,
    );
    const ok = await worker.check('resource-lists', list(1), CTX);
    assert.ok('facts' in ok && ok.facts.problems.length === 0);
  });

  it('fails the checks still waiting when it is closed', async () => {
    const closing = new DocumentChecker({
      limits: LIMITS,
      inlineBelowBytes: 0,
      log: silentLogger(),
      metrics: new Metrics(),
    });
    const waiting = assert.rejects(closing.check('resource-lists', list(20000), CTX), /closed/);
    await closing.close();
    await waiting;
  });
});
