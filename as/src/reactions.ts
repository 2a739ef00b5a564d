/**
 * Every reaction of the AS to a change, declared here and nowhere else, in the order it runs.
 *
 * A change is made by one instance (documents written, a PUBLISH, a REGISTER, a user
 * provisioned, a remote member's NOTIFY, a subscription's step) and travels through the
 * change feed: this instance reacts at once, the others when they read it. Each reaction
 * says where it runs: `everywhere` (caches of every instance; NOTIFYs to the dialogs each
 * instance holds) or `origin` (work done once, by the instance that made the change).
 * Reactions to one resource run one after the other, in the order of its changes; a failing
 * reaction is logged and counted (ims_as_reaction_failures_total) and the next one still runs.
 */
import type { ChangeFeed, ChangeOrigin } from './cluster/change-feed.js';
import { resourceOf, type Change } from './cluster/changes.js';
import type { Notifier } from './events/notifier.js';
import type { PresenceAuthorizer } from './presence/authorization.js';
import type { ImActivity } from './im/im-activity.js';
import type { ImPolicies } from './im/im-policies.js';
import type { StoreAndForward } from './im/store-and-forward.js';
import type { Welcome } from './im/welcome.js';
import type { PresenceService } from './presence/presence-service.js';
import type { PresenceState } from './presence/presence-state.js';
import type { Publications } from './presence/publications.js';
import type { BackendSubscriptions } from './presence/rls/backend.js';
import type { ResourceListServer } from './presence/rls/list-server.js';
import type { RegPackage } from './registrations/reg-package.js';
import type { Registrations } from './registrations/registrations.js';
import { imPolicyUsage } from './xdm/usages/im-policy.js';
import { contain, REACTION_FAILURES, type FailureSink } from './util/contain.js';
import type { XdmDocuments } from './xdm/document-store.js';

/** The parts that make changes and the parts that react to them. */
export interface ReactingParts {
  docs: XdmDocuments;
  publications: Publications;
  registrations: Registrations;
  backend: BackendSubscriptions;
  notifier: Notifier;
  presenceState: PresenceState;
  authorizer: PresenceAuthorizer;
  lists: ResourceListServer;
  presence: PresenceService;
  regPackage: RegPackage;
  forward: StoreAndForward;
  imPolicies: ImPolicies;
  /** The IM server's presence source for users in a chat. */
  imActivity: ImActivity;
  /** The conference event package: NOTIFYs (or final ones) for a conference whose roster changed. */
  conferences: { conferenceChanged(uri: string): Promise<void> };
  /**
   * The conference focus: which participants other instances hold (for private messages and
   * the join checks), and the messages said on other instances for the legs this one holds.
   */
  focus?: {
    rosterChanged(uri: string): Promise<void>;
    messageRelayed(msg: Extract<Change, { kind: 'conference-message' }>): Promise<void>;
  };
  /** The first-registration message (absent when turned off). */
  welcome?: Welcome;
  /** The user directory's cache of user records. */
  users: { forget(user: string): void; clear(): void };
  /** Kamailio caches HA1s for a minute: drop a user's entry so that a change applies at once. */
  dropCredentials(user: string): Promise<void>;
  /** The in-memory numbers and aliases (LocalDomain.canonical), rebuilt after a user change. */
  identities: { load(): Promise<void> };
  /** Kamailio caches which user a Request-URI names (route RESOLVE_TARGET): emptied on a change. */
  dropIdentityCache(): Promise<void>;
}

const IM_POLICY_AUID = imPolicyUsage.auid;

type Of<K extends Change['kind']> = Extract<Change, { kind: K }>;

interface Reaction<K extends Change['kind']> {
  name: string;
  where: 'everywhere' | 'origin';
  when?: (c: Of<K>) => boolean;
  run: (c: Of<K>) => Promise<unknown> | void;
}

type Declarations = { [K in Change['kind']]: Array<Reaction<K>> };

