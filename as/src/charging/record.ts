/**
 * Charging data records (CDRs) of the application server: the pure part (no I/O).
 *
 * One CDR is written per chargeable event (an IM MESSAGE delivered or deferred, a PUBLISH,
 * a SUBSCRIBE dialog ended, an XCAP document changed ...). The record carries the fields of
 * the 3GPP IMS AS record (TS 32.298 `ASRecord`) that apply to an event-based AS, under the
 * camelCase form of their 32.298 names, plus a few AS-specific fields that 32.298 would carry
 * in `recordExtensions` (`service`, `outcome`, `statusCode`, `extra`).
 *
 * Absent optional fields are OMITTED from the record (never written as `null`): a billing
 * reader tests for presence, and `schemas/cdr.schema.json` lists which fields are required.
 * All timestamps are ISO 8601 strings in UTC with milliseconds (`2024-05-01T10:00:00.123Z`).
 */

export type RoleOfNode = 'originating' | 'terminating';

/**
 * TS 32.298 `CauseForRecordClosing` of the IMS records: only the values of the IMS
 * enumeration (docs/charging.md section 2), with their ENUMERATED numbers.
 */
export const CAUSE_CODES = {
  serviceDeliveryEndSuccessfully: 0,
  unSuccessfulServiceDelivery: 1,
  timeLimit: 3,
  serviceChange: 4,
  managementIntervention: 5,
} as const;
export const CAUSES_FOR_RECORD_CLOSING = Object.keys(CAUSE_CODES) as (keyof typeof CAUSE_CODES)[];
export type CauseForRecordClosing = keyof typeof CAUSE_CODES;

/** Outcomes that are never a delivered service whatever status the sender saw (a discarded unwanted message). */
export const UNDELIVERED_OUTCOMES: ReadonlySet<string> = new Set(['discarded']);

/**
 * Outcomes that count as a successful service delivery when the event carries no SIP status
 * code (with a status code, 2xx decides). A deferred IM was accepted and stored by the AS
 * (202 Accepted), which is the service the sender is charged for, so it counts as success;
 * its later delivery or expiry is a separate event with its own record.
 */
export const SUCCESSFUL_OUTCOMES: ReadonlySet<string> = new Set([
  'ok',
  'success',
  'delivered',
  'deferred',
  'accepted',
  'published',
  'subscribed',
  'unsubscribed',
  'notified',
  'stored',
  'retrieved',
  'created',
  'updated',
  'deleted',
]);

/** What a service passes to `Charging.record()` for one chargeable event. */
export interface ChargeableEvent {
  /** Which service: 'im' | 'presence' | 'xdm' or another service name. */
  service: 'im' | 'presence' | 'xdm' | (string & {});
  role: RoleOfNode;
  /** SIP method of the request that triggered the event (MESSAGE, PUBLISH, SUBSCRIBE ...). */
  sipMethod: string;
  /** The SIP Call-ID. */
  sessionId: string;
  /** URI of the calling party (P-Asserted-Identity / From). */
  callingParty: string;
  /** URI of the called party (Request-URI / To). */
  calledParty: string;
  /** SIP Event package, e.g. 'presence', 'xcap-diff'. */
  event?: string;
  /** Expires value granted, in seconds. */
  expires?: number;
  requestTime: Date;
  /** Time of the final response or of the delivery. */
  responseTime?: Date;
  /**
   * When the service was delivered, when that is not the request and response times: a
   * session's answer (its 200) and its end (the BYE). TS 32.298 serviceDeliveryStart/EndTimeStamp.
   */
  deliveryStartTime?: Date;
  deliveryEndTime?: Date;
  statusCode?: number;
  /** Service-specific outcome: 'delivered' | 'deferred' | 'rejected' | 'failed' | 'expired' | 'published' ... */
  outcome: string;
  /** Explicit cause for record closing; derived from statusCode/outcome when absent. */
  cause?: CauseForRecordClosing;
  /** Number of this partial record of a long-lived service (a subscription): 1, 2 ...; absent on a complete record. */
  recordSequenceNumber?: number;
  /** The raw P-Charging-Vector header value, when the request carried one. */
  chargingVector?: string;
  /** The private user identity (IMPI) Kamailio authenticated the request's sender with, when it did. */
  privateUserId?: string;
  /** The record is known incomplete (docs/charging.md, incomplete-CDR-Indication); unset parts default to nothing lost. */
  incomplete?: Partial<IncompleteCdrIndication>;
  messageBody?: { contentType: string; contentLength: number };
  /** Service-specific counters and flags (e.g. notifyCount). */
  extra?: Record<string, string | number | boolean>;
}

