import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { accountingRecordType, buildAcr, causeCode, diameterSessionId } from '../../as/src/charging/diameter/rf-acr.js';
import { readAvp } from '../../as/src/charging/diameter/dictionary.js';
import { parseRfPeers } from '../../as/src/charging/rf-client.js';
import { buildCdr, type ChargeableEvent } from '../../as/src/charging/record.js';
import type { Avp } from '../../as/src/charging/diameter/codec.js';

const id = { originHost: 'as1.home1.net', originRealm: 'home1.net', destinationRealm: 'cdf.home1.net' };
const at = new Date('2026-12-07T10:00:00Z');
function cdr(over: Partial<ChargeableEvent> = {}, seq = 1) {
  return buildCdr(
    {
      service: 'presence',
      role: 'terminating',
      sipMethod: 'SUBSCRIBE',
      sessionId: 'sub-1@pc',
      event: 'presence',
      expires: 600,
      callingParty: 'sip:alice@home1.net',
      calledParty: 'sip:bob@home1.net',
      requestTime: at,
      responseTime: at,
      statusCode: 200,
      outcome: 'subscribed',
      chargingVector: 'icid-value=icid-9;orig-ioi=home1.net;term-ioi=visited.net',
      ...over,
    },
    { nodeId: 'as1', nodeAddress: '10.0.0.5', seq, now: at, generateIcid: () => 'gen' },
  );
}

