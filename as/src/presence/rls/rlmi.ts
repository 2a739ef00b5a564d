/**
 * Resource List Meta-Information documents, RFC 4662 section 5 (application/rlmi+xml): the root
 * part of every multipart NOTIFY of a resource list subscription, telling the subscriber which
 * resources the list has and which body part carries the state of each one.
 *
 * Pure: no I/O. Schema of what we write: schemas/rlmi.xsd.
 */
import { createHash } from 'node:crypto';
import {
  NamespaceScope,
  XmlError,
  type XmlElement,
  attr,
  childElements,
  escapeAttribute,
  escapeText,
  parseXml,
  textContent,
} from '../../xml/xml-tree.js';

export const RLMI_NS = 'urn:ietf:params:xml:ns:rlmi';
export const RLMI_CONTENT_TYPE = 'application/rlmi+xml';

export interface RlmiName {
  text: string;
  lang?: string;
}

export interface RlmiInstance {
  id: string;
  state: 'active' | 'pending' | 'terminated';
  /** Why the back-end subscription ended; only with state 'terminated'. */
  reason?: string;
  /** Content-ID (without angle brackets) of the body part holding this instance's state. */
  cid?: string;
}

export interface RlmiResource {
  uri: string;
  names?: RlmiName[];
  instances: RlmiInstance[];
}

export interface RlmiList {
  uri: string;
  version: number;
  fullState: boolean;
  names?: RlmiName[];
  /** Content-ID of the part holding the list itself, when the list is a member of an outer list. */
  cid?: string;
  resources: RlmiResource[];
}

/**
 * An RLMI document could not be written or read. `reason` is a short token: 'not-xml',
 * 'doctype-forbidden', 'wrong-root', 'missing-attribute', 'bad-attribute', 'unexpected-element'
 * (parsing) or 'invalid-input' (serializing).
 */
export class RlmiError extends Error {
  readonly reason: string;
  constructor(reason: string, detail: string) {
    super(`${reason}: ${detail}`);
    this.name = 'RlmiError';
    this.reason = reason;
  }
}

const STATES: ReadonlySet<string> = new Set(['active', 'pending', 'terminated']);
const MAX_UNSIGNED_INT = 0xffffffff;

/**
 * A stable, opaque instance id for the one back-end subscription we keep per resource: RFC 4662
 * wants the same id in every NOTIFY for the same instance, so it is derived from the URI.
 */
