/**
 * XCAP operations on a parsed document (RFC 4825 sections 7 and 8): node
 * selection, GET of elements / attributes / namespace bindings, PUT of
 * elements and attributes, DELETE, and the application/xcap-error+xml body
 * (section 11). Pure: documents are never mutated, every change returns a
 * new document.
 *
 * Status mapping: a node that is not selected (zero or several matches) is
 * 404 (tags 'not-found' / 'many-selected'); the conflicts of section 11 are
 * 409; PUT/DELETE of namespace bindings is 405 ('not-allowed').
 */
import {
  NamespaceScope,
  XmlError,
  childElements,
  decodeXmlReferences,
  escapeAttribute,
  escapeText,
  parseXml,
  prefixOf,
  serializeXml,
  xmlNamespaces,
  DEFAULT_MAX_DEPTH,
  type XmlDocument,
  type XmlElement,
  type XmlNode,
} from '../xml/xml-tree.js';
import { nodeUri, selectorPrefixText, type NodeSelector, type Step, type XcapName } from './xcap-uri.js';

export const XCAP_EL_CONTENT_TYPE = 'application/xcap-el+xml';
export const XCAP_ATT_CONTENT_TYPE = 'application/xcap-att+xml';
export const XCAP_NS_CONTENT_TYPE = 'application/xcap-ns+xml';
export const XCAP_ERROR_CONTENT_TYPE = 'application/xcap-error+xml';

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

export type XcapOpErrorTag =
  | 'not-xml-frag'
  | 'not-xml-att-value'
  | 'no-parent'
  | 'cannot-insert'
  | 'cannot-delete'
  | 'not-well-formed'
  | 'not-utf-8'
  | 'not-found'
  | 'many-selected'
  | 'not-allowed';

const STATUS: Record<XcapOpErrorTag, 404 | 405 | 409> = {
  'not-xml-frag': 409,
  'not-xml-att-value': 409,
  'no-parent': 409,
  'cannot-insert': 409,
  'cannot-delete': 409,
  'not-well-formed': 409,
  'not-utf-8': 409,
  'not-found': 404,
  'many-selected': 404,
  'not-allowed': 405,
};

export class XcapOpError extends Error {
  readonly tag: XcapOpErrorTag;
  readonly status: 404 | 405 | 409;
  /**
   * For 'no-parent': the node selector (decoded text, as written in the
   * request) of the closest existing ancestor of the missing parent; '' when
   * not even the root element matched (the ancestor is then the document).
   * Turn it into a URI with `nodeUri(documentUri, ancestor)`.
   */
  readonly ancestor?: string;
  /** Optional human-readable phrase (the `phrase` attribute of the error element). */
  readonly phrase?: string;
  constructor(tag: XcapOpErrorTag, message: string, extra: { ancestor?: string; phrase?: string } = {}) {
    super(message);
    this.name = 'XcapOpError';
    this.tag = tag;
    this.status = STATUS[tag];
    if (extra.ancestor !== undefined) this.ancestor = extra.ancestor;
    if (extra.phrase !== undefined) this.phrase = extra.phrase;
  }
}

// ---------------------------------------------------------------------------
// Selection
// ---------------------------------------------------------------------------

export type Selection =
  | {
      kind: 'none';
      /** Number of leading element steps that each selected exactly one element. */
      matchedSteps: number;
      /** The element selected by those steps (when matchedSteps > 0). */
      last?: XmlElement;
    }
  | { kind: 'many'; matchedSteps: number; last?: XmlElement }
  | {
      kind: 'element';
      element: XmlElement;
      /** Parent element; undefined for the root element. */
      parent: XmlElement | undefined;
      /** Index of the element in parent.elements (0 for the root). */
      index: number;
      /** In-scope namespaces at the element's parent (the element's own declarations not applied). */
      scope: NamespaceScope;
    }
  | {
      kind: 'attribute';
      element: XmlElement;
      /** Qualified attribute name as written in the document. */
      name: string;
      value: string;
      scope: NamespaceScope;
    }
  | { kind: 'namespaces'; element: XmlElement; bindings: Map<string, string>; scope: NamespaceScope };

interface Located {
  element: XmlElement;
  parent: XmlElement | undefined;
  index: number;
  /** scope of the parent (without the element's declarations). */
  scope: NamespaceScope;
}

function nameNs(name: XcapName, defaultNs: string | undefined): string | undefined {
  if (name.prefix === undefined && defaultNs !== undefined) return defaultNs;
  return name.ns;
}

