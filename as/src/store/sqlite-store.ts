/**
 * The embedded engine: the port served by SQLite (better-sqlite3), one database file per
 * installation (`<dataDir>/store.sqlite`) in WAL mode, for installs without MongoDB. What is
 * stored lives on disk: the AS's heap holds only what a request reads.
 *
 * Transactions: every operation called in one turn of the event loop runs in one
 * transaction, committed before any of their promises settles (so a write that resolved is
 * committed). Each write runs in its own savepoint: a unique-key failure fails that write
 * only. A batch with a write starts with BEGIN IMMEDIATE, which takes the database's write
 * lock: findOneAndUpdate's read and write can never interleave with another process's, so
 * it is atomic across processes too. Several processes share the file. When another holds
 * the write lock, a batch does not wait for it inside SQLite (better-sqlite3 is synchronous:
 * that wait would hold this process's event loop, SIP decisions included); it is tried again
 * a moment later while the event loop goes on, for up to BUSY_TIMEOUT_MS before its
 * operations fail. Statements inside a transaction wait as SQLite does, which is why
 * transactions stay small (TTL sweeps go by 1,000 documents).
 *
 * Durability: synchronous=NORMAL in WAL mode. A committed transaction survives a crash or
 * kill -9 of the process (it is in the WAL, which SQLite replays); a power loss can lose the
 * last transactions, never tear one.
 *
 * Filters, sorts and indexes compile to SQL (sql-filter.ts, sqlite-schema.ts). Known
 * differences from MongoDB: a unique index lets any number of documents miss its fields (as a
 * sparse one does); a field of a plain index cannot hold an array (the write fails: declare
 * the index `multikey`); an existing index is kept when ensureIndex asks for other options
 * (its TTL is updated); insertMany with a duplicate inserts nothing; dotted paths do not
 * reach into arrays of sub-documents.
 */
import { access, constants as fsConstants, mkdir, realpath } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { REACTION_FAILURES } from '../util/contain.js';
import { decodeDocument, encodeDocument } from './document-json.js';
import { applyUpdate, checkUpdate, stringIdOf, upsertSeed } from './document-update.js';
import { importNedbDirectory } from './nedb-import.js';
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
import { compileFilter, compileSort, expiredRows, type FieldLayout, type SqlValue } from './sql-filter.js';
import {
  CREATE_META,
  META_TABLE,
  arraysIn,
  createDocsTable,
  docsTable,
  indexName,
  layoutOf,
  multikeyIndex,
  plainIndex,
  scalarGuards,
} from './sqlite-schema.js';

export const DATABASE_FILE = 'store.sqlite';
const BUSY_TIMEOUT_MS = 5_000;
/** Longest pause between two tries of a batch whose write lock another process holds. */
const LOCK_RETRY_MAX_MS = 8;
/** Expired documents (TTL indexes) are removed this often, a bounded chunk per transaction. */
const TTL_SWEEP_INTERVAL_MS = 10_000;
const TTL_SWEEP_CHUNK = 1000;
/** Prepared statements kept (filters of one shape share one). */
const STATEMENT_CACHE_SIZE = 500;
/** Collection names become table names: plain names only. */
const COLLECTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

type Db = Database.Database;
type Statement = Database.Statement;

interface Row {
  _id: string;
  doc: string;
}

/** What a collection knows of its table, reloaded when any process changes the schema. */
interface TableState {
  exists: boolean;
  specs: IndexSpec[];
  layout: FieldLayout;
}

