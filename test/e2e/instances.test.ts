/**
 * Two AS instances behind one Kamailio, both with their event streams up, on one store
 * (SQLite in WAL mode): Kamailio spreads requests over both, and one instance is killed
 * (kill -9) in the middle of a MESSAGE load to an offline user while twenty presence
 * subscriptions are live. What an operator must be able to count on afterwards:
 *  - every MESSAGE answered 202 is delivered exactly once when the user registers (the ones
 *    in flight on the dead instance get a 5xx, never a 202 and a loss);
 *  - every subscription keeps getting its NOTIFYs, from the survivor;
 *  - the CDR files hold exactly one record per role for each answered MESSAGE (the crashed
 *    node catches its file up from the store when it comes back, as after any crash).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PRES_RULES_TYPE, allowWatchers, presRulesPath } from '../helpers/pres-rules.js';
import { XcapClient } from '../helpers/xcap-client.js';
import { messageScenario, receivedMessages, receiverScenario } from './im-scenarios.js';
import { publisherScenario, subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom } from './stack.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFileIndependently } from '../helpers/cdr-independent.js';

const PW = (u: string) => `${u}-pw-instances`;
const SHARED = {
  AS_SHARED_STORE: 'true',
  AS_FEED_POLL_MS: '100',
  AS_LEASE_SECONDS: '3',
  IM_SWEEP_SECONDS: '1',
  PRESENCE_MIN_EXPIRES: '2',
  CDR_FILE_MAX_SECONDS: '2',
};
const WATCHERS = 20;
const MESSAGES = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The final response to each MESSAGE in a sipp trace (the first one seen), by Call-ID. */
function finals(trace: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const block of trace.split(/\n-{20,}[^\n]*\n/)) {
    const status = /^(?:[^\n]*\n\s*)?SIP\/2\.0 (\d{3}) /m.exec(block);
    const callId = /^Call-ID:\s*([^\r\n]+)/im.exec(block)?.[1]?.trim();
    const cseq = /^CSeq:\s*\d+\s+(\w+)/im.exec(block)?.[1];
    if (!status || !callId || cseq !== 'MESSAGE') continue;
    const code = Number(status[1]);
    if (code >= 200 && code !== 401 && code !== 407 && !out.has(callId)) out.set(callId, code);
  }
  return out;
}

