import type { Charging } from '../charging/charging.js';
import type { ChangeFeed } from '../cluster/change-feed.js';
import type { SingletonJobs } from '../cluster/singleton-jobs.js';
import type { UacClient } from '../isc/uac.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Registrations } from '../registrations/registrations.js';
import type { Store } from '../store/port.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import type { XdmDocuments } from '../xdm/document-store.js';

/** What the presence and IM services both build on (each adds its own configuration and parts). */
export interface ServiceDeps {
  log: Logger;
  metrics: Metrics;
  store: Store;
  /** The change feed: with several instances, what one changes reaches the others on it. */
  feed: ChangeFeed;
  jobs: SingletonJobs;
  charging: Charging;
  uac: UacClient;
  /** Kamailio's SIP address (the contacts of the dialogs the AS holds). */
  core: URL;
  users: UserDirectory;
  domain: LocalDomain;
  registrations: Registrations;
  docs: XdmDocuments;
  xcapRoot: string;
}