/** TS 32.298 ACRInterimLost values. */
export const ACR_INTERIM_LOST = { no: 0, yes: 1, unknown: 2 } as const;

/**
 * TS 32.298 incomplete-CDR-Indication: what is known to be missing from a record
 * (docs/charging.md, tag 18). The AS sets it on a record built from an event its service
 * described badly (stop lost: the closing event's details are unusable) and on the records of
 * a subscription adopted from an instance that died (interim lost unknown: records and
 * NOTIFY counts that instance had not stored yet may be missing).
 */
export interface IncompleteCdrIndication {
  acrStartLost: boolean;
  acrInterimLost: keyof typeof ACR_INTERIM_LOST;
  acrStopLost: boolean;
}

export interface ChargingVector {
  icid?: string;
  origIoi?: string;
  termIoi?: string;
  genAddr?: string;
}

export interface InterOperatorIdentifiers {
  originatingIOI?: string;
  terminatingIOI?: string;
}

/** One CDR as stored and as written (one JSON object per line) to the CDR files. */
export interface Cdr {
  recordType: 'ASRecord';
  /** `<nodeId>:<seq>`; also the store `_id`. */
  recordId: string;
  localRecordSequenceNumber: number;
  nodeId: string;
  nodeAddress: string;
  service: string;
  roleOfNode: RoleOfNode;
  sessionId: string;
  imsChargingIdentifier: string;
  interOperatorIdentifiers?: InterOperatorIdentifiers;
  /** TS 32.298 privateUserID: the IMPI of the authenticated sender (the calling party), when known. */
  privateUserId?: string;
  callingPartyAddress: string;
  calledPartyAddress: string;
  sipMethod: string;
  event?: string;
  expires?: number;
  sipRequestTimestamp: string;
  sipResponseTimestamp?: string;
  /** TS 32.298 serviceDeliveryStartTimeStamp, when it is not the request time (a session: its 200). */
  serviceDeliveryStartTimestamp?: string;
  /** TS 32.298 serviceDeliveryEndTimeStamp, when it is not the response time (a session: its end). */
  serviceDeliveryEndTimestamp?: string;
  statusCode?: number;
  outcome: string;
  causeForRecordClosing: CauseForRecordClosing;
  /** TS 32.298 recordSequenceNumber: the place of a partial record in its service's chain. */
  recordSequenceNumber?: number;
  /** TS 32.298 incomplete-CDR-Indication, only on a record known incomplete. */
  incompleteCdrIndication?: IncompleteCdrIndication;
  messageBody?: { contentType: string; contentLength: number };
  recordOpeningTime: string;
  recordClosureTime: string;
  extra?: Record<string, string | number | boolean>;
}

export interface BuildContext {
  nodeId: string;
  nodeAddress: string;
  /** localRecordSequenceNumber: positive integer, per node. */
  seq: number;
  /** Time the record is closed (recordClosureTime). */
  now: Date;
  /** Produces a fresh, unique ICID when the request carried no P-Charging-Vector. */
  generateIcid: () => string;
  /** Inter-operator identifiers written when the P-Charging-Vector carries none (configuration). */
  defaultIoi?: InterOperatorIdentifiers;
}

/** Field order of a CDR line; `normalizeCdr` writes keys in this order. */
export const CDR_FIELDS = [
  'recordType',
  'recordId',
  'localRecordSequenceNumber',
  'nodeId',
  'nodeAddress',
  'service',
  'roleOfNode',
  'sessionId',
  'imsChargingIdentifier',
  'interOperatorIdentifiers',
  'privateUserId',
  'callingPartyAddress',
  'calledPartyAddress',
  'sipMethod',
  'event',
  'expires',
  'sipRequestTimestamp',
  'sipResponseTimestamp',
  'serviceDeliveryStartTimestamp',
  'serviceDeliveryEndTimestamp',
  'statusCode',
  'outcome',
  'causeForRecordClosing',
  'recordSequenceNumber',
  'incompleteCdrIndication',
  'messageBody',
  'recordOpeningTime',
  'recordClosureTime',
  'extra',
] as const satisfies readonly (keyof Cdr)[];

