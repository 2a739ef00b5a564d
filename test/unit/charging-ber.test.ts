import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeTag,
  encodeLength,
  prim,
  cons,
  integerContent,
  oidContent,
  timeStampContent,
  ctx,
  universal,
} from '../../as/src/charging/ber.js';
import { readElement, decodeInteger, decodeOid, decodeTimeStamp, BerError } from '../../as/src/charging/ber-reader.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('BER encoder: identifiers and lengths', () => {
  test('low-tag form for tag numbers below 31', () => {
    assert.equal(hex(encodeTag('context', false, 0)), '80');
    assert.equal(hex(encodeTag('context', true, 4)), 'a4');
    assert.equal(hex(encodeTag('universal', true, 16)), '30');
    assert.equal(hex(encodeTag('universal', true, 17)), '31');
    assert.equal(hex(encodeTag('context', false, 30)), '9e');
  });
  test('high-tag form from 31 on, base 128', () => {
    assert.equal(hex(encodeTag('context', false, 31)), '9f1f');
    assert.equal(hex(encodeTag('context', false, 37)), '9f25');
    assert.equal(hex(encodeTag('context', true, 69)), 'bf45');
    assert.equal(hex(encodeTag('context', true, 101)), 'bf65');
    assert.equal(hex(encodeTag('context', false, 128)), '9f8100');
    assert.equal(hex(encodeTag('context', false, 16383)), '9fff7f');
  });
  test('short definite lengths up to 127, long form above', () => {
    assert.equal(hex(encodeLength(0)), '00');
    assert.equal(hex(encodeLength(127)), '7f');
    assert.equal(hex(encodeLength(128)), '8180');
    assert.equal(hex(encodeLength(255)), '81ff');
    assert.equal(hex(encodeLength(256)), '820100');
    assert.equal(hex(encodeLength(65535)), '82ffff');
    assert.equal(hex(encodeLength(65536)), '83010000');
    assert.throws(() => encodeLength(-1), RangeError);
  });
  test('an element of 300 octets carries a long-form length and reads back', () => {
    const el = ctx.octets(19, Buffer.alloc(300, 0x41));
    assert.equal(hex(el.subarray(0, 4)), '9382012c');
    assert.equal(el.length, 304);
    const r = readElement(el, 0);
    assert.deepEqual(
      [r.cls, r.constructed, r.tag, r.contentOffset, r.length, r.end],
      ['context', false, 19, 4, 300, 304],
    );
  });
});

