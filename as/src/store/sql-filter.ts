/**
 * Port filters and sorts as SQL over the embedded store's tables, with MongoDB's meaning.
 * Pure: text and parameters in, no database here.
 *
 * A collection is a table (`_id` TEXT PRIMARY KEY, `doc` the JSON of document-json.ts). A
 * field's value is read with json_extract; its *key* (what indexes hold, what sorts and
 * ranges compare) is the value, except for a Date, whose key is its milliseconds. Every
 * comparison is guarded by the JSON type of the operand (SQLite would otherwise compare a
 * string with a number), so the SQL answer is exact and sort, skip, limit and count run in
 * SQLite.
 *
 * Arrays, as in MongoDB, match when one element matches. How that is found depends on what
 * the collection declared (its layout):
 * - a field of a plain index holds no arrays (a trigger refuses them), so the key alone
 *   answers and the expression index serves it;
 * - a field of a multikey index has each value and array element in the side table
 *   (field, key, type, id), which the query reads through its index;
 * - any other field is read from the document, its elements with json_each (a scan).
 */
import { DATE_KEY, encodeDocument } from './document-json.js';
import { isOperatorObject } from './document-update.js';
import type { Filter, SortSpec } from './port.js';

export interface FieldLayout {
  /** The documents' table, quoted. */
  readonly docsTable: string;
  /** Fields of plain indexes: never arrays, so an index on their key answers for them. */
  readonly scalarFields: ReadonlySet<string>;
  /** Fields of multikey indexes: their values and array elements are in `keysTable`. */
  readonly multikeyFields: ReadonlySet<string>;
  /** The side table's name, quoted. */
  readonly keysTable: string;
  /** TTL indexes: documents whose Date at `field` is older than `seconds` are gone for every query. */
  readonly ttl: ReadonlyArray<{ field: string; seconds: number }>;
}

export interface SqlWhere {
  sql: string;
  params: SqlValue[];
}

export type SqlValue = string | number | null;

const FIELD_PART = /^[^"'.$][^"'.]*$/;

/** `'$."a"."b"'`: a dotted field as a quoted SQL literal of its JSON path. */
export function jsonPath(field: string, suffix = ''): string {
  let path = paths.get(field);
  if (path === undefined) {
    const parts = field.split('.');
    for (const p of parts) if (!FIELD_PART.test(p)) throw new Error(`unsupported field name ${JSON.stringify(field)}`);
    path = `$${parts.map((p) => `."${p}"`).join('')}`;
    // field names come from the services' code: a handful, kept for the life of the process
    if (paths.size < 10_000) paths.set(field, path);
  }
  return `'${path}${suffix}'`;
}

const paths = new Map<string, string>();

/** The key of a field: what indexes hold and sorts compare (a Date's milliseconds, else the value). */
export function keyExpr(field: string): string {
  if (field === '_id') return '_id';
  return `coalesce(json_extract(doc,${jsonPath(field, `."${DATE_KEY}"`)}),json_extract(doc,${jsonPath(field)}))`;
}

export function typeExpr(field: string): string {
  return `json_type(doc,${jsonPath(field)})`;
}

/** True where the field holds a Date. */
export function isDateExpr(field: string): string {
  return `json_type(doc,${jsonPath(field, `."${DATE_KEY}"`)})='integer'`;
}

/** One place a value is read from: the document, an element of one of its arrays, or the side table. */
interface Slot {
  key: string;
  type: string;
  isDate: string;
  /** The JSON text of an object or array value; undefined where the slot does not have it. */
  raw?: string;
}

/** `indexed: false` puts a unary + before the key, which keeps SQLite from choosing an index for that term. */
function documentSlot(field: string, indexed = true): Slot {
  return {
    key: `${indexed ? '' : '+'}${keyExpr(field)}`,
    type: typeExpr(field),
    isDate: isDateExpr(field),
    raw: `json_extract(doc,${jsonPath(field)})`,
  };
}

export const ELEMENT: Slot = {
  key: `CASE WHEN e.type='object' THEN json_extract(e.value,'$."${DATE_KEY}"') ELSE e.atom END`,
  type: 'e.type',
  isDate: `(e.type='object' AND json_type(e.value,'$."${DATE_KEY}"')='integer')`,
  raw: 'e.value',
};

/** The side table stores the key and the type, with 'date' for Dates (see sqlite-schema.ts). */
const SIDE: Slot = { key: 'm.key', type: 'm.type', isDate: "m.type='date'" };

type Kind = 'null' | 'string' | 'number' | 'boolean' | 'date' | 'document';

function kindOf(value: unknown): Kind {
  if (value === null || value === undefined) return 'null';
  if (value instanceof Date) return 'date';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'object':
      return 'document';
    default:
      throw new Error(`unsupported filter value of type ${typeof value}`);
  }
}

