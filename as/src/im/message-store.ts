import type { Collection, Store } from '../store/port.js';
import { DuplicateKeyError } from '../store/port.js';

/** What the recipient is asked to confirm about a message (RFC 5438, from its CPIM headers). */
export interface ImdnAsk {
  messageId: string;
  /** CPIM DateTime of the original message (echoed in the notification). */
  dateTime: string;
  positive: boolean;
  negative: boolean;
}

/** One instant message as the IM server hands it on: everything delivery and charging need. */
export interface ImMessage {
  /** Asserted identity of the sender (charging and notifications: never anonymised). */
  sender: string;
  /** From header value the recipient sees (anonymous when the sender asked for privacy). */
  fromHeader: string;
  /** Content-Type header value, parameters included. */
  contentType: string;
  body: string;
  /** When the server received it: the recipient is told this time. */
  sentAt: Date;
  /** Call-ID of the request the sender sent (charging correlation). */
  callId: string;
  chargingVector: string;
  privacy: boolean;
  /**
   * A delivery notification is never itself notified and is kept a shorter time; an
   * is-composing indication (RFC 3994) is delivered now or never: it is never stored.
   */
  kind: 'message' | 'notification' | 'composing';
  imdn?: ImdnAsk;
  /** The group or URI-list service that exploded this copy. */
  via?: string;
}

export interface StoredMessage extends ImMessage {
  _id: string;
  [key: string]: unknown;
  recipient: string;
  /** Sort key: delivery order is the order the server received the messages in. */
  seq: string;
  size: number;
  expiresAt: Date;
  /** pending: waiting for delivery; kept: delivered, kept by network storage for other devices. */
  state: 'pending' | 'kept';
  attempts: number;
  nextAttemptAt: Date;
}

/** How many messages a mailbox holds: the quota check without counting the mailbox. */
interface MailboxDoc {
  _id: string; // recipient
  [key: string]: unknown;
  count: number;
}

interface LeaseDoc {
  _id: string; // recipient
  [key: string]: unknown;
  owner: string;
  until: Date;
}

let counter = 0;

/**
 * The deferred-messaging store: messages waiting for their recipient, in the shared store so
 * that any AS instance can deliver them and none is lost when an instance stops. A per-recipient
 * lease keeps two instances from draining one mailbox at once.
 */
export class MessageStore {
  private readonly messages: Collection<StoredMessage>;
  private readonly leases: Collection<LeaseDoc>;
  private readonly mailboxes: Collection<MailboxDoc>;

  constructor(
    store: Store,
    private readonly nodeId: string,
  ) {
    this.messages = store.collection<StoredMessage>('im_deferred');
    this.leases = store.collection<LeaseDoc>('im_deferred_leases');
    this.mailboxes = store.collection<MailboxDoc>('im_mailboxes');
  }

  async start(): Promise<void> {
    await this.messages.ensureIndex({ fields: { recipient: 1, seq: 1 } });
    await this.messages.ensureIndex({ fields: { expiresAt: 1 } });
    await this.messages.ensureIndex({ fields: { nextAttemptAt: 1 } });
  }

  /** Stores a message for `recipient`; 'full' when the recipient already has `quota` messages. */
  async save(
    recipient: string,
    msg: ImMessage,
    opts: { expiresAt: Date; quota: number; state?: StoredMessage['state'] },
  ): Promise<StoredMessage | 'full'> {
    if (!(await this.reserve(recipient, opts.quota))) return 'full';
    const seqNo = (counter = (counter + 1) % 1_000_000);
    const id = `${msg.sentAt.getTime().toString().padStart(14, '0')}-${String(seqNo).padStart(6, '0')}-${this.nodeId}`;
    const doc: StoredMessage = {
      ...msg,
      _id: id,
      recipient,
      seq: id,
      size: Buffer.byteLength(msg.body, 'utf8'),
      expiresAt: opts.expiresAt,
      state: opts.state ?? 'pending',
      attempts: 0,
      nextAttemptAt: msg.sentAt,
    };
    try {
      await this.messages.insertOne(doc);
    } catch (err) {
      await this.mailboxes.updateOne({ _id: recipient }, { $inc: { count: -1 } });
      throw err;
    }
    return doc;
  }

