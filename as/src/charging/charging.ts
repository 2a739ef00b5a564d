import { SingletonJobs, type JobScheduler } from '../cluster/singleton-jobs.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import { DuplicateKeyError, type Collection, type Doc, type Filter, type Store } from '../store/port.js';
import { CdrFileWriter } from './cdr-file.js';
import { CdrSinks, type CdrSink } from './cdr-sinks.js';
import { Ts32297Writer } from './ts32297-writer.js';
import {
  buildCdr,
  normalizeCdr,
  salvageEvent,
  type Cdr,
  type ChargeableEvent,
  type InterOperatorIdentifiers,
} from './record.js';
import type { Metrics } from '../ops/metrics.js';
import { contain, type FailureSink } from '../util/contain.js';
import { RfClient, type RfClientOptions } from './rf-client.js';

/**
 * The charging service: every chargeable event of every service (presence, IM, XDMS) goes
 * through `Charging.record()`, which writes exactly one CDR to the store (collection `cdrs`,
 * a queryable window) and to the rotating CDR files (the permanent archive billing collects).
 *
 * Guarantees, and how:
 * - Sequence numbers (`localRecordSequenceNumber`) are assigned synchronously in call order,
 *   per node; `recordId = <nodeId>:<seq>` is the store `_id`, so a record is never stored twice.
 * - Store first, then file: every file line is also in the store. Lines reach the file in
 *   sequence order even though store inserts finish in any order: a record is handed to the
 *   file writer only after every lower-numbered record of this process was (or was given up).
 * - A crash never leaves a half record: the file writer cuts an incomplete last line at open,
 *   and `start()` re-appends every record of this node that is in the store above the last
 *   sequence number in the files, in order. The writer refuses any number not above the last
 *   one written, so recovery never writes a line twice.
 *
 * Decisions:
 * - Store failure -> a gap. The insert is tried `storeAttempts` times (default 3, backoff
 *   50 ms, 250 ms); a DuplicateKeyError on a retry whose stored document is ours counts as
 *   success (an earlier attempt landed). If all attempts fail, `record()` rejects, the record
 *   goes to neither store nor file, and its sequence number is NOT reused: billing sees a gap,
 *   logged at error level (`msg: 'CDR lost: store insert failed'`, with the seq and the event
 *   identifiers) and counted in `metrics().gaps`. Re-using the number would need holding every
 *   later record back; a logged gap is the honest signal. A crash between assigning numbers
 *   and storing them leaves gaps the same way.
 * - File failure (disk full ...) -> degraded mode. The records are in the store, so `record()`
 *   still succeeds; lines stop going to the files, and every `fileRetryMs` (default 10 s) the
 *   writer is re-opened (tail repaired) and the missing records are copied from the store in
 *   order, after which live writing resumes. `stop()` tries once more; `start()` always does.
 * - Retention: the store copy carries `storedAt` (Date) with a TTL index of
 *   `retentionDays * 86400` s (default 30 days; 0 disables expiry), and at most
 *   `maxStoredRecords` (default 1,000,000) stay, the oldest removed first, so the store's
 *   copy is bounded however busy the node is. Files are never deleted by this module.
 * - fsync: default false. A process crash loses nothing written (the page cache survives) and
 *   the store is the recovery source for the file tail. Set `fsync: true` to also survive an
 *   OS crash / power loss on the file side (fdatasync per batch, slower).
 */

