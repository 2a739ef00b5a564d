import { randomUUID } from 'node:crypto';
import type { IscCall } from '../isc/dispatcher.js';
import { chargingVectorOf, privateIdentityOf, reply, type IscDecision, type WarningText } from '../isc/types.js';
import type { UacClient } from '../isc/uac.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { parseNameAddr, parseValueParams, headerValueOnly } from '../sip/index.js';
import { remoteTarget, wantsPrivacy } from '../sip/request-checks.js';
import type { Collection, Doc, Store } from '../store/port.js';
import { LiveDialogs } from './live-dialogs.js';
import { mergeWishes, NotifyDialog, type CseqWindow, type Wish } from './notify-dialog.js';
import { notifyTargetProblem } from './notify-target.js';
import { contain } from '../util/contain.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import type {
  ClosedSubscription,
  EndReason,
  EventPackage,
  NotifyContent,
  Subscription,
  SubscriptionEvent,
} from './event-package.js';
import {
  RateControlError,
  negotiateRate,
  nextWindow,
  parseRateRequest,
  rateStateParams,
  recordSend,
  type RateRequest,
  type WindowState,
} from './rate-control.js';

/**
 * NOTIFY CSeqs are counted in memory and the store keeps a ceiling this far ahead, written
 * when the count reaches it: a restart resumes above anything sent, with one store write per
 * this many NOTIFYs instead of one per NOTIFY.
 */
const CSEQ_RESERVE = 64;
/** One document per instance: whether its last run ended with saveState() (a clean stop). */
const NOTIFIER_RUNS = 'notifier_runs';
type NotifierRun = Doc & { running?: boolean; startedAt?: Date; stoppedAt?: Date };
/**
 * How long an ended subscription stays in the store: long enough for watcher info to tell
 * how it ended and for a late in-dialog request to get its 481; then the store drops it
 * (before, ended subscriptions piled up for ever and every index write grew with them).
 */
export const ENDED_KEPT_S = 60;

/**
 * The notifier side of SIP-specific event notification (RFC 6665) for every event package
 * of the AS: SUBSCRIBE handling (initial, refresh, unsubscribe, fetch), subscriptions kept
 * in the store so they survive restarts, NOTIFYs sent through Kamailio one at a time per
 * dialog (CSeq strictly increasing; changes arriving meanwhile coalesce into one NOTIFY with
 * the latest state), expiry with reason=timeout, and the end of a subscription whose
 * NOTIFY gets 481 or no answer.
 */
export class Notifier extends TypedEmitter<{ subscription: [SubscriptionEvent]; closed: [ClosedSubscription] }> {
  private readonly packages = new Map<string, EventPackage>();
  private readonly subs: Collection<Subscription>;
  /** The dialogs held here at run time (counts, timers, the NOTIFY in flight), one object each. */
  private readonly dialogs = new Map<string, NotifyDialog>();
  /** The resources of the dialogs held here: a change nobody here watches costs no store query. */
  private readonly live = new LiveDialogs();
  private stopped = false;

  constructor(
    private readonly deps: {
      store: Store;
      uac: UacClient;
      /** Our Contact for subscription dialogs: routes in-dialog requests back through the core. */
      contact: string;
      /**
       * host:port of the core: a route-set entry naming it is consumed here, as its
       * loose_route would, so the NOTIFY takes one pass through the core instead of two.
       */
      coreHostPort?: string;
      /**
       * Whether a remote target can only be reached through the core's location service (a
       * GRUU, or any URI of our domain's name): such NOTIFYs go through the core, which looks
       * it up, instead of straight to a host that would be resolved by DNS.
       */
      viaLocation?: (target: string) => boolean;
      /** The registered contact URIs of an address of record: NOTIFY targets a watcher may name besides its own host. */
      registeredContacts?: (aor: string) => Promise<string[]>;
      /** Shortest interval between two NOTIFYs of one dialog, whatever the watcher asks (seconds, 0: none). */
      minNotifyInterval?: number;
      /** This instance's id when several share the store: the dialogs it holds carry it. */
      instance?: string;
      log: Logger;
      metrics: Metrics;
    },
  ) {
    super();
    this.subs = deps.store.collection<Subscription>('subscriptions');
  }

  register(pkg: EventPackage): this {
    this.packages.set(pkg.name, pkg);
    return this;
  }

  /** The package serving an Event token. */
  packageOf(event: string): EventPackage | undefined {
    return this.packages.get(event);
  }

