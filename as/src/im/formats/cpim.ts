/**
 * Message/CPIM (RFC 3862): parsing, lossless re-serialisation and building, plus the IMDN
 * (RFC 5438) request fields a CPIM message carries.
 *
 * Pure: no I/O.
 *
 * Layout of a body: message headers, an empty line, the MIME headers of the encapsulated
 * content (at least Content-Type), an empty line, the content. Lines may end in CRLF or a bare
 * LF; the content is kept exactly as received, whatever its line ends.
 *
 * Header model. Every header is a {name, value} pair kept in order. `value` is the text after
 * the colon with the single space of `Name: value` removed; when the sender wrote header
 * parameters right after the colon (RFC 3862 `Subject:;lang=fr text`) the value starts with ';'
 * and the serializer writes it back without the space. So any conforming input, CRLF-terminated,
 * serializes back byte for byte. Non-conforming spacing (`Name:value`) is normalised.
 *
 * Namespaces. A header name is `Name` or `prefix.Name`; `NS: prefix <urn>` binds a prefix.
 * Unprefixed names are always read as CPIM core headers (urn:ietf:params:cpim-headers:), even
 * after a prefix-less `NS: <urn>`: honouring a redefined default would let a sender hide its From
 * from privacy rewriting while clients that ignore the rule still display it. A prefix is resolved
 * with the declarations above the header, else a later declaration (senders that declare late),
 * else the well-known `imdn` prefix. Name lookups are case-insensitive.
 *
 * Refused with {@link CpimParseError}: a header section (message or content) with more than 100
 * headers or longer than 16 KiB (counted in UTF-8 with CRLF line ends), a missing empty line after
 * either section, a header line without a colon or with an invalid name, control characters in a
 * header, a missing or repeated From, a From/To/cc value that is not `["Display"] <uri>`, a malformed NS,
 * and a missing, repeated or malformed Content-Type.
 */
import { parseValueParams, unquote } from '../../sip/name-addr.js';
import { utf8ByteLength } from '../../sip/message.js';

export const CPIM_CONTENT_TYPE = 'message/cpim';
/** Namespace of the RFC 3862 core headers (From, To, cc, DateTime, Subject, NS, Require). */
export const CPIM_HEADERS_NS = 'urn:ietf:params:cpim-headers:';
/** CPIM header namespace of RFC 5438 (Message-ID, Disposition-Notification, IMDN-Record-Route ...). */
export const IMDN_NS = 'urn:ietf:params:imdn';
/** Media type of an IMDN payload (RFC 5438 section 10.1). */
export const IMDN_CONTENT_TYPE = 'message/imdn+xml';

export const MAX_HEADERS = 100;
export const MAX_SECTION_BYTES = 16 * 1024;

/** Prefixes understood without an NS declaration: sloppy senders omit `NS: imdn <...>`. */
const WELL_KNOWN_PREFIXES: ReadonlyMap<string, string> = new Map([['imdn', IMDN_NS]]);

/** The sender identity used when the sender asked for privacy. */
export const ANONYMOUS_FROM: CpimAddress = Object.freeze({
  display: 'Anonymous',
  uri: 'sip:anonymous@anonymous.invalid',
});

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

export interface CpimHeader {
  readonly name: string;
  readonly value: string;
}

/** A From / To / cc value: `"Display" <uri>` or `<uri>`. */
export interface CpimAddress {
  /** Display name, unescaped; undefined when absent. */
  readonly display?: string | undefined;
  readonly uri: string;
}

export interface CpimSubject {
  /** Text with CPIM escapes decoded. */
  readonly text: string;
  /** The `lang` header parameter, when given. */
  readonly lang?: string | undefined;
}

export type ImdnDisposition = 'positive-delivery' | 'negative-delivery' | 'processing' | 'display';

export interface ImdnRequest {
  /** imdn.Message-ID; undefined when absent. */
  messageId?: string | undefined;
  /** Notifications the sender asked for (unknown tokens dropped). Always empty for an IMDN. */
  dispositions: Set<ImdnDisposition>;
  /** URIs of the imdn.IMDN-Record-Route headers, in header order (unparsable ones skipped). */
  recordRoutes: string[];
}