export interface ChargingOptions {
  store: Store;
  nodeId: string;
  /** Address of this AS as written in `nodeAddress` (IP or FQDN). */
  nodeAddress: string;
  cdrDir: string;
  /** Default 16 MiB. */
  rotateBytes?: number;
  /** Default 3600 s. */
  rotateSeconds?: number;
  /** Store retention of CDRs in days; 0 disables the TTL. Default 30. */
  retentionDays?: number;
  /** Most CDRs kept in the store, the oldest (lowest sequence number) removed first; 0: no limit. Default 1,000,000. */
  maxStoredRecords?: number;
  /** fdatasync CDR files after each batch. Default false. */
  fsync?: boolean;
  /** Write the JSON Lines export (cdr-<node>-….jsonl). Default true. */
  jsonl?: boolean;
  /** TS 32.297 BER files (docs/charging.md section 4); false: none. Default on, with the writer's defaults. */
  berFiles?: false | { maxBytes?: number; maxSeconds?: number; maxRecords?: number };
  log: Logger;
  /** Where background failures (retention purge, file catch-up) are counted. */
  metrics?: Metrics;
  /** Store insert attempts before giving up (leaving a gap). Default 3. */
  storeAttempts?: number;
  /** Delay between attempts to resume writing files after a file error. Default 10000 ms. */
  fileRetryMs?: number;
  /** Clock, for tests. */
  now?: () => Date;
  /** ICID source when the request had no P-Charging-Vector. Default `<nodeId>-<uuid>`. */
  generateIcid?: () => string;
  /** interOperatorIdentifiers written when the P-Charging-Vector has none (charging.originatingIoi / terminatingIoi). */
  interOperatorIdentifiers?: InterOperatorIdentifiers;
  /**
   * Where the retention purge runs: the instance's singleton jobs (one instance of those
   * sharing the store purges). Default: this process alone. Catch-up of the files stays with
   * each instance: every node writes its own files from its own records.
   */
  jobs?: JobScheduler;
  /** Diameter Rf offline charging to these CDF peers (docs/charging.md section 5); absent: off. */
  rf?: Omit<RfClientOptions, 'store' | 'nodeId' | 'log' | 'initialLastSeq' | 'now'>;
}

/** A CDR as stored: the record plus `_id` (= recordId) and `storedAt` (TTL field). */
export type CdrDoc = Doc & { storedAt: Date };

export const CDR_COLLECTION = 'cdrs';
const PURGE_INTERVAL_MS = 3_600_000;
/** Records removed per transaction when the store holds more than its maximum. */
const PURGE_PAGE = 1000;

export interface CdrQuery {
  sessionId?: string;
  /** Matches callingPartyAddress or calledPartyAddress. */
  party?: string;
  imsChargingIdentifier?: string;
  nodeId?: string;
  service?: string;
  /** Inclusive lower bound on localRecordSequenceNumber. */
  fromSeq?: number;
  /** Inclusive upper bound on localRecordSequenceNumber. */
  toSeq?: number;
  limit?: number;
}

export interface ChargingStartReport {
  /** Highest sequence number of this node in the files after tail repair. */
  fileLastSeq: number;
  /** Highest sequence number of this node in the store. */
  storeLastSeq: number;
  /** The number the next record gets. */
  nextSeq: number;
  /** Bytes cut from the tail of the newest file (a crash mid-write). */
  truncatedBytes: number;
  /** Files removed because they held no complete record. */
  removedFiles: string[];
  /** Records copied from the store to the files (stored, not yet in a file at the crash). */
  reappended: number;
}

export interface ChargingMetrics {
  /** Records stored and handed to the files (record() resolved). */
  recordsWritten: number;
  /** Failed store insert attempts (each failed attempt counts; a retry finding its own earlier write does not). */
  storeFailures: number;
  /** Records given up after all store attempts: sequence gaps. */
  gaps: number;
  /** Events that failed validation and were recorded as incomplete records (a service bug). */
  invalidEvents: number;
  /** Times the file side failed and went degraded. */
  fileFailures: number;
  /** Lines copied from the store to the files by recovery / catch-up. */
  linesReappended: number;
  /** Bytes written to CDR files by this process. */
  fileBytes: number;
  filesCreated: number;
  /** write() calls on CDR files (one per batch of records handed over in the same tick). */
  fileWriteCalls: number;
  /** True while lines are not being written to the files (after a file error). */
  fileDegraded: boolean;
  nextSeq: number;
}

