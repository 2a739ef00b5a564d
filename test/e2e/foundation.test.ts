/**
 * Foundation flow, end to end: real Kamailio + AS + sipp on loopback. Two users register
 * with digest auth; a MESSAGE reaches the other's registered contact with our asserted
 * identity; the sender gets the delivery's 200; charging records land in the CDR file and
 * in the store. Plus the refusals (unknown user, wrong password, AS down) and the 202 of a
 * message stored for an offline user (the IM tests follow its delivery).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { openStore } from '../../as/src/store/open-store.js';
import { DOMAIN, TestStack, eventually, portsFrom } from './stack.js';

const PASS = { alice: 'alice-pw-1', bob: 'bob-pw-2', dave: 'dave-pw-3', erin: 'erin-pw-4' };

describe('foundation: register, MESSAGE through Kamailio and the AS, charging', () => {
  let stack: TestStack;
  let bobUasPort: number;
  let deliveredCallId = '';
  let erinPort = 0;

  before(async () => {
    stack = await TestStack.start(portsFrom(5360));
    bobUasPort = stack.sippPort();
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('provisions users with the CLI (HA1 only) and refuses a duplicate', async () => {
    for (const [user, pw] of Object.entries(PASS)) {
      const r = await stack.provision('add', `sip:${user}@${DOMAIN}`, '--password', pw);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, new RegExp(`added sip:${user}@${DOMAIN}`));
    }
    const dup = await stack.provision('add', 'alice', '--password', 'whatever');
    assert.notEqual(dup.code, 0);
    assert.match(dup.out, /already exists/);
    const list = await stack.provision('list');
    assert.deepEqual(list.out.trim().split('\n'), [
      'sip:alice@example.com',
      'sip:bob@example.com',
      'sip:dave@example.com',
      'sip:erin@example.com',
    ]);
  });

  it('registers bob with digest authentication (401 then 200)', async () => {
    const r = await stack.sipp('register', {
      final: 200,
      set: { user: 'bob', ct_port: String(bobUasPort), expires: '300' },
      args: ['-au', 'bob', '-ap', PASS.bob],
    });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.match(r.messages, /SIP\/2\.0 401 Unauthorized/);
    assert.match(r.messages, /SIP\/2\.0 200 OK[\s\S]*Contact: <sip:bob@127\.0\.0\.1:\d+>;expires=/);
  });

  it('refuses a REGISTER with a wrong password (challenged again)', async () => {
    const r = await stack.sipp('register', {
      final: 401,
      set: { user: 'alice', ct_port: '5999', expires: '300' },
      args: ['-au', 'alice', '-ap', 'not-the-password'],
    });
    assert.equal(r.exitCode, 0, r.stdout);
  });

  it("delivers alice's MESSAGE to bob's contact with alice's asserted identity; alice gets 200", async () => {
    const uas = stack.sipp('uas-message', { port: bobUasPort, timeoutMs: 15000 });
    await new Promise((r) => setTimeout(r, 300));
    const text = `hello bob ${Date.now()}`;
    const sent = await stack.sipp('message', {
      final: 200,
      set: { user: 'alice', to: 'bob', text },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(sent.exitCode, 0, sent.stdout);
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const received = /MESSAGE sip:bob@127\.0\.0\.1:\d+ SIP\/2\.0[\s\S]*?\n\s*\n(.*)/.exec(got.messages);
    assert.ok(received, `bob's UA got no MESSAGE:\n${got.messages}`);
    assert.equal(received[1]!.trim(), text);
    assert.match(got.messages, /P-Asserted-Identity: <sip:alice@example\.com>/);
    assert.doesNotMatch(got.messages, /mallory/, 'the forged P-Asserted-Identity must not reach bob');
    assert.match(got.messages, /P-Charging-Vector: icid-value=/);
    deliveredCallId = /Call-ID: (\S+)/.exec(got.messages)![1]!;
    // it went to the AS on the event stream, and its decision came back the same way
    assert.match(await stack.metrics(), /^ims_as_isc_stream_requests_total [1-9]/m);
  });

  it('writes one CDR line per role for the delivered MESSAGE', async () => {
    const lines = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === deliveredCallId);
        return l.length >= 2 ? l : undefined;
      },
      5000,
      'CDR lines of the delivered MESSAGE',
    );
    assert.equal(lines.length, 2);
    assert.deepEqual(lines.map((c) => c.roleOfNode).sort(), ['originating', 'terminating']);
    for (const c of lines) {
      assert.equal(c.recordType, 'ASRecord');
      assert.equal(c.callingPartyAddress, 'sip:alice@example.com');
      assert.equal(c.calledPartyAddress, 'sip:bob@example.com');
      assert.equal(c.sipMethod, 'MESSAGE');
      assert.equal(c.statusCode, 200);
      assert.equal(c.outcome, 'delivered');
      assert.equal(typeof c.imsChargingIdentifier, 'string');
      assert.deepEqual(c.messageBody, {
        contentType: 'text/plain',
        contentLength: (c.messageBody as { contentLength: number }).contentLength,
      });
      assert.ok((c.messageBody as { contentLength: number }).contentLength > 10);
    }
    assert.equal(lines[0]!.imsChargingIdentifier, lines[1]!.imsChargingIdentifier, 'both roles share the ICID');
  });

  it('accepts 127.0.0.1 as an alias of the domain and charges the canonical identities', async () => {
    const uas = stack.sipp('uas-message', { port: bobUasPort, timeoutMs: 15000 });
    await new Promise((r) => setTimeout(r, 300));
    // a client configured with the core's address (the alias is the address with Kamailio's
    // ports, and the address without a port, as clients configured with an IP drop it)
    const sent = await stack.sipp('message', {
      final: 200,
      set: { domain: `127.0.0.1:${stack.ports.sip}`, user: 'alice', to: 'bob', text: 'via the alias' },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(sent.exitCode, 0, sent.stdout);
    const got = await uas;
    assert.match(got.messages, /P-Asserted-Identity: <sip:alice@example\.com>/);
    const callId = /Call-ID: (\S+)/.exec(got.messages)![1]!;
    const lines = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.sessionId === callId);
        return l.length >= 2 ? l : undefined;
      },
      5000,
      'CDRs of the aliased MESSAGE',
    );
    assert.deepEqual(
      [...new Set(lines.map((c) => `${c.callingPartyAddress} -> ${c.calledPartyAddress}`))],
      ['sip:alice@example.com -> sip:bob@example.com'],
    );
  });

  it('reports store, Kamailio and the event stream on /health', async () => {
    const res = await fetch(`http://127.0.0.1:${stack.ports.isc}/health`);
    assert.equal(res.status, 200);
    const h = (await res.json()) as { status: string; checks: Record<string, { ok: boolean; detail: string }> };
    assert.equal(h.status, 'ok');
    assert.deepEqual(h.checks.store, { ok: true, detail: 'embedded' });
    assert.equal(h.checks.kamailio?.ok, true);
    assert.match(h.checks.kamailio!.detail, /kamailio 5\.6/);
    assert.deepEqual(h.checks.eventStream, { ok: true, detail: 'connected' });
  });

  it('answers 404 for a MESSAGE to a user that does not exist', async () => {
    const r = await stack.sipp('message', {
      final: 404,
      set: { user: 'alice', to: 'carol', text: 'anyone?' },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(r.exitCode, 0, r.stdout);
  });

  it('answers 202 Accepted for a MESSAGE to a known user with no registered contact (stored for later)', async () => {
    const r = await stack.sipp('message', {
      final: 202,
      set: { user: 'alice', to: 'dave', text: 'are you there?' },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(r.exitCode, 0, r.stdout);
  });

  it('sends a MESSAGE of its own through the core and learns the 200 (From and To tags intact)', async () => {
    const uas = stack.sipp('uas-message', { port: bobUasPort, timeoutMs: 15000 });
    await new Promise((r) => setTimeout(r, 300));
    const res = await stack.admin('POST', '/messages', { to: 'sip:bob@example.com', text: 'service notice' });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { code: 200, reason: 'OK', timedOut: false });
    const got = await uas;
    assert.equal(got.exitCode, 0, got.stdout);
    const from = /^From: (.*)$/m.exec(got.messages)?.[1] ?? '';
    assert.match(from, /^<sip:service@example\.com>;tag=[\w-]+$/, `one From tag expected: ${from}`);
    assert.match(got.messages, /\n\s*service notice/);
    assert.doesNotMatch(got.messages, /X-ISC-Origin/i, 'the core strips the AS marker');
  });

  it('learns the 480 of a MESSAGE of its own to a user with no contact', async () => {
    const res = await stack.admin('POST', '/messages', { to: 'sip:dave@example.com', text: 'anyone?' });
    assert.deepEqual(res.json, { code: 480, reason: 'Temporarily Unavailable', timedOut: false });
  });

  it('carries a burst of 1,500 requests of its own on the event stream without losing one', async () => {
    // evapi drops frames when a read ends inside a length prefix, which a burst larger than
    // its 32 KB buffer provokes; every request must still get its real outcome, none a timeout
    const sent = Array.from({ length: 1500 }, (_, i) =>
      stack.admin('POST', '/messages', {
        to: 'sip:dave@example.com',
        text: `burst ${i} ${'x'.repeat(200 + ((i * 7919) % 1300))}`,
      }),
    );
    const outcomes = (await Promise.all(sent)).map((r) => `${String(r.json.code)} ${String(r.json.timedOut)}`);
    const tally = outcomes.reduce<Record<string, number>>((t, o) => ({ ...t, [o]: (t[o] ?? 0) + 1 }), {});
    assert.deepEqual(tally, { '480 false': 1500 });
  });

  it("learns the 408 when the user's UA never answers", async () => {
    erinPort = stack.sippPort();
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'erin', ct_port: String(erinPort), expires: '300' },
      args: ['-au', 'erin', '-ap', PASS.erin],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const silent = stack.sipp('uas-silent', { port: erinPort, timeoutMs: 15000 });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const res = await stack.admin('POST', '/messages', { to: 'sip:erin@example.com', text: 'hello?' });
    assert.equal(res.json.code, 408);
    const took = Date.now() - started;
    assert.ok(took >= 4500 && took < 9000, `outcome after ${took} ms (fr_timer is 5 s)`);
    await silent;
  });

  it('tells the AS when a user deregisters (Expires: 0)', async () => {
    const r = await stack.sipp('register', {
      final: 200,
      set: { user: 'erin', ct_port: String(erinPort), expires: '0' },
      args: ['-au', 'erin', '-ap', PASS.erin],
    });
    assert.equal(r.exitCode, 0, r.stdout);
    await eventually(
      async () =>
        (await stack.metrics()).match(/ims_as_isc_events_total\{type="registration"\} (\d+)/)?.[1] === '3'
          ? true
          : undefined,
      3000,
      'three registration events',
    );
  });

  it('gives a prompt 503 when the AS is down', async () => {
    await stack.stopAs();
    const r = await stack.sipp('message', {
      final: 503,
      set: { user: 'alice', to: 'bob', text: 'AS down' },
      args: ['-au', 'alice', '-ap', PASS.alice],
    });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.ok(r.elapsedMs < 3000, `503 took ${r.elapsedMs} ms`);
  });

  it('kept the charging records and the registration in the store', async () => {
    // the AS is stopped now, so its embedded store can be opened here
    const store = await openStore({ dataDir: join(stack.dir, 'data') });
    try {
      const cdrs = await store.collection('cdrs').find({ sessionId: deliveredCallId });
      assert.equal(cdrs.length, 2);
      assert.deepEqual(
        cdrs.map((c) => c.calledPartyAddress),
        ['sip:bob@example.com', 'sip:bob@example.com'],
      );
      const rejected = await store.collection('cdrs').find({ statusCode: 404 });
      assert.ok(rejected.length >= 1, 'the 404 is charged as rejected');
      assert.equal(rejected[0]!.outcome, 'rejected');
      const reg = await store.collection('registrations').findOne({ _id: 'sip:bob@example.com' });
      assert.ok(reg, "bob's registration reached the AS");
      assert.equal((reg.contacts as Array<{ uri: string }>).length, 1);
      assert.match((reg.contacts as Array<{ uri: string }>)[0]!.uri, /^sip:bob@127\.0\.0\.1:\d+$/);
      const erin = await store.collection('registrations').findOne({ _id: 'sip:erin@example.com' });
      assert.deepEqual(erin?.contacts, [], 'erin deregistered');
    } finally {
      await store.close();
    }
  });
});
