/**
 * Chunking of an outgoing message and reassembly of incoming chunks (RFC 4975 sections 5.1,
 * 7.1.1). Pure: no I/O.
 *
 * Reassembly rules:
 * - a chunk's bytes are placed at its Byte-Range start; its length is what the framing
 *   delimited (the range-end may be `*`, and a chunk interrupted with `+` early is shorter
 *   than its range-end said);
 * - chunks may arrive out of order and overlap (a resent range): coverage is counted once;
 * - a chunk reaching beyond the total, or a total that changes, is refused with 400 (the
 *   message cannot be right); a message larger than the limit with 413;
 * - `#` ends the message as interrupted: what arrived is kept as partial, nothing more.
 * The message is complete once a chunk ended with `$` and every byte up to its last arrived.
 */
import type { ByteRange, ContinuationFlag } from './message.js';

export interface OutgoingChunk {
  range: ByteRange;
  data: Buffer;
  flag: ContinuationFlag;
}

/** Cuts a message into chunks of at most `chunkBytes` (the last one `$`, the others `+`). */
export function chunkMessage(body: Buffer, chunkBytes: number): OutgoingChunk[] {
  if (!(chunkBytes >= 1)) throw new RangeError('chunkBytes must be at least 1');
  const total = body.length;
  if (total === 0) return [{ range: { start: 1, end: 0, total: 0 }, data: body, flag: '$' }];
  const out: OutgoingChunk[] = [];
  for (let offset = 0; offset < total; offset += chunkBytes) {
    const data = body.subarray(offset, Math.min(total, offset + chunkBytes));
    const last = offset + data.length >= total;
    out.push({ range: { start: offset + 1, end: offset + data.length, total }, data, flag: last ? '$' : '+' });
  }
  return out;
}

/** Sorted, disjoint, 1-based inclusive intervals of received bytes. */
export class ByteCoverage {
  private spans: Array<[number, number]> = [];

  add(first: number, last: number): void {
    if (last < first) return;
    const merged: Array<[number, number]> = [];
    let lo = first;
    let hi = last;
    for (const [a, b] of this.spans) {
      if (b + 1 < lo || a > hi + 1) merged.push([a, b]);
      else {
        lo = Math.min(lo, a);
        hi = Math.max(hi, b);
      }
    }
    merged.push([lo, hi]);
    merged.sort((x, y) => x[0] - y[0]);
    this.spans = merged;
  }

  /** Bytes covered. */
  get bytes(): number {
    return this.spans.reduce((n, [a, b]) => n + (b - a + 1), 0);
  }

  /** Whether 1..total is covered. */
  covers(total: number): boolean {
    if (total === 0) return true;
    const first = this.spans[0];
    return first !== undefined && first[0] === 1 && first[1] >= total;
  }

  /** The highest byte received in one run from byte 1 (0: none). */
  get contiguous(): number {
    const first = this.spans[0];
    return first !== undefined && first[0] === 1 ? first[1] : 0;
  }
}

export type ChunkVerdict = { ok: true } | { ok: false; code: 400 | 413; reason: string };

/**
 * Checks one chunk against what is known of its message: a range that contradicts the total,
 * a total that changed, a size above `maxBytes`.
 */
export function checkChunk(
  range: ByteRange,
  length: number,
  knownTotal: number | undefined,
  maxBytes: number,
): ChunkVerdict {
  const total = range.total ?? knownTotal;
  if (range.total !== undefined && knownTotal !== undefined && range.total !== knownTotal) {
    return { ok: false, code: 400, reason: `total changed from ${knownTotal} to ${range.total}` };
  }
  if (total !== undefined && total > maxBytes)
    return { ok: false, code: 413, reason: `message of ${total} bytes above ${maxBytes}` };
  const last = range.start + length - 1;
  if (total !== undefined && last > total)
    return { ok: false, code: 400, reason: `bytes ${range.start}-${last} beyond the total ${total}` };
  if (range.end !== undefined && total !== undefined && range.end > total)
    return { ok: false, code: 400, reason: `range-end ${range.end} beyond the total ${total}` };
  if (last > maxBytes) return { ok: false, code: 413, reason: `message passes ${maxBytes} bytes` };
  return { ok: true };
}

export type ReassemblyState = 'receiving' | 'complete' | 'interrupted' | 'refused';

/**
 * Reassembles one message held in memory (small messages: history text, tests). The switch
 * does not use it for relaying: it streams chunks on and tracks coverage only.
 */
export class Reassembly {
  private readonly parts = new Map<number, Buffer>();
  private readonly coverage = new ByteCoverage();
  private total?: number;
  private sawLast = false;
  state: ReassemblyState = 'receiving';
  refusal?: { code: 400 | 413; reason: string };

  constructor(private readonly maxBytes: number) {}

  /** Adds one whole chunk; returns the verdict (a refused chunk refuses the whole message). */
  add(range: ByteRange, data: Buffer, flag: ContinuationFlag): ChunkVerdict {
    if (this.state !== 'receiving') return { ok: false, code: 400, reason: `message already ${this.state}` };
    const verdict = checkChunk(range, data.length, this.total, this.maxBytes);
    if (!verdict.ok) {
      this.state = 'refused';
      this.refusal = { code: verdict.code, reason: verdict.reason };
      return verdict;
    }
    if (range.total !== undefined) this.total = range.total;
    this.parts.set(range.start, Buffer.from(data));
    this.coverage.add(range.start, range.start + data.length - 1);
    if (flag === '#') this.state = 'interrupted';
    else if (flag === '$') {
      this.sawLast = true;
      // the `$` chunk's last byte ends the message: senders (RFC 4975's own examples) may
      // count the CRLF before the end-line in their total, which never arrives as content
      this.total = range.start + data.length - 1;
    }
    if (this.state === 'receiving' && this.sawLast && this.coverage.covers(this.total ?? Infinity))
      this.state = 'complete';
    return { ok: true };
  }

  /** Bytes received so far (each counted once). */
  get receivedBytes(): number {
    return this.coverage.bytes;
  }

  /** The message, once complete; what arrived from byte 1 on when interrupted. */
  body(): Buffer {
    const size = this.state === 'complete' ? this.total! : this.coverage.contiguous;
    const out = Buffer.alloc(size);
    for (const [start, data] of this.parts) {
      if (start - 1 < size) data.copy(out, start - 1, 0, Math.min(data.length, size - start + 1));
    }
    return out;
  }
}
