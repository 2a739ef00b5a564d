import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { SqliteStore } from './sqlite-store.js';
import { MongoStore } from './mongo-store.js';
import type { Store } from './port.js';

export interface OpenStoreOptions {
  /** When set (MONGODB_URI), MongoDB serves the store; otherwise the embedded engine does. */
  mongodbUri?: string;
  /** The embedded engine's data directory (unused with MongoDB). */
  dataDir: string;
  log?: Logger;
  /** Counts the embedded store's background failures (TTL sweeps). */
  metrics?: Metrics;
}

/** Picks the engine: MongoDB when a URI is given, else the embedded one (SQLite) in dataDir. */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const uri = opts.mongodbUri?.trim();
  if (uri) return MongoStore.connect(uri, opts.log);
  return SqliteStore.open(opts.dataDir, opts.log, opts.metrics);
}