function nameMatches(
  el: XmlElement,
  elScope: NamespaceScope,
  name: XcapName | '*',
  defaultNs: string | undefined,
): boolean {
  if (name === '*') return true;
  const e = elScope.expand(el.name);
  return e.local === name.local && e.ns === nameNs(name, defaultNs);
}

/** The attribute of `el` with the given expanded name: its qualified name and value. */
function findAttribute(
  el: XmlElement,
  elScope: NamespaceScope,
  name: XcapName,
): { qname: string; value: string } | undefined {
  const attrs = el.attributes;
  if (!attrs) return undefined;
  for (const k of Object.keys(attrs)) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
    const e = elScope.expandAttribute(k);
    if (e.local === name.local && e.ns === name.ns) return { qname: k, value: attrs[k] ?? '' };
  }
  return undefined;
}

interface Candidate {
  element: XmlElement;
  index: number;
  scope: NamespaceScope; // the element's own scope
}

/** Applies one step to the candidate children, returning the matches. */
function applyStep(cands: Candidate[], step: Step, defaultNs: string | undefined): Candidate[] {
  let named = cands.filter((c) => nameMatches(c.element, c.scope, step.name, defaultNs));
  const attrOk = (c: Candidate): boolean => {
    if (!step.attr) return true;
    const a = findAttribute(c.element, c.scope, step.attr.name);
    return a !== undefined && a.value === step.attr.value;
  };
  if (step.position === undefined) return named.filter(attrOk);
  if (step.predicateOrder === 'attr-position') named = named.filter(attrOk);
  const picked = named[step.position - 1];
  if (!picked) return [];
  return attrOk(picked) ? [picked] : [];
}

function childCandidates(parent: XmlElement, parentScope: NamespaceScope): Candidate[] {
  const out: Candidate[] = [];
  const kids = parent.elements ?? [];
  for (let i = 0; i < kids.length; i++) {
    const k = kids[i];
    if (k && k.type === 'element') out.push({ element: k, index: i, scope: parentScope.child(k) });
  }
  return out;
}

type Walk =
  { ok: true; located: Located } | { ok: false; kind: 'none' | 'many'; matchedSteps: number; last?: XmlElement };

/** Follows `steps` from the document node. */
function walk(doc: XmlDocument, steps: Step[], defaultNs: string | undefined): Walk {
  const rootScope = NamespaceScope.root();
  let cur: Located | undefined;
  let cands: Candidate[] = [{ element: doc.root, index: 0, scope: rootScope.child(doc.root) }];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as Step;
    const found = applyStep(cands, step, defaultNs);
    if (found.length !== 1) {
      const r: Walk = { ok: false, kind: found.length === 0 ? 'none' : 'many', matchedSteps: i };
      if (cur) r.last = cur.element;
      return r;
    }
    const f = found[0] as Candidate;
    const parentScope = cur ? scopeOfParent(cur) : rootScope;
    cur = { element: f.element, parent: cur?.element, index: f.index, scope: parentScope };
    cands = childCandidates(f.element, f.scope);
  }
  if (!cur) return { ok: false, kind: 'none', matchedSteps: 0 };
  return { ok: true, located: cur };
}

/** The scope inside `loc.element` = the scope for its children's parent. */
function scopeOfParent(loc: Located): NamespaceScope {
  return loc.scope.child(loc.element);
}

/**
 * Evaluates a node selector on a document (RFC 4825 section 6.3). Each
 * element step must select exactly one element; zero gives 'none', more than
 * one gives 'many' (both are 404 for GET/DELETE). `defaultNs` is the
 * application usage's default namespace for unprefixed element names (when
 * undefined, the namespace stored in the parsed selector is used).
 */
export function select(doc: XmlDocument, sel: NodeSelector, defaultNs?: string): Selection {
  const w = walk(doc, sel.steps, defaultNs);
  if (!w.ok) {
    return w.last
      ? { kind: w.kind, matchedSteps: w.matchedSteps, last: w.last }
      : { kind: w.kind, matchedSteps: w.matchedSteps };
  }
  const loc = w.located;
  const elScope = loc.scope.child(loc.element);
  if (!sel.terminal)
    return { kind: 'element', element: loc.element, parent: loc.parent, index: loc.index, scope: loc.scope };
  if (sel.terminal.kind === 'namespace') {
    return { kind: 'namespaces', element: loc.element, bindings: elScope.bindings(), scope: loc.scope };
  }
  const a = findAttribute(loc.element, elScope, sel.terminal.name);
  if (!a) return { kind: 'none', matchedSteps: sel.steps.length, last: loc.element };
  return { kind: 'attribute', element: loc.element, name: a.qname, value: a.value, scope: loc.scope };
}

