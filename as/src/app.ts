import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Koa from 'koa';
import { adminRoutes } from './admin/admin-routes.js';
import { opsAdminRoutes } from './admin/ops-admin-routes.js';
import { Charging } from './charging/charging.js';
import { parseRfPeers } from './charging/rf-client.js';
import { isIP } from 'node:net';
import { loadConfig, type AsConfig } from './config/config.js';
import { GroupPolicy } from './conference/group-policy.js';
import { ConferencePackage } from './conference/conference-package.js';
import { ConferenceRoster } from './conference/roster.js';
import { GroupDirectory } from './im/group-messaging.js';
import { ChatRooms } from './conference/chat-rooms.js';
import { ConferenceFocus } from './conference/focus.js';
import { conferenceAdminRoutes } from './conference/conference-admin.js';
import { focusJoinPolicy } from './conference/roster-port.js';
import { ConversationHistory } from './im/history.js';
import { ImPolicies } from './im/im-policies.js';
import { imRoutes } from './im/im-routes.js';
import { deliveryNotifications } from './im/delivery-notifications.js';
import { MessageStore, type ImMessage } from './im/message-store.js';
import { PagerService } from './im/pager.js';
import { ImService } from './im/im-service.js';
import { MsrpSwitch } from './msrp/switch.js';
import { SessionService } from './im/sessions.js';
import { DeferredEndpoint } from './im/deferred-endpoint.js';
import { ServiceMessenger } from './im/service-messages.js';
import { Welcome } from './im/welcome.js';
import { StoreAndForward } from './im/store-and-forward.js';
import { ImActivity } from './im/im-activity.js';
import { InChat } from './im/in-chat.js';
import { IscDispatcher } from './isc/dispatcher.js';
import { RateLimitedService } from './limits/rate-limited-service.js';
import { RATE_LIMITED, UserRateLimits } from './limits/user-rate-limits.js';
import { iscRoutes } from './isc/isc-routes.js';
import { KamailioEventStream } from './isc/event-stream.js';
import { KamailioRpc } from './isc/kamailio-rpc.js';
import { UacClient } from './isc/uac.js';
import { instanceName, instanceTag } from './isc/instance.js';
import { kamailioTime, type SessionAnswerEvent, type SessionEndEvent } from './isc/types.js';
import { setLogLevel, type Logger } from './log/logger.js';
import { ConfigReloader, type ReloadOutcome } from './ops/reloader.js';
import { Metrics } from './ops/metrics.js';
import { opsRoutes } from './ops/ops-routes.js';
import { OpsSampler } from './ops/ops-sampler.js';
import { operatorPageRoutes } from './ops/operator-page-routes.js';
import { RegPackage } from './registrations/reg-package.js';
import { Registrations } from './registrations/registrations.js';
import { openStore } from './store/open-store.js';
import { probeStore } from './store/store-probe.js';
import { StoreOutages } from './store/store-fault.js';
import type { Store } from './store/port.js';
import { LocalDomain } from './users/local-domain.js';
import { IdentityIndex } from './users/identity-index.js';
import { UserDirectory } from './users/user-directory.js';
import { VERSION } from './version.js';
import { LocalChangeFeed, type ChangeFeed } from './cluster/change-feed.js';
import { SingletonJobs } from './cluster/singleton-jobs.js';
import { StoreChangeFeed } from './cluster/store-change-feed.js';
import { Reactions } from './reactions.js';
import { Notifier } from './events/notifier.js';
import { PidfTrees } from './presence/pidf-trees.js';
import { SubscriptionCharging } from './events/subscription-charging.js';
import { SubscriptionService } from './events/subscription-service.js';
import { DigestAuthenticator } from './http/digest.js';
import { emptyBody } from './http/empty-body.js';
import { errorSummary, isClientFault } from './http/client-fault.js';
import { refuseLargeContinue } from './http/expect-continue.js';
import { readTlsCredentials, type TlsCredentials } from './http/tls-credentials.js';
import { DocumentChecker } from './xdm/document-checker.js';
import { XdmDocuments } from './xdm/document-store.js';
import { xcapAuth } from './xdm/xcap-auth.js';
import { XcapDiffPackage } from './xdm/xcap-diff-package.js';
import { XcapServer } from './xdm/xcap-server.js';
import { PresenceAuthorizer } from './presence/authorization.js';
import { PresencePackage } from './presence/presence-package.js';
import { BackendSubscriptions } from './presence/rls/backend.js';
import { ResourceListServer } from './presence/rls/list-server.js';
import { PresenceService } from './presence/presence-service.js';
import { PresenceState } from './presence/presence-state.js';
import { Publications } from './presence/publications.js';
import { WatcherInfoPackage } from './presence/winfo-package.js';
import { Presentities } from './presence/presentities.js';
import { externalPresenceRoutes } from './presence/external-routes.js';
import { contain, REACTION_FAILURES } from './util/contain.js';
import { failureAnswers, STORE_UNAVAILABLE_ANSWERS } from './http/failure-answer.js';

