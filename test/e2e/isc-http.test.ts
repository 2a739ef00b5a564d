/**
 * The ISC interface without the event stream (an AS configured with no evapi address, or
 * while its stream is down): Kamailio posts initial requests and events over HTTP and
 * carries out the decisions it gets back, as it does for those that come on the stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DOMAIN, TestStack, eventually, portsFrom } from './stack.js';

const PASS = { alice: 'alice-pw-1', bob: 'bob-pw-2' };

describe('ISC over HTTP when no event stream is connected', () => {
  let stack: TestStack;
  let bobUasPort: number;

  before(async () => {
    stack = await TestStack.start(portsFrom(6160), { KAMAILIO_EVAPI_ADDR: '' });
    bobUasPort = stack.sippPort();
    for (const [user, pw] of Object.entries(PASS)) {
      const r = await stack.provision('add', `sip:${user}@${DOMAIN}`, '--password', pw);
      assert.equal(r.code, 0, r.out);
    }
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('registers bob, and the registration event reaches the AS over HTTP', async () => {
    const r = await stack.sipp('register', {
      final: 200,
      set: { user: 'bob', ct_port: String(bobUasPort), expires: '300' },
      args: ['-au', 'bob', '-ap', PASS.bob],
    });
    assert.equal(r.exitCode, 0, r.stdout);
    const metrics = await eventually(
      async () => {
        const m = await stack.metrics();
        return /^ims_as_isc_events_total\{type="registration"\} [1-9]/m.test(m) ? m : undefined;
      },
      5000,
      'the registration event',
    );
    assert.match(metrics, /^ims_as_isc_event_stream_up 0/m);
  });

  it("delivers alice's MESSAGE to bob on a continue decision, and answers 404 for an unknown user", async () => {
    const uas = stack.sipp('uas-message', { port: bobUasPort, timeoutMs: 15000 });
    await new Promise((r) => setTimeout(r, 300));
    const text = `over http ${Date.now()}`;
    const sent = await stack.sipp('message', {
      final: 200,
      set: { user: 'alice', to: 'bob', text },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(sent.exitCode, 0, sent.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    assert.match(got.messages, new RegExp(`\\n${text}`));
    assert.match(got.messages, /P-Asserted-Identity: <sip:alice@example\.com>/);
    assert.match(got.messages, /P-Charging-Vector: icid-value=/);
    const unknown = await stack.sipp('message', {
      final: 404,
      set: { user: 'alice', to: 'nobody', text: 'hi' },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(unknown.exitCode, 0, unknown.stdout);
    const m = await stack.metrics();
    assert.doesNotMatch(m, /^ims_as_isc_stream_requests_total [1-9]/m, 'nothing came on a stream');
    assert.match(m, /^ims_as_isc_decisions_total\{service="im",method="MESSAGE",decision="continue"\} [1-9]/m);
    assert.match(m, /^ims_as_isc_decisions_total\{service="im",method="MESSAGE",decision="404"\} [1-9]/m);
  });
});
