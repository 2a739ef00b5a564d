/**
 * Multiple-recipient MESSAGE (RFC 5365): a multipart/mixed body carrying the message to forward
 * and a URI list (RFC 4826 resource-lists, Content-Disposition recipient-list) whose entries carry
 * the RFC 5364 copyControl (to / cc / bcc) and anonymize attributes. Also the
 * recipient-list-history document each exploded copy carries.
 *
 * Pure: no I/O.
 */
import { aor, parseUri, type SipUri } from '../../sip/uri.js';
import {
  MultipartParseError,
  buildMultipart,
  parseMediaType,
  parseMultipart,
  pickBoundary,
  type MimePart,
  type PartInit,
} from '../../sip/multipart.js';
import {
  NamespaceScope,
  XmlError,
  attr,
  attrNS,
  childElements,
  findChild,
  parseXml,
  serializeXml,
  textContent,
  xmlNamespaces,
  type XmlElement,
} from '../../xml/xml-tree.js';

export type CopyControl = 'to' | 'cc' | 'bcc';

export interface Recipient {
  /** The entry's URI as written (trimmed). */
  uri: string;
  copy: CopyControl;
  anonymize: boolean;
  /** The entry's display-name, when present and not empty. */
  display?: string;
}

/** The message part to forward to each recipient. */
export interface ForwardedMessage {
  /** The part's Content-Type as written; `text/plain` when the part has none (RFC 2046 default). */
  contentType: string;
  body: string;
  /** The part's other header fields (Content-Type excluded), in order. */
  headers: Array<[string, string]>;
}

export interface RecipientListMessage {
  /** Distinct recipients in document order (nested lists flattened). */
  recipients: Recipient[];
  message: ForwardedMessage;
}

/** What {@link buildRecipientListMessage} and {@link recipientListHistory} accept for a recipient. */
export interface RecipientInit {
  uri: string;
  /** Default 'to' (RFC 5364). */
  copy?: CopyControl;
  anonymize?: boolean;
  display?: string;
}

export type RecipientListErrorCode = 400 | 403 | 415;

/**
 * A recipient-list MESSAGE the exploder must refuse. `code` is the SIP status to answer with,
 * `reason` a short phrase; for 415, `accept` is the value of the Accept header to send.
 */
export class RecipientListError extends Error {
  readonly code: RecipientListErrorCode;
  readonly reason: string;
  readonly accept: string | undefined;
  constructor(code: RecipientListErrorCode, reason: string, accept?: string) {
    super(reason);
    this.name = 'RecipientListError';
    this.code = code;
    this.reason = reason;
    this.accept = accept;
  }
}

/** No recipient list is ever accepted beyond this, whatever the configuration. */
export const MAX_RECIPIENTS_HARD = 1000;
export const COPY_CONTROL_NS = 'urn:ietf:params:xml:ns:copycontrol';
export const RESOURCE_LISTS_CONTENT_TYPE = 'application/resource-lists+xml';
export const RECIPIENT_LIST_DISPOSITION = 'recipient-list';
/** handling=optional: a recipient that does not understand the history still renders the message. */
export const RECIPIENT_LIST_HISTORY_DISPOSITION = 'recipient-list-history; handling=optional';
/** Stands in for anonymized recipients in the history (RFC 3323 anonymous URI). */
export const ANONYMOUS_URI = 'sip:anonymous@anonymous.invalid';

const RL = xmlNamespaces.resourceLists;

function refuse(code: RecipientListErrorCode, reason: string, accept?: string): never {
  throw new RecipientListError(code, reason, accept);
}

/**
 * Identity of a recipient for de-duplication: scheme and host compared case-insensitively, the
 * user part (percent-decoded) case-sensitively, port kept; URI parameters ignored (they do not
 * change who receives the copy). tel: numbers compare without visual separators.
 */
function recipientKey(u: SipUri): string {
  if (u.scheme === 'tel') return aor(u);
  const user = u.user === undefined ? '' : `${u.userDecoded ?? u.user}@`;
  return `${u.scheme}:${user}${u.host}${u.port === undefined ? '' : `:${u.port}`}`;
}

function parseCopy(value: string | undefined): CopyControl {
  if (value === undefined) return 'to';
  const v = value.trim();
  if (v === 'to' || v === 'cc' || v === 'bcc') return v;
  refuse(400, 'invalid copyControl value in the recipient list');
}

function parseAnonymize(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  refuse(400, 'invalid anonymize value in the recipient list');
}

/** Walks a resource-lists document, collecting distinct recipients; stops as soon as `limit` is passed. */
class Collector {
  readonly recipients: Recipient[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly limit: number,
    private readonly limitCode: RecipientListErrorCode,
  ) {}

