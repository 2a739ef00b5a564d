/**
 * The port's update operators ($set $unset $inc $push $setOnInsert) applied to a document
 * in memory, and the document an upsert starts from, with MongoDB's meaning. Pure: the
 * embedded engine reads a row, applies this, and writes the row back in one transaction.
 */
import type { Doc, Filter, Update } from './port.js';

const UPDATE_OPERATORS = new Set(['$set', '$unset', '$inc', '$push', '$setOnInsert']);

type Node = Record<string, unknown>;

/** Rejects what the port does not allow: no operators, unknown operators, replacement documents. */
export function checkUpdate(update: Update): void {
  const entries = Object.entries(update);
  if (entries.length === 0)
    throw new Error('update needs at least one operator ($set, $unset, $inc, $push, $setOnInsert)');
  for (const [op, fields] of entries) {
    if (!UPDATE_OPERATORS.has(op)) {
      throw new Error(
        `unsupported update operator ${op}: updates take operators only (use replaceOne to replace a document)`,
      );
    }
    if (!isPlainObject(fields)) throw new Error(`${op} needs an object of fields`);
  }
}

/**
 * Applies the update to `doc` (changed in place) and returns it. `$setOnInsert` applies only
 * when `inserting`. `_id` cannot change, as in MongoDB.
 */
export function applyUpdate<T extends Doc>(doc: T, update: Update, inserting: boolean): T {
  checkUpdate(update);
  const id = doc._id;
  if (inserting && update.$setOnInsert) {
    const clash = Object.keys(update.$setOnInsert).find((k) => update.$set && k in update.$set);
    if (clash) throw new Error(`upsert: ${clash} is in both $set and $setOnInsert`);
    for (const [path, value] of Object.entries(update.$setOnInsert)) setPath(doc, path, value);
  }
  for (const [path, value] of Object.entries(update.$set ?? {})) setPath(doc, path, value);
  for (const path of Object.keys(update.$unset ?? {})) unsetPath(doc, path);
  for (const [path, by] of Object.entries(update.$inc ?? {})) {
    if (typeof by !== 'number') throw new Error(`$inc on ${path} needs a number`);
    const current = getPath(doc, path);
    if (current !== undefined && typeof current !== 'number')
      throw new Error(`$inc on ${path}: the field is not a number`);
    setPath(doc, path, (current ?? 0) + by);
  }
  for (const [path, value] of Object.entries(update.$push ?? {})) {
    const current = getPath(doc, path);
    if (current === undefined) setPath(doc, path, [value]);
    else if (Array.isArray(current)) current.push(value);
    else throw new Error(`$push on ${path}: the field is not an array`);
  }
  if (doc._id !== id && !(inserting && id === undefined))
    throw new Error('update would change the immutable field _id');
  return doc;
}

/** The document an upsert starts from: the filter's equality fields (top level or under $and), with `_id` from $setOnInsert if given. */
export function upsertSeed(filter: Filter, update: Update): Node {
  const seed = equalityFieldsOf(filter);
  const chosen = update.$setOnInsert?._id;
  if (chosen !== undefined) {
    if (seed._id !== undefined && seed._id !== chosen)
      throw new Error('upsert: $setOnInsert._id differs from the filter _id');
    seed._id = chosen;
  }
  return seed;
}

function equalityFieldsOf(filter: Filter, into: Node = {}): Node {
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

/** The filter's `_id` when it names exactly one string id. */
export function stringIdOf(filter: Filter): string | undefined {
  const id = filter._id;
  if (typeof id === 'string') return id;
  if (isPlainObject(id) && typeof id.$eq === 'string') return id.$eq;
  return undefined;
}

/** `{ $gt: 1 }` is an operator object; `{ a: 1 }` is a sub-document to compare whole; mixing both is an error. */
export function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (!isPlainObject(value)) return false;
  const keys = Object.keys(value);
  const operators = keys.filter((k) => k.startsWith('$')).length;
  if (operators > 0 && operators < keys.length)
    throw new Error(`filter mixes operators and fields: ${JSON.stringify(value)}`);
  return operators > 0;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Date) &&
    !(value instanceof RegExp)
  );
}

function getPath(doc: Node, dotted: string): unknown {
  let node: unknown = doc;
  for (const part of dotted.split('.')) {
    if (!isPlainObject(node)) return undefined;
    node = node[part];
  }
  return node;
}

function setPath(doc: Node, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  const last = parts.pop() as string;
  let node = doc;
  for (const part of parts) {
    if (!isPlainObject(node[part])) node[part] = {};
    node = node[part] as Node;
  }
  node[last] = value;
}

function unsetPath(doc: Node, dotted: string): void {
  const parts = dotted.split('.');
  const last = parts.pop() as string;
  let node: unknown = doc;
  for (const part of parts) {
    if (!isPlainObject(node)) return;
    node = node[part];
  }
  if (isPlainObject(node)) delete node[last];
}
