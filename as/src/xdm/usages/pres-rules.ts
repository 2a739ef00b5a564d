/**
 * Application usage "pres-rules" (RFC 5025): presence authorization rules, written in the
 * common policy format (RFC 4745) with the OMA condition extensions. Schemas:
 * schemas/common-policy.xsd, schemas/pres-rules.xsd, schemas/oma-common-policy.xsd.
 *
 * Pure: no I/O. Besides validation, exports {@link evaluatePresRules}, the rule evaluation the
 * presence server applies to a subscription, and {@link checkRuleset}, the common policy
 * validation reused by other usages (OMA groups embed a ruleset).
 */
import {
  NamespaceScope,
  type XmlDocument,
  type XmlElement,
  childElements,
  findChildren,
  parseXml,
  textContent,
  xmlNamespaces,
} from '../../xml/xml-tree.js';
import { aor, parseUri } from '../../sip/index.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import {
  Checker,
  type XNode,
  anyOther,
  choice,
  el,
  plainAttr,
  seq,
} from './schema-checker.js';
import { collapse, parseXsBoolean, parseXsDateTime } from '../../xml/xsd-datatypes.js';
import { uriProblem } from '../../xml/uri-check.js';
import { checkUniqueAttr, xcapListUriProblem } from './resource-lists.js';

export const COMMON_POLICY_NS = xmlNamespaces.commonPolicy;
export const PRES_RULES_NS = xmlNamespaces.presRules;
export const OMA_COMMON_POLICY_NS = xmlNamespaces.omaPresRules;
const CP = COMMON_POLICY_NS;
const PR = PRES_RULES_NS;
const OCP = OMA_COMMON_POLICY_NS;

// ---------------------------------------------------------------------------
// Types of the evaluation
// ---------------------------------------------------------------------------

export type SubHandling = 'block' | 'confirm' | 'polite-block' | 'allow';
/** RFC 5025 values: the highest value among the applying rules wins. */
export const SUB_HANDLING_VALUE: Readonly<Record<SubHandling, number>> = { block: 0, confirm: 10, 'polite-block': 20, allow: 30 };
const SUB_HANDLINGS = ['block', 'confirm', 'polite-block', 'allow'] as const;

export type UserInputLevel = 'false' | 'bare' | 'thresholds' | 'full';
const USER_INPUT_LEVELS = ['false', 'bare', 'thresholds', 'full'] as const;

/** The boolean provide-* permissions, element name -> ProvideSet property. */
export const BOOLEAN_PERMISSIONS = {
  'provide-activities': 'activities',
  'provide-class': 'class',
  'provide-deviceID': 'deviceID',
  'provide-mood': 'mood',
  'provide-place-is': 'placeIs',
  'provide-place-type': 'placeType',
  'provide-privacy': 'privacy',
  'provide-relationship': 'relationship',
  'provide-status-icon': 'statusIcon',
  'provide-sphere': 'sphere',
  'provide-time-offset': 'timeOffset',
  'provide-note': 'note',
} as const;
export type BooleanPermission = (typeof BOOLEAN_PERMISSIONS)[keyof typeof BOOLEAN_PERMISSIONS];

/** Which tuples (services) / persons / devices are shown: everything, or those matching any selector. */
export interface ServiceSelection {
  all: boolean;
  serviceUris: string[];
  serviceUriSchemes: string[];
  occurrenceIds: string[];
  classes: string[];
}
export interface PersonSelection {
  all: boolean;
  occurrenceIds: string[];
  classes: string[];
}
export interface DeviceSelection {
  all: boolean;
  deviceIds: string[];
  occurrenceIds: string[];
  classes: string[];
}

/** The combined transformations: what the watcher may see. Absent permission = not granted. */
export interface ProvideSet extends Record<BooleanPermission, boolean> {
  services: ServiceSelection;
  persons: PersonSelection;
  devices: DeviceSelection;
  userInput: UserInputLevel;
  /** Unknown presence elements granted, by namespace and local name. */
  unknownAttributes: Array<{ ns: string; name: string }>;
  /** provide-all-attributes: every attribute of the selected elements. */
  allAttributes: boolean;
}

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
}

