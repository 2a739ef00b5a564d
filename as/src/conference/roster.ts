/**
 * The conference roster: who is in each conference (RFC 4579 focus state) as store state, so
 * that every AS instance sharing the store sees the same roster. The focus (INVITE, BYE,
 * REFER) writes it; the `conference` event package reads it. Each write bumps the
 * conference's version, which numbers its conference-info documents, and publishes a
 * Change { kind: 'conference' } so that every instance notifies the subscriptions it holds.
 */
import type { Change } from '../cluster/changes.js';
import type { Collection, Store } from '../store/port.js';
import { DuplicateKeyError } from '../store/port.js';

export interface ConferenceParticipant {
  /** Canonical AOR of the participant (ours or another domain's). */
  uri: string;
  displayName?: string;
  /** Display nickname the participant chose, unique in the conference (OMA "URI or nickname"). */
  nickname?: string;
  /** Asked for privacy (Privacy: id): shown to the others as anonymous. */
  anonymous: boolean;
  /** RFC 4575 endpoint status. */
  status: 'pending' | 'dialing-out' | 'alerting' | 'connected' | 'on-hold' | 'disconnecting' | 'disconnected';
  /** RFC 4575 joining-method / disconnection-method. */
  joiningMethod?: 'dialed-in' | 'dialed-out' | 'focus-owner';
  disconnectionMethod?: 'departed' | 'booted' | 'failed' | 'busy';
  /** The endpoint entity: the participant's Contact URI (or GRUU) of its dialog with the focus. */
  endpoint?: string;
  /** Its dialog with the focus (Call-ID, its tag, the focus's tag). */
  dialog?: { callId: string; remoteTag: string; localTag: string };
  joinedAt?: Date;
  leftAt?: Date;
  /** Who brought it in (REFER's Referred-By), for joining-info. */
  invitedBy?: string;
  /** The AS instance (node id) that holds its MSRP leg: its messages come in and go out there. */
  instance?: string;
  /** Its leg's key at that instance (private messages name it). */
  leg?: string;
}

export interface Conference {
  /** The conference URI, canonical (a room's, a group's, or one the factory minted). */
  _id: string;
  kind: 'adhoc' | 'group' | 'room';
  owner?: string;
  subject?: string;
  maxParticipants?: number;
  /** The AS instance (node id) that holds the participants' MSRP legs and sends the focus's requests. */
  focusInstance: string;
  /** Bumped by every change: the conference-info version base. */
  version: number;
  createdAt: Date;
  endedAt?: Date;
  participants: ConferenceParticipant[];
}

/** Statuses of a participant with a session (an MSRP leg) at some instance: the conference goes on for them. */
const IN_SESSION = new Set<ConferenceParticipant['status']>(['connected', 'on-hold']);

type StoredConference = Conference & Record<string, unknown>;

/** What the roster needs of the change feed: the AS's publish. */
export interface ChangePublisher {
  publish(change: Change): Promise<void>;
}

/** Versioned writes that lost a race this many times in a row give up (never expected). */
const MAX_WRITE_ATTEMPTS = 50;

export class ConferenceRoster {
  private readonly conferences: Collection<StoredConference>;

  constructor(
    store: Store,
    private readonly changes: ChangePublisher,
  ) {
    this.conferences = store.collection<StoredConference>('conferences');
  }

