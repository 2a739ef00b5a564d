/**
 * The small validation toolkit the XCAP application usages share. Pure: no I/O. Validation is
 * done here in TypeScript; the XSD files in `schemas/` document the same structures (no XSD
 * engine runs).
 *
 *  - {@link Checker} collects {@link ValidationProblem}s and walks elements as {@link XNode}s
 *    (element + in-scope namespaces + expanded name + an XCAP-style selector for messages);
 *  - content models ({@link el}, {@link anyOther}, {@link choice}, {@link seq}) are matched
 *    greedily against the element children. That is exact for deterministic models, which every
 *    XSD content model is (Unique Particle Attribution), so no backtracking is needed;
 *  - {@link proposeAltValues} for uniqueness failures.
 */
import {
  NamespaceScope,
  type XmlDocument,
  type XmlElement,
  childElements,
  isNCName,
  localName,
  prefixOf,
  textContent,
  xmlNamespaces,
} from '../../xml/xml-tree.js';
import type { ValidationProblem } from './usage.js';
import { collapse, parseXsBoolean, parseXsDateTime } from '../../xml/xsd-datatypes.js';

// ---------------------------------------------------------------------------
// Walking elements
// ---------------------------------------------------------------------------

export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

/** An element with its context. */
export interface XNode {
  el: XmlElement;
  /** The namespace scope inside `el` (its own declarations applied). */
  scope: NamespaceScope;
  ns: string | undefined;
  local: string;
  /** XCAP-style node selector of the element from the document root (for messages and fields). */
  sel: string;
  /** The last step of `sel` without its predicate: the element name as used in selectors. */
  step: string;
}

export interface AttrSpec {
  required?: readonly string[];
  optional?: readonly string[];
  /** Attributes of namespaces other than the element's own are allowed (anyAttribute ##other). */
  foreign?: boolean;
  /** Local names of allowed xml:* attributes (e.g. 'lang'). */
  xml?: readonly string[];
}

// ---------------------------------------------------------------------------
// Content models
// ---------------------------------------------------------------------------

export type Particle =
  | { kind: 'el'; ns: string; local: string; min: number; max: number }
  | { kind: 'any'; exclude: readonly string[]; min: number; max: number }
  | { kind: 'choice'; of: readonly Particle[]; min: number; max: number }
  | { kind: 'seq'; of: readonly Particle[]; min: number; max: number };

/** An element {ns}local occurring min..max times (default exactly once). */
export function el(ns: string, local: string, min = 1, max = 1): Particle {
  return { kind: 'el', ns, local, min, max };
}

/**
 * Elements of any namespace but `exclude` (and not unqualified ones): XSD `any namespace="##other"`.
 * Defaults to 0..unbounded; inside a choice give explicit bounds (usually 1, 1), as XSD does.
 */
export function anyOther(exclude: readonly string[], min = 0, max = Infinity): Particle {
  return { kind: 'any', exclude, min, max };
}

export function choice(min: number, max: number, ...of: Particle[]): Particle {
  return { kind: 'choice', of, min, max };
}

export function seq(min: number, max: number, ...of: Particle[]): Particle {
  return { kind: 'seq', of, min, max };
}

class ModelMatcher {
  furthest = -1;
  expected: string[] = [];

  constructor(private readonly kids: readonly XNode[]) {}

  private note(pos: number, what: string): void {
    if (pos > this.furthest) {
      this.furthest = pos;
      this.expected = [what];
    } else if (pos === this.furthest && !this.expected.includes(what)) {
      this.expected.push(what);
    }
  }

  /** End position after matching p (with its occurrence bounds) from pos, or -1. */
  particle(p: Particle, pos: number): number {
    let count = 0;
    let cur = pos;
    while (count < p.max) {
      const next = this.once(p, cur);
      if (next < 0) break;
      if (next === cur) {
        // matched empty: any further repetition would too
        count = Math.max(count + 1, p.min);
        break;
      }
      cur = next;
      count++;
    }
    return count >= p.min ? cur : -1;
  }

