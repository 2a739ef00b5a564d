/**
 * The ISC-like interface between Kamailio and the AS, as JSON. These shapes are what
 * kamailio-cfg/as-interface.cfg builds (route ISC_REQUEST, REG_EVENT, REPORT_OUTCOME, reply_route)
 * and reads back (AS_REPLY, AS_CONTINUE); schemas/isc-*.schema.json describe them for admins.
 */

/**
 * An initial request Kamailio's filter criteria handed to the AS. Flags are `true` or `1`
 * (jansson_xencode, which the stream path uses, has no booleans): test them for truth.
 */
export interface IscRequest {
  v: 1;
  /** Which AS service the filter criteria matched. */
  service: 'presence' | 'im' | 'xdm';
  method: string;
  ruri: string;
  /** Originating session case: the request comes from one of our authenticated users. */
  orig?: true | 1;
  /** Terminating session case: the Request-URI is one of our users or service URIs. */
  term?: true | 1;
  /** Terminating case only: the Request-URI's user has at least one registered contact. */
  registered?: true | 1;
  /** Identity Kamailio authenticated (sip:user@domain); absent when unauthenticated. */
  asserted?: string;
  /** Private user identity (user@realm) of the digest credentials Kamailio accepted; absent when unauthenticated. */
  impi?: string;
  /** The P-Charging-Vector Kamailio added to a request that had none (not in `msg`, which is as received). */
  pcv?: string;
  srcIp: string;
  srcPort: number;
  proto: string;
  /** The To-tag Kamailio will put in its reply (for dialogs the AS creates). */
  toTag: string;
  /** When Kamailio received it: seconds.microseconds since the epoch ($TV(Sn)). */
  ts: string;
  /** The whole SIP message as received, when it is valid UTF-8 ... */
  msg?: string;
  /** ... else the same bytes in base64 (jansson cannot encode them as a JSON string). */
  msg64?: string;
}

export interface ReplyDecision {
  action: 'reply';
  code: number;
  reason: string;
  /** Extra headers, each terminated by CRLF. */
  hdrs?: string;
  body?: string;
  ctype?: string;
}

export interface ContinueDecision {
  action: 'continue';
  /** Headers to add to the request before it goes on, each terminated by CRLF. */
  hdrs?: string;
  /** Opaque context Kamailio hands back with the final outcome (see OutcomeEvent). */
  ctx?: string;
  /**
   * Hide the sender from the recipient (RFC 3323 privacy service): Kamailio removes
   * P-Asserted-Identity and replaces From with an anonymous URI.
   */
  anonymize?: boolean;
  /** A new body for the request (e.g. a CPIM message with an anonymised From), with ctype. */
  body?: string;
  ctype?: string;
  /**
   * IM session anchored by the AS: the MSRP URI, address and port the caller must see in the
   * callee's answer (Kamailio rewrites a=path, c= and m= of every 18x/2xx SDP of the INVITE).
   */
  sessPath?: string;
  sessHost?: string;
  sessPort?: string;
  /**
   * The registered contacts (URIs as registered) the request may go to, when the AS narrows the
   * registrar's set (capabilities, RFC 3841 caller preferences), separated by single spaces
   * (Kamailio tests membership with in_list); absent: every contact.
   */
  targets?: string;
}

export type IscDecision = ReplyDecision | ContinueDecision;

/** The AoR's contacts after a REGISTER (the AS works out what changed). */
export interface RegistrationEvent {
  type: 'registration';
  aor: string;
  ts: string;
  contacts: Array<{ uri: string; expires: number; received?: string }>;
  /** The REGISTER's Contact header field values (comma-joined): the parameters each contact registered. */
  contactHeader?: string;
  /** The REGISTER's Allow header: the methods of the contacts that name none in `methods` (RFC 3840 section 6). */
  allow?: string;
}

export interface ContactExpiredEvent {
  type: 'contact-expired';
  aor: string;
  uri: string;
  ts: string;
}

/** Final outcome of a request the AS let continue. */
export interface OutcomeEvent {
  type: 'outcome';
  ctx: string;
  code: number;
  ts: string;
}

/** Final reply to a request the AS originated through /uac. */
export interface UacReplyEvent {
  type: 'uac-reply';
  callId: string;
  cseq: string;
  code: number;
  reason: string;
  ts: string;
  /** A 2xx to an INVITE: the callee's To-tag, Contact and SDP (the focus's dial-out dialog). */
  toTag?: string;
  contact?: string;
  sdp?: string;
}

/** Kamailio consumed the stream batch whose last request carried `"ack":id` (see StreamWindow). */
export interface StreamAckEvent {
  type: 'stream-ack';
  id: number;
}

/**
 * Kamailio took a stream link's `{"type":"leaving","id":..}`: it sends no more initial
 * requests on that connection (route STREAM_LEAVING); everything sent before is on its way.
 */
