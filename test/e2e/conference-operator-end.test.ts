/**
 * Ending a conference by the operator, end to end: real Kamailio and AS, sipp participants
 * (waiting for the focus's BYE), the test's MSRP peers, sipp watching Event: conference, and
 * `ims-ctl` (the real CLI) against the AS's admin API. `ims-ctl conference list` shows the
 * room and who is in it; `ims-ctl conference end` makes the focus BYE every participant
 * through Kamailio; each participant's record and the conference's record are written once;
 * the watcher's last NOTIFY says terminated and carries the full final conference-info
 * (active false, nobody connected), valid against the RFC 4575 schema. The admin API
 * refuses without the token (401) and answers 404 for a conference that is not live.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { assertValidConferenceInfo } from '../helpers/conference-info-schema.js';
import { subscriberScenario } from './scenario-builder.js';
import { ConferenceParties, notifiesIn } from './conference-parties.js';
import { ROOT, TestStack, eventually, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol'];
const pw = (user: string) => `${user}-pw-end`;
const run = promisify(execFile);

describe('a conference ended by the operator (ims-ctl, admin API; real Kamailio, sipp, MSRP)', () => {
  let stack: TestStack;
  let parties: ConferenceParties;
  let adminBase = '';
  let token = '';

  const ctl = async (...args: string[]) => {
    try {
      const r = await run(
        'node',
        [join(ROOT, 'build/as/src/cli/ims-ctl.js'), '--url', adminBase, '--token', token, ...args],
        { timeout: 20000 },
      );
      return { code: 0, out: r.stdout };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  };

  before(async () => {
    const ports = portsFrom(8560);
    stack = await TestStack.start(ports, { MSRP_PORT: String(ports.sip + 40), MSRP_HOST: '127.0.0.1' });
    await stack.provisionUsers(USERS, pw);
    parties = new ConferenceParties(stack, ports.sip + 40, pw);
    adminBase = `http://127.0.0.1:${ports.isc}`;
    token = stack.adminToken;
    const made = await stack.provision('room', 'add', 'townhall', '--owner', 'carol');
    assert.equal(made.code, 0, made.out);
  });

  after(async () => {
    await parties?.close();
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it('ims-ctl conference end: BYE to every participant, one record each and one for the conference, the final NOTIFY with the full final state', async () => {
    const alice = await parties.dialIn('alice', 'townhall', 9561, { hangUp: false, holdMs: 0 });
    const bob = await parties.dialIn('bob', 'townhall', 9562, { hangUp: false, holdMs: 0 });
    // the owner watches without taking part, until the subscription ends
    const watch = stack.sipp(
      {
        name: 'watch-townhall',
        xml: subscriberScenario({
          event: 'conference',
          accept: 'application/conference-info+xml',
          untilTerminated: true,
          notifyTimeoutMs: 30000,
        }),
      },
      { set: { user: 'carol', target: 'townhall' }, args: ['-au', 'carol', '-ap', pw('carol')], timeoutMs: 60000 },
    );
    await stack.sippLogged(watch.dir, /SUBSCRIBED/);

    const listed = await ctl('--json', 'conference', 'list');
    assert.equal(listed.code, 0, listed.out);
    const live = JSON.parse(listed.out) as Array<{ uri: string; kind: string; owner: string; participants: string[] }>;
    const room = live.find((c) => c.uri === 'sip:townhall@example.com');
    assert.ok(room, listed.out);
    assert.equal(room.kind, 'room');
    assert.equal(room.owner, 'sip:carol@example.com');
    assert.deepEqual([...room.participants].sort(), ['sip:alice@example.com', 'sip:bob@example.com']);
    const table = await ctl('conference', 'list');
    assert.match(table.out, /sip:townhall@example\.com\s+room\s+sip:carol@example\.com/);

    const ended = await ctl('conference', 'end', 'townhall');
    assert.equal(ended.code, 0, ended.out);
    assert.match(ended.out, /conference sip:townhall@example\.com ended: BYE sent to 2 participant\(s\), 2 answered/);

    // each participant's sipp took the focus's BYE (through Kamailio) and answered it
    for (const p of await Promise.all([alice.sipp, bob.sipp])) {
      assert.equal(p.exitCode, 0, `${p.stdout}\n${p.messages}`);
      assert.match(p.messages, /BYE sip:[^\n]*\n[^]*From: <sip:townhall@example\.com>;tag=/);
    }
    const w = await watch;
    assert.equal(w.exitCode, 0, `${w.stdout}\n${w.messages}`);
    const notifies = notifiesIn(w.messages);
    const last = notifies[notifies.length - 1]!;
    assert.match(last, /Subscription-State: terminated;reason=noresource/);
    assert.match(last, /Content-Type: application\/conference-info\+xml/);
    const doc = /<\?xml[\s\S]*?<\/conference-info>/.exec(last)?.[0];
    assert.ok(doc, `the final NOTIFY carries the final state:\n${last}`);
    assertValidConferenceInfo(doc);
    assert.match(doc, /state="full"/);
    assert.match(doc, /<user-count>0<\/user-count><active>false<\/active>/);
    assert.doesNotMatch(doc, /<status>connected<\/status>/);
    assert.match(
      doc,
      /<user entity="sip:alice@example\.com" state="full"><endpoint[^>]*><status>disconnected<\/status>[^]*?<disconnection-method>booted<\/disconnection-method>/,
    );

    // records: one per participant (ended by the operator) and the conference's, once each
    const records = await eventually(
      () => {
        const l = stack
          .cdrLines()
          .filter((r) => (r.extra as Record<string, unknown> | undefined)?.conference === 'sip:townhall@example.com');
        return l.length >= 3 ? l : undefined;
      },
      8000,
      'the conference records',
    );
    await new Promise((r) => setTimeout(r, 500));
    const all = stack
      .cdrLines()
      .filter((r) => (r.extra as Record<string, unknown> | undefined)?.conference === 'sip:townhall@example.com');
    assert.equal(all.length, 3, JSON.stringify(all));
    const role = (r: Record<string, unknown>) => (r.extra as Record<string, unknown>).conferenceRole;
    assert.equal(records.filter((r) => role(r) === 'controlling').length, 1);
    for (const r of all.filter((x) => role(x) === 'participant'))
      assert.equal((r.extra as Record<string, unknown>).reason, 'ended by the operator');

    // gone: not listed, and ending it again is 404 (exit 1 with the reason)
    const after = await ctl('--json', 'conference', 'list');
    assert.ok(!(JSON.parse(after.out) as Array<{ uri: string }>).some((c) => c.uri === 'sip:townhall@example.com'));
    const again = await ctl('conference', 'end', 'sip:townhall@example.com');
    assert.equal(again.code, 1, again.out);
    assert.match(again.out, /no conference sip:townhall@example\.com is live/);
  });

  it('the admin API: 401 without the token; ims-ctl conference without list/end is bad usage (2)', async () => {
    const noToken = await fetch(`${adminBase}/admin/conferences`);
    assert.equal(noToken.status, 401);
    const del = await fetch(`${adminBase}/admin/conferences/townhall`, { method: 'DELETE' });
    assert.equal(del.status, 401);
    const bad = await ctl('conference', 'stop', 'townhall');
    assert.equal(bad.code, 2, bad.out);
    assert.match(bad.out, /conference needs list, or end URI/);
  });
});