export function rlmiInstanceId(resourceUri: string): string {
  return createHash('sha1').update(resourceUri).digest('hex').slice(0, 10);
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

function names(list: readonly RlmiName[] | undefined): string {
  if (!list) return '';
  return list
    .map(
      (n) =>
        `<name${n.lang !== undefined ? ` xml:lang="${escapeAttribute(n.lang)}"` : ''}>${escapeText(n.text)}</name>`,
    )
    .join('');
}

function optAttr(name: string, value: string | undefined): string {
  return value === undefined ? '' : ` ${name}="${escapeAttribute(value)}"`;
}

function instance(i: RlmiInstance, resourceUri: string): string {
  if (!STATES.has(i.state))
    throw new RlmiError('invalid-input', `instance state ${JSON.stringify(i.state)} of ${resourceUri}`);
  // RFC 4662 5.2: a reason only explains a terminated instance
  if (i.reason !== undefined && i.state !== 'terminated') {
    throw new RlmiError('invalid-input', `reason on a ${i.state} instance of ${resourceUri}`);
  }
  return `<instance id="${escapeAttribute(i.id)}" state="${i.state}"${optAttr('reason', i.reason)}${optAttr('cid', i.cid)}/>`;
}

function resource(r: RlmiResource): string {
  const inner = names(r.names) + r.instances.map((i) => instance(i, r.uri)).join('');
  const open = `<resource uri="${escapeAttribute(r.uri)}"`;
  return inner === '' ? `${open}/>` : `${open}>${inner}</resource>`;
}

/**
 * Writes the document: UTF-8 with an XML declaration, no whitespace between elements, attributes
 * in a fixed order, so equal input gives byte-identical output. `names: []` is written like an
 * absent `names`. Throws RlmiError 'invalid-input' for a version that is not an xs:unsignedInt, an
 * unknown instance state or a reason on an instance that is not terminated.
 */
export function serializeRlmi(list: RlmiList): string {
  if (!Number.isInteger(list.version) || list.version < 0 || list.version > MAX_UNSIGNED_INT) {
    throw new RlmiError('invalid-input', `version ${list.version} is not an unsigned 32-bit integer`);
  }
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<list xmlns="${RLMI_NS}" uri="${escapeAttribute(list.uri)}" version="${list.version}" fullState="${list.fullState}"${optAttr('cid', list.cid)}>` +
    names(list.names) +
    list.resources.map(resource).join('') +
    '</list>'
  );
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

interface Node {
  el: XmlElement;
  scope: NamespaceScope;
}

/** The element children of `parent` in the RLMI namespace; foreign elements are extensions and skipped. */
function rlmiChildren(parent: Node, allowed: readonly string[]): Node[] {
  const out: Node[] = [];
  for (const c of childElements(parent.el)) {
    const scope = parent.scope.child(c);
    const e = scope.expand(c.name);
    if (e.ns !== RLMI_NS) continue;
    if (!allowed.includes(e.local))
      throw new RlmiError('unexpected-element', `<${e.local}> inside <${parent.el.name}>`);
    out.push({ el: c, scope });
  }
  return out;
}

function required(el: XmlElement, name: string, what: string): string {
  const v = attr(el, name);
  if (v === undefined) throw new RlmiError('missing-attribute', `${what} without ${name}`);
  return v;
}

/** xs:anyURI / xs:string-with-meaning: surrounding whitespace is not part of the value; empty is refused. */
function requiredToken(el: XmlElement, name: string, what: string): string {
  const v = required(el, name, what).trim();
  if (v === '') throw new RlmiError('bad-attribute', `${what} with an empty ${name}`);
  return v;
}

function readNames(nodes: readonly Node[]): RlmiName[] | undefined {
  const out: RlmiName[] = [];
  for (const n of nodes) {
    if (n.scope.expand(n.el.name).local !== 'name') continue;
    // only the xml prefix can carry the XML namespace, so the qualified name is exact
    const lang = attr(n.el, 'xml:lang');
    out.push(lang === undefined ? { text: textContent(n.el) } : { text: textContent(n.el), lang });
  }
  return out.length > 0 ? out : undefined;
}

function readInstance(n: Node, resourceUri: string): RlmiInstance {
  const what = `instance of ${resourceUri}`;
  const id = requiredToken(n.el, 'id', what);
  const state = required(n.el, 'state', what).trim();
  if (!STATES.has(state)) throw new RlmiError('bad-attribute', `${what} has state ${JSON.stringify(state)}`);
  const out: RlmiInstance = { id, state: state as RlmiInstance['state'] };
  const reason = attr(n.el, 'reason');
  if (reason !== undefined) out.reason = reason.trim();
  const cid = attr(n.el, 'cid');
  if (cid !== undefined) out.cid = cid.trim();
  return out;
}

function readResource(n: Node): RlmiResource {
  const uri = requiredToken(n.el, 'uri', 'resource');
  // instance content is open (RFC 4662 schema: any, lax), so its children are not looked at
  const kids = rlmiChildren(n, ['name', 'instance']);
  const out: RlmiResource = { uri, instances: [] };
  const nm = readNames(kids);
  if (nm) out.names = nm;
  for (const k of kids) {
    if (k.scope.expand(k.el.name).local === 'instance') out.instances.push(readInstance(k, uri));
  }
  return out;
}

/**
 * Reads an RLMI document (subscriber side, tests, tools). Checks the root element and namespace,
 * the required attributes and their types (version xs:unsignedInt, fullState xs:boolean, state
 * enumeration) and that only list / name / resource / instance occur in the RLMI namespace;
 * elements of other namespaces and unknown attributes are tolerated as extensions. Throws
 * RlmiError (XML errors included: 'not-xml', 'doctype-forbidden').
 */
export function parseRlmi(body: string): RlmiList {
  let root: XmlElement;
  try {
    root = parseXml(body, { maxDepth: 16 }).root;
  } catch (e) {
    if (e instanceof XmlError)
      throw new RlmiError(e.kind === 'doctype-forbidden' ? 'doctype-forbidden' : 'not-xml', e.message);
    throw e;
  }
  const scope = NamespaceScope.root().child(root);
  const name = scope.expand(root.name);
  if (name.ns !== RLMI_NS || name.local !== 'list') {
    throw new RlmiError('wrong-root', `root element {${name.ns ?? ''}}${name.local} is not {${RLMI_NS}}list`);
  }
  const uri = requiredToken(root, 'uri', 'list');
  const versionText = required(root, 'version', 'list').trim();
  const version = /^\+?[0-9]+$/.test(versionText) ? Number(versionText) : NaN;
  if (!(version <= MAX_UNSIGNED_INT))
    throw new RlmiError('bad-attribute', `list version ${JSON.stringify(versionText)} is not an unsigned int`);
  const fullStateText = required(root, 'fullState', 'list').trim();
  let fullState: boolean;
  if (fullStateText === 'true' || fullStateText === '1') fullState = true;
  else if (fullStateText === 'false' || fullStateText === '0') fullState = false;
  else throw new RlmiError('bad-attribute', `list fullState ${JSON.stringify(fullStateText)} is not a boolean`);

  const kids = rlmiChildren({ el: root, scope }, ['name', 'resource']);
  const out: RlmiList = { uri, version, fullState, resources: [] };
  const nm = readNames(kids);
  if (nm) out.names = nm;
  const cid = attr(root, 'cid');
  if (cid !== undefined) out.cid = cid.trim();
  for (const k of kids) {
    if (k.scope.expand(k.el.name).local === 'resource') out.resources.push(readResource(k));
  }
  return out;
}
