import { randomBytes } from 'node:crypto';
import type { Collection, Store } from '../store/port.js';
import { Deadlines } from '../util/deadlines.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import { contain, type FailureSink } from '../util/contain.js';

/** One source's publication for a presentity (RFC 3903 event state), as stored. */
export interface Publication {
  /** The current entity tag (SIP-ETag); changes on every successful PUBLISH. */
  _id: string;
  [key: string]: unknown;
  entity: string;
  event: string;
  /**
   * Which source this is: the first entity tag of its chain for SIP publishers, or a name
   * for the network ("network") and external agents ("ext:<name>"). Stable across refreshes.
   */
  sourceId: string;
  contentType: string;
  body: string;
  publishedAt: Date;
  /** Absent for sources that do not expire (the network's registration state). */
  expiresAt?: Date;
}

export type PublishOutcome = { ok: true; etag: string; expires: number } | { ok: false; code: 412 };

type Events = { changed: [{ entity: string; event: string }] };

const newEtag = () => randomBytes(9).toString('base64url');
/** Id prefix of named sources' records (an entity tag, base64url, never contains ':'). */
const AGENT_ID_PREFIX = 'src:';

/**
 * Event state compositors need: every live publication per presentity and source. RFC 3903
 * initial / refresh / modify / remove map to publish() with or without SIP-If-Match and
 * body. Expiry is armed in memory and re-armed from the store at start, and claimed by a
 * conditional delete so that several AS instances expire each publication once.
 */
export class Publications extends TypedEmitter<Events> {
  private readonly pubs: Collection<Publication>;
  private readonly expiries = new Deadlines();

  private stopped = false;

  /** `failures`: where a failed expiry is logged and counted (the expiry sweep job retries it). */
  constructor(
    store: Store,
    private readonly failures: FailureSink,
  ) {
    super();
    this.pubs = store.collection<Publication>('publications');
  }

  /** Publications in force now (SIP, network and external sources), across every instance on the store: the operator page and the metrics. */
  async liveCount(): Promise<number> {
    return this.pubs.count({ $or: [{ expiresAt: { $exists: false } }, { expiresAt: { $gt: new Date() } }] });
  }

  async start(): Promise<number> {
    await this.pubs.ensureIndex({ fields: { entity: 1, event: 1 } });
    await this.pubs.ensureIndex({ fields: { expiresAt: 1 }, sparse: true });
    const all = await this.pubs.find({ expiresAt: { $exists: true } });
    for (const p of all) this.arm(p);
    return all.length;
  }

  stop(): void {
    this.stopped = true;
    this.expiries.clearAll();
  }

  /** Live publications of a presentity for an event package. */
  async of(entity: string, event: string): Promise<Publication[]> {
    const now = Date.now();
    return (await this.pubs.find({ entity, event }, { sort: { publishedAt: 1 } })).filter(
      (p) => !p.expiresAt || p.expiresAt.getTime() > now,
    );
  }

