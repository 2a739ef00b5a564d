import type { IscCall, IscService } from '../isc/dispatcher.js';
import type { IscDecision } from '../isc/types.js';
import { parseNameAddr } from '../sip/index.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { LimitedKind } from './minute-window.js';
import { rateLimitedReply, type UserRateLimits } from './user-rate-limits.js';

/**
 * An ISC service behind the per-user limits: a MESSAGE our user sends (originating) and any
 * SUBSCRIBE of a user of ours is counted before the service sees it, and refused once the
 * user is over the limit. Not counted: un-SUBSCRIBEs (refusing one would keep the
 * subscription alive, the opposite of relief), and requests from other domains (no user of
 * ours to count; Kamailio's per-source limits cover them).
 */
export class RateLimitedService implements IscService {
  readonly name: IscService['name'];
  readonly onOutcome?: IscService['onOutcome'];

  constructor(
    private readonly inner: IscService,
    private readonly limits: UserRateLimits,
    private readonly domain: LocalDomain,
  ) {
    this.name = inner.name;
    if (inner.onOutcome) this.onOutcome = inner.onOutcome.bind(inner);
  }

  async handle(call: IscCall): Promise<IscDecision> {
    const counted = this.countedAs(call);
    if (counted) {
      const refusal = await this.limits.take(counted.kind, counted.user);
      if (refusal) {
        call.log.debug({ user: counted.user, kind: counted.kind }, 'over the per-minute limit: 403');
        return rateLimitedReply(refusal, this.domain.domain);
      }
    }
    return this.inner.handle(call);
  }

  private countedAs(call: IscCall): { kind: LimitedKind; user: string } | undefined {
    const { req, sip } = call;
    if (req.method === 'MESSAGE') {
      return req.orig && req.asserted ? { kind: 'message', user: req.asserted } : undefined;
    }
    if (req.method !== 'SUBSCRIBE') return undefined;
    if (/^\s*0+\s*$/.test(sip.headers.get('Expires') ?? '')) return undefined;
    // a refresh inside a dialog is not challenged again: its From names the watcher
    let user = req.asserted;
    if (!user) {
      try {
        user = this.domain.canonical(parseNameAddr(sip.headers.get('From') ?? '').uri);
      } catch {
        user = undefined;
      }
    }
    return user ? { kind: 'subscribe', user } : undefined;
  }
}
