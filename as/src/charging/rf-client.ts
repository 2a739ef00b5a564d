/**
 * Diameter Rf offline charging (TS 32.299): every CDR also goes to a CDF as an ACR.
 *
 * Nothing lost, nothing sent twice as new:
 * - The outbox (`rf_outbox` in the store) is one more CDR sink: a record is in it before
 *   `Charging.record()` resolves, and charging's recovery copies into it what a crash kept
 *   out (the sink reports its last sequence number like the files do).
 * - A sender claims a record with a lease (`leaseUntil`) and counts the attempt in the same
 *   atomic update, before anything goes on the wire. An attempt count above 1 means it may
 *   have reached the CDF already: that ACR carries the T flag. Several instances sharing the
 *   store drain one outbox; a record whose sender died is taken over when its lease ends.
 * - The record leaves the outbox only on an ACA with Result-Code 2001. Transport failures
 *   and transient results (3xxx, 4xxx) put it back; a permanent refusal (5xxx) moves it to
 *   `rf_refused` with the answer's code, for an operator to look at.
 * - The records of one subscription go in chain order: a partial record is claimed only when
 *   no earlier record of its chain is still waiting.
 * - Peers are tried in their configured order; on failure the next one is used, and the
 *   list is retried after `retryMs`.
 */

import { hostname } from 'node:os';
import type { Logger } from '../log/logger.js';
import { DuplicateKeyError, type Collection, type Doc, type Store } from '../store/port.js';
import type { CdrSink } from './cdr-sinks.js';
import type { Cdr } from './record.js';
import { DiameterPeer } from './diameter/peer.js';
import { RESULT_SUCCESS, readAvp } from './diameter/dictionary.js';
import { acrMessage, buildAcr, diameterSessionId, type RfIdentity } from './diameter/rf-acr.js';

export const RF_OUTBOX = 'rf_outbox';
export const RF_OUTBOX_MARKS = 'rf_outbox_marks';
export const RF_REFUSED = 'rf_refused';

export interface RfPeerAddress {
  host: string;
  port: number;
}

/** "host:port,host:port" -> addresses; throws a message naming the bad entry. */
export function parseRfPeers(list: string): RfPeerAddress[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((entry) => {
      const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(entry);
      const port = m ? Number(m[2]) : NaN;
      if (!m || port < 1 || port > 65535) throw new RangeError(`charging.rf.peers: "${entry}" is not host:port`);
      return { host: m[1]!, port };
    });
}

export interface OutboxDoc extends Doc {
  nodeId: string;
  seq: number;
  /** Diameter Session-Id, fixed at queueing (shared by a subscription's chain). */
  chain: string;
  /** recordSequenceNumber in the chain; 0 for a one-off record. */
  chainPosition: number;
  cdr: Cdr;
  attempts: number;
  leaseOwner: string;
  leaseUntil: Date;
  queuedAt: Date;
}

interface MarkDoc extends Doc {
  lastSeq: number;
}

export interface RfClientOptions extends RfIdentity {
  store: Store;
  nodeId: string;
  peers: readonly RfPeerAddress[];
  /** Host-IP-Address of our CER. */
  hostIpAddress: string;
  log: Logger;
  /** ACRs in flight at once. Default 32. */
  window?: number;
  /** A claimed record returns to the pool after this long without an answer. Default 30000 ms. */
  leaseMs?: number;
  /** Wait before trying the peer list again when none answered. Default 2000 ms. */
  retryMs?: number;
  watchdogMs?: number;
  answerTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** The last sequence number already charged elsewhere when the outbox is new (Rf turned on later). */
  initialLastSeq?: () => Promise<number>;
  now?: () => Date;
}

export interface RfStats {
  queued: number;
  sent: number;
  retransmitted: number;
  answered: number;
  refused: number;
  transportFailures: number;
  peer: string | null;
}

export class RfClient {
  private readonly outbox: Collection<OutboxDoc>;
  private readonly marks: Collection<MarkDoc>;
  private readonly refusedCol: Collection<Doc>;
  private readonly log: Logger;
  private readonly owner: string;
  private readonly now: () => Date;
  private peer: DiameterPeer | null = null;
  private peerIndex = 0;
  private running = false;
  private connecting: Promise<void> | null = null;
  private draining: Promise<void> | null = null;
  private drainAgain = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly inFlightChains = new Set<string>();
  readonly stats: RfStats = {
    queued: 0,
    sent: 0,
    retransmitted: 0,
    answered: 0,
    refused: 0,
    transportFailures: 0,
    peer: null,
  };

