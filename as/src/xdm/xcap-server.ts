import { createHash } from 'node:crypto';
import Koa, { type Context } from 'koa';
import { emptyBody } from '../http/empty-body.js';
import { BodyTimeoutError, BodyTooLargeError, readBody } from '../http/read-body.js';
import { errorSummary, isClientFault } from '../http/client-fault.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { LocalDomain } from '../users/local-domain.js';
import { parseXml, type XmlDocument, type XmlErrorKind } from '../xml/xml-tree.js';
import {
  PreconditionFailed,
  UniquenessFailure,
  documentKey,
  type DocumentRef,
  type StoredDocument,
  type WriteCondition,
  type XdmDocuments,
} from './document-store.js';
import {
  XCAP_ATT_CONTENT_TYPE,
  XCAP_EL_CONTENT_TYPE,
  XCAP_ERROR_CONTENT_TYPE,
  XcapOpError,
  xcapErrorBody,
  type XcapErrorCondition,
} from './xcap-ops.js';
import { NodeSelectorError, XcapUriError, parseXcapUri, type NodeSelector, type XcapUri } from './xcap-uri.js';
import { mayAccess } from './xcap-access.js';
import {
  applyNodeOp,
  nodeOpError,
  type CheckOutcome,
  type DocumentFacts,
  type NodeOp,
  type NodeOutcome,
} from './document-check.js';
import type { ValidationContext } from './usages/usage.js';
import { allUsages, usageByAuid, type ApplicationUsage } from './usages/index.js';
import { proposeAltValues } from './usages/schema-checker.js';
import { XCAP_CAPS_AUID, xcapCapsDocument } from './usages/xcap-caps.js';

const RLS_SERVICES_AUID = 'rls-services';
import { XCAP_DIRECTORY_AUID, XCAP_DIRECTORY_DOCUMENT, xcapDirectoryDocument } from './usages/xcap-directory.js';
import { answerFailure } from '../http/failure-answer.js';
import type { StoreOutages } from '../store/store-fault.js';
import { headerValueOnly } from '../sip/index.js';

export interface XcapServerOptions {
  /** Path of the XCAP root on this server, e.g. /xcap-root. */
  rootPath: string;
  /** The XCAP root as clients reach it (absolute URI), for generated documents. */
  rootUri: string;
  domain: LocalDomain;
  maxDocumentBytes: number;
  maxDepth: number;
}

/** An XCAP answer that is not a success: status, and an xcap-error condition for 409. */
class XcapFailure extends Error {
  constructor(
    readonly status: number,
    readonly condition?: XcapErrorCondition,
    readonly headers: Record<string, string> = {},
  ) {
    super(`XCAP ${status}${condition ? ` ${condition.tag}` : ''}`);
  }
}

const ALLOW = 'GET, PUT, DELETE';
/**
 * Source bytes of the stored documents kept parsed for node operations (a parsed tree takes
 * about 11 times its text in memory: 2 MiB of documents is some 25 MiB of heap).
 */
const PARSED_CACHE_BYTES = 2 * 1024 * 1024;
const quote = (etag: string) => `"${etag}"`;

/** Parses If-Match / If-None-Match: '*' or a list of (strong) entity tags. */
function etagList(header: string): '*' | string[] | undefined {
  const h = header.trim();
  if (!h) return undefined;
  if (h === '*') return '*';
  return [...h.matchAll(/(?:W\/)?"([^"]*)"/g)].map((m) => m[1]!);
}

/**
 * The XCAP server (RFC 4825) of the XDMS: documents per application usage under
 * users/<xui>/ and global/, whole-document and node (element, attribute, namespace)
 * operations, ETag preconditions, xcap-error bodies, and the generated xcap-caps and
 * OMA xcap-directory documents. Authentication is a separate middleware (xcap-auth);
 * here a user may touch only their own tree, and global documents are read-only.
 */
export class XcapServer {
  private readonly usages: ApplicationUsage[] = allUsages();
  /**
   * Parsed stored documents by document key, least recently used first, each valid for the one
   * ETag it was parsed at (every write gives a new ETag, so a stale tree is never used, whichever
   * instance wrote). The trees are shared between requests and deep-frozen: node operations only
   * read them (xcap-ops clones before changing anything).
   */
  private readonly parsed = new Map<string, { etag: string; doc: XmlDocument; size: number }>();
  private parsedBytes = 0;