  get allowEvents(): string {
    return [...this.packages.keys()].join(', ');
  }

  /** Loads live subscriptions and arms their expiry (after a restart too). */
  async start(): Promise<void> {
    await this.subs.ensureIndex({ fields: { event: 1, resource: 1 } });
    // sparse: most subscriptions watch no list members and then cost this index nothing;
    // multikey: a list subscription watches several members, queried by any one of them
    await this.subs.ensureIndex({ fields: { watches: 1 }, sparse: true, multikey: true });
    // an ended subscription stays a little while, for watcher info to report how it ended
    await this.subs.ensureIndex({ fields: { endedAt: 1 }, expireAfterSeconds: ENDED_KEPT_S });
    if (this.deps.instance) {
      // subscriptions stored before instances held dialogs: this one takes them
      await this.subs.updateMany(
        { state: { $ne: 'terminated' }, owner: { $exists: false } },
        { $set: { owner: this.deps.instance } },
      );
    }
    // a previous run that never saved its state (a crash, a kill): what it held lost its unsaved counts
    const runs = this.deps.store.collection<NotifierRun>(NOTIFIER_RUNS);
    const runId = this.deps.instance ?? 'single';
    const previous = await runs.findOne({ _id: runId });
    if (previous?.running) {
      const marked = await this.subs.updateMany(
        { state: { $ne: 'terminated' }, ...this.mine() },
        { $set: { stateLost: true } },
      );
      if (marked.modified > 0)
        this.deps.log.warn(
          { subscriptions: marked.modified },
          'previous run stopped without saving its subscription state: their charging records say so',
        );
    }
    await runs.updateOne({ _id: runId }, { $set: { running: true, startedAt: new Date() } }, { upsert: true });
    const live = await this.subs.find({ state: { $ne: 'terminated' }, ...this.mine() });
    for (const s of live) {
      this.live.add(s._id, s.event, s.resource, s.watches);
      this.armExpiry(s);
    }
    this.deps.log.info({ subscriptions: live.length }, 'notifier started');
  }

  stop(): void {
    this.stopped = true;
    for (const d of this.dialogs.values()) d.disarm();
  }

  /**
   * A clean stop (after stop()): the NOTIFY counts kept in memory are stored, and the run is
   * marked ended, so the next start resumes every subscription with nothing lost.
   */
  async saveState(): Promise<void> {
    for (const [id, { window: w }] of this.dialogs) {
      if (!w) continue;
      await this.subs.updateOne(
        { _id: id, ...this.mine() },
        { $set: { notifyCount: w.notifies, localCseq: Math.max(w.reserved, w.cseq) } },
      );
    }
    await this.deps.store
      .collection<NotifierRun>(NOTIFIER_RUNS)
      .updateOne(
        { _id: this.deps.instance ?? 'single' },
        { $set: { running: false, stoppedAt: new Date() } },
        { upsert: true },
      );
  }

