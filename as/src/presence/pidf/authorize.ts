/**
 * Applying a watcher's permissions (the transformations of RFC 5025 section 3.3, as combined by
 * evaluatePresRules into a ProvideSet) to a composed presence document, and the neutral document
 * for polite-block.
 *
 * Pure: no I/O. The input document is not modified.
 *
 * Interpretation:
 *  - Components (RFC 5025 section 3.3.1): a tuple is shown when provide-services has
 *    all-services, or one of its selectors matches: service-uri = the tuple's <contact> URI
 *    (compared as addresses of record for sip/sips/tel, as text otherwise), service-uri-scheme =
 *    the scheme of that URI (case-insensitive), occurrence-id = the tuple's id (or the id it had in
 *    its publication, when composition renamed it), class = its rpid:class. Persons: all-persons,
 *    occurrence-id, class. Devices: all-devices, deviceID (the device's dm:deviceID, trimmed,
 *    case-insensitive), occurrence-id, class. Absent provide-* = nothing of that component.
 *  - Attributes (section 3.3.2) of the shown components: rpid:activities, class, mood, place-is,
 *    place-type, privacy, relationship, sphere, status-icon, time-offset are kept when their
 *    provide-* is true. rpid:user-input by level: false = removed, bare = only the value
 *    (idle-threshold and last-input removed), thresholds = value and idle-threshold (last-input
 *    removed), full = as published. provide-deviceID governs the dm:deviceID of tuples (a
 *    device's own dm:deviceID is mandatory in RFC 4479 and is what provide-devices selects on, so
 *    it stays). provide-note governs every note: presence-level <note>, tuple <note>, dm:note of
 *    persons and devices, and rpid:note inside the RPID elements that are kept.
 *  - Everything else (CIPID, caps, OMA elements, rpid:service-class, extension elements of
 *    <status>, presence-level extensions, any unknown element) is an "unknown attribute": kept
 *    only when a provide-unknown-attribute names its namespace and local name.
 *  - provide-all-attributes keeps every attribute of the shown components as published
 *    (user-input in full, notes included).
 *  - Always kept for a shown component: its id, a tuple's <status>/<basic> and <contact>, and
 *    the <timestamp>s. RFC 5025 defines no permission for them: <status> is mandatory in a PIDF
 *    tuple and selecting a service (by its URI, even) is what granting it means, so its status
 *    and contact are the service itself rather than attributes of it.
 *  - The result carries no `raw` elements (they would show what was withheld).
 */
import { collapse } from '../../xml/xsd-datatypes.js';
import { normalizeUri } from '../../xml/uri-check.js';
import type { DeviceSelection, PersonSelection, ProvideSet, ServiceSelection } from '../../xdm/usages/pres-rules.js';
import { type XmlElement, type XmlNode, NamespaceScope, attr, textContent } from '../../xml/xml-tree.js';
import {
  type Device,
  type Person,
  type PresenceDoc,
  RPID_NS,
  type Tuple,
  elementName,
  findElement,
  makeDevice,
  makePerson,
  makeTuple,
  stableHash,
} from './pidf.js';

type BooleanAttribute =
  | 'activities'
  | 'class'
  | 'mood'
  | 'placeIs'
  | 'placeType'
  | 'privacy'
  | 'relationship'
  | 'sphere'
  | 'statusIcon'
  | 'timeOffset';

/** RPID elements (local names) and the permission that governs them. */
const RPID_PERMISSIONS: ReadonlyMap<string, BooleanAttribute | 'userInput'> = new Map([
  ['activities', 'activities'],
  ['class', 'class'],
  ['mood', 'mood'],
  ['place-is', 'placeIs'],
  ['place-type', 'placeType'],
  ['privacy', 'privacy'],
  ['relationship', 'relationship'],
  ['sphere', 'sphere'],
  ['status-icon', 'statusIcon'],
  ['time-offset', 'timeOffset'],
  ['user-input', 'userInput'],
] as const);

function classOf(elements: readonly XmlElement[]): string | undefined {
  const e = findElement(elements, RPID_NS, 'class');
  return e ? collapse(textContent(e)) : undefined;
}

/** The id a component had in its publication (composition may have renamed it). */
function publishedId(c: { raw?: XmlElement }): string | undefined {
  const id = c.raw ? attr(c.raw, 'id') : undefined;
  return id === undefined ? undefined : collapse(id);
}

function occurrence(c: { id: string; raw?: XmlElement }, ids: readonly string[]): boolean {
  if (ids.length === 0) return false;
  if (ids.includes(c.id)) return true;
  const p = publishedId(c);
  return p !== undefined && ids.includes(p);
}

function inClass(elements: readonly XmlElement[], classes: readonly string[]): boolean {
  if (classes.length === 0) return false;
  const c = classOf(elements);
  return c !== undefined && classes.includes(c);
}

function schemeOf(uri: string): string | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  return m?.[1]?.toLowerCase();
}

function serviceShown(t: Tuple, sel: ServiceSelection): boolean {
  if (sel.all) return true;
  if (t.contact) {
    const uri = t.contact.uri;
    if (sel.serviceUris.length > 0) {
      const n = normalizeUri(uri);
      if (sel.serviceUris.some((u) => normalizeUri(u) === n)) return true;
    }
    const scheme = schemeOf(uri);
    if (scheme !== undefined && sel.serviceUriSchemes.some((s) => s.toLowerCase() === scheme)) return true;
  }
  return occurrence(t, sel.occurrenceIds) || inClass(t.elements, sel.classes);
}

