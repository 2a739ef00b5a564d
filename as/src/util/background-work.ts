import { contain, type FailureSink } from './contain.js';

/**
 * Work acknowledged to someone and finished in the background (the charging of an outcome
 * Kamailio was told about, the copies of a group message answered 202): contained like any
 * reaction, and kept until done so that a shutdown can wait for it.
 */
export class BackgroundWork {
  private readonly running = new Set<Promise<unknown>>();

  constructor(private readonly sink: FailureSink) {}

  get size(): number {
    return this.running.size;
  }

  start(reaction: string, work: Promise<unknown>, context?: Record<string, unknown>): void {
    const tracked = work.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
    contain(this.sink, reaction, tracked, context);
  }

  /** Resolves when everything started, and everything it started meanwhile, is done. */
  async drain(): Promise<void> {
    // (failures were reported where the work started)
    while (this.running.size) await Promise.allSettled([...this.running]);
  }
}
