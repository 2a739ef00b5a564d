import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildCdr, type Cdr, type ChargeableEvent } from '../../as/src/charging/record.js';
import { Ts32297Writer } from '../../as/src/charging/ts32297-writer.js';
import { docTables, readFileIndependently, type IndependentRecord } from '../helpers/cdr-independent.js';

const T = new Date('2026-12-07T13:15:42.318Z');
const T2 = new Date('2026-12-07T13:15:43.907Z');
let dir: string;
const written: Cdr[] = [];

function ev(over: Partial<ChargeableEvent>): ChargeableEvent {
  return {
    service: 'im',
    role: 'originating',
    sipMethod: 'MESSAGE',
    sessionId: 'call-1@ue',
    callingParty: 'sip:alice@example.com',
    calledParty: 'sip:bob@example.com',
    requestTime: T,
    responseTime: T2,
    statusCode: 200,
    outcome: 'delivered',
    ...over,
  };
}

const EVENTS: ChargeableEvent[] = [
  ev({
    chargingVector: 'icid-value=AyretyU0dm+6O2IrT5tAFrbHLso=;orig-ioi=home1.net;term-ioi=home2.net',
    messageBody: { contentType: 'text/plain', contentLength: 12 },
  }),
  ev({ role: 'terminating', statusCode: 202, outcome: 'deferred', extra: { storedId: 'm1' } }),
  ev({ role: 'terminating', outcome: 'delivered', extra: { deferred: true, attempts: 2, storedSeconds: 30 } }),
  ev({ role: 'terminating', statusCode: 200, outcome: 'discarded', calledParty: 'tel:+4930123456' }),
  ev({ statusCode: 480, outcome: 'failed' }),
  ev({
    service: 'presence',
    role: 'terminating',
    sipMethod: 'PUBLISH',
    event: 'presence',
    expires: 3600,
    outcome: 'published',
    messageBody: { contentType: 'application/pidf+xml', contentLength: 400 },
  }),
  ev({
    service: 'presence',
    role: 'terminating',
    sipMethod: 'SUBSCRIBE',
    event: 'presence',
    expires: 600,
    outcome: 'subscription-opened',
    cause: 'serviceChange',
    recordSequenceNumber: 1,
  }),
  ev({
    service: 'presence',
    role: 'terminating',
    sipMethod: 'SUBSCRIBE',
    event: 'presence',
    expires: 600,
    outcome: 'subscription-refreshed',
    cause: 'serviceChange',
    recordSequenceNumber: 2,
  }),
  ev({
    service: 'presence',
    role: 'terminating',
    sipMethod: 'SUBSCRIBE',
    event: 'presence',
    expires: 0,
    outcome: 'subscription-closed',
    cause: 'timeLimit',
    recordSequenceNumber: 3,
    extra: { notifyCount: 4, reason: 'timeout' },
  }),
  ev({ sessionId: 'x'.repeat(200), calledParty: 'sip:' + 'b'.repeat(150) + '@example.com' }), // long-form lengths
  ev({ role: 'terminating', calledParty: 'sip:carol@example.com', extra: { via: 'sip:team@example.com' } }), // a group's copy
  ev({ privateUserId: 'alice@example.com', chargingVector: 'icid-value=v1;orig-ioi=visited.example.org' }), // authenticated sender, only an orig-ioi in the vector
  ev({
    service: 'presence',
    role: 'terminating',
    sipMethod: 'SUBSCRIBE',
    event: 'presence',
    expires: 0,
    outcome: 'subscription-closed',
    recordSequenceNumber: 5,
    incomplete: { acrInterimLost: 'unknown' },
  }), // adopted from a dead instance
];
/** Node as1 has inter-operator identifiers configured; the others none. */
const CONFIGURED_IOI = { originatingIOI: 'ims.example.net', terminatingIOI: 'partner.example.org' };

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cdr-indep-'));
  for (const [i, address] of [
    [0, '192.0.2.10'],
    [1, 'as.example.net'],
    [2, '2001:db8::7'],
  ] as const) {
    const w = new Ts32297Writer({ dir, nodeId: `as${i}`, nodeAddress: address, maxRecords: 4, now: () => T });
    await w.open();
    let seq = 0;
    for (const e of EVENTS) {
      const cdr = buildCdr(e, {
        nodeId: `as${i}`,
        nodeAddress: address,
        seq: ++seq,
        now: T2,
        generateIcid: () => `gen-${i}-${seq}`,
        ...(i === 1 ? { defaultIoi: CONFIGURED_IOI } : {}),
      });
      written.push(cdr);
      await w.append(cdr);
    }
    await w.close();
  }
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function expectedOf(cdr: Cdr, causes: Map<string, number>): IndependentRecord {
  const sec = (iso: string) => new Date(Math.floor(Date.parse(iso) / 1000) * 1000).toISOString();
  const end = cdr.sipResponseTimestamp ?? cdr.recordClosureTime;
  const out: IndependentRecord = {
    recordType: 69,
    'sIP-Method': cdr.sipMethod,
    'role-of-Node': cdr.roleOfNode === 'originating' ? 0 : 1,
    nodeAddress: cdr.nodeAddress === '2001:db8::7' ? '20010db8000000000000000000000007' : cdr.nodeAddress,
    'session-Id': cdr.sessionId,
    'list-Of-Calling-Party-Address': [cdr.callingPartyAddress],
    'called-Party-Address': cdr.calledPartyAddress,
    serviceRequestTimeStamp: sec(cdr.sipRequestTimestamp),
    serviceDeliveryStartTimeStamp: sec(cdr.sipRequestTimestamp),
    serviceDeliveryEndTimeStamp: sec(end),
    recordOpeningTime: sec(cdr.recordOpeningTime),
    recordClosureTime: sec(cdr.recordClosureTime),
    localRecordSequenceNumber: cdr.localRecordSequenceNumber,
    causeForRecordClosing: causes.get(cdr.causeForRecordClosing),
    'iMS-Charging-Identifier': cdr.imsChargingIdentifier,
    serviceContextID: '32260@3gpp.org',
    serviceRequestTimeStampFraction: new Date(cdr.sipRequestTimestamp).getUTCMilliseconds(),
    serviceDeliveryStartTimeStampFraction: new Date(cdr.sipRequestTimestamp).getUTCMilliseconds(),
    serviceDeliveryEndTimeStampFraction: new Date(end).getUTCMilliseconds(),
    recordExtensions: [
      {
        identifier: '2.25.48741067416923573553780445371522889679',
        information: {
          recordId: cdr.recordId,
          nodeId: cdr.nodeId,
          service: cdr.service,
          outcome: cdr.outcome,
          ...(cdr.statusCode !== undefined ? { statusCode: cdr.statusCode } : {}),
          ...(cdr.extra ?? {}),
        },
      },
    ],
  };
  if (cdr.interOperatorIdentifiers) {
    const ioi = cdr.interOperatorIdentifiers;
    out.interOperatorIdentifiers = {
      ...(ioi.originatingIOI ? { 'originating-IOI': ioi.originatingIOI } : {}),
      ...(ioi.terminatingIOI ? { 'terminating-IOI': ioi.terminatingIOI } : {}),
    };
  }
  if (cdr.privateUserId !== undefined) out.privateUserID = cdr.privateUserId;
  if (cdr.incompleteCdrIndication) {
    const inc = cdr.incompleteCdrIndication;
    out['incomplete-CDR-Indication'] = {
      aCRStartLost: inc.acrStartLost,
      aCRInterimLost: { no: 0, yes: 1, unknown: 2 }[inc.acrInterimLost],
      aCRStopLost: inc.acrStopLost,
    };
  }
  if (cdr.recordSequenceNumber !== undefined) out.recordSequenceNumber = cdr.recordSequenceNumber;
  if (cdr.statusCode !== undefined) out.serviceReasonReturnCode = String(cdr.statusCode);
  if (cdr.messageBody)
    out['list-Of-Message-Bodies'] = [
      {
        'content-Type': cdr.messageBody.contentType,
        'content-Length': cdr.messageBody.contentLength,
        originator: cdr.callingPartyAddress,
      },
    ];
  if (cdr.expires !== undefined) out.expiresInformation = cdr.expires;
  if (cdr.event !== undefined) out.event = cdr.event;
  if (typeof cdr.extra?.via === 'string') out['requested-Party-Address'] = cdr.extra.via;
  return out;
}