  constructor(private readonly opts: RfClientOptions) {
    if (opts.peers.length === 0) throw new TypeError('RfClient: at least one CDF peer is needed');
    this.outbox = opts.store.collection<OutboxDoc>(RF_OUTBOX);
    this.marks = opts.store.collection<MarkDoc>(RF_OUTBOX_MARKS);
    this.refusedCol = opts.store.collection<Doc>(RF_REFUSED);
    this.log = opts.log.child({ svc: 'rf' });
    this.owner = `${opts.nodeId}@${hostname()}:${process.pid}`;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * The outbox as a CDR sink for `CdrSinks`. Records are queued one after the other, and after
   * a failed one every later one fails too until the sink is opened again: the mark of the last
   * queued number never passes a record that is missing, so charging's catch-up re-queues it.
   */
  sink(): CdrSink {
    let tail: Promise<void> = Promise.resolve();
    let broken: unknown = null;
    return {
      name: 'rf-outbox',
      open: async () => {
        await tail.catch(() => undefined);
        broken = null;
        return { lastSeq: await this.openOutbox(), truncatedBytes: 0, removedFiles: [] };
      },
      append: (cdr) => {
        const next = tail.then(async () => {
          if (broken) throw broken;
          try {
            await this.enqueue(cdr);
          } catch (err) {
            broken = err;
            throw err;
          }
        });
        tail = next.catch(() => undefined);
        return next;
      },
      flush: async () => undefined,
      close: async () => undefined,
      stats: { bytesWritten: 0, writeCalls: 0, filesCreated: 0 },
      backlog: 0,
    };
  }

  async openOutbox(): Promise<number> {
    await this.outbox.ensureIndex({ fields: { leaseUntil: 1, queuedAt: 1 } });
    await this.outbox.ensureIndex({ fields: { chain: 1, chainPosition: 1 } });
    const mark = await this.marks.findOne({ _id: this.opts.nodeId });
    if (mark) return mark.lastSeq;
    const lastSeq = (await this.opts.initialLastSeq?.()) ?? 0;
    try {
      await this.marks.insertOne({ _id: this.opts.nodeId, lastSeq });
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
      return (await this.marks.findOne({ _id: this.opts.nodeId }))?.lastSeq ?? lastSeq;
    }
    return lastSeq;
  }

  /** Puts one CDR in the outbox (idempotent) and wakes the sender. */
  async enqueue(cdr: Cdr): Promise<void> {
    const doc: OutboxDoc = {
      _id: cdr.recordId,
      nodeId: cdr.nodeId,
      seq: cdr.localRecordSequenceNumber,
      chain: diameterSessionId(cdr, this.opts),
      chainPosition: cdr.recordSequenceNumber ?? 0,
      cdr,
      attempts: 0,
      leaseOwner: '',
      leaseUntil: new Date(0),
      queuedAt: this.now(),
    };
    try {
      await this.outbox.insertOne(doc);
      this.stats.queued++;
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err; // already queued by an earlier attempt
    }
    await this.marks.updateOne({ _id: this.opts.nodeId, lastSeq: { $lt: doc.seq } }, { $set: { lastSeq: doc.seq } });
    this.kick();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.connect();
    // records of other instances whose lease ran out, and ours put back after a failure
    this.pollTimer = setInterval(() => this.kick(), Math.min(this.opts.retryMs ?? 2000, 5000));
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pollTimer) clearInterval(this.pollTimer);
    await this.connecting?.catch(() => undefined);
    await this.draining?.catch(() => undefined);
    await Promise.allSettled([...this.inFlight]);
    await this.peer?.close();
    this.peer = null;
    this.stats.peer = null;
  }

  /** Records still waiting for an ACA (all instances). */
  pending(): Promise<number> {
    return this.outbox.count({});
  }

  private connect(): void {
    if (!this.running || this.connecting || this.peer?.isOpen) return;
    this.connecting = this.tryPeers().finally(() => (this.connecting = null));
  }