describe('BER encoder: values', () => {
  test("INTEGER: minimal two's complement", () => {
    assert.equal(hex(integerContent(0)), '00');
    assert.equal(hex(integerContent(69)), '45');
    assert.equal(hex(integerContent(127)), '7f');
    assert.equal(hex(integerContent(128)), '0080');
    assert.equal(hex(integerContent(256)), '0100');
    assert.equal(hex(integerContent(-1)), 'ff');
    assert.equal(hex(integerContent(-128)), '80');
    assert.equal(hex(integerContent(-129)), 'ff7f');
    assert.equal(hex(integerContent(4294967295)), '00ffffffff');
    for (const n of [0, 1, 127, 128, 255, 256, 65535, -1, -128, -129, 4294967295, 2 ** 40]) {
      assert.equal(decodeInteger(integerContent(n)), n);
    }
  });
  test('context-tagged INTEGER, ENUMERATED, BOOLEAN, NULL', () => {
    assert.equal(hex(ctx.integer(0, 69)), '800145');
    assert.equal(hex(ctx.enumerated(3, 1)), '830101');
    assert.equal(hex(ctx.enumerated(17, 0)), '910100');
    assert.equal(hex(ctx.boolean(0, true)), '8001ff');
    assert.equal(hex(ctx.boolean(2, false)), '820100');
    assert.equal(hex(ctx.null(1)), '8100');
    assert.equal(hex(ctx.integer(37, 123)), '9f25017b');
  });
  test('universal types', () => {
    assert.equal(hex(universal.integer(5)), '020105');
    assert.equal(hex(universal.enumerated(2)), '0a0102');
    assert.equal(hex(universal.boolean(true)), '0101ff');
    assert.equal(hex(universal.octetString(Buffer.from([1, 2]))), '04020102');
    assert.equal(hex(universal.utf8('é')), '0c02c3a9');
    assert.equal(hex(universal.ia5('ab')), '16026162');
    assert.throws(() => universal.ia5('é'), RangeError);
    assert.equal(hex(universal.sequence([universal.integer(1), universal.boolean(false)])), '3006020101010100');
    assert.equal(hex(universal.set([universal.integer(1)])), '3103020101');
  });
  test('strings: OCTET STRING, UTF8String, IA5String under context tags', () => {
    assert.equal(hex(ctx.octets(19, Buffer.from('ab'))), '93026162');
    assert.equal(hex(ctx.text(28, 'presence')), '9c0870726573656e6365');
    assert.equal(hex(ctx.text(30, '32260@3gpp.org')), '9e0e33323236304033677070' + '2e6f7267');
    assert.equal(hex(ctx.ia5(2, 'A')), '820141');
  });
  test('constructed: context SET holding a SEQUENCE', () => {
    const seq = universal.sequence([ctx.text(0, 'text/plain'), ctx.integer(2, 5)]);
    assert.equal(hex(seq), '300f800a746578742f706c61696e820105');
    assert.equal(hex(ctx.cons(24, [seq])), 'b811' + hex(seq));
    assert.equal(hex(cons('context', 69, [ctx.integer(0, 69)])), 'bf4503800145');
  });
  test('OBJECT IDENTIFIER, including a 128-bit UUID arc', () => {
    assert.equal(hex(oidContent('1.2.840.113549')), '2a864886f70d');
    assert.equal(hex(oidContent('2.25.1')), '6901');
    const uuidOid = '2.25.48741067416923573553780445371522889679';
    assert.equal(decodeOid(oidContent(uuidOid)), uuidOid);
    assert.equal(decodeOid(oidContent('1.2.840.113549')), '1.2.840.113549');
    assert.throws(() => oidContent('1.40'), RangeError);
    assert.throws(() => oidContent('x'), RangeError);
  });
});

describe('TimeStamp (TS 32.298): 9 octets BCD with UTC offset', () => {
  test('UTC time, offset +0000', () => {
    assert.equal(hex(timeStampContent(new Date('2024-05-01T10:00:00.999Z'))), '2405011000002b0000');
    assert.equal(hex(timeStampContent(new Date('2026-12-07T23:59:58Z'))), '2612072359582b0000');
    assert.equal(hex(ctx.timeStamp(9, new Date('2009-01-02T03:04:05Z'))), '89090901020304052b0000');
  });
  test('local time with a positive and a negative offset', () => {
    // 2024-05-01 10:00 UTC is 12:00 at +02:00 and 04:30 at -05:30
    assert.equal(hex(timeStampContent(new Date('2024-05-01T10:00:00Z'), 120)), '2405011200002b0200');
    assert.equal(hex(timeStampContent(new Date('2024-05-01T10:00:00Z'), -330)), '2405010430002d0530');
  });
  test('reads back to the same second', () => {
    const at = new Date('2031-08-09T07:06:05Z');
    for (const off of [0, 60, -330, 845]) {
      assert.equal(decodeTimeStamp(timeStampContent(at, off))?.toISOString(), at.toISOString());
    }
    assert.equal(decodeTimeStamp(Buffer.from('2405011000002a0000', 'hex')), undefined);
    assert.equal(decodeTimeStamp(Buffer.from('24', 'hex')), undefined);
  });
});

describe('BER reader refuses what we never write', () => {
  test('indefinite length, truncation, overrun', () => {
    assert.throws(() => readElement(Buffer.from('3080', 'hex'), 0), BerError);
    assert.throws(() => readElement(Buffer.from('9f', 'hex'), 0), BerError);
    assert.throws(() => readElement(Buffer.from('8005aa', 'hex'), 0), /runs past/);
    assert.throws(() => readElement(Buffer.from('8182', 'hex'), 0), BerError);
    const el = prim('context', 5, Buffer.from('x'));
    assert.equal(readElement(el, 0).end, 3);
  });
});
