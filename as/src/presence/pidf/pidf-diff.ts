/**
 * Partial PIDF: the application/pidf-diff+xml format of RFC 5262, used by the partial
 * notification extension of the presence event package (RFC 5263). Pure: no I/O.
 *
 * What the RFCs say, and what this module does about it:
 *  - RFC 5262 section 3: one content type, two root elements in urn:ietf:params:xml:ns:pidf-diff.
 *    <pidf-full> carries the full state: exactly the children a <presence> would have, plus a
 *    'version' attribute (its schema, section 7, extends pidf:presence, so 'entity' is there too).
 *    <pidf-diff> carries changes as RFC 5261 patch operations (<add>, <replace>, <remove>).
 *    A <presence> root is not allowed in this content type.
 *  - RFC 5262 section 3: one version counter across <pidf-full> and <pidf-diff>, incremented by
 *    one per document; section 3.1 makes 'version' optional, but RFC 5263 section 4.4 makes the
 *    presence agent include it, start at 1 in the first notification of the subscription, add
 *    one per notification, and never reset it on refresh. We always write it.
 *  - RFC 5262 section 3.2: the optional 'entity' of <pidf-diff> must equal the presence entity.
 *    We always write it; the applier checks it when present.
 *  - RFC 5262 section 4: a diff should carry only what changed, but full state may be sent
 *    instead when there are many changes: pidfDiff returns undefined when the diff would not be
 *    smaller than the <pidf-full> document.
 *  - RFC 5263 section 4.4: the first notification of a partial-notification subscription carries
 *    <pidf-full> (Content-Type application/pidf-diff+xml); a refresh (or terminating) SUBSCRIBE
 *    should be answered with full state; a subscription that switches to pidf-diff+xml from
 *    another type starts again with <pidf-full>. So, inside this content type, full state is
 *    always <pidf-full>. A plain application/pidf+xml body is the other content type: used when
 *    the watcher's Accept lacks pidf-diff+xml (sections 3.1, 4.3), or when the presence agent
 *    switches the subscription away from partial notification (sections 4.4, 4.5: the watcher
 *    then drops its copy but keeps the version counter, which continues if pidf-diff+xml resumes).
 *  - RFC 5263 section 4.4 also: no new partial NOTIFY before the previous one got a final
 *    response or timed out (the caller's job: a diff is only valid against what was delivered).
 *  - RFC 5263 section 4.5 (watcher): a document whose version is not above the stored one is
 *    discarded; a <pidf-diff> whose version skips one or more means lost notifications (the
 *    watcher re-subscribes). applyPidfPatch throws PidfDiffError in both cases.
 *
 * The diffs we write (pidfDiff), for two canonical PIDF documents of the same entity:
 *  - Top-level children of <presence>: tuple, dm:person and dm:device are matched by expanded
 *    name + id; other children (presence notes, extension elements) by position among the
 *    children of the same expanded name. Changed ones are replaced (tuple, person and device
 *    possibly in parts, see below), removed ones removed, new ones added where they belong:
 *    RFC 5262 section 3 says the content is exactly a PIDF document and should be valid, and
 *    the PIDF schema fixes the order (tuples, notes, extensions), so additions keep the current
 *    document's order (pos="prepend" / "after", plain append at the end), as the RFC 5262
 *    section 6 example does with pos="before". The same holds inside tuples, persons, devices.
 *  - A changed tuple / dm:person / dm:device (same name, id and attributes in both documents)
 *    is diffed one level down in the same way, its children matched by expanded name +
 *    position among same-named siblings (`.../pidf:tuple[@id='t']/pidf:note[2]`), and a changed
 *    child with element-only content one level further (`.../pidf:status/pidf:basic`). Below the
 *    top level an element holding only text may instead get its text node replaced (RFC 5261
 *    section 4.4: `sel=".../pidf:basic/text()"`). For every changed element the smallest of
 *    these encodings is written (whole replace on a tie): a typical change (basic, a note, one
 *    RPID element) costs one small operation, not the whole tuple or person. Elements the
 *    schemas allow once in their parent (status, basic, contact, timestamp, deviceID) are named
 *    without a position.
 *  - The root declares only what the operations need: the pidf-diff prefix (normally `p`, as in
 *    the RFC examples), the prefixes the selectors use, and the current document's declarations
 *    of the prefixes the added content uses (RFC 5261 section 4.2.3: added content must be in
 *    scope of its declarations; with PIDF as the default namespace the content is written exactly
 *    as in the PIDF document). No XML declaration: it is optional and would be a fixed 38 bytes
 *    on every diff. Selectors always use declared prefixes
 *    (`pidf:presence/pidf:tuple[@id='x']`, `pidf:presence/dm:person[@id='y']`), never the
 *    default namespace: RFC 5261 section 4.2.1 lets an unprefixed selector name mean the
 *    default namespace, but a receiver using a plain XPath 1.0 engine would read it as "no
 *    namespace"; a prefixed name means the same to both.
 *  - XPath 1.0 literals have no escapes (RFC 5261 section 4.3.2 only notes that the quote
 *    characters may be written as references in the XML attribute): an id without `'` is written
 *    '...', an id with `'` but no `"` is written "..." (the attribute then holds &quot;), and an
 *    id with both falls back to a positional step (`pidf:tuple[3]`). Every position is computed
 *    against the document as the earlier operations of the same diff left it (RFC 5261 section
 *    4: operations apply in document order, each to the result of the previous one).
 *
 * The applier (applyPidfPatch) implements the RFC 5261 selector subset (section 8 grammar: id(),
 * element steps with attribute / child value / self value / position predicates, text(),
 * comment(), processing-instruction(), @attribute, namespace::prefix) and the three operations,
 * with RFC 5261 section 4.2.1 prefix rules (unprefixed selector names take the diff document's
 * default namespace). Deliberate leniencies, all because the XML layer drops whitespace-only
 * text in element-only content: `ws` removes the neighbouring white-space text nodes when there
 * are any and is otherwise ignored. Added content keeps the diff document's prefixes; where a
 * prefix is bound differently at the insertion point the element carries its own declaration
 * (same expanded names as RFC 5261 section 4.2.3 asks for, different prefixes). The result is
 * checked as PIDF and returned in our canonical form (parsePidf + serializePidf), so equal
 * states give equal bytes.
 */
import {
  NamespaceScope,
  XmlError,
  type XmlElement,
  type XmlNode,
  attr,
  childElements,
  escapeAttribute,
  isNCName,
  parseXml,
  serializeXml,
  textContent,
} from '../../xml/xml-tree.js';
import { DM_NS, PIDF_NS, PidfError, parsePidf, serializePidf } from './pidf.js';

export const PIDF_DIFF_NS = 'urn:ietf:params:xml:ns:pidf-diff';
export const PIDF_DIFF_CONTENT_TYPE = 'application/pidf-diff+xml';

/** xs:unsignedInt, the type of 'version' (RFC 5262 section 7). */
const MAX_VERSION = 4294967295;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * Why a document could not be used. Where RFC 5261 section 5.1 names the condition, its error
 * element name is used (RFC 5262 section 11: a bad 'version' or 'entity' is
 * invalid-attribute-value); the others are RFC 5263 section 4.5 watcher rules or our own checks.
 */
export type PidfDiffCondition =
  | 'invalid-diff-format'
  | 'invalid-attribute-value'
  | 'invalid-namespace-prefix'
  | 'invalid-node-types'
  | 'invalid-root-element-operation'
  | 'unlocated-node'
  | 'invalid-pidf'
  | 'no-base-document'
  | 'stale-version'
  | 'version-gap';

