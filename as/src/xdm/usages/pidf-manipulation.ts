/**
 * Application usage "pidf-manipulation" (RFC 4827): the presence document a user sets through
 * XCAP, a PIDF document (RFC 3863) with data model elements (RFC 4479). Schema: schemas/pidf.xsd.
 *
 * Pure: no I/O. {@link checkPresence} is exported for the presence server (PUBLISH bodies).
 */
import { type XmlDocument, xmlNamespaces } from '../../xml/xml-tree.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import { Checker, type XNode, anyOther, checkUnique, el, plainAttr, seq } from './schema-checker.js';
import { collapse } from '../../xml/xsd-datatypes.js';
import { uriProblem } from '../../xml/uri-check.js';

export const PIDF_NS = xmlNamespaces.pidf;
export const DATA_MODEL_NS = xmlNamespaces.dataModel;
const P = PIDF_NS;
/** The uniqueness field for duplicate ids of tuples, persons and devices (any child of presence). */
export const PIDF_ID_FIELD = 'presence/*/@id';
const DM = DATA_MODEL_NS;

const PRESENCE_MODEL = seq(1, 1, el(P, 'tuple', 0, Infinity), el(P, 'note', 0, Infinity), anyOther([P]));
const TUPLE_MODEL = seq(
  1,
  1,
  el(P, 'status'),
  anyOther([P]),
  el(P, 'contact', 0, 1),
  el(P, 'note', 0, Infinity),
  el(P, 'timestamp', 0, 1),
);
const STATUS_MODEL = seq(1, 1, el(P, 'basic', 0, 1), anyOther([P]));
const PERSON_MODEL = seq(1, 1, anyOther([DM]), el(DM, 'note', 0, Infinity), el(DM, 'timestamp', 0, 1));
const DEVICE_MODEL = seq(
  1,
  1,
  anyOther([DM]),
  el(DM, 'deviceID'),
  el(DM, 'note', 0, Infinity),
  el(DM, 'timestamp', 0, 1),
);
const QVALUE_RE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

function checkNote(c: Checker, node: XNode): void {
  c.attrs(node, { xml: ['lang'] });
  c.text(node);
}

function checkTimestamp(c: Checker, node: XNode): void {
  c.attrs(node, {});
  c.dateTime(node);
}

function checkTuple(c: Checker, node: XNode, ids: string[]): void {
  const a = c.attrs(node, { required: ['id'] });
  const id = a.get('id');
  c.ncName(node, 'id', id);
  if (id !== undefined) ids.push(id);
  const kids = c.children(node);
  if (!c.model(node, kids, TUPLE_MODEL)) return;
  for (const k of kids) {
    if (k.ns !== P) {
      checkDataModelElement(c, k, ids, false);
      continue;
    }
    switch (k.local) {
      case 'status': {
        c.attrs(k, {});
        const sk = c.children(k);
        if (!c.model(k, sk, STATUS_MODEL)) break;
        for (const b of sk) {
          if (b.ns !== P) continue;
          c.attrs(b, {});
          c.enumeration(b, ['open', 'closed'] as const);
        }
        break;
      }
      case 'contact': {
        const ca = c.attrs(k, { optional: ['priority'] });
        const pr = ca.get('priority');
        if (pr !== undefined && !QVALUE_RE.test(collapse(pr)))
          c.schema(k, `attribute "priority" value "${pr}" is not a q-value (0 to 1, 3 decimals)`);
        const v = collapse(c.text(k));
        const p = uriProblem(v);
        if (p) c.constraint(`tuple contact "${v}" ${p}`);
        break;
      }
      case 'note':
        checkNote(c, k);
        break;
      case 'timestamp':
        checkTimestamp(c, k);
        break;
    }
  }
}

/**
 * dm:person / dm:device where PIDF allows extensions. Other data-model elements are refused at
 * the presence level (where only person and device are defined) and accepted elsewhere.
 */
function checkDataModelElement(c: Checker, node: XNode, ids: string[], topLevel: boolean): void {
  if (node.ns !== DM) return; // other extensions: lax
  if (node.local !== 'person' && node.local !== 'device') {
    if (topLevel) c.schema(node, 'not allowed here (only dm:person and dm:device)');
    return;
  }
  const a = c.attrs(node, { required: ['id'] });
  const id = a.get('id');
  c.ncName(node, 'id', id);
  if (id !== undefined) ids.push(id);
  const kids = c.children(node);
  if (!c.model(node, kids, node.local === 'person' ? PERSON_MODEL : DEVICE_MODEL)) return;
  for (const k of kids) {
    if (k.ns !== DM) continue;
    if (k.local === 'note') checkNote(c, k);
    else if (k.local === 'timestamp') checkTimestamp(c, k);
    else if (k.local === 'deviceID') {
      c.attrs(k, {});
      const v = collapse(c.text(k));
      const p = uriProblem(v);
      if (p) c.constraint(`device deviceID "${v}" ${p}`);
    }
  }
}

/**
 * Validates a PIDF presence document (root presence of urn:ietf:params:xml:ns:pidf): structure,
 * basic status values, timestamps, the entity and contact URIs, and the uniqueness of the ids of
 * tuples, persons and devices (one id space; reported on the field {@link PIDF_ID_FIELD}).
 */
export function checkPresence(c: Checker, doc: XmlDocument): void {
  const root = c.root(doc, P, 'presence');
  if (!root) return;
  const a = c.attrs(root, { required: ['entity'] });
  const entity = a.get('entity');
  if (entity !== undefined) {
    const p = uriProblem(entity);
    if (p) c.constraint(`presence entity "${entity}" ${p}`);
  }
  const kids = c.children(root);
  if (!c.model(root, kids, PRESENCE_MODEL)) return;
  const ids: string[] = [];
  for (const k of kids) {
    if (k.ns === P && k.local === 'tuple') checkTuple(c, k, ids);
    else if (k.ns === P && k.local === 'note') checkNote(c, k);
    else checkDataModelElement(c, k, ids, true);
  }
  // tuple, person and device ids are all of type ID: one namespace for the document
  checkUnique(c, PIDF_ID_FIELD, ids, { alternatives: true });
}

function validate(doc: XmlDocument, _ctx: ValidationContext): ValidationProblem[] {
  const c = new Checker(P);
  checkPresence(c, doc);
  return c.result();
}

/** The entity of a presence document, if any. */
export function presenceEntity(doc: XmlDocument): string | undefined {
  return plainAttr(doc.root, 'entity');
}

export const pidfManipulationUsage: ApplicationUsage = {
  auid: 'pidf-manipulation',
  mimeType: 'application/pidf+xml',
  defaultNamespace: P,
  namespaces: [P, DM, xmlNamespaces.rpid],
  documentNames: /^index$/,
  validate,
  defaultDocument: () => undefined,
};
