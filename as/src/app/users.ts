import type { AsConfig } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { Registrations } from '../registrations/registrations.js';
import type { Store } from '../store/port.js';
import { IdentityIndex } from '../users/identity-index.js';
import { LocalDomain } from '../users/local-domain.js';
import { UserDirectory } from '../users/user-directory.js';
import type { Subsystem } from './ownership.js';

export interface UsersDeps {
  config: Pick<AsConfig, 'sip'>;
  log: Logger;
  store: Store;
  /** What a user change sets off (reactions.ts, wired once every subsystem exists). */
  userChanged: (user: string) => Promise<void>;
}

export interface UsersParts {
  users: UserDirectory;
  identities: IdentityIndex;
  domain: LocalDomain;
  registrations: Registrations;
}

/** Users, their numbers and aliases, the local domain and registrations: store state only, nothing to close. */
export async function openUsers({ config, log, store, userChanged }: UsersDeps): Promise<Subsystem<UsersParts>> {
  const users = new UserDirectory(store, config.sip.domain, userChanged);
  // numbers and aliases of users, before anything canonicalises a URI
  const identities = new IdentityIndex(users);
  await identities.load();
  const domain = new LocalDomain(config.sip.domain, config.sip.domainAliases, identities);
  const registrations = new Registrations(store, log.child({ svc: 'registrations' }));
  return { users, identities, domain, registrations, close: () => undefined };
}
