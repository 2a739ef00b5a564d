import type { XdmDocuments } from '../xdm/document-store.js';
import { LoadingCache } from '../util/loading-cache.js';
import { parseXml } from '../xml/xml-tree.js';
import { defaultImPolicy, imPolicyUsage, readImPolicy, type ImPolicy } from '../xdm/usages/im-policy.js';

/**
 * Each user's IM policy (XDMS usage org.ims-as.im-policy), asked on every message: read and
 * parsed once and kept until the document changes (as/src/reactions.ts forgets it on every
 * instance), so a message costs no store read for it.
 */
export class ImPolicies {
  private readonly cache: LoadingCache<ImPolicy>;

  constructor(
    private readonly docs: XdmDocuments,
    cacheSize = 20_000,
  ) {
    this.cache = new LoadingCache({ maxEntries: cacheSize });
  }

  /** The policy of `user` (sip:user@domain), the default one when the user has no document. */
  of(user: string): Promise<ImPolicy> {
    return this.cache.get(user, () => this.load(user));
  }

  /** The user's policy document changed (or may have: another instance's change was missed). */
  forget(user: string): void {
    this.cache.forget(user);
  }

  clear(): void {
    this.cache.clear();
  }

  private async load(user: string): Promise<ImPolicy> {
    const stored = await this.docs.get({ auid: imPolicyUsage.auid, tree: 'users', xui: user, path: 'index' });
    if (!stored) return defaultImPolicy();
    try {
      return readImPolicy(parseXml(stored.body));
    } catch {
      // the XCAP server validated it on the way in; an unreadable one falls back to defaults
      return defaultImPolicy();
    }
  }
}
