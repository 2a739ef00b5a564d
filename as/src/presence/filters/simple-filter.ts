/**
 * Event notification filtering: the filter format of RFC 4661 (application/simple-filter+xml)
 * and the notifier side of RFC 4660 for presence (PIDF) documents.
 *
 * Pure: no I/O.
 *
 * How a notifier uses this module (RFC 4660 section numbers in brackets):
 *  - SUBSCRIBE with a body: `parseFilterSet(body, contentType)`; a FilterError carries the
 *    response to send: 415 + Accept when the body is not application/simple-filter+xml [5.2],
 *    400 when it is not a readable XML document, 488 + Warning when it is XML but not a filter
 *    we accept: not valid against the RFC 4661 schema, an expression outside our XPath subset
 *    or with an unbound prefix, two filters for one resource or domain, over the limits
 *    [3.3.4, 5.2, 5.4, 8]. Then `mergeFilterSets(undefined, parsed)` (initial SUBSCRIBE) or
 *    `mergeFilterSets(current, parsed)` (SUBSCRIBE in the dialog) [5.2.2]; it may throw a 488
 *    FilterError too. A SUBSCRIBE in the dialog WITHOUT a body keeps the filters: do not call
 *    either function [5.2.2].
 *  - Each notification, for a resource: `filtersFor(set, resource)`, then
 *    `triggersFire(previousSent, current, filters)` decides whether to send [5.3.2], and
 *    `applyContentFilters(current, filters)` gives the body [5.3.1]. Both take the document that
 *    AUTHORIZATION produced (presence rules, polite blocking), never the raw state: RFC 4660
 *    5.3.1 makes the package document, as derived for this watcher, the input of the filter,
 *    and items the watcher may not see must not be reachable through a filter (5.3.1, 5.3.2).
 *    Selecting an item that authorization removed simply selects nothing (the RECOMMENDED
 *    "ignore that part", without telling the watcher the item exists).
 *  - `previousSent` is the authorized document of the last NOTIFY actually SENT, before content
 *    filtering (RFC 4661 section 3.6.1): keep it only when a NOTIFY goes out. It is undefined
 *    for the first NOTIFY and for the NOTIFY after a SUBSCRIBE that placed, changed or
 *    re-enabled filters: triggers are ignored then [5.3, 5.3.1].
 *  - When `applyContentFiltersDetailed` says `empty`, the filter selected nothing: RFC 4660
 *    5.3.1 wants a NOTIFY without a body.
 *  - A filter found unacceptable after the subscription was accepted: terminate it with the
 *    event reason {@link BADFILTER_REASON} [5.4].
 */
import {
  NamespaceScope,
  XmlError,
  attr,
  childElements,
  isNCName,
  parseXml,
  textContent,
  xmlNamespaces,
  type XmlElement,
} from '../../xml/xml-tree.js';
import { DM_NS, PIDF_NS, PidfError, pidfOfTree, serializePidf } from '../pidf/index.js';
import { aor, parseUri } from '../../sip/uri.js';
import {
  UnsupportedXPath,
  compileXPath,
  stringValue,
  xpathNumber,
  xpathTree,
  type CompiledXPath,
  type XPathAttribute,
  type XPathElement,
  type XPathNode,
  type XPathTree,
} from './xpath-subset.js';

export const SIMPLE_FILTER_NS = 'urn:ietf:params:xml:ns:simple-filter';
export const SIMPLE_FILTER_CONTENT_TYPE = 'application/simple-filter+xml';
/** Subscription-State reason for a subscription ended because of its filter (RFC 4660 sections 5.4, 9). */
export const BADFILTER_REASON = 'badfilter';

/** What we accept in one filter document. */
export const FILTER_LIMITS = {
  maxBytes: 64 * 1024,
  maxDepth: 24,
  /** <what>, <changed>, <added> and <removed> elements together: RFC 4660 section 8 recommends 40. */
  maxItems: 40,
  /** <include> and <exclude> elements together. */
  maxSelections: 100,
  /** <filter> elements (those without <what> or <trigger> included). */
  maxFilters: 100,
} as const;

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/** One <include> or <exclude>: an XPath selection, or every element of a namespace (RFC 4661 3.5.3). */
export type Selection =
  { type: 'xpath'; expression: string; xpath: CompiledXPath } | { type: 'namespace'; namespace: string };

/** An expression of <changed>, <added> or <removed>, compiled with the bindings of its document. */
export interface Reference {
  expression: string;
  xpath: CompiledXPath;
}

/** <changed> (RFC 4661 section 3.6.1): from / to values whitespace-collapsed, `by` as a number. */
export interface ChangedCondition extends Reference {
  from?: string;
  to?: string;
  by?: number;
}

/** One <trigger>: every condition must hold (AND); the triggers of a filter are OR-ed (RFC 4661 3.6). */
export interface Trigger {
  changed: ChangedCondition[];
  added: Reference[];
  removed: Reference[];
}

export interface Filter {
  id: string;
  uri?: string;
  /** Lowercased. */
  domain?: string;
  remove: boolean;
  enabled: boolean;
  /** Absent when the document had no <what>, or an empty one (RFC 4660 section 5.4). */
  what?: { include: Selection[]; exclude: Selection[] };
  /** Empty <trigger> elements are dropped (RFC 4660 section 5.4). */
  triggers: Trigger[];
}

export interface FilterSet {
  filters: Filter[];
  /**
   * prefix -> namespace, from <ns-bindings>. Informational after parsing: every expression was
   * compiled with the bindings of its own document (a merged set may hold filters from several).
   */
  bindings: Map<string, string>;
  /** The 'package' attribute of <filter-set>, when present. */
  package?: string;
}

const REASONS = { 400: 'Bad Request', 415: 'Unsupported Media Type', 488: 'Not Acceptable Here' } as const;