  constructor(
    private readonly deps: {
      docs: XdmDocuments;
      /** The provisioned users: their addresses of record are never claimed by a document. */
      users: { exists(aor: string): Promise<boolean> };
      /** Parses and checks whole documents PUT (off the event loop when they are large). */
      checker: {
        check(auid: string, body: Buffer, ctx: ValidationContext): Promise<CheckOutcome>;
        offloads(bytes: number): boolean;
        node(auid: string, stored: string, sel: NodeSelector, op: NodeOp, ctx: ValidationContext): Promise<NodeOutcome>;
        mergeRlsServices(bodies: string[]): Promise<string>;
      };
      options: XcapServerOptions;
      log: Logger;
      metrics: Metrics;
      outages: StoreOutages;
    },
  ) {}

  /** The koa middleware serving the XCAP root (after authentication). */
  middleware(): Koa.Middleware {
    return async (ctx) => {
      const started = process.hrtime.bigint();
      try {
        await this.handle(ctx);
      } catch (err) {
        this.fail(ctx, err);
      }
      this.deps.metrics.count('ims_as_xcap_requests_total', { method: ctx.method, status: String(ctx.status) });
      this.deps.metrics.observe('ims_as_xcap_request_seconds', Number(process.hrtime.bigint() - started) / 1e9, {
        method: ctx.method,
      });
    };
  }

  private fail(ctx: Context, err: unknown): void {
    if (err instanceof XcapFailure) {
      ctx.status = err.status;
      for (const [k, v] of Object.entries(err.headers)) ctx.set(k, v);
      if (err.condition) {
        // the document's URI, not the request path: that one may go on with /~~/<node selector>
        const documentUri = (ctx.state.xcapDocumentUri as string | undefined) ?? this.deps.options.rootUri;
        reply(ctx, XCAP_ERROR_CONTENT_TYPE, xcapErrorBody(err.condition, { documentUri }));
      } else {
        emptyBody(ctx);
      }
      return;
    }
    if (err instanceof XcapOpError) {
      if (err.status === 409) return this.fail(ctx, new XcapFailure(409, err as unknown as XcapErrorCondition));
      return this.fail(ctx, new XcapFailure(err.status, undefined, err.status === 405 ? { Allow: 'GET' } : {}));
    }
    if (err instanceof XcapUriError || err instanceof NodeSelectorError)
      return this.fail(ctx, new XcapFailure(err.status));
    // the rest of the body is unread (or never comes): the connection cannot carry another request
    if (err instanceof BodyTooLargeError)
      return this.fail(ctx, new XcapFailure(413, undefined, { Connection: 'close' }));
    if (err instanceof BodyTimeoutError) {
      this.deps.log.info({ ...errorSummary(err), path: ctx.path, method: ctx.method }, 'XCAP request body incomplete');
      return this.fail(ctx, new XcapFailure(408, undefined, { Connection: 'close' }));
    }
    if (err instanceof PreconditionFailed) return this.fail(ctx, new XcapFailure(412));
    if (isClientFault(err)) {
      // the client went away mid-request: nobody reads the answer; 400 is for the metrics
      this.deps.log.info(
        { ...errorSummary(err), path: ctx.path, method: ctx.method },
        'XCAP request abandoned by the client',
      );
      emptyBody(ctx, 400);
      return;
    }
    // a store outage: 503 with Retry-After; anything else: 500, logged once
    answerFailure(ctx, err, { ...this.deps, api: 'xcap' });
  }