type SlotState = 'pending' | 'stored' | 'failed';

interface Slot {
  seq: number;
  cdr: Cdr;
  state: SlotState;
  /** Resolves (never rejects) when the record's line is written or the file side gave up on it. */
  fileDone: Promise<void>;
  settleFile: () => void;
}

const PAGE = 1000;

export class Charging {
  readonly nodeId: string;
  readonly nodeAddress: string;
  private readonly store: Store;
  private readonly cdrs: Collection<CdrDoc>;
  private readonly writer: CdrSinks;
  /** The Rf client when Rf charging is on. */
  readonly rf: RfClient | null = null;
  private readonly log: Logger;
  /** Where background work reports a failure. */
  private readonly failures: FailureSink;
  private readonly retentionDays: number;
  private readonly maxStoredRecords: number;
  private readonly storeAttempts: number;
  private readonly fileRetryMs: number;
  private readonly now: () => Date;
  private readonly generateIcid: () => string;
  private readonly defaultIoi: InterOperatorIdentifiers | undefined;

  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private nextSeq = 1;
  /** Next sequence number to hand to the file writer. */
  private nextFileSeq = 1;
  private readonly pending = new Map<number, Slot>();
  /** Store inserts waiting for this tick's insertMany. */
  private batch: Array<{ doc: CdrDoc; resolve: () => void; reject: (err: unknown) => void }> = [];
  private fileMode: 'live' | 'degraded' = 'live';
  private catchingUp: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private jobs?: JobScheduler;
  /** The purge's scheduler when no shared one was given (stopped with this). */
  private ownJobs?: SingletonJobs;
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  private readonly counters = {
    recordsWritten: 0,
    storeFailures: 0,
    gaps: 0,
    invalidEvents: 0,
    fileFailures: 0,
    linesReappended: 0,
  };

  constructor(opts: ChargingOptions) {
    if (!opts.nodeId) throw new TypeError('Charging: nodeId is required');
    if (!opts.nodeAddress) throw new TypeError('Charging: nodeAddress is required');
    if (!opts.cdrDir) throw new TypeError('Charging: cdrDir is required');
    this.store = opts.store;
    this.nodeId = opts.nodeId;
    this.nodeAddress = opts.nodeAddress;
    this.log = opts.log.child({ svc: 'charging' });
    this.failures = { log: this.log, ...(opts.metrics ? { metrics: opts.metrics } : {}) };
    this.retentionDays = opts.retentionDays ?? 30;
    this.jobs = opts.jobs;
    this.maxStoredRecords = opts.maxStoredRecords ?? 1_000_000;
    this.storeAttempts = Math.max(1, opts.storeAttempts ?? 3);
    this.fileRetryMs = opts.fileRetryMs ?? 10_000;
    this.now = opts.now ?? (() => new Date());
    const nodeId = this.nodeId;
    this.generateIcid = opts.generateIcid ?? (() => `${nodeId}-${randomUUID()}`);
    this.defaultIoi = opts.interOperatorIdentifiers;
    this.cdrs = this.store.collection<CdrDoc>(CDR_COLLECTION);
    const sinks: CdrSink[] = [];
    if (opts.berFiles !== false) {
      const ber = new Ts32297Writer({
        dir: opts.cdrDir,
        nodeId: this.nodeId,
        nodeAddress: this.nodeAddress,
        fsync: opts.fsync ?? false,
        log: this.log,
        now: this.now,
        ...(opts.berFiles ?? {}),
      });
      sinks.push(ber);
    }
    if (opts.jsonl !== false) {
      const jsonl = new CdrFileWriter({
        dir: opts.cdrDir,
        nodeId: this.nodeId,
        rotateBytes: opts.rotateBytes,
        rotateSeconds: opts.rotateSeconds,
        fsync: opts.fsync ?? false,
        log: this.log,
        now: this.now,
      });
      sinks.push(jsonl);
    }
    if (opts.rf) {
      this.rf = new RfClient({
        ...opts.rf,
        store: this.store,
        nodeId: this.nodeId,
        log: this.log,
        now: this.now,
        // turned on in an installation that already charged: only records from now on go to the CDF
        initialLastSeq: () => this.maxStoredSeq(),
      });
      sinks.push(this.rf.sink());
    }
    this.writer = new CdrSinks(sinks);
  }

