/**
 * The project's one XML layer: a guarded parser of our own that builds the tree in one pass
 * (in the element format xml-js made familiar), a serializer, and XML Namespaces 1.0 helpers.
 *
 * Pure: no I/O.
 *
 * Why our own: the parser must refuse what a general parser lets through (any DOCTYPE or
 * markup declaration, entities beyond the five predefined ones, deep nesting), so every
 * document was already scanned once by our checks before xml-js (and its sax) scanned it a
 * second time. The checks now build the tree as they go: one pass, about three times faster
 * on presence documents (scripts/bench-xml-parse.mjs), with the same refusals (the unit tests
 * in test/unit/xml-tree.test.ts and the hostile inputs of the XCAP and PIDF tests).
 *
 * Parsing is done in two stages:
 *  1. Input checks: size limit, strict UTF-8 decoding, BOM removal, line-end
 *     normalisation (CR LF / CR -> LF, XML 1.0 section 2.11), XML 1.0 character
 *     legality.
 *  2. One scan of the text that checks and builds at once: any markup declaration
 *     (`<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, `<!ATTLIST`, `<!NOTATION`) is refused
 *     ('doctype-forbidden'), so no entity can ever be defined, expanded or fetched;
 *     references other than the five predefined entities and numeric character references
 *     are refused; the nesting depth is enforced ('too-deep'); tag balance, a single root,
 *     duplicate attributes, '<' in attribute values, ']]>' in character data, misplaced XML
 *     declarations and QName syntax are checked. Attribute values get XML 1.0 section 3.3.3
 *     normalisation (literal TAB / LF -> space). Then namespace well-formedness is checked
 *     over the tree (undefined prefixes on elements or attributes, reserved prefixes, empty
 *     prefixed declarations, duplicate expanded attribute names).
 *
 * Whitespace rule (applies to every element): whitespace-only text nodes are
 * dropped from an element's children unless that element also has a text or
 * CDATA child with non-whitespace content (mixed content keeps all of its
 * text exactly). So `<a>\n  <b/>\n</a>` parses to `a` with the single child `b`,
 * `<a>  </a>` parses to an empty `a`, and `<a>x <b/> y</a>` keeps `x `, ` y`.
 * Non-whitespace text is never trimmed.
 *
 * Only the root element and the XML declaration are kept from the document;
 * comments and processing instructions outside the root are dropped.
 *
 * Attribute names are own properties of a plain object: always read them with
 * `attr()` / `Object.hasOwn`, never with `el.attributes[name]` alone (names
 * like `constructor` would hit Object.prototype). The attribute name
 * `__proto__` is refused as not-well-formed.
 */

// ---------------------------------------------------------------------------
// Tree model (xml-js non-compact format)
// ---------------------------------------------------------------------------

export interface XmlElement {
  type: 'element';
  /** Qualified name as written, e.g. `cp:rule`. */
  name: string;
  /** Attributes by qualified name, including `xmlns` / `xmlns:p` declarations. */
  attributes?: Record<string, string>;
  elements?: XmlNode[];
}

export type XmlNode =
  | XmlElement
  | { type: 'text'; text: string }
  | { type: 'cdata'; cdata: string }
  | { type: 'comment'; comment: string }
  | { type: 'instruction'; name: string; instruction: string };

export interface XmlDocument {
  root: XmlElement;
  declaration?: { attributes?: Record<string, string> };
}

export type XmlErrorKind = 'not-well-formed' | 'not-utf-8' | 'doctype-forbidden' | 'too-large' | 'too-deep';

export class XmlError extends Error {
  readonly kind: XmlErrorKind;
  constructor(kind: XmlErrorKind, message: string) {
    super(message);
    this.name = 'XmlError';
    this.kind = kind;
  }
}

export interface XmlLimits {
  /** Maximum size of the input in bytes (UTF-8). Default 1 MiB. */
  maxBytes?: number;
  /** Maximum element nesting depth (root = 1). Default 64. */
  maxDepth?: number;
}

