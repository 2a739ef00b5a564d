/**
 * One CDR -> one Rf Accounting-Request (TS 32.299 / RFC 6733 section 9.7.1), pure.
 *
 * Which record type: a record outside a chain is an EVENT_RECORD; the partial records of a
 * subscription (recordSequenceNumber 1, 2 ...) become START, INTERIM ... and STOP on the one
 * that carries the final cause. A chain that closes with its first record is an event.
 * Accounting-Record-Number follows from the chain position (0 for START and EVENT, then +1), so
 * it stays right across restarts and instances without a counter of its own.
 */

import { createHash } from 'node:crypto';
import type { Avp, DiameterMessage } from './codec.js';
import {
  ACCOUNTING_RECORD_TYPE,
  APP_BASE_ACCOUNTING,
  CMD,
  IMS_SERVICE_CONTEXT,
  NODE_FUNCTIONALITY_AS,
  ROLE_OF_NODE,
  avp,
} from './dictionary.js';
import type { Cdr } from '../record.js';

export interface RfIdentity {
  originHost: string;
  originRealm: string;
  destinationRealm: string;
}

export type AccountingRecordType = keyof typeof ACCOUNTING_RECORD_TYPE;

export interface Acr {
  /** Diameter Session-Id: one per event, one per subscription chain. */
  sessionId: string;
  recordType: AccountingRecordType;
  recordNumber: number;
  avps: Avp[];
}

export function accountingRecordType(
  cdr: Pick<Cdr, 'recordSequenceNumber' | 'causeForRecordClosing'>,
): AccountingRecordType {
  const n = cdr.recordSequenceNumber;
  if (n === undefined) return 'EVENT_RECORD';
  const last = cdr.causeForRecordClosing !== 'serviceChange';
  if (n === 1) return last ? 'EVENT_RECORD' : 'START_RECORD';
  return last ? 'STOP_RECORD' : 'INTERIM_RECORD';
}

/**
 * A Session-Id every partial record of one subscription shares, and no other record has. It is
 * fixed when the record is queued and kept with it, so whichever instance sends or resends it
 * uses the same one. A chain's id leaves the node out (a refresh may be served by another
 * instance) and starts with the realm all instances share.
 */
export function diameterSessionId(cdr: Cdr, id: Pick<RfIdentity, 'originHost' | 'originRealm'>): string {
  if (cdr.recordSequenceNumber === undefined) return `${id.originHost};${cdr.recordId}`;
  const chain = [
    cdr.sessionId,
    cdr.imsChargingIdentifier,
    cdr.roleOfNode,
    cdr.event ?? '',
    cdr.callingPartyAddress,
    cdr.calledPartyAddress,
  ].join('\n');
  return `${id.originRealm};sub;${createHash('sha256').update(chain).digest('hex').slice(0, 32)}`;
}

/** `sessionId`: the one fixed when the record was queued (default: computed with `id`). */
export function buildAcr(cdr: Cdr, id: RfIdentity, sessionId = diameterSessionId(cdr, id)): Acr {
  const recordType = accountingRecordType(cdr);
  const recordNumber = recordType === 'EVENT_RECORD' ? 0 : (cdr.recordSequenceNumber ?? 1) - 1;

  const eventType: Avp[] = [avp('SIP-Method', cdr.sipMethod)];
  if (cdr.event !== undefined) eventType.push(avp('Event', cdr.event));
  if (cdr.expires !== undefined) eventType.push(avp('Expires', cdr.expires));

  const stamps: Avp[] = [avp('SIP-Request-Timestamp', new Date(cdr.sipRequestTimestamp))];
  if (cdr.sipResponseTimestamp !== undefined)
    stamps.push(avp('SIP-Response-Timestamp', new Date(cdr.sipResponseTimestamp)));

  const ims: Avp[] = [
    avp('Event-Type', eventType),
    avp(
      'Role-Of-Node',
      cdr.roleOfNode === 'originating' ? ROLE_OF_NODE.ORIGINATING_ROLE : ROLE_OF_NODE.TERMINATING_ROLE,
    ),
    avp('Node-Functionality', NODE_FUNCTIONALITY_AS),
    avp('User-Session-Id', cdr.sessionId),
    avp('Calling-Party-Address', cdr.callingPartyAddress),
    avp('Called-Party-Address', cdr.calledPartyAddress),
    avp('Time-Stamps', stamps),
  ];
  const ioi = cdr.interOperatorIdentifiers;
  if (ioi && (ioi.originatingIOI || ioi.terminatingIOI)) {
    const members: Avp[] = [];
    if (ioi.originatingIOI) members.push(avp('Originating-IOI', ioi.originatingIOI));
    if (ioi.terminatingIOI) members.push(avp('Terminating-IOI', ioi.terminatingIOI));
    ims.push(avp('Inter-Operator-Identifier', members));
  }
  ims.push(avp('IMS-Charging-Identifier', cdr.imsChargingIdentifier));
  if (cdr.messageBody) {
    ims.push(
      avp('Message-Body', [
        avp('Content-Type', cdr.messageBody.contentType),
        avp('Content-Length', cdr.messageBody.contentLength),
      ]),
    );
  }
  ims.push(avp('Cause-Code', causeCode(cdr)));

  const avps: Avp[] = [
    avp('Session-Id', sessionId),
    avp('Origin-Host', id.originHost),
    avp('Origin-Realm', id.originRealm),
    avp('Destination-Realm', id.destinationRealm),
    avp('Accounting-Record-Type', ACCOUNTING_RECORD_TYPE[recordType]),
    avp('Accounting-Record-Number', recordNumber),
    avp('Acct-Application-Id', APP_BASE_ACCOUNTING),
    // the served user's private identity (a NAI) when Kamailio authenticated one; a public identity is no NAI
    ...(cdr.privateUserId !== undefined ? [avp('User-Name', cdr.privateUserId)] : []),
    avp('Event-Timestamp', new Date(cdr.recordClosureTime)),
    avp('Service-Context-Id', IMS_SERVICE_CONTEXT),
    avp('Service-Information', [avp('IMS-Information', ims)]),
  ];
  return { sessionId, recordType, recordNumber, avps };
}

/** The ACR as a message; hop-by-hop and end-to-end identifiers are the transport's to set. */
export function acrMessage(acr: Acr, retransmit: boolean): DiameterMessage {
  return {
    commandCode: CMD.ACCOUNTING,
    applicationId: APP_BASE_ACCOUNTING,
    hopByHop: 0,
    endToEnd: 0,
    request: true,
    proxiable: true,
    error: false,
    retransmit,
    avps: acr.avps,
  };
}

/**
 * Cause-Code (TS 32.299): the SIP final status when there was one (2xx success, 3xx-6xx the
 * failure), otherwise 0 for a normal end and -1 (unspecified error) for anything else.
 */
export function causeCode(cdr: Pick<Cdr, 'statusCode' | 'causeForRecordClosing'>): number {
  if (cdr.statusCode !== undefined) return cdr.statusCode;
  return cdr.causeForRecordClosing === 'serviceDeliveryEndSuccessfully' || cdr.causeForRecordClosing === 'serviceChange'
    ? 0
    : -1;
}
