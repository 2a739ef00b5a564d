/**
 * SIP / SIPS / TEL URI parsing, formatting and address-of-record helpers (RFC 3261 19.1, RFC 3966).
 *
 * Pure: no I/O. Also home of {@link SipParseError}, the base error of the whole `sip/` module
 * (it lives here because this is the lowest module of the import graph; message.ts and
 * index.ts re-export it).
 */

/**
 * A SIP text could not be parsed. `reason` is a short, static, ASCII phrase that is safe to put
 * in a SIP reason phrase (e.g. `SIP/2.0 400 Malformed header line 3`); `status` is the SIP status
 * code the server should answer with (400 unless stated otherwise: 505 for an unsupported SIP
 * version, 416 for an unsupported URI scheme).
 */
export class SipParseError extends Error {
  readonly reason: string;
  readonly status: number;

  constructor(reason: string, status = 400, detail?: string) {
    super(detail === undefined ? reason : `${reason}: ${detail}`);
    this.name = 'SipParseError';
    this.reason = reason;
    this.status = status;
  }
}

/** A URI could not be parsed (reason 'Malformed URI', 'Unsupported URI scheme' (status 416), ...). */
export class UriParseError extends SipParseError {
  constructor(reason: string, status = 400, detail?: string) {
    super(reason, status, detail);
    this.name = 'UriParseError';
  }
}

export type UriScheme = 'sip' | 'sips' | 'tel';

/**
 * A parsed URI. For `tel:` URIs, `user` holds the telephone-subscriber number as written
 * (e.g. `+1-201-555-0123`), `host` is '' and `port`, `password` are undefined.
 */
export interface SipUri {
  scheme: UriScheme;
  /** User part exactly as written (percent escapes kept), undefined when the URI has no userinfo. */
  user: string | undefined;
  /** `user` with percent escapes decoded (UTF-8); identical to `user` when it holds no '%'. */
  userDecoded: string | undefined;
  password: string | undefined;
  /** Lowercased host; an IPv6 reference keeps its brackets (`[2001:db8::1]`). '' for tel: URIs. */
  host: string;
  port: number | undefined;
  /** uri-parameters in order of appearance: lowercased names, raw values, '' for a value-less param. First occurrence wins. */
  params: Map<string, string>;
  /** `?name=value&...` headers in order, raw (escapes kept). */
  headers: Array<[string, string]>;
}

/** What {@link formatUri} needs: everything but scheme and host is optional. */
export interface SipUriInit {
  scheme: UriScheme;
  user?: string | undefined;
  password?: string | undefined;
  host?: string;
  port?: number | undefined;
  params?: ReadonlyMap<string, string> | Iterable<readonly [string, string]>;
  headers?: Iterable<readonly [string, string]>;
}

