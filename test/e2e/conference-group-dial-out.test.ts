/**
 * A pre-defined group whose document says <invite-members>true</invite-members>, end to end:
 * real Kamailio and AS, sipp UAs for the members, the test's MSRP peers as their MSRP clients.
 * The first INVITE to the group URI starts its conference and the focus dials out (through
 * Kamailio, as for ad-hoc conferences) to the other members; one who declines (603) is shown
 * in the roster as disconnected (failed), the conference goes on with the others. A group
 * without the flag invites nobody.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { XcapClient } from '../helpers/xcap-client.js';
import { assertValidConferenceInfo } from '../helpers/conference-info-schema.js';
import { subscriberScenario } from './scenario-builder.js';
import { ConferenceParties, cpimAt, notifiesIn } from './conference-parties.js';
import { TestStack, eventually, portsFrom } from './stack.js';

const USERS = ['alice', 'bob', 'carol', 'dave'];
const pw = (user: string) => `${user}-pw-grp`;
const GROUPS_DOC = '/xcap-root/org.openmobilealliance.groups/users/sip:alice@example.com/index';
const GROUPS_TYPE = 'application/vnd.oma.poc.groups+xml';

describe('group conference dialling out to its members (real Kamailio, sipp, MSRP)', () => {
  let stack: TestStack;
  let parties: ConferenceParties;

  before(async () => {
    const ports = portsFrom(8460);
    stack = await TestStack.start(ports, { MSRP_PORT: String(ports.sip + 40), MSRP_HOST: '127.0.0.1' });
    await stack.provisionUsers(USERS, pw);
    parties = new ConferenceParties(stack, ports.sip + 40, pw);
    const xcap = new XcapClient(`http://127.0.0.1:${stack.ports.xdm}`, 'alice', pw('alice'));
    const put = await xcap.put(
      GROUPS_DOC,
      '<group xmlns="urn:oma:xml:poc:list-service">' +
        '<list-service uri="sip:crew@example.com"><list><entry uri="sip:alice@example.com"/>' +
        '<entry uri="sip:bob@example.com"/><entry uri="sip:carol@example.com"/></list>' +
        '<invite-members>true</invite-members></list-service>' +
        '<list-service uri="sip:quiet@example.com"><list><entry uri="sip:alice@example.com"/>' +
        '<entry uri="sip:dave@example.com"/></list></list-service>' +
        '</group>',
      GROUPS_TYPE,
    );
    assert.equal(put.status, 201, put.body);
  });

  after(async () => {
    await parties?.close();
    if (process.exitCode) console.log(stack?.dumpLogs());
    await stack?.stop();
  });

  it("alice's INVITE to the group starts its conference: the focus invites bob (who joins and talks) and carol (who declines, 603, and shows as failed in the conference-info); the conference goes on", async () => {
    const bob = await parties.invitee('bob', { hangUpAfterMs: 9000 });
    const { uas: carol } = await parties.refuser('carol', 603, 'Decline');
    const alice = await parties.dialIn('alice', 'crew', 9461, { holdMs: 9000 });
    assert.match(alice.answer.trace, /Contact: <sip:crew@127\.0\.0\.1:\d+>;isfocus/);

    // carol's refusal: her UA saw the focus's INVITE and said no
    const refused = await carol;
    assert.equal(refused.exitCode, 0, `${refused.stdout}\n${refused.messages}`);
    assert.match(
      refused.messages,
      /INVITE sip:carol@[^]*From: <sip:crew@example\.com>;tag=[^]*Referred-By: <sip:alice@example\.com>/,
    );

    // bob's UA took the focus's INVITE; his MSRP client gets the focus's binding SEND
    await bob.peer.waitFor("the focus's binding SEND", () => bob.peer.requests('SEND').length > 0, 10000);
    alice.say('crew, assemble');
    await bob.peer.waitFor('alice at bob', () => cpimAt(bob.peer).some((m) => m.content === 'crew, assemble'));
    const got = cpimAt(bob.peer).find((m) => m.content === 'crew, assemble')!;
    assert.equal(got.from.uri, 'sip:alice@example.com');
    assert.equal(got.to[0]!.uri, 'sip:crew@example.com');
    bob.say('here');
    await alice.peer.waitFor('bob at alice', () => cpimAt(alice.peer).some((m) => m.content === 'here'));

    // the roster as a participant watching the conference sees it (RFC 4575, schema-valid)
    const watch = await stack.sipp(
      {
        name: 'watch-crew',
        xml: subscriberScenario({ event: 'conference', accept: 'application/conference-info+xml' }),
      },
      { set: { user: 'alice', target: 'crew' }, args: ['-au', 'alice', '-ap', pw('alice')], timeoutMs: 20000 },
    );
    assert.equal(watch.exitCode, 0, watch.stdout);
    const doc = /<\?xml[\s\S]*?<\/conference-info>/.exec(notifiesIn(watch.messages)[0] ?? '')?.[0];
    assert.ok(doc, watch.messages);
    assertValidConferenceInfo(doc);
    assert.match(doc, /state="full"/);
    assert.match(
      doc,
      /<user entity="sip:carol@example\.com" state="full"><endpoint><status>disconnected<\/status><joining-method>dialed-out<\/joining-method><joining-info><by>sip:alice@example\.com<\/by><\/joining-info><disconnection-method>failed<\/disconnection-method>/,
    );
    assert.match(
      doc,
      /<user entity="sip:bob@example\.com" state="full"><endpoint[^>]*><status>connected<\/status><joining-method>dialed-out<\/joining-method>/,
    );
    assert.match(
      doc,
      /<user entity="sip:alice@example\.com" state="full"><endpoint[^>]*><status>connected<\/status><joining-method>dialed-in<\/joining-method>/,
    );

    for (const r of await Promise.all([alice.sipp, bob.uas])) assert.equal(r.exitCode, 0, `${r.stdout}\n${r.messages}`);
    const conf = await eventually(
      () =>
        stack
          .cdrLines()
          .find(
            (r) =>
              (r.extra as Record<string, unknown> | undefined)?.conference === 'sip:crew@example.com' &&
              (r.extra as Record<string, unknown>).conferenceRole === 'controlling',
          ),
      8000,
      "the group conference's record",
    );
    assert.equal((conf.extra as Record<string, unknown>).participants, 2, 'alice and bob took part; carol did not');
  });

  it('a group without invite-members: the first INVITE invites nobody (dave, registered, gets no INVITE)', async () => {
    const { uas: dave } = await parties.refuser('dave', 486, 'Busy Here');
    const alice = await parties.dialIn('alice', 'quiet', 9462, { holdMs: 3000 });
    const done = await alice.sipp;
    assert.equal(done.exitCode, 0, done.stdout);
    // dave's UA is still waiting: nothing came
    assert.equal(dave.process.exitCode, null, 'no INVITE reached dave');
    dave.process.kill();
    const r = await dave;
    assert.doesNotMatch(r.messages, /INVITE sip:dave@/);
  });
});