export class PidfDiffError extends Error {
  /** Short printable ASCII, usable in a log line or a reason phrase. */
  readonly reason: string;
  readonly condition: PidfDiffCondition;
  constructor(condition: PidfDiffCondition, reason: string, options: { cause?: unknown } = {}) {
    // eslint-disable-next-line no-control-regex
    let r = reason.replace(/[^\x20-\x7e]/g, '?');
    if (r.length > 160) r = `${r.slice(0, 157)}...`;
    super(r, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PidfDiffError';
    this.reason = r;
    this.condition = condition;
  }
}

function q(v: string): string {
  return JSON.stringify(v.length > 48 ? `${v.slice(0, 48)}...` : v);
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0 || version > MAX_VERSION) {
    throw new RangeError(`pidf-diff version must be an integer from 0 to ${MAX_VERSION}, got ${version}`);
  }
}

function parseDocument(text: string, what: string): XmlElement {
  try {
    return parseXml(text).root;
  } catch (e) {
    if (e instanceof XmlError) {
      const why = e.kind === 'doctype-forbidden' ? 'DOCTYPE not allowed' : e.kind === 'not-well-formed' ? 'malformed XML' : e.kind;
      throw new PidfDiffError('invalid-diff-format', `${what}: ${why} (${e.message})`, { cause: e });
    }
    throw e;
  }
}

/** Parses a PIDF document and checks its root is {pidf}presence with an entity. */
function parsePresence(text: string, what: string): { root: XmlElement; scope: NamespaceScope } {
  const root = parseDocument(text, what);
  const scope = NamespaceScope.root().child(root);
  const n = scope.expand(root.name);
  if (n.ns !== PIDF_NS || n.local !== 'presence') throw new PidfDiffError('invalid-pidf', `${what}: root element is not PIDF presence`);
  if ((attr(root, 'entity') ?? '').trim() === '') throw new PidfDiffError('invalid-pidf', `${what}: presence without entity`);
  return { root, scope };
}

// ---------------------------------------------------------------------------
// Namespace helpers
// ---------------------------------------------------------------------------

function isDeclaration(name: string): boolean {
  return name === 'xmlns' || name.startsWith('xmlns:');
}

/** The xmlns declarations of an element, in document order, as [attribute name, URI]. */
function declarationsOf(el: XmlElement): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [k, v] of Object.entries(el.attributes ?? {})) if (isDeclaration(k) && v !== undefined) out.push([k, v]);
  return out;
}

function prefixOfDeclaration(name: string): string {
  return name === 'xmlns' ? '' : name.slice(6);
}

/** A prefix not in `taken`, `preferred` when possible. */
function freePrefix(preferred: string, taken: ReadonlySet<string>): string {
  if (!taken.has(preferred)) return preferred;
  for (let i = 1; ; i++) if (!taken.has(`${preferred}${i}`)) return `${preferred}${i}`;
}

/**
 * Root attributes of a pidf-full made from a presence root: the default namespace first, then
 * the pidf-diff prefix, the presence root's other declarations, its other attributes and the
 * version (the order of the RFC 5262 examples).
 */
function wrapperAttributes(presence: XmlElement, diffPrefix: string, version: number): Record<string, string> {
  const out: Record<string, string> = {};
  const decls = declarationsOf(presence);
  for (const [k, v] of decls) if (k === 'xmlns') out[k] = v;
  out[`xmlns:${diffPrefix}`] = PIDF_DIFF_NS;
  for (const [k, v] of decls) if (k !== 'xmlns') out[k] = v;
  for (const [k, v] of Object.entries(presence.attributes ?? {})) {
    if (!isDeclaration(k) && k !== 'version' && v !== undefined) out[k] = v;
  }
  out.version = String(version);
  return out;
}

function takenPrefixes(el: XmlElement): Set<string> {
  const taken = new Set<string>(['xml', 'xmlns']);
  for (const [k] of declarationsOf(el)) taken.add(prefixOfDeclaration(k));
  return taken;
}

// ---------------------------------------------------------------------------
// pidf-full
// ---------------------------------------------------------------------------

function fullDocument(presence: XmlElement, version: number): string {
  const p = freePrefix('p', takenPrefixes(presence));
  const el: XmlElement = { type: 'element', name: `${p}:pidf-full`, attributes: wrapperAttributes(presence, p, version) };
  if (presence.elements && presence.elements.length > 0) el.elements = presence.elements;
  return serializeXml({ root: el });
}

/** The full-state document for a pidf-diff watcher: a <pidf-full> wrapping the PIDF, with version. */
export function pidfFull(pidf: string /* a canonical PIDF document as our serializer writes it */, version: number): string {
  checkVersion(version);
  return fullDocument(parsePresence(pidf, 'pidf').root, version);
}

// ---------------------------------------------------------------------------
// pidf-diff (writing)
// ---------------------------------------------------------------------------

interface Item {
  /** Identity across the two documents: `{ns}local@id` or `{ns}local#occurrence`. */
  key: string;
  el: XmlElement;
  /** In-scope namespaces inside `el` (to expand the names of its children). */
  scope: NamespaceScope;
  ns: string | undefined;
  local: string;
  /** The id used in the selector (tuple / dm:person / dm:device). */
  id?: string;
  /** The element as written, for comparison. */
  text: string;
}

const KEYED = new Set([`{${PIDF_NS}}tuple`, `{${DM_NS}}person`, `{${DM_NS}}device`]);

/** Top-level children; undefined when an id occurs twice for one element name (not valid PIDF: full state). */
function itemsOf(root: XmlElement, scope: NamespaceScope): Item[] | undefined {
  const out: Item[] = [];
  const seen = new Map<string, number>();
  const keys = new Set<string>();
  for (const el of childElements(root)) {
    const inner = scope.child(el);
    const n = inner.expand(el.name);
    const ek = `{${n.ns ?? ''}}${n.local}`;
    const occurrence = seen.get(ek) ?? 0;
    seen.set(ek, occurrence + 1);
    const id = KEYED.has(ek) ? attr(el, 'id') : undefined;
    const key = id !== undefined ? `${ek}@${id}` : `${ek}#${occurrence}`;
    if (keys.has(key)) return undefined;
    keys.add(key);
    const item: Item = { key, el, scope: inner, ns: n.ns, local: n.local, text: serializeXml(el) };
    if (id !== undefined) item.id = id;
    out.push(item);
  }
  return out;
}

/** Children of a tuple / person / device (or deeper), keyed by expanded name + occurrence. */
function childItems(parent: Item): Item[] {
  const out: Item[] = [];
  const seen = new Map<string, number>();
  for (const el of childElements(parent.el)) {
    const inner = parent.scope.child(el);
    const n = inner.expand(el.name);
    const ek = `{${n.ns ?? ''}}${n.local}`;
    const occurrence = seen.get(ek) ?? 0;
    seen.set(ek, occurrence + 1);
    out.push({ key: `${ek}#${occurrence}`, el, scope: inner, ns: n.ns, local: n.local, text: serializeXml(el) });
  }
  return out;
}

