/**
 * Reading an `aSRecord` [69] back into named fields (pure): for `ims-cdr` and for the file
 * writer's repair after a crash (it needs each record's localRecordSequenceNumber). Unknown
 * tags are kept as hex under `tag<N>`, so a record of another writer still shows.
 */

import {
  contentOf,
  decodeInteger,
  decodeOid,
  decodeTimeStamp,
  readChildren,
  readElement,
  BerError,
  type BerElement,
} from './ber-reader.js';
import { AS_RECORD_TAG, AS_TAGS, ROLE_CODES } from './as-record.js';
import { ACR_INTERIM_LOST, CAUSE_CODES } from './record.js';

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(AS_TAGS).map(([k, v]) => [v, k]));
const CAUSE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(CAUSE_CODES).map(([k, v]) => [v, k]));
const ROLE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(ROLE_CODES).map(([k, v]) => [v, k]));
const INTERIM_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(ACR_INTERIM_LOST).map(([k, v]) => [v, k]),
);
const PARTY_KINDS = ['sipUri', 'telUri', 'urn', 'isdnE164', 'externalId'];

export type DecodedAsRecord = Record<string, unknown> & { localRecordSequenceNumber?: number };

function text(buf: Uint8Array, el: BerElement): string {
  return contentOf(buf, el).toString('utf8');
}

function party(buf: Uint8Array, el: BerElement): string {
  const [choice] = readChildren(buf, el.contentOffset, el.end);
  if (!choice) throw new BerError('aSRecord: empty InvolvedParty', el.offset);
  return text(buf, choice);
}

function partyChoice(buf: Uint8Array, el: BerElement): { kind: string; uri: string } {
  return { kind: PARTY_KINDS[el.tag] ?? `tag${el.tag}`, uri: text(buf, el) };
}

function timeOf(buf: Uint8Array, el: BerElement): string {
  const d = decodeTimeStamp(contentOf(buf, el));
  if (!d) throw new BerError('aSRecord: malformed TimeStamp', el.offset);
  return d.toISOString();
}

/** The fields of the aSRecord at `offset` (the whole element: identifier BF 45 ...). */
export function decodeAsRecord(buf: Uint8Array, offset = 0, limit = buf.length): DecodedAsRecord {
  const top = readElement(buf, offset, limit);
  if (top.cls !== 'context' || top.tag !== AS_RECORD_TAG || !top.constructed) {
    throw new BerError(`not an aSRecord [${AS_RECORD_TAG}] (found ${top.cls} ${top.tag})`, offset);
  }
  const out: DecodedAsRecord = {};
  for (const el of readChildren(buf, top.contentOffset, top.end)) {
    const name = el.cls === 'context' ? NAMES[el.tag] : undefined;
    const c = () => contentOf(buf, el);
    switch (name) {
      case 'recordType':
      case 'localRecordSequenceNumber':
      case 'recordSequenceNumber':
      case 'expiresInformation':
      case 'serviceRequestTimeStampFraction':
      case 'serviceDeliveryStartTimeStampFraction':
      case 'serviceDeliveryEndTimeStampFraction':
        out[name] = decodeInteger(c());
        break;
      case 'roleOfNode':
        out[name] = ROLE_NAMES[decodeInteger(c())] ?? decodeInteger(c());
        break;
      case 'causeForRecordClosing':
        out[name] = CAUSE_NAMES[decodeInteger(c())] ?? decodeInteger(c());
        break;
      case 'sipMethod':
      case 'sessionId':
      case 'privateUserId':
      case 'serviceReasonReturnCode':
      case 'event':
      case 'serviceContextId':
      case 'imsChargingIdentifier':
        out[name] = text(buf, el);
        break;
      case 'serviceRequestTimeStamp':
      case 'serviceDeliveryStartTimeStamp':
      case 'serviceDeliveryEndTimeStamp':
      case 'recordOpeningTime':
      case 'recordClosureTime':
        out[name] = timeOf(buf, el);
        break;
      case 'retransmission':
        out[name] = true;
        break;
      case 'nodeAddress': {
        const [choice] = readChildren(buf, el.contentOffset, el.end);
        if (!choice) throw new BerError('aSRecord: empty nodeAddress', el.offset);
        if (choice.tag === 1) out[name] = text(buf, choice);
        else {
          const [ip] = readChildren(buf, choice.contentOffset, choice.end);
          const b = ip ? contentOf(buf, ip) : Buffer.alloc(0);
          out[name] = b.length === 4 ? [...b].join('.') : b.toString('hex').replace(/(.{4})(?!$)/g, '$1:');
        }
        break;
      }
      case 'listOfCallingPartyAddress':
        out[name] = readChildren(buf, el.contentOffset, el.end).map((p) => partyChoice(buf, p).uri);
        break;
      case 'calledPartyAddress':
      case 'requestedPartyAddress':
        out[name] = party(buf, el);
        break;
      case 'interOperatorIdentifiers': {
        const ioi: Record<string, string> = {};
        for (const f of readChildren(buf, el.contentOffset, el.end))
          ioi[f.tag === 0 ? 'originatingIOI' : 'terminatingIOI'] = text(buf, f);
        out[name] = ioi;
        break;
      }
      case 'incompleteCdrIndication': {
        const inc: Record<string, unknown> = {};
        for (const f of readChildren(buf, el.contentOffset, el.end)) {
          const v = contentOf(buf, f);
          if (f.tag === 0) inc.acrStartLost = v[0] !== 0;
          else if (f.tag === 1) inc.acrInterimLost = INTERIM_NAMES[decodeInteger(v)] ?? decodeInteger(v);
          else if (f.tag === 2) inc.acrStopLost = v[0] !== 0;
        }
        out[name] = inc;
        break;
      }
      case 'listOfMessageBodies':
        out[name] = readChildren(buf, el.contentOffset, el.end).map((seq) => {
          const body: Record<string, unknown> = {};
          for (const f of readChildren(buf, seq.contentOffset, seq.end)) {
            if (f.tag === 0) body.contentType = text(buf, f);
            else if (f.tag === 1) body.contentDisposition = text(buf, f);
            else if (f.tag === 2) body.contentLength = decodeInteger(contentOf(buf, f));
            else if (f.tag === 3) body.originator = party(buf, f);
          }
          return body;
        });
        break;
      case 'recordExtensions':
        out[name] = readChildren(buf, el.contentOffset, el.end).map((seq) => {
          const [id, ...rest] = readChildren(buf, seq.contentOffset, seq.end);
          const info = rest.find((f) => f.cls === 'context' && f.tag === 2);
          const inner = info ? readChildren(buf, info.contentOffset, info.end)[0] : undefined;
          let information: unknown = inner ? text(buf, inner) : undefined;
          try {
            information = typeof information === 'string' ? JSON.parse(information) : information;
          } catch {
            // not JSON: shown as text
          }
          return { identifier: id ? decodeOid(contentOf(buf, id)) : '', information };
        });
        break;
      default:
        out[`tag${el.tag}`] = c().toString('hex');
    }
  }
  return out;
}
