import type { IdentityLookup } from './local-domain.js';
import type { IdentityKey } from './public-identity.js';
import type { IdentityRecord } from './user-directory.js';

/**
 * Every provisioned number and alias, in memory: LocalDomain.canonical runs for each URI of
 * every request and document, synchronously. Rebuilt whole on a user change (here or on
 * another instance: reactions.ts), which is rare and small (only users' extra identities).
 */
export class IdentityIndex implements IdentityLookup {
  private byKey = new Map<string, string>();

  constructor(private readonly source: { allIdentities(): Promise<IdentityRecord[]> }) {}

  async load(): Promise<void> {
    const next = new Map<string, string>();
    for (const r of await this.source.allIdentities()) next.set(r._id, r.user);
    this.byKey = next;
  }

  userFor(key: IdentityKey): string | undefined {
    return this.byKey.get(key);
  }
}