function declare(p: ReactingParts): Declarations {
  const { notifier } = p;
  return {
    document: [
      {
        name: 'presence-cache',
        where: 'everywhere',
        when: (c) => c.ref.auid === 'pidf-manipulation',
        run: (c) => p.presenceState.forget(c.ref.xui),
      },
      {
        name: 'im-policy-cache',
        where: 'everywhere',
        when: (c) => c.ref.tree === 'users' && c.ref.auid === IM_POLICY_AUID,
        run: (c) => p.imPolicies.forget(c.ref.xui),
      },
      // after the cache: presence-aware delivery switched off (or changed) lets held messages go
      {
        name: 'held-messages',
        where: 'origin',
        when: (c) => c.ref.tree === 'users' && c.ref.auid === IM_POLICY_AUID,
        run: (c) => p.forward.policyChanged(c.ref.xui),
      },
      // publishing the IM activity switched off: what the server published goes at once
      {
        name: 'im-activity-opt-out',
        where: 'origin',
        when: (c) => c.ref.tree === 'users' && c.ref.auid === IM_POLICY_AUID,
        run: (c) => p.imActivity.policyChanged(c.ref.xui),
      },
      // before anything re-decides with them
      {
        name: 'rules-cache',
        where: 'everywhere',
        when: (c) => c.ref.tree === 'users' && c.ref.auid === 'pres-rules',
        run: (c) => p.authorizer.forget(c.ref.xui),
      },
      // pres-rules of a list member (grants re-decided), a document a list is read from (membership)
      {
        name: 'list-membership',
        where: 'everywhere',
        when: (c) => c.ref.tree === 'users',
        run: (c) => p.lists.documentChanged(c.ref),
      },
      {
        name: 'presence-rules',
        where: 'everywhere',
        when: (c) => c.ref.tree === 'users' && c.ref.auid === 'pres-rules',
        run: (c) => p.presence.rulesChanged(c.ref),
      },
      {
        name: 'xcap-diff-notify',
        where: 'everywhere',
        when: (c) => c.ref.tree === 'users',
        run: (c) => notifier.resourceChanged('xcap-diff', c.ref.xui),
      },
      {
        name: 'presence-notify',
        where: 'everywhere',
        when: (c) => c.ref.tree === 'users' && c.ref.auid === 'pidf-manipulation',
        run: (c) => notifier.resourceChanged('presence', c.ref.xui),
      },
    ],
    publication: [
      { name: 'presence-cache', where: 'everywhere', run: (c) => p.presenceState.forget(c.entity) },
      { name: 'presence-notify', where: 'everywhere', run: (c) => notifier.resourceChanged(c.event, c.entity) },
      // presence-aware delivery: messages held while the presence said closed or busy go when it no
      // longer does, drained like a registration's (after presence-cache: the drain reads the new state)
      {
        name: 'held-messages',
        where: 'origin',
        when: (c) => c.event === 'presence',
        run: (c) => p.forward.presenceChanged(c.entity),
      },
    ],
    registration: [
      // why a contact went (expired or unregistered) is told by the next reg NOTIFY, wherever its dialog is
      { name: 'reg-endings', where: 'everywhere', run: (c) => p.regPackage.noteChange(c.change) },
      { name: 'reg-notify', where: 'everywhere', run: (c) => notifier.resourceChanged('reg', c.change.aor) },
      // the network's presence source is a publication: written once, its own change follows
      { name: 'network-presence', where: 'origin', run: (c) => p.presence.networkSource(c.change) },
      // stored messages go to a user who came online (their mailbox is leased: one instance drains it)
      { name: 'deferred-drain', where: 'origin', run: (c) => p.forward.registrationChanged(c.change) },
      // a user's first registration ever: the IM profile and one message about it (once across instances)
      {
        name: 'welcome',
        where: 'origin',
        when: (c) => p.welcome !== undefined && c.change.kind === 'registered',
        run: (c) => p.welcome!.registrationChanged(c.change),
      },
    ],
    user: [
      { name: 'user-cache', where: 'everywhere', run: (c) => p.users.forget(c.user) },
      { name: 'credential-cache', where: 'origin', run: (c) => p.dropCredentials(c.user) },
      { name: 'identity-index', where: 'everywhere', run: () => p.identities.load() },
      { name: 'identity-cache', where: 'origin', run: () => p.dropIdentityCache() },
    ],
    'remote-member': [
      {
        name: 'list-notify',
        where: 'everywhere',
        run: (c) => notifier.resourceChanged('presence', c.member, { direct: false }),
      },
    ],
    watchers: [
      {
        name: 'winfo-notify',
        where: 'everywhere',
        when: (c) => c.event === 'presence',
        run: (c) => notifier.resourceChanged('presence.winfo', c.resource),
      },
    ],
    conference: [
      // the dialogs each instance holds: partial conference-info, or the final NOTIFY once it ended
      { name: 'conference-notify', where: 'everywhere', run: (c) => p.conferences.conferenceChanged(c.uri) },
      { name: 'conference-seats', where: 'everywhere', run: (c) => p.focus?.rosterChanged(c.uri) },
    ],
    'conference-message': [
      // the instance that took the SEND delivered to its own legs already; each other to its own
      { name: 'conference-relay', where: 'everywhere', run: (c) => p.focus?.messageRelayed(c) },
    ],
  };
}