  async handleSubscribe(call: IscCall): Promise<IscDecision> {
    const { sip } = call;
    const eventHeader = sip.headers.get('Event');
    if (!eventHeader) return reply(489, 'Bad Event', { headers: [['Allow-Events', this.allowEvents]] });
    const event = parseValueParams(eventHeader);
    const pkg = this.packages.get(event.value.toLowerCase());
    if (!pkg) return reply(489, 'Bad Event', { headers: [['Allow-Events', this.allowEvents]] });
    const eventId = event.params.get('id');
    let rate: RateRequest | undefined;
    try {
      rate = negotiateRate(parseRateRequest(event.params), { localMinInterval: this.deps.minNotifyInterval ?? 0 });
    } catch (err) {
      if (err instanceof RateControlError) return reply(err.status, err.reason);
      throw err;
    }

    const expiresHeader = sip.headers.get('Expires');
    let expires = pkg.defaultExpires;
    if (expiresHeader !== undefined) {
      if (!/^\s*\d{1,10}\s*$/.test(expiresHeader)) return reply(400, 'Bad Expires');
      expires = Math.min(Number(expiresHeader), pkg.maxExpires);
    }
    if (expires > 0 && expires < pkg.minExpires) {
      return reply(423, 'Interval Too Brief', { headers: [['Min-Expires', String(pkg.minExpires)]] });
    }

    const toTag = sip.to.tag;
    if (toTag) return this.inDialog(call, pkg, toTag, expires, rate);

    const watcher = call.req.asserted;
    if (!watcher) return reply(403, 'Forbidden', { warning: 'an authenticated identity is required' });
    const accept = this.acceptable(pkg, sip.headers.getAll('Accept'));
    if (!accept) return reply(406, 'Not Acceptable', { headers: [['Accept', pkg.contentTypes.join(', ')]] });

    // the NOTIFYs' target, checked before anything is decided or stored
    const target = remoteTarget(sip);
    if ('problem' in target) return reply(400, 'Bad Contact', { warning: target.problem });
    // ... and bounded: never a third party's address (src/events/notify-target.ts)
    // (a SIP watcher of ours is one the location service knows: any other came from a peer;
    // a tel: identity is only ever one of ours)
    const remoteWatcher =
      this.deps.viaLocation !== undefined && /^sips?:/i.test(watcher) && !this.deps.viaLocation(watcher);
    const facts = {
      watcher,
      srcIp: call.req.srcIp,
      viaLocation: this.deps.viaLocation?.(target.uri) === true,
      registered: [] as string[],
      routedByWatcherCore: remoteWatcher && sip.headers.getAll('Record-Route').length > 0,
    };
    let targetProblem = notifyTargetProblem(target.uri, facts);
    if (targetProblem && !facts.viaLocation && this.deps.registeredContacts) {
      targetProblem = notifyTargetProblem(target.uri, {
        ...facts,
        registered: await this.deps.registeredContacts(watcher),
      });
    }
    if (targetProblem) {
      this.deps.metrics.count('ims_as_subscribe_target_refused_total', { event: pkg.name });
      return reply(403, 'Forbidden', { warning: targetProblem });
    }

    const admission = await pkg.admit(call, watcher);
    if ('reject' in admission) return admission.reject;

    const now = new Date();
    const sub: Subscription = {
      _id: `${sip.callId}|${sip.from.tag ?? ''}|${call.req.toTag}`,
      event: pkg.name,
      ...(eventId ? { eventId } : {}),
      resource: admission.resource,
      ...(admission.watches?.length ? { watches: admission.watches } : {}),
      watcher,
      ...(wantsPrivacy(sip) ? { watcherAnonymous: true } : {}),
      callId: sip.callId,
      fromTag: sip.from.tag ?? '',
      toTag: call.req.toTag,
      remoteParty: sip.headers.get('From')!,
      localParty: sip.headers.get('To')!,
      remoteTarget: target.uri,
      routeSet: sip.headers.getAll('Record-Route'),
      localCseq: CSEQ_RESERVE,
      remoteCseq: sip.cseq.seq,
      state: expires === 0 ? 'terminated' : admission.state,
      expiresAt: new Date(now.getTime() + expires * 1000),
      accept,
      createdAt: now,
      notifyCount: 0,
      ...(expires === 0 ? {} : { chargedParts: 1 }),
      // every partial record of this subscription carries the ICID of the SUBSCRIBE that opened it
      chargingVector: chargingVectorOf(sip.headers.get('P-Charging-Vector'), call.req) ?? `icid-value=${randomUUID()}`,
      ...(privateIdentityOf(call.req) !== undefined ? { privateUserId: privateIdentityOf(call.req) } : {}),
      ...(rate ? { rate } : {}),
      data: admission.data ?? {},
      ...this.mine(),
    };
    // known here before it is stored: a change meanwhile is looked up (and finds it or not, as before)
    if (sub.state !== 'terminated') this.live.add(sub._id, sub.event, sub.resource, sub.watches);
    try {
      await this.subs.insertOne(sub);
    } catch (err) {
      this.live.remove(sub._id);
      throw err;
    }
    this.dialog(sub._id).window = { cseq: 0, reserved: CSEQ_RESERVE, notifies: 0 };
    this.deps.metrics.count('ims_as_subscriptions_total', {
      event: pkg.name,
      kind: expires === 0 ? 'fetch' : 'initial',
    });
    this.emit('subscription', { sub, what: 'created', at: call.receivedAt });
    if (expires === 0) {
      this.queueNotify(sub._id, { final: 'unsubscribed', full: true }, sub); // fetch: one NOTIFY with the state, then done
    } else {
      this.armExpiry(sub);
      this.queueNotify(sub._id, { full: true }, sub);
    }
    return reply(200, 'OK', {
      headers: [['Expires', String(expires)], ['Contact', `<${this.deps.contact}>`], ...(admission.replyHeaders ?? [])],
      ...(admission.warning !== undefined ? { warning: admission.warning } : {}),
    });
  }

