/**
 * application/conference-info+xml (as/src/conference/conference-info.ts): full and partial
 * documents as a roster changes, every one valid against the RFC 4575 schema (xmllint), and
 * an anonymous participant shown without any URI of theirs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { conferenceInfo, userEntity } from '../../as/src/conference/conference-info.js';
import type { Conference, ConferenceParticipant } from '../../as/src/conference/roster.js';
import { NamespaceScope, findChildren, parseXml, type XmlElement } from '../../as/src/xml/xml-tree.js';
import { assertValidConferenceInfo } from '../helpers/conference-info-schema.js';

const NS = 'urn:ietf:params:xml:ns:conference-info';
const ROOM = 'sip:room@example.com';

const bob: ConferenceParticipant = {
  uri: 'sip:bob@example.com',
  displayName: 'Bob',
  anonymous: false,
  status: 'connected',
  joiningMethod: 'dialed-in',
  endpoint: 'sip:bob@10.0.0.2:5070;transport=tcp',
  dialog: { callId: 'call-bob', remoteTag: 'rb', localTag: 'lb' },
  joinedAt: new Date('2026-12-07T10:00:00Z'),
};
const carol: ConferenceParticipant = {
  uri: 'sip:carol@example.com',
  nickname: 'caz & co',
  anonymous: false,
  status: 'alerting',
  joiningMethod: 'dialed-out',
  invitedBy: 'sip:bob@example.com',
};
const secret: ConferenceParticipant = {
  uri: 'sip:spy@example.com',
  displayName: 'Real Name',
  anonymous: true,
  status: 'connected',
  joiningMethod: 'dialed-in',
  endpoint: 'sip:spy@10.0.0.9:5080',
  dialog: { callId: 'call-spy', remoteTag: 'rs', localTag: 'ls' },
  invitedBy: 'sip:bob@example.com',
};

function conference(participants: ConferenceParticipant[], extra: Partial<Conference> = {}): Conference {
  return {
    _id: ROOM,
    kind: 'room',
    owner: 'sip:alice@example.com',
    subject: 'Weekly <sync>',
    maxParticipants: 10,
    focusInstance: 'as-1',
    version: 1,
    createdAt: new Date('2026-12-07T09:00:00Z'),
    participants,
    ...extra,
  };
}

/** The user elements of a document, by entity, with their state attribute. */
function users(body: string): Map<string, { state: string; el: XmlElement; scope: NamespaceScope }> {
  const doc = parseXml(body);
  const scope = NamespaceScope.root().child(doc.root);
  const out = new Map<string, { state: string; el: XmlElement; scope: NamespaceScope }>();
  for (const us of findChildren(doc.root, scope, NS, 'users')) {
    const inner = scope.child(us);
    for (const u of findChildren(us, inner, NS, 'user'))
      out.set(u.attributes?.entity ?? '', { state: u.attributes?.state ?? 'full', el: u, scope: inner.child(u) });
  }
  return out;
}

