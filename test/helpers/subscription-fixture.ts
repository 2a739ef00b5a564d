import type { Subscription } from '../../as/src/events/event-package.js';

/**
 * A live subscription dialog as the notifier stores it: bob watching `resource` through the
 * `event` package, its CSeq ceiling at 64; `over` changes what a test is about.
 */
export function storedSubscription(
  id: string,
  event: string,
  resource: string,
  over: Partial<Subscription> = {},
): Subscription {
  const callId = id.split('|')[0]!;
  return {
    _id: id,
    event,
    resource,
    watcher: 'sip:bob@example.com',
    callId,
    fromTag: 'ft',
    toTag: 'tt',
    remoteParty: '<sip:bob@example.com>;tag=ft',
    localParty: `<${resource}>`,
    remoteTarget: 'sip:bob@192.0.2.2',
    routeSet: [],
    localCseq: 64,
    remoteCseq: 1,
    state: 'active',
    expiresAt: new Date(Date.now() + 600_000),
    accept: ['text/plain'],
    createdAt: new Date(),
    notifyCount: 0,
    data: {},
    ...over,
  };
}
