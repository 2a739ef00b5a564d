/**
 * Everything the XCAP server must know about a new version of a document before it stores it:
 * its validation problems and the values it claims (unique keys, claims other documents must
 * not hold, addresses). Pure: no I/O, so that it runs the same in a worker thread
 * (document-checker.ts) or inline.
 */
import { XmlError, parseXml, type XmlDocument, type XmlErrorKind } from '../xml/xml-tree.js';
import { usageByAuid } from './usages/index.js';
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

/** The facts of a parsed document under `usage`. */
export function documentFacts(usage: ApplicationUsage, doc: XmlDocument, ctx: ValidationContext): DocumentFacts {
  return {
    problems: usage.validate(doc, ctx),
    uniqueKeys: usage.uniqueKeys?.(doc) ?? [],
    forbiddenClaims: usage.forbiddenClaims?.(doc) ?? [],
    addressClaims: usage.addressClaims?.(doc) ?? [],
  };
}

/** Parses the bytes of a whole document PUT and checks them against the usage named `auid`. */
export function parseAndCheck(auid: string, body: Uint8Array, limits: ParseLimits, ctx: ValidationContext): CheckOutcome {
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
