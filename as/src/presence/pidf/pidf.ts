/**
 * PIDF (RFC 3863) with the presence data model (RFC 4479) and RPID (RFC 4480): parsing into a
 * model, and serialization of the model. CIPID (RFC 4482), caps (RFC 5196), OMA Presence SIMPLE
 * and any other extension elements are carried through verbatim.
 *
 * Pure: no I/O.
 *
 * Parsing is lenient where real clients deviate and strict where the document would be useless:
 *  - dm:person / dm:device may come before, between or after the tuples (baresip publishes
 *    `<dm:person>` before `<tuple>`, which RFC 3863's schema does not allow);
 *  - extension elements of any namespace are kept verbatim, in order;
 *  - refused with {@link PidfError}: anything parseXml refuses (DOCTYPE, malformed XML, not
 *    UTF-8, too large, too deep), a root that is not {urn:ietf:params:xml:ns:pidf}presence, a
 *    missing or non-URI `entity`, a tuple without `id` or without `<status>`, a `<basic>` that is
 *    neither open nor closed, a person or device without `id`, and an id used twice (tuple,
 *    person and device ids are one xs:ID space);
 *  - silently dropped: an invalid `priority` of a contact, an invalid xs:dateTime timestamp, a
 *    second status / contact / timestamp / deviceID, text between elements, and elements of a
 *    component's own namespace that its schema does not define there (e.g. an unknown pidf
 *    element in a tuple, an unknown dm element in a person): the strict output could not carry
 *    them.
 *
 * Model conventions:
 *  - Every XmlElement kept in the model (`elements`, `statusElements`, `extensions`, `raw`) is
 *    STANDALONE: it carries the xmlns declarations of every prefix it uses (prefixes declared
 *    higher up in the source document are copied onto it), so it means the same thing wherever it
 *    goes and {@link elementName} reads its expanded name without context.
 *  - Model XmlElements are treated as immutable: functions of this module never modify an
 *    element they were given; they build new ones.
 *  - The fields of the PIDF and data-model base schemas (basic, contact, notes, timestamp,
 *    deviceID) are authoritative model fields: the serializer writes them. Everything else is in
 *    `elements` (authoritative, written verbatim). The fields marked "derived" (`classValue`,
 *    `activities`, `mood`, ...) are read-only summaries of `elements`, filled in by every function
 *    that returns a model (parsePidf, makeTuple/makePerson/makeDevice, composePresence,
 *    applyTransformations). The serializer ignores them: to publish an RPID value, put the element
 *    in `elements` (see {@link rpidElement}).
 *
 * Serialization is strict and canonical: RFC 3863 + RFC 4479 order (tuples, presence notes,
 * persons, devices, other extensions; inside a tuple: status, deviceID, extensions, contact,
 * notes, timestamp; inside a person/device: extensions, [deviceID,] notes, timestamp), UTF-8 with
 * the XML declaration, no DOCTYPE, no added whitespace, and every namespace declared once on the
 * root. PIDF is the default namespace; the namespaces this module knows get fixed prefixes (dm,
 * rpid, caps, c, op, lt, gp, ...); an unknown namespace keeps the prefix it had in the source when
 * that prefix is free, so an unknown element is written byte-for-byte as it was received (its
 * declaration moves to the root). The same model always gives the same bytes, so the presence
 * server can compare serialized documents to suppress needless NOTIFYs.
 */
import {
  NamespaceScope,
  XmlError,
  type XmlElement,
  type XmlLimits,
  type XmlNode,
  attr,
  childElements,
  escapeAttribute,
  escapeText,
  isNCName,
  parseXml,
  textContent,
  xmlNamespaces,
} from '../../xml/xml-tree.js';
import { collapse, parseXsDateTime } from '../../xml/xsd-datatypes.js';

// ---------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------

export const PIDF_NS = xmlNamespaces.pidf;
export const DM_NS = xmlNamespaces.dataModel;
export const RPID_NS = xmlNamespaces.rpid;
export const CAPS_NS = xmlNamespaces.caps;
export const CIPID_NS = 'urn:ietf:params:xml:ns:pidf:cipid';
export const OMA_PRES_NS = 'urn:oma:xml:prs:pidf:oma-pres';
export const LOCATION_TYPE_NS = 'urn:ietf:params:xml:ns:location-type';
export const GEOPRIV_NS = 'urn:ietf:params:xml:ns:pidf:geopriv10';
export const TIMED_STATUS_NS = 'urn:ietf:params:xml:ns:pidf:timed-status';
const XML_NS = xmlNamespaces.xml;

