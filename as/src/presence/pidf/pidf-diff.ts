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
 *    We always write it.
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
 *    watcher re-subscribes); the test applier throws PidfDiffError in both cases.
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
 * The applier of these documents (for checking what we send) is in test/helpers/pidf-patch.ts.
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
import { DM_NS, PIDF_NS } from './pidf.js';

export const PIDF_DIFF_NS = 'urn:ietf:params:xml:ns:pidf-diff';
export const PIDF_DIFF_CONTENT_TYPE = 'application/pidf-diff+xml';

/** xs:unsignedInt, the type of 'version' (RFC 5262 section 7). */
export const MAX_VERSION = 4294967295;

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
    let r = reason.replace(/[^\x20-\x7e]/g, '?');
    if (r.length > 160) r = `${r.slice(0, 157)}...`;
    super(r, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PidfDiffError';
    this.reason = r;
    this.condition = condition;
  }
}

export function q(v: string): string {
  return JSON.stringify(v.length > 48 ? `${v.slice(0, 48)}...` : v);
}

function checkVersion(version: number): void {
  if (!Number.isSafeInteger(version) || version < 0 || version > MAX_VERSION) {
    throw new RangeError(`pidf-diff version must be an integer from 0 to ${MAX_VERSION}, got ${version}`);
  }
}

export function parseDocument(text: string, what: string): XmlElement {
  try {
    return parseXml(text).root;
  } catch (e) {
    if (e instanceof XmlError) {
      const why =
        e.kind === 'doctype-forbidden'
          ? 'DOCTYPE not allowed'
          : e.kind === 'not-well-formed'
            ? 'malformed XML'
            : e.kind;
      throw new PidfDiffError('invalid-diff-format', `${what}: ${why} (${e.message})`, { cause: e });
    }
    throw e;
  }
}

/** A PIDF document's XML tree with the namespaces in scope inside its root: what diffs are made of. */
export interface PresenceTree {
  root: XmlElement;
  scope: NamespaceScope;
}

/** Parses a PIDF document and checks its root is {pidf}presence with an entity. */
export function parsePresence(text: string, what: string): PresenceTree {
  return presenceTree(parseDocument(text, what), what);
}

/**
 * The presence tree of an already parsed document (a parse shared by every watcher of a
 * change), with the checks of parsePresence. The tree is only read, never changed.
 */
export function presenceTree(root: XmlElement, what: string): PresenceTree {
  const scope = NamespaceScope.root().child(root);
  const n = scope.expand(root.name);
  if (n.ns !== PIDF_NS || n.local !== 'presence')
    throw new PidfDiffError('invalid-pidf', `${what}: root element is not PIDF presence`);
  if ((attr(root, 'entity') ?? '').trim() === '')
    throw new PidfDiffError('invalid-pidf', `${what}: presence without entity`);
  return { root, scope };
}

// ---------------------------------------------------------------------------
// Namespace helpers
// ---------------------------------------------------------------------------

export function isDeclaration(name: string): boolean {
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
export function freePrefix(preferred: string, taken: ReadonlySet<string>): string {
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
  const el: XmlElement = {
    type: 'element',
    name: `${p}:pidf-full`,
    attributes: wrapperAttributes(presence, p, version),
  };
  if (presence.elements && presence.elements.length > 0) el.elements = presence.elements;
  return serializeXml({ root: el });
}

/** The full-state document for a pidf-diff watcher: a <pidf-full> wrapping the PIDF, with version. */
export function pidfFull(
  pidf: string /* a canonical PIDF document as our serializer writes it */,
  version: number,
): string {
  checkVersion(version);
  return fullDocument(parsePresence(pidf, 'pidf').root, version);
}

/** pidfFull of an already parsed document. */
export function pidfFullOf(pidf: PresenceTree, version: number): string {
  checkVersion(version);
  return fullDocument(pidf.root, version);
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

/**
 * Top-level items by root: a document shared by the watchers of a change is cut into items
 * (each serialised for comparison) once, not once per watcher. Items are only read.
 */
const itemsByRoot = new WeakMap<XmlElement, Item[] | null>();

/** Top-level children; undefined when an id occurs twice for one element name (not valid PIDF: full state). */
function itemsOf(root: XmlElement, scope: NamespaceScope): Item[] | undefined {
  const kept = itemsByRoot.get(root);
  if (kept !== undefined) return kept ?? undefined;
  const items = cutItems(root, scope);
  itemsByRoot.set(root, items ?? null);
  return items;
}

function cutItems(root: XmlElement, scope: NamespaceScope): Item[] | undefined {
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
      p = freePrefix(
        preferred !== undefined && preferred !== '' && isNCName(preferred) && !/^xml/i.test(preferred)
          ? preferred
          : 'ns',
        this.taken,
      );
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
    for (const [k, v] of this.declarations.slice(m.declarations))
      n += Buffer.byteLength(` xmlns${k === '' ? '' : ':'}${k}="${escapeAttribute(v)}"`, 'utf8');
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
function diffChildren(
  w: DiffWriter,
  parent: string,
  before: readonly Item[],
  after: readonly Item[],
  changed: OnChanged,
): void {
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
  for (let a = 0; a < after.length;) {
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
      w.op(
        'add',
        { sel: parent },
        run.map((i) => i.el),
      );
      at = work.length;
    } else if (a === 0) {
      w.op(
        'add',
        { sel: parent, pos: 'prepend' },
        run.map((i) => i.el),
      );
      at = 0;
    } else {
      const anchor = after[a - 1] as Item;
      w.op(
        'add',
        { sel: w.selector(anchor, work, parent), pos: 'after' },
        run.map((i) => i.el),
      );
      at = work.findIndex((x) => x.key === anchor.key) + 1;
    }
    work.splice(at, 0, ...run);
    a = b;
  }
}

/** Same qualified name and the same attributes (declarations included) in the same order. */
function sameShell(a: XmlElement, b: XmlElement): boolean {
  return (
    a.name === b.name &&
    JSON.stringify(Object.entries(a.attributes ?? {})) === JSON.stringify(Object.entries(b.attributes ?? {}))
  );
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
  if (!sameShell(old, now) || !textNodesOnly(old, true) || !textNodesOnly(now, false) || textContent(old) === '')
    return undefined;
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

  const descend =
    (depth === 0 ? old.id !== undefined : depth <= MAX_DESCENT) &&
    sameShell(old.el, now.el) &&
    elementOnly(old.el) &&
    elementOnly(now.el);
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
  return pidfDiffPlan(parsePresence(previous, 'previous'), parsePresence(current, 'current'))?.(version);
}

/** A diff whose version is given when it is written: one plan serves every watcher of a change. */
export type PidfDiffPlan = (version: number) => string;

/**
 * pidfDiff of two parsed documents, without its version: undefined where pidfDiff gives
 * undefined (the caller compares the texts for "equal"), else the diff writer for any
 * version. Whether the diff is smaller than the full document does not depend on the
 * version: both carry the same version attribute.
 */
export function pidfDiffPlan(prev: PresenceTree, cur: PresenceTree): PidfDiffPlan | undefined {
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
  const diff = w.document(0);
  const full = fullDocument(cur.root, 0);
  if (Buffer.byteLength(diff, 'utf8') >= Buffer.byteLength(full, 'utf8')) return undefined;
  return (version) => {
    checkVersion(version);
    return w.document(version);
  };
}

/** Prefixes a subtree uses without declaring them ('' = the default namespace). */
export function usedPrefixes(el: XmlElement, declaredAbove: ReadonlySet<string>, out: Set<string>): void {
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
