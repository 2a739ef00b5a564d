/**
 * What a registered contact says it can do (RFC 3840 feature parameters on the REGISTER's
 * Contact: `+sip.instance`, `+g.oma.sip-im`, `methods`, `+g.3gpp.icsi-ref` ...) and which contacts
 * a request may go to: the caller's preferences (RFC 3841 Accept-Contact / Reject-Contact) and
 * the preference of an MSRP session for contacts that registered the OMA IM feature tag.
 * Pure: no I/O.
 */
import { splitHeaderList } from '../sip/message.js';
import { parseNameAddr, parseParams, unquote } from '../sip/name-addr.js';

/** Parameter name (lowercased) → raw value ('' for a parameter without one, quotes removed). */
export type ContactParams = Record<string, string>;

/** The OMA SIMPLE IM feature tag (OMA-TS-SIMPLE_IM): the contact takes IM sessions and pager messages. */
export const IM_FEATURE_TAG = '+g.oma.sip-im';

/** RFC 3840 section 10's base tags go without the '+'; every other feature tag starts with one. */
const BASE_TAGS = new Set([
  'audio',
  'automata',
  'class',
  'duplex',
  'data',
  'control',
  'mobility',
  'description',
  'events',
  'priority',
  'methods',
  'schemes',
  'application',
  'video',
  'language',
  'type',
  'isfocus',
  'actor',
  'text',
  'extensions',
]);

/** Header parameters of Contact that change with every refresh or are the registrar's business, not the device's. */
const NOT_KEPT = new Set(['expires']);

export function isFeatureTag(name: string): boolean {
  return name.startsWith('+') || BASE_TAGS.has(name);
}

/**
 * The parameters each contact of a REGISTER's Contact header(s) carries, by contact URI. A
 * malformed element is skipped (the registrar accepted the REGISTER; we only lose its tags).
 * The REGISTER's Allow stands for `methods` on the contacts that do not give one.
 */
export function contactParamsOf(contactHeader: string, allow?: string): Map<string, ContactParams> {
  const out = new Map<string, ContactParams>();
  for (const element of splitHeaderList(contactHeader)) {
    let parsed;
    try {
      parsed = parseNameAddr(element);
    } catch {
      continue;
    }
    if (parsed.uri === '*') continue;
    const params: ContactParams = {};
    for (const [name, value] of parsed.params) {
      if (NOT_KEPT.has(name)) continue;
      params[name] = value.startsWith('"') ? unquote(value) : value;
    }
    const allowed = allow
      ?.split(',')
      .map((m) => m.trim())
      .filter(Boolean);
    if (params.methods === undefined && allowed?.length) params.methods = allowed.join(',');
    out.set(parsed.uri, params);
  }
  return out;
}

/**
 * The values a feature takes (RFC 3840 section 9): a parameter without a value is the boolean
 * TRUE; a quoted list of tokens (`"INVITE,MESSAGE"`), of negated tokens (`"!x"`), or of
 * `<strings>`. Tokens compare case-insensitively, strings exactly. Numeric ranges are not read.
 */
interface FeatureValues {
  any: string[];
  not: string[];
}

function featureValues(raw: string): FeatureValues {
  if (raw === '') return { any: ['true'], not: [] };
  const values: FeatureValues = { any: [], not: [] };
  for (const item of raw.split(',')) {
    const v = item.trim();
    if (v === '') continue;
    if (v.startsWith('<') && v.endsWith('>')) values.any.push(v);
    else if (v.startsWith('!')) values.not.push(v.slice(1).toLowerCase());
    else values.any.push(v.toLowerCase());
  }
  return values;
}

/** Does one feature of a contact take a value the predicate allows? */
function featureMatches(contactRaw: string, predicateRaw: string): boolean {
  const contact = featureValues(contactRaw);
  const wanted = featureValues(predicateRaw);
  if (wanted.any.length > 0 && !wanted.any.some((v) => contact.any.includes(v))) return false;
  return !wanted.not.some((v) => contact.any.includes(v));
}

/** One Accept-Contact or Reject-Contact value: its feature predicate and its directives. */
export interface FeaturePreference {
  features: ContactParams;
  require: boolean;
  explicit: boolean;
}

