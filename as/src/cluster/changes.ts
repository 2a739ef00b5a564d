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
  | { kind: 'conference'; uri: string }
  /**
   * A message said in a conference, for the participants whose MSRP legs other instances hold
   * (as/src/conference/relay.ts): the CPIM every recipient gets, bounded by the conference's
   * largest message.
   */
  | {
      kind: 'conference-message';
      uri: string;
      /** The instance that took the SEND (it delivered to its own legs at once). */
      origin: string;
      /** The sender's leg key (never a recipient). */
      sender: string;
      /** When the focus took it: a leg opened after it does not get it (replay has it). */
      at: string;
      /** Private: the legs it goes to; absent: every leg of the conference. */
      to?: string[];
      body: string;
      isComposing: boolean;
    };

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
    // a chain of its own: messages keep their order without waiting behind roster NOTIFYs
    case 'conference-message':
      return `conference-message:${c.uri}`;
  }
}
