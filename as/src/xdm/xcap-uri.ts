/**
 * XCAP URIs and node selectors (RFC 4825 section 6). Pure.
 *
 * An XCAP URI path is
 *   <xcap-root>/<auid>/users/<xui>/<document path>[/~~/<node selector>][?<xmlns() bindings>]
 *   <xcap-root>/<auid>/global/<document path>[/~~/<node selector>][?<xmlns() bindings>]
 *
 * Error statuses (XcapUriError.status / NodeSelectorError.status):
 *   404  'not-xcap-root' - the path is not under the XCAP root;
 *   404  'bad-path'      - the document selector names something that cannot
 *                          exist: unknown tree, missing XUI or document path,
 *                          '.', '..', empty segments, NUL, backslash, or '/'
 *                          smuggled in as %2F, a malformed AUID;
 *   400  'bad-encoding'  - malformed percent-encoding or invalid UTF-8;
 *   400  'bad-query'     - the query is not a sequence of xmlns(prefix=uri);
 *   400  NodeSelectorError - node selector syntax errors, unsupported
 *                          (extension) selectors, undefined prefixes.
 */
import { decodeXmlReferences, isQName, xmlNamespaces } from '../xml/xml-tree.js';

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** An expanded name. ns undefined = no namespace. */
export interface XcapName {
  ns?: string;
  local: string;
  /**
   * The prefix as written in the selector; undefined when unprefixed. For an
   * unprefixed element name, `ns` is the default namespace given to the parser
   * (if any), and `select()` lets its own defaultNs argument take precedence.
   */
  prefix?: string;
}

export interface Step {
  name: XcapName | '*';
  /** Position predicate `[n]` (1-based). */
  position?: number;
  /** Attribute predicate `[@attr="value"]`, value with references decoded. */
  attr?: { name: XcapName; value: string };
  /**
   * Only when both predicates are present: the order they were written in.
   * 'position-attr' (RFC 4825 by-pos-attr, `[n][@a="v"]`): the position counts
   * among the elements matching the name test, then the attribute filters.
   * 'attr-position' (`[@a="v"][n]`): the position counts among the elements
   * matching both the name test and the attribute predicate.
   */
  predicateOrder?: 'position-attr' | 'attr-position';
  /** The step as written (decoded), e.g. `list[@name="friends"]`. */
  text: string;
}

export type Terminal = { kind: 'attribute'; name: XcapName; text: string } | { kind: 'namespace'; text: string };

export interface NodeSelector {
  steps: Step[];
  terminal?: Terminal;
}

export interface XcapUri {
  auid: string;
  tree: 'users' | 'global';
  /** The XCAP User Identifier (decoded), for the users tree. */
  xui?: string;
  /** Path of the document under the tree/XUI, decoded, e.g. 'index' or 'dir/doc.xml'. */
  documentPath: string;
  /** Decoded path segments of documentPath. */
  documentSegments: string[];
  /**
   * Parsed node selector. Unprefixed element names carry `defaultNamespace`
   * when one was given to parseXcapUri; select() applies the usage's default
   * namespace anyway.
   */
  nodeSelector?: NodeSelector;
  /** The node selector as decoded text (without the leading '~~/'). */
  nodeSelectorText?: string;
  /** Bindings from the query (`xmlns(p=uri)...`), prefix -> URI. */
  namespaceBindings: Map<string, string>;
  /**
   * The document selector as received (still percent-encoded), including the
   * XCAP root path, e.g. `/xcap-root/resource-lists/users/sip:a@b/index`.
   */
  documentSelectorRaw: string;
  /** The path as given. */
  raw: string;
}

export type XcapUriErrorKind = 'not-xcap-root' | 'bad-path' | 'bad-encoding' | 'bad-query';

export class XcapUriError extends Error {
  readonly kind: XcapUriErrorKind;
  readonly status: 400 | 404;
  constructor(kind: XcapUriErrorKind, message: string) {
    super(message);
    this.name = 'XcapUriError';
    this.kind = kind;
    this.status = kind === 'bad-encoding' || kind === 'bad-query' ? 400 : 404;
  }
}

export class NodeSelectorError extends Error {
  readonly status = 400 as const;
  constructor(message: string) {
    super(message);
    this.name = 'NodeSelectorError';
  }
}

// ---------------------------------------------------------------------------
// Percent-encoding
// ---------------------------------------------------------------------------

function percentDecode(s: string, what: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new XcapUriError('bad-encoding', `malformed percent-encoding in ${what}`);
  }
}

