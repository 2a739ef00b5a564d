import { conferenceAdminRoutes } from '../conference/conference-admin.js';
import type { ConferenceFocus } from '../conference/focus.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Koa from 'koa';
import { adminRoutes } from '../admin/admin-routes.js';
import { opsAdminRoutes } from '../admin/ops-admin-routes.js';
import type { Charging } from '../charging/charging.js';
import type { SingletonJobs } from '../cluster/singleton-jobs.js';
import type { AsConfig } from '../config/config.js';
import type { ChatRooms } from '../conference/chat-rooms.js';
import type { Notifier } from '../events/notifier.js';
import { failureAnswers, STORE_UNAVAILABLE_ANSWERS } from '../http/failure-answer.js';
import type { ConversationHistory } from '../im/history.js';
import type { MessageStore } from '../im/message-store.js';
import type { ServiceMessenger } from '../im/service-messages.js';
import type { StoreAndForward } from '../im/store-and-forward.js';
import type { IscDispatcher } from '../isc/dispatcher.js';
import type { KamailioEventStream } from '../isc/event-stream.js';
import { iscRoutes } from '../isc/isc-routes.js';
import type { KamailioRpc } from '../isc/kamailio-rpc.js';
import type { UacClient } from '../isc/uac.js';
import { RATE_LIMITED } from '../limits/user-rate-limits.js';
import { setLogLevel, type Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { operatorPageRoutes } from '../ops/operator-page-routes.js';
import { opsRoutes } from '../ops/ops-routes.js';
import { OpsSampler } from '../ops/ops-sampler.js';
import { ConfigReloader } from '../ops/reloader.js';
import { externalPresenceRoutes } from '../presence/external-routes.js';
import type { PidfTrees } from '../presence/pidf-trees.js';
import type { PresenceState } from '../presence/presence-state.js';
import type { Publications } from '../presence/publications.js';
import type { Registrations } from '../registrations/registrations.js';
import { probeStore } from '../store/store-probe.js';
import type { StoreOutages } from '../store/store-fault.js';
import type { Store } from '../store/port.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import { REACTION_FAILURES } from '../util/contain.js';
import { VERSION } from '../version.js';
import type { Subsystem } from './ownership.js';

/** Largest ISC request: a SIP message of 64 KiB, JSON-escaped, with room to spare. */
const ISC_BODY_LIMIT = 512 * 1024;

export interface OpsDeps {
  /** The running configuration: a reload writes into it. */
  config: AsConfig;
  /** Reads the configuration again for a reload. */
  reread: () => AsConfig;
  startedAt: Date;
  log: Logger;
  metrics: Metrics;
  store: Store;
  outages: StoreOutages;
  jobs: SingletonJobs;
  charging: Charging;
  kamailio: KamailioRpc;
  uac: UacClient;
  users: UserDirectory;
  domain: LocalDomain;
  registrations: Registrations;
  presence: { notifier: Notifier; publications: Publications; presenceState: PresenceState; pidfTrees: PidfTrees };
  im: {
    messageStore: MessageStore;
    forward: StoreAndForward;
    history: ConversationHistory;
    messenger: ServiceMessenger;
    rooms: ChatRooms;
    focus: ConferenceFocus;
  };
  isc: { dispatcher: IscDispatcher; events: KamailioEventStream | undefined };
}

export interface OpsParts {
  reloader: ConfigReloader;
  /** The ISC port's application: ISC, health, metrics, admin and the operator page (the intake listens). */
  app: Koa;
}

/**
 * Operations: the metrics read from every subsystem, the configuration reloader, the sampler
 * of the operator page and the ISC port's routes. Its close stops the sampler's timer and the
 * event-loop monitor.
 */
export function createOps(deps: OpsDeps): Subsystem<OpsParts> {
  const { config, log, metrics, store, outages, jobs, charging, kamailio, uac, users, domain, registrations } = deps;
  const { notifier, publications, presenceState, pidfTrees } = deps.presence;
  const { messageStore, forward, history, messenger, rooms } = deps.im;
  const { dispatcher, events } = deps.isc;
  // stalls of the event loop (GC, a large synchronous task) delay every answer: watch them
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  metrics
    .describe(
      RATE_LIMITED,
      'requests refused 403 because their user was over a per-minute limit (kind: message, subscribe, group)',
    )
    .describe(
      STORE_UNAVAILABLE_ANSWERS,
      'HTTP requests (XCAP, ISC) answered 503 with Retry-After because the store was unavailable',
    )
    .describe(
      REACTION_FAILURES,
      'background reactions (NOTIFY fan-outs, charging, expiries, sweeps) that failed; each is logged with its cause and the AS goes on',
    )
    .gauge('ims_as_isc_event_stream_up', 'Kamailio evapi event stream connected (1) or not (0)', () =>
      events?.isUp ? 1 : 0,
    )
    .gauge('ims_as_uac_in_flight', 'AS-originated requests waiting for their final outcome', () => uac.inFlight)
    .counterFrom(
      'ims_as_pidf_parses_total',
      'presence documents parsed, on PUBLISH and on the NOTIFY path (each text once while kept)',
      () => pidfTrees.parses,
    )
    .counterFrom(
      'ims_as_pidf_tree_reuses_total',
      'kept trees and results shared instead of parsing again (a composed document; a filtered view, trigger or partial diff shared by watchers)',
      () => pidfTrees.hits,
    )
    .counterFrom(
      'ims_as_charging_records_written_total',
      'charging records written since start',
      () => charging.metrics().recordsWritten,
    )
    .sampledGauge(
      'ims_as_subscriptions_active',
      'subscriptions not terminated, per event package (all instances on the store)',
      async () => Object.entries(await notifier.liveCounts()).map(([event, value]) => ({ labels: { event }, value })),
    )
    .sampledGauge('ims_as_publications_live', 'publications not expired (all instances on the store)', async () => [
      { value: await publications.liveCount() },
    ])
    .sampledGauge(
      'ims_as_im_messages_stored',
      'messages waiting for their recipient (all instances on the store)',
      async () => [{ value: await messageStore.pendingCount() }],
    )
    .withProcessMetrics()
    .gauge(
      'ims_as_charging_records_storing',
      'charging records accepted and not yet stored (the CDR writer behind when it grows)',
      () => charging.backlog().storing,
    )
    .gauge(
      'ims_as_charging_file_backlog_lines',
      'CDR lines accepted and not yet written to the files',
      () => charging.backlog().fileLines,
    )
    .gauge('ims_as_charging_rf_peer_up', 'Diameter Rf: a CDF peer is open (1) or not (0, also when Rf is off)', () =>
      charging.rf?.stats.peer ? 1 : 0,
    )
    .counterFrom(
      'ims_as_charging_rf_acr_answered_total',
      'Diameter Rf: ACRs answered 2001 by a CDF since start',
      () => charging.rf?.stats.answered ?? 0,
    )
    .counterFrom(
      'ims_as_charging_rf_acr_retransmitted_total',
      'Diameter Rf: ACRs sent again with the T flag since start',
      () => charging.rf?.stats.retransmitted ?? 0,
    )
    .counterFrom(
      'ims_as_charging_rf_acr_refused_total',
      'Diameter Rf: ACRs a CDF refused permanently (5xxx) since start, kept in rf_refused',
      () => charging.rf?.stats.refused ?? 0,
    )
    .sampledGauge(
      'ims_as_charging_rf_outbox',
      'Diameter Rf: records waiting for an ACA (all instances on the store)',
      async () => [{ value: charging.rf ? await charging.rf.pending() : 0 }],
    )
    .gauge(
      'ims_as_charging_file_degraded',
      'CDR files cannot be written (1): records wait in the store until the files catch up',
      () => (charging.metrics().fileDegraded ? 1 : 0),
    )
    .gauge(
      'ims_as_nodejs_eventloop_delay_max_seconds',
      'longest event-loop stall since the previous scrape (nothing is answered meanwhile)',
      () => {
        const max = loopDelay.max / 1e9;
        loopDelay.reset();
        return max;
      },
    );

  // `config` is the running configuration the services read at use time: a reload writes into it
  const reloader = new ConfigReloader({
    running: config,
    reread: deps.reread,
    log,
    metrics,
    afterApply: (plan) => {
      const changed = new Set(plan.applied.map((c) => c.path));
      if (changed.has('log.level')) setLogLevel(log, config.log.level);
      if (changed.has('charging.rotateBytes') || changed.has('charging.rotateSeconds')) {
        charging.setRotation(config.charging.rotateBytes, config.charging.rotateSeconds);
      }
    },
  });

  const app = new Koa();
  app.proxy = false;
  app.use(failureAnswers({ log, metrics, outages, api: 'isc' }));
  const checks = [
    { name: 'store', check: () => probeStore(store, config.node.id, outages) },
    { name: 'kamailio', check: async () => kamailio.version() },
    {
      name: 'instances',
      check: async () =>
        `alive: ${((await jobs.heartbeats?.alive()) ?? []).join(', ')}; jobs run here: ${jobs.heldJobs().join(', ') || 'none'}`,
    },
    {
      name: 'eventStream',
      check: async () => (events ? (events.isUp ? 'connected' : 'connecting (events fall back to HTTP)') : 'disabled'),
    },
  ];
  // the operator page's samples: the last hour, every ops.sampleSeconds
  const sampler = new OpsSampler({
    everyMs: config.ops.sampleSeconds * 1000,
    keep: Math.ceil(3600 / config.ops.sampleSeconds) + 1,
    metrics,
    log: log.child({ svc: 'ops' }),
    counts: async () => ({
      registeredUsers: await registrations.registeredCount(),
      subscriptions: await notifier.liveCounts(),
      publications: await publications.liveCount(),
      storedMessages: await messageStore.pendingTotal(),
      cdrsWritten: charging.metrics().recordsWritten,
    }),
  });
  const opsView = {
    token: config.admin.token,
    domain,
    registrations,
    notifier,
    messages: messageStore,
    forward,
    history,
    charging,
  };
  for (const r of [
    operatorPageRoutes({
      ...opsView,
      sampler,
      sampleSeconds: config.ops.sampleSeconds,
      checks,
      version: VERSION,
      node: config.node.id,
    }),
    opsRoutes({ checks, metrics, version: VERSION, startedAt: deps.startedAt }),
    iscRoutes({
      dispatcher,
      users,
      domain,
      secret: config.isc.secret,
      trustedAddresses: () => config.isc.trustedAddresses,
      bodyLimit: ISC_BODY_LIMIT,
    }),
    externalPresenceRoutes({
      token: config.presence.externalToken,
      users,
      domain,
      publications,
      state: presenceState,
      maxBodyBytes: 64 * 1024,
    }),
    adminRoutes({ users, messenger, rooms, token: config.admin.token, reload: () => reloader.reload('admin') }),
    opsAdminRoutes(opsView),
    conferenceAdminRoutes({ focus: deps.im.focus, domain: config.sip.domain, token: config.admin.token }),
  ]) {
    app.use(r.routes()).use(r.allowedMethods());
  }
  sampler.start();
  return {
    reloader,
    app,
    close: () => {
      sampler.stop();
      loopDelay.disable();
    },
  };
}
