/**
 * An IM session's charging records in TS 32.297 files, end to end: real Kamailio + AS, sipp as
 * caller and callee, MSRP peers on both media legs. The session relays two messages from the
 * caller and one from the callee, the caller hangs up, the file closes by age (rotation) and is
 * read twice: with the project's reader (`readTs32297`, what `ims-cdr` uses) and with asn1js
 * (test/helpers/cdr-independent.ts). Both must agree on each role's aSRecord: sIP-Method
 * INVITE, role-of-Node, the service times (request = the INVITE, delivery from the 200 to the
 * BYE), causeForRecordClosing, the offer's SDP in list-Of-Message-Bodies and the message counts
 * in recordExtensions (docs/charging.md section 3).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readTs32297, type ReadRecord } from '../../as/src/charging/ts32297-reader.js';
import { headerValue, type MsrpMessage } from '../../as/src/msrp/message.js';
import { parseMsrpMedia } from '../../as/src/msrp/sdp.js';
import { readFileIndependently, type IndependentRecord } from '../helpers/cdr-independent.js';
import { MsrpPeer } from '../integration/msrp-peer.js';
import { callerScenario, calleeScenario, sdpAfter } from './msrp-session-scenarios.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const pw = (user: string) => `${user}-pw-cs`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOLD_MS = 3000;

/** One whole text/plain SEND. */
function sendText(tid: string, toPath: string, fromPath: string, messageId: string, text: string): MsrpMessage {
  const body = Buffer.from(text);
  return {
    head: {
      kind: 'request',
      tid,
      method: 'SEND',
      headers: [
        { name: 'To-Path', value: toPath },
        { name: 'From-Path', value: fromPath },
        { name: 'Message-ID', value: messageId },
        { name: 'Byte-Range', value: `1-${body.length}/${body.length}` },
        { name: 'Content-Type', value: 'text/plain' },
      ],
    },
    body,
    flag: '$',
  };
}