  private async handle(ctx: Context): Promise<void> {
    if (!['GET', 'PUT', 'DELETE'].includes(ctx.method)) throw new XcapFailure(405, undefined, { Allow: ALLOW });
    const uri = parseXcapUri(ctx.req.url ?? '', this.deps.options.rootPath, {
      defaultNamespace: (auid) => usageByAuid(auid)?.defaultNamespace,
    });
    // the document URI for error reports (no-parent ancestors are relative to the document)
    ctx.state.xcapDocumentUri =
      this.deps.options.rootUri + uri.documentSelectorRaw.slice(this.deps.options.rootPath.replace(/\/+$/, '').length);
    const usage = usageByAuid(uri.auid);
    if (!usage) throw new XcapFailure(404);
    const identity = ctx.state.identity as string;
    const ref = this.authorize(ctx, uri, usage, identity);

    if (
      uri.auid === XCAP_CAPS_AUID ||
      uri.auid === XCAP_DIRECTORY_AUID ||
      (uri.auid === RLS_SERVICES_AUID && uri.tree === 'global')
    ) {
      return this.generated(ctx, uri, usage, ref);
    }
    if (usage.readOnly && ctx.method !== 'GET') throw new XcapFailure(405, undefined, { Allow: 'GET' });
    if (ctx.method === 'GET') return this.get(ctx, uri, usage, ref);
    if (ctx.method === 'PUT') return this.put(ctx, uri, usage, ref);
    return this.delete(ctx, uri, usage, ref);
  }

  /** A user reaches only their own tree; global documents are read-only. */
  private authorize(ctx: Context, uri: XcapUri, usage: ApplicationUsage, identity: string): DocumentRef {
    if (uri.tree === 'global') {
      if (!mayAccess(identity, { tree: 'global', xui: '' }, ctx.method === 'GET' ? 'read' : 'write'))
        throw new XcapFailure(403);
      if (usage.globalDocuments && !usage.globalDocuments.includes(uri.documentPath)) throw new XcapFailure(404);
      return { auid: uri.auid, tree: 'global', xui: '', path: uri.documentPath };
    }
    const owner = this.deps.options.domain.canonical(uri.xui ?? '');
    if (!owner || !mayAccess(identity, { tree: 'users', xui: owner }, ctx.method === 'GET' ? 'read' : 'write'))
      throw new XcapFailure(403);
    if (usage.documentNames && !usage.documentNames.test(uri.documentPath)) {
      if (ctx.method === 'PUT')
        throw new XcapFailure(409, {
          tag: 'constraint-failure',
          phrase: `document name '${uri.documentPath}' is not allowed for ${usage.auid}`,
        });
      throw new XcapFailure(404);
    }
    return { auid: uri.auid, tree: 'users', xui: owner, path: uri.documentPath };
  }

  private async get(ctx: Context, uri: XcapUri, usage: ApplicationUsage, ref: DocumentRef): Promise<void> {
    const doc = await this.deps.docs.get(ref);
    if (!doc) throw new XcapFailure(404);
    // select before the preconditions and the ETag: a node that does not exist is a 404
    // without ETag, whatever If-Match / If-None-Match say (RFC 7232 section 5)
    const node = uri.nodeSelector
      ? (await this.nodeOp(doc, uri.nodeSelector, { kind: 'get' }, ref, true)).node!
      : { contentType: usage.mimeType, body: doc.body };
    this.checkReadPreconditions(ctx, doc.etag);
    ctx.set('ETag', quote(doc.etag));
    reply(ctx, node.contentType, node.body);
  }

  private async put(ctx: Context, uri: XcapUri, usage: ApplicationUsage, ref: DocumentRef): Promise<void> {
    const body = await readBody(ctx.req, this.deps.options.maxDocumentBytes);
    const contentType = headerValueOnly(ctx.get('content-type'));
    if (!uri.nodeSelector) {
      if (contentType !== usage.mimeType) throw new XcapFailure(415);
      const checked = await this.deps.checker.check(usage.auid, body, this.validationContext(ref));
      if ('xmlError' in checked) throw this.xmlFailure(checked.xmlError.kind);
      const text = body.toString('utf8');
      // the current ETag matters only to If-Match / If-None-Match; without them the write is
      // unconditional (the store reads the version it replaces itself)
      const conditional =
        etagList(ctx.get('if-match')) !== undefined || etagList(ctx.get('if-none-match')) !== undefined;
      const current = conditional ? await this.currentEtag(ref) : undefined;
      const result = await this.write(ref, checked.facts, text, this.writeCondition(ctx, current));
      return this.written(ctx, result);
    }
    if (uri.nodeSelector.terminal?.kind === 'namespace') throw new XcapFailure(405, undefined, { Allow: 'GET' });
    const isAttribute = uri.nodeSelector.terminal?.kind === 'attribute';
    if (contentType !== (isAttribute ? XCAP_ATT_CONTENT_TYPE : XCAP_EL_CONTENT_TYPE)) throw new XcapFailure(415);
    // the configured depth limit holds for what an element PUT builds too, not only for whole
    // documents (putElement's own default is the parser's 64 levels)
    const result = await this.modify(
      ctx,
      ref,
      uri.nodeSelector,
      isAttribute
        ? { kind: 'put-attribute', body }
        : { kind: 'put-element', body, maxDepth: this.deps.options.maxDepth },
    );
    return this.written(ctx, result);
  }

