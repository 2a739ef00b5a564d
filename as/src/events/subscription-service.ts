import type { IscCall, IscService } from '../isc/dispatcher.js';
import { reply, type IscDecision, type IscRequest } from '../isc/types.js';
import type { Notifier } from './notifier.js';

/** An ISC service whose only requests are SUBSCRIBEs, handed to the notifier. */
export class SubscriptionService implements IscService {
  constructor(
    readonly name: IscRequest['service'],
    private readonly notifier: Notifier,
  ) {}

  async handle(call: IscCall): Promise<IscDecision> {
    if (call.req.method !== 'SUBSCRIBE') return reply(405, 'Method Not Allowed', { headers: [['Allow', 'SUBSCRIBE']] });
    return this.notifier.handleSubscribe(call);
  }
}
