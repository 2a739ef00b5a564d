/**
 * Reads our TS 32.297 files with code we did not write: the BER of every record goes through
 * asn1js (a maintained ASN.1 library, used in tests only), and each component is checked
 * against the aSRecord table of docs/charging.md (tag → name → type). The 32.297 headers are
 * read here from their octet positions, not with the project's parser.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as asn1js from 'asn1js';

const DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../docs/charging.md');

export interface DocField {
  tag: number;
  name: string;
  type: string;
}

/** The aSRecord rows of docs/charging.md section 1, and the cause enumeration of section 2. */
export function docTables(): { fields: Map<number, DocField>; causes: Map<string, number> } {
  const text = readFileSync(DOC, 'utf8');
  const s1 = text.slice(text.indexOf('## 1.'), text.indexOf('## 2.'));
  const s2 = text.slice(text.indexOf('## 2.'), text.indexOf('## 3.'));
  const fields = new Map<number, DocField>();
  for (const m of s1.matchAll(/^\| (\d+) \| `([^`]+)` \| ([^|]+) \|/gm))
    fields.set(Number(m[1]), { tag: Number(m[1]), name: m[2]!, type: m[3]!.trim() });
  const causes = new Map<string, number>();
  for (const m of s2.matchAll(/^\| (\d+) \| `([^`]+)` \|/gm)) causes.set(m[2]!, Number(m[1]));
  return { fields, causes };
}

type Kind = 'integer' | 'null' | 'octets' | 'text' | 'timestamp' | 'constructed';

function kindOf(type: string): Kind {
  if (type.startsWith('INTEGER') || type.startsWith('ENUMERATED')) return 'integer';
  if (type.startsWith('NULL')) return 'null';
  if (type.startsWith('OCTET STRING')) return 'octets';
  if (type.startsWith('GraphicString') || type.startsWith('UTF8String')) return 'text';
  if (type.startsWith('TimeStamp')) return 'timestamp';
  return 'constructed';
}

function int(b: Uint8Array): number {
  let v = BigInt.asIntN(8, BigInt(b[0]!));
  for (let i = 1; i < b.length; i++) v = (v << 8n) | BigInt(b[i]!);
  return Number(v);
}

/** The 32.298 TimeStamp read by the specification's octet layout (BCD, sign, BCD offset). */
function timeStamp(b: Uint8Array): string {
  assert.equal(b.length, 9, 'TimeStamp is 9 octets');
  const d = (i: number) => (b[i]! >> 4) * 10 + (b[i]! & 15);
  for (let i = 0; i < 9; i++) if (i !== 6) assert.ok(b[i]! >> 4 < 10 && (b[i]! & 15) < 10, `BCD digit in octet ${i}`);
  assert.ok(b[6] === 0x2b || b[6] === 0x2d, 'sign octet');
  const sign = b[6] === 0x2b ? 1 : -1;
  return new Date(
    Date.UTC(2000 + d(0), d(1) - 1, d(2), d(3), d(4), d(5)) - sign * (d(7) * 60 + d(8)) * 60_000,
  ).toISOString();
}

function children(b: asn1js.BaseBlock): asn1js.BaseBlock[] {
  return ((b as asn1js.Constructed).valueBlock.value ?? []) as asn1js.BaseBlock[];
}

function primText(b: asn1js.BaseBlock): string {
  return Buffer.from((b as asn1js.Primitive).valueBlock.valueHexView).toString('utf8');
}

/** An InvolvedParty CHOICE: which alternative and the URI. */
function party(b: asn1js.BaseBlock): string {
  assert.equal(b.idBlock.tagClass, 3);
  assert.ok(b.idBlock.tagNumber <= 4, 'InvolvedParty alternative [0..4]');
  const uri = primText(b);
  assert.equal(b.idBlock.tagNumber, /^tel:/i.test(uri) ? 1 : 0, 'tEL-URI [1] for tel:, sIP-URI [0] otherwise');
  return uri;
}

export type IndependentRecord = Record<string, unknown>;