  /**
   * A PUBLISH: `ifMatch` undefined is an initial publication (body required); with
   * `ifMatch`, a refresh (no body), a modification (body) or, with expires 0, a removal.
   */
  async publish(req: {
    entity: string;
    event: string;
    ifMatch?: string;
    body?: string;
    contentType?: string;
    expires: number;
  }): Promise<PublishOutcome> {
    const now = new Date();
    if (req.ifMatch === undefined) {
      const etag = newEtag();
      const pub: Publication = {
        _id: etag,
        entity: req.entity,
        event: req.event,
        sourceId: etag,
        contentType: req.contentType ?? '',
        body: req.body ?? '',
        publishedAt: now,
        expiresAt: new Date(now.getTime() + req.expires * 1000),
      };
      await this.pubs.insertOne(pub);
      this.arm(pub);
      this.changed(req.entity, req.event);
      return { ok: true, etag, expires: req.expires };
    }
    const current = await this.pubs.findOne({ _id: req.ifMatch, entity: req.entity, event: req.event });
    if (!current || (current.expiresAt && current.expiresAt.getTime() <= now.getTime()))
      return { ok: false, code: 412 };
    if (req.expires === 0) {
      if ((await this.pubs.deleteOne({ _id: current._id })) === 0) return { ok: false, code: 412 };
      this.disarm(current._id);
      this.changed(req.entity, req.event);
      return { ok: true, etag: current._id, expires: 0 };
    }
    // a new entity tag per successful PUBLISH (RFC 3903 6): replace the record under a new id
    const etag = newEtag();
    const next: Publication = {
      ...current,
      _id: etag,
      publishedAt: req.body !== undefined ? now : current.publishedAt,
      expiresAt: new Date(now.getTime() + req.expires * 1000),
      ...(req.body !== undefined ? { body: req.body, contentType: req.contentType ?? current.contentType } : {}),
    };
    if ((await this.pubs.deleteOne({ _id: current._id })) === 0) return { ok: false, code: 412 }; // lost a race
    await this.pubs.insertOne(next);
    this.disarm(current._id);
    this.arm(next);
    if (req.body !== undefined) this.changed(req.entity, req.event);
    return { ok: true, etag, expires: req.expires };
  }

  /**
   * Publication of a named source that does not go through SIP (the network's registration
   * state, an external agent): replaces that source's state; expires 0 removes it.
   */
  async setSource(
    entity: string,
    event: string,
    sourceId: string,
    body: string,
    contentType: string,
    expires?: number,
  ): Promise<void> {
    const id = `${AGENT_ID_PREFIX}${sourceId}:${entity}`;
    if (expires === 0) {
      if ((await this.pubs.deleteOne({ _id: id })) > 0) this.changed(entity, event);
      this.disarm(id);
      return;
    }
    const now = new Date();
    const pub: Publication = {
      _id: id,
      entity,
      event,
      sourceId,
      contentType,
      body,
      publishedAt: now,
      ...(expires ? { expiresAt: new Date(now.getTime() + expires * 1000) } : {}),
    };
    await this.pubs.replaceOne({ _id: id }, pub, { upsert: true });
    if (pub.expiresAt) this.arm(pub);
    this.changed(entity, event);
  }

  /**
   * Expires what is past its time, whoever armed it: the timers of an instance that died
   * went with it (a singleton job runs this; each publication is claimed once).
   */
  async sweepExpired(): Promise<number> {
    let n = 0;
    for (const p of await this.pubs.find({ expiresAt: { $lte: new Date() } }, { limit: 1000 })) {
      if (await this.expire(p)) n++;
    }
    return n;
  }

  /** Whether a publication is a named (agent) source set with setSource, not a SIP publisher's. */
  static isAgentSource(p: Publication): boolean {
    return p._id.startsWith(AGENT_ID_PREFIX);
  }

  private changed(entity: string, event: string): void {
    this.emit('changed', { entity, event });
  }

  private arm(p: Publication): void {
    if (p.expiresAt && !this.stopped) {
      this.expiries.set(p._id, p.expiresAt, () =>
        contain(this.failures, 'publication-expiry', () => this.expire(p), { entity: p.entity }),
      );
    }
  }

  private disarm(id: string): void {
    this.expiries.clear(id);
  }

  /** The publication ran out: it disappears and the presentity's watchers are told. */
  private async expire(p: Publication): Promise<boolean> {
    const removed = await this.pubs.deleteOne({ _id: p._id, expiresAt: { $lte: new Date() } });
    if (removed > 0) {
      this.disarm(p._id);
      this.changed(p.entity, p.event);
      return true;
    }
    // Not removed: refreshed meanwhile (under a new entity tag: gone from under this id), or
    // the timer fired a few ms before expiresAt by the wall clock (timers run on the event
    // loop's cached time). Then it is still here: arm again, or it would outlive its expiry
    // unnoticed, kept in the cached composed document and in every watcher's view (seen with
    // baresip, whose start-up PUBLISH it orphans expired like this now and then).
    const cur = await this.pubs.findOne({ _id: p._id });
    if (cur?.expiresAt) this.arm(cur);
    return false;
  }
}
