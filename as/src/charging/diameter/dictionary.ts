/**
 * The AVPs the Rf client sends or reads: the base protocol (RFC 6733), Service-Context-Id
 * (RFC 4006) and the 3GPP charging AVPs of TS 32.299 (vendor 10415). Codes, types and flag
 * rules are facts taken from the specifications; this table is ours.
 */

import {
  fromAddress,
  fromInteger32,
  fromTime,
  fromUnsigned32,
  fromUnsigned64,
  fromUtf8,
  encodeAvps,
  decodeAvps,
  toAddress,
  toInteger32,
  toTime,
  toUnsigned32,
  toUnsigned64,
  toUtf8,
  type Avp,
} from './codec.js';

export const VENDOR_3GPP = 10415;

/** Base accounting application (RFC 6733): Rf runs on it. */
export const APP_BASE_ACCOUNTING = 3;
/** Service-Context-Id of IMS charging (TS 32.260). */
export const IMS_SERVICE_CONTEXT = '32260@3gpp.org';

export const CMD = { CAPABILITIES_EXCHANGE: 257, DEVICE_WATCHDOG: 280, DISCONNECT_PEER: 282, ACCOUNTING: 271 } as const;

export const RESULT_SUCCESS = 2001;

export const ACCOUNTING_RECORD_TYPE = { EVENT_RECORD: 1, START_RECORD: 2, INTERIM_RECORD: 3, STOP_RECORD: 4 } as const;
export const ROLE_OF_NODE = { ORIGINATING_ROLE: 0, TERMINATING_ROLE: 1 } as const;
export const NODE_FUNCTIONALITY_AS = 6;

export type AvpType =
  | 'OctetString'
  | 'UTF8String'
  | 'DiameterIdentity'
  | 'Unsigned32'
  | 'Unsigned64'
  | 'Integer32'
  | 'Enumerated'
  | 'Time'
  | 'Address'
  | 'Grouped';

export interface AvpDefinition {
  code: number;
  type: AvpType;
  vendorId?: number;
  /** M flag as the specification requires it when sent. */
  mandatory: boolean;
}

const base = (code: number, type: AvpType, mandatory = true): AvpDefinition => ({ code, type, mandatory });
const tgpp = (code: number, type: AvpType): AvpDefinition => ({ code, type, vendorId: VENDOR_3GPP, mandatory: true });

export const AVPS = {
  // RFC 6733
  'User-Name': base(1, 'UTF8String'),
  'Event-Timestamp': base(55, 'Time'),
  'Host-IP-Address': base(257, 'Address'),
  'Auth-Application-Id': base(258, 'Unsigned32'),
  'Acct-Application-Id': base(259, 'Unsigned32'),
  'Vendor-Specific-Application-Id': base(260, 'Grouped'),
  'Session-Id': base(263, 'UTF8String'),
  'Origin-Host': base(264, 'DiameterIdentity'),
  'Supported-Vendor-Id': base(265, 'Unsigned32'),
  'Vendor-Id': base(266, 'Unsigned32'),
  'Firmware-Revision': base(267, 'Unsigned32', false),
  'Result-Code': base(268, 'Unsigned32'),
  'Product-Name': base(269, 'UTF8String', false),
  'Disconnect-Cause': base(273, 'Enumerated'),
  'Origin-State-Id': base(278, 'Unsigned32'),
  'Failed-AVP': base(279, 'Grouped'),
  'Error-Message': base(281, 'UTF8String', false),
  'Destination-Realm': base(283, 'DiameterIdentity'),
  'Destination-Host': base(293, 'DiameterIdentity'),
  'Origin-Realm': base(296, 'DiameterIdentity'),
  'Accounting-Record-Type': base(480, 'Enumerated'),
  'Accounting-Record-Number': base(485, 'Unsigned32'),
  'Accounting-Sub-Session-Id': base(287, 'Unsigned64'),
  // RFC 4006
  'Service-Context-Id': base(461, 'UTF8String'),
  // TS 32.299
  'Event-Type': tgpp(823, 'Grouped'),
  'SIP-Method': tgpp(824, 'UTF8String'),
  Event: tgpp(825, 'UTF8String'),
  'Content-Type': tgpp(826, 'UTF8String'),
  'Content-Length': tgpp(827, 'Unsigned32'),
  'Role-Of-Node': tgpp(829, 'Enumerated'),
  'User-Session-Id': tgpp(830, 'UTF8String'),
  'Calling-Party-Address': tgpp(831, 'UTF8String'),
  'Called-Party-Address': tgpp(832, 'UTF8String'),
  'Time-Stamps': tgpp(833, 'Grouped'),
  'SIP-Request-Timestamp': tgpp(834, 'Time'),
  'SIP-Response-Timestamp': tgpp(835, 'Time'),
  'Inter-Operator-Identifier': tgpp(838, 'Grouped'),
  'Originating-IOI': tgpp(839, 'UTF8String'),
  'Terminating-IOI': tgpp(840, 'UTF8String'),
  'IMS-Charging-Identifier': tgpp(841, 'UTF8String'),
  'Cause-Code': tgpp(861, 'Integer32'),
  'Node-Functionality': tgpp(862, 'Enumerated'),
  'Service-Information': tgpp(873, 'Grouped'),
  'IMS-Information': tgpp(876, 'Grouped'),
  Expires: tgpp(888, 'Unsigned32'),
  'Message-Body': tgpp(889, 'Grouped'),
  'Requested-Party-Address': tgpp(1251, 'UTF8String'),
} as const satisfies Record<string, AvpDefinition>;

