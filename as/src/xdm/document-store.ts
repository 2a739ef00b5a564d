import { randomBytes } from 'node:crypto';
import type { Collection, Store } from '../store/port.js';
import { DuplicateKeyError } from '../store/port.js';
import { TypedEmitter } from '../util/typed-emitter.js';

/** Where a document lives in the XCAP tree. */
export interface DocumentRef {
  auid: string;
  tree: 'users' | 'global';
  /** The user (XUI) for the users tree; '' for global documents. */
  xui: string;
  /** Path below the user's (or the global) directory, e.g. 'index'. */
  path: string;
}

export interface StoredDocument extends DocumentRef {
  body: string;
  etag: string;
  size: number;
  lastModified: Date;
}

interface DocumentRecord {
  _id: string;
  [key: string]: unknown;
  auid: string;
  tree: string;
  xui: string;
  path: string;
  body: string;
  etag: string;
  size: number;
  lastModified: Date;
  uniqueKeys: string[];
}

interface UniqueClaim {
  _id: string; // auid|field|value
  [key: string]: unknown;
  doc: string;
}

export interface DocumentChange {
  ref: DocumentRef;
  /** undefined: the document was created. */
  previousEtag?: string;
  /** undefined: the document was deleted. */
  etag?: string;
  body?: string;
}

/** A write lost against a concurrent one, or its If-Match/If-None-Match did not hold. */
export class PreconditionFailed extends Error {
  constructor() {
    super('precondition failed');
    this.name = 'PreconditionFailed';
  }
}

/** A value that must be unique across all documents of a usage is taken. */
export class UniquenessFailure extends Error {
  constructor(
    readonly field: string,
    readonly value: string,
  ) {
    super(`${field} '${value}' is already used`);
    this.name = 'UniquenessFailure';
  }
}

/**
 * When a write should happen: `any` unconditionally, `absent` only if the document does not
 * exist (If-None-Match: *), `exists` if it does (If-Match: *), or only at a given ETag.
 */
export type WriteCondition = { kind: 'any' } | { kind: 'absent' } | { kind: 'exists' } | { kind: 'etag'; etag: string };

export function documentKey(ref: DocumentRef): string {
  return `${ref.auid}/${ref.tree}/${ref.xui}/${ref.path}`;
}

/** How often an unconditional write is redone when concurrent writes keep winning. */
const UNCONDITIONAL_ATTEMPTS = 20;

function newEtag(): string {
  return randomBytes(12).toString('base64url');
}

type Events = { change: [DocumentChange] };

/**
 * XCAP documents in the store. Every write is a compare-and-set on the stored ETag, so of
 * two clients writing with the same ETag one wins and the other gets PreconditionFailed,
 * whichever AS instance each reached. Values that a usage declares unique across users
 * (rls-services service URIs, group URIs) are claimed in their own collection first.
 */
export class XdmDocuments extends TypedEmitter<Events> {
  private readonly docs: Collection<DocumentRecord>;
  private readonly claims: Collection<UniqueClaim>;

  constructor(store: Store) {
    super();
    this.docs = store.collection<DocumentRecord>('xcap_documents');
    this.claims = store.collection<UniqueClaim>('xcap_unique');
  }

  async start(): Promise<void> {
    await this.docs.ensureIndex({ fields: { xui: 1 } });
  }

  async get(ref: DocumentRef): Promise<StoredDocument | null> {
    const r = await this.docs.findOne({ _id: documentKey(ref) });
    return r ? toStored(r) : null;
  }

  /** Every document of one user (for the xcap-directory usage), or of one usage. */
  async list(filter: { xui?: string; auid?: string }): Promise<StoredDocument[]> {
    const f: Record<string, unknown> = {};
    if (filter.xui !== undefined) f.xui = filter.xui;
    if (filter.auid !== undefined) f.auid = filter.auid;
    return (await this.docs.find(f, { sort: { _id: 1 } })).map(toStored);
  }

