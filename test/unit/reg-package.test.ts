import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Subscription } from '../../as/src/events/event-package.js';
import { RegPackage } from '../../as/src/registrations/reg-package.js';
import type { Registrations } from '../../as/src/registrations/registrations.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';

describe('reg event package: document versions (RFC 3680 section 5.4)', () => {
  it('numbers each NOTIFY of the dialog one more than the last, whatever package data it was handed', async () => {
    let contacts = [{ uri: 'sip:alice@10.0.0.1:5062', expires: Math.floor(Date.now() / 1000) + 600 }];
    const registrations = { contacts: async () => contacts } as unknown as Registrations;
    const pkg = new RegPackage({ registrations, domain: new LocalDomain('example.com') });
    const sub = { resource: 'sip:alice@example.com', data: { version: -1, known: [] } } as unknown as Subscription;
    const versions: number[] = [];
    for (let n = 0; n < 3; n++) {
      // the stored data may lag behind (a refresh, a NOTIFY whose data was not written back)
      contacts = [...contacts, { uri: `sip:alice@10.0.0.${n + 2}:5062`, expires: contacts[0]!.expires }];
      const r = await pkg.content(sub, { fullState: false, version: n });
      versions.push(Number(/<reginfo [^>]*version="(\d+)"/.exec(r.body)![1]));
    }
    assert.deepEqual(versions, [0, 1, 2]);
  });
});
