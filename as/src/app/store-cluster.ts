import type { AsConfig } from '../config/config.js';
import { LocalChangeFeed, type ChangeFeed } from '../cluster/change-feed.js';
import { SingletonJobs } from '../cluster/singleton-jobs.js';
import { StoreChangeFeed } from '../cluster/store-change-feed.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { openStore } from '../store/open-store.js';
import { StoreOutages } from '../store/store-fault.js';
import type { Store } from '../store/port.js';
import type { Closeable, Subsystem } from './ownership.js';

export interface StoreClusterDeps {
  config: Pick<AsConfig, 'store' | 'cluster' | 'node'>;
  log: Logger;
  metrics: Metrics;
}

export interface StoreCluster {
  store: Store;
  /** Store outages the clients met (answered 503), for /health. */
  outages: StoreOutages;
  /** Changes of other instances on the same store (a local no-op when alone). */
  feed: ChangeFeed;
  /** Timer jobs leased in the store: one instance of those sharing it runs each. */
  jobs: SingletonJobs;
}

/**
 * The store and the cluster parts built on it. Its close closes the store: built first, it
 * closes last, after every part that writes. The feed and the jobs run only once every
 * subsystem has added its jobs (`runClusterTimers`), and stop before those subsystems close.
 */
export async function openStoreAndCluster({
  config,
  log,
  metrics,
}: StoreClusterDeps): Promise<Subsystem<StoreCluster>> {
  const store = await openStore({
    mongodbUri: config.store.mongodbUri || undefined,
    dataDir: config.store.dataDir,
    log: log.child({ svc: 'store' }),
    metrics,
  });
  log.info({ engine: store.engine }, 'store open');
  // several instances on one store: changes travel through it, timer jobs are leased in it
  const feed: ChangeFeed = config.cluster.sharedStore
    ? new StoreChangeFeed({
        store,
        instance: config.node.id,
        pollMs: config.cluster.feedPollMs,
        log: log.child({ svc: 'feed' }),
        metrics,
      })
    : new LocalChangeFeed();
  const jobs = new SingletonJobs({
    store,
    instance: config.node.id,
    ttlMs: config.cluster.leaseSeconds * 1000,
    log: log.child({ svc: 'jobs' }),
    metrics,
  });
  return { store, outages: new StoreOutages(), feed, jobs, close: () => store.close() };
}

/** Starts the change feed and the jobs; the returned part stops the jobs, then the feed. */
export async function runClusterTimers({ feed, jobs }: Pick<StoreCluster, 'feed' | 'jobs'>): Promise<Closeable> {
  await feed.start();
  try {
    await jobs.start();
  } catch (err) {
    await feed.stop();
    throw err;
  }
  return {
    close: async () => {
      await jobs.stop();
      await feed.stop();
    },
  };
}
