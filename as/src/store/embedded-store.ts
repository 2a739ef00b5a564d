/**
 * The embedded engine: the port served by NeDB (@seald-io/nedb), one datafile per
 * collection (`<dataDir>/<collection>.db`), for single-node installs without MongoDB.
 *
 * Durability: NeDB appends every write to the datafile before the write's promise
 * resolves, so data survives a restart or a crash of this process. The append is not
 * fsync'ed: only compaction (every AUTOCOMPACTION_INTERVAL_MS and on close) forces the
 * file to disk, so a power loss can lose the writes since the last compaction.
 *
 * Only one process may open a data directory (NeDB keeps everything in memory and would
 * overwrite another process's writes): open() takes a PID lock file in the directory.
 *
 * Where NeDB differs from MongoDB, this file bends it towards MongoDB:
 * - filters are translated ($eq, null = "null or missing", $ne/$nin = "no element
 *   matches" on arrays, as MongoDB does); operators outside the port are rejected;
 * - upserts build the new document from the filter's equality fields as MongoDB does
 *   (NeDB would keep operator objects such as `{ $exists: false }` as values), and
 *   $setOnInsert, which NeDB lacks, is applied only when inserting;
 * - `modified` counts documents that really changed (NeDB counts matches);
 * - TTL indexes are re-armed on every ensureIndex, because NeDB forgets them when it
 *   reloads a datafile (the index is restored, its expireAfterSeconds is not).
 * Compound (multi-field) unique indexes use NeDB 4's compound indexes; as in MongoDB,
 * documents missing all indexed fields collide with each other there.
 * Known remaining differences: NeDB removes expired documents only when a read meets
 * them, so the store sweeps them every 10 s (MongoDB's TTL monitor runs every minute), and
 * only on top-level Date fields; an existing index is kept as it is
 * when ensureIndex asks for other options (MongoDB rejects that); insertMany with a
 * duplicate inserts nothing (MongoDB keeps the documents before the duplicate);
 * a field set to `undefined` is dropped when the datafile is reloaded (MongoDB stores null).
 */