/** A filter document we refuse, with the SIP response RFC 4660 asks for. */
export class FilterError extends Error {
  readonly status: 400 | 488 | 415;
  /** SIP reason phrase. */
  readonly reason: string;
  /** Why, for a Warning header (RFC 4660 section 5.4): printable ASCII, at most 200 characters. */
  readonly warning?: string;
  /** For 415: the value of the Accept header to send. */
  readonly accept?: string;
  /**
   * A valid filter that asks for more than this server implements (an expression outside the
   * XPath subset): the subscription is accepted without it, with a Warning, rather than refused.
   */
  readonly unsupported: boolean;

  constructor(
    status: 400 | 488 | 415,
    warning?: string,
    options: { accept?: string; cause?: unknown; unsupported?: boolean } = {},
  ) {
    super(
      warning === undefined ? REASONS[status] : `${REASONS[status]}: ${warning}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'FilterError';
    this.status = status;
    this.reason = REASONS[status];
    this.unsupported = options.unsupported ?? false;
    if (warning !== undefined) {
      const w = warning.replace(/[^\x20-\x7e]/g, '?');
      this.warning = w.length > 200 ? `${w.slice(0, 197)}...` : w;
    }
    if (options.accept !== undefined) this.accept = options.accept;
  }

  /** The Warning header value (code 399, RFC 3261 section 20.43), or undefined without a warning. */
  warningHeader(agent = '-'): string | undefined {
    if (this.warning === undefined) return undefined;
    return `399 ${agent} "${this.warning.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  }
}

function notAcceptable(warning: string, cause?: unknown): never {
  throw new FilterError(488, warning, cause === undefined ? {} : { cause });
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

const collapse = (s: string): string => s.replace(/[ \t\n\r]+/g, ' ').trim();
const DECIMAL_RE = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;

function parseBoolean(v: string | undefined, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  const c = collapse(v);
  if (c === 'true' || c === '1') return true;
  if (c === 'false' || c === '0') return false;
  return notAcceptable(`${name}="${v.slice(0, 20)}" is not a boolean`);
}

function xmlErrorWarning(e: XmlError): string {
  switch (e.kind) {
    case 'doctype-forbidden':
      return 'filter document: DOCTYPE is not accepted';
    case 'not-utf-8':
      return 'filter document is not UTF-8';
    case 'too-large':
      return `filter document larger than ${FILTER_LIMITS.maxBytes} bytes`;
    case 'too-deep':
      return 'filter document nested too deep';
    default:
      return `filter document is not well-formed XML: ${e.message}`;
  }
}

/** 415 unless `contentType` is application/simple-filter+xml (UTF-8 if a charset is given). */
function checkContentType(contentType: string): void {
  const [type = '', ...params] = contentType.split(';');
  const refuse = (): never => {
    throw new FilterError(415, `filters must be ${SIMPLE_FILTER_CONTENT_TYPE}`, { accept: SIMPLE_FILTER_CONTENT_TYPE });
  };
  if (type.trim().toLowerCase() !== SIMPLE_FILTER_CONTENT_TYPE) refuse();
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq === -1 || p.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const cs = p
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    // RFC 4661 section 3: filter documents are UTF-8
    if (cs !== 'utf-8' && cs !== 'utf8') refuse();
  }
}

type Kind = 'ours' | 'unqualified' | 'other';

/** Reads a document in the simple-filter namespace, checking it against our schema. */
class FilterReader {
  private items = 0;
  private selections = 0;
  readonly bindings = new Map<string, string>();

  private kind(el: XmlElement, scope: NamespaceScope): { kind: Kind; local: string; scope: NamespaceScope } {
    const s = scope.child(el);
    const n = s.expand(el.name);
    return {
      kind: n.ns === SIMPLE_FILTER_NS ? 'ours' : n.ns === undefined ? 'unqualified' : 'other',
      local: n.local,
      scope: s,
    };
  }

  /** Unqualified attributes must be in `allowed`; qualified ones need an anyAttribute ##other. */
  private attributes(el: XmlElement, scope: NamespaceScope, allowed: readonly string[], anyOther: boolean): void {
    for (const k of Object.keys(el.attributes ?? {})) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
      const a = scope.expandAttribute(k);
      if (a.ns === undefined) {
        if (!allowed.includes(a.local)) notAcceptable(`attribute ${k} is not allowed on <${el.name}>`);
      } else if (a.ns === SIMPLE_FILTER_NS || !anyOther) {
        notAcceptable(`attribute ${k} is not allowed on <${el.name}>`);
      }
    }
  }

  /** Element-only content: no text, no CDATA. */
  private noText(el: XmlElement): void {
    for (const n of el.elements ?? []) {
      if (n.type === 'text' || n.type === 'cdata') notAcceptable(`<${el.name}> cannot contain text`);
    }
  }

  /** Simple content: text only. */
  private simpleText(el: XmlElement): string {
    if (childElements(el).length > 0) notAcceptable(`<${el.name}> cannot contain elements`);
    return textContent(el);
  }

  private count(what: 'item' | 'selection'): void {
    if (what === 'item' && ++this.items > FILTER_LIMITS.maxItems) {
      notAcceptable(`more than ${FILTER_LIMITS.maxItems} <what>, <changed>, <added> and <removed> elements`);
    }
    if (what === 'selection' && ++this.selections > FILTER_LIMITS.maxSelections) {
      notAcceptable(`more than ${FILTER_LIMITS.maxSelections} <include> and <exclude> elements`);
    }
  }

  private compile(expression: string, where: string): CompiledXPath {
    const e = expression.trim();
    if (e === '') notAcceptable(`empty expression in <${where}>`);
    try {
      return compileXPath(e, this.bindings);
    } catch (err) {
      if (err instanceof UnsupportedXPath) {
        throw new FilterError(488, `unsupported expression in <${where}>: ${err.message}`, {
          cause: err,
          unsupported: true,
        });
      }
      throw err;
    }
  }

  filterSet(root: XmlElement): FilterSet {
    const r = this.kind(root, NamespaceScope.root());
    if (r.kind !== 'ours' || r.local !== 'filter-set') {
      notAcceptable(`root element must be filter-set of ${SIMPLE_FILTER_NS}`);
    }
    this.attributes(root, r.scope, ['package'], true);
    this.noText(root);
    const kids = childElements(root);
    let k = 0;
    const first = kids[0];
    if (first) {
      const f = this.kind(first, r.scope);
      if (f.kind === 'ours' && f.local === 'ns-bindings') {
        this.nsBindings(first, f.scope);
        k = 1;
      }
    }
    const filters: Filter[] = [];
    for (; k < kids.length; k++) {
      const c = kids[k]!;
      const n = this.kind(c, r.scope);
      if (n.kind !== 'ours' || n.local !== 'filter') notAcceptable(`<${c.name}> is not allowed in <filter-set> here`);
      if (filters.length >= FILTER_LIMITS.maxFilters) notAcceptable(`more than ${FILTER_LIMITS.maxFilters} filters`);
      filters.push(this.filter(c, n.scope));
    }
    if (filters.length === 0) notAcceptable('<filter-set> without <filter>');

    // RFC 4661 section 3.4: ids are unique in a filter-set
    const ids = new Set<string>();
    for (const f of filters) {
      if (ids.has(f.id)) notAcceptable(`filter id "${f.id}" used twice`);
      ids.add(f.id);
    }
    // RFC 4660 sections 3.3.1 and 5.2: one filter per resource or domain. Removals and bare
    // enable/disable toggles are left out: a refresh may remove the old filter of a resource and
    // place a new one, and a toggle may omit its target (mergeFilterSets checks the result).
    checkTargets(filters.filter((f) => !f.remove && (f.what !== undefined || f.triggers.length > 0)));

    const set: FilterSet = { filters, bindings: new Map(this.bindings) };
    const pkg = attr(root, 'package');
    if (pkg !== undefined) set.package = collapse(pkg);
    return set;
  }

  private nsBindings(el: XmlElement, scope: NamespaceScope): void {
    this.attributes(el, scope, [], false);
    this.noText(el);
    const kids = childElements(el);
    if (kids.length === 0) notAcceptable('<ns-bindings> without <ns-binding>');
    for (const c of kids) {
      const n = this.kind(c, scope);
      if (n.kind !== 'ours' || n.local !== 'ns-binding') notAcceptable(`<${c.name}> is not allowed in <ns-bindings>`);
      this.attributes(c, n.scope, ['prefix', 'urn'], false);
      this.noText(c);
      if (childElements(c).length > 0) notAcceptable('<ns-binding> cannot contain elements');
      const prefix = attr(c, 'prefix');
      const urn = attr(c, 'urn');
      if (prefix === undefined || urn === undefined) notAcceptable('<ns-binding> needs prefix and urn');
      const p = prefix.trim();
      const u = collapse(urn);
      // '' is our one extension: it names the namespace of unprefixed element names (xpath-subset.ts)
      if (p !== '' && !isNCName(p)) notAcceptable(`ns-binding prefix "${prefix.slice(0, 40)}" is not an NCName`);
      if (u === '' || /\s/.test(u)) notAcceptable(`ns-binding urn "${urn.slice(0, 60)}" is not a URI`);
      if (p === 'xml' && u !== xmlNamespaces.xml) notAcceptable('the xml prefix cannot be rebound');
      const had = this.bindings.get(p);
      if (had !== undefined && had !== u) notAcceptable(`prefix "${p}" bound twice`);
      this.bindings.set(p, u);
    }
  }

  private filter(el: XmlElement, scope: NamespaceScope): Filter {
    this.attributes(el, scope, ['id', 'uri', 'domain', 'remove', 'enabled'], true);
    this.noText(el);
    const id = attr(el, 'id');
    if (id === undefined) notAcceptable('<filter> without id');
    const f: Filter = {
      id,
      remove: parseBoolean(attr(el, 'remove'), 'remove', false),
      enabled: parseBoolean(attr(el, 'enabled'), 'enabled', true),
      triggers: [],
    };
    const uri = attr(el, 'uri');
    const domain = attr(el, 'domain');
    // RFC 4661 section 3.4
    if (uri !== undefined && domain !== undefined) notAcceptable(`filter "${id}" has both uri and domain`);
    if (uri !== undefined) {
      const u = collapse(uri);
      if (u === '' || /\s/.test(u)) notAcceptable(`filter "${id}": uri is not a URI`);
      f.uri = u;
    }
    if (domain !== undefined) {
      const d = collapse(domain).toLowerCase();
      if (!/^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$|^\[[0-9a-f:.]+\]$/.test(d))
        notAcceptable(`filter "${id}": domain is not a host name`);
      f.domain = d;
    }
    // sequence: what?, trigger*, any ##other*
    let stage = 0;
    for (const c of childElements(el)) {
      const n = this.kind(c, scope);
      if (n.kind === 'other') {
        stage = 2; // extension elements: ignored (processContents lax)
        continue;
      }
      if (n.kind === 'ours' && n.local === 'what' && stage === 0) {
        stage = 1;
        this.count('item');
        const what = this.what(c, n.scope);
        if (what) f.what = what;
        continue;
      }
      if (n.kind === 'ours' && n.local === 'trigger' && stage <= 1) {
        stage = 1;
        const t = this.trigger(c, n.scope);
        if (t) f.triggers.push(t);
        continue;
      }
      notAcceptable(`<${c.name}> is not allowed in <filter> here`);
    }
    return f;
  }

  private selection(el: XmlElement, scope: NamespaceScope, where: 'include' | 'exclude'): Selection {
    this.attributes(el, scope, ['type'], true);
    this.count('selection');
    const typeAttr = attr(el, 'type');
    const type = typeAttr === undefined ? 'xpath' : typeAttr.trim();
    const value = this.simpleText(el);
    if (type === 'namespace') {
      const ns = collapse(value);
      if (ns === '' || /\s/.test(ns)) notAcceptable(`<${where} type="namespace"> needs one namespace URI`);
      return { type: 'namespace', namespace: ns };
    }
    if (type !== 'xpath') notAcceptable(`<${where}> type "${type.slice(0, 20)}" is neither xpath nor namespace`);
    return { type: 'xpath', expression: value.trim(), xpath: this.compile(value, where) };
  }

  private what(el: XmlElement, scope: NamespaceScope): Filter['what'] {
    this.attributes(el, scope, [], false);
    this.noText(el);
    const include: Selection[] = [];
    const exclude: Selection[] = [];
    // sequence: include*, exclude*, any ##other*
    let stage = 0;
    for (const c of childElements(el)) {
      const n = this.kind(c, scope);
      if (n.kind === 'other') {
        stage = 2;
        continue;
      }
      if (n.kind === 'ours' && n.local === 'include' && stage === 0)
        include.push(this.selection(c, n.scope, 'include'));
      else if (n.kind === 'ours' && n.local === 'exclude' && stage <= 1) {
        stage = 1;
        exclude.push(this.selection(c, n.scope, 'exclude'));
      } else notAcceptable(`<${c.name}> is not allowed in <what> here`);
    }
    // RFC 4660 section 5.4: an empty <what> is as if absent
    return include.length === 0 && exclude.length === 0 ? undefined : { include, exclude };
  }

  private reference(el: XmlElement, scope: NamespaceScope, where: string, attrs: readonly string[]): Reference {
    this.attributes(el, scope, attrs, attrs.length > 0);
    this.count('item');
    const text = this.simpleText(el);
    return { expression: text.trim(), xpath: this.compile(text, where) };
  }

  private trigger(el: XmlElement, scope: NamespaceScope): Trigger | undefined {
    this.attributes(el, scope, [], false);
    this.noText(el);
    const t: Trigger = { changed: [], added: [], removed: [] };
    // sequence: changed*, added*, removed*, any ##other*
    const order = ['changed', 'added', 'removed'];
    let stage = 0;
    for (const c of childElements(el)) {
      const n = this.kind(c, scope);
      if (n.kind === 'other') {
        stage = 3;
        continue;
      }
      const at = n.kind === 'ours' ? order.indexOf(n.local) : -1;
      if (at === -1 || at < stage) notAcceptable(`<${c.name}> is not allowed in <trigger> here`);
      stage = at;
      if (n.local === 'changed') t.changed.push(this.changed(c, n.scope));
      else if (n.local === 'added') t.added.push(this.reference(c, n.scope, 'added', []));
      else t.removed.push(this.reference(c, n.scope, 'removed', []));
    }
    // RFC 4660 section 5.4: an empty <trigger> is as if absent
    return t.changed.length + t.added.length + t.removed.length === 0 ? undefined : t;
  }

  private changed(el: XmlElement, scope: NamespaceScope): ChangedCondition {
    const ref = this.reference(el, scope, 'changed', ['from', 'to', 'by']);
    const c: ChangedCondition = { ...ref };
    const from = attr(el, 'from');
    const to = attr(el, 'to');
    const by = attr(el, 'by');
    if (from !== undefined) c.from = collapse(from);
    if (to !== undefined) c.to = collapse(to);
    if (by !== undefined) {
      const b = collapse(by);
      if (!DECIMAL_RE.test(b)) notAcceptable(`<changed by="${by.slice(0, 20)}"> is not a decimal`);
      c.by = Math.abs(Number(b));
      // RFC 4661 section 3.6.1.4: with 'by', from and to are decimals too
      if ((c.from !== undefined && !DECIMAL_RE.test(c.from)) || (c.to !== undefined && !DECIMAL_RE.test(c.to))) {
        notAcceptable('<changed> with by: from and to must be decimals');
      }
    }
    return c;
  }
}

/** Identity of a filter's target: uri (as an address of record when it parses), domain, or the Request-URI. */
function targetKey(f: Filter): string {
  if (f.domain !== undefined) return `domain:${f.domain}`;
  if (f.uri === undefined) return 'request-uri';
  try {
    return `uri:${aor(f.uri)}`;
  } catch {
    return `uri:${f.uri}`;
  }
}

function checkTargets(filters: readonly Filter[]): void {
  const seen = new Map<string, string>();
  for (const f of filters) {
    const key = targetKey(f);
    const other = seen.get(key);
    if (other !== undefined) notAcceptable(`filters "${other}" and "${f.id}" are for the same resource or domain`);
    seen.set(key, f.id);
  }
}

/**
 * Parses and checks a filter document (RFC 4661). `contentType`, when given, is the SUBSCRIBE's
 * Content-Type. Throws {@link FilterError}:
 *  - 415 (with `accept`) for another content type or a charset other than UTF-8 (RFC 4660 5.2);
 *  - 400 when the body is not a readable XML document: not well-formed, not UTF-8, a DOCTYPE,
 *    too large or too deep;
 *  - 488 for XML that is not a filter we accept (RFC 4660 sections 3.3.4, 5.2, 5.4 and 8): a
 *    root other than {urn:ietf:params:xml:ns:simple-filter}filter-set or any other departure from
 *    the schema (schemas/simple-filter.xsd), duplicate ids, uri with domain, an expression
 *    outside the XPath subset or with an unbound prefix, two filters for one target, over the
 *    limits of {@link FILTER_LIMITS}.
 * An empty body means "no filter change" (RFC 4660 5.2.2): check for it before calling.
 */
export function parseFilterSet(body: string | Buffer, contentType?: string): FilterSet {
  if (contentType !== undefined) checkContentType(contentType);
  let root: XmlElement;
  try {
    root = parseXml(body, { maxBytes: FILTER_LIMITS.maxBytes, maxDepth: FILTER_LIMITS.maxDepth }).root;
  } catch (e) {
    if (e instanceof XmlError) throw new FilterError(400, xmlErrorWarning(e), { cause: e });
    throw e;
  }
  return new FilterReader().filterSet(root);
}

// ---------------------------------------------------------------------------
// Refreshes and targets
// ---------------------------------------------------------------------------

/**
 * Applies a filter document received in the dialog to the filters in force (RFC 4660 sections
 * 3.3.3 and 5.2.2; RFC 4661 section 3.4), without changing either argument:
 *  - remove="true" removes the filter with that id (unknown ids are ignored);
 *  - a known id with <what> or <trigger> replaces that filter entirely;
 *  - a known id with neither only sets `enabled` (and the target, when it gives uri or domain):
 *    RFC 4661 lets a disabling or re-enabling filter omit its content;
 *  - a new id needs <what> or <trigger> when enabled (488 otherwise); a new disabled filter
 *    without content is ignored: there is nothing to keep;
 *  - afterwards no two filters may target the same resource or domain (488; replacing a filter
 *    under a new id while keeping its uri is such an error).
 * Returns undefined when no filter remains. Use `current` undefined for an initial SUBSCRIBE:
 * the checks above that need to know which filters are new apply there too.
 */
export function mergeFilterSets(current: FilterSet | undefined, update: FilterSet): FilterSet | undefined {
  const byId = new Map<string, Filter>();
  for (const f of current?.filters ?? []) byId.set(f.id, f);
  for (const f of update.filters) {
    if (f.remove) {
      byId.delete(f.id);
      continue;
    }
    const old = byId.get(f.id);
    const hasContent = f.what !== undefined || f.triggers.length > 0;
    if (hasContent) {
      byId.set(f.id, f);
    } else if (old) {
      const toggled: Filter = { ...old, enabled: f.enabled };
      if (f.uri !== undefined || f.domain !== undefined) {
        delete toggled.uri;
        delete toggled.domain;
        if (f.uri !== undefined) toggled.uri = f.uri;
        if (f.domain !== undefined) toggled.domain = f.domain;
      }
      byId.set(f.id, toggled);
    } else if (f.enabled) {
      notAcceptable(`filter "${f.id}" has neither <what> nor <trigger>`);
    }
  }
  if (byId.size === 0) return undefined;
  const filters = [...byId.values()];
  checkTargets(filters);
  const bindings = new Map(current?.bindings ?? []);
  for (const [p, u] of update.bindings) bindings.set(p, u);
  const set: FilterSet = { filters, bindings };
  const pkg = update.package ?? current?.package;
  if (pkg !== undefined) set.package = pkg;
  return set;
}

/** Host of a URI (lowercased), for domain filters; undefined when it has none (tel:). */
function hostOf(uri: string): string | undefined {
  try {
    const u = parseUri(uri);
    return u.host === '' ? undefined : u.host.toLowerCase();
  } catch {
    // pres:, im: and other user@host URIs
    const m = /^[A-Za-z][A-Za-z0-9+.-]*:(?:\/\/)?(?:[^@;?>/]*@)?(\[[0-9A-Fa-f:.]+\]|[^;?>:/@]+)/.exec(uri.trim());
    return m?.[1]?.toLowerCase();
  }
}

function sameResource(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return aor(a) === aor(b);
  } catch {
    return false;
  }
}