/** The keys of the longest common subsequence of two orderings of the same key set (via LIS). */
function stableKeys(prevOrder: readonly string[], curOrder: readonly string[]): Set<string> {
  const rank = new Map<string, number>();
  curOrder.forEach((k, i) => rank.set(k, i));
  const seq = prevOrder.map((k) => rank.get(k) ?? -1);
  // Patience sorting: tails[l] = index in seq of the smallest tail of an increasing run of length l+1.
  const tails: number[] = [];
  const back: number[] = new Array<number>(seq.length).fill(-1);
  for (let i = 0; i < seq.length; i++) {
    const v = seq[i] ?? -1;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((seq[tails[mid] ?? 0] ?? -1) < v) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) back[i] = tails[lo - 1] ?? -1;
    tails[lo] = i;
  }
  const out = new Set<string>();
  for (let i = tails.length > 0 ? (tails[tails.length - 1] ?? -1) : -1; i !== -1; i = back[i] ?? -1) {
    const k = prevOrder[i];
    if (k !== undefined) out.add(k);
  }
  return out;
}

/** An XPath 1.0 literal for `v`, or undefined when v contains both quote characters. */
function xpathLiteral(v: string): string | undefined {
  if (!v.includes("'")) return `'${v}'`;
  if (!v.includes('"')) return `"${v}"`;
  return undefined;
}

/**
 * Child elements the PIDF / data-model schemas allow at most once in their parent: their
 * selector step needs no position (`.../pidf:status/pidf:basic`).
 */
const SINGLE = new Set([
  `{${PIDF_NS}}status`,
  `{${PIDF_NS}}basic`,
  `{${PIDF_NS}}contact`,
  `{${PIDF_NS}}timestamp`,
  `{${DM_NS}}deviceID`,
  `{${DM_NS}}timestamp`,
]);

/** Writer state saved before trying one encoding of a change, to undo it if another is smaller. */
interface Mark {
  ops: number;
  declarations: number;
  taken: Set<string>;
  selectorPrefixes: Map<string, string>;
  rootSelector: string | undefined;
}

/**
 * Builds the operations of one pidf-diff. The root declares only what the operations use (the
 * pidf-diff prefix, selector prefixes, prefixes of the added content): the current document's
 * other declarations would only make every diff bigger.
 */
class DiffWriter {
  readonly prefix: string;
  private readonly taken: Set<string>;
  /** The current document's root declarations, prefix ('' = default) -> URI, in document order. */
  private readonly available: Map<string, string>;
  /** Declared on the diff root besides the pidf-diff prefix, in the order first needed. */
  private readonly declarations: Array<[string, string]> = [];
  private readonly selectorPrefixes = new Map<string, string>();
  readonly ops: XmlElement[] = [];
  private rootSelector: string | undefined;

  constructor(
    private readonly current: XmlElement,
    private readonly prevScope: NamespaceScope,
  ) {
    this.taken = takenPrefixes(current);
    this.prefix = freePrefix('p', this.taken);
    this.taken.add(this.prefix);
    this.available = new Map(declarationsOf(current).map(([k, v]) => [prefixOfDeclaration(k), v]));
  }

  private declared(prefix: string): boolean {
    return prefix === this.prefix || this.declarations.some(([p]) => p === prefix);
  }

  /** Declares a prefix of the current document on the diff root, so content keeps its bytes. */
  private declareAvailable(prefix: string): void {
    const uri = this.available.get(prefix);
    if (uri !== undefined && !this.declared(prefix)) this.declarations.push([prefix, uri]);
  }

  /** A non-empty prefix bound to `ns` on the diff root (declared there when needed). */
  selectorPrefix(ns: string): string {
    const have = this.selectorPrefixes.get(ns);
    if (have !== undefined) return have;
    let p: string | undefined;
    for (const [k, v] of this.declarations) if (k !== '' && v === ns) p ??= k;
    for (const [k, v] of this.available) if (k !== '' && v === ns) p ??= k;
    if (p !== undefined) this.declareAvailable(p);
    else {
      const preferred = ns === PIDF_NS ? 'pidf' : ns === DM_NS ? 'dm' : this.prevScope.prefixFor(ns);
      p = freePrefix(preferred !== undefined && preferred !== '' && isNCName(preferred) && !/^xml/i.test(preferred) ? preferred : 'ns', this.taken);
      this.taken.add(p);
      this.declarations.push([p, ns]);
    }
    this.selectorPrefixes.set(ns, p);
    return p;
  }

  root(): string {
    this.rootSelector ??= `${this.selectorPrefix(PIDF_NS)}:presence`;
    return this.rootSelector;
  }

  /**
   * Selector of `item`, a child of the element selected by `parent`, in the working list `w` of
   * that element's children (the state after the operations so far).
   */
  selector(item: Item, w: readonly Item[], parent: string): string {
    if (item.id !== undefined && item.ns !== undefined) {
      const lit = xpathLiteral(item.id);
      if (lit !== undefined) return `${parent}/${this.selectorPrefix(item.ns)}:${item.local}[@id=${lit}]`;
    }
    const j = w.findIndex((x) => x.key === item.key);
    if (item.ns === undefined) {
      // An unprefixed selector name means the diff's default namespace (RFC 5261 section 4.2.1):
      // a no-namespace element can only be named when there is none. The default namespace may
      // be declared by a later operation's content, so this depends on the current document.
      if (this.available.has('')) return `${parent}/*[${j + 1}]`;
      return `${parent}/${item.local}[${sameNameBefore(item, w, j) + 1}]`;
    }
    const step = `${parent}/${this.selectorPrefix(item.ns)}:${item.local}`;
    // The position is left out only when it cannot matter: the name occurs once in the working list.
    if (SINGLE.has(`{${item.ns}}${item.local}`) && sameNameBefore(item, w, w.length) === 1) return step;
    return `${step}[${sameNameBefore(item, w, j) + 1}]`;
  }

  op(local: 'add' | 'replace' | 'remove', attributes: Record<string, string>, content?: XmlNode[]): void {
    const el: XmlElement = { type: 'element', name: `${this.prefix}:${local}`, attributes };
    if (content && content.length > 0) {
      el.elements = content;
      // RFC 5261 section 4.2.3: the content is written as in the current document, so the
      // prefixes it takes from the current root must be in scope here too.
      const used = new Set<string>();
      for (const n of content) if (n.type === 'element') usedPrefixes(n, new Set(), used);
      for (const [p] of this.available) if (used.has(p)) this.declareAvailable(p);
    }
    this.ops.push(el);
  }

  mark(): Mark {
    return {
      ops: this.ops.length,
      declarations: this.declarations.length,
      taken: new Set(this.taken),
      selectorPrefixes: new Map(this.selectorPrefixes),
      rootSelector: this.rootSelector,
    };
  }

  /** Bytes the diff document gained since `m`: operations plus root declarations. */
  costSince(m: Mark): number {
    let n = 0;
    for (const op of this.ops.slice(m.ops)) n += Buffer.byteLength(serializeXml(op), 'utf8');
    for (const [k, v] of this.declarations.slice(m.declarations)) n += Buffer.byteLength(` xmlns${k === '' ? '' : ':'}${k}="${escapeAttribute(v)}"`, 'utf8');
    return n;
  }

  rollback(m: Mark): void {
    this.ops.length = m.ops;
    this.declarations.length = m.declarations;
    this.taken.clear();
    for (const p of m.taken) this.taken.add(p);
    this.selectorPrefixes.clear();
    for (const [k, v] of m.selectorPrefixes) this.selectorPrefixes.set(k, v);
    this.rootSelector = m.rootSelector;
  }