/** How long a service may take to decide before the client gets a 503 (Kamailio waits 2 s). */
const DECISION_DEADLINE_MS = 1500;
/** Longest a shutdown waits for decisions in flight and their stream frames (a decision's deadline, and then some). */
const SHUTDOWN_DRAIN_MS = DECISION_DEADLINE_MS + 1500;
/** Longest a shutdown waits for Kamailio to confirm it sends no more requests on the stream. */
const LEAVE_LIMIT_MS = 500;
/** Largest ISC request: a SIP message of 64 KiB, JSON-escaped, with room to spare. */
const ISC_BODY_LIMIT = 512 * 1024;

/**
 * The application server: owns the store, the services and the HTTP endpoint, and their
 * start and stop order. Everything is built here and handed down; no module reaches for
 * globals.
 */
/**
 * Documents below this size are parsed and checked on the main thread (about 2 ms at this size;
 * a worker round trip costs more); larger ones in the checker's worker thread.
 */
const INLINE_CHECK_BYTES = 16 * 1024;

export class ApplicationServer {
  private constructor(
    readonly config: AsConfig,
    readonly log: Logger,
    readonly store: Store,
    readonly charging: Charging,
    readonly users: UserDirectory,
    readonly registrations: Registrations,
    readonly kamailio: KamailioRpc,
    readonly uac: UacClient,
    readonly metrics: Metrics,
    private readonly dispatcher: IscDispatcher,
    private readonly events: KamailioEventStream | undefined,
    private readonly notifier: Notifier,
    private readonly publications: Publications,
    private readonly pager: PagerService,
    private readonly msrpSwitch: MsrpSwitch,
    private readonly forward: StoreAndForward,
    private readonly http: Server,
    private readonly xcapHttp: Server,
    private readonly feed: ChangeFeed,
    private readonly jobs: SingletonJobs,
    private readonly reloader: ConfigReloader,
    private readonly sampler: OpsSampler,
    /** The IM server's presence source: the session code says when a user is in a chat (imActivity). */
    readonly imActivity: ImActivity,
  ) {}

  /** Applies the reloadable settings of the configuration as it reads now (SIGHUP, POST /admin/reload). */
  reload(trigger: string): ReloadOutcome {
    return this.reloader.reload(trigger);
  }