/**
 * Percent-encodes a decoded node selector (or any path part) for use in a
 * URI path: everything except unreserved characters and the sub-delims /
 * ':' '@' '/' allowed in a path is encoded; '[', ']', '"', '%' always are.
 */
export function encodeXcapPath(s: string): string {
  return encodeURIComponent(s).replace(/%(2F|3A|40|21|24|26|27|28|29|2A|2B|2C|3B|3D)/gi, (m) => decodeURIComponent(m));
}

/** The XCAP URI of a node: the document URI plus `/~~/` and the encoded selector ('' = the document). */
export function nodeUri(documentUri: string, selectorText: string): string {
  return selectorText === '' ? documentUri : `${documentUri}/~~/${encodeXcapPath(selectorText)}`;
}

// ---------------------------------------------------------------------------
// XCAP URI
// ---------------------------------------------------------------------------

const AUID_RE = /^[A-Za-z0-9](?:[A-Za-z0-9._+-]*[A-Za-z0-9])?$/;

function checkSegment(seg: string, what: string): void {
  if (seg === '') throw new XcapUriError('bad-path', `empty segment in the ${what}`);
  if (seg === '.' || seg === '..') throw new XcapUriError('bad-path', `'${seg}' segment in the ${what}`);
  if (/[\u0000-\u001f\u007f/\\]/.test(seg)) throw new XcapUriError('bad-path', `forbidden character in the ${what}`);
}

/**
 * Parses an XCAP request path (as received: percent-encoded; the query may
 * be attached after '?'). `xcapRootPath` is the path of the XCAP root (e.g.
 * '/xcap-root', or '' / '/' when XCAP is served at the top).
 * `defaultNamespace` gives the application usage's default namespace, for
 * unprefixed element names in the node selector (a string, or a lookup by
 * AUID).
 */
export function parseXcapUri(
  path: string,
  xcapRootPath: string,
  opts: { defaultNamespace?: string | ((auid: string) => string | undefined); query?: string } = {},
): XcapUri {
  const raw = path;
  let p = path;
  let query = opts.query;
  const qm = p.indexOf('?');
  if (qm !== -1) {
    query = query ?? p.slice(qm + 1);
    p = p.slice(0, qm);
  }
  const hash = p.indexOf('#');
  if (hash !== -1) p = p.slice(0, hash);

  const root = xcapRootPath.replace(/\/+$/, '');
  if (root !== '') {
    if (!(p === root || p.startsWith(root + '/')))
      throw new XcapUriError('not-xcap-root', 'path is not under the XCAP root');
  }
  const rest = p.slice(root.length);
  if (!rest.startsWith('/')) throw new XcapUriError('bad-path', 'no application usage in the path');

  // Split off the node selector at the first segment that is exactly '~~'.
  const rawSegments = rest.slice(1).split('/');
  let sepIndex = -1;
  for (let i = 0; i < rawSegments.length; i++) {
    if (percentDecode(rawSegments[i] ?? '', 'the path') === '~~') {
      sepIndex = i;
      break;
    }
  }
  const docRaw = sepIndex === -1 ? rawSegments : rawSegments.slice(0, sepIndex);
  const selRaw = sepIndex === -1 ? undefined : rawSegments.slice(sepIndex + 1).join('/');

  const segs = docRaw.map((s) => percentDecode(s, 'the document selector'));
  const auid = segs[0] ?? '';
  if (!AUID_RE.test(auid)) throw new XcapUriError('bad-path', 'malformed or missing AUID');
  const treeSeg = segs[1];
  let tree: 'users' | 'global';
  let xui: string | undefined;
  let docSegs: string[];
  if (treeSeg === 'users') {
    tree = 'users';
    xui = segs[2];
    if (xui === undefined) throw new XcapUriError('bad-path', 'missing XUI');
    checkSegment(xui, 'XUI');
    docSegs = segs.slice(3);
  } else if (treeSeg === 'global') {
    tree = 'global';
    docSegs = segs.slice(2);
  } else {
    throw new XcapUriError('bad-path', "tree must be 'users' or 'global'");
  }
  if (docSegs.length === 0) throw new XcapUriError('bad-path', 'missing document path');
  for (const s of docSegs) checkSegment(s, 'document path');

  const namespaceBindings = query !== undefined && query !== '' ? parseXmlnsQuery(query) : new Map<string, string>();

  const out: XcapUri = {
    auid,
    tree,
    documentPath: docSegs.join('/'),
    documentSegments: docSegs,
    namespaceBindings,
    documentSelectorRaw: root + '/' + docRaw.join('/'),
    raw,
  };
  if (xui !== undefined) out.xui = xui;
  if (selRaw !== undefined) {
    const selText = percentDecode(selRaw, 'the node selector');
    if (selText === '') throw new NodeSelectorError('empty node selector');
    const dn = typeof opts.defaultNamespace === 'function' ? opts.defaultNamespace(auid) : opts.defaultNamespace;
    out.nodeSelectorText = selText;
    out.nodeSelector = parseNodeSelector(selText, namespaceBindings, dn);
  }
  return out;
}