// ---------------------------------------------------------------------------------------------
// P-Charging-Vector (RFC 7315 §4.6)
// ---------------------------------------------------------------------------------------------

const MAX_PCV_LENGTH = 4096;
const MAX_PARAM_VALUE_LENGTH = 256;

/**
 * Parses a P-Charging-Vector value:
 * `icid-value=...;icid-generated-at=...;orig-ioi=...;term-ioi=...` (parameter names are
 * case-insensitive, values may be quoted-strings, unknown parameters are ignored).
 * Never throws: garbage, or a value that is not a string, yields `{}`; a parameter whose value
 * is empty, too long or contains control characters is dropped.
 */
export function parseChargingVector(value: unknown): ChargingVector {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PCV_LENGTH) return {};
  const out: ChargingVector = {};
  for (const param of splitParams(value)) {
    const eq = param.indexOf('=');
    if (eq <= 0) continue;
    const name = param.slice(0, eq).trim().toLowerCase();
    const v = unquote(param.slice(eq + 1).trim());
    if (v === undefined || v.length === 0 || v.length > MAX_PARAM_VALUE_LENGTH) continue;

    if (/[\u0000-\u001f\u007f]/.test(v)) continue;
    switch (name) {
      case 'icid-value':
        out.icid ??= v;
        break;
      case 'orig-ioi':
        out.origIoi ??= v;
        break;
      case 'term-ioi':
        out.termIoi ??= v;
        break;
      case 'icid-generated-at':
        out.genAddr ??= v;
        break;
      default:
        break;
    }
  }
  return out;
}

