/**
 * Rf end to end: real Kamailio + AS + sipp, and Erlang/OTP's diameter application as the CDF
 * (test/fixtures/rf-cdf.escript). A MESSAGE gives one EVENT_RECORD per role; a subscription
 * with two refreshes gives START, INTERIM, INTERIM, STOP under one Session-Id; every record the
 * AS wrote to its 32.297 files reached the CDF, none twice as new.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFileIndependently, type IndependentRecord } from '../helpers/cdr-independent.js';
import { TestCdf, type LoggedAcr } from '../helpers/rf-cdf.js';
import { messageScenario, receiverScenario } from './im-scenarios.js';
import { subscriberScenario } from './scenario-builder.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-8`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const callIdOf = (messages: string) => /Call-ID: (.*)/.exec(messages)![1]!.trim();
const CDF_PORT = 3870 + Number(process.env.E2E_PORT_OFFSET ?? 0);
const ORIGIN_HOST = 'as.example.com';

describe('charging: Diameter Rf to a real CDF', () => {
  let stack: TestStack;
  let cdf: TestCdf;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'rf-e2e-'));
    cdf = new TestCdf(CDF_PORT, join(dir, 'acr.log'));
    await cdf.start();
    stack = await TestStack.start(portsFrom(7360), {
      CDR_JSONL: 'false',
      CDR_FILE_MAX_SECONDS: '3',
      CDR_RF_PEERS: `127.0.0.1:${CDF_PORT}`,
      CDR_RF_ORIGIN_HOST: ORIGIN_HOST,
      CDR_RF_DESTINATION_REALM: 'test.example',
      PRESENCE_OPEN_DOMAIN: 'true',
      PRESENCE_DEFAULT_SUB_HANDLING: 'allow',
    });
    await stack.provisionUsers(['alice', 'bob'], pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
    await cdf?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  function filed(): IndependentRecord[] {
    return readdirSync(stack.cdrDir)
      .filter((f) => !f.startsWith('.'))
      .flatMap((f) => readFileIndependently(readFileSync(join(stack.cdrDir, f))).records);
  }

  it('a MESSAGE and a refreshed subscription produce the ACRs the CDF logs', async () => {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 15000, args: ['-m', '1'] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'bob', ct_port: String(port), expires: '600' },
      args: ['-au', 'bob', '-ap', pw('bob')],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    const sent = await stack.sipp(messageScenario({ final: 200, body: 'hello bob' }), {
      set: { user: 'alice', to: 'bob' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(sent.exitCode, 0, sent.messages.slice(-3000));
    assert.equal((await uas).exitCode, 0);
    const message = callIdOf(sent.messages);

    const sub = await stack.sipp(
      { name: 'sub-refresh', xml: subscriberScenario({ event: 'presence', expires: 300, refreshes: 2 }) },
      { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', pw('bob')], timeoutMs: 20000 },
    );
    assert.equal(sub.exitCode, 0, sub.stdout);
    const subscription = callIdOf(sub.messages);

    // the files (closed by age) say which records the AS wrote; the CDF must have them all
    const records = await eventually(
      () => {
        const r = filed();
        const done =
          r.filter((x) => x['session-Id'] === message).length === 2 &&
          r.some((x) => x['session-Id'] === subscription && x.causeForRecordClosing !== 4);
        return done ? r : undefined;
      },
      15000,
      'records in closed 32.297 files',
    );
    const oneOff = records.filter((r) => r.recordSequenceNumber === undefined);
    const chain = records.filter((r) => r['session-Id'] === subscription);
    assert.equal(chain.length, 4);

    const acrs = await eventually(
      async () => {
        const got = await cdf.acrs();
        return got.length >= records.length ? got : undefined;
      },
      15000,
      `${records.length} ACRs at the CDF`,
    );

    const asNew = acrs.filter((a) => !a.retransmit);
    assert.equal(new Set(asNew.map((a) => `${a.sessionId}/${a.number}`)).size, asNew.length, 'no ACR twice as new');
    for (const r of oneOff) {
      const got = acrs.filter((a) => a.sessionId === `${ORIGIN_HOST};e2e:${String(r.localRecordSequenceNumber)}`);
      assert.ok(
        got.length >= 1,
        `record ${String(r.localRecordSequenceNumber)} (${String(r['sIP-Method'])}) reached the CDF`,
      );
      assert.deepEqual([got[0]!.type, got[0]!.number], ['EVENT_RECORD', 0]);
    }
    const messageAcrs = oneOff.filter((r) => r['session-Id'] === message);
    assert.equal(messageAcrs.length, 2, 'the MESSAGE: one record per role, each an EVENT_RECORD');

    const subAcrs: LoggedAcr[] = acrs.filter((a) => a.sessionId.includes(';sub;'));
    const sessions = new Set(subAcrs.map((a) => a.sessionId));
    assert.equal(sessions.size, 1, JSON.stringify(subAcrs));
    assert.deepEqual(
      subAcrs.map((a) => [a.type, a.number]),
      [
        ['START_RECORD', 0],
        ['INTERIM_RECORD', 1],
        ['INTERIM_RECORD', 2],
        ['STOP_RECORD', 3],
      ],
    );
  });
});