  private async delete(ctx: Context, uri: XcapUri, usage: ApplicationUsage, ref: DocumentRef): Promise<void> {
    if (!uri.nodeSelector) {
      const current = await this.currentEtag(ref);
      if (current === undefined) throw new XcapFailure(404);
      await this.deps.docs.delete(ref, this.writeCondition(ctx, current));
      emptyBody(ctx, 200);
      return;
    }
    if (uri.nodeSelector.terminal?.kind === 'namespace') throw new XcapFailure(405, undefined, { Allow: 'GET' });
    const result = await this.modify(ctx, ref, uri.nodeSelector, { kind: 'delete' });
    ctx.set('ETag', quote(result.etag));
    emptyBody(ctx, 200);
  }

  /**
   * Read-modify-write of a document for a node operation. Without a client precondition, a
   * concurrent change is retried on the new version (the node operation is applied to what
   * is there); with one, it fails with 412 as the client asked.
   */
  private async modify(
    ctx: Context,
    ref: DocumentRef,
    sel: NodeSelector,
    op: NodeOp,
  ): Promise<{ etag: string; created: boolean }> {
    const clientCondition = Boolean(ctx.get('if-match') || ctx.get('if-none-match'));
    for (let attempt = 0; ; attempt++) {
      const stored = await this.deps.docs.get(ref);
      if (!stored)
        throw new XcapFailure(409, {
          tag: 'no-parent',
          ancestor:
            this.deps.options.rootUri +
            `/${ref.auid}/${ref.tree}/${ref.tree === 'users' ? `${encodeURIComponent(ref.xui)}/` : ''}`,
        });
      const cond = this.writeCondition(ctx, stored.etag);
      // not kept: this version is about to be replaced
      const next = (await this.nodeOp(stored, sel, op, ref, false)).changed!;
      try {
        const r = await this.write(
          ref,
          next.facts,
          next.text,
          cond.kind === 'any' ? { kind: 'etag', etag: stored.etag } : cond,
        );
        return { etag: r.etag, created: next.created };
      } catch (err) {
        if (err instanceof PreconditionFailed && !clientCondition && attempt < 20) continue;
        throw err;
      }
    }
  }

  /**
   * A node operation on a stored document: inline when it is small or already parsed (its tree
   * kept for the next one when `keep`), in the checker's worker thread when it is large.
   */
  private async nodeOp(
    stored: StoredDocument | string,
    sel: NodeSelector,
    op: NodeOp,
    ref: DocumentRef,
    keep: boolean,
  ): Promise<{
    node?: { contentType: string; body: string };
    changed?: { text: string; created: boolean; facts: DocumentFacts };
  }> {
    const ctx = this.validationContext(ref);
    // a string is a generated document: never cached
    const text = typeof stored === 'string' ? stored : stored.body;
    const parsed = typeof stored !== 'string' && this.parsed.get(documentKey(stored))?.etag === stored.etag;
    const outcome =
      parsed || !this.deps.checker.offloads(Buffer.byteLength(text, 'utf8'))
        ? applyNodeOp(ref.auid, typeof stored === 'string' ? stored : this.parseStored(stored, keep), sel, op, ctx)
        : await this.deps.checker.node(ref.auid, text, sel, op, ctx);
    if ('opError' in outcome || 'selectorError' in outcome) throw nodeOpError(outcome);
    return outcome;
  }