  /**
   * Creates the conference (or returns the live one): idempotent on _id. An ended conference
   * of the same URI (a room or a group started again) starts afresh, with a version above
   * the old one so that a watcher never sees the numbers go back.
   */
  async open(c: Omit<Conference, 'version' | 'participants' | 'createdAt'>): Promise<Conference> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const existing = await this.conferences.findOne({ _id: c._id });
      if (existing && !existing.endedAt) return existing;
      const fresh: StoredConference = {
        ...withoutUndefined(c),
        version: (existing?.version ?? 0) + 1,
        createdAt: new Date(),
        participants: [],
      };
      delete fresh.endedAt;
      if (!existing) {
        try {
          await this.conferences.insertOne(fresh);
        } catch (err) {
          if (err instanceof DuplicateKeyError) continue; // another instance opened it first
          throw err;
        }
      } else {
        const r = await this.conferences.replaceOne({ _id: c._id, version: existing.version }, fresh);
        if (r.matched === 0) continue;
      }
      await this.changes.publish({ kind: 'conference', uri: c._id });
      return fresh;
    }
    throw new Error(`conference ${c._id}: too many concurrent writes`);
  }

  async get(uri: string): Promise<Conference | undefined> {
    return (await this.conferences.findOne({ _id: uri })) ?? undefined;
  }

  /** Adds or updates one participant by uri (atomic; version + 1; publishes the change). */
  async upsertParticipant(uri: string, p: ConferenceParticipant): Promise<Conference> {
    const updated = await this.rewrite(uri, (c) => {
      const participant = withoutUndefined(p);
      const at = c.participants.findIndex((x) => x.uri === p.uri);
      const participants = [...c.participants];
      if (at >= 0) participants[at] = participant;
      else participants.push(participant);
      return { participants };
    });
    if (!updated) throw new Error(`no conference ${uri}`);
    return updated;
  }

  /** Marks the conference ended (all participants disconnected; version + 1; publishes the change). */
  async end(uri: string): Promise<void> {
    const now = new Date();
    await this.rewrite(uri, (c) =>
      c.endedAt
        ? undefined
        : {
            endedAt: now,
            participants: c.participants.map((p) =>
              p.status === 'disconnected' ? p : { ...p, status: 'disconnected' as const, leftAt: p.leftAt ?? now },
            ),
          },
    );
  }

  /**
   * Ends the conference if nobody in it is connected any more, whichever instance held them:
   * the instance whose last participant leaves asks, and only the one whose write ends it
   * gets true (two instances emptying it at once end it once). A participant joining on
   * another instance meanwhile keeps it going.
   */
  async endIfEmpty(uri: string): Promise<boolean> {
    const now = new Date();
    let endedHere = false;
    await this.rewrite(uri, (c) => {
      endedHere = false;
      if (c.endedAt || c.participants.some((p) => IN_SESSION.has(p.status))) return undefined;
      endedHere = true;
      return {
        endedAt: now,
        participants: c.participants.map((p) =>
          p.status === 'disconnected' ? p : { ...p, status: 'disconnected' as const, leftAt: p.leftAt ?? now },
        ),
      };
    });
    return endedHere;
  }

  /**
   * A dead instance's participants: their MSRP legs died with it, so they have left
   * (`failed`), and a conference nobody is left in ends. Run by the instance that adopts the
   * dead one's work; returns the conferences it ended.
   */
  async instanceGone(instance: string): Promise<string[]> {
    const live = await this.conferences.find({ endedAt: { $exists: false } });
    const ended: string[] = [];
    for (const c of live) {
      if (!c.participants.some((p) => p.instance === instance && p.status !== 'disconnected')) continue;
      const now = new Date();
      const after = await this.rewrite(c._id, (current) => {
        if (current.endedAt) return undefined;
        const participants = current.participants.map((p) =>
          p.instance === instance && p.status !== 'disconnected'
            ? { ...p, status: 'disconnected' as const, disconnectionMethod: 'failed' as const, leftAt: now }
            : p,
        );
        if (participants.every((p, i) => p === current.participants[i])) return undefined;
        if (participants.some((p) => IN_SESSION.has(p.status))) return { participants };
        return {
          endedAt: now,
          participants: participants.map((p) =>
            p.status === 'disconnected' ? p : { ...p, status: 'disconnected' as const, leftAt: now },
          ),
        };
      });
      if (after?.endedAt && after.endedAt.getTime() === now.getTime()) ended.push(c._id);
    }
    return ended;
  }

  /**
   * Compare-and-set on the version: the change applies to the state it was computed from, or
   * is computed again from the newer one (two instances writing one roster never lose a
   * participant). `change` returning undefined: nothing to write.
   */
  /**
   * This instance's writes to one conference, one after the other: a hundred participants
   * leaving at once would otherwise all read the same version and retry against each other
   * (the benchmark's 100-participant room ran out of attempts on 39 of its BYEs). The version
   * check then only meets writes of other instances.
   */
  private readonly queues = new Map<string, Promise<unknown>>();

  private rewrite(
    uri: string,
    change: (c: Conference) => Partial<Conference> | undefined,
  ): Promise<Conference | undefined> {
    const run = (this.queues.get(uri) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.compareAndSet(uri, change));
    this.queues.set(uri, run);
    const forget = () => {
      if (this.queues.get(uri) === run) this.queues.delete(uri);
    };
    run.then(forget, forget);
    return run;
  }

  private async compareAndSet(
    uri: string,
    change: (c: Conference) => Partial<Conference> | undefined,
  ): Promise<Conference | undefined> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await this.conferences.findOne({ _id: uri });
      if (!current) return undefined;
      const fields = change(current);
      if (!fields) return current;
      const after = await this.conferences.findOneAndUpdate(
        { _id: uri, version: current.version },
        { $set: { ...fields, version: current.version + 1 } },
        { returnDocument: 'after' },
      );
      if (!after) continue;
      await this.changes.publish({ kind: 'conference', uri });
      return after;
    }
    throw new Error(`conference ${uri}: too many concurrent writes`);
  }
}

/** Stores keep no undefined: optional fields left unset are absent, not null. */
function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