function notSelected(s: Selection): never {
  if (s.kind === 'many') throw new XcapOpError('many-selected', 'the node selector selects more than one element');
  throw new XcapOpError('not-found', 'the node selector selects nothing');
}

// ---------------------------------------------------------------------------
// GET
// ---------------------------------------------------------------------------

/**
 * Namespace declarations `el` needs to stand alone: for every prefix (and the
 * default namespace) used by an element or attribute name in its subtree and
 * not declared inside the subtree, the binding in effect at `outer` (the
 * scope of el's parent).
 */
function neededDeclarations(el: XmlElement, outer: NamespaceScope): Record<string, string> {
  const need = new Map<string, string>();
  const visit = (e: XmlElement, declared: Set<string>): void => {
    let d = declared;
    const attrs = e.attributes ?? {};
    for (const k of Object.keys(attrs)) {
      const p = k === 'xmlns' ? '' : k.startsWith('xmlns:') ? k.slice(6) : undefined;
      if (p !== undefined) {
        if (d === declared) d = new Set(declared);
        d.add(p);
      }
    }
    const use = (p: string): void => {
      if (p === 'xml' || d.has(p) || need.has(p)) return;
      const uri = outer.resolve(p === '' ? undefined : p);
      if (uri !== undefined) need.set(p, uri);
    };
    use(prefixOf(e) ?? '');
    for (const k of Object.keys(attrs)) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
      const p = prefixOf(k);
      if (p !== undefined) use(p);
    }
    for (const c of childElements(e)) visit(c, d);
  };
  visit(el, new Set());
  const out: Record<string, string> = {};
  for (const [p, uri] of need) out[p === '' ? 'xmlns' : `xmlns:${p}`] = uri;
  return out;
}

/** `el` with the namespace declarations it needs from `outer` added first. */
function standalone(el: XmlElement, outer: NamespaceScope): XmlElement {
  const decl = neededDeclarations(el, outer);
  if (Object.keys(decl).length === 0) return el;
  return { ...el, attributes: { ...decl, ...(el.attributes ?? {}) } };
}

/**
 * GET of an element (RFC 4825 section 7.3 / 8.1): the element as it appears
 * in the document (attributes and content kept), plus the namespace
 * declarations from its ancestors that its subtree uses, so the fragment
 * stands alone. Content type application/xcap-el+xml.
 */
export function getElement(doc: XmlDocument, sel: NodeSelector, defaultNs?: string): string {
  const s = select(doc, sel, defaultNs);
  if (s.kind !== 'element') notSelected(s);
  return serializeXml(standalone(s.element, s.scope), { declaration: false });
}

/**
 * GET of an attribute: the value escaped as it would appear inside a
 * double-quoted attribute in the document (RFC 4825 section 7.5 / 8.1:
 * application/xcap-att+xml).
 */
export function getAttribute(doc: XmlDocument, sel: NodeSelector, defaultNs?: string): string {
  const s = select(doc, sel, defaultNs);
  if (s.kind !== 'attribute') notSelected(s);
  return escapeAttribute(s.value);
}

/**
 * GET of namespace bindings (RFC 4825 section 7.10): an empty element with
 * the qualified name of the selected element whose only attributes are the
 * declarations of every namespace in scope at that element (the implicit
 * `xml` prefix excluded). Content type application/xcap-ns+xml.
 */
export function getNamespaces(doc: XmlDocument, sel: NodeSelector, defaultNs?: string): string {
  const s = select(doc, sel, defaultNs);
  if (s.kind !== 'namespaces') notSelected(s);
  const attrs: Record<string, string> = {};
  const keys = [...s.bindings.keys()].sort();
  for (const p of keys) attrs[p === '' ? 'xmlns' : `xmlns:${p}`] = s.bindings.get(p) ?? '';
  const el: XmlElement = { type: 'element', name: s.element.name };
  if (keys.length > 0) el.attributes = attrs;
  return serializeXml(el, { declaration: false });
}

