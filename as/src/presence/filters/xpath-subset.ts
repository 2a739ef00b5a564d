/**
 * A small XPath 1.0 subset evaluated over our XmlElement trees: the expression language of event
 * notification filters (RFC 4661 section 5), plus a few things RFC 4660 and RFC 4661 examples use.
 *
 * Pure: no I/O.
 *
 * Supported (everything else throws {@link UnsupportedXPath}, so a notifier can refuse the filter
 * with 488, RFC 4660 sections 3.3.4 and 5.4):
 *  - absolute location paths only: `/a/b`, `//b`, `/a//c`; steps are a name test (`p:name`,
 *    `name`, `*`, `p:*`), `.` or `..`;
 *  - an attribute step `@name`, `@p:name`, `@*` as the LAST step (`//w/@status`, `//@status`);
 *  - predicates, any number per name-test step, applied in order (XPath positions restart after
 *    each one):
 *      `[n]` and `[last()]`: position among the candidates of the step (for `//a[1]`: per parent);
 *      `[operand op literal]` with op `=`, `!=`, `<`, `<=`, `>`, `>=` and a string or number
 *        literal (either side); operand is a relative path (`status/basic`, `pidf:*` or `*` steps, `.`, `..`,
 *        `@x`, `x/@y`, `.//x`) or an absolute one;
 *      `[operand]` alone: true when it selects something;
 *      `and`, `or` and parentheses between those.
 *    Comparisons follow XPath 1.0 section 3.4: true when SOME selected node compares true;
 *    `<`/`>`-style comparisons and comparisons with a number literal compare as numbers.
 *  - `|` union of absolute paths.
 *  Not supported: relative top-level paths, axes (`child::`), functions other than `last()`
 *  (`text()`, `contains()`, `not()` ...), variables, arithmetic, node-set to node-set
 *  comparisons, predicates inside predicate paths.
 *
 * Names: RFC 4661 section 5 keeps XPath 1.0 namespace expansion: a prefixed name uses the
 * `<ns-binding>` of its prefix (an unbound prefix is an error), an UNPREFIXED name is in no
 * namespace, whatever default namespace the filtered document uses (so `/presence` does not
 * match a PIDF document: write `/pidf:presence` with a pidf binding, as RFC 4661 recommends).
 * One deliberate extension: a binding of the empty prefix ('' -> uri) gives unprefixed ELEMENT
 * names that namespace; XPath 1.0 has no way to say this, and a subscriber that binds '' can
 * only mean it. Unprefixed attribute names are always in no namespace. The `xml` prefix is
 * always bound. Namespace declarations (`xmlns`, `xmlns:p`) are not attributes.
 */
import { NamespaceScope, isNCName, textContent, xmlNamespaces, type XmlElement } from '../../xml/xml-tree.js';

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** The expression is malformed or uses XPath outside the supported subset. */
export class UnsupportedXPath extends Error {
  readonly expression: string;
  /** Offset in the expression where the problem was found. */
  readonly position: number;
  constructor(expression: string, position: number, message: string) {
    super(
      `${message} (at offset ${position} of ${JSON.stringify(expression.length > 80 ? `${expression.slice(0, 80)}...` : expression)})`,
    );
    this.name = 'UnsupportedXPath';
    this.expression = expression;
    this.position = position;
  }
}

// ---------------------------------------------------------------------------
// Tree with parents, expanded names and document order
// ---------------------------------------------------------------------------

export interface XPathElement {
  readonly kind: 'element';
  readonly element: XmlElement;
  /** Namespace URI; undefined = no namespace. */
  readonly ns: string | undefined;
  readonly local: string;
  readonly parent: XPathElement | undefined;
  readonly children: XPathElement[];
  readonly attributes: XPathAttribute[];
  /** Document order (attributes come right after their element). */
  readonly order: number;
}

export interface XPathAttribute {
  readonly kind: 'attribute';
  /** Qualified name as written in the document. */
  readonly name: string;
  readonly ns: string | undefined;
  readonly local: string;
  readonly value: string;
  readonly owner: XPathElement;
  readonly order: number;
}

export type XPathNode = XPathElement | XPathAttribute;

/** An XmlElement tree indexed for evaluation. Build once per document, evaluate many expressions. */
export interface XPathTree {
  readonly root: XPathElement;
}

/**
 * Indexes `root` (a document's root element). `scope` holds namespace declarations in force
 * above `root` (none for a parsed document).
 */
