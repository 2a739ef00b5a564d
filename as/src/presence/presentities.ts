import type { UserDirectory } from '../users/user-directory.js';

/**
 * Who can be a presentity: a provisioned user of our domain, or, with an open domain
 * (benchmarks, labs; Kamailio's own presence behaves so), any canonical identity of it.
 */
export class Presentities {
  constructor(
    private readonly users: UserDirectory,
    private readonly openDomain: boolean,
  ) {}

  async exists(canonical: string): Promise<boolean> {
    return this.openDomain || this.users.exists(canonical);
  }

  /** A provisioned user's identity (whatever the open domain says): never anything else's address. */
  async provisioned(canonical: string): Promise<boolean> {
    return this.users.exists(canonical);
  }
}
