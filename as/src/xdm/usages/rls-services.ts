/**
 * Application usage "rls-services" (RFC 4826 section 4): resource list services, i.e. SIP URIs
 * whose subscription fans out to the members of a list. Schema: schemas/rls-services.xsd.
 *
 * Pure: no I/O. The service URI must be unique across all users: `uniqueKeys` exposes the
 * (normalised) URIs so that the server can check them against every other document and answer
 * a uniqueness failure with alternatives from {@link proposeAltValues}. It must also be in the
 * owner's namespace ({@link serviceUriClaimProblem}); `addressClaims` lets the server refuse a
 * URI that is a provisioned user's address of record.
 */
import { NamespaceScope, type XmlDocument, type XmlElement, findChildren, xmlNamespaces } from '../../xml/xml-tree.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import { Checker, type XNode, anyOther, checkUnique, choice, el, element, plainAttr, seq } from './schema-checker.js';
import { collapse } from '../../xml/xsd-datatypes.js';
import { normalizeUri, uriProblem } from '../../xml/uri-check.js';
import { parseUri } from '../../sip/index.js';
import { RESOURCE_LISTS_NS, checkList, xcapListUriProblem } from './resource-lists.js';

export const RLS_SERVICES_NS = xmlNamespaces.rlsServices;
const RLS = RLS_SERVICES_NS;

/** The `field` of the uniqueness failure for a service URI. */
export const SERVICE_URI_FIELD = 'rls-services/service/@uri';

