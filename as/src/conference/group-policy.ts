/**
 * A pre-defined group's policy (OMA groups usage, org.openmobilealliance.groups) for the IM
 * controlling function, pager and session alike: who may join and send (the group's
 * cp:ruleset, or its member list when it has none), whether anonymity is allowed, how many
 * may take part, and the members with entry-ref and external references expanded.
 *
 * The ruleset is common policy (RFC 4745 with OMA conditions), evaluated by the same code as
 * pres-rules (applyingRules); its actions are the OMA list-service ones:
 *   join-handling      'allow' | 'block': may the user join (and, in pager mode, send);
 *   allow-anonymity    true: the user may take part anonymously (Privacy: id).
 * Applying rules combine as common policy does: the most permissive value wins. No applying
 * rule, or none that allows: refused (RFC 4745 default deny).
 */
import type { XdmDocuments } from '../xdm/document-store.js';
import { GROUPS_NS, groupsUsage } from '../xdm/usages/groups.js';
import { COMMON_POLICY_NS } from '../xdm/usages/pres-rules.js';
import { plainAttr } from '../xdm/usages/schema-checker.js';
import { normalizeUri } from '../xml/uri-check.js';
import { NamespaceScope, findChild, findChildren, parseXml, textContent, type XmlElement } from '../xml/xml-tree.js';
import { collapse, parseXsBoolean, parseXsInteger } from '../xml/xsd-datatypes.js';
import { applyingRules } from '../presence/pres-rules-evaluator.js';
import { resolveMemberList } from '../presence/rls/list-resolver.js';

export type PolicyDecision = { allow: true } | { refuse: { code: number; reason: string } };

export interface JoinRequest {
  /** Asked for privacy (Privacy: id): to take part as anonymous. */
  anonymous: boolean;
  /** Participants already in (sessions: the roster's connected ones): the newcomer would be one more. */
  participants?: number;
}

interface LoadedGroup {
  uri: string;
  owner: string;
  listService: XmlElement;
  scope: NamespaceScope;
  /** Its members, expanded once per load (deciding and sending both need them). */
  expanded?: Promise<string[] | { kind: string; detail: string }>;
}

export interface GroupPolicyDeps {
  docs: XdmDocuments;
  /** Canonical form of a URI naming one of our users by another identity; undefined: not ours. */
  canonical: (uri: string) => string | undefined;
  /** The operator's ceiling on participants (read at each call: a reload applies at once). */
  operatorMax: () => number;
  /** Most members a group's list may expand to. */
  maxMembers: () => number;
}

const refuse = (code: number, reason: string): PolicyDecision => ({ refuse: { code, reason } });

export class GroupPolicy {
  constructor(private readonly deps: GroupPolicyDeps) {}

  /** May `user` join the group's conference (or take part in its pager messages)? */
  async mayJoin(groupUri: string, user: string, req: JoinRequest): Promise<PolicyDecision> {
    const group = await this.load(groupUri);
    if (!group) return refuse(404, `no group ${groupUri}`);
    const decided = await this.decide(group, user, req.anonymous);
    if ('refuse' in decided) return decided;
    if (req.participants !== undefined) {
      const max = this.maxOf(group);
      if (req.participants + 1 > max) return refuse(486, `the group is full (at most ${max} participants)`);
    }
    return decided;
  }

  /**
   * May `user` send to the group (a pager MESSAGE exploded to its members, or a message in its
   * session)? The same permission as joining: sending is taking part.
   */
  async maySend(groupUri: string, user: string, req: { anonymous: boolean }): Promise<PolicyDecision> {
    const group = await this.load(groupUri);
    if (!group) return refuse(404, `no group ${groupUri}`);
    return this.decide(group, user, req.anonymous);
  }

  /**
   * maySend, members and maxParticipants at once, from one read of the group's document (a
   * pager MESSAGE to a group needs all three). Undefined when there is no such group.
   */
  async forSending(
    groupUri: string,
    user: string,
    req: { anonymous: boolean },
  ): Promise<
    { refuse: { code: number; reason: string } } | { members: string[]; maxParticipants: number } | undefined
  > {
    const group = await this.load(groupUri);
    if (!group) return undefined;
    const decided = await this.decide(group, user, req.anonymous);
    if ('refuse' in decided) return decided;
    const members = await this.expand(group);
    if ('kind' in members) throw new GroupListError(group.uri, members.detail);
    return { members, maxParticipants: this.maxOf(group) };
  }

  /**
   * The group's members, canonical, in document order without duplicates: entries, and what
   * entry-ref and external references to the owner's resource-lists documents name.
   * Undefined when there is no such group; a reference that does not resolve is an error.
   */
  async members(groupUri: string): Promise<string[] | undefined> {
    const group = await this.load(groupUri);
    if (!group) return undefined;
    const r = await this.expand(group);
    if ('kind' in r) throw new GroupListError(groupUri, r.detail);
    return r;
  }

