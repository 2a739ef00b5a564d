import type { AsConfig } from '../config/config.js';
import { ConferencePackage } from '../conference/conference-package.js';
import { ConferenceRoster } from '../conference/roster.js';
import { Notifier } from '../events/notifier.js';
import { SubscriptionCharging } from '../events/subscription-charging.js';
import { PresenceAuthorizer } from '../presence/authorization.js';
import { PidfTrees } from '../presence/pidf-trees.js';
import { PresencePackage } from '../presence/presence-package.js';
import { PresenceService } from '../presence/presence-service.js';
import { PresenceState } from '../presence/presence-state.js';
import { Presentities } from '../presence/presentities.js';
import { Publications } from '../presence/publications.js';
import { BackendSubscriptions } from '../presence/rls/backend.js';
import { ResourceListServer } from '../presence/rls/list-server.js';
import { WatcherInfoPackage } from '../presence/winfo-package.js';
import { RegPackage } from '../registrations/reg-package.js';
import { XcapDiffPackage } from '../xdm/xcap-diff-package.js';
import type { ServiceDeps } from './service-deps.js';
import { Owner, type Subsystem } from './ownership.js';

export interface PresenceDeps extends ServiceDeps {
  config: Pick<AsConfig, 'presence' | 'node'>;
}

export interface PresenceParts {
  /** Every event package's subscriptions and NOTIFYs (presence, winfo, reg, conference, xcap-diff). */
  notifier: Notifier;
  publications: Publications;
  pidfTrees: PidfTrees;
  presenceState: PresenceState;
  authorizer: PresenceAuthorizer;
  backend: BackendSubscriptions;
  lists: ResourceListServer;
  presence: PresenceService;
  regPackage: RegPackage;
  /** The conference roster (store state shared by every instance) and its event package (RFC 4575). */
  conferences: ConferenceRoster;
  conferencePackage: ConferencePackage;
}

/**
 * The notifier with its event packages and the presence server (publications, composition,
 * authorization, resource lists, watcher info). Its close stops the notifier's timers, saves
 * the subscriptions' counts (a restart would otherwise mark their records incomplete) and
 * stops the publications' timers; it runs after the cluster's jobs stopped (they run the
 * sweeps, the dialog adoption and the back-end refreshes, `BackendSubscriptions`' only timer).
 */
export function startPresence(deps: PresenceDeps): Promise<Subsystem<PresenceParts>> {
  return new Owner(deps.log, 'presence').building((own) => buildPresence(deps, own));
}

async function buildPresence(deps: PresenceDeps, own: Owner): Promise<Subsystem<PresenceParts>> {
  const { config, log, metrics, store, feed, jobs, charging, uac, core, users, domain, registrations, docs } = deps;
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
  new SubscriptionCharging(charging, { log: log.child({ svc: 'notifier' }), metrics }).attach(notifier);
  notifier.register(new XcapDiffPackage({ docs, domain, rootUri: deps.xcapRoot }));

  // Presence Server: publications, composition, authorization, watcher info
  const publications = new Publications(store, { log: log.child({ svc: 'presence' }), metrics });
  const armed = await publications.start();
  own.own('publications', { close: () => publications.stop() });
  const authorizer = new PresenceAuthorizer(docs, config.presence.defaultSubHandling, (uri) => domain.canonical(uri));
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
  own.own('notifier', {
    close: async () => {
      notifier.stop();
      // the counts a restart would otherwise lose (and mark the subscriptions' records incomplete for)
      await notifier
        .saveState()
        .catch((err: unknown) =>
          log.error({ err }, 'subscription state not saved at stop: the next start marks their records incomplete'),
        );
    },
  });
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
  log.info({ publications: armed }, 'presence ready');
  return {
    notifier,
    publications,
    pidfTrees,
    presenceState,
    authorizer,
    backend,
    lists,
    presence,
    regPackage,
    conferences,
    conferencePackage,
    close: () => own.close(),
  };
}
