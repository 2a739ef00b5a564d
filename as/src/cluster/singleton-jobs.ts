/**
 * Timer-driven jobs that exactly one of the instances sharing a store runs (sweeps, purges,
 * refreshes): each job has a lease in the store; every instance keeps trying to take or renew
 * it, and only its holder runs the job. An owner that dies stops renewing, and another
 * instance holds the job at most `ttlMs + renewMs` later. The same tick writes this
 * instance's heartbeat.
 */
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Store } from '../store/port.js';
import { contain } from '../util/contain.js';
import { InstanceHeartbeats } from './instances.js';
import { Lease } from './lease.js';

export interface SingletonJob {
  name: string;
  everyMs: number;
  run: () => Promise<unknown>;
  /** Also run as soon as this instance takes the job (catching up what a dead owner left). */
  runWhenTaken?: boolean;
}

/** Where a module hands its timer-driven jobs (SingletonJobs, shared by the instance). */
export interface JobScheduler {
  add(job: SingletonJob): void;
}

interface Slot {
  job: SingletonJob;
  /** Absent when the instance is alone (no store given): it always runs the job. */
  lease?: Lease;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
}

export interface SingletonJobsOptions {
  /** The shared store; without it this instance is alone and runs every job itself. */
  store?: Store;
  instance?: string;
  /** How long a lease (and a heartbeat) lasts without renewal. */
  ttlMs?: number;
  /** How often leases and the heartbeat are renewed (default: a third of ttlMs). */
  renewMs?: number;
  log: Logger;
  metrics?: Metrics;
}

export class SingletonJobs implements JobScheduler {
  readonly heartbeats?: InstanceHeartbeats;
  private readonly slots: Slot[] = [];
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private ticker?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = true;

  constructor(private readonly opts: SingletonJobsOptions) {
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.renewMs = opts.renewMs ?? Math.floor(this.ttlMs / 3);
    if (opts.store) this.heartbeats = new InstanceHeartbeats(opts.store, this.instance, this.ttlMs);
  }

  /** Jobs of an instance alone on its store (and of modules tested alone): no lease, no heartbeat. */
  static alone(log: Logger, metrics?: Metrics): SingletonJobs {
    const jobs = new SingletonJobs({ log, ...(metrics ? { metrics } : {}) });
    jobs.stopped = false;
    return jobs;
  }

  private get instance(): string {
    return this.opts.instance ?? 'alone';
  }

  /** Adds a job; once started, it is scheduled at once (and run when this instance may). */
  add(job: SingletonJob): this {
    const { store } = this.opts;
    const slot: Slot = {
      job,
      ...(store ? { lease: new Lease(store, `job:${job.name}`, this.instance, this.ttlMs) } : {}),
    };
    this.slots.push(slot);
    if (!this.stopped) this.arm(slot);
    return this;
  }

  /** The jobs this instance runs now. */
  heldJobs(): string[] {
    return this.slots.filter((s) => this.held(s)).map((s) => s.job.name);
  }

  /** Whether this instance runs the job now. */
  holds(name: string): boolean {
    return this.slots.some((s) => s.job.name === name && this.held(s));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    this.ticker = setInterval(() => {
      if (!this.ticking) this.ticking = this.tick().finally(() => (this.ticking = undefined));
    }, this.renewMs);
    this.ticker.unref();
    for (const slot of this.slots) this.arm(slot);
  }

  private arm(slot: Slot): void {
    slot.timer = setInterval(() => this.runIfHeld(slot), slot.job.everyMs);
    slot.timer.unref();
    if (!slot.lease && slot.job.runWhenTaken) this.runIfHeld(slot);
  }

  private held(slot: Slot): boolean {
    return slot.lease ? slot.lease.held : true;
  }

  /** Stops every job, waits for those running, and gives the leases up for the others. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.ticker);
    for (const s of this.slots) clearInterval(s.timer);
    await this.ticking;
    await Promise.all(this.slots.map((s) => s.running));
    const sink = { log: this.opts.log, metrics: this.opts.metrics };
    await Promise.all(
      this.slots.map((s) =>
        (s.lease?.held ? s.lease.release() : undefined)?.catch((err: unknown) =>
          sink.log.warn({ err, job: s.job.name }, 'lease not released; it lapses by itself'),
        ),
      ),
    );
    await this.heartbeats
      ?.leave()
      .catch((err: unknown) => sink.log.warn({ err }, 'heartbeat not withdrawn; it lapses by itself'));
  }

  /** Renews the heartbeat and every lease; runs a job at once when this instance just took it. */
  private async tick(): Promise<void> {
    const sink = { log: this.opts.log, metrics: this.opts.metrics };
    await this.heartbeats?.beat().catch((err: unknown) => sink.log.error({ err }, 'instance heartbeat not written'));
    for (const slot of this.slots) {
      if (this.stopped) return;
      if (!slot.lease) continue;
      const had = slot.lease.held;
      try {
        const has = await slot.lease.acquire();
        if (has !== had)
          this.opts.log.info(
            { job: slot.job.name, instance: this.instance },
            has ? 'job taken' : 'job held by another instance',
          );
        if (has && !had && slot.job.runWhenTaken) this.runIfHeld(slot);
      } catch (err) {
        this.opts.metrics?.count('ims_as_singleton_job_lease_failures_total', { job: slot.job.name });
        this.opts.log.error({ err, job: slot.job.name }, 'job lease not renewed');
      }
    }
  }

  private runIfHeld(slot: Slot): void {
    if (this.stopped || slot.running || !this.held(slot)) return;
    const sink = { log: this.opts.log, metrics: this.opts.metrics };
    const running = Promise.resolve().then(() => slot.job.run());
    contain(sink, `job:${slot.job.name}`, running);
    // (what stop() waits for: settles either way, the failure is contained above)
    slot.running = running
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => (slot.running = undefined));
  }
}