export interface PresRulesDecision {
  subHandling: SubHandling;
  /** Ids of the rules that applied, in document order. */
  matchedRuleIds: string[];
  transformations: ProvideSet;
}

/** A ProvideSet that grants nothing. */
export function emptyProvideSet(): ProvideSet {
  const set = {
    services: { all: false, serviceUris: [], serviceUriSchemes: [], occurrenceIds: [], classes: [] },
    persons: { all: false, occurrenceIds: [], classes: [] },
    devices: { all: false, deviceIds: [], occurrenceIds: [], classes: [] },
    userInput: 'false',
    unknownAttributes: [],
    allAttributes: false,
  } as Omit<ProvideSet, BooleanPermission> as ProvideSet;
  for (const p of Object.values(BOOLEAN_PERMISSIONS)) set[p] = false;
  return set;
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

const RULE_MODEL = seq(1, 1, el(CP, 'conditions', 0, 1), el(CP, 'actions', 0, 1), el(CP, 'transformations', 0, 1));
const CONDITIONS_MODEL = choice(0, Infinity, el(CP, 'identity'), el(CP, 'sphere'), el(CP, 'validity'), anyOther([CP], 1, 1));
const IDENTITY_MODEL = choice(1, Infinity, el(CP, 'one'), el(CP, 'many'), anyOther([CP], 1, 1));
const VALIDITY_MODEL = seq(1, Infinity, el(CP, 'from'), el(CP, 'until'));
const OPEN_MODEL = anyOther([CP]);

/** Hooks for the actions and transformations of one usage of common policy. */
export interface RulesetExtensions {
  /** Validates one child of cp:actions (every namespace but common policy's own). */
  action?(c: Checker, node: XNode): void;
  /** Validates one child of cp:transformations. */
  transformation?(c: Checker, node: XNode): void;
}

/**
 * Validates a cp:ruleset element: rules with unique ids (uniqueness failure with alternatives),
 * conditions of common policy and OMA, and the actions / transformations through `ext`.
 */
export function checkRuleset(c: Checker, node: XNode, ext: RulesetExtensions = {}): void {
  c.attrs(node, {});
  const rules = c.children(node);
  if (!c.model(node, rules, el(CP, 'rule', 0, Infinity))) return;
  for (const r of rules) {
    const attrs = c.attrs(r, { required: ['id'] });
    c.ncName(r, 'id', attrs.get('id'));
    const parts = c.children(r);
    if (!c.model(r, parts, RULE_MODEL)) continue;
    for (const p of parts) {
      c.attrs(p, {});
      const kids = c.children(p);
      if (p.local === 'conditions') {
        if (c.model(p, kids, CONDITIONS_MODEL)) for (const k of kids) checkCondition(c, k);
      } else if (c.model(p, kids, OPEN_MODEL)) {
        const hook = p.local === 'actions' ? ext.action : ext.transformation;
        for (const k of kids) hook?.(c, k);
      }
    }
  }
  checkUniqueAttr(c, node, rules, 'id', true);
}

function checkIdUri(c: Checker, what: string, v: string | undefined): void {
  if (v === undefined) return;
  const p = uriProblem(v);
  if (p) c.constraint(`${what} "${v}" ${p}`);
}

function checkCondition(c: Checker, node: XNode): void {
  if (node.ns === CP) {
    switch (node.local) {
      case 'identity': {
        c.attrs(node, {});
        const kids = c.children(node);
        if (!c.model(node, kids, IDENTITY_MODEL)) return;
        for (const k of kids) {
          if (k.ns !== CP) continue;
          if (k.local === 'one') {
            const a = c.attrs(k, { required: ['id'] });
            c.model(k, c.children(k), anyOther([CP], 0, 1));
            checkIdUri(c, 'identity one id', a.get('id'));
          } else {
            c.attrs(k, { optional: ['domain'] });
            const ex = c.children(k);
            if (!c.model(k, ex, choice(0, Infinity, el(CP, 'except'), anyOther([CP], 1, 1)))) continue;
            for (const e of ex) {
              if (e.ns !== CP) continue;
              const a = c.attrs(e, { optional: ['domain', 'id'] });
              c.empty(e);
              checkIdUri(c, 'identity except id', a.get('id'));
            }
          }
        }
        return;
      }
      case 'sphere':
        c.attrs(node, { required: ['value'] });
        c.empty(node);
        return;
      case 'validity': {
        c.attrs(node, {});
        const kids = c.children(node);
        if (!c.model(node, kids, VALIDITY_MODEL)) return;
        for (const k of kids) {
          c.attrs(k, {});
          c.dateTime(k);
        }
        return;
      }
    }
    return;
  }
  if (node.ns === OCP) {
    switch (node.local) {
      case 'external-list': {
        c.attrs(node, { foreign: true });
        const kids = c.children(node);
        if (!c.model(node, kids, el(OCP, 'entry', 0, Infinity))) return;
        for (const k of kids) {
          const a = c.attrs(k, { required: ['anc'], foreign: true });
          c.empty(k);
          const anc = a.get('anc');
          if (anc !== undefined) {
            const p = xcapListUriProblem(anc);
            if (p) c.constraint(`external-list entry anc "${anc}" ${p}`);
          }
        }
        return;
      }
      case 'anonymous-request':
      case 'other-identity':
        c.attrs(node, {});
        c.empty(node);
        return;
      default:
        c.schema(node, 'unknown condition of the OMA common policy namespace');
        return;
    }
  }
  // other namespaces: lax
}

function checkPresAction(c: Checker, node: XNode): void {
  if (node.ns !== PR) return; // lax
  if (node.local !== 'sub-handling') {
    c.schema(node, 'not an action of pres-rules (only sub-handling)');
    return;
  }
  c.attrs(node, {});
  c.enumeration(node, SUB_HANDLINGS);
}

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*$/;

function checkSelection(c: Checker, node: XNode, allName: string, selectors: readonly string[]): void {
  c.attrs(node, {});
  const kids = c.children(node);
  const model = choice(1, 1, el(PR, allName), choice(0, Infinity, ...selectors.map((s) => el(PR, s)), anyOther([PR], 1, 1)));
  if (!c.model(node, kids, model)) return;
  for (const k of kids) {
    if (k.ns !== PR) continue;
    c.attrs(k, {});
    if (k.local === allName) {
      c.empty(k);
      continue;
    }
    const v = collapse(c.text(k));
    if (k.local === 'service-uri' || k.local === 'deviceID') {
      const p = uriProblem(v);
      if (p) c.constraint(`${k.local} "${v}" ${p}`);
    } else if (k.local === 'service-uri-scheme' && !SCHEME_RE.test(v)) {
      c.schema(k, `value "${v}" is not a URI scheme`);
    } else if (v === '') {
      c.schema(k, 'must not be empty');
    }
  }
}

function checkPresTransformation(c: Checker, node: XNode): void {
  if (node.ns !== PR) return; // lax
  const name = node.local;
  if (Object.hasOwn(BOOLEAN_PERMISSIONS, name)) {
    c.attrs(node, {});
    c.boolean(node);
    return;
  }
  switch (name) {
    case 'provide-services':
      checkSelection(c, node, 'all-services', ['service-uri', 'service-uri-scheme', 'occurrence-id', 'class']);
      return;
    case 'provide-persons':
      checkSelection(c, node, 'all-persons', ['occurrence-id', 'class']);
      return;
    case 'provide-devices':
      checkSelection(c, node, 'all-devices', ['deviceID', 'occurrence-id', 'class']);
      return;
    case 'provide-user-input':
      c.attrs(node, {});
      c.enumeration(node, USER_INPUT_LEVELS);
      return;
    case 'provide-unknown-attribute':
      c.attrs(node, { required: ['name', 'ns'] });
      c.boolean(node);
      return;
    case 'provide-all-attributes':
      c.attrs(node, {});
      c.empty(node);
      return;
    default:
      c.schema(node, 'not a transformation of pres-rules');
  }
}

function validate(doc: XmlDocument, _ctx: ValidationContext): ValidationProblem[] {
  const c = new Checker(PR);
  const root = c.root(doc, CP, 'ruleset');
  if (root) checkRuleset(c, root, { action: checkPresAction, transformation: checkPresTransformation });
  return c.result();
}

export const presRulesUsage: ApplicationUsage = {
  auid: 'pres-rules',
  mimeType: 'application/auth-policy+xml',
  defaultNamespace: PR,
  namespaces: [PR, CP, OCP],
  validate,
  defaultDocument: () => undefined,
};

// ---------------------------------------------------------------------------
// Evaluation (RFC 4745 sections 7 and 10, RFC 5025 section 4, OMA common policy)
// ---------------------------------------------------------------------------

interface Identity {
  /** Comparison key (address of record for sip/sips/tel). */
  key: string;
  /** Lowercased host part, when the URI has one. */
  host: string | undefined;
}

function identityOf(uri: string): Identity {
  const u = uri.trim().replace(/^<(.*)>$/s, '$1');
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

function expandedChildren(parent: XmlElement, scope: NamespaceScope): Array<{ el: XmlElement; scope: NamespaceScope; ns: string | undefined; local: string }> {
  return childElements(parent).map((k) => {
    const s = scope.child(k);
    const { ns, local } = s.expand(k.name);
    return { el: k, scope: s, ns, local };
  });
}

class RuleEvaluator {
  private readonly watcher: Identity;

  constructor(private readonly req: PresRulesRequest) {
    this.watcher = identityOf(req.watcher);
  }

  private sameIdentity(uri: string): boolean {
    return identityOf(uri).key === this.watcher.key;
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
    return value.toLowerCase().split(/[ \t\r\n]+/).includes(current);
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
      if (parseXsBoolean(textContent(k.el)) === true) set[BOOLEAN_PERMISSIONS[name as keyof typeof BOOLEAN_PERMISSIONS]] = true;
      continue;
    }
    switch (name) {
      case 'provide-services':
      case 'provide-persons':
      case 'provide-devices': {
        const target: { all: boolean; occurrenceIds: string[]; classes: string[]; serviceUris?: string[]; serviceUriSchemes?: string[]; deviceIds?: string[] } =
          name === 'provide-services' ? set.services : name === 'provide-persons' ? set.persons : set.devices;
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
          if (!set.unknownAttributes.some((u) => u.ns === ans && u.name === an)) set.unknownAttributes.push({ ns: ans, name: an });
        }
        break;
      }
      case 'provide-all-attributes':
        set.allAttributes = true;
        break;
    }
  }
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

  const rules: RuleView[] = findChildren(d.root, rootScope, CP, 'rule').map((r) => {
    const scope = rootScope.child(r);
    const conditions = findChildren(r, scope, CP, 'conditions').flatMap((cs) => expandedChildren(cs, scope.child(cs)));
    return { el: r, scope, id: plainAttr(r, 'id') ?? '', conditions };
  });

  const ev = new RuleEvaluator(request);
  const hits = rules.map((r) => ev.identityHit(r));
  const hitCount = hits.filter(Boolean).length;
  const applying = rules.filter((r, i) => ev.applies(r, hitCount - (hits[i] ? 1 : 0) > 0));
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
    for (const t of findChildren(r.el, r.scope, CP, 'transformations')) mergeTransformations(transformations, t, r.scope.child(t));
  }
  return { subHandling: best ?? 'block', matchedRuleIds: applying.map((r) => r.id), transformations };
}