/** One aSRecord, decoded by asn1js, checked against the doc table; values keyed by the 32.298 names. */
export function decodeRecordIndependently(bytes: Uint8Array): IndependentRecord {
  const { fields } = docTables();
  const copy = new Uint8Array(bytes);
  const r = asn1js.fromBER(copy.buffer);
  assert.equal(r.offset, copy.length, `asn1js: one element spanning the record (${r.result.error})`);
  assert.equal(r.result.error, '', 'asn1js reports no error');
  const top = r.result;
  assert.equal(top.idBlock.tagClass, 3, 'IMSRecord alternative is context-specific');
  assert.equal(top.idBlock.tagNumber, 69, 'aSRecord [69]');
  assert.equal(top.idBlock.isConstructed, true);
  const out: IndependentRecord = {};
  let lastTag = -1;
  for (const el of children(top)) {
    const tag = el.idBlock.tagNumber;
    assert.equal(el.idBlock.tagClass, 3, `component [${tag}] is context-specific`);
    assert.ok(tag > lastTag, `components in ascending tag order ([${tag}] after [${lastTag}])`);
    lastTag = tag;
    const doc = fields.get(tag);
    assert.ok(doc, `tag [${tag}] is in docs/charging.md`);
    const kind = kindOf(doc.type);
    assert.equal(
      el.idBlock.isConstructed,
      kind === 'constructed',
      `${doc.name} [${tag}] ${kind === 'constructed' ? 'constructed' : 'primitive'}`,
    );
    const v = kind === 'constructed' ? undefined : Buffer.from((el as asn1js.Primitive).valueBlock.valueHexView);
    switch (kind) {
      case 'integer':
        out[doc.name] = int(v!);
        break;
      case 'null':
        assert.equal(v!.length, 0);
        out[doc.name] = true;
        break;
      case 'octets':
        out[doc.name] = v!.toString('utf8');
        break;
      case 'text':
        out[doc.name] = v!.toString('utf8');
        break;
      case 'timestamp':
        out[doc.name] = timeStamp(v!);
        break;
      case 'constructed':
        out[doc.name] = constructed(doc.name, el);
        break;
    }
  }
  return out;
}

function constructed(name: string, el: asn1js.BaseBlock): unknown {
  const kids = children(el);
  switch (name) {
    case 'nodeAddress': {
      assert.equal(kids.length, 1);
      const choice = kids[0]!;
      if (choice.idBlock.tagNumber === 1) return primText(choice); // domainName
      assert.equal(choice.idBlock.tagNumber, 0, 'iPAddress [0]');
      const [bin] = children(choice);
      const b = Buffer.from((bin as asn1js.Primitive).valueBlock.valueHexView);
      assert.equal(
        b.length,
        bin!.idBlock.tagNumber === 0 ? 4 : 16,
        'iPBinV4Address [0] is 4 octets, iPBinV6Address [1] 16',
      );
      return b.length === 4 ? [...b].join('.') : b.toString('hex');
    }
    case 'list-Of-Calling-Party-Address':
      return kids.map(party);
    case 'called-Party-Address':
    case 'requested-Party-Address':
      assert.equal(kids.length, 1);
      return party(kids[0]!);
    case 'interOperatorIdentifiers': {
      const ioi: Record<string, string> = {};
      for (const k of kids) ioi[k.idBlock.tagNumber === 0 ? 'originating-IOI' : 'terminating-IOI'] = primText(k);
      return ioi;
    }
    case 'incomplete-CDR-Indication': {
      assert.deepEqual(
        kids.map((k) => k.idBlock.tagNumber),
        [0, 1, 2],
        'aCRStartLost [0], aCRInterimLost [1], aCRStopLost [2]',
      );
      const bool = (k: asn1js.BaseBlock) => {
        const v = (k as asn1js.Primitive).valueBlock.valueHexView;
        assert.equal(v.length, 1, 'BOOLEAN is one octet');
        return v[0] !== 0;
      };
      return {
        aCRStartLost: bool(kids[0]!),
        aCRInterimLost: int((kids[1] as asn1js.Primitive).valueBlock.valueHexView),
        aCRStopLost: bool(kids[2]!),
      };
    }
    case 'list-Of-Message-Bodies':
      return kids.map((seq) => {
        assert.equal(seq.idBlock.tagClass, 1, 'MessageBody is a universal SEQUENCE');
        assert.equal(seq.idBlock.tagNumber, 16);
        const body: Record<string, unknown> = {};
        for (const f of children(seq)) {
          if (f.idBlock.tagNumber === 0) body['content-Type'] = primText(f);
          else if (f.idBlock.tagNumber === 2)
            body['content-Length'] = int((f as asn1js.Primitive).valueBlock.valueHexView);
          else if (f.idBlock.tagNumber === 3) body.originator = party(children(f)[0]!);
        }
        return body;
      });
    case 'recordExtensions':
      return kids.map((seq) => {
        const [id, info] = children(seq);
        assert.ok(id instanceof asn1js.ObjectIdentifier, 'ManagementExtension.identifier is an OBJECT IDENTIFIER');
        assert.equal(info!.idBlock.tagNumber, 2, 'information [2]');
        const [utf8] = children(info!);
        assert.ok(utf8 instanceof asn1js.Utf8String);
        return { identifier: oidText(id), information: JSON.parse(utf8.valueBlock.value) as unknown };
      });
    default:
      return kids.length;
  }
}

