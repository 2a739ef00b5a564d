import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { DuplicateKeyError, type Collection, type Store } from '../store/port.js';
import { reply, type ReplyDecision } from '../isc/types.js';
import { counterId, minuteWindow, secondsLeft, type LimitedKind } from './minute-window.js';

interface CounterDoc {
  _id: string;
  /** Requests counted in the window so far, over every instance. */
  n: number;
  /** Start of the window: the TTL index removes the document two minutes later. */
  at: Date;
  [key: string]: unknown;
}

/** A request over its user's limit: answered with this instead of being served. */
export interface Refusal {
  kind: LimitedKind;
  limit: number;
  /** Seconds until the window ends and the user may send again. */
  retryAfter: number;
}

export const RATE_LIMITED = 'ims_as_user_rate_limited_total';

const NOUNS: Record<LimitedKind, string> = {
  message: 'MESSAGEs',
  subscribe: 'SUBSCRIBEs',
  group: 'group or list messages',
};

/**
 * Per-user limits per minute on MESSAGEs, SUBSCRIBEs and group explosions, shared by every
 * AS instance on the store: one counter document per kind, user and minute, raised with an
 * atomic upserting findOneAndUpdate ($inc), so instances count as one without talking to
 * each other. That costs one store round trip per counted request; once a counter is over
 * its limit this instance remembers it until the minute ends and refuses the user's next
 * requests with no round trip at all, so a flood costs the store nothing more. Fixed windows:
 * a user may send up to twice the limit across a minute boundary (docs/operations.md).
 */
export class UserRateLimits {
  private readonly counters: Collection<CounterDoc>;
  /** Counters over their limit in the current window, with the limit they were over. */
  private readonly over = new Map<string, number>();
  private overWindow = -1;

  constructor(
    private readonly deps: {
      store: Store;
      /** The limit per minute now (settings are reloadable); 0 or less: no limit. */
      limitOf: (kind: LimitedKind) => number;
      metrics: Metrics;
      log: Logger;
      now?: () => number;
    },
  ) {
    this.counters = deps.store.collection<CounterDoc>('rate_counters');
  }

  async start(): Promise<void> {
    await this.counters.ensureIndex({ fields: { at: 1 }, expireAfterSeconds: 120 });
  }

  /** Counts one request of `user`; a refusal when it goes over the limit of its kind. */
  async take(kind: LimitedKind, user: string): Promise<Refusal | undefined> {
    const limit = this.deps.limitOf(kind);
    if (!(limit > 0)) return undefined;
    const now = this.deps.now?.() ?? Date.now();
    const window = minuteWindow(now);
    if (window.index !== this.overWindow) {
      this.over.clear();
      this.overWindow = window.index;
    }
    const id = counterId(kind, user, window);
    // known to be over (and the limit not raised since): no round trip
    if (this.over.get(id) === limit) return this.refused(kind, limit, secondsLeft(window, now));
    const n = await this.count(id, window.startsAt);
    if (n <= limit) return undefined;
    this.over.set(id, limit);
    // the first request over the limit, on whichever instance took it: one line per user and minute
    if (n === limit + 1) {
      this.deps.log.warn(
        { user, kind, limit, retryAfter: secondsLeft(window, now) },
        'user over the per-minute limit: refused until the minute ends',
      );
    }
    return this.refused(kind, limit, secondsLeft(window, now));
  }

  /** Raises the counter, creating it for the window's first request; its new value. */
  private async count(id: string, startsAt: number): Promise<number> {
    const raise = () =>
      this.counters.findOneAndUpdate(
        { _id: id },
        { $inc: { n: 1 }, $setOnInsert: { at: new Date(startsAt) } },
        { upsert: true, returnDocument: 'after' },
      );
    let doc;
    try {
      doc = await raise();
    } catch (err) {
      // two instances created the window's document at once (MongoDB upserts can race): it exists now
      if (!(err instanceof DuplicateKeyError)) throw err;
      doc = await raise();
    }
    return doc?.n ?? 1;
  }

  private refused(kind: LimitedKind, limit: number, retryAfter: number): Refusal {
    this.deps.metrics.count(RATE_LIMITED, { kind });
    return { kind, limit, retryAfter };
  }
}

/**
 * The answer to a request over its user's limit: 403 with Retry-After and a Warning saying
 * the limit. Not 503: a proxy or client that gets 503 must stop sending anything to this
 * server for the Retry-After time (RFC 3261 21.5.4), every other user's requests included;
 * the limit is this user's alone, and so is the refusal.
 */
export function rateLimitedReply(refusal: Refusal, agent: string): ReplyDecision {
  return reply(403, 'Rate Limit Exceeded', {
    headers: [['Retry-After', String(refusal.retryAfter)]],
    warning: {
      agent,
      text: `at most ${refusal.limit} ${NOUNS[refusal.kind]} per minute; try again in ${refusal.retryAfter} s`,
    },
  });
}