const RANGE_SQL: Record<string, string> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

class Compiler {
  readonly params: SqlValue[] = [];
  /**
   * A filter on a multikey field is answered from the side table (one value: a few
   * documents). Without statistics SQLite would rather take a plain index on another field
   * of the filter (`event`, say, which every subscription shares): its terms then stay off
   * the indexes.
   */
  private plainIndexesOff = false;

  constructor(private readonly layout: FieldLayout) {}

  top(filter: Filter): string {
    this.plainIndexesOff = Object.entries(filter).some(
      ([key, condition]) =>
        this.layout.multikeyFields.has(key) &&
        !this.layout.scalarFields.has(key) &&
        condition !== null &&
        !isOperatorObject(condition) &&
        kindOf(condition) !== 'document',
    );
    return this.filter(filter);
  }

  filter(filter: Filter): string {
    const terms: string[] = [];
    for (const [key, condition] of Object.entries(filter)) {
      if (key === '$or' || key === '$and') {
        if (!Array.isArray(condition) || condition.length === 0)
          throw new Error(`${key} needs a non-empty array of filters`);
        const parts = condition.map((f) => `(${this.filter(f as Filter)})`);
        terms.push(`(${parts.join(key === '$or' ? ' OR ' : ' AND ')})`);
      } else if (key.startsWith('$')) {
        throw new Error(`unsupported filter operator ${key}`);
      } else if (isOperatorObject(condition)) {
        for (const [op, operand] of Object.entries(condition)) terms.push(this.operator(key, op, operand));
      } else {
        terms.push(this.equals(key, condition));
      }
    }
    return terms.length > 0 ? terms.join(' AND ') : '1';
  }

  private operator(field: string, op: string, operand: unknown): string {
    switch (op) {
      case '$eq':
        return this.equals(field, operand);
      // MongoDB's $ne and $nin are "not $eq" / "not $in": on an array, no element may match.
      case '$ne':
        return `(${this.equals(field, operand)}) IS NOT 1`;
      case '$in':
        return this.inList(field, operand, op);
      case '$nin':
        return `(${this.inList(field, operand, op)}) IS NOT 1`;
      case '$exists':
        if (field === '_id') return operand ? '1' : '0';
        return `${typeExpr(field)} IS ${operand ? 'NOT ' : ''}NULL`;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        return this.range(field, op, operand);
      default:
        throw new Error(`unsupported filter operator ${op} (on ${field})`);
    }
  }

  /** MongoDB's equality: a value, an element of an array, or for null a missing field too. */
  private equals(field: string, value: unknown): string {
    const kind = kindOf(value);
    if (field === '_id') return typeof value === 'string' ? `_id=${this.bind(value)}` : '0';
    if (kind === 'null') {
      const missingOrNull = `(${typeExpr(field)} IS NULL OR ${typeExpr(field)}='null')`;
      return this.layout.scalarFields.has(field)
        ? missingOrNull
        : `(${missingOrNull} OR ${this.inArray(field, "e.type='null'")})`;
    }
    return this.matching(field, kind, (slot) => this.equalsIn(slot, kind, value));
  }

  private equalsIn(slot: Slot, kind: Kind, value: unknown): string {
    switch (kind) {
      case 'boolean':
        return `${slot.type}='${value ? 'true' : 'false'}'`;
      case 'date':
        return `(${slot.key}=${this.bind((value as Date).getTime())} AND ${slot.isDate})`;
      case 'string':
        return `(${slot.key}=${this.bind(value as string)} AND ${slot.type}='text')`;
      case 'number':
        return `(${slot.key}=${this.bind(value as number)} AND ${slot.type} IN ('integer','real'))`;
      default:
        if (slot.raw === undefined) throw new Error('internal: document comparison on a slot without the JSON text');
        return `(${slot.type} IN ('object','array') AND ${slot.raw}=${this.bind(encodeDocument(value))})`;
    }
  }

