import { readFileSync } from 'node:fs';
import type { AsConfig } from '../config/config.js';
import { ChatRooms } from '../conference/chat-rooms.js';
import { ConferenceFocus } from '../conference/focus.js';
import { GroupPolicy } from '../conference/group-policy.js';
import type { ConferenceRoster } from '../conference/roster.js';
import { focusJoinPolicy } from '../conference/roster-port.js';
import { DeferredEndpoint } from '../im/deferred-endpoint.js';
import { deliveryNotifications } from '../im/delivery-notifications.js';
import { GroupDirectory } from '../im/group-messaging.js';
import { ConversationHistory } from '../im/history.js';
import { ImActivity } from '../im/im-activity.js';
import { ImPolicies } from '../im/im-policies.js';
import { InChat } from '../im/in-chat.js';
import { MessageStore, type ImMessage } from '../im/message-store.js';
import { PagerService } from '../im/pager.js';
import { ServiceMessenger } from '../im/service-messages.js';
import { SessionService } from '../im/sessions.js';
import { StoreAndForward } from '../im/store-and-forward.js';
import { Welcome } from '../im/welcome.js';
import type { KamailioRpc } from '../isc/kamailio-rpc.js';
import { UserRateLimits } from '../limits/user-rate-limits.js';
import { MsrpSwitch } from '../msrp/switch.js';
import type { PresenceState } from '../presence/presence-state.js';
import type { Publications } from '../presence/publications.js';
import { contain } from '../util/contain.js';
import type { ServiceDeps } from './service-deps.js';
import { Owner, type Subsystem } from './ownership.js';

export interface ImDeps extends ServiceDeps {
  config: Pick<AsConfig, 'im' | 'msrp' | 'conference' | 'presence' | 'sip' | 'node' | 'cluster'>;
  kamailio: KamailioRpc;
  /** Presence the IM server reads (store-and-forward's presence hint) and feeds (the IM activity source). */
  publications: Publications;
  presenceState: PresenceState;
  conferences: ConferenceRoster;
}

export interface ImParts {
  messenger: ServiceMessenger;
  imPolicies: ImPolicies;
  messageStore: MessageStore;
  forward: StoreAndForward;
  /** The IM server's presence source: the session code says when a user is in a chat. */
  imActivity: ImActivity;
  history: ConversationHistory;
  /** Per-user flood limits (messages, group messages and subscribes), shared by every instance. */
  rateLimits: UserRateLimits;
  pager: PagerService;
  welcome: Welcome | undefined;
  msrpSwitch: MsrpSwitch;
  sessions: SessionService;
  rooms: ChatRooms;
  focus: ConferenceFocus;
}

/**
 * The IM server: pager mode, store-and-forward, session mode (the MSRP switch and the deferred
 * end point behind it) and the conference focus. Its close, last started first: the MSRP
 * sessions (their deferred messages still stored), then the deferred end point the switch
 * connected to, then the group fan-outs in flight, then store-and-forward's deliveries.
 */
export function startIm(deps: ImDeps): Promise<Subsystem<ImParts>> {
  return new Owner(deps.log, 'im').building((own) => buildIm(deps, own));
}

async function buildIm(deps: ImDeps, own: Owner): Promise<Subsystem<ImParts>> {
  const { config, log, metrics, store, jobs, charging, uac, kamailio, core, users, domain, registrations, docs } = deps;
  const { publications, presenceState, conferences, feed } = deps;
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
  own.own('store-and-forward', { close: () => forward.stop() });
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
  own.own('pager', { close: () => pager.drain() });
  const welcome = config.im.welcome
    ? new Welcome({ store, docs, messenger, xcapRoot: deps.xcapRoot, nodeId: config.node.id, log: imLog })
    : undefined;
  // deferred sessions: the IM server's own MSRP end point behind the switch (loopback)
  let deferredEndpoint: DeferredEndpoint | undefined;
  if (config.im.deferredSessions) {
    deferredEndpoint = new DeferredEndpoint({ maxMessageBytes: config.im.maxMessageBytes, log: imLog });
    await deferredEndpoint.start();
    // (closed after the switch: the switch's stop closes the connections it holds to it)
    own.own('deferred-endpoint', { close: () => deferredEndpoint?.stop() });
  }
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
  own.own('msrp-switch', { close: () => msrpSwitch.stop() });
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
  // (closed before the switch: no interim record is written once the AS stops)
  own.own('sessions', { close: () => sessions.stop() });
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
  metrics.gauge('ims_as_im_deferred_drains', 'mailboxes being drained by this instance', () => forward.activeDrains);
  return {
    messenger,
    imPolicies,
    messageStore,
    forward,
    imActivity,
    history,
    rateLimits,
    pager,
    welcome,
    msrpSwitch,
    sessions,
    rooms,
    focus,
    close: () => own.close(),
  };
}
