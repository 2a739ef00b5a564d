/**
 * IMDN documents (RFC 5438, message/imdn+xml, namespace urn:ietf:params:xml:ns:imdn) and the
 * CPIM message that carries one (RFC 5438 section 7).
 *
 * Pure: no I/O, no clock: every time is a parameter.
 *
 * Building writes the schema order (message-id, datetime, recipient-uri, original-recipient-uri,
 * subject, then one notification element). Parsing goes through the project's guarded XML parser
 * and is lenient about order and about elements it does not know (other namespaces, later
 * extensions), strict about what a notification needs: the root {urn:ietf:params:xml:ns:imdn}imdn,
 * one message-id, one datetime, exactly one notification element whose status holds exactly one
 * value known for its kind. Anything else is refused with {@link ImdnParseError}.
 */
import {
  NamespaceScope,
  XmlError,
  childElements,
  expandedName,
  parseXml,
  serializeXml,
  textContent,
  type XmlElement,
} from '../../xml/xml-tree.js';
import {
  IMDN_CONTENT_TYPE,
  IMDN_NS,
  buildCpim,
  isRfc3339DateTime,
  type CpimAddress,
  type CpimMessage,
} from './cpim.js';

export { IMDN_CONTENT_TYPE, IMDN_NS, isImdnNotification } from './cpim.js';

export const IMDN_XML_NS = 'urn:ietf:params:xml:ns:imdn';

/** IMDN documents are a few hundred bytes; anything near this is not one. */
const MAX_IMDN_BYTES = 64 * 1024;
const MAX_IMDN_DEPTH = 16;

export type ImdnKind = 'delivery' | 'display' | 'processing';
export type DeliveryStatus = 'delivered' | 'failed' | 'forbidden' | 'error';
export type DisplayStatus = 'displayed' | 'forbidden' | 'error';
export type ProcessingStatus = 'processed' | 'stored' | 'forbidden' | 'error';

/** The status values RFC 5438 defines for each kind of notification. */
export const IMDN_STATUSES: { readonly [K in ImdnKind]: readonly string[] } = Object.freeze({
  delivery: Object.freeze(['delivered', 'failed', 'forbidden', 'error']),
  display: Object.freeze(['displayed', 'forbidden', 'error']),
  processing: Object.freeze(['processed', 'stored', 'forbidden', 'error']),
});

interface ImdnFields {
  /** imdn.Message-ID of the message being reported on. */
  messageId: string;
  /** DateTime of the message being reported on (RFC 3339). */
  dateTime: string;
  recipientUri?: string | undefined;
  originalRecipientUri?: string | undefined;
  subject?: string | undefined;
}

export type Imdn = ImdnFields &
  (
    | { kind: 'delivery'; status: DeliveryStatus }
    | { kind: 'display'; status: DisplayStatus }
    | { kind: 'processing'; status: ProcessingStatus }
  );

/** An IMDN body the server refuses. `reason` is short printable ASCII. */
export class ImdnParseError extends Error {
  readonly reason: string;
  constructor(reason: string, options: { cause?: unknown } = {}) {
    const r = reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 100);
    super(r, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ImdnParseError';
    this.reason = r;
  }
}

function fail(reason: string): never {
  throw new ImdnParseError(reason);
}

const NOTIFICATION_ELEMENT: { readonly [K in ImdnKind]: string } = {
  delivery: 'delivery-notification',
  display: 'display-notification',
  processing: 'processing-notification',
};

