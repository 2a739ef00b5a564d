import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { syncDir } from '../util/sync-dir.js';

/**
 * Rotating CDR files: one JSON object per line (JSON Lines), appended in sequence order.
 *
 * File names: `cdr-<nodeId>-<UTC yyyymmddThhmmss>-<first seq, 12 digits>.jsonl`, where the
 * time is the file's creation and the sequence number that of its first line.
 *
 * Contract with billing (the collector of the files):
 * - Only the NEWEST file of a node (highest first seq) is ever written to. Every other file is
 *   complete: it was closed on rotation (or on stop / restart) and is never touched again, so
 *   billing may collect, move or delete any file that is not the newest of its node.
 * - Every line is a complete record ending in '\n'. A crash can leave a partial last line in
 *   the newest file only; it is truncated away when the writer opens again (the record it
 *   held is still in the store, and `Charging.start()` re-appends it).
 * - Lines are in strictly increasing `localRecordSequenceNumber` order across the files of a
 *   node; a number is never written twice (the writer refuses a number not above the last).
 *   A gap in the numbers is a record whose store insert failed (see charging.ts).
 * - After a restart the writer starts a new file at the next write; the previous newest file
 *   becomes complete.
 * - Never remove the newest file: at start the files' highest number is the point from which
 *   the store's records are re-appended. If it is removed anyway, stored records above the
 *   highest number left in the files are written again (billing de-duplicates on recordId).
 *
 * Rotation: before a write, when the next line would make the current file exceed
 * `rotateBytes`, or the file is older than `rotateSeconds`, it is closed and the next lines go
 * to a new file. A batch is split across files, so a file is larger than `rotateBytes` only
 * when it holds a single line larger than that. (Age is checked at writes: an idle file
 * stays the newest, open file until the next record.)
 *
 * Batching: records appended in the same tick are written with ONE `write()` on a FileHandle
 * opened with O_APPEND (two if the batch crosses a rotation). The promise of each append
 * resolves when its line is written and, with `fsync: true`, flushed to disk (fdatasync).
 */

export interface CdrFileWriterOptions {
  dir: string;
  nodeId: string;
  /** Rotate before a line that would make the current file larger than this. Default 16 MiB. */
  rotateBytes?: number;
  /** Rotate when the current file is older than this. Default 3600 s. */
  rotateSeconds?: number;
  /** fdatasync after every batch (and sync the directory on file creation). Default false. */
  fsync?: boolean;
  log?: Logger;
  /** Clock, for tests. */
  now?: () => Date;
}

/** A record as the writer needs it: a JSON-safe object with its sequence number. */
export interface SequencedRecord {
  localRecordSequenceNumber: number;
}

export interface CdrFileStats {
  /** Bytes written to CDR files by this writer. */
  bytesWritten: number;
  /** Lines written by this writer. */
  linesWritten: number;
  /** `write()` calls (one per batch, one more per rotation inside a batch). */
  writeCalls: number;
  /** Files this writer created. */
  filesCreated: number;
  /** Bytes truncated away by tail repair at open. */
  bytesRepaired: number;
}

export interface CdrFileInfo {
  name: string;
  path: string;
  firstSeq: number;
  createdAt: string;
}

export interface RepairReport {
  /** Highest sequence number present in this node's files (0 when none). */
  lastSeq: number;
  /** Bytes cut off the tail of the newest file(s). */
  truncatedBytes: number;
  /** Files that ended up empty after the repair and were deleted. */
  removedFiles: string[];
}

interface QueueItem {
  seq: number;
  line: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

const DEFAULT_ROTATE_BYTES = 16 * 1024 * 1024;
const DEFAULT_ROTATE_SECONDS = 3600;
const SEQ_DIGITS = 12;

/** `cdr-<nodeId>-` prefix with the node id made filename-safe. */
function filePrefix(nodeId: string): string {
  return `cdr-${nodeId.replace(/[^A-Za-z0-9._]/g, '_')}-`;
}

function utcStamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return (
    `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}` +
    `T${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`
  );
}

export function cdrFileName(nodeId: string, createdAt: Date, firstSeq: number): string {
  return `${filePrefix(nodeId)}${utcStamp(createdAt)}-${String(firstSeq).padStart(SEQ_DIGITS, '0')}.jsonl`;
}