/**
 * The filters that apply to notifications about `resourceUri`, in document order: enabled ones
 * (a disabled filter is as if absent, RFC 4660 section 5.3) whose uri matches (SIP URIs as
 * addresses of record), those without uri and domain (they apply to the subscribed resource,
 * RFC 4660 sections 3.3.2, 4.1 and 5.2.1), and those whose domain is the resource's host, unless
 * a uri filter matched (a resource-specific filter overrides a domain one, RFC 4660 3.3.2). The
 * user part plays no role in domain matching (RFC 4661 section 3.4).
 */
export function filtersFor(set: FilterSet, resourceUri: string): Filter[] {
  const live = set.filters.filter((f) => f.enabled && !f.remove);
  const specific = live.some((f) => f.uri !== undefined && sameResource(f.uri, resourceUri));
  const host = hostOf(resourceUri);
  return live.filter((f) => {
    if (f.uri !== undefined) return sameResource(f.uri, resourceUri);
    if (f.domain !== undefined) return !specific && host !== undefined && f.domain === host;
    return true;
  });
}

// ---------------------------------------------------------------------------
// Content (<what>) on PIDF
// ---------------------------------------------------------------------------

/*
 * Validity (RFC 4660 section 5.3.1, RFC 4661 sections 3.5.1 and 3.5.2). The filtered document
 * must stay valid PIDF, so the document is cut along its schema:
 *  - STRUCTURAL elements: presence (root), pidf:tuple, its pidf:status, dm:person, dm:device.
 *    They are kept as skeletons when something inside them is kept: presence with entity,
 *    tuple / person / device with id, a tuple always with its status, a device always with its
 *    dm:deviceID (all mandatory).
 *  - UNITS: every other child of a structural element (basic, contact, note, timestamp,
 *    dm:deviceID, RPID and any extension element). A unit is kept or dropped whole: selecting
 *    something inside one (rpid:activities/rpid:busy, an attribute of rpid:class) keeps the whole
 *    unit, because we cannot check an extension's own schema, and an <exclude> that points inside
 *    a unit is not applied (RFC 4661 3.5.2: an exclusion that would invalidate is reversed).
 *  - Exclusions of mandatory items (presence, a status, a device's dm:deviceID, entity and id
 *    attributes) are not applied either. Attributes can be excluded from PIDF / data-model
 *    elements only (contact/@priority, note/@xml:lang ...).
 * Several filters: the result is the union of what each filter keeps. A filter without <what>
 * says nothing about content and takes no part. No <include> in a <what>: everything, minus the
 * exclusions.
 */