function isStatusFor(kind: ImdnKind, status: string): boolean {
  return IMDN_STATUSES[kind].includes(status);
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

function leaf(name: string, text: string): XmlElement {
  return { type: 'element', name, elements: [{ type: 'text', text }] };
}

/** The message/imdn+xml document. Throws TypeError on values the RFC does not allow. */
export function buildImdn(imdn: Imdn): string {
  if (!(imdn.kind in NOTIFICATION_ELEMENT)) throw new TypeError(`unknown IMDN kind: ${String(imdn.kind)}`);
  if (!isStatusFor(imdn.kind, imdn.status))
    throw new TypeError(`status ${String(imdn.status)} is not a ${imdn.kind} status`);
  if (imdn.messageId.trim() === '') throw new TypeError('IMDN message-id is empty');
  if (!isRfc3339DateTime(imdn.dateTime))
    throw new TypeError(`IMDN datetime is not RFC 3339: ${JSON.stringify(imdn.dateTime)}`);
  const kids: XmlElement[] = [leaf('message-id', imdn.messageId), leaf('datetime', imdn.dateTime)];
  if (imdn.recipientUri !== undefined) kids.push(leaf('recipient-uri', imdn.recipientUri));
  if (imdn.originalRecipientUri !== undefined) kids.push(leaf('original-recipient-uri', imdn.originalRecipientUri));
  if (imdn.subject !== undefined) kids.push(leaf('subject', imdn.subject));
  const status: XmlElement = { type: 'element', name: 'status', elements: [{ type: 'element', name: imdn.status }] };
  kids.push({ type: 'element', name: NOTIFICATION_ELEMENT[imdn.kind], elements: [status] });
  return serializeXml({ root: { type: 'element', name: 'imdn', attributes: { xmlns: IMDN_XML_NS }, elements: kids } });
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/** The imdn-namespace children of `el`, with the scope inside each. */
function imdnChildren(
  el: XmlElement,
  scope: NamespaceScope,
): { el: XmlElement; local: string; scope: NamespaceScope }[] {
  const inner = scope.child(el);
  const out: { el: XmlElement; local: string; scope: NamespaceScope }[] = [];
  for (const c of childElements(el)) {
    const name = expandedName(c, inner);
    if (name.ns === IMDN_XML_NS) out.push({ el: c, local: name.local, scope: inner });
  }
  return out;
}

/** Parses a message/imdn+xml document. Throws ImdnParseError. */
export function parseImdn(xml: string | Buffer): Imdn {
  let root: XmlElement;
  try {
    root = parseXml(xml, { maxBytes: MAX_IMDN_BYTES, maxDepth: MAX_IMDN_DEPTH }).root;
  } catch (e) {
    if (e instanceof XmlError) throw new ImdnParseError(`Invalid IMDN: ${e.kind}`, { cause: e });
    throw e;
  }
  const top = NamespaceScope.root();
  const rootName = expandedName(root, top);
  if (rootName.ns !== IMDN_XML_NS || rootName.local !== 'imdn')
    fail('Invalid IMDN: root is not {urn:ietf:params:xml:ns:imdn}imdn');

  const kids = imdnChildren(root, top);
  const single = (local: string, required: boolean): string | undefined => {
    const found = kids.filter((k) => k.local === local);
    if (found.length > 1) fail(`Invalid IMDN: more than one ${local}`);
    if (found[0] === undefined) {
      if (required) fail(`Invalid IMDN: missing ${local}`);
      return undefined;
    }
    return textContent(found[0].el);
  };
  const messageId = single('message-id', true)?.trim() ?? '';
  if (messageId === '') fail('Invalid IMDN: empty message-id');
  const dateTime = single('datetime', true)?.trim() ?? '';
  if (dateTime === '') fail('Invalid IMDN: empty datetime');
  const recipientUri = single('recipient-uri', false)?.trim();
  const originalRecipientUri = single('original-recipient-uri', false)?.trim();
  const subject = single('subject', false);

  const notes = kids.filter(
    (k) =>
      k.local === 'delivery-notification' ||
      k.local === 'display-notification' ||
      k.local === 'processing-notification',
  );
  if (notes.length !== 1 || notes[0] === undefined) fail('Invalid IMDN: needs exactly one notification element');
  const note = notes[0];
  const kind = note.local.slice(0, note.local.indexOf('-')) as ImdnKind;
  const statuses = imdnChildren(note.el, note.scope).filter((k) => k.local === 'status');
  if (statuses.length !== 1 || statuses[0] === undefined) fail(`Invalid IMDN: ${note.local} needs one status`);
  const values = imdnChildren(statuses[0].el, statuses[0].scope);
  if (values.length !== 1 || values[0] === undefined) fail('Invalid IMDN: status needs exactly one value');
  const status = values[0].local;
  if (!isStatusFor(kind, status)) fail(`Invalid IMDN: ${status.slice(0, 20)} is not a ${kind} status`);

  const out = { messageId, dateTime, kind, status } as Imdn;
  if (recipientUri !== undefined) out.recipientUri = recipientUri;
  if (originalRecipientUri !== undefined) out.originalRecipientUri = originalRecipientUri;
  if (subject !== undefined) out.subject = subject;
  return out;
}

// ---------------------------------------------------------------------------
// The carrying CPIM message
// ---------------------------------------------------------------------------

export interface ImdnMessageInit {
  /** The party that reports (the recipient, or the server on its behalf). */
  from: CpimAddress;
  /** The sender of the message being reported on. */
  to: CpimAddress;
  /** When the notification is made (RFC 3339); the reported message's time goes in `imdn`. */
  dateTime: string;
  /** A new imdn.Message-ID for the notification itself. */
  messageId: string;
  imdn: Imdn;
  /** URIs written as imdn.IMDN-Route headers, in the order given (from the IMDN-Record-Route of the message). */
  routes?: readonly string[] | undefined;
}

/**
 * The CPIM message carrying an IMDN (RFC 5438 section 7): From, To, DateTime, NS imdn,
 * imdn.Message-ID, [imdn.IMDN-Route...]; content message/imdn+xml with Content-Disposition:
 * notification. It carries no Disposition-Notification: an IMDN never asks for another.
 */
export function buildImdnMessage(init: ImdnMessageInit): CpimMessage {
  if (!/^[\x21-\x7e]+$/.test(init.messageId))
    throw new TypeError(`invalid imdn.Message-ID: ${JSON.stringify(init.messageId)}`);
  const headers = [{ name: 'imdn.Message-ID', value: init.messageId }];
  for (const uri of init.routes ?? []) {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>"]+$/.test(uri))
      throw new TypeError(`invalid IMDN-Route URI: ${JSON.stringify(uri)}`);
    headers.push({ name: 'imdn.IMDN-Route', value: `<${uri}>` });
  }
  return buildCpim({
    from: init.from,
    to: init.to,
    dateTime: init.dateTime,
    ns: { imdn: IMDN_NS },
    headers,
    contentType: IMDN_CONTENT_TYPE,
    contentHeaders: [{ name: 'Content-Disposition', value: 'notification' }],
    content: buildImdn(init.imdn),
  });
}
