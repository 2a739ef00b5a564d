/**
 * SIP message parsing (RFC 3261 7, 20, 25): start line, headers (folding, compact forms,
 * case-insensitive names, comma lists) and body with a byte-exact Content-Length check.
 * Pure and allocation-light: it runs for every SIP request the server sees.
 */
import { SipParseError } from './uri.js';
import { NameAddr, parseNameAddr, isToken, quotedStringEnd } from './name-addr.js';

export { SipParseError } from './uri.js';

// ---------------------------------------------------------------------------------------------
// Header names

/** Compact forms (RFC 3261 7.3.3 and extensions), by lowercase letter. */
const COMPACT: ReadonlyMap<string, string> = new Map([
  ['i', 'Call-ID'],
  ['f', 'From'],
  ['t', 'To'],
  ['v', 'Via'],
  ['m', 'Contact'],
  ['l', 'Content-Length'],
  ['c', 'Content-Type'],
  ['e', 'Content-Encoding'],
  ['k', 'Supported'],
  ['s', 'Subject'],
  ['o', 'Event'],
  ['u', 'Allow-Events'],
  ['r', 'Refer-To'],
  ['b', 'Referred-By'],
  ['x', 'Session-Expires'],
  ['y', 'Identity'],
  ['n', 'Identity-Info'],
  ['a', 'Accept-Contact'],
  ['j', 'Reject-Contact'],
  ['d', 'Request-Disposition'],
]);

const CANONICAL_NAMES = [
  'Accept',
  'Accept-Contact',
  'Accept-Encoding',
  'Accept-Language',
  'Alert-Info',
  'Allow',
  'Allow-Events',
  'Authentication-Info',
  'Authorization',
  'Call-ID',
  'Call-Info',
  'Contact',
  'Content-Disposition',
  'Content-Encoding',
  'Content-ID',
  'Content-Language',
  'Content-Length',
  'Content-Transfer-Encoding',
  'Content-Type',
  'CSeq',
  'Date',
  'Error-Info',
  'Event',
  'Expires',
  'Feature-Caps',
  'From',
  'Geolocation',
  'History-Info',
  'Identity',
  'Identity-Info',
  'In-Reply-To',
  'Max-Forwards',
  'MIME-Version',
  'Min-Expires',
  'Min-SE',
  'Organization',
  'P-Access-Network-Info',
  'P-Asserted-Identity',
  'P-Asserted-Service',
  'P-Associated-URI',
  'P-Called-Party-ID',
  'P-Charging-Function-Addresses',
  'P-Charging-Vector',
  'P-Early-Media',
  'P-Preferred-Identity',
  'P-Preferred-Service',
  'P-Served-User',
  'P-Visited-Network-ID',
  'Path',
  'Priority',
  'Privacy',
  'Proxy-Authenticate',
  'Proxy-Authorization',
  'Proxy-Require',
  'RAck',
  'Reason',
  'Record-Route',
  'Refer-Sub',
  'Refer-To',
  'Referred-By',
  'Reject-Contact',
  'Replaces',
  'Reply-To',
  'Request-Disposition',
  'Require',
  'Retry-After',
  'Route',
  'RSeq',
  'Security-Client',
  'Security-Server',
  'Security-Verify',
  'Server',
  'Service-Route',
  'Session-Expires',
  'SIP-ETag',
  'SIP-If-Match',
  'Subject',
  'Subscription-State',
  'Supported',
  'Target-Dialog',
  'Timestamp',
  'To',
  'Unsupported',
  'User-Agent',
  'Via',
  'Warning',
  'WWW-Authenticate',
];

/** lowercase name → canonical spelling. */
const CANONICAL: ReadonlyMap<string, string> = new Map(CANONICAL_NAMES.map((n) => [n.toLowerCase(), n]));
/** lowercase compact letter → lowercase full name. */
const COMPACT_KEY: ReadonlyMap<string, string> = new Map([...COMPACT].map(([k, v]) => [k, v.toLowerCase()]));

/**
 * Headers whose grammar is a comma-separated list (`getAll` splits them). Privacy (';'),
 * Date, From, To, Call-ID, CSeq, User-Agent, Server, *-Authenticate, *Authorization are not.
 */
