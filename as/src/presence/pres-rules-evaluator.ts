/**
 * What a presentity's pres-rules (RFC 5025, in the common policy format of RFC 4745 with the
 * OMA condition extensions) decide for one watcher: the sub-handling and what the watcher may
 * see. Pure: no I/O. The XDMS validates and stores the document; presence decides with it.
 */
import {
  NamespaceScope,
  type XmlDocument,
  type XmlElement,
  childElements,
  findChildren,
  parseXml,
  textContent,
} from '../xml/xml-tree.js';
import { aor, parseUri } from '../sip/index.js';
import { collapse, parseXsBoolean, parseXsDateTime } from '../xml/xsd-datatypes.js';
import { plainAttr } from '../xdm/usages/schema-checker.js';
import {
  BOOLEAN_PERMISSIONS,
  COMMON_POLICY_NS,
  OMA_COMMON_POLICY_NS,
  PRES_RULES_NS,
  SUB_HANDLINGS,
  SUB_HANDLING_VALUE,
  USER_INPUT_LEVELS,
  emptyProvideSet,
  type ProvideSet,
  type SubHandling,
  type UserInputLevel,
} from '../xdm/usages/pres-rules.js';

const CP = COMMON_POLICY_NS;
const PR = PRES_RULES_NS;
const OCP = OMA_COMMON_POLICY_NS;

export interface PresRulesRequest {
  /** The watcher's identity (a SIP URI, authenticated unless `anonymous`). */
  watcher: string;
  /** No authenticated identity, or the watcher asked for privacy. */
  anonymous: boolean;
  now: Date;
  /** The presentity's current sphere, when known (sphere conditions fail when it is not). */
  sphere?: string;
  /**
   * Members of the list an ocp:external-list entry points at (its `anc` XCAP URI), or undefined
   * when the caller cannot resolve it (the condition then does not hold for that entry).
   */
  externalListMembers?: (anchor: string) => readonly string[] | undefined;
  /**
   * The address of record of a URI naming one of our users by another public identity (an
   * alias, a number, pres:/im:), so that a rule naming any of them matches the user.
   */
  canonical?: (uri: string) => string | undefined;
}

export interface PresRulesDecision {
  subHandling: SubHandling;
  /** Ids of the rules that applied, in document order. */
  matchedRuleIds: string[];
  transformations: ProvideSet;
}

// ---------------------------------------------------------------------------
// Evaluation (RFC 4745 sections 7 and 10, RFC 5025 section 4, OMA common policy)
// ---------------------------------------------------------------------------

interface Identity {
  /** Comparison key (address of record for sip/sips/tel). */
  key: string;
  /** Lowercased host part, when the URI has one. */
  host: string | undefined;
}

function identityOf(uri: string, canonical?: (uri: string) => string | undefined): Identity {
  let u = uri.trim().replace(/^<(.*)>$/s, '$1');
  u = canonical?.(u) ?? u;
  try {
    const p = parseUri(u);
    return { key: aor(p), host: p.scheme === 'tel' ? undefined : p.host };
  } catch {
    const at = /@([^;?>/]+)/.exec(u);
    return { key: u, host: at?.[1]?.toLowerCase() };
  }
}

interface RuleView {
  el: XmlElement;
  scope: NamespaceScope;
  id: string;
  /** The condition elements (children of every cp:conditions) with their expanded names. */
  conditions: Array<{ el: XmlElement; scope: NamespaceScope; ns: string | undefined; local: string }>;
}

function expandedChildren(
  parent: XmlElement,
  scope: NamespaceScope,
): Array<{ el: XmlElement; scope: NamespaceScope; ns: string | undefined; local: string }> {
  return childElements(parent).map((k) => {
    const s = scope.child(k);
    const { ns, local } = s.expand(k.name);
    return { el: k, scope: s, ns, local };
  });
}

class RuleEvaluator {
  private readonly watcher: Identity;

  constructor(private readonly req: PresRulesRequest) {
    this.watcher = identityOf(req.watcher, req.canonical);
  }

  private sameIdentity(uri: string): boolean {
    return identityOf(uri, this.req.canonical).key === this.watcher.key;
  }

  private inDomain(domain: string): boolean {
    return this.watcher.host !== undefined && this.watcher.host === domain.trim().toLowerCase();
  }

