/**
 * Flood and spam protection with the real Kamailio and two AS instances on one store:
 * - Kamailio (WITH_ANTIFLOOD, on by default, limits lowered here): a source over its
 *   per-method limit gets 503 with Retry-After for that method while other sources, and its
 *   other methods, are served; a source flooding past pike's density gets no answer at all;
 *   both are logged once and counted on Kamailio's /metrics;
 * - the AS: a user's MESSAGEs beyond im.messagesPerMinute get 403 with Retry-After, counted
 *   as one over both instances (each takes part of them), while other users are served.
 * The sources are other loopback addresses: AS_IP (127.0.0.1) is exempt from Kamailio's limits.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario } from './im-scenarios.js';
import { subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const PW = (u: string) => `${u}-pw-flood`;
const AS_ENV = {
  AS_SHARED_STORE: 'true',
  AS_FEED_POLL_MS: '100',
  IM_MESSAGES_PER_MINUTE: '10',
  IM_GROUP_MESSAGES_PER_MINUTE: '2',
  PRESENCE_SUBSCRIBES_PER_MINUTE: '3',
};
const MESSAGE_LIMIT = 10;
const PIKE_DENSITY = 60;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A MESSAGE from `user` to `to`, answered digest challenges included, and any final answer taken. */
function anyFinal(name: string, auth: boolean): { name: string; xml: string } {
  const request = (cseq: number, withAuth: boolean) => `
  <send>
    <![CDATA[

      MESSAGE sip:[$to]@[$domain] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[$user]@[$domain]>;tag=[pid]f[call_number]
      To: <sip:[$to]@[$domain]>
      Call-ID: [call_id]
      CSeq: ${cseq} MESSAGE${withAuth ? '\n      [authentication]' : ''}
      Max-Forwards: 70
      Content-Type: text/plain
      Content-Length: [len]

${name} [call_number]
    ]]>
  </send>`;
  // any of these ends the call (the last one is not optional: sipp needs one that is not)
  const finalsThen = (last: string) =>
    [
      ...['202', '403', '503']
        .filter((c) => c !== last)
        .map((c) => `<recv response="${c}" optional="true" next="end" />`),
      `<recv response="${last}" next="end" />`,
    ].join('\n  ');
  const body = auth
    ? `${request(1, false)}
  <recv response="407" auth="true" optional="true" next="auth" />
  ${finalsThen('503')}
  <label id="auth" />
  ${request(2, true)}
  ${finalsThen('503')}`
    : `${request(1, false)}
  <recv response="407" optional="true" next="end" />
  ${finalsThen('503')}`;
  return {
    name,
    xml: `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="${name}">
  <Global variables="user,domain,to" />
  ${body}
  <label id="end" />
</scenario>`,
  };
}

interface Final {
  code: number;
  retryAfter?: number;
  warning?: string;
}

/** The final answer to each MESSAGE transaction's last request in a sipp trace, by Call-ID. */
function finals(trace: string): Map<string, Final> {
  const out = new Map<string, Final>();
  for (const block of trace.split(/\n-{20,}[^\n]*\n/)) {
    const status = /^(?:[^\n]*\n\s*)?SIP\/2\.0 (\d{3}) /m.exec(block);
    const callId = /^Call-ID:\s*([^\r\n]+)/im.exec(block)?.[1]?.trim();
    if (!status || !callId || !/^CSeq:\s*\d+\s+MESSAGE/im.test(block)) continue;
    const retry = /^Retry-After:\s*(\d+)/im.exec(block)?.[1];
    const warning = /^Warning:\s*([^\r\n]+)/im.exec(block)?.[1];
    // a 407 is followed by the authenticated request's answer, which replaces it
    out.set(callId, {
      code: Number(status[1]),
      ...(retry ? { retryAfter: Number(retry) } : {}),
      ...(warning ? { warning } : {}),
    });
  }
  return out;
}

const codesOf = (m: Map<string, Final>) => [...m.values()].map((f) => f.code).sort();
const count = (m: Map<string, Final>, code: number) => [...m.values()].filter((f) => f.code === code).length;

