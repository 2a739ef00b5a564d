/**
 * OMA shared group usage (OMA XDM "group usage", list services of OMA PoC / IM): a group is a
 * SIP URI of this server standing for a member list. Schema: schemas/oma-groups.xsd.
 *
 * Pure: no I/O. Group URIs are unique across all users (`uniqueKeys`, field 'uri'); groups may
 * not contain groups: within one document this usage refuses a member that is one of the
 * document's own group URIs, and the server checks {@link groupMemberUris} of a document
 * against the groups of the other documents (`forbiddenClaims`). A group created later whose URI
 * an older group already lists is caught when a message is exploded (the IM server refuses it).
 */
import { type XmlDocument, NamespaceScope, findChildren, xmlNamespaces } from '../../xml/xml-tree.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import { Checker, type XNode, anyOther, checkUnique, choice, el, plainAttr, seq } from './schema-checker.js';
import { collapse, parseXsInteger } from '../../xml/xsd-datatypes.js';
import { normalizeUri, uriProblem } from '../../xml/uri-check.js';
import {
  RESOURCE_LISTS_NS,
  checkDisplayName,
  checkMember,
  checkMemberValue,
  memberAttribute,
} from './resource-lists.js';
import { COMMON_POLICY_NS, checkRuleset } from './pres-rules.js';

export const GROUPS_NS = xmlNamespaces.omaGroups;
const LS = GROUPS_NS;
const RL = RESOURCE_LISTS_NS;
const CP = COMMON_POLICY_NS;

/** The `field` of the uniqueness failure for a group URI. */
export const GROUP_URI_FIELD = 'group/list-service/@uri';

const GROUP_MODEL = seq(1, 1, el(LS, 'list-service', 0, Infinity), anyOther([LS]));
const LIST_SERVICE_MODEL = seq(
  1,
  1,
  el(LS, 'display-name', 0, 1),
  el(LS, 'list', 0, 1),
  el(LS, 'invite-members', 0, 1),
  el(LS, 'max-participant-count', 0, 1),
  el(CP, 'ruleset', 0, 1),
  anyOther([LS]),
);
/** Members in any order with extensions; rl members are named here so that other rl elements (a nested rl:list) are refused. */
const MEMBER_LIST_MODEL = seq(
  1,
  1,
  el(LS, 'display-name', 0, 1),
  choice(
    0,
    Infinity,
    el(LS, 'entry'),
    el(LS, 'entry-ref'),
    el(LS, 'external'),
    el(RL, 'entry'),
    el(RL, 'entry-ref'),
    el(RL, 'external'),
    anyOther([LS, RL], 1, 1),
  ),
);

const GROUP_MEMBER_MODEL = seq(1, 1, choice(0, 1, el(LS, 'display-name'), el(RL, 'display-name')), anyOther([LS, RL]));

/** A member of a group list (entry, entry-ref, external; in the groups or the resource-lists namespace). */
function checkGroupMember(c: Checker, node: XNode): void {
  if (node.ns === RL) {
    checkMember(c, node, RL);
    return;
  }
  // in the groups namespace, display-name is accepted in either namespace
  const attrName = memberAttribute(node.local);
  const attrs = c.attrs(node, { required: [attrName], foreign: true });
  const kids = c.children(node);
  if (c.model(node, kids, GROUP_MEMBER_MODEL))
    for (const k of kids) if (k.ns === LS || k.ns === RL) checkDisplayName(c, k);
  const v = attrs.get(attrName);
  if (v !== undefined) checkMemberValue(c, node.local, v);
}

function checkListService(c: Checker, node: XNode, groupUris: ReadonlySet<string>): void {
  const a = c.attrs(node, { required: ['uri'], foreign: true });
  const uri = a.get('uri');
  if (uri !== undefined) {
    const p = uriProblem(uri);
    if (p) c.constraint(`group uri "${uri}" ${p}`);
    else if (!/^sips?:/i.test(uri.trim())) c.constraint(`group uri "${uri}" must be a sip: or sips: URI`);
  }
  const kids = c.children(node);
  if (!c.model(node, kids, LIST_SERVICE_MODEL)) return;
  for (const k of kids) {
    if (k.ns === CP) {
      checkRuleset(c, k);
      continue;
    }
    if (k.ns !== LS) continue;
    switch (k.local) {
      case 'display-name':
        checkDisplayName(c, k);
        break;
      case 'list': {
        c.attrs(k, { optional: ['name'], foreign: true });
        const members = c.children(k);
        if (!c.model(k, members, MEMBER_LIST_MODEL)) break;
        const entries: string[] = [];
        let entryStep: string | undefined;
        for (const m of members) {
          if (m.ns !== LS && m.ns !== RL) continue;
          if (m.local === 'display-name') {
            checkDisplayName(c, m);
            continue;
          }
          checkGroupMember(c, m);
          const u = m.local === 'entry' ? plainAttr(m.el, 'uri') : undefined;
          if (u === undefined) continue;
          entries.push(u);
          entryStep ??= m.step;
          if (groupUris.has(normalizeUri(u))) {
            c.constraint(`group member "${u}" is a group: groups cannot contain groups`);
          }
        }
        checkUnique(c, `${k.sel}/${entryStep ?? 'entry'}/@uri`, entries, { key: normalizeUri });
        break;
      }
      case 'invite-members':
        c.attrs(k, {});
        c.boolean(k);
        break;
      case 'max-participant-count': {
        c.attrs(k, {});
        const v = collapse(c.text(k));
        const n = parseXsInteger(v);
        if (n === undefined || n < 1) c.schema(k, `value "${v}" is not a positive integer`);
        break;
      }
    }
  }
}