  /**
   * Takes one place in the recipient's mailbox, atomically (two instances cannot both take the
   * last one). A counter that drifted above the truth (an instance stopped between counting and
   * storing) is corrected from the messages themselves before a sender is told it is full.
   */
  private async reserve(recipient: string, quota: number): Promise<boolean> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const r = await this.mailboxes.findOneAndUpdate(
          { _id: recipient, count: { $lt: quota } },
          { $inc: { count: 1 } },
          { upsert: true, returnDocument: 'after' },
        );
        if (r) return true;
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err; // the mailbox exists and is at the quota
      }
      const actual = await this.messages.count({ recipient });
      if (actual >= quota) return false;
      await this.mailboxes.updateOne({ _id: recipient }, { $set: { count: actual } });
    }
    return false;
  }

  /** The recipient's messages waiting for delivery, oldest first. */
  /** Messages waiting for their recipient, across every instance on the store (for the metrics). */
  async pendingCount(): Promise<number> {
    return this.messages.count({ state: 'pending' });
  }

  async pending(recipient: string, limit: number): Promise<StoredMessage[]> {
    return this.messages.find({ recipient, state: 'pending' }, { sort: { seq: 1 }, limit });
  }

  /** Everything stored for the recipient (the retrieval interface), oldest first. */
  async list(recipient: string, opts: { limit: number; after?: string }): Promise<StoredMessage[]> {
    const filter: Record<string, unknown> = { recipient };
    if (opts.after) filter.seq = { $gt: opts.after };
    return this.messages.find(filter, { sort: { seq: 1 }, limit: opts.limit });
  }

  async get(recipient: string, id: string): Promise<StoredMessage | null> {
    return this.messages.findOne({ _id: id, recipient });
  }

  /** Removes one of the recipient's messages; true for the one caller that removed it (delivery happens once). */
  async remove(id: string, recipient: string): Promise<boolean> {
    if ((await this.messages.deleteOne({ _id: id, recipient })) !== 1) return false;
    await this.mailboxes.updateOne({ _id: recipient }, { $inc: { count: -1 } });
    return true;
  }

  /** A delivered message kept for the user's other devices (network storage). */
  async keep(id: string): Promise<boolean> {
    return (await this.messages.updateOne({ _id: id, state: 'pending' }, { $set: { state: 'kept' } })).modified === 1;
  }

  async attemptFailed(id: string, nextAttemptAt: Date): Promise<void> {
    await this.messages.updateOne({ _id: id }, { $inc: { attempts: 1 }, $set: { nextAttemptAt } });
  }

  /** Pushes the next look at a recipient's mailbox back (nobody to deliver to until then). */
  async postpone(recipient: string, until: Date): Promise<void> {
    await this.messages.updateMany(
      { recipient, state: 'pending', nextAttemptAt: { $lt: until } },
      { $set: { nextAttemptAt: until } },
    );
  }

  async expired(now: Date, limit: number): Promise<StoredMessage[]> {
    return this.messages.find({ expiresAt: { $lte: now } }, { sort: { expiresAt: 1 }, limit });
  }

  /** Recipients with a pending message whose next attempt is due. */
  async dueRecipients(now: Date, limit: number): Promise<string[]> {
    const due = await this.messages.find(
      { state: 'pending', nextAttemptAt: { $lte: now } },
      { sort: { nextAttemptAt: 1 }, limit },
    );
    return [...new Set(due.map((m) => m.recipient))];
  }

  /** Messages waiting for delivery, all recipients. */
  async pendingTotal(): Promise<number> {
    return this.messages.count({ state: 'pending' });
  }

  async count(recipient: string): Promise<number> {
    return this.messages.count({ recipient });
  }

  /** Takes (or renews) the right to drain `recipient`'s mailbox until `until`; false when another instance holds it. */
  async lease(recipient: string, until: Date): Promise<boolean> {
    try {
      const r = await this.leases.findOneAndUpdate(
        { _id: recipient, $or: [{ owner: this.nodeId }, { until: { $lt: new Date() } }] },
        { $set: { owner: this.nodeId, until } },
        { upsert: true, returnDocument: 'after' },
      );
      return r?.owner === this.nodeId;
    } catch (err) {
      if (err instanceof DuplicateKeyError) return false; // held by another instance
      throw err;
    }
  }

  async release(recipient: string): Promise<void> {
    await this.leases.deleteOne({ _id: recipient, owner: this.nodeId });
  }
}
