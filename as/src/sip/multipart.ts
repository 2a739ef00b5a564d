/**
 * MIME multipart bodies as SIP carries them: RFC 2046 multipart/mixed (RFC 5365 recipient-list
 * MESSAGE) and RFC 2387 multipart/related (RFC 4662 list NOTIFY with an RLMI root part).
 *
 * Pure: no I/O. node:crypto is used only to hash part contents into a deterministic boundary.
 */
import { createHash } from 'node:crypto';
import { parseValueParams, quote, unquote } from './name-addr.js';

/** Most body parts accepted in (or built into) one multipart body. */
export const MAX_PARTS = 1000;

/** A multipart body could not be parsed; `reason` is a short phrase safe for a SIP reason phrase. */
export class MultipartParseError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'MultipartParseError';
    this.reason = reason;
  }
}

/** A parsed media type: `type/subtype` lowercased; parameters with lowercased names and unquoted values. */
export interface MediaType {
  type: string;
  params: Map<string, string>;
}

/** A parsed Content-Disposition: the disposition type lowercased; parameters as in {@link MediaType}. */
export interface Disposition {
  value: string;
  params: Map<string, string>;
}

/** One body part of a parsed multipart body. */
export class MimePart {
  constructor(
    /** Header fields in order: names as written, values unfolded and trimmed. */
    readonly headers: Array<[string, string]>,
    /** The part's content exactly as it appeared (line endings untouched). */
    readonly body: string,
    /** Parsed Content-Type; undefined when absent (RFC 2046 then implies text/plain). */
    readonly contentType: MediaType | undefined,
    /** Content-ID as written (usually `<id@host>`), undefined when absent. */
    readonly contentId: string | undefined,
    readonly disposition: Disposition | undefined,
  ) {}

  /** First value of a header, name matched case-insensitively; undefined when absent. */
  header(name: string): string | undefined {
    const key = name.toLowerCase();
    for (const [n, v] of this.headers) if (n.toLowerCase() === key) return v;
    return undefined;
  }
}

export interface MultipartBody {
  /** The multipart media type, lowercased (`multipart/mixed`). */
  mediaType: string;
  /** Its subtype (`mixed`, `related`, ...). */
  subtype: string;
  /** Every Content-Type parameter (boundary, type, start ...): lowercased names, unquoted values. */
  params: Map<string, string>;
  boundary: string;
  parts: MimePart[];
}

/** What {@link buildMultipart} needs for one part. */
export interface PartInit {
  headers: ReadonlyArray<readonly [string, string]>;
  body: string;
}

export interface BuildMultipartInit {
  subtype: 'mixed' | 'related';
  /** Boundary to use; must not occur in any part. Default: {@link pickBoundary}(parts). */
  boundary?: string;
  /** multipart/related only (required there): media type of the root part. */
  type?: string;
  /** multipart/related only: Content-ID of the root part (`<id@host>`), when it is not the first part. */
  start?: string;
  parts: readonly PartInit[];
}

