/**
 * Writes CDRs as TS 32.297 files of BER aSRecords (docs/charging.md section 4).
 *
 * A file is written in `<dir>/.open/` and renamed into `<dir>` (the pick-up directory) once
 * closed: by size, age (a timer, so an idle node still delivers), record count, or stop. The
 * highest localRecordSequenceNumber in closed files is kept per node in `.open/<nodeId>.state.json`, written
 * before each rename, so the files a mediation system has already taken away still count.
 * At open, a file left in `.open/` by a crash is walked, a torn last record cut, its header
 * rewritten and the file closed; `open()` then reports the last sequence number in files and
 * the caller appends what is missing from the store. A sequence number not above the last
 * one accepted is refused, so nothing is written twice.
 *
 * Lost records: numbers are consecutive per node, so a number skipped between two records
 * this writer takes is a record no file will hold (the store refused it, or it was purged
 * before the files caught up); a record the encoder refuses is given up and counted too.
 * The count waits in the state file and goes into the lost-CDR indicator of the next file
 * opened (TS 32.297), then starts again from zero.
 */

import { promises as fsp, constants as fsc } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log/logger.js';
import { syncDir } from '../util/sync-dir.js';
import { encodeAsRecord } from './as-record.js';
import { decodeAsRecord } from './as-record-decode.js';
import type { Cdr } from './record.js';
import {
  CDR_HEADER_LENGTH,
  FILE_HEADER_LENGTH,
  encodeCdrHeader,
  encodeFileHeader,
  nextFileSequenceNumber,
  nodeIpField,
  parseCdrHeader,
  parseTs32297FileName,
  ts32297FileName,
  type ClosureReason,
} from './ts32297-format.js';

export interface Ts32297WriterOptions {
  /** The pick-up directory. */
  dir: string;
  nodeId: string;
  /** Written in each file header (an IP literal; anything else leaves the field all 0xFF). */
  nodeAddress: string;
  /** Close a file before it would pass this size. Default 16 MiB. */
  maxBytes?: number;
  /** Close a file this long after it was opened. Default 900 s. */
  maxSeconds?: number;
  /** Close a file when it holds this many records. Default 100,000. */
  maxRecords?: number;
  fsync?: boolean;
  log?: Logger;
  now?: () => Date;
}

export interface Ts32297RepairReport {
  lastSeq: number;
  truncatedBytes: number;
  /** Files left open by a crash and closed into the pick-up directory now. */
  recoveredFiles: string[];
  removedFiles: string[];
}

export interface Ts32297Stats {
  bytesWritten: number;
  recordsWritten: number;
  writeCalls: number;
  filesCreated: number;
  filesClosed: number;
  /** Records counted lost by this process (skipped numbers, refused by the encoder). */
  recordsLost: number;
}

interface State {
  /** Sequence number of the last file closed. */
  fileSequenceNumber: number;
  /** Highest localRecordSequenceNumber in a closed file. */
  lastRecordSeq: number;
  /** Records known lost and not yet reported in a file header. */
  lostPending: number;
}

interface OpenFile {
  fh: fsp.FileHandle;
  name: string;
  fileSequenceNumber: number;
  openedAt: Date;
  lastAppendAt: Date;
  size: number;
  count: number;
  lastSeq: number;
  /** The lost-CDR count this file's header reports. */
  lostCdrs: number;
  timer: NodeJS.Timeout | null;
}

interface QueueItem {
  seq: number;
  bytes: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

export const OPEN_DIR = '.open';

export class Ts32297Writer {
  readonly name = 'ts32297';
  readonly dir: string;
  readonly workDir: string;
  readonly nodeId: string;
  readonly maxBytes: number;
  readonly maxSeconds: number;
  readonly maxRecords: number;
  private readonly nodeIp: Buffer;
  private readonly fsync: boolean;
  private readonly log: Logger | undefined;
  private readonly now: () => Date;