const LIST_HEADERS: ReadonlySet<string> = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'allow',
  'allow-events',
  'accept',
  'accept-encoding',
  'accept-language',
  'accept-contact',
  'reject-contact',
  'request-disposition',
  'content-encoding',
  'content-language',
  'p-asserted-identity',
  'p-preferred-identity',
  'p-associated-uri',
  'p-visited-network-id',
  'p-early-media',
  'path',
  'service-route',
  'alert-info',
  'call-info',
  'error-info',
  'in-reply-to',
  'warning',
  'reason',
  'history-info',
  'security-client',
  'security-server',
  'security-verify',
  'geolocation',
]);

interface NameInfo {
  canonical: string;
  key: string;
}

/**
 * Header names as written on the wire → canonical spelling and key, so the hot path does one Map
 * lookup instead of toLowerCase + two lookups. Bounded, so random names cannot grow it forever.
 */
const NAME_CACHE = new Map<string, NameInfo>();
const NAME_CACHE_MAX = 2000;

function nameInfo(name: string): NameInfo {
  const key = headerKey(name);
  const info: NameInfo = { canonical: CANONICAL.get(key) ?? name, key };
  if (NAME_CACHE.size < NAME_CACHE_MAX) NAME_CACHE.set(name, info);
  return info;
}

/** Header sets up to this size are searched linearly (cheaper than building a Map). */
const SCAN_MAX = 24;
const NONE: readonly number[] = [];

/** headerKey() with the wire-name cache in front (no toLowerCase for names already seen). */
function lookupKey(name: string): string {
  return NAME_CACHE.get(name)?.key ?? headerKey(name);
}

/** Lookup key of a header name: lowercased, compact form expanded (`i` → `call-id`). */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length === 1) return COMPACT_KEY.get(lower) ?? lower;
  return lower;
}

/** Canonical spelling of a header name (`call-id`, `i` → `Call-ID`); unknown names are returned unchanged. */
export function canonicalHeaderName(name: string): string {
  return CANONICAL.get(headerKey(name)) ?? name;
}

/** True when the header's grammar is a comma-separated list (see {@link SipHeaders.getAll}). */
export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(headerKey(name));
}

/**
 * Splits a header value on commas outside quoted strings and angle brackets; trims elements and
 * drops empty ones. `'<sip:a,b@x>;p="1,2", sip:c@y'` → [`<sip:a,b@x>;p="1,2"`, `sip:c@y`].
 */