/** Parses Accept-Contact / Reject-Contact (`*;+g.oma.sip-im;require;explicit`, several comma-separated). */
export function parsePreferences(header: string | undefined): FeaturePreference[] {
  if (!header) return [];
  const out: FeaturePreference[] = [];
  for (const element of splitHeaderList(header)) {
    const semi = element.indexOf(';');
    if (element.slice(0, semi < 0 ? undefined : semi).trim() !== '*') continue;
    let params: Map<string, string>;
    try {
      params = parseParams(semi < 0 ? '' : element.slice(semi));
    } catch {
      continue;
    }
    const features: ContactParams = {};
    for (const [name, value] of params) {
      if (isFeatureTag(name)) features[name] = value.startsWith('"') ? unquote(value) : value;
    }
    out.push({ features, require: params.has('require'), explicit: params.has('explicit') });
  }
  return out;
}

/** The contact's features; a contact that registered none has the implicit ones only (its methods). */
function featuresOf(params: ContactParams | undefined): ContactParams {
  const out: ContactParams = {};
  for (const [name, value] of Object.entries(params ?? {})) if (isFeatureTag(name)) out[name] = value;
  return out;
}

/** Every feature of the predicate is one the contact declared and takes a wanted value. */
function matchesAll(contact: ContactParams, wanted: ContactParams): boolean {
  return Object.entries(wanted).every(([name, value]) => name in contact && featureMatches(contact[name]!, value));
}

/** The contact declared every feature the predicate names (so a mismatch is known, not a guess). */
function declaresAll(contact: ContactParams, wanted: ContactParams): boolean {
  return Object.keys(wanted).every((name) => name in contact);
}

/**
 * Whether a contact may receive a request of `method` (RFC 3261 Allow, RFC 3840 `methods`): a
 * contact that declared its methods takes only those; one that declared nothing takes all.
 */
export function takesMethod(params: ContactParams | undefined, method: string): boolean {
  const methods = params?.methods;
  if (methods === undefined) return true;
  return featureValues(methods).any.includes(method.toLowerCase());
}

export function isImCapable(params: ContactParams | undefined): boolean {
  return params !== undefined && IM_FEATURE_TAG in params;
}

export interface TargetChoice {
  /** Contact URIs the request goes to (a subset of those given), in their order. */
  targets: string[];
  /** Whether any contact was left out (else the registrar's whole set is fine as it is). */
  narrowed: boolean;
}

/**
 * Chooses the contacts a request goes to: those that take its method, minus those a
 * Reject-Contact predicate matches (RFC 3841: only contacts that declared all of its features),
 * minus those a required Accept-Contact predicate rules out (explicit: every contact not
 * matching it; otherwise only those that declared its features with other values). Accept-Contact
 * without `require` only orders a sequential search; we fork in parallel, so it removes nothing.
 * `preferIm` (MSRP sessions): when some contacts registered the IM feature tag, only they.
 */
export function chooseTargets(
  contacts: ReadonlyArray<{ uri: string; params?: ContactParams }>,
  request: { method: string; accept?: FeaturePreference[]; reject?: FeaturePreference[]; preferIm?: boolean },
): TargetChoice {
  let left = contacts.filter((c) => takesMethod(c.params, request.method));
  for (const r of request.reject ?? []) {
    if (Object.keys(r.features).length === 0) continue;
    left = left.filter((c) => {
      const f = featuresOf(c.params);
      return !(declaresAll(f, r.features) && matchesAll(f, r.features));
    });
  }
  for (const a of request.accept ?? []) {
    if (!a.require || Object.keys(a.features).length === 0) continue;
    left = left.filter((c) => {
      const f = featuresOf(c.params);
      if (matchesAll(f, a.features)) return true;
      return !a.explicit && !declaresAll(f, a.features);
    });
  }
  if (request.preferIm && left.some((c) => isImCapable(c.params))) left = left.filter((c) => isImCapable(c.params));
  return { targets: left.map((c) => c.uri), narrowed: left.length !== contacts.length };
}