describe('two AS instances on one store, one killed under load', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(6960), SHARED);
    await stack.startInstance(1, SHARED);
    for (const u of ['alice', 'bob', 'carol']) {
      const r = await stack.provision('add', u, '--password', PW(u));
      assert.equal(r.code, 0, r.out);
    }
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'alice', PW('alice'));
    assert.equal(
      (await xcap.put(presRulesPath('sip:alice@example.com'), allowWatchers('sip:carol@example.com'), PRES_RULES_TYPE))
        .status,
      201,
    );
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

  it('loses and duplicates nothing: 202s delivered once, subscriptions notified by the survivor, one CDR per role', async () => {
    const auth = (u: string) => ['-au', u, '-ap', PW(u)];
    const pub = await stack.sipp(
      {
        name: 'publish-before',
        xml: publisherScenario([
          { kind: 'initial', basic: 'open', note: 'before the crash', expires: 600, expect: 200 },
        ]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(pub.exitCode, 0, pub.stdout);

    // twenty live subscriptions, spread over both instances by their Call-IDs
    const watchers = stack.sipp(
      {
        name: 'watchers',
        xml: subscriberScenario({ event: 'presence', expires: 120, more: 1, notifyTimeoutMs: 45000 }),
      },
      {
        set: { user: 'carol', target: 'alice' },
        args: [...auth('carol'), '-m', String(WATCHERS), '-r', '20', '-l', String(WATCHERS)],
        timeoutMs: 90000,
      },
    );
    await eventually(
      async () => {
        const m = await Promise.all([0, 1].map((i) => stack.instanceMetrics(i)));
        const subs = m.map((t) =>
          Number(/^ims_as_subscriptions_total\{event="presence",kind="initial"\} (\d+)/m.exec(t)?.[1] ?? 0),
        );
        return subs[0]! + subs[1]! >= WATCHERS ? subs : undefined;
      },
      20000,
      'all subscriptions made',
    );
    const perInstance = await Promise.all(
      [0, 1].map(async (i) =>
        Number(
          /^ims_as_subscriptions_total\{event="presence",kind="initial"\} (\d+)/m.exec(
            await stack.instanceMetrics(i),
          )?.[1] ?? 0,
        ),
      ),
    );
    assert.ok(perInstance[0]! > 0 && perInstance[1]! > 0, `both instances hold subscriptions: ${perInstance}`);

    // MESSAGE load to bob (offline: each is stored, 202); instance 1 dies in the middle
    const load = stack.sipp(
      { ...messageScenario({ final: 202, body: 'load-[call_number]' }), name: 'load' },
      {
        set: { user: 'alice', to: 'bob' },
        args: [...auth('alice'), '-m', String(MESSAGES), '-r', '50', '-l', '40'],
        timeoutMs: 60000,
      },
    );
    await sleep(1500);
    await stack.stopInstance(1, 'SIGKILL');
    // a change right after the crash: the survivor notifies its own dialogs at once, and the
    // dead instance's when it adopts them (a NOTIFY with the full state, change included)
    const change = await stack.sipp(
      {
        name: 'publish-after',
        xml: publisherScenario([
          { kind: 'initial', basic: 'open', note: 'after the crash', expires: 600, expect: 200 },
        ]),
      },
      { set: { user: 'alice' }, args: auth('alice') },
    );
    assert.equal(change.exitCode, 0, change.stdout);
    const sent = await load;
    const codes = finals(sent.messages);
    // sipp's Call-IDs are "<call number>-<pid>@<ip>", and each body says "load-<call number>"
    const bodies = new Map([...codes.keys()].map((id) => [id, `load-${id.split('-')[0]}`]));
    const accepted = [...codes].filter(([, c]) => c === 202).map(([id]) => bodies.get(id)!);
    const refused = [...codes].filter(([, c]) => c !== 202);
    assert.equal(codes.size, MESSAGES, `every MESSAGE got a final answer: ${codes.size}\n${sent.stdout}`);
    assert.ok(
      refused.every(([, c]) => c >= 500),
      `only 5xx besides 202: ${JSON.stringify(refused)}`,
    );
    assert.ok(accepted.length >= MESSAGES / 2, `most were accepted: ${accepted.length}`);

    const w = await watchers;
    assert.equal(w.exitCode, 0, `every watcher got its NOTIFY and unsubscribed:\n${w.stdout.slice(-2500)}`);
    const withChange = [...w.messages.matchAll(/NOTIFY sip:[\s\S]*?(?=\n-{5,}|$)/g)].filter((m) =>
      m[0].includes('after the crash'),
    ).length;
    assert.ok(withChange >= WATCHERS, `${withChange} NOTIFYs carried the change`);

    // the crashed node comes back (its CDR file catches up from the store), then bob registers
    await stack.startInstance(1, SHARED);
    const port = stack.sippPort();
    // (a MESSAGE the dead instance stored but could not answer gets a 5xx and is still
    // delivered: the UA expects all the 202s, and may get some of those too)
    const uas = stack.sipp(receiverScenario(), {
      port,
      timeoutMs: 15000,
      args: ['-m', String(accepted.length + refused.length)],
    });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'bob', ct_port: String(port), expires: '600' },
      args: auth('bob'),
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const got = await uas;
    const delivered = receivedMessages(got.messages).map((m) => m.body);
    const count = (b: string) => delivered.filter((d) => d === b).length;
    assert.ok(
      accepted.every((b) => count(b) === 1),
      `each accepted MESSAGE delivered exactly once: ${JSON.stringify(accepted.filter((b) => count(b) !== 1))}`,
    );
    const others = delivered.filter((b) => !accepted.includes(b));
    const refusedBodies = refused.map(([id]) => bodies.get(id));
    assert.ok(
      others.every((b) => refusedBodies.includes(b) && count(b) === 1),
      `nothing else but once-refused messages, once each: ${JSON.stringify(others)}`,
    );
    await sleep(2000);
    const more = await fetch(`http://127.0.0.1:${stack.ports.isc}/metrics`).then((r) => r.text());
    assert.match(more, /^ims_as_isc_event_stream_up 1/m);

    // CDR files: for each accepted MESSAGE exactly one record per role of its transaction
    // (outcome deferred), and exactly one of its later delivery
    const lines = await eventually(
      () => {
        const l = stack.cdrLines().filter((c) => c.service === 'im' && codes.has(String(c.sessionId)));
        return l.filter((c) => c.outcome === 'delivered').length >= accepted.length ? l : undefined;
      },
      15000,
      'the CDRs of the accepted MESSAGEs and of their deliveries',
    );
    for (const [callId, code] of codes) {
      const mine = lines.filter((c) => c.sessionId === callId);
      if (code === 202) {
        assert.deepEqual(
          mine
            .filter((c) => c.outcome === 'deferred')
            .map((c) => c.roleOfNode)
            .sort(),
          ['originating', 'terminating'],
          `CDRs of ${callId}: ${JSON.stringify(mine)}`,
        );
        assert.equal(mine.filter((c) => c.outcome === 'delivered').length, 1, `one delivery CDR for ${callId}`);
      } else {
        // refused in the crash window: charged as stored only if it was stored (both roles,
        // once), and as delivered only if it was delivered
        const stored = mine
          .filter((c) => c.outcome === 'deferred')
          .map((c) => c.roleOfNode)
          .sort();
        assert.ok(
          stored.length === 0 || JSON.stringify(stored) === '["originating","terminating"]',
          `CDRs of the refused ${callId}: ${JSON.stringify(mine)}`,
        );
        assert.equal(
          mine.filter((c) => c.outcome === 'delivered').length,
          delivered.includes(bodies.get(callId)!) ? 1 : 0,
        );
      }
    }

    // the TS 32.297 files of both nodes (one killed mid-write, its open file closed at restart)
    // hold the same records as the export: each node's numbers once, none missing
    const keyOf = (nodeId: unknown, seq: unknown) => `${String(nodeId)}:${String(seq)}`;
    const exported = new Set(stack.cdrLines().map((c) => keyOf(c.nodeId, c.localRecordSequenceNumber)));
    const inFiles = await eventually(
      () => {
        const names = readdirSync(stack.cdrDir).filter((f) => !f.startsWith('.') && /_-_\d+\./.test(f));
        const keys = names.flatMap((f) =>
          readFileIndependently(readFileSync(join(stack.cdrDir, f))).records.map((r) =>
            keyOf(
              (r.recordExtensions as Array<{ information: { nodeId: string } }>)[0]!.information.nodeId,
              r.localRecordSequenceNumber,
            ),
          ),
        );
        return [...exported].every((k) => keys.includes(k)) ? keys : undefined;
      },
      15000,
      'every exported record in a closed 32.297 file',
    );
    assert.equal(new Set(inFiles).size, inFiles.length, 'no record twice in the 32.297 files');
    const exportedNow = new Set(stack.cdrLines().map((c) => keyOf(c.nodeId, c.localRecordSequenceNumber)));
    assert.ok(
      inFiles.every((k) => exportedNow.has(k)),
      'nothing in the files the export lacks',
    );
  });
});
