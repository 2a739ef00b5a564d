/**
 * What other parts of the AS react to, as it travels between instances: pure data, no I/O.
 * A change names its resource; reactions to one resource run in the order of its changes.
 */
import type { RegistrationChange } from '../registrations/registrations.js';
import { documentKey, type DocumentRef } from '../xdm/document-store.js';

export type Change =
  /** An XCAP document was created, replaced or deleted (etag absent: deleted). */
  | { kind: 'document'; ref: DocumentRef; previousEtag?: string; etag?: string }
  /** A presentity's publications for an event package changed. */
  | { kind: 'publication'; entity: string; event: string }
  /** A contact of an address of record came, was refreshed or went. */
  | { kind: 'registration'; change: RegistrationChange }
  /** A provisioned user was added, changed or removed. */
  | { kind: 'user'; user: string }
  /** What lists show of a member in another domain changed (its back-end subscription). */
  | { kind: 'remote-member'; member: string }
  /** A subscription to a resource began, changed state or ended: news for its watcher info. */
  | { kind: 'watchers'; event: string; resource: string }
  /** A conference's roster changed (a participant came, changed state or went; it ended). */
  | { kind: 'conference'; uri: string };

/** The key changes are ordered by: reactions to one resource never overtake each other. */
export function resourceOf(c: Change): string {
  switch (c.kind) {
    case 'document':
      return `document:${documentKey(c.ref)}`;
    case 'publication':
      return `publication:${c.event}:${c.entity}`;
    case 'registration':
      return `registration:${c.change.aor}`;
    case 'user':
      return `user:${c.user}`;
    case 'remote-member':
      return `remote-member:${c.member}`;
    case 'watchers':
      return `watchers:${c.event}:${c.resource}`;
    case 'conference':
      return `conference:${c.uri}`;
  }
}