/**
 * Wires the sources to the feed and the feed to the declarations. A user change is published
 * through userChanged, which the user directory awaits (its callers expect Kamailio's cache
 * dropped when they are answered).
 */
export class Reactions {
  private readonly declared: Declarations;
  /** The tail of each resource's chain of reactions. */
  private readonly tails = new Map<string, Promise<void>>();
  /**
   * Watcher changes waiting in a chain that have not started yet: their reaction reads the
   * current state (watcher info), so a later change of the same resource joins the waiting one
   * instead of queueing a copy. 10,000 subscriptions
   * to one presentity made 10,000 watcher-info reactions, one after the other, each a store
   * query; now they are as many as the store answers in that time.
   */
  private readonly waiting = new Map<string, Promise<void>>();

  constructor(
    private readonly feed: ChangeFeed,
    private readonly parts: ReactingParts,
    private readonly sink: FailureSink,
  ) {
    this.declared = declare(parts);
    feed.listen({ change: (c, origin) => this.react(c, origin), resync: () => this.resync() });
    const publish = (c: Change) => contain(sink, `publish:${c.kind}`, () => feed.publish(c));
    parts.docs.on('change', (ch) =>
      publish({
        kind: 'document',
        ref: ch.ref,
        ...(ch.previousEtag ? { previousEtag: ch.previousEtag } : {}),
        ...(ch.etag ? { etag: ch.etag } : {}),
      }),
    );
    parts.publications.on('changed', ({ entity, event }) => publish({ kind: 'publication', entity, event }));
    parts.registrations.on('change', (change) => publish({ kind: 'registration', change }));
    parts.backend.on('changed', (member) => publish({ kind: 'remote-member', member }));
    parts.notifier.on('subscription', ({ sub }) =>
      publish({ kind: 'watchers', event: sub.event, resource: sub.resource }),
    );
  }

  /** A provisioned user changed: resolves once this instance's reactions are done. */
  userChanged(user: string): Promise<void> {
    return this.feed.publish({ kind: 'user', user });
  }

  /** Reactions to one change, after those to earlier changes of the same resource. */
  private react(change: Change, origin: ChangeOrigin): Promise<void> {
    const key = resourceOf(change);
    const coalesces = change.kind === 'watchers';
    const pending = coalesces ? this.waiting.get(key) : undefined;
    if (pending) return pending;
    const run = (this.tails.get(key) ?? Promise.resolve()).then(() => {
      if (this.waiting.get(key) === run) this.waiting.delete(key);
      return this.runAll(change, origin);
    });
    if (coalesces) this.waiting.set(key, run);
    this.tails.set(key, run);
    // (runAll never rejects: each reaction's failure is contained there)
    contain(
      this.sink,
      'reaction-queue',
      run.finally(() => {
        if (this.tails.get(key) === run) this.tails.delete(key);
      }),
    );
    return run;
  }

  private async runAll(change: Change, origin: ChangeOrigin): Promise<void> {
    const list = this.declared[change.kind] as Array<Reaction<typeof change.kind>>;
    for (const r of list) {
      if (r.where === 'origin' && origin !== 'local') continue;
      try {
        if (r.when && !r.when(change as never)) continue;
        await r.run(change as never);
      } catch (err) {
        this.sink.metrics?.count(REACTION_FAILURES, { reaction: `${change.kind}:${r.name}` });
        this.sink.log.error(
          { err, reaction: `${change.kind}:${r.name}`, resource: resourceOf(change) },
          'reaction failed; the AS goes on',
        );
      }
    }
  }

  /** Changes of other instances may be lost: no cache may be trusted any more. */
  private resync(): void {
    this.parts.presenceState.clear();
    this.parts.authorizer.clear();
    this.parts.imPolicies.clear();
    this.parts.users.clear();
    this.parts.lists.forgetGrants();
  }
}