/**
 * The prefixes the serializer always uses for the namespaces it knows (PIDF itself is the default
 * namespace; `pidf` is used only inside an extension that undeclares the default namespace).
 */
export const CANONICAL_PREFIXES: ReadonlyMap<string, string> = new Map([
  [PIDF_NS, 'pidf'],
  [DM_NS, 'dm'],
  [RPID_NS, 'rpid'],
  [CAPS_NS, 'caps'],
  [CIPID_NS, 'c'],
  [OMA_PRES_NS, 'op'],
  [LOCATION_TYPE_NS, 'lt'],
  [GEOPRIV_NS, 'gp'],
  ['urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy', 'gbp'],
  ['urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr', 'ca'],
  ['http://www.opengis.net/gml', 'gml'],
  [TIMED_STATUS_NS, 'ts'],
  ['urn:ietf:params:xml:ns:pidf:status:rpid-status', 'es'],
]);
const RESERVED_PREFIXES = new Set<string>([...CANONICAL_PREFIXES.values(), 'xml', 'xmlns']);

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/** A `<note>` (PIDF) or `<dm:note>` (data model): free text with an optional language. */
export interface Note {
  text: string;
  /** xml:lang, when present and not empty. */
  lang?: string;
}

export interface Contact {
  uri: string;
  /** The q-value as written ("0.8"), only when it is a valid q-value (0 to 1, 3 decimals). */
  priority?: string;
}

/** OMA Presence SIMPLE `<op:service-description>` (derived summary). */
export interface ServiceDescription {
  serviceId: string;
  version?: string;
  description?: string;
}

/** A service (RFC 4479 section 3.4): one PIDF `<tuple>`. */
export interface Tuple {
  id: string;
  basic?: 'open' | 'closed';
  /** Extension children of `<status>` other than `<basic>` (e.g. RFC 3863's im:im), standalone. */
  statusElements?: XmlElement[];
  /** dm:deviceID: the device the service runs on (RFC 4479 section 3.4.1). */
  deviceId?: string;
  contact?: Contact;
  notes: Note[];
  /** xs:dateTime as written (whitespace collapsed), only when valid. */
  timestamp?: string;
  /** Every other child of the tuple (RPID, caps, OMA, unknown...), standalone, in order. */
  elements: XmlElement[];
  /** Derived: text of rpid:class. */
  readonly classValue?: string;
  /** Derived: op:service-description. */
  readonly serviceDescription?: ServiceDescription;
  /** The tuple as received (standalone), when it came from a parsed document. */
  raw?: XmlElement;
}

/** The person (RFC 4479 section 3.3): one `<dm:person>`. */
export interface Person {
  id: string;
  /** Every child not of the data-model namespace (RPID, CIPID, unknown...), standalone, in order. */
  elements: XmlElement[];
  /** dm:note elements. */
  notes: Note[];
  /** dm:timestamp as written, only when valid. */
  timestamp?: string;
  /** Derived: the values of rpid:activities (local names of its children but rpid:note; RFC 4480 enumeration names, "other" for rpid:other). */
  readonly activities?: string[];
  /** Derived: the values of rpid:mood (as for activities). */
  readonly mood?: string[];
  /** Derived: the values of rpid:place-type (local names: "residence" for lt:residence, "other"...). */
  readonly placeType?: string[];
  /** Derived: the values of rpid:privacy ("audio", "text", "video", "unknown"...). */
  readonly privacy?: string[];
  /** Derived: text of rpid:class. */
  readonly classValue?: string;
  /** Derived: text of rpid:user-input ("active" / "idle"). */
  readonly userInput?: string;
  raw?: XmlElement;
}

/** A device (RFC 4479 section 3.5): one `<dm:device>`. */
export interface Device {
  id: string;
  /** dm:deviceID (required by RFC 4479: a device without one is not serialized). */
  deviceId?: string;
  elements: XmlElement[];
  notes: Note[];
  timestamp?: string;
  /** Derived: text of rpid:class. */
  readonly classValue?: string;
  /** Derived: text of rpid:user-input. */
  readonly userInput?: string;
  raw?: XmlElement;
}

export interface PresenceDoc {
  entity: string;
  tuples: Tuple[];
  persons: Person[];
  devices: Device[];
  /** Presence-level `<note>` elements. */
  notes: Note[];
  /** Other top-level elements (not tuple, note, dm:person, dm:device), standalone, in order. */
  extensions: XmlElement[];
}