  private once(p: Particle, pos: number): number {
    const k = this.kids[pos];
    switch (p.kind) {
      case 'el':
        if (k && k.ns === p.ns && k.local === p.local) return pos + 1;
        this.note(pos, `<${p.local}>`);
        return -1;
      case 'any':
        if (k && k.ns !== undefined && !p.exclude.includes(k.ns)) return pos + 1;
        return -1;
      case 'choice': {
        let empty = false;
        for (const alt of p.of) {
          const r = this.particle(alt, pos);
          if (r > pos) return r;
          if (r === pos) empty = true;
        }
        return empty ? pos : -1;
      }
      case 'seq': {
        let cur = pos;
        for (const q of p.of) {
          const r = this.particle(q, cur);
          if (r < 0) return -1;
          cur = r;
        }
        return cur;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------

const KIND_ORDER = { schema: 0, uniqueness: 1, constraint: 2 } as const;
const PREDICATE_ATTRIBUTES = ['name', 'uri', 'id'] as const;

/** Collects problems while a usage walks a document. */
export class Checker {
  readonly problems: ValidationProblem[] = [];

  /** @param defaultNs the usage's default namespace: its elements appear unprefixed in selectors. */
  constructor(readonly defaultNs: string) {}

  /** The problems, schema errors first, then uniqueness, then constraint failures. */
  result(): ValidationProblem[] {
    return this.problems
      .map((p, i) => [p, i] as const)
      .sort((a, b) => KIND_ORDER[a[0].kind] - KIND_ORDER[b[0].kind] || a[1] - b[1])
      .map(([p]) => p);
  }

  schema(node: XNode | undefined, message: string): void {
    this.problems.push({ kind: 'schema', message: node ? `<${node.el.name}> at ${node.sel}: ${message}` : message });
  }

  constraint(phrase: string): void {
    this.problems.push({ kind: 'constraint', phrase });
  }

  uniqueness(field: string, value: string, altValues?: string[]): void {
    this.problems.push(
      altValues && altValues.length > 0
        ? { kind: 'uniqueness', field, value, altValues }
        : { kind: 'uniqueness', field, value },
    );
  }

  /** The root as an XNode when it is {ns}local; a schema problem and undefined otherwise. */
  root(doc: XmlDocument, ns: string, local: string): XNode | undefined {
    const node = this.nodeOf(doc.root, NamespaceScope.root(), '');
    if (node.ns !== ns || node.local !== local) {
      this.schema(
        undefined,
        `root element <${doc.root.name}> (namespace ${node.ns ?? 'none'}) is not <${local}> of namespace ${ns}`,
      );
      return undefined;
    }
    return node;
  }

  /** Selector step name: local name for the default namespace, the qualified name as written otherwise. */
  private stepName(el: XmlElement, ns: string | undefined): string {
    return ns === this.defaultNs ? localName(el) : el.name;
  }

  private nodeOf(el: XmlElement, parentScope: NamespaceScope, parentSel: string, predicate = ''): XNode {
    const scope = parentScope.child(el);
    const { ns, local } = scope.expand(el.name);
    const step = this.stepName(el, ns);
    return {
      el,
      scope,
      ns,
      local,
      sel: parentSel === '' ? step + predicate : `${parentSel}/${step}${predicate}`,
      step,
    };
  }

  /**
   * Element children as XNodes. Reports character data in element-only content (text other than
   * whitespace, CDATA) as a schema problem; comments and processing instructions are ignored.
   */
  children(node: XNode): XNode[] {
    for (const n of node.el.elements ?? []) {
      if ((n.type === 'text' && !/^[ \t\r\n]*$/.test(n.text)) || n.type === 'cdata') {
        this.schema(node, 'character data is not allowed here (element-only content)');
        break;
      }
    }
    const kids = childElements(node.el);
    // selector predicates: [@name|@uri|@id="v"] when that identifies the element among its
    // same-named siblings, else a position when there are several of them (linear time: a
    // document may hold thousands of siblings)
    const sameName = new Map<string, number>();
    const sameValue = new Map<string, number>();
    const valueKey = (name: string, a: string, v: string): string => `${name}\u0000${a}\u0000${v}`;
    for (const k of kids) {
      sameName.set(k.name, (sameName.get(k.name) ?? 0) + 1);
      for (const a of PREDICATE_ATTRIBUTES) {
        const v = plainAttr(k, a);
        if (v !== undefined) sameValue.set(valueKey(k.name, a, v), (sameValue.get(valueKey(k.name, a, v)) ?? 0) + 1);
      }
    }
    const position = new Map<string, number>();
    return kids.map((k) => {
      const pos = (position.get(k.name) ?? 0) + 1;
      position.set(k.name, pos);
      let predicate = '';
      for (const a of PREDICATE_ATTRIBUTES) {
        const v = plainAttr(k, a);
        if (v !== undefined && !v.includes('"') && sameValue.get(valueKey(k.name, a, v)) === 1) {
          predicate = `[@${a}="${v}"]`;
          break;
        }
      }
      if (predicate === '' && (sameName.get(k.name) ?? 0) > 1) predicate = `[${pos}]`;
      return this.nodeOf(k, node.scope, node.sel, predicate);
    });
  }

  /** Matches `kids` against `model`; reports the first mismatch. True when they match. */
  model(node: XNode, kids: readonly XNode[], model: Particle): boolean {
    const m = new ModelMatcher(kids);
    const end = m.particle(model, 0);
    if (end === kids.length) return true;
    const pos = Math.max(end, m.furthest);
    const at = kids[pos];
    const expected = pos === m.furthest && m.expected.length > 0 ? m.expected.join(' or ') : undefined;
    if (at) {
      this.schema(node, `element <${at.el.name}> is not allowed here${expected ? ` (expected ${expected})` : ''}`);
    } else if (expected) {
      this.schema(node, `missing required element ${expected}`);
    } else {
      this.schema(node, 'content does not match the schema');
    }
    return false;
  }

  /**
   * Checks the attributes of `node` against `spec` and returns the unprefixed ones by name.
   * xmlns declarations and xsi:* attributes are always allowed.
   */
  attrs(node: XNode, spec: AttrSpec): Map<string, string> {
    const out = new Map<string, string>();
    const attributes = node.el.attributes ?? {};
    for (const qn of Object.keys(attributes)) {
      if (qn === 'xmlns' || qn.startsWith('xmlns:')) continue;
      const value = attributes[qn] ?? '';
      const prefix = prefixOf(qn);
      if (prefix === undefined) {
        if (spec.required?.includes(qn) || spec.optional?.includes(qn)) out.set(qn, value);
        else this.schema(node, `attribute "${qn}" is not allowed`);
        continue;
      }
      const ans = node.scope.resolve(prefix);
      const alocal = localName(qn);
      if (ans === xmlNamespaces.xml) {
        if (!spec.xml?.includes(alocal)) this.schema(node, `attribute "${qn}" is not allowed`);
      } else if (ans === XSI_NS) {
        // schemaLocation, type, nil: informational for us
      } else if (!spec.foreign || ans === node.ns || ans === undefined) {
        this.schema(node, `attribute "${qn}" is not allowed`);
      }
    }
    for (const r of spec.required ?? []) {
      if (!out.has(r)) this.schema(node, `missing required attribute "${r}"`);
    }
    return out;
  }

  /** Text of a simple-content element; reports child elements as a schema problem. */
  text(node: XNode): string {
    if (childElements(node.el).length > 0) this.schema(node, 'child elements are not allowed here (simple content)');
    return textContent(node.el);
  }

  /** Checks that the element has neither children nor text. */
  empty(node: XNode): void {
    for (const n of node.el.elements ?? []) {
      if (n.type === 'element' || (n.type === 'text' && !/^[ \t\r\n]*$/.test(n.text)) || n.type === 'cdata') {
        this.schema(node, 'must be empty');
        return;
      }
    }
  }

  /** Simple content that must be one of `values` (after whitespace collapsing, as xs:token). */
  enumeration<T extends string>(node: XNode, values: readonly T[]): T | undefined {
    const v = collapse(this.text(node));
    if ((values as readonly string[]).includes(v)) return v as T;
    this.schema(node, `value "${v}" is not one of ${values.join(', ')}`);
    return undefined;
  }

  /** Simple content of type xs:boolean. */
  boolean(node: XNode): boolean | undefined {
    const v = parseXsBoolean(this.text(node));
    if (v === undefined)
      this.schema(node, `value "${collapse(textContent(node.el))}" is not a boolean (true, false, 1, 0)`);
    return v;
  }

  /** Attribute value of type xs:boolean (undefined value = attribute absent). */
  booleanAttr(node: XNode, name: string, value: string | undefined): boolean | undefined {
    if (value === undefined) return undefined;
    const v = parseXsBoolean(value);
    if (v === undefined) this.schema(node, `attribute "${name}" value "${value}" is not a boolean (true, false, 1, 0)`);
    return v;
  }

  /** Simple content of type xs:dateTime; returns the instant (no time zone = UTC). */
  dateTime(node: XNode): Date | undefined {
    const t = collapse(this.text(node));
    const d = parseXsDateTime(t);
    if (d === undefined) this.schema(node, `value "${t}" is not an xs:dateTime`);
    return d;
  }

  /** Checks an xs:ID / NCName attribute value. */
  ncName(node: XNode, name: string, value: string | undefined): void {
    if (value !== undefined && !isNCName(value))
      this.schema(node, `attribute "${name}" value "${value}" is not a valid XML ID (NCName)`);
  }
}

/** An unprefixed attribute (own property only). */
export function plainAttr(el: XmlElement, name: string): string | undefined {
  const a = el.attributes;
  return a && Object.hasOwn(a, name) ? a[name] : undefined;
}
// ---------------------------------------------------------------------------
// Uniqueness
// ---------------------------------------------------------------------------

/**
 * Up to `count` values close to `value` that `isTaken` rejects: for a SIP URI a number is
 * appended to the user part (sip:friends@example.com -> sip:friends1@example.com), otherwise to
 * the whole value (a trailing number is replaced: rule7 -> rule8, rule9, ...).
 */
export function proposeAltValues(value: string, isTaken: (candidate: string) => boolean, count = 3): string[] {
  const out: string[] = [];
  let prefix = value;
  let suffix = '';
  const sip = /^(sips?:)([^@;?]+)(@.*)$/i.exec(value);
  if (sip) {
    prefix = (sip[1] ?? '') + (sip[2] ?? '');
    suffix = sip[3] ?? '';
  }
  const trailing = /^(.*?)(\d+)$/.exec(prefix);
  let n = 1;
  if (trailing && trailing[1] !== '' && !/:$/.test(trailing[1] ?? '')) {
    prefix = trailing[1] ?? prefix;
    n = Number(trailing[2]) + 1;
  }
  for (let tries = 0; out.length < count && tries < 10_000; tries++, n++) {
    const candidate = `${prefix}${n}${suffix}`;
    if (candidate !== value && !isTaken(candidate) && !out.includes(candidate)) out.push(candidate);
  }
  return out;
}

/**
 * Reports every value that occurs more than once in `items` (compared by `key`, default the
 * value itself) as a uniqueness problem on `field`, with alternatives when `alternatives`.
 */
export function checkUnique(
  c: Checker,
  field: string,
  values: readonly string[],
  opts: { key?: (v: string) => string; alternatives?: boolean } = {},
): void {
  const key = opts.key ?? ((v: string) => v);
  const seen = new Set<string>();
  const reported = new Set<string>();
  const allKeys = new Set(values.map(key));
  for (const v of values) {
    const k = key(v);
    if (seen.has(k)) {
      if (!reported.has(k)) {
        reported.add(k);
        c.uniqueness(field, v, opts.alternatives ? proposeAltValues(v, (cand) => allKeys.has(key(cand))) : undefined);
      }
    } else {
      seen.add(k);
    }
  }
}

/** Builds an element (helper for the generated documents). */
export function element(
  name: string,
  attributes?: Record<string, string>,
  children?: Array<XmlElement | string>,
): XmlElement {
  const el: XmlElement = { type: 'element', name };
  if (attributes && Object.keys(attributes).length > 0) el.attributes = attributes;
  if (children && children.length > 0) {
    el.elements = children.map((c) => (typeof c === 'string' ? { type: 'text' as const, text: c } : c));
  }
  return el;
}