  /**
   * The <pidf-diff> document, without an XML declaration: it is optional (UTF-8 is the default
   * encoding) and would be a fixed 38 bytes on every small diff. Root attributes in the order of
   * the RFC 5262 examples: default namespace, pidf-diff prefix, other declarations (those of the
   * current document in its order, then new ones), entity, version.
   */
  document(version: number): string {
    const decl = (p: string): string => (p === '' ? 'xmlns' : `xmlns:${p}`);
    const attributes: Record<string, string> = {};
    const dflt = this.declarations.find(([p]) => p === '');
    if (dflt) attributes.xmlns = dflt[1];
    attributes[`xmlns:${this.prefix}`] = PIDF_DIFF_NS;
    for (const [p, uri] of this.available) if (p !== '' && this.declared(p)) attributes[decl(p)] = uri;
    for (const [p, uri] of this.declarations) attributes[decl(p)] ??= uri;
    for (const [k, v] of Object.entries(this.current.attributes ?? {})) {
      if (!isDeclaration(k) && k !== 'version' && v !== undefined) attributes[k] = v;
    }
    attributes.version = String(version);
    const el: XmlElement = { type: 'element', name: `${this.prefix}:pidf-diff`, attributes, elements: this.ops };
    return serializeXml(el);
  }
}

function sameNameBefore(item: Item, w: readonly Item[], j: number): number {
  let k = 0;
  for (let i = 0; i < j; i++) {
    const x = w[i];
    if (x && x.ns === item.ns && x.local === item.local) k++;
  }
  return k;
}

function nonDeclarationAttributes(el: XmlElement): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(el.attributes ?? {})) if (!isDeclaration(k)) out.push(`${k}=${v}`);
  return out.sort().join('\u0000');
}

/** Called for a child present in both lists (same key, same relative order) whose content changed. */
type OnChanged = (old: Item, now: Item, sel: string) => void;

/**
 * Operations turning the children `before` of the element selected by `parent` into `after`:
 * removals (gone, or moved: a moved child is removed and added again at its new place), then
 * changed children (via `changed`), then additions in runs of consecutive new children, each at
 * its place in the current order (the PIDF schemas fix the order of children at every level).
 */
function diffChildren(w: DiffWriter, parent: string, before: readonly Item[], after: readonly Item[], changed: OnChanged): void {
  const afterByKey = new Map(after.map((i) => [i.key, i]));
  const beforeKeys = new Set(before.map((i) => i.key));
  const stable = stableKeys(
    before.filter((i) => afterByKey.has(i.key)).map((i) => i.key),
    after.filter((i) => beforeKeys.has(i.key)).map((i) => i.key),
  );
  const work: Item[] = [...before];

  for (const item of before) {
    if (stable.has(item.key)) continue;
    w.op('remove', { sel: w.selector(item, work, parent) });
    work.splice(work.indexOf(item), 1);
  }
  for (let i = 0; i < work.length; i++) {
    const old = work[i];
    if (!old) continue;
    const now = afterByKey.get(old.key);
    if (!now || now.text === old.text) continue;
    // The operations of `changed` stay inside this child: the working list is not affected.
    changed(old, now, w.selector(old, work, parent));
    work[i] = now;
  }
  for (let a = 0; a < after.length; ) {
    const first = after[a];
    if (!first || stable.has(first.key)) {
      a++;
      continue;
    }
    let b = a + 1;
    while (b < after.length && !stable.has(after[b]?.key ?? '')) b++;
    const run = after.slice(a, b);
    let at: number;
    if (b === after.length) {
      w.op('add', { sel: parent }, run.map((i) => i.el));
      at = work.length;
    } else if (a === 0) {
      w.op('add', { sel: parent, pos: 'prepend' }, run.map((i) => i.el));
      at = 0;
    } else {
      const anchor = after[a - 1] as Item;
      w.op('add', { sel: w.selector(anchor, work, parent), pos: 'after' }, run.map((i) => i.el));
      at = work.findIndex((x) => x.key === anchor.key) + 1;
    }
    work.splice(at, 0, ...run);
    a = b;
  }
}

/** Same qualified name and the same attributes (declarations included) in the same order. */
function sameShell(a: XmlElement, b: XmlElement): boolean {
  return a.name === b.name && JSON.stringify(Object.entries(a.attributes ?? {})) === JSON.stringify(Object.entries(b.attributes ?? {}));
}

function elementOnly(el: XmlElement): boolean {
  return (el.elements ?? []).every((n) => n.type === 'element');
}

function textNodesOnly(el: XmlElement, cdata: boolean): boolean {
  const nodes = el.elements ?? [];
  return nodes.length > 0 && nodes.every((n) => n.type === 'text' || (cdata && n.type === 'cdata'));
}

/**
 * The new text when `old` -> `now` can be a replace of `old`'s text node: both elements hold only
 * text (text() selects a whole run of text and CDATA; the new text must be plain, as the applier
 * makes a text node and extension elements keep CDATA as written). The old text must exist (else
 * text() selects nothing), and the new one must not be white space only (parseXml would drop it
 * from the diff, and the replace would remove the node).
 */
function replacementText(old: XmlElement, now: XmlElement): string | undefined {
  if (!sameShell(old, now) || !textNodesOnly(old, true) || !textNodesOnly(now, false) || textContent(old) === '') return undefined;
  const t = textContent(now);
  return /[^ \t\n\r]/.test(t) ? t : undefined;
}

/** Depth of the children we still descend into: those of a tuple / dm:person / dm:device (e.g. <status>). */
const MAX_DESCENT = 1;

/**
 * Writes the smallest encoding of a change of one element selected by `sel`: a replace of the
 * whole element; for a tuple / dm:person / dm:device (depth 0, matched by id) and its children
 * (depth 1), operations on their children; for a text-only element below the top level, a
 * replace of its text node. Each candidate is measured in the bytes it adds to the diff.
 */
function encodeChange(w: DiffWriter, old: Item, now: Item, sel: string, depth: number): void {
  const m = w.mark();
  const whole = (): void => w.op('replace', { sel }, [now.el]);
  whole();
  let best = whole;
  let bestCost = w.costSince(m);

  const text = depth > 0 ? replacementText(old.el, now.el) : undefined;
  if (text !== undefined) {
    w.rollback(m);
    const byText = (): void => w.op('replace', { sel: `${sel}/text()` }, [{ type: 'text', text }]);
    byText();
    const c = w.costSince(m);
    if (c < bestCost) {
      best = byText;
      bestCost = c;
    }
  }

  const descend = (depth === 0 ? old.id !== undefined : depth <= MAX_DESCENT) && sameShell(old.el, now.el) && elementOnly(old.el) && elementOnly(now.el);
  if (descend) {
    w.rollback(m);
    diffChildren(w, sel, childItems(old), childItems(now), (o, n, s) => encodeChange(w, o, n, s, depth + 1));
    // Kept only when strictly smaller: one replace is simpler than several operations.
    if (w.costSince(m) < bestCost) return;
  }
  w.rollback(m);
  best();
}

/**
 * The changes from `previous` to `current` (both canonical PIDF documents of the same entity) as
 * a <pidf-diff> with `version`. Returns undefined when there is nothing to send as a diff: the
 * documents are equal (no operation), or full state is the better message — the diff would not be
 * smaller than the <pidf-full> document (RFC 5262 section 4), or the change is not one our diffs
 * carry (another entity or root attribute, a namespace prefix bound differently in the two
 * documents, an id used twice). Callers tell "equal" apart by comparing the two strings
 * (canonical documents: same state, same bytes) and send pidfFull otherwise.
 * Throws PidfDiffError when a document is not a PIDF document; RangeError for a bad version.
 */