  /**
   * Creates or replaces a document under `cond`. `unique` lists the values the usage wants
   * unique across all documents of this auid. Returns the new ETag and whether it created.
   */
  async put(
    ref: DocumentRef,
    body: string,
    cond: WriteCondition,
    unique: Array<{ field: string; value: string }> = [],
  ): Promise<{ etag: string; created: boolean }> {
    // Unconditional writes that lose a race are redone on the newer version (the last
    // writer wins): a 412 is only for preconditions the client asked for (RFC 7232).
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.putOnce(ref, body, cond, unique);
      } catch (err) {
        if (!(err instanceof PreconditionFailed) || cond.kind !== 'any' || attempt >= UNCONDITIONAL_ATTEMPTS) throw err;
      }
    }
  }

  private async putOnce(
    ref: DocumentRef,
    body: string,
    cond: WriteCondition,
    unique: Array<{ field: string; value: string }>,
  ): Promise<{ etag: string; created: boolean }> {
    const key = documentKey(ref);
    const current = await this.docs.findOne({ _id: key });
    checkCondition(cond, current?.etag);

    const keys = unique.map((u) => `${ref.auid}|${u.field}|${u.value}`);
    const claimed = await this.claim(key, keys, unique);
    const etag = newEtag();
    const rec: DocumentRecord = {
      _id: key,
      ...ref,
      body,
      etag,
      size: Buffer.byteLength(body, 'utf8'),
      lastModified: new Date(),
      uniqueKeys: keys,
    };
    try {
      if (current) {
        const r = await this.docs.replaceOne({ _id: key, etag: current.etag }, rec);
        if (r.matched === 0) throw new PreconditionFailed(); // changed since we read it
      } else {
        await this.docs.insertOne(rec);
      }
    } catch (err) {
      await this.release(key, claimed);
      if (err instanceof DuplicateKeyError) throw new PreconditionFailed(); // created concurrently
      throw err;
    }
    // keys the previous version held and this one does not
    await this.release(
      key,
      (current?.uniqueKeys ?? []).filter((k) => !keys.includes(k)),
    );
    this.emit('change', { ref, previousEtag: current?.etag, etag, body });
    return { etag, created: !current };
  }

  /** Deletes a document under `cond`; false when there was none (and none was required). */
  async delete(ref: DocumentRef, cond: WriteCondition): Promise<boolean> {
    const key = documentKey(ref);
    const current = await this.docs.findOne({ _id: key });
    checkCondition(cond, current?.etag);
    if (!current) return false;
    if ((await this.docs.deleteOne({ _id: key, etag: current.etag })) === 0) throw new PreconditionFailed();
    await this.release(key, current.uniqueKeys);
    this.emit('change', { ref, previousEtag: current.etag });
    return true;
  }

  /** Whether a unique value is free (for proposing alt-values). */
  async isFree(auid: string, field: string, value: string): Promise<boolean> {
    return (await this.claims.findOne({ _id: `${auid}|${field}|${value}` })) === null;
  }

  /** The document holding a unique value (e.g. the groups document defining a group URI), or null. */
  async holderOf(auid: string, field: string, value: string): Promise<StoredDocument | null> {
    const claim = await this.claims.findOne({ _id: `${auid}|${field}|${value}` });
    if (!claim) return null;
    const r = await this.docs.findOne({ _id: claim.doc });
    return r ? toStored(r) : null;
  }

  /** Claims every key for `doc`; on a key held by another document, undoes and throws. */
  private async claim(doc: string, keys: string[], unique: Array<{ field: string; value: string }>): Promise<string[]> {
    const taken: string[] = [];
    for (const [i, k] of keys.entries()) {
      try {
        await this.claims.insertOne({ _id: k, doc });
        taken.push(k);
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err;
        const holder = await this.claims.findOne({ _id: k });
        if (holder?.doc === doc) continue; // held by the version we are replacing
        await this.release(doc, taken);
        throw new UniquenessFailure(unique[i]!.field, unique[i]!.value);
      }
    }
    return taken;
  }

  private async release(doc: string, keys: string[]): Promise<void> {
    for (const k of keys) await this.claims.deleteOne({ _id: k, doc });
  }
}

function checkCondition(cond: WriteCondition, currentEtag: string | undefined): void {
  const ok =
    cond.kind === 'any' ||
    (cond.kind === 'absent' && currentEtag === undefined) ||
    (cond.kind === 'exists' && currentEtag !== undefined) ||
    (cond.kind === 'etag' && currentEtag === cond.etag);
  if (!ok) throw new PreconditionFailed();
}

function toStored(r: DocumentRecord): StoredDocument {
  return {
    auid: r.auid,
    tree: r.tree as 'users' | 'global',
    xui: r.xui,
    path: r.path,
    body: r.body,
    etag: r.etag,
    size: r.size,
    lastModified: r.lastModified,
  };
}