type Role = 'root' | 'tuple' | 'status' | 'person' | 'device' | 'unit' | 'inner';

/** A PIDF document's XPath tree with the role of each element: what content filters select from. */
export interface PidfIndex {
  tree: XPathTree;
  role: Map<XPathElement, Role>;
  all: XPathElement[];
}

function indexPidf(root: XmlElement): PidfIndex {
  const tree = xpathTree(root);
  const role = new Map<XPathElement, Role>();
  const all: XPathElement[] = [];
  const walk = (e: XPathElement, r: Role): void => {
    role.set(e, r);
    all.push(e);
    for (const c of e.children) {
      let cr: Role;
      if (r === 'unit' || r === 'inner') cr = 'inner';
      else if (r === 'root' && c.ns === PIDF_NS && c.local === 'tuple') cr = 'tuple';
      else if (r === 'root' && c.ns === DM_NS && c.local === 'person') cr = 'person';
      else if (r === 'root' && c.ns === DM_NS && c.local === 'device') cr = 'device';
      else if (r === 'tuple' && c.ns === PIDF_NS && c.local === 'status') cr = 'status';
      else cr = 'unit';
      walk(c, cr);
    }
  };
  walk(tree.root, 'root');
  return { tree, role, all };
}

const isStructural = (r: Role | undefined): boolean =>
  r === 'root' || r === 'tuple' || r === 'status' || r === 'person' || r === 'device';

