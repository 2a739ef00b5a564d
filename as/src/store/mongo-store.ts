/**
 * The MongoDB engine: the port served by the official driver. Port filters and updates are
 * MongoDB's own, so they pass through unchanged; this file only keeps `_id` a string
 * (upserts and inserts without one get an ObjectId's hex string, not an ObjectId) and
 * turns duplicate-key errors (code 11000) into DuplicateKeyError.
 */
import {
  MongoClient,
  ObjectId,
  type Collection as MongoCollection,
  type CreateIndexesOptions,
  type Db,
  type Document,
  type Filter as MongoFilter,
  type UpdateFilter,
} from 'mongodb';
import type { Logger } from '../log/logger.js';
import { stringIdOf } from './document-update.js';
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

const DEFAULT_DB_NAME = 'ims_as';
/** Fail fast at startup rather than hang for the driver's default 30 s when no server answers. */
const SERVER_SELECTION_TIMEOUT_MS = 5_000;
const DUPLICATE_KEY_CODE = 11000;
/** Server error "would modify the immutable field '_id'". */
const IMMUTABLE_FIELD_CODE = 66;

export interface MongoConnectOptions {
  serverSelectionTimeoutMS?: number;
}

export class MongoStore implements Store {
  readonly engine = 'mongodb' as const;

  private constructor(
    private readonly client: MongoClient,
    private readonly db: Db,
    private readonly log?: Logger,
  ) {}

  /** Connects and pings; the database is the URI's path (mongodb://host/dbname), else `ims_as`. */
  static async connect(uri: string, log?: Logger, options: MongoConnectOptions = {}): Promise<MongoStore> {
    const where = redactCredentials(uri);
    let client: MongoClient | undefined;
    try {
      client = new MongoClient(uri, {
        serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? SERVER_SELECTION_TIMEOUT_MS,
      });
      await client.connect();
      const db = client.db(dbNameFromUri(uri));
      await db.command({ ping: 1 });
      log?.info({ uri: where, db: db.databaseName }, 'connected to MongoDB');
      return new MongoStore(client, db, log);
    } catch (err) {
      await client?.close().catch(() => undefined);
      throw new Error(`cannot connect to MongoDB at ${where} (MONGODB_URI): ${messageOf(err)}`, { cause: err });
    }
  }

  collection<T extends Doc>(name: string): Collection<T> {
    return new MongoStoreCollection<T>(this.db.collection<Document>(name));
  }

  async ping(): Promise<void> {
    await this.db.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.client.close();
    this.log?.info({ db: this.db.databaseName }, 'MongoDB connection closed');
  }
}

class MongoStoreCollection<T extends Doc> implements Collection<T> {
  readonly name: string;

  constructor(private readonly coll: MongoCollection<Document>) {
    this.name = coll.collectionName;
  }

  insertOne(doc: T): Promise<void> {
    return this.run(async () => {
      await this.coll.insertOne(withStringId(doc));
    });
  }

  insertMany(docs: readonly T[]): Promise<void> {
    return this.run(async () => {
      if (docs.length > 0) await this.coll.insertMany(docs.map(withStringId));
    });
  }

  findOne(filter: Filter): Promise<T | null> {
    return this.run(async () => (await this.coll.findOne(asFilter(filter))) as T | null);
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    return this.run(async () => {
      let cursor = this.coll.find(asFilter(filter));
      if (options.sort) cursor = cursor.sort(options.sort);
      if (options.skip) cursor = cursor.skip(options.skip);
      if (options.limit) cursor = cursor.limit(options.limit);
      return (await cursor.toArray()) as unknown as T[];
    });
  }

  count(filter: Filter): Promise<number> {
    return this.run(() => this.coll.countDocuments(asFilter(filter)));
  }

  updateOne(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.run(async () => {
      const upsert = options.upsert ?? false;
      const result = await this.coll.updateOne(
        asFilter(filter),
        asUpdate(upsert ? withInsertId(filter, update) : update),
        { upsert },
      );
      return toUpdateResult(result.matchedCount, result.modifiedCount, result.upsertedId);
    });
  }

  updateMany(filter: Filter, update: Update): Promise<UpdateResult> {
    return this.run(async () => {
      const result = await this.coll.updateMany(asFilter(filter), asUpdate(update));
      return toUpdateResult(result.matchedCount, result.modifiedCount, result.upsertedId);
    });
  }