  /**
   * Ensures the indexes, repairs the newest CDR file, finds the next sequence number and
   * copies to the files the records of this node that reached the store but not the files.
   */
  async start(): Promise<ChargingStartReport> {
    if (this.state !== 'new') throw new Error(`Charging.start(): already ${this.state}`);
    this.state = 'starting';
    try {
      await this.cdrs.ensureIndex({ fields: { localRecordSequenceNumber: 1 } });
      // a node's records in sequence order: its newest at start, its range when copying to files
      await this.cdrs.ensureIndex({ fields: { nodeId: 1, localRecordSequenceNumber: 1 } });
      await this.cdrs.ensureIndex({ fields: { sessionId: 1 } });
      if (this.retentionDays > 0) {
        await this.cdrs.ensureIndex({
          fields: { storedAt: 1 },
          expireAfterSeconds: Math.round(this.retentionDays * 86400),
        });
      }
      const repair = await this.writer.open();
      const storeLastSeq = await this.maxStoredSeq();
      this.nextSeq = Math.max(storeLastSeq, repair.lastSeq) + 1;
      this.nextFileSeq = this.nextSeq;
      const reappended = await this.copyStoreToFiles(repair.lastSeq, storeLastSeq);
      const report: ChargingStartReport = {
        fileLastSeq: repair.lastSeq,
        storeLastSeq,
        nextSeq: this.nextSeq,
        truncatedBytes: repair.truncatedBytes,
        removedFiles: repair.removedFiles,
        reappended,
      };
      if (report.truncatedBytes > 0 || report.removedFiles.length > 0 || reappended > 0) {
        this.log.warn(report, 'charging recovered after an unclean stop: CDR file repaired from the store');
      } else {
        this.log.info(report, 'charging started');
      }
      this.state = 'running';
      this.schedulePurge();
      this.rf?.start();
      return report;
    } catch (err) {
      this.state = 'new';
      await this.writer.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Writes the CDR of one chargeable event: assigns the next sequence number (synchronously,
   * in call order), stores the record, then appends its line to the current CDR file after
   * all lower-numbered records. Resolves with the record once it is in the store and its line
   * is written (or, with the file side degraded, once stored). Rejects with a TypeError for an
   * invalid event (no number consumed) or with the store error after all attempts (gap).
   */
  async record(event: ChargeableEvent): Promise<Cdr> {
    if (this.state !== 'running') throw new Error(`Charging.record(): service is ${this.state}`);
    const seq = this.nextSeq;
    const now = this.now();
    const ctx = {
      nodeId: this.nodeId,
      nodeAddress: this.nodeAddress,
      seq,
      now,
      generateIcid: this.generateIcid,
      ...(this.defaultIoi ? { defaultIoi: this.defaultIoi } : {}),
    };
    let cdr: Cdr;
    try {
      cdr = buildCdr(event, ctx);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      // what was chargeable is recorded all the same, marked incomplete, and the fault counted
      this.counters.invalidEvents++;
      this.log.error(
        { err: err.message, sessionId: (event as Partial<ChargeableEvent> | null)?.sessionId },
        'invalid chargeable event: writing an incomplete record',
      );
      cdr = buildCdr(salvageEvent(event, err.message, now), ctx);
    }
    this.nextSeq = seq + 1; // only once a record exists for it: a sequence gap means a lost record

    let settleFile!: () => void;
    const fileDone = new Promise<void>((resolve) => (settleFile = resolve));
    const slot: Slot = { seq, cdr, state: 'pending', fileDone, settleFile };
    this.pending.set(seq, slot);
    this.inFlight++;
    try {
      try {
        await this.insertWithRetry(cdr, now);
      } catch (err) {
        slot.state = 'failed';
        this.counters.gaps++;
        this.log.error(
          {
            err,
            seq,
            recordId: cdr.recordId,
            sessionId: cdr.sessionId,
            icid: cdr.imsChargingIdentifier,
            service: cdr.service,
          },
          'CDR lost: store insert failed; its sequence number is left as a gap',
        );
        this.drain();
        throw err;
      }
      slot.state = 'stored';
      this.drain();
      await slot.fileDone;
      this.counters.recordsWritten++;
      return cdr;
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.notifyIdle();
    }
  }

  /** Records matching the filter, sorted by sequence number (ops and tests). */
  async query(q: CdrQuery = {}): Promise<Cdr[]> {
    const filter: Filter = {};
    if (q.nodeId !== undefined) filter.nodeId = q.nodeId;
    if (q.sessionId !== undefined) filter.sessionId = q.sessionId;
    if (q.service !== undefined) filter.service = q.service;
    if (q.imsChargingIdentifier !== undefined) filter.imsChargingIdentifier = q.imsChargingIdentifier;
    if (q.party !== undefined) filter.$or = [{ callingPartyAddress: q.party }, { calledPartyAddress: q.party }];
    if (q.fromSeq !== undefined || q.toSeq !== undefined) {
      const range: Record<string, number> = {};
      if (q.fromSeq !== undefined) range.$gte = q.fromSeq;
      if (q.toSeq !== undefined) range.$lte = q.toSeq;
      filter.localRecordSequenceNumber = range;
    }
    const docs = await this.cdrs.find(filter, {
      sort: { localRecordSequenceNumber: 1 },
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
    });
    return docs.map((d) => normalizeCdr(d));
  }

  /** Waits for the records in flight, brings the files up to date if it can, closes them. */
  /**
   * Every hour, removes records past retention (MongoDB's TTL monitor and the embedded
   * store's sweep do it too; this also covers a TTL index an older version made with another
   * retention) and the oldest beyond the maximum count.
   */
  private schedulePurge(): void {
    if (this.retentionDays <= 0 && this.maxStoredRecords <= 0) return;
    const purge = async () => {
      try {
        const n = await this.purgeExpired();
        if (n > 0)
          this.log.info(
            { removed: n, retentionDays: this.retentionDays },
            'CDRs past store retention removed (files keep them)',
          );
        const over = await this.purgeBeyondMax();
        if (over > 0)
          this.log.info(
            { removed: over, maxStoredRecords: this.maxStoredRecords },
            'oldest CDRs beyond the store maximum removed (files keep them)',
          );
      } catch (err) {
        this.log.warn({ err }, 'CDR retention purge failed; will try again');
      }
    };
    if (!this.jobs) this.jobs = this.ownJobs = SingletonJobs.alone(this.log);
    this.jobs.add({ name: 'cdr-store-purge', everyMs: PURGE_INTERVAL_MS, run: purge, runWhenTaken: true });
  }

  /** Removes the store's records past retention now; returns how many. */
  async purgeExpired(): Promise<number> {
    if (this.retentionDays <= 0) return 0;
    const cutoff = new Date(this.now().getTime() - this.retentionDays * 86_400_000);
    return this.cdrs.deleteMany({ storedAt: { $lt: cutoff } });
  }

  /** Removes the oldest records beyond `maxStoredRecords`, a page at a time; returns how many. */
  async purgeBeyondMax(): Promise<number> {
    if (this.maxStoredRecords <= 0) return 0;
    let excess = (await this.cdrs.count({})) - this.maxStoredRecords;
    let removed = 0;
    while (excess > 0) {
      const oldest = await this.cdrs.find(
        {},
        { sort: { localRecordSequenceNumber: 1 }, limit: Math.min(excess, PURGE_PAGE) },
      );
      if (oldest.length === 0) break;
      const n = await this.cdrs.deleteMany({ _id: { $in: oldest.map((d) => d._id) } });
      removed += n;
      excess -= oldest.length;
    }
    return removed;
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'new') {
      this.state = 'stopped';
      return;
    }
    this.state = 'stopping';
    await this.ownJobs?.stop();
    await this.whenIdle();
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.catchingUp) await this.catchingUp;
    if (this.fileMode === 'degraded') await this.catchUp();
    if (this.fileMode === 'degraded') {
      this.log.warn('charging stopped with CDR files behind the store; the next start copies the missing records');
    }
    await this.writer.close();
    await this.rf?.stop();
    this.state = 'stopped';
    this.log.info({ ...this.metrics() }, 'charging stopped');
  }