  /**
   * Notifies every live subscription of `event` to `resource` (the state changed), and
   * those that watch it among others (lists); `direct: false` only the latter.
   */
  async resourceChanged(
    event: string,
    resource: string,
    scope: { direct: boolean } = { direct: true },
  ): Promise<number> {
    // two indexed queries rather than one $or, which the embedded engine would scan
    // only the dialogs this instance holds: the others are told by the instances holding them
    const direct =
      scope.direct && this.live.about(event, resource)
        ? await this.subs.find({ event, resource, state: { $ne: 'terminated' }, ...this.mine() })
        : [];
    const via =
      this.packages.get(event)?.listsMembers && this.live.watching(event, resource)
        ? await this.subs.find({ event, watches: resource, state: { $ne: 'terminated' }, ...this.mine() })
        : [];
    // the documents just read go with the wish: no second read per NOTIFY (a 10,000-watcher
    // fan-out spent most of its store time reading each subscription again)
    for (const s of direct) this.queueNotify(s._id, {}, s);
    for (const s of via) this.queueNotify(s._id, {}, s);
    return direct.length + via.length;
  }

  /**
   * Replaces a live subscription's package data (and the other resources it watches),
   * then notifies it with the full state: a list whose membership changed.
   */
  async update(id: string, data: Record<string, unknown>, watches?: string[]): Promise<void> {
    const set: Record<string, unknown> = { data };
    if (watches) set.watches = watches;
    // the new members are known here before the write: no change of theirs is missed
    if (watches) this.live.extend(id, watches);
    const s = await this.subs.findOneAndUpdate(
      { _id: id, state: { $ne: 'terminated' } },
      { $set: set },
      { returnDocument: 'after' },
    );
    if (!s) return;
    this.cacheData(id, data);
    this.queueNotify(id, { full: true });
  }

  /** Ends one subscription with a final NOTIFY (rejected, deactivated ...). */
  async end(id: string, reason: EndReason): Promise<void> {
    const s = await this.subs.findOneAndUpdate(
      { _id: id, state: { $ne: 'terminated' } },
      { $set: { state: 'terminated', endReason: reason, endedAt: new Date() } },
      { returnDocument: 'after' },
    );
    if (!s) return;
    this.disarm(id);
    this.queueNotify(id, { final: reason });
    this.emit('subscription', { sub: s, what: 'terminated', reason });
  }

  /**
   * Changes a live subscription's authorization state and package data (a rule changed),
   * and notifies it: pending -> active gives the watcher the state, active -> pending
   * withholds it from now on.
   */
  async authorize(id: string, state: 'active' | 'pending', data: Record<string, unknown>): Promise<void> {
    const before = await this.subs.findOneAndUpdate(
      { _id: id, state: { $ne: 'terminated' } },
      { $set: { state, data } },
      { returnDocument: 'before' },
    );
    if (!before) return;
    this.cacheData(id, data);
    // a change of authorization is told at once, whatever the rate (RFC 6446 section 5.2)
    this.queueNotify(id, { full: before.state !== state, force: before.state !== state });
    if (before.state !== state) {
      const sub = { ...before, state, data };
      this.emit('subscription', { sub, what: state === 'active' ? 'activated' : 'deactivated' });
    }
  }

