/**
 * XCAP application usages (RFC 4825 section 5): the contract every usage module implements.
 * Pure: no I/O. The validation toolkit the usages share is in schema-checker.ts; XML Schema
 * datatypes and URI checks are in xml/.
 */
import type { XmlDocument } from '../../xml/xml-tree.js';

// ---------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------

/** One reason a document is refused; maps onto the XCAP error conditions (RFC 4825 section 11). */
export type ValidationProblem =
  /** -> `<schema-validation-error>`; `message` names the element and the rule that failed. */
  | { kind: 'schema'; message: string }
  /** -> `<constraint-failure phrase="...">`. */
  | { kind: 'constraint'; phrase: string }
  /**
   * -> `<uniqueness-failure><exists field="..."><alt-value>...`. `field` is a node selector relative
   * to the document (e.g. `rls-services/service/@uri`); `altValues` are values not in use.
   */
  | { kind: 'uniqueness'; field: string; value: string; altValues?: string[] };

export interface ValidationContext {
  /** The XUI the document belongs to (undefined for global documents). */
  xui?: string;
  /** The SIP domain this server is responsible for. */
  domain: string;
}

export interface ApplicationUsage {
  /** Application unique ID: the first path segment under the XCAP root. */
  auid: string;
  /** MIME type of the documents (Content-Type of GET / PUT of whole documents). */
  mimeType: string;
  /** Namespace that unprefixed names of node selectors refer to. */
  defaultNamespace: string;
  /** Every namespace whose elements the usage understands (for xcap-caps); includes defaultNamespace. */
  namespaces?: string[];
  /** Document names allowed under users/<xui>/ (e.g. /^index$/), or undefined for any. */
  documentNames?: RegExp;
  /** Document names that exist under global/ (e.g. ['index']). */
  globalDocuments?: string[];
  /** True when clients may not write (PUT / DELETE) the usage's documents: they are generated. */
  readOnly?: boolean;
  /** Schema validation plus the usage's additional constraints, for one whole document. */
  validate(doc: XmlDocument, ctx: ValidationContext): ValidationProblem[];
  /**
   * Values that must be unique across ALL documents of the usage (of all users): the server
   * compares them with those of the other documents. Values are normalised so that plain string
   * equality is the right comparison.
   */
  uniqueKeys?(doc: XmlDocument): Array<{ field: string; value: string }>;
  /**
   * For each `field` returned by uniqueKeys: the node selector to put in the `field` attribute
   * of `<exists>` when the server reports a cross-document uniqueness failure.
   */
  uniqueKeySelectors?: Record<string, string>;
  /**
   * Values of the document that no OTHER document of the usage may hold as a unique key (a group
   * member that is itself a group): the server refuses the write with the phrase as a
   * constraint-failure.
   */
  forbiddenClaims?(doc: XmlDocument): Array<{ field: string; value: string; phrase: string }>;
  /**
   * SIP URIs the document makes this server answer for (e.g. list services): the server
   * refuses a document claiming a provisioned user's address of record.
   */
  addressClaims?(doc: XmlDocument): string[];
  /** A document the server may create for a user who has none, or undefined. */
  defaultDocument?(xui: string): string | undefined;
}
