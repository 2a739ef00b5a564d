import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { buildCdr, type ChargeableEvent, type Cdr } from '../../as/src/charging/record.js';
import {
  encodeAsRecord,
  nodeAddress,
  involvedParty,
  ipv6Bytes,
  EXTENSION_OID,
} from '../../as/src/charging/as-record.js';
import { decodeAsRecord } from '../../as/src/charging/as-record-decode.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const T0 = new Date('2024-05-01T10:00:00.123Z');
const T1 = new Date('2024-05-01T10:00:00.456Z');
const NOW = new Date('2024-05-01T10:00:01.000Z');

function cdrOf(over: Partial<ChargeableEvent> = {}, seq = 7): Cdr {
  return buildCdr(
    {
      service: 'im',
      role: 'originating',
      sipMethod: 'MESSAGE',
      sessionId: 'c1',
      callingParty: 'sip:a@x',
      calledParty: 'sip:b@x',
      requestTime: T0,
      responseTime: T1,
      statusCode: 200,
      outcome: 'delivered',
      chargingVector: 'icid-value=I1;orig-ioi=o;term-ioi=t',
      messageBody: { contentType: 'text/plain', contentLength: 5 },
      ...over,
    },
    { nodeId: 'as1', nodeAddress: '10.0.0.1', seq, now: NOW, generateIcid: () => 'gen' },
  );
}