  list(listEl: XmlElement, parentScope: NamespaceScope): void {
    const scope = parentScope.child(listEl);
    for (const c of childElements(listEl)) {
      const { ns, local } = scope.child(c).expand(c.name);
      if (ns !== RL) continue; // extension elements of other namespaces carry nothing we need
      switch (local) {
        case 'display-name':
          break;
        case 'list':
          this.list(c, scope);
          break;
        case 'entry':
          this.entry(c, scope);
          break;
        case 'entry-ref':
        case 'external':
          refuse(400, 'list references are not supported in a recipient list');
        default:
          refuse(400, `unexpected element ${local} in the recipient list`);
      }
    }
  }

  private entry(entryEl: XmlElement, scope: NamespaceScope): void {
    const raw = attr(entryEl, 'uri');
    if (raw === undefined) refuse(400, 'recipient list entry without a uri');
    const uri = raw.trim();
    let parsed: SipUri;
    try {
      // an im:/pres: URI (RFC 3860/3859) names the same address as sip:user@host: one key for both
      const imPres = /^(?:im|pres):([^@\s:;?]+@[^@\s;?]+)$/i.exec(uri);
      parsed = parseUri(imPres ? `sip:${imPres[1]}` : uri);
    } catch {
      refuse(400, 'recipient URIs must be sip, sips, tel, im or pres URIs');
    }
    const key = recipientKey(parsed);
    if (this.seen.has(key)) return; // first occurrence wins
    // Namespaced attributes per RFC 5364; the unprefixed spelling is honoured too, because
    // ignoring a mis-namespaced copyControl="bcc" would disclose a blind recipient.
    const copy = parseCopy(attrNS(entryEl, scope, COPY_CONTROL_NS, 'copyControl') ?? attr(entryEl, 'copyControl'));
    const anonymize = parseAnonymize(
      attrNS(entryEl, scope, COPY_CONTROL_NS, 'anonymize') ?? attr(entryEl, 'anonymize'),
    );
    const r: Recipient = { uri, copy, anonymize };
    const dn = findChild(entryEl, scope, RL, 'display-name');
    if (dn) {
      const display = textContent(dn).trim();
      if (display !== '') r.display = display;
    }
    this.seen.add(key);
    this.recipients.push(r);
    if (this.recipients.length > this.limit) refuse(this.limitCode, `too many recipients (max ${this.limit})`);
  }
}

function forwardedMessage(part: MimePart): ForwardedMessage {
  const headers: Array<[string, string]> = [];
  for (const [n, v] of part.headers) if (n.toLowerCase() !== 'content-type') headers.push([n, v]);
  return { contentType: part.header('content-type') ?? 'text/plain', body: part.body, headers };
}

/**
 * Parses the body of an RFC 5365 MESSAGE sent to the exploder. `contentType` is the request's
 * Content-Type value. `options.maxRecipients` is the operator's limit (403 when exceeded, if it is
 * below {@link MAX_RECIPIENTS_HARD}; the hard limit gives 400). Throws {@link RecipientListError}:
 * 415 for a body that is not multipart/mixed or a URI list that is not resource-lists, 400 for
 * anything malformed or missing.
 */
export function parseRecipientListMessage(
  body: string,
  contentType: string,
  options: { maxRecipients?: number } = {},
): RecipientListMessage {
  const configured = options.maxRecipients;
  if (configured !== undefined && (!Number.isInteger(configured) || configured < 0)) {
    throw new TypeError('maxRecipients must be a non-negative integer');
  }
  const useConfigured = configured !== undefined && configured < MAX_RECIPIENTS_HARD;
  const limit = useConfigured ? configured : MAX_RECIPIENTS_HARD;
  const limitCode: RecipientListErrorCode = useConfigured ? 403 : 400;

  const mt = parseMediaType(contentType);
  if (!mt) refuse(400, 'malformed Content-Type');
  if (mt.type !== 'multipart/mixed') refuse(415, 'a recipient-list MESSAGE must be multipart/mixed', 'multipart/mixed');

  let parts: MimePart[];
  try {
    parts = parseMultipart(body, contentType).parts;
  } catch (e) {
    if (e instanceof MultipartParseError) refuse(400, `malformed multipart body: ${e.reason}`);
    throw e;
  }

  const lists = parts.filter((p) => p.disposition?.value === RECIPIENT_LIST_DISPOSITION);
  const others = parts.filter((p) => p.disposition?.value !== RECIPIENT_LIST_DISPOSITION);
  if (lists.length === 0) refuse(400, 'missing recipient-list part');
  if (lists.length > 1) refuse(400, 'more than one recipient-list part');
  const listPart = lists[0] as MimePart;
  if (listPart.contentType?.type !== RESOURCE_LISTS_CONTENT_TYPE) {
    refuse(415, 'unsupported recipient-list format', RESOURCE_LISTS_CONTENT_TYPE);
  }
  if (others.length === 0) refuse(400, 'missing message part');
  if (others.length > 1) refuse(400, 'more than one message part');

  let root: XmlElement;
  try {
    root = parseXml(listPart.body).root;
  } catch (e) {
    if (e instanceof XmlError) refuse(400, 'malformed recipient list XML');
    throw e;
  }
  const top = NamespaceScope.root();
  const rootScope = top.child(root);
  const rootName = rootScope.expand(root.name);
  if (rootName.ns !== RL || rootName.local !== 'resource-lists')
    refuse(400, 'recipient list is not a resource-lists document');

  const collector = new Collector(limit, limitCode);
  for (const c of childElements(root)) {
    const { ns, local } = rootScope.child(c).expand(c.name);
    if (ns !== RL) continue;
    if (local !== 'list') refuse(400, `unexpected element ${local} in the recipient list`);
    collector.list(c, rootScope);
  }
  if (collector.recipients.length === 0) refuse(400, 'recipient list is empty');
  return { recipients: collector.recipients, message: forwardedMessage(others[0] as MimePart) };
}

