/**
 * name-addr / addr-spec header values (From, To, Contact, Route, Record-Route,
 * P-Asserted-Identity, Refer-To ...) and generic `;name=value` header parameters
 * (RFC 3261 20.10, 25.1). Pure: no I/O.
 */
import { SipParseError, aor } from './uri.js';

/** What {@link formatNameAddr} needs. `params` may be a Map, [name, value] pairs or a plain object. */
export interface NameAddrInit {
  displayName?: string | undefined;
  uri: string;
  params?: ParamsInit | undefined;
}

export type ParamsInit =
  ReadonlyMap<string, string> | Iterable<readonly [string, string]> | Readonly<Record<string, string>>;

/**
 * A parsed name-addr. `uri` is the URI exactly as written (no angle brackets); `params` are the
 * header parameters after it (lowercased names, raw values: a quoted value keeps its quotes, use
 * {@link unquote}; '' for a value-less parameter).
 */
export class NameAddr {
  constructor(
    /** Display name, unquoted and unescaped; undefined when absent. */
    public displayName: string | undefined,
    public uri: string,
    public params: Map<string, string> = new Map(),
  ) {}

  /** The `tag` parameter (From/To), undefined when absent. */
  get tag(): string | undefined {
    return this.params.get('tag');
  }

  /** Address-of-record of the URI (see uri.ts `aor`); throws UriParseError for non sip/sips/tel URIs. */
  get aor(): string {
    return aor(this.uri);
  }

  toString(): string {
    return formatNameAddr(this);
  }
}

/** Generic URI shape: scheme ':' then no whitespace, quotes or angle brackets. */
const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20\x7f<>"]+$/;

/** RFC 3261 token characters. */
const TOKEN_CHARS = new Uint8Array(128);
for (const ch of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~") {
  TOKEN_CHARS[ch.charCodeAt(0)] = 1;
}

export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN_CHARS[c] === 1;
}

/** True when `s` is a non-empty RFC 3261 token. */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenChar(s.charCodeAt(i))) return false;
  return true;
}

function isWs(c: number): boolean {
  return c === 32 || c === 9 || c === 13 || c === 10;
}

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** Index just past the closing quote of the quoted-string starting at `i` (which must be '"'); -1 if unterminated. */
export function quotedStringEnd(s: string, i: number): number {
  const len = s.length;
  let j = i + 1;
  while (j < len) {
    const c = s.charCodeAt(j);
    if (c === 92 /* \ */) j += 2;
    else if (c === 34 /* " */) return j + 1;
    else j++;
  }
  return -1;
}

/** Removes surrounding double quotes and backslash escapes; returns other values unchanged. */
export function unquote(value: string): string {
  if (value.length < 2 || value.charCodeAt(0) !== 34 || value.charCodeAt(value.length - 1) !== 34) return value;
  const inner = value.slice(1, -1);
  return inner.indexOf('\\') < 0 ? inner : inner.replace(/\\(.)/gs, '$1');
}

