import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { silentLogger } from '../../as/src/log/logger.js';
import { Registrations, type RegistrationChange } from '../../as/src/registrations/registrations.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';

const AOR = 'sip:bob@example.com';
const future = () => Math.floor(Date.now() / 1000) + 300;

describe('registrations mirror', () => {
  let dir: string;
  let store: SqliteStore;
  let regs: Registrations;
  let seen: RegistrationChange[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'regs-'));
    store = await SqliteStore.open(dir);
    regs = new Registrations(store, silentLogger());
    seen = [];
    regs.on('change', (c) => seen.push(c));
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells registered, refreshed and deregistered apart from successive contact sets', async () => {
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '100.000001',
      contacts: [{ uri: 'sip:bob@10.0.0.1', expires: future() }],
    });
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '100.000002',
      contacts: [
        { uri: 'sip:bob@10.0.0.1', expires: future() },
        { uri: 'sip:bob@10.0.0.2', expires: future() },
      ],
    });
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '100.000003',
      contacts: [{ uri: 'sip:bob@10.0.0.2', expires: future() }],
    });
    assert.deepEqual(
      seen.map((c) => `${c.kind} ${c.contact} ${c.remaining}`),
      [
        'registered sip:bob@10.0.0.1 1',
        'refreshed sip:bob@10.0.0.1 2',
        'registered sip:bob@10.0.0.2 2',
        'refreshed sip:bob@10.0.0.2 1',
        'deregistered sip:bob@10.0.0.1 1',
      ],
    );
    assert.deepEqual(
      (await regs.contacts(AOR)).map((c) => c.uri),
      ['sip:bob@10.0.0.2'],
    );
  });

  it('counts the users with a live contact in the store (the operator page), as contacts come, expire and go', async () => {
    const now = Math.floor(Date.now() / 1000);
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '200.1',
      contacts: [{ uri: 'sip:bob@10.0.0.1', expires: now + 300 }],
    });
    await regs.apply({
      type: 'registration',
      aor: 'sip:ann@example.com',
      ts: '200.2',
      contacts: [{ uri: 'sip:ann@10.0.0.3', expires: now - 5 }],
    });
    await regs.apply({
      type: 'registration',
      aor: 'sip:cy@example.com',
      ts: '200.3',
      contacts: [{ uri: 'sip:cy@10.0.0.4', expires: 0 }],
    });
    assert.equal(await regs.registeredCount(), 2, 'bob and the permanent contact of cy; ann has expired');
    await regs.apply({ type: 'contact-expired', aor: AOR, uri: 'sip:bob@10.0.0.1', ts: '200.4' } as Parameters<
      Registrations['apply']
    >[0]);
    assert.equal(await regs.registeredCount(), 1);
    await regs.apply({ type: 'registration', aor: 'sip:cy@example.com', ts: '200.5', contacts: [] });
    assert.equal(await regs.registeredCount(), 0);
  });

  it('ignores an event older than the state it has (out-of-order delivery)', async () => {
    await regs.apply({ type: 'registration', aor: AOR, ts: '200.5', contacts: [] });
    const changes = await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '200.4',
      contacts: [{ uri: 'sip:bob@10.0.0.9', expires: future() }],
    });
    assert.deepEqual(changes, []);
    assert.equal(await regs.isRegistered(AOR), false);
  });

  it('reports an expired contact once, with what remains', async () => {
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '300.1',
      contacts: [
        { uri: 'sip:bob@a', expires: future() },
        { uri: 'sip:bob@b', expires: future() },
      ],
    });
    seen = [];
    await regs.apply({ type: 'contact-expired', aor: AOR, uri: 'sip:bob@a', ts: '300.2' });
    await regs.apply({ type: 'contact-expired', aor: AOR, uri: 'sip:bob@a', ts: '300.3' });
    assert.deepEqual(seen, [{ kind: 'expired', aor: AOR, contact: 'sip:bob@a', remaining: 1 }]);
  });

  it('does not count contacts whose expiry has passed', async () => {
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '400.1',
      contacts: [{ uri: 'sip:bob@old', expires: 1000 }],
    });
    assert.equal(await regs.isRegistered(AOR), false);
  });

  it('keeps the parameters each contact registered with, and those of contacts another REGISTER did not name', async () => {
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '500.1',
      contacts: [{ uri: 'sip:bob@chat', expires: future() }],
      contactHeader: '<sip:bob@chat>;+g.oma.sip-im;methods="INVITE,MESSAGE";expires=600',
    });
    await regs.apply({
      type: 'registration',
      aor: AOR,
      ts: '500.2',
      contacts: [
        { uri: 'sip:bob@chat', expires: future() },
        { uri: 'sip:bob@phone', expires: future() },
      ],
      contactHeader: '<sip:bob@phone>',
      allow: 'INVITE, ACK, BYE',
    });
    const contacts = await regs.contacts(AOR);
    assert.deepEqual(
      contacts.map((c) => [c.uri, c.params]),
      [
        ['sip:bob@chat', { '+g.oma.sip-im': '', methods: 'INVITE,MESSAGE' }],
        ['sip:bob@phone', { methods: 'INVITE,ACK,BYE' }],
      ],
    );
  });
});