import { mkdir, open as openFile, readFile, realpath, rm, access, constants as fsConstants } from 'node:fs/promises';
import { closeSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type NedbTypings from '@seald-io/nedb';
import type { Logger } from '../log/logger.js';
import { datafileLine } from './datafile-line.js';
import {
  DuplicateKeyError,
  type Collection,
  type Doc,
  type Filter,
  type FindOneAndUpdateOptions,
  type FindOptions,
  type IndexSpec,
  type Store,
  type Update,
  type UpdateResult,
} from './port.js';

/** Compaction rewrites and fsyncs each datafile: it bounds both file growth and what a power loss can cost. */
const AUTOCOMPACTION_INTERVAL_MS = 60_000;
/** Expired documents (TTL indexes) are swept this often, in chunks, rather than all at once at compaction. */
const TTL_SWEEP_INTERVAL_MS = 10_000;
const TTL_SWEEP_CHUNK = 1000;
/** Compaction serializes this many documents between two turns of the event loop. */
const COMPACTION_SLICE = 2000;
const LOCK_FILE_NAME = 'LOCK';
/** Collection names become file names: no separators, no leading dot. */
const COLLECTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

const requireCjs = createRequire(import.meta.url);

/**
 * NeDB is CommonJS (`module.exports = Datastore`) typed as `export default`: under NodeNext
 * tsc puts the class at `.default` of the import, where it is not at run time. So: load it
 * with require, take its type from the typings.
 */
type DatastoreClass = typeof NedbTypings.default;
const Datastore = requireCjs('@seald-io/nedb') as DatastoreClass;
type NedbDatastore = InstanceType<DatastoreClass>;
type NedbDoc = Record<string, unknown>;

/**
 * NeDB's persistence, made cheaper where it is hot. NeDB appends every write with
 * fs.appendFile: open, write, close, three trips through the thread pool, while the
 * collection's other operations wait behind them. Here an append is one write(2) on a
 * descriptor kept open, its lines written by datafileLine: as durable against a process
 * crash (the lines are in the kernel's page cache once the call returns, as with
 * appendFile), for a fraction of the cost. Compaction replaces the file (temporary file,
 * then rename), so the descriptor is dropped after each one and reopened by the next
 * append; it is sliced too (below).
 */
function installFastPersistence(ds: NedbDatastore, filename: string, onFailedAppend: () => void): { close(): void; readBack(): Promise<void> } {
  let fd: number | undefined;
  /** While reading the datafile back, NeDB's rewrite after a load is skipped (the disk may be full). */
  let readingBack = false;
  /** Length of the datafile's complete lines: a failed append is cut back to it. */
  let size = 0;
  const persistence = (ds as unknown as { persistence: NedbPersistence }).persistence;
  persistence.persistNewStateAsync = async (docs: unknown[]) => {
    let lines = '';
    for (const d of docs) lines += `${datafileLine(d)}\n`;
    if (!lines) return;
    if (fd === undefined) {
      fd = openSync(filename, 'a', 0o644);
      size = fstatSync(fd).size;
    }
    const buf = Buffer.from(lines, 'utf8');
    try {
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off);
      size += buf.length;
    } catch (err) {
      // a full disk can take half a line: the next append would glue a good line to it and
      // the reload would drop both, so the torn part goes (truncating frees, never needs, space)
      try {
        ftruncateSync(fd, size);
      } catch {
        // the error thrown below says what went wrong
      }
      // NeDB changed its memory before this append: memory now holds what the file does not
      onFailedAppend();
      throw err;
    }
  };
  // Compaction as NeDB does it (every live document, then the index definitions, written to
  // a temporary file that replaces the datafile), with the same line format, but
  // serialized by slices: a large collection no longer holds the event loop for the whole
  // rewrite, so answers keep flowing (operations on this collection wait, as with NeDB).
  persistence.persistCachedDatabaseAsync = async () => {
    if (readingBack) return;
    const docs = ds.getAllData();
    const lines: string[] = [];
    for (let i = 0; i < docs.length; i++) {
      if (i > 0 && i % COMPACTION_SLICE === 0) await nextTurn();
      lines.push(datafileLine(docs[i]));
    }
    const indexes = (ds as unknown as { indexes: Record<string, { fieldName: unknown; unique: boolean; sparse: boolean }> }).indexes;
    for (const [name, index] of Object.entries(indexes)) {
      if (name !== '_id') lines.push(datafileLine({ $$indexCreated: { fieldName: index.fieldName, unique: index.unique, sparse: index.sparse } }));
    }
    await nedbStorage.crashSafeWriteFileLinesAsync(filename, lines, persistence.modes);
    ds.emit('compaction.done');
  };
  const drop = () => {
    if (fd !== undefined) closeSync(fd);
    fd = undefined;
  };
  ds.on('compaction.done', drop);
  const readBack = async () => {
    // NeDB forgets TTL settings when it loads a datafile (see ensureIndex)
    const ttl = { ...(ds as unknown as { ttlIndexes: Record<string, number> }).ttlIndexes };
    readingBack = true;
    try {
      await ds.loadDatabaseAsync();
    } finally {
      readingBack = false;
      Object.assign((ds as unknown as { ttlIndexes: Record<string, number> }).ttlIndexes, ttl);
    }
  };
  return { close: drop, readBack };
}

interface NedbPersistence {
  persistNewStateAsync(docs: unknown[]): Promise<void>;
  persistCachedDatabaseAsync(): Promise<void>;
  modes: { fileMode: number; dirMode: number };
}

const nedbStorage = requireCjs('@seald-io/nedb/lib/storage.js') as {
  crashSafeWriteFileLinesAsync(filename: string, lines: string[], modes: NedbPersistence['modes']): Promise<void>;
};

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * NeDB's own update engine, to build an upserted document in memory before inserting it
 * in one write. Not in NeDB's typings, but a published file of the package.
 */
const nedbModel = requireCjs('@seald-io/nedb/lib/model.js') as {
  modify(doc: NedbDoc, update: NedbDoc): NedbDoc;
};

/** Directories this process holds the lock of, to tell "open twice here" from a stale lock left by an earlier process with our PID. */
const lockedDirs = new Set<string>();

