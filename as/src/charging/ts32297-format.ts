/**
 * The TS 32.297 CDR file layout (pure): file header, CDR header, file name, and a walk over a
 * file's records. docs/charging.md section 4 describes every octet.
 */

import { isIP } from 'node:net';
import { ipv6Bytes } from './as-record.js';

/** 3GPP release of the records and of the file format, and the version within it. */
export const RELEASE = 18;
export const VERSION = 0;
/** Release identifier 7 means "Release 10 or later, see the extension octet". */
const RELEASE_ID = 7;
const RELEASE_EXT = RELEASE - 10;
export const FILE_HEADER_LENGTH = 54;
export const CDR_HEADER_LENGTH = 5;
/** Data record format: 1 = BER. */
export const FORMAT_BER = 1;
/** TS number code of TS 32.260 (IMS charging). */
export const TS_32260 = 9;

export const CLOSURE_REASONS = { normal: 0, size: 1, time: 2, count: 3, manual: 4 } as const;
export type ClosureReason = keyof typeof CLOSURE_REASONS;
const REASON_NAMES: Record<number, string> = {
  0: 'normal',
  1: 'size',
  2: 'time',
  3: 'count',
  4: 'manual',
  5: 'oam',
  128: 'abnormal',
  129: 'error',
  130: 'diskSpace',
  131: 'integrity',
};

export interface FileHeader {
  fileLength: number;
  openedAt: Date;
  lastAppendAt: Date;
  cdrCount: number;
  fileSequenceNumber: number;
  closureReason: ClosureReason;
  /** 20 octets, see nodeIpField(). */
  nodeIp: Buffer;
  /** CDRs known lost before this file was opened (0: none); encoded by lostCdrIndicator(). */
  lostCdrs: number;
}

/**
 * The lost-CDR indicator octet: 0 when none was lost; the high bit set says the low seven
 * bits are the exact number (1 … 126); 0xFF says 127 or more; the high bit clear with a
 * non-zero value means "at least that many" (we never write it, but read it).
 */
export function lostCdrIndicator(lost: number): number {
  if (!(lost > 0)) return 0;
  return lost >= 127 ? 0xff : 0x80 | Math.floor(lost);
}

export function decodeLostCdrIndicator(octet: number): { lostCdrs: number; lostCdrsExact: boolean } {
  if (octet === 0) return { lostCdrs: 0, lostCdrsExact: true };
  if (octet === 0x80) return { lostCdrs: 1, lostCdrsExact: false };
  if (octet === 0xff) return { lostCdrs: 127, lostCdrsExact: false };
  if (octet & 0x80) return { lostCdrs: octet & 0x7f, lostCdrsExact: true };
  return { lostCdrs: octet, lostCdrsExact: false };
}

/** The 4-octet file header timestamp: month, day, hour, minute, then the UTC offset (+00:00). */
export function headerTimestamp(at: Date): number {
  const bits =
    ((at.getUTCMonth() + 1) << 28) |
    (at.getUTCDate() << 23) |
    (at.getUTCHours() << 18) |
    (at.getUTCMinutes() << 12) |
    (1 << 11);
  return bits >>> 0;
}

export function decodeHeaderTimestamp(v: number): {
  month: number;
  day: number;
  hour: number;
  minute: number;
  offsetMinutes: number;
} {
  const sign = (v >>> 11) & 1 ? 1 : -1;
  return {
    month: v >>> 28,
    day: (v >>> 23) & 0x1f,
    hour: (v >>> 18) & 0x1f,
    minute: (v >>> 12) & 0x3f,
    offsetMinutes: sign * (((v >>> 6) & 0x1f) * 60 + (v & 0x3f)),
  };
}

/** The node's IP address field: IPv4 in the last 4 octets after 16 octets 0xFF, IPv6 after 4; unknown: all 0xFF. */
export function nodeIpField(address: string): Buffer {
  const out = Buffer.alloc(20, 0xff);
  if (isIP(address) === 4) Buffer.from(address.split('.').map(Number)).copy(out, 16);
  else if (isIP(address) === 6) ipv6Bytes(address).copy(out, 4);
  return out;
}

const releaseOctet = (version: number) => (RELEASE_ID << 5) | (version & 0x1f);

export function encodeFileHeader(h: FileHeader): Buffer {
  const b = Buffer.alloc(FILE_HEADER_LENGTH);
  b.writeUInt32BE(h.fileLength, 0);
  b.writeUInt32BE(FILE_HEADER_LENGTH, 4);
  b[8] = releaseOctet(VERSION); // highest release/version of the CDRs in the file
  b[9] = releaseOctet(VERSION); // lowest
  b.writeUInt32BE(headerTimestamp(h.openedAt), 10);
  b.writeUInt32BE(headerTimestamp(h.lastAppendAt), 14);
  b.writeUInt32BE(h.cdrCount, 18);
  b.writeUInt32BE(h.fileSequenceNumber, 22);
  b[26] = CLOSURE_REASONS[h.closureReason];
  if (h.nodeIp.length !== 20) throw new RangeError('file header: node IP field must be 20 octets');
  h.nodeIp.copy(b, 27);
  b[47] = lostCdrIndicator(h.lostCdrs);
  b.writeUInt16BE(0, 48); // CDR routeing filter: none
  b.writeUInt16BE(0, 50); // private extension: none
  b[52] = RELEASE_EXT; // high release identifier extension
  b[53] = RELEASE_EXT; // low release identifier extension
  return b;
}