/** This node's CDR files in `dir`, oldest first (ordered by first sequence number). */
export async function listCdrFiles(dir: string, nodeId: string): Promise<CdrFileInfo[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const prefix = filePrefix(nodeId);
  const out: CdrFileInfo[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d{8}T\d{6})-(\d+)\.jsonl$/.exec(name.slice(prefix.length));
    if (!m) continue;
    out.push({ name, path: path.join(dir, name), createdAt: m[1]!, firstSeq: Number(m[2]) });
  }
  out.sort((a, b) => a.firstSeq - b.firstSeq || a.createdAt.localeCompare(b.createdAt));
  return out;
}

export class CdrFileWriter {
  readonly name = 'jsonl';
  readonly dir: string;
  readonly nodeId: string;
  /** (changed by a reload through setRotation: the next line checked uses the new limits) */
  rotateBytes: number;
  rotateSeconds: number;
  readonly fsync: boolean;
  private readonly log: Logger | undefined;
  private readonly now: () => Date;

  private fh: fsp.FileHandle | null = null;
  private currentPath: string | null = null;
  private currentSize = 0;
  private currentOpenedAt = 0;

  private opened = false;
  private closed = false;
  /** Set after a failed write: every append rejects until `open()` repairs and resets. */
  private broken: Error | null = null;

