/**
 * The embedded store's SQL schema, as text: a table per collection, the side table of
 * multikey indexes and the triggers that keep it, the expression indexes of plain ones.
 * Pure (no database here); sqlite-store.ts runs these statements.
 *
 * Names: `"c:<collection>"` the documents, `"k:<collection>"` the multikey side table,
 * `"i:<collection>:<index>"` indexes, `"_indexes"` the index specs every process reads
 * (they decide how filters compile: see sql-filter.ts).
 */
import { ELEMENT, jsonPath, keyExpr, type FieldLayout } from './sql-filter.js';
import type { IndexSpec } from './port.js';

export const META_TABLE = '"_indexes"';

export const CREATE_META = `CREATE TABLE IF NOT EXISTS ${META_TABLE} (coll TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL, PRIMARY KEY (coll, name))`;

export const docsTable = (coll: string) => `"c:${coll}"`;
export const keysTable = (coll: string) => `"k:${coll}"`;

/**
 * A collection's table. `doc` holds the document as SQLite's binary JSON (JSONB, written with
 * jsonb(?)): the index expressions and triggers read fields without parsing the text again
 * (a CDR insert with four indexed fields cost half as much). Rows written as JSON text by
 * earlier versions stay readable: every json function takes both.
 */
export function createDocsTable(coll: string): string {
  return `CREATE TABLE IF NOT EXISTS ${docsTable(coll)} (_id TEXT PRIMARY KEY NOT NULL, doc TEXT NOT NULL)`;
}

/** MongoDB's default index name: `field_1_other_-1`. */
export function indexName(spec: IndexSpec): string {
  return Object.entries(spec.fields)
    .map(([f, d]) => `${f}_${d}`)
    .join('_');
}

/** What queries need to know of a collection's indexes. */
export function layoutOf(coll: string, specs: readonly IndexSpec[]): FieldLayout {
  const scalarFields = new Set<string>();
  const multikeyFields = new Set<string>();
  const ttl: Array<{ field: string; seconds: number }> = [];
  for (const spec of specs) {
    const fields = Object.keys(spec.fields).filter((f) => f !== '_id');
    for (const f of fields) (spec.multikey ? multikeyFields : scalarFields).add(f);
    const [first] = fields;
    if (spec.expireAfterSeconds !== undefined && first !== undefined)
      ttl.push({ field: first, seconds: spec.expireAfterSeconds });
  }
  return { docsTable: docsTable(coll), scalarFields, multikeyFields, keysTable: keysTable(coll), ttl };
}

/** The expression index of a plain index spec (undefined for an index on `_id` alone: the primary key serves it). */
export function plainIndex(coll: string, spec: IndexSpec): string | undefined {
  const keys = Object.entries(spec.fields).filter(([f]) => f !== '_id' || Object.keys(spec.fields).length > 1);
  if (keys.length === 0) return undefined;
  const columns = keys.map(([f, d]) => `${keyExpr(f)}${d === -1 ? ' DESC' : ''}`).join(',');
  return `CREATE ${spec.unique ? 'UNIQUE ' : ''}INDEX IF NOT EXISTS "i:${coll}:${indexName(spec)}" ON ${docsTable(coll)} (${columns})`;
}

/** A plain index holds one key per document: these triggers refuse an array in its field, loudly rather than missing matches. */
export function scalarGuards(coll: string, field: string): string[] {
  const when = `json_type(NEW.doc,${jsonPath(field)})='array'`;
  const raise = `SELECT RAISE(ABORT,'field ${field} of ${coll} has a plain index and cannot hold an array')`;
  return ['INSERT', 'UPDATE OF doc'].map(
    (event, i) =>
      `CREATE TRIGGER IF NOT EXISTS "s:${coll}:${field}:${i}" BEFORE ${event} ON ${docsTable(coll)} WHEN ${when} BEGIN ${raise}; END`,
  );
}

export function arraysIn(coll: string, field: string): string {
  return `SELECT _id FROM ${docsTable(coll)} WHERE json_type(doc,${jsonPath(field)})='array' LIMIT 1`;
}

/** The side table's rows of one document's field: its value, or each element when it is an array (objects other than Dates are not keyed). */
function sideRows(field: string, docExpr: string, idExpr: string, from = ''): string {
  const elementKey = ELEMENT.key;
  const elementType = `CASE WHEN ${ELEMENT.isDate} THEN 'date' ELSE e.type END`;
  return (
    `SELECT '${field}', ${elementKey}, ${elementType}, ${idExpr} FROM ${from}json_each(${docExpr},${jsonPath(field)}) e ` +
    `WHERE json_type(${docExpr},${jsonPath(field)})<>'object'`
  );
}

/** The side table of a multikey index on one field, its triggers, and the rows of the documents already there. */
export function multikeyIndex(coll: string, field: string): { create: string[]; backfill: string } {
  const k = keysTable(coll);
  const c = docsTable(coll);
  const insertNew = `INSERT INTO ${k} (field, key, type, id) ${sideRows(field, 'NEW.doc', 'NEW._id')}`;
  const deleteOld = `DELETE FROM ${k} WHERE id=OLD._id AND field='${field}'`;
  return {
    create: [
      `CREATE TABLE IF NOT EXISTS ${k} (field TEXT NOT NULL, key, type TEXT NOT NULL, id TEXT NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS "k:${coll}:key" ON ${k} (field, key)`,
      `CREATE INDEX IF NOT EXISTS "k:${coll}:id" ON ${k} (id)`,
      `CREATE TRIGGER IF NOT EXISTS "m:${coll}:${field}:i" AFTER INSERT ON ${c} BEGIN ${insertNew}; END`,
      // most updates leave the field alone (a subscription's CSeq, its state): then its keys stay
      `CREATE TRIGGER IF NOT EXISTS "m:${coll}:${field}:u" AFTER UPDATE OF doc ON ${c} ` +
        `WHEN json_extract(OLD.doc,${jsonPath(field)}) IS NOT json_extract(NEW.doc,${jsonPath(field)}) BEGIN ${deleteOld}; ${insertNew}; END`,
      `CREATE TRIGGER IF NOT EXISTS "m:${coll}:${field}:d" AFTER DELETE ON ${c} BEGIN ${deleteOld}; END`,
    ],
    backfill: `INSERT INTO ${k} (field, key, type, id) ${sideRows(field, 'c.doc', 'c._id', `${c} c, `)}`,
  };
}
