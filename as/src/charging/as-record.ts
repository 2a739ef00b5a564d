/**
 * One CDR as the TS 32.298 (Release 18) `IMSRecord` alternative `aSRecord` [69], BER encoded.
 * Pure. The field table with tags, types and sources is docs/charging.md section 1; what
 * 32.298 has no field for goes in `recordExtensions` as one JSON document.
 */

import { isIP } from 'node:net';
import { cons, ctx, universal } from './ber.js';
import { ACR_INTERIM_LOST, CAUSE_CODES, type Cdr } from './record.js';

/** The IMSRecord choice tag of aSRecord, and the recordType value it carries. */
export const AS_RECORD_TAG = 69;
export const AS_RECORD_TYPE = 69;
/** Service-Context-Id of IMS charging (TS 32.299). */
export const IMS_SERVICE_CONTEXT_ID = '32260@3gpp.org';
/** Identifier of our record extension: the OID of a UUID (ITU-T X.667), registration-free. */
export const EXTENSION_OID = '2.25.48741067416923573553780445371522889679';

/** Context tags of the aSRecord components we write (docs/charging.md section 1). */
export const AS_TAGS = {
  recordType: 0,
  retransmission: 1,
  sipMethod: 2,
  roleOfNode: 3,
  nodeAddress: 4,
  sessionId: 5,
  listOfCallingPartyAddress: 6,
  calledPartyAddress: 7,
  privateUserId: 8,
  serviceRequestTimeStamp: 9,
  serviceDeliveryStartTimeStamp: 10,
  serviceDeliveryEndTimeStamp: 11,
  recordOpeningTime: 12,
  recordClosureTime: 13,
  interOperatorIdentifiers: 14,
  localRecordSequenceNumber: 15,
  recordSequenceNumber: 16,
  causeForRecordClosing: 17,
  incompleteCdrIndication: 18,
  imsChargingIdentifier: 19,
  serviceReasonReturnCode: 23,
  listOfMessageBodies: 24,
  recordExtensions: 25,
  expiresInformation: 26,
  event: 28,
  serviceContextId: 30,
  serviceRequestTimeStampFraction: 37,
  serviceDeliveryStartTimeStampFraction: 38,
  serviceDeliveryEndTimeStampFraction: 39,
  requestedPartyAddress: 101,
} as const;

/** Longest text a field carries (octets): a record must fit the 16-bit CDR length of TS 32.297. */
export const MAX_FIELD_OCTETS = 2048;
/** Longest recordExtensions document (octets). */
export const MAX_EXTENSION_OCTETS = 8192;

/** `text` cut to at most `max` UTF-8 octets on a character boundary. */
export function clampText(text: string, max = MAX_FIELD_OCTETS): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  let cut = Buffer.from(text, 'utf8').subarray(0, max).toString('utf8');
  if (cut.endsWith('\uFFFD')) cut = cut.slice(0, -1);
  return cut;
}

export const ROLE_CODES = { originating: 0, terminating: 1 } as const;

/** An InvolvedParty CHOICE value: tEL-URI [1] for tel: URIs, sIP-URI [0] otherwise. */
export function involvedParty(uri: string): Buffer {
  return /^tel:/i.test(uri) ? ctx.text(1, clampText(uri)) : ctx.text(0, clampText(uri));
}

/** NodeAddress CHOICE: iPAddress [0] (binary v4 [0] / v6 [1]) for an IP literal, domainName [1] otherwise. */
export function nodeAddress(address: string): Buffer {
  const family = isIP(address);
  if (family === 4) return ctx.cons(0, [ctx.octets(0, Buffer.from(address.split('.').map(Number)))]);
  if (family === 6) return ctx.cons(0, [ctx.octets(1, ipv6Bytes(address))]);
  return ctx.text(1, address);
}