export const DEFAULT_MAX_BYTES = 1024 * 1024;
export const DEFAULT_MAX_DEPTH = 64;

/** The namespace URIs the project uses. */
export const xmlNamespaces = {
  xml: 'http://www.w3.org/XML/1998/namespace',
  xmlns: 'http://www.w3.org/2000/xmlns/',
  resourceLists: 'urn:ietf:params:xml:ns:resource-lists',
  rlsServices: 'urn:ietf:params:xml:ns:rls-services',
  commonPolicy: 'urn:ietf:params:xml:ns:common-policy',
  presRules: 'urn:ietf:params:xml:ns:pres-rules',
  pidf: 'urn:ietf:params:xml:ns:pidf',
  dataModel: 'urn:ietf:params:xml:ns:pidf:data-model',
  rpid: 'urn:ietf:params:xml:ns:pidf:rpid',
  caps: 'urn:ietf:params:xml:ns:pidf:caps',
  xcapError: 'urn:ietf:params:xml:ns:xcap-error',
  xcapCaps: 'urn:ietf:params:xml:ns:xcap-caps',
  xcapDiff: 'urn:ietf:params:xml:ns:xcap-diff',
  omaXcapDirectory: 'urn:oma:xml:xdm:xcap-directory',
  omaGroups: 'urn:oma:xml:poc:list-service',
  omaPresRules: 'urn:oma:xml:xdm:common-policy',
  watcherinfo: 'urn:ietf:params:xml:ns:watcherinfo',
  rlmi: 'urn:ietf:params:xml:ns:rlmi',
  pidfDiff: 'urn:ietf:params:xml:ns:pidf-diff',
} as const;

// ---------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------

const NAME_START =
  'A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D' +
  '\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\u{10000}-\\u{EFFFF}';
const NAME_CHAR = NAME_START + '\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040';
/** NCName (a Name without colons). */
export const NCNAME_RE = new RegExp(`^[${NAME_START}][${NAME_CHAR}]*$`, 'u');
const NCNAME_SRC = `[${NAME_START}][${NAME_CHAR}]*`;
/** A Name (colons allowed) at the start of a sticky scan. */
const NAME_STICKY = new RegExp(`[${NAME_START}:][${NAME_CHAR}:]*`, 'uy');
const QNAME_RE = new RegExp(`^(?:${NCNAME_SRC}:)?${NCNAME_SRC}$`, 'u');

/** Names already found to be QNames: documents repeat the same few names over and over. */
const KNOWN_QNAMES = new Set<string>();
const KNOWN_QNAMES_MAX = 10_000;

/** True when `s` is a QName (`prefix:local` or `local`, XML Namespaces 1.0). */
export function isQName(s: string): boolean {
  if (KNOWN_QNAMES.has(s)) return true;
  if (!QNAME_RE.test(s)) return false;
  if (KNOWN_QNAMES.size < KNOWN_QNAMES_MAX) KNOWN_QNAMES.add(s);
  return true;
}

/** True when `s` is an NCName. */
export function isNCName(s: string): boolean {
  return NCNAME_RE.test(s);
}

// Characters that XML 1.0 does not allow anywhere (also not as references).
const ILLEGAL_CHAR_RE =
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ILLEGAL_CHAR_RE_G = new RegExp(ILLEGAL_CHAR_RE.source, 'g');

