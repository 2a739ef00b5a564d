/**
 * Application usage "resource-lists" (RFC 4826 section 3): users' lists of resources (buddy
 * lists). Schema: schemas/resource-lists.xsd.
 *
 * Pure: no I/O. Also exports the list validation reused by rls-services (inline lists) and the
 * XCAP URI helpers used by rls-services, groups and pres-rules.
 */
import { type XmlDocument, xmlNamespaces } from '../../xml/xml-tree.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import { Checker, type XNode, anyOther, checkUnique, choice, el, plainAttr, seq } from './schema-checker.js';
import { uriProblem } from '../../xml/uri-check.js';

export const RESOURCE_LISTS_NS = xmlNamespaces.resourceLists;
const RL = RESOURCE_LISTS_NS;

/** The content of a list; extension elements exclude `own` too (the namespace of the list element itself). */
const LIST_MODEL_OF = (own: string | undefined) =>
  seq(
    1,
    1,
    el(RL, 'display-name', 0, 1),
    choice(0, Infinity, el(RL, 'list'), el(RL, 'external'), el(RL, 'entry'), el(RL, 'entry-ref')),
    anyOther(own === undefined || own === RL ? [RL] : [RL, own]),
  );
const MEMBER_MODEL_OF = (ns: string) => seq(1, 1, el(ns, 'display-name', 0, 1), anyOther([ns]));

// ---------------------------------------------------------------------------
// XCAP URIs
// ---------------------------------------------------------------------------

/** The parts of an XCAP URI path: `<auid>/users/<xui>/<document...>[/~~/<node selector>]`. */
export interface XcapPath {
  auid: string;
  /** 'users' or 'global'. */
  tree: 'users' | 'global';
  /** Decoded XUI (users tree only). */
  xui?: string;
  /** Decoded document path below the user's (or global) directory, e.g. 'index'. */
  document: string;
  /** Decoded node selector (the part after `~~/`), if any. */
  nodeSelector?: string;
}

const PCT_OK_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*$/;

function decode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/**
 * Parses the path of an XCAP URI relative to the XCAP root (`resource-lists/users/sip:bob@example.com/index/~~/...`).
 * Undefined when it is not one: characters outside RFC 3986 path syntax, bad percent escapes,
 * fewer segments than `<auid>/<users|global>[/<xui>]/<document>`.
 */
export function parseXcapPath(path: string): XcapPath | undefined {
  if (path === '' || path.startsWith('/') || !PCT_OK_RE.test(path)) return undefined;
  const sep = path.indexOf('/~~/');
  const docPart = sep === -1 ? path : path.slice(0, sep);
  const selPart = sep === -1 ? undefined : path.slice(sep + 4);
  const segs = docPart.split('/');
  const [auid, tree] = segs;
  if (!auid || (tree !== 'users' && tree !== 'global')) return undefined;
  const rest = segs.slice(tree === 'users' ? 3 : 2);
  const xuiRaw = tree === 'users' ? segs[2] : undefined;
  if (tree === 'users' && !xuiRaw) return undefined;
  if (rest.length === 0 || rest.some((s) => s === '')) return undefined;
  const document = decode(rest.join('/'));
  const xui = xuiRaw === undefined ? undefined : decode(xuiRaw);
  const nodeSelector = selPart === undefined ? undefined : decode(selPart);
  if (document === undefined || (xuiRaw !== undefined && xui === undefined) || (selPart !== undefined && !nodeSelector))
    return undefined;
  const out: XcapPath = { auid, tree, document };
  if (xui !== undefined) out.xui = xui;
  if (nodeSelector !== undefined) out.nodeSelector = nodeSelector;
  return out;
}

/** Local name of the element selected by the last step of a node selector (`a/b[@x="/"]/p:list[2]` -> 'list'). */
export function lastStepLocalName(selector: string): string | undefined {
  // split on '/' outside predicates and quotes
  const steps: string[] = [];
  let cur = '';
  let depth = 0;
  let quote: string | undefined;
  for (const ch of selector) {
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '[') {
      depth++;
    } else if (ch === ']') {
      depth--;
    } else if (ch === '/' && depth === 0) {
      steps.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  steps.push(cur);
  const last = steps[steps.length - 1] ?? '';
  if (last.startsWith('@') || last.startsWith('namespace::')) return undefined;
  const name = last.replace(/\[.*$/s, '');
  const colon = name.indexOf(':');
  return (colon === -1 ? name : name.slice(colon + 1)) || undefined;
}

/**
 * A problem phrase when `uri` is not an absolute http(s) XCAP URI of a `list` element of a
 * resource-lists document (the XCAP root may have a path prefix); undefined when it is.
 */
export function xcapListUriProblem(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri.trim());
  } catch {
    return 'is not an absolute URI';
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '')
    return 'is not an absolute http or https URI';
  // pathname keeps percent escapes; find "<auid>/users|global/" after the root prefix
  const raw = u.pathname.replace(/^\//, '');
  const segs = raw.split('/');
  for (let i = 0; i + 1 < segs.length; i++) {
    if (segs[i] === 'resource-lists' && (segs[i + 1] === 'users' || segs[i + 1] === 'global')) {
      const p = parseXcapPath(segs.slice(i).join('/'));
      if (!p) return 'is not a valid XCAP URI';
      if (p.nodeSelector === undefined || lastStepLocalName(p.nodeSelector) !== 'list') {
        return 'does not select a list element (its node selector must end with a list step)';
      }
      return undefined;
    }
  }
  return 'is not the XCAP URI of a resource-lists document';
}

/** A problem phrase when `ref` is not a relative XCAP URI (relative to the XCAP root); undefined when it is. */
export function relativeXcapUriProblem(ref: string): string | undefined {
  const r = ref.trim();
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(r.split('/')[0] ?? '')) return 'must be relative (no scheme)';
  if (r.startsWith('/')) return 'must be relative to the XCAP root (no leading "/")';
  if (!parseXcapPath(r)) return 'is not a valid XCAP URI path (<auid>/users/<xui>/<document>/~~/<node>)';
  return undefined;
}