export interface StreamLeavingAckFrame {
  type: 'leaving-ack';
  id: number;
}

/**
 * Kamailio accepted a stream connection's `hello <secret> <instance> <id>` (evapi
 * message-received route): sent to every connection of the instance, each link takes
 * only the id its own hello carried, and counts itself up only then (StreamLink).
 */
export interface StreamHelloAckFrame {
  type: 'hello-ack';
  id: number;
}

/**
 * An initial request sent on the event stream (route AS_HANDOFF, evapi_async_unicast):
 * Kamailio suspended its transaction `tix`:`tlb`, and resumes it when a decision frame
 * `{"tix":..,"tlb":..,<decision>}` comes back on the stream.
 */
export interface StreamRequestFrame {
  type: 'request';
  tix: number;
  tlb: number;
  req: IscRequest;
}

/** A reply with SDP (18x/2xx) to an IM session's INVITE: the callee's SDP as received. */
export interface SessionAnswerEvent {
  type: 'session-answer';
  callId: string;
  toTag: string;
  code: number;
  sdp: string;
  ts: string;
}

/** An IM session's INVITE dialog ended (Kamailio's dialog module): by a BYE, or its lifetime ran out. */
export interface SessionEndEvent {
  type: 'session-end';
  callId: string;
  by: 'bye' | 'timeout';
  ts: string;
}

export type IscEvent =
  | RegistrationEvent
  | ContactExpiredEvent
  | OutcomeEvent
  | UacReplyEvent
  | StreamAckEvent
  | SessionAnswerEvent
  | SessionEndEvent;

/** Everything Kamailio sends on the stream. */
export type StreamFrame = IscEvent | StreamRequestFrame | StreamLeavingAckFrame | StreamHelloAckFrame;

/** Kamailio's "seconds.microseconds" timestamp as a Date (now when absent or unreadable). */
export function kamailioTime(ts: string | undefined): Date {
  const seconds = Number(ts);
  return Number.isFinite(seconds) && seconds > 0 ? new Date(Math.floor(seconds * 1000)) : new Date();
}

/** One header field of a reply or of a request the AS lets continue. */
export type HeaderField = readonly [name: string, value: string];

/** A Warning (RFC 3261 20.43) code 399: the text, and who says it ('-' when not named). */
export type WarningText = string | { agent: string; text: string };

export interface ReplyParts {
  headers?: readonly HeaderField[];
  warning?: WarningText;
  body?: string;
  ctype?: string;
}

/**
 * A reply decision from structured parts: the one place that writes header fields as the
 * wire text Kamailio appends (CRLF-terminated, no CR or LF inside a value) and quotes a
 * Warning's text (RFC 3261 25.1 quoted-string: backslash before " and \).
 */
export function reply(code: number, reason: string, parts: ReplyParts = {}): ReplyDecision {
  const decision: ReplyDecision = { action: 'reply', code, reason };
  const hdrs = headerText(parts.headers, parts.warning);
  if (hdrs) decision.hdrs = hdrs;
  if (parts.body !== undefined) decision.body = parts.body;
  if (parts.ctype !== undefined) decision.ctype = parts.ctype;
  return decision;
}

/** Header fields (and a Warning) as CRLF-terminated wire text; '' for none. */
export function headerText(headers: readonly HeaderField[] = [], warning?: WarningText): string {
  let text = '';
  for (const [name, value] of headers) text += `${name}: ${value.replace(/[\r\n]+/g, ' ')}\r\n`;
  if (warning !== undefined) {
    const { agent, text: said } = typeof warning === 'string' ? { agent: '-', text: warning } : warning;
    text += `Warning: 399 ${agent} "${said.replace(/[\r\n]+/g, ' ').replace(/["\\]/g, '\\$&')}"\r\n`;
  }
  return text;
}

/** The IMPI Kamailio authenticated the request with, when it is a sane NAI (user@realm, printable, bounded). */
export function privateIdentityOf(req: Pick<IscRequest, 'impi'>): string | undefined {
  const v = req.impi;
  return typeof v === 'string' && v.length <= 256 && /^[^\s@]+@[^\s@]+$/.test(v) && !/[\u0000-\u001f\u007f]/.test(v)
    ? v
    : undefined;
}

/** The request's P-Charging-Vector: as received, else the one Kamailio added. */
export function chargingVectorOf(headerValue: string | undefined, req: Pick<IscRequest, 'pcv'>): string | undefined {
  if (headerValue !== undefined) return headerValue;
  if (typeof req.pcv !== 'string') return undefined;
  // $pcv(all) may come as the whole header line: keep the value, never a line break
  const value = req.pcv.replace(/^\s*P-Charging-Vector\s*:/i, '').trim();

  return value.length > 0 && !/[\u0000-\u001f\u007f]/.test(value) ? value : undefined;
}
