import type { ConferenceFocus } from '../conference/focus.js';
import type { IscCall, IscService } from '../isc/dispatcher.js';
import { reply, type IscDecision } from '../isc/types.js';
import type { PagerService } from './pager.js';
import { SESSION_CONTEXT_PREFIX, type SessionService } from './sessions.js';

/**
 * The IM Server behind the ISC service name `im`: MESSAGE goes to pager mode, an INVITE with an
 * MSRP offer to session mode, or to the conference focus when it names a chat room or a group
 * (which also takes the BYE and REFER of its dialogs), a SUBSCRIBE (Event: conference, RFC 4575)
 * to the notifier; each outcome goes back to the mode that let its request continue.
 */
export class ImService implements IscService {
  readonly name = 'im' as const;

  constructor(
    private readonly pager: PagerService,
    private readonly sessions: SessionService,
    private readonly subscriptions?: { handleSubscribe(call: IscCall): Promise<IscDecision> },
    private readonly focus?: ConferenceFocus,
  ) {}

  async handle(call: IscCall): Promise<IscDecision> {
    switch (call.req.method) {
      case 'MESSAGE':
        return this.pager.handle(call);
      case 'UPDATE': // only a re-offer inside a session is handed over
        return this.sessions.handle(call);
      case 'INVITE': {
        if (this.focus?.isFactory(call.req.ruri)) return this.focus.createAdhoc(call);
        const conference = this.focus ? await this.focus.conferenceOf(call.req.ruri) : undefined;
        if (conference && this.focus) return this.focus.join(call, conference);
        return this.sessions.handle(call);
      }
      case 'BYE':
        return this.focus ? this.focus.bye(call) : reply(481, 'Call/Transaction Does Not Exist');
      case 'REFER':
        return this.focus ? this.focus.refer(call) : reply(481, 'Call/Transaction Does Not Exist');
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