export type AvpName = keyof typeof AVPS;
export type AvpValue = string | number | bigint | Date | Buffer | readonly Avp[];

/** Builds an AVP from its dictionary name and a value of its type (a list of AVPs for Grouped). */
export function avp(name: AvpName, value: AvpValue): Avp {
  const def: AvpDefinition = AVPS[name];
  const out: Avp = { code: def.code, mandatory: def.mandatory, data: payload(name, def.type, value) };
  if (def.vendorId !== undefined) out.vendorId = def.vendorId;
  return out;
}

function payload(name: string, type: AvpType, value: AvpValue): Buffer {
  const wrong = (): never => {
    throw new TypeError(`${name} (${type}) cannot hold ${typeof value}`);
  };
  switch (type) {
    case 'OctetString':
      return Buffer.isBuffer(value) ? value : typeof value === 'string' ? fromUtf8(value) : wrong();
    case 'UTF8String':
    case 'DiameterIdentity':
      return typeof value === 'string' ? fromUtf8(value) : wrong();
    case 'Unsigned32':
    case 'Enumerated':
      return typeof value === 'number'
        ? type === 'Enumerated'
          ? fromInteger32(value)
          : fromUnsigned32(value)
        : wrong();
    case 'Integer32':
      return typeof value === 'number' ? fromInteger32(value) : wrong();
    case 'Unsigned64':
      return typeof value === 'number' || typeof value === 'bigint' ? fromUnsigned64(value) : wrong();
    case 'Time':
      return value instanceof Date ? fromTime(value) : wrong();
    case 'Address':
      return typeof value === 'string' ? fromAddress(value) : wrong();
    case 'Grouped':
      return Array.isArray(value) ? encodeAvps(value as readonly Avp[]) : wrong();
  }
}

/** The first AVP of that name among `avps`. */
export function findAvp(avps: readonly Avp[], name: AvpName): Avp | undefined {
  const def: AvpDefinition = AVPS[name];
  return avps.find((a) => a.code === def.code && a.vendorId === def.vendorId);
}

/** The value of the first AVP of that name, typed as the dictionary says; undefined when absent. */
export function readAvp(avps: readonly Avp[], name: AvpName): string | number | bigint | Date | Avp[] | undefined {
  const a = findAvp(avps, name);
  if (!a) return undefined;
  const type: AvpType = AVPS[name].type;
  switch (type) {
    case 'OctetString':
    case 'UTF8String':
    case 'DiameterIdentity':
      return toUtf8(a.data);
    case 'Unsigned32':
      return toUnsigned32(a.data);
    case 'Enumerated':
    case 'Integer32':
      return toInteger32(a.data);
    case 'Unsigned64':
      return toUnsigned64(a.data);
    case 'Time':
      return toTime(a.data);
    case 'Address':
      return toAddress(a.data);
    case 'Grouped':
      return decodeAvps(a.data);
  }
}
