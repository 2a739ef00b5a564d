import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';
import { UserDirectory, digestHa1 } from '../../as/src/users/user-directory.js';

describe('digest HA1', () => {
  it('is MD5(user:realm:password) as RFC 2617 defines it', () => {
    // RFC 2617 section 3.5's example: Mufasa / testrealm@host.com / Circle Of Life
    assert.equal(digestHa1('Mufasa', 'testrealm@host.com', 'Circle Of Life'), '939e7578ed9e3c518a452acee763bce9');
    assert.match(digestHa1('alice', 'example.com', 'secret'), /^[0-9a-f]{32}$/);
    assert.notEqual(digestHa1('alice', 'example.com', 'secret'), digestHa1('alice', 'example.com', 'secreT'));
  });
});

describe('local domain', () => {
  const d = new LocalDomain('example.com', ['127.0.0.1']);
  it('canonicalises our users under any alias and refuses others', () => {
    assert.equal(d.canonical('sip:alice@127.0.0.1:5060;transport=udp'), 'sip:alice@example.com');
    assert.equal(d.canonical('<sip:Alice@EXAMPLE.com>'), 'sip:Alice@example.com');
    assert.equal(d.canonical('sip:alice@other.org'), undefined);
    assert.equal(d.canonical('tel:+123'), undefined);
    assert.equal(d.canonical('garbage'), undefined);
    assert.equal(d.userOf('sip:bob@127.0.0.1'), 'bob');
  });
});

describe('user directory', () => {
  let dir: string;
  let store: SqliteStore;
  let users: UserDirectory;
  const changed: string[] = [];
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'users-'));
    store = await SqliteStore.open(dir);
    users = new UserDirectory(store, 'example.com', async (u) => void changed.push(u));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores only the HA1 of the password', async () => {
    await users.add('sip:alice@example.com', 'secret');
    const raw = await store.collection('users').findOne({ _id: 'alice' });
    assert.equal(raw?.ha1, digestHa1('alice', 'example.com', 'secret'));
    assert.ok(!JSON.stringify(raw).includes('secret'));
    assert.deepEqual(changed.slice(-1), ['alice']);
  });

  it('accepts the three spellings of a user and refuses other domains and bad names', async () => {
    await users.add('alice', 'secret');
    assert.equal(await users.exists('sip:alice@example.com'), true);
    assert.equal(await users.exists('alice@example.com'), true);
    await assert.rejects(users.add('sip:bob@other.org', 'secret'), /not in our domain/);
    await assert.rejects(users.add('bo b', 'secret'), /not a valid user/);
    await assert.rejects(users.add('carol', 'abc'), /password must be 4 to 128/);
    await assert.rejects(users.add('alice', 'another'), /already exists/);
  });

  it('changes passwords and removes users, telling the cache hook each time', async () => {
    await users.add('dave', 'first');
    await users.setPassword('dave', 'second');
    assert.equal((await users.get('dave'))?.ha1, digestHa1('dave', 'example.com', 'second'));
    await users.remove('dave');
    assert.equal(await users.exists('dave'), false);
    await assert.rejects(users.remove('dave'), /no user/);
    assert.deepEqual(changed.slice(-3), ['dave', 'dave', 'dave']);
  });
});
