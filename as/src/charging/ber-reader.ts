/**
 * Reading BER elements back (pure): what the CDR file writer needs to walk a file left open
 * by a crash, and what `ims-cdr` shows. Definite lengths only (all we write); anything else
 * is reported as a structure error with its offset.
 */

import type { TagClass } from './ber.js';

export interface BerElement {
  cls: TagClass;
  constructed: boolean;
  tag: number;
  /** Offset of the identifier octet in the buffer read. */
  offset: number;
  /** Offset of the contents and their length. */
  contentOffset: number;
  length: number;
  /** Offset just past the element. */
  end: number;
}

export class BerError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
    this.name = 'BerError';
  }
}

const CLASSES: TagClass[] = ['universal', 'application', 'context', 'private'];

/** The element starting at `offset`, whose end must not pass `limit`. */
export function readElement(buf: Uint8Array, offset: number, limit = buf.length): BerElement {
  let p = offset;
  if (p >= limit) throw new BerError('BER: identifier expected', p);
  const first = buf[p++]!;
  const cls = CLASSES[first >> 6]!;
  const constructed = (first & 0x20) !== 0;
  let tag = first & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (;;) {
      if (p >= limit) throw new BerError('BER: truncated tag', p);
      const b = buf[p++]!;
      tag = tag * 128 + (b & 0x7f);
      if (tag > Number.MAX_SAFE_INTEGER / 128) throw new BerError('BER: tag number too large', offset);
      if ((b & 0x80) === 0) break;
    }
  }
  if (p >= limit) throw new BerError('BER: length expected', p);
  const l0 = buf[p++]!;
  let length: number;
  if (l0 < 0x80) {
    length = l0;
  } else if (l0 === 0x80) {
    throw new BerError('BER: indefinite length not accepted', p - 1);
  } else {
    const n = l0 & 0x7f;
    if (n > 6) throw new BerError('BER: length too large', p - 1);
    length = 0;
    for (let i = 0; i < n; i++) {
      if (p >= limit) throw new BerError('BER: truncated length', p);
      length = length * 256 + buf[p++]!;
    }
  }
  const end = p + length;
  if (end > limit) throw new BerError(`BER: element of ${length} octets runs past its container`, offset);
  return { cls, constructed, tag, offset, contentOffset: p, length, end };
}

/** The children of a constructed element (or of a whole buffer region). */
export function readChildren(buf: Uint8Array, from: number, to: number): BerElement[] {
  const out: BerElement[] = [];
  for (let p = from; p < to;) {
    const el = readElement(buf, p, to);
    out.push(el);
    p = el.end;
  }
  return out;
}

export function contentOf(buf: Uint8Array, el: BerElement): Buffer {
  return Buffer.from(buf.buffer, buf.byteOffset + el.contentOffset, el.length);
}

/** INTEGER / ENUMERATED contents as a number (two's complement). */
export function decodeInteger(content: Uint8Array): number {
  if (content.length === 0) throw new BerError('BER: empty INTEGER', 0);
  let v = BigInt.asIntN(8, BigInt(content[0]!));
  for (let i = 1; i < content.length; i++) v = (v << 8n) | BigInt(content[i]!);
  return Number(v);
}

/** OBJECT IDENTIFIER contents as dotted text. */
export function decodeOid(content: Uint8Array): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of content) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (arcs.length === 0) return '';
  const first = arcs[0]!;
  const head = first < 80n ? [first / 40n, first % 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].map(String).join('.');
}

/** A 32.298 TimeStamp (9 octets) as a Date; undefined when it is not one. */
export function decodeTimeStamp(content: Uint8Array): Date | undefined {
  if (content.length !== 9) return undefined;
  const d = (i: number) => {
    const b = content[i]!;
    const hi = b >> 4;
    const lo = b & 0x0f;
    return hi > 9 || lo > 9 ? NaN : hi * 10 + lo;
  };
  const sign = content[6] === 0x2b ? 1 : content[6] === 0x2d ? -1 : 0;
  if (sign === 0) return undefined;
  const ms = Date.UTC(2000 + d(0), d(1) - 1, d(2), d(3), d(4), d(5)) - sign * (d(7) * 60 + d(8)) * 60_000;
  return Number.isNaN(ms) ? undefined : new Date(ms);
}