function validate(doc: XmlDocument, _ctx: ValidationContext): ValidationProblem[] {
  const c = new Checker(LS);
  const root = c.root(doc, LS, 'group');
  if (!root) return c.result();
  c.attrs(root, {});
  const kids = c.children(root);
  if (c.model(root, kids, GROUP_MODEL)) {
    const uris: string[] = [];
    for (const k of kids) {
      if (k.ns !== LS) continue;
      const u = plainAttr(k.el, 'uri');
      if (u !== undefined) uris.push(u);
    }
    const own = new Set(uris.map(normalizeUri));
    for (const k of kids) if (k.ns === LS) checkListService(c, k, own);
    checkUnique(c, GROUP_URI_FIELD, uris, { key: normalizeUri, alternatives: true });
  }
  return c.result();
}

function listServices(doc: XmlDocument) {
  const rootScope = NamespaceScope.root().child(doc.root);
  if (rootScope.expand(doc.root.name).ns !== LS) return [];
  return findChildren(doc.root, rootScope, LS, 'list-service').map((el) => ({ el, scope: rootScope.child(el) }));
}

/** The group URIs a document defines, normalised (address of record), without duplicates. */
export function groupUris(doc: XmlDocument): string[] {
  const out = new Set<string>();
  for (const { el: ls } of listServices(doc)) {
    const u = plainAttr(ls, 'uri');
    if (u !== undefined) out.add(normalizeUri(u));
  }
  return [...out];
}

/**
 * The member URIs (entry/@uri of every group's list, in either namespace), normalised, without
 * duplicates: the server refuses the document when one of them is a group URI it hosts.
 */
export function groupMemberUris(doc: XmlDocument): string[] {
  const out = new Set<string>();
  for (const { el: ls, scope } of listServices(doc)) {
    for (const list of findChildren(ls, scope, LS, 'list')) {
      const inner = scope.child(list);
      for (const e of [...findChildren(list, inner, LS, 'entry'), ...findChildren(list, inner, RL, 'entry')]) {
        const u = plainAttr(e, 'uri');
        if (u !== undefined) out.add(normalizeUri(u));
      }
    }
  }
  return [...out];
}

/**
 * The members (entry/@uri, normalised, in document order, without duplicates) of the group whose
 * URI is `groupUri`, or undefined when the document defines no such group.
 */
export function membersOfGroup(doc: XmlDocument, groupUri: string): string[] | undefined {
  const wanted = normalizeUri(groupUri);
  for (const { el: ls, scope } of listServices(doc)) {
    const u = plainAttr(ls, 'uri');
    if (u === undefined || normalizeUri(u) !== wanted) continue;
    const out = new Set<string>();
    for (const list of findChildren(ls, scope, LS, 'list')) {
      const inner = scope.child(list);
      for (const e of [...findChildren(list, inner, LS, 'entry'), ...findChildren(list, inner, RL, 'entry')]) {
        const m = plainAttr(e, 'uri');
        if (m !== undefined) out.add(normalizeUri(m));
      }
    }
    return [...out];
  }
  return undefined;
}

export const groupsUsage: ApplicationUsage = {
  auid: 'org.openmobilealliance.groups',
  mimeType: 'application/vnd.oma.poc.groups+xml',
  defaultNamespace: LS,
  namespaces: [LS, RL, CP, xmlNamespaces.omaPresRules],
  validate,
  uniqueKeys: (doc) => groupUris(doc).map((value) => ({ field: 'uri', value })),
  uniqueKeySelectors: { uri: GROUP_URI_FIELD },
  forbiddenClaims: (doc) =>
    groupMemberUris(doc).map((value) => ({
      field: 'uri',
      value,
      phrase: `member ${value} is a group: groups may not contain groups`,
    })),
  defaultDocument: () => undefined,
};
