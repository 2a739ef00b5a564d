import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import {
  mergedRlsServices,
  parseAndCheck,
  type CheckOutcome,
  type NodeOp,
  type NodeOutcome,
  type ParseLimits,
} from './document-check.js';
import type { CheckJob } from './document-check-worker.js';
import type { NodeSelector } from './xcap-uri.js';
import type { ValidationContext } from './usages/usage.js';

/** A job without its id, as the caller gives it. */
type Job = CheckJob extends infer J ? (J extends CheckJob ? Omit<J, 'id'> : never) : never;

/**
 * Parses and checks whole documents for the XCAP server without stalling the event loop: a
 * 1 MiB document takes some 300 ms to parse and validate, time in which no SIP request would be
 * decided. Bodies from `inlineBelowBytes` on go to one worker thread (one is enough: it only
 * has to keep the main thread free; XCAP writes queue behind each other there); smaller ones are
 * checked inline, where a round trip would cost more than the work. Node operations on stored
 * documents of that size go to the worker too ({@link offloads} says which).
 */
export class DocumentChecker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (o: never) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly deps: { limits: ParseLimits; inlineBelowBytes: number; log: Logger; metrics: Metrics },
  ) {}

  /** Whether work on a document of `bytes` goes to the worker thread. */
  offloads(bytes: number): boolean {
    return bytes >= this.deps.inlineBelowBytes;
  }

  check(auid: string, body: Buffer, ctx: ValidationContext): Promise<CheckOutcome> {
    if (!this.offloads(body.length)) {
      try {
        return Promise.resolve(parseAndCheck(auid, body, this.deps.limits, ctx));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.run<CheckOutcome>({ kind: 'check', auid, body, limits: this.deps.limits, ctx });
  }

  /** A node operation on a stored document, in the worker (the caller does small ones itself). */
  node(auid: string, stored: string, sel: NodeSelector, op: NodeOp, ctx: ValidationContext): Promise<NodeOutcome> {
    return this.run<NodeOutcome>({ kind: 'node', auid, stored, sel, op, ctx });
  }

  /** The global rls-services index of these stored bodies, built in the worker when they are large together. */
  mergeRlsServices(bodies: string[]): Promise<string> {
    const bytes = bodies.reduce((n, b) => n + b.length, 0);
    if (!this.offloads(bytes)) {
      try {
        return Promise.resolve(mergedRlsServices(bodies));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return this.run<string>({ kind: 'merge-rls', auid: 'rls-services', ctx: { domain: '' }, bodies });
  }

  private run<T>(job: Job): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (o: never) => void, reject });
      this.started().postMessage({ ...job, id });
    });
  }

  /** Stops the worker; checks still waiting fail. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new Error('document checker closed'));
    await w?.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./document-check-worker.js', import.meta.url));
    // an idle worker must not keep the process alive
    w.unref();
    w.on('message', (m: { id: number; outcome?: never; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error === undefined) p.resolve(m.outcome as never);
      else p.reject(new Error(`document check failed: ${m.error}`));
    });
    w.on('error', (err) => {
      // the next check starts a new worker; these ones are answered 500 by the server
      this.deps.log.error({ error: err.message }, 'document checker worker failed');
      this.deps.metrics.count('ims_as_xcap_checker_failures_total');
      if (this.worker === w) this.worker = undefined;
      this.failAll(err);
    });
    w.on('exit', (code) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      this.failAll(new Error(`document checker worker exited (${code})`));
    });
    this.worker = w;
    return w;
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}
