import type { Charging } from './charging/charging.js';
import { loadConfig, type AsConfig } from './config/config.js';
import type { ImActivity } from './im/im-activity.js';
import type { KamailioRpc } from './isc/kamailio-rpc.js';
import type { UacClient } from './isc/uac.js';
import type { Logger } from './log/logger.js';
import type { ReloadOutcome, ConfigReloader } from './ops/reloader.js';
import { Metrics } from './ops/metrics.js';
import type { Registrations } from './registrations/registrations.js';
import type { Store } from './store/port.js';
import type { UserDirectory } from './users/user-directory.js';
import { Reactions } from './reactions.js';
import { startCharging } from './app/charging.js';
import { startIm } from './app/im.js';
import { openIntake } from './app/intake.js';
import { createIsc } from './app/isc.js';
import { createOps } from './app/ops.js';
import { Owner } from './app/ownership.js';
import { startPresence } from './app/presence.js';
import { createSip } from './app/sip.js';
import { openStoreAndCluster, runClusterTimers } from './app/store-cluster.js';
import { openUsers } from './app/users.js';
import { createXcap, openXdmDocuments } from './app/xdm.js';

/**
 * The application server: builds one subsystem after the other (app/*.ts, each given only what
 * it needs) and owns them. A stop closes them in the reverse order they were built, each closing
 * what it owns; a start that fails half way closes what it had built the same way. So:
 * - the intake (ISC port, evapi stream, XCAP port), built last, closes first: the stream is left
 *   and every decision in flight answered before anything else stops;
 * - the ISC layer then waits for the outcome handlers Kamailio's events set off;
 * - the cluster's jobs and change feed stop before the subsystems whose jobs they run;
 * - IM, then presence (whose close saves the subscription state), then the SIP side;
 * - charging flushes after every part that charges;
 * - the store, built first, closes last.
 */
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
    /** The IM server's presence source: the session code says when a user is in a chat (imActivity). */
    readonly imActivity: ImActivity,
    private readonly reloader: ConfigReloader,
    private readonly parts: Owner,
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
    const parts = new Owner(log);
    return parts.building(async (own) => {
      const { store, outages, feed, jobs } = own.own('store', await openStoreAndCluster({ config, log, metrics }));
      const { charging } = own.own('charging', await startCharging({ config, log, metrics, store, jobs }));
      // (what a user change sets off is declared in reactions.ts, built once every part exists)
      let reactions: Reactions | undefined;
      const { users, identities, domain, registrations } = own.own(
        'users',
        await openUsers({ config, log, store, userChanged: async (user) => reactions?.userChanged(user) }),
      );
      const { kamailio, uac, core } = own.own('sip', createSip({ config, log, metrics }));
      const { docs, xcapTls, xcapRoot } = own.own('xdm-documents', await openXdmDocuments({ config, store }));
      // what the services build on, handed to each (each factory takes the part it declares)
      const served = {
        config,
        log,
        metrics,
        store,
        feed,
        jobs,
        charging,
        uac,
        kamailio,
        core,
        users,
        domain,
        registrations,
        docs,
        xcapRoot,
      };
      const presence = own.own('presence', await startPresence(served));
      const { notifier, publications, presenceState } = presence;
      const im = own.own(
        'im',
        await startIm({ ...served, publications, presenceState, conferences: presence.conferences }),
      );
      reactions = new Reactions(
        feed,
        {
          docs,
          publications,
          registrations,
          backend: presence.backend,
          notifier,
          presenceState,
          authorizer: presence.authorizer,
          lists: presence.lists,
          presence: presence.presence,
          regPackage: presence.regPackage,
          forward: im.forward,
          imPolicies: im.imPolicies,
          imActivity: im.imActivity,
          conferences: presence.conferencePackage,
          focus: im.focus,
          users,
          ...(im.welcome ? { welcome: im.welcome } : {}),
          dropCredentials: async (user) => void (await kamailio.htableDelete('cred', user).catch(() => undefined)),
          identities,
          dropIdentityCache: async () => void (await kamailio.htableFlush('ident').catch(() => undefined)),
        },
        { log, metrics },
      );
      // every subsystem has added its jobs: the cluster's timers run (and stop before those subsystems close)
      own.own('cluster-timers', await runClusterTimers({ feed, jobs }));
      const isc = own.own(
        'isc',
        createIsc({
          config,
          log,
          metrics,
          outages,
          domain,
          registrations,
          uac,
          notifier,
          presence: presence.presence,
          im,
        }),
      );
      const ops = own.own(
        'ops',
        createOps({
          config,
          reread,
          startedAt,
          log,
          metrics,
          store,
          outages,
          jobs,
          charging,
          kamailio,
          uac,
          users,
          domain,
          registrations,
          presence,
          im,
          isc,
        }),
      );
      const xcap = own.own('xcap', createXcap({ config, log, metrics, outages, docs, xcapRoot, users, domain, im }));
      own.own(
        'intake',
        await openIntake({
          config,
          log,
          dispatcher: isc.dispatcher,
          events: isc.events,
          iscApp: ops.app,
          xcapApp: xcap.app,
          xcapTls,
        }),
      );
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
        im.imActivity,
        ops.reloader,
        parts,
      );
    });
  }

  /**
   * Closes every subsystem, last built first (see the class comment for what that order
   * guarantees); rejects after all have closed when one did not close cleanly.
   */
  async stop(): Promise<void> {
    await this.parts.close();
    this.log.info('stopped');
  }
}
