/**
 * Diameter message and AVP codec (RFC 6733 sections 3 and 4): bytes <-> structures, no I/O.
 *
 * An AVP keeps its payload as raw bytes; the typed helpers below turn values into payloads and
 * back, and `dictionary.ts` knows which type each AVP has. Lengths in headers never count the
 * padding of the last AVP; every AVP starts on a 4-byte boundary.
 */

import { isIP } from 'node:net';

export const DIAMETER_VERSION = 1;
const HEADER_LENGTH = 20;

export const FLAG_REQUEST = 0x80;
export const FLAG_PROXIABLE = 0x40;
export const FLAG_ERROR = 0x20;
export const FLAG_RETRANSMIT = 0x10;

const AVP_FLAG_VENDOR = 0x80;
const AVP_FLAG_MANDATORY = 0x40;

/** Seconds between the NTP epoch (1900) and the Unix epoch (1970). */
const NTP_UNIX_OFFSET = 2_208_988_800;

export interface Avp {
  code: number;
  /** Present when the V flag is set. */
  vendorId?: number;
  mandatory: boolean;
  /** Payload without header and padding. */
  data: Buffer;
}

export interface DiameterMessage {
  commandCode: number;
  applicationId: number;
  hopByHop: number;
  endToEnd: number;
  request: boolean;
  proxiable: boolean;
  error: boolean;
  /** T flag: a request sent again after a failover or restart. */
  retransmit: boolean;
  avps: Avp[];
}

export class DiameterDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiameterDecodeError';
  }
}

const pad4 = (n: number): number => (n + 3) & ~3;

export function encodeAvp(avp: Avp): Buffer {
  const headerLength = avp.vendorId === undefined ? 8 : 12;
  const length = headerLength + avp.data.length;
  const out = Buffer.alloc(pad4(length));
  out.writeUInt32BE(avp.code >>> 0, 0);
  const flags = (avp.vendorId === undefined ? 0 : AVP_FLAG_VENDOR) | (avp.mandatory ? AVP_FLAG_MANDATORY : 0);
  out.writeUInt32BE(((flags << 24) | length) >>> 0, 4);
  if (avp.vendorId !== undefined) out.writeUInt32BE(avp.vendorId >>> 0, 8);
  avp.data.copy(out, headerLength);
  return out;
}

export function encodeAvps(avps: readonly Avp[]): Buffer {
  return Buffer.concat(avps.map(encodeAvp));
}

export function decodeAvps(buf: Buffer): Avp[] {
  const avps: Avp[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 8) throw new DiameterDecodeError(`truncated AVP header at ${off}`);
    const code = buf.readUInt32BE(off);
    const word = buf.readUInt32BE(off + 4);
    const flags = word >>> 24;
    const length = word & 0xffffff;
    const vendor = (flags & AVP_FLAG_VENDOR) !== 0;
    const headerLength = vendor ? 12 : 8;
    if (length < headerLength || off + length > buf.length)
      throw new DiameterDecodeError(`AVP ${code} length ${length} out of bounds at ${off}`);
    const avp: Avp = {
      code,
      mandatory: (flags & AVP_FLAG_MANDATORY) !== 0,
      data: Buffer.from(buf.subarray(off + headerLength, off + length)),
    };
    if (vendor) avp.vendorId = buf.readUInt32BE(off + 8);
    avps.push(avp);
    // The last AVP of a message may omit its padding only if the sender miscounted; accept either.
    off = Math.min(buf.length, off + pad4(length));
  }
  return avps;
}

export function encodeMessage(msg: DiameterMessage): Buffer {
  const body = encodeAvps(msg.avps);
  const out = Buffer.alloc(HEADER_LENGTH + body.length);
  out.writeUInt32BE(((DIAMETER_VERSION << 24) | out.length) >>> 0, 0);
  const flags =
    (msg.request ? FLAG_REQUEST : 0) |
    (msg.proxiable ? FLAG_PROXIABLE : 0) |
    (msg.error ? FLAG_ERROR : 0) |
    (msg.retransmit ? FLAG_RETRANSMIT : 0);
  out.writeUInt32BE(((flags << 24) | msg.commandCode) >>> 0, 4);
  out.writeUInt32BE(msg.applicationId >>> 0, 8);
  out.writeUInt32BE(msg.hopByHop >>> 0, 12);
  out.writeUInt32BE(msg.endToEnd >>> 0, 16);
  body.copy(out, HEADER_LENGTH);
  return out;
}

