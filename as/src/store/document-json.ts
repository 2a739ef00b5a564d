/**
 * A document as JSON text, the way the embedded store keeps it: plain JSON with Dates as
 * `{"$$date":<ms>}` (the same text NeDB wrote in its datafiles, so one reader serves both
 * the SQLite rows and the import of an old NeDB directory). The SQL layer finds a Date's
 * milliseconds at `<path>."$$date"`, which keeps Dates comparable and indexable.
 *
 * Encoding walks the value once: undefined and function members are left out (null inside
 * arrays), non-finite numbers become null, as JSON.stringify would do.
 */
export const DATE_KEY = '$$date';

export function encodeDocument(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return objectText(value);
    default:
      return 'null';
  }
}

/**
 * The inverse of encodeDocument: `{"$$date":<ms>}` objects come back as Dates. A plain parse
 * then one walk, only when the text holds a Date: several times cheaper than a reviver
 * (which V8 calls for every value), and this runs for every document read.
 */
export function decodeDocument<T = unknown>(text: string): T {
  const value: unknown = JSON.parse(text);
  return (text.includes(DATE_MARK) ? reviveDates(value) : value) as T;
}

const DATE_MARK = `"${DATE_KEY}"`;

function reviveDates(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveDates(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  const ms = record[DATE_KEY];
  if (typeof ms === 'number' && Object.keys(record).length === 1) return new Date(ms);
  for (const key in record) record[key] = reviveDates(record[key]);
  return record;
}

function objectText(value: object): string {
  if (value instanceof Date) return `{"${DATE_KEY}":${value.getTime()}}`;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out += (i > 0 ? ',' : '') + (item === undefined || typeof item === 'function' ? 'null' : encodeDocument(item));
    }
    return `${out}]`;
  }
  let out = '{';
  let first = true;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    const item: unknown = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    out += `${first ? '' : ','}${SAFE_KEY.test(key) ? `"${key}"` : JSON.stringify(key)}:${encodeDocument(item)}`;
    first = false;
  }
  return `${out}}`;
}

/** Keys that need no JSON escaping (nearly all of ours). */
const SAFE_KEY = /^[\w$-]*$/;