export function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? (address.split('::') as [string, string]) : [address, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':') : []);
  let groups = parse(head);
  let rest = parse(tail);
  // an embedded IPv4 tail (::ffff:1.2.3.4) is two groups
  const lastPart = (tail !== undefined ? rest : groups).at(-1);
  if (lastPart && lastPart.includes('.')) {
    const b = lastPart.split('.').map(Number);
    const v4 = [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
    if (tail !== undefined) rest = [...rest.slice(0, -1), ...v4];
    else groups = [...groups.slice(0, -1), ...v4];
  }
  const fill = tail !== undefined ? Array(8 - groups.length - rest.length).fill('0') : [];
  const all = [...groups, ...fill, ...rest];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Causes of records written before the IMS-only enumeration, read back from the store. */
const LEGACY_CAUSES: Record<string, number> = { abnormalRelease: CAUSE_CODES.unSuccessfulServiceDelivery };

function causeCode(cause: string): number {
  const code = (CAUSE_CODES as Record<string, number>)[cause] ?? LEGACY_CAUSES[cause];
  if (code === undefined) throw new RangeError(`no IMS causeForRecordClosing for ${cause}`);
  return code;
}

/** What of ours 32.298 has no field for (docs/charging.md, tag 25). */
export function extensionOf(cdr: Cdr): Record<string, unknown> {
  return {
    recordId: cdr.recordId,
    nodeId: cdr.nodeId,
    service: cdr.service,
    outcome: cdr.outcome,
    ...(cdr.statusCode !== undefined ? { statusCode: cdr.statusCode } : {}),
    ...(cdr.extra ?? {}),
  };
}

/** The extension document, cut to its identifying part when the service's counters make it too long. */
function extensionText(cdr: Cdr): string {
  const full = JSON.stringify(extensionOf(cdr));
  if (Buffer.byteLength(full, 'utf8') <= MAX_EXTENSION_OCTETS) return full;
  return JSON.stringify({
    recordId: cdr.recordId,
    nodeId: cdr.nodeId,
    service: clampText(cdr.service, 256),
    outcome: clampText(cdr.outcome, 256),
    ...(cdr.statusCode !== undefined ? { statusCode: cdr.statusCode } : {}),
    extensionCut: true,
  });
}

/** The BER encoding of one CDR as `IMSRecord` → `aSRecord` [69]. */
export function encodeAsRecord(cdr: Cdr): Buffer {
  const requestAt = new Date(cdr.sipRequestTimestamp);
  const startAt = new Date(cdr.serviceDeliveryStartTimestamp ?? cdr.sipRequestTimestamp);
  const endAt = new Date(cdr.serviceDeliveryEndTimestamp ?? cdr.sipResponseTimestamp ?? cdr.recordClosureTime);
  const t = AS_TAGS;
  const fields: Buffer[] = [
    ctx.integer(t.recordType, AS_RECORD_TYPE),
    ctx.text(t.sipMethod, clampText(cdr.sipMethod)),
    ctx.enumerated(t.roleOfNode, ROLE_CODES[cdr.roleOfNode]),
    ctx.cons(t.nodeAddress, [nodeAddress(cdr.nodeAddress)]),
    ctx.text(t.sessionId, clampText(cdr.sessionId)),
    ctx.cons(t.listOfCallingPartyAddress, [involvedParty(cdr.callingPartyAddress)]),
    ctx.cons(t.calledPartyAddress, [involvedParty(cdr.calledPartyAddress)]),
    ...(cdr.privateUserId !== undefined ? [ctx.text(t.privateUserId, clampText(cdr.privateUserId))] : []),
    ctx.timeStamp(t.serviceRequestTimeStamp, requestAt),
    ctx.timeStamp(t.serviceDeliveryStartTimeStamp, startAt),
    ctx.timeStamp(t.serviceDeliveryEndTimeStamp, endAt),
    ctx.timeStamp(t.recordOpeningTime, new Date(cdr.recordOpeningTime)),
    ctx.timeStamp(t.recordClosureTime, new Date(cdr.recordClosureTime)),
  ];
  const ioi = cdr.interOperatorIdentifiers;
  if (ioi && (ioi.originatingIOI !== undefined || ioi.terminatingIOI !== undefined)) {
    fields.push(
      ctx.cons(t.interOperatorIdentifiers, [
        ...(ioi.originatingIOI !== undefined ? [ctx.text(0, clampText(ioi.originatingIOI))] : []),
        ...(ioi.terminatingIOI !== undefined ? [ctx.text(1, clampText(ioi.terminatingIOI))] : []),
      ]),
    );
  }
  fields.push(ctx.integer(t.localRecordSequenceNumber, cdr.localRecordSequenceNumber));
  if (cdr.recordSequenceNumber !== undefined)
    fields.push(ctx.integer(t.recordSequenceNumber, cdr.recordSequenceNumber));
  fields.push(ctx.enumerated(t.causeForRecordClosing, causeCode(cdr.causeForRecordClosing)));
  const inc = cdr.incompleteCdrIndication;
  if (inc) {
    fields.push(
      ctx.cons(t.incompleteCdrIndication, [
        ctx.boolean(0, inc.acrStartLost),
        ctx.enumerated(1, ACR_INTERIM_LOST[inc.acrInterimLost] ?? ACR_INTERIM_LOST.unknown),
        ctx.boolean(2, inc.acrStopLost),
      ]),
    );
  }
  fields.push(ctx.octets(t.imsChargingIdentifier, Buffer.from(clampText(cdr.imsChargingIdentifier), 'utf8')));
  if (cdr.statusCode !== undefined) fields.push(ctx.text(t.serviceReasonReturnCode, String(cdr.statusCode)));
  if (cdr.messageBody) {
    fields.push(
      ctx.cons(t.listOfMessageBodies, [
        universal.sequence([
          ctx.text(0, clampText(cdr.messageBody.contentType)),
          ctx.integer(2, cdr.messageBody.contentLength),
          ctx.cons(3, [involvedParty(cdr.callingPartyAddress)]),
        ]),
      ]),
    );
  }
  fields.push(
    ctx.cons(t.recordExtensions, [
      universal.sequence([universal.oid(EXTENSION_OID), ctx.cons(2, [universal.utf8(extensionText(cdr))])]),
    ]),
  );
  if (cdr.expires !== undefined) fields.push(ctx.integer(t.expiresInformation, cdr.expires));
  if (cdr.event !== undefined) fields.push(ctx.text(t.event, clampText(cdr.event)));
  fields.push(ctx.text(t.serviceContextId, IMS_SERVICE_CONTEXT_ID));
  fields.push(ctx.integer(t.serviceRequestTimeStampFraction, requestAt.getUTCMilliseconds()));
  fields.push(ctx.integer(t.serviceDeliveryStartTimeStampFraction, startAt.getUTCMilliseconds()));
  fields.push(ctx.integer(t.serviceDeliveryEndTimeStampFraction, endAt.getUTCMilliseconds()));
  // the address the sender asked for, when the AS delivered to another (a group's member)
  const via = cdr.extra?.via;
  if (typeof via === 'string' && via !== cdr.calledPartyAddress)
    fields.push(ctx.cons(t.requestedPartyAddress, [involvedParty(via)]));
  return cons('context', AS_RECORD_TAG, fields);
}