export function pidfDiff(previous: string, current: string, version: number): string | undefined {
  checkVersion(version);
  if (previous === current) return undefined;
  const prev = parsePresence(previous, 'previous');
  const cur = parsePresence(current, 'current');

  // What a diff of top-level children cannot express, or could express only ambiguously.
  if (nonDeclarationAttributes(prev.root) !== nonDeclarationAttributes(cur.root)) return undefined;
  const pb = prev.scope.bindings();
  const cb = cur.scope.bindings();
  if (pb.get('') !== cb.get('')) return undefined;
  for (const [p, uri] of pb) if (cb.has(p) && cb.get(p) !== uri) return undefined;

  const before = itemsOf(prev.root, prev.scope);
  const after = itemsOf(cur.root, cur.scope);
  if (!before || !after) return undefined;

  const w = new DiffWriter(cur.root, prev.scope);
  diffChildren(w, w.root(), before, after, (old, now, sel) => encodeChange(w, old, now, sel, 0));

  if (w.ops.length === 0) return undefined;
  const diff = w.document(version);
  const full = fullDocument(cur.root, version);
  return Buffer.byteLength(diff, 'utf8') < Buffer.byteLength(full, 'utf8') ? diff : undefined;
}

// ---------------------------------------------------------------------------
// RFC 5261 selectors
// ---------------------------------------------------------------------------

interface QName {
  prefix: string | undefined;
  local: string;
}

type Predicate =
  | { kind: 'attribute'; name: QName; value: string }
  | { kind: 'child'; name: QName; value: string }
  | { kind: 'self'; value: string }
  | { kind: 'position'; n: number };

type Step =
  | { kind: 'element'; name: QName | undefined /* undefined = `*` */; predicates: Predicate[] }
  | { kind: 'text' | 'comment'; position?: number }
  | { kind: 'pi'; target?: string; position?: number }
  | { kind: 'attribute'; name: QName }
  | { kind: 'namespace'; prefix: string };

interface Selector {
  /** id('x'): the starting element instead of the document node. */
  id?: string;
  steps: Step[];
}

const DELIMITERS = new Set(['/', '[', ']', '@', '=', '(', ')', "'", '"', '*', ':', ' ', '\t', '\n', '\r']);

class SelectorParser {
  private i = 0;
  constructor(private readonly s: string) {}

  private fail(why: string): never {
    throw new PidfDiffError('invalid-attribute-value', `selector ${q(this.s)}: ${why}`);
  }

  private eat(t: string): boolean {
    if (!this.s.startsWith(t, this.i)) return false;
    this.i += t.length;
    return true;
  }

  private expect(t: string): void {
    if (!this.eat(t)) this.fail(`expected ${q(t)} at ${this.i}`);
  }

  private ncname(): string {
    const start = this.i;
    while (this.i < this.s.length && !DELIMITERS.has(this.s[this.i] as string)) this.i++;
    const n = this.s.slice(start, this.i);
    if (!isNCName(n)) this.fail(`expected a name at ${start}`);
    return n;
  }

  private qname(): QName {
    const first = this.ncname();
    if (this.s[this.i] === ':' && this.s[this.i + 1] !== ':') {
      this.i++;
      return { prefix: first, local: this.ncname() };
    }
    return { prefix: undefined, local: first };
  }

  /** An XPath literal: '...' or "..." (no escapes in XPath 1.0). */
  private literal(): string {
    const quote = this.s[this.i];
    if (quote !== "'" && quote !== '"') this.fail(`expected a quoted value at ${this.i}`);
    const end = this.s.indexOf(quote, this.i + 1);
    if (end === -1) this.fail('unterminated literal');
    const v = this.s.slice(this.i + 1, end);
    this.i = end + 1;
    return v;
  }

  private position(): number | undefined {
    const m = /^\[([0-9]+)\]/.exec(this.s.slice(this.i));
    if (!m) return undefined;
    this.i += m[0].length;
    return Number(m[1]);
  }

  private predicate(): Predicate {
    this.expect('[');
    let p: Predicate;
    const digits = /^[0-9]+/.exec(this.s.slice(this.i));
    if (digits) {
      this.i += digits[0].length;
      p = { kind: 'position', n: Number(digits[0]) };
    } else if (this.eat('@')) {
      const name = this.qname();
      this.expect('=');
      p = { kind: 'attribute', name, value: this.literal() };
    } else if (this.eat('.')) {
      this.expect('=');
      p = { kind: 'self', value: this.literal() };
    } else {
      const name = this.qname();
      this.expect('=');
      p = { kind: 'child', name, value: this.literal() };
    }
    this.expect(']');
    return p;
  }

  private step(): Step {
    if (this.eat('text()')) {
      const position = this.position();
      return position === undefined ? { kind: 'text' } : { kind: 'text', position };
    }
    if (this.eat('comment()')) {
      const position = this.position();
      return position === undefined ? { kind: 'comment' } : { kind: 'comment', position };
    }
    if (this.eat('processing-instruction(')) {
      const st: Step = { kind: 'pi' };
      if (this.s[this.i] !== ')') {
        const t = this.literal();
        if (!isNCName(t)) this.fail('processing instruction target is not a name');
        st.target = t;
      }
      this.expect(')');
      const position = this.position();
      if (position !== undefined) st.position = position;
      return st;
    }
    if (this.eat('@')) return { kind: 'attribute', name: this.qname() };
    if (this.eat('namespace::')) return { kind: 'namespace', prefix: this.ncname() };
    const name = this.eat('*') ? undefined : this.qname();
    const predicates: Predicate[] = [];
    while (this.s[this.i] === '[') predicates.push(this.predicate());
    return { kind: 'element', name, predicates };
  }

  parse(): Selector {
    const sel: Selector = { steps: [] };
    this.eat('/');
    if (this.eat('id(')) {
      if (this.s[this.i] === ')') this.fail('id() without a value');
      sel.id = this.literal();
      this.expect(')');
      if (this.i === this.s.length) return sel;
      this.expect('/');
    }
    for (;;) {
      sel.steps.push(this.step());
      if (this.i === this.s.length) break;
      this.expect('/');
    }
    sel.steps.forEach((st, k) => {
      if (st.kind !== 'element' && k !== sel.steps.length - 1) this.fail('only the last step may select a non-element node');
    });
    return sel;
  }
}

// ---------------------------------------------------------------------------
// Located nodes
// ---------------------------------------------------------------------------

/** An element of the target with its place: parent undefined = the document root element. */
interface ElementRef {
  el: XmlElement;
  parent: ElementRef | undefined;
  /** In-scope namespaces inside `el`. */
  scope: NamespaceScope;
}

type Located =
  | { kind: 'element'; ref: ElementRef }
  /** A text node in the XPath sense: a run of adjacent text / CDATA children [start, end). */
  | { kind: 'text'; parent: ElementRef; start: number; end: number }
  | { kind: 'comment' | 'pi'; parent: ElementRef; index: number }
  | { kind: 'attribute'; ref: ElementRef; key: string }
  | { kind: 'namespace'; ref: ElementRef; prefix: string };

function childRefs(parent: ElementRef): ElementRef[] {
  return childElements(parent.el).map((el) => ({ el, parent, scope: parent.scope.child(el) }));
}

function isTextual(n: XmlNode | undefined): boolean {
  return n !== undefined && (n.type === 'text' || n.type === 'cdata');
}