function personShown(p: Person, sel: PersonSelection): boolean {
  return sel.all || occurrence(p, sel.occurrenceIds) || inClass(p.elements, sel.classes);
}

function deviceShown(d: Device, sel: DeviceSelection): boolean {
  if (sel.all) return true;
  if (d.deviceId !== undefined && sel.deviceIds.length > 0) {
    const id = d.deviceId.trim().toLowerCase();
    if (sel.deviceIds.some((x) => x.trim().toLowerCase() === id)) return true;
  }
  return occurrence(d, sel.occurrenceIds) || inClass(d.elements, sel.classes);
}

/** Copy of a standalone RPID element without some attributes and/or without its rpid:note children. */
function trimmed(el: XmlElement, dropAttrs: readonly string[], dropNotes: boolean): XmlElement {
  let attributes = el.attributes;
  if (attributes && dropAttrs.some((a) => Object.hasOwn(attributes!, a))) {
    const a: Record<string, string> = {};
    for (const k of Object.keys(attributes)) if (!dropAttrs.includes(k)) a[k] = attributes[k] as string;
    attributes = a;
  }
  let kids = el.elements;
  if (dropNotes && kids) {
    const scope = NamespaceScope.root().child(el);
    const keep: XmlNode[] = kids.filter((n) => {
      if (n.type !== 'element') return true;
      const x = scope.child(n).expand(n.name);
      return !(x.ns === RPID_NS && x.local === 'note');
    });
    if (keep.length !== kids.length) kids = keep;
  }
  if (attributes === el.attributes && kids === el.elements) return el;
  const out: XmlElement = { type: 'element', name: el.name };
  if (attributes && Object.keys(attributes).length > 0) out.attributes = attributes;
  if (kids && kids.length > 0) out.elements = kids;
  return out;
}

class AttributeFilter {
  constructor(private readonly p: ProvideSet) {}

  get all(): boolean {
    return this.p.allAttributes;
  }

  get notes(): boolean {
    return this.p.allAttributes || this.p.note;
  }

  elements(list: readonly XmlElement[] | undefined): XmlElement[] {
    if (!list) return [];
    if (this.p.allAttributes) return [...list];
    const out: XmlElement[] = [];
    for (const e of list) {
      const kept = this.element(e);
      if (kept) out.push(kept);
    }
    return out;
  }

  private element(e: XmlElement): XmlElement | undefined {
    const { ns, local } = elementName(e);
    const perm = ns === RPID_NS ? RPID_PERMISSIONS.get(local) : undefined;
    if (perm === undefined) {
      return ns !== undefined && this.p.unknownAttributes.some((u) => u.ns === ns && u.name === local) ? e : undefined;
    }
    const dropNotes = !this.p.note;
    if (perm === 'userInput') {
      switch (this.p.userInput) {
        case 'full':
          return trimmed(e, [], dropNotes);
        case 'thresholds':
          return trimmed(e, ['last-input'], dropNotes);
        case 'bare':
          return trimmed(e, ['last-input', 'idle-threshold'], dropNotes);
        default:
          return undefined;
      }
    }
    return this.p[perm] ? trimmed(e, [], dropNotes) : undefined;
  }
}

/**
 * What a watcher with the permissions `provide` may see of `doc` (see the module comment).
 * Returns a new document; `doc` is not modified.
 */
export function applyTransformations(doc: PresenceDoc, provide: ProvideSet): PresenceDoc {
  const f = new AttributeFilter(provide);
  const tuples = doc.tuples
    .filter((t) => serviceShown(t, provide.services))
    .map((t) =>
      makeTuple({
        id: t.id,
        basic: t.basic,
        statusElements: f.elements(t.statusElements),
        deviceId: f.all || provide.deviceID ? t.deviceId : undefined,
        contact: t.contact,
        notes: f.notes ? t.notes : [],
        timestamp: t.timestamp,
        elements: f.elements(t.elements),
      }),
    );
  const persons = doc.persons
    .filter((p) => personShown(p, provide.persons))
    .map((p) =>
      makePerson({ id: p.id, elements: f.elements(p.elements), notes: f.notes ? p.notes : [], timestamp: p.timestamp }),
    );
  const devices = doc.devices
    .filter((d) => deviceShown(d, provide.devices))
    .map((d) =>
      makeDevice({
        id: d.id,
        deviceId: d.deviceId,
        elements: f.elements(d.elements),
        notes: f.notes ? d.notes : [],
        timestamp: d.timestamp,
      }),
    );
  return {
    entity: doc.entity,
    tuples,
    persons,
    devices,
    notes: f.notes ? [...doc.notes] : [],
    extensions: f.elements(doc.extensions),
  };
}

/**
 * The neutral document: one tuple whose basic status is closed, nothing else.
 *
 * Used for polite-block (RFC 5025 section 3.2.1: the subscription is accepted and the watcher
 * is told the presentity is unavailable) and for pending subscriptions that are shown a state, and
 * by composePresence when the presentity has no state at all. It must be indistinguishable from
 * a real offline presentity, otherwise the watcher learns it is blocked: so it has no person, no
 * device, no contact, no note and no timestamp (a changing timestamp would tell it apart), and
 * its tuple id is a stable function of the entity only (the same for every watcher and every
 * time), which is also the id the composition uses when nothing is published.
 */
export function politeBlockDocument(entity: string): PresenceDoc {
  return {
    entity,
    tuples: [makeTuple({ id: `t${stableHash(entity)}`, basic: 'closed' })],
    persons: [],
    devices: [],
    notes: [],
    extensions: [],
  };
}