/** Characters never allowed unescaped anywhere in a URI: controls, SP, DEL, '<', '>', '"'. */
const BAD_URI_CHARS = /[\x00-\x20\x7f<>"]/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;
const HOSTNAME_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*)$/;
const IPV6_REF_RE = /^\[[0-9A-Fa-f:.]+\]$/;
const TEL_NUMBER_RE = /^\+?[0-9A-Fa-f*#().-]+$/;
const TEL_HAS_DIGIT_RE = /[0-9A-Fa-f*#]/;
const TEL_VISUAL_SEPARATORS_RE = /[-.()]/g;
/** RFC 3261 unreserved + user-unreserved: what a user part may contain without escaping. */
const USER_SAFE_RE = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/]*$/;

/** Parses a `sip:`, `sips:` or `tel:` URI. Leading/trailing whitespace is ignored. */
export function parseUri(text: string): SipUri {
  const s = text.trim();
  const colon = s.indexOf(':');
  if (colon <= 0) throw new UriParseError('Malformed URI', 400, 'missing scheme');
  const rawScheme = s.slice(0, colon);
  const scheme = rawScheme.toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSipUri(scheme, s, colon + 1);
  if (scheme === 'tel') return parseTelUri(s, colon + 1);
  if (!SCHEME_RE.test(rawScheme)) throw new UriParseError('Malformed URI', 400, 'bad scheme');
  throw new UriParseError('Unsupported URI scheme', 416, scheme);
}

function parseSipUri(scheme: 'sip' | 'sips', s: string, start: number): SipUri {
  if (BAD_URI_CHARS.test(s)) throw new UriParseError('Malformed URI', 400, 'illegal character');
  const len = s.length;
  let user: string | undefined;
  let password: string | undefined;
  let pos = start;
  // '@' cannot appear unescaped in host, params or headers, so the first one ends the userinfo.
  const at = s.indexOf('@', start);
  if (at >= 0) {
    const pc = s.indexOf(':', start);
    if (pc >= 0 && pc < at) {
      user = s.slice(start, pc);
      password = s.slice(pc + 1, at);
    } else {
      user = s.slice(start, at);
    }
    if (user === '') throw new UriParseError('Malformed URI', 400, 'empty user');
    pos = at + 1;
  }

  let host: string;
  let i: number;
  if (s.charCodeAt(pos) === 91 /* [ */) {
    const close = s.indexOf(']', pos);
    if (close < 0) throw new UriParseError('Malformed URI', 400, 'unterminated IPv6 reference');
    host = s.slice(pos, close + 1);
    if (!IPV6_REF_RE.test(host)) throw new UriParseError('Malformed URI', 400, 'bad IPv6 reference');
    i = close + 1;
  } else {
    i = pos;
    while (i < len) {
      const c = s.charCodeAt(i);
      if (c === 58 /* : */ || c === 59 /* ; */ || c === 63 /* ? */) break;
      i++;
    }
    host = s.slice(pos, i);
    if (!HOSTNAME_RE.test(host)) throw new UriParseError('Malformed URI', 400, 'bad host');
  }
  host = host.toLowerCase();

  let port: number | undefined;
  if (i < len && s.charCodeAt(i) === 58 /* : */) {
    let j = i + 1;
    let value = 0;
    while (j < len) {
      const c = s.charCodeAt(j);
      if (c < 48 || c > 57) break;
      value = value * 10 + (c - 48);
      j++;
    }
    if (j === i + 1 || j - i - 1 > 5 || value > 65535) throw new UriParseError('Malformed URI', 400, 'bad port');
    port = value;
    i = j;
  }

  const params = new Map<string, string>();
  i = parseUriParams(s, i, params, true);
  const headers: Array<[string, string]> = [];
  if (i < len) {
    // parseUriParams stops only at '?' or end.
    const hs = s.slice(i + 1);
    for (const part of hs.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const name = eq < 0 ? part : part.slice(0, eq);
      if (name === '') throw new UriParseError('Malformed URI', 400, 'bad header');
      headers.push([name, eq < 0 ? '' : part.slice(eq + 1)]);
    }
  }

  return {
    scheme,
    user,
    userDecoded: user === undefined ? undefined : percentDecode(user),
    password,
    host,
    port,
    params,
    headers,
  };
}

/**
 * Parses `;name[=value]` segments from `i` into `out`. Returns the index of the '?' that starts
 * the headers, or `s.length`. Throws on anything else following the host/port.
 */
function parseUriParams(s: string, i: number, out: Map<string, string>, allowHeaders: boolean): number {
  const len = s.length;
  while (i < len) {
    const c = s.charCodeAt(i);
    if (c === 63 /* ? */ && allowHeaders) return i;
    if (c !== 59 /* ; */) throw new UriParseError('Malformed URI', 400, 'unexpected character after host');
    let j = i + 1;
    while (j < len) {
      const d = s.charCodeAt(j);
      if (d === 59 || (d === 63 && allowHeaders)) break;
      j++;
    }
    if (j > i + 1) {
      const seg = s.slice(i + 1, j);
      const eq = seg.indexOf('=');
      const name = (eq < 0 ? seg : seg.slice(0, eq)).toLowerCase();
      if (name === '') throw new UriParseError('Malformed URI', 400, 'empty parameter name');
      if (!out.has(name)) out.set(name, eq < 0 ? '' : seg.slice(eq + 1));
    }
    i = j;
  }
  return i;
}

function parseTelUri(s: string, start: number): SipUri {
  if (BAD_URI_CHARS.test(s)) throw new UriParseError('Malformed URI', 400, 'illegal character');
  let end = s.indexOf(';', start);
  if (end < 0) end = s.length;
  const number = s.slice(start, end);
  if (!TEL_NUMBER_RE.test(number) || !TEL_HAS_DIGIT_RE.test(number)) {
    throw new UriParseError('Malformed URI', 400, 'bad telephone number');
  }
  const params = new Map<string, string>();
  parseUriParams(s, end, params, false);
  return {
    scheme: 'tel',
    user: number,
    userDecoded: percentDecode(number),
    password: undefined,
    host: '',
    port: undefined,
    params,
    headers: [],
  };
}

/** Serialises a URI. Values are written as given (raw): escape user parts with {@link escapeUser}. */
export function formatUri(uri: SipUriInit): string {
  let out = uri.scheme + ':';
  if (uri.scheme === 'tel') {
    out += uri.user ?? '';
  } else {
    if (uri.user !== undefined && uri.user !== '') {
      out += uri.user;
      if (uri.password !== undefined) out += ':' + uri.password;
      out += '@';
    }
    out += uri.host ?? '';
    if (uri.port !== undefined) out += ':' + uri.port;
  }
  if (uri.params !== undefined) {
    for (const [name, value] of uri.params) out += value === '' ? ';' + name : ';' + name + '=' + value;
  }
  if (uri.headers !== undefined && uri.scheme !== 'tel') {
    let sep = '?';
    for (const [name, value] of uri.headers) {
      out += sep + name + '=' + value;
      sep = '&';
    }
  }
  return out;
}

/**
 * Address-of-record form of a URI, usable as a stable key for a public identity:
 * - sip:/sips: URIs give `sip:user@host` (scheme always `sip`, host lowercased, port, params and
 *   headers dropped; the user part percent-decoded then re-escaped minimally, so `sip:%61lice@X.com`
 *   and `sips:alice@x.com:5061;transport=tls` both give `sip:alice@x.com`). A URI without a user
 *   part gives `sip:host`.
 * - tel: URIs give `tel:` + the number without visual separators (`-.()`), hex digits lowercased;
 *   a local number (no leading '+') keeps its `;phone-context=` (lowercased), other params dropped.
 * A string argument may also be a name-addr like `"Alice" <sip:alice@x.com>;tag=1`: the URI
 * between the angle brackets is used. Throws UriParseError when the URI cannot be parsed.
 */
export function aor(uri: SipUri | string): string {
  let u: SipUri;
  if (typeof uri === 'string') {
    const lt = uri.indexOf('<');
    if (lt >= 0) {
      const gt = uri.indexOf('>', lt + 1);
      if (gt < 0) throw new UriParseError('Malformed URI', 400, 'unterminated <');
      u = parseUri(uri.slice(lt + 1, gt));
    } else {
      u = parseUri(uri);
    }
  } else {
    u = uri;
  }
  if (u.scheme === 'tel') {
    const number = (u.user ?? '').replace(TEL_VISUAL_SEPARATORS_RE, '').toLowerCase();
    if (number.startsWith('+')) return 'tel:' + number;
    const ctx = u.params.get('phone-context');
    return ctx === undefined ? 'tel:' + number : 'tel:' + number + ';phone-context=' + ctx.toLowerCase();
  }
  const host = u.host.toLowerCase();
  if (u.user === undefined || u.user === '') return 'sip:' + host;
  const decoded = u.userDecoded ?? percentDecode(u.user);
  return 'sip:' + escapeUser(decoded) + '@' + host;
}

/** True when both URIs have the same {@link aor}; false when either cannot be parsed. */
export function isSameAor(a: SipUri | string, b: SipUri | string): boolean {
  try {
    return aor(a) === aor(b);
  } catch {
    return false;
  }
}

/**
 * Decodes `%XX` escapes (as UTF-8; invalid sequences become U+FFFD). Throws UriParseError on a
 * malformed escape. Returns the input itself when it holds no '%'.
 */
export function percentDecode(s: string): string {
  if (s.indexOf('%') < 0) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    // Either a malformed escape or escaped bytes that are not valid UTF-8.
  }
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new UriParseError('Malformed URI', 400, 'bad escape');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // Non-ASCII characters (not allowed unescaped, tolerated): keep their UTF-8 bytes.
      const cp = s.codePointAt(i) ?? c;
      if (cp > 0xffff) i++;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * Escapes a decoded user part for use in a SIP URI: every character outside RFC 3261
 * unreserved / user-unreserved is written as uppercase `%XX` UTF-8 escapes.
 */
export function escapeUser(decoded: string): string {
  if (USER_SAFE_RE.test(decoded)) return decoded;
  let out = '';
  for (const ch of decoded) {
    if (USER_SAFE_RE.test(ch)) {
      out += ch;
    } else {
      for (const b of Buffer.from(ch, 'utf8')) out += '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
    }
  }
  return out;
}