describe('Rf ACR from a CDR', () => {
  test('record type: one-off -> EVENT; chain -> START, INTERIM, STOP; a chain of one -> EVENT', () => {
    assert.equal(accountingRecordType({ causeForRecordClosing: 'serviceDeliveryEndSuccessfully' }), 'EVENT_RECORD');
    assert.equal(
      accountingRecordType({ recordSequenceNumber: 1, causeForRecordClosing: 'serviceChange' }),
      'START_RECORD',
    );
    assert.equal(
      accountingRecordType({ recordSequenceNumber: 2, causeForRecordClosing: 'serviceChange' }),
      'INTERIM_RECORD',
    );
    assert.equal(accountingRecordType({ recordSequenceNumber: 3, causeForRecordClosing: 'timeLimit' }), 'STOP_RECORD');
    assert.equal(
      accountingRecordType({ recordSequenceNumber: 1, causeForRecordClosing: 'serviceDeliveryEndSuccessfully' }),
      'EVENT_RECORD',
    );
  });
  test('a chain shares one Session-Id; record numbers count from 0', () => {
    const a = buildAcr(cdr({ recordSequenceNumber: 1, cause: 'serviceChange' }, 7), id);
    const b = buildAcr(cdr({ recordSequenceNumber: 2, cause: 'serviceChange' }, 9), id);
    const c = buildAcr(cdr({ recordSequenceNumber: 3, outcome: 'unsubscribed' }, 12), id);
    assert.equal(a.sessionId, b.sessionId);
    assert.equal(b.sessionId, c.sessionId);
    assert.deepEqual(
      [a, b, c].map((x) => [x.recordType, x.recordNumber]),
      [
        ['START_RECORD', 0],
        ['INTERIM_RECORD', 1],
        ['STOP_RECORD', 2],
      ],
    );
    const other = cdr({ recordSequenceNumber: 1, cause: 'serviceChange', sessionId: 'sub-2@pc' });
    assert.notEqual(diameterSessionId(other, id), a.sessionId);
    assert.match(a.sessionId, /^home1\.net;sub;[0-9a-f]{32}$/);
    // another instance serving a refresh of the same subscription continues the same session
    assert.equal(
      diameterSessionId(cdr({ recordSequenceNumber: 2, cause: 'serviceChange' }, 9), {
        originHost: 'as2.home1.net',
        originRealm: 'home1.net',
      }),
      a.sessionId,
    );
  });
  test('the AVPs a CDF reads: routing, record, and IMS-Information from the record', () => {
    const acr = buildAcr(
      cdr(
        {
          sipMethod: 'MESSAGE',
          service: 'im',
          role: 'originating',
          outcome: 'delivered',
          event: undefined,
          expires: undefined,
          messageBody: { contentType: 'text/plain', contentLength: 5 },
        },
        4,
      ),
      id,
    );
    assert.equal(acr.sessionId, 'as1.home1.net;as1:4');
    assert.equal(readAvp(acr.avps, 'Origin-Host'), 'as1.home1.net');
    assert.equal(readAvp(acr.avps, 'Destination-Realm'), 'cdf.home1.net');
    assert.equal(readAvp(acr.avps, 'Accounting-Record-Type'), 1);
    assert.equal(readAvp(acr.avps, 'Accounting-Record-Number'), 0);
    assert.equal(readAvp(acr.avps, 'Acct-Application-Id'), 3);
    assert.equal(readAvp(acr.avps, 'Service-Context-Id'), '32260@3gpp.org');
    const si = readAvp(acr.avps, 'Service-Information') as Avp[];
    const ims = readAvp(si, 'IMS-Information') as Avp[];
    assert.equal(readAvp(readAvp(ims, 'Event-Type') as Avp[], 'SIP-Method'), 'MESSAGE');
    assert.equal(readAvp(ims, 'Role-Of-Node'), 0);
    assert.equal(readAvp(ims, 'Node-Functionality'), 6);
    assert.equal(readAvp(ims, 'User-Session-Id'), 'sub-1@pc');
    assert.equal(readAvp(ims, 'Calling-Party-Address'), 'sip:alice@home1.net');
    assert.equal(readAvp(ims, 'Called-Party-Address'), 'sip:bob@home1.net');
    assert.equal(readAvp(ims, 'IMS-Charging-Identifier'), 'icid-9');
    const ioi = readAvp(ims, 'Inter-Operator-Identifier') as Avp[];
    assert.equal(readAvp(ioi, 'Originating-IOI'), 'home1.net');
    assert.equal(readAvp(ioi, 'Terminating-IOI'), 'visited.net');
    const stamps = readAvp(ims, 'Time-Stamps') as Avp[];
    assert.equal((readAvp(stamps, 'SIP-Request-Timestamp') as Date).toISOString(), at.toISOString());
    assert.equal(readAvp(readAvp(ims, 'Message-Body') as Avp[], 'Content-Length'), 5);
    assert.equal(readAvp(ims, 'Cause-Code'), 200);
  });
  test("User-Name: the IMPI Kamailio authenticated, absent when unknown; IOIs: the vector's, else the configured ones", () => {
    const known = buildAcr(cdr({ privateUserId: 'alice@home1.net' }), id);
    assert.equal(readAvp(known.avps, 'User-Name'), 'alice@home1.net');
    assert.equal(
      readAvp(buildAcr(cdr(), id).avps, 'User-Name'),
      undefined,
      'a public identity is not a NAI: no User-Name',
    );
    const configured = buildCdr(
      {
        service: 'im',
        role: 'originating',
        sipMethod: 'MESSAGE',
        sessionId: 'c@pc',
        callingParty: 'sip:alice@home1.net',
        calledParty: 'sip:bob@home1.net',
        requestTime: at,
        outcome: 'delivered',
        chargingVector: 'icid-value=i1',
      },
      {
        nodeId: 'as1',
        nodeAddress: '10.0.0.5',
        seq: 1,
        now: at,
        generateIcid: () => 'gen',
        defaultIoi: { originatingIOI: 'home1.net', terminatingIOI: 'partner.example' },
      },
    );
    const ims = readAvp(
      readAvp(buildAcr(configured, id).avps, 'Service-Information') as Avp[],
      'IMS-Information',
    ) as Avp[];
    const ioi = readAvp(ims, 'Inter-Operator-Identifier') as Avp[];
    assert.deepEqual(
      [readAvp(ioi, 'Originating-IOI'), readAvp(ioi, 'Terminating-IOI')],
      ['home1.net', 'partner.example'],
    );
  });
  test('Cause-Code: the SIP status, else 0 for a normal end, -1 otherwise', () => {
    assert.equal(causeCode({ statusCode: 404, causeForRecordClosing: 'unSuccessfulServiceDelivery' }), 404);
    assert.equal(causeCode({ causeForRecordClosing: 'serviceDeliveryEndSuccessfully' }), 0);
    assert.equal(causeCode({ causeForRecordClosing: 'timeLimit' }), -1);
  });
  test('peer lists', () => {
    assert.deepEqual(parseRfPeers('cdf1:3868, 127.0.0.1:3869,[::1]:3870'), [
      { host: 'cdf1', port: 3868 },
      { host: '127.0.0.1', port: 3869 },
      { host: '::1', port: 3870 },
    ]);
    assert.throws(() => parseRfPeers('cdf1'), RangeError);
    assert.throws(() => parseRfPeers('cdf1:0'), RangeError);
  });
});
