/**
 * Applies partial PIDF (RFC 5262) documents the way a watcher does: the checker of what the
 * presence server sends, used by the tests only (the server writes diffs, it never applies one).
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
  type XmlElement,
  type XmlNode,
  attr,
  childElements,
  isNCName,
  serializeXml,
  textContent,
} from '../../as/src/xml/xml-tree.js';
import { PIDF_NS, PidfError, parsePidf, serializePidf } from '../../as/src/presence/pidf/pidf.js';
import {
  MAX_VERSION,
  PIDF_DIFF_NS,
  PidfDiffError,
  freePrefix,
  isDeclaration,
  parseDocument,
  parsePresence,
  q,
  usedPrefixes,
} from '../../as/src/presence/pidf/pidf-diff.js';

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
      if (st.kind !== 'element' && k !== sel.steps.length - 1)
        this.fail('only the last step may select a non-element node');
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
    if (ns === undefined)
      throw new PidfDiffError(
        'invalid-namespace-prefix',
        `selector ${q(this.sel)}: prefix ${name.prefix} is not declared`,
      );
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
        return list.filter((r) =>
          childRefs(r).some((c) => this.elementMatches(c, p.name) && textContent(c.el) === p.value),
        );
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
              if (
                st.kind === 'comment'
                  ? n.type === 'comment'
                  : n.type === 'instruction' && (target === undefined || n.name === target)
              )
                idx.push(i);
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
            if (attr(c.el, `xmlns:${st.prefix}`) !== undefined)
              found.push({ kind: 'namespace', ref: c, prefix: st.prefix });
            break;
        }
      }
    });
    if (found.length !== 1) {
      throw new PidfDiffError(
        'unlocated-node',
        `selector ${q(this.sel)} matches ${found.length === 0 ? 'nothing' : `${found.length} nodes`}`,
      );
    }
    return found[0] as Located;
  }
}

// ---------------------------------------------------------------------------
// Patch operations (RFC 5261 sections 4.3 to 4.5)
// ---------------------------------------------------------------------------

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
      if (!loc.ref.parent)
        throw new PidfDiffError('invalid-root-element-operation', `${what}: not allowed on the root element`);
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
      throw new PidfDiffError(
        'invalid-node-types',
        `${what}: the selector must locate an element, text, comment or processing instruction`,
      );
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
      if (!isNCName(prefix) || /^xml/i.test(prefix))
        throw new PidfDiffError('invalid-attribute-value', `${what}: bad namespace prefix`);
      if (attr(el, `xmlns:${prefix}`) !== undefined)
        throw new PidfDiffError('invalid-attribute-value', `${what}: prefix ${prefix} already declared`);
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
      if (uri === undefined)
        throw new PidfDiffError('invalid-namespace-prefix', `${what}: prefix ${m[1]} is not declared`);
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
      if (have.ns === want.ns && have.local === want.local)
        throw new PidfDiffError('invalid-attribute-value', `${what}: attribute already present`);
    }
    attrs[key] = value;
    el.attributes = attrs;
    return;
  }
  if (pos === undefined || pos === 'prepend') {
    if (loc.kind !== 'element')
      throw new PidfDiffError('invalid-node-types', `${what}: the selector must locate an element`);
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
        throw new PidfDiffError(
          'invalid-node-types',
          `${what}: a ${loc.kind === 'comment' ? 'comment' : 'processing instruction'} is replaced by exactly one of its kind`,
        );
      }
      kids(loc.parent.el)[loc.index] = only;
      return;
    }
    case 'text': {
      const v = textOnly(op, what);
      // An empty replacement removes the text node (a text node has at least one character).
      kids(loc.parent.el).splice(
        loc.start,
        loc.end - loc.start,
        ...(v === '' ? [] : [{ type: 'text' as const, text: v }]),
      );
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
    if (ws !== undefined)
      throw new PidfDiffError(
        'invalid-attribute-value',
        `${what}: ws is not used for text, attribute or namespace nodes`,
      );
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
      if (used.has(loc.prefix))
        throw new PidfDiffError('invalid-namespace-prefix', `${what}: prefix ${loc.prefix} is still used`);
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
  if (!/^\+?[0-9]+$/.test(t) || Number(t) > MAX_VERSION)
    throw new PidfDiffError('invalid-attribute-value', `version ${q(v)} is not an unsignedInt`);
  return Number(t);
}

/** The patched tree as our canonical PIDF. */
function canonical(root: XmlElement): string {
  try {
    return serializePidf(parsePidf(serializeXml({ root })));
  } catch (e) {
    if (e instanceof PidfError)
      throw new PidfDiffError('invalid-pidf', `result is not valid PIDF: ${e.reason}`, { cause: e });
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
export function applyPidfPatch(
  base: { pidf: string; version: number } | undefined,
  patch: string,
): { pidf: string; version: number } {
  const root = parseDocument(patch, 'patch');
  const scope = NamespaceScope.root().child(root);
  const n = scope.expand(root.name);
  if (n.ns !== PIDF_DIFF_NS || (n.local !== 'pidf-full' && n.local !== 'pidf-diff')) {
    throw new PidfDiffError(
      'invalid-diff-format',
      'root element is not pidf-full or pidf-diff of urn:ietf:params:xml:ns:pidf-diff',
    );
  }
  const version = parseVersionAttribute(root);
  if (base && version <= base.version) {
    throw new PidfDiffError('stale-version', `version ${version} is not above the current version ${base.version}`);
  }
  if (n.local === 'pidf-full') return { pidf: canonical(presenceFromFull(root, scope)), version };

  if (!base) throw new PidfDiffError('no-base-document', 'a pidf-diff needs the document it applies to');
  if (version !== base.version + 1) {
    throw new PidfDiffError(
      'version-gap',
      `version ${version} after ${base.version}: ${version - base.version - 1} notification(s) missing`,
    );
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
  if (rn.ns !== PIDF_NS || rn.local !== 'presence')
    throw new PidfDiffError('invalid-pidf', 'result root element is not PIDF presence');
  return { pidf: canonical(t.root), version };
}
