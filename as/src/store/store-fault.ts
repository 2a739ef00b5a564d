/**
 * The one place that tells a store outage (the disk is full or read-only, the database is
 * unreachable or stepping down) from a bug. An outage is temporary and not the client's
 * fault: it is answered 503 with Retry-After, while any other failure stays a 500. The
 * port's engines throw their own errors, so they are recognised here by their codes and
 * names only, which keeps every engine (embedded, SQLite, MongoDB) behind one rule.
 */

/** What a client is told to wait before trying again while the store is down. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/** System call errors of a data directory that cannot be written or read now. */
const FILE_SYSTEM_OUTAGES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EROFS',
  'EACCES',
  'EPERM',
  'EIO',
  'EMFILE',
  'ENFILE',
  'EBUSY',
  'EAGAIN',
]);

/** SQLite result codes (better-sqlite3 puts them in `code`, extended ones as SQLITE_IOERR_WRITE...). */
const SQLITE_OUTAGE = /^SQLITE_(FULL|READONLY|IOERR|BUSY|LOCKED|CANTOPEN|NOLFS)/;

/** MongoDB driver errors of a connection, not of the request. */
const MONGO_OUTAGES = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
  'MongoWriteConcernError',
]);
/** Server answers of a replica set member that cannot take writes now (or a full disk). */
const MONGO_SERVER_OUTAGES = new Set([
  'NotWritablePrimary',
  'NotPrimaryNoSecondaryOk',
  'NotPrimaryOrSecondary',
  'PrimarySteppedDown',
  'ShutdownInProgress',
  'InterruptedAtShutdown',
  'InterruptedDueToReplStateChange',
  'HostUnreachable',
  'HostNotFound',
  'NetworkTimeout',
  'OutOfDiskSpace',
]);

interface ErrorShape {
  name?: unknown;
  code?: unknown;
  codeName?: unknown;
  errorLabels?: unknown;
  cause?: unknown;
}

/** True when `err` (or an error it wraps as `cause`) says the store cannot serve right now. */
export function isStoreOutage(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as ErrorShape).cause, depth++) {
    const { name, code, codeName, errorLabels } = e as ErrorShape;
    if (typeof code === 'string' && (FILE_SYSTEM_OUTAGES.has(code) || SQLITE_OUTAGE.test(code))) return true;
    if (typeof name === 'string' && MONGO_OUTAGES.has(name)) return true;
    if (typeof codeName === 'string' && MONGO_SERVER_OUTAGES.has(codeName)) return true;
    if (
      Array.isArray(errorLabels) &&
      (errorLabels.includes('RetryableWriteError') || errorLabels.includes('TransientTransactionError'))
    )
      return true;
  }
  return false;
}

/** How long an outage a client met keeps /health failing after the last one. */
const OUTAGE_MEMORY_MS = 10_000;

/**
 * Outages the AS's clients met, for /health: a store can pass a health probe (a small
 * write that still fits in a file's last page, a lucky connection) while requests fail.
 */
export class StoreOutages {
  private last?: { err: Error; at: number };

  constructor(private readonly now: () => number = Date.now) {}

  /** Records `err` when it is an outage; returns whether it was. */
  note(err: unknown): boolean {
    if (!isStoreOutage(err)) return false;
    this.last = { err: err instanceof Error ? err : new Error(String(err)), at: this.now() };
    return true;
  }

  /** The last outage, if one was met within the last few seconds. */
  recent(): { message: string; secondsAgo: number } | undefined {
    if (!this.last || this.now() - this.last.at > OUTAGE_MEMORY_MS) return undefined;
    return { message: this.last.err.message, secondsAgo: Math.round((this.now() - this.last.at) / 1000) };
  }
}
