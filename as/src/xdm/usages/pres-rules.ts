/**
 * Application usage "pres-rules" (RFC 5025): presence authorization rules, written in the
 * common policy format (RFC 4745) with the OMA condition extensions. Schemas:
 * schemas/common-policy.xsd, schemas/pres-rules.xsd, schemas/oma-common-policy.xsd.
 *
 * Pure: no I/O. Validation and the permission vocabulary (what a rule can grant: {@link
 * ProvideSet}); {@link checkRuleset} is the common policy validation reused by other usages (OMA
 * groups embed a ruleset). What the rules decide for a watcher is presence's business:
 * presence/pres-rules-evaluator.ts.
 */
import { type XmlDocument, xmlNamespaces } from '../../xml/xml-tree.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import { Checker, type XNode, anyOther, choice, el, seq } from './schema-checker.js';
import { collapse } from '../../xml/xsd-datatypes.js';
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
export const SUB_HANDLING_VALUE: Readonly<Record<SubHandling, number>> = {
  block: 0,
  confirm: 10,
  'polite-block': 20,
  allow: 30,
};
export const SUB_HANDLINGS = ['block', 'confirm', 'polite-block', 'allow'] as const;

export type UserInputLevel = 'false' | 'bare' | 'thresholds' | 'full';
export const USER_INPUT_LEVELS = ['false', 'bare', 'thresholds', 'full'] as const;

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
const CONDITIONS_MODEL = choice(
  0,
  Infinity,
  el(CP, 'identity'),
  el(CP, 'sphere'),
  el(CP, 'validity'),
  anyOther([CP], 1, 1),
);
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
  const model = choice(
    1,
    1,
    el(PR, allName),
    choice(0, Infinity, ...selectors.map((s) => el(PR, s)), anyOther([PR], 1, 1)),
  );
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
