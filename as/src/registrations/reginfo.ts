/**
 * Registration information documents, RFC 3680 (application/reginfo+xml): what the `reg`
 * event package tells a user about the registrations of their address of record.
 * Pure: no I/O. Schema of what we write: schemas/reginfo.xsd.
 */
import { createHash } from 'node:crypto';
import {
  NamespaceScope,
  attr,
  childElements,
  escapeAttribute,
  escapeText,
  parseXml,
  textContent,
} from '../xml/xml-tree.js';

export const REGINFO_NS = 'urn:ietf:params:xml:ns:reginfo';
export const REGINFO_CONTENT_TYPE = 'application/reginfo+xml';

export type ContactEvent =
  | 'registered'
  | 'created'
  | 'refreshed'
  | 'shortened'
  | 'expired'
  | 'deactivated'
  | 'probation'
  | 'unregistered'
  | 'rejected';

export interface ReginfoContact {
  uri: string;
  state: 'active' | 'terminated';
  event: ContactEvent;
  /** Seconds left (active contacts). */
  expires?: number;
}

export interface Reginfo {
  version: number;
  state: 'full' | 'partial';
  aor: string;
  /** init: nothing registered yet; active: at least one contact; terminated: all gone. */
  registrationState: 'init' | 'active' | 'terminated';
  contacts: ReginfoContact[];
  /**
   * The user's other public identities (aliases, tel: number): registered together with the
   * AoR (the IMS implicit registration set), each shown as a registration of its own with the
   * same contacts, as TS 24.229 has the registrar do.
   */
  implicit?: string[];
}

/** A stable, opaque id for an AoR or a contact (RFC 3680 wants one per element, kept across NOTIFYs). */
export function reginfoId(value: string): string {
  return createHash('sha1').update(value).digest('hex').slice(0, 12);
}

export function buildReginfo(info: Reginfo): string {
  // ids are unique in the document: the AoR's contacts keep the contact's own id, those
  // repeated under another identity take one made of both
  const contacts = (aor: string | undefined) =>
    info.contacts
      .map(
        (c) =>
          `<contact id="${reginfoId(aor === undefined ? c.uri : `${aor}|${c.uri}`)}" state="${c.state}" event="${c.event}"${c.expires !== undefined ? ` expires="${Math.max(0, Math.round(c.expires))}"` : ''}>` +
          `<uri>${escapeText(c.uri)}</uri></contact>`,
      )
      .join('');
  const registration = (aor: string, own: boolean) =>
    `<registration aor="${escapeAttribute(aor)}" id="${reginfoId(aor)}" state="${info.registrationState}">${contacts(own ? undefined : aor)}</registration>`;
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<reginfo xmlns="${REGINFO_NS}" version="${info.version}" state="${info.state}">` +
    registration(info.aor, true) +
    (info.implicit ?? []).map((aor) => registration(aor, false)).join('') +
    '</reginfo>'
  );
}

export class ReginfoParseError extends Error {}

/** Reads a reginfo document (what we send; tests and tools): the first registration, and the AoRs of the others. */
export function parseReginfo(xml: string): Reginfo {
  const doc = parseXml(xml, { maxBytes: 256 * 1024, maxDepth: 8 });
  const scope = NamespaceScope.root().child(doc.root);
  const root = scope.expand(doc.root.name);
  if (root.ns !== REGINFO_NS || root.local !== 'reginfo') throw new ReginfoParseError('not a reginfo document');
  const [reg, ...others] = childElements(doc.root);
  if (!reg) throw new ReginfoParseError('no registration element');
  const contacts: ReginfoContact[] = childElements(reg).map((c) => {
    const uriEl = childElements(c)[0];
    const expires = attr(c, 'expires');
    return {
      uri: uriEl ? textContent(uriEl).trim() : '',
      state: attr(c, 'state') === 'terminated' ? 'terminated' : 'active',
      event: (attr(c, 'event') ?? 'registered') as ContactEvent,
      ...(expires !== undefined ? { expires: Number(expires) } : {}),
    };
  });
  return {
    version: Number(attr(doc.root, 'version')),
    state: attr(doc.root, 'state') === 'partial' ? 'partial' : 'full',
    aor: attr(reg, 'aor') ?? '',
    registrationState: (attr(reg, 'state') ?? 'init') as Reginfo['registrationState'],
    contacts,
    ...(others.length ? { implicit: others.map((r) => attr(r, 'aor') ?? '') } : {}),
  };
}