  private state: State = { fileSequenceNumber: 0, lastRecordSeq: 0, lostPending: 0 };
  private current: OpenFile | null = null;
  private opened = false;
  private closed = false;
  private broken: Error | null = null;
  private lastAcceptedSeq = 0;
  private queue: QueueItem[] = [];
  /** Every file operation runs on this chain, one at a time. */
  private chain: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** lostPending changed and is not yet in the state file. */
  private lostDirty = false;
  private readonly counters: Ts32297Stats = {
    bytesWritten: 0,
    recordsWritten: 0,
    writeCalls: 0,
    filesCreated: 0,
    filesClosed: 0,
    recordsLost: 0,
  };

  constructor(opts: Ts32297WriterOptions) {
    if (!opts.dir) throw new TypeError('Ts32297Writer: dir is required');
    if (!/^[A-Za-z0-9_.-]+$/.test(opts.nodeId))
      throw new TypeError('Ts32297Writer: nodeId must be letters, digits, _ . -');
    this.dir = opts.dir;
    this.workDir = path.join(opts.dir, OPEN_DIR);
    this.nodeId = opts.nodeId;
    this.nodeIp = nodeIpField(opts.nodeAddress);
    this.maxBytes = opts.maxBytes && opts.maxBytes > 0 ? opts.maxBytes : 16 * 1024 * 1024;
    this.maxSeconds = opts.maxSeconds && opts.maxSeconds > 0 ? opts.maxSeconds : 900;
    this.maxRecords = opts.maxRecords && opts.maxRecords > 0 ? opts.maxRecords : 100_000;
    this.fsync = opts.fsync ?? false;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
  }

  /** Records accepted and not yet written to the open file. */
  get backlog(): number {
    return this.queue.length;
  }

  get stats(): Readonly<Ts32297Stats> {
    return { ...this.counters };
  }

  get isBroken(): boolean {
    return this.broken !== null;
  }

  /** Path of the file being written (in the work directory), if any. */
  get currentFile(): string | null {
    return this.current ? path.join(this.workDir, this.current.name) : null;
  }

  /** Creates the directories, closes what a crash left open, returns the last sequence number in files. */
  async open(): Promise<Ts32297RepairReport> {
    await this.flush();
    return this.run(async () => {
      this.opened = false;
      this.closed = false;
      if (this.current) await this.closeFile('normal').catch(() => undefined);
      this.current = null;
      await fsp.mkdir(this.workDir, { recursive: true });
      this.state = await this.readState();
      const report = await this.recover();
      this.lastAcceptedSeq = this.state.lastRecordSeq;
      this.broken = null;
      this.opened = true;
      return { ...report, lastSeq: this.state.lastRecordSeq };
    });
  }

