import type { IscCall } from '../isc/dispatcher.js';
import type { HeaderField, IscRequest, ReplyDecision, WarningText } from '../isc/types.js';
import type { RateRequest } from './rate-control.js';

/** What the notifier keeps about one subscription dialog (RFC 6665), as stored. */
export interface Subscription {
  /** Dialog id: Call-ID, watcher's From tag, our To tag. */
  _id: string;
  [key: string]: unknown;
  event: string;
  /** The Event header's id parameter, echoed in every NOTIFY. */
  eventId?: string;
  /** The resource watched, canonical (presentity, list URI, the user for xcap-diff). */
  resource: string;
  /** Other resources whose changes concern this subscription (a list's members). */
  watches?: string[];
  /** The watcher's asserted identity. */
  watcher: string;
  /**
   * The watcher asked for privacy (RFC 3323 Privacy: id, user or header): the presentity
   * sees it as anonymous (watcher info) and its rules treat it as an anonymous request.
   */
  watcherAnonymous?: boolean;
  callId: string;
  fromTag: string;
  toTag: string;
  /** The SUBSCRIBE's From (watcher, with tag) and To (us, without tag), as written. */
  remoteParty: string;
  localParty: string;
  /** The watcher's Contact URI: Request-URI of our NOTIFYs. */
  remoteTarget: string;
  /** Record-Route of the SUBSCRIBE, in order: the Route set of our NOTIFYs. */
  routeSet: string[];
  /** CSeq of our last NOTIFY, and of the watcher's last SUBSCRIBE. */
  localCseq: number;
  remoteCseq: number;
  state: 'active' | 'pending' | 'terminated';
  /** Why it ended (timeout, rejected, giveup, unsubscribed ...), once terminated. */
  endReason?: string;
  /** When it ended: the store drops it ENDED_KEPT_S later. */
  endedAt?: Date;
  expiresAt: Date;
  /** Content types the watcher accepts (from Accept), or the package default. */
  accept: string[];
  createdAt: Date;
  notifyCount: number;
  /** Partial charging records written so far for this subscription (recordSequenceNumber of the last). */
  chargedParts?: number;
  /** P-Charging-Vector of the SUBSCRIBE that opened it (or one made then): one ICID for all its records. */
  chargingVector?: string;
  /** IMPI Kamailio authenticated the opening SUBSCRIBE with (the watcher's), for its charging records. */
  privateUserId?: string;
  /**
   * Taken over without its holder's last state: adopted from an instance that died, or resumed
   * after this instance stopped uncleanly. What the holder had not stored (a partial record
   * being written, NOTIFYs counted since its last store write) may be missing, so the records
   * from here on say so (incomplete-CDR-Indication, docs/charging.md).
   */
  stateLost?: boolean;
  /** Notification rate control in force (RFC 6446), after local policy. */
  rate?: RateRequest;
  /** Package-specific state (watched documents, last version sent ...). */
  data: Record<string, unknown>;
  /**
   * The AS instance holding the dialog (node.id): it alone sends its NOTIFYs and arms its
   * timers, from CSeq state kept in its memory. An in-dialog request served by another
   * instance moves the dialog there; a dead instance's dialogs are adopted by a live one.
   */
  owner?: string;
}

export interface NotifyContent {
  contentType: string;
  body: string;
}

export interface NotifyRendering extends NotifyContent {
  data?: Record<string, unknown>;
  unchanged?: boolean;
  /**
   * Further bodies that complete this one (a large list's state split across NOTIFYs):
   * each leaves in its own NOTIFY right after, in order.
   */
  more?: NotifyContent[];
}

/** What the notifier tells a package about the NOTIFY it renders. */
export interface RenderContext {
  /**
   * The watcher must get the full state: the first NOTIFY, the one after a refresh, after
   * an authorization change, or when the package lost track (a restart).
   */
  fullState: boolean;
  /**
   * The version number of this NOTIFY's document for packages that number them per dialog
   * (RLMI, pidf-diff): NOTIFYs sent before on the dialog, counted so that it only grows,
   * across restarts too (a restart may skip numbers; the state sent then is full). A body
   * in `more` has this + its position.
   */
  version: number;
}