  private queue: QueueItem[] = [];
  private flushScheduled = false;
  private writing: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];

  /** Highest seq durably in the files (written lines). */
  private lastWrittenSeq = 0;
  /** Highest seq accepted by append() (written or queued). */
  private lastAcceptedSeq = 0;

  private readonly counters: CdrFileStats = {
    bytesWritten: 0,
    linesWritten: 0,
    writeCalls: 0,
    filesCreated: 0,
    bytesRepaired: 0,
  };

  constructor(opts: CdrFileWriterOptions) {
    if (!opts.dir) throw new TypeError('CdrFileWriter: dir is required');
    if (!opts.nodeId) throw new TypeError('CdrFileWriter: nodeId is required');
    this.dir = opts.dir;
    this.nodeId = opts.nodeId;
    this.rotateBytes = opts.rotateBytes !== undefined && opts.rotateBytes > 0 ? opts.rotateBytes : DEFAULT_ROTATE_BYTES;
    this.rotateSeconds =
      opts.rotateSeconds !== undefined && opts.rotateSeconds > 0 ? opts.rotateSeconds : DEFAULT_ROTATE_SECONDS;
    this.fsync = opts.fsync ?? false;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
  }

  /** Lines accepted but not yet written to a file: how far the writer is behind. */
  get backlog(): number {
    return Math.max(0, this.lastAcceptedSeq - this.lastWrittenSeq);
  }

  /** New rotation limits, e.g. from a reload; the current file rotates by them from its next line. */
  setRotation(rotateBytes: number, rotateSeconds: number): void {
    if (rotateBytes > 0) this.rotateBytes = rotateBytes;
    if (rotateSeconds > 0) this.rotateSeconds = rotateSeconds;
  }

  get stats(): Readonly<CdrFileStats> {
    return { ...this.counters };
  }

  /** Highest sequence number written to the files (after open: found on disk). */
  get lastSeq(): number {
    return this.lastWrittenSeq;
  }

  /** Path of the file currently open for appending, if any. */
  get currentFile(): string | null {
    return this.currentPath;
  }

  get isBroken(): boolean {
    return this.broken !== null;
  }

  /**
   * Opens (or re-opens after a failed write): creates the directory, closes any current
   * file, repairs the tail of this node's newest file and finds the last sequence number.
   * The next write starts a new file. Waits for pending appends; may follow close().
   */
  async open(): Promise<RepairReport> {
    await this.whenIdle();
    this.opened = false;
    this.closed = false;
    await this.closeCurrent();
    await fsp.mkdir(this.dir, { recursive: true });
    const report = await this.repair();
    this.lastWrittenSeq = report.lastSeq;
    this.lastAcceptedSeq = report.lastSeq;
    this.broken = null;
    this.opened = true;
    return report;
  }

  /**
   * Highest `localRecordSequenceNumber` in this node's files (0 if none), repairing the tail
   * of the newest file first. Same as `open()` but only returns the number.
   */
  async lastSequenceInFiles(): Promise<number> {
    return (await this.open()).lastSeq;
  }

  /**
   * Queues one record; resolves when its line is in the file (and synced with fsync: true).
   * Sequence numbers must be strictly increasing: a number not above the last accepted one is
   * refused (that is what keeps a record from being written twice).
   */
  append(record: SequencedRecord): Promise<void> {
    if (!this.opened) return Promise.reject(new Error('CdrFileWriter is not open'));
    if (this.closed) return Promise.reject(new Error('CdrFileWriter is closed'));
    if (this.broken) return Promise.reject(this.broken);
    const seq = record.localRecordSequenceNumber;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      return Promise.reject(new TypeError('CdrFileWriter: localRecordSequenceNumber must be a positive integer'));
    }
    if (seq <= this.lastAcceptedSeq) {
      return Promise.reject(
        new RangeError(`CdrFileWriter: seq ${seq} is not above the last accepted seq ${this.lastAcceptedSeq}`),
      );
    }
    let line: Buffer;
    try {
      line = Buffer.from(JSON.stringify(record) + '\n', 'utf8');
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.lastAcceptedSeq = seq;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ seq, line, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Resolves when everything queued so far has been written (or has failed). */
  async flush(): Promise<void> {
    await this.whenIdle();
  }

  /** Flushes, then closes the current file. Further appends reject. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.whenIdle();
    this.closed = true;
    await this.closeCurrent();
  }

  // -------------------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.writing) return;
    this.flushScheduled = true;
    // setImmediate: everything appended in this tick (including promise continuations) joins the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.startWriting();
    });
  }

  private startWriting(): void {
    if (this.writing || this.queue.length === 0) {
      this.notifyIdleIfIdle();
      return;
    }
    const batch = this.queue;
    this.queue = [];
    this.writing = this.writeBatch(batch).finally(() => {
      this.writing = null;
      if (this.queue.length > 0) this.scheduleFlush();
      else this.notifyIdleIfIdle();
    });
  }

  private whenIdle(): Promise<void> {
    if (!this.writing && !this.flushScheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdleIfIdle(): void {
    if (this.writing || this.flushScheduled || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async writeBatch(batch: QueueItem[]): Promise<void> {
    if (this.broken) {
      for (const it of batch) it.reject(this.broken);
      return;
    }
    let i = 0;
    try {
      while (i < batch.length) {
        await this.ensureFile(batch[i]!.seq, batch[i]!.line.length);
        // Take as many lines as fit in the current file (at least one).
        let bytes = 0;
        let j = i;
        while (j < batch.length) {
          const len = batch[j]!.line.length;
          if (j > i && this.currentSize + bytes + len > this.rotateBytes) break;
          bytes += len;
          j++;
        }
        const chunk = batch.slice(i, j);
        const buf =
          chunk.length === 1
            ? chunk[0]!.line
            : Buffer.concat(
                chunk.map((c) => c.line),
                bytes,
              );
        await this.writeAll(buf);
        if (this.fsync) await this.fh!.datasync();
        this.currentSize += buf.length;
        this.counters.bytesWritten += buf.length;
        this.counters.linesWritten += chunk.length;
        this.lastWrittenSeq = chunk[chunk.length - 1]!.seq;
        for (const it of chunk) it.resolve();
        i = j;
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.broken = e;
      this.log?.error({ err: e, file: this.currentPath }, 'CDR file write failed; writer stopped until re-opened');
      for (const it of batch.slice(i)) it.reject(e);
      for (const it of this.queue) it.reject(e);
      this.queue = [];
      // Leave the (possibly torn) tail to open()'s repair; just drop the handle.
      await this.closeCurrent().catch(() => undefined);
    }
  }

  private async writeAll(buf: Buffer): Promise<void> {
    this.counters.writeCalls++;
    let off = 0;
    while (off < buf.length) {
      const { bytesWritten } = await this.fh!.write(buf, off, buf.length - off);
      if (bytesWritten <= 0) throw new Error('CDR file write made no progress');
      off += bytesWritten;
      if (off < buf.length) this.counters.writeCalls++;
    }
  }

  /**
   * Makes sure a current file is open that can take a next line of `nextLen` bytes: rotates
   * when that line would make a non-empty file exceed rotateBytes, or when the file is older
   * than rotateSeconds. `firstSeq` names a new file.
   */
  private async ensureFile(firstSeq: number, nextLen: number): Promise<void> {
    if (this.fh) {
      const ageMs = this.now().getTime() - this.currentOpenedAt;
      const full = this.currentSize > 0 && this.currentSize + nextLen > this.rotateBytes;
      if (full || ageMs >= this.rotateSeconds * 1000) {
        this.log?.info({ file: this.currentPath, bytes: this.currentSize }, 'CDR file rotated');
        await this.closeCurrent();
      }
    }
    if (this.fh) return;
    const createdAt = this.now();
    const file = path.join(this.dir, cdrFileName(this.nodeId, createdAt, firstSeq));
    // O_EXCL: a file name is never reused, so a completed file cannot be appended to.
    const fh = await fsp.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_APPEND, 0o644);
    this.fh = fh;
    this.currentPath = file;
    this.currentSize = 0;
    this.currentOpenedAt = createdAt.getTime();
    this.counters.filesCreated++;
    if (this.fsync) await syncDir(this.dir);
  }

  private async closeCurrent(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.currentPath = null;
    this.currentSize = 0;
    if (!fh) return;
    try {
      if (this.fsync) await fh.sync();
    } finally {
      await fh.close();
    }
  }

  /**
   * Walks this node's files from the newest: cuts a last line that is incomplete (no trailing
   * newline) or not a JSON object with a sequence number, repeatedly; deletes a file left
   * empty and continues with the previous one; stops at the first valid last line.
   */
  private async repair(): Promise<RepairReport> {
    const files = await listCdrFiles(this.dir, this.nodeId);
    const report: RepairReport = { lastSeq: 0, truncatedBytes: 0, removedFiles: [] };
    for (let k = files.length - 1; k >= 0; k--) {
      const f = files[k]!;
      const { lastSeq, truncated } = await repairTail(f.path, this.fsync);
      report.truncatedBytes += truncated;
      if (truncated > 0) {
        this.log?.warn({ file: f.name, bytes: truncated }, 'CDR file: cut an incomplete last line (crash mid-write)');
      }
      if (lastSeq > 0) {
        report.lastSeq = lastSeq;
        break;
      }
      await fsp.unlink(f.path);
      report.removedFiles.push(f.name);
      this.log?.warn({ file: f.name }, 'CDR file: removed a file with no complete record');
      if (this.fsync) await syncDir(this.dir);
    }
    this.counters.bytesRepaired += report.truncatedBytes;
    return report;
  }
}

