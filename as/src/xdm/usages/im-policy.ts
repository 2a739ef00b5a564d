/**
 * Application usage "org.ims-as.im-policy" (ours): how the IM server treats the messages
 * addressed to a user - blocked / allowed senders, deferred delivery, history.
 * Schema and semantics: schemas/im-policy.xsd.
 *
 * Pure: no I/O. Exports the validator, {@link readImPolicy} (document -> settings, defaults for
 * what is absent) and {@link imPolicyVerdict} (the decision for one sender).
 */
import { NamespaceScope, type XmlDocument, childElements, escapeAttribute, textContent } from '../../xml/xml-tree.js';
import { aor, parseUri } from '../../sip/index.js';
import { type ApplicationUsage, type ValidationContext, type ValidationProblem } from './usage.js';
import { Checker, type XNode, anyOther, checkUnique, choice, el, plainAttr, seq } from './schema-checker.js';
import { collapse, parseXsBoolean, parseXsInteger } from '../../xml/xsd-datatypes.js';

export const IM_POLICY_NS = 'urn:ims-as:xml:im-policy';
const IMP = IM_POLICY_NS;

export type ImPolicyMode = 'block-list' | 'allow-only';
export type BlockedAction = 'reject' | 'discard';
const MODES = ['block-list', 'allow-only'] as const;
const ACTIONS = ['reject', 'discard'] as const;
export const MAX_HISTORY_MESSAGES = 100_000;
/** What the user's presence may say to hold their messages (presence-aware delivery). */
export type HoldCondition = 'closed' | 'busy';
export const HOLD_CONDITIONS: readonly HoldCondition[] = ['closed', 'busy'];

export interface SenderSet {
  /** Addresses of record (sip: for sip and sips alike, tel: numbers without visual separators). */
  uris: string[];
  /** Lowercased domains. */
  domains: string[];
}

export interface ImPolicy {
  mode: ImPolicyMode;
  blockedAction: BlockedAction;
  blocked: SenderSet;
  allowed: SenderSet;
  deferredDelivery: { enabled: boolean; networkStorage: boolean };
  /** enabled: every conversation is kept; conversations: the peers (AoR keys) whose conversations are kept anyway. */
  history: { enabled: boolean; maxMessages: number; conversations: string[] };
  /** What the user's presence must say for messages to be held while registered; empty: never held. */
  presenceAwareDelivery: { holdWhen: HoldCondition[] };
  /** Whether the IM server may publish an "in a chat" tuple in the user's presence. */
  publishImActivity: boolean;
  /**
   * Files (RFC 5547 offers) the user takes in sessions: not at all, only of these types
   * (`image/*`, `*` allowed; empty: any), only up to this size (an offer naming no size is
   * then refused too).
   */
  fileTransfer: { enabled: boolean; acceptTypes: string[]; maxSize?: number };
}

