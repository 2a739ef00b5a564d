/**
 * MSRP messages (RFC 4975 section 7): the start line and headers of requests (SEND, REPORT,
 * AUTH and any other method) and responses, the header values with a structure (Byte-Range,
 * Status, Success-Report / Failure-Report, paths), and serialisation. Pure: no I/O.
 *
 * A message on the wire:
 *   MSRP <tid> <METHOD>            or   MSRP <tid> <code>[ <comment>]
 *   headers (To-Path, From-Path first; the MIME headers Content-* last)
 *   [CRLF body CRLF]                     (only when there is a body)
 *   -------<tid><flag>CRLF               flag: $ complete, + continued, # interrupted
 *
 * Streamed bodies are the framer's job (framer.ts); here a body, when present, is whole.
 */

export type ContinuationFlag = '$' | '+' | '#';

export interface MsrpHeader {
  name: string;
  value: string;
}

export interface MsrpRequestHead {
  kind: 'request';
  tid: string;
  method: string;
  headers: MsrpHeader[];
}

export interface MsrpResponseHead {
  kind: 'response';
  tid: string;
  code: number;
  comment?: string;
  headers: MsrpHeader[];
}

export type MsrpHead = MsrpRequestHead | MsrpResponseHead;

/** A whole message: its head, its body (empty when it had none) and the end-line flag. */
export interface MsrpMessage {
  head: MsrpHead;
  body?: Buffer;
  flag: ContinuationFlag;
}

export class MsrpSyntaxError extends Error {
  override readonly name = 'MsrpSyntaxError';
}

/** transact-id = ident = ALPHANUM 3*31ident-char (RFC 4975 section 9). */
export const TRANSACTION_ID = /^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$/;
const METHOD = /^[A-Z]+$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;

/** Case-insensitive lookup of the first header of that name. */
export function headerValue(head: MsrpHead, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const h of head.headers) if (h.name.toLowerCase() === lower) return h.value;
  return undefined;
}

// ---------------------------------------------------------------------------
// Byte-Range: <start>-<end|*>/<total|*>
// ---------------------------------------------------------------------------

export interface ByteRange {
  /** 1-based index of the chunk's first byte. */
  start: number;
  /** Index of its last byte, or undefined for `*` (not known when the header was written). */
  end?: number;
  /** The whole message's size, or undefined for `*`. */
  total?: number;
}

export function parseByteRange(text: string): ByteRange {
  const m = /^\s*(\d{1,15})-(\d{1,15}|\*)\/(\d{1,15}|\*)\s*$/.exec(text);
  if (!m) throw new MsrpSyntaxError(`bad Byte-Range: ${text}`);
  const start = Number(m[1]);
  if (start < 1) throw new MsrpSyntaxError(`Byte-Range starts at 1: ${text}`);
  const range: ByteRange = { start };
  if (m[2] !== '*') range.end = Number(m[2]);
  if (m[3] !== '*') range.total = Number(m[3]);
  if (range.end !== undefined && range.end < start - 1)
    throw new MsrpSyntaxError(`Byte-Range ends before it starts: ${text}`);
  return range;
}

export function formatByteRange(r: ByteRange): string {
  return `${r.start}-${r.end ?? '*'}/${r.total ?? '*'}`;
}

/** The Byte-Range of a head; absent means the whole message is in this chunk (1-*\/*). */
export function byteRangeOf(head: MsrpHead): ByteRange {
  const v = headerValue(head, 'Byte-Range');
  return v === undefined ? { start: 1 } : parseByteRange(v);
}

// ---------------------------------------------------------------------------
// Status: <namespace> <code>[ <comment>]  (REPORT requests)
// ---------------------------------------------------------------------------

export interface MsrpStatusValue {
  /** "000": the MSRP namespace, the only one defined. */
  namespace: string;
  code: number;
  comment?: string;
}

export function parseStatus(text: string): MsrpStatusValue {
  const m = /^\s*(\d{3}) (\d{3})(?: (.*))?$/.exec(text);
  if (!m) throw new MsrpSyntaxError(`bad Status: ${text}`);
  const s: MsrpStatusValue = { namespace: m[1]!, code: Number(m[2]) };
  if (m[3] !== undefined) s.comment = m[3];
  return s;
}

export function formatStatus(s: MsrpStatusValue): string {
  return `${s.namespace} ${s.code}${s.comment !== undefined ? ` ${s.comment}` : ''}`;
}

// ---------------------------------------------------------------------------
// Success-Report (yes | no, default no) and Failure-Report (yes | no | partial, default yes)
// ---------------------------------------------------------------------------

export type FailureReport = 'yes' | 'no' | 'partial';

export function successReportOf(head: MsrpHead): boolean {
  const v = headerValue(head, 'Success-Report');
  if (v === undefined) return false;
  const t = v.trim().toLowerCase();
  if (t !== 'yes' && t !== 'no') throw new MsrpSyntaxError(`bad Success-Report: ${v}`);
  return t === 'yes';
}