/** Length of the message starting at `buf[0]` once 4 bytes are there; undefined before. */
export function messageLength(buf: Buffer): number | undefined {
  if (buf.length < 4) return undefined;
  if (buf[0] !== DIAMETER_VERSION) throw new DiameterDecodeError(`unsupported Diameter version ${buf[0]}`);
  const length = buf.readUInt32BE(0) & 0xffffff;
  if (length < HEADER_LENGTH || length % 4 !== 0) throw new DiameterDecodeError(`bad message length ${length}`);
  return length;
}

export function decodeMessage(buf: Buffer): DiameterMessage {
  const length = messageLength(buf);
  if (length === undefined || buf.length < length) throw new DiameterDecodeError('truncated message');
  const word = buf.readUInt32BE(4);
  const flags = word >>> 24;
  return {
    commandCode: word & 0xffffff,
    applicationId: buf.readUInt32BE(8),
    hopByHop: buf.readUInt32BE(12),
    endToEnd: buf.readUInt32BE(16),
    request: (flags & FLAG_REQUEST) !== 0,
    proxiable: (flags & FLAG_PROXIABLE) !== 0,
    error: (flags & FLAG_ERROR) !== 0,
    retransmit: (flags & FLAG_RETRANSMIT) !== 0,
    avps: decodeAvps(buf.subarray(HEADER_LENGTH, length)),
  };
}

// ---- basic data formats (RFC 6733 section 4.2 / 4.3) ----

export const fromUtf8 = (s: string): Buffer => Buffer.from(s, 'utf8');
export const toUtf8 = (b: Buffer): string => b.toString('utf8');

export function fromUnsigned32(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`Unsigned32 out of range: ${n}`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
export function toUnsigned32(b: Buffer): number {
  if (b.length !== 4) throw new DiameterDecodeError(`Unsigned32 of ${b.length} bytes`);
  return b.readUInt32BE(0);
}

export function fromInteger32(n: number): Buffer {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`Integer32 out of range: ${n}`);
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
}
export function toInteger32(b: Buffer): number {
  if (b.length !== 4) throw new DiameterDecodeError(`Integer32 of ${b.length} bytes`);
  return b.readInt32BE(0);
}

export function fromUnsigned64(n: bigint | number): Buffer {
  const v = BigInt(n);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`Unsigned64 out of range: ${v}`);
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(v, 0);
  return b;
}
export function toUnsigned64(b: Buffer): bigint {
  if (b.length !== 8) throw new DiameterDecodeError(`Unsigned64 of ${b.length} bytes`);
  return b.readBigUInt64BE(0);
}

/** Time: seconds since 1900-01-01 UTC in 32 bits (wraps in 2036 as RFC 6733 says: after that, era 1). */
export function fromTime(d: Date): Buffer {
  const ntp = Math.floor(d.getTime() / 1000) + NTP_UNIX_OFFSET;
  return fromUnsigned32(ntp % 0x1_0000_0000);
}
export function toTime(b: Buffer): Date {
  let ntp = toUnsigned32(b);
  // Values below 2^31 denote era 1 (from 2036-02-07), per RFC 6733 section 4.3.1.
  if (ntp < 0x80000000) ntp += 0x1_0000_0000;
  return new Date((ntp - NTP_UNIX_OFFSET) * 1000);
}

/** Address: address family (1 IPv4, 2 IPv6) then the address bytes. */
export function fromAddress(ip: string): Buffer {
  const kind = isIP(ip);
  if (kind === 4) return Buffer.from([0, 1, ...ip.split('.').map(Number)]);
  if (kind === 6) return Buffer.concat([Buffer.from([0, 2]), ipv6Bytes(ip)]);
  throw new RangeError(`not an IP address: ${ip}`);
}
export function toAddress(b: Buffer): string {
  const family = b.readUInt16BE(0);
  if (family === 1 && b.length === 6) return [...b.subarray(2)].join('.');
  if (family === 2 && b.length === 18) {
    const groups: string[] = [];
    for (let i = 2; i < 18; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  throw new DiameterDecodeError(`Address of family ${family}, ${b.length} bytes`);
}

function ipv6Bytes(ip: string): Buffer {
  const zone = ip.indexOf('%');
  const bare = zone >= 0 ? ip.slice(0, zone) : ip;
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const parse = (part: string | undefined): number[] => {
    if (!part) return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map(Number);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = parse(head);
  const t = parse(tail);
  const groups = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}