export function splitHeaderList(value: string): string[] {
  if (value.indexOf(',') < 0) {
    const t = value.trim();
    return t === '' ? [] : [t];
  }
  const out: string[] = [];
  const len = value.length;
  let start = 0;
  let angle = false;
  for (let i = 0; i < len; i++) {
    const c = value.charCodeAt(i);
    if (c === 34 /* " */) {
      const end = quotedStringEnd(value, i);
      if (end < 0) break; // unterminated: the rest is one element
      i = end - 1;
    } else if (c === 60 /* < */) {
      angle = true;
    } else if (c === 62 /* > */) {
      angle = false;
    } else if (c === 44 /* , */ && !angle) {
      const part = value.slice(start, i).trim();
      if (part !== '') out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last !== '') out.push(last);
  return out;
}

// ---------------------------------------------------------------------------------------------
// SipHeaders

/**
 * Ordered header fields. Names are stored in canonical spelling for known headers (compact forms
 * expanded), as written otherwise; values are trimmed and unfolded. Lookups are case-insensitive
 * and accept compact forms; they use an index built on first lookup.
 */
export class SipHeaders implements Iterable<[string, string]> {
  private names: string[];
  private keys: string[];
  private values: string[];
  private index: Map<string, number[]> | undefined;

  constructor(init?: Iterable<readonly [string, string]>) {
    this.names = [];
    this.keys = [];
    this.values = [];
    this.index = undefined;
    if (init !== undefined) for (const [name, value] of init) this.append(name, value);
  }

  /** @internal Wraps arrays produced by the parser (names canonical, keys lowercase, values trimmed). */
  static fromParsed(names: string[], keys: string[], values: string[]): SipHeaders {
    const h = new SipHeaders();
    h.names = names;
    h.keys = keys;
    h.values = values;
    return h;
  }

  /** @internal Lowercase lookup keys, one per line (do not mutate). */
  rawKeys(): readonly string[] {
    return this.keys;
  }

  /** @internal Values, one per line (do not mutate). */
  rawValues(): readonly string[] {
    return this.values;
  }

  /** Number of header lines. */
  get size(): number {
    return this.names.length;
  }

  /** Index of every line with that key; a Map is only built for large header sets. */
  private indices(key: string): readonly number[] {
    const keys = this.keys;
    let index = this.index;
    if (index === undefined) {
      if (keys.length <= SCAN_MAX) {
        let out: number[] | undefined;
        for (let i = 0; i < keys.length; i++) {
          if (keys[i] === key) {
            if (out === undefined) out = [i];
            else out.push(i);
          }
        }
        return out ?? NONE;
      }
      index = new Map();
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i] as string;
        const list = index.get(k);
        if (list === undefined) index.set(k, [i]);
        else list.push(i);
      }
      this.index = index;
    }
    return index.get(key) ?? NONE;
  }

  private firstIndex(key: string): number {
    if (this.index === undefined && this.keys.length <= SCAN_MAX) return this.keys.indexOf(key);
    const idx = this.indices(key);
    return idx.length === 0 ? -1 : (idx[0] as number);
  }

  /** Value of the first header line of that name (whole line, not split), undefined if absent. */
  get(name: string): string | undefined {
    const i = this.firstIndex(lookupKey(name));
    return i < 0 ? undefined : this.values[i];
  }

  /**
   * All values of that name in order. For comma-list headers ({@link isListHeader}: Via, Contact,
   * Route, Record-Route, Supported, Allow, P-Asserted-Identity, Path, Service-Route ...) each line
   * is split into its elements; other headers give one value per line.
   */
  getAll(name: string): string[] {
    const key = lookupKey(name);
    const idx = this.indices(key);
    if (idx.length === 0) return [];
    if (!LIST_HEADERS.has(key)) return idx.map((i) => this.values[i] as string);
    if (idx.length === 1) return splitHeaderList(this.values[idx[0] as number] as string);
    const out: string[] = [];
    for (const i of idx) for (const v of splitHeaderList(this.values[i] as string)) out.push(v);
    return out;
  }

  /** One value per header line (never split). */
  getLines(name: string): string[] {
    return this.indices(lookupKey(name)).map((i) => this.values[i] as string);
  }

  has(name: string): boolean {
    return this.firstIndex(lookupKey(name)) >= 0;
  }

  /** Adds a header line at the end (name canonicalised, value trimmed). */
  append(name: string, value: string): void {
    const key = headerKey(name);
    const i = this.names.length;
    this.names.push(CANONICAL.get(key) ?? name);
    this.keys.push(key);
    this.values.push(value.trim());
    if (this.index !== undefined) {
      const list = this.index.get(key);
      if (list === undefined) this.index.set(key, [i]);
      else list.push(i);
    }
  }

  /** Replaces every line of that name with one line, at the position of the first (or at the end). */
  set(name: string, value: string): void {
    const key = headerKey(name);
    const first = this.keys.indexOf(key);
    if (first < 0) {
      this.append(name, value);
      return;
    }
    this.values[first] = value.trim();
    for (let i = this.keys.length - 1; i > first; i--) {
      if (this.keys[i] === key) this.removeAt(i);
    }
  }

  /** Removes every line of that name; returns how many were removed. */
  delete(name: string): number {
    const key = headerKey(name);
    let n = 0;
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (this.keys[i] === key) {
        this.removeAt(i);
        n++;
      }
    }
    return n;
  }

  private removeAt(i: number): void {
    this.names.splice(i, 1);
    this.keys.splice(i, 1);
    this.values.splice(i, 1);
    this.index = undefined;
  }

  /** [name, value] per header line, in order. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    const { names, values } = this;
    for (let i = 0; i < names.length; i++) yield [names[i] as string, values[i] as string];
  }

  entries(): IterableIterator<[string, string]> {
    return this[Symbol.iterator]();
  }

  toArray(): Array<[string, string]> {
    return this.names.map((n, i) => [n, this.values[i] as string]);
  }
}

// ---------------------------------------------------------------------------------------------
// Messages

export interface CSeq {
  seq: number;
  method: string;
}

/** @internal Mandatory-header facts shared by requests and responses, checked once at construction. */
export interface Core {
  callId: string;
  cseq: CSeq;
}

