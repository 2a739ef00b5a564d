/**
 * BER (ITU-T X.690) encoding of the few ASN.1 types TS 32.298 records use. Pure: values in,
 * bytes out, no I/O. Only definite lengths are written (short form below 128 octets, long
 * form above), which is also what the DER subset requires of them.
 *
 * A value is encoded bottom-up: `prim()` and `cons()` return the complete TLV of one element,
 * and a constructed element is the concatenation of its children's TLVs.
 */

export type TagClass = 'universal' | 'application' | 'context' | 'private';

const CLASS_BITS: Record<TagClass, number> = { universal: 0x00, application: 0x40, context: 0x80, private: 0xc0 };

/** Universal tag numbers used here. */
export const UNIVERSAL = {
  BOOLEAN: 1,
  INTEGER: 2,
  OCTET_STRING: 4,
  NULL: 5,
  OBJECT_IDENTIFIER: 6,
  ENUMERATED: 10,
  UTF8String: 12,
  SEQUENCE: 16,
  SET: 17,
  IA5String: 22,
  GraphicString: 25,
} as const;

/** Identifier octets of a tag: low-tag form below 31, high-tag form (base 128) above. */
export function encodeTag(cls: TagClass, constructed: boolean, tag: number): Buffer {
  if (!Number.isSafeInteger(tag) || tag < 0) throw new RangeError(`BER: bad tag number ${tag}`);
  const first = CLASS_BITS[cls] | (constructed ? 0x20 : 0);
  if (tag < 31) return Buffer.from([first | tag]);
  return Buffer.from([first | 0x1f, ...base128(tag)]);
}

/** Length octets: short form for 0..127, else 0x80|n followed by n big-endian octets. */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`BER: bad length ${length}`);
  if (length < 0x80) return Buffer.from([length]);
  const octets: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) octets.unshift(n % 256);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** One primitive element. */
export function prim(cls: TagClass, tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([encodeTag(cls, false, tag), encodeLength(content.length), content]);
}

/** One constructed element holding the given (already encoded) children in order. */
export function cons(cls: TagClass, tag: number, children: readonly Uint8Array[]): Buffer {
  const content = Buffer.concat(children);
  return Buffer.concat([encodeTag(cls, true, tag), encodeLength(content.length), content]);
}

/** Contents octets of an INTEGER or ENUMERATED: minimal two's complement. */
export function integerContent(value: number | bigint): Buffer {
  let v = BigInt(value);
  const out: number[] = [];
  // emit octets until the remaining value is only sign extension of the last octet's top bit
  for (;;) {
    const octet = Number(v & 0xffn);
    out.unshift(octet);
    v >>= 8n;
    if ((v === 0n && (octet & 0x80) === 0) || (v === -1n && (octet & 0x80) !== 0)) break;
  }
  return Buffer.from(out);
}

export function booleanContent(value: boolean): Buffer {
  return Buffer.from([value ? 0xff : 0x00]);
}

/** Contents octets of an OBJECT IDENTIFIER given as dotted text (arcs may exceed 2^53). */
export function oidContent(dotted: string): Buffer {
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(dotted)) throw new RangeError(`BER: bad OID ${dotted}`);
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const [a0, a1] = [arcs[0]!, arcs[1]!];
  if (a0 < 2n && a1 > 39n) throw new RangeError(`BER: bad OID ${dotted}`);
  const out: number[] = [...base128(a0 * 40n + a1)];
  for (const arc of arcs.slice(2)) out.push(...base128(arc));
  return Buffer.from(out);
}

/** Big-endian base-128 digits, all but the last with the top bit set. */
function base128(value: number | bigint): number[] {
  let v = BigInt(value);
  const digits = [Number(v & 0x7fn)];
  v >>= 7n;
  while (v > 0n) {
    digits.unshift(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  return digits;
}

/**
 * The 32.298 TimeStamp: 9 octets, YY MM DD hh mm ss as BCD (first digit in the high nibble),
 * the ASCII sign of the UTC offset, then the offset's hours and minutes as BCD. The time is
 * written in the zone of `offsetMinutes` (0: UTC).
 */
export function timeStampContent(at: Date, offsetMinutes = 0): Buffer {
  if (Number.isNaN(at.getTime())) throw new RangeError('BER: invalid date');
  if (!Number.isInteger(offsetMinutes) || Math.abs(offsetMinutes) > 23 * 60 + 59)
    throw new RangeError('BER: bad UTC offset');
  const local = new Date(at.getTime() + offsetMinutes * 60_000);
  const bcd = (n: number) => ((Math.floor(n / 10) % 10) << 4) | (n % 10);
  const abs = Math.abs(offsetMinutes);
  return Buffer.from([
    bcd(local.getUTCFullYear() % 100),
    bcd(local.getUTCMonth() + 1),
    bcd(local.getUTCDate()),
    bcd(local.getUTCHours()),
    bcd(local.getUTCMinutes()),
    bcd(local.getUTCSeconds()),
    offsetMinutes < 0 ? 0x2d : 0x2b,
    bcd(Math.floor(abs / 60)),
    bcd(abs % 60),
  ]);
}

// Shorthands for context-tagged fields (the 32.298 modules use IMPLICIT TAGS).

export const ctx = {
  integer: (tag: number, v: number | bigint) => prim('context', tag, integerContent(v)),
  enumerated: (tag: number, v: number) => prim('context', tag, integerContent(v)),
  boolean: (tag: number, v: boolean) => prim('context', tag, booleanContent(v)),
  null: (tag: number) => prim('context', tag, Buffer.alloc(0)),
  octets: (tag: number, v: Uint8Array) => prim('context', tag, v),
  /** GraphicString, IA5String and UTF8String are all octets of the text (UTF-8 / ASCII). */
  text: (tag: number, v: string) => prim('context', tag, Buffer.from(v, 'utf8')),
  ia5: (tag: number, v: string) => {
    if (!/^[\x00-\x7f]*$/.test(v)) throw new RangeError('BER: IA5String holds ASCII only');
    return prim('context', tag, Buffer.from(v, 'ascii'));
  },
  timeStamp: (tag: number, at: Date) => prim('context', tag, timeStampContent(at)),
  cons: (tag: number, children: readonly Uint8Array[]) => cons('context', tag, children),
};

export const universal = {
  sequence: (children: readonly Uint8Array[]) => cons('universal', UNIVERSAL.SEQUENCE, children),
  set: (children: readonly Uint8Array[]) => cons('universal', UNIVERSAL.SET, children),
  integer: (v: number | bigint) => prim('universal', UNIVERSAL.INTEGER, integerContent(v)),
  enumerated: (v: number) => prim('universal', UNIVERSAL.ENUMERATED, integerContent(v)),
  boolean: (v: boolean) => prim('universal', UNIVERSAL.BOOLEAN, booleanContent(v)),
  octetString: (v: Uint8Array) => prim('universal', UNIVERSAL.OCTET_STRING, v),
  utf8: (v: string) => prim('universal', UNIVERSAL.UTF8String, Buffer.from(v, 'utf8')),
  ia5: (v: string) => {
    if (!/^[\x00-\x7f]*$/.test(v)) throw new RangeError('BER: IA5String holds ASCII only');
    return prim('universal', UNIVERSAL.IA5String, Buffer.from(v, 'ascii'));
  },
  oid: (dotted: string) => prim('universal', UNIVERSAL.OBJECT_IDENTIFIER, oidContent(dotted)),
};
