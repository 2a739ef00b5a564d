/**
 * The upgrade from the NeDB store of earlier versions: on the first start over its data
 * directory, each `<collection>.db` datafile is read and its documents copied into the
 * SQLite store, then the datafile is renamed `<collection>.db.imported` (kept, never read
 * again). A crash half-way is harmless: a datafile not yet renamed is imported again on the
 * next start, replacing what the first attempt copied.
 *
 * NeDB's format, as its datafiles hold it: one JSON document per line, Dates as
 * `{"$$date":<ms>}`; a later line for an `_id` replaces the earlier one; `{"$$deleted":true,
 * "_id":..}` removes it; `{"$$indexCreated":{fieldName,unique,sparse,expireAfterSeconds}}`
 * and `{"$$indexRemoved":fieldName}` declare indexes (reported, not recreated: each service
 * declares its indexes at start, with the options SQLite needs). A line that does not parse (a write
 * torn by a crash) is skipped and counted.
 */
import { createReadStream } from 'node:fs';
import { readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log/logger.js';
import { decodeDocument } from './document-json.js';
import type { Doc, IndexSpec, Store } from './port.js';

export const IMPORTED_SUFFIX = '.imported';
const DATAFILE = /^([A-Za-z0-9_][A-Za-z0-9_.-]*)\.db$/;
/** Documents per transaction while importing. */
const CHUNK = 5000;
/** A progress line every this many documents. */
const PROGRESS_EVERY = 100_000;

export interface NedbDatafile {
  docs: Map<string, Doc>;
  indexes: IndexSpec[];
  /** Lines that did not parse (a torn last line after a crash, typically). */
  skippedLines: number;
}

/** Reads one NeDB datafile into its live documents and index declarations. */
export async function readNedbDatafile(file: string): Promise<NedbDatafile> {
  const docs = new Map<string, Doc>();
  const indexes = new Map<string, IndexSpec>();
  let skippedLines = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let entry: Record<string, unknown>;
    try {
      entry = decodeDocument<Record<string, unknown>>(line);
    } catch {
      skippedLines++;
      continue;
    }
    if (entry.$$indexCreated !== undefined) {
      const spec = indexSpecOf(entry.$$indexCreated);
      if (spec) indexes.set(String((entry.$$indexCreated as { fieldName: unknown }).fieldName), spec);
    } else if (entry.$$indexRemoved !== undefined) {
      indexes.delete(String(entry.$$indexRemoved));
    } else if (entry._id === undefined || entry._id === null) {
      skippedLines++;
    } else if (entry.$$deleted === true) {
      docs.delete(String(entry._id));
    } else {
      const id = String(entry._id);
      docs.set(id, { ...entry, _id: id });
    }
  }
  return { docs, indexes: [...indexes.values()], skippedLines };
}

function indexSpecOf(declared: unknown): IndexSpec | undefined {
  if (typeof declared !== 'object' || declared === null) return undefined;
  const { fieldName, unique, sparse, expireAfterSeconds } = declared as Record<string, unknown>;
  const names = Array.isArray(fieldName)
    ? fieldName.map(String)
    : typeof fieldName === 'string'
      ? fieldName.split(',')
      : [];
  if (names.length === 0 || names.includes('_id')) return undefined;
  const spec: IndexSpec = { fields: Object.fromEntries(names.map((n) => [n, 1 as const])) };
  if (unique === true) spec.unique = true;
  if (sparse === true) spec.sparse = true;
  if (typeof expireAfterSeconds === 'number') spec.expireAfterSeconds = expireAfterSeconds;
  return spec;
}

/** Imports every NeDB datafile of `dir` into `store`; returns how many documents it copied. */
export async function importNedbDirectory(store: Store, dir: string, log?: Logger): Promise<number> {
  const datafiles = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && DATAFILE.test(e.name))
    .map((e) => e.name)
    .sort();
  if (datafiles.length === 0) return 0;
  log?.info({ dataDir: dir, datafiles }, 'NeDB datafiles found: importing them into the SQLite store');
  let total = 0;
  for (const name of datafiles) {
    const collectionName = (DATAFILE.exec(name) as RegExpExecArray)[1] as string;
    const file = path.join(dir, name);
    const started = Date.now();
    const { docs, indexes, skippedLines } = await readNedbDatafile(file);
    const collection = store.collection(collectionName);
    const all = [...docs.values()];
    docs.clear();
    for (let i = 0; i < all.length; i += CHUNK) {
      const chunk = all.slice(i, i + CHUNK);
      // Queued in one turn, so one transaction: what an interrupted import copied is replaced.
      const removed = collection.deleteMany({ _id: { $in: chunk.map((d) => d._id) } });
      const inserted = collection.insertMany(chunk);
      await Promise.all([removed, inserted]);
      const done = Math.min(i + CHUNK, all.length);
      if (Math.floor(done / PROGRESS_EVERY) > Math.floor(i / PROGRESS_EVERY) || done === all.length) {
        log?.info({ collection: collectionName, imported: done, of: all.length }, 'NeDB import progress');
      }
    }
    await rename(file, `${file}${IMPORTED_SUFFIX}`);
    total += all.length;
    log?.info(
      {
        collection: collectionName,
        documents: all.length,
        skippedLines,
        nedbIndexes: indexes.map((i) => i.fields),
        ms: Date.now() - started,
        keptAs: `${name}${IMPORTED_SUFFIX}`,
      },
      'NeDB datafile imported',
    );
  }
  return total;
}