  /**
   * The members the focus invites when the group's conference starts: all of them (expanded)
   * when the group says <invite-members>true</invite-members>, else none. A list that does
   * not resolve invites nobody (joining by INVITE still works for whoever the rules admit).
   */
  async membersToInvite(groupUri: string): Promise<string[]> {
    const group = await this.load(groupUri);
    if (!group) return [];
    const flag = findChild(group.listService, group.scope, GROUPS_NS, 'invite-members');
    if (!flag || parseXsBoolean(collapse(textContent(flag))) !== true) return [];
    const members = await this.expand(group);
    return 'kind' in members ? [] : members;
  }

  /** The most participants the group may have: its max-participant-count under the operator's. */
  async maxParticipants(groupUri: string): Promise<number | undefined> {
    const group = await this.load(groupUri);
    return group ? this.maxOf(group) : undefined;
  }

  private maxOf(group: LoadedGroup): number {
    const operator = this.deps.operatorMax();
    const el = findChild(group.listService, group.scope, GROUPS_NS, 'max-participant-count');
    const own = el ? parseXsInteger(collapse(textContent(el))) : undefined;
    return own !== undefined && own >= 1 ? Math.min(own, operator) : operator;
  }

  private async decide(group: LoadedGroup, user: string, anonymous: boolean): Promise<PolicyDecision> {
    const who = this.deps.canonical(user) ?? user;
    const ruleset = findChild(group.listService, group.scope, COMMON_POLICY_NS, 'ruleset');
    if (!ruleset) {
      // no rules: the group is its members' (and its owner's)
      if (anonymous) return refuse(403, 'the group does not allow anonymous participants');
      if (who === group.owner) return { allow: true };
      const members = await this.expand(group);
      if ('kind' in members) return refuse(403, `the group's member list does not resolve: ${members.detail}`);
      return members.includes(who) ? { allow: true } : refuse(403, `${who} is not a member of the group`);
    }
    const members = await this.expand(group);
    const rulesScope = group.scope.child(ruleset);
    const rules = applyingRules(ruleset, rulesScope, {
      watcher: who,
      // the focus knows who asked for privacy: rules are about that user; being shown
      // anonymous to the others is what allow-anonymity decides
      anonymous: false,
      now: new Date(),
      canonical: (u) => this.deps.canonical(u),
      // an external-list naming the group itself: its members
      externalListMembers: (anchor) =>
        !('kind' in members) && normalizeUri(anchor) === group.uri ? members : undefined,
    });
    let join = false;
    let anonymity = false;
    for (const r of rules) {
      for (const actions of findChildren(r.el, r.scope, COMMON_POLICY_NS, 'actions')) {
        const inner = r.scope.child(actions);
        for (const jh of findChildren(actions, inner, GROUPS_NS, 'join-handling'))
          if (collapse(textContent(jh)) === 'allow') join = true;
        for (const an of findChildren(actions, inner, GROUPS_NS, 'allow-anonymity'))
          if (parseXsBoolean(collapse(textContent(an))) === true) anonymity = true;
      }
    }
    if (!join) return refuse(403, `the group's rules do not allow ${who}`);
    if (anonymous && !anonymity) return refuse(403, 'the group does not allow anonymous participants');
    return { allow: true };
  }

  private expand(group: LoadedGroup): Promise<string[] | { kind: string; detail: string }> {
    group.expanded ??= this.expandList(group);
    return group.expanded;
  }

  private async expandList(group: LoadedGroup): Promise<string[] | { kind: string; detail: string }> {
    const list = findChild(group.listService, group.scope, GROUPS_NS, 'list');
    if (!list) return [];
    const r = await resolveMemberList(
      list,
      group.scope.child(list),
      `the list of group ${group.uri}`,
      async (ref) => (await this.deps.docs.get(ref))?.body,
      {
        // references stay inside the owner's own documents: a group never discloses what its owner could not read
        mayRead: (ref) => ref.tree === 'users' && ref.xui === group.owner,
        maxMembers: this.deps.maxMembers(),
        maxDepth: 4,
        canonical: (u) => this.deps.canonical(u) ?? normalizeUri(u),
      },
      GROUPS_NS,
    );
    if ('kind' in r) return r;
    return r.members.map((m) => m.uri);
  }

  private async load(groupUri: string): Promise<LoadedGroup | undefined> {
    const key = normalizeUri(groupUri);
    const doc = await this.deps.docs.holderOf(groupsUsage.auid, 'uri', key);
    if (!doc) return undefined;
    const parsed = parseXml(doc.body);
    const rootScope = NamespaceScope.root().child(parsed.root);
    for (const ls of findChildren(parsed.root, rootScope, GROUPS_NS, 'list-service')) {
      const u = plainAttr(ls, 'uri');
      if (u !== undefined && normalizeUri(u) === key)
        return { uri: key, owner: doc.xui, listService: ls, scope: rootScope.child(ls) };
    }
    return undefined;
  }
}

/** A group whose member references do not resolve (a missing document, a bad reference). */
export class GroupListError extends Error {
  constructor(
    readonly group: string,
    readonly detail: string,
  ) {
    super(`group ${group}: ${detail}`);
    this.name = 'GroupListError';
  }
}