  private validationContext(ref: DocumentRef): ValidationContext {
    return { xui: ref.xui || undefined, domain: this.deps.options.domain.domain };
  }

  /** Stores a whole new version, after what its check found. */
  private async write(
    ref: DocumentRef,
    facts: DocumentFacts,
    text: string,
    cond: WriteCondition,
  ): Promise<{ etag: string; created: boolean }> {
    const usage = usageByAuid(ref.auid)!;
    const first = facts.problems[0];
    if (first) {
      if (first.kind === 'schema')
        throw new XcapFailure(409, { tag: 'schema-validation-error', phrase: first.message });
      if (first.kind === 'constraint') throw new XcapFailure(409, { tag: 'constraint-failure', phrase: first.phrase });
      throw new XcapFailure(409, {
        tag: 'uniqueness-failure',
        exists: [{ field: first.field, altValues: first.altValues ?? [] }],
      });
    }
    for (const f of facts.forbiddenClaims) {
      const holder = await this.deps.docs.holderOf(ref.auid, f.field, f.value);
      if (holder && documentKey(holder) !== documentKey(ref))
        throw new XcapFailure(409, { tag: 'constraint-failure', phrase: f.phrase });
    }
    for (const uri of facts.addressClaims) {
      const aor = this.deps.options.domain.canonical(uri);
      if (aor && (await this.deps.users.exists(aor)))
        throw new XcapFailure(409, { tag: 'constraint-failure', phrase: `${uri} is the address of a user` });
    }
    try {
      return await this.deps.docs.put(ref, text, cond, facts.uniqueKeys);
    } catch (err) {
      if (!(err instanceof UniquenessFailure)) throw err;
      const candidates = proposeAltValues(err.value, () => false, 6);
      const free: string[] = [];
      for (const c of candidates)
        if (free.length < 3 && (await this.deps.docs.isFree(ref.auid, err.field, c))) free.push(c);
      const field = usage.uniqueKeySelectors?.[err.field] ?? err.field;
      throw new XcapFailure(409, { tag: 'uniqueness-failure', exists: [{ field, altValues: free }] });
    }
  }

  private written(ctx: Context, result: { etag: string; created: boolean }): void {
    ctx.set('ETag', quote(result.etag));
    emptyBody(ctx, result.created ? 201 : 200);
  }

  /** xcap-caps (global) and xcap-directory (per user) are generated, never stored. */
  private async generated(ctx: Context, uri: XcapUri, usage: ApplicationUsage, ref: DocumentRef): Promise<void> {
    if (ctx.method !== 'GET') throw new XcapFailure(405, undefined, { Allow: 'GET' });
    let body: string;
    if (uri.auid === XCAP_CAPS_AUID) {
      body = xcapCapsDocument(this.usages);
    } else if (uri.auid === RLS_SERVICES_AUID) {
      // RFC 4826 4.5: global/index is the union of every user's services, never written itself
      if (ref.path !== 'index') throw new XcapFailure(404);
      const all = await this.deps.docs.list({ auid: RLS_SERVICES_AUID });
      body = await this.deps.checker.mergeRlsServices(all.filter((d) => d.tree === 'users').map((d) => d.body));
    } else {
      if (ref.tree !== 'users' || ref.path !== XCAP_DIRECTORY_DOCUMENT) throw new XcapFailure(404);
      const docs = await this.deps.docs.list({ xui: ref.xui });
      body = xcapDirectoryDocument(
        ref.xui,
        docs.map((d) => ({
          auid: d.auid,
          documentPath: d.path,
          etag: d.etag,
          lastModified: d.lastModified,
          size: d.size,
        })),
        this.deps.options.rootUri,
      );
    }
    const etag = createHash('sha1').update(body).digest('base64url').slice(0, 20);
    // as in get(): a missing node is 404 before any precondition, and without ETag
    const node = uri.nodeSelector
      ? (await this.nodeOp(body, uri.nodeSelector, { kind: 'get' }, ref, false)).node!
      : { contentType: usage.mimeType, body };
    this.checkReadPreconditions(ctx, etag);
    ctx.set('ETag', quote(etag));
    reply(ctx, node.contentType, node.body);
  }