  private inList(field: string, values: unknown, op: string): string {
    if (!Array.isArray(values)) throw new Error(`${op} on ${field} needs an array`);
    if (values.length === 0) return '0';
    if (field === '_id') {
      const ids = values.filter((v): v is string => typeof v === 'string');
      return ids.length > 0 ? `_id IN (${ids.map((v) => this.bind(v)).join(',')})` : '0';
    }
    return `(${values.map((v) => this.equals(field, v)).join(' OR ')})`;
  }

  private range(field: string, op: string, operand: unknown): string {
    const kind = kindOf(operand);
    if (kind !== 'string' && kind !== 'number' && kind !== 'date')
      throw new Error(`${op} on ${field} needs a string, number or Date`);
    const bound = operand instanceof Date ? operand.getTime() : (operand as string | number);
    const sqlOp = RANGE_SQL[op];
    if (field === '_id') return kind === 'string' ? `_id${sqlOp}${this.bind(bound)}` : '0';
    return this.matching(field, kind, (slot) => {
      const guard =
        kind === 'date'
          ? slot.isDate
          : kind === 'string'
            ? `${slot.type}='text'`
            : `${slot.type} IN ('integer','real')`;
      return `(${slot.key}${sqlOp}${this.bind(bound)} AND ${guard})`;
    });
  }

  /** A condition on a field's value or, for arrays, on any of its elements, read where the layout says. */
  private matching(field: string, kind: Kind, condition: (slot: Slot) => string): string {
    if (this.layout.scalarFields.has(field)) return condition(documentSlot(field, !this.plainIndexesOff));
    if (this.layout.multikeyFields.has(field) && kind !== 'document') {
      const fieldParam = this.bind(field);
      return `_id IN (SELECT m.id FROM ${this.layout.keysTable} m WHERE m.field=${fieldParam} AND ${condition(SIDE)})`;
    }
    return `(${condition(documentSlot(field))} OR ${this.inArray(field, condition(ELEMENT))})`;
  }

  private inArray(field: string, elementCondition: string): string {
    return `(${typeExpr(field)}='array' AND EXISTS (SELECT 1 FROM json_each(doc,${jsonPath(field)}) e WHERE ${elementCondition}))`;
  }

  bind(value: SqlValue): string {
    this.params.push(value);
    return '?';
  }
}

/**
 * The WHERE clause of a filter, documents past a TTL left out (they are gone for every
 * reader, whether or not the sweep has removed them yet): a test on each row the rest of
 * the filter found, so a lookup by `_id` stays one row however many ended subscriptions
 * wait for the sweep. Without `nowMs` (deletes: removing an expired document is what the
 * sweep would do) they stay in.
 */
export function compileFilter(filter: Filter, layout: FieldLayout, nowMs: number | undefined): SqlWhere {
  const compiler = new Compiler(layout);
  let sql = compiler.top(filter);
  if (nowMs === undefined) return { sql, params: compiler.params };
  for (const { field, seconds } of layout.ttl) {
    // only a Date has milliseconds at `<path>."$$date"`: one look into the row decides
    sql += ` AND (json_extract(doc,${jsonPath(field, `."${DATE_KEY}"`)})<${compiler.bind(nowMs - seconds * 1000)}) IS NOT 1`;
  }
  return { sql, params: compiler.params };
}

/**
 * The rows whose Date at `field` is before the bound parameter, by rowid: every index
 * holds the rowid, so a count or a range over an index needs no document for this test.
 */
export function expiredRows(docsTable: string, field: string): string {
  return `SELECT rowid FROM ${docsTable} WHERE ${keyExpr(field)}<? AND ${isDateExpr(field)}`;
}

/** ORDER BY over the fields' keys (missing and null first when ascending, as in MongoDB). */
export function compileSort(sort: SortSpec | undefined): string {
  if (!sort || Object.keys(sort).length === 0) return '';
  return ` ORDER BY ${Object.entries(sort)
    .map(([field, dir]) => `${keyExpr(field)}${dir === -1 ? ' DESC' : ''}`)
    .join(',')}`;
}