/** Why a subscription ended, as the Subscription-State reason and the CDR cause. */
export type EndReason = 'unsubscribed' | 'timeout' | 'rejected' | 'noresource' | 'deactivated' | 'giveup';

/** A step in a subscription's life, for packages that watch subscriptions (watcher info). */
export interface SubscriptionEvent {
  sub: Subscription;
  what: 'created' | 'refreshed' | 'activated' | 'deactivated' | 'terminated';
  /** For terminated: why (timeout, rejected, giveup, unsubscribed, noresource ...). */
  reason?: string;
  /** When the request that made the step arrived (created, refreshed). */
  at?: Date;
}

/** A subscription whose last NOTIFY has been sent (or whose watcher is gone): what its records need. */
export interface ClosedSubscription {
  /** As it ended, with the NOTIFYs counted until then. */
  sub: Subscription;
  reason: EndReason | undefined;
  at: Date;
}

/** The decision a package takes on a new subscription. */
export type Admission =
  | { reject: ReplyDecision }
  | {
      state: 'active' | 'pending';
      resource: string;
      data?: Record<string, unknown>;
      /** See Subscription.watches. */
      watches?: string[];
      /** Extra header fields of the 2xx (e.g. Require: eventlist). */
      replyHeaders?: HeaderField[];
      /** A Warning on the 2xx: what of the request was not honoured (a filter left out ...). */
      warning?: WarningText;
    };

/** What a package decides on a refresh SUBSCRIBE that carries something new (a body). */
export type RefreshDecision = { reject: ReplyDecision } | { data: Record<string, unknown>; warning?: WarningText };

/**
 * One SIP event package (RFC 6665 section 5) served by the notifier: it decides who may
 * subscribe to what, and renders the state into NOTIFY bodies. The notifier does dialogs,
 * refreshes, expiry, NOTIFY sequencing and charging.
 */
export interface EventPackage {
  /** The Event header token, e.g. 'presence', 'xcap-diff'. */
  readonly name: string;
  /** Which AS service charges it. */
  readonly service: IscRequest['service'];
  readonly defaultExpires: number;
  readonly minExpires: number;
  readonly maxExpires: number;
  /** Content types it can produce; the first is the default. */
  readonly contentTypes: readonly string[];
  /**
   * Whether the package state returned with each NOTIFY must survive a restart (xcap-diff's
   * ETags, watcher info's version). Otherwise it is kept in memory only: after a restart
   * the worst case is one NOTIFY that repeats what the watcher already has.
   */
  readonly persistData?: boolean;
  /**
   * Whether its subscriptions may watch resources besides their own (a resource list's
   * members, kept in `watches`); a change then also looks them up by member.
   */
  readonly listsMembers?: boolean;
  /**
   * Whether the final NOTIFY of a subscription whose resource went away (reason noresource)
   * carries the resource's last full state (RFC 6665 leaves it to the package): the
   * conference package says yes (RFC 4575 clients expect the final conference-info); by
   * default such a NOTIFY has no body.
   */
  readonly finalStateOnNoresource?: boolean;
  admit(call: IscCall, watcher: string): Promise<Admission>;
  /**
   * The body of a NOTIFY for this subscription now (undefined: a NOTIFY without body), and
   * the package state to keep for the next one (e.g. the versions this NOTIFY reported).
   * `unchanged`: the watcher would learn nothing new, so no NOTIFY is sent (a final NOTIFY
   * is sent all the same).
   */
  content(sub: Subscription, ctx: RenderContext): Promise<NotifyRendering | undefined>;
  /** A refresh SUBSCRIBE of a live subscription (new filters in its body ...); undefined: nothing to change. */
  refresh?(sub: Subscription, call: IscCall): Promise<RefreshDecision | undefined>;
  /** Package-specific fields for the subscription's charging records (a list's size ...). */
  chargingExtra?(sub: Subscription): Record<string, unknown>;
}
