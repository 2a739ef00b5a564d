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
    // a request in a participant's dialog with the focus (To tag, the focus's Call-ID) other
    // than BYE and REFER: the focus answers it (re-INVITE, UPDATE, INFO, OPTIONS; 405 else)
    if (
      this.focus &&
      !['BYE', 'REFER', 'SUBSCRIBE'].includes(call.req.method) &&
      /;\s*tag=/i.test(call.sip.headers.get('To') ?? '') &&
      this.focus.holdsDialog(call.sip.headers.get('Call-ID') ?? '')
    )
      return this.focus.inDialog(call);
    switch (call.req.method) {
      case 'MESSAGE':
        return this.pager.handle(call);
      case 'INVITE': {
        // a re-offer inside a one-to-one session (To tag) goes to sessions; a new INVITE to a
        // conference URI or the factory to the focus
        if (this.focus && !/;\s*tag=/i.test(call.sip.headers.get('To') ?? '')) {
          if (this.focus.isFactory(call.req.ruri)) return this.focus.createAdhoc(call);
          const conference = await this.focus.conferenceOf(call.req.ruri);
          if (conference) return this.focus.join(call, conference);
        }
        return this.sessions.handle(call);
      }
      case 'UPDATE': // only a re-offer inside a session is handed over
        return this.sessions.handle(call);
      case 'BYE':
        // a participant leaving the focus, or the caller ending a deferred session
        if (this.focus?.holdsDialog(call.sip.headers.get('Call-ID') ?? '')) return this.focus.bye(call);
        return this.sessions.handle(call);
      case 'REFER':
        return this.focus ? this.focus.refer(call) : reply(481, 'Call/Transaction Does Not Exist');
      case 'SUBSCRIBE':
        if (this.subscriptions) return this.subscriptions.handleSubscribe(call);
        return reply(501, 'Not Implemented');
      default:
        // in a dialog that is not the focus's (the focus took its own above): none here
        if (/;\s*tag=/i.test(call.sip.headers.get('To') ?? '')) return reply(481, 'Call/Transaction Does Not Exist');
        return reply(501, 'Not Implemented');
    }
  }

  async onOutcome(payload: string, code: number, at: Date): Promise<void> {
    if (payload.startsWith(SESSION_CONTEXT_PREFIX))
      return this.sessions.onOutcome(payload.slice(SESSION_CONTEXT_PREFIX.length), code, at);
    return this.pager.onOutcome(payload, code, at);
  }
}