  identity(cond: XmlElement, scope: NamespaceScope): boolean {
    if (this.req.anonymous) return false;
    for (const k of expandedChildren(cond, scope)) {
      if (k.ns !== CP) continue; // unknown identity extensions never match
      if (k.local === 'one') {
        const id = plainAttr(k.el, 'id');
        if (id !== undefined && this.sameIdentity(id)) return true;
      } else if (k.local === 'many') {
        const domain = plainAttr(k.el, 'domain');
        if (domain !== undefined && !this.inDomain(domain)) continue;
        let excluded = false;
        for (const e of findChildren(k.el, k.scope, CP, 'except')) {
          const eid = plainAttr(e, 'id');
          const edom = plainAttr(e, 'domain');
          if ((eid !== undefined && this.sameIdentity(eid)) || (edom !== undefined && this.inDomain(edom))) {
            excluded = true;
            break;
          }
        }
        if (!excluded) return true;
      }
    }
    return false;
  }

  externalList(cond: XmlElement, scope: NamespaceScope): boolean {
    if (this.req.anonymous || !this.req.externalListMembers) return false;
    for (const e of findChildren(cond, scope, OCP, 'entry')) {
      const anc = plainAttr(e, 'anc');
      if (anc === undefined) continue;
      const members = this.req.externalListMembers(anc.trim());
      if (members?.some((m) => this.sameIdentity(m))) return true;
    }
    return false;
  }

  validity(cond: XmlElement, scope: NamespaceScope): boolean {
    const now = this.req.now.getTime();
    let from: Date | undefined;
    for (const k of expandedChildren(cond, scope)) {
      if (k.ns !== CP) continue;
      if (k.local === 'from') {
        from = parseXsDateTime(textContent(k.el));
      } else if (k.local === 'until') {
        const until = parseXsDateTime(textContent(k.el));
        if (from && until && from.getTime() <= now && now < until.getTime()) return true;
        from = undefined;
      }
    }
    return false;
  }

  sphere(cond: XmlElement): boolean {
    const value = plainAttr(cond, 'value');
    const current = this.req.sphere?.trim().toLowerCase();
    if (value === undefined || !current) return false;
    return value
      .toLowerCase()
      .split(/[ \t\r\n]+/)
      .includes(current);
  }

  /** The rule has an identity-like condition (identity, external-list, anonymous-request) that holds. */
  identityHit(rule: RuleView): boolean {
    for (const c of rule.conditions) {
      if (c.ns === CP && c.local === 'identity' && this.identity(c.el, c.scope)) return true;
      if (c.ns === OCP && c.local === 'external-list' && this.externalList(c.el, c.scope)) return true;
      if (c.ns === OCP && c.local === 'anonymous-request' && this.req.anonymous) return true;
    }
    return false;
  }

  /** All conditions of the rule hold (no conditions: always). */
  applies(rule: RuleView, otherRuleHit: boolean): boolean {
    for (const c of rule.conditions) {
      let ok: boolean;
      if (c.ns === CP && c.local === 'identity') ok = this.identity(c.el, c.scope);
      else if (c.ns === CP && c.local === 'sphere') ok = this.sphere(c.el);
      else if (c.ns === CP && c.local === 'validity') ok = this.validity(c.el, c.scope);
      else if (c.ns === OCP && c.local === 'external-list') ok = this.externalList(c.el, c.scope);
      else if (c.ns === OCP && c.local === 'anonymous-request') ok = this.req.anonymous;
      else if (c.ns === OCP && c.local === 'other-identity') ok = !this.req.anonymous && !otherRuleHit;
      else ok = false; // a condition we do not understand never holds
      if (!ok) return false;
    }
    return true;
  }
}

function addAll(target: string[], values: Iterable<string>): void {
  for (const v of values) if (!target.includes(v)) target.push(v);
}

