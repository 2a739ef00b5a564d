/**
 * Netstrings (`<length>:<payload>,`), the framing of Kamailio's evapi stream. Pure: the
 * decoder takes whatever chunks TCP delivers and returns the complete payloads.
 */
export class NetstringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetstringError';
  }
}

export function encodeNetstring(payload: string): Buffer {
  const body = Buffer.from(payload, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(',')]);
}

export class NetstringDecoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLength = 1024 * 1024) {}

  /** Appends a chunk; returns every payload completed by it, in order. Throws on bad framing. */
  push(chunk: Buffer): string[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: string[] = [];
    let pos = 0;
    for (;;) {
      const colon = this.buf.indexOf(0x3a, pos); // ':'
      if (colon < 0) {
        if (this.buf.length - pos > 10) throw new NetstringError('length prefix too long');
        break;
      }
      const digits = this.buf.toString('latin1', pos, colon);
      if (!/^\d{1,10}$/.test(digits)) throw new NetstringError(`bad length prefix '${digits.slice(0, 12)}'`);
      const len = Number(digits);
      if (len > this.maxLength) throw new NetstringError(`payload of ${len} bytes over the ${this.maxLength} limit`);
      const end = colon + 1 + len;
      if (this.buf.length < end + 1) break; // incomplete: wait for more
      if (this.buf[end] !== 0x2c) throw new NetstringError('missing trailing comma');
      out.push(this.buf.toString('utf8', colon + 1, end));
      pos = end + 1;
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(pos);
    return out;
  }
}