export class EmbeddedStore implements Store {
  readonly engine = 'embedded' as const;
  private readonly collections = new Map<string, EmbeddedCollection<Doc>>();
  /** Our own timer rather than NeDB's autocompaction: unref'ed, it never keeps a process alive. */
  private readonly compactionTimer: NodeJS.Timeout;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  private constructor(
    private readonly dataDir: string,
    private readonly lockPath: string,
    private readonly log?: Logger,
  ) {
    this.compactionTimer = setInterval(() => void this.compact(), AUTOCOMPACTION_INTERVAL_MS);
    this.compactionTimer.unref();
    this.sweepTimer = setInterval(() => void this.sweep(), TTL_SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /** Creates the data directory if needed and locks it for this process; fails if another live process holds it. */
  static async open(dataDir: string, log?: Logger): Promise<EmbeddedStore> {
    await mkdir(dataDir, { recursive: true });
    const dir = await realpath(dataDir);
    const lockPath = await acquireLock(dir, log);
    log?.info({ dataDir: dir }, 'embedded store opened');
    return new EmbeddedStore(dir, lockPath, log);
  }

  collection<T extends Doc>(name: string): Collection<T> {
    if (this.closed) throw new Error('embedded store is closed');
    let collection = this.collections.get(name);
    if (!collection) {
      if (!COLLECTION_NAME.test(name)) throw new Error(`invalid collection name ${JSON.stringify(name)}`);
      collection = new EmbeddedCollection<Doc>(name, path.join(this.dataDir, `${name}.db`), this.log);
      this.collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('embedded store is closed');
    await access(this.dataDir, fsConstants.W_OK);
  }

  /** Waits for pending writes, compacts (and so fsyncs) every datafile, then releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.compactionTimer);
    clearInterval(this.sweepTimer);
    try {
      await Promise.all([...this.collections.values()].map((c) => c.shutdown()));
    } finally {
      this.collections.clear();
      await releaseLock(this.dataDir, this.lockPath);
      this.log?.info({ dataDir: this.dataDir }, 'embedded store closed');
    }
  }

  /** Drops expired documents and compacts every datafile (the timer does it every minute). */
  async compact(): Promise<void> {
    for (const collection of this.collections.values()) {
      try {
        const started = Date.now();
        await collection.compact();
        const ms = Date.now() - started;
        if (ms > 500) this.log?.warn({ collection: collection.name, ms }, 'slow compaction of the embedded store');
      } catch (err) {
        this.log?.error({ err, collection: collection.name }, 'embedded store compaction failed');
      }
    }
  }

  /** Drops expired documents (TTL indexes) of every collection (the timer does it every 10 s). */
  async sweep(): Promise<void> {
    for (const collection of this.collections.values()) {
      try {
        await collection.sweepExpired();
      } catch (err) {
        this.log?.error({ err, collection: collection.name }, 'embedded store TTL sweep failed');
      }
    }
  }
}

class EmbeddedCollection<T extends Doc> implements Collection<T> {
  private readonly datastore: NedbDatastore;
  /** Settles when the datafile is loaded; every operation awaits it (NeDB would queue forever after a failed load). */
  private readonly loaded: Promise<void>;
  private readonly writes = new SerialQueue();
  private readonly appender: { close(): void; readBack(): Promise<void> };
  private closed = false;
  /**
   * A write failed after NeDB had applied it in memory (disk full, read-only): memory holds
   * a change the client was refused. The next operation reads the datafile back first, so
   * nothing refused shows up later (a message answered 503 delivered after all).
   */
  private diverged = false;

  constructor(
    readonly name: string,
    private readonly filename: string,
    log?: Logger,
  ) {
    this.datastore = new Datastore({
      filename,
      autoload: true,
      // Without onload NeDB rethrows a load error where nobody can catch it.
      onload: (err: Error | null) => {
        if (err) log?.error({ err, collection: name, filename }, 'cannot load embedded collection');
      },
    });
    this.loaded = (this.datastore.autoloadPromise ?? Promise.resolve()).catch((err: unknown) => {
      throw new Error(`embedded store: cannot load collection ${name} from ${filename}: ${messageOf(err)}`, { cause: err });
    });
    this.loaded.catch(() => undefined); // reported to each caller, not as an unhandled rejection
    this.appender = installFastPersistence(this.datastore, filename, () => {
      this.diverged = true;
    });
  }

  insertOne(doc: T): Promise<void> {
    return this.write(async () => {
      assertStringId(doc);
      await this.datastore.insertAsync(doc);
    });
  }

  insertMany(docs: readonly T[]): Promise<void> {
    return this.write(async () => {
      docs.forEach(assertStringId);
      if (docs.length > 0) await this.datastore.insertAsync([...docs]);
    });
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.read(async () => (await this.datastore.findOneAsync(toNedbQuery(filter))) as T | null);
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    return this.read(async () => {
      let cursor = this.datastore.findAsync(toNedbQuery(filter));
      if (options.sort) cursor = cursor.sort(options.sort);
      if (options.skip) cursor = cursor.skip(options.skip);
      if (options.limit) cursor = cursor.limit(options.limit);
      return (await cursor) as unknown as T[];
    });
  }

  count(filter: Filter): Promise<number> {
    return this.read(async () => (await this.datastore.countAsync(toNedbQuery(filter))) as unknown as number);
  }

  updateOne(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.write(async () => {
      const parts = splitUpdate(update);
      const before = await this.findOneNow(filter);
      if (!before) {
        if (!options.upsert) return { matched: 0, modified: 0 };
        const inserted = await this.insertUpserted(filter, update);
        return { matched: 0, modified: 0, upsertedId: inserted._id };
      }
      const after = await this.applyToOne(before, parts.onMatch);
      return { matched: 1, modified: isDeepStrictEqual(before, after) ? 0 : 1 };
    });
  }

  updateMany(filter: Filter, update: Update): Promise<UpdateResult> {
    return this.write(async () => {
      const parts = splitUpdate(update);
      const befores = (await this.datastore.findAsync(toNedbQuery(filter))) as unknown as T[];
      if (befores.length === 0 || !parts.onMatch) return { matched: befores.length, modified: 0 };
      const { affectedDocuments } = await this.datastore.updateAsync(
        { _id: { $in: befores.map((d) => d._id) } },
        parts.onMatch,
        { multi: true, returnUpdatedDocs: true },
      );
      const afterById = new Map(((affectedDocuments ?? []) as unknown as T[]).map((d) => [d._id, d]));
      const modified = befores.filter((b) => !isDeepStrictEqual(b, afterById.get(b._id))).length;
      return { matched: befores.length, modified };
    });
  }

  replaceOne(filter: Filter, doc: T, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.write(async () => {
      const { _id: replacementId, ...replacement } = doc;
      if (Object.keys(replacement).some((k) => k.startsWith('$'))) {
        throw new Error('replaceOne: the replacement document must not contain update operators');
      }
      const before = await this.findOneNow(filter);
      if (!before) {
        if (!options.upsert) return { matched: 0, modified: 0 };
        // Same _id choice as MongoDB: the filter's, else the replacement's, else a generated one.
        const id = stringIdOf(filter) ?? replacementId;
        const inserted = (await this.datastore.insertAsync(id === undefined ? replacement : { ...replacement, _id: id })) as T;
        return { matched: 0, modified: 0, upsertedId: inserted._id };
      }
      // A replacement without _id: NeDB keeps the matched document's _id.
      const after = await this.applyToOne(before, replacement);
      return { matched: 1, modified: isDeepStrictEqual(before, after) ? 0 : 1 };
    });
  }

  findOneAndUpdate(filter: Filter, update: Update, options: FindOneAndUpdateOptions): Promise<T | null> {
    return this.write(async () => {
      const parts = splitUpdate(update);
      const before = await this.findOneNow(filter);
      if (!before) {
        if (!options.upsert) return null;
        const inserted = await this.insertUpserted(filter, update);
        return options.returnDocument === 'after' ? inserted : null;
      }
      const after = await this.applyToOne(before, parts.onMatch);
      return options.returnDocument === 'after' ? after : before;
    });
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.write(() => this.datastore.removeAsync(toNedbQuery(filter), { multi: false }));
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.write(() => this.datastore.removeAsync(toNedbQuery(filter), { multi: true }));
  }

  ensureIndex(spec: IndexSpec): Promise<void> {
    return this.write(async () => {
      const fields = Object.keys(spec.fields);
      const [firstField] = fields;
      if (firstField === undefined) throw new Error(`ensureIndex on ${this.name}: no field given`);
      if (spec.expireAfterSeconds !== undefined) {
        if (fields.length !== 1) throw new Error(`ensureIndex on ${this.name}: expireAfterSeconds needs exactly one field`);
        // NeDB's expiry reads doc[field], so a dotted path would silently never expire.
        if (firstField.includes('.')) {
          throw new Error(`ensureIndex on ${this.name}: the embedded engine only expires top-level Date fields, not ${firstField}`);
        }
      }
      await this.datastore.ensureIndexAsync({
        fieldName: fields.length === 1 ? firstField : fields,
        unique: spec.unique ?? false,
        sparse: spec.sparse ?? false,
        ...(spec.expireAfterSeconds !== undefined ? { expireAfterSeconds: spec.expireAfterSeconds } : {}),
      });
      if (spec.expireAfterSeconds !== undefined) {
        // NeDB skips an index that already exists (as after a reload) without arming its TTL: arm it here.
        (this.datastore as unknown as { ttlIndexes: Record<string, number> }).ttlIndexes[firstField] = spec.expireAfterSeconds;
      }
    });
  }

  /** Drops documents past their TTL, rewrites the datafile without superseded lines and fsyncs it. */
  async compact(): Promise<void> {
    if (!(await this.usable())) return;
    // never write refused changes to the file (see diverged)
    await this.writes.run(() => this.readBack());
    await this.sweepExpired();
    await this.datastore.compactDatafileAsync();
  }

  /**
   * Removes the documents past their TTL, a chunk per write with a turn of the event loop
   * in between: a minute of ended subscriptions under load is tens of thousands of them.
   */
  async sweepExpired(): Promise<void> {
    if (!(await this.usable())) return;
    const ttl = (this.datastore as unknown as { ttlIndexes: Record<string, number> }).ttlIndexes;
    for (const [field, seconds] of Object.entries(ttl)) {
      for (;;) {
        const expired = { [field]: { $lt: new Date(Date.now() - seconds * 1000) } };
        const ids = (await this.datastore.findAsync(expired, { _id: 1 }).limit(TTL_SWEEP_CHUNK)).map((d) => (d as { _id: unknown })._id);
        if (ids.length === 0) break;
        await this.write(() => this.datastore.removeAsync({ _id: { $in: ids } }, { multi: true }));
        if (ids.length < TTL_SWEEP_CHUNK || this.closed) break;
        await nextTurn();
      }
    }
  }

  /** Loaded without error and not shut down: maintenance (sweep, compaction) may run. */
  private async usable(): Promise<boolean> {
    const loadedOk = await this.loaded.then(() => true, () => false);
    return loadedOk && !this.closed;
  }

  private async readBack(): Promise<void> {
    if (!this.diverged) return;
    try {
      await this.appender.readBack();
      this.diverged = false;
    } catch (err) {
      throw toPortError(err, this.name);
    }
  }

  /** Lets queued writes finish, compacts once more, then refuses further use. */
  async shutdown(): Promise<void> {
    await this.writes.run(async () => undefined);
    await this.compact();
    this.closed = true;
    this.appender.close();
  }

  /**
   * Every write goes through one queue per collection, so a compound operation (read,
   * then write what it read) never interleaves with another write: this is what makes
   * findOneAndUpdate atomic within the process, and the lock makes the process the only one.
   */
  private write<R>(task: () => Promise<R>): Promise<R> {
    return this.writes.run(() => this.run(task, true));
  }

  private read<R>(task: () => Promise<R>): Promise<R> {
    return this.run(task, false);
  }

  private async run<R>(task: () => Promise<R>, inWriteQueue: boolean): Promise<R> {
    if (this.closed) throw new Error(`embedded store is closed (collection ${this.name})`);
    await this.loaded;
    if (this.diverged) {
      // in the write queue, so that no compound write sees memory change under it
      if (inWriteQueue) await this.readBack();
      else await this.writes.run(() => this.readBack());
    }
    try {
      return await task();
    } catch (err) {
      throw toPortError(err, this.name);
    }
  }

  private async findOneNow(filter: Filter): Promise<T | null> {
    return (await this.datastore.findOneAsync(toNedbQuery(filter))) as T | null;
  }

  /** Applies NeDB modifiers (or a replacement) to one document known to exist; returns it as stored. */
  private async applyToOne(before: T, change: NedbDoc | undefined): Promise<T> {
    if (!change) return before; // e.g. only $setOnInsert: nothing to do on a match
    const { affectedDocuments } = await this.datastore.updateAsync({ _id: before._id }, change, { returnUpdatedDocs: true });
    if (!affectedDocuments) throw new Error(`embedded store: ${this.name}/${before._id} vanished during an update`);
    return affectedDocuments as unknown as T;
  }

  /** The MongoDB upsert: the filter's equality fields, then the update with $setOnInsert, inserted in one write. */
  private async insertUpserted(filter: Filter, update: Update): Promise<T> {
    const { $setOnInsert: { _id: insertId, ...setOnInsert } = {}, ...onMatch } = update;
    const seed = equalityFieldsOf(filter);
    if (insertId !== undefined) {
      if (seed._id !== undefined && seed._id !== insertId) throw new Error('upsert: $setOnInsert._id differs from the filter _id');
      seed._id = insertId;
    }
    const onInsert: NedbDoc = { ...onMatch };
    if (Object.keys(setOnInsert).length > 0) {
      const clash = Object.keys(setOnInsert).find((k) => onMatch.$set && k in onMatch.$set);
      if (clash) throw new Error(`upsert: ${clash} is in both $set and $setOnInsert`);
      onInsert.$set = { ...onMatch.$set, ...setOnInsert };
    }
    const doc = Object.keys(onInsert).length > 0 ? nedbModel.modify(seed, onInsert) : seed;
    // With no _id so far, NeDB generates one (a random 16-character string).
    return (await this.datastore.insertAsync(doc)) as T;
  }
}

/** A promise chain: tasks run one at a time, in call order; a failed task does not stop the next. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<R>(task: () => Promise<R>): Promise<R> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

// ---------------------------------------------------------------- filters

const COMPARISONS = new Set(['$gt', '$gte', '$lt', '$lte']);

/**
 * Turns a port filter into a NeDB query with MongoDB's meaning. Plain equalities stay
 * top-level so NeDB can answer them from an index (`_id` always has one).
 */
function toNedbQuery(filter: Filter): NedbDoc {
  const query: NedbDoc = {};
  const clauses: NedbDoc[] = [];
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$or' || key === '$and') {
      if (!Array.isArray(condition) || condition.length === 0) throw new Error(`${key} needs a non-empty array of filters`);
      clauses.push({ [key]: condition.map((f) => toNedbQuery(f as Filter)) });
    } else if (key.startsWith('$')) {
      throw new Error(`unsupported filter operator ${key}`);
    } else if (isOperatorObject(condition)) {
      for (const [op, operand] of Object.entries(condition)) clauses.push(fieldCondition(key, op, operand));
    } else if (condition === null || condition === undefined) {
      clauses.push(nullOrMissing(key));
    } else {
      query[key] = condition;
    }
  }
  if (clauses.length > 0) query.$and = clauses;
  return query;
}

function fieldCondition(field: string, op: string, operand: unknown): NedbDoc {
  if (op === '$eq') return equals(field, operand);
  // MongoDB's $ne and $nin are "not $eq" / "not $in": on an array, no element may match.
  if (op === '$ne') return { $not: equals(field, operand) };
  if (op === '$in') return inList(field, operand, op);
  if (op === '$nin') return { $not: inList(field, operand, op) };
  if (op === '$exists') return { [field]: { $exists: Boolean(operand) } };
  if (COMPARISONS.has(op)) return { [field]: { [op]: operand } };
  throw new Error(`unsupported filter operator ${op} (on ${field})`);
}

/** MongoDB's equality: null also matches a missing field. */
function equals(field: string, value: unknown): NedbDoc {
  return value === null || value === undefined ? nullOrMissing(field) : { [field]: value };
}

function inList(field: string, values: unknown, op: string): NedbDoc {
  if (!Array.isArray(values)) throw new Error(`${op} on ${field} needs an array`);
  if (!values.some((v) => v === null)) return { [field]: { $in: values } };
  return { $or: [{ [field]: { $in: values.filter((v) => v !== null) } }, nullOrMissing(field)] };
}

function nullOrMissing(field: string): NedbDoc {
  return { $or: [{ [field]: null }, { [field]: { $exists: false } }] };
}

/** `{ $gt: 1 }` is an operator object; `{ a: 1 }` is a sub-document to compare whole; mixing both is an error. */
function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  const operators = keys.filter((k) => k.startsWith('$')).length;
  if (operators > 0 && operators < keys.length) throw new Error(`filter mixes operators and fields: ${JSON.stringify(value)}`);
  return operators > 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !(value instanceof RegExp);
}