/** Dotted OID from asn1js's sub-identifier blocks (it keeps arcs beyond 2^53 as their 7-bit digits). */
function oidText(id: asn1js.ObjectIdentifier): string {
  const arcs = (
    id.valueBlock as unknown as {
      value: Array<{ isFirstSid: boolean; isHexOnly: boolean; valueDec: number; valueHexView: Uint8Array }>;
    }
  ).value;
  const out: string[] = [];
  for (const a of arcs) {
    let v = BigInt(a.valueDec);
    if (a.isHexOnly) {
      v = 0n;
      for (const digit of a.valueHexView) v = (v << 7n) | BigInt(digit & 0x7f);
    }
    if (a.isFirstSid) {
      if (v < 80n) out.push(String(v / 40n), String(v % 40n));
      else out.push('2', String(v - 80n));
    } else out.push(String(v));
  }
  return out.join('.');
}

export interface IndependentFile {
  header: {
    fileLength: number;
    headerLength: number;
    cdrCount: number;
    fileSequenceNumber: number;
    closureReason: number;
    release: number;
    lost: number;
  };
  records: IndependentRecord[];
}

/** A whole 32.297 file: header fields by octet position, then each CDR header and record. */
export function readFileIndependently(buf: Buffer): IndependentFile {
  const headerLength = buf.readUInt32BE(4);
  const header = {
    fileLength: buf.readUInt32BE(0),
    headerLength,
    cdrCount: buf.readUInt32BE(18),
    fileSequenceNumber: buf.readUInt32BE(22),
    closureReason: buf[26]!,
    release: buf[8]! >> 5 === 7 ? 10 + buf[headerLength - 2]! : buf[8]! >> 5,
    lost: buf[47]!,
  };
  assert.equal(header.fileLength, buf.length, 'file length in the header');
  const records: IndependentRecord[] = [];
  let at = headerLength;
  while (at < buf.length) {
    const len = buf.readUInt16BE(at);
    assert.equal(buf[at + 2]! >> 5, 7, 'CDR release identifier: 10 or later');
    assert.equal(buf[at + 3]! >> 5, 1, 'data record format BER');
    assert.equal(buf[at + 3]! & 0x1f, 9, 'TS number TS 32.260');
    assert.equal(buf[at + 4], 8, 'release extension: Release 18');
    records.push(decodeRecordIndependently(buf.subarray(at + 5, at + 5 + len)));
    at += 5 + len;
  }
  assert.equal(at, buf.length, 'no trailing octets');
  assert.equal(records.length, header.cdrCount, 'CDR count in the header');
  return { header, records };
}