  /**
   * `metrics` may come from main, which counts process-level failures in the same registry;
   * `reread` reads the configuration again for a reload (main: the same file and environment).
   */
  static async start(
    config: AsConfig,
    log: Logger,
    metrics = new Metrics(),
    reread: () => AsConfig = () => loadConfig(),
  ): Promise<ApplicationServer> {
    const startedAt = new Date();
    // stalls of the event loop (GC, a large synchronous task) delay every answer: watch them
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    // store outages the clients met (answered 503), for /health
    const outages = new StoreOutages();
    const store = await openStore({
      mongodbUri: config.store.mongodbUri || undefined,
      dataDir: config.store.dataDir,
      log: log.child({ svc: 'store' }),
      metrics,
    });
    log.info({ engine: store.engine }, 'store open');
    // several instances on one store: changes travel through it, timer jobs are leased in it
    const feed: ChangeFeed = config.cluster.sharedStore
      ? new StoreChangeFeed({
          store,
          instance: config.node.id,
          pollMs: config.cluster.feedPollMs,
          log: log.child({ svc: 'feed' }),
          metrics,
        })
      : new LocalChangeFeed();
    const jobs = new SingletonJobs({
      store,
      instance: config.node.id,
      ttlMs: config.cluster.leaseSeconds * 1000,
      log: log.child({ svc: 'jobs' }),
      metrics,
    });
    try {
      const charging = new Charging({
        store,
        nodeId: config.node.id,
        nodeAddress: config.node.address,
        cdrDir: config.charging.cdrDir,
        rotateBytes: config.charging.rotateBytes,
        rotateSeconds: config.charging.rotateSeconds,
        retentionDays: config.charging.storeRetentionDays,
        maxStoredRecords: config.charging.storeMaxRecords,
        fsync: config.charging.fsync,
        jsonl: config.charging.jsonl,
        interOperatorIdentifiers: {
          originatingIOI: config.charging.originatingIoi || config.sip.domain,
          terminatingIOI: config.charging.terminatingIoi || config.sip.domain,
        },
        berFiles: {
          maxBytes: config.charging.fileMaxBytes,
          maxSeconds: config.charging.fileMaxSeconds,
          maxRecords: config.charging.fileMaxRecords,
        },
        log: log.child({ svc: 'charging' }),
        metrics,
        jobs,
        ...(config.charging.rf.peers.trim()
          ? {
              rf: {
                peers: parseRfPeers(config.charging.rf.peers),
                originHost: config.charging.rf.originHost || `${config.node.id}.${config.sip.domain}`,
                originRealm: config.charging.rf.originRealm || config.sip.domain,
                destinationRealm:
                  config.charging.rf.destinationRealm || config.charging.rf.originRealm || config.sip.domain,
                hostIpAddress: isIP(config.node.address) ? config.node.address : '127.0.0.1',
                watchdogMs: config.charging.rf.watchdogSeconds * 1000,
              },
            }
          : {}),
      });
      const report = await charging.start();
      log.info({ report }, 'charging ready');

      const kamailio = new KamailioRpc({ httpUrl: config.kamailio.httpUrl, secret: config.isc.secret });
      // (what a user change sets off is declared in reactions.ts, built once every part exists)
      let reactions: Reactions | undefined;
      const users = new UserDirectory(store, config.sip.domain, async (user) => reactions?.userChanged(user));
      // numbers and aliases of users, before anything canonicalises a URI
      const identities = new IdentityIndex(users);
      await identities.load();
      const domain = new LocalDomain(config.sip.domain, config.sip.domainAliases, identities);
      const registrations = new Registrations(store, log.child({ svc: 'registrations' }));
      const uac = new UacClient({
        httpUrl: config.kamailio.httpUrl,
        secret: config.isc.secret,
        coreUri: config.kamailio.sipUri,
        domain: config.sip.domain,
        transactionTimeoutMs: config.kamailio.transactionTimeoutMs,
        instanceTag: instanceTag(instanceName(config.node.id)),
        log: log.child({ svc: 'uac' }),
        metrics,
      });

      // XDMS: documents, their change notification (xcap-diff) and the XCAP server
      const docs = new XdmDocuments(store);
      await docs.start();
      const core = new URL(config.kamailio.sipUri.replace(/^sips?:/, 'http://'));
      const notifier = new Notifier({
        store,
        uac,
        metrics,
        contact: `sip:notifier@${core.host}`,
        coreHostPort: `${core.hostname.toLowerCase()}:${core.port || '5060'}`,
        viaLocation: (target) => domain.needsLocationLookup(target),
        registeredContacts: async (aor) => (await registrations.contacts(aor)).map((c) => c.uri),
        minNotifyInterval: config.presence.minNotifyInterval,
        instance: config.node.id,
        log: log.child({ svc: 'notifier' }),
      });
      // read before anything listens: a wrong path stops the start naming the setting
      const xcapTls = readTlsCredentials(config.xdm.tlsCert, config.xdm.tlsKey, 'xdm.tlsCert/xdm.tlsKey');
      const xcapRoot =
        config.xdm.publicRoot ||
        `${xcapTls ? 'https' : 'http'}://${config.xdm.host}:${config.xdm.port}${config.xdm.rootPath}`;
      new SubscriptionCharging(charging, { log: log.child({ svc: 'notifier' }), metrics }).attach(notifier);
      notifier.register(new XcapDiffPackage({ docs, domain, rootUri: xcapRoot }));

      // Presence Server: publications, composition, authorization, watcher info
      const publications = new Publications(store, { log: log.child({ svc: 'presence' }), metrics });
      const armed = await publications.start();
      const authorizer = new PresenceAuthorizer(docs, config.presence.defaultSubHandling, (uri) =>
        domain.canonical(uri),
      );
      const presentities = new Presentities(users, config.presence.openDomain);
      // presence documents parsed once: the PUBLISH path's tree is the one composition uses
      const pidfTrees = new PidfTrees();
      const presenceState = new PresenceState({
        pidfTrees,
        publications,
        docs,
        log: log.child({ svc: 'presence' }),
        maxComposedBytes: config.presence.maxComposedBytes,
        metrics,
      });
      // Resource List Server (RFC 4662): list subscriptions share the presence package;
      // members in other domains through back-end subscriptions
      const backend = new BackendSubscriptions({
        store,
        uac,
        identity: `sip:rls@${domain.domain}`,
        contact: `sip:rls@${core.host}`,
        stillWanted: async (member) =>
          (await notifier.find({ event: 'presence', watches: member, state: { $ne: 'terminated' } })).length > 0,
        log: log.child({ svc: 'rls' }),
        metrics,
      });
      backend.start(jobs);
      const lists = new ResourceListServer({
        docs,
        domain,
        presentities,
        authorizer,
        state: presenceState,
        notifier: () => notifier,
        backend,
        // getters: a reload changes config.presence in place
        limits: {
          get maxNotifyBytes() {
            return config.presence.maxNotifyBytes;
          },
          get maxMembers() {
            return config.presence.maxListMembers;
          },
          get maxDepth() {
            return config.presence.maxListDepth;
          },
        },
        log: log.child({ svc: 'rls' }),
        metrics,
      });
      notifier
        .register(
          new PresencePackage({
            presentities,
            domain,
            authorizer,
            state: presenceState,
            lists,
            expiry: config.presence,
          }),
        )
        .register(
          new WatcherInfoPackage({
            domain,
            notifier: () => notifier,
            watchedPackage: 'presence',
            expiry: config.presence,
          }),
        );
      const presence = new PresenceService({
        pidfTrees,
        presentities,
        domain,
        publications,
        notifier,
        authorizer,
        registrations,
        charging,
        backend,
        // (the running settings underneath, so a reload's new bounds apply at once)
        limits: Object.assign(Object.create(config.presence) as AsConfig['presence'], { maxBodyBytes: 64 * 1024 }),
        log: log.child({ svc: 'presence' }),
        metrics,
      });
      // Registration event package (RFC 3680): a user's devices watch their own registrations
      const regPackage = new RegPackage({
        registrations,
        domain,
        // an alias or number registers with the name (kamailio.cfg REGISTRAR): the whole set is shown
        implicitSet: async (aor) => {
          const ids = await users.identitiesOf(aor);
          return [...ids.aliases, ...(ids.tel ? [`tel:${ids.tel}`] : [])];
        },
      });
      notifier.register(regPackage);
      // Group chat: the conference roster (store state shared by every instance) and its event package (RFC 4575)
      const conferences = new ConferenceRoster(store, feed);
      const conferencePackage = new ConferencePackage({ roster: conferences, domain, notifier: () => notifier });
      notifier.register(conferencePackage);
      await notifier.start();
      log.info({ publications: armed }, 'presence ready');

      // IM Server: participating, controlling and deferred-messaging functions
      const imLog = log.child({ svc: 'im' });
      const messenger = new ServiceMessenger({ uac, domain, identity: `sip:service@${config.sip.domain}` });
      const imPolicies = new ImPolicies(docs);
      const messageStore = new MessageStore(store, config.node.id);
      const forward = new StoreAndForward({
        store: messageStore,
        uac,
        registrations,
        charging,
        policyOf: (u) => imPolicies.of(u),
        domain: config.sip.domain,
        limits: config.im,
        metrics,
        log: imLog,
        jobs,
        presenceOf: (u) => presenceState.ownPresence(u),
      });
      const imActivity = new ImActivity({ publications, policyOf: (u) => imPolicies.of(u), log: imLog });
      forward.notificationFactory = deliveryNotifications(domain);
      const history = new ConversationHistory(store, {
        nodeId: config.node.id,
        maxMessages: config.im.historyMaxMessages,
        warnPercent: config.im.historyWarnPercent,
        warn: (owner, text) => {
          imLog.info({ owner }, 'history nearly full: telling the user');
          contain(
            { log: imLog, metrics },
            'history-notice',
            messenger.send(owner, text).then((out) => imLog.info({ owner, code: out.code }, 'history notice outcome')),
            { owner },
          );
        },
      });
      await history.start();
      await forward.start();
      // per-user flood limits, one counter per user and minute shared by every instance
      const rateLimits = new UserRateLimits({
        store,
        metrics,
        log: log.child({ svc: 'limits' }),
        limitOf: (kind) =>
          kind === 'message'
            ? config.im.messagesPerMinute
            : kind === 'group'
              ? config.im.groupMessagesPerMinute
              : config.presence.subscribesPerMinute,
      });
      await rateLimits.start();
      const groupPolicy = new GroupPolicy({
        docs,
        canonical: (u) => domain.canonical(u),
        // getters: a reload changes config.im in place
        operatorMax: () => config.im.groupMaxParticipants,
        maxMembers: () => config.im.maxRecipients,
      });
      const pager = new PagerService({
        users,
        domain,
        registrations,
        charging,
        policies: imPolicies,
        groups: new GroupDirectory(docs),
        groupPolicy,
        forward,
        history,
        limits: config.im,
        nodeAddress: config.node.address,
        metrics,
        log: imLog,
        rateLimits,
      });
      const welcome = config.im.welcome
        ? new Welcome({ store, docs, messenger, xcapRoot, nodeId: config.node.id, log: imLog })
        : undefined;
      // Session mode: INVITE with an MSRP offer, the media anchored at this instance
      const msrpSwitch = new MsrpSwitch({
        host: config.msrp.host,
        port: config.msrp.port,
        maxMessageBytes: config.msrp.maxMessageBytes,
        endpointMaxMessageBytes: config.conference.maxMessageBytes,
        idleTimeoutMs: config.msrp.idleTimeoutSeconds * 1000,
        log: log.child({ svc: 'msrp' }),
        metrics,
        ...(config.msrp.tlsCert && config.msrp.tlsKey
          ? { tls: { cert: readFileSync(config.msrp.tlsCert), key: readFileSync(config.msrp.tlsKey) } }
          : {}),
      });
      await msrpSwitch.start();
      // deferred sessions: the IM server's own MSRP end point behind the switch (loopback)
      let deferredEndpoint: DeferredEndpoint | undefined;
      if (config.im.deferredSessions) {
        deferredEndpoint = new DeferredEndpoint({ maxMessageBytes: config.im.maxMessageBytes, log: imLog });
        await deferredEndpoint.start();
      }
      // in a chat: one-to-one sessions and conferences count together for the IM activity source
      const inChat = new InChat((user, state) => imActivity.imActivity(user, state, { expiresSeconds: 43_200 }));
      const sessions = new SessionService({
        users,
        domain,
        policies: imPolicies,
        charging,
        history,
        anchor: msrpSwitch,
        registrations,
        terminate: (d) => kamailio.terminateDialog(d.callId, d.fromTag, d.toTag),
        maxMessageBytes: config.msrp.maxMessageBytes,
        maxFileBytes: config.msrp.maxFileBytes,
        interimRecordMs: config.msrp.interimRecordSeconds * 1000,
        ...(deferredEndpoint
          ? {
              deferred: {
                endpoint: deferredEndpoint,
                store: (recipient: string, msg: ImMessage) => forward.defer(recipient, msg),
                contact: `sip:im-deferred@${core.host}`,
                send: (req) => uac.send(req),
                maxPagerBytes: config.im.maxMessageBytes,
              },
            }
          : {}),
        nodeAddress: config.node.address,
        metrics,
        log: imLog,
        // the IM server's presence source for the user ("in a chat"), unless their IM policy opts out
        // (bounded by the dialog module's default_timeout, 12 h: a crash never leaves it for good)
        activity: (user, state) => (state === 'chat' ? inChat.enter(user) : inChat.leave(user)),
      });
      metrics.gauge('ims_as_im_sessions_open', 'IM sessions anchored by this instance', () => sessions.size);
      // Conference focus (group chat): chat rooms, each participant's MSRP session ends at the switch
      const rooms = new ChatRooms(store, config.sip.domain, (name) => users.exists(name));
      await rooms.start();
      // legs the roster says this instance holds died with its previous process (same node id)
      await conferences.instanceGone(config.node.id);
      const focus = new ConferenceFocus({
        rooms,
        groups: new GroupDirectory(docs),
        domain,
        media: msrpSwitch,
        charging,
        policy: focusJoinPolicy(groupPolicy),
        roster: conferences,
        uac,
        contactHost: core.host,
        msrpHost: config.msrp.host,
        msrpPort: () => msrpSwitch.port,
        replayMessages: () => config.conference.replayMessages,
        factoryUser: () => config.conference.factoryUser,
        maxInvitees: () => config.im.maxRecipients,
        instance: config.node.id,
        nodeAddress: config.node.address,
        metrics,
        log: log.child({ svc: 'conference' }),
        inChat,
        groupInvitees: (uri) => groupPolicy.membersToInvite(uri),
        // several instances: messages reach the legs the others hold over the change feed
        ...(config.cluster.sharedStore
          ? { relay: { publish: (c) => feed.publish(c), maxMessageBytes: () => config.conference.maxMessageBytes } }
          : {}),
      });
      metrics.gauge('ims_as_conference_participants', 'conference participants on this instance', () => focus.size);
      reactions = new Reactions(
        feed,
        {
          docs,
          publications,
          registrations,
          backend,
          notifier,
          presenceState,
          authorizer,
          lists,
          presence,
          regPackage,
          forward,
          imPolicies,
          imActivity,
          conferences: conferencePackage,
          focus,
          users,
          ...(welcome ? { welcome } : {}),
          dropCredentials: async (user) => void (await kamailio.htableDelete('cred', user).catch(() => undefined)),
          identities,
          dropIdentityCache: async () => void (await kamailio.htableFlush('ident').catch(() => undefined)),
        },
        { log, metrics },
      );
      jobs.add({ name: 'publication-expiry', everyMs: 10_000, run: () => publications.sweepExpired() }).add({
        name: 'dialog-adoption',
        everyMs: 5_000,
        run: async () => {
          for (const dead of (await jobs.heartbeats?.dead()) ?? []) {
            await notifier.adopt(dead);
            // its conference participants' MSRP legs died with it: they have left
            await conferences.instanceGone(dead);
            await jobs.heartbeats?.forget(dead);
          }
        },
      });
      await feed.start();
      await jobs.start();
      metrics.gauge(
        'ims_as_im_deferred_drains',
        'mailboxes being drained by this instance',
        () => forward.activeDrains,
      );

      const dispatcher = new IscDispatcher({
        log: log.child({ svc: 'isc' }),
        metrics,
        deadlineMs: DECISION_DEADLINE_MS,
        outages,
      })
        .register(new RateLimitedService(new ImService(pager, sessions, notifier, focus), rateLimits, domain))
        .register(new RateLimitedService(new SubscriptionService('xdm', notifier), rateLimits, domain))
        .register(new RateLimitedService(presence, rateLimits, domain))
        .on('registration', async (ev) => void (await registrations.apply(ev as Parameters<Registrations['apply']>[0])))
        .on(
          'contact-expired',
          async (ev) => void (await registrations.apply(ev as Parameters<Registrations['apply']>[0])),
        )
        .on('uac-reply', async (ev) => uac.onReply(ev as Parameters<UacClient['onReply']>[0]))
        .on('session-answer', async (ev) => sessions.onAnswer(ev as SessionAnswerEvent))
        .on('session-end', async (ev) =>
          sessions.onEnd(ev as SessionEndEvent, kamailioTime((ev as SessionEndEvent).ts)),
        );

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
          'presence documents parsed (each text once while kept)',
          () => pidfTrees.parses,
        )
        .counterFrom(
          'ims_as_pidf_tree_reuses_total',
          'presence documents whose kept tree served instead of a parse',
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
          async () =>
            Object.entries(await notifier.liveCounts()).map(([event, value]) => ({ labels: { event }, value })),
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
        .gauge(
          'ims_as_charging_rf_peer_up',
          'Diameter Rf: a CDF peer is open (1) or not (0, also when Rf is off)',
          () => (charging.rf?.stats.peer ? 1 : 0),
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
        reread,
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
          check: async () =>
            events ? (events.isUp ? 'connected' : 'connecting (events fall back to HTTP)') : 'disabled',
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
        opsRoutes({ checks, metrics, version: VERSION, startedAt }),
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
        conferenceAdminRoutes({ focus, domain: config.sip.domain, token: config.admin.token }),
      ]) {
        app.use(r.routes()).use(r.allowedMethods());
      }

      const http = await listen(app, config.isc.host, config.isc.port, 'isc.host/isc.port');
      // Kamailio keeps its connections open; never let Node close them under it mid-request
      http.keepAliveTimeout = 65_000;
      events?.start();
      sampler.start();

      const xcap = new Koa();
      const xcapLog = log.child({ svc: 'xcap' });
      xcap.use(failureAnswers({ log: xcapLog, metrics, outages, api: 'xcap' }));
      // large documents are parsed and validated in a worker thread: no XCAP PUT stalls SIP decisions
      const checker = new DocumentChecker({
        limits: { maxBytes: config.xdm.maxDocumentBytes, maxDepth: config.xdm.maxDepth },
        inlineBelowBytes: INLINE_CHECK_BYTES,
        log: xcapLog,
        metrics,
      });
      const xcapServer = new XcapServer({
        docs,
        users,
        checker,
        metrics,
        outages,
        log: xcapLog,
        options: {
          rootPath: config.xdm.rootPath,
          rootUri: xcapRoot,
          domain,
          maxDocumentBytes: config.xdm.maxDocumentBytes,
          maxDepth: config.xdm.maxDepth,
        },
      });
      const underRoot = (path: string) =>
        path === config.xdm.rootPath || path.startsWith(`${config.xdm.rootPath}/`) || path.startsWith('/im/users/');
      xcap.use(async (ctx, next) => {
        if (!underRoot(ctx.path)) {
          emptyBody(ctx, 404);
          return;
        }
        await next();
      });
      xcap.use(
        xcapAuth({
          digest: new DigestAuthenticator(config.sip.domain, config.isc.secret),
          users,
          domain,
          trustedProxies: () => config.xdm.trustedProxies,
          assertedIdentityHeader: config.xdm.assertedIdentityHeader,
        }),
      );
      const userIm = imRoutes({ store: messageStore, history, policies: imPolicies, domain });
      xcap.use(userIm.routes()).use(userIm.allowedMethods());
      xcap.use(xcapServer.middleware());
      // koa's default prints whole stacks to stderr, e.g. for every client that sends a broken request
      xcap.on('error', (err: unknown) => {
        if (isClientFault(err)) xcapLog.info(errorSummary(err), 'XCAP connection failed (client)');
        else xcapLog.error(errorSummary(err), 'XCAP request failed');
      });
      const xcapHttp = await listen(xcap, config.xdm.host, config.xdm.port, 'xdm.host/xdm.port', xcapTls);
      refuseLargeContinue(xcapHttp, config.xdm.maxDocumentBytes);
      xcapHttp.on('close', () => {
        checker.close().catch((err: unknown) => xcapLog.warn(errorSummary(err), 'document checker not stopped'));
      });
      log.info({ xcapRoot }, 'XCAP server ready');
      log.info(
        { listen: `http://${config.isc.host}:${config.isc.port}`, domain: config.sip.domain, node: config.node.id },
        'application server ready',
      );
      return new ApplicationServer(
        config,
        log,
        store,
        charging,
        users,
        registrations,
        kamailio,
        uac,
        metrics,
        dispatcher,
        events,
        notifier,
        publications,
        pager,
        msrpSwitch,
        forward,
        http,
        xcapHttp,
        feed,
        jobs,
        reloader,
        sampler,
        imActivity,
      );
    } catch (err) {
      await jobs.stop().catch(() => undefined);
      await feed.stop().catch(() => undefined);
      await store.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Stops in the order that loses no answer: Kamailio is asked to send no more requests on
   * the stream (later ones take HTTP, or another instance); every decision in flight is
   * answered and its stream frame confirmed by Kamailio; only then the stream closes, and
   * the ISC HTTP endpoint after it (the events of requests just answered may come that
   * way); then every timer and background job, charging, the store.
   */
  async stop(): Promise<void> {
    this.log.info({ deciding: this.dispatcher.inFlight }, 'stopping: answering the decisions in flight');
    const until = Date.now() + SHUTDOWN_DRAIN_MS;
    const remaining = () => Math.max(0, until - Date.now());
    const xcapClosed = closeServer(this.xcapHttp);
    await this.events?.leave(LEAVE_LIMIT_MS);
    await this.dispatcher.settle(remaining());
    await this.events?.close(remaining(), () => this.dispatcher.inFlight === 0);
    const iscClosed = closeServer(this.http);
    await this.dispatcher.settle(remaining());
    if (this.dispatcher.inFlight > 0)
      this.log.warn({ deciding: this.dispatcher.inFlight }, 'stopped with decisions unanswered');
    // a client still holding a connection now is idle or too slow: cut it
    for (const server of [this.http, this.xcapHttp]) server.closeAllConnections();
    await Promise.all([xcapClosed, iscClosed]);
    this.sampler.stop();
    await this.jobs.stop();
    await this.feed.stop();
    this.notifier.stop();
    // the counts a restart would otherwise lose (and mark the subscriptions' records incomplete for)
    await this.notifier
      .saveState()
      .catch((err: unknown) =>
        this.log.error({ err }, 'subscription state not saved at stop: the next start marks their records incomplete'),
      );
    this.publications.stop();
    await this.forward.stop();
    await this.pager.drain();
    await this.msrpSwitch.stop();
    this.uac.close();
    await this.dispatcher.drain();
    await this.charging.stop();
    await this.store.close();
    this.log.info('stopped');
  }
}

/** Takes no new connections and drops idle ones; resolves when the last one is gone. */
function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  return closed;
}

/** Koa on host:port, over HTTPS when given credentials (then HTTPS only: no plain HTTP there). */
function listen(app: Koa, host: string, port: number, settings: string, tls?: TlsCredentials): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const s: Server = tls
      ? createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, app.callback())
      : createHttpServer(app.callback());
    s.listen(port, host, () => resolve(s));
    s.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${host}:${port} (${settings}): ${err.code ?? err.message}`)),
    );
  });
}