export function failureReportOf(head: MsrpHead): FailureReport {
  const v = headerValue(head, 'Failure-Report');
  if (v === undefined) return 'yes';
  const t = v.trim().toLowerCase();
  if (t !== 'yes' && t !== 'no' && t !== 'partial') throw new MsrpSyntaxError(`bad Failure-Report: ${v}`);
  return t;
}

// ---------------------------------------------------------------------------
// Serialisation
// ---------------------------------------------------------------------------

/** To-Path, From-Path first (RFC 4975 section 7.1), the MIME headers (Content-*) last. */
export function orderHeaders(headers: readonly MsrpHeader[]): MsrpHeader[] {
  const rank = (h: MsrpHeader): number => {
    const n = h.name.toLowerCase();
    if (n === 'to-path') return 0;
    if (n === 'from-path') return 1;
    if (n.startsWith('content-')) return 3;
    return 2;
  };
  return headers
    .map((h, i) => ({ h, i }))
    .sort((a, b) => rank(a.h) - rank(b.h) || a.i - b.i)
    .map((x) => x.h);
}

function checkHeaders(headers: readonly MsrpHeader[]): void {
  for (const h of headers) {
    if (!HEADER_NAME.test(h.name)) throw new MsrpSyntaxError(`bad header name: ${h.name}`);
    if (/[\r\n]/.test(h.value)) throw new MsrpSyntaxError(`line break in header ${h.name}`);
  }
}

/** The start line and headers, CRLF-terminated, in the order the RFC asks. */
export function serializeHead(head: MsrpHead): string {
  if (!TRANSACTION_ID.test(head.tid)) throw new MsrpSyntaxError(`bad transaction id: ${head.tid}`);
  checkHeaders(head.headers);
  const start =
    head.kind === 'request'
      ? `MSRP ${head.tid} ${head.method}`
      : `MSRP ${head.tid} ${String(head.code).padStart(3, '0')}${head.comment !== undefined ? ` ${head.comment}` : ''}`;
  return `${start}\r\n${orderHeaders(head.headers)
    .map((h) => `${h.name}: ${h.value}\r\n`)
    .join('')}`;
}

/** The end-line: seven dashes, the transaction id, the flag, CRLF. */
export function endLine(tid: string, flag: ContinuationFlag): string {
  return `-------${tid}${flag}\r\n`;
}

/**
 * A whole message on the wire. A body (even an empty Buffer) gets the blank line before it
 * and the CRLF after it; no body, the end-line follows the headers.
 */
export function serializeMessage(msg: MsrpMessage): Buffer {
  const head = serializeHead(msg.head);
  if (msg.body === undefined) return Buffer.from(head + endLine(msg.head.tid, msg.flag), 'utf8');
  return Buffer.concat([
    Buffer.from(`${head}\r\n`, 'utf8'),
    msg.body,
    Buffer.from(`\r\n${endLine(msg.head.tid, msg.flag)}`, 'utf8'),
  ]);
}

/** What to send in front of a streamed body: the head and the blank line. */
export function bodyPreamble(head: MsrpHead): Buffer {
  return Buffer.from(`${serializeHead(head)}\r\n`, 'utf8');
}

/** What ends a streamed body: CRLF and the end-line. */
export function bodyTrailer(tid: string, flag: ContinuationFlag): Buffer {
  return Buffer.from(`\r\n${endLine(tid, flag)}`, 'utf8');
}

// ---------------------------------------------------------------------------
// Start-line and header parsing (used by the framer)
// ---------------------------------------------------------------------------

/** The start line: `MSRP tid METHOD` or `MSRP tid code[ comment]`. */
export function parseStartLine(line: string): Omit<MsrpRequestHead, 'headers'> | Omit<MsrpResponseHead, 'headers'> {
  const m = /^MSRP ([^ ]+) ([^ ]+)(?: (.*))?$/.exec(line);
  if (!m) throw new MsrpSyntaxError(`bad start line: ${line.slice(0, 80)}`);
  const tid = m[1]!;
  if (!TRANSACTION_ID.test(tid)) throw new MsrpSyntaxError(`bad transaction id: ${tid.slice(0, 40)}`);
  if (/^\d{3}$/.test(m[2]!)) {
    const r: Omit<MsrpResponseHead, 'headers'> = { kind: 'response', tid, code: Number(m[2]) };
    if (m[3] !== undefined) r.comment = m[3];
    return r;
  }
  if (!METHOD.test(m[2]!) || m[3] !== undefined) throw new MsrpSyntaxError(`bad method: ${line.slice(0, 80)}`);
  return { kind: 'request', tid, method: m[2]! };
}

/** One header line `Name: value` (the single space after the colon is optional on input). */
export function parseHeaderLine(line: string): MsrpHeader {
  const colon = line.indexOf(':');
  if (colon <= 0) throw new MsrpSyntaxError(`header line without a name: ${line.slice(0, 80)}`);
  const name = line.slice(0, colon);
  if (!HEADER_NAME.test(name)) throw new MsrpSyntaxError(`bad header name: ${name.slice(0, 40)}`);
  return {
    name,
    value: line
      .slice(colon + 1)
      .replace(/^[ \t]+/, '')
      .replace(/[ \t]+$/, ''),
  };
}
