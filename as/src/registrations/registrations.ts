import type { Logger } from '../log/logger.js';
import type { RegistrationEvent, ContactExpiredEvent } from '../isc/types.js';
import type { Collection, Store } from '../store/port.js';
import { DuplicateKeyError } from '../store/port.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import { contactParamsOf, type ContactParams } from './capabilities.js';

export interface RegisteredContact {
  uri: string;
  /** Absolute expiry, seconds since the epoch (as usrloc keeps it). */
  expires: number;
  received?: string;
  /** The Contact parameters the device registered with (RFC 3840 feature tags, methods, reg-id ...). */
  params?: ContactParams;
}

interface RegistrationDoc {
  _id: string; // AoR, sip:user@domain
  [key: string]: unknown;
  contacts: RegisteredContact[];
  /** Kamailio's timestamp (seconds.µs) of the event this state comes from: older events lose. */
  ts: number;
  updatedAt: Date;
  /** When the last contact expires (seconds since the epoch; far ahead for a permanent one): counting without reading contacts. */
  liveUntil?: number;
}

/** A contact with expires 0 never expires (usrloc's permanent contacts). */
const PERMANENT = 4_102_444_800; // 2100-01-01

function liveUntil(contacts: RegisteredContact[]): number {
  return contacts.reduce((until, c) => Math.max(until, c.expires === 0 ? PERMANENT : c.expires), 0);
}

export type RegistrationChangeKind = 'registered' | 'refreshed' | 'deregistered' | 'expired';

export interface RegistrationChange {
  kind: RegistrationChangeKind;
  aor: string;
  contact: string;
  /** Contacts the AoR still has after this change. */
  remaining: number;
}

type Events = { change: [RegistrationChange] };

/**
 * The AS's mirror of Kamailio's registrations, fed by registration events. Kamailio sends
 * the AoR's whole contact set after each REGISTER; comparing it with the stored set tells
 * registered / refreshed / deregistered apart. State lives in the store, guarded by the
 * event timestamp, so events handled out of order or by two AS instances converge.
 */
export class Registrations extends TypedEmitter<Events> {
  private readonly regs: Collection<RegistrationDoc>;

  constructor(
    store: Store,
    private readonly log: Logger,
  ) {
    super();
    this.regs = store.collection<RegistrationDoc>('registrations');
  }

  async apply(ev: RegistrationEvent | ContactExpiredEvent): Promise<RegistrationChange[]> {
    const ts = Number(ev.ts) || Date.now() / 1000;
    if (ev.type === 'registration') {
      // the REGISTER's Contact says the parameters of the contacts it (re)registers; the other
      // contacts of the AoR keep those of their own last REGISTER
      const declared = contactParamsOf(ev.contactHeader ?? '', ev.allow);
      let contacts: RegisteredContact[] = [];
      const before = await this.replace(ev.aor, ts, (cur) => {
        const kept = new Map(cur.map((c) => [c.uri, c.params]));
        contacts = ev.contacts.map((c) => {
          const params = declared.get(c.uri) ?? kept.get(c.uri);
          return {
            uri: c.uri,
            expires: Number(c.expires),
            ...(c.received ? { received: c.received } : {}),
            ...(params ? { params } : {}),
          };
        });
        return contacts;
      });
      if (before === undefined) return [];
      const old = new Set(before.map((c) => c.uri));
      const now = new Set(contacts.map((c) => c.uri));
      const changes: RegistrationChange[] = [
        ...contacts.map((c): RegistrationChange => ({
          kind: old.has(c.uri) ? 'refreshed' : 'registered',
          aor: ev.aor,
          contact: c.uri,
          remaining: now.size,
        })),
        ...before
          .filter((c) => !now.has(c.uri))
          .map((c): RegistrationChange => ({ kind: 'deregistered', aor: ev.aor, contact: c.uri, remaining: now.size })),
      ];
      return this.publish(changes);
    }
    let remaining = 0;
    const before = await this.replace(ev.aor, ts, (cur) => {
      const left = cur.filter((c) => c.uri !== ev.uri);
      remaining = left.length;
      return left;
    });
    if (!before?.some((c) => c.uri === ev.uri)) return [];
    return this.publish([{ kind: 'expired', aor: ev.aor, contact: ev.uri, remaining }]);
  }

  /** Contacts of an AoR that have not expired yet. */
  async contacts(aor: string): Promise<RegisteredContact[]> {
    const doc = await this.regs.findOne({ _id: aor });
    const now = Date.now() / 1000;
    return (doc?.contacts ?? []).filter((c) => c.expires === 0 || c.expires > now);
  }

  /**
   * How many users have a contact that has not expired (the operator page): counted by the
   * store, no document read. (A registration last written by a version without liveUntil
   * counts from its next event.)
   */
  async registeredCount(): Promise<number> {
    return this.regs.count({ liveUntil: { $gt: Date.now() / 1000 } });
  }

  async isRegistered(aor: string): Promise<boolean> {
    return (await this.contacts(aor)).length > 0;
  }

  /**
   * Compare-and-set on the AoR's document: applies `next` to the stored contacts unless a
   * newer event got there first. Returns the contacts before, or undefined when stale.
   */
  private async replace(
    aor: string,
    ts: number,
    next: (cur: RegisteredContact[]) => RegisteredContact[],
  ): Promise<RegisteredContact[] | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const cur = await this.regs.findOne({ _id: aor });
      if (cur && cur.ts >= ts) {
        this.log.debug({ aor, ts, stored: cur.ts }, 'stale registration event ignored');
        return undefined;
      }
      const contacts = next(cur?.contacts ?? []);
      try {
        if (cur) {
          const r = await this.regs.updateOne(
            { _id: aor, ts: cur.ts },
            { $set: { contacts, ts, updatedAt: new Date(), liveUntil: liveUntil(contacts) } },
          );
          if (r.matched === 0) continue; // someone else wrote in between: read again
        } else {
          await this.regs.insertOne({ _id: aor, contacts, ts, updatedAt: new Date(), liveUntil: liveUntil(contacts) });
        }
        return cur?.contacts ?? [];
      } catch (err) {
        if (err instanceof DuplicateKeyError) continue;
        throw err;
      }
    }
    this.log.error({ aor }, 'registration state kept changing under us; event dropped');
    return undefined;
  }

  private publish(changes: RegistrationChange[]): RegistrationChange[] {
    for (const c of changes) {
      this.log.info(c, `registration ${c.kind}`);
      this.emit('change', c);
    }
    return changes;
  }
}