/** Merges the transformations element of one applying rule into `set` (union of permissions). */
function mergeTransformations(set: ProvideSet, tr: XmlElement, scope: NamespaceScope): void {
  for (const k of expandedChildren(tr, scope)) {
    if (k.ns !== PR) continue;
    const name = k.local;
    if (Object.hasOwn(BOOLEAN_PERMISSIONS, name)) {
      if (parseXsBoolean(textContent(k.el)) === true)
        set[BOOLEAN_PERMISSIONS[name as keyof typeof BOOLEAN_PERMISSIONS]] = true;
      continue;
    }
    switch (name) {
      case 'provide-services':
      case 'provide-persons':
      case 'provide-devices': {
        const target: {
          all: boolean;
          occurrenceIds: string[];
          classes: string[];
          serviceUris?: string[];
          serviceUriSchemes?: string[];
          deviceIds?: string[];
        } = name === 'provide-services' ? set.services : name === 'provide-persons' ? set.persons : set.devices;
        for (const s of expandedChildren(k.el, k.scope)) {
          if (s.ns !== PR) continue;
          const v = collapse(textContent(s.el));
          switch (s.local) {
            case 'all-services':
            case 'all-persons':
            case 'all-devices':
              target.all = true;
              break;
            case 'service-uri':
              if (target.serviceUris) addAll(target.serviceUris, [v]);
              break;
            case 'service-uri-scheme':
              if (target.serviceUriSchemes) addAll(target.serviceUriSchemes, [v.toLowerCase()]);
              break;
            case 'deviceID':
              if (target.deviceIds) addAll(target.deviceIds, [v]);
              break;
            case 'occurrence-id':
              addAll(target.occurrenceIds, [v]);
              break;
            case 'class':
              addAll(target.classes, [v]);
              break;
          }
        }
        break;
      }
      case 'provide-user-input': {
        const v = collapse(textContent(k.el)) as UserInputLevel;
        const i = USER_INPUT_LEVELS.indexOf(v);
        if (i > USER_INPUT_LEVELS.indexOf(set.userInput)) set.userInput = v;
        break;
      }
      case 'provide-unknown-attribute': {
        const an = plainAttr(k.el, 'name');
        const ans = plainAttr(k.el, 'ns');
        if (an !== undefined && ans !== undefined && parseXsBoolean(textContent(k.el)) === true) {
          if (!set.unknownAttributes.some((u) => u.ns === ans && u.name === an))
            set.unknownAttributes.push({ ns: ans, name: an });
        }
        break;
      }
      case 'provide-all-attributes':
        set.allAttributes = true;
        break;
    }
  }
}

/** One rule of a ruleset that applies to a request: its element, scope inside it, and id. */
export interface ApplyingRule {
  el: XmlElement;
  scope: NamespaceScope;
  id: string;
}

/**
 * The rules of a common policy ruleset (RFC 4745, OMA conditions) whose conditions all hold
 * for the request, in document order: what every user of common policy combines with its own
 * actions (pres-rules here, a group's join and anonymity permissions in the IM server).
 * `scope` is the scope inside the cp:ruleset element.
 */
export function applyingRules(ruleset: XmlElement, scope: NamespaceScope, request: PresRulesRequest): ApplyingRule[] {
  const rules: RuleView[] = findChildren(ruleset, scope, CP, 'rule').map((r) => {
    const inner = scope.child(r);
    const conditions = findChildren(r, inner, CP, 'conditions').flatMap((cs) => expandedChildren(cs, inner.child(cs)));
    return { el: r, scope: inner, id: plainAttr(r, 'id') ?? '', conditions };
  });
  const ev = new RuleEvaluator(request);
  const hits = rules.map((r) => ev.identityHit(r));
  const hitCount = hits.filter(Boolean).length;
  return rules
    .filter((r, i) => ev.applies(r, hitCount - (hits[i] ? 1 : 0) > 0))
    .map(({ el, scope: s, id }) => ({ el, scope: s, id }));
}

/**
 * Evaluates a pres-rules document for one subscription (RFC 4745 / RFC 5025, OMA conditions).
 *
 * A rule applies when all of its conditions hold. Among the applying rules the sub-handling
 * with the highest value wins (block 0 < confirm 10 < polite-block 20 < allow 30; 'block' when
 * none of them has one) and the transformations are combined as the union of the permissions.
 * Returns undefined when no rule applies (or the document is not a ruleset): the caller applies
 * its default.
 */
export function evaluatePresRules(doc: XmlDocument | string, request: PresRulesRequest): PresRulesDecision | undefined {
  const d = typeof doc === 'string' ? parseXml(doc) : doc;
  const rootScope = NamespaceScope.root().child(d.root);
  const rootName = rootScope.expand(d.root.name);
  if (rootName.ns !== CP || rootName.local !== 'ruleset') return undefined;
  const applying = applyingRules(d.root, rootScope, request);
  if (applying.length === 0) return undefined;

  let best: SubHandling | undefined;
  const transformations = emptyProvideSet();
  for (const r of applying) {
    for (const a of findChildren(r.el, r.scope, CP, 'actions')) {
      for (const sh of findChildren(a, r.scope.child(a), PR, 'sub-handling')) {
        const v = collapse(textContent(sh)) as SubHandling;
        if (!(SUB_HANDLINGS as readonly string[]).includes(v)) continue;
        if (best === undefined || SUB_HANDLING_VALUE[v] > SUB_HANDLING_VALUE[best]) best = v;
      }
    }
    for (const t of findChildren(r.el, r.scope, CP, 'transformations'))
      mergeTransformations(transformations, t, r.scope.child(t));
  }
  return { subHandling: best ?? 'block', matchedRuleIds: applying.map((r) => r.id), transformations };
}