/** A body the server refuses. `reason` is short printable ASCII, usable as a SIP reason phrase. */
export class CpimParseError extends Error {
  readonly reason: string;
  constructor(reason: string, options: { cause?: unknown } = {}) {
    const r = reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
    super(r, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CpimParseError';
    this.reason = r;
  }
}

function fail(reason: string): never {
  throw new CpimParseError(reason);
}

// ---------------------------------------------------------------------------
// Lexical helpers
// ---------------------------------------------------------------------------

/** RFC 3862 Name: NAMECHAR excludes '.', so a header name has at most one prefix. */
const NAME_SRC = "[!#$%&'*+\\-^_`|~A-Za-z0-9]+";
const CPIM_HEADER_NAME_RE = new RegExp(`^(?:${NAME_SRC}\\.)?${NAME_SRC}$`);
const CPIM_NAME_RE = new RegExp(`^${NAME_SRC}$`);
/** RFC 5322 field-name (printable ASCII except ':'). */
const MIME_HEADER_NAME_RE = /^[\x21-\x39\x3b-\x7e]+$/;
/** Control characters that may not appear in a header line (HTAB is allowed). */

const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;

const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[^\x00-\x20\x7f<>"]+$/;
/** `[prefix SP] <urn>` (RFC 3862 NS header). */
const NS_VALUE_RE = new RegExp(`^(?:(${NAME_SRC}) +)?<([^\\s<>"]+)>[ \\t]*$`);
const MEDIA_TYPE_RE = /^[!#$%&'*+\-.^_`|~0-9a-z]+\/[!#$%&'*+\-.^_`|~0-9a-z]+$/;

function splitName(name: string): { prefix: string | undefined; local: string } {
  const dot = name.indexOf('.');
  return dot < 0 ? { prefix: undefined, local: name } : { prefix: name.slice(0, dot), local: name.slice(dot + 1) };
}

function sameUrn(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** Exact prefix first, then any case: prefixes that differ only in case are not worth telling apart. */
function lookupPrefix(map: ReadonlyMap<string, string>, prefix: string): string | undefined {
  const exact = map.get(prefix);
  if (exact !== undefined) return exact;
  const lower = prefix.toLowerCase();
  for (const [p, urn] of map) if (p.toLowerCase() === lower) return urn;
  return undefined;
}

/** Decodes RFC 3862 escapes (\uXXXX \b \t \n \r \" \' \\); an unknown escape keeps the character. */
export function unescapeCpim(s: string): string {
  if (!s.includes('\\')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '\\' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const e = s[++i] as string;
    if (e === 'u' && /^[0-9A-Fa-f]{4}$/.test(s.slice(i + 1, i + 5))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 5), 16));
      i += 4;
    } else if (e === 'b') out += '\b';
    else if (e === 't') out += '\t';
    else if (e === 'n') out += '\n';
    else if (e === 'r') out += '\r';
    else out += e;
  }
  return out;
}

/** Escapes text for a CPIM header value or quoted string: '\', '"' and control characters. */
export function escapeCpim(s: string): string {
  return s.replace(/[\\"\x00-\x1f\x7f]/g, (c) => {
    switch (c) {
      case '\\':
        return '\\\\';
      case '"':
        return '\\"';
      case '\b':
        return '\\b';
      case '\t':
        return '\\t';
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      default:
        return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
    }
  });
}

/** Index just past the closing quote of the string starting at `i` ('"'); -1 if unterminated. */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 92 /* \ */) j++;
    else if (c === 34 /* " */) return j + 1;
  }
  return -1;
}

/**
 * Splits leading header parameters (`;lang=fr;x="a b" text`) from the value proper. Returns
 * undefined when the parameters are malformed.
 */