const SERVICE_MODEL = seq(
  1,
  1,
  choice(1, 1, el(RLS, 'resource-list'), el(RLS, 'list')),
  el(RLS, 'packages', 0, 1),
  anyOther([RLS]),
);
const PACKAGES_MODEL = seq(1, 1, el(RLS, 'package', 0, Infinity), anyOther([RLS]));
const PACKAGE_RE = /^[A-Za-z0-9!%'*+\-._`~]+$/;

/**
 * Why `uri` is not a service URI `owner` may claim, or undefined when it is: the namespace of a
 * user is `sip:<user>-<name>@<domain>` (<user> the user part of the owner's address of record,
 * <name> not empty). A user's own address is never in it, nor another user's, except that of a
 * user whose name starts with `<user>-`: the server refuses those against the user directory
 * (`addressClaims`), and the list server never takes a provisioned user's address for a list.
 */
export function serviceUriClaimProblem(uri: string, owner: string, domain: string): string | undefined {
  let service, ownerUri;
  try {
    service = parseUri(uri.trim());
    ownerUri = parseUri(owner);
  } catch {
    return 'is not a SIP URI';
  }
  const prefix = `${ownerUri.userDecoded ?? ownerUri.user ?? ''}-`;
  const user = service.userDecoded ?? service.user ?? '';
  if (
    service.scheme !== 'sip' ||
    service.host.toLowerCase() !== domain.toLowerCase() ||
    prefix === '-' ||
    !user.startsWith(prefix) ||
    user.length === prefix.length
  ) {
    return `is not in the owner's namespace: a service URI must be sip:${prefix}<name>@${domain}`;
  }
  return undefined;
}

function checkService(c: Checker, node: XNode, ctx: ValidationContext): void {
  const attrs = c.attrs(node, { required: ['uri'], foreign: true });
  const uri = attrs.get('uri');
  if (uri !== undefined) {
    const p = uriProblem(uri) ?? (ctx.xui === undefined ? undefined : serviceUriClaimProblem(uri, ctx.xui, ctx.domain));
    if (p) c.constraint(`service uri "${uri}" ${p}`);
  }
  const kids = c.children(node);
  if (!c.model(node, kids, SERVICE_MODEL)) return;
  for (const k of kids) {
    if (k.ns !== RLS) continue;
    switch (k.local) {
      case 'resource-list': {
        c.attrs(k, {});
        const v = collapse(c.text(k));
        const p = xcapListUriProblem(v);
        if (p) c.constraint(`resource-list "${v}" ${p}`);
        break;
      }
      case 'list':
        checkList(c, k);
        break;
      case 'packages': {
        c.attrs(k, {});
        const pk = c.children(k);
        if (c.model(k, pk, PACKAGES_MODEL)) {
          for (const p of pk) {
            if (p.ns !== RLS) continue;
            c.attrs(p, {});
            const v = collapse(c.text(p));
            if (!PACKAGE_RE.test(v)) c.schema(p, `value "${v}" is not an event package name`);
          }
        }
        break;
      }
    }
  }
}

function validate(doc: XmlDocument, ctx: ValidationContext): ValidationProblem[] {
  const c = new Checker(RLS);
  const root = c.root(doc, RLS, 'rls-services');
  if (!root) return c.result();
  c.attrs(root, {});
  const kids = c.children(root);
  if (c.model(root, kids, el(RLS, 'service', 0, Infinity))) {
    const uris: string[] = [];
    for (const k of kids) {
      checkService(c, k, ctx);
      const u = plainAttr(k.el, 'uri');
      if (u !== undefined) uris.push(u);
    }
    checkUnique(c, SERVICE_URI_FIELD, uris, { key: normalizeUri, alternatives: true });
  }
  return c.result();
}

/** The service elements of a document (any structure tolerated). */
function services(doc: XmlDocument): Array<{ el: XmlElement; scope: NamespaceScope }> {
  const rootScope = NamespaceScope.root().child(doc.root);
  if (rootScope.expand(doc.root.name).ns !== RLS) return [];
  return findChildren(doc.root, rootScope, RLS, 'service').map((s) => ({ el: s, scope: rootScope.child(s) }));
}

/** The service URIs of a document, as written. */
export function serviceUris(doc: XmlDocument): string[] {
  const out: string[] = [];
  for (const s of services(doc)) {
    const u = plainAttr(s.el, 'uri');
    if (u !== undefined) out.push(u.trim());
  }
  return out;
}

function uniqueKeys(doc: XmlDocument): Array<{ field: string; value: string }> {
  const seen = new Set<string>();
  const out: Array<{ field: string; value: string }> = [];
  for (const u of serviceUris(doc)) {
    const v = normalizeUri(u);
    if (seen.has(v)) continue;
    seen.add(v);
    out.push({ field: 'uri', value: v });
  }
  return out;
}

/**
 * The global document `rls-services/global/index` (RFC 4826 section 4.5): the union of the
 * services of all users' documents. Each service keeps the namespace declarations it relied on
 * from its original ancestors.
 */
export function mergeRlsServices(docs: readonly XmlDocument[]): XmlDocument {
  const out: XmlElement[] = [];
  for (const doc of docs) {
    for (const { el: s, scope } of services(doc)) {
      const attributes: Record<string, string> = {};
      for (const [prefix, uri] of scope.bindings()) {
        attributes[prefix === '' ? 'xmlns' : `xmlns:${prefix}`] = uri;
      }
      Object.assign(attributes, s.attributes ?? {});
      // the service element itself must stay in the rls-services namespace
      const prefix = s.name.includes(':') ? s.name.slice(0, s.name.indexOf(':')) : '';
      if (prefix === '') attributes['xmlns'] = RLS;
      out.push({ ...s, attributes });
    }
  }
  return { root: element('rls-services', { xmlns: RLS, 'xmlns:rl': RESOURCE_LISTS_NS }, out) };
}

export const rlsServicesUsage: ApplicationUsage = {
  auid: 'rls-services',
  mimeType: 'application/rls-services+xml',
  defaultNamespace: RLS,
  namespaces: [RLS, RESOURCE_LISTS_NS],
  globalDocuments: ['index'],
  validate,
  uniqueKeys,
  uniqueKeySelectors: { uri: SERVICE_URI_FIELD },
  addressClaims: serviceUris,
  defaultDocument: () => undefined,
};