  /** How far charging is behind: records being stored, and lines not yet in the files. */
  backlog(): { storing: number; fileLines: number } {
    return { storing: this.inFlight, fileLines: this.writer.backlog };
  }

  /** New CDR file rotation limits (a reload of charging.rotateBytes / charging.rotateSeconds). */
  setRotation(rotateBytes: number, rotateSeconds: number): void {
    this.writer.setRotation(rotateBytes, rotateSeconds);
  }

  metrics(): ChargingMetrics {
    const w = this.writer.stats;
    return {
      ...this.counters,
      fileBytes: w.bytesWritten,
      filesCreated: w.filesCreated,
      fileWriteCalls: w.writeCalls,
      fileDegraded: this.fileMode === 'degraded',
      nextSeq: this.nextSeq,
    };
  }

  // -------------------------------------------------------------------------------------------

  /**
   * First attempt goes through a batch: every record of this tick is inserted with one
   * insertMany (one transaction on the embedded store instead of one per record, which
   * is what lets charging keep up at thousands of records per second). A failed batch
   * sends each of its records down the single-insert path below, which sorts out
   * duplicates and retries.
   */
  private insertBatched(doc: CdrDoc): Promise<void> {
    return new Promise((resolve, reject) => {
      this.batch.push({ doc, resolve, reject });
      if (this.batch.length > 1) return;
      setImmediate(() => {
        const items = this.batch;
        this.batch = [];
        this.cdrs.insertMany(items.map((i) => i.doc)).then(
          () => items.forEach((i) => i.resolve()),
          (err: unknown) => items.forEach((i) => i.reject(err)),
        );
      });
    });
  }