function splitHeaderParams(value: string): { params: Map<string, string>; text: string } | undefined {
  const params = new Map<string, string>();
  let i = 0;
  while (i < value.length && value[i] === ';') {
    const m = /^;([!#$%&'*+\-^_`|~A-Za-z0-9]+)=/.exec(value.slice(i));
    if (!m) return undefined;
    i += m[0].length;
    let v: string;
    if (value[i] === '"') {
      const end = stringEnd(value, i);
      if (end < 0) return undefined;
      v = unescapeCpim(value.slice(i + 1, end - 1));
      i = end;
    } else {
      let j = i;
      while (j < value.length && value[j] !== ';' && value[j] !== ' ') j++;
      if (j === i) return undefined;
      v = value.slice(i, j);
      i = j;
    }
    const key = (m[1] as string).toLowerCase();
    if (!params.has(key)) params.set(key, v);
  }
  if (i === 0) return { params, text: value };
  if (i < value.length && value[i] !== ' ') return undefined;
  return { params, text: value.slice(i + 1) };
}

/**
 * Parses a From / To / cc / IMDN-Record-Route value: `"Display" <uri>`, `Display Name <uri>` or
 * `<uri>`, with surrounding whitespace allowed. Throws CpimParseError.
 */
export function parseCpimAddress(value: string, header = 'address'): CpimAddress {
  const bad: (why: string) => never = (why) => fail(`Malformed ${header}: ${why}`);
  const split = splitHeaderParams(value);
  if (!split) bad('bad header parameters');
  const s = split.text.trim();
  let display: string | undefined;
  let lt: number;
  if (s.startsWith('"')) {
    const end = stringEnd(s, 0);
    if (end < 0) bad('unterminated display name');
    display = unescapeCpim(s.slice(1, end - 1));
    lt = end;
    while (s[lt] === ' ' || s[lt] === '\t') lt++;
    if (s[lt] !== '<') bad('expected <');
  } else {
    lt = s.indexOf('<');
    if (lt < 0) bad('expected <uri>');
    const dn = s.slice(0, lt).trim();
    if (/["<>]/.test(dn)) bad('bad display name');
    display = dn === '' ? undefined : dn;
  }
  const gt = s.indexOf('>', lt + 1);
  if (gt < 0) bad('unterminated <');
  const uri = s.slice(lt + 1, gt);
  if (!URI_RE.test(uri)) bad('bad URI');
  if (gt !== s.length - 1) bad('text after >');
  return display === undefined ? { uri } : { display, uri };
}

/** Writes `"Display" <uri>` (or `<uri>` without a display name). Throws TypeError on a bad URI. */
export function formatCpimAddress(addr: CpimAddress): string {
  if (!URI_RE.test(addr.uri)) throw new TypeError(`invalid URI for a CPIM address: ${JSON.stringify(addr.uri)}`);
  const uri = `<${addr.uri}>`;
  return addr.display === undefined || addr.display === '' ? uri : `"${escapeCpim(addr.display)}" ${uri}`;
}

/** RFC 3339 date-time (full-date "T" full-time, with offset), field ranges checked. */
export function isRfc3339DateTime(s: string): boolean {
  const m = /^\d{4}-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/.exec(s);
  if (!m) return false;
  const n = (i: number): number => Number(m[i] ?? '0');
  return (
    n(1) >= 1 &&
    n(1) <= 12 &&
    n(2) >= 1 &&
    n(2) <= 31 &&
    n(3) <= 23 &&
    n(4) <= 59 &&
    n(5) <= 60 &&
    n(6) <= 23 &&
    n(7) <= 59
  );
}

function headerLine(h: CpimHeader): string {
  // Header parameters follow the colon directly (RFC 3862 section 3.1).
  return h.value.startsWith(';') ? `${h.name}:${h.value}` : `${h.name}: ${h.value}`;
}

function sectionBytes(headers: readonly CpimHeader[]): number {
  let n = 0;
  for (const h of headers) n += utf8ByteLength(headerLine(h)) + 2;
  return n;
}

// ---------------------------------------------------------------------------
// The message
// ---------------------------------------------------------------------------

export interface CpimMessageInit {
  headers: readonly CpimHeader[];
  contentHeaders: readonly CpimHeader[];
  content: string;
}

/**
 * A validated CPIM message. Immutable: the header lists are frozen and every accessor is
 * computed once from them, so derive changed messages with {@link withReplacedFrom} or a new
 * instance rather than editing.
 */
export class CpimMessage {
  readonly headers: readonly CpimHeader[];
  readonly contentHeaders: readonly CpimHeader[];
  readonly content: string;
  /** NS declarations, prefix -> URN (the last declaration of a prefix wins; '' = prefix-less NS). */
  readonly ns: ReadonlyMap<string, string>;
  readonly from: CpimAddress;
  readonly to: readonly CpimAddress[];
  readonly cc: readonly CpimAddress[];
  /** First DateTime value as written (trimmed), not checked: see {@link isRfc3339DateTime}. */
  readonly dateTime: string | undefined;
  readonly subjects: readonly CpimSubject[];
  /** Content-Type media type, lowercased, without parameters (e.g. 'text/plain'). */
  readonly contentType: string;
  /** Content-Type value as written. */
  readonly contentTypeRaw: string;
  /** Content-Type parameters: lowercased names, unquoted values. */
  readonly contentTypeParams: ReadonlyMap<string, string>;
  /** Namespace URN of each header (parallel to `headers`); undefined for an unbound prefix. */
  readonly #nsOf: readonly (string | undefined)[];

  /** Validates like {@link parseCpim} (same limits and refusals); throws CpimParseError. */
  constructor(init: CpimMessageInit) {
    const headers = Object.freeze(init.headers.map((h) => Object.freeze({ name: h.name, value: h.value })));
    const contentHeaders = Object.freeze(
      init.contentHeaders.map((h) => Object.freeze({ name: h.name, value: h.value })),
    );
    checkSection(headers, 'message', CPIM_HEADER_NAME_RE);
    checkSection(contentHeaders, 'content', MIME_HEADER_NAME_RE);
    this.headers = headers;
    this.contentHeaders = contentHeaders;
    this.content = init.content;

    // NS declarations, in order, so each header can be resolved positionally.
    const decls: { at: number; prefix: string; urn: string }[] = [];
    headers.forEach((h, at) => {
      if (h.name.toLowerCase() !== 'ns') return;
      const m = NS_VALUE_RE.exec(h.value);
      if (!m) fail('Malformed NS header');
      decls.push({ at, prefix: m[1] ?? '', urn: m[2] as string });
    });
    this.ns = new Map(decls.map((d) => [d.prefix, d.urn]));
    this.#nsOf = headers.map((h, at) => {
      const { prefix } = splitName(h.name);
      if (prefix === undefined) return CPIM_HEADERS_NS;
      const before = new Map<string, string>();
      for (const d of decls) if (d.at < at) before.set(d.prefix, d.urn);
      const after = new Map<string, string>();
      for (const d of decls) if (d.at > at && !after.has(d.prefix)) after.set(d.prefix, d.urn);
      return lookupPrefix(before, prefix) ?? lookupPrefix(after, prefix) ?? lookupPrefix(WELL_KNOWN_PREFIXES, prefix);
    });

    const froms = this.headerValues('From');
    if (froms[0] === undefined) fail('Missing From header');
    if (froms.length > 1) fail('More than one From header');
    this.from = parseCpimAddress(froms[0], 'From');
    this.to = Object.freeze(this.headerValues('To').map((v) => parseCpimAddress(v, 'To')));
    this.cc = Object.freeze(this.headerValues('cc').map((v) => parseCpimAddress(v, 'cc')));
    this.dateTime = this.header('DateTime')?.trim();
    this.subjects = Object.freeze(
      this.headerValues('Subject').map((v) => {
        const split = splitHeaderParams(v);
        if (split === undefined) return { text: unescapeCpim(v) };
        const lang = split.params.get('lang');
        return lang === undefined ? { text: unescapeCpim(split.text) } : { text: unescapeCpim(split.text), lang };
      }),
    );

    const types = contentHeaders.filter((h) => h.name.toLowerCase() === 'content-type');
    if (types.length === 0) fail('Missing Content-Type in the CPIM content headers');
    if (types.length > 1) fail('More than one Content-Type in the CPIM content headers');
    const raw = (types[0] as CpimHeader).value;
    let parsed: { value: string; params: Map<string, string> };
    try {
      parsed = parseValueParams(raw);
    } catch (e) {
      throw new CpimParseError('Malformed Content-Type in the CPIM content headers', { cause: e });
    }
    const mediaType = parsed.value.toLowerCase();
    if (!MEDIA_TYPE_RE.test(mediaType)) fail('Malformed Content-Type in the CPIM content headers');
    this.contentType = mediaType;
    this.contentTypeRaw = raw;
    this.contentTypeParams = new Map([...parsed.params].map(([k, v]) => [k, unquote(v)]));
  }

  /** The first Subject without a lang parameter, else the first Subject. */
  get subject(): string | undefined {
    return (this.subjects.find((s) => s.lang === undefined) ?? this.subjects[0])?.text;
  }

  /**
   * Value of the first header named `name` (case-insensitive) in namespace `nsUrn`. Without
   * `nsUrn`, `prefix.Name` is resolved through this message's NS declarations (an undeclared
   * prefix is matched literally) and an unprefixed name means a CPIM core header. Values are
   * raw: CPIM escapes and leading `;param`s are kept.
   */
  header(name: string, nsUrn?: string): string | undefined {
    return this.headerValues(name, nsUrn)[0];
  }

  /** Every value of {@link header}, in order. */
  headerValues(name: string, nsUrn?: string): string[] {
    const match = this.#matcher(name, nsUrn);
    const out: string[] = [];
    this.headers.forEach((h, i) => {
      if (match(h, i)) out.push(h.value);
    });
    return out;
  }

  /** First content header named `name` (case-insensitive), raw value. */
  contentHeader(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.contentHeaders.find((h) => h.name.toLowerCase() === lower)?.value;
  }

  /** Same as {@link serializeCpim}. */
  toString(): string {
    return serializeCpim(this);
  }

  /** Index-aware predicate for the headers a lookup means. */
  #matcher(name: string, nsUrn: string | undefined): (h: CpimHeader, i: number) => boolean {
    const parts = splitName(name);
    let prefix = parts.prefix;
    let urn = nsUrn;
    if (urn !== undefined) {
      // An explicit URN says which namespace; a prefix in `name` would be redundant.
      prefix = undefined;
    } else if (prefix !== undefined) {
      urn = lookupPrefix(this.ns, prefix) ?? lookupPrefix(WELL_KNOWN_PREFIXES, prefix);
    } else {
      urn = CPIM_HEADERS_NS;
    }
    const wantLocal = parts.local.toLowerCase();
    const literalPrefix = prefix?.toLowerCase();
    return (h, i) => {
      const got = splitName(h.name);
      if (got.local.toLowerCase() !== wantLocal) return false;
      const own = this.#nsOf[i];
      if (urn !== undefined) return own !== undefined && sameUrn(own, urn);
      return own === undefined && got.prefix?.toLowerCase() === literalPrefix;
    };
  }

  /** Positions in `headers` of the headers {@link header} would return, in order. */
  headerIndexes(name: string, nsUrn?: string): number[] {
    const match = this.#matcher(name, nsUrn);
    const out: number[] = [];
    this.headers.forEach((h, i) => {
      if (match(h, i)) out.push(i);
    });
    return out;
  }
}

function checkSection(headers: readonly CpimHeader[], which: 'message' | 'content', nameRe: RegExp): void {
  if (headers.length > MAX_HEADERS) fail(`More than ${MAX_HEADERS} CPIM ${which} headers`);
  for (const h of headers) {
    if (!nameRe.test(h.name)) fail(`Invalid CPIM ${which} header name`);
    if (CONTROL_RE.test(h.value)) fail(`Control character in a CPIM ${which} header`);
  }
  if (sectionBytes(headers) > MAX_SECTION_BYTES) fail(`CPIM ${which} headers longer than ${MAX_SECTION_BYTES} bytes`);
}

// ---------------------------------------------------------------------------
// Parsing and serialisation
// ---------------------------------------------------------------------------

/**
 * Reads header lines from `start` up to the empty line. Stops early on the limits so a huge body
 * without a separator costs one scan at most.
 */
function readSection(
  body: string,
  start: number,
  which: 'message' | 'content',
  nameRe: RegExp,
): { headers: CpimHeader[]; end: number } {
  const headers: CpimHeader[] = [];
  let pos = start;
  let bytes = 0;
  for (;;) {
    const nl = body.indexOf('\n', pos);
    if (nl < 0 || nl - pos > MAX_SECTION_BYTES) {
      if (nl < 0 && body.length - pos <= MAX_SECTION_BYTES) fail(`Missing empty line after the CPIM ${which} headers`);
      fail(`CPIM ${which} headers longer than ${MAX_SECTION_BYTES} bytes`);
    }
    let line = body.slice(pos, nl);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    pos = nl + 1;
    if (line === '') return { headers, end: pos };
    if (headers.length === MAX_HEADERS) fail(`More than ${MAX_HEADERS} CPIM ${which} headers`);
    bytes += utf8ByteLength(line) + 2;
    if (bytes > MAX_SECTION_BYTES) fail(`CPIM ${which} headers longer than ${MAX_SECTION_BYTES} bytes`);
    const colon = line.indexOf(':');
    if (colon < 0) fail(`CPIM ${which} header line without a colon`);
    const name = line.slice(0, colon);
    if (!nameRe.test(name)) fail(`Invalid CPIM ${which} header name`);
    const rest = line.slice(colon + 1);
    headers.push({ name, value: rest.startsWith(' ') ? rest.slice(1) : rest });
  }
}

/** Parses a message/cpim body (see the module comment for what is refused). */
export function parseCpim(body: string): CpimMessage {
  const msg = readSection(body, 0, 'message', CPIM_HEADER_NAME_RE);
  const content = readSection(body, msg.end, 'content', MIME_HEADER_NAME_RE);
  return new CpimMessage({ headers: msg.headers, contentHeaders: content.headers, content: body.slice(content.end) });
}

/** Writes a message back: CRLF line ends, the content exactly as held. */
export function serializeCpim(msg: CpimMessage): string {
  const lines = msg.headers.map(headerLine);
  lines.push('');
  for (const h of msg.contentHeaders) lines.push(headerLine(h));
  lines.push('', '');
  return lines.join('\r\n') + msg.content;
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

export interface CpimBuildInit {
  from: CpimAddress;
  to: CpimAddress | readonly CpimAddress[];
  cc?: readonly CpimAddress[] | undefined;
  /** RFC 3339, e.g. `new Date().toISOString()` taken by the caller. */
  dateTime?: string | undefined;
  subject?: string | CpimSubject | undefined;
  /** prefix -> URN, written as `NS: prefix <urn>` in this order. */
  ns?: ReadonlyMap<string, string> | Readonly<Record<string, string>> | undefined;
  /** Further message headers, written after the standard ones (prefixed names need an `ns` entry). */
  headers?: readonly CpimHeader[] | undefined;
  /** Full Content-Type value, parameters allowed (e.g. 'text/plain;charset=utf-8'). */
  contentType: string;
  content: string;
  /** Further content headers, written after Content-Type (not Content-Type itself). */
  contentHeaders?: readonly CpimHeader[] | undefined;
}

function checkValue(v: string, what: string): void {
  if (CONTROL_RE.test(v)) throw new TypeError(`control character in ${what}`);
}

/**
 * Builds a new message: From, To..., cc..., DateTime, Subject, NS..., `headers`; then
 * Content-Type and `contentHeaders`. Throws TypeError on input that would not parse back
 * (bad names, URIs, control characters, undeclared prefixes, limits exceeded).
 */
export function buildCpim(init: CpimBuildInit): CpimMessage {
  const headers: CpimHeader[] = [{ name: 'From', value: formatCpimAddress(init.from) }];
  const tos = Array.isArray(init.to) ? (init.to as readonly CpimAddress[]) : [init.to as CpimAddress];
  for (const t of tos) headers.push({ name: 'To', value: formatCpimAddress(t) });
  for (const c of init.cc ?? []) headers.push({ name: 'cc', value: formatCpimAddress(c) });
  if (init.dateTime !== undefined) {
    if (!isRfc3339DateTime(init.dateTime))
      throw new TypeError(`DateTime is not RFC 3339: ${JSON.stringify(init.dateTime)}`);
    headers.push({ name: 'DateTime', value: init.dateTime });
  }
  if (init.subject !== undefined) {
    const s = typeof init.subject === 'string' ? { text: init.subject } : init.subject;
    if (s.lang !== undefined && !/^[A-Za-z0-9-]+$/.test(s.lang))
      throw new TypeError(`invalid Subject lang: ${JSON.stringify(s.lang)}`);
    const text = escapeCpim(s.text);
    headers.push({ name: 'Subject', value: s.lang === undefined ? text : `;lang=${s.lang} ${text}` });
  }
  const declared = new Set<string>();
  const nsEntries = init.ns === undefined ? [] : init.ns instanceof Map ? [...init.ns] : Object.entries(init.ns);
  for (const [prefix, urn] of nsEntries) {
    if (!CPIM_NAME_RE.test(prefix)) throw new TypeError(`invalid NS prefix: ${JSON.stringify(prefix)}`);
    if (!/^[^\s<>"]+$/.test(urn)) throw new TypeError(`invalid NS URN: ${JSON.stringify(urn)}`);
    headers.push({ name: 'NS', value: `${prefix} <${urn}>` });
    declared.add(prefix);
  }
  for (const h of init.headers ?? []) {
    if (!CPIM_HEADER_NAME_RE.test(h.name)) throw new TypeError(`invalid CPIM header name: ${JSON.stringify(h.name)}`);
    const { prefix } = splitName(h.name);
    if (prefix !== undefined && !declared.has(prefix))
      throw new TypeError(`CPIM header prefix not declared in ns: ${h.name}`);
    checkValue(h.value, h.name);
    headers.push({ name: h.name, value: h.value });
  }

  checkValue(init.contentType, 'Content-Type');
  const contentHeaders: CpimHeader[] = [{ name: 'Content-Type', value: init.contentType }];
  for (const h of init.contentHeaders ?? []) {
    if (!MIME_HEADER_NAME_RE.test(h.name))
      throw new TypeError(`invalid content header name: ${JSON.stringify(h.name)}`);
    if (h.name.toLowerCase() === 'content-type')
      throw new TypeError('Content-Type goes in contentType, not contentHeaders');
    checkValue(h.value, h.name);
    contentHeaders.push({ name: h.name, value: h.value });
  }
  try {
    return new CpimMessage({ headers, contentHeaders, content: init.content });
  } catch (e) {
    if (e instanceof CpimParseError) throw new TypeError(`cannot build CPIM message: ${e.reason}`, { cause: e });
    throw e;
  }
}

// ---------------------------------------------------------------------------
// IMDN fields and privacy
// ---------------------------------------------------------------------------

const DISPOSITIONS: ReadonlySet<string> = new Set<ImdnDisposition>([
  'positive-delivery',
  'negative-delivery',
  'processing',
  'display',
]);

/**
 * What the sender asked for under RFC 5438, from the imdn-namespace headers. An IMDN itself
 * never requests notifications (RFC 5438 section 7), so its dispositions are always empty.
 */
export function imdnRequest(msg: CpimMessage): ImdnRequest {
  const messageId = msg.header('Message-ID', IMDN_NS)?.trim();
  const dispositions = new Set<ImdnDisposition>();
  if (!isImdnNotification(msg)) {
    for (const v of msg.headerValues('Disposition-Notification', IMDN_NS)) {
      for (const token of v.split(',')) {
        const t = token.trim().toLowerCase();
        if (DISPOSITIONS.has(t)) dispositions.add(t as ImdnDisposition);
      }
    }
  }
  const recordRoutes: string[] = [];
  for (const v of msg.headerValues('IMDN-Record-Route', IMDN_NS)) {
    try {
      recordRoutes.push(parseCpimAddress(v, 'IMDN-Record-Route').uri);
    } catch {
      // A route we cannot read cannot be followed either; the others still can.
    }
  }
  return { messageId: messageId === '' ? undefined : messageId, dispositions, recordRoutes };
}

/**
 * A copy of `msg` whose From is `from` (e.g. {@link ANONYMOUS_FROM}, or the same as a string
 * `"Anonymous" <sip:anonymous@anonymous.invalid>`); every other header, the content headers and
 * the content are unchanged. Throws TypeError when a string `from` is not an address.
 */
export function withReplacedFrom(msg: CpimMessage, from: CpimAddress | string): CpimMessage {
  let addr: CpimAddress;
  if (typeof from === 'string') {
    try {
      addr = parseCpimAddress(from, 'From');
    } catch (e) {
      throw new TypeError(`not a CPIM address: ${JSON.stringify(from)}`, { cause: e });
    }
  } else {
    addr = from;
  }
  const value = formatCpimAddress(addr);
  // The constructor guarantees exactly one From; the header keeps its name as written.
  const at = msg.headerIndexes('From')[0];
  const headers = msg.headers.map((h, i) => (i === at ? { name: h.name, value } : h));
  return new CpimMessage({ headers, contentHeaders: msg.contentHeaders, content: msg.content });
}

/** True for an IMDN (content message/imdn+xml): it must never request or trigger another IMDN. */
export function isImdnNotification(msg: CpimMessage): boolean {
  return msg.contentType === IMDN_CONTENT_TYPE;
}
