import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeAvp,
  decodeAvps,
  encodeMessage,
  decodeMessage,
  messageLength,
  fromTime,
  toTime,
  fromAddress,
  toAddress,
  fromUnsigned64,
  toUnsigned64,
  DiameterDecodeError,
} from '../../as/src/charging/diameter/codec.js';
import { avp, readAvp, findAvp, VENDOR_3GPP } from '../../as/src/charging/diameter/dictionary.js';

const hex = (b: Buffer) => b.toString('hex');

describe('Diameter AVPs', () => {
  test('base AVP: 8-byte header, M flag, length without padding, padded to 4', () => {
    // Session-Id (263) "abc": code 00000107, flags 40, length 11, data, one pad byte
    assert.equal(hex(encodeAvp(avp('Session-Id', 'abc'))), '00000107' + '4000000b' + '616263' + '00');
  });
  test('Product-Name goes without the M flag', () => {
    assert.equal(hex(encodeAvp(avp('Product-Name', 'as'))), '0000010d' + '0000000a' + '6173' + '0000');
  });
  test('3GPP AVP: V and M flags, vendor 10415, 12-byte header', () => {
    // Role-Of-Node (829 = 0x33d) TERMINATING_ROLE (1)
    assert.equal(hex(encodeAvp(avp('Role-Of-Node', 1))), '0000033d' + 'c0000010' + '000028af' + '00000001');
  });
  test('grouped AVP holds its members padded; its length counts them', () => {
    const g = encodeAvp(avp('Event-Type', [avp('SIP-Method', 'MESSAGE')]));
    // inner: 0x338, c0, len 12+7=19 -> padded 20; outer len 12+20=32
    assert.equal(
      hex(g),
      '00000337' + 'c0000020' + '000028af' + '00000338' + 'c0000013' + '000028af' + '4d455353414745' + '00',
    );
    const [outer] = decodeAvps(g);
    assert.equal(outer!.vendorId, VENDOR_3GPP);
    const inner = readAvp([outer!], 'Event-Type') as ReturnType<typeof decodeAvps>;
    assert.equal(readAvp(inner, 'SIP-Method'), 'MESSAGE');
  });
  test('Unsigned32, Integer32 (negative), Unsigned64', () => {
    assert.equal(hex(avp('Accounting-Record-Number', 0xfffffffe).data), 'fffffffe');
    assert.equal(hex(avp('Cause-Code', -1).data), 'ffffffff');
    assert.equal(hex(fromUnsigned64(2n ** 40n + 5n)), '0000010000000005');
    assert.equal(toUnsigned64(fromUnsigned64(2n ** 63n)), 2n ** 63n);
    assert.throws(() => avp('Accounting-Record-Number', -1), RangeError);
  });
  test('Time is NTP seconds (since 1900) in 32 bits', () => {
    // 1970-01-01T00:00:00Z = 2208988800 = 0x83aa7e80
    assert.equal(hex(fromTime(new Date(0))), '83aa7e80');
    const t = new Date('2026-12-07T14:00:00Z');
    assert.equal(toTime(fromTime(t)).toISOString(), t.toISOString());
    // era 1: after 2036-02-07T06:28:16Z the counter wraps
    const late = new Date('2040-01-01T00:00:00Z');
    assert.equal(toTime(fromTime(late)).toISOString(), late.toISOString());
  });
  test('Address: family then bytes', () => {
    assert.equal(hex(fromAddress('127.0.0.1')), '00017f000001');
    assert.equal(hex(fromAddress('::1')), '0002' + '0'.repeat(31) + '1');
    assert.equal(hex(fromAddress('2001:db8::8:1')), '000220010db8000000000000000000080001');
    assert.equal(toAddress(fromAddress('10.1.2.3')), '10.1.2.3');
    assert.equal(toAddress(fromAddress('2001:db8::8:1')), '2001:db8:0:0:0:0:8:1');
    assert.throws(() => fromAddress('example.com'), RangeError);
  });
  test('a truncated or overlong AVP is refused', () => {
    assert.throws(() => decodeAvps(Buffer.from('00000107400000', 'hex')), DiameterDecodeError);
    assert.throws(() => decodeAvps(Buffer.from('000001074000000c6162', 'hex')), DiameterDecodeError);
  });
  test('findAvp tells vendor AVPs from base AVPs of the same code', () => {
    const list = [{ code: 829, mandatory: true, data: Buffer.from('00000000', 'hex') }, avp('Role-Of-Node', 1)];
    assert.equal(findAvp(list, 'Role-Of-Node'), list[1]);
  });
});

describe('Diameter messages', () => {
  const dwr = {
    commandCode: 280,
    applicationId: 0,
    hopByHop: 0x01020304,
    endToEnd: 0x0a0b0c0d,
    request: true,
    proxiable: false,
    error: false,
    retransmit: false,
    avps: [avp('Origin-Host', 'as.example.com'), avp('Origin-Realm', 'example.com')],
  };
  test('header: version 1, length, flags, command, application, identifiers', () => {
    const b = encodeMessage(dwr);
    // Origin-Host 8+14=22 -> 24; Origin-Realm 8+11=19 -> 20; total 20+44 = 64
    assert.equal(hex(b.subarray(0, 20)), '01000040' + '80000118' + '00000000' + '01020304' + '0a0b0c0d');
    assert.equal(b.length, 64);
    assert.equal(messageLength(b), 64);
    assert.deepEqual(decodeMessage(b), dwr);
  });
  test('flags R P E T each map to their bit', () => {
    const acr = { ...dwr, commandCode: 271, applicationId: 3, proxiable: true, retransmit: true };
    assert.equal(hex(encodeMessage(acr).subarray(4, 8)), 'd000010f');
    const answer = { ...dwr, request: false, error: true };
    assert.equal(hex(encodeMessage(answer).subarray(4, 8)), '20000118');
    assert.equal(decodeMessage(encodeMessage(acr)).retransmit, true);
  });
  test('messageLength waits for 4 bytes and refuses a bad version or length', () => {
    assert.equal(messageLength(Buffer.from('0100', 'hex')), undefined);
    assert.throws(() => messageLength(Buffer.from('02000014', 'hex')), DiameterDecodeError);
    assert.throws(() => messageLength(Buffer.from('01000013', 'hex')), DiameterDecodeError);
  });
});
