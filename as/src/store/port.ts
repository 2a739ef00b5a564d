/**
 * The persistence port every service uses. It is a deliberately small subset of
 * MongoDB's collection API so that the embedded engine (SQLite) and MongoDB give the
 * same query and update semantics; nothing outside as/src/store imports an engine.
 *
 * Rules both engines honour (the contract tests in test/contract check them):
 * - every document has a string `_id`; inserting an existing `_id` throws DuplicateKeyError,
 *   and so does any write that breaks a unique index;
 * - filters: equality on (dotted) fields, $eq $ne $gt $gte $lt $lte $in $nin $exists, $or;
 * - updates: $set $unset $inc $push $setOnInsert (no replacement documents through update*);
 * - findOneAndUpdate is atomic: two instances racing on one store never both see the same
 *   "before" state (this is what leases, claims and optimistic ETag writes rely on);
 * - Date values round-trip as Date; expireAfterSeconds indexes remove documents whose
 *   indexed Date field is older than the limit (eventually: a minute or so on MongoDB).
 */

export type Doc = { _id: string } & Record<string, unknown>;

/** A MongoDB-style filter restricted to the operators listed above. */
export type Filter = Record<string, unknown>;

export interface Update {
  $set?: Record<string, unknown>;
  $unset?: Record<string, true | 1 | ''>;
  $inc?: Record<string, number>;
  $push?: Record<string, unknown>;
  $setOnInsert?: Record<string, unknown>;
}

export type SortSpec = Record<string, 1 | -1>;

export interface FindOptions {
  sort?: SortSpec;
  skip?: number;
  limit?: number;
}

export interface UpdateResult {
  matched: number;
  modified: number;
  /** `_id` of the document an upsert inserted, when it inserted one. */
  upsertedId?: string;
}

export interface FindOneAndUpdateOptions {
  upsert?: boolean;
  /** Which version to return: the document as it was, or as it is after the update. */
  returnDocument: 'before' | 'after';
}

export interface IndexSpec {
  fields: Record<string, 1 | -1>;
  unique?: boolean;
  /** Only on a single Date field: documents expire that long after that date. */
  expireAfterSeconds?: number;
  /** Documents without the field stay out of the index (it then costs them nothing on writes). */
  sparse?: boolean;
  /**
   * The (single) field may hold an array, matched by its elements. MongoDB finds that out by
   * itself; the embedded engine keeps such an index in a side table, and refuses arrays in
   * the fields of other indexes.
   */
  multikey?: boolean;
}

export interface Collection<T extends Doc> {
  readonly name: string;
  insertOne(doc: T): Promise<void>;
  insertMany(docs: readonly T[]): Promise<void>;
  findOne(filter: Filter): Promise<T | null>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  count(filter: Filter): Promise<number>;
  updateOne(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<UpdateResult>;
  updateMany(filter: Filter, update: Update): Promise<UpdateResult>;
  /** Replaces the whole document matching the filter (keeps `_id`). */
  replaceOne(filter: Filter, doc: T, options?: { upsert?: boolean }): Promise<UpdateResult>;
  findOneAndUpdate(filter: Filter, update: Update, options: FindOneAndUpdateOptions): Promise<T | null>;
  deleteOne(filter: Filter): Promise<number>;
  deleteMany(filter: Filter): Promise<number>;
  ensureIndex(spec: IndexSpec): Promise<void>;
}

export interface Store {
  /** Which engine serves this store, for logs and the health endpoint. */
  readonly engine: 'embedded' | 'mongodb';
  collection<T extends Doc>(name: string): Collection<T>;
  /** Resolves when the store can serve requests; rejects with the reason otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A write broke a unique constraint (duplicate `_id` or unique index). */
export class DuplicateKeyError extends Error {
  constructor(
    message: string,
    readonly collection: string,
  ) {
    super(message);
    this.name = 'DuplicateKeyError';
  }
}
