/**
 * Incremental MSRP framing: TCP data goes in in pieces of any size, framing events come out
 * (a message's head, pieces of its body, its end). Pure: no I/O.
 *
 * Memory stays bounded whatever the sender does: the head (start line and headers) is held
 * until complete and refused beyond `maxHeadBytes`; a body is never held: each piece is handed
 * on as it arrives, only the few bytes that may be the start of the end-line are kept back.
 *
 * The body ends at CRLF + `-------<tid>` + flag + CRLF (RFC 4975 section 7.1). A sequence that
 * looks like it but has another character in the flag position is body data.
 *
 * An error (bad start line, header line, oversized head, an end-line for another transaction)
 * makes the stream unusable: no later byte can be trusted to start a message, so the caller
 * closes the connection (RFC 4975 section 7.1 leaves no way to resynchronise).
 */
import {
  type ContinuationFlag,
  type MsrpHead,
  type MsrpHeader,
  MsrpSyntaxError,
  parseHeaderLine,
  parseStartLine,
} from './message.js';

export type FrameEvent =
  | { type: 'head'; head: MsrpHead; hasBody: boolean }
  | { type: 'body'; data: Buffer }
  | { type: 'end'; flag: ContinuationFlag }
  | { type: 'error'; reason: string };

export const DEFAULT_MAX_HEAD_BYTES = 16 * 1024;
export const MAX_HEADERS = 64;

const CRLF = Buffer.from('\r\n');
const DASHES = '-------';
const FLAGS = new Set([0x24 /* $ */, 0x2b /* + */, 0x23 /* # */]);

export class MsrpFramer {
  private pending: Buffer = Buffer.alloc(0);
  private state: 'head' | 'body' | 'dead' = 'head';
  private headBytes = 0;
  private start?: ReturnType<typeof parseStartLine>;
  private headers: MsrpHeader[] = [];
  private delimiter = Buffer.alloc(0);
  /** Nothing of the body read yet: an end-line right after the blank line is an empty body. */
  private atBodyStart = false;

  constructor(private readonly maxHeadBytes = DEFAULT_MAX_HEAD_BYTES) {}

  /** True once an error was reported: the stream cannot be read on. */
  get failed(): boolean {
    return this.state === 'dead';
  }

  /** True between messages (nothing of a message received yet). */
  get idle(): boolean {
    return this.state === 'head' && this.start === undefined && this.pending.length === 0;
  }

  push(data: Buffer): FrameEvent[] {
    if (this.state === 'dead') return [];
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    const out: FrameEvent[] = [];
    try {
      // each turn consumes at least one line, a body piece or an end-line, or stops
      for (;;) {
        const before = this.pending.length;
        if (this.state === 'head') this.readHead(out);
        else if (this.state === 'body') this.readBody(out);
        if ((this.state as string) === 'dead' || this.pending.length === before || this.pending.length === 0) break;
      }
    } catch (err) {
      this.state = 'dead';
      this.pending = Buffer.alloc(0);
      out.push({ type: 'error', reason: err instanceof MsrpSyntaxError ? err.message : String(err) });
    }
    return out;
  }

  private readHead(out: FrameEvent[]): void {
    for (;;) {
      const eol = this.pending.indexOf(CRLF);
      if (eol < 0) {
        if (this.headBytes + this.pending.length > this.maxHeadBytes)
          throw new MsrpSyntaxError(`head longer than ${this.maxHeadBytes} bytes`);
        return;
      }
      this.headBytes += eol + 2;
      if (this.headBytes > this.maxHeadBytes) throw new MsrpSyntaxError(`head longer than ${this.maxHeadBytes} bytes`);
      const line = this.pending.subarray(0, eol).toString('utf8');
      this.pending = this.pending.subarray(eol + 2);
      if (this.start === undefined) {
        // stray line ends between messages are tolerated
        if (line === '') {
          this.headBytes = 0;
          continue;
        }
        this.start = parseStartLine(line);
        continue;
      }
      const tid = this.start.tid;
      if (line === '') {
        out.push({ type: 'head', head: { ...this.start, headers: this.headers } as MsrpHead, hasBody: true });
        this.delimiter = Buffer.from(`\r\n${DASHES}${tid}`, 'utf8');
        this.atBodyStart = true;
        this.state = 'body';
        return;
      }
      if (line.startsWith(DASHES)) {
        const flag = line.slice(DASHES.length + tid.length);
        if (
          line.slice(DASHES.length, DASHES.length + tid.length) !== tid ||
          flag.length !== 1 ||
          !FLAGS.has(flag.charCodeAt(0))
        ) {
          throw new MsrpSyntaxError(`end-line does not close transaction ${tid}: ${line.slice(0, 60)}`);
        }
        out.push({ type: 'head', head: { ...this.start, headers: this.headers } as MsrpHead, hasBody: false });
        out.push({ type: 'end', flag: flag as ContinuationFlag });
        this.reset();
        return;
      }
      if (this.headers.length >= MAX_HEADERS) throw new MsrpSyntaxError(`more than ${MAX_HEADERS} headers`);
      this.headers.push(parseHeaderLine(line));
    }
  }