/**
 * Parses the query component of an XCAP URI: a sequence of XPointer xmlns()
 * parts, `xmlns(prefix=namespace-uri)`, optionally separated by whitespace;
 * `^(`, `^)` and `^^` are the XPointer escapes. Percent-decoded first.
 * A later binding of the same prefix wins.
 */
export function parseXmlnsQuery(query: string): Map<string, string> {
  const q = percentDecode(query, 'the query');
  const out = new Map<string, string>();
  let i = 0;
  const skipWs = () => {
    while (i < q.length && /\s/.test(q[i] ?? '')) i++;
  };
  skipWs();
  while (i < q.length) {
    if (!q.startsWith('xmlns(', i))
      throw new XcapUriError('bad-query', 'query must consist of xmlns(prefix=uri) parts');
    i += 6;
    let body = '';
    let closed = false;
    while (i < q.length) {
      const c = q[i] ?? '';
      if (c === '^') {
        const n = q[i + 1];
        if (n !== '(' && n !== ')' && n !== '^') throw new XcapUriError('bad-query', 'bad escape in xmlns()');
        body += n;
        i += 2;
        continue;
      }
      if (c === '(') throw new XcapUriError('bad-query', 'unescaped ( in xmlns()');
      if (c === ')') {
        closed = true;
        i++;
        break;
      }
      body += c;
      i++;
    }
    if (!closed) throw new XcapUriError('bad-query', 'unterminated xmlns()');
    const m = /^\s*([^\s=]+)\s*=\s*(.*?)\s*$/s.exec(body);
    if (!m) throw new XcapUriError('bad-query', 'xmlns() must be prefix=uri');
    const prefix = m[1] ?? '';
    const uri = m[2] ?? '';
    if (!isQName(prefix) || prefix.includes(':'))
      throw new XcapUriError('bad-query', `bad prefix ${JSON.stringify(prefix)} in xmlns()`);
    if (uri === '') throw new XcapUriError('bad-query', 'empty namespace URI in xmlns()');
    if (prefix === 'xmlns' || (prefix === 'xml') !== (uri === xmlNamespaces.xml)) {
      throw new XcapUriError('bad-query', `illegal binding of prefix ${prefix}`);
    }
    out.set(prefix, uri);
    skipWs();
  }
  return out;
}

// ---------------------------------------------------------------------------
// Node selector
// ---------------------------------------------------------------------------

function nsErr(msg: string): never {
  throw new NodeSelectorError(msg);
}

/** Splits at '/' outside predicates and quoted strings. */
function splitSteps(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inBracket = false;
  let quote: string | undefined;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = undefined;
      cur += c;
      continue;
    }
    if (inBracket) {
      if (c === '"' || c === "'") quote = c;
      else if (c === ']') inBracket = false;
      else if (c === '[') nsErr('nested [ in a predicate');
      cur += c;
      continue;
    }
    if (c === '[') inBracket = true;
    else if (c === ']') nsErr('unbalanced ] in the node selector');
    if (c === '/') {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (quote) nsErr('unterminated quoted value in the node selector');
  if (inBracket) nsErr('unterminated predicate in the node selector');
  out.push(cur);
  return out;
}

function resolveName(
  qname: string,
  bindings: ReadonlyMap<string, string>,
  isAttribute: boolean,
  defaultNs: string | undefined,
): XcapName {
  if (!isQName(qname)) nsErr(`${JSON.stringify(qname)} is not a QName`);
  const colon = qname.indexOf(':');
  if (colon === -1) {
    if (isAttribute) {
      if (qname === 'xmlns') nsErr('namespace declarations are not attributes');
      return { local: qname };
    }
    return defaultNs === undefined ? { local: qname } : { ns: defaultNs, local: qname };
  }
  const prefix = qname.slice(0, colon);
  const local = qname.slice(colon + 1);
  if (prefix === 'xmlns') nsErr('namespace declarations are not attributes');
  const ns = bindings.get(prefix) ?? (prefix === 'xml' ? xmlNamespaces.xml : undefined);
  if (ns === undefined) nsErr(`undefined namespace prefix ${prefix}`);
  return { ns, local, prefix };
}