/** A media type, `type/*` or `*` of <file-transfer accept-types>. */
const FILE_TYPE_RE = /^(?:\*|[A-Za-z0-9!#$&^_.+-]+\/(?:\*|[A-Za-z0-9!#$&^_.+-]+))$/;

/** Whether a policy's accept-types take a file of `type` (case-insensitive; absent type: only `*`). */
export function acceptsFileType(acceptTypes: readonly string[], type: string | undefined): boolean {
  if (acceptTypes.length === 0) return true;
  const t = (type ?? '').split(';')[0]!.trim().toLowerCase();
  return acceptTypes.some((a) => {
    const x = a.toLowerCase();
    if (x === '*') return true;
    if (!t) return false;
    return x.endsWith('/*') ? t.startsWith(x.slice(0, -1)) : t === x;
  });
}

/** The policy of a user without document. */
export function defaultImPolicy(): ImPolicy {
  return {
    mode: 'block-list',
    blockedAction: 'reject',
    blocked: { uris: [], domains: [] },
    allowed: { uris: [], domains: [] },
    deferredDelivery: { enabled: true, networkStorage: false },
    history: { enabled: false, maxMessages: 1000, conversations: [] },
    presenceAwareDelivery: { holdWhen: [] },
    publishImActivity: true,
    fileTransfer: { enabled: true, acceptTypes: [] },
  };
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

const ROOT_MODEL = seq(
  1,
  1,
  el(IMP, 'blocked', 0, 1),
  el(IMP, 'allowed', 0, 1),
  el(IMP, 'deferred-delivery', 0, 1),
  el(IMP, 'history', 0, 1),
  el(IMP, 'presence-aware-delivery', 0, 1),
  el(IMP, 'publish-im-activity', 0, 1),
  el(IMP, 'file-transfer', 0, 1),
  anyOther([IMP]),
);
const SET_MODEL = choice(0, Infinity, el(IMP, 'entry'), el(IMP, 'domain'));
/** At most this many conversations kept one by one (beyond: keep all history). */
export const MAX_KEPT_CONVERSATIONS = 1000;
const HISTORY_MODEL = seq(1, 1, el(IMP, 'conversation', 0, MAX_KEPT_CONVERSATIONS));
const HOST_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** Uris of `element` children (each `<element uri="..."/>`) met while checking `node`'s content. */
class UriEntries {
  private readonly uris: string[] = [];
  private step: string | undefined;

  constructor(
    private readonly c: Checker,
    private readonly node: XNode,
    private readonly element: string,
    private readonly what: string,
  ) {}

  /** One `<element uri="..."/>`: a SIP, SIPS or tel URI, nothing inside. */
  add(k: XNode): void {
    const a = this.c.attrs(k, { required: ['uri'], foreign: true });
    this.c.empty(k);
    const u = a.get('uri');
    if (u === undefined) return;
    this.uris.push(u);
    this.step ??= k.step;
    if (!isPeerUri(u)) this.c.constraint(`${this.what} uri "${u}" is not a sip:, sips:, tel:, im: or pres: URI`);
  }

  /** Each address of record once. */
  checkUnique(): void {
    checkUnique(this.c, `${this.node.sel}/${this.step ?? this.element}/@uri`, this.uris, { key: senderKey });
  }
}

function checkSet(c: Checker, node: XNode): void {
  c.attrs(node, {});
  const kids = c.children(node);
  if (!c.model(node, kids, SET_MODEL)) return;
  const entries = new UriEntries(c, node, 'entry', `${node.local} entry`);
  for (const k of kids) {
    if (k.local === 'entry') {
      entries.add(k);
    } else {
      c.attrs(k, {});
      const d = collapse(c.text(k));
      if (!HOST_RE.test(d)) c.schema(k, `value "${d}" is not a domain name`);
    }
  }
  entries.checkUnique();
}

/** <history>'s <conversation uri="..."/> children: each a SIP, SIPS or tel URI, each peer once. */
function checkConversations(c: Checker, node: XNode): void {
  const kids = c.children(node);
  if (!c.model(node, kids, HISTORY_MODEL)) return;
  const conversations = new UriEntries(c, node, 'conversation', 'history conversation');
  for (const k of kids) conversations.add(k);
  conversations.checkUnique();
}

function validate(doc: XmlDocument, _ctx: ValidationContext): ValidationProblem[] {
  const c = new Checker(IMP);
  const root = c.root(doc, IMP, 'im-policy');
  if (!root) return c.result();
  const a = c.attrs(root, { optional: ['mode', 'blocked-action'], foreign: true });
  const mode = a.get('mode');
  if (mode !== undefined && !(MODES as readonly string[]).includes(collapse(mode))) {
    c.schema(root, `attribute "mode" value "${mode}" is not one of ${MODES.join(', ')}`);
  }
  const action = a.get('blocked-action');
  if (action !== undefined && !(ACTIONS as readonly string[]).includes(collapse(action))) {
    c.schema(root, `attribute "blocked-action" value "${action}" is not one of ${ACTIONS.join(', ')}`);
  }
  const kids = c.children(root);
  if (!c.model(root, kids, ROOT_MODEL)) return c.result();
  for (const k of kids) {
    if (k.ns !== IMP) continue;
    switch (k.local) {
      case 'blocked':
      case 'allowed':
        checkSet(c, k);
        break;
      case 'deferred-delivery': {
        const da = c.attrs(k, { optional: ['enabled', 'network-storage'], foreign: true });
        c.empty(k);
        c.booleanAttr(k, 'enabled', da.get('enabled'));
        c.booleanAttr(k, 'network-storage', da.get('network-storage'));
        break;
      }
      case 'presence-aware-delivery': {
        const pa = c.attrs(k, { optional: ['hold-when'], foreign: true });
        c.empty(k);
        const hold = pa.get('hold-when');
        if (hold !== undefined && readHoldWhen(hold) === undefined) {
          c.schema(k, `attribute "hold-when" value "${hold}" is not a list of ${HOLD_CONDITIONS.join(', ')}`);
        }
        break;
      }
      case 'publish-im-activity': {
        const ia = c.attrs(k, { optional: ['enabled'], foreign: true });
        c.empty(k);
        c.booleanAttr(k, 'enabled', ia.get('enabled'));
        break;
      }
      case 'file-transfer': {
        const fa = c.attrs(k, { optional: ['enabled', 'accept-types', 'max-size'], foreign: true });
        c.empty(k);
        c.booleanAttr(k, 'enabled', fa.get('enabled'));
        const types = fa.get('accept-types');
        if (
          types !== undefined &&
          !collapse(types)
            .split(' ')
            .every((t) => FILE_TYPE_RE.test(t))
        )
          c.schema(
            k,
            `attribute "accept-types" value "${types}" is not a list of media types (type/subtype, type/*, *)`,
          );
        const size = fa.get('max-size');
        if (size !== undefined) {
          const n = parseXsInteger(size);
          if (n === undefined || n < 1) c.schema(k, `attribute "max-size" value "${size}" is not a positive integer`);
        }
        break;
      }
      case 'history': {
        const ha = c.attrs(k, { optional: ['enabled', 'max-messages'], foreign: true });
        checkConversations(c, k);
        c.booleanAttr(k, 'enabled', ha.get('enabled'));
        const mm = ha.get('max-messages');
        if (mm !== undefined) {
          const n = parseXsInteger(mm);
          if (n === undefined || n < 1 || n > MAX_HISTORY_MESSAGES) {
            c.schema(k, `attribute "max-messages" value "${mm}" is not an integer from 1 to ${MAX_HISTORY_MESSAGES}`);
          }
        }
        break;
      }
    }
  }
  return c.result();
}

// ---------------------------------------------------------------------------
// Reading and deciding
// ---------------------------------------------------------------------------

/**
 * The settings of an im-policy document (which should have been validated); defaults for what
 * is absent or unreadable. Undefined document = the default policy.
 */
export function readImPolicy(doc: XmlDocument | undefined): ImPolicy {
  const policy = defaultImPolicy();
  if (!doc) return policy;
  const scope = NamespaceScope.root().child(doc.root);
  const rootName = scope.expand(doc.root.name);
  if (rootName.ns !== IMP || rootName.local !== 'im-policy') return policy;
  const mode = collapse(plainAttr(doc.root, 'mode') ?? '');
  if (mode === 'allow-only' || mode === 'block-list') policy.mode = mode;
  const action = collapse(plainAttr(doc.root, 'blocked-action') ?? '');
  if (action === 'reject' || action === 'discard') policy.blockedAction = action;
  for (const k of childElements(doc.root)) {
    const ks = scope.child(k);
    const { ns, local } = ks.expand(k.name);
    if (ns !== IMP) continue;
    if (local === 'blocked' || local === 'allowed') {
      const set = policy[local];
      for (const m of childElements(k)) {
        const mn = ks.child(m).expand(m.name);
        if (mn.ns !== IMP) continue;
        if (mn.local === 'entry') {
          const u = plainAttr(m, 'uri');
          if (u !== undefined) set.uris.push(senderKey(u));
        } else if (mn.local === 'domain') {
          set.domains.push(collapse(textContent(m)).toLowerCase());
        }
      }
    } else if (local === 'deferred-delivery') {
      policy.deferredDelivery.enabled =
        parseXsBoolean(plainAttr(k, 'enabled') ?? '') ?? policy.deferredDelivery.enabled;
      policy.deferredDelivery.networkStorage =
        parseXsBoolean(plainAttr(k, 'network-storage') ?? '') ?? policy.deferredDelivery.networkStorage;
    } else if (local === 'presence-aware-delivery') {
      const hold = plainAttr(k, 'hold-when');
      policy.presenceAwareDelivery.holdWhen = hold === undefined ? [...HOLD_CONDITIONS] : (readHoldWhen(hold) ?? []);
    } else if (local === 'publish-im-activity') {
      policy.publishImActivity = parseXsBoolean(plainAttr(k, 'enabled') ?? '') ?? policy.publishImActivity;
    } else if (local === 'file-transfer') {
      const ft = policy.fileTransfer;
      ft.enabled = parseXsBoolean(plainAttr(k, 'enabled') ?? '') ?? ft.enabled;
      const types = collapse(plainAttr(k, 'accept-types') ?? '');
      if (types) ft.acceptTypes = types.split(' ').filter((t) => FILE_TYPE_RE.test(t));
      const n = parseXsInteger(plainAttr(k, 'max-size') ?? '');
      if (n !== undefined && n >= 1) ft.maxSize = n;
    } else if (local === 'history') {
      policy.history.enabled = parseXsBoolean(plainAttr(k, 'enabled') ?? '') ?? policy.history.enabled;
      const n = parseXsInteger(plainAttr(k, 'max-messages') ?? '');
      if (n !== undefined && n >= 1 && n <= MAX_HISTORY_MESSAGES) policy.history.maxMessages = n;
      for (const conv of childElements(k)) {
        const cn = ks.child(conv).expand(conv.name);
        const u = cn.ns === IMP && cn.local === 'conversation' ? plainAttr(conv, 'uri') : undefined;
        if (u !== undefined) policy.history.conversations.push(senderKey(u));
      }
    }
  }
  return policy;
}

/**
 * The conditions of a hold-when attribute (an xs:list of "closed" / "busy"; a repeated token counts
 * once); undefined when a token is neither. An empty list holds nothing.
 */
function readHoldWhen(value: string): HoldCondition[] | undefined {
  const tokens = collapse(value).split(' ').filter(Boolean);
  if (!tokens.every((t) => (HOLD_CONDITIONS as readonly string[]).includes(t))) return undefined;
  return HOLD_CONDITIONS.filter((c) => tokens.includes(c));
}

/** A SIP, SIPS or tel URI, or an im:/pres: one (RFC 3860/3859: user@host) naming the same user. */
function isPeerUri(u: string): boolean {
  if (/^(im|pres):[^@\s:;?<>]+@[^@\s;?<>]+$/i.test(u)) return true;
  try {
    parseUri(u);
    return true;
  } catch {
    return false;
  }
}

/** Comparison key of a sender / entry: its address of record (sip and sips alike), else the text. */
function senderKey(uri: string): string {
  const u = uri.trim().replace(/^<(.*)>$/s, '$1');
  try {
    return aor(u);
  } catch {
    return u;
  }
}

/** Maps one of our users' other public identities (alias, number, im:) to their AoR. */
export type Canonical = (uri: string) => string | undefined;

/** One identity's key in a list: the user's address of record when it is one of ours. */
function listed(uris: readonly string[], peer: string, canonical?: Canonical): boolean {
  if (uris.includes(senderKey(peer))) return true;
  if (!canonical) return false;
  const key = canonical(peer);
  return key !== undefined && uris.some((u) => canonical(u) === key);
}

function matches(set: SenderSet, sender: string, canonical?: Canonical): boolean {
  if (listed(set.uris, sender, canonical)) return true;
  let host: string | undefined;
  try {
    const p = parseUri(sender.trim().replace(/^<(.*)>$/s, '$1'));
    host = p.scheme === 'tel' ? undefined : p.host;
  } catch {
    host = undefined;
  }
  return host !== undefined && set.domains.includes(host);
}

/**
 * The decision for a message from `sender`: 'accept', or the blocked-action ('reject' /
 * 'discard') when the sender is blocked, or not allowed in allow-only mode.
 */
export function imPolicyVerdict(policy: ImPolicy, sender: string, canonical?: Canonical): 'accept' | BlockedAction {
  const refused =
    matches(policy.blocked, sender, canonical) ||
    (policy.mode === 'allow-only' && !matches(policy.allowed, sender, canonical));
  return refused ? policy.blockedAction : 'accept';
}

/** Whether the user's history keeps the conversation with `peer`: all history on, or that peer listed. */
export function keepsHistoryWith(policy: ImPolicy, peer: string, canonical?: Canonical): boolean {
  return (
    policy.history.enabled ||
    (policy.history.conversations.length > 0 && listed(policy.history.conversations, peer, canonical))
  );
}

/** The default document, as XML text. */
export function defaultImPolicyDocument(): string {
  const p = defaultImPolicy();
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    `<im-policy xmlns="${escapeAttribute(IMP)}" mode="${p.mode}" blocked-action="${p.blockedAction}">` +
    '<blocked/><allowed/>' +
    `<deferred-delivery enabled="${p.deferredDelivery.enabled}" network-storage="${p.deferredDelivery.networkStorage}"/>` +
    `<history enabled="${p.history.enabled}" max-messages="${p.history.maxMessages}"/>` +
    '</im-policy>'
  );
}

export const imPolicyUsage: ApplicationUsage = {
  auid: 'org.ims-as.im-policy',
  mimeType: 'application/vnd.ims-as.im-policy+xml',
  defaultNamespace: IMP,
  namespaces: [IMP],
  documentNames: /^index$/,
  validate,
  defaultDocument: () => defaultImPolicyDocument(),
};