/** Text runs of an element's children, as [start, end) index pairs. */
function textRuns(el: XmlElement): Array<[number, number]> {
  const kids = el.elements ?? [];
  const out: Array<[number, number]> = [];
  for (let i = 0; i < kids.length; i++) {
    if (!isTextual(kids[i])) continue;
    let j = i + 1;
    while (j < kids.length && isTextual(kids[j])) j++;
    out.push([i, j]);
    i = j - 1;
  }
  return out;
}

class Evaluator {
  constructor(
    private readonly opScope: NamespaceScope,
    private readonly sel: string,
  ) {}

  private expected(name: QName, isElement: boolean): { ns: string | undefined; local: string } {
    if (name.prefix === undefined) {
      // RFC 5261 section 4.2.1: unprefixed element names take the diff's default namespace;
      // unprefixed attribute names are in no namespace.
      return { ns: isElement ? this.opScope.resolve(undefined) : undefined, local: name.local };
    }
    const ns = this.opScope.resolve(name.prefix);
    if (ns === undefined) throw new PidfDiffError('invalid-namespace-prefix', `selector ${q(this.sel)}: prefix ${name.prefix} is not declared`);
    return { ns, local: name.local };
  }

  private elementMatches(ref: ElementRef, name: QName | undefined): boolean {
    if (name === undefined) return true;
    const want = this.expected(name, true);
    const have = ref.scope.expand(ref.el.name);
    return have.ns === want.ns && have.local === want.local;
  }

  private attributeKey(ref: ElementRef, name: QName): string | undefined {
    const want = this.expected(name, false);
    for (const k of Object.keys(ref.el.attributes ?? {})) {
      if (isDeclaration(k)) continue;
      const have = ref.scope.expandAttribute(k);
      if (have.ns === want.ns && have.local === want.local) return k;
    }
    return undefined;
  }

  private predicate(list: ElementRef[], p: Predicate): ElementRef[] {
    switch (p.kind) {
      case 'position': {
        const r = list[p.n - 1];
        return r ? [r] : [];
      }
      case 'self':
        return list.filter((r) => textContent(r.el) === p.value);
      case 'attribute':
        return list.filter((r) => {
          const k = this.attributeKey(r, p.name);
          return k !== undefined && attr(r.el, k) === p.value;
        });
      case 'child':
        return list.filter((r) => childRefs(r).some((c) => this.elementMatches(c, p.name) && textContent(c.el) === p.value));
    }
  }

  /** Exactly one node, or PidfDiffError unlocated-node (RFC 5261 section 4.1). */
  locate(parsed: Selector, root: ElementRef): Located {
    // undefined in the context list = the document node, whose only child we keep is the root.
    let context: Array<ElementRef | undefined>;
    if (parsed.id !== undefined) {
      const found: ElementRef[] = [];
      const walk = (r: ElementRef): void => {
        if (attr(r.el, 'id') === parsed.id || attr(r.el, 'xml:id') === parsed.id) found.push(r);
        for (const c of childRefs(r)) walk(c);
      };
      walk(root);
      context = found;
    } else context = [undefined];

    const found: Located[] = [];
    if (parsed.steps.length === 0) for (const c of context) if (c) found.push({ kind: 'element', ref: c });
    parsed.steps.forEach((st, k) => {
      const last = k === parsed.steps.length - 1;
      if (st.kind === 'element') {
        const next: ElementRef[] = [];
        for (const c of context) {
          let list = (c === undefined ? [root] : childRefs(c)).filter((r) => this.elementMatches(r, st.name));
          for (const p of st.predicates) list = this.predicate(list, p);
          next.push(...list);
        }
        context = next;
        if (last) for (const r of next) found.push({ kind: 'element', ref: r });
        return;
      }
      for (const c of context) {
        if (c === undefined) continue; // the document node: nothing but the root element is kept
        switch (st.kind) {
          case 'text': {
            const runs = textRuns(c.el);
            const pick = st.position === undefined ? runs : runs.slice(st.position - 1, st.position);
            for (const [start, end] of pick) found.push({ kind: 'text', parent: c, start, end });
            break;
          }
          case 'comment':
          case 'pi': {
            const target = st.kind === 'pi' ? st.target : undefined;
            const idx: number[] = [];
            (c.el.elements ?? []).forEach((n, i) => {
              if (st.kind === 'comment' ? n.type === 'comment' : n.type === 'instruction' && (target === undefined || n.name === target)) idx.push(i);
            });
            const pick = st.position === undefined ? idx : idx.slice(st.position - 1, st.position);
            for (const index of pick) found.push({ kind: st.kind, parent: c, index });
            break;
          }
          case 'attribute': {
            const key = this.attributeKey(c, st.name);
            if (key !== undefined) found.push({ kind: 'attribute', ref: c, key });
            break;
          }
          case 'namespace':
            if (attr(c.el, `xmlns:${st.prefix}`) !== undefined) found.push({ kind: 'namespace', ref: c, prefix: st.prefix });
            break;
        }
      }
    });
    if (found.length !== 1) {
      throw new PidfDiffError('unlocated-node', `selector ${q(this.sel)} matches ${found.length === 0 ? 'nothing' : `${found.length} nodes`}`);
    }
    return found[0] as Located;
  }
}

// ---------------------------------------------------------------------------
// Patch operations (RFC 5261 sections 4.3 to 4.5)
// ---------------------------------------------------------------------------

/** Prefixes a subtree uses without declaring them ('' = the default namespace). */
function usedPrefixes(el: XmlElement, declaredAbove: ReadonlySet<string>, out: Set<string>): void {
  let declared = declaredAbove;
  for (const [k] of declarationsOf(el)) {
    if (declared === declaredAbove) declared = new Set(declaredAbove);
    (declared as Set<string>).add(prefixOfDeclaration(k));
  }
  const c = el.name.indexOf(':');
  const p = c === -1 ? '' : el.name.slice(0, c);
  if (!declared.has(p)) out.add(p);
  for (const k of Object.keys(el.attributes ?? {})) {
    const ac = k.indexOf(':');
    if (ac === -1) continue;
    const ap = k.slice(0, ac);
    if (ap !== 'xmlns' && ap !== 'xml' && !declared.has(ap)) out.add(ap);
  }
  for (const n of el.elements ?? []) if (n.type === 'element') usedPrefixes(n, declared, out);
}

/**
 * `el` from the diff (scope `from`) made to mean the same under `to`: every prefix it uses that
 * `to` binds differently gets its declaration on the element itself.
 */
function adopt(el: XmlElement, from: NamespaceScope, to: NamespaceScope): XmlElement {
  const used = new Set<string>();
  usedPrefixes(el, new Set(), used);
  const decls: Record<string, string> = {};
  let any = false;
  for (const p of used) {
    if (p === 'xml') continue;
    const a = from.resolve(p === '' ? undefined : p);
    if (a === to.resolve(p === '' ? undefined : p)) continue;
    if (p === '') decls.xmlns = a ?? '';
    else if (a !== undefined) decls[`xmlns:${p}`] = a;
    else continue;
    any = true;
  }
  if (!any) return el;
  const out: XmlElement = { type: 'element', name: el.name, attributes: { ...decls, ...(el.attributes ?? {}) } };
  if (el.elements) out.elements = el.elements;
  return out;
}

