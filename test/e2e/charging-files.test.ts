/**
 * Charging end to end: real Kamailio + AS + sipp. A MESSAGE, a deferred MESSAGE and a
 * subscription with two refreshes leave their records in closed TS 32.297 files in the
 * pick-up directory (closed by age), read with asn1js and checked field by field; `ims-cdr
 * --check` finds each file well formed. The JSON Lines export is off here.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFileIndependently, type IndependentRecord } from '../helpers/cdr-independent.js';
import { messageScenario, receiverScenario } from './im-scenarios.js';
import { subscriberScenario } from './scenario-builder.js';
import { ROOT, TestStack, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-7`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const callIdOf = (messages: string) => /Call-ID: (.*)/.exec(messages)![1]!.trim();
type Ext = Record<string, unknown>;
const ext = (r: IndependentRecord) => (r.recordExtensions as Array<{ information: Ext }>)[0]!.information;

describe('charging: TS 32.297 files a billing system picks up', () => {
  let stack: TestStack;

  before(async () => {
    stack = await TestStack.start(portsFrom(7060), {
      CDR_JSONL: 'false',
      CDR_FILE_MAX_SECONDS: '3',
      PRESENCE_OPEN_DOMAIN: 'true',
      PRESENCE_DEFAULT_SUB_HANDLING: 'allow',
      IM_SWEEP_SECONDS: '1',
      IM_RETRY_BASE_SECONDS: '1',
      CDR_TERMINATING_IOI: 'partner.example.org',
    });
    await stack.provisionUsers(['alice', 'bob', 'dan'], pw);
  });

  after(async () => {
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  /** Every record in the closed files of the pick-up directory (a dot-directory holds the open one). */
  function pickedUp(): { files: string[]; records: IndependentRecord[] } {
    const files = readdirSync(stack.cdrDir).filter((f) => !f.startsWith('.'));
    assert.ok(
      files.every((f) => /^e2e_-_\d+\.\d{8}_-_\d{4}\+0000$/.test(f)),
      `32.297 names: ${files.join(', ')}`,
    );
    return { files, records: files.flatMap((f) => readFileIndependently(readFileSync(join(stack.cdrDir, f))).records) };
  }

  async function online(user: string, count: number) {
    const port = stack.sippPort();
    const uas = stack.sipp(receiverScenario(), { port, timeoutMs: 15000, args: ['-m', String(count)] });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user, ct_port: String(port), expires: '600' },
      args: ['-au', user, '-ap', pw(user)],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);
    // wrapped: an async function returning sipp's thenable would wait for sipp to exit
    return { uas };
  }

  it('a MESSAGE, a deferred MESSAGE and a refreshed subscription end up in closed files, field by field', async () => {
    // 1. a MESSAGE delivered at once
    const { uas: bob } = await online('bob', 1);
    const sent = await stack.sipp(messageScenario({ final: 200, body: 'hello bob' }), {
      set: { user: 'alice', to: 'bob' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(sent.exitCode, 0, sent.messages.slice(-3000));
    const atBob = await bob;
    assert.equal(atBob.exitCode, 0);
    const direct = callIdOf(sent.messages);
    // the sender sent no P-Charging-Vector: the core made one, and it reached the recipient once
    assert.ok(!/P-Charging-Vector/i.test(sent.messages));
    const pcvs = [...atBob.messages.matchAll(/^P-Charging-Vector:\s*(.*)$/gim)].map((x) => x[1]!.trim());
    assert.equal(pcvs.length, 1, atBob.messages);
    const coreIcid = /icid-value=([^;\s]+)/.exec(pcvs[0]!)![1]!;

    // 2. a MESSAGE to dan, offline: stored (202), delivered when he registers
    const stored = await stack.sipp(messageScenario({ final: 202, body: 'for later' }), {
      set: { user: 'alice', to: 'dan' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    assert.equal(stored.exitCode, 0, stored.stdout);
    const deferred = callIdOf(stored.messages);
    const { uas: dan } = await online('dan', 1);
    assert.equal((await dan).exitCode, 0);

    // 3. bob watches alice: SUBSCRIBE, two refreshes, un-SUBSCRIBE
    const sub = await stack.sipp(
      { name: 'sub-refresh', xml: subscriberScenario({ event: 'presence', expires: 300, refreshes: 2 }) },
      { set: { user: 'bob', target: 'alice' }, args: ['-au', 'bob', '-ap', pw('bob')], timeoutMs: 20000 },
    );
    assert.equal(sub.exitCode, 0, sub.stdout);
    const subscription = callIdOf(sub.messages);

    const want = (records: IndependentRecord[]) => {
      const of = (id: string) => records.filter((r) => r['session-Id'] === id);
      return (
        of(direct).length === 2 &&
        of(deferred).length === 3 &&
        of(subscription).some((r) => r.causeForRecordClosing !== 4)
      );
    };
    // the files close by age (3 s): wait for the records in the pick-up directory
    const { files, records } = await eventually(
      () => {
        const p = pickedUp();
        return want(p.records) ? p : undefined;
      },
      15000,
      'records in closed 32.297 files',
    );

    for (const r of records) {
      assert.equal(r.recordType, 69);
      assert.equal(r.serviceContextID, '32260@3gpp.org');
      assert.equal(r.nodeAddress, '127.0.0.1');
    }
    const seqs = records.map((r) => r.localRecordSequenceNumber as number);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'in sequence order across files',
    );
    assert.equal(new Set(seqs).size, seqs.length, 'no record twice');

    const m = records.filter((r) => r['session-Id'] === direct);
    assert.deepEqual(m.map((r) => r['role-of-Node']).sort(), [0, 1], 'both roles');
    for (const r of m) {
      assert.equal(r['sIP-Method'], 'MESSAGE');
      assert.deepEqual(r['list-Of-Calling-Party-Address'], ['sip:alice@example.com']);
      assert.equal(r['called-Party-Address'], 'sip:bob@example.com');
      assert.equal(r.serviceReasonReturnCode, '200');
      assert.equal(r.causeForRecordClosing, 0);
      // the length the MESSAGE carried (sipp's body with its line end)
      assert.equal(
        (r['list-Of-Message-Bodies'] as Array<Record<string, unknown>>)[0]!['content-Length'],
        Number(/MESSAGE sip:[\s\S]*?Content-Length: *(\d+)/.exec(sent.messages)![1]),
      );
    }
    assert.equal(m[0]!['iMS-Charging-Identifier'], m[1]!['iMS-Charging-Identifier'], 'one ICID for both roles');
    assert.equal(m[0]!['iMS-Charging-Identifier'], coreIcid, 'the ICID the core generated, as the recipient got it');
    for (const r of m) {
      // the IMPI of the credentials Kamailio accepted from alice
      assert.equal(r.privateUserID, 'alice@example.com');
      // the core's vector has no IOIs: the configured one, and the SIP domain for the one left unset
      assert.deepEqual(r.interOperatorIdentifiers, {
        'originating-IOI': 'example.com',
        'terminating-IOI': 'partner.example.org',
      });
    }

    const d = records.filter((r) => r['session-Id'] === deferred);
    const storedRecs = d.filter((r) => r.serviceReasonReturnCode === '202');
    assert.equal(storedRecs.length, 2, 'stored: billable to the sender, both roles');
    assert.ok(storedRecs.every((r) => ext(r).outcome === 'deferred' && r.causeForRecordClosing === 0));
    const deliveredRec = d.find((r) => ext(r).deferred === true);
    assert.ok(deliveredRec, JSON.stringify(d));
    assert.ok(storedRecs.every((r) => r.privateUserID === 'alice@example.com'));
    assert.equal(
      deliveredRec.privateUserID,
      undefined,
      'the AS delivers it itself: no credentials were given for that request',
    );
    assert.equal(deliveredRec['role-of-Node'], 1, 'delivered: billable to the recipient');
    assert.equal(deliveredRec.causeForRecordClosing, 0);
    assert.equal(deliveredRec['called-Party-Address'], 'sip:dan@example.com');
    assert.equal(new Set(d.map((r) => r['iMS-Charging-Identifier'])).size, 1, 'the stored copy keeps the ICID');

    const s = records
      .filter((r) => r['session-Id'] === subscription)
      .sort((a, b) => (a.recordSequenceNumber as number) - (b.recordSequenceNumber as number));
    assert.deepEqual(
      s.map((r) => r.recordSequenceNumber),
      [1, 2, 3, 4],
      'partial records chained: opened, two refreshes, end',
    );
    assert.deepEqual(
      s.map((r) => r.causeForRecordClosing),
      [4, 4, 4, 0],
      'serviceChange on each partial, the final cause on the last',
    );
    assert.deepEqual(
      s.map((r) => ext(r).outcome),
      ['subscription-opened', 'subscription-refreshed', 'subscription-refreshed', 'subscription-closed'],
    );
    for (const r of s) {
      assert.equal(r['sIP-Method'], 'SUBSCRIBE');
      assert.equal(r.event, 'presence');
      assert.deepEqual(r['list-Of-Calling-Party-Address'], ['sip:bob@example.com']);
      assert.equal(r['called-Party-Address'], 'sip:alice@example.com');
      assert.equal(r.privateUserID, 'bob@example.com', "the watcher's IMPI, from the opening SUBSCRIBE");
    }
    assert.ok((s[1]!.expiresInformation as number) > 250);
    assert.equal(new Set(s.map((r) => r['iMS-Charging-Identifier'])).size, 1, 'one ICID for the whole chain');

    // every file is well formed for the ims-cdr checker too
    for (const f of files) {
      const check = await new Promise<{ code: number; out: string }>((res) =>
        execFile(
          process.execPath,
          [join(ROOT, 'build/as/src/cli/ims-cdr.js'), '--check', join(stack.cdrDir, f)],
          (err, stdout) => res({ code: err ? 1 : 0, out: stdout }),
        ),
      );
      assert.equal(check.code, 0, check.out);
    }
    // the export is off: no JSON Lines file
    assert.deepEqual(
      readdirSync(stack.cdrDir).filter((f) => f.endsWith('.jsonl')),
      [],
    );
  });
});