function isMandatoryAttribute(a: XPathAttribute, role: Role | undefined): boolean {
  if (a.ns !== undefined) return false;
  return (
    (role === 'root' && a.local === 'entity') ||
    ((role === 'tuple' || role === 'person' || role === 'device') && a.local === 'id')
  );
}

function isMandatoryElement(e: XPathElement, role: Role | undefined, parentRole: Role | undefined): boolean {
  return role === 'root' || role === 'status' || (parentRole === 'device' && e.ns === DM_NS && e.local === 'deviceID');
}

/** What one filter keeps: elements (structural and units), and per element the attributes. */
class Keep {
  readonly elems = new Set<XPathElement>();
  readonly attrs = new Map<XPathElement, Set<XPathAttribute>>();

  constructor(private readonly ix: PidfIndex) {}

  private addAttr(a: XPathAttribute): void {
    let s = this.attrs.get(a.owner);
    if (!s) this.attrs.set(a.owner, (s = new Set()));
    s.add(a);
  }

  /** An element with everything below it (units are whole; structural children recursively). */
  full(e: XPathElement): void {
    this.elems.add(e);
    for (const a of e.attributes) this.addAttr(a);
    const r = this.ix.role.get(e);
    if (r === 'unit' || r === 'inner') return;
    for (const c of e.children) this.full(c);
  }

