import type { Charging } from '../charging/charging.js';
import type { CauseForRecordClosing } from '../charging/record.js';
import { contain, type FailureSink } from '../util/contain.js';
import type { ClosedSubscription, EventPackage, Subscription, SubscriptionEvent } from './event-package.js';

type Phase = 'opened' | 'refreshed' | 'closed';

/** What the charging of subscriptions listens to: the notifier's subscription steps. */
export interface SubscriptionSteps {
  on(event: 'subscription', listener: (e: SubscriptionEvent) => void): unknown;
  on(event: 'closed', listener: (e: ClosedSubscription) => void): unknown;
  packageOf(event: string): EventPackage | undefined;
}

/**
 * Charging of subscription dialogs (TS 32.260 partial records): one record when a
 * subscription opens, one per refresh, and the last when its final NOTIFY has left, chained
 * by recordSequenceNumber. A one-shot fetch (Expires: 0) gets one complete record. Kept out
 * of the notifier: it listens to the subscription's steps, and a failing record is logged
 * and counted, never felt by the dialog.
 */
export class SubscriptionCharging {
  constructor(
    private readonly charging: Charging,
    private readonly sink: FailureSink,
  ) {}

  attach(steps: SubscriptionSteps): this {
    steps.on('subscription', ({ sub, what, at }) => {
      // a fetch is created already terminated: its only record is the closing one
      if (what === 'created' && sub.state !== 'terminated') this.charge(steps, sub, 'opened', at ?? new Date());
      else if (what === 'refreshed') this.charge(steps, sub, 'refreshed', at ?? new Date());
    });
    steps.on('closed', ({ sub, reason, at }) => this.charge(steps, sub, 'closed', at, reason));
    return this;
  }

  private charge(
    steps: SubscriptionSteps,
    s: Subscription,
    phase: Phase,
    at: Date,
    reason?: ClosedSubscription['reason'],
  ): void {
    const pkg = steps.packageOf(s.event);
    if (!pkg) return;
    const sequence = partNumber(phase, s.chargedParts);
    contain(
      this.sink,
      'subscription-charging',
      () =>
        this.charging.record({
          service: pkg.service,
          role: 'terminating',
          sipMethod: 'SUBSCRIBE',
          sessionId: s.callId,
          callingParty: s.watcher,
          calledParty: s.resource,
          event: s.event,
          expires: Math.max(0, Math.round((s.expiresAt.getTime() - at.getTime()) / 1000)),
          requestTime: at,
          responseTime: at,
          statusCode: 200,
          outcome: `subscription-${phase}`,
          ...(s.chargingVector ? { chargingVector: s.chargingVector } : {}),
          ...(s.privateUserId ? { privateUserId: s.privateUserId } : {}),
          ...(s.stateLost ? { incomplete: { acrInterimLost: 'unknown' as const } } : {}),
          // opening and each refresh close a part with serviceChange; the end carries the final cause
          ...(sequence !== undefined ? { recordSequenceNumber: sequence } : {}),
          cause: closingCause(phase, reason),
          extra: { notifyCount: s.notifyCount, ...(reason ? { reason } : {}), ...(pkg.chargingExtra?.(s) ?? {}) },
        }),
      { id: s._id },
    );
  }
}

function closingCause(phase: Phase, reason: ClosedSubscription['reason']): CauseForRecordClosing {
  if (phase !== 'closed') return 'serviceChange';
  if (reason === 'timeout') return 'timeLimit';
  if (reason === 'giveup') return 'unSuccessfulServiceDelivery';
  return 'serviceDeliveryEndSuccessfully';
}

/**
 * recordSequenceNumber of a subscription's record: 1 when opened, the count kept on the
 * subscription after a refresh, one more at the end; a fetch (never opened) gets a complete record.
 */
function partNumber(phase: Phase, chargedParts: number | undefined): number | undefined {
  if (phase === 'opened') return 1;
  if (phase === 'refreshed') return chargedParts ?? 2;
  return chargedParts === undefined ? undefined : chargedParts + 1;
}