describe('charging: an IM session in closed TS 32.297 files', () => {
  let stack: TestStack;
  let asMsrpPort = 0;
  const peers: MsrpPeer[] = [];

  before(async () => {
    const ports = portsFrom(7960);
    asMsrpPort = ports.sip + 40;
    stack = await TestStack.start(ports, {
      CDR_JSONL: 'false',
      CDR_FILE_MAX_SECONDS: '3',
      MSRP_PORT: String(asMsrpPort),
      MSRP_HOST: '127.0.0.1',
    });
    await stack.provisionUsers(['alice', 'bob'], pw);
  });

  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('writes one aSRecord per role that both decoders read alike: INVITE, roles, times, cause, SDP body, message counts', async () => {
    const callee = new MsrpPeer();
    peers.push(callee);
    const calleeMsrp = await callee.listen();
    const calleePath = `msrp://127.0.0.1:${calleeMsrp}/callee-session;tcp`;
    const callerPath = 'msrp://127.0.0.1:9100/caller-session;tcp';

    const port = stack.sippPort();
    const uas = stack.sipp(calleeScenario(), { port, timeoutMs: 30000, set: { msrp_port: String(calleeMsrp) } });
    await sleep(300);
    const reg = await stack.sipp('register', {
      final: 200,
      set: { user: 'bob', ct_port: String(port), expires: '600' },
      args: ['-au', 'bob', '-ap', pw('bob')],
    });
    assert.equal(reg.exitCode, 0, reg.stdout);

    const invitedAt = Date.now();
    const uac = stack.sipp(callerScenario({ final: 200, holdMs: HOLD_MS }), {
      timeoutMs: 30000,
      set: { user: 'alice', to: 'bob', msrp_port: '9100' },
      args: ['-au', 'alice', '-ap', pw('alice')],
    });
    // the switch binds to the callee's path once the 200 has passed the core
    await callee.waitFor('the binding SEND', (r) => r.some((m) => m.head.kind === 'request'), 10000);
    const answererSide = headerValue(callee.requests('SEND')[0]!.head, 'From-Path')!;
    const answer = await eventually(
      () => {
        for (const f of readdirSync(uac.dir).filter((n) => n.endsWith('_messages.log'))) {
          const sdp = sdpAfter(readFileSync(join(uac.dir, f), 'utf8'), /SIP\/2\.0 200 OK[^]*?CSeq: 2 INVITE/);
          const media = sdp ? parseMsrpMedia(sdp)[0] : undefined;
          if (media) return media;
        }
        return undefined;
      },
      10000,
      'the 200 with SDP at the caller',
    );
    const offererSide = answer.path[0]!;

    const caller = await MsrpPeer.connect(asMsrpPort);
    peers.push(caller);
    caller.send(sendText('tx-c1', offererSide, callerPath, 'm-c1', 'first from alice'));
    caller.send(sendText('tx-c2', offererSide, callerPath, 'm-c2', 'second from alice'));
    await callee.waitFor('both messages at the callee', (r) =>
      ['first from alice', 'second from alice'].every((t) => r.some((m) => m.body?.toString() === t)),
    );
    callee.send(sendText('tx-b1', answererSide, calleePath, 'm-b1', 'one from bob'));
    await caller.waitFor('the message at the caller', (r) => r.some((m) => m.body?.toString() === 'one from bob'));

    const [uacDone, uasDone] = await Promise.all([uac, uas]);
    assert.equal(uacDone.exitCode, 0, `caller: ${uacDone.stdout}\n${uacDone.messages}`);
    assert.equal(uasDone.exitCode, 0, `callee: ${uasDone.stdout}\n${uasDone.messages}`);
    const endedBy = Date.now();
    const callId = /Call-ID: (.*)/.exec(uacDone.messages)![1]!.trim();
    // the offer as the AS read it: the caller's SDP, as sipp sent it with credentials
    const offerLength = Number(/INVITE sip:[^]*?CSeq: 2 INVITE[^]*?Content-Length: *(\d+)/.exec(uacDone.messages)![1]);

    // the files close by age (3 s): both roles' records in closed files of the pick-up directory
    const picked = await eventually(
      () => {
        const files = readdirSync(stack.cdrDir).filter((f) => !f.startsWith('.'));
        const independent = files.flatMap((f) => readFileIndependently(readFileSync(join(stack.cdrDir, f))).records);
        const ours: ReadRecord[] = [];
        const faults: string[] = [];
        for (const f of files) {
          const summary = readTs32297(readFileSync(join(stack.cdrDir, f)), (r) => ours.push(r));
          faults.push(...summary.faults.map((x) => `${f}@${x.offset}: ${x.message}`));
        }
        const a = independent.filter((r) => r['session-Id'] === callId);
        const b = ours.map((r) => r.record).filter((r) => r.sessionId === callId);
        return a.length === 2 && b.length === 2 ? { independent: a, ours: b, faults } : undefined;
      },
      15000,
      'the session records in closed 32.297 files',
    );
    assert.deepEqual(picked.faults, [], 'the files are well formed for the project reader');

    const byRole = (rs: IndependentRecord[]) =>
      [...rs].sort((x, y) => (x['role-of-Node'] as number) - (y['role-of-Node'] as number));
    const records = byRole(picked.independent);
    assert.deepEqual(
      records.map((r) => r['role-of-Node']),
      [0, 1],
      'originating and terminating',
    );
    for (const r of records) {
      assert.equal(r.recordType, 69);
      assert.equal(r['sIP-Method'], 'INVITE');
      assert.deepEqual(r['list-Of-Calling-Party-Address'], ['sip:alice@example.com']);
      assert.equal(r['called-Party-Address'], 'sip:bob@example.com');
      assert.equal(r.serviceReasonReturnCode, '200');
      assert.equal(r.causeForRecordClosing, 0, 'serviceDeliveryEndSuccessfully after the BYE');
      assert.equal(r.privateUserID, 'alice@example.com');
      // the service times: the INVITE, the 200 that started the session, the BYE that ended it
      const requested = Date.parse(r.serviceRequestTimeStamp as string);
      const started = Date.parse(r.serviceDeliveryStartTimeStamp as string);
      const ended = Date.parse(r.serviceDeliveryEndTimeStamp as string);
      assert.ok(requested >= invitedAt - 2000 && requested <= started, `request ${requested} <= start ${started}`);
      assert.ok(
        ended - started >= HOLD_MS - 1000,
        `delivery lasts the session (${ended - started} ms, the caller held ${HOLD_MS} ms)`,
      );
      assert.ok(ended <= endedBy + 2000);
      // the offer's body (32.298 list-Of-Message-Bodies)
      const bodies = r['list-Of-Message-Bodies'] as Array<Record<string, unknown>>;
      assert.ok(bodies, JSON.stringify(r));
      assert.equal(bodies[0]!['content-Type'], 'application/sdp');
      assert.equal(bodies[0]!['content-Length'], offerLength);
      // what 32.298 has no field for: the relayed messages, in recordExtensions
      const info = (r.recordExtensions as Array<{ information: Record<string, unknown> }>)[0]!.information;
      assert.equal(info.outcome, 'ended');
      assert.equal(info.reason, 'BYE');
      assert.equal(info.messagesFromCaller, 2);
      assert.equal(
        info.bytesFromCaller,
        Buffer.byteLength('first from alice') + Buffer.byteLength('second from alice'),
      );
      assert.equal(info.messagesToCaller, 1);
      assert.equal(info.bytesToCaller, Buffer.byteLength('one from bob'));
    }
    assert.equal(
      records[0]!['iMS-Charging-Identifier'],
      records[1]!['iMS-Charging-Identifier'],
      'one ICID for both roles',
    );

    // the project's reader says the same
    const ours = [...picked.ours].sort((x, y) => String(x.roleOfNode).localeCompare(String(y.roleOfNode)));
    assert.deepEqual(
      ours.map((r) => r.roleOfNode),
      ['originating', 'terminating'],
    );
    for (const [i, r] of ours.entries()) {
      const other = records[i]!;
      assert.equal(r.sipMethod, 'INVITE');
      assert.equal(r.causeForRecordClosing, 'serviceDeliveryEndSuccessfully');
      assert.equal(r.serviceDeliveryStartTimeStamp, other.serviceDeliveryStartTimeStamp);
      assert.equal(r.serviceDeliveryEndTimeStamp, other.serviceDeliveryEndTimeStamp);
      assert.equal(r.localRecordSequenceNumber, other.localRecordSequenceNumber);
    }
  });
});