  private readBody(out: FrameEvent[]): void {
    const d = this.delimiter;
    if (this.atBodyStart) {
      // lenient: some senders write an empty body as the blank line directly followed by the
      // end-line (no CRLF of an empty data part)
      const bare = d.subarray(2);
      const seen = Math.min(this.pending.length, bare.length + 3);
      const prefix = this.pending.subarray(0, Math.min(seen, bare.length));
      if (bare.subarray(0, prefix.length).equals(prefix)) {
        if (this.pending.length < bare.length + 3) return;
        const flag = this.pending[bare.length]!;
        if (FLAGS.has(flag) && this.pending[bare.length + 1] === 0x0d && this.pending[bare.length + 2] === 0x0a) {
          out.push({ type: 'end', flag: String.fromCharCode(flag) as ContinuationFlag });
          this.pending = this.pending.subarray(bare.length + 3);
          this.reset();
          return;
        }
      }
      this.atBodyStart = false;
    }
    let from = 0;
    for (;;) {
      const at = this.pending.indexOf(d, from);
      if (at < 0) {
        // keep back what may be the start of the delimiter
        const keep = Math.min(this.pending.length, d.length - 1);
        const cut = this.pending.length - keep;
        if (cut > 0) this.emitBody(out, this.pending.subarray(0, cut));
        this.pending = this.pending.subarray(cut);
        return;
      }
      const after = at + d.length;
      if (this.pending.length < after + 3) {
        // the end-line may be complete in the next piece: hand on what is before it
        if (at > 0) this.emitBody(out, this.pending.subarray(0, at));
        this.pending = this.pending.subarray(at);
        return;
      }
      const flag = this.pending[after]!;
      if (FLAGS.has(flag) && this.pending[after + 1] === 0x0d && this.pending[after + 2] === 0x0a) {
        if (at > 0) this.emitBody(out, this.pending.subarray(0, at));
        out.push({ type: 'end', flag: String.fromCharCode(flag) as ContinuationFlag });
        this.pending = this.pending.subarray(after + 3);
        this.reset();
        return;
      }
      from = at + 1;
    }
  }

  private emitBody(out: FrameEvent[], data: Buffer): void {
    this.atBodyStart = false;
    // a view of the received piece (never reused by the framer): no copy per piece
    out.push({ type: 'body', data });
  }

  private reset(): void {
    this.state = 'head';
    this.start = undefined;
    this.headers = [];
    this.headBytes = 0;
    this.atBodyStart = false;
  }
}

/** Reads complete messages from one buffer (tests, tools): heads with their whole body. */
export function parseMessages(
  data: Buffer,
  maxHeadBytes = DEFAULT_MAX_HEAD_BYTES,
): Array<{ head: MsrpHead; body?: Buffer; flag: ContinuationFlag }> {
  const framer = new MsrpFramer(maxHeadBytes);
  const out: Array<{ head: MsrpHead; body?: Buffer; flag: ContinuationFlag }> = [];
  let current: { head: MsrpHead; parts: Buffer[]; hasBody: boolean } | undefined;
  for (const ev of framer.push(data)) {
    if (ev.type === 'error') throw new MsrpSyntaxError(ev.reason);
    if (ev.type === 'head') current = { head: ev.head, parts: [], hasBody: ev.hasBody };
    else if (ev.type === 'body') current?.parts.push(ev.data);
    else if (current) {
      out.push(
        current.hasBody
          ? { head: current.head, body: Buffer.concat(current.parts), flag: ev.flag }
          : { head: current.head, flag: ev.flag },
      );
      current = undefined;
    }
  }
  if (current || !framer.idle) throw new MsrpSyntaxError('incomplete message');
  return out;
}

/** One complete message from a buffer holding exactly one. */
export function parseMessage(data: Buffer | string): { head: MsrpHead; body?: Buffer; flag: ContinuationFlag } {
  const all = parseMessages(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  if (all.length !== 1) throw new MsrpSyntaxError(`expected one message, found ${all.length}`);
  return all[0]!;
}