// RFC 2045 token: printable ASCII without tspecials.
const MEDIA_TYPE_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DISPOSITION_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// RFC 2046 5.1.1: 1 to 70 bchars, not ending with a space.
const BOUNDARY_RE = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;
const BOUNDARY_TOKEN_RE = /^[0-9A-Za-z'+_.-]+$/;
// RFC 5322 field-name: printable ASCII except ':'.
const FIELD_NAME_RE = /^[!-9;-~]+$/;

function fail(reason: string): never {
  throw new MultipartParseError(reason);
}

/** True when `b` is a syntactically valid RFC 2046 boundary. */
export function isValidBoundary(b: string): boolean {
  return BOUNDARY_RE.test(b);
}

function parseParamsOf(text: string): { value: string; params: Map<string, string> } | undefined {
  let parsed: { value: string; params: Map<string, string> };
  try {
    parsed = parseValueParams(text);
  } catch {
    return undefined;
  }
  const params = new Map<string, string>();
  for (const [k, v] of parsed.params) params.set(k, unquote(v));
  return { value: parsed.value, params };
}

/** Parses a Content-Type value (`multipart/related;type="application/rlmi+xml"`); undefined when malformed. */
export function parseMediaType(text: string): MediaType | undefined {
  const p = parseParamsOf(text);
  if (!p || !MEDIA_TYPE_RE.test(p.value)) return undefined;
  return { type: p.value.toLowerCase(), params: p.params };
}

/** Parses a Content-Disposition value (`recipient-list; handling=optional`); undefined when malformed. */
export function parseDisposition(text: string): Disposition | undefined {
  const p = parseParamsOf(text);
  if (!p || !DISPOSITION_RE.test(p.value)) return undefined;
  return { value: p.value.toLowerCase(), params: p.params };
}

interface Delimiter {
  /** Where the part before it ends: the line break preceding the delimiter belongs to the delimiter. */
  start: number;
  /** Just past the delimiter line (its line break included). */
  next: number;
  close: boolean;
}

/**
 * The next delimiter line at or after `from`. Per the implementors' note of RFC 2046 5.1.1, a line
 * that begins with `--boundary` is a delimiter whatever follows on it (transport padding is ignored).
 */
function findDelimiter(s: string, dash: string, from: number): Delimiter | undefined {
  let k = s.indexOf(dash, from);
  while (k >= 0) {
    if (k === 0 || s.charCodeAt(k - 1) === 10 /* \n */) {
      let start = k;
      if (k > from && s.charCodeAt(k - 1) === 10) {
        start = k - 1;
        if (start > from && s.charCodeAt(start - 1) === 13 /* \r */) start--;
      }
      const after = k + dash.length;
      const close = s.startsWith('--', after);
      const nl = s.indexOf('\n', after);
      return { start, next: nl < 0 ? s.length : nl + 1, close };
    }
    k = s.indexOf(dash, k + 1);
  }
  return undefined;
}

function parsePart(text: string, n: number): MimePart {
  let headerEnd: number;
  let bodyStart: number;
  if (text.startsWith('\n')) {
    headerEnd = 0;
    bodyStart = 1;
  } else if (text.startsWith('\r\n')) {
    headerEnd = 0;
    bodyStart = 2;
  } else {
    const m = /\n\r?\n/.exec(text);
    if (!m) fail(`part ${n} has no empty line after its headers`);
    headerEnd = m.index;
    bodyStart = m.index + m[0].length;
  }

  const headers: Array<[string, string]> = [];
  if (headerEnd > 0) {
    for (const raw of text.slice(0, headerEnd).split('\n')) {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      const c = line.charCodeAt(0);
      if (c === 32 || c === 9) {
        // Folded continuation: joins the previous field with one space.
        const last = headers[headers.length - 1];
        if (!last) fail(`part ${n} starts with a continuation line`);
        const more = line.trim();
        if (more !== '') last[1] = last[1] === '' ? more : `${last[1]} ${more}`;
        continue;
      }
      const colon = line.indexOf(':');
      const name = colon < 0 ? '' : line.slice(0, colon).trimEnd();
      if (!FIELD_NAME_RE.test(name)) fail(`malformed header line in part ${n}`);
      headers.push([name, line.slice(colon + 1).trim()]);
    }
  }

  const find = (key: string): string | undefined => headers.find(([h]) => h.toLowerCase() === key)?.[1];
  const ctText = find('content-type');
  let contentType: MediaType | undefined;
  if (ctText !== undefined) {
    contentType = parseMediaType(ctText);
    if (!contentType) fail(`malformed Content-Type in part ${n}`);
  }
  const cdText = find('content-disposition');
  let disposition: Disposition | undefined;
  if (cdText !== undefined) {
    disposition = parseDisposition(cdText);
    if (!disposition) fail(`malformed Content-Disposition in part ${n}`);
  }
  return new MimePart(headers, text.slice(bodyStart), contentType, find('content-id'), disposition);
}

/**
 * Parses a multipart body. `contentTypeHeader` is the Content-Type value of the message (or of the
 * enclosing part); its media type must be multipart/* with a valid boundary. Preamble and epilogue
 * are ignored; CRLF and bare LF line endings are both accepted. Throws {@link MultipartParseError}.
 */
export function parseMultipart(body: string, contentTypeHeader: string): MultipartBody {
  const mt = parseMediaType(contentTypeHeader);
  if (!mt) fail('malformed Content-Type');
  if (!mt.type.startsWith('multipart/')) fail('not a multipart media type');
  const boundary = mt.params.get('boundary');
  if (boundary === undefined) fail('missing boundary parameter');
  if (!isValidBoundary(boundary)) fail('invalid boundary parameter');

  const dash = '--' + boundary;
  const first = findDelimiter(body, dash, 0);
  if (!first) fail('no boundary delimiter');
  if (first.close) fail('no body parts');
  const parts: MimePart[] = [];
  let pos = first.next;
  for (;;) {
    const d = findDelimiter(body, dash, pos);
    if (!d) fail('missing closing boundary delimiter');
    if (parts.length === MAX_PARTS) fail(`more than ${MAX_PARTS} parts`);
    parts.push(parsePart(body.slice(pos, d.start), parts.length + 1));
    if (d.close) break;
    pos = d.next;
  }
  return { mediaType: mt.type, subtype: mt.type.slice('multipart/'.length), params: mt.params, boundary, parts };
}

/** Content-ID without its angle brackets, for comparing with a `start` parameter. */
function bareId(id: string): string {
  const t = id.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1).trim() : t;
}