/** The fields MongoDB copies from a filter into an upserted document: equalities, top level or under $and. */
function equalityFieldsOf(filter: Filter, into: NedbDoc = {}): NedbDoc {
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$and' && Array.isArray(condition)) {
      for (const sub of condition) equalityFieldsOf(sub as Filter, into);
    } else if (key.startsWith('$')) {
      continue; // $or and the like say nothing definite about the new document
    } else if (isOperatorObject(condition)) {
      if ('$eq' in condition) setPath(into, key, condition.$eq);
    } else {
      setPath(into, key, condition);
    }
  }
  return into;
}

function setPath(target: NedbDoc, dottedPath: string, value: unknown): void {
  const parts = dottedPath.split('.');
  const last = parts.pop() as string;
  let node = target;
  for (const part of parts) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as NedbDoc;
  }
  node[last] = value;
}

function stringIdOf(filter: Filter): string | undefined {
  const id = filter._id;
  if (typeof id === 'string') return id;
  if (isPlainObject(id) && typeof id.$eq === 'string') return id.$eq;
  return undefined;
}

// ---------------------------------------------------------------- updates

const UPDATE_OPERATORS = new Set(['$set', '$unset', '$inc', '$push', '$setOnInsert']);

/** Checks an update against the port and returns what applies to a matched document (undefined: nothing). */
function splitUpdate(update: Update): { onMatch: NedbDoc | undefined } {
  const entries = Object.entries(update);
  if (entries.length === 0) throw new Error('update needs at least one operator ($set, $unset, $inc, $push, $setOnInsert)');
  for (const [op, fields] of entries) {
    if (!UPDATE_OPERATORS.has(op)) {
      throw new Error(`unsupported update operator ${op}: updates take operators only (use replaceOne to replace a document)`);
    }
    if (!isPlainObject(fields)) throw new Error(`${op} needs an object of fields`);
  }
  const { $setOnInsert: _onInsertOnly, ...onMatch } = update;
  return { onMatch: Object.keys(onMatch).length > 0 ? (onMatch as NedbDoc) : undefined };
}

