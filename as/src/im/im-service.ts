import type { IscCall, IscService } from '../isc/dispatcher.js';
import { reply, type IscDecision } from '../isc/types.js';
import type { PagerService } from './pager.js';
import { SESSION_CONTEXT_PREFIX, type SessionService } from './sessions.js';

/**
 * The IM Server behind the ISC service name `im`: MESSAGE goes to pager mode, an INVITE with an
 * MSRP offer to session mode, a SUBSCRIBE (Event: conference, RFC 4575) to the notifier; each
 * outcome goes back to the mode that let its request continue.
 */
export class ImService implements IscService {
  readonly name = 'im' as const;

  constructor(
    private readonly pager: PagerService,
    private readonly sessions: SessionService,
    private readonly subscriptions?: { handleSubscribe(call: IscCall): Promise<IscDecision> },
  ) {}

  async handle(call: IscCall): Promise<IscDecision> {
    switch (call.req.method) {
      case 'MESSAGE':
        return this.pager.handle(call);
      case 'INVITE':
      case 'UPDATE': // only a re-offer inside a session is handed over
      case 'BYE': // only the BYE of a deferred session (Kamailio hands over those to im-deferred)
        return this.sessions.handle(call);
      case 'SUBSCRIBE':
        if (this.subscriptions) return this.subscriptions.handleSubscribe(call);
        return reply(501, 'Not Implemented');
      default:
        return reply(501, 'Not Implemented');
    }
  }

  async onOutcome(payload: string, code: number, at: Date): Promise<void> {
    if (payload.startsWith(SESSION_CONTEXT_PREFIX))
      return this.sessions.onOutcome(payload.slice(SESSION_CONTEXT_PREFIX.length), code, at);
    return this.pager.onOutcome(payload, code, at);
  }
}
