import type { XdmDocuments } from '../xdm/document-store.js';
import { evaluatePresRules, type ProvideSet, type SubHandling } from '../xdm/usages/pres-rules.js';

export interface PresenceGrant {
  handling: SubHandling;
  /** What the watcher may see; undefined: everything (the presentity watching itself). */
  provide?: ProvideSet;
  /** The rules that decided, for logs. */
  rules: string[];
}

/** Names the pres-rules document may have: IETF's "index" or OMA's "pres-rules". */
const PRES_RULES_DOCUMENTS = ['index', 'pres-rules'];

/**
 * Decides what a watcher may do with a presentity's presence, from the presentity's
 * pres-rules document in the XDMS (RFC 4745 + RFC 5025 + OMA conditions). No applicable
 * rule: confirm (the presentity is asked, through watcher info). A presentity always sees
 * its own full presence.
 */
export class PresenceAuthorizer {
  constructor(private readonly docs: XdmDocuments, private readonly fallback: SubHandling = 'confirm') {}

  async decide(resource: string, watcher: string | undefined, now = new Date()): Promise<PresenceGrant> {
    if (watcher === resource) return { handling: 'allow', rules: ['self'] };
    for (const path of PRES_RULES_DOCUMENTS) {
      const doc = await this.docs.get({ auid: 'pres-rules', tree: 'users', xui: resource, path });
      if (!doc) continue;
      const decision = evaluatePresRules(doc.body, { watcher: watcher ?? 'sip:anonymous@anonymous.invalid', anonymous: !watcher, now });
      if (decision) return { handling: decision.subHandling, provide: decision.transformations, rules: decision.matchedRuleIds };
      break;
    }
    return { handling: this.fallback, rules: [] };
  }
}