interface Op {
  write: boolean;
  run(): unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** What a collection needs from the engine: run a task in the turn's transaction, statements, table state. */
interface Engine {
  run<R>(write: boolean, task: () => R): Promise<R>;
  statement(sql: string): Statement;
  exec(sql: string): void;
  table(coll: string): TableState;
  createTable(coll: string): void;
  forget(coll: string): void;
}

export class SqliteStore implements Store {
  readonly engine = 'embedded' as const;
  private readonly collections = new Map<string, SqliteCollection<Doc>>();
  private readonly tables = new Map<string, TableState>();
  private readonly statements = new Map<string, Statement>();
  private queue: Op[] = [];
  private flushScheduled = false;
  /** Since when the batch waiting in the queue has found the write lock taken (0: it has not). */
  private lockedSince = 0;
  private lockRetryMs = 0;
  private schemaVersion = -1;
  private closed = false;
  private readonly sweepTimer: NodeJS.Timeout;
  /** What the collections see of this store. */
  private readonly engineForCollections: Engine = {
    run: (write, task) => this.run(write, task),
    statement: (sql) => this.statement(sql),
    exec: (sql) => this.db.exec(sql),
    table: (coll) => this.table(coll),
    createTable: (coll) => this.createTable(coll),
    forget: (coll) => this.tables.delete(coll),
  };