const POSITION_RE = /^[0-9]+$/;
/** An axis (`name::`) before any predicate. */
const AXIS_RE = /^[^[]*::/;

function parseStep(text: string, bindings: ReadonlyMap<string, string>, defaultNs: string | undefined): Step {
  if (text === '') nsErr('empty step in the node selector');
  const b = text.indexOf('[');
  const namePart = b === -1 ? text : text.slice(0, b);
  const step: Step = {
    name: namePart === '*' ? '*' : resolveName(namePart, bindings, false, defaultNs),
    text,
  };
  let i = b === -1 ? text.length : b;
  const order: Array<'position' | 'attr'> = [];
  while (i < text.length) {
    if (text[i] !== '[') nsErr(`unexpected ${JSON.stringify(text[i])} in step ${JSON.stringify(text)}`);
    // find the closing ']' outside quotes
    let j = i + 1;
    let quote: string | undefined;
    for (; j < text.length; j++) {
      const c = text[j];
      if (quote) {
        if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === ']') break;
    }
    if (j >= text.length) nsErr(`unterminated predicate in step ${JSON.stringify(text)}`);
    const pred = text.slice(i + 1, j);
    if (POSITION_RE.test(pred)) {
      if (step.position !== undefined) nsErr('more than one position predicate');
      const n = Number(pred);
      if (!Number.isSafeInteger(n)) nsErr('position out of range');
      step.position = n;
      order.push('position');
    } else if (pred.startsWith('@')) {
      if (step.attr !== undefined) nsErr('more than one attribute predicate');
      const eq = pred.indexOf('=');
      if (eq === -1) nsErr(`attribute predicate without a value in ${JSON.stringify(text)}`);
      const an = pred.slice(1, eq);
      const rawValue = pred.slice(eq + 1);
      const q = rawValue[0];
      if ((q !== '"' && q !== "'") || rawValue.length < 2 || rawValue[rawValue.length - 1] !== q) {
        nsErr(`attribute predicate value must be quoted in ${JSON.stringify(text)}`);
      }
      const inner = rawValue.slice(1, -1);
      if (inner.includes(q)) nsErr(`stray quote in attribute predicate in ${JSON.stringify(text)}`);
      let value: string;
      try {
        value = decodeXmlReferences(inner);
      } catch {
        nsErr(`malformed attribute value in ${JSON.stringify(text)}`);
      }
      step.attr = { name: resolveName(an, bindings, true, undefined), value };
      order.push('attr');
    } else {
      nsErr(`unsupported predicate [${pred}]`);
    }
    i = j + 1;
  }
  if (order.length === 2) step.predicateOrder = order[0] === 'position' ? 'position-attr' : 'attr-position';
  return step;
}

/**
 * Parses a (decoded) node selector. `bindings` are the xmlns() bindings of
 * the request; `defaultNs` is the application usage's default namespace,
 * applied to unprefixed element names (unprefixed attribute names are in no
 * namespace).
 */
export function parseNodeSelector(
  text: string,
  bindings: ReadonlyMap<string, string> = new Map(),
  defaultNs?: string,
): NodeSelector {
  if (text === '') nsErr('empty node selector');
  const parts = splitSteps(text);
  const last = parts[parts.length - 1] ?? '';
  let terminal: Terminal | undefined;
  if (last.startsWith('@')) {
    terminal = { kind: 'attribute', name: resolveName(last.slice(1), bindings, true, undefined), text: last };
    parts.pop();
  } else if (last === 'namespace::*') {
    terminal = { kind: 'namespace', text: last };
    parts.pop();
  } else if (AXIS_RE.test(last)) {
    nsErr(`unsupported selector ${JSON.stringify(last)}`);
  }
  if (parts.length === 0) nsErr('the node selector needs at least one element step');
  const steps = parts.map((p) => {
    if (p.startsWith('@') || AXIS_RE.test(p)) nsErr(`${JSON.stringify(p)} may only be the last step`);
    return parseStep(p, bindings, defaultNs);
  });
  return terminal ? { steps, terminal } : { steps };
}

/** The selector text of the first `count` steps (as written), '' for none. */
export function selectorPrefixText(sel: NodeSelector, count: number): string {
  return sel.steps
    .slice(0, count)
    .map((s) => s.text)
    .join('/');
}

/** The full selector text (as written). */
export function selectorText(sel: NodeSelector): string {
  const base = selectorPrefixText(sel, sel.steps.length);
  return sel.terminal ? `${base}/${sel.terminal.text}` : base;
}