  /** Live (not terminated) subscriptions of every instance, counted per registered event package. */
  async liveCounts(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const event of this.packages.keys())
      out[event] = await this.subs.count({ event, state: { $ne: 'terminated' } });
    return out;
  }

  /** Subscriptions of every instance. */
  async find(filter: Record<string, unknown>, limit?: number): Promise<Subscription[]> {
    return this.subs.find(filter, limit !== undefined ? { limit } : undefined);
  }

  /** Subscriptions whose dialogs this instance holds (those it may end, authorize or update). */
  async owned(filter: Record<string, unknown>): Promise<Subscription[]> {
    return this.subs.find({ ...filter, ...this.mine() });
  }

  /**
   * Takes over the live dialogs of an instance that died: arms their expiry here and sends
   * each a NOTIFY with the full state now (changes made while no instance held it reached
   * nobody), resuming above the CSeq ceiling the dead instance stored. Returns how many.
   */
  async adopt(deadInstance: string): Promise<number> {
    const me = this.deps.instance;
    if (!me || deadInstance === me) return 0;
    let adopted = 0;
    for (const s of await this.subs.find({ owner: deadInstance, state: { $ne: 'terminated' } })) {
      const knownBefore = this.live.has(s._id);
      this.live.add(s._id, s.event, s.resource, s.watches);
      const mine = await this.subs.findOneAndUpdate(
        { _id: s._id, owner: deadInstance },
        { $set: { owner: me, stateLost: true } },
        { returnDocument: 'after' },
      );
      if (!mine) {
        // another instance adopted it, or it moved with an in-dialog request
        if (!knownBefore) this.live.remove(s._id);
        continue;
      }
      this.dialogs.get(s._id)?.forget(); // whatever this instance knew of it once is older than the store
      this.armExpiry(mine);
      this.queueNotify(s._id, { full: true, force: true }, mine);
      adopted++;
    }
    if (adopted) this.deps.log.info({ from: deadInstance, adopted }, 'subscription dialogs adopted');
    return adopted;
  }

  /** The filter of this instance's dialogs (none when it is alone and unnamed). */
  private mine(): { owner?: string } {
    return this.deps.instance ? { owner: this.deps.instance } : {};
  }

  /** Whether this instance holds a dialog as stored. */
  private holds(s: Subscription): boolean {
    return !this.deps.instance || s.owner === undefined || s.owner === this.deps.instance;
  }

  /** The run-time object of a dialog held here, made on first use. */
  private dialog(id: string): NotifyDialog {
    let d = this.dialogs.get(id);
    if (!d) {
      d = new NotifyDialog();
      this.dialogs.set(id, d);
    }
    return d;
  }

  /** Drops a dialog's object once it holds nothing (no counts, timer or NOTIFY in flight). */
  private dropIfIdle(id: string, d: NotifyDialog): void {
    if (d.idle && this.dialogs.get(id) === d) this.dialogs.delete(id);
  }

  /** The package data of the next NOTIFY, when this instance counts the dialog (else the store has it). */
  private cacheData(id: string, data: Record<string, unknown>): void {
    const d = this.dialogs.get(id);
    if (d?.window) d.data = data;
  }

  /** A dialog ended here or held elsewhere now: nothing of it stays armed or cached here. */
  private letGo(id: string): void {
    this.live.remove(id);
    const d = this.dialogs.get(id);
    if (!d) return;
    d.close();
    this.dropIfIdle(id, d);
  }

  private async inDialog(
    call: IscCall,
    pkg: EventPackage,
    toTag: string,
    expires: number,
    rate: RateRequest | undefined,
  ): Promise<IscDecision> {
    const { sip } = call;
    const id = `${sip.callId}|${sip.from.tag ?? ''}|${toTag}`;
    const live = { _id: id, state: { $ne: 'terminated' }, event: pkg.name };
    if (expires === 0) {
      // one store call when all is well; the reason for a refusal is looked up after
      const ended = {
        state: 'terminated' as const,
        endReason: 'unsubscribed',
        endedAt: new Date(),
        remoteCseq: sip.cseq.seq,
        ...this.mine(),
      };
      const before = await this.subs.findOneAndUpdate(
        { ...live, remoteCseq: { $lt: sip.cseq.seq } },
        { $set: ended },
        { returnDocument: 'before' },
      );
      if (!before)
        return (await this.subs.findOne(live))
          ? reply(500, 'CSeq Out Of Order')
          : reply(481, 'Subscription Does Not Exist');
      // the instance an unsubscribe reaches sends the final NOTIFY, from the stored CSeq ceiling if it was held elsewhere
      if (!this.holds(before)) this.dialogs.get(id)?.forget();
      const s: Subscription = { ...before, ...ended };
      this.disarm(id);
      this.queueNotify(id, { final: 'unsubscribed' }, s);
      this.deps.metrics.count('ims_as_subscriptions_total', { event: pkg.name, kind: 'unsubscribe' });
      this.emit('subscription', { sub: s, what: 'terminated', reason: 'unsubscribed' });
      return reply(200, 'OK', {
        headers: [
          ['Expires', '0'],
          ['Contact', `<${this.deps.contact}>`],
        ],
      });
    }
    const current = await this.subs.findOne(live);
    if (!current) return reply(481, 'Subscription Does Not Exist');
    if (sip.cseq.seq <= current.remoteCseq) return reply(500, 'CSeq Out Of Order');
    const expiresAt = new Date(Date.now() + expires * 1000);
    // the instance a refresh reaches holds the dialog from now on
    // one more partial charging record in this subscription's chain
    const set: Record<string, unknown> = {
      expiresAt,
      remoteCseq: sip.cseq.seq,
      chargedParts: (current.chargedParts ?? 1) + 1,
      ...this.mine(),
    };
    if (!this.holds(current)) this.dialogs.get(id)?.forget();
    // held here from this write on: known here before it
    this.live.add(id, current.event, current.resource, current.watches);
    // a refresh may change the rate the watcher wants (RFC 6446) and, through the package, its filters
    if (rate) set.rate = rate;
    let warning: WarningText | undefined;
    if (pkg.refresh) {
      const cached = this.dialogs.get(id)?.data;
      const decision = await pkg.refresh(cached ? { ...current, data: cached } : current, call);
      if (decision && 'reject' in decision) return decision.reject;
      if (decision) {
        set.data = decision.data;
        this.cacheData(id, decision.data);
        if (decision.warning !== undefined) warning = decision.warning;
      }
    }
    const s = await this.subs.findOneAndUpdate(
      { _id: id, state: { $ne: 'terminated' } },
      rate ? { $set: set } : { $set: set, $unset: { rate: true } },
      { returnDocument: 'after' },
    );
    if (!s) return reply(481, 'Subscription Does Not Exist');
    this.armExpiry(s);
    // a refresh gets the full state at once (RFC 6665 4.2.1.2), rate control or not
    this.queueNotify(id, { full: true, force: true });
    this.deps.metrics.count('ims_as_subscriptions_total', { event: pkg.name, kind: 'refresh' });
    this.emit('subscription', { sub: s, what: 'refreshed', at: call.receivedAt });
    return reply(200, 'OK', {
      headers: [
        ['Expires', String(expires)],
        ['Contact', `<${this.deps.contact}>`],
      ],
      ...(warning !== undefined ? { warning } : {}),
    });
  }

  /** The content types to use for a watcher's Accept, or undefined if none fits. */
  private acceptable(pkg: EventPackage, accept: string[]): string[] | undefined {
    if (accept.length === 0) return [pkg.contentTypes[0]!];
    const wanted = accept.map((a) => headerValueOnly(a));
    const fit = pkg.contentTypes.filter(
      (t) => wanted.includes(t) || wanted.includes('*/*') || wanted.includes(`${t.split('/')[0]}/*`),
    );
    return fit.length ? fit : undefined;
  }

  private armExpiry(s: Subscription): void {
    this.dialog(s._id).armExpiry(s.expiresAt, () =>
      contain(this.deps, 'subscription-expiry', this.expire(s._id), { id: s._id }),
    );
  }

  /** The dialog is ending: no change reaches it any more and none of its timers fires. */
  private disarm(id: string): void {
    this.live.remove(id);
    this.dialogs.get(id)?.disarm();
  }

  /** Claims the expiry (one instance wins when several share the store) and says so. */
  private async expire(id: string): Promise<void> {
    const s = await this.subs.findOneAndUpdate(
      { _id: id, state: { $ne: 'terminated' }, expiresAt: { $lte: new Date() }, ...this.mine() },
      { $set: { state: 'terminated', endReason: 'timeout', endedAt: new Date() } },
      { returnDocument: 'after' },
    );
    if (!s) {
      const cur = await this.subs.findOne({ _id: id });
      if (cur && cur.state !== 'terminated' && this.holds(cur))
        this.armExpiry(cur); // refreshed meanwhile
      else this.letGo(id); // ended, or held by another instance now
      return;
    }
    this.deps.metrics.count('ims_as_subscriptions_expired_total', { event: s.event });
    this.queueNotify(id, { final: 'timeout' });
    this.emit('subscription', { sub: s, what: 'terminated', reason: 'timeout' });
  }

  /**
   * Asks for a NOTIFY; one is in flight per dialog at most, later wishes coalesce. A
   * dialog under a minimum interval (RFC 6446, or local policy) keeps its wishes until the
   * interval ends and then sends one NOTIFY with the latest state; final NOTIFYs and the
   * answer to a refresh are never held.
   */
  private queueNotify(id: string, wish: Wish = {}, fresh?: Subscription): void {
    if (this.stopped) return;
    const d = this.dialog(id);
    const f = d.flight;
    if (f) {
      f.again = true;
      if (wish.final) f.final = wish.final;
      if (wish.full) f.full = true;
      if (wish.force) f.force = true;
      return;
    }
    if (!wish.final && !wish.force && d.held) {
      // held back by a minimum interval: the timer sends the latest state when it ends
      d.heldWish = mergeWishes(d.heldWish, wish);
      return;
    }
    const heldBefore = d.releaseHeld();
    if (heldBefore) wish = mergeWishes(heldBefore, wish);
    d.flight = {
      again: false,
      final: wish.final,
      full: wish.full ?? false,
      force: wish.force ?? false,
      ...(fresh ? { fresh } : {}),
    };
    contain(this.deps, 'notify', this.pump(id, d), { id });
  }

  private async pump(id: string, d: NotifyDialog): Promise<void> {
    try {
      for (;;) {
        const f = d.flight!;
        const wish: Wish = { final: f.final, full: f.full, force: f.force };
        f.again = false;
        f.final = undefined;
        f.full = false;
        f.force = false;
        const { fresh } = f;
        f.fresh = undefined;
        const done = await this.sendNotify(id, d, wish, fresh);
        if (done || !f.again) break;
      }
    } finally {
      d.flight = undefined;
      this.dropIfIdle(id, d);
    }
  }

  /**
   * Sends one NOTIFY with the current state (or several, when the package splits a large
   * state); true when the subscription is over.
   */
  private async sendNotify(id: string, d: NotifyDialog, wish: Wish, fresh?: Subscription): Promise<boolean> {
    const { final } = wish;
    const stored = fresh ?? (await this.subs.findOne({ _id: id }));
    if (!stored) return true;
    if (!this.holds(stored)) {
      // an in-dialog request moved it to another instance, which sends its NOTIFYs now
      this.letGo(id);
      return true;
    }
    const pkg = this.packages.get(stored.event);
    if (!pkg) return true;
    let w = d.window;
    let resumed = false;
    if (!w) {
      // first NOTIFY since a restart (or of a dialog another instance created): resume above the ceiling
      w = d.window = { cseq: stored.localCseq, reserved: stored.localCseq, notifies: stored.notifyCount };
      resumed = true;
    }
    const current: Subscription = d.data
      ? { ...stored, data: d.data, notifyCount: w.notifies }
      : { ...stored, notifyCount: w.notifies };
    const terminated = final !== undefined || current.state === 'terminated';
    if (terminated && final === undefined) return true; // ended elsewhere, its final NOTIFY went there
    if (!terminated && !wish.force && current.rate) {
      const { notBefore } = nextWindow(current.rate, rateWindow(current, d, w, Date.now()));
      if (notBefore - Date.now() > 5) {
        d.holdUntil(notBefore, wish, (held) => this.queueNotify(id, held));
        return false;
      }
    }
    // a pending subscription learns nothing of the resource's state (RFC 6665 4.2.2)
    // the final NOTIFY of a resource that went away: a body only where the package asks for one, with the full last state
    const lastState = final === 'noresource' && pkg.finalStateOnNoresource === true;
    const withheld =
      (current.state === 'pending' && !terminated) || final === 'rejected' || (final === 'noresource' && !lastState);
    const fullState = wish.full === true || resumed || current.notifyCount === 0 || lastState;
    const content = withheld ? undefined : await pkg.content(current, { fullState, version: w.cseq });
    if (content?.unchanged && !terminated && !wish.force && current.notifyCount > 0) return false;
    if (content?.data) {
      d.data = content.data;
      if (pkg.persistData) await this.subs.updateOne({ _id: id }, { $set: { data: content.data } });
    }
    // (an unchanged rendering may come without a body: a final NOTIFY then carries none)
    const first = content && content.body !== '' ? { contentType: content.contentType, body: content.body } : undefined;
    const bodies: Array<NotifyContent | undefined> = [first, ...(content?.more ?? [])];
    for (const [i, body] of bodies.entries()) {
      // a final NOTIFY split in parts: only the last one says terminated
      const last = i === bodies.length - 1;
      const outcome = await this.transmit(id, w, current, body, terminated && last ? final : undefined);
      if (terminated && last) {
        this.letGo(id);
        // (no store write: the ended subscription leaves the store soon; the record has the count)
        this.emit('closed', { sub: { ...current, notifyCount: w.notifies }, reason: final, at: new Date() });
        return true;
      }
      if (outcome.code === 481 || outcome.code === 408 || outcome.timedOut) {
        // the watcher is gone: end it without another NOTIFY (RFC 6665 4.2.2)
        await this.subs.updateOne(
          { _id: id },
          { $set: { state: 'terminated', endReason: 'giveup', endedAt: new Date(), notifyCount: w.notifies } },
        );
        this.letGo(id);
        this.deps.log.info({ id, code: outcome.code }, 'subscription ended: NOTIFY not accepted');
        const s = { ...current, notifyCount: w.notifies };
        this.emit('subscription', {
          sub: { ...s, state: 'terminated', endReason: 'giveup' },
          what: 'terminated',
          reason: 'giveup',
        });
        this.emit('closed', { sub: s, reason: 'giveup', at: new Date() });
        return true;
      }
    }
    d.lastSentAt = Date.now();
    if (current.rate) {
      d.recent = recordSend(d.recent ?? [], d.lastSentAt, current.rate);
      // min-rate / adaptive-min-rate: a NOTIFY with the state even when nothing changes
      const { keepAliveAt } = nextWindow(current.rate, rateWindow(current, d, w, d.lastSentAt));
      if (keepAliveAt !== undefined) d.keepAlive(keepAliveAt, () => this.queueNotify(id, { force: true }));
    }
    return false;
  }

  /** One NOTIFY of the dialog through the core: takes the next CSeq and says the subscription's state. */
  private async transmit(
    id: string,
    h: CseqWindow,
    s: Subscription,
    content: NotifyContent | undefined,
    final: EndReason | undefined,
  ): Promise<{ code: number; timedOut?: boolean }> {
    // the CSeq is taken only now, for a NOTIFY that really leaves
    h.cseq++;
    h.notifies++;
    if (h.cseq >= h.reserved) {
      h.reserved = h.cseq + CSEQ_RESERVE;
      await this.subs.updateOne({ _id: id }, { $set: { localCseq: h.reserved, notifyCount: h.notifies } });
    }
    const left = Math.max(0, Math.round((s.expiresAt.getTime() - Date.now()) / 1000));
    const subState =
      final !== undefined
        ? `terminated${final !== 'unsubscribed' ? `;reason=${final}` : ''}`
        : // (the leading parts of a split final NOTIFY: the subscription is still up until the last)
          `${s.state === 'terminated' ? 'active' : s.state};expires=${left}${rateStateParams(s.rate)}`;
    const route = this.outboundRoute(s.routeSet);
    const headers: Array<[string, string]> = [
      ['From', `${s.localParty};tag=${s.toTag}`],
      ['To', s.remoteParty],
      ['Call-ID', s.callId],
      ['CSeq', `${h.cseq} NOTIFY`],
      ...route.map((r): [string, string] => ['Route', r]),
      ['Contact', `<${this.deps.contact}>`],
      ['Event', s.eventId ? `${s.event};id=${s.eventId}` : s.event],
      ['Subscription-State', subState],
      ['Max-Forwards', '70'],
    ];
    if (content) headers.push(['Content-Type', content.contentType]);
    const nexthop = route[0] ? parseNameAddr(route[0]).uri : undefined;
    const viaCore = !nexthop && this.deps.viaLocation?.(s.remoteTarget) === true;
    const outcome = await this.deps.uac.send({
      method: 'NOTIFY',
      ruri: s.remoteTarget,
      headers,
      body: content?.body,
      ...(nexthop ? { nexthop } : {}),
      ...(viaCore ? { viaCore } : {}),
    });
    this.deps.metrics.count('ims_as_notify_total', { event: s.event, code: String(outcome.code) });
    return outcome;
  }

  /** The route set without its leading entries that are the core itself (already there). */
  private outboundRoute(routeSet: string[]): string[] {
    const core = this.deps.coreHostPort;
    if (!core) return routeSet;
    let i = 0;
    while (i < routeSet.length && hostPort(parseNameAddr(routeSet[i]!).uri) === core) i++;
    return i ? routeSet.slice(i) : routeSet;
  }
}

/** What rate control (RFC 6446) needs to know of a dialog's recent NOTIFYs. */
function rateWindow(s: Subscription, d: NotifyDialog, w: CseqWindow, now: number): WindowState {
  return {
    now,
    expiresAt: s.expiresAt.getTime(),
    notifyCount: w.notifies,
    createdAt: s.createdAt.getTime(),
    ...(d.lastSentAt !== undefined ? { lastSentAt: d.lastSentAt } : {}),
    ...(d.recent ? { recentSends: d.recent } : {}),
  };
}

/** "host:port" of a SIP URI (5060 when absent), lower-case, for comparing addresses. */
function hostPort(uri: string): string {
  const m = /^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?/i.exec(uri);
  return m ? `${m[1]!.toLowerCase()}:${m[2] ?? '5060'}` : '';
}
