import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import { imPolicyVerdict, type ImPolicy } from '../xdm/usages/im-policy.js';
import type { ImPolicies } from './im-policies.js';

/** What the recipient's IM policy says about one sender: accept, refuse (403), or drop silently. */
export type RecipientVerdict = ReturnType<typeof imPolicyVerdict>;

/**
 * The policy half of the IM participating function, shared by pager mode (MESSAGE) and
 * sessions (INVITE): operator barring on the sender's side, the recipient's IM policy from the
 * XDMS on the recipient's side. Callers turn the answers into their own replies and records.
 */
export class Participation {
  constructor(private readonly deps: { users: UserDirectory; policies: ImPolicies; domain: LocalDomain }) {}

  /** Policies' entries and the peer compared as our users' addresses of record (numbers, aliases, im:/pres:). */
  readonly canonicalOf = (uri: string): string | undefined => this.deps.domain.canonical(uri);

  /** Originating side: is the sender barred from messaging by the operator? */
  async senderBarred(sender: string): Promise<boolean> {
    const user = await this.deps.users.get(sender);
    return user?.imBarred === true;
  }

  /** Terminating side: the recipient's policy and its verdict on this sender. */
  async recipientVerdict(recipient: string, sender: string): Promise<{ policy: ImPolicy; verdict: RecipientVerdict }> {
    const policy = await this.deps.policies.of(recipient);
    return { policy, verdict: imPolicyVerdict(policy, sender, this.canonicalOf) };
  }
}