function xmlEl(name: string, attributes: Record<string, string>, children: XmlElement[] = []): XmlElement {
  const e: XmlElement = { type: 'element', name, attributes };
  if (children.length > 0) e.elements = children;
  return e;
}

function entryEl(uri: string, attrs: Record<string, string>, display: string | undefined): XmlElement {
  const kids =
    display === undefined || display === ''
      ? []
      : [{ type: 'element' as const, name: 'display-name', elements: [{ type: 'text' as const, text: display }] }];
  return xmlEl('entry', { uri, ...attrs }, kids);
}

function resourceLists(entries: XmlElement[]): string {
  const root = xmlEl('resource-lists', { xmlns: RL, 'xmlns:cp': COPY_CONTROL_NS }, [xmlEl('list', {}, entries)]);
  return serializeXml({ root });
}

/**
 * The resource-lists document each exploded copy carries (Content-Disposition
 * {@link RECIPIENT_LIST_HISTORY_DISPOSITION}): the "to" recipients then the "cc" recipients, in
 * order; bcc recipients left out; anonymized recipients of each kind replaced by one
 * {@link ANONYMOUS_URI} entry whose RFC 5364 `cp:count` says how many it stands for.
 */
export function recipientListHistory(recipients: readonly RecipientInit[]): string {
  const entries: XmlElement[] = [];
  for (const copy of ['to', 'cc'] as const) {
    let hidden = 0;
    for (const r of recipients) {
      if ((r.copy ?? 'to') !== copy) continue;
      if (r.anonymize) hidden++;
      else entries.push(entryEl(r.uri, { 'cp:copyControl': copy }, r.display));
    }
    if (hidden > 0)
      entries.push(entryEl(ANONYMOUS_URI, { 'cp:copyControl': copy, 'cp:count': String(hidden) }, undefined));
  }
  return resourceLists(entries);
}

/** The history as a body part for {@link buildMultipart} (headers Content-Type and Content-Disposition). */
export function recipientListHistoryPart(
  recipients: readonly RecipientInit[],
): PartInit & { headers: Array<[string, string]> } {
  return {
    headers: [
      ['Content-Type', RESOURCE_LISTS_CONTENT_TYPE],
      ['Content-Disposition', RECIPIENT_LIST_HISTORY_DISPOSITION],
    ],
    body: recipientListHistory(recipients),
  };
}

/**
 * The multipart/mixed body a client sends to the exploder: the message part first, then the URI
 * list (every entry with its cp:copyControl, cp:anonymize="true" when set, display-name when given).
 */
export function buildRecipientListMessage(init: {
  recipients: readonly RecipientInit[];
  message: { contentType: string; body: string; headers?: ReadonlyArray<readonly [string, string]> };
  boundary?: string;
}): { contentType: string; body: string } {
  const entries = init.recipients.map((r) => {
    const attrs: Record<string, string> = { 'cp:copyControl': r.copy ?? 'to' };
    if (r.anonymize) attrs['cp:anonymize'] = 'true';
    return entryEl(r.uri, attrs, r.display);
  });
  const parts: PartInit[] = [
    { headers: [['Content-Type', init.message.contentType], ...(init.message.headers ?? [])], body: init.message.body },
    {
      headers: [
        ['Content-Type', RESOURCE_LISTS_CONTENT_TYPE],
        ['Content-Disposition', RECIPIENT_LIST_DISPOSITION],
      ],
      body: resourceLists(entries),
    },
  ];
  return buildMultipart({ subtype: 'mixed', boundary: init.boundary ?? pickBoundary(parts, 'recipient-list'), parts });
}