const CSEQ_RE = /^(\d{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)$/;
const SCHEME_PREFIX_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const STATUS_CODE_RE = /^[1-6]\d\d$/;
const CONTENT_LENGTH_RE = /^\d{1,10}$/;
const WS_OR_CTL_RE = /[\x00-\x20\x7f]/;

/**
 * Checks Call-ID, CSeq, From and To: each present exactly once (RFC 3261 8.1.1), CSeq well-formed
 * and, for requests, its method equal to the request method.
 */
function checkCore(headers: SipHeaders, method: string | undefined): Core {
  const keys = headers.rawKeys();
  const values = headers.rawValues();
  let callId: string | undefined;
  let cseq: string | undefined;
  let from = 0;
  let to = 0;
  for (let i = 0; i < keys.length; i++) {
    switch (keys[i]) {
      case 'call-id':
        if (callId !== undefined) throw new SipParseError('Multiple Call-ID headers');
        callId = values[i] as string;
        break;
      case 'cseq':
        if (cseq !== undefined) throw new SipParseError('Multiple CSeq headers');
        cseq = values[i] as string;
        break;
      case 'from':
        from++;
        break;
      case 'to':
        to++;
        break;
    }
  }
  if (callId === undefined || callId === '') throw new SipParseError('Missing Call-ID header');
  if (cseq === undefined) throw new SipParseError('Missing CSeq header');
  if (from === 0) throw new SipParseError('Missing From header');
  if (to === 0) throw new SipParseError('Missing To header');
  if (from > 1) throw new SipParseError('Multiple From headers');
  if (to > 1) throw new SipParseError('Multiple To headers');
  const m = CSEQ_RE.exec(cseq);
  if (m === null) throw new SipParseError('Malformed CSeq header');
  const seq = Number(m[1]);
  if (seq > 0x7fffffff) throw new SipParseError('Malformed CSeq header');
  const cseqMethod = m[2] as string;
  if (method !== undefined && cseqMethod !== method) throw new SipParseError('CSeq method mismatch');
  return { callId, cseq: { seq, method: cseqMethod } };
}

/**
 * Common part of requests and responses. `callId`, `cseq`, `from` and `to` are taken from the
 * headers when the message is constructed / first accessed; later `headers.set()` calls do not
 * update them. Via is not validated (it is not needed to consume a message).
 */
abstract class SipMessageBase {
  readonly headers: SipHeaders;
  readonly body: string;
  /** Call-ID value (validated present and unique). */
  readonly callId: string;
  /** Parsed CSeq (validated present, unique, well-formed). */
  readonly cseq: CSeq;
  private fromCache: NameAddr | undefined;
  private toCache: NameAddr | undefined;

  protected constructor(headers: SipHeaders, body: string, core: Core) {
    this.headers = headers;
    this.body = body;
    this.callId = core.callId;
    this.cseq = core.cseq;
    this.fromCache = undefined;
    this.toCache = undefined;
  }

  /** From header, parsed on first access; throws SipParseError('Malformed From header'). */
  get from(): NameAddr {
    if (this.fromCache === undefined) this.fromCache = parseHeaderNameAddr(this.headers, 'From');
    return this.fromCache;
  }

  /** To header, parsed on first access; throws SipParseError('Malformed To header'). */
  get to(): NameAddr {
    if (this.toCache === undefined) this.toCache = parseHeaderNameAddr(this.headers, 'To');
    return this.toCache;
  }
}

function parseHeaderNameAddr(headers: SipHeaders, name: 'From' | 'To'): NameAddr {
  const value = headers.get(name);
  try {
    if (value === undefined) throw new Error('absent');
    return parseNameAddr(value);
  } catch (err) {
    throw new SipParseError(`Malformed ${name} header`, 400, err instanceof Error ? err.message : undefined);
  }
}

export interface SipRequestInit {
  method: string;
  uri: string;
  headers: SipHeaders | Iterable<readonly [string, string]>;
  body?: string;
}

export interface SipResponseInit {
  status: number;
  reason: string;
  headers: SipHeaders | Iterable<readonly [string, string]>;
  body?: string;
}

export class SipRequest extends SipMessageBase {
  readonly kind = 'request';
  /** Method, case-sensitive as written (RFC 3261 7.1). */
  readonly method: string;
  /** Request-URI as written (any scheme; use parseUri for sip/sips/tel). */
  readonly uri: string;

  /**
   * Builds a request from parts, validating Call-ID/CSeq/From/To like the parser does.
   * (`core` is internal: the parser passes its own check result.)
   */
  constructor(init: SipRequestInit, core?: Core) {
    const headers = init.headers instanceof SipHeaders ? init.headers : new SipHeaders(init.headers);
    super(headers, init.body ?? '', core ?? checkCore(headers, init.method));
    this.method = init.method;
    this.uri = init.uri;
  }
}

export class SipResponse extends SipMessageBase {
  readonly kind = 'response';
  readonly status: number;
  readonly reason: string;

  constructor(init: SipResponseInit, core?: Core) {
    const headers = init.headers instanceof SipHeaders ? init.headers : new SipHeaders(init.headers);
    super(headers, init.body ?? '', core ?? checkCore(headers, undefined));
    this.status = init.status;
    this.reason = init.reason;
  }
}

export type SipMessage = SipRequest | SipResponse;

// ---------------------------------------------------------------------------------------------
// Byte lengths

const NON_ASCII_RE = /[^\x00-\x7f]/;

/** UTF-8 byte length of `s`; O(1) extra work beyond a scan when `s` is pure ASCII. */
export function utf8ByteLength(s: string): number {
  return NON_ASCII_RE.test(s) ? Buffer.byteLength(s, 'utf8') : s.length;
}

/** The longest prefix of `s` that is exactly `bytes` UTF-8 bytes long; undefined if a character straddles the cut. */
function sliceUtf8(s: string, bytes: number): string | undefined {
  let n = 0;
  let i = 0;
  const len = s.length;
  while (i < len && n < bytes) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      n += 1;
      i += 1;
    } else if (c < 0x800) {
      n += 2;
      i += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < len && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i += 2;
    } else {
      n += 3;
      i += 1;
    }
  }
  return n === bytes ? s.slice(0, i) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Parser