/** Splits on ';' outside quoted-strings (honouring backslash escapes inside quotes). */
function splitParams(s: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let inQuotes = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (inQuotes) {
      cur += c;
      if (c === '\\' && i + 1 < s.length) {
        cur += s[++i]!;
      } else if (c === '"') {
        inQuotes = false;
      }
    } else if (c === '"') {
      inQuotes = true;
      cur += c;
    } else if (c === ';') {
      parts.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (inQuotes) return parts; // unterminated quote: drop the broken tail
  parts.push(cur);
  return parts;
}

/** Returns the value without surrounding quotes, or undefined when it is malformed. */
function unquote(v: string): string | undefined {
  if (!v.startsWith('"')) {
    return /[\s"]/.test(v) ? undefined : v;
  }
  if (v.length < 2 || !v.endsWith('"')) return undefined;
  return v.slice(1, -1).replace(/\\(.)/g, '$1');
}

// ---------------------------------------------------------------------------------------------
// Cause derivation
// ---------------------------------------------------------------------------------------------

/**
 * The causeForRecordClosing of an event: the explicit `cause` when given; otherwise a 2xx
 * `statusCode` means 'serviceDeliveryEndSuccessfully' and any other status code
 * 'unSuccessfulServiceDelivery'; without a status code the `outcome` decides
 * (see SUCCESSFUL_OUTCOMES).
 */
export function deriveCause(event: Pick<ChargeableEvent, 'cause' | 'statusCode' | 'outcome'>): CauseForRecordClosing {
  if (event.cause !== undefined) return event.cause;
  if (UNDELIVERED_OUTCOMES.has(event.outcome.toLowerCase())) return 'unSuccessfulServiceDelivery';
  if (event.statusCode !== undefined) {
    return event.statusCode >= 200 && event.statusCode <= 299
      ? 'serviceDeliveryEndSuccessfully'
      : 'unSuccessfulServiceDelivery';
  }
  return SUCCESSFUL_OUTCOMES.has(event.outcome.toLowerCase())
    ? 'serviceDeliveryEndSuccessfully'
    : 'unSuccessfulServiceDelivery';
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

function fail(field: string, why: string): never {
  throw new TypeError(`ChargeableEvent.${field} ${why}`);
}

function requireString(obj: Record<string, unknown>, field: string): void {
  const v = obj[field];
  if (typeof v !== 'string' || v.length === 0) fail(field, 'is required (non-empty string)');
}

function optionalString(obj: Record<string, unknown>, field: string): void {
  const v = obj[field];
  if (v !== undefined && typeof v !== 'string') fail(field, 'must be a string');
}

function isValidDate(v: unknown): v is Date {
  return v instanceof Date && !Number.isNaN(v.getTime());
}

/**
 * Cheap checks of an event (the callers are our own services: a failure is a programming
 * error). Throws a TypeError naming the offending field.
 */
export function validateEvent(event: unknown): asserts event is ChargeableEvent {
  if (event === null || typeof event !== 'object') throw new TypeError('ChargeableEvent must be an object');
  const e = event as Record<string, unknown>;
  requireString(e, 'service');
  if (e.role !== 'originating' && e.role !== 'terminating') fail('role', "must be 'originating' or 'terminating'");
  requireString(e, 'sipMethod');
  requireString(e, 'sessionId');
  requireString(e, 'callingParty');
  requireString(e, 'calledParty');
  requireString(e, 'outcome');
  optionalString(e, 'event');
  optionalString(e, 'chargingVector');
  optionalString(e, 'privateUserId');
  if (!isValidDate(e.requestTime)) fail('requestTime', 'is required (valid Date)');
  if (e.responseTime !== undefined && !isValidDate(e.responseTime)) fail('responseTime', 'must be a valid Date');
  if (e.deliveryStartTime !== undefined && !isValidDate(e.deliveryStartTime))
    fail('deliveryStartTime', 'must be a valid Date');
  if (e.deliveryEndTime !== undefined && !isValidDate(e.deliveryEndTime))
    fail('deliveryEndTime', 'must be a valid Date');
  if (e.expires !== undefined && !(Number.isInteger(e.expires) && (e.expires as number) >= 0)) {
    fail('expires', 'must be a non-negative integer (seconds)');
  }
  if (
    e.statusCode !== undefined &&
    !(Number.isInteger(e.statusCode) && (e.statusCode as number) >= 100 && (e.statusCode as number) <= 699)
  ) {
    fail('statusCode', 'must be a SIP status code (100..699)');
  }
  if (e.cause !== undefined && !(CAUSES_FOR_RECORD_CLOSING as readonly unknown[]).includes(e.cause)) {
    fail('cause', `must be one of ${CAUSES_FOR_RECORD_CLOSING.join(', ')}`);
  }
  if (
    e.recordSequenceNumber !== undefined &&
    !(Number.isSafeInteger(e.recordSequenceNumber) && (e.recordSequenceNumber as number) >= 1)
  ) {
    fail('recordSequenceNumber', 'must be a positive integer');
  }
  if (e.incomplete !== undefined) {
    const x = e.incomplete as Record<string, unknown> | null;
    if (x === null || typeof x !== 'object') fail('incomplete', 'must be an object');
    for (const k of ['acrStartLost', 'acrStopLost'])
      if (x[k] !== undefined && typeof x[k] !== 'boolean') fail(`incomplete.${k}`, 'must be a boolean');
    if (x.acrInterimLost !== undefined && !Object.hasOwn(ACR_INTERIM_LOST, x.acrInterimLost as string))
      fail('incomplete.acrInterimLost', "must be 'no', 'yes' or 'unknown'");
  }
  if (e.messageBody !== undefined) {
    const b = e.messageBody as Record<string, unknown> | null;
    if (b === null || typeof b !== 'object') fail('messageBody', 'must be an object');
    if (typeof b.contentType !== 'string' || b.contentType.length === 0) {
      fail('messageBody.contentType', 'is required (non-empty string)');
    }
    if (!(Number.isInteger(b.contentLength) && (b.contentLength as number) >= 0)) {
      fail('messageBody.contentLength', 'must be a non-negative integer');
    }
  }
  if (e.extra !== undefined) {
    const x = e.extra as Record<string, unknown> | null;
    if (x === null || typeof x !== 'object' || Array.isArray(x)) fail('extra', 'must be a plain object');
    for (const [k, v] of Object.entries(x)) {
      const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
      if (!ok) fail(`extra.${k}`, 'must be a string, a finite number or a boolean');
    }
  }
}

/**
 * An event that failed validation, made valid without losing what was right in it: a
 * service that delivered something must leave a record even when it described the event
 * badly (an empty media type, a missing party). Invalid optional fields are dropped,
 * missing required ones say "unknown", and `extra` says the record is incomplete and why.
 */
export function salvageEvent(event: unknown, problem: string, now: Date): ChargeableEvent {
  const e = (event !== null && typeof event === 'object' ? event : {}) as Record<string, unknown>;
  const text = (field: string): string =>
    typeof e[field] === 'string' && (e[field] as string).length > 0 ? (e[field] as string) : 'unknown';
  const extra: Record<string, string | number | boolean> = {};
  if (e.extra !== null && typeof e.extra === 'object' && !Array.isArray(e.extra)) {
    for (const [k, v] of Object.entries(e.extra as Record<string, unknown>)) {
      if (typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)))
        extra[k] = v;
    }
  }
  extra.incompleteRecord = true;
  extra.invalidEvent = problem;
  const incomplete: Partial<IncompleteCdrIndication> = { acrStopLost: true };
  const given = e.incomplete as Record<string, unknown> | undefined;
  if (given && typeof given === 'object' && given.acrStartLost === true) incomplete.acrStartLost = true;
  if (given && typeof given === 'object' && Object.hasOwn(ACR_INTERIM_LOST, given.acrInterimLost as string))
    incomplete.acrInterimLost = given.acrInterimLost as IncompleteCdrIndication['acrInterimLost'];
  const salvaged: ChargeableEvent = {
    service: text('service'),
    role: e.role === 'terminating' ? 'terminating' : 'originating',
    sipMethod: text('sipMethod'),
    sessionId: text('sessionId'),
    callingParty: text('callingParty'),
    calledParty: text('calledParty'),
    outcome: text('outcome'),
    requestTime: isValidDate(e.requestTime) ? e.requestTime : now,
    extra,
    incomplete,
  };
  if (typeof e.event === 'string') salvaged.event = e.event;
  if (typeof e.chargingVector === 'string') salvaged.chargingVector = e.chargingVector;
  if (typeof e.privateUserId === 'string' && e.privateUserId.length > 0) salvaged.privateUserId = e.privateUserId;
  if (isValidDate(e.responseTime)) salvaged.responseTime = e.responseTime;
  if (Number.isInteger(e.expires) && (e.expires as number) >= 0) salvaged.expires = e.expires as number;
  if (Number.isInteger(e.statusCode) && (e.statusCode as number) >= 100 && (e.statusCode as number) <= 699)
    salvaged.statusCode = e.statusCode as number;
  if ((CAUSES_FOR_RECORD_CLOSING as readonly unknown[]).includes(e.cause))
    salvaged.cause = e.cause as CauseForRecordClosing;
  if (Number.isSafeInteger(e.recordSequenceNumber) && (e.recordSequenceNumber as number) >= 1)
    salvaged.recordSequenceNumber = e.recordSequenceNumber as number;
  const body = e.messageBody as { contentType?: unknown; contentLength?: unknown } | undefined;
  if (body && typeof body === 'object' && Number.isInteger(body.contentLength) && (body.contentLength as number) >= 0) {
    salvaged.messageBody = {
      contentType: typeof body.contentType === 'string' && body.contentType.length > 0 ? body.contentType : 'unknown',
      contentLength: body.contentLength as number,
    };
  }
  return salvaged;
}

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

/** Builds the CDR of one event. Pure: the sequence number, clock and ICID source come in `ctx`. */
export function buildCdr(event: ChargeableEvent, ctx: BuildContext): Cdr {
  validateEvent(event);
  if (typeof ctx.nodeId !== 'string' || ctx.nodeId.length === 0) throw new TypeError('BuildContext.nodeId is required');
  if (typeof ctx.nodeAddress !== 'string' || ctx.nodeAddress.length === 0) {
    throw new TypeError('BuildContext.nodeAddress is required');
  }
  if (!Number.isSafeInteger(ctx.seq) || ctx.seq < 1) throw new TypeError('BuildContext.seq must be a positive integer');
  if (!isValidDate(ctx.now)) throw new TypeError('BuildContext.now must be a valid Date');

  const pcv = parseChargingVector(event.chargingVector);
  const icid = pcv.icid ?? ctx.generateIcid();
  if (typeof icid !== 'string' || icid.length === 0) throw new TypeError('BuildContext.generateIcid returned no ICID');

  const cdr: Cdr = {
    recordType: 'ASRecord',
    recordId: `${ctx.nodeId}:${ctx.seq}`,
    localRecordSequenceNumber: ctx.seq,
    nodeId: ctx.nodeId,
    nodeAddress: ctx.nodeAddress,
    service: event.service,
    roleOfNode: event.role,
    sessionId: event.sessionId,
    imsChargingIdentifier: icid,
    callingPartyAddress: event.callingParty,
    calledPartyAddress: event.calledParty,
    sipMethod: event.sipMethod,
    sipRequestTimestamp: event.requestTime.toISOString(),
    outcome: event.outcome,
    causeForRecordClosing: deriveCause(event),
    recordOpeningTime: event.requestTime.toISOString(),
    recordClosureTime: ctx.now.toISOString(),
  };
  // the vector's identifiers when it has them (another network's), else the configured ones
  const originatingIOI = pcv.origIoi ?? nonEmpty(ctx.defaultIoi?.originatingIOI);
  const terminatingIOI = pcv.termIoi ?? nonEmpty(ctx.defaultIoi?.terminatingIOI);
  if (originatingIOI !== undefined || terminatingIOI !== undefined) {
    const ioi: InterOperatorIdentifiers = {};
    if (originatingIOI !== undefined) ioi.originatingIOI = originatingIOI;
    if (terminatingIOI !== undefined) ioi.terminatingIOI = terminatingIOI;
    cdr.interOperatorIdentifiers = ioi;
  }
  if (event.privateUserId !== undefined && event.privateUserId.length > 0) cdr.privateUserId = event.privateUserId;
  const inc = event.incomplete;
  if (
    inc &&
    (inc.acrStartLost === true ||
      inc.acrStopLost === true ||
      (inc.acrInterimLost !== undefined && inc.acrInterimLost !== 'no'))
  ) {
    cdr.incompleteCdrIndication = {
      acrStartLost: inc.acrStartLost === true,
      acrInterimLost: inc.acrInterimLost ?? 'no',
      acrStopLost: inc.acrStopLost === true,
    };
  }
  if (event.event !== undefined) cdr.event = event.event;
  if (event.expires !== undefined) cdr.expires = event.expires;
  if (event.responseTime !== undefined) cdr.sipResponseTimestamp = event.responseTime.toISOString();
  if (event.deliveryStartTime !== undefined) cdr.serviceDeliveryStartTimestamp = event.deliveryStartTime.toISOString();
  if (event.deliveryEndTime !== undefined) cdr.serviceDeliveryEndTimestamp = event.deliveryEndTime.toISOString();
  if (event.statusCode !== undefined) cdr.statusCode = event.statusCode;
  if (event.recordSequenceNumber !== undefined) cdr.recordSequenceNumber = event.recordSequenceNumber;
  if (event.messageBody !== undefined) {
    cdr.messageBody = { contentType: event.messageBody.contentType, contentLength: event.messageBody.contentLength };
  }
  if (event.extra !== undefined && Object.keys(event.extra).length > 0) cdr.extra = { ...event.extra };
  return normalizeCdr(cdr);
}

function nonEmpty(v: string | undefined): string | undefined {
  return v !== undefined && v.length > 0 ? v : undefined;
}

/**
 * The CDR fields of a record in canonical key order, dropping anything else (the store's
 * `_id` and `storedAt`, for instance) and absent or null fields. Used so that a line
 * re-appended from the store during recovery is byte-identical in shape to a live one.
 */
export function normalizeCdr(doc: Record<string, unknown> | Cdr): Cdr {
  const src = doc as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of CDR_FIELDS) {
    const v = src[f];
    if (v !== undefined && v !== null) out[f] = v;
  }
  return out as unknown as Cdr;
}