  /** Queues one record; resolves once it is written to the open file. */
  append(cdr: Cdr): Promise<void> {
    if (!this.opened) return Promise.reject(new Error('Ts32297Writer is not open'));
    if (this.closed) return Promise.reject(new Error('Ts32297Writer is closed'));
    if (this.broken) return Promise.reject(this.broken);
    const seq = cdr.localRecordSequenceNumber;
    if (!Number.isSafeInteger(seq) || seq < 1)
      return Promise.reject(new TypeError('Ts32297Writer: localRecordSequenceNumber must be a positive integer'));
    if (seq <= this.lastAcceptedSeq) {
      return Promise.reject(
        new RangeError(`Ts32297Writer: seq ${seq} is not above the last accepted seq ${this.lastAcceptedSeq}`),
      );
    }
    // a writer with no history cannot tell what came before its first record
    if (this.lastAcceptedSeq > 0 && seq > this.lastAcceptedSeq + 1)
      this.countLost(
        seq - this.lastAcceptedSeq - 1,
        { afterSeq: this.lastAcceptedSeq, beforeSeq: seq },
        'CDR numbers skipped: no file will hold them',
      );
    let bytes: Buffer;
    try {
      const record = encodeAsRecord(cdr);
      bytes = Buffer.concat([encodeCdrHeader(record.length), record]);
    } catch (err) {
      // offering it again would fail again: it is given up, counted, and the files go on
      this.lastAcceptedSeq = seq;
      this.countLost(
        1,
        { seq, recordId: cdr.recordId, err: (err as Error).message },
        'CDR refused by the BER encoder: not in any file',
      );
      return this.run(() => this.saveLost());
    }
    this.lastAcceptedSeq = seq;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ seq, bytes, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // everything appended in this tick joins one write
        setImmediate(() => {
          this.scheduled = false;
          const batch = this.queue;
          this.queue = [];
          this.run(() => this.writeBatch(batch)).catch(() => undefined); // each item of the batch carries its own failure
        });
      }
    });
  }

  /** Resolves when everything queued so far is written. */
  async flush(): Promise<void> {
    while (this.scheduled || this.queue.length > 0) await new Promise((r) => setImmediate(r));
    await this.chain.catch(() => undefined);
  }

  /** Writes what is queued and closes the open file into the pick-up directory. */
  async close(reason: ClosureReason = 'normal'): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.run(async () => {
      if (this.current) await this.closeFile(reason);
    });
  }

  // -------------------------------------------------------------------------------------------

  private countLost(n: number, detail: Record<string, unknown>, msg: string): void {
    this.state.lostPending += n;
    this.counters.recordsLost += n;
    this.lostDirty = true;
    this.log?.error({ ...detail, lost: n, reportedInNextFile: this.state.lostPending }, msg);
  }

  /** Keeps a new lost count across a crash. */
  private async saveLost(): Promise<void> {
    if (!this.lostDirty) return;
    this.lostDirty = false;
    await this.writeState();
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.chain.then(op);
    this.chain = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private async writeBatch(batch: QueueItem[]): Promise<void> {
    if (this.broken) {
      for (const it of batch) it.reject(this.broken);
      return;
    }
    let i = 0;
    try {
      await this.saveLost();
      while (i < batch.length) {
        const f = await this.fileFor(batch[i]!.bytes.length);
        let bytes = 0;
        let j = i;
        while (j < batch.length && f.count + (j - i) < this.maxRecords) {
          const len = batch[j]!.bytes.length;
          if (j > i && f.size + bytes + len > this.maxBytes) break;
          bytes += len;
          j++;
        }
        const chunk = batch.slice(i, j);
        await this.writeAt(
          f.fh,
          Buffer.concat(
            chunk.map((c) => c.bytes),
            bytes,
          ),
          f.size,
        );
        if (this.fsync) await f.fh.datasync();
        f.size += bytes;
        f.count += chunk.length;
        f.lastSeq = chunk[chunk.length - 1]!.seq;
        f.lastAppendAt = this.now();
        this.counters.bytesWritten += bytes;
        this.counters.recordsWritten += chunk.length;
        for (const it of chunk) it.resolve();
        i = j;
        if (f.count >= this.maxRecords) await this.closeFile('count');
      }
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      this.broken = e;
      this.log?.error(
        { err: e, file: this.current?.name },
        'CDR file (32.297) write failed; writer stopped until re-opened',
      );
      for (const it of batch.slice(i)) it.reject(e);
      for (const it of this.queue) it.reject(e);
      this.queue = [];
      // the open file stays in the work directory: open() repairs and closes it
      if (this.current) {
        if (this.current.timer) clearTimeout(this.current.timer);
        await this.current.fh.close().catch(() => undefined);
        this.current = null;
      }
    }
  }

  /** The open file, closing a full or old one first and opening a new one when needed. */
  private async fileFor(nextLen: number): Promise<OpenFile> {
    const c = this.current;
    if (c) {
      if (c.count > 0 && c.size + nextLen > this.maxBytes) await this.closeFile('size');
      else if (this.now().getTime() - c.openedAt.getTime() >= this.maxSeconds * 1000) await this.closeFile('time');
    }
    if (this.current) return this.current;
    const fileSequenceNumber = nextFileSequenceNumber(this.state.fileSequenceNumber);
    const openedAt = this.now();
    const name = ts32297FileName(this.nodeId, fileSequenceNumber, openedAt);
    // O_EXCL: a name is never reused, a closed file is never appended to
    const fh = await fsp.open(path.join(this.workDir, name), fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o644);
    const f: OpenFile = {
      fh,
      name,
      fileSequenceNumber,
      openedAt,
      lastAppendAt: openedAt,
      size: FILE_HEADER_LENGTH,
      count: 0,
      lastSeq: 0,
      lostCdrs: this.state.lostPending,
      timer: null,
    };
    await this.writeAt(fh, this.header(f, 'normal'), 0);
    this.current = f;
    if (f.lostCdrs > 0) {
      // reported by this file now (a crash before this state write reports them twice, never not at all)
      this.state.lostPending = 0;
      this.lostDirty = true;
      await this.saveLost();
    }
    this.counters.filesCreated++;
    f.timer = setTimeout(() => {
      f.timer = null;
      this.run(async () => {
        if (this.current === f) await this.closeFile('time');
      }).catch((err: unknown) =>
        this.log?.error({ err, file: f.name }, 'CDR file (32.297) could not be closed on age'),
      );
    }, this.maxSeconds * 1000);
    f.timer.unref();
    return f;
  }

  private header(
    f: Pick<OpenFile, 'size' | 'openedAt' | 'lastAppendAt' | 'count' | 'fileSequenceNumber' | 'lostCdrs'>,
    reason: ClosureReason,
  ): Buffer {
    return encodeFileHeader({
      fileLength: f.size,
      openedAt: f.openedAt,
      lastAppendAt: f.lastAppendAt,
      cdrCount: f.count,
      fileSequenceNumber: f.fileSequenceNumber,
      closureReason: reason,
      nodeIp: this.nodeIp,
      lostCdrs: f.lostCdrs,
    });
  }

  /** Final header, state (before the rename: a crash in between finds it counted), rename into the pick-up directory. */
  private async closeFile(reason: ClosureReason): Promise<void> {
    const f = this.current;
    if (!f) return;
    this.current = null;
    if (f.timer) clearTimeout(f.timer);
    try {
      await this.writeAt(f.fh, this.header(f, reason), 0);
      if (this.fsync) await f.fh.sync();
    } finally {
      await f.fh.close();
    }
    await this.finish(f.name, f.fileSequenceNumber, f.lastSeq);
    this.log?.info({ file: f.name, records: f.count, bytes: f.size, reason }, 'CDR file (32.297) closed for pick-up');
  }

  private async finish(name: string, fileSequenceNumber: number, lastSeq: number): Promise<void> {
    // files close in sequence order: the last one closed is the number to continue from
    this.state = { ...this.state, fileSequenceNumber, lastRecordSeq: Math.max(this.state.lastRecordSeq, lastSeq) };
    this.lostDirty = false;
    await this.writeState();
    await fsp.rename(path.join(this.workDir, name), path.join(this.dir, name));
    if (this.fsync) {
      await syncDir(this.dir);
      await syncDir(this.workDir);
    }
    this.counters.filesClosed++;
  }

  private async writeAt(fh: fsp.FileHandle, buf: Buffer, position: number): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      this.counters.writeCalls++;
      const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
      if (bytesWritten <= 0) throw new Error('CDR file write made no progress');
      off += bytesWritten;
    }
  }

  private async readState(): Promise<State> {
    try {
      const s = JSON.parse(
        await fsp.readFile(path.join(this.workDir, `${this.nodeId}.state.json`), 'utf8'),
      ) as Partial<State>;
      return {
        fileSequenceNumber: Number.isSafeInteger(s.fileSequenceNumber) ? s.fileSequenceNumber! : 0,
        lastRecordSeq: Number.isSafeInteger(s.lastRecordSeq) ? s.lastRecordSeq! : 0,
        lostPending: Number.isSafeInteger(s.lostPending) && s.lostPending! > 0 ? s.lostPending! : 0,
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { fileSequenceNumber: 0, lastRecordSeq: 0, lostPending: 0 };
      throw err;
    }
  }

  private async writeState(): Promise<void> {
    const file = path.join(this.workDir, `${this.nodeId}.state.json`);
    const tmp = `${file}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(this.state) + '\n');
    if (this.fsync) {
      const fh = await fsp.open(tmp, 'r+');
      await fh.sync().finally(() => fh.close());
    }
    await fsp.rename(tmp, file);
  }

  /** Closes every file a crash left in the work directory (oldest first). */
  private async recover(): Promise<Omit<Ts32297RepairReport, 'lastSeq'>> {
    const report = { truncatedBytes: 0, recoveredFiles: [] as string[], removedFiles: [] as string[] };
    const names = (await fsp.readdir(this.workDir))
      .map((name) => ({ name, parsed: parseTs32297FileName(name) }))
      .filter((n) => n.parsed?.nodeId === this.nodeId)
      .sort((a, b) => a.parsed!.fileSequenceNumber - b.parsed!.fileSequenceNumber);
    for (const { name, parsed } of names) {
      const file = path.join(this.workDir, name);
      const buf = await fsp.readFile(file);
      const walk = walkRecords(buf);
      const cut = buf.length - walk.validLength;
      if (walk.count === 0) {
        await fsp.unlink(file);
        report.removedFiles.push(name);
        this.log?.warn({ file: name }, 'CDR file (32.297) with no complete record removed');
        continue;
      }
      const fh = await fsp.open(file, 'r+');
      try {
        if (cut > 0) await fh.truncate(walk.validLength);
        const header = this.header(
          {
            size: walk.validLength,
            openedAt: this.now(),
            lastAppendAt: this.now(),
            count: walk.count,
            fileSequenceNumber: parsed!.fileSequenceNumber,
            lostCdrs: 0,
          },
          'normal',
        );
        buf.copy(header, 10, 10, 14); // the opening time written when the file was created
        buf.copy(header, 47, 47, 48); // and the lost-CDR indicator it reported
        await this.writeAt(fh, header, 0);
        if (this.fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      report.truncatedBytes += cut;
      await this.finish(name, parsed!.fileSequenceNumber, walk.lastSeq);
      report.recoveredFiles.push(name);
      this.log?.warn(
        { file: name, records: walk.count, truncatedBytes: cut },
        'CDR file (32.297) left open by an unclean stop: repaired and closed',
      );
    }
    return report;
  }
}

/** The complete records of a file from the front: count, last sequence number, where they end. */
export function walkRecords(buf: Buffer): { count: number; lastSeq: number; validLength: number } {
  if (buf.length < FILE_HEADER_LENGTH) return { count: 0, lastSeq: 0, validLength: 0 };
  const headerLength = buf.readUInt32BE(4);
  let at = headerLength >= 52 && headerLength <= buf.length ? headerLength : FILE_HEADER_LENGTH;
  let count = 0;
  let lastSeq = 0;
  while (at + CDR_HEADER_LENGTH <= buf.length) {
    const h = parseCdrHeader(buf, at);
    if (!h || at + h.headerLength + h.length > buf.length) break;
    try {
      const rec = decodeAsRecord(buf, at + h.headerLength, at + h.headerLength + h.length);
      if (typeof rec.localRecordSequenceNumber !== 'number') break;
      lastSeq = rec.localRecordSequenceNumber;
    } catch {
      break;
    }
    count++;
    at += h.headerLength + h.length;
  }
  return { count, lastSeq, validLength: count === 0 ? headerLength : at };
}