describe('conference-info documents (RFC 4575)', () => {
  it('full state: description with the subject, state, every user with endpoint and MSRP media; valid', () => {
    const doc = conferenceInfo(conference([bob, carol]), 1);
    assertValidConferenceInfo(doc.body);
    assert.match(
      doc.body,
      /<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" entity="sip:room@example\.com" state="full" version="1">/,
    );
    assert.match(doc.body, /<subject>Weekly &lt;sync&gt;<\/subject>/);
    assert.match(doc.body, /<maximum-user-count>10<\/maximum-user-count>/);
    assert.match(doc.body, /<user-count>2<\/user-count><active>true<\/active>/);
    const u = users(doc.body);
    assert.deepEqual([...u.keys()], ['sip:bob@example.com', 'sip:carol@example.com']);
    assert.match(
      doc.body,
      /<endpoint entity="sip:bob@10\.0\.0\.2:5070;transport=tcp"><status>connected<\/status><joining-method>dialed-in<\/joining-method><joining-info><when>2026-12-07T10:00:00\.000Z<\/when><\/joining-info><media id="msrp"><display-text>MSRP<\/display-text><type>message<\/type><status>sendrecv<\/status><\/media><\/endpoint>/,
    );
    assert.match(
      doc.body,
      /<display-text>caz &amp; co<\/display-text><endpoint><status>alerting<\/status><joining-method>dialed-out<\/joining-method><joining-info><by>sip:bob@example\.com<\/by><\/joining-info><\/endpoint>/,
    );
    assert.equal(doc.unchanged, false);
  });

  it('partial state: only the user who changed, then a user who left as deleted, versions as given; all valid', () => {
    const first = conferenceInfo(conference([bob]), 1);
    const joined = conferenceInfo(conference([bob, carol]), 2, first.sent);
    assertValidConferenceInfo(joined.body);
    assert.match(joined.body, /state="partial" version="2"/);
    assert.deepEqual([...users(joined.body).keys()], ['sip:carol@example.com'], 'bob did not change');
    assert.match(joined.body, /<user-count>2<\/user-count>/, 'the count changed');
    assert.doesNotMatch(joined.body, /<conference-description>/, 'the description did not');

    const left = {
      ...carol,
      status: 'disconnected' as const,
      disconnectionMethod: 'departed' as const,
      leftAt: new Date('2026-12-07T10:05:00Z'),
    };
    const departed = conferenceInfo(conference([bob, left]), 3, joined.sent);
    assertValidConferenceInfo(departed.body);
    assert.match(
      departed.body,
      /<disconnection-method>departed<\/disconnection-method><disconnection-info><when>2026-12-07T10:05:00\.000Z<\/when><\/disconnection-info>/,
    );
    assert.doesNotMatch(departed.body, /<media /, 'no media for a disconnected endpoint');

    const removed = conferenceInfo(conference([bob]), 4, departed.sent);
    assertValidConferenceInfo(removed.body);
    assert.equal(users(removed.body).get('sip:carol@example.com')?.state, 'deleted');

    const same = conferenceInfo(conference([bob]), 5, removed.sent);
    assert.equal(same.unchanged, true);
    assertValidConferenceInfo(same.body);

    const retitled = conferenceInfo(conference([bob], { subject: 'Monthly' }), 6, same.sent);
    assert.match(retitled.body, /<conference-description><subject>Monthly<\/subject>/);
    assertValidConferenceInfo(retitled.body);
  });

  it('an ended conference: not active, nobody connected', () => {
    const ended = conference([{ ...bob, status: 'disconnected', leftAt: new Date() }], { endedAt: new Date() });
    const doc = conferenceInfo(ended, 7);
    assertValidConferenceInfo(doc.body);
    assert.match(doc.body, /<user-count>0<\/user-count><active>false<\/active>/);
  });

  it('an anonymous participant: no URI, contact, name or inviter of theirs, a stable opaque entity', () => {
    const doc = conferenceInfo(conference([bob, secret]), 1);
    assertValidConferenceInfo(doc.body);
    assert.doesNotMatch(doc.body, /spy|Real Name|10\.0\.0\.9/);
    const entity = userEntity(ROOM, secret);
    assert.match(entity, /^sip:anonymous-[0-9a-f]{16}@anonymous\.invalid$/);
    assert.equal(userEntity(ROOM, { ...secret, status: 'on-hold' }), entity, 'the same user across changes');
    const u = users(doc.body).get(entity);
    assert.ok(u, doc.body);
    assert.match(
      doc.body,
      new RegExp(
        `<user entity="${entity}" state="full"><display-text>Anonymous</display-text><endpoint><status>connected</status>`,
      ),
    );
    assert.doesNotMatch(doc.body, /<joining-info><by>/, 'who invited an anonymous participant is not shown');
  });
});