  private async currentEtag(ref: DocumentRef): Promise<string | undefined> {
    return (await this.deps.docs.get(ref))?.etag;
  }

  private checkReadPreconditions(ctx: Context, etag: string): void {
    const ifMatch = etagList(ctx.get('if-match'));
    if (ifMatch && ifMatch !== '*' && !ifMatch.includes(etag)) throw new XcapFailure(412);
    const ifNone = etagList(ctx.get('if-none-match'));
    if (ifNone && (ifNone === '*' || ifNone.includes(etag)))
      throw new XcapFailure(304, undefined, { ETag: quote(etag) });
  }

  /** The store condition for a write, from If-Match / If-None-Match and the current ETag. */
  private writeCondition(ctx: Context, current: string | undefined): WriteCondition {
    const ifMatch = etagList(ctx.get('if-match'));
    const ifNone = etagList(ctx.get('if-none-match'));
    if (ifNone === '*') return { kind: 'absent' };
    if (ifNone && current !== undefined && ifNone.includes(current)) throw new XcapFailure(412);
    if (ifMatch === '*') return { kind: 'exists' };
    if (ifMatch) {
      if (current === undefined || !ifMatch.includes(current)) throw new XcapFailure(412);
      return { kind: 'etag', etag: current };
    }
    return { kind: 'any' };
  }

  /** The answer to a body that is not an acceptable XML document. */
  private xmlFailure(kind: XmlErrorKind): XcapFailure {
    switch (kind) {
      case 'not-utf-8':
        return new XcapFailure(409, { tag: 'not-utf-8' });
      case 'too-large':
        return new XcapFailure(413);
      case 'doctype-forbidden':
        return new XcapFailure(409, {
          tag: 'constraint-failure',
          phrase: 'DOCTYPE and entity declarations are not accepted',
        });
      case 'too-deep':
        return new XcapFailure(409, {
          tag: 'constraint-failure',
          phrase: `elements nested deeper than ${this.deps.options.maxDepth} levels`,
        });
      default:
        return new XcapFailure(409, { tag: 'not-well-formed' });
    }
  }

  /**
   * The stored document parsed: from the cache when this version was parsed before, else parsed
   * now, and kept for the next node operation when `keep`. Read-only.
   */
  private parseStored(doc: StoredDocument, keep: boolean): XmlDocument {
    const key = documentKey(doc);
    const hit = this.parsed.get(key);
    if (hit) {
      this.parsed.delete(key);
      if (hit.etag === doc.etag) {
        this.parsed.set(key, hit); // now the most recently used
        return hit.doc;
      }
      this.parsedBytes -= hit.size;
    }
    const tree = parseXml(doc.body, { maxBytes: Number.MAX_SAFE_INTEGER, maxDepth: 1000 });
    if (keep && doc.size <= PARSED_CACHE_BYTES / 4) {
      deepFreeze(tree);
      this.parsed.set(key, { etag: doc.etag, doc: tree, size: doc.size });
      this.parsedBytes += doc.size;
      for (const [k, v] of this.parsed) {
        if (this.parsedBytes <= PARSED_CACHE_BYTES) break;
        this.parsed.delete(k);
        this.parsedBytes -= v.size;
      }
    }
    return tree;
  }
}

/**
 * A reply with a body, its Content-Type exactly the media type given: koa's `ctx.type` would
 * add `; charset=utf-8` to some types (those the mime database knows a charset for) and not to
 * others, so that usages would differ. XML bodies say their encoding themselves.
 */
function reply(ctx: Context, contentType: string, body: string): void {
  ctx.set('Content-Type', contentType);
  ctx.body = body;
}

/** Freezes a parsed tree and everything in it, so that a shared tree cannot be changed by mistake. */
function deepFreeze<T>(value: T): T {
  const stack: object[] = [value as object];
  while (stack.length) {
    const o = stack.pop()!;
    Object.freeze(o);
    for (const v of Object.values(o))
      if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) stack.push(v as object);
  }
  return value;
}