  private async tryPeers(): Promise<void> {
    const { peers } = this.opts;
    for (let i = 0; i < peers.length && this.running; i++) {
      const index = (this.peerIndex + i) % peers.length;
      const address = peers[index]!;
      const peer = new DiameterPeer({
        ...address,
        originHost: this.opts.originHost,
        originRealm: this.opts.originRealm,
        hostIpAddress: this.opts.hostIpAddress,
        ...(this.opts.watchdogMs !== undefined ? { watchdogMs: this.opts.watchdogMs } : {}),
        ...(this.opts.answerTimeoutMs !== undefined ? { answerTimeoutMs: this.opts.answerTimeoutMs } : {}),
        ...(this.opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: this.opts.connectTimeoutMs } : {}),
      });
      peer.on('down', (err: Error) => this.onPeerDown(peer, err));
      try {
        await peer.open();
      } catch (err) {
        this.log.warn({ peer: peer.name, err: (err as Error).message }, 'CDF peer unavailable');
        continue;
      }
      if (!this.running) {
        await peer.close();
        return;
      }
      this.peerIndex = index;
      this.peer = peer;
      this.stats.peer = peer.name;
      this.log.info({ peer: peer.name, remoteHost: peer.remoteHost }, 'CDF peer open');
      this.kick();
      return;
    }
    if (!this.running) return;
    this.retryTimer = setTimeout(() => this.connect(), this.opts.retryMs ?? 2000);
    this.retryTimer.unref();
  }

  private onPeerDown(peer: DiameterPeer, err: Error): void {
    if (this.peer !== peer) return;
    this.log.warn({ peer: peer.name, err: err.message }, 'CDF peer down: failing over');
    this.peer = null;
    this.stats.peer = null;
    this.peerIndex = (this.peerIndex + 1) % this.opts.peers.length;
    this.connect();
  }

  private kick(): void {
    if (!this.running || !this.peer?.isOpen) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = this.drain()
      .catch((err: unknown) => this.log.error({ err }, 'Rf outbox: draining failed'))
      .finally(() => {
        this.draining = null;
        if (this.drainAgain) {
          this.drainAgain = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    const window = this.opts.window ?? 32;
    for (;;) {
      const peer = this.peer;
      if (!this.running || !peer?.isOpen) return;
      const room = window - this.inFlight.size;
      if (room <= 0) {
        await Promise.race([...this.inFlight]);
        continue;
      }
      const candidates = await this.outbox.find(
        { leaseUntil: { $lt: this.now() } },
        { sort: { queuedAt: 1 }, limit: room * 2 },
      );
      let claimed = 0;
      for (const c of candidates) {
        if (claimed >= room) break;
        if (this.inFlightChains.has(c.chain)) continue;
        if (
          c.chainPosition > 1 &&
          (await this.outbox.count({ chain: c.chain, chainPosition: { $lt: c.chainPosition } })) > 0
        )
          continue;
        const now = this.now();
        const doc = await this.outbox.findOneAndUpdate(
          { _id: c._id, leaseUntil: { $lt: now } },
          {
            $set: { leaseOwner: this.owner, leaseUntil: new Date(now.getTime() + (this.opts.leaseMs ?? 30_000)) },
            $inc: { attempts: 1 },
          },
          { returnDocument: 'after' },
        );
        if (!doc) continue; // another instance took it
        claimed++;
        this.inFlightChains.add(doc.chain);
        const p = this.send(peer, doc)
          .catch((err: unknown) =>
            this.log.error(
              { err, recordId: doc._id },
              'Rf outbox: store update after an ACR failed; the lease will expire and the record go again',
            ),
          )
          .finally(() => {
            this.inFlight.delete(p);
            this.inFlightChains.delete(doc.chain);
          });
        this.inFlight.add(p);
      }
      if (claimed === 0) return;
    }
  }

  private async send(peer: DiameterPeer, doc: OutboxDoc): Promise<void> {
    const retransmit = doc.attempts > 1;
    const acr = buildAcr(doc.cdr, this.opts, doc.chain);
    this.stats.sent++;
    if (retransmit) this.stats.retransmitted++;
    let result: number | undefined;
    try {
      const aca = await peer.request(acrMessage(acr, retransmit));
      const code = readAvp(aca.avps, 'Result-Code');
      result = typeof code === 'number' ? code : undefined;
    } catch (err) {
      this.stats.transportFailures++;
      this.log.warn({ recordId: doc._id, err: (err as Error).message }, 'ACR not answered: kept for retransmission');
      await this.release(doc, 0);
      return;
    }
    if (result === RESULT_SUCCESS) {
      this.stats.answered++;
      await this.outbox.deleteOne({ _id: doc._id, leaseOwner: this.owner });
      this.kick(); // the next record of this chain may now go
      return;
    }
    if (result !== undefined && result >= 5000) {
      this.stats.refused++;
      this.log.error(
        { recordId: doc._id, resultCode: result, session: acr.sessionId },
        'CDF refused an ACR permanently: moved to rf_refused',
      );
      await this.refusedCol.insertOne({ ...doc, resultCode: result, refusedAt: this.now() }).catch((err: unknown) => {
        if (!(err instanceof DuplicateKeyError)) throw err;
      });
      await this.outbox.deleteOne({ _id: doc._id, leaseOwner: this.owner });
      return;
    }
    this.log.warn(
      { recordId: doc._id, resultCode: result },
      'CDF answered the ACR with a transient failure: retrying later',
    );
    await this.release(doc, this.opts.retryMs ?? 2000);
  }

  /** Gives the record back to the pool (for anyone) after `delayMs`. */
  private async release(doc: OutboxDoc, delayMs: number): Promise<void> {
    await this.outbox.updateOne(
      { _id: doc._id, leaseOwner: this.owner },
      { $set: { leaseOwner: '', leaseUntil: new Date(this.now().getTime() + delayMs) } },
    );
  }
}
