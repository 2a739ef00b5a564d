import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { evaluatePresRules } from '../../as/src/presence/pres-rules-evaluator.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { IdentityIndex } from '../../as/src/users/identity-index.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';
import { identityKey, normaliseE164 } from '../../as/src/users/public-identity.js';
import { UserDirectory } from '../../as/src/users/user-directory.js';
import { parseXml } from '../../as/src/xml/xml-tree.js';
import { imPolicyUsage, imPolicyVerdict, keepsHistoryWith, readImPolicy } from '../../as/src/xdm/usages/im-policy.js';

const ours = (h: string) => h === 'example.com' || h === '127.0.0.1';

describe('public identity keys', () => {
  it('turns every spelling of a global number into tel:+digits', () => {
    assert.equal(identityKey('tel:+15551234', ours), 'tel:+15551234');
    assert.equal(identityKey('<tel:+1-555-1234;phone-context=ignored>', ours), 'tel:+15551234');
    assert.equal(identityKey('tel:+1.(555).1234', ours), 'tel:+15551234');
    assert.equal(identityKey('sip:+15551234@example.com;user=phone', ours), 'tel:+15551234');
    assert.equal(identityKey('sip:+1-555-1234;isub=12@127.0.0.1:5060;user=PHONE;transport=tcp', ours), 'tel:+15551234');
  });

  it('refuses numbers that are not global E.164 and user=phone on another host', () => {
    assert.equal(identityKey('tel:5551234;phone-context=example.com', ours), undefined);
    assert.equal(identityKey('tel:+1234567890123456', ours), undefined, 'more than 15 digits');
    assert.equal(identityKey('sip:+15551234@other.org;user=phone', ours), undefined);
    assert.equal(identityKey('sip:5551234@example.com;user=phone', ours), 'sip:5551234', 'a local number stays a name');
    assert.equal(normaliseE164('+0123'), undefined, 'no country code starts with 0');
  });

  it('reads pres: and im: URIs (RFC 3859, RFC 3860) and sip: names of our hosts', () => {
    assert.equal(identityKey('pres:alice@example.com', ours), 'sip:alice');
    assert.equal(identityKey('IM:alice.smith@EXAMPLE.COM', ours), 'sip:alice.smith');
    assert.equal(identityKey('<sips:alice@127.0.0.1;transport=tls>', ours), 'sip:alice');
    assert.equal(identityKey('pres:alice@other.org', ours), undefined);
    assert.equal(identityKey('im:alice', ours), undefined);
    assert.equal(identityKey('mailto:alice@example.com', ours), undefined);
    // without user=phone a +digits user part is a name (RFC 3261 19.1.6)
    assert.equal(identityKey('sip:+15551234@example.com', ours), 'sip:+15551234');
  });
});

describe('numbers and aliases of users', () => {
  let dir: string;
  let store: SqliteStore;
  let users: UserDirectory;
  let index: IdentityIndex;
  let domain: LocalDomain;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'identities-'));
    store = await SqliteStore.open(dir);
    index = new IdentityIndex({ allIdentities: () => users.allIdentities() });
    users = new UserDirectory(store, 'example.com', () => index.load());
    domain = new LocalDomain('example.com', ['127.0.0.1'], index);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('canonicalises a number, an alias and pres:/im: URIs to the user', async () => {
    await users.add('alice', 'secret', '+1-555-1234');
    assert.equal(await users.addAlias('alice', 'alice.smith'), 'sip:alice.smith@example.com');
    for (const uri of [
      'tel:+15551234',
      'sip:+15551234@example.com;user=phone',
      'sip:alice.smith@example.com',
      'pres:alice.smith@example.com',
      'im:alice@example.com',
      'pres:alice@127.0.0.1',
    ]) {
      assert.equal(domain.canonical(uri), 'sip:alice@example.com', uri);
    }
    assert.equal(domain.userOf('tel:+1-555-1234'), 'alice');
    assert.equal(domain.canonical('tel:+15559999'), undefined, 'an unknown number is nobody');
    assert.deepEqual(await users.identitiesOf('alice'), { tel: '+15551234', aliases: ['sip:alice.smith@example.com'] });
  });

  it('keeps a number and an alias to one user, with a clear error', async () => {
    await users.add('alice', 'secret', '+15551234');
    await users.add('bob', 'secret');
    await assert.rejects(
      users.setTel('bob', 'tel:+1-555-1234'),
      /number \+15551234 already belongs to sip:alice@example.com/,
    );
    await assert.rejects(users.add('carol', 'secret', '+15551234'), /already belongs to sip:alice@example.com/);
    assert.equal(await users.exists('carol'), false, 'the refused user is not half-created');
    await assert.rejects(users.setTel('bob', '5551234'), /not a global E.164 number/);
    await users.addAlias('alice', 'ally');
    await assert.rejects(users.addAlias('bob', 'ally'), /already an alias of sip:alice@example.com/);
    await assert.rejects(users.addAlias('bob', 'alice'), /a user of its own/);
    await assert.rejects(users.add('ally', 'secret'), /already an alias of sip:alice/);
  });

  it('moves, removes and forgets identities with their user', async () => {
    await users.add('alice', 'secret', '+15551234');
    await users.addAlias('alice', 'ally');
    await users.setTel('alice', '+15550000');
    assert.equal(domain.canonical('tel:+15551234'), undefined, 'the old number is free again');
    assert.equal(domain.canonical('tel:+15550000'), 'sip:alice@example.com');
    await users.setTel('alice', undefined);
    await assert.rejects(users.setTel('alice', undefined), /has no number/);
    await users.removeAlias('alice', 'ally');
    await assert.rejects(users.removeAlias('alice', 'ally'), /not an alias/);
    await users.addAlias('alice', 'ally');
    await users.setTel('alice', '+15551234');
    await users.remove('alice');
    assert.equal(domain.canonical('tel:+15551234'), undefined);
    assert.equal(domain.canonical('sip:ally@example.com'), 'sip:ally@example.com', 'the alias is no longer alice');
    await users.add('bob', 'secret', '+15551234');
    assert.equal(domain.canonical('tel:+15551234'), 'sip:bob@example.com');
  });
});