export function encodeCdrHeader(recordLength: number): Buffer {
  if (recordLength > 0xffff) throw new RangeError(`CDR of ${recordLength} octets does not fit a 32.297 CDR header`);
  const b = Buffer.alloc(CDR_HEADER_LENGTH);
  b.writeUInt16BE(recordLength, 0);
  b[2] = releaseOctet(VERSION);
  b[3] = (FORMAT_BER << 5) | TS_32260;
  b[4] = RELEASE_EXT;
  return b;
}

export interface ParsedFileHeader {
  fileLength: number;
  headerLength: number;
  highRelease: number;
  highVersion: number;
  lowRelease: number;
  lowVersion: number;
  opened: ReturnType<typeof decodeHeaderTimestamp>;
  lastAppend: ReturnType<typeof decodeHeaderTimestamp>;
  cdrCount: number;
  fileSequenceNumber: number;
  closureReason: string;
  nodeIp: string;
  lostCdrs: number;
  /** false: at least lostCdrs were lost (the exact number was not known or too large). */
  lostCdrsExact: boolean;
}

function release(id: number, ext: number | undefined): number {
  return id === 7 ? 10 + (ext ?? 0) : id === 0 ? 99 : id + 3;
}

export function parseFileHeader(b: Buffer): ParsedFileHeader {
  if (b.length < 50) throw new RangeError('file header: shorter than 50 octets');
  const headerLength = b.readUInt32BE(4);
  if (headerLength < 52 || headerLength > b.length)
    throw new RangeError(`file header: bad header length ${headerLength}`);
  const filterLen = b.readUInt16BE(48);
  const privLenAt = 50 + filterLen;
  const privLen = privLenAt + 2 <= headerLength ? b.readUInt16BE(privLenAt) : 0;
  const extAt = privLenAt + 2 + privLen;
  const hiExt = extAt < headerLength ? b[extAt] : undefined;
  const loExt = extAt + 1 < headerLength ? b[extAt + 1] : undefined;
  const ip = b.subarray(27, 47);
  const v4 = ip.subarray(0, 16).every((x) => x === 0xff);
  return {
    fileLength: b.readUInt32BE(0),
    headerLength,
    highRelease: release(b[8]! >> 5, hiExt),
    highVersion: b[8]! & 0x1f,
    lowRelease: release(b[9]! >> 5, loExt),
    lowVersion: b[9]! & 0x1f,
    opened: decodeHeaderTimestamp(b.readUInt32BE(10)),
    lastAppend: decodeHeaderTimestamp(b.readUInt32BE(14)),
    cdrCount: b.readUInt32BE(18),
    fileSequenceNumber: b.readUInt32BE(22),
    closureReason: REASON_NAMES[b[26]!] ?? String(b[26]),
    nodeIp: v4
      ? [...ip.subarray(16)].join('.')
      : ip
          .subarray(4)
          .toString('hex')
          .replace(/(.{4})(?!$)/g, '$1:'),
    ...decodeLostCdrIndicator(b[47]!),
  };
}

export interface CdrHeaderInfo {
  length: number;
  release: number;
  version: number;
  format: number;
  tsNumber: number;
  headerLength: number;
}

export function parseCdrHeader(b: Buffer, at: number): CdrHeaderInfo | undefined {
  if (at + 4 > b.length) return undefined;
  const id = b[at + 2]! >> 5;
  const headerLength = id === 7 ? 5 : 4;
  if (at + headerLength > b.length) return undefined;
  return {
    length: b.readUInt16BE(at),
    release: release(id, id === 7 ? b[at + 4] : undefined),
    version: b[at + 2]! & 0x1f,
    format: b[at + 3]! >> 5,
    tsNumber: b[at + 3]! & 0x1f,
    headerLength,
  };
}

/** `<nodeId>_-_<file sequence number>.<YYYYMMDD>_-_<hhmm>+0000` (UTC). */
export function ts32297FileName(nodeId: string, fileSequenceNumber: number, openedAt: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const d = openedAt;
  return `${nodeId}_-_${fileSequenceNumber}.${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_-_${p(d.getUTCHours())}${p(d.getUTCMinutes())}+0000`;
}

export function parseTs32297FileName(name: string): { nodeId: string; fileSequenceNumber: number } | undefined {
  const m = /^(.+)_-_(\d+)\.\d{8}_-_\d{4}[+-]\d{4}$/.exec(name);
  return m ? { nodeId: m[1]!, fileSequenceNumber: Number(m[2]) } : undefined;
}

/** The next file sequence number: 1 … 4294967295, then 1 again. */
export function nextFileSequenceNumber(n: number): number {
  return n >= 0xffffffff ? 1 : n + 1;
}