/**
 * The root part of a multipart/related body (RFC 2387 3.2): the part whose Content-ID is the
 * `start` parameter, or the first part when there is no `start`. Undefined when `start` names no part.
 */
export function relatedRoot(mp: MultipartBody): MimePart | undefined {
  const start = mp.params.get('start');
  if (start === undefined) return mp.parts[0];
  const want = bareId(start);
  return mp.parts.find((p) => p.contentId !== undefined && bareId(p.contentId) === want);
}

/** True when `--boundary` occurs anywhere in the parts (so it could be taken for a delimiter). */
function collides(boundary: string, parts: readonly PartInit[]): boolean {
  const dash = '--' + boundary;
  for (const p of parts) {
    if (p.body.includes(dash)) return true;
    for (const [n, v] of p.headers) if (n.includes(dash) || v.includes(dash)) return true;
  }
  return false;
}

/**
 * A boundary that does not occur in any part: derived from a hash of `seed` and the parts, so the
 * same input always gives the same boundary and content cannot be crafted to contain it.
 */
export function pickBoundary(parts: readonly PartInit[], seed = ''): string {
  const h = createHash('sha256');
  h.update(`${seed}\0`);
  for (const p of parts) {
    for (const [n, v] of p.headers) h.update(`${n}:${v}\n`);
    h.update(`\n${p.body}\0`);
  }
  const base = h.digest('hex');
  for (let i = 0; i < 64; i++) {
    const candidate = 'mp-' + createHash('sha256').update(`${base}:${i}`).digest('hex').slice(0, 32);
    if (!collides(candidate, parts)) return candidate;
  }
  // 64 independent 128-bit values all present in the content: not a realistic input.
  throw new Error('no usable multipart boundary found');
}

function formatBoundary(b: string): string {
  return BOUNDARY_TOKEN_RE.test(b) ? b : quote(b);
}

/**
 * Builds a multipart body with CRLF line endings and its Content-Type value. Throws TypeError on
 * invalid input: no parts, too many parts, a bad or colliding boundary, header names that are not
 * field names, header values with CR/LF, multipart/related without `type`, `type`/`start` on
 * multipart/mixed, or a `start` that is no part's Content-ID.
 */
export function buildMultipart(init: BuildMultipartInit): { contentType: string; body: string } {
  const { parts, subtype } = init;
  if (parts.length === 0) throw new TypeError('a multipart body needs at least one part');
  if (parts.length > MAX_PARTS) throw new TypeError(`a multipart body has at most ${MAX_PARTS} parts`);
  for (const p of parts) {
    for (const [n, v] of p.headers) {
      if (!FIELD_NAME_RE.test(n)) throw new TypeError(`invalid part header name ${JSON.stringify(n)}`);
      if (/[\r\n]/.test(v)) throw new TypeError(`part header ${n} contains a line break`);
    }
  }

  let contentType = `multipart/${subtype}`;
  if (subtype === 'related') {
    if (init.type === undefined || !MEDIA_TYPE_RE.test(init.type)) {
      throw new TypeError('multipart/related needs a type parameter (the root media type)');
    }
    // RFC 2387: both values contain tspecials ('/', '<', '@'), so they are always quoted.
    contentType += `;type=${quote(init.type)}`;
    if (init.start !== undefined) {
      const want = bareId(init.start);
      const named = parts.some((p) =>
        p.headers.some(([n, v]) => n.toLowerCase() === 'content-id' && bareId(v) === want),
      );
      if (!named) throw new TypeError(`start ${JSON.stringify(init.start)} is not the Content-ID of a part`);
      contentType += `;start=${quote(init.start)}`;
    }
  } else if (init.type !== undefined || init.start !== undefined) {
    throw new TypeError('type and start apply to multipart/related only');
  }

  let boundary = init.boundary;
  if (boundary === undefined) {
    boundary = pickBoundary(parts);
  } else {
    if (!isValidBoundary(boundary)) throw new TypeError(`invalid multipart boundary ${JSON.stringify(boundary)}`);
    if (collides(boundary, parts)) throw new TypeError('the multipart boundary occurs in a part');
  }
  contentType += `;boundary=${formatBoundary(boundary)}`;

  const out: string[] = [];
  for (const p of parts) {
    out.push(`--${boundary}\r\n`);
    for (const [n, v] of p.headers) out.push(`${n}: ${v}\r\n`);
    // Empty line, content, then the CRLF that belongs to the next delimiter.
    out.push('\r\n', p.body, '\r\n');
  }
  out.push(`--${boundary}--\r\n`);
  return { contentType, body: out.join('') };
}
