/**
 * The change feed in the store itself, on any engine of the store port (embedded, SQLite,
 * MongoDB on a single mongod: no change streams, no tailable cursors needed).
 *
 * Order: one atomic counter (findOneAndUpdate $inc) numbers every change; entries carry
 * their number and readers apply them strictly in number order. A writer takes its numbers,
 * then inserts, so a reader may see number n+1 before n: a gap. It waits up to `gapWaitMs`
 * for n (the writer is between its two steps), then skips it and resyncs its caches (the
 * writer died or its insert failed). Changes of one resource therefore reach every instance
 * in the order they were numbered, and a cursor that only moves forward applies each at most
 * once. Old entries leave through a TTL index on their write time.
 */
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Collection, Store } from '../store/port.js';
import type { Change } from './changes.js';
import { contain } from '../util/contain.js';
import { Listeners, type ChangeFeed, type ChangeListener } from './change-feed.js';

interface FeedEntry {
  _id: string;
  [key: string]: unknown;
  seq: number;
  /** The instance that made the change (it applied it at once and skips it when reading). */
  origin: string;
  /** The writer's clock when it took the number: trimming, and the delay readers measure. */
  at: Date;
  change: Change;
}

interface Counter {
  _id: string;
  [key: string]: unknown;
  seq: number;
}

export interface StoreChangeFeedOptions {
  store: Store;
  /** This instance's id (node.id): unique among the instances sharing the store. */
  instance: string;
  /** How often other instances' changes are read: the bound on their delay (plus a store read). */
  pollMs?: number;
  /** How long a missing number is waited for before it is skipped. */
  gapWaitMs?: number;
  /** How long entries stay in the store. */
  retentionSeconds?: number;
  log: Logger;
  metrics?: Metrics;
}

const COUNTER_ID = 'changes';
/** Entries read per query; a reader further behind reads again at once. */
const READ_BATCH = 500;

export class StoreChangeFeed implements ChangeFeed {
  private readonly entries: Collection<FeedEntry>;
  private readonly counters: Collection<Counter>;
  private readonly listeners = new Listeners();
  private readonly pollMs: number;
  private readonly gapWaitMs: number;
  private readonly retentionSeconds: number;
  /** Changes published in this turn of the event loop: numbered and written together. */
  private batch: Array<{ change: Change; done: (err?: unknown) => void }> = [];
  private writing: Promise<void> = Promise.resolve();
  /** Number of the last entry applied (or skipped). */
  private cursor = 0;
  /** The missing number being waited for, and since when. */
  private gap?: { seq: number; since: number };
  private timer?: NodeJS.Timeout;
  private reading?: Promise<void>;
  private stopped = true;

  constructor(private readonly opts: StoreChangeFeedOptions) {
    this.entries = opts.store.collection<FeedEntry>('change_feed');
    this.counters = opts.store.collection<Counter>('change_feed_counter');
    this.pollMs = opts.pollMs ?? 100;
    this.gapWaitMs = opts.gapWaitMs ?? 2000;
    this.retentionSeconds = opts.retentionSeconds ?? 600;
  }

  listen(listener: ChangeListener): void {
    this.listeners.add(listener);
  }

  async start(): Promise<void> {
    await this.entries.ensureIndex({ fields: { seq: 1 }, unique: true });
    await this.entries.ensureIndex({ fields: { at: 1 }, expireAfterSeconds: this.retentionSeconds });
    // a starting instance has nothing cached: it begins with the changes made from now on
    this.cursor = (await this.counters.findOne({ _id: COUNTER_ID }))?.seq ?? 0;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.reading;
    await this.writing;
  }

  async publish(change: Change): Promise<void> {
    const applied = this.listeners.change(change, 'local');
    const recorded = new Promise<void>((resolve, reject) => {
      if (this.batch.length === 0) setImmediate(() => this.flush());
      this.batch.push({ change, done: (err) => (err === undefined ? resolve() : reject(err)) });
    });
    await Promise.all([applied, recorded]);
  }

  /** Numbers and writes this turn's changes; batches are written one after the other, in order. */
  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    this.writing = this.writing.then(async () => {
      try {
        await this.write(batch.map((b) => b.change));
        for (const b of batch) b.done();
      } catch (err) {
        this.opts.metrics?.count('ims_as_change_feed_write_failures_total');
        for (const b of batch) b.done(err);
      }
    });
  }

  private async write(changes: Change[]): Promise<void> {
    let { first, at } = await this.take(changes.length);
    // numbers held longer than readers wait would be skipped by them: take fresh ones
    if (Date.now() - at.getTime() > this.gapWaitMs / 2) ({ first, at } = await this.take(changes.length));
    await this.entries.insertMany(
      changes.map((change, i) => ({ _id: `c${first + i}`, seq: first + i, origin: this.opts.instance, at, change })),
    );
  }

  private async take(n: number): Promise<{ first: number; at: Date }> {
    const at = new Date();
    const counter = await this.counters.findOneAndUpdate(
      { _id: COUNTER_ID },
      { $inc: { seq: n } },
      { upsert: true, returnDocument: 'after' },
    );
    return { first: counter!.seq - n + 1, at };
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.reading = this.read()
        .then((full) => this.schedule(full ? 0 : this.pollMs))
        .catch((err: unknown) => {
          this.opts.metrics?.count('ims_as_change_feed_read_failures_total');
          this.opts.log.error({ err }, 'change feed not read; trying again');
          this.schedule(this.pollMs * 10);
        });
    }, ms);
    this.timer.unref();
  }

  /** Applies what other instances wrote since the cursor; true when there may be more. */
  private async read(): Promise<boolean> {
    const found = await this.entries.find({ seq: { $gt: this.cursor } }, { sort: { seq: 1 }, limit: READ_BATCH });
    for (const e of found) {
      if (this.stopped) return false;
      if (e.seq !== this.cursor + 1 && !this.skipGap(e.seq)) return false;
      this.cursor = e.seq;
      this.gap = undefined;
      if (e.origin === this.opts.instance) continue; // applied when it was made
      this.opts.metrics?.observe('ims_as_change_feed_delay_seconds', Math.max(0, Date.now() - e.at.getTime()) / 1000);
      // (not awaited: the reactions keep each resource's order; the feed moves on)
      contain(this.opts, 'change-feed-listener', this.listeners.change(e.change, 'remote'));
    }
    return found.length === READ_BATCH;
  }

  /** Whether the numbers below `next` have been waited for long enough to skip them. */
  private skipGap(next: number): boolean {
    const missing = this.cursor + 1;
    if (this.gap?.seq !== missing) this.gap = { seq: missing, since: Date.now() };
    if (Date.now() - this.gap.since < this.gapWaitMs) return false;
    this.opts.metrics?.count('ims_as_change_feed_gaps_total', undefined, next - missing);
    this.opts.log.warn({ from: missing, to: next - 1 }, 'change feed entries missing: skipped, caches dropped');
    this.listeners.resync();
    return true;
  }
}
