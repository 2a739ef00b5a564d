/**
 * Presence-aware delivery: whether a user's presence holds the messages addressed to them
 * (the im-policy's <presence-aware-delivery hold-when="...">, schemas/im-policy.xsd).
 *
 * Pure: no I/O. The document is the presence the user's own clients published, composed
 * (as/src/presence/presence-state.ts ownPresence): the server's tuples for the user (the
 * registration state, which is open whenever a device is registered, and the IM activity)
 * would make every registered user look available.
 */
import type { Note, PresenceDoc } from '../presence/pidf/index.js';
import type { HoldCondition } from '../xdm/usages/im-policy.js';

/** RPID activities (RFC 4480) that mean the user does not want to be disturbed now. */
const BUSY_ACTIVITIES = new Set(['busy', 'on-the-phone']);
/** Notes that clients without RPID write for the same (compared trimmed and lowercased). */
const BUSY_NOTES = new Set(['busy', 'on the phone', 'on-the-phone', 'do not disturb', 'dnd']);

/** Closed: something says basic status, and nothing says open. A document without status says nothing. */
export function saysClosed(doc: PresenceDoc): boolean {
  const stated = doc.tuples.filter((t) => t.basic !== undefined);
  return stated.length > 0 && stated.every((t) => t.basic === 'closed');
}

/** Busy: an RPID activity busy / on-the-phone of the person, or a note that says so. */
export function saysBusy(doc: PresenceDoc): boolean {
  if (doc.persons.some((p) => p.activities?.some((a) => BUSY_ACTIVITIES.has(a)))) return true;
  const notes: Note[] = [...doc.notes, ...doc.tuples.flatMap((t) => t.notes), ...doc.persons.flatMap((p) => p.notes)];
  return notes.some((n) => BUSY_NOTES.has(n.text.trim().replace(/\s+/g, ' ').toLowerCase()));
}

/**
 * The first of `holdWhen` the presence says, which holds the user's messages; undefined when
 * none does (or the user published nothing: `doc` undefined).
 */
export function presenceHold(
  doc: PresenceDoc | undefined,
  holdWhen: readonly HoldCondition[],
): HoldCondition | undefined {
  if (!doc) return undefined;
  for (const condition of holdWhen) {
    if (condition === 'closed' ? saysClosed(doc) : saysBusy(doc)) return condition;
  }
  return undefined;
}