describe('documents naming a user by another identity', () => {
  // alice has the number +15551234 and the alias alice.smith
  const held = new Map<string, string>([
    ['tel:+15551234', 'alice'],
    ['sip:alice.smith', 'alice'],
  ]);
  const domain = new LocalDomain('example.com', [], { userFor: (k) => held.get(k) });
  const canonical = (uri: string) => domain.canonical(uri);

  it('a pres-rule naming the watcher by alias, number or pres: URI applies to them', () => {
    const rules = (id: string) =>
      parseXml(`<cp:ruleset xmlns:cp="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
      <cp:rule id="r"><cp:conditions><cp:identity><cp:one id="${id}"/></cp:identity></cp:conditions>
      <cp:actions><pr:sub-handling>allow</pr:sub-handling></cp:actions></cp:rule></cp:ruleset>`);
    const now = new Date();
    for (const id of [
      'pres:alice@example.com',
      'sip:alice.smith@example.com',
      'tel:+1-555-1234',
      'im:alice.smith@example.com',
    ]) {
      assert.equal(
        evaluatePresRules(rules(id), { watcher: 'sip:alice@example.com', anonymous: false, now, canonical })
          ?.subHandling,
        'allow',
        id,
      );
      assert.equal(
        evaluatePresRules(rules(id), { watcher: 'sip:alice@example.com', anonymous: false, now }),
        undefined,
        `${id} without the mapping names nobody`,
      );
    }
    assert.equal(
      evaluatePresRules(rules('pres:bob@example.com'), {
        watcher: 'sip:alice@example.com',
        anonymous: false,
        now,
        canonical,
      }),
      undefined,
    );
  });

  it('IM policy entries as im:/pres: URIs, aliases or numbers name the user; other schemes are still refused', () => {
    const doc =
      '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="im:alice.smith@example.com"/><entry uri="pres:carol@example.com"/></blocked>' +
      '<history><conversation uri="tel:+15551234"/></history></im-policy>';
    assert.deepEqual(imPolicyUsage.validate(parseXml(doc), { xui: 'sip:bob@example.com', domain: 'example.com' }), []);
    const bad = imPolicyUsage.validate(
      parseXml(
        '<im-policy xmlns="urn:ims-as:xml:im-policy"><blocked><entry uri="mailto:a@example.com"/></blocked></im-policy>',
      ),
      { xui: 'sip:bob@example.com', domain: 'example.com' },
    );
    assert.equal(bad.length, 1);
    const p = readImPolicy(parseXml(doc));
    assert.equal(imPolicyVerdict(p, 'sip:alice@example.com', canonical), 'reject');
    assert.equal(imPolicyVerdict(p, 'sip:carol@example.com', canonical), 'reject');
    assert.equal(imPolicyVerdict(p, 'sip:dave@example.com', canonical), 'accept');
    assert.equal(keepsHistoryWith(p, 'sip:alice@example.com', canonical), true);
    assert.equal(keepsHistoryWith(p, 'sip:carol@example.com', canonical), false);
  });
});