export function xpathTree(root: XmlElement, scope: NamespaceScope = NamespaceScope.root()): XPathTree {
  let counter = 0;
  const build = (el: XmlElement, parent: XPathElement | undefined, parentScope: NamespaceScope): XPathElement => {
    const s = parentScope.child(el);
    const n = s.expand(el.name);
    const node: XPathElement = {
      kind: 'element',
      element: el,
      ns: n.ns,
      local: n.local,
      parent,
      children: [],
      attributes: [],
      order: counter++,
    };
    for (const k of Object.keys(el.attributes ?? {})) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
      const v = el.attributes?.[k];
      if (v === undefined) continue;
      const a = s.expandAttribute(k);
      node.attributes.push({
        kind: 'attribute',
        name: k,
        ns: a.ns,
        local: a.local,
        value: v,
        owner: node,
        order: counter++,
      });
    }
    for (const c of el.elements ?? []) {
      if (c.type === 'element') node.children.push(build(c, node, s));
    }
    return node;
  };
  return { root: build(root, undefined, scope) };
}

/** XPath string-value: an attribute's value, or all the text inside an element. */
export function stringValue(node: XPathNode): string {
  return node.kind === 'attribute' ? node.value : textContent(node.element);
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

type Tok =
  | { t: 'op'; v: string; at: number } // / // | [ ] ( ) @ * . .. , = != < <= > >=
  | { t: 'name'; prefix: string | undefined; local: string; at: number } // local may be '*' with a prefix
  | { t: 'literal'; v: string; at: number }
  | { t: 'number'; v: number; at: number }
  | { t: 'eof'; at: number };

// Loose start/continuation classes; every name is then checked with isNCName.
const NAME_RE = /[A-Za-z_\u00C0-\uFFFF][A-Za-z0-9_.\-\u00B7-\uFFFF]*/y;
const NUMBER_RE = /[0-9]+(?:\.[0-9]*)?|\.[0-9]+/y;

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const fail = (at: number, msg: string): never => {
    throw new UnsupportedXPath(src, at, msg);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '//' || two === '..' || two === '!=' || two === '<=' || two === '>=') {
      toks.push({ t: 'op', v: two, at: i });
      i += 2;
      continue;
    }
    if (two === '::') fail(i, 'axes are not supported');
    if (c === '.' && /[0-9]/.test(src[i + 1] ?? '')) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(src)!;
      toks.push({ t: 'number', v: Number(m[0]), at: i });
      i += m[0].length;
      continue;
    }
    if ('/|[]()@*.,=<>'.includes(c)) {
      toks.push({ t: 'op', v: c, at: i });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1);
      if (end === -1) fail(i, 'unterminated string literal');
      toks.push({ t: 'literal', v: src.slice(i + 1, end), at: i });
      i = end + 1;
      continue;
    }
    if (/[0-9]/.test(c)) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(src)!;
      toks.push({ t: 'number', v: Number(m[0]), at: i });
      i += m[0].length;
      continue;
    }
    NAME_RE.lastIndex = i;
    const m = NAME_RE.exec(src);
    if (m) {
      const first = m[0];
      if (!isNCName(first)) fail(i, `${JSON.stringify(first)} is not a valid name`);
      const j = i + first.length;
      if (src[j] === ':' && src[j + 1] !== ':') {
        if (src[j + 1] === '*') {
          toks.push({ t: 'name', prefix: first, local: '*', at: i });
          i = j + 2;
          continue;
        }
        NAME_RE.lastIndex = j + 1;
        const m2 = NAME_RE.exec(src);
        if (!m2 || !isNCName(m2[0])) fail(j, 'malformed qualified name');
        toks.push({ t: 'name', prefix: first, local: m2![0], at: i });
        i = j + 1 + m2![0].length;
        continue;
      }
      toks.push({ t: 'name', prefix: undefined, local: first, at: i });
      i = j;
      continue;
    }
    if (c === '$') fail(i, 'variables are not supported');
    if (c === '+' || c === '-') fail(i, 'arithmetic is not supported');
    fail(i, `unexpected character ${JSON.stringify(c)}`);
  }
  toks.push({ t: 'eof', at: src.length });
  return toks;
}

// ---------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------

/** A name test with the namespace already resolved (ns undefined = no namespace; '*' = any). */
interface NameTest {
  ns: string | undefined | '*';
  local: string; // '*' = any local name
}

type Step =
  | { kind: 'self' }
  | { kind: 'parent' }
  | { kind: 'element'; test: NameTest; predicates: Expr[] }
  | { kind: 'attribute'; test: NameTest };

