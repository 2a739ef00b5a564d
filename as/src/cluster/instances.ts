/**
 * Which AS instances sharing the store are alive: each writes its own heartbeat; one whose
 * heartbeat has lapsed is dead, and what it held in memory (its subscription dialogs) is
 * adopted by a live one.
 */
import type { Collection, Store } from '../store/port.js';

interface Heartbeat {
  _id: string; // the instance id (node.id)
  [key: string]: unknown;
  until: Date;
  startedAt: Date;
}

export class InstanceHeartbeats {
  private readonly beats: Collection<Heartbeat>;
  private readonly startedAt = new Date();

  constructor(
    store: Store,
    readonly instance: string,
    private readonly ttlMs: number,
  ) {
    this.beats = store.collection<Heartbeat>('cluster_instances');
  }

  async beat(): Promise<void> {
    await this.beats.updateOne(
      { _id: this.instance },
      { $set: { until: new Date(Date.now() + this.ttlMs), startedAt: this.startedAt } },
      { upsert: true },
    );
  }

  /** Instances whose heartbeat lapsed (never this one). */
  async dead(): Promise<string[]> {
    return (await this.beats.find({ until: { $lt: new Date() } }))
      .map((b) => b._id)
      .filter((id) => id !== this.instance);
  }

  /** Every instance alive now, this one included (ops, tests). */
  async alive(): Promise<string[]> {
    return (await this.beats.find({ until: { $gte: new Date() } }, { sort: { _id: 1 } })).map((b) => b._id);
  }

  /** A dead instance whose leftovers are all adopted: no longer listed. */
  async forget(instance: string): Promise<void> {
    await this.beats.deleteOne({ _id: instance, until: { $lt: new Date() } });
  }

  /** Shutdown: marks this instance gone at once, so that its dialogs are adopted without waiting. */
  async leave(): Promise<void> {
    await this.beats.updateOne({ _id: this.instance }, { $set: { until: new Date(0) } });
  }
}