/** Quotes a string as a SIP quoted-string (escapes '"' and '\', CR/LF become spaces). */
export function quote(value: string): string {
  return '"' + value.replace(/[\r\n]/g, ' ').replace(/["\\]/g, '\\$&') + '"';
}

function fail(detail: string): never {
  throw new SipParseError('Malformed name-addr', 400, detail);
}

/**
 * Parses a From/To/Contact/Route/P-Asserted-Identity value (one element: split comma lists first,
 * e.g. with `SipHeaders.getAll`). Accepted forms:
 *   `"Display Name" <sip:...>;tag=x`, `Display Name <sip:...>;tag=x`, `<sip:...>`, bare
 *   `sip:alice@x;tag=y` (params after a bare URI belong to the header, RFC 3261 20.10), and `*`
 *   (Contact wildcard: uri '*').
 * Throws SipParseError('Malformed name-addr') on anything else.
 */
export function parseNameAddr(text: string): NameAddr {
  const s = text;
  const len = s.length;
  let i = skipWs(s, 0);
  if (i >= len) fail('empty');
  let displayName: string | undefined;
  let uri: string;

  if (s.charCodeAt(i) === 34 /* " */) {
    const end = quotedStringEnd(s, i);
    if (end < 0) fail('unterminated quoted display name');
    displayName = unquote(s.slice(i, end));
    i = skipWs(s, end);
    if (s.charCodeAt(i) !== 60 /* < */) fail('expected <');
    [uri, i] = readAngle(s, i);
  } else {
    let j = i;
    let lt = -1;
    for (; j < len; j++) {
      const c = s.charCodeAt(j);
      if (c === 60 /* < */) {
        lt = j;
        break;
      }
      if (c === 59 /* ; */ || c === 34 /* " */ || c === 44 /* , */) break;
    }
    if (lt >= 0) {
      const dn = s.slice(i, lt).trim();
      displayName = dn === '' ? undefined : dn;
      [uri, i] = readAngle(s, lt);
    } else {
      // addr-spec: the URI ends at the first ';' (anything after is a header parameter).
      let end = s.indexOf(';', i);
      if (end < 0) end = len;
      uri = s.slice(i, end).trimEnd();
      i = end;
    }
  }

  if (uri === '*') {
    if (displayName !== undefined) fail('wildcard with display name');
  } else if (!URI_RE.test(uri)) {
    fail('bad URI');
  }
  const params = new Map<string, string>();
  parseParamsInto(s, i, params, true);
  return new NameAddr(displayName, uri, params);
}

function readAngle(s: string, lt: number): [string, number] {
  const gt = s.indexOf('>', lt + 1);
  if (gt < 0) fail('unterminated <');
  return [s.slice(lt + 1, gt), gt + 1];
}

/**
 * Parses header parameters `;a=b;c;d="quoted; value"` into an ordered Map (names lowercased,
 * values raw: quoted values keep their quotes, '' for value-less params; first occurrence wins).
 * The leading ';' is optional. Whitespace around ';' and '=' is allowed.
 * Throws SipParseError('Malformed header parameters').
 */
export function parseParams(text: string): Map<string, string> {
  const out = new Map<string, string>();
  parseParamsInto(text, 0, out, false);
  return out;
}

/**
 * Splits a value-with-parameters header (Event, Subscription-State, Content-Type,
 * Content-Disposition, Session-Expires, Reason ...) into its leading value and its parameters:
 * `presence;id=7` → { value: 'presence', params: Map { id → '7' } }.
 */
export function parseValueParams(text: string): { value: string; params: Map<string, string> } {
  const semi = text.indexOf(';');
  if (semi < 0) return { value: text.trim(), params: new Map() };
  const params = new Map<string, string>();
  parseParamsInto(text, semi, params, true);
  return { value: text.slice(0, semi).trim(), params };
}

/**
 * The leading value of a value-with-parameters header, lowercased, its parameters not read:
 * `Application/PIDF+XML; charset=utf-8` → `application/pidf+xml`; '' when the header is absent.
 */
export function headerValueOnly(text: string | undefined): string {
  if (text === undefined) return '';
  const semi = text.indexOf(';');
  return (semi < 0 ? text : text.slice(0, semi)).trim().toLowerCase();
}

/** Characters that end an unquoted parameter value. */
function endsValue(c: number): boolean {
  return c === 59 /* ; */ || c === 44 /* , */ || c === 34 /* " */ || c === 60 || c === 62 || isWs(c);
}

function parseParamsInto(s: string, i: number, out: Map<string, string>, requireSemi: boolean): void {
  const len = s.length;
  i = skipWs(s, i);
  let first = true;
  while (i < len) {
    if (s.charCodeAt(i) === 59 /* ; */) {
      i = skipWs(s, i + 1);
    } else if (!first || requireSemi) {
      throw new SipParseError('Malformed header parameters', 400, `unexpected '${s[i]}'`);
    }
    first = false;
    if (i >= len) break; // tolerate a trailing ';'
    if (s.charCodeAt(i) === 59) continue; // tolerate ';;'
    let j = i;
    while (j < len && isTokenChar(s.charCodeAt(j))) j++;
    if (j === i) throw new SipParseError('Malformed header parameters', 400, 'bad parameter name');
    const name = s.slice(i, j).toLowerCase();
    i = skipWs(s, j);
    let value = '';
    if (i < len && s.charCodeAt(i) === 61 /* = */) {
      i = skipWs(s, i + 1);
      if (i < len && s.charCodeAt(i) === 34 /* " */) {
        const end = quotedStringEnd(s, i);
        if (end < 0) throw new SipParseError('Malformed header parameters', 400, 'unterminated quoted value');
        value = s.slice(i, end);
        i = end;
      } else {
        j = i;
        while (j < len && !endsValue(s.charCodeAt(j))) j++;
        value = s.slice(i, j);
        i = j;
      }
    }
    if (!out.has(name)) out.set(name, value);
    i = skipWs(s, i);
    if (i < len && s.charCodeAt(i) !== 59) {
      throw new SipParseError('Malformed header parameters', 400, `unexpected '${s[i]}'`);
    }
  }
}

/** Does a raw parameter value need quoting to survive serialisation? */
function needsQuoting(value: string): boolean {
  if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (endsValue(c) || c < 32 || c === 127) return true;
  }
  return false;
}

function paramEntries(params: ParamsInit): Iterable<readonly [string, string]> {
  if (typeof (params as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return params as Iterable<readonly [string, string]>;
  }
  return Object.entries(params as Readonly<Record<string, string>>);
}

/**
 * Serialises header parameters: `;name` for '' values, `;name=value` otherwise. Values are
 * written raw, except that a value that could not be parsed back unquoted (whitespace, ';', ',',
 * '"', '<', '>') and is not already quoted gets quoted.
 */
export function formatParams(params: ParamsInit | undefined): string {
  if (params === undefined) return '';
  let out = '';
  for (const [name, value] of paramEntries(params)) {
    if (!isToken(name)) throw new TypeError(`invalid SIP parameter name: ${JSON.stringify(name)}`);
    if (value === '') out += ';' + name;
    else out += ';' + name + '=' + (needsQuoting(value) ? quote(value) : value);
  }
  return out;
}

/**
 * Serialises a name-addr: `"Display" <uri>;params`, always with angle brackets (so URI params
 * never get mistaken for header params). An empty/undefined display name is omitted; a URI of
 * '*' is written bare.
 */
export function formatNameAddr(value: NameAddrInit): string {
  const { uri } = value;
  if (/[\x00-\x20<>"]/.test(uri) && uri !== '*')
    throw new TypeError(`invalid URI for name-addr: ${JSON.stringify(uri)}`);
  let out = uri === '*' ? '*' : '<' + uri + '>';
  if (value.displayName !== undefined && value.displayName !== '') out = quote(value.displayName) + ' ' + out;
  return out + formatParams(value.params);
}