  /** A structural element with its attributes of namespace `ns` (and unqualified / xml ones). */
  self(e: XPathElement, ns: string): void {
    this.elems.add(e);
    for (const a of e.attributes) if (a.ns === undefined || a.ns === ns || a.ns === xmlNamespaces.xml) this.addAttr(a);
  }

  attribute(a: XPathAttribute): void {
    this.elems.add(a.owner);
    this.addAttr(a);
  }

  dropElement(e: XPathElement): void {
    this.elems.delete(e);
    this.attrs.delete(e);
    for (const c of e.children) this.dropElement(c);
  }

  dropAttribute(a: XPathAttribute): void {
    this.attrs.get(a.owner)?.delete(a);
  }

  get size(): number {
    return this.elems.size;
  }
}

/** The unit (or structural element) an element belongs to. */
function anchor(ix: PidfIndex, e: XPathElement): XPathElement {
  let x = e;
  while (ix.role.get(x) === 'inner' && x.parent) x = x.parent;
  return x;
}

function includeNode(ix: PidfIndex, keep: Keep, n: XPathNode): void {
  if (n.kind === 'attribute') {
    if (isStructural(ix.role.get(n.owner))) keep.attribute(n);
    else keep.full(anchor(ix, n.owner));
    return;
  }
  keep.full(isStructural(ix.role.get(n)) ? n : anchor(ix, n));
}

function excludeNode(ix: PidfIndex, keep: Keep, n: XPathNode): void {
  if (n.kind === 'attribute') {
    const r = ix.role.get(n.owner);
    const known = n.owner.ns === PIDF_NS || n.owner.ns === DM_NS;
    if (known && r !== 'inner' && !isMandatoryAttribute(n, r)) keep.dropAttribute(n);
    return;
  }
  const r = ix.role.get(n);
  if (r === 'inner') return;
  if (isMandatoryElement(n, r, n.parent ? ix.role.get(n.parent) : undefined)) return;
  keep.dropElement(n);
}

function keepFor(ix: PidfIndex, what: NonNullable<Filter['what']>): Keep {
  const keep = new Keep(ix);
  if (what.include.length === 0) keep.full(ix.tree.root);
  for (const sel of what.include) {
    if (sel.type === 'xpath') {
      for (const n of sel.xpath.select(ix.tree)) includeNode(ix, keep, n);
    } else {
      for (const e of ix.all) {
        if (e.ns !== sel.namespace) continue;
        const r = ix.role.get(e);
        if (isStructural(r)) keep.self(e, sel.namespace);
        else if (r === 'unit') keep.full(e);
      }
    }
  }
  for (const sel of what.exclude) {
    if (sel.type === 'xpath') {
      for (const n of sel.xpath.select(ix.tree)) excludeNode(ix, keep, n);
    } else {
      for (const e of ix.all) {
        if (e.ns === sel.namespace) excludeNode(ix, keep, e);
        for (const a of e.attributes) if (a.ns === sel.namespace) excludeNode(ix, keep, a);
      }
    }
  }
  return keep;
}

/** Adds skeleton ancestors and mandatory children of everything kept. */
function complete(ix: PidfIndex, elems: Set<XPathElement>): void {
  elems.add(ix.tree.root);
  for (const e of [...elems]) {
    for (let p = e.parent; p && !elems.has(p); p = p.parent) elems.add(p);
  }
  for (const e of [...elems]) {
    const r = ix.role.get(e);
    for (const c of e.children) {
      if (r === 'tuple' && ix.role.get(c) === 'status') elems.add(c);
      if (r === 'device' && c.ns === DM_NS && c.local === 'deviceID') elems.add(c);
    }
  }
}

