/**
 * A group's policy (as/src/conference/group-policy.ts) over documents in a real embedded store:
 * who may join and send (the cp:ruleset, or the member list without one), anonymity, the
 * participant ceiling, and members given by entry-ref and external references.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GroupListError, GroupPolicy } from '../../as/src/conference/group-policy.js';
import { openStore } from '../../as/src/store/open-store.js';
import type { Store } from '../../as/src/store/port.js';
import { XdmDocuments, type DocumentRef } from '../../as/src/xdm/document-store.js';
import { groupsUsage } from '../../as/src/xdm/usages/groups.js';
import { parseXml } from '../../as/src/xml/xml-tree.js';

const LS = 'urn:oma:xml:poc:list-service';
const RL = 'urn:ietf:params:xml:ns:resource-lists';
const CP = 'urn:ietf:params:xml:ns:common-policy';
const OCP = 'urn:oma:xml:xdm:common-policy';
const ALICE = 'sip:alice@example.com';

const groupRef = (xui: string): DocumentRef => ({ auid: groupsUsage.auid, tree: 'users', xui, path: 'index' });
const listsRef = (xui: string): DocumentRef => ({ auid: 'resource-lists', tree: 'users', xui, path: 'index' });

describe('group policy', () => {
  let dir: string;
  let store: Store;
  let docs: XdmDocuments;
  let operatorMax = 100;
  let policy: GroupPolicy;

  async function putGroups(xui: string, listServices: string): Promise<void> {
    const body = `<group xmlns="${LS}" xmlns:rl="${RL}" xmlns:cp="${CP}" xmlns:ocp="${OCP}">${listServices}</group>`;
    const unique = groupsUsage.uniqueKeys!(parseXml(body));
    await docs.put(groupRef(xui), body, { kind: 'any' }, unique);
  }

  before(async () => {
    dir = await mkdtemp(path.join(process.env.TMPDIR ?? tmpdir(), 'group-policy-'));
    store = await openStore({ dataDir: dir });
    docs = new XdmDocuments(store);
    await docs.start();
    policy = new GroupPolicy({
      docs,
      canonical: (u) => (/@example\.com$/.test(u) ? u.replace(/^sips?:/, 'sip:').toLowerCase() : undefined),
      operatorMax: () => operatorMax,
      maxMembers: () => 50,
    });
    await docs.put(
      listsRef(ALICE),
      `<resource-lists xmlns="${RL}"><list name="friends"><entry uri="sip:fred@example.com"/><entry uri="sip:fay@example.com"/></list>` +
        `<list name="work"><entry uri="sip:wanda@example.com"/></list></resource-lists>`,
      { kind: 'any' },
    );
    await docs.put(
      listsRef('sip:mallory@example.com'),
      `<resource-lists xmlns="${RL}"><list name="secret"><entry uri="sip:sam@example.com"/></list></resource-lists>`,
      { kind: 'any' },
    );
    await putGroups(
      ALICE,
      // no rules: members and the owner; entry-ref and external expanded; a ceiling of 3
      `<list-service uri="sip:team@example.com"><list><entry uri="sip:bob@example.com"/>` +
        `<entry-ref ref="resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22work%22%5D/entry%5B@uri=%22sip:wanda@example.com%22%5D"/>` +
        `<external anchor="https://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5B@name=%22friends%22%5D"/>` +
        `</list><max-participant-count>3</max-participant-count></list-service>` +
        // rules: members (the group itself as an external list) may join; carol too, anonymously
        `<list-service uri="sip:club@example.com"><list><entry uri="sip:bob@example.com"/></list>` +
        `<cp:ruleset><cp:rule id="members"><cp:conditions><ocp:external-list><ocp:entry anc="sip:club@example.com"/></ocp:external-list></cp:conditions>` +
        `<cp:actions><join-handling>allow</join-handling></cp:actions></cp:rule>` +
        `<cp:rule id="carol"><cp:conditions><cp:identity><cp:one id="sip:carol@example.com"/></cp:identity></cp:conditions>` +
        `<cp:actions><join-handling>allow</join-handling><allow-anonymity>true</allow-anonymity></cp:actions></cp:rule>` +
        `<cp:rule id="dave"><cp:conditions><cp:identity><cp:one id="sip:dave@example.com"/></cp:identity></cp:conditions>` +
        `<cp:actions><join-handling>block</join-handling></cp:actions></cp:rule></cp:ruleset></list-service>` +
        // a reference to another user's document: never followed
        `<list-service uri="sip:peek@example.com"><list>` +
        `<external anchor="https://xcap.example.com/xcap-root/resource-lists/users/sip:mallory@example.com/index/~~/resource-lists/list%5B@name=%22secret%22%5D"/>` +
        `</list></list-service>`,
    );
  });

  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('expands entry-ref and external references of the owner (today they were dropped)', async () => {
    assert.deepEqual(await policy.members('sip:team@example.com'), [
      'sip:bob@example.com',
      'sip:wanda@example.com',
      'sip:fred@example.com',
      'sip:fay@example.com',
    ]);
    assert.equal(await policy.members('sip:nobody@example.com'), undefined);
  });

  it("refuses to follow a reference into another user's documents", async () => {
    await assert.rejects(policy.members('sip:peek@example.com'), GroupListError);
  });

  it('without rules: members (also by reference) and the owner may send and join; others 403 with the reason', async () => {
    for (const u of ['sip:bob@example.com', 'sip:fred@example.com', 'sip:wanda@example.com', ALICE])
      assert.deepEqual(await policy.maySend('sip:team@example.com', u, { anonymous: false }), { allow: true }, u);
    assert.deepEqual(await policy.mayJoin('sip:team@example.com', 'sip:eve@example.com', { anonymous: false }), {
      refuse: { code: 403, reason: 'sip:eve@example.com is not a member of the group' },
    });
    assert.deepEqual(await policy.maySend('sip:team@example.com', 'sip:bob@example.com', { anonymous: true }), {
      refuse: { code: 403, reason: 'the group does not allow anonymous participants' },
    });
  });

  it('with rules: the rules decide (members through an external-list of the group, one named user, a block)', async () => {
    const club = 'sip:club@example.com';
    assert.deepEqual(await policy.maySend(club, 'sip:bob@example.com', { anonymous: false }), { allow: true });
    assert.deepEqual(await policy.mayJoin(club, 'sip:carol@example.com', { anonymous: false }), { allow: true });
    assert.deepEqual(await policy.mayJoin(club, 'sip:carol@example.com', { anonymous: true }), { allow: true });
    const dave = await policy.mayJoin(club, 'sip:dave@example.com', { anonymous: false });
    assert.deepEqual(dave, { refuse: { code: 403, reason: "the group's rules do not allow sip:dave@example.com" } });
    const owner = await policy.mayJoin(club, ALICE, { anonymous: false });
    assert.ok('refuse' in owner, 'with rules, the owner is what the rules say too');
    assert.deepEqual(
      await policy.mayJoin(club, 'sip:bob@example.com', { anonymous: true }),
      { refuse: { code: 403, reason: 'the group does not allow anonymous participants' } },
      'anonymity is allowed only by a rule that says so',
    );
  });

  it("the participant ceiling: the group's own under the operator's; a full group 486", async () => {
    assert.equal(await policy.maxParticipants('sip:team@example.com'), 3);
    assert.equal(await policy.maxParticipants('sip:club@example.com'), 100);
    operatorMax = 2;
    assert.equal(await policy.maxParticipants('sip:team@example.com'), 2, 'the operator maximum applies at once');
    operatorMax = 100;
    assert.deepEqual(
      await policy.mayJoin('sip:team@example.com', 'sip:bob@example.com', { anonymous: false, participants: 3 }),
      { refuse: { code: 486, reason: 'the group is full (at most 3 participants)' } },
    );
    assert.deepEqual(
      await policy.mayJoin('sip:team@example.com', 'sip:bob@example.com', { anonymous: false, participants: 2 }),
      { allow: true },
    );
  });

  it('forSending: the decision, the expanded members and the ceiling from one read', async () => {
    assert.deepEqual(await policy.forSending('sip:team@example.com', 'sip:fay@example.com', { anonymous: false }), {
      members: ['sip:bob@example.com', 'sip:wanda@example.com', 'sip:fred@example.com', 'sip:fay@example.com'],
      maxParticipants: 3,
    });
    assert.deepEqual(await policy.forSending('sip:team@example.com', 'sip:eve@example.com', { anonymous: false }), {
      refuse: { code: 403, reason: 'sip:eve@example.com is not a member of the group' },
    });
    assert.equal(await policy.forSending('sip:nothing@example.com', ALICE, { anonymous: false }), undefined);
    await assert.rejects(policy.forSending('sip:peek@example.com', ALICE, { anonymous: false }), GroupListError);
  });

  it('membersToInvite: every member (expanded) when the group says invite-members true, none when false or absent', async () => {
    await putGroups(
      'sip:bob@example.com',
      `<list-service uri="sip:squad@example.com"><list><entry uri="sip:bob@example.com"/><entry uri="sip:Carol@example.com"/></list>` +
        `<invite-members>true</invite-members></list-service>` +
        `<list-service uri="sip:quiet@example.com"><list><entry uri="sip:bob@example.com"/></list>` +
        `<invite-members>false</invite-members></list-service>`,
    );
    assert.deepEqual(await policy.membersToInvite('sip:squad@example.com'), [
      'sip:bob@example.com',
      'sip:carol@example.com',
    ]);
    assert.deepEqual(await policy.membersToInvite('sip:quiet@example.com'), []);
    assert.deepEqual(await policy.membersToInvite('sip:team@example.com'), [], 'no invite-members: nobody dialled');
    assert.deepEqual(await policy.membersToInvite('sip:nothing@example.com'), []);
  });

  it('an unknown group: 404', async () => {
    const r = await policy.mayJoin('sip:nothing@example.com', ALICE, { anonymous: false });
    assert.ok('refuse' in r && r.refuse.code === 404);
  });
});