function contentNodes(op: XmlElement, opScope: NamespaceScope, to: NamespaceScope): XmlNode[] {
  return (op.elements ?? []).map((n) => (n.type === 'element' ? adopt(n, opScope, to) : n));
}

function textOnly(op: XmlElement, what: string): string {
  let s = '';
  for (const n of op.elements ?? []) {
    if (n.type === 'text') s += n.text;
    else if (n.type === 'cdata') s += n.cdata;
    else if (n.type === 'element' || n.type === 'comment' || n.type === 'instruction') {
      throw new PidfDiffError('invalid-node-types', `${what}: text content expected`);
    }
  }
  return s;
}

/** Index of the element in its parent's children (the element must be there). */
function indexIn(parent: XmlElement, el: XmlElement): number {
  return (parent.elements ?? []).indexOf(el);
}

function kids(el: XmlElement): XmlNode[] {
  el.elements ??= [];
  return el.elements;
}

function isWhitespaceText(n: XmlNode | undefined): boolean {
  return n !== undefined && n.type === 'text' && /^[ \t\n\r]*$/.test(n.text);
}

/** Sibling position of a located node: its parent and [start, end) in the parent's children. */
function span(loc: Located, what: string): { parent: ElementRef; start: number; end: number } {
  switch (loc.kind) {
    case 'element':
      if (!loc.ref.parent) throw new PidfDiffError('invalid-root-element-operation', `${what}: not allowed on the root element`);
      {
        const i = indexIn(loc.ref.parent.el, loc.ref.el);
        return { parent: loc.ref.parent, start: i, end: i + 1 };
      }
    case 'text':
      return { parent: loc.parent, start: loc.start, end: loc.end };
    case 'comment':
    case 'pi':
      return { parent: loc.parent, start: loc.index, end: loc.index + 1 };
    default:
      throw new PidfDiffError('invalid-node-types', `${what}: the selector must locate an element, text, comment or processing instruction`);
  }
}

const ATTRIBUTE_TYPE_RE = /^@(?:([^:]+):)?([^:]+)$/;
const NAMESPACE_TYPE_RE = /^namespace::(.+)$/;

/** The document being patched (its root element can be replaced). */
interface Target {
  root: XmlElement;
}

function applyAdd(op: XmlElement, opScope: NamespaceScope, loc: Located, sel: string): void {
  const pos = attr(op, 'pos');
  const type = attr(op, 'type');
  const what = `add ${q(sel)}`;
  if (pos !== undefined && pos !== 'before' && pos !== 'after' && pos !== 'prepend') {
    throw new PidfDiffError('invalid-attribute-value', `${what}: pos must be before, after or prepend`);
  }
  if (type !== undefined) {
    if (pos !== undefined) throw new PidfDiffError('invalid-attribute-value', `${what}: pos is not used with type`);
    if (loc.kind !== 'element') throw new PidfDiffError('invalid-node-types', `${what}: type needs an element`);
    const el = loc.ref.el;
    const value = textOnly(op, what);
    const ns = NAMESPACE_TYPE_RE.exec(type);
    if (ns) {
      const prefix = ns[1] as string;
      if (!isNCName(prefix) || /^xml/i.test(prefix)) throw new PidfDiffError('invalid-attribute-value', `${what}: bad namespace prefix`);
      if (attr(el, `xmlns:${prefix}`) !== undefined) throw new PidfDiffError('invalid-attribute-value', `${what}: prefix ${prefix} already declared`);
      if (value === '') throw new PidfDiffError('invalid-attribute-value', `${what}: empty namespace URI`);
      el.attributes = { ...(el.attributes ?? {}), [`xmlns:${prefix}`]: value };
      return;
    }
    const m = ATTRIBUTE_TYPE_RE.exec(type);
    if (!m || !isNCName(m[2] as string) || (m[1] !== undefined && !isNCName(m[1]))) {
      throw new PidfDiffError('invalid-attribute-value', `${what}: type must be @name or namespace::prefix`);
    }
    const local = m[2] as string;
    let key = local;
    const attrs = { ...(el.attributes ?? {}) };
    if (m[1] !== undefined) {
      const uri = opScope.resolve(m[1]);
      if (uri === undefined) throw new PidfDiffError('invalid-namespace-prefix', `${what}: prefix ${m[1]} is not declared`);
      // RFC 5261 section 4.2.3: the same prefix when it means the same there, else one that does.
      let p: string | undefined = loc.ref.scope.resolve(m[1]) === uri ? m[1] : loc.ref.scope.prefixFor(uri);
      if (p === undefined || p === '') {
        p = freePrefix(m[1], new Set([...loc.ref.scope.bindings().keys(), 'xml', 'xmlns']));
        attrs[`xmlns:${p}`] = uri;
      }
      key = `${p}:${local}`;
    }
    const inner = (loc.ref.parent?.scope ?? NamespaceScope.root()).child({ ...el, attributes: attrs });
    const want = inner.expandAttribute(key);
    for (const k of Object.keys(attrs)) {
      if (isDeclaration(k)) continue;
      const have = inner.expandAttribute(k);
      if (have.ns === want.ns && have.local === want.local) throw new PidfDiffError('invalid-attribute-value', `${what}: attribute already present`);
    }
    attrs[key] = value;
    el.attributes = attrs;
    return;
  }
  if (pos === undefined || pos === 'prepend') {
    if (loc.kind !== 'element') throw new PidfDiffError('invalid-node-types', `${what}: the selector must locate an element`);
    const nodes = contentNodes(op, opScope, loc.ref.scope);
    if (pos === 'prepend') kids(loc.ref.el).unshift(...nodes);
    else kids(loc.ref.el).push(...nodes);
    return;
  }
  const s = span(loc, what);
  const nodes = contentNodes(op, opScope, s.parent.scope);
  kids(s.parent.el).splice(pos === 'before' ? s.start : s.end, 0, ...nodes);
}

function applyReplace(t: Target, op: XmlElement, opScope: NamespaceScope, loc: Located, sel: string): void {
  const what = `replace ${q(sel)}`;
  switch (loc.kind) {
    case 'element': {
      const nodes = op.elements ?? [];
      const only = nodes[0];
      if (nodes.length !== 1 || only === undefined || only.type !== 'element') {
        throw new PidfDiffError('invalid-node-types', `${what}: an element is replaced by exactly one element`);
      }
      const parent = loc.ref.parent;
      if (!parent) {
        t.root = adopt(only, opScope, NamespaceScope.root());
        return;
      }
      kids(parent.el)[indexIn(parent.el, loc.ref.el)] = adopt(only, opScope, parent.scope);
      return;
    }
    case 'comment':
    case 'pi': {
      const nodes = op.elements ?? [];
      const only = nodes[0];
      const want = loc.kind === 'comment' ? 'comment' : 'instruction';
      if (nodes.length !== 1 || only === undefined || only.type !== want) {
        throw new PidfDiffError('invalid-node-types', `${what}: a ${loc.kind === 'comment' ? 'comment' : 'processing instruction'} is replaced by exactly one of its kind`);
      }
      kids(loc.parent.el)[loc.index] = only;
      return;
    }
    case 'text': {
      const v = textOnly(op, what);
      // An empty replacement removes the text node (a text node has at least one character).
      kids(loc.parent.el).splice(loc.start, loc.end - loc.start, ...(v === '' ? [] : [{ type: 'text' as const, text: v }]));
      return;
    }
    case 'attribute':
      loc.ref.el.attributes = { ...(loc.ref.el.attributes ?? {}), [loc.key]: textOnly(op, what) };
      return;
    case 'namespace': {
      const v = textOnly(op, what);
      if (v === '') throw new PidfDiffError('invalid-attribute-value', `${what}: empty namespace URI`);
      loc.ref.el.attributes = { ...(loc.ref.el.attributes ?? {}), [`xmlns:${loc.prefix}`]: v };
      return;
    }
  }
}