function emit(
  ix: PidfIndex,
  node: XPathElement,
  elems: ReadonlySet<XPathElement>,
  attrs: ReadonlyMap<XPathElement, ReadonlySet<XPathAttribute>>,
): XmlElement {
  const el = node.element;
  const role = ix.role.get(node);
  const keptAttrs = attrs.get(node);
  const byName = new Map(node.attributes.map((a) => [a.name, a]));
  const out: XmlElement = { type: 'element', name: el.name };
  const attributes: Record<string, string> = {};
  for (const k of Object.keys(el.attributes ?? {})) {
    const v = el.attributes?.[k];
    if (v === undefined) continue;
    const a = byName.get(k);
    // namespace declarations always stay: kept descendants may use them
    if (!a || isMandatoryAttribute(a, role) || keptAttrs?.has(a)) attributes[k] = v;
  }
  if (Object.keys(attributes).length > 0) out.attributes = attributes;
  if (role === 'unit') {
    if (el.elements && el.elements.length > 0) out.elements = el.elements;
    return out;
  }
  const kids = node.children.filter((c) => elems.has(c)).map((c) => emit(ix, c, elems, attrs));
  if (kids.length > 0) out.elements = kids;
  return out;
}

export interface ContentFilterResult {
  /** The PIDF document to send (canonical serialization), or the input when nothing was filtered. */
  body: string;
  /** False when no filter has a <what>: `body` is the input itself. */
  filtered: boolean;
  /**
   * The filters selected nothing: `body` is only the mandatory skeleton. RFC 4660 section 5.3.1:
   * the NOTIFY is then sent with empty contents.
   */
  empty: boolean;
}

/**
 * Applies the <what> parts of `filters` (those that apply to this resource: see filtersFor) to
 * a canonical PIDF document, the one authorization produced. The validity comment at the top of
 * this section says how the result stays valid PIDF. Throws PidfError when `pidf` is not a PIDF document.
 */
export function applyContentFiltersDetailed(pidf: string, filters: readonly Filter[]): ContentFilterResult {
  if (!hasContentFilter(filters)) return { body: pidf, filtered: false, empty: false };
  let root: XmlElement;
  try {
    root = parseXml(pidf).root;
  } catch (e) {
    if (e instanceof XmlError) throw new PidfError('Invalid PIDF: malformed XML', { detail: e.message, cause: e });
    throw e;
  }
  return applyContentFiltersTo(filterIndex(root), pidf, filters);
}

/** Whether some filter has a <what> part: otherwise content filtering leaves the document as it is. */
export function hasContentFilter(filters: readonly Filter[]): boolean {
  return filters.some((f) => f.enabled && !f.remove && f.what !== undefined);
}

/**
 * The index content filters and triggers select from, of a parsed PIDF document (a parse
 * shared by every watcher of a change: the tree is only read). Throws PidfError when the
 * root is not PIDF presence.
 */
export function filterIndex(root: XmlElement): PidfIndex {
  const ix = indexPidf(root);
  if (ix.tree.root.ns !== PIDF_NS || ix.tree.root.local !== 'presence')
    throw new PidfError('Invalid PIDF: root element is not presence of urn:ietf:params:xml:ns:pidf');
  return ix;
}

/** applyContentFiltersDetailed on the index of `pidf` (the same document's text, returned when nothing is filtered). */
export function applyContentFiltersTo(ix: PidfIndex, pidf: string, filters: readonly Filter[]): ContentFilterResult {
  const withWhat = filters.filter((f) => f.enabled && !f.remove && f.what !== undefined);
  if (withWhat.length === 0) return { body: pidf, filtered: false, empty: false };

  const elems = new Set<XPathElement>();
  const attrs = new Map<XPathElement, Set<XPathAttribute>>();
  let content = 0;
  for (const f of withWhat) {
    const keep = keepFor(ix, f.what!);
    content += keep.size;
    for (const e of keep.elems) elems.add(e);
    for (const [e, s] of keep.attrs) {
      let t = attrs.get(e);
      if (!t) attrs.set(e, (t = new Set()));
      for (const a of s) t.add(a);
    }
  }
  complete(ix, elems);
  const filtered = emit(ix, ix.tree.root, elems, attrs);
  let body: string;
  try {
    // reading the filtered tree as PIDF checks validity and gives the canonical bytes (the
    // notifier compares bodies), without writing it out and parsing it back
    body = serializePidf(pidfOfTree(filtered));
  } catch (e) {
    if (!(e instanceof PidfError)) throw e;
    // cannot happen for a valid input; the unfiltered document is what authorization allows
    return { body: pidf, filtered: false, empty: false };
  }
  return { body, filtered: true, empty: content === 0 };
}

/**
 * The document after the content (<what>) part of `filters`: include / exclude selections,
 * kept valid PIDF (root and entity stay; a selected item keeps the ancestors and mandatory
 * parts it needs, e.g. a tuple's status selected keeps the tuple with its id). Returns the
 * input unchanged when no filter has a <what> part.
 */
export function applyContentFilters(pidf: string, filters: Filter[]): string {
  return applyContentFiltersDetailed(pidf, filters).body;
}

// ---------------------------------------------------------------------------
// Triggers
// ---------------------------------------------------------------------------

/**
 * Identity of a node across two versions of a document: the path of expanded names, each step
 * qualified by the element's unqualified `id` attribute when it has one (tuples, persons,
 * devices) or else its rank among same-named siblings.
 */
export class Keys {
  private readonly memo = new Map<XPathNode, string>();

  key(n: XPathNode): string {
    const have = this.memo.get(n);
    if (have !== undefined) return have;
    let k: string;
    if (n.kind === 'attribute') {
      k = `${this.key(n.owner)}/@{${n.ns ?? ''}}${n.local}`;
    } else {
      const idAttr = n.attributes.find((a) => a.ns === undefined && a.local === 'id');
      let step: string;
      if (idAttr) step = `#${collapse(idAttr.value)}`;
      else {
        const same = n.parent ? n.parent.children.filter((c) => c.ns === n.ns && c.local === n.local) : [n];
        step = `[${same.indexOf(n) + 1}]`;
      }
      k = `${n.parent ? this.key(n.parent) : ''}/{${n.ns ?? ''}}${n.local}${step}`;
    }
    this.memo.set(n, k);
    return k;
  }

