/**
 * Everything the XCAP server must know about a new version of a document before it stores it:
 * its validation problems and the values it claims (unique keys, claims other documents must
 * not hold, addresses). Pure: no I/O, so that it runs the same in a worker thread
 * (document-checker.ts) or inline.
 */
import { XmlError, parseXml, serializeXml, type XmlDocument, type XmlErrorKind } from '../xml/xml-tree.js';
import { XcapOpError, deleteNode, getNode, putAttribute, putElement, type XcapOpErrorTag } from './xcap-ops.js';
import { NodeSelectorError, type NodeSelector } from './xcap-uri.js';
import { usageByAuid } from './usages/index.js';
import { mergeRlsServices } from './usages/rls-services.js';
import type { ApplicationUsage, ValidationContext, ValidationProblem } from './usages/usage.js';

export interface DocumentFacts {
  problems: ValidationProblem[];
  uniqueKeys: Array<{ field: string; value: string }>;
  forbiddenClaims: Array<{ field: string; value: string; phrase: string }>;
  addressClaims: string[];
}

/** A whole document checked: its facts, or why its bytes are not an acceptable XML document. */
export type CheckOutcome = { facts: DocumentFacts } | { xmlError: { kind: XmlErrorKind; message: string } };

export interface ParseLimits {
  maxBytes: number;
  maxDepth: number;
}

/** Stored documents were within the request limits when written: read back without them. */
const STORED: ParseLimits = { maxBytes: Number.MAX_SAFE_INTEGER, maxDepth: 1000 };

/** The facts of a parsed document under `usage`. */
export function documentFacts(usage: ApplicationUsage, doc: XmlDocument, ctx: ValidationContext): DocumentFacts {
  return {
    problems: usage.validate(doc, ctx),
    uniqueKeys: usage.uniqueKeys?.(doc) ?? [],
    forbiddenClaims: usage.forbiddenClaims?.(doc) ?? [],
    addressClaims: usage.addressClaims?.(doc) ?? [],
  };
}

/** A node operation (RFC 4825 section 8) on a stored document. */
export type NodeOp =
  | { kind: 'get' }
  | { kind: 'put-element'; body: Uint8Array; maxDepth: number }
  | { kind: 'put-attribute'; body: Uint8Array }
  | { kind: 'delete' };

/**
 * What a node operation gave: the node (GET), the document's new version with its facts, or the
 * operation's failure as plain data (errors do not cross a worker boundary as their classes).
 */
export type NodeOutcome =
  | { node: { contentType: string; body: string } }
  | { changed: { text: string; created: boolean; facts: DocumentFacts } }
  | { opError: { tag: XcapOpErrorTag; message: string; ancestor?: string; phrase?: string } }
  | { selectorError: string };

/** Applies `op` at `sel` to a stored document (its text, or its tree when the caller has it parsed). */
export function applyNodeOp(
  auid: string,
  stored: string | XmlDocument,
  sel: NodeSelector,
  op: NodeOp,
  ctx: ValidationContext,
): NodeOutcome {
  const usage = usageByAuid(auid);
  if (!usage) throw new Error(`no application usage ${auid}`);
  const ns = usage.defaultNamespace;
  try {
    const doc = typeof stored === 'string' ? parseXml(stored, STORED) : stored;
    if (op.kind === 'get') return { node: getNode(doc, sel, ns) };
    const next =
      op.kind === 'delete'
        ? { created: false, ...deleteNode(doc, sel, ns) }
        : op.kind === 'put-attribute'
          ? putAttribute(doc, sel, Buffer.from(op.body), ns)
          : putElement(doc, sel, Buffer.from(op.body), ns, op.maxDepth);
    const text = serializeXml(next.doc, { declaration: true });
    return { changed: { text, created: next.created, facts: documentFacts(usage, next.doc, ctx) } };
  } catch (err) {
    if (err instanceof XcapOpError) {
      return {
        opError: {
          tag: err.tag,
          message: err.message,
          ...(err.ancestor !== undefined ? { ancestor: err.ancestor } : {}),
          ...(err.phrase !== undefined ? { phrase: err.phrase } : {}),
        },
      };
    }
    if (err instanceof NodeSelectorError) return { selectorError: err.message };
    throw err;
  }
}

/** Turns an operation's failure back into the error the XCAP server answers from. */
export function nodeOpError(outcome: Extract<NodeOutcome, { opError: unknown } | { selectorError: unknown }>): Error {
  if ('selectorError' in outcome) return new NodeSelectorError(outcome.selectorError);
  const { tag, message, ...extra } = outcome.opError;
  return new XcapOpError(tag, message, extra);
}

/** The global rls-services index (RFC 4826 section 4.5) of the users' stored documents, as text. */
export function mergedRlsServices(bodies: readonly string[]): string {
  return serializeXml(mergeRlsServices(bodies.map((b) => parseXml(b, STORED))), { declaration: true });
}

/** Parses the bytes of a whole document PUT and checks them against the usage named `auid`. */
export function parseAndCheck(
  auid: string,
  body: Uint8Array,
  limits: ParseLimits,
  ctx: ValidationContext,
): CheckOutcome {
  const usage = usageByAuid(auid);
  if (!usage) throw new Error(`no application usage ${auid}`);
  let doc: XmlDocument;
  try {
    doc = parseXml(Buffer.from(body.buffer, body.byteOffset, body.byteLength), limits);
  } catch (err) {
    if (err instanceof XmlError) return { xmlError: { kind: err.kind, message: err.message } };
    throw err;
  }
  return { facts: documentFacts(usage, doc, ctx) };
}