interface PathPart {
  /** '/' child (or the step's own axis), '//' descendant-or-self first. */
  sep: '/' | '//';
  step: Step;
}

interface Path {
  absolute: boolean;
  parts: PathPart[];
}

type CmpOp = '=' | '!=' | '<' | '<=' | '>' | '>=';

type Expr =
  | { kind: 'or' | 'and'; left: Expr; right: Expr }
  | { kind: 'exists'; path: Path }
  | { kind: 'compare'; path: Path; op: CmpOp; value: string | number }
  | { kind: 'position'; n: number }
  | { kind: 'last' };

const SWAPPED: Record<CmpOp, CmpOp> = { '=': '=', '!=': '!=', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

class Parser {
  private i = 0;
  constructor(
    private readonly src: string,
    private readonly toks: Tok[],
    private readonly bindings: ReadonlyMap<string, string>,
  ) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }
  private next(): Tok {
    return this.toks[this.i++]!;
  }
  private isOp(v: string, tok: Tok = this.peek()): boolean {
    return tok.t === 'op' && tok.v === v;
  }
  private fail(at: number, msg: string): never {
    throw new UnsupportedXPath(this.src, at, msg);
  }
  private expectOp(v: string): void {
    const t = this.next();
    if (!(t.t === 'op' && t.v === v)) this.fail(t.at, `expected ${JSON.stringify(v)}`);
  }

  parseUnion(): Path[] {
    const paths = [this.parsePath(false)];
    while (this.isOp('|')) {
      this.next();
      paths.push(this.parsePath(false));
    }
    const t = this.peek();
    if (t.t !== 'eof') this.fail(t.at, 'unexpected trailing input');
    return paths;
  }

  /** A location path; relative ones only inside predicates. */
  private parsePath(relativeAllowed: boolean): Path {
    const t = this.peek();
    const parts: PathPart[] = [];
    let absolute = false;
    let sep: '/' | '//' = '/';
    if (this.isOp('/') || this.isOp('//')) {
      absolute = true;
      sep = (this.next() as { v: '/' | '//' }).v;
      const after = this.peek();
      if (after.t === 'eof' || this.isOp('|') || this.isOp(']'))
        this.fail(after.at, 'the root node alone cannot be selected');
    } else if (!relativeAllowed) {
      this.fail(t.at, 'only absolute location paths (starting with / or //) are supported');
    }
    for (;;) {
      const step = this.parseStep(!relativeAllowed);
      parts.push({ sep, step });
      if (!(this.isOp('/') || this.isOp('//'))) break;
      if (step.kind === 'attribute') this.fail(this.peek().at, 'an attribute step must be the last step');
      sep = (this.next() as { v: '/' | '//' }).v;
    }
    return { absolute, parts };
  }

  private nameTest(tok: Extract<Tok, { t: 'name' }>, forAttribute: boolean): NameTest {
    if (tok.prefix === undefined) {
      if (tok.local === '*') return { ns: '*', local: '*' };
      // XPath 1.0: unprefixed = no namespace; our one extension is a binding of '' for elements
      return { ns: forAttribute ? undefined : this.bindings.get(''), local: tok.local };
    }
    const ns = tok.prefix === 'xml' ? (this.bindings.get('xml') ?? xmlNamespaces.xml) : this.bindings.get(tok.prefix);
    if (ns === undefined)
      this.fail(tok.at, `namespace prefix ${JSON.stringify(tok.prefix)} is not bound by an <ns-binding>`);
    return { ns, local: tok.local };
  }

  private parseStep(predicatesAllowed: boolean): Step {
    const t = this.next();
    if (t.t === 'op') {
      if (t.v === '.') return { kind: 'self' };
      if (t.v === '..') return { kind: 'parent' };
      if (t.v === '*')
        return { kind: 'element', test: { ns: '*', local: '*' }, predicates: this.parsePredicates(predicatesAllowed) };
      if (t.v === '@') {
        const n = this.next();
        if (n.t === 'op' && n.v === '*') return { kind: 'attribute', test: { ns: '*', local: '*' } };
        if (n.t !== 'name') this.fail(n.at, 'expected an attribute name after @');
        if (this.isOp('(')) this.fail(n.at, 'functions are not supported');
        return { kind: 'attribute', test: this.nameTest(n, true) };
      }
      this.fail(t.at, `unexpected ${JSON.stringify(t.v)}`);
    }
    if (t.t === 'name') {
      if (this.isOp('('))
        this.fail(t.at, `function or node test ${t.prefix ? `${t.prefix}:` : ''}${t.local}() is not supported`);
      return { kind: 'element', test: this.nameTest(t, false), predicates: this.parsePredicates(predicatesAllowed) };
    }
    return this.fail(t.at, 'expected a location step');
  }

  private parsePredicates(allowed: boolean): Expr[] {
    const out: Expr[] = [];
    while (this.isOp('[')) {
      const open = this.next();
      if (!allowed) this.fail(open.at, 'predicates inside predicates are not supported');
      out.push(this.parsePredicate());
      this.expectOp(']');
    }
    return out;
  }

  private parsePredicate(): Expr {
    const t = this.peek();
    const after = this.toks[this.i + 1]!;
    if (t.t === 'number' && this.isOp(']', after)) {
      this.next();
      return { kind: 'position', n: t.v };
    }
    if (t.t === 'name' && t.prefix === undefined && t.local === 'last' && this.isOp('(', after)) {
      this.next();
      this.next();
      this.expectOp(')');
      if (!this.isOp(']')) this.fail(this.peek().at, 'last() is only supported as a whole predicate');
      return { kind: 'last' };
    }
    return this.parseOr();
  }

  private isKeyword(word: string): boolean {
    const t = this.peek();
    return t.t === 'name' && t.prefix === undefined && t.local === word;
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isKeyword('or')) {
      this.next();
      left = { kind: 'or', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseComparison();
    while (this.isKeyword('and')) {
      this.next();
      left = { kind: 'and', left, right: this.parseComparison() };
    }
    return left;
  }

  private parseOperand(): { path: Path } | { value: string | number; at: number } {
    const t = this.peek();
    if (t.t === 'literal' || t.t === 'number') {
      this.next();
      return { value: t.v, at: t.at };
    }
    if (t.t === 'name' && this.isOp('(', this.toks[this.i + 1])) {
      this.fail(t.at, `function ${t.prefix ? `${t.prefix}:` : ''}${t.local}() is not supported here`);
    }
    return { path: this.parsePath(true) };
  }

  private parseComparison(): Expr {
    if (this.isOp('(')) {
      this.next();
      const e = this.parseOr();
      this.expectOp(')');
      return e;
    }
    const left = this.parseOperand();
    const opTok = this.peek();
    const isCmp = opTok.t === 'op' && ['=', '!=', '<', '<=', '>', '>='].includes(opTok.v);
    if (!isCmp) {
      if ('path' in left) return { kind: 'exists', path: left.path };
      return this.fail(left.at, 'a literal alone is not a supported predicate');
    }
    this.next();
    const op = (opTok as { v: CmpOp }).v;
    const right = this.parseOperand();
    if ('path' in left && 'value' in right) return { kind: 'compare', path: left.path, op, value: right.value };
    if ('value' in left && 'path' in right)
      return { kind: 'compare', path: right.path, op: SWAPPED[op], value: left.value };
    return this.fail(opTok.at, 'only comparisons between a path and a literal are supported');
  }
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/** The document node: parent of the root element. Never returned to callers. */
const DOC = { kind: 'document' } as const;
type Ctx = XPathNode | typeof DOC;

function matches(test: NameTest, ns: string | undefined, local: string): boolean {
  if (test.ns !== '*' && test.ns !== ns) return false;
  return test.local === '*' || test.local === local;
}

function elementChildren(tree: XPathTree, c: Ctx): XPathElement[] {
  if (c.kind === 'document') return [tree.root];
  return c.kind === 'element' ? c.children : [];
}

/** The context node and all its descendant elements, in document order. */
function descendantsOrSelf(tree: XPathTree, c: Ctx, out: Ctx[]): void {
  out.push(c);
  const walk = (e: XPathElement): void => {
    out.push(e);
    for (const k of e.children) walk(k);
  };
  for (const k of elementChildren(tree, c)) walk(k);
}

function orderOf(c: Ctx): number {
  return c.kind === 'document' ? -1 : c.order;
}

/** Sorts into document order and drops duplicates. */
function normalize(list: Ctx[]): Ctx[] {
  const seen = new Set<Ctx>();
  const out: Ctx[] = [];
  for (const c of list) {
    if (seen.has(c)) continue;
    seen.add(c);
    out.push(c);
  }
  out.sort((a, b) => orderOf(a) - orderOf(b));
  return out;
}

/** XPath number(): trimmed decimal text, otherwise NaN. */
export function xpathNumber(s: string): number {
  const t = s.trim();
  return /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(t) ? Number(t) : NaN;
}

function compareNumbers(a: number, op: CmpOp, b: number): boolean {
  switch (op) {
    case '=':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    default:
      return a >= b;
  }
}

class Evaluator {
  constructor(private readonly tree: XPathTree) {}

  path(p: Path, context: Ctx): Ctx[] {
    let current: Ctx[] = [p.absolute ? DOC : context];
    for (const part of p.parts) {
      if (part.sep === '//') {
        const expanded: Ctx[] = [];
        for (const c of current) descendantsOrSelf(this.tree, c, expanded);
        current = normalize(expanded);
      }
      const nextSet: Ctx[] = [];
      for (const c of current) this.step(part.step, c, nextSet);
      current = normalize(nextSet);
    }
    return current;
  }

  private step(step: Step, c: Ctx, out: Ctx[]): void {
    switch (step.kind) {
      case 'self':
        out.push(c);
        return;
      case 'parent':
        if (c.kind === 'document') return;
        out.push(c.kind === 'attribute' ? c.owner : (c.parent ?? DOC));
        return;
      case 'attribute':
        if (c.kind !== 'element') return;
        for (const a of c.attributes) if (matches(step.test, a.ns, a.local)) out.push(a);
        return;
      case 'element': {
        let candidates: XPathNode[] = elementChildren(this.tree, c).filter((e) => matches(step.test, e.ns, e.local));
        for (const pred of step.predicates) {
          const size = candidates.length;
          candidates = candidates.filter((node, k) => this.predicate(pred, node, k + 1, size));
        }
        out.push(...candidates);
        return;
      }
    }
  }

  private predicate(e: Expr, node: XPathNode, position: number, size: number): boolean {
    switch (e.kind) {
      case 'or':
        return this.predicate(e.left, node, position, size) || this.predicate(e.right, node, position, size);
      case 'and':
        return this.predicate(e.left, node, position, size) && this.predicate(e.right, node, position, size);
      case 'position':
        return position === e.n;
      case 'last':
        return position === size;
      case 'exists':
        return this.path(e.path, node).some((n) => n.kind !== 'document');
      case 'compare': {
        const nodes = this.path(e.path, node);
        for (const n of nodes) {
          const sv = n.kind === 'document' ? textContent(this.tree.root.element) : stringValue(n);
          if (typeof e.value === 'number' || (e.op !== '=' && e.op !== '!=')) {
            const rhs = typeof e.value === 'number' ? e.value : xpathNumber(e.value);
            if (compareNumbers(xpathNumber(sv), e.op, rhs)) return true;
          } else if (e.op === '=' ? sv === e.value : sv !== e.value) {
            return true;
          }
        }
        return false;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------

/** A checked expression, ready to be evaluated against any number of documents. */
export interface CompiledXPath {
  /** The expression as given. */
  readonly source: string;
  /** The selected elements and attributes, in document order, without duplicates. */
  select(tree: XPathTree): XPathNode[];
}

/** Longest expression accepted: filters are small, and evaluation cost grows with the text. */
export const MAX_XPATH_LENGTH = 1024;

/**
 * Parses `expression` against prefix bindings (prefix -> namespace URI, as `<ns-bindings>`
 * gives them). Throws {@link UnsupportedXPath} for a malformed expression, one outside the
 * subset, or one that uses an unbound prefix.
 */
export function compileXPath(expression: string, bindings: ReadonlyMap<string, string> = new Map()): CompiledXPath {
  if (expression.length > MAX_XPATH_LENGTH)
    throw new UnsupportedXPath(expression, MAX_XPATH_LENGTH, 'expression too long');
  const paths = new Parser(expression, tokenize(expression), bindings).parseUnion();
  return {
    source: expression,
    select(tree: XPathTree): XPathNode[] {
      const ev = new Evaluator(tree);
      const all: Ctx[] = [];
      for (const p of paths) all.push(...ev.path(p, DOC));
      return normalize(all).filter((c): c is XPathNode => c.kind !== 'document');
    },
  };
}

/** One-off evaluation: compiles `expression` and selects from `root` (an element or an indexed tree). */
export function selectNodes(
  root: XmlElement | XPathTree,
  expression: string,
  bindings?: ReadonlyMap<string, string>,
): XPathNode[] {
  const tree = (root as XmlElement).type === 'element' ? xpathTree(root as XmlElement) : (root as XPathTree);
  return compileXPath(expression, bindings).select(tree);
}