function legalCodePoint(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

const WS_RE = /^[ \t\n\r]*$/;
function isWs(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

function nwf(message: string): never {
  throw new XmlError('not-well-formed', message);
}

/** Validates every `&` in a run of character data or an attribute value. */
function checkReferences(s: string, where: string): void {
  let k = s.indexOf('&');
  while (k !== -1) {
    const semi = s.indexOf(';', k + 1);
    if (semi === -1) nwf(`unterminated reference in ${where}`);
    const ref = s.slice(k + 1, semi);
    if (ref === 'amp' || ref === 'lt' || ref === 'gt' || ref === 'quot' || ref === 'apos') {
      // predefined
    } else if (/^#[0-9]{1,7}$/.test(ref) || /^#x[0-9a-fA-F]{1,6}$/.test(ref)) {
      const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!legalCodePoint(cp)) nwf(`character reference &${ref}; is not a legal XML character`);
    } else {
      // Any other entity would need a DTD declaration, which we never accept.
      nwf(`undefined entity reference &${ref.slice(0, 40)}; in ${where}`);
    }
    k = s.indexOf('&', semi + 1);
  }
}

/**
 * Decodes the references in an attribute value or character data taken from
 * XML text (the five predefined entities and numeric character references).
 * Throws XmlError 'not-well-formed' for any other '&', for '<', and for
 * characters XML 1.0 does not allow.
 */
export function decodeXmlReferences(s: string): string {
  if (s.includes('<')) nwf("'<' in a value");
  if (ILLEGAL_CHAR_RE.test(s)) nwf('illegal XML character');
  checkReferences(s, 'value');
  return expandReferences(s);
}

/** Replaces the references of validated text by the characters they stand for. */
function expandReferences(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (_m, r: string) => {
    switch (r) {
      case 'amp':
        return '&';
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(r[1] === 'x' ? parseInt(r.slice(2), 16) : parseInt(r.slice(1), 10));
    }
  });
}

function readName(s: string, pos: number): string | undefined {
  NAME_STICKY.lastIndex = pos;
  const m = NAME_STICKY.exec(s);
  return m ? m[0] : undefined;
}

const MARKUP_DECL_RE = /^<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)/i;

/** An element being built, with what the whitespace rule needs to know at its end tag. */
interface Open {
  el: XmlElement;
  kids: XmlNode[];
  /** It has a text or CDATA child with non-whitespace content: keep all of its text. */
  mixed: boolean;
}

/** Character data with its references decoded (validated first; '<' cannot occur here). */
function decodeText(text: string, where: string): string {
  if (!text.includes('&')) return text;
  checkReferences(text, where);
  return expandReferences(text);
}

/** Adds a text run to the element being built, merged with a text run just before it. */
function addText(open: Open, text: string): void {
  if (!open.mixed && !WS_RE.test(text)) open.mixed = true;
  const last = open.kids[open.kids.length - 1];
  if (last && last.type === 'text') last.text += text;
  else open.kids.push({ type: 'text', text });
}

/** Ends an element: the whitespace rule, then its children are fixed. */
function close(open: Open): void {
  const kids = open.mixed ? open.kids : open.kids.filter((k) => k.type !== 'text' || !WS_RE.test(k.text));
  if (kids.length > 0) open.el.elements = kids;
}

/**
 * The one pass over the text (see the module comment): every well-formedness rule is checked
 * and the tree is built as the markup is read, so no second parser runs over the document.
 */