  private constructor(
    private readonly db: Db,
    readonly dataDir: string,
    private readonly log?: Logger,
    private readonly metrics?: Metrics,
  ) {
    // sweep() logs its own failures per collection; the catch is for anything outside those
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.log?.error({ err }, 'embedded store TTL sweep failed'));
    }, TTL_SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  /**
   * Opens (creating if needed) the database of `dataDir`; any number of processes may have it
   * open. NeDB datafiles found there (an older version's store) are imported first.
   */
  static async open(dataDir: string, log?: Logger, metrics?: Metrics): Promise<SqliteStore> {
    await mkdir(dataDir, { recursive: true });
    const dir = await realpath(dataDir);
    const file = path.join(dir, DATABASE_FILE);
    const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(CREATE_META);
    } catch (err) {
      db.close();
      throw new Error(`embedded store: cannot open ${file}: ${messageOf(err)}`, { cause: err });
    }
    const store = new SqliteStore(db, dir, log, metrics);
    try {
      await importNedbDirectory(store, dir, log);
    } catch (err) {
      await store.close();
      throw err;
    }
    log?.info({ dataDir: dir, file }, 'embedded store opened');
    return store;
  }

  collection<T extends Doc>(name: string): Collection<T> {
    if (this.closed) throw new Error('embedded store is closed');
    let collection = this.collections.get(name);
    if (!collection) {
      if (!COLLECTION_NAME.test(name)) throw new Error(`invalid collection name ${JSON.stringify(name)}`);
      collection = new SqliteCollection<Doc>(name, this.engineForCollections);
      this.collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  /**
   * How SQLite answers `find(filter, options)` on a collection: EXPLAIN QUERY PLAN's lines
   * (`SEARCH ... USING INDEX ...` or `SCAN ...`). For tests and operators checking that a
   * query is served by an index.
   */
  explain(collection: string, filter: Filter, options: FindOptions = {}): Promise<string[]> {
    return (this.collection(collection) as unknown as SqliteCollection<Doc>).explain(filter, options);
  }

  async ping(): Promise<void> {
    await this.run(false, () => this.statement('SELECT 1').get());
    await access(this.dataDir, fsConstants.W_OK);
  }

  /** Runs what is queued, then closes the database (the last process to close checkpoints the WAL). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.flush();
    this.statements.clear();
    this.db.close();
    this.log?.info({ dataDir: this.dataDir }, 'embedded store closed');
  }

  /** Removes the documents past their TTL in the collections this process uses, a chunk per transaction. */
  async sweep(): Promise<void> {
    for (const name of this.collections.keys()) {
      try {
        for (;;) {
          const removed = await this.run(true, () => this.sweepChunk(name));
          if (removed < TTL_SWEEP_CHUNK || this.closed) break;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      } catch (err) {
        if (this.closed) return;
        // the next sweep tries again; nothing is lost meanwhile (reads already hide what is expired)
        this.metrics?.count(REACTION_FAILURES, { reaction: 'store_ttl_sweep' });
        this.log?.error({ err, collection: name }, 'embedded store TTL sweep failed');
      }
    }
  }

  private sweepChunk(name: string): number {
    const state = this.table(name);
    if (!state.exists) return 0;
    let removed = 0;
    for (const { field, seconds } of state.layout.ttl) {
      const sql = `DELETE FROM ${docsTable(name)} WHERE rowid IN (${expiredRows(docsTable(name), field)} LIMIT ${TTL_SWEEP_CHUNK})`;
      removed += this.statement(sql).run(Date.now() - seconds * 1000).changes;
    }
    return removed;
  }

  // ------------------------------------------------------------ the engine under the collections

  private run<R>(write: boolean, task: () => R): Promise<R> {
    if (this.closed) return Promise.reject(new Error('embedded store is closed'));
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ write, run: task, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private statement(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.clear();
      stmt = this.db.prepare(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  private table(coll: string): TableState {
    let state = this.tables.get(coll);
    if (!state) {
      const exists =
        this.statement("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(`c:${coll}`) !== undefined;
      const specs = (
        this.statement(`SELECT spec FROM ${META_TABLE} WHERE coll=? ORDER BY name`).pluck().all(coll) as string[]
      ).map((s) => JSON.parse(s) as IndexSpec);
      state = { exists, specs, layout: layoutOf(coll, specs) };
      this.tables.set(coll, state);
    }
    return state;
  }

  private createTable(coll: string): void {
    const state = this.table(coll);
    if (state.exists) return;
    this.db.exec(createDocsTable(coll));
    state.exists = true;
  }

  /** The turn's operations in one transaction; their promises settle after the commit. */
  private flush(): void {
    this.flushScheduled = false;
    const ops = this.queue;
    this.queue = [];
    if (ops.length === 0) return;
    const outcomes: Outcome[] = [];
    const write = ops.some((op) => op.write);
    let locked: boolean;
    try {
      locked = !write || this.takeWriteLock();
    } catch (err) {
      // (disk I/O and the like: nothing of the batch ran)
      this.tables.clear();
      for (const op of ops) op.reject(err);
      return;
    }
    if (!locked) {
      if (Date.now() - this.lockedSince < BUSY_TIMEOUT_MS) {
        // another process writes: try again in a moment, with what came meanwhile
        this.queue = ops.concat(this.queue);
        this.flushScheduled = true;
        this.lockRetryMs = Math.min(LOCK_RETRY_MAX_MS, this.lockRetryMs * 2 || 1);
        setTimeout(() => this.flush(), this.lockRetryMs);
        return;
      }
      this.lockedSince = 0;
      this.lockRetryMs = 0;
      const busy = new Error(`embedded store: the database stayed locked by another process for ${BUSY_TIMEOUT_MS} ms`);
      for (const op of ops) op.reject(busy);
      return;
    }
    this.lockedSince = 0;
    this.lockRetryMs = 0;
    try {
      if (!write) this.db.exec('BEGIN');
      try {
        this.noticeSchemaChanges();
        for (const op of ops) outcomes.push(op.write ? this.inSavepoint(op) : attempt(op));
        this.db.exec('COMMIT');
      } catch (err) {
        try {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
        } catch (rollbackErr) {
          this.log?.error({ err: rollbackErr }, 'embedded store: rollback failed');
        }
        throw err;
      }
    } catch (err) {
      // Nothing of the batch is committed: every operation of it fails.
      this.tables.clear();
      for (const op of ops) op.reject(err);
      return;
    }
    ops.forEach((op, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) op.resolve(outcome.value);
      else op.reject(outcome.error);
    });
  }

  /**
   * BEGIN IMMEDIATE without waiting in SQLite: false when another process holds the write
   * lock (the caller tries again later), true when this process has it now.
   */
  private takeWriteLock(): boolean {
    this.statement('PRAGMA busy_timeout = 0').get();
    try {
      this.db.exec('BEGIN IMMEDIATE');
      return true;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      if (this.lockedSince === 0) this.lockedSince = Date.now();
      return false;
    } finally {
      this.statement(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`).get();
    }
  }

  private inSavepoint(op: Op): Outcome {
    this.statement('SAVEPOINT op').run();
    const outcome = attempt(op);
    if (outcome.ok) {
      this.statement('RELEASE op').run();
      return outcome;
    }
    // Disk full, I/O errors and the like end the whole transaction: the batch fails.
    if (!this.db.inTransaction) throw outcome.error;
    this.statement('ROLLBACK TO op').run();
    this.statement('RELEASE op').run();
    this.tables.clear(); // a failed ensureIndex may have left a state that was rolled back
    return outcome;
  }

  /** Another process (or this one) changed tables or indexes: read their state again. */
  private noticeSchemaChanges(): void {
    const version = this.db.pragma('schema_version', { simple: true }) as number;
    if (version !== this.schemaVersion) {
      this.tables.clear();
      this.schemaVersion = version;
    }
  }
}

function attempt(op: Op): Outcome {
  try {
    return { ok: true, value: op.run() };
  } catch (error) {
    return { ok: false, error };
  }
}

class SqliteCollection<T extends Doc> implements Collection<T> {
  private readonly docs: string;

  constructor(
    readonly name: string,
    private readonly engine: Engine,
  ) {
    this.docs = docsTable(name);
  }

  insertOne(doc: T): Promise<void> {
    return this.write(() => this.insertRow(doc));
  }

  insertMany(docs: readonly T[]): Promise<void> {
    return this.write(() => docs.forEach((d) => this.insertRow(d)));
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.read(() => this.select(filter, { limit: 1 })[0] ?? null);
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    return this.read(() => this.select(filter, options));
  }

  count(filter: Filter): Promise<number> {
    return this.read(() => {
      const state = this.engine.table(this.name);
      if (!state.exists) return 0;
      if (Object.keys(filter).length === 0) return this.countAll(state.layout);
      const where = this.where(filter);
      return this.engine
        .statement(`SELECT count(*) FROM ${this.docs} WHERE ${where.sql}`)
        .pluck()
        .get(...where.params) as number;
    });
  }

  /**
   * Every document less the expired ones: SQLite counts a whole table from its smallest
   * index, and the expired ones from the TTL index, where a filtered count would visit
   * every row (a million CDRs: 15 ms rather than 150 ms of a blocked event loop).
   */
  private countAll(layout: FieldLayout): number {
    const all = `SELECT count(*) FROM ${this.docs}`;
    if (layout.ttl.length === 0) return this.engine.statement(all).pluck().get() as number;
    const expired = layout.ttl.map(({ field }) => expiredRows(this.docs, field)).join(' UNION ');
    const now = Date.now();
    const bounds = layout.ttl.map(({ seconds }) => now - seconds * 1000);
    return this.engine
      .statement(`SELECT (${all}) - (SELECT count(*) FROM (${expired}))`)
      .pluck()
      .get(...bounds) as number;
  }

  updateOne(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.write(() => {
      checkUpdate(update);
      const [row] = this.rows(filter, 1);
      if (!row) {
        if (!options.upsert) return { matched: 0, modified: 0 };
        return { matched: 0, modified: 0, upsertedId: this.insertUpserted(filter, update)._id };
      }
      return { matched: 1, modified: this.updateRow(row, update).modified ? 1 : 0 };
    });
  }

  updateMany(filter: Filter, update: Update): Promise<UpdateResult> {
    return this.write(() => {
      checkUpdate(update);
      const rows = this.rows(filter);
      const modified = rows.filter((row) => this.updateRow(row, update).modified).length;
      return { matched: rows.length, modified };
    });
  }

  replaceOne(filter: Filter, doc: T, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.write(() => {
      const { _id: replacementId, ...replacement } = doc;
      if (Object.keys(replacement).some((k) => k.startsWith('$'))) {
        throw new Error('replaceOne: the replacement document must not contain update operators');
      }
      const [row] = this.rows(filter, 1);
      if (!row) {
        if (!options.upsert) return { matched: 0, modified: 0 };
        // Same _id choice as MongoDB: the filter's, else the replacement's, else a generated one.
        const id = stringIdOf(filter) ?? replacementId ?? newId();
        this.insertRow({ _id: id, ...replacement } as T);
        return { matched: 0, modified: 0, upsertedId: id };
      }
      const text = encodeDocument({ _id: row._id, ...replacement });
      if (text === row.doc) return { matched: 1, modified: 0 };
      this.engine.statement(`UPDATE ${this.docs} SET doc=jsonb(?) WHERE _id=?`).run(text, row._id);
      return { matched: 1, modified: 1 };
    });
  }

  findOneAndUpdate(filter: Filter, update: Update, options: FindOneAndUpdateOptions): Promise<T | null> {
    return this.write(() => {
      checkUpdate(update);
      const [row] = this.rows(filter, 1);
      if (!row) {
        if (!options.upsert) return null;
        const inserted = this.insertUpserted(filter, update);
        return options.returnDocument === 'after' ? inserted : null;
      }
      const { after } = this.updateRow(row, update);
      return options.returnDocument === 'after' ? after : decodeDocument<T>(row.doc);
    });
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.write(() => {
      const [row] = this.rows(filter, 1, true);
      if (!row) return 0;
      return this.engine.statement(`DELETE FROM ${this.docs} WHERE _id=?`).run(row._id).changes;
    });
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.write(() => {
      if (!this.engine.table(this.name).exists) return 0;
      const where = this.where(filter, true);
      return this.engine.statement(`DELETE FROM ${this.docs} WHERE ${where.sql}`).run(...where.params).changes;
    });
  }

  ensureIndex(spec: IndexSpec): Promise<void> {
    return this.write(() => {
      const fields = Object.keys(spec.fields);
      const [first] = fields;
      if (first === undefined) throw new Error(`ensureIndex on ${this.name}: no field given`);
      if (spec.expireAfterSeconds !== undefined && fields.length !== 1) {
        throw new Error(`ensureIndex on ${this.name}: expireAfterSeconds needs exactly one field`);
      }
      if (spec.multikey && (fields.length !== 1 || first === '_id')) {
        throw new Error(`ensureIndex on ${this.name}: a multikey index takes exactly one field other than _id`);
      }
      this.engine.createTable(this.name);
      const name = indexName(spec);
      const existing = this.engine
        .statement(`SELECT spec FROM ${META_TABLE} WHERE coll=? AND name=?`)
        .pluck()
        .get(this.name, name) as string | undefined;
      if (existing !== undefined) {
        // Kept as it is, as MongoDB keeps an index asked again with other options; only its TTL follows the caller.
        const kept = JSON.parse(existing) as IndexSpec;
        if (Boolean(kept.multikey) !== Boolean(spec.multikey)) {
          throw new Error(`ensureIndex on ${this.name}: index ${name} exists ${kept.multikey ? '' : 'not '}multikey`);
        }
        if (kept.expireAfterSeconds === spec.expireAfterSeconds) return;
        this.saveSpec(name, {
          ...kept,
          ...(spec.expireAfterSeconds !== undefined ? { expireAfterSeconds: spec.expireAfterSeconds } : {}),
        });
        return;
      }
      if (spec.multikey) {
        const { create, backfill } = multikeyIndex(this.name, first);
        for (const sql of create) this.engine.exec(sql);
        this.engine.exec(backfill);
      } else {
        for (const field of fields.filter((f) => f !== '_id')) {
          const holder = this.engine.statement(arraysIn(this.name, field)).pluck().get() as string | undefined;
          if (holder !== undefined) {
            throw new Error(
              `ensureIndex on ${this.name}: document ${holder} holds an array in ${field}; declare the index multikey`,
            );
          }
          for (const sql of scalarGuards(this.name, field)) this.engine.exec(sql);
        }
        const ddl = plainIndex(this.name, spec);
        if (ddl) this.engine.exec(ddl);
      }
      this.saveSpec(name, spec);
    });
  }

  private saveSpec(name: string, spec: IndexSpec): void {
    this.engine
      .statement(`INSERT OR REPLACE INTO ${META_TABLE} (coll, name, spec) VALUES (?,?,?)`)
      .run(this.name, name, JSON.stringify(spec));
    this.engine.forget(this.name);
  }

  // ------------------------------------------------------------ inside the transaction

  private read<R>(task: () => R): Promise<R> {
    return this.engine.run(false, () => this.portErrors(task));
  }

  private write<R>(task: () => R): Promise<R> {
    return this.engine.run(true, () => this.portErrors(task));
  }

  private portErrors<R>(task: () => R): R {
    try {
      return task();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new DuplicateKeyError(`duplicate key in ${this.name}: ${messageOf(err)}`, this.name);
      }
      throw err;
    }
  }

  /** Expired documents (TTL) are gone for reads and updates; deletes still count them, as the sweep would remove them. */
  private where(filter: Filter, forDelete = false) {
    return compileFilter(filter, this.engine.table(this.name).layout, forDelete ? undefined : Date.now());
  }

  explain(filter: Filter, options: FindOptions): Promise<string[]> {
    return this.read(() => {
      if (!this.engine.table(this.name).exists) return [];
      const { sql, params } = this.selectSql(filter, options);
      return (this.engine.statement(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map(
        (r) => r.detail,
      );
    });
  }

  private select(filter: Filter, options: FindOptions): T[] {
    if (!this.engine.table(this.name).exists) return [];
    const { sql, params } = this.selectSql(filter, options);
    return (
      this.engine
        .statement(sql)
        .pluck()
        .all(...params) as string[]
    ).map((text) => decodeDocument<T>(text));
  }

  private selectSql(filter: Filter, options: FindOptions): { sql: string; params: SqlValue[] } {
    const where = this.where(filter);
    let sql = `SELECT json(doc) FROM ${this.docs} WHERE ${where.sql}${compileSort(options.sort)}`;
    const params = [...where.params];
    if (options.limit || options.skip) {
      sql += ' LIMIT ? OFFSET ?';
      params.push(options.limit || -1, options.skip ?? 0);
    }
    return { sql, params };
  }

  private rows(filter: Filter, limit?: number, forDelete = false): Row[] {
    if (!this.engine.table(this.name).exists) return [];
    const where = this.where(filter, forDelete);
    const sql = `SELECT _id, json(doc) AS doc FROM ${this.docs} WHERE ${where.sql}${limit ? ` LIMIT ${limit}` : ''}`;
    return this.engine.statement(sql).all(...where.params) as Row[];
  }

  private insertRow(doc: T): void {
    if (doc._id !== undefined && typeof doc._id !== 'string')
      throw new TypeError(`_id must be a string, got ${typeof doc._id}`);
    this.engine.createTable(this.name);
    const id = doc._id ?? newId();
    const text = encodeDocument(doc._id === undefined ? { ...doc, _id: id } : doc);
    this.engine.statement(`INSERT INTO ${this.docs} (_id, doc) VALUES (?,jsonb(?))`).run(id, text);
  }

  private updateRow(row: Row, update: Update): { after: T; modified: boolean } {
    const after = applyUpdate(decodeDocument<T>(row.doc), update, false);
    const text = encodeDocument(after);
    if (text === row.doc) return { after, modified: false };
    this.engine.statement(`UPDATE ${this.docs} SET doc=jsonb(?) WHERE _id=?`).run(text, row._id);
    return { after, modified: true };
  }

  /** The MongoDB upsert: the filter's equality fields, then the update with $setOnInsert, inserted in one write. */
  private insertUpserted(filter: Filter, update: Update): T {
    const doc = applyUpdate(upsertSeed(filter, update) as T, update, true);
    if (doc._id === undefined) (doc as Doc)._id = newId();
    this.insertRow(doc);
    return doc;
  }
}

/** A generated `_id`: 24 hex digits, like a MongoDB ObjectId's string. */
function newId(): string {
  return randomBytes(12).toString('hex');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
