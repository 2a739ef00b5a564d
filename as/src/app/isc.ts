import type { AsConfig } from '../config/config.js';
import type { Notifier } from '../events/notifier.js';
import { SubscriptionService } from '../events/subscription-service.js';
import type { ConferenceFocus } from '../conference/focus.js';
import { ImService } from '../im/im-service.js';
import type { PagerService } from '../im/pager.js';
import type { SessionService } from '../im/sessions.js';
import { IscDispatcher } from '../isc/dispatcher.js';
import { KamailioEventStream } from '../isc/event-stream.js';
import { instanceName } from '../isc/instance.js';
import { kamailioTime, type SessionAnswerEvent, type SessionEndEvent } from '../isc/types.js';
import type { UacClient } from '../isc/uac.js';
import { RateLimitedService } from '../limits/rate-limited-service.js';
import type { UserRateLimits } from '../limits/user-rate-limits.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { PresenceService } from '../presence/presence-service.js';
import type { Registrations } from '../registrations/registrations.js';
import type { StoreOutages } from '../store/store-fault.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { Subsystem } from './ownership.js';

/** How long a service may take to decide before the client gets a 503 (Kamailio waits 2 s). */
export const DECISION_DEADLINE_MS = 1500;

export interface IscDeps {
  config: Pick<AsConfig, 'kamailio' | 'isc' | 'node'>;
  log: Logger;
  metrics: Metrics;
  outages: StoreOutages;
  domain: LocalDomain;
  registrations: Registrations;
  uac: UacClient;
  notifier: Notifier;
  presence: PresenceService;
  im: { pager: PagerService; sessions: SessionService; focus: ConferenceFocus; rateLimits: UserRateLimits };
}

export interface IscParts {
  /** Routes ISC requests and events to the services. */
  dispatcher: IscDispatcher;
  /** Kamailio's evapi stream when configured (started by the intake, once the ISC port listens). */
  events: KamailioEventStream | undefined;
}

/**
 * The ISC layer: the dispatcher with its services and events, and the evapi stream (built, not
 * connected). Its close waits for the outcome handlers Kamailio's events set off: it runs after
 * the intake stopped taking requests and events, and before the services and charging close.
 */
export function createIsc({
  config,
  log,
  metrics,
  outages,
  domain,
  registrations,
  uac,
  notifier,
  presence,
  im,
}: IscDeps): Subsystem<IscParts> {
  const { rateLimits, sessions } = im;
  const dispatcher = new IscDispatcher({
    log: log.child({ svc: 'isc' }),
    metrics,
    deadlineMs: DECISION_DEADLINE_MS,
    outages,
  })
    .register(new RateLimitedService(new ImService(im.pager, sessions, notifier, im.focus), rateLimits, domain))
    .register(new RateLimitedService(new SubscriptionService('xdm', notifier), rateLimits, domain))
    .register(new RateLimitedService(presence, rateLimits, domain))
    .on('registration', async (ev) => void (await registrations.apply(ev as Parameters<Registrations['apply']>[0])))
    .on('contact-expired', async (ev) => void (await registrations.apply(ev as Parameters<Registrations['apply']>[0])))
    .on('uac-reply', async (ev) => uac.onReply(ev as Parameters<UacClient['onReply']>[0]))
    .on('session-answer', async (ev) => sessions.onAnswer(ev as SessionAnswerEvent))
    .on('session-end', async (ev) => sessions.onEnd(ev as SessionEndEvent, kamailioTime((ev as SessionEndEvent).ts)));

  let events: KamailioEventStream | undefined;
  if (config.kamailio.evapiAddress) {
    const [host, port] = config.kamailio.evapiAddress.split(':');
    events = new KamailioEventStream({
      host: host!,
      port: Number(port),
      secret: config.isc.secret,
      instance: instanceName(config.node.id),
      onEvent: (ev) => dispatcher.event(ev),
      onRequest: (req) => dispatcher.request(req),
      log: log.child({ svc: 'events' }),
      metrics,
      links: config.kamailio.evapiLinks,
    });
    uac.useChannel(events);
  }
  return { dispatcher, events, close: () => dispatcher.drain() };
}
