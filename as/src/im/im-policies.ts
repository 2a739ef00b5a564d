import type { XdmDocuments } from '../xdm/document-store.js';
import { parseXml } from '../xml/xml-tree.js';
import { defaultImPolicy, imPolicyUsage, readImPolicy, type ImPolicy } from '../xdm/usages/im-policy.js';

/**
 * Each user's IM policy (XDMS usage org.ims-as.im-policy), read on every message. The store
 * read is cheap and keeps instances sharing a store in step; parsing is what we avoid, so
 * parsed policies are cached by the document's ETag.
 */
export class ImPolicies {
  private readonly parsed = new Map<string, { etag: string; policy: ImPolicy }>();

  constructor(private readonly docs: XdmDocuments, private readonly cacheSize = 10_000) {}

  /** The policy of `user` (sip:user@domain), the default one when the user has no document. */
  async of(user: string): Promise<ImPolicy> {
    const stored = await this.docs.get({ auid: imPolicyUsage.auid, tree: 'users', xui: user, path: 'index' });
    if (!stored) {
      this.parsed.delete(user);
      return defaultImPolicy();
    }
    const hit = this.parsed.get(user);
    if (hit?.etag === stored.etag) return hit.policy;
    let policy: ImPolicy;
    try {
      policy = readImPolicy(parseXml(stored.body));
    } catch {
      // the XCAP server validated it on the way in; an unreadable one falls back to defaults
      policy = defaultImPolicy();
    }
    if (this.parsed.size >= this.cacheSize) this.parsed.delete(this.parsed.keys().next().value!);
    this.parsed.set(user, { etag: stored.etag, policy });
    return policy;
  }
}