describe('every file decoded by asn1js, field by field against docs/charging.md', () => {
  test('the doc table names the fields the issue lists, the cause enumeration is the IMS one', () => {
    const { fields, causes } = docTables();
    for (const name of [
      'recordType',
      'retransmission',
      'sIP-Method',
      'role-of-Node',
      'nodeAddress',
      'session-Id',
      'list-Of-Calling-Party-Address',
      'called-Party-Address',
      'privateUserID',
      'serviceRequestTimeStamp',
      'serviceDeliveryStartTimeStamp',
      'serviceDeliveryEndTimeStamp',
      'recordOpeningTime',
      'recordClosureTime',
      'interOperatorIdentifiers',
      'localRecordSequenceNumber',
      'recordSequenceNumber',
      'causeForRecordClosing',
      'incomplete-CDR-Indication',
      'iMS-Charging-Identifier',
      'serviceReasonReturnCode',
      'list-Of-Message-Bodies',
      'expiresInformation',
      'event',
      'requested-Party-Address',
      'serviceContextID',
      'recordExtensions',
    ]) {
      assert.ok(
        [...fields.values()].some((f) => f.name === name),
        name,
      );
    }
    assert.deepEqual(
      [...causes.entries()],
      [
        ['serviceDeliveryEndSuccessfully', 0],
        ['unSuccessfulServiceDelivery', 1],
        ['timeLimit', 3],
        ['serviceChange', 4],
        ['managementIntervention', 5],
      ],
    );
  });

  test('headers, record count and every field of every record', async () => {
    const { causes } = docTables();
    const names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
    assert.equal(names.length, 12, '3 nodes × 4 files (4 + 4 + 4 + 1 records)');
    const decoded: IndependentRecord[] = [];
    for (const n of names) {
      const f = readFileIndependently(await readFile(path.join(dir, n)));
      assert.equal(f.header.headerLength, 54);
      assert.equal(f.header.release, 18);
      assert.equal(f.header.lost, 0);
      assert.ok([0, 3].includes(f.header.closureReason), 'normal or count');
      decoded.push(...f.records);
    }
    assert.equal(decoded.length, written.length);
    const byId = new Map(
      decoded.map((r) => [
        (r.recordExtensions as Array<{ information: { recordId: string } }>)[0]!.information.recordId,
        r,
      ]),
    );
    for (const cdr of written) {
      assert.deepEqual(byId.get(cdr.recordId), expectedOf(cdr, causes), cdr.recordId);
    }
    // the discarded unwanted message closes unsuccessfully even though the sender saw 200
    assert.equal(byId.get('as0:4')!.causeForRecordClosing, 1);
    assert.equal(byId.get('as0:4')!['called-Party-Address'], 'tel:+4930123456');
    // privateUserID [8]: the IMPI of the authenticated sender, only where known
    assert.equal(byId.get('as0:12')!.privateUserID, 'alice@example.com');
    assert.equal(byId.get('as0:1')!.privateUserID, undefined);
    // interOperatorIdentifiers [14]: the vector's when it has them, the configured ones for what it lacks
    assert.deepEqual(byId.get('as0:1')!.interOperatorIdentifiers, {
      'originating-IOI': 'home1.net',
      'terminating-IOI': 'home2.net',
    });
    assert.deepEqual(byId.get('as1:1')!.interOperatorIdentifiers, {
      'originating-IOI': 'home1.net',
      'terminating-IOI': 'home2.net',
    });
    assert.deepEqual(byId.get('as1:2')!.interOperatorIdentifiers, {
      'originating-IOI': 'ims.example.net',
      'terminating-IOI': 'partner.example.org',
    });
    assert.deepEqual(byId.get('as1:12')!.interOperatorIdentifiers, {
      'originating-IOI': 'visited.example.org',
      'terminating-IOI': 'partner.example.org',
    });
    assert.deepEqual(byId.get('as0:12')!.interOperatorIdentifiers, { 'originating-IOI': 'visited.example.org' });
    assert.equal(byId.get('as0:2')!.interOperatorIdentifiers, undefined, 'none configured, none in the vector');
    // incomplete-CDR-Indication [18]: only on a record known incomplete, all three components
    assert.deepEqual(byId.get('as2:13')!['incomplete-CDR-Indication'], {
      aCRStartLost: false,
      aCRInterimLost: 2,
      aCRStopLost: false,
    });
    assert.ok(
      decoded.filter((r) => r['incomplete-CDR-Indication'] !== undefined).length === 3,
      'one per node, no other record',
    );
  });
});
