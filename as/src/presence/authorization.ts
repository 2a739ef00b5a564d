import { LoadingCache } from '../util/loading-cache.js';
import { parseXml, type XmlDocument } from '../xml/xml-tree.js';
import type { XdmDocuments } from '../xdm/document-store.js';
import type { ProvideSet, SubHandling } from '../xdm/usages/pres-rules.js';
import { evaluatePresRules } from './pres-rules-evaluator.js';

export interface PresenceGrant {
  handling: SubHandling;
  /** What the watcher may see; undefined: everything (the presentity watching itself). */
  provide?: ProvideSet;
  /** The rules that decided, for logs. */
  rules: string[];
}

/** Names the pres-rules document may have: IETF's "index" or OMA's "pres-rules". */
const PRES_RULES_DOCUMENTS = ['index', 'pres-rules'];

/** Presentities whose parsed rules are kept; beyond, the oldest entry goes. */
const RULES_CACHE_ENTRIES = 20_000;

/**
 * Decides what a watcher may do with a presentity's presence, from the presentity's
 * pres-rules document in the XDMS (RFC 4745 + RFC 5025 + OMA conditions). No applicable
 * rule: confirm (the presentity is asked, through watcher info). A presentity always sees
 * its own full presence.
 */
export class PresenceAuthorizer {
  /**
   * Each presentity's rules, parsed once (null: it has none) and kept until its pres-rules
   * change (as/src/reactions.ts): a SUBSCRIBE costs no store read, and a rules change with
   * 1,000 watchers re-decides them all from one parse.
   */
  private readonly rules = new LoadingCache<XmlDocument | null>({ maxEntries: RULES_CACHE_ENTRIES });

  constructor(
    private readonly docs: XdmDocuments,
    private readonly fallback: SubHandling = 'confirm',
    /** A user's aliases, number and pres: URIs in rules name the user (LocalDomain.canonical). */
    private readonly canonical?: (uri: string) => string | undefined,
  ) {}

  async decide(resource: string, watcher: string | undefined, now = new Date()): Promise<PresenceGrant> {
    if (watcher === resource) return { handling: 'allow', rules: ['self'] };
    const rules = await this.rulesOf(resource);
    const decision =
      rules &&
      evaluatePresRules(rules, {
        watcher: watcher ?? 'sip:anonymous@anonymous.invalid',
        anonymous: !watcher,
        now,
        ...(this.canonical ? { canonical: this.canonical } : {}),
      });
    if (decision)
      return { handling: decision.subHandling, provide: decision.transformations, rules: decision.matchedRuleIds };
    return { handling: this.fallback, rules: [] };
  }

  /** The presentity's pres-rules changed (or may have: another instance's change was missed). */
  forget(resource: string): void {
    this.rules.forget(resource);
  }

  clear(): void {
    this.rules.clear();
  }

  private rulesOf(resource: string): Promise<XmlDocument | null> {
    return this.rules.get(resource, () => this.load(resource));
  }

  private async load(resource: string): Promise<XmlDocument | null> {
    for (const path of PRES_RULES_DOCUMENTS) {
      const doc = await this.docs.get({ auid: 'pres-rules', tree: 'users', xui: resource, path });
      if (doc) return parseXml(doc.body);
    }
    return null;
  }
}
