/**
 * Composition: the presentity's one presence document, built from every publication (one per
 * source: a phone, a desktop client, the network's registration state, an external agent) and
 * from the hard state the user set through XCAP (pidf-manipulation, RFC 4827).
 *
 * Pure: no I/O.
 *
 * The policy follows the RFC 4479 data model and the OMA Presence SIMPLE composition approach:
 *  - Services and devices are facts about different things, so nothing is merged: every
 *    tuple and every dm:device of every source is kept, in a deterministic order (the user
 *    agents' own publications first, then agent sources such as the network's registration
 *    state and external agents, each group by sourceId, each source in its document order; the
 *    hard state's after them). When the same id occurs
 *    in more than one source (tuple, person and device ids share one xs:ID space), each such
 *    occurrence is renamed `s<8 hex>-<id>`, the hex being a stable FNV-1a hash of the sourceId;
 *    ids that do not collide are kept as published (so occurrence-id rules keep working; the
 *    authorization also matches the id as published, see authorize.ts).
 *  - There is one person, so all dm:person elements are merged into one. For each kind of
 *    person element (its expanded name: rpid:activities, rpid:mood, rpid:place-type,
 *    rpid:privacy, rpid:status-icon, rpid:time-offset, rpid:user-input, cipid elements, unknown
 *    extension elements...; dm:note per xml:lang), the newest source wins and contributes all its
 *    elements of that kind. "Newest" is the person's own dm:timestamp when it has a valid one,
 *    else the publication time; a timestamp later than the publication is clamped to the
 *    publication time (a client with a fast clock cannot win forever). Ties go to the source
 *    whose sourceId sorts last. Elements the server does not understand are merged the same way
 *    and pass through unchanged.
 *  - Hard state (RFC 4827 section 3): its tuples and devices are included like a source's, and
 *    its person elements win over the soft state's for every kind both have. The merged person
 *    takes the hard state person's id when there is one, else the id of the newest person.
 *  - Presence-level notes (per xml:lang) and other presence-level extension elements (per
 *    expanded name) are merged like person elements.
 *  - The merged person's dm:timestamp is the newest timestamp among the persons that contributed
 *    an element. Kinds are written in a fixed order (RPID, CIPID, OMA, then every other namespace;
 *    by local name within each), notes by language, so that a source republishing the same
 *    content does not change the output bytes.
 *  - With nothing at all to compose, the result is the neutral offline document (see
 *    politeBlockDocument in authorize.ts): a presentity that publishes nothing and one that
 *    politely blocks a watcher look the same.
 */
import {
  CIPID_NS,
  type Device,
  DM_NS,
  type ExpandedName,
  type Note,
  OMA_PRES_NS,
  type Person,
  type PresenceDoc,
  RPID_NS,
  type Tuple,
  deviceInit,
  elementName,
  makeDevice,
  makePerson,
  makeTuple,
  stableHash,
  tupleInit,
} from './pidf.js';
import { politeBlockDocument } from './authorize.js';
import type { XmlElement } from '../../xml/xml-tree.js';
import { parseXsDateTime } from '../../xml/xsd-datatypes.js';

export interface PresenceSource {
  /** Identifies the publisher (e.g. the SIP-If-Match entity tag lineage or an agent name). */
  sourceId: string;
  doc: PresenceDoc;
  publishedAt: Date;
  /**
   * Not the presentity's own user agent (the network's registration state, an external
   * agent): composed after the publications. Simple clients show the first tuple's status
   * (baresip reads the first <basic>); ordering by sourceId alone put the network's tuple
   * first for about one random entity tag in five, hiding what the user published.
   */
  agent?: boolean;
}

/** The sourceId the hard state (pidf-manipulation) is composed under. */
export const HARD_STATE_SOURCE_ID = 'pidf-manipulation';

/** The id a colliding component of `sourceId` is renamed to. */
export function sourceScopedId(sourceId: string, id: string): string {
  return `s${stableHash(sourceId)}-${id}`;
}

interface Contributor {
  sourceId: string;
  doc: PresenceDoc;
  publishedAt: number;
  /** 1 for the hard state: it wins over every soft source. */
  layer: number;
  order: number;
}

