/**
 * The size bound of a composed presence document (presence.maxComposedBytes). Publications
 * are each bounded, but a presentity with many sources composes into one document of their
 * sum: 116 KB was seen, more than a UDP datagram or a TCP read of the core can carry, and the
 * watcher then got nothing at all. Over the bound, the document is reduced in steps, each
 * only when the previous one was not enough, so the watcher always gets the most it can:
 *
 * 1. `notes`: every note and every extension is dropped (presence, tuple, person and device
 *    notes, RPID and other extension elements, status extensions, devices, top-level
 *    extensions); each tuple keeps its id, basic status, contact and timestamp, each person
 *    its id and timestamp;
 * 2. `tuples`: persons go, and tuples are kept in document order as long as they fit;
 * 3. `basic`: one tuple with the presentity's overall basic status (open when any tuple
 *    is open), like the document of a presentity that publishes nothing.
 *
 * Pure: no I/O.
 */
import { makePerson, makeTuple, serializePidf, stableHash, type PresenceDoc } from './pidf.js';

export type Reduction = 'notes' | 'tuples' | 'basic';

export interface BoundedPresence {
  body: string;
  /** The last reduction step applied; undefined when the document fit. */
  reduction?: Reduction;
}

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/** `doc` serialized within `maxBytes` (UTF-8), reduced as the module comment says. */
export function boundPresence(doc: PresenceDoc, maxBytes: number): BoundedPresence {
  const whole = serializePidf(doc);
  if (byteLength(whole) <= maxBytes) return { body: whole };

  const bare: PresenceDoc = {
    entity: doc.entity,
    tuples: doc.tuples.map((t) =>
      makeTuple({
        id: t.id,
        ...(t.basic ? { basic: t.basic } : {}),
        ...(t.contact ? { contact: t.contact } : {}),
        ...(t.timestamp ? { timestamp: t.timestamp } : {}),
      }),
    ),
    persons: doc.persons.map((p) => makePerson({ id: p.id, ...(p.timestamp ? { timestamp: p.timestamp } : {}) })),
    devices: [],
    notes: [],
    extensions: [],
  };
  const noted = serializePidf(bare);
  if (byteLength(noted) <= maxBytes) return { body: noted, reduction: 'notes' };

  // the tuples that fit, in order; a bare tuple adds its own bytes and nothing else (one
  // namespace), so each is measured once, and the result checked whole
  const empty = byteLength(serializePidf({ ...bare, persons: [], tuples: [] }));
  const kept: PresenceDoc = { ...bare, persons: [], tuples: [] };
  let size = empty;
  for (const t of bare.tuples) {
    size += byteLength(serializePidf({ ...bare, persons: [], tuples: [t] })) - empty;
    if (size > maxBytes) break;
    kept.tuples.push(t);
  }
  let body = serializePidf(kept);
  while (kept.tuples.length > 0 && byteLength(body) > maxBytes) {
    kept.tuples.pop();
    body = serializePidf(kept);
  }
  if (kept.tuples.length > 0) return { body, reduction: 'tuples' };

  const open = doc.tuples.some((t) => t.basic === 'open');
  const basic: PresenceDoc = {
    ...bare,
    persons: [],
    tuples: [makeTuple({ id: `t${stableHash(doc.entity)}`, basic: open ? 'open' : 'closed' })],
  };
  return { body: serializePidf(basic), reduction: 'basic' };
}