function applyRemove(op: XmlElement, loc: Located, sel: string): void {
  const what = `remove ${q(sel)}`;
  const ws = attr(op, 'ws');
  if (ws !== undefined && ws !== 'before' && ws !== 'after' && ws !== 'both') {
    throw new PidfDiffError('invalid-attribute-value', `${what}: ws must be before, after or both`);
  }
  if (loc.kind === 'attribute' || loc.kind === 'namespace' || loc.kind === 'text') {
    if (ws !== undefined) throw new PidfDiffError('invalid-attribute-value', `${what}: ws is not used for text, attribute or namespace nodes`);
    if (loc.kind === 'text') {
      kids(loc.parent.el).splice(loc.start, loc.end - loc.start);
      return;
    }
    const attrs = { ...(loc.ref.el.attributes ?? {}) };
    if (loc.kind === 'attribute') delete attrs[loc.key];
    else {
      const used = new Set<string>();
      const withoutDecl: XmlElement = { ...loc.ref.el, attributes: { ...attrs } };
      delete withoutDecl.attributes?.[`xmlns:${loc.prefix}`];
      usedPrefixes(withoutDecl, new Set(), used);
      if (used.has(loc.prefix)) throw new PidfDiffError('invalid-namespace-prefix', `${what}: prefix ${loc.prefix} is still used`);
      delete attrs[`xmlns:${loc.prefix}`];
    }
    loc.ref.el.attributes = attrs;
    return;
  }
  const s = span(loc, what);
  const list = kids(s.parent.el);
  let start = s.start;
  let end = s.end;
  // Lenient `ws`: the XML layer drops white-space-only text in element-only content, so the
  // node RFC 5261 section 4.5 requires is usually gone already.
  if ((ws === 'before' || ws === 'both') && isWhitespaceText(list[start - 1])) start--;
  if ((ws === 'after' || ws === 'both') && isWhitespaceText(list[end])) end++;
  list.splice(start, end - start);
}

// ---------------------------------------------------------------------------
// Applying pidf-full / pidf-diff
// ---------------------------------------------------------------------------

function parseVersionAttribute(root: XmlElement): number {
  const v = attr(root, 'version');
  if (v === undefined) throw new PidfDiffError('invalid-attribute-value', 'version attribute missing');
  const t = v.trim();
  if (!/^\+?[0-9]+$/.test(t) || Number(t) > MAX_VERSION) throw new PidfDiffError('invalid-attribute-value', `version ${q(v)} is not an unsignedInt`);
  return Number(t);
}

/** The patched tree as our canonical PIDF. */
function canonical(root: XmlElement): string {
  try {
    return serializePidf(parsePidf(serializeXml({ root })));
  } catch (e) {
    if (e instanceof PidfError) throw new PidfDiffError('invalid-pidf', `result is not valid PIDF: ${e.reason}`, { cause: e });
    throw e;
  }
}

/** The PIDF <presence> equivalent of a <pidf-full> root (same children and namespaces, no version). */
function presenceFromFull(full: XmlElement, scope: NamespaceScope): XmlElement {
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(full.attributes ?? {})) if (k !== 'version' && v !== undefined) attributes[k] = v;
  let name = 'presence';
  if (scope.resolve(undefined) !== PIDF_NS) {
    const p = scope.prefixFor(PIDF_NS);
    if (p !== undefined && p !== '') name = `${p}:presence`;
    else {
      const fresh = freePrefix('pidf', new Set(scope.bindings().keys()));
      attributes[`xmlns:${fresh}`] = PIDF_NS;
      name = `${fresh}:presence`;
    }
  }
  const el: XmlElement = { type: 'element', name, attributes };
  if (full.elements) el.elements = full.elements;
  return el;
}

/**
 * Applies a pidf-full or pidf-diff document to a base PIDF (undefined base for pidf-full),
 * returning the resulting PIDF document (canonical form) and version; for tests and for
 * clients. Throws PidfDiffError on a selector that matches nothing or a version gap (RFC 5263
 * section 4.5: a pidf-diff must be exactly one above the base version; any document at or below
 * it is stale), on a malformed or DOCTYPE-carrying document, and when the result is not PIDF.
 */
export function applyPidfPatch(base: { pidf: string; version: number } | undefined, patch: string): { pidf: string; version: number } {
  const root = parseDocument(patch, 'patch');
  const scope = NamespaceScope.root().child(root);
  const n = scope.expand(root.name);
  if (n.ns !== PIDF_DIFF_NS || (n.local !== 'pidf-full' && n.local !== 'pidf-diff')) {
    throw new PidfDiffError('invalid-diff-format', 'root element is not pidf-full or pidf-diff of urn:ietf:params:xml:ns:pidf-diff');
  }
  const version = parseVersionAttribute(root);
  if (base && version <= base.version) {
    throw new PidfDiffError('stale-version', `version ${version} is not above the current version ${base.version}`);
  }
  if (n.local === 'pidf-full') return { pidf: canonical(presenceFromFull(root, scope)), version };

  if (!base) throw new PidfDiffError('no-base-document', 'a pidf-diff needs the document it applies to');
  if (version !== base.version + 1) {
    throw new PidfDiffError('version-gap', `version ${version} after ${base.version}: ${version - base.version - 1} notification(s) missing`);
  }
  const target = parsePresence(base.pidf, 'base');
  const entity = attr(root, 'entity');
  if (entity !== undefined && entity.trim() !== (attr(target.root, 'entity') ?? '').trim()) {
    throw new PidfDiffError('invalid-attribute-value', `entity ${q(entity)} is not the entity of the base document`);
  }

  const t: Target = { root: target.root };
  for (const node of root.elements ?? []) {
    if (node.type === 'comment' || node.type === 'instruction') continue;
    if (node.type !== 'element') throw new PidfDiffError('invalid-diff-format', 'text directly inside pidf-diff');
    const opScope = scope.child(node);
    const on = opScope.expand(node.name);
    if (on.ns !== PIDF_DIFF_NS || (on.local !== 'add' && on.local !== 'replace' && on.local !== 'remove')) {
      throw new PidfDiffError('invalid-diff-format', `unknown operation ${q(node.name)}`);
    }
    const sel = attr(node, 'sel');
    if (sel === undefined || sel === '') throw new PidfDiffError('invalid-attribute-value', `${on.local} without sel`);
    // The root's scope is recomputed per operation: an earlier one may have changed its declarations.
    const rootRef: ElementRef = { el: t.root, parent: undefined, scope: NamespaceScope.root().child(t.root) };
    const loc = new Evaluator(opScope, sel).locate(new SelectorParser(sel).parse(), rootRef);
    if (on.local === 'add') applyAdd(node, opScope, loc, sel);
    else if (on.local === 'replace') applyReplace(t, node, opScope, loc, sel);
    else applyRemove(node, loc, sel);
  }
  const rn = NamespaceScope.root().child(t.root).expand(t.root.name);
  if (rn.ns !== PIDF_NS || rn.local !== 'presence') throw new PidfDiffError('invalid-pidf', 'result root element is not PIDF presence');
  return { pidf: canonical(t.root), version };
}