// ---------------------------------------------------------------- errors and checks

function toPortError(err: unknown, collection: string): unknown {
  if (typeof err === 'object' && err !== null && (err as { errorType?: unknown }).errorType === 'uniqueViolated') {
    return new DuplicateKeyError(`duplicate key in ${collection}: ${messageOf(err)}`, collection);
  }
  return err;
}

function assertStringId(doc: Doc): void {
  if (doc._id !== undefined && typeof doc._id !== 'string') throw new TypeError(`_id must be a string, got ${typeof doc._id}`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---------------------------------------------------------------- the directory lock

/**
 * Takes `<dir>/LOCK` (created with 'wx', holding our PID). A lock whose PID is alive
 * means another process has the store open: fail. A dead PID is a stale lock left by a
 * crash: take it over. The check-then-take-over is not atomic across processes; two
 * processes starting in the same instant on a stale lock is the one race left.
 */
async function acquireLock(dir: string, log?: Logger): Promise<string> {
  const lockPath = path.join(dir, LOCK_FILE_NAME);
  if (lockedDirs.has(dir)) throw new Error(lockHeldMessage(dir, lockPath, process.pid));
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const handle = await openFile(lockPath, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      lockedDirs.add(dir);
      return lockPath;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readLockHolder(lockPath);
    if (holder !== undefined && isAlive(holder)) throw new Error(lockHeldMessage(dir, lockPath, holder));
    log?.warn({ lockPath, stalePid: holder ?? null }, 'taking over a stale embedded store lock');
    await rm(lockPath, { force: true });
  }
  throw new Error(`embedded store ${dir}: could not take the lock ${lockPath}, another process keeps taking it`);
}

/** The PID in the lock file; undefined if there is none. An empty file may be a lock being written right now: look again shortly. */
async function readLockHolder(lockPath: string): Promise<number | undefined> {
  for (let look = 0; look < 3; look += 1) {
    let text: string;
    try {
      text = await readFile(lockPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const pid = Number.parseInt(text.trim(), 10);
    if (Number.isInteger(pid) && pid > 0) return pid;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  // Our own PID here is not us (we checked lockedDirs): an earlier process had our PID, as in a restarted container.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

function lockHeldMessage(dir: string, lockPath: string, pid: number): string {
  const holder = pid === process.pid ? `this process (pid ${pid}) already has it open` : `process ${pid} has it open`;
  return (
    `embedded store ${dir} is locked: ${holder} (lock file ${lockPath}). ` +
    'Only one process may open the embedded store; a second process (such as the provisioning CLI) ' +
    'must not open it but talk to the running server instead.'
  );
}

async function releaseLock(dir: string, lockPath: string): Promise<void> {
  lockedDirs.delete(dir);
  const holder = await readLockHolder(lockPath).catch(() => undefined);
  if (holder === process.pid) await rm(lockPath, { force: true });
}