/** Sequence number of a complete line, or 0 when it is not a CDR line. */
function seqOfLine(line: string): number {
  try {
    const obj = JSON.parse(line) as unknown;
    if (obj === null || typeof obj !== 'object') return 0;
    const seq = (obj as Record<string, unknown>).localRecordSequenceNumber;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
  } catch {
    return 0;
  }
}

const TAIL_CHUNK = 64 * 1024;

/**
 * Repairs the end of one file; returns the seq of its (now) last line, 0 when the file is
 * (now) empty, and how many bytes were cut.
 */
async function repairTail(file: string, fsync: boolean): Promise<{ lastSeq: number; truncated: number }> {
  const fh = await fsp.open(file, 'r+');
  try {
    const originalSize = (await fh.stat()).size;
    let size = originalSize;
    let lastSeq = 0;
    while (size > 0) {
      // Find the end of the last complete line: the last '\n' at or before size-1.
      const lastNl = await findLastNewline(fh, size);
      if (lastNl < 0) {
        size = 0; // no complete line at all
        break;
      }
      if (lastNl + 1 < size) {
        size = lastNl + 1; // incomplete trailing line
        continue;
      }
      // size ends with '\n': examine the line before it.
      const prevNl = await findLastNewline(fh, size - 1);
      const start = prevNl + 1;
      const buf = Buffer.alloc(size - 1 - start);
      await readFully(fh, buf, start);
      const seq = seqOfLine(buf.toString('utf8'));
      if (seq > 0) {
        lastSeq = seq;
        break;
      }
      size = start; // not valid JSON: cut it too
    }
    const truncated = originalSize - size;
    if (truncated > 0) {
      await fh.truncate(size);
      if (fsync) await fh.sync();
    }
    return { lastSeq, truncated };
  } finally {
    await fh.close();
  }
}

/** Offset of the last '\n' in [0, end), or -1. */
async function findLastNewline(fh: fsp.FileHandle, end: number): Promise<number> {
  let hi = end;
  const buf = Buffer.alloc(TAIL_CHUNK);
  while (hi > 0) {
    const lo = Math.max(0, hi - TAIL_CHUNK);
    const len = hi - lo;
    await readFully(fh, buf.subarray(0, len), lo);
    const idx = buf.subarray(0, len).lastIndexOf(0x0a);
    if (idx >= 0) return lo + idx;
    hi = lo;
  }
  return -1;
}

async function readFully(fh: fsp.FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, buf.length - off, position + off);
    if (bytesRead === 0) throw new Error('unexpected end of CDR file');
    off += bytesRead;
  }
}