// ---------------------------------------------------------------------------
// Validation pieces (shared)
// ---------------------------------------------------------------------------

/** display-name: text with an optional xml:lang. */
export function checkDisplayName(c: Checker, node: XNode): void {
  c.attrs(node, { xml: ['lang'] });
  c.text(node);
}

/** The attribute that identifies a list member: uri (entry), ref (entry-ref), anchor (external). */
export function memberAttribute(local: string): 'uri' | 'ref' | 'anchor' {
  return local === 'entry' ? 'uri' : local === 'entry-ref' ? 'ref' : 'anchor';
}

/** Constraint checks of a member's identifying attribute value (see {@link memberAttribute}). */
export function checkMemberValue(c: Checker, local: string, value: string): void {
  let p: string | undefined;
  if (local === 'entry') p = uriProblem(value);
  else if (local === 'entry-ref') p = relativeXcapUriProblem(value);
  else p = xcapListUriProblem(value);
  if (p) c.constraint(`${local} ${memberAttribute(local)} "${value}" ${p}`);
}

/** entry / entry-ref / external: the attribute, then display-name? and extensions. */
export function checkMember(c: Checker, node: XNode, ns: string): void {
  const attrName = memberAttribute(node.local);
  const attrs = c.attrs(node, { required: [attrName], foreign: true });
  const kids = c.children(node);
  if (c.model(node, kids, MEMBER_MODEL_OF(ns))) {
    for (const k of kids) if (k.ns === ns) checkDisplayName(c, k);
  }
  const v = attrs.get(attrName);
  if (v !== undefined) checkMemberValue(c, node.local, v);
}

/**
 * A `list` of resource-lists type (also the inline list of rls-services, whatever the namespace
 * of the list element itself): `name` attribute, display-name?, then entries, entry-refs,
 * externals and nested lists of the resource-lists namespace, then extensions. Child list names
 * and child entry URIs must be unique. Stricter than `any namespace="##other"`: elements of the
 * list element's own namespace are not taken as extensions either (an inline rls-services list
 * with unprefixed `<entry>` elements is refused instead of silently having no members).
 */
export function checkList(c: Checker, node: XNode): void {
  c.attrs(node, { optional: ['name'], foreign: true });
  const kids = c.children(node);
  if (!c.model(node, kids, LIST_MODEL_OF(node.ns))) return;
  const lists: XNode[] = [];
  const entries: XNode[] = [];
  for (const k of kids) {
    if (k.ns !== RL) continue; // extension element (lax)
    switch (k.local) {
      case 'display-name':
        checkDisplayName(c, k);
        break;
      case 'list':
        lists.push(k);
        checkList(c, k);
        break;
      case 'entry':
        entries.push(k);
        checkMember(c, k, RL);
        break;
      default:
        checkMember(c, k, RL);
    }
  }
  checkUniqueAttr(c, node, lists, 'name', true);
  checkUniqueAttr(c, node, entries, 'uri', false);
}

/** Uniqueness of attribute `attr` among `siblings` (children of `parent`), field `<parent>/<step>/@attr`. */
export function checkUniqueAttr(
  c: Checker,
  parent: XNode,
  siblings: readonly XNode[],
  attr: string,
  alternatives: boolean,
): void {
  const first = siblings[0];
  if (!first) return;
  const values: string[] = [];
  for (const s of siblings) {
    const v = plainAttr(s.el, attr);
    if (v !== undefined) values.push(v);
  }
  checkUnique(c, `${parent.sel}/${first.step}/@${attr}`, values, { alternatives });
}

// ---------------------------------------------------------------------------
// The usage
// ---------------------------------------------------------------------------

function validate(doc: XmlDocument, _ctx: ValidationContext): ValidationProblem[] {
  const c = new Checker(RL);
  const root = c.root(doc, RL, 'resource-lists');
  if (!root) return c.result();
  c.attrs(root, {});
  const kids = c.children(root);
  if (c.model(root, kids, el(RL, 'list', 0, Infinity))) {
    for (const k of kids) checkList(c, k);
    checkUniqueAttr(c, root, kids, 'name', true);
  }
  return c.result();
}

export const resourceListsUsage: ApplicationUsage = {
  auid: 'resource-lists',
  mimeType: 'application/resource-lists+xml',
  defaultNamespace: RL,
  namespaces: [RL],
  validate,
  defaultDocument: () => undefined,
};