  private async insertWithRetry(cdr: Cdr, now: Date): Promise<void> {
    const doc = { ...cdr, _id: cdr.recordId, storedAt: now } as unknown as CdrDoc;
    try {
      await this.insertBatched(doc);
      return;
    } catch {
      // fall through to one-by-one inserts: they tell a duplicate of ours from a real failure
    }
    let lastErr: unknown;
    for (let attempt = 1; attempt <= this.storeAttempts; attempt++) {
      try {
        await this.cdrs.insertOne(doc);
        return;
      } catch (err) {
        lastErr = err;
        if (err instanceof DuplicateKeyError || (err as { name?: string })?.name === 'DuplicateKeyError') {
          // Ours (an earlier attempt landed, its answer lost) or another record with our number?
          const existing = await this.cdrs.findOne({ _id: cdr.recordId }).catch(() => null);
          if (
            existing &&
            existing.sessionId === cdr.sessionId &&
            existing.imsChargingIdentifier === cdr.imsChargingIdentifier &&
            existing.recordClosureTime === cdr.recordClosureTime
          ) {
            return;
          }
          this.counters.storeFailures++;
          // A different record holds this number (two instances with one nodeId?): retrying cannot help.
          this.log.error(
            { recordId: cdr.recordId },
            'CDR sequence number already used in the store: is another instance running with the same nodeId?',
          );
          break;
        }
        this.counters.storeFailures++;
        if (attempt < this.storeAttempts) {
          this.log.warn({ err, recordId: cdr.recordId, attempt }, 'CDR store insert failed; retrying');
          await sleep(attempt === 1 ? 50 : 250);
        }
      }
    }
    throw lastErr;
  }