describe('aSRecord encoding', () => {
  test("a session's record is delivered from its answer to its end, not from the INVITE to the 200", () => {
    const answered = new Date('2024-05-01T10:00:00.789Z');
    const ended = new Date('2024-05-01T10:05:30.250Z');
    const cdr = cdrOf({
      sipMethod: 'INVITE',
      outcome: 'ended',
      responseTime: answered,
      deliveryStartTime: answered,
      deliveryEndTime: ended,
      messageBody: { contentType: 'application/sdp', contentLength: 180 },
    });
    assert.equal(cdr.serviceDeliveryStartTimestamp, '2024-05-01T10:00:00.789Z');
    assert.equal(cdr.serviceDeliveryEndTimestamp, '2024-05-01T10:05:30.250Z');
    const d = decodeAsRecord(encodeAsRecord(cdr));
    assert.equal(d.serviceRequestTimeStamp, '2024-05-01T10:00:00.000Z');
    assert.equal(d.serviceRequestTimeStampFraction, 123);
    assert.equal(d.serviceDeliveryStartTimeStamp, '2024-05-01T10:00:00.000Z');
    assert.equal(d.serviceDeliveryStartTimeStampFraction, 789);
    assert.equal(d.serviceDeliveryEndTimeStamp, '2024-05-01T10:05:30.000Z');
    assert.equal(d.serviceDeliveryEndTimeStampFraction, 250);
  });

  test('a MESSAGE record, byte for byte', () => {
    const ext = Buffer.from(
      JSON.stringify({ recordId: 'as1:7', nodeId: 'as1', service: 'im', outcome: 'delivered', statusCode: 200 }),
    );
    const ts0 = '2405011000002b0000';
    const ts1 = '2405011000012b0000';
    const expected = [
      '800145',
      '82074d455353414745',
      '830100',
      'a408' + 'a006' + '80040a000001', // nodeAddress: iPAddress → iPBinV4Address 10.0.0.1
      '85026331', // session-Id "c1"
      'a609' + '8007' + hex(Buffer.from('sip:a@x')), // list-Of-Calling-Party-Address
      'a709' + '8007' + hex(Buffer.from('sip:b@x')), // called-Party-Address
      '8909' + ts0,
      '8a09' + ts0,
      '8b09' + ts0, // request, delivery start, delivery end (10:00:00.456)
      '8c09' + ts0,
      '8d09' + ts1, // opening, closure
      'ae06' + '80016f' + '810174', // IOIs
      '8f0107', // localRecordSequenceNumber 7
      '910100', // cause 0
      '93024931', // ICID "I1"
      '9703323030', // serviceReasonReturnCode "200"
      'b81c' +
        '301a' +
        '800a' +
        hex(Buffer.from('text/plain')) +
        '820105' +
        'a309' +
        '8007' +
        hex(Buffer.from('sip:a@x')),
    ].join('');
    const got = encodeAsRecord(cdrOf());
    assert.equal(hex(got.subarray(0, 2)), 'bf45');
    const body = hex(got).slice(hex(got).indexOf('800145'));
    assert.ok(body.startsWith(expected), `\n${body}\n${expected}`);
    // recordExtensions [25]: SET OF SEQUENCE { OID 2.25.<uuid>, [2] { UTF8String json } }
    const oidTlv = '0613' + '69c9ab988aa0df9a8a93b5c5cafcb4f2f0ef4f';
    const info = 'a2' + (ext.length + 2).toString(16) + '0c' + ext.length.toString(16) + hex(ext);
    const seq = '30' + ((oidTlv.length + info.length) / 2).toString(16) + oidTlv + info;
    assert.ok(body.includes('b9' + (seq.length / 2).toString(16) + seq), 'recordExtensions');
    // the trailing fields: serviceContextID, the three fractions (123, 123, 456 ms)
    assert.ok(
      body.endsWith('9e0e' + hex(Buffer.from('32260@3gpp.org')) + '9f25017b' + '9f26017b' + '9f270201c8'),
      body.slice(-60),
    );
  });

  test('reads back field by field', () => {
    const d = decodeAsRecord(encodeAsRecord(cdrOf()));
    assert.equal(d.recordType, 69);
    assert.equal(d.sipMethod, 'MESSAGE');
    assert.equal(d.roleOfNode, 'originating');
    assert.equal(d.nodeAddress, '10.0.0.1');
    assert.deepEqual(d.listOfCallingPartyAddress, ['sip:a@x']);
    assert.equal(d.calledPartyAddress, 'sip:b@x');
    assert.equal(d.serviceRequestTimeStamp, '2024-05-01T10:00:00.000Z');
    assert.equal(d.serviceRequestTimeStampFraction, 123);
    assert.equal(d.serviceDeliveryEndTimeStampFraction, 456);
    assert.deepEqual(d.interOperatorIdentifiers, { originatingIOI: 'o', terminatingIOI: 't' });
    assert.equal(d.localRecordSequenceNumber, 7);
    assert.equal(d.causeForRecordClosing, 'serviceDeliveryEndSuccessfully');
    assert.equal(d.imsChargingIdentifier, 'I1');
    assert.equal(d.serviceReasonReturnCode, '200');
    assert.deepEqual(d.listOfMessageBodies, [{ contentType: 'text/plain', contentLength: 5, originator: 'sip:a@x' }]);
    assert.deepEqual(d.recordExtensions, [
      {
        identifier: EXTENSION_OID,
        information: { recordId: 'as1:7', nodeId: 'as1', service: 'im', outcome: 'delivered', statusCode: 200 },
      },
    ]);
    assert.equal(d.serviceContextId, '32260@3gpp.org');
    assert.equal(d.recordSequenceNumber, undefined);
  });

  test('a subscription part: recordSequenceNumber, expires, event, the IMS cause number', () => {
    const cdr = cdrOf({
      sipMethod: 'SUBSCRIBE',
      role: 'terminating',
      event: 'presence',
      expires: 600,
      recordSequenceNumber: 2,
      cause: 'serviceChange',
      outcome: 'subscription-refreshed',
      messageBody: undefined,
      chargingVector: undefined,
    });
    const b = hex(encodeAsRecord(cdr));
    assert.ok(b.includes('900102'), 'recordSequenceNumber [16] 2');
    assert.ok(b.includes('910104'), 'causeForRecordClosing [17] serviceChange (4)');
    assert.ok(b.includes('9a020258'), 'expiresInformation [26] 600');
    assert.ok(b.includes('9c08' + hex(Buffer.from('presence'))), 'event [28]');
    assert.ok(b.includes('830101'), 'terminating');
    const d = decodeAsRecord(encodeAsRecord(cdr));
    assert.equal(d.recordSequenceNumber, 2);
    assert.equal(d.causeForRecordClosing, 'serviceChange');
    assert.equal(d.imsChargingIdentifier, 'gen');
    assert.equal(d.interOperatorIdentifiers, undefined);
    for (const [cause, code] of [
      ['timeLimit', 3],
      ['managementIntervention', 5],
      ['unSuccessfulServiceDelivery', 1],
    ] as const) {
      assert.ok(hex(encodeAsRecord(cdrOf({ cause }))).includes('9101' + code.toString(16).padStart(2, '0')));
    }
    // a record stored before the IMS-only enumeration still encodes, as unsuccessful
    assert.ok(
      hex(encodeAsRecord({ ...cdrOf(), causeForRecordClosing: 'abnormalRelease' as never })).includes('910101'),
    );
  });

  test('a long record gets long-form lengths', () => {
    const cdr = cdrOf({ calledParty: 'sip:' + 'b'.repeat(300) + '@x' });
    const b = encodeAsRecord(cdr);
    assert.equal(hex(b.subarray(0, 3)), 'bf4582');
    assert.equal(b.readUInt16BE(3), b.length - 5);
    assert.equal(decodeAsRecord(b).calledPartyAddress, cdr.calledPartyAddress);
  });

  test('an exploded group copy names the group as requested-Party-Address [101]', () => {
    const b = hex(encodeAsRecord(cdrOf({ calledParty: 'sip:bob@x', extra: { via: 'sip:team@x' } })));
    assert.ok(b.endsWith('bf650c800a' + hex(Buffer.from('sip:team@x'))), b.slice(-40));
    assert.equal(
      decodeAsRecord(encodeAsRecord(cdrOf({ extra: { via: 'sip:team@x' } }))).requestedPartyAddress,
      'sip:team@x',
    );
    assert.ok(!hex(encodeAsRecord(cdrOf())).includes('bf65'), 'absent when the sender asked for the one who got it');
  });

  test('a record always fits the 16-bit CDR length: long fields and extensions are cut', () => {
    const huge = 'é'.repeat(40_000);
    const cdr = cdrOf({
      sessionId: huge,
      callingParty: 'sip:' + huge,
      calledParty: 'sip:' + huge,
      extra: { note: huge },
    });
    const b = encodeAsRecord(cdr);
    assert.ok(b.length < 65535, String(b.length));
    const d = decodeAsRecord(b);
    assert.equal(Buffer.byteLength(d.sessionId as string), 2048);
    assert.ok((d.sessionId as string).startsWith('éé'));
    assert.deepEqual((d.recordExtensions as Array<{ information: unknown }>)[0]!.information, {
      recordId: 'as1:7',
      nodeId: 'as1',
      service: 'im',
      outcome: 'delivered',
      statusCode: 200,
      extensionCut: true,
    });
  });

  test('node address and party choices', () => {
    assert.equal(hex(nodeAddress('as.example.com')), '810e' + hex(Buffer.from('as.example.com')));
    assert.equal(hex(nodeAddress('::1')), 'a0128110' + '0'.repeat(31) + '1');
    assert.equal(hex(ipv6Bytes('2001:db8::ffff:1.2.3.4')), '20010db8000000000000ffff01020304');
    assert.equal(hex(involvedParty('tel:+123')), '8108' + hex(Buffer.from('tel:+123')));
    assert.equal(hex(involvedParty('sip:a@b')), '8007' + hex(Buffer.from('sip:a@b')));
  });
});