function scanDocument(s: string, maxDepth: number): XmlDocument {
  const stack: Open[] = [];
  let root: XmlElement | undefined;
  let declaration: XmlDocument['declaration'];
  let rootClosed = false;
  let i = 0;

  // XML declaration: only at the very start.
  if (/^<\?xml[ \t\n]/.test(s) || s.startsWith('<?xml?>')) {
    const end = s.indexOf('?>');
    if (end === -1) nwf('unterminated XML declaration');
    const body = s.slice(5, end);
    if (!/^(?:[ \t\n]+(?:version|encoding|standalone)[ \t\n]*=[ \t\n]*(?:"[^"<&]*"|'[^'<&]*'))+[ \t\n]*$/.test(body)) {
      nwf('malformed XML declaration');
    }
    const ver = /version[ \t\n]*=[ \t\n]*["']([^"']*)["']/.exec(body);
    if (!ver || !/^1\.[0-9]+$/.test(ver[1] ?? '')) nwf('XML declaration without a supported version');
    const enc = /encoding[ \t\n]*=[ \t\n]*["']([^"']*)["']/.exec(body);
    if (enc && !/^utf-?8$/i.test(enc[1] ?? '')) {
      throw new XmlError('not-utf-8', `document declares encoding ${JSON.stringify(enc[1])}; only UTF-8 is accepted`);
    }
    const attributes: Record<string, string> = {};
    for (const m of body.matchAll(/(version|encoding|standalone)[ \t\n]*=[ \t\n]*(?:"([^"]*)"|'([^']*)')/g))
      attributes[m[1]!] = m[2] ?? m[3] ?? '';
    declaration = { attributes };
    i = end + 2;
  }

  while (i < s.length) {
    const lt = s.indexOf('<', i);
    const text = s.slice(i, lt === -1 ? s.length : lt);
    const top = stack[stack.length - 1];
    if (text.length > 0) {
      if (!top) {
        if (!WS_RE.test(text)) nwf(root ? 'text after the root element' : 'text before the root element');
      } else {
        if (text.includes(']]>')) nwf("']]>' in character data");
        addText(top, decodeText(text, 'character data'));
      }
    }
    if (lt === -1) break;

    if (s.startsWith('<!--', lt)) {
      const end = s.indexOf('-->', lt + 4);
      if (end === -1) nwf('unterminated comment');
      const body = s.slice(lt + 4, end);
      if (body.includes('--') || body.endsWith('-')) nwf("'--' inside a comment");
      // comments outside the root are not kept
      if (top) top.kids.push({ type: 'comment', comment: body });
      i = end + 3;
    } else if (s.startsWith('<![CDATA[', lt)) {
      if (!top) nwf('CDATA section outside the root element');
      const end = s.indexOf(']]>', lt + 9);
      if (end === -1) nwf('unterminated CDATA section');
      const cdata = s.slice(lt + 9, end);
      if (!top.mixed && !WS_RE.test(cdata)) top.mixed = true;
      top.kids.push({ type: 'cdata', cdata });
      i = end + 3;
    } else if (s.startsWith('<!', lt)) {
      if (MARKUP_DECL_RE.test(s.slice(lt, lt + 64))) {
        throw new XmlError('doctype-forbidden', 'DOCTYPE and markup declarations are not accepted');
      }
      nwf('unexpected markup declaration');
    } else if (s.startsWith('<?', lt)) {
      const target = readName(s, lt + 2);
      if (target === undefined) nwf('processing instruction without a target');
      if (target.toLowerCase() === 'xml') nwf('XML declaration not at the start of the document');
      if (target.includes(':')) nwf('colon in a processing instruction target');
      const end = s.indexOf('?>', lt + 2 + target.length);
      if (end === -1) nwf('unterminated processing instruction');
      const after = s[lt + 2 + target.length];
      if (end !== lt + 2 + target.length && !isWs(after)) nwf('malformed processing instruction');
      if (top)
        top.kids.push({
          type: 'instruction',
          name: target,
          instruction: s.slice(lt + 2 + target.length, end).replace(/^[ \t\n]+/, ''),
        });
      i = end + 2;
    } else if (s[lt + 1] === '/') {
      const name = readName(s, lt + 2);
      if (name === undefined) nwf('malformed end tag');
      let k = lt + 2 + name.length;
      while (isWs(s[k])) k++;
      if (s[k] !== '>') nwf(`malformed end tag </${name}>`);
      const open = stack.pop();
      if (open?.el.name !== name)
        nwf(
          open === undefined
            ? `end tag </${name}> without a start tag`
            : `end tag </${name}> does not match <${open.el.name}>`,
        );
      close(open);
      if (stack.length === 0) rootClosed = true;
      i = k + 1;
    } else {
      // Start tag or empty-element tag.
      const name = readName(s, lt + 1);
      if (name === undefined) nwf('malformed start tag');
      if (!isQName(name)) nwf(`element name ${JSON.stringify(name)} is not a QName`);
      if (!top && rootClosed) nwf('more than one root element');
      if (stack.length + 1 > maxDepth) throw new XmlError('too-deep', `element nesting deeper than ${maxDepth}`);
      const el: XmlElement = { type: 'element', name };
      let attributes: Record<string, string> | undefined;
      let k = lt + 1 + name.length;
      let empty = false;
      for (;;) {
        const hadWs = isWs(s[k]);
        while (isWs(s[k])) k++;
        const c = s[k];
        if (c === undefined) nwf(`unterminated start tag <${name}>`);
        if (c === '>') {
          k++;
          break;
        }
        if (c === '/') {
          if (s[k + 1] !== '>') nwf(`malformed empty-element tag <${name}/>`);
          empty = true;
          k += 2;
          break;
        }
        if (!hadWs) nwf(`missing whitespace before an attribute in <${name}>`);
        const an = readName(s, k);
        if (an === undefined) nwf(`malformed attribute in <${name}>`);
        if (!isQName(an)) nwf(`attribute name ${JSON.stringify(an)} is not a QName`);
        if (an === '__proto__') nwf('attribute name __proto__ is not accepted');
        attributes ??= {};
        if (Object.hasOwn(attributes, an)) nwf(`duplicate attribute ${an} in <${name}>`);
        k += an.length;
        while (isWs(s[k])) k++;
        if (s[k] !== '=') nwf(`attribute ${an} without a value`);
        k++;
        while (isWs(s[k])) k++;
        const q = s[k];
        if (q !== '"' && q !== "'") nwf(`unquoted value for attribute ${an}`);
        const vEnd = s.indexOf(q, k + 1);
        if (vEnd === -1) nwf(`unterminated value for attribute ${an}`);
        let value = s.slice(k + 1, vEnd);
        if (value.includes('<')) nwf(`'<' in the value of attribute ${an}`);
        // XML 1.0 section 3.3.3: literal TAB and LF become spaces (references keep theirs)
        if (/[\t\n]/.test(value)) value = value.replace(/[\t\n]/g, ' ');
        attributes[an] = decodeText(value, `attribute ${an}`);
        k = vEnd + 1;
      }
      if (attributes) el.attributes = attributes;
      if (top) top.kids.push(el);
      else root = el;
      if (empty) {
        if (!top) rootClosed = true;
      } else {
        stack.push({ el, kids: [], mixed: false });
      }
      i = k;
    }
  }
  if (!root) nwf('no root element');
  if (stack.length > 0) nwf(`unclosed element <${stack[stack.length - 1]!.el.name}>`);
  const doc: XmlDocument = { root };
  if (declaration) doc.declaration = declaration;
  return doc;
}

/** Checks namespace well-formedness of the whole tree (XML Namespaces 1.0). */
function checkNamespaces(el: XmlElement, parent: NamespaceScope): void {
  const scope = parent.child(el);
  const prefix = prefixOf(el);
  if (prefix === 'xmlns') nwf(`element ${el.name} uses the reserved prefix xmlns`);
  if (prefix !== undefined && scope.resolve(prefix) === undefined)
    nwf(`undefined namespace prefix ${prefix} on element ${el.name}`);
  if (el.attributes) {
    const expanded = new Set<string>();
    for (const an of Object.keys(el.attributes)) {
      const v = el.attributes[an] ?? '';
      if (an === 'xmlns') {
        if (v === xmlNamespaces.xml || v === xmlNamespaces.xmlns) nwf('default namespace bound to a reserved URI');
        continue;
      }
      const colon = an.indexOf(':');
      const ap = colon === -1 ? undefined : an.slice(0, colon);
      const al = colon === -1 ? an : an.slice(colon + 1);
      if (ap === 'xmlns') {
        if (al === 'xmlns') nwf('the xmlns prefix cannot be declared');
        if (v === '') nwf(`empty namespace name for prefix ${al}`);
        if (al === 'xml' ? v !== xmlNamespaces.xml : v === xmlNamespaces.xml || v === xmlNamespaces.xmlns) {
          nwf(`illegal binding of prefix ${al} to ${v}`);
        }
        continue;
      }
      let ns = '';
      if (ap !== undefined) {
        const uri = scope.resolve(ap);
        if (uri === undefined) nwf(`undefined namespace prefix ${ap} on attribute ${an}`);
        ns = uri;
      }
      const key = `${ns}\u0000${al}`;
      if (expanded.has(key)) nwf(`duplicate attribute {${ns}}${al} on element ${el.name}`);
      expanded.add(key);
    }
  }
  for (const c of el.elements ?? []) {
    if (c.type === 'element') checkNamespaces(c, scope);
  }
}

/**
 * Parses a complete XML document (see the module comment for every rule).
 * Throws XmlError.
 */
export function parseXml(input: string | Buffer, limits: XmlLimits = {}): XmlDocument {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  let text: string;
  if (typeof input === 'string') {
    // Cheap upper bound first so huge strings are not measured twice.
    if (input.length > maxBytes || Buffer.byteLength(input, 'utf8') > maxBytes) {
      throw new XmlError('too-large', `document larger than ${maxBytes} bytes`);
    }
    text = input;
  } else {
    if (input.length > maxBytes) throw new XmlError('too-large', `document larger than ${maxBytes} bytes`);
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch {
      throw new XmlError('not-utf-8', 'document is not valid UTF-8');
    }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  text = text.replace(/\r\n?/g, '\n');
  const bad = ILLEGAL_CHAR_RE.exec(text);
  if (bad) {
    throw new XmlError(
      'not-well-formed',
      `illegal XML character U+${(bad[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`,
    );
  }

  const doc = scanDocument(text, maxDepth);
  checkNamespaces(doc.root, NamespaceScope.root());
  return doc;
}

// ---------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------

const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

/** Characters XML 1.0 cannot carry at all are replaced by U+FFFD. */
function scrub(s: string): string {
  return ILLEGAL_CHAR_RE.test(s) ? s.replace(ILLEGAL_CHAR_RE_G, '\uFFFD') : s;
}

/** Escapes character data: & < > and CR (kept as a reference so it survives parsing). */
export function escapeText(s: string): string {
  return scrub(s).replace(/[&<>\r]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&#13;'));
}

/** Escapes an attribute value for a double-quoted attribute: & < > " and TAB/LF/CR as references. */
export function escapeAttribute(s: string): string {
  return scrub(s).replace(/[&<>"\t\n\r]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case '\t':
        return '&#9;';
      case '\n':
        return '&#10;';
      default:
        return '&#13;';
    }
  });
}

function checkName(n: string, what: string): void {
  if (!isQName(n)) throw new XmlError('not-well-formed', `cannot serialize ${what} name ${JSON.stringify(n)}`);
}

function writeElement(el: XmlElement, out: string[]): void {
  checkName(el.name, 'element');
  out.push('<', el.name);
  if (el.attributes) {
    for (const k of Object.keys(el.attributes)) {
      const v = el.attributes[k];
      if (v === undefined) continue;
      checkName(k, 'attribute');
      out.push(' ', k, '="', escapeAttribute(String(v)), '"');
    }
  }
  const kids = el.elements ?? [];
  if (kids.length === 0) {
    out.push('/>');
    return;
  }
  out.push('>');
  for (const n of kids) {
    switch (n.type) {
      case 'element':
        writeElement(n, out);
        break;
      case 'text':
        out.push(escapeText(String(n.text)));
        break;
      case 'cdata':
        out.push('<![CDATA[', scrub(String(n.cdata)).replace(/\]\]>/g, ']]]]><![CDATA[>'), ']]>');
        break;
      case 'comment': {
        let c = scrub(String(n.comment)).replace(/--/g, '- -');
        if (c.endsWith('-')) c += ' ';
        out.push('<!--', c, '-->');
        break;
      }
      case 'instruction': {
        if (!isNCName(n.name) || n.name.toLowerCase() === 'xml') {
          throw new XmlError('not-well-formed', `cannot serialize processing instruction ${JSON.stringify(n.name)}`);
        }
        const body = scrub(String(n.instruction)).replace(/\?>/g, '? >');
        out.push('<?', n.name, body ? ' ' + body : '', '?>');
        break;
      }
    }
  }
  out.push('</', el.name, '>');
}

/**
 * Serializes a document or a single element as UTF-8 XML text (no added
 * whitespace). `declaration` defaults to true for an XmlDocument and false
 * for a bare element; the declaration written is always
 * `<?xml version="1.0" encoding="UTF-8"?>`.
 */
export function serializeXml(doc: XmlDocument | XmlElement, opts: { declaration?: boolean } = {}): string {
  const isElement = (doc as XmlElement).type === 'element';
  const root = isElement ? (doc as XmlElement) : (doc as XmlDocument).root;
  const decl = opts.declaration ?? !isElement;
  const out: string[] = [];
  if (decl) out.push(XML_DECLARATION);
  writeElement(root, out);
  return out.join('');
}

// ---------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------

/**
 * In-scope namespace bindings. Immutable; `child(el)` overlays the
 * declarations of `el`. Overlaying the same element twice is harmless, so a
 * scope that already includes `el` may be passed where the scope of its parent
 * is expected.
 *
 * The default namespace is stored under the prefix '' (empty string) in
 * `bindings()`; `xmlns=""` undeclares it. The `xml` prefix is always bound
 * (but is listed by `bindings()` only when explicitly declared).
 */
export class NamespaceScope {
  private constructor(private readonly map: ReadonlyMap<string, string>) {}

  static root(): NamespaceScope {
    return new NamespaceScope(new Map());
  }

  /** A scope from explicit bindings (prefix '' = default namespace). */
  static fromBindings(bindings: ReadonlyMap<string, string> | Record<string, string>): NamespaceScope {
    const m = new Map<string, string>(bindings instanceof Map ? bindings : Object.entries(bindings));
    return new NamespaceScope(m);
  }

  /** The scope inside `el`: this scope plus el's xmlns declarations. */
  child(el: XmlElement): NamespaceScope {
    const attrs = el.attributes;
    if (!attrs) return this;
    let m: Map<string, string> | undefined;
    for (const k of Object.keys(attrs)) {
      let prefix: string;
      if (k === 'xmlns') prefix = '';
      else if (k.startsWith('xmlns:')) prefix = k.slice(6);
      else continue;
      m ??= new Map(this.map);
      const v = attrs[k] ?? '';
      if (v === '') m.delete(prefix);
      else m.set(prefix, v);
    }
    return m ? new NamespaceScope(m) : this;
  }

  /** Namespace URI bound to `prefix`; undefined prefix (or '') = the default namespace. */
  resolve(prefix: string | undefined): string | undefined {
    const p = prefix ?? '';
    if (p === 'xml') return this.map.get('xml') ?? xmlNamespaces.xml;
    if (p === 'xmlns') return xmlNamespaces.xmlns;
    return this.map.get(p);
  }

  /**
   * Expands an element QName: unprefixed names take the default namespace.
   * An unbound prefix gives `ns: undefined` (callers that need to tell this
   * apart from "no namespace" check `resolve(prefix)` themselves).
   */
  expand(qname: string): { ns: string | undefined; local: string } {
    const colon = qname.indexOf(':');
    if (colon === -1) return { ns: this.resolve(undefined), local: qname };
    return { ns: this.resolve(qname.slice(0, colon)), local: qname.slice(colon + 1) };
  }

  /** Expands an attribute QName: unprefixed attributes are in no namespace. */
  expandAttribute(qname: string): { ns: string | undefined; local: string } {
    const colon = qname.indexOf(':');
    if (colon === -1) return { ns: undefined, local: qname };
    return { ns: this.resolve(qname.slice(0, colon)), local: qname.slice(colon + 1) };
  }

  /** A prefix bound to `uri` in this scope ('' for the default namespace), preferring non-empty prefixes. */
  prefixFor(uri: string): string | undefined {
    let dflt: string | undefined;
    for (const [p, u] of this.map) {
      if (u !== uri) continue;
      if (p === '') dflt = '';
      else return p;
    }
    if (dflt !== undefined) return dflt;
    if (uri === xmlNamespaces.xml) return 'xml';
    return undefined;
  }

  /** All in-scope bindings, prefix -> URI ('' = default namespace). A fresh copy. */
  bindings(): Map<string, string> {
    return new Map(this.map);
  }
}

/** Local part of an element's (or any) qualified name. */
export function localName(el: XmlElement | string): string {
  const n = typeof el === 'string' ? el : el.name;
  const colon = n.indexOf(':');
  return colon === -1 ? n : n.slice(colon + 1);
}

/** Prefix of an element's (or any) qualified name; undefined when unprefixed. */
export function prefixOf(el: XmlElement | string): string | undefined {
  const n = typeof el === 'string' ? el : el.name;
  const colon = n.indexOf(':');
  return colon === -1 ? undefined : n.slice(0, colon);
}

/** Element children, in document order. */
export function childElements(el: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (const n of el.elements ?? []) if (n.type === 'element') out.push(n);
  return out;
}

/** Concatenated text and CDATA of the element and all of its descendants. */
export function textContent(el: XmlElement): string {
  let s = '';
  for (const n of el.elements ?? []) {
    if (n.type === 'text') s += n.text;
    else if (n.type === 'cdata') s += n.cdata;
    else if (n.type === 'element') s += textContent(n);
  }
  return s;
}

/** Attribute value by qualified name as written (own properties only). */
export function attr(el: XmlElement, qname: string): string | undefined {
  const a = el.attributes;
  return a && Object.hasOwn(a, qname) ? a[qname] : undefined;
}

/** Expanded name of `el`, given the scope of its parent (or its own scope). */
export function expandedName(el: XmlElement, scope: NamespaceScope): { ns: string | undefined; local: string } {
  return scope.child(el).expand(el.name);
}

/**
 * Attribute value by expanded name (ns undefined = unprefixed attribute).
 * `scope` is the scope of el's parent or of el itself.
 */
export function attrNS(
  el: XmlElement,
  scope: NamespaceScope,
  ns: string | undefined,
  local: string,
): string | undefined {
  const a = el.attributes;
  if (!a) return undefined;
  const s = scope.child(el);
  for (const k of Object.keys(a)) {
    if (k === 'xmlns' || k.startsWith('xmlns:')) continue;
    const e = s.expandAttribute(k);
    if (e.local === local && e.ns === ns) return a[k];
  }
  return undefined;
}

/**
 * Child elements of `el` with the expanded name {ns}local (ns undefined =
 * no namespace). `scope` may be the scope of el's parent or the scope inside
 * el (`parentScope.child(el)`): el's own declarations are applied either way,
 * and each child's own declarations are honoured.
 */
export function findChildren(
  el: XmlElement,
  scope: NamespaceScope,
  ns: string | undefined,
  local: string,
): XmlElement[] {
  const inner = scope.child(el);
  const out: XmlElement[] = [];
  for (const c of childElements(el)) {
    if (localName(c) !== local) continue;
    if (inner.child(c).expand(c.name).ns === ns) out.push(c);
  }
  return out;
}

/** First child element with the given expanded name, or undefined. */
export function findChild(
  el: XmlElement,
  scope: NamespaceScope,
  ns: string | undefined,
  local: string,
): XmlElement | undefined {
  return findChildren(el, scope, ns, local)[0];
}