  /** Hands decided records to the file writer in sequence order. */
  private drain(): void {
    while (!this.catchingUp) {
      const slot = this.pending.get(this.nextFileSeq);
      if (!slot || slot.state === 'pending') return;
      this.pending.delete(this.nextFileSeq);
      this.nextFileSeq++;
      if (slot.state === 'failed') {
        slot.settleFile();
        continue;
      }
      if (this.fileMode === 'degraded') {
        slot.settleFile(); // in the store; catch-up copies it to the file later
        continue;
      }
      this.writer.append(slot.cdr).then(
        () => slot.settleFile(),
        (err: unknown) => {
          this.onFileFailure(err);
          slot.settleFile();
        },
      );
    }
  }

  private onFileFailure(err: unknown): void {
    if (this.fileMode === 'degraded') return;
    this.fileMode = 'degraded';
    this.counters.fileFailures++;
    this.log.error(
      { err, retryMs: this.fileRetryMs },
      'CDR file write failed: records go to the store only until the files catch up',
    );
    this.scheduleCatchUp();
  }

  private scheduleCatchUp(): void {
    if (this.retryTimer || this.state === 'stopping' || this.state === 'stopped') return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      contain(this.failures, 'cdr-file-catch-up', () => this.catchUp());
    }, this.fileRetryMs);
    this.retryTimer.unref();
  }

  /**
   * Re-opens the writer (repairing the tail), copies the stored records above the files' last
   * number up to the last record already handed on, and resumes live writing. Hand-off to the
   * writer is paused meanwhile so that the order holds.
   */
  private catchUp(): Promise<void> {
    if (this.catchingUp) return this.catchingUp;
    const run = (async () => {
      try {
        await this.writer.flush();
        const rep = await this.writer.open();
        const upTo = this.nextFileSeq - 1;
        const n = await this.copyStoreToFiles(rep.lastSeq, upTo);
        this.fileMode = 'live';
        this.log.warn(
          { reappended: n, truncatedBytes: rep.truncatedBytes, fromSeq: rep.lastSeq + 1, toSeq: upTo },
          'CDR files caught up with the store; writing resumed',
        );
      } catch (err) {
        this.log.error({ err }, 'CDR files still failing; will retry');
        this.scheduleCatchUp();
      }
    })();
    this.catchingUp = run.finally(() => {
      this.catchingUp = null;
      this.drain();
    });
    return this.catchingUp;
  }

  /** Appends this node's stored records with afterSeq < seq <= upToSeq to the files, in order. */
  private async copyStoreToFiles(afterSeq: number, upToSeq: number): Promise<number> {
    let from = afterSeq;
    let copied = 0;
    while (from < upToSeq) {
      const docs = await this.cdrs.find(
        { nodeId: this.nodeId, localRecordSequenceNumber: { $gt: from, $lte: upToSeq } },
        { sort: { localRecordSequenceNumber: 1 }, limit: PAGE },
      );
      if (docs.length === 0) break;
      await Promise.all(docs.map((d) => this.writer.append(normalizeCdr(d))));
      copied += docs.length;
      from = docs[docs.length - 1]!.localRecordSequenceNumber as number;
    }
    this.counters.linesReappended += copied;
    return copied;
  }

  private async maxStoredSeq(): Promise<number> {
    const [top] = await this.cdrs.find({ nodeId: this.nodeId }, { sort: { localRecordSequenceNumber: -1 }, limit: 1 });
    const seq = top?.localRecordSequenceNumber;
    return typeof seq === 'number' ? seq : 0;
  }

  private whenIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