/** Waits until at least `seconds` remain in the current window of `windowS` seconds of the clock. */
async function roomInWindow(windowS: number, seconds: number): Promise<void> {
  const into = (Date.now() / 1000) % windowS;
  if (windowS - into < seconds) await sleep((windowS - into) * 1000 + 100);
}

describe('flood and spam protection', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(7460), AS_ENV, {
      kamailioDefines: [
        `ANTIFLOOD_MESSAGE=${MESSAGE_LIMIT}`,
        'ANTIFLOOD_WINDOW=10',
        `ANTIFLOOD_PIKE_DENSITY=${PIKE_DENSITY}`,
        'ANTIFLOOD_PIKE_UNIT=2',
      ],
    });
    await stack.startInstance(1, AS_ENV);
    await stack.provisionUsers(['alice', 'bob', 'carol', 'dave', 'erin'], PW);
    for (const i of [0, 1]) {
      await eventually(
        async () => (/^ims_as_isc_event_stream_up 1/m.test(await stack.instanceMetrics(i)) ? true : undefined),
        10000,
        `instance ${i} stream up`,
      );
    }
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  async function kamailioMetrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${stack.ports.rpc}/metrics`)).text();
  }

  it('Kamailio: a source over its MESSAGE limit gets 503 with Retry-After; its REGISTER and other sources are still served', async () => {
    await roomInWindow(10, 5);
    const flood = await stack.sipp(anyFinal('flood', false), {
      localIp: '127.0.0.2',
      set: { user: 'dave', to: 'bob' },
      args: ['-m', '25', '-r', '50', '-l', '25'],
      timeoutMs: 15000,
    });
    const got = finals(flood.messages);
    assert.equal(got.size, 25, `every MESSAGE answered (sipp exit ${flood.exitCode}):\n${flood.stdout.slice(-1500)}`);
    assert.equal(count(got, 407), MESSAGE_LIMIT, `the first ${MESSAGE_LIMIT} challenged as usual: ${codesOf(got)}`);
    assert.equal(count(got, 503), 25 - MESSAGE_LIMIT, `the rest refused: ${codesOf(got)}`);
    for (const f of got.values()) {
      if (f.code === 503)
        assert.ok(f.retryAfter !== undefined && f.retryAfter >= 1 && f.retryAfter <= 10, `Retry-After ${f.retryAfter}`);
    }

    // the same source's other methods, and another source's MESSAGEs, are served meanwhile
    const port = stack.sippPort();
    const reg = await stack.sipp('register', {
      localIp: '127.0.0.2',
      final: 200,
      set: { user: 'dave', ct_port: String(port), expires: '60' },
      args: ['-au', 'dave', '-ap', PW('dave')],
    });
    assert.equal(reg.exitCode, 0, `REGISTER from the flooding source still served:\n${reg.stdout.slice(-1500)}`);
    const other = await stack.sipp(messageScenario({ final: 202, body: 'from elsewhere' }), {
      localIp: '127.0.0.3',
      set: { user: 'carol', to: 'bob' },
      args: ['-au', 'carol', '-ap', PW('carol')],
    });
    assert.equal(other.exitCode, 0, `another source served:\n${other.stdout.slice(-1500)}`);

    const lines = stack
      .logOf('kamailio')
      .split('\n')
      .filter((l) => /flood: 127\.0\.0\.2 sent more than 10 MESSAGE requests in 10 s/.test(l));
    assert.equal(lines.length, 1, 'one log line for the whole window');
    const metrics = await kamailioMetrics();
    assert.match(
      metrics,
      new RegExp(`^kamailio_antiflood_refused_total\\s*\\{method="MESSAGE"\\}\\s+${25 - MESSAGE_LIMIT}\\b`, 'm'),
    );
  });

  it("Kamailio: a source flooding past pike's density gets no answer at all, while another source is answered", async () => {
    const socket = createSocket('udp4');
    await new Promise<void>((res) => socket.bind(0, '127.0.0.4', () => res()));
    const answered = new Set<string>();
    socket.on('message', (m) => {
      const id = /^Call-ID:\s*(\S+)/im.exec(m.toString())?.[1];
      if (id) answered.add(id);
    });
    const options = (i: number, from: string, port: number) =>
      Buffer.from(
        [
          'OPTIONS sip:example.com SIP/2.0',
          `Via: SIP/2.0/UDP ${from}:${port};branch=z9hG4bK-pike-${i}-${Date.now()}`,
          'From: <sip:probe@example.com>;tag=p',
          'To: <sip:example.com>',
          `Call-ID: pike-${from}-${i}`,
          'CSeq: 1 OPTIONS',
          'Max-Forwards: 70',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    const { port } = socket.address();
    const sent = 200;
    try {
      for (let i = 0; i < sent; i++) {
        socket.send(options(i, '127.0.0.4', port), stack.ports.sip, '127.0.0.1');
        if (i % 20 === 19) await sleep(5);
      }
      await sleep(1500);
      assert.ok(
        answered.size >= PIKE_DENSITY - 2 && answered.size <= 2 * PIKE_DENSITY,
        `answered ${answered.size} of ${sent}: up to the density, then nothing`,
      );

      // another source is answered at once
      const probe = createSocket('udp4');
      await new Promise<void>((res) => probe.bind(0, '127.0.0.5', () => res()));
      const reply = new Promise<string>((res) => probe.once('message', (m) => res(m.toString())));
      probe.send(options(0, '127.0.0.5', probe.address().port), stack.ports.sip, '127.0.0.1');
      const answer = await Promise.race([reply, sleep(3000).then(() => 'no answer')]);
      probe.close();
      assert.match(answer, /^SIP\/2\.0 200 /);
    } finally {
      socket.close();
    }
    const lines = stack
      .logOf('kamailio')
      .split('\n')
      .filter((l) => /flood: blocking 127\.0\.0\.4 /.test(l));
    assert.equal(lines.length, 1, 'one log line for the block');
    const dropped = Number(
      /^kamailio_antiflood_dropped_total\s*(?:\{\})?\s+(\d+)/m.exec(await kamailioMetrics())?.[1] ?? -1,
    );
    assert.equal(dropped, sent - answered.size, 'every unanswered request counted as dropped');
  });

  it("AS: a user's MESSAGEs beyond the per-minute limit get 403 with Retry-After, counted as one over both instances", async () => {
    // all of them inside one minute of the clock (the counters' window)
    await roomInWindow(60, 15);
    const sent = 16;
    const run = await stack.sipp(anyFinal('user-limit', true), {
      set: { user: 'alice', to: 'bob' },
      args: ['-au', 'alice', '-ap', PW('alice'), '-m', String(sent), '-r', '20', '-l', String(sent)],
      timeoutMs: 20000,
    });
    const got = finals(run.messages);
    assert.equal(got.size, sent, `every MESSAGE answered (sipp exit ${run.exitCode}):\n${run.stdout.slice(-1500)}`);
    assert.equal(count(got, 202), 10, `exactly the limit accepted (stored for offline bob): ${codesOf(got)}`);
    assert.equal(count(got, 403), sent - 10, `the rest refused: ${codesOf(got)}`);
    for (const f of got.values()) {
      if (f.code !== 403) continue;
      assert.ok(f.retryAfter !== undefined && f.retryAfter >= 1 && f.retryAfter <= 60, `Retry-After ${f.retryAfter}`);
      assert.match(f.warning ?? '', /^399 example\.com "at most 10 MESSAGEs per minute; try again in \d+ s"/);
    }
    // each instance decided some of them, and their refusals add up to the one limit
    const texts = await Promise.all([0, 1].map((i) => stack.instanceMetrics(i)));
    const decided = texts.map((t) =>
      [
        ...t.matchAll(/^ims_as_isc_decisions_total\{service="im",method="MESSAGE",decision="(?:202|403)"\} (\d+)/gm),
      ].reduce((n, m) => n + Number(m[1]), 0),
    );
    assert.ok(decided[0]! > 0 && decided[1]! > 0, `both instances took part: ${decided}`);
    const limited = texts.map((t) =>
      Number(/^ims_as_user_rate_limited_total\{kind="message"\} (\d+)/m.exec(t)?.[1] ?? 0),
    );
    assert.equal(limited[0]! + limited[1]!, sent - 10, `refusals counted: ${limited}`);
    assert.equal(
      stack
        .logOf('as')
        .split('\n')
        .filter((l) => l.includes('user over the per-minute limit') && l.includes('sip:alice@example.com')).length,
      1,
      'one warning for alice this minute',
    );

    // another user is served meanwhile
    const carol = await stack.sipp(messageScenario({ final: 202, body: 'carol is not limited' }), {
      set: { user: 'carol', to: 'bob' },
      args: ['-au', 'carol', '-ap', PW('carol')],
    });
    assert.equal(carol.exitCode, 0, carol.stdout.slice(-1500));
  });

  it('AS: group messages beyond the per-minute limit get 403 before anything is sent to the members', async () => {
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'dave', PW('dave'));
    const put = await xcap.put(
      '/xcap-root/org.openmobilealliance.groups/users/sip:dave@example.com/index',
      '<group xmlns="urn:oma:xml:poc:list-service"><list-service uri="sip:crew@example.com"><list>' +
        '<entry uri="sip:bob@example.com"/><entry uri="sip:carol@example.com"/></list></list-service></group>',
      'application/vnd.oma.poc.groups+xml',
    );
    assert.equal(put.status, 201, put.body);
    await roomInWindow(60, 10);
    const run = await stack.sipp(anyFinal('group-limit', true), {
      set: { user: 'dave', to: 'crew' },
      args: ['-au', 'dave', '-ap', PW('dave'), '-m', '4', '-r', '10', '-l', '4'],
      timeoutMs: 15000,
    });
    const got = finals(run.messages);
    assert.deepEqual(codesOf(got), [202, 202, 403, 403], `two exploded, two refused:\n${run.stdout.slice(-1500)}`);
    for (const f of got.values()) {
      if (f.code === 403)
        assert.match(f.warning ?? '', /"at most 2 group or list messages per minute; try again in \d+ s"/);
    }
    const texts = await Promise.all([0, 1].map((i) => stack.instanceMetrics(i)));
    const explosions = texts.map((t) => Number(/^ims_as_im_explosions_total (\d+)/m.exec(t)?.[1] ?? 0));
    assert.equal(explosions[0]! + explosions[1]!, 2, `only the accepted ones were sent on: ${explosions}`);
  });

  it('AS: SUBSCRIBEs beyond the per-minute limit get 403, refreshes counted, un-SUBSCRIBEs not', async () => {
    await roomInWindow(60, 10);
    // the initial SUBSCRIBE and two in-dialog refreshes are the three allowed; the un-SUBSCRIBE
    // that ends the dialog is not counted (were it, it would be refused and the run fail)
    const allowed = await stack.sipp(
      {
        name: 'sub-allowed',
        xml: subscriberScenario({ event: 'reg', accept: 'application/reginfo+xml', expires: 60, refreshes: 2 }),
      },
      { set: { user: 'erin', target: 'erin' }, args: ['-au', 'erin', '-ap', PW('erin')], timeoutMs: 15000 },
    );
    assert.equal(allowed.exitCode, 0, `three SUBSCRIBEs and an un-SUBSCRIBE served:\n${allowed.stdout.slice(-1500)}`);
    const refused = await stack.sipp(
      { name: 'sub-refused', xml: subscriberScenario({ event: 'reg', expectFinal: 403 }) },
      { set: { user: 'erin', target: 'erin' }, args: ['-au', 'erin', '-ap', PW('erin')], timeoutMs: 15000 },
    );
    assert.equal(refused.exitCode, 0, `the fourth refused 403:\n${refused.stdout.slice(-1500)}`);
    assert.match(refused.messages, /^Retry-After: \d+/m);
    assert.match(refused.messages, /^Warning: 399 example\.com "at most 3 SUBSCRIBEs per minute; try again in \d+ s"/m);
  });
});