export type TupleInit = Omit<Tuple, 'classValue' | 'serviceDescription' | 'notes' | 'elements'> & {
  notes?: Note[];
  elements?: XmlElement[];
};
export type PersonInit = Omit<
  Person,
  'activities' | 'mood' | 'placeType' | 'privacy' | 'classValue' | 'userInput' | 'notes' | 'elements'
> & {
  notes?: Note[];
  elements?: XmlElement[];
};
export type DeviceInit = Omit<Device, 'classValue' | 'userInput' | 'notes' | 'elements'> & {
  notes?: Note[];
  elements?: XmlElement[];
};

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A PIDF body the server refuses. `reason` is short printable ASCII, usable as a SIP 400 reason phrase. */
export class PidfError extends Error {
  readonly reason: string;
  /** More detail for logs (e.g. the XML parser's message). */
  readonly detail?: string;
  constructor(reason: string, options: { detail?: string; cause?: unknown } = {}) {
    const r = reasonPhrase(reason);
    super(
      options.detail ? `${r} (${options.detail})` : r,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'PidfError';
    this.reason = r;
    if (options.detail !== undefined) this.detail = options.detail;
  }
}

function reasonPhrase(s: string): string {
  const r = s.replace(/[^\x20-\x7e]/g, '?');
  return r.length > 100 ? `${r.slice(0, 97)}...` : r;
}

/** A value quoted for a reason phrase (shortened, printable). */
function q(v: string): string {
  return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}...` : v);
}

function xmlReason(e: XmlError): string {
  switch (e.kind) {
    case 'doctype-forbidden':
      return 'Invalid PIDF: DOCTYPE not allowed';
    case 'not-utf-8':
      return 'Invalid PIDF: body is not UTF-8';
    case 'too-large':
      return 'Invalid PIDF: body too large';
    case 'too-deep':
      return 'Invalid PIDF: elements nested too deep';
    default:
      return 'Invalid PIDF: malformed XML';
  }
}

// ---------------------------------------------------------------------------
// Element helpers
// ---------------------------------------------------------------------------

export interface ExpandedName {
  /** Namespace URI; undefined = no namespace. */
  ns: string | undefined;
  local: string;
}

const ROOT_SCOPE = NamespaceScope.root();
const nameCache = new WeakMap<XmlElement, ExpandedName>();

/** Expanded name of a standalone element (its own declarations only). */
export function elementName(el: XmlElement): ExpandedName {
  let n = nameCache.get(el);
  if (!n) {
    n = ROOT_SCOPE.child(el).expand(el.name);
    nameCache.set(el, n);
  }
  return n;
}

/** 32-bit FNV-1a of the UTF-16 code units, as 8 hex digits: stable across runs and platforms. */
export function stableHash(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** `{ns}local`: a key for an expanded name. */
export function expandedKey(n: ExpandedName): string {
  return `{${n.ns ?? ''}}${n.local}`;
}

/** The element children of a standalone element with their expanded names. */
export function namedChildren(el: XmlElement): Array<{ el: XmlElement; ns: string | undefined; local: string }> {
  const scope = ROOT_SCOPE.child(el);
  return childElements(el).map((c) => {
    const n = scope.child(c).expand(c.name);
    return { el: c, ns: n.ns, local: n.local };
  });
}

/** First element of `list` with the expanded name {ns}local. */
export function findElement(list: readonly XmlElement[], ns: string, local: string): XmlElement | undefined {
  for (const e of list) {
    const n = elementName(e);
    if (n.ns === ns && n.local === local) return e;
  }
  return undefined;
}

/**
 * Copy of `el` that carries the namespace declarations of every prefix its subtree uses without
 * declaring (resolved in `parentScope`, the scope of el's parent). Children are shared.
 */
export function detachElement(el: XmlElement, parentScope: NamespaceScope): XmlElement {
  const needed = new Set<string>();
  collectPrefixes(el, new Set(), needed);
  const decls: Record<string, string> = {};
  let any = false;
  for (const p of needed) {
    if (p === 'xml') continue;
    const uri = parentScope.resolve(p === '' ? undefined : p);
    if (uri === undefined) continue; // unprefixed without a default namespace: no namespace
    const key = p === '' ? 'xmlns' : `xmlns:${p}`;
    if (el.attributes && Object.hasOwn(el.attributes, key)) continue;
    decls[key] = uri;
    any = true;
  }
  if (!any) return el;
  const out: XmlElement = { type: 'element', name: el.name, attributes: { ...decls, ...(el.attributes ?? {}) } };
  if (el.elements) out.elements = el.elements;
  return out;
}

function collectPrefixes(el: XmlElement, declaredAbove: ReadonlySet<string>, out: Set<string>): void {
  let declared = declaredAbove;
  const attrs = el.attributes;
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      if (k === 'xmlns' || k.startsWith('xmlns:')) {
        if (declared === declaredAbove) declared = new Set(declaredAbove);
        (declared as Set<string>).add(k === 'xmlns' ? '' : k.slice(6));
      }
    }
  }
  const colon = el.name.indexOf(':');
  const p = colon === -1 ? '' : el.name.slice(0, colon);
  if (!declared.has(p)) out.add(p);
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      const c = k.indexOf(':');
      if (c === -1) continue;
      const ap = k.slice(0, c);
      if (ap === 'xmlns' || ap === 'xml') continue;
      if (!declared.has(ap)) out.add(ap);
    }
  }
  for (const n of el.elements ?? []) if (n.type === 'element') collectPrefixes(n, declared, out);
}

/**
 * Builds a standalone element of namespace `ns` (declared on it with the canonical prefix, or
 * `ext` for an unknown namespace). `content`: a string becomes the text; an array of strings
 * becomes empty child elements of the same namespace (`['away']` -> `<rpid:away/>`); elements are
 * appended as they are (they should be standalone too).
 */
export function presenceElement(
  ns: string,
  local: string,
  content?: string | ReadonlyArray<string | XmlElement>,
  attributes?: Record<string, string>,
): XmlElement {
  const p = CANONICAL_PREFIXES.get(ns) ?? 'ext';
  const el: XmlElement = {
    type: 'element',
    name: `${p}:${local}`,
    attributes: { [`xmlns:${p}`]: ns, ...(attributes ?? {}) },
  };
  if (typeof content === 'string') {
    if (content !== '') el.elements = [{ type: 'text', text: content }];
  } else if (content && content.length > 0) {
    el.elements = content.map((c) => (typeof c === 'string' ? { type: 'element' as const, name: `${p}:${c}` } : c));
  }
  return el;
}

/** An RPID element: `rpidElement('activities', ['on-the-phone'])`, `rpidElement('class', 'work')`. */
export function rpidElement(
  local: string,
  content?: string | ReadonlyArray<string | XmlElement>,
  attributes?: Record<string, string>,
): XmlElement {
  return presenceElement(RPID_NS, local, content, attributes);
}

// ---------------------------------------------------------------------------
// Derived summaries and constructors
// ---------------------------------------------------------------------------

/** Local names of the children of an RPID list element (activities, mood...), without rpid:note. */
function rpidValues(list: readonly XmlElement[], local: string): string[] | undefined {
  let out: string[] | undefined;
  for (const e of list) {
    const n = elementName(e);
    if (n.ns !== RPID_NS || n.local !== local) continue;
    out ??= [];
    for (const k of namedChildren(e)) {
      if (k.ns === RPID_NS && k.local === 'note') continue;
      if (!out.includes(k.local)) out.push(k.local);
    }
  }
  return out;
}

function rpidText(list: readonly XmlElement[], local: string): string | undefined {
  const e = findElement(list, RPID_NS, local);
  return e ? collapse(textContent(e)) : undefined;
}

function serviceDescriptionOf(list: readonly XmlElement[]): ServiceDescription | undefined {
  const e = findElement(list, OMA_PRES_NS, 'service-description');
  if (!e) return undefined;
  const sd: ServiceDescription = { serviceId: '' };
  for (const k of namedChildren(e)) {
    if (k.ns !== OMA_PRES_NS) continue;
    const v = collapse(textContent(k.el));
    if (k.local === 'service-id') sd.serviceId = v;
    else if (k.local === 'version') sd.version = v;
    else if (k.local === 'description') sd.description = v;
  }
  return sd;
}

function setIf<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

/** A tuple with its derived fields computed from `elements` (defaults: no notes, no elements). */
export function makeTuple(init: TupleInit): Tuple {
  const t: Tuple = { id: init.id, notes: init.notes ?? [], elements: init.elements ?? [] };
  setIf(t, 'basic', init.basic);
  if (init.statusElements && init.statusElements.length > 0) t.statusElements = init.statusElements;
  setIf(t, 'deviceId', init.deviceId);
  setIf(t, 'contact', init.contact);
  setIf(t, 'timestamp', init.timestamp);
  const m = t as { -readonly [K in keyof Tuple]: Tuple[K] };
  setIf(m, 'classValue', rpidText(t.elements, 'class'));
  setIf(m, 'serviceDescription', serviceDescriptionOf(t.elements));
  setIf(t, 'raw', init.raw);
  return t;
}

/** A person with its derived fields computed from `elements`. */
export function makePerson(init: PersonInit): Person {
  const p: Person = { id: init.id, elements: init.elements ?? [], notes: init.notes ?? [] };
  setIf(p, 'timestamp', init.timestamp);
  const m = p as { -readonly [K in keyof Person]: Person[K] };
  setIf(m, 'activities', rpidValues(p.elements, 'activities'));
  setIf(m, 'mood', rpidValues(p.elements, 'mood'));
  setIf(m, 'placeType', rpidValues(p.elements, 'place-type'));
  setIf(m, 'privacy', rpidValues(p.elements, 'privacy'));
  setIf(m, 'classValue', rpidText(p.elements, 'class'));
  setIf(m, 'userInput', rpidText(p.elements, 'user-input'));
  setIf(p, 'raw', init.raw);
  return p;
}

/** A device with its derived fields computed from `elements`. */
export function makeDevice(init: DeviceInit): Device {
  const d: Device = { id: init.id, elements: init.elements ?? [], notes: init.notes ?? [] };
  setIf(d, 'deviceId', init.deviceId);
  setIf(d, 'timestamp', init.timestamp);
  const m = d as { -readonly [K in keyof Device]: Device[K] };
  setIf(m, 'classValue', rpidText(d.elements, 'class'));
  setIf(m, 'userInput', rpidText(d.elements, 'user-input'));
  setIf(d, 'raw', init.raw);
  return d;
}

/** Strips the derived fields (for building an init from an existing component). */
export function tupleInit(t: Tuple): TupleInit {
  const { classValue: _c, serviceDescription: _s, ...rest } = t;
  return rest;
}
export function personInit(p: Person): PersonInit {
  const { activities: _a, mood: _m, placeType: _pt, privacy: _pr, classValue: _c, userInput: _u, ...rest } = p;
  return rest;
}
export function deviceInit(d: Device): DeviceInit {
  const { classValue: _c, userInput: _u, ...rest } = d;
  return rest;
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
const QVALUE_RE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

function named(
  el: XmlElement,
  parentScope: NamespaceScope,
): { scope: NamespaceScope; ns: string | undefined; local: string } {
  const scope = parentScope.child(el);
  const n = scope.expand(el.name);
  return { scope, ns: n.ns, local: n.local };
}

function parseNote(el: XmlElement): Note {
  const n: Note = { text: textContent(el) };
  const lang = attr(el, 'xml:lang');
  if (lang !== undefined && collapse(lang) !== '') n.lang = collapse(lang);
  return n;
}

function validTimestamp(el: XmlElement): string | undefined {
  const v = collapse(textContent(el));
  return parseXsDateTime(v) ? v : undefined;
}

function requiredId(el: XmlElement, what: string): string {
  const id = collapse(attr(el, 'id') ?? '');
  if (id === '') throw new PidfError(`Invalid PIDF: ${what} without id`);
  return id;
}

function parseTuple(el: XmlElement, rootScope: NamespaceScope, id: string): Tuple {
  const scope = rootScope.child(el);
  let status: { el: XmlElement; scope: NamespaceScope } | undefined;
  let deviceId: string | undefined;
  let contact: Contact | undefined;
  let timestamp: string | undefined;
  let sawContact = false;
  const notes: Note[] = [];
  const elements: XmlElement[] = [];
  for (const c of childElements(el)) {
    const n = named(c, scope);
    if (n.ns === PIDF_NS) {
      switch (n.local) {
        case 'status':
          status ??= { el: c, scope: n.scope };
          break;
        case 'contact':
          if (!sawContact) {
            sawContact = true;
            const uri = collapse(textContent(c));
            if (uri !== '') {
              contact = { uri };
              const pr = attr(c, 'priority');
              if (pr !== undefined && QVALUE_RE.test(collapse(pr))) contact.priority = collapse(pr);
            }
          }
          break;
        case 'note':
          notes.push(parseNote(c));
          break;
        case 'timestamp':
          timestamp ??= validTimestamp(c);
          break;
        default:
          break; // not defined in a tuple: dropped
      }
    } else if (n.ns === DM_NS && n.local === 'deviceID') {
      if (deviceId === undefined) {
        const v = collapse(textContent(c));
        if (v !== '') deviceId = v;
      }
    } else {
      elements.push(detachElement(c, scope));
    }
  }
  if (!status) throw new PidfError(`Invalid PIDF: tuple ${q(id)} has no status`);
  let basic: 'open' | 'closed' | undefined;
  let sawBasic = false;
  const statusElements: XmlElement[] = [];
  for (const c of childElements(status.el)) {
    const n = named(c, status.scope);
    if (n.ns === PIDF_NS) {
      if (n.local !== 'basic' || sawBasic) continue;
      sawBasic = true;
      const v = collapse(textContent(c)).toLowerCase();
      if (v !== 'open' && v !== 'closed')
        throw new PidfError(`Invalid PIDF: tuple ${q(id)} has an invalid basic status`);
      basic = v;
    } else {
      statusElements.push(detachElement(c, status.scope));
    }
  }
  return makeTuple({
    id,
    basic,
    statusElements,
    deviceId,
    contact,
    notes,
    timestamp,
    elements,
    raw: detachElement(el, rootScope),
  });
}

function parseComponent(
  el: XmlElement,
  rootScope: NamespaceScope,
  id: string,
  kind: 'person' | 'device',
): Person | Device {
  const scope = rootScope.child(el);
  let deviceId: string | undefined;
  let timestamp: string | undefined;
  const notes: Note[] = [];
  const elements: XmlElement[] = [];
  for (const c of childElements(el)) {
    const n = named(c, scope);
    if (n.ns === DM_NS) {
      if (n.local === 'note') notes.push(parseNote(c));
      else if (n.local === 'timestamp') timestamp ??= validTimestamp(c);
      else if (n.local === 'deviceID' && kind === 'device' && deviceId === undefined) {
        const v = collapse(textContent(c));
        if (v !== '') deviceId = v;
      }
      // other data-model elements are not defined here: dropped
    } else {
      elements.push(detachElement(c, scope));
    }
  }
  const raw = detachElement(el, rootScope);
  return kind === 'person'
    ? makePerson({ id, elements, notes, timestamp, raw })
    : makeDevice({ id, deviceId, elements, notes, timestamp, raw });
}

/**
 * Parses a PIDF document (application/pidf+xml). Throws {@link PidfError}.
 * `limits` are passed to parseXml (default 1 MiB, depth 64).
 */
export function parsePidf(body: string | Buffer, limits?: XmlLimits): PresenceDoc {
  let root: XmlElement;
  try {
    root = parseXml(body, limits).root;
  } catch (e) {
    if (e instanceof XmlError) throw new PidfError(xmlReason(e), { detail: e.message, cause: e });
    throw e;
  }
  return pidfOfTree(root);
}

/**
 * The presence document of an XML tree already parsed (or built from a parsed one, as content
 * filters do), with parsePidf's checks. Throws {@link PidfError}. The tree is not changed.
 */
export function pidfOfTree(root: XmlElement): PresenceDoc {
  const rootScope = ROOT_SCOPE.child(root);
  const rn = rootScope.expand(root.name);
  if (rn.ns !== PIDF_NS || rn.local !== 'presence') {
    throw new PidfError('Invalid PIDF: root element is not presence of urn:ietf:params:xml:ns:pidf');
  }
  const entity = collapse(attr(root, 'entity') ?? '');
  if (entity === '') throw new PidfError('Invalid PIDF: presence without entity');
  if (!URI_RE.test(entity)) throw new PidfError('Invalid PIDF: presence entity is not a URI');

  const doc: PresenceDoc = { entity, tuples: [], persons: [], devices: [], notes: [], extensions: [] };
  const ids = new Set<string>();
  const claim = (el: XmlElement, what: string): string => {
    const id = requiredId(el, what);
    if (ids.has(id)) throw new PidfError(`Invalid PIDF: id ${q(id)} used twice`);
    ids.add(id);
    return id;
  };
  for (const c of childElements(root)) {
    const n = named(c, rootScope);
    if (n.ns === PIDF_NS) {
      if (n.local === 'tuple') doc.tuples.push(parseTuple(c, rootScope, claim(c, 'tuple')));
      else if (n.local === 'note') doc.notes.push(parseNote(c));
      // other PIDF elements are not defined at the presence level: dropped
    } else if (n.ns === DM_NS) {
      if (n.local === 'person') doc.persons.push(parseComponent(c, rootScope, claim(c, 'person'), 'person') as Person);
      else if (n.local === 'device')
        doc.devices.push(parseComponent(c, rootScope, claim(c, 'device'), 'device') as Device);
      // other data-model elements are not allowed at the presence level: dropped
    } else {
      doc.extensions.push(detachElement(c, rootScope));
    }
  }
  return doc;
}

// ---------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

const ILLEGAL_RE =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** In a tuple (and its status): PIDF elements (only the defined ones, written from the model) and dm:deviceID (the model field). */
const skipInTuple = (n: ExpandedName): boolean => n.ns === PIDF_NS || (n.ns === DM_NS && n.local === 'deviceID');
/** In dm:person / dm:device: data-model elements (the content model allows ##other only). */
const skipInComponent = (n: ExpandedName): boolean => n.ns === DM_NS;
/** At the presence level: PIDF and data-model elements (tuple, note, person, device come from the model). */
const skipAtTop = (n: ExpandedName): boolean => n.ns === PIDF_NS || n.ns === DM_NS;

class PidfWriter {
  readonly out: string[] = [];
  private readonly prefixes = new Map<string, string>();
  private readonly taken = new Set<string>(RESERVED_PREFIXES);
  private readonly decls: string[] = [];
  private counter = 0;

  /** The prefix for `ns` in the output, declared on the root at first use. */
  prefix(ns: string, preferred: string | undefined): string {
    const have = this.prefixes.get(ns);
    if (have !== undefined) return have;
    let p = CANONICAL_PREFIXES.get(ns);
    if (p === undefined) {
      if (preferred !== undefined && isNCName(preferred) && !this.taken.has(preferred) && !/^xml/i.test(preferred)) {
        p = preferred;
      } else {
        do p = `ns${++this.counter}`;
        while (this.taken.has(p));
      }
    }
    this.taken.add(p);
    this.prefixes.set(ns, p);
    this.decls.push(` xmlns:${p}="${escapeAttribute(ns)}"`);
    return p;
  }

  declarations(): string {
    return this.decls.join('');
  }

  dm(local: string): string {
    return `${this.prefix(DM_NS, 'dm')}:${local}`;
  }

  /** Writes a standalone extension element, renaming prefixes to the document's. */
  foreign(el: XmlElement, parentScope: NamespaceScope, defaultNs: string | undefined): void {
    const scope = parentScope.child(el);
    const colon = el.name.indexOf(':');
    const pfx = colon === -1 ? undefined : el.name.slice(0, colon);
    const local = colon === -1 ? el.name : el.name.slice(colon + 1);
    if (!isNCName(local) || (pfx !== undefined && !isNCName(pfx)))
      throw new TypeError(`cannot serialize element name ${JSON.stringify(el.name)}`);
    const ns = scope.resolve(pfx);
    if (pfx !== undefined && ns === undefined) throw new TypeError(`element ${el.name} uses an undeclared prefix`);
    let name: string;
    let inner = defaultNs;
    let undeclare = false;
    if (ns === defaultNs) name = local;
    else if (ns === undefined) {
      name = local;
      undeclare = true;
      inner = undefined;
    } else name = `${this.prefix(ns, pfx)}:${local}`;
    const out = this.out;
    out.push('<', name);
    if (undeclare) out.push(' xmlns=""');
    const attrs = el.attributes;
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
        const v = attrs[k];
        if (v === undefined) continue;
        const c = k.indexOf(':');
        let an = k;
        if (c !== -1) {
          const ap = k.slice(0, c);
          if (ap !== 'xml') {
            const ans = scope.resolve(ap);
            if (ans === undefined) throw new TypeError(`attribute ${k} uses an undeclared prefix`);
            an = ans === XML_NS ? `xml:${k.slice(c + 1)}` : `${this.prefix(ans, ap)}:${k.slice(c + 1)}`;
          }
        }
        out.push(' ', an, '="', escapeAttribute(String(v)), '"');
      }
    }
    const kids = el.elements;
    if (!kids || kids.length === 0) {
      out.push('/>');
      return;
    }
    out.push('>');
    for (const n of kids) this.node(n, scope, inner);
    out.push('</', name, '>');
  }

  private node(n: XmlNode, scope: NamespaceScope, defaultNs: string | undefined): void {
    switch (n.type) {
      case 'element':
        this.foreign(n, scope, defaultNs);
        break;
      case 'text':
        this.out.push(escapeText(String(n.text)));
        break;
      case 'cdata':
        this.out.push(
          '<![CDATA[',
          String(n.cdata).replace(ILLEGAL_RE, '\uFFFD').replace(/\]\]>/g, ']]]]><![CDATA[>'),
          ']]>',
        );
        break;
      case 'comment': {
        let c = String(n.comment).replace(ILLEGAL_RE, '\uFFFD').replace(/--/g, '- -');
        if (c.endsWith('-')) c += ' ';
        this.out.push('<!--', c, '-->');
        break;
      }
      case 'instruction': {
        if (!isNCName(n.name) || n.name.toLowerCase() === 'xml') break; // cannot be written: dropped
        const body = String(n.instruction).replace(ILLEGAL_RE, '\uFFFD').replace(/\?>/g, '? >');
        this.out.push('<?', n.name, body ? ' ' + body : '', '?>');
        break;
      }
    }
  }

  /** Extension elements, except those `skip` says the schema does not allow at that place. */
  extensions(list: readonly XmlElement[] | undefined, skip?: (n: ExpandedName) => boolean): void {
    if (!list) return;
    for (const e of list) {
      if (skip?.(elementName(e))) continue;
      this.foreign(e, ROOT_SCOPE, PIDF_NS);
    }
  }

  note(name: string, n: Note): void {
    this.out.push('<', name);
    if (n.lang !== undefined && n.lang !== '') this.out.push(' xml:lang="', escapeAttribute(n.lang), '"');
    this.out.push('>', escapeText(n.text), '</', name, '>');
  }

  simple(name: string, text: string): void {
    this.out.push('<', name, '>', escapeText(text), '</', name, '>');
  }

  timestamp(name: string, ts: string | undefined): void {
    if (ts !== undefined && parseXsDateTime(ts)) this.simple(name, collapse(ts));
  }

  tuple(t: Tuple): void {
    const out = this.out;
    out.push('<tuple id="', escapeAttribute(t.id), '">');
    const se = (t.statusElements ?? []).filter((e) => !skipInTuple(elementName(e)));
    if (t.basic === undefined && se.length === 0) out.push('<status/>');
    else {
      out.push('<status>');
      if (t.basic !== undefined) out.push('<basic>', t.basic, '</basic>');
      this.extensions(se);
      out.push('</status>');
    }
    if (t.deviceId !== undefined) this.simple(this.dm('deviceID'), t.deviceId);
    this.extensions(t.elements, skipInTuple);
    if (t.contact) {
      out.push('<contact');
      const p = t.contact.priority === undefined ? undefined : collapse(t.contact.priority);
      if (p !== undefined && QVALUE_RE.test(p)) out.push(' priority="', p, '"');
      out.push('>', escapeText(t.contact.uri), '</contact>');
    }
    for (const n of t.notes) this.note('note', n);
    this.timestamp('timestamp', t.timestamp);
    out.push('</tuple>');
  }

  person(p: Person): void {
    const tag = this.dm('person');
    this.out.push('<', tag, ' id="', escapeAttribute(p.id), '">');
    this.extensions(p.elements, skipInComponent);
    const noteTag = p.notes.length > 0 ? this.dm('note') : '';
    for (const n of p.notes) this.note(noteTag, n);
    if (p.timestamp !== undefined) this.timestamp(this.dm('timestamp'), p.timestamp);
    this.out.push('</', tag, '>');
  }

  device(d: Device): void {
    if (d.deviceId === undefined) return; // RFC 4479 requires dm:deviceID: cannot be written validly
    const tag = this.dm('device');
    this.out.push('<', tag, ' id="', escapeAttribute(d.id), '">');
    this.extensions(d.elements, skipInComponent);
    this.simple(this.dm('deviceID'), d.deviceId);
    const noteTag = d.notes.length > 0 ? this.dm('note') : '';
    for (const n of d.notes) this.note(noteTag, n);
    if (d.timestamp !== undefined) this.timestamp(this.dm('timestamp'), d.timestamp);
    this.out.push('</', tag, '>');
  }
}

/**
 * Serializes a presence document (application/pidf+xml, UTF-8): strict RFC 3863 / RFC 4479
 * order, every namespace declared once on the root, deterministic bytes (see the module comment).
 * Throws TypeError only for a hand-built extension element with an undeclared prefix or an
 * invalid name.
 */
export function serializePidf(doc: PresenceDoc): string {
  const w = new PidfWriter();
  for (const t of doc.tuples) w.tuple(t);
  for (const n of doc.notes) w.note('note', n);
  for (const p of doc.persons) w.person(p);
  for (const d of doc.devices) w.device(d);
  w.extensions(doc.extensions, skipAtTop);
  const body = w.out.join('');
  const head = `${XML_DECLARATION}<presence xmlns="${PIDF_NS}"${w.declarations()} entity="${escapeAttribute(doc.entity)}"`;
  return body === '' ? `${head}/>` : `${head}>${body}</presence>`;
}