/**
 * Parses one SIP message.
 *
 * - Leading CR/LF (keep-alives) are skipped; CRLF and bare LF line endings are accepted.
 * - Request line `METHOD SP Request-URI SP SIP/2.0` (single spaces, Request-URI without
 *   whitespace and with a scheme); status line `SIP/2.0 SP 3DIGIT SP reason` (100-699, reason may be
 *   empty). Other SIP versions → SipParseError('SIP Version Not Supported', status 505).
 * - Folded header lines are unfolded (joined with one SP); compact names expanded.
 * - Call-ID, CSeq, From and To must each appear exactly once; CSeq must be `number SP method`
 *   and, in requests, name the request method.
 * - Body = everything after the empty line; a Content-Length (bytes, UTF-8) shorter than that
 *   truncates it, a longer one is an error ('Content-Length mismatch').
 *
 * Error reasons (SipParseError.reason): 'Empty message', 'Malformed start line',
 * 'Malformed Request-URI', 'SIP Version Not Supported', 'Malformed header line N' (N = 1-based
 * line number, start line = 1), 'Missing empty line after headers', 'Malformed Content-Length',
 * 'Content-Length mismatch', 'Missing X header', 'Multiple X headers', 'Malformed CSeq header',
 * 'CSeq method mismatch'.
 */