/** Dispatches on the selector's terminal: the body and content type of a GET. */
export function getNode(
  doc: XmlDocument,
  sel: NodeSelector,
  defaultNs?: string,
): { contentType: string; body: string } {
  if (!sel.terminal) return { contentType: XCAP_EL_CONTENT_TYPE, body: getElement(doc, sel, defaultNs) };
  if (sel.terminal.kind === 'attribute')
    return { contentType: XCAP_ATT_CONTENT_TYPE, body: getAttribute(doc, sel, defaultNs) };
  return { contentType: XCAP_NS_CONTENT_TYPE, body: getNamespaces(doc, sel, defaultNs) };
}

// ---------------------------------------------------------------------------
// PUT / DELETE helpers
// ---------------------------------------------------------------------------

function cloneDoc(doc: XmlDocument): XmlDocument {
  return structuredClone(doc);
}

function decodeBody(body: string | Buffer): string {
  let text: string;
  if (typeof body === 'string') text = body;
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
    } catch {
      throw new XcapOpError('not-utf-8', 'request body is not valid UTF-8');
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

function depthOf(doc: XmlDocument, target: XmlElement): number {
  const find = (e: XmlElement, d: number): number => {
    if (e === target) return d;
    for (const c of childElements(e)) {
      const r = find(c, d + 1);
      if (r > 0) return r;
    }
    return 0;
  };
  return find(doc.root, 1);
}

/**
 * Parses a PUT body as an XML fragment (RFC 4825 section 8.2.1 / 8.2.3):
 * exactly one element, nothing else but whitespace and comments; an XML
 * declaration at the very start is tolerated. Prefixes and the default
 * namespace not declared in the fragment take the bindings in scope at the
 * insertion point (`context`), as if the text were pasted into the document;
 * declarations on the fragment's root that repeat a binding already in scope
 * are dropped, ones that bind a prefix differently are kept.
 */
function parseFragment(body: string | Buffer, context: NamespaceScope, maxDepth: number): XmlElement {
  let text = decodeBody(body);
  const decl = /^[ \t\r\n]*<\?xml[ \t\r\n][^?]*\?>/.exec(text);
  if (decl) {
    const enc = /encoding[ \t\r\n]*=[ \t\r\n]*["']([^"']*)["']/.exec(decl[0]);
    if (enc && !/^utf-?8$/i.test(enc[1] ?? ''))
      throw new XcapOpError('not-utf-8', 'request body declares an encoding other than UTF-8');
    text = text.slice(decl[0].length);
  }
  const bindings = context.bindings();
  let wrapperAttrs = '';
  for (const [p, uri] of bindings) {
    if (p === 'xml') continue;
    wrapperAttrs += ` ${p === '' ? 'xmlns' : `xmlns:${p}`}="${escapeAttribute(uri)}"`;
  }
  let wrapped: XmlDocument;
  try {
    wrapped = parseXml(`<xcap-fragment${wrapperAttrs}>${text}</xcap-fragment>`, {
      maxDepth: maxDepth + 1,
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
  } catch (e) {
    if (e instanceof XmlError) {
      if (e.kind === 'not-utf-8') throw new XcapOpError('not-utf-8', e.message);
      if (e.kind === 'too-deep')
        throw new XcapOpError('cannot-insert', 'the resulting document would be too deep', {
          phrase: 'document too deep',
        });
      throw new XcapOpError('not-xml-frag', `request body is not an XML fragment: ${e.message}`);
    }
    throw e;
  }
  const kids = wrapped.root.elements ?? [];
  const els = kids.filter((k): k is XmlElement => k.type === 'element');
  if (els.length !== 1) throw new XcapOpError('not-xml-frag', 'request body must contain exactly one element');
  if (kids.some((k) => k.type === 'text' || k.type === 'cdata')) {
    throw new XcapOpError('not-xml-frag', 'request body has text outside the element');
  }
  const el = els[0] as XmlElement;
  if (el.attributes) {
    const attrs: Record<string, string> = {};
    for (const k of Object.keys(el.attributes)) {
      const v = el.attributes[k] ?? '';
      const p = k === 'xmlns' ? '' : k.startsWith('xmlns:') ? k.slice(6) : undefined;
      if (p !== undefined && bindings.get(p) === v) continue; // redundant
      if (p === '' && v === '' && !bindings.has('')) continue; // xmlns="" where there is no default anyway
      attrs[k] = v;
    }
    if (Object.keys(attrs).length > 0) el.attributes = attrs;
    else delete el.attributes;
  }
  return el;
}

/** Index in parent.elements at which to insert a new element for `step` (RFC 4825 section 8.2.3). */
function insertionIndex(
  parent: XmlElement,
  parentInner: NamespaceScope,
  step: Step,
  defaultNs: string | undefined,
): number {
  const kids = parent.elements ?? [];
  const cands = childCandidates(parent, parentInner);
  const lastElementEnd = cands.length > 0 ? (cands[cands.length - 1] as Candidate).index + 1 : kids.length;
  if (step.position === undefined) return lastElementEnd;
  let counted = cands.filter((c) => nameMatches(c.element, c.scope, step.name, defaultNs));
  if (step.predicateOrder === 'attr-position' && step.attr) {
    const a = step.attr;
    counted = counted.filter((c) => findAttribute(c.element, c.scope, a.name)?.value === a.value);
  }
  const p = step.position;
  if (p < 1 || p - 1 > counted.length) {
    throw new XcapOpError('cannot-insert', `cannot make the new element number ${p} among ${counted.length} siblings`);
  }
  if (p - 1 === counted.length) {
    // after the last counted sibling; with none counted, after the last element
    return counted.length > 0 ? (counted[counted.length - 1] as Candidate).index + 1 : lastElementEnd;
  }
  return (counted[p - 1] as Candidate).index;
}

function noParent(sel: NodeSelector, matchedSteps: number): never {
  throw new XcapOpError('no-parent', 'the parent of the node does not exist', {
    ancestor: selectorPrefixText(sel, matchedSteps),
  });
}

// ---------------------------------------------------------------------------
// PUT
// ---------------------------------------------------------------------------

/**
 * PUT of an element (RFC 4825 section 8.2.3 / 8.2.5). Replaces the selected
 * element in place, or inserts a new one under the parent selected by all
 * but the last step. The result must be selected by the same selector
 * (otherwise 'cannot-insert'). Returns a new document; `created` is true
 * when the element did not exist (201), false when replaced (200).
 * `maxDepth` bounds the nesting of the resulting document (root = 1): deeper
 * is 'cannot-insert' ("document too deep").
 */
export function putElement(
  doc: XmlDocument,
  sel: NodeSelector,
  fragmentText: string | Buffer,
  defaultNs?: string,
  maxDepth: number = DEFAULT_MAX_DEPTH,
): { created: boolean; doc: XmlDocument } {
  if (sel.terminal) {
    if (sel.terminal.kind === 'namespace') throw new XcapOpError('not-allowed', 'namespace bindings cannot be written');
    throw new XcapOpError('not-xml-frag', 'selector names an attribute; use putAttribute');
  }
  const current = select(doc, sel, defaultNs);
  const out = cloneDoc(doc);
  let created: boolean;
  let inserted: XmlElement;
  const lastStep = sel.steps[sel.steps.length - 1] as Step;

  if (current.kind === 'element') {
    created = false;
    // Locate the same node in the clone.
    const again = select(out, sel, defaultNs);
    if (again.kind !== 'element') throw new Error('internal: clone selection mismatch');
    const context = again.parent ? again.scope : NamespaceScope.root();
    const depth = again.parent ? depthOf(out, again.parent) : 0;
    inserted = parseFragment(fragmentText, context, maxDepth - depth);
    if (again.parent) {
      (again.parent.elements as XmlNode[])[again.index] = inserted;
    } else {
      out.root = inserted;
    }
  } else {
    created = true;
    if (current.kind === 'many' && current.matchedSteps === sel.steps.length - 1) {
      throw new XcapOpError('cannot-insert', 'the node selector matches several elements');
    }
    if (sel.steps.length === 1) {
      // The only step failed on the root: a document has exactly one root.
      throw new XcapOpError('cannot-insert', 'the document already has a different root element');
    }
    const parentSteps = sel.steps.slice(0, -1);
    const pw = walk(out, parentSteps, defaultNs);
    if (!pw.ok) noParent(sel, pw.matchedSteps);
    const parent = pw.located.element;
    const inner = pw.located.scope.child(parent);
    inserted = parseFragment(fragmentText, inner, maxDepth - depthOf(out, parent));
    const at = insertionIndex(parent, inner, lastStep, defaultNs);
    parent.elements ??= [];
    parent.elements.splice(at, 0, inserted);
  }

  const check = select(out, sel, defaultNs);
  if (check.kind !== 'element' || check.element !== inserted) {
    throw new XcapOpError(
      'cannot-insert',
      created
        ? 'the new element would not be selected by the request URI'
        : 'the replacement would not be selected by the request URI',
    );
  }
  return { created, doc: out };
}

/**
 * Parses an application/xcap-att+xml body: an attribute value as it would
 * appear between quotes in the document. References are decoded; '<', a bare
 * '&', undefined entities and characters XML does not allow are refused
 * ('not-xml-att-value'); literal TAB/CR/LF become spaces (attribute value
 * normalisation). A value containing both quote characters raw is refused.
 */
export function parseAttributeValue(body: string | Buffer): string {
  const text = decodeBody(body);
  if (text.includes('"') && text.includes("'")) {
    throw new XcapOpError('not-xml-att-value', 'attribute value contains both quote characters unescaped');
  }
  try {
    return decodeXmlReferences(text.replace(/\r\n|[\t\n\r]/g, ' '));
  } catch {
    throw new XcapOpError('not-xml-att-value', 'request body is not a valid attribute value');
  }
}

function attributeQName(
  el: XmlElement,
  elScope: NamespaceScope,
  name: XcapName,
): { qname: string; declare?: [string, string] } {
  if (name.ns === undefined) return { qname: name.local };
  for (const [p, uri] of elScope.bindings()) {
    if (p !== '' && uri === name.ns) return { qname: `${p}:${name.local}` };
  }
  if (name.ns === xmlNamespaces.xml) return { qname: `xml:${name.local}` };
  // Declare a prefix on the element: the selector's prefix if free, else a fresh one.
  let p = name.prefix ?? 'ns';
  let n = 0;
  while (elScope.resolve(p) !== undefined || Object.hasOwn(el.attributes ?? {}, `xmlns:${p}`)) p = `ns${++n}`;
  return { qname: `${p}:${name.local}`, declare: [`xmlns:${p}`, name.ns] };
}

/**
 * PUT of an attribute (RFC 4825 section 8.2.4): creates or replaces the
 * attribute selected by the terminal `@name` on the element selected by the
 * steps (which must exist: otherwise 'no-parent'). The selector must still
 * select the attribute afterwards (e.g. an attribute predicate on the same
 * attribute would break: 'cannot-insert').
 */
export function putAttribute(
  doc: XmlDocument,
  sel: NodeSelector,
  valueText: string | Buffer,
  defaultNs?: string,
): { created: boolean; doc: XmlDocument } {
  const t = sel.terminal;
  if (!t || t.kind !== 'attribute') {
    if (t?.kind === 'namespace') throw new XcapOpError('not-allowed', 'namespace bindings cannot be written');
    throw new XcapOpError('not-xml-att-value', 'selector does not name an attribute');
  }
  const value = parseAttributeValue(valueText);
  const out = cloneDoc(doc);
  const w = walk(out, sel.steps, defaultNs);
  // The element that would carry the attribute must be selected uniquely;
  // zero or several matches both mean it has no (single) parent.
  if (!w.ok) noParent(sel, w.matchedSteps);
  const el = w.located.element;
  const elScope = w.located.scope.child(el);
  const existing = findAttribute(el, elScope, t.name);
  el.attributes ??= {};
  if (existing) {
    el.attributes[existing.qname] = value;
  } else {
    const q = attributeQName(el, elScope, t.name);
    if (q.declare) el.attributes[q.declare[0]] = q.declare[1];
    el.attributes[q.qname] = value;
  }
  const check = select(out, sel, defaultNs);
  if (check.kind !== 'attribute' || check.value !== value) {
    throw new XcapOpError('cannot-insert', 'the attribute would not be selected by the request URI');
  }
  return { created: !existing, doc: out };
}

// ---------------------------------------------------------------------------
// DELETE
// ---------------------------------------------------------------------------

/**
 * DELETE of an element or attribute (RFC 4825 section 8.2.5 / 8.3). The node
 * must exist (404 otherwise). Afterwards the selector must select nothing:
 * e.g. deleting `entry[1]` while another entry would become `entry[1]` gives
 * 'cannot-delete'. Deleting the root element is 'cannot-delete' (delete the
 * document instead). Returns a new document.
 */
export function deleteNode(doc: XmlDocument, sel: NodeSelector, defaultNs?: string): { doc: XmlDocument } {
  if (sel.terminal?.kind === 'namespace') throw new XcapOpError('not-allowed', 'namespace bindings cannot be deleted');
  const out = cloneDoc(doc);
  const s = select(out, sel, defaultNs);
  if (s.kind === 'element') {
    if (!s.parent) throw new XcapOpError('cannot-delete', 'the root element cannot be deleted; delete the document');
    (s.parent.elements as XmlNode[]).splice(s.index, 1);
    if (s.parent.elements && s.parent.elements.length === 0) delete s.parent.elements;
  } else if (s.kind === 'attribute') {
    const attrs = s.element.attributes as Record<string, string>;
    delete attrs[s.name];
    if (Object.keys(attrs).length === 0) delete s.element.attributes;
  } else {
    notSelected(s);
  }
  const check = select(out, sel, defaultNs);
  if (check.kind !== 'none') {
    throw new XcapOpError('cannot-delete', 'after the deletion the request URI would select another node');
  }
  return { doc: out };
}

// ---------------------------------------------------------------------------
// Error bodies (RFC 4825 section 11)
// ---------------------------------------------------------------------------

/** One <exists> of a uniqueness failure: the field (a node selector) and suggested alternative values. */
export interface UniquenessExists {
  field: string;
  altValues?: string[];
}

export type XcapErrorCondition =
  | { tag: 'no-parent'; ancestor?: string; phrase?: string }
  | { tag: 'uniqueness-failure'; exists: UniquenessExists[]; phrase?: string }
  | { tag: 'constraint-failure'; phrase?: string }
  | {
      tag:
        | 'not-well-formed'
        | 'not-xml-frag'
        | 'not-xml-att-value'
        | 'schema-validation-error'
        | 'cannot-insert'
        | 'cannot-delete'
        | 'not-utf-8';
      phrase?: string;
    };

/**
 * The application/xcap-error+xml body for a 409 condition. Accepts an
 * XcapOpError (for 'no-parent', its selector-relative ancestor is turned
 * into a URI with `opts.documentUri` when given) or an explicit condition,
 * e.g. from an application usage:
 *   xcapErrorBody({ tag: 'uniqueness-failure', exists: [{ field: 'resource-lists/list/@name', altValues: ['friends1'] }] })
 *   xcapErrorBody({ tag: 'constraint-failure', phrase: 'entry URI must be a SIP URI' })
 * For XcapOpError tags that have no 409 body ('not-found', 'many-selected',
 * 'not-allowed') an Error is thrown.
 */
export function xcapErrorBody(err: XcapOpError | XcapErrorCondition, opts: { documentUri?: string } = {}): string {
  let cond: XcapErrorCondition;
  if (err instanceof XcapOpError) {
    if (err.tag === 'not-found' || err.tag === 'many-selected' || err.tag === 'not-allowed') {
      throw new Error(`no xcap-error body for ${err.tag}`);
    }
    if (err.tag === 'no-parent') {
      cond = { tag: 'no-parent' };
      if (err.ancestor !== undefined) {
        cond.ancestor = opts.documentUri !== undefined ? nodeUri(opts.documentUri, err.ancestor) : err.ancestor;
      }
    } else {
      cond = { tag: err.tag };
    }
    if (err.phrase !== undefined) cond.phrase = err.phrase;
  } else {
    cond = err;
  }
  const phrase = cond.phrase !== undefined ? ` phrase="${escapeAttribute(cond.phrase)}"` : '';
  let inner: string;
  switch (cond.tag) {
    case 'no-parent':
      inner =
        cond.ancestor !== undefined
          ? `<no-parent${phrase}><ancestor>${escapeText(cond.ancestor)}</ancestor></no-parent>`
          : `<no-parent${phrase}/>`;
      break;
    case 'uniqueness-failure': {
      const ex = cond.exists
        .map((e) => {
          const alts = (e.altValues ?? []).map((v) => `<alt-value>${escapeText(v)}</alt-value>`).join('');
          return alts
            ? `<exists field="${escapeAttribute(e.field)}">${alts}</exists>`
            : `<exists field="${escapeAttribute(e.field)}"/>`;
        })
        .join('');
      inner = `<uniqueness-failure${phrase}>${ex}</uniqueness-failure>`;
      break;
    }
    default:
      inner = `<${cond.tag}${phrase}/>`;
  }
  return `<?xml version="1.0" encoding="UTF-8"?><xcap-error xmlns="${xmlNamespaces.xcapError}">${inner}</xcap-error>`;
}
