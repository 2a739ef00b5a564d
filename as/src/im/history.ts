import type { Collection, Store } from '../store/port.js';

/** What is archived for one message. */
export interface HistoryInput {
  /** Whose history: sip:user@domain. */
  owner: string;
  direction: 'sent' | 'received';
  /** The other party as the owner knows it (anonymous when the sender hid). */
  peer: string;
  at: Date;
  contentType: string;
  body: string;
  callId: string;
  /** A message sent to another domain: the final status that domain (or the way there) gave. */
  status?: number;
}

export interface HistoryEntry extends HistoryInput {
  _id: string;
  [key: string]: unknown;
  /** Sort key: time of the message, then arrival. */
  seq: string;
  size: number;
}

interface HistoryMeta {
  _id: string; // owner
  [key: string]: unknown;
  /** Set when the user has been told the history is nearly full; cleared when it is not. */
  warnedAt?: Date;
}

let counter = 0;

/**
 * Conversation history of the users who enabled it (im-policy <history>): sent and received
 * messages with their times, listed, fetched and deleted by the user over HTTP. The newest
 * `limit` entries are kept (the im-policy schema says the oldest are dropped); the user is told
 * once, by a service MESSAGE, when the history crosses the warning level.
 */
export class ConversationHistory {
  private readonly entries: Collection<HistoryEntry>;
  private readonly meta: Collection<HistoryMeta>;

  constructor(
    store: Store,
    private readonly opts: {
      nodeId: string;
      /** The operator's ceiling on any user's own limit. */
      maxMessages: number;
      warnPercent: number;
      /** Tells the user (a service MESSAGE); must not wait for the delivery. */
      warn: (owner: string, text: string) => void;
    },
  ) {
    this.entries = store.collection<HistoryEntry>('im_history');
    this.meta = store.collection<HistoryMeta>('im_history_meta');
  }

  async start(): Promise<void> {
    await this.entries.ensureIndex({ fields: { owner: 1, seq: 1 } });
  }

  /** Archives one message; `userLimit` is the user's im-policy max-messages. */
  async archive(entry: HistoryInput, userLimit: number): Promise<void> {
    const limit = Math.min(userLimit, this.opts.maxMessages);
    const seqNo = (counter = (counter + 1) % 1_000_000);
    const seq = `${entry.at.getTime().toString().padStart(14, '0')}-${String(seqNo).padStart(6, '0')}-${this.opts.nodeId}`;
    await this.entries.insertOne({ ...entry, _id: seq, seq, size: Buffer.byteLength(entry.body, 'utf8') });
    let count = await this.entries.count({ owner: entry.owner });
    if (count > limit) {
      const oldest = await this.entries.find({ owner: entry.owner }, { sort: { seq: 1 }, limit: count - limit });
      for (const o of oldest) count -= await this.entries.deleteOne({ _id: o._id });
    }
    const level = Math.ceil((limit * this.opts.warnPercent) / 100);
    if (count >= level) {
      // one instance wins the flag, so the user is told once
      const before = await this.meta.findOneAndUpdate(
        { _id: entry.owner },
        { $set: { warnedAt: new Date() } },
        { upsert: true, returnDocument: 'before' },
      );
      if (!before?.warnedAt) {
        this.opts.warn(
          entry.owner,
          `Your message history holds ${count} of ${limit} messages. ` +
            'When it is full, the oldest messages are removed to make room. Delete messages you do not need to keep more.',
        );
      }
    }
  }

  async list(owner: string, opts: { limit: number; before?: string; peer?: string }): Promise<HistoryEntry[]> {
    const filter: Record<string, unknown> = { owner };
    if (opts.before) filter.seq = { $lt: opts.before };
    if (opts.peer) filter.peer = opts.peer;
    // newest first: the way a user reads a conversation back
    return this.entries.find(filter, { sort: { seq: -1 }, limit: opts.limit });
  }

  async get(owner: string, id: string): Promise<HistoryEntry | null> {
    return this.entries.findOne({ _id: id, owner });
  }

  async remove(owner: string, id: string, userLimit: number): Promise<boolean> {
    const gone = (await this.entries.deleteOne({ _id: id, owner })) === 1;
    if (gone) await this.rearm(owner, Math.min(userLimit, this.opts.maxMessages));
    return gone;
  }

  async clear(owner: string): Promise<number> {
    const n = await this.entries.deleteMany({ owner });
    await this.meta.deleteOne({ _id: owner });
    return n;
  }

  async count(owner: string): Promise<number> {
    return this.entries.count({ owner });
  }

  /** Below the warning level again: the next crossing tells the user again. */
  private async rearm(owner: string, limit: number): Promise<void> {
    if ((await this.count(owner)) < Math.ceil((limit * this.opts.warnPercent) / 100)) {
      await this.meta.updateOne({ _id: owner }, { $unset: { warnedAt: true } });
    }
  }
}