interface Candidate {
  layer: number;
  time: number;
  order: number;
  sub: number;
}

function better(a: Candidate, b: Candidate): boolean {
  if (a.layer !== b.layer) return a.layer > b.layer;
  if (a.time !== b.time) return a.time > b.time;
  if (a.order !== b.order) return a.order > b.order;
  return a.sub > b.sub;
}

/** Rank of a namespace in the output order of merged kinds. */
function nsRank(ns: string | undefined): number {
  if (ns === RPID_NS) return 0;
  if (ns === CIPID_NS) return 1;
  if (ns === OMA_PRES_NS) return 2;
  return 3;
}

function compareNames(a: ExpandedName, b: ExpandedName): number {
  const r = nsRank(a.ns) - nsRank(b.ns);
  if (r !== 0) return r;
  if (a.local !== b.local) return a.local < b.local ? -1 : 1;
  const an = a.ns ?? '';
  const bn = b.ns ?? '';
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** Merges element lists by kind (expanded name): the best candidate per kind contributes all of its elements of that kind. */
class KindMerge<C extends Candidate> {
  private readonly kinds = new Map<string, { name: ExpandedName; best: C; elements: XmlElement[] }>();

  add(cand: C, elements: readonly XmlElement[]): void {
    const mine = new Map<string, { name: ExpandedName; elements: XmlElement[] }>();
    for (const e of elements) {
      const name = elementName(e);
      const key = `{${name.ns ?? ''}}${name.local}`;
      let g = mine.get(key);
      if (!g) mine.set(key, (g = { name, elements: [] }));
      g.elements.push(e);
    }
    for (const [key, g] of mine) {
      const cur = this.kinds.get(key);
      if (!cur || better(cand, cur.best)) this.kinds.set(key, { name: g.name, best: cand, elements: g.elements });
    }
  }

  result(): { elements: XmlElement[]; winners: C[] } {
    const groups = [...this.kinds.values()].sort((a, b) => compareNames(a.name, b.name));
    return { elements: groups.flatMap((g) => g.elements), winners: groups.map((g) => g.best) };
  }
}

/** Merges notes per xml:lang. */
class NoteMerge<C extends Candidate> {
  private readonly langs = new Map<string, { best: C; notes: Note[] }>();

  add(cand: C, notes: readonly Note[]): void {
    const mine = new Map<string, Note[]>();
    for (const n of notes) {
      const lang = (n.lang ?? '').toLowerCase();
      let l = mine.get(lang);
      if (!l) mine.set(lang, (l = []));
      l.push(n);
    }
    for (const [lang, list] of mine) {
      const cur = this.langs.get(lang);
      if (!cur || better(cand, cur.best)) this.langs.set(lang, { best: cand, notes: list });
    }
  }

  result(): { notes: Note[]; winners: C[] } {
    const langs = [...this.langs.keys()].sort();
    return {
      notes: langs.flatMap((l) => this.langs.get(l)?.notes ?? []),
      winners: langs.map((l) => this.langs.get(l)!.best),
    };
  }
}

interface PersonCandidate extends Candidate {
  person: Person;
  /** The person's valid dm:timestamp, ms. */
  stamp: number | undefined;
}

/**
 * Composes the presentity's document from its sources and its hard state (see the module
 * comment). Deterministic: the same inputs (in any order) give the same document.
 */
export function composePresence(
  entity: string,
  sources: ReadonlyArray<PresenceSource>,
  hard?: PresenceDoc,
): PresenceDoc {
  const soft = [...sources].sort(
    (a, b) =>
      Number(a.agent ?? false) - Number(b.agent ?? false) ||
      (a.sourceId < b.sourceId ? -1 : a.sourceId > b.sourceId ? 1 : a.publishedAt.getTime() - b.publishedAt.getTime()),
  );
  const contributors: Contributor[] = soft.map((s, i) => ({
    sourceId: s.sourceId,
    doc: s.doc,
    publishedAt: s.publishedAt.getTime(),
    layer: 0,
    order: i,
  }));
  if (hard)
    contributors.push({
      sourceId: HARD_STATE_SOURCE_ID,
      doc: hard,
      publishedAt: 0,
      layer: 1,
      order: contributors.length,
    });

  const anything = contributors.some(
    (c) =>
      c.doc.tuples.length + c.doc.persons.length + c.doc.devices.length + c.doc.notes.length + c.doc.extensions.length >
      0,
  );
  if (!anything) return politeBlockDocument(entity);

  // --- the merged person, presence notes and presence extensions
  const personElements = new KindMerge<PersonCandidate>();
  const personNotes = new NoteMerge<PersonCandidate>();
  const topExtensions = new KindMerge<Candidate>();
  const topNotes = new NoteMerge<Candidate>();
  let newestPerson: PersonCandidate | undefined;
  let hardPerson: PersonCandidate | undefined;
  for (const c of contributors) {
    c.doc.persons.forEach((p, sub) => {
      const stamp = p.timestamp === undefined ? undefined : parseXsDateTime(p.timestamp)?.getTime();
      const time = c.layer === 1 ? (stamp ?? 0) : Math.min(stamp ?? c.publishedAt, c.publishedAt);
      const cand: PersonCandidate = { layer: c.layer, time, order: c.order, sub, person: p, stamp };
      personElements.add(cand, p.elements);
      personNotes.add(cand, p.notes);
      if (c.layer === 1) hardPerson ??= cand;
      if (!newestPerson || better(cand, newestPerson)) newestPerson = cand;
    });
    const top: Candidate = { layer: c.layer, time: c.publishedAt, order: c.order, sub: 0 };
    topExtensions.add(
      top,
      c.doc.extensions.filter((e) => elementName(e).ns !== DM_NS),
    );
    topNotes.add(top, c.doc.notes);
  }

  let merged: { person: Person; owner: PersonCandidate } | undefined;
  if (newestPerson) {
    const owner = hardPerson ?? newestPerson;
    const els = personElements.result();
    const notes = personNotes.result();
    let stamp: PersonCandidate | undefined;
    for (const w of [...els.winners, ...notes.winners]) {
      if (w.stamp !== undefined && (!stamp || w.stamp > (stamp.stamp ?? -Infinity))) stamp = w;
    }
    const person = makePerson({
      id: owner.person.id,
      elements: els.elements,
      notes: notes.notes,
      timestamp: stamp?.person.timestamp,
    });
    merged = { person, owner };
  }

  // --- ids: rename those that occur in more than one contributor
  const owners = new Map<string, Set<number>>();
  const claim = (id: string, order: number): void => {
    let s = owners.get(id);
    if (!s) owners.set(id, (s = new Set()));
    s.add(order);
  };
  for (const c of contributors) {
    for (const t of c.doc.tuples) claim(t.id, c.order);
    for (const d of c.doc.devices) claim(d.id, c.order);
  }
  if (merged) claim(merged.person.id, merged.owner.order);
  const used = new Set<string>();
  const finalId = (id: string, c: { sourceId: string; order: number }): string => {
    let out = (owners.get(id)?.size ?? 0) > 1 ? sourceScopedId(c.sourceId, id) : id;
    if (used.has(out)) {
      // still taken (a source repeating an id, or a hash-prefixed id that exists): number it
      let n = 2;
      while (used.has(`${out}-${n}`)) n++;
      out = `${out}-${n}`;
    }
    used.add(out);
    return out;
  };

  const tuples: Tuple[] = [];
  const devices: Device[] = [];
  for (const c of contributors) {
    for (const t of c.doc.tuples) {
      const id = finalId(t.id, c);
      tuples.push(id === t.id ? t : makeTuple({ ...tupleInit(t), id }));
    }
  }
  let persons: Person[] = [];
  if (merged) {
    const owner = contributors[merged.owner.order]!;
    const id = finalId(merged.person.id, owner);
    persons = [id === merged.person.id ? merged.person : { ...merged.person, id }];
  }
  for (const c of contributors) {
    for (const d of c.doc.devices) {
      const id = finalId(d.id, c);
      devices.push(id === d.id ? d : makeDevice({ ...deviceInit(d), id }));
    }
  }

  return {
    entity,
    tuples,
    persons,
    devices,
    notes: topNotes.result().notes,
    extensions: topExtensions.result().elements,
  };
}
