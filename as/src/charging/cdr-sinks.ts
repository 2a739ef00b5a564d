/**
 * The CDR files a node writes, seen as one: the TS 32.297 BER files and, as an optional
 * export, the JSON Lines files. Each sink keeps its own last sequence number; the set reports
 * the lowest, so recovery copies from the store what the most behind one lacks, and each
 * sink takes only the numbers above its own (none is written twice to any of them).
 */

import type { Cdr } from './record.js';

export interface CdrSink {
  readonly name: string;
  open(): Promise<{ lastSeq: number; truncatedBytes: number; removedFiles: string[] }>;
  append(cdr: Cdr): Promise<void>;
  flush(): Promise<void>;
  close(): Promise<void>;
  readonly stats: { bytesWritten: number; writeCalls: number; filesCreated: number };
  /** Records accepted and not yet written. */
  readonly backlog: number;
  /** New rotation limits from a reload (sinks whose files close by other settings ignore it). */
  setRotation?(rotateBytes: number, rotateSeconds: number): void;
}

export class CdrSinks {
  private readonly accepted: number[];

  constructor(readonly sinks: readonly CdrSink[]) {
    this.accepted = sinks.map(() => 0);
  }

  async open(): Promise<{ lastSeq: number; truncatedBytes: number; removedFiles: string[] }> {
    const reports = await Promise.all(this.sinks.map((s) => s.open()));
    reports.forEach((r, i) => (this.accepted[i] = r.lastSeq));
    return {
      lastSeq: reports.length ? Math.min(...reports.map((r) => r.lastSeq)) : 0,
      truncatedBytes: reports.reduce((n, r) => n + r.truncatedBytes, 0),
      removedFiles: reports.flatMap((r) => r.removedFiles),
    };
  }

  /** Records accepted and not yet written by the sink most behind. */
  get backlog(): number {
    return Math.max(0, ...this.sinks.map((s) => s.backlog));
  }

  setRotation(rotateBytes: number, rotateSeconds: number): void {
    for (const s of this.sinks) s.setRotation?.(rotateBytes, rotateSeconds);
  }

  /** Appends to every sink still below this number; rejects when any of them fails. */
  async append(cdr: Cdr): Promise<void> {
    const seq = cdr.localRecordSequenceNumber;
    const writes: Promise<void>[] = [];
    this.sinks.forEach((s, i) => {
      if (seq <= this.accepted[i]!) return;
      this.accepted[i] = seq;
      writes.push(s.append(cdr));
    });
    const results = await Promise.allSettled(writes);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  async flush(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.flush()));
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(this.sinks.map((s) => s.close()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  get stats(): { bytesWritten: number; writeCalls: number; filesCreated: number } {
    const out = { bytesWritten: 0, writeCalls: 0, filesCreated: 0 };
    for (const s of this.sinks) {
      out.bytesWritten += s.stats.bytesWritten;
      out.writeCalls += s.stats.writeCalls;
      out.filesCreated += s.stats.filesCreated;
    }
    return out;
  }
}