  replaceOne(filter: Filter, doc: T, options: { upsert?: boolean } = {}): Promise<UpdateResult> {
    return this.run(async () => {
      const { _id: replacementId, ...withoutId } = doc;
      const filterId = stringIdOf(filter);
      if (!options.upsert) {
        // Without _id the server keeps the matched document's.
        const result = await this.coll.replaceOne(asFilter(filter), withoutId);
        return toUpdateResult(result.matchedCount, result.modifiedCount, result.upsertedId);
      }
      // An upsert must carry the _id to insert: the filter's, else the replacement's, else a new one.
      const insertId = filterId ?? replacementId ?? new ObjectId().toHexString();
      try {
        const result = await this.coll.replaceOne(asFilter(filter), { ...withoutId, _id: insertId }, { upsert: true });
        return toUpdateResult(result.matchedCount, result.modifiedCount, result.upsertedId);
      } catch (err) {
        // It matched a document with another _id: replace that one and keep its _id, as without upsert.
        if (codeOf(err) !== IMMUTABLE_FIELD_CODE) throw err;
        const result = await this.coll.replaceOne(asFilter(filter), withoutId);
        return toUpdateResult(result.matchedCount, result.modifiedCount, result.upsertedId);
      }
    });
  }

  findOneAndUpdate(filter: Filter, update: Update, options: FindOneAndUpdateOptions): Promise<T | null> {
    return this.run(async () => {
      const upsert = options.upsert ?? false;
      const doc = await this.coll.findOneAndUpdate(
        asFilter(filter),
        asUpdate(upsert ? withInsertId(filter, update) : update),
        {
          upsert,
          returnDocument: options.returnDocument,
        },
      );
      return doc as T | null;
    });
  }

  deleteOne(filter: Filter): Promise<number> {
    return this.run(async () => (await this.coll.deleteOne(asFilter(filter))).deletedCount);
  }

  deleteMany(filter: Filter): Promise<number> {
    return this.run(async () => (await this.coll.deleteMany(asFilter(filter))).deletedCount);
  }

  ensureIndex(spec: IndexSpec): Promise<void> {
    return this.run(async () => {
      const options: CreateIndexesOptions = {};
      if (spec.unique !== undefined) options.unique = spec.unique;
      if (spec.expireAfterSeconds !== undefined) options.expireAfterSeconds = spec.expireAfterSeconds;
      if (spec.sparse !== undefined) options.sparse = spec.sparse;
      try {
        await this.coll.createIndex(spec.fields, options);
      } catch (err) {
        // an index made by an earlier version with other options is kept as it is, as the
        // embedded engine does (IndexOptionsConflict / IndexKeySpecsConflict)
        const code = (err as { code?: number }).code;
        if (code !== 85 && code !== 86) throw err;
      }
    });
  }

  private async run<R>(task: () => Promise<R>): Promise<R> {
    try {
      return await task();
    } catch (err) {
      if (isDuplicateKey(err))
        throw new DuplicateKeyError(`duplicate key in ${this.name}: ${messageOf(err)}`, this.name);
      throw err;
    }
  }
}

/**
 * On upsert without a string `_id` in the filter the server would insert an ObjectId:
 * give it a string one through $setOnInsert (unless the caller already chose one there).
 */
function withInsertId(filter: Filter, update: Update): Update {
  if (stringIdOf(filter) !== undefined || update.$setOnInsert?._id !== undefined) return update;
  return { ...update, $setOnInsert: { ...update.$setOnInsert, _id: new ObjectId().toHexString() } };
}

function withStringId(doc: Doc): Document {
  // The driver would add an ObjectId (and write it into the caller's object).
  return doc._id === undefined ? { ...doc, _id: new ObjectId().toHexString() } : doc;
}

function toUpdateResult(matched: number, modified: number, upsertedId: unknown): UpdateResult {
  const result: UpdateResult = { matched, modified };
  if (upsertedId !== null && upsertedId !== undefined) result.upsertedId = String(upsertedId);
  return result;
}

function asFilter(filter: Filter): MongoFilter<Document> {
  return filter as MongoFilter<Document>;
}

function asUpdate(update: Update): UpdateFilter<Document> {
  return update as UpdateFilter<Document>;
}

function isDuplicateKey(err: unknown): boolean {
  if (codeOf(err) === DUPLICATE_KEY_CODE) return true;
  // A bulk write (insertMany) reports per-document errors.
  const writeErrors = (err as { writeErrors?: unknown } | null)?.writeErrors;
  return Array.isArray(writeErrors) && writeErrors.some((e) => codeOf(e) === DUPLICATE_KEY_CODE);
}

function codeOf(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

/** The database named in the URI path (mongodb://user:pw@h1,h2/dbname?opts), else the default. */
function dbNameFromUri(uri: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(uri);
  const name = match?.[1] ? decodeURIComponent(match[1]) : '';
  return name || DEFAULT_DB_NAME;
}

/** For logs and errors: the URI without its password. */
function redactCredentials(uri: string): string {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/)[^@/]*@/, '$1***@');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
