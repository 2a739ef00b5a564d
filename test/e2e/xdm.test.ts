/**
 * XDMS end to end: a user's XCAP documents over real HTTP with digest auth (the SIP
 * credentials), and xcap-diff change notification through the real Kamailio to a sipp
 * subscriber: initial NOTIFY with the document's ETag, a NOTIFY after a PUT with the old
 * and new ETags, a final NOTIFY after un-SUBSCRIBE, and the subscription charged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const LIST = (entries: string[]) => `<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list name="friends">${entries.map((u) => `<entry uri="${u}"/>`).join('')}</list>
</resource-lists>`;
const DOC = '/xcap-root/resource-lists/users/sip:frank@example.com/index';

describe('XDMS: XCAP documents and xcap-diff through Kamailio', () => {
  let stack: TestStack;
  let frank: XcapClient;

  before(async () => {
    stack = await TestStack.start(portsFrom(5460));
    assert.equal((await stack.provision('add', 'frank', '--password', 'frank-pw-1')).code, 0);
    frank = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'frank', 'frank-pw-1');
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('refuses XCAP without credentials and with a wrong password', async () => {
    const anon = await fetch(`http://127.0.0.1:${stack.ports.xdm}${DOC}`);
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Digest realm="example\.com", qop="auth"/);
    const wrong = await new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'frank', 'nope').get(DOC);
    assert.equal(wrong.status, 401);
  });

  it('notifies an xcap-diff subscriber of the document and of its change', async () => {
    const first = await frank.put(DOC, LIST(['sip:bob@example.com']), 'application/resource-lists+xml');
    assert.equal(first.status, 201);
    const xml = subscriberScenario({ event: 'xcap-diff', accept: 'application/xcap-diff+xml', more: 1 });
    const sub = stack.sipp(
      { name: 'xcap-diff-subscriber', xml },
      { set: { user: 'frank', target: 'frank' }, args: ['-au', 'frank', '-ap', 'frank-pw-1'], timeoutMs: 30000 },
    );
    await eventually(
      async () =>
        /ims_as_notify_total\{event="xcap-diff",code="200"\} 1/.test(await stack.metrics()) ? true : undefined,
      10000,
      'the first NOTIFY answered',
    );
    const second = await frank.put(
      DOC,
      LIST(['sip:bob@example.com', 'sip:carol@example.com']),
      'application/resource-lists+xml',
      { 'If-Match': `"${first.etag}"` },
    );
    assert.equal(second.status, 200);
    const run = await sub;
    assert.equal(run.exitCode, 0, run.stdout);

    const bodies = [...run.messages.matchAll(/NOTIFY sip:[^\n]*\n([\s\S]*?)(?=\n-{5,}|$)/g)].map((m) => m[1]!);
    assert.equal(bodies.length, 3, `three NOTIFYs expected, trace:\n${run.messages}`);
    const sel = 'sel="resource-lists/users/sip:frank@example.com/index"';
    assert.match(bodies[0]!, /Subscription-State: active;expires=\d+/);
    assert.match(bodies[0]!, new RegExp(`${sel} new-etag="${first.etag}"`));
    assert.match(bodies[1]!, new RegExp(`${sel} previous-etag="${first.etag}" new-etag="${second.etag}"`));
    assert.match(bodies[2]!, /Subscription-State: terminated/);
    const cseqs = bodies.map((b) => Number(/CSeq: (\d+) NOTIFY/.exec(b)?.[1]));
    assert.deepEqual(cseqs, [1, 2, 3], 'NOTIFY CSeq strictly increasing from 1');
    for (const b of bodies) assert.match(b, /Event: xcap-diff/);

    const cdrs = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.event === 'xcap-diff');
        return l.length >= 2 ? l : undefined;
      },
      5000,
      'subscription CDRs',
    );
    assert.deepEqual(
      cdrs.map((c) => c.outcome),
      ['subscription-opened', 'subscription-closed'],
    );
    assert.equal(cdrs[1]!.callingPartyAddress, 'sip:frank@example.com');
    assert.equal((cdrs[1]!.extra as { notifyCount: number }).notifyCount, 3);
  });
});
