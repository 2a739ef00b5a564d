/**
 * Serialisers for SIP requests and responses the server originates, and identifier generators
 * (tags, branches, Call-IDs). CRLF line endings; Content-Length always written, in UTF-8 bytes.
 */
import { randomFillSync, randomUUID } from 'node:crypto';
import { headerKey, utf8ByteLength, type SipRequest } from './message.js';
import { isToken } from './name-addr.js';

export type HeaderList = Iterable<readonly [string, string]>;

export interface BuildRequestInit {
  method: string;
  /** Request-URI, written as is (no whitespace allowed). */
  uri: string;
  /** Header lines in order; any Content-Length is dropped (it is computed). Accepts a SipHeaders. */
  headers: HeaderList;
  body?: string;
}

export interface BuildResponseInit {
  status: number;
  /** Reason phrase; defaults to the RFC 3261 phrase for `status` ({@link reasonPhrase}). */
  reason?: string;
  headers: HeaderList;
  body?: string;
}

const CRLF_RE = /[\r\n]/;
const URI_BAD_RE = /[\x00-\x20\x7f]/;

function writeHeadersAndBody(out: string, headers: HeaderList, body: string): string {
  for (const [name, value] of headers) {
    if (!isToken(name)) throw new TypeError(`invalid SIP header name: ${JSON.stringify(name)}`);
    if (CRLF_RE.test(value)) throw new TypeError(`CR/LF in SIP header value of ${name}`);
    if (headerKey(name) === 'content-length') continue;
    out += name + ': ' + value + '\r\n';
  }
  return out + 'Content-Length: ' + utf8ByteLength(body) + '\r\n\r\n' + body;
}

/**
 * `METHOD uri SIP/2.0` + headers + computed Content-Length + empty line + body.
 * Throws TypeError on an invalid method, URI with whitespace, bad header name or CR/LF in a value.
 */
export function buildRequest(init: BuildRequestInit): string {
  const { method, uri } = init;
  if (!isToken(method)) throw new TypeError(`invalid SIP method: ${JSON.stringify(method)}`);
  if (uri === '' || URI_BAD_RE.test(uri)) throw new TypeError(`invalid Request-URI: ${JSON.stringify(uri)}`);
  return writeHeadersAndBody(method + ' ' + uri + ' SIP/2.0\r\n', init.headers, init.body ?? '');
}

/** `SIP/2.0 status reason` + headers + computed Content-Length + empty line + body. */
export function buildResponse(init: BuildResponseInit): string {
  const { status } = init;
  if (!Number.isInteger(status) || status < 100 || status > 699) throw new TypeError(`invalid SIP status: ${status}`);
  const reason = init.reason ?? reasonPhrase(status);
  if (CRLF_RE.test(reason)) throw new TypeError('CR/LF in SIP reason phrase');
  return writeHeadersAndBody('SIP/2.0 ' + status + ' ' + reason + '\r\n', init.headers, init.body ?? '');
}

export interface ReplyHeadersOptions {
  /** Tag added to To when the request's To has none (ignored for status 100, RFC 3261 8.2.6.2). */
  toTag?: string;
  /** Status of the reply; with 100 no To tag is added. Default 200. */
  status?: number;
  /** Copy Record-Route (dialog-creating 18x/2xx replies, RFC 3261 12.1.1). Default false. */
  recordRoute?: boolean;
}

/**
 * The headers a response must copy from its request (RFC 3261 8.2.6.2): every Via (one line per
 * element, in order), From, To (+ `;tag=toTag` if it has no tag), Call-ID, CSeq, and optionally
 * Record-Route. Append your own headers (Contact, Server ...) and pass the list to buildResponse.
 */
export function replyHeaders(req: SipRequest, opts: ReplyHeadersOptions = {}): Array<[string, string]> {
  const h = req.headers;
  const out: Array<[string, string]> = [];
  for (const via of h.getAll('Via')) out.push(['Via', via]);
  if (opts.recordRoute === true) for (const rr of h.getAll('Record-Route')) out.push(['Record-Route', rr]);
  out.push(['From', h.get('From') ?? '']);
  let to = h.get('To') ?? '';
  const { toTag } = opts;
  if (toTag !== undefined && (opts.status ?? 200) !== 100 && req.to.tag === undefined) {
    if (!isToken(toTag)) throw new TypeError(`invalid tag: ${JSON.stringify(toTag)}`);
    to += ';tag=' + toTag;
  }
  out.push(['To', to]);
  out.push(['Call-ID', req.callId]);
  out.push(['CSeq', req.cseq.seq + ' ' + req.cseq.method]);
  return out;
}

const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  199: 'Early Dialog Terminated',
  200: 'OK',
  202: 'Accepted',
  204: 'No Notification',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  412: 'Conditional Request Failed',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  417: 'Unknown Resource-Priority',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  428: 'Use Identity Header',
  429: 'Provide Referrer Identity',
  433: 'Anonymity Disallowed',
  436: 'Bad Identity-Info',
  437: 'Unsupported Certificate',
  438: 'Invalid Identity Header',
  439: 'First Hop Lacks Outbound Support',
  470: 'Consent Needed',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  489: 'Bad Event',
  491: 'Request Pending',
  493: 'Undecipherable',
  494: 'Security Agreement Required',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  580: 'Precondition Failure',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
  607: 'Unwanted',
};

/** Standard reason phrase for a status code; a generic phrase for unknown codes of a class. */
export function reasonPhrase(status: number): string {
  return (
    REASONS[status] ??
    ['Unknown', 'Provisional', 'Success', 'Redirection', 'Client Error', 'Server Error', 'Global Failure'][
      Math.floor(status / 100)
    ] ??
    'Unknown'
  );
}

// ---------------------------------------------------------------------------------------------
// Identifiers: CSPRNG bytes from a pooled buffer (what randomUUID does internally), base64url.

const POOL = Buffer.allocUnsafe(4096);
let poolPos = POOL.length;

function randomToken(bytes: number): string {
  if (poolPos + bytes > POOL.length) {
    randomFillSync(POOL);
    poolPos = 0;
  }
  const s = POOL.toString('base64url', poolPos, poolPos + bytes);
  poolPos += bytes;
  return s;
}

/** A From/To tag: 72 random bits, 12 token characters. */
export function generateTag(): string {
  return randomToken(9);
}

/** A Via branch: the RFC 3261 magic cookie `z9hG4bK` + 96 random bits (16 token characters). */
export function generateBranch(): string {
  return 'z9hG4bK' + randomToken(12);
}

/** A Call-ID: a random UUID, `@host` appended when host is given. */
export function generateCallId(host?: string): string {
  if (host === undefined || host === '') return randomUUID();
  if (/[\x00-\x20\x7f<>"@]/.test(host)) throw new TypeError(`invalid Call-ID host: ${JSON.stringify(host)}`);
  return randomUUID() + '@' + host;
}
