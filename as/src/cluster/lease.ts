/**
 * Ownership of one named thing by one instance at a time, as a document in the store: the
 * holder writes `until` ahead of now and renews it; once `until` has passed, any instance may
 * take it. Taking and renewing are one findOneAndUpdate, which the store port makes atomic on
 * every engine, so two instances never both hold it (clocks of the machines sharing a store
 * must agree to well within the lease's length: NTP).
 */
import type { Collection, Store } from '../store/port.js';
import { DuplicateKeyError } from '../store/port.js';

interface LeaseDoc {
  _id: string;
  [key: string]: unknown;
  holder: string;
  until: Date;
}

export const LEASES_COLLECTION = 'cluster_leases';

export class Lease {
  private readonly leases: Collection<LeaseDoc>;
  private heldUntil = 0;

  constructor(
    store: Store,
    readonly name: string,
    readonly holder: string,
    readonly ttlMs: number,
  ) {
    this.leases = store.collection<LeaseDoc>(LEASES_COLLECTION);
  }

  /** Whether this instance holds it now (by its own clock, with what it last wrote). */
  get held(): boolean {
    return Date.now() < this.heldUntil;
  }

  /** Takes the lease or renews it; false while another instance holds it. */
  async acquire(): Promise<boolean> {
    const now = new Date();
    const until = new Date(now.getTime() + this.ttlMs);
    const mine = await this.leases.findOneAndUpdate(
      { _id: this.name, $or: [{ holder: this.holder }, { until: { $lte: now } }] },
      { $set: { holder: this.holder, until } },
      { returnDocument: 'after' },
    );
    if (!mine) {
      try {
        await this.leases.insertOne({ _id: this.name, holder: this.holder, until });
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err;
        this.heldUntil = 0;
        return false;
      }
    }
    // counted from before the write: never later than what the others read in the store
    this.heldUntil = until.getTime();
    return true;
  }

  /** Gives it up at once (shutdown), so that another instance need not wait for it to lapse. */
  async release(): Promise<void> {
    this.heldUntil = 0;
    await this.leases.deleteOne({ _id: this.name, holder: this.holder });
  }
}