export function parseSipMessage(raw: string): SipMessage {
  const len = raw.length;
  let pos = 0;
  while (pos < len) {
    const c = raw.charCodeAt(pos);
    if (c !== 13 && c !== 10) break;
    pos++;
  }
  if (pos >= len) throw new SipParseError('Empty message');

  // Start line.
  let nl = raw.indexOf('\n', pos);
  if (nl < 0) throw new SipParseError('Missing empty line after headers');
  let end = nl > pos && raw.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
  const startLine = raw.slice(pos, end);
  pos = nl + 1;
  let method: string | undefined;
  let uri = '';
  let status = 0;
  let reason = '';
  if (
    startLine.length >= 4 &&
    startLine.charCodeAt(3) === 47 /* / */ &&
    startLine.slice(0, 4).toUpperCase() === 'SIP/'
  ) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    const sp = startLine.indexOf(' ');
    if (sp < 0) throw new SipParseError('Malformed start line');
    checkVersion(startLine.slice(0, sp));
    const code = startLine.slice(sp + 1, sp + 4);
    if (!STATUS_CODE_RE.test(code)) throw new SipParseError('Malformed start line');
    if (startLine.length > sp + 4) {
      if (startLine.charCodeAt(sp + 4) !== 32) throw new SipParseError('Malformed start line');
      reason = startLine.slice(sp + 5);
    }
    status = Number(code);
  } else {
    // Request-Line = Method SP Request-URI SP SIP-Version
    const sp1 = startLine.indexOf(' ');
    const sp2 = startLine.lastIndexOf(' ');
    if (sp1 <= 0 || sp2 === sp1) throw new SipParseError('Malformed start line');
    method = startLine.slice(0, sp1);
    if (!isToken(method)) throw new SipParseError('Malformed start line');
    uri = startLine.slice(sp1 + 1, sp2);
    if (uri === '' || WS_OR_CTL_RE.test(uri)) throw new SipParseError('Malformed start line');
    checkVersion(startLine.slice(sp2 + 1));
    if (!SCHEME_PREFIX_RE.test(uri)) throw new SipParseError('Malformed Request-URI');
  }

  // Header lines.
  const names: string[] = [];
  const keys: string[] = [];
  const values: string[] = [];
  let lineNo = 1;
  let bodyStart: number;
  let hasContentLength = false;
  while (true) {
    nl = raw.indexOf('\n', pos);
    if (nl < 0) throw new SipParseError('Missing empty line after headers');
    end = nl > pos && raw.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
    lineNo++;
    if (end === pos) {
      bodyStart = nl + 1;
      break;
    }
    const first = raw.charCodeAt(pos);
    if (first === 32 || first === 9) {
      // Continuation of the previous header line (folding): join with one SP.
      const last = values.length - 1;
      if (last < 0) throw new SipParseError(`Malformed header line ${lineNo}`);
      const more = raw.slice(pos, end).trim();
      if (more !== '') {
        const prev = values[last] as string;
        values[last] = prev === '' ? more : prev + ' ' + more;
      }
      pos = nl + 1;
      continue;
    }
    const colon = raw.indexOf(':', pos);
    if (colon < 0 || colon >= end) throw new SipParseError(`Malformed header line ${lineNo}`);
    let nameEnd = colon;
    while (nameEnd > pos) {
      const c = raw.charCodeAt(nameEnd - 1);
      if (c !== 32 && c !== 9) break;
      nameEnd--;
    }
    const name = raw.slice(pos, nameEnd);
    let info = NAME_CACHE.get(name);
    if (info === undefined) {
      if (!isToken(name)) throw new SipParseError(`Malformed header line ${lineNo}`);
      info = nameInfo(name);
    }
    const key = info.key;
    if (key === 'content-length') hasContentLength = true;
    names.push(info.canonical);
    keys.push(key);
    // Value without surrounding SP/HT (one slice, no trim() copy).
    let vs = colon + 1;
    let ve = end;
    while (vs < ve) {
      const c = raw.charCodeAt(vs);
      if (c !== 32 && c !== 9) break;
      vs++;
    }
    while (ve > vs) {
      const c = raw.charCodeAt(ve - 1);
      if (c !== 32 && c !== 9) break;
      ve--;
    }
    values.push(raw.slice(vs, ve));
    pos = nl + 1;
  }

  // Body, cut to Content-Length (counted in UTF-8 bytes).
  let body = bodyStart < len ? raw.slice(bodyStart) : '';
  let contentLength: string | undefined;
  if (hasContentLength) {
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] !== 'content-length') continue;
      const v = values[i] as string;
      if (contentLength !== undefined && v !== contentLength) {
        throw new SipParseError('Content-Length mismatch', 400, 'multiple values');
      }
      contentLength = v;
    }
  }
  if (contentLength !== undefined) {
    if (!CONTENT_LENGTH_RE.test(contentLength)) throw new SipParseError('Malformed Content-Length');
    const cl = Number(contentLength);
    if (!NON_ASCII_RE.test(body)) {
      if (body.length < cl) throw new SipParseError('Content-Length mismatch');
      if (body.length > cl) body = body.slice(0, cl);
    } else {
      const bytes = Buffer.byteLength(body, 'utf8');
      if (bytes < cl) throw new SipParseError('Content-Length mismatch');
      if (bytes > cl) {
        const cut = sliceUtf8(body, cl);
        if (cut === undefined) throw new SipParseError('Content-Length mismatch', 400, 'cut inside a character');
        body = cut;
      }
    }
  }

  const headers = SipHeaders.fromParsed(names, keys, values);
  const core = checkCore(headers, method);
  return method === undefined
    ? new SipResponse({ status, reason, headers, body }, core)
    : new SipRequest({ method, uri, headers, body }, core);
}

function checkVersion(v: string): void {
  if (v === 'SIP/2.0') return;
  const upper = v.toUpperCase();
  if (upper === 'SIP/2.0') return;
  if (/^SIP\/\d+\.\d+$/.test(upper)) throw new SipParseError('SIP Version Not Supported', 505);
  throw new SipParseError('Malformed start line');
}