  /** Selected nodes by key (a repeated key, from duplicate ids, gets a counter). */
  index(nodes: readonly XPathNode[]): Map<string, XPathNode> {
    const out = new Map<string, XPathNode>();
    for (const n of nodes) {
      let k = this.key(n);
      for (let i = 2; out.has(k); i++) k = `${this.key(n)}~${i}`;
      out.set(k, n);
    }
    return out;
  }
}

/** The comparable content of a node: an attribute's or a leaf's collapsed value; for an element with children, its whole subtree (names, attributes, text). */
function fingerprint(n: XPathNode): string {
  if (n.kind === 'attribute') return collapse(n.value);
  const attrs = n.attributes
    .map((a) => `{${a.ns ?? ''}}${a.local}=${JSON.stringify(collapse(a.value))}`)
    .sort()
    .join(' ');
  const parts: string[] = [];
  let k = 0;
  for (const c of n.element.elements ?? []) {
    if (c.type === 'element') {
      const child = n.children[k++];
      if (child) parts.push(`{${child.ns ?? ''}}${child.local}${fingerprint(child)}`);
    } else if (c.type === 'text' || c.type === 'cdata') {
      const t = collapse(c.type === 'text' ? c.text : c.cdata);
      if (t !== '') parts.push(JSON.stringify(t));
    }
  }
  return `[${attrs}](${parts.join(',')})`;
}

/** One version of a document as triggers compare it; shareable (its keys are memoised per node). */
export interface TriggerVersion {
  tree: XPathTree;
  keys: Keys;
}
type Version = TriggerVersion;

function version(doc: string): Version {
  return { tree: xpathTree(parseXml(doc).root), keys: new Keys() };
}

/** The trigger version of a document whose filter index is already built (no second tree). */
export function triggerVersion(ix: PidfIndex): TriggerVersion {
  return { tree: ix.tree, keys: new Keys() };
}

function changedHolds(c: ChangedCondition, before: Version, after: Version): boolean {
  const old = before.keys.index(c.xpath.select(before.tree));
  const now = after.keys.index(c.xpath.select(after.tree));
  const numeric = c.by !== undefined;
  const sameValue = (v: string | undefined, want: string): boolean =>
    v === undefined ? false : numeric ? xpathNumber(v) === Number(want) : v === want;
  for (const key of new Set([...old.keys(), ...now.keys()])) {
    const o = old.get(key);
    const n = now.get(key);
    // RFC 4661 3.6.1: the same value again is not a change; appearing or vanishing is
    if (o && n && fingerprint(o) === fingerprint(n)) continue;
    const ov = o ? collapse(stringValue(o)) : undefined;
    const nv = n ? collapse(stringValue(n)) : undefined;
    if ((c.from !== undefined || c.to !== undefined) && ov === nv) continue;
    if (c.from !== undefined && !sameValue(ov, c.from)) continue;
    if (c.to !== undefined && !sameValue(nv, c.to)) continue;
    if (c.by !== undefined) {
      // RFC 4661 3.6.1.3: a numeric change of at least `by`, either way
      const a = ov === undefined ? NaN : xpathNumber(ov);
      const b = nv === undefined ? NaN : xpathNumber(nv);
      if (!(Math.abs(b - a) >= c.by)) continue;
    }
    return true;
  }
  return false;
}

/** Some node selected in `to` has no counterpart (same key) selected in `from`. */
function appeared(r: Reference, from: Version, to: Version): boolean {
  const before = from.keys.index(r.xpath.select(from.tree));
  for (const k of to.keys.index(r.xpath.select(to.tree)).keys()) if (!before.has(k)) return true;
  return false;
}

function triggerHolds(t: Trigger, before: Version, after: Version): boolean {
  if (t.changed.length + t.added.length + t.removed.length === 0) return false;
  // RFC 4661 3.6: the conditions of one trigger are AND-ed
  return (
    t.changed.every((c) => changedHolds(c, before, after)) &&
    t.added.every((r) => appeared(r, before, after)) &&
    t.removed.every((r) => appeared(r, after, before))
  );
}

/**
 * Whether the change from `previous` to `current` lets a NOTIFY through (RFC 4660 section 5.3.2,
 * RFC 4661 section 3.6). `previous` is the (authorized, unfiltered) document of the last NOTIFY
 * sent; undefined for the first NOTIFY, where triggers are ignored (RFC 4660 5.3.1): true.
 * True as well when no filter has triggers, or when one of them has none: a filter without
 * <trigger> asks for every change (RFC 4660 5.3). Otherwise true when some trigger of some
 * filter holds. Element values are compared whitespace-collapsed; an element with child
 * elements changes when anything in its subtree changes (RPID activities are empty elements,
 * so their text alone would never change). A selected node that appears or disappears is a
 * change (its absent side matches no 'from' / 'to'). Throws XmlError for unparseable input.
 */
export function triggersFire(previous: string | undefined, current: string, filters: Filter[]): boolean {
  if (!triggersDecide(filters) || previous === undefined) return true;
  return triggersHold(version(previous), version(current), filters);
}

/** Whether `filters` have triggers that may hold a NOTIFY back (else every change is notified). */
export function triggersDecide(filters: readonly Filter[]): boolean {
  const live = filters.filter((f) => f.enabled && !f.remove);
  return !(live.length === 0 || live.some((f) => f.triggers.length === 0));
}

/** triggersFire on two parsed versions, for filters where triggersDecide holds. */
export function triggersHold(before: TriggerVersion, after: TriggerVersion, filters: readonly Filter[]): boolean {
  const live = filters.filter((f) => f.enabled && !f.remove);
  return live.some((f) => f.triggers.some((t) => triggerHolds(t, before, after)));
}
