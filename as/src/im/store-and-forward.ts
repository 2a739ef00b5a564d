import { randomUUID } from 'node:crypto';
import type { Charging } from '../charging/charging.js';
import type { AsConfig } from '../config/config.js';
import type { CauseForRecordClosing } from '../charging/record.js';
import type { UacClient, UacOutcome } from '../isc/uac.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { RegistrationChange, Registrations } from '../registrations/registrations.js';
import { SingletonJobs, type JobScheduler } from '../cluster/singleton-jobs.js';
import type { HoldCondition, ImPolicy } from '../xdm/usages/im-policy.js';
import type { PresenceDoc } from '../presence/pidf/index.js';
import { presenceHold } from './presence-hold.js';
import type { ImMessage, MessageStore, StoredMessage } from './message-store.js';
import { contain } from '../util/contain.js';
import { headerValueOnly } from '../sip/index.js';

/** The im settings deferred messaging works with (see as/src/config/config.ts). */
export type StoreAndForwardLimits = Pick<
  AsConfig['im'],
  | 'deferredExpirySeconds'
  | 'notificationExpirySeconds'
  | 'deferredQuota'
  | 'retryBaseSeconds'
  | 'retryMaxSeconds'
  | 'maxDeliveryAttempts'
  | 'sweepSeconds'
>;

/** What became of a message the server delivers itself. */
export type HandOver =
  | { result: 'delivered'; code: number }
  | { result: 'deferred'; id: string }
  /** The recipient's device refused it for good (e.g. 415): nothing left to do. */
  | { result: 'refused'; code: number }
  /** Offline and the recipient's storage is full, or deferral is off. */
  | { result: 'full' }
  | { result: 'unavailable' };

/**
 * Builds the delivery notification (RFC 5438) the server sends on the recipient's behalf, and
 * says to whom (a local user); undefined when none can be sent.
 */
export type NotificationFactory = (
  original: StoredMessage,
  status: 'delivered' | 'failed',
) => { to: string; message: ImMessage } | undefined;

/** Replies after which a later attempt may succeed; any other failure is final. */
const RETRYABLE = new Set([408, 480, 486, 500, 503, 504, 600]);
/** How long an instance may hold a mailbox before another may take over. */
const LEASE_MS = 60_000;
const BATCH = 50;

/**
 * Deferred messaging: messages the server delivers itself (stored ones, exploded copies,
 * delivery notifications) go to the recipient's registered devices through Kamailio; those
 * that cannot be delivered yet wait in the {@link MessageStore}. A mailbox drains in order,
 * one message at a time, when its owner registers and when a retry is due; a failed delivery
 * stays stored and is retried with a doubling backoff; expired messages are removed, charged
 * and, when asked, notified as failed.
 */
export class StoreAndForward {
  /** again: drain once more when done; force: deliver even if the presence holds the mailbox. */
  private readonly draining = new Map<string, { again: boolean; force: boolean }>();
  /** The sweep's scheduler when no shared one was given (stopped with this). */
  private ownJobs?: SingletonJobs;
  private sweeping?: Promise<void>;
  private stopped = false;
  notificationFactory?: NotificationFactory;

  constructor(
    private readonly deps: {
      store: MessageStore;
      uac: UacClient;
      registrations: Registrations;
      charging: Charging;
      policyOf: (user: string) => Promise<ImPolicy>;
      domain: string;
      limits: StoreAndForwardLimits;
      metrics: Metrics;
      log: Logger;
      /** Where the sweep runs: the instance's singleton jobs (one instance sweeps). Default: this process alone. */
      jobs?: JobScheduler;
      /** What the user's own clients say in their presence (presence-aware delivery); absent: messages are never held. */
      presenceOf?: (user: string) => Promise<PresenceDoc | undefined>;
    },
  ) {}

  async start(): Promise<void> {
    await this.deps.store.start();
    const jobs = this.deps.jobs ?? (this.ownJobs = SingletonJobs.alone(this.deps.log, this.deps.metrics));
    // taken: at start, or from an instance that died (messages stored meanwhile for users registered now)
    jobs.add({
      name: 'im-deferred-sweep',
      everyMs: this.deps.limits.sweepSeconds * 1000,
      run: () => this.sweep(),
      runWhenTaken: true,
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.ownJobs?.stop();
    // a failed sweep was reported where it ran
    await this.sweeping?.catch(() => undefined);
  }

  /**
   * A contact came or was refreshed: the user's stored messages can go now. A new device gets
   * even the messages the user's presence holds (it asked for them by coming online); a
   * refresh does not lift the hold.
   */
  registrationChanged(ch: RegistrationChange): void {
    if (ch.remaining > 0 && (ch.kind === 'registered' || ch.kind === 'refreshed'))
      this.drainSoon(ch.aor, { force: ch.kind === 'registered' });
  }

  /**
   * A publication of the user changed: messages their presence held may go now (the drain
   * looks at the presence again). Users without presence-aware delivery cost one cached
   * policy read.
   */
  async presenceChanged(user: string): Promise<void> {
    const policy = await this.deps.policyOf(user);
    if (policy.presenceAwareDelivery.holdWhen.length === 0) return;
    if (await this.deps.registrations.isRegistered(user)) this.drainSoon(user);
  }

  /** The user's IM policy changed: a hold may have been switched off. */
  async policyChanged(user: string): Promise<void> {
    if ((await this.deps.store.count(user)) === 0) return;
    if (await this.deps.registrations.isRegistered(user)) this.drainSoon(user);
  }

  /**
   * What in the recipient's presence holds their messages now (presence-aware delivery,
   * as/src/im/presence-hold.ts); undefined when nothing does. A presence that cannot be read
   * holds nothing: messages are not kept from a registered user because of a store error.
   */
  async heldBy(recipient: string, policy: ImPolicy): Promise<HoldCondition | undefined> {
    const holdWhen = policy.presenceAwareDelivery.holdWhen;
    if (holdWhen.length === 0 || !this.deps.presenceOf) return undefined;
    try {
      return presenceHold(await this.deps.presenceOf(recipient), holdWhen);
    } catch (err) {
      this.deps.log.warn({ err, recipient }, 'presence unreadable: messages not held');
      return undefined;
    }
  }

  /** Waiting drains (for tests and shutdown). */
  get activeDrains(): number {
    return this.draining.size;
  }

  /** Stores a message for an offline recipient. */
  async defer(recipient: string, msg: ImMessage): Promise<{ result: 'deferred'; id: string } | { result: 'full' }> {
    const seconds =
      msg.kind === 'notification' ? this.deps.limits.notificationExpirySeconds : this.deps.limits.deferredExpirySeconds;
    const saved = await this.deps.store.save(recipient, msg, {
      expiresAt: new Date(msg.sentAt.getTime() + seconds * 1000),
      quota: this.deps.limits.deferredQuota,
    });
    if (saved === 'full') {
      this.deps.metrics.count('ims_as_im_deferred_total', { result: 'full' });
      return { result: 'full' };
    }
    this.deps.metrics.count('ims_as_im_deferred_total', { result: 'stored' });
    // the recipient may have registered between the check and the store (if this look
    // fails, the message is stored all the same: the sweep finds it)
    contain(
      this.deps,
      'deferred-drain-check',
      async () => {
        if (await this.deps.registrations.isRegistered(recipient)) this.drainSoon(recipient);
      },
      { recipient },
    );
    return { result: 'deferred', id: saved._id };
  }

  /** Keeps a copy of a message delivered directly, for the user's other devices (network storage). */
  async keepCopy(recipient: string, msg: ImMessage): Promise<void> {
    const saved = await this.deps.store.save(recipient, msg, {
      expiresAt: new Date(msg.sentAt.getTime() + this.deps.limits.deferredExpirySeconds * 1000),
      quota: this.deps.limits.deferredQuota,
      state: 'kept',
    });
    if (saved === 'full') this.deps.log.info({ recipient }, 'network storage full: delivered message not kept');
  }

  /**
   * Hands a message the server originates (exploded copy, notification) to a local user: now
   * when registered, else (or when the device is unreachable) into storage.
   */
  async handOver(recipient: string, msg: ImMessage, policy: ImPolicy): Promise<HandOver> {
    if ((await this.deps.registrations.isRegistered(recipient)) && !(await this.heldBy(recipient, policy))) {
      const out = await this.send(recipient, msg, `${randomUUID()}@${this.deps.domain}`, 1);
      if (out.code < 300) {
        if (policy.deferredDelivery.networkStorage && msg.kind === 'message') await this.keepCopy(recipient, msg);
        return { result: 'delivered', code: out.code };
      }
      if (!RETRYABLE.has(out.code)) return { result: 'refused', code: out.code };
    }
    // a typing indication is stale by the time anyone could deliver it later
    if (msg.kind === 'composing') return { result: 'unavailable' };
    if (!policy.deferredDelivery.enabled && msg.kind === 'message') return { result: 'unavailable' };
    return this.defer(recipient, msg);
  }

  /**
   * Starts draining `recipient`'s mailbox unless this instance is already at it. `force`:
   * deliver even what the user's presence holds.
   */
  drainSoon(recipient: string, opts: { force?: boolean } = {}): void {
    const force = opts.force === true;
    const running = this.draining.get(recipient);
    if (running) {
      running.again = true;
      running.force ||= force;
      return;
    }
    const state = { again: false, force };
    this.draining.set(recipient, state);
    contain(
      this.deps,
      'deferred-delivery',
      async () => {
        try {
          let blocked = false;
          do {
            state.again = false;
            const forced = state.force;
            state.force = false;
            blocked = await this.drain(recipient, forced);
            // a head that just failed waits for its retry time, however many wishes came meanwhile
          } while (state.again && !blocked && !this.stopped);
        } finally {
          this.draining.delete(recipient);
        }
      },
      { recipient },
    );
  }

  /**
   * Delivers the mailbox in order; stops at the first message that cannot be delivered now.
   * True when it stopped there (the mailbox waits for that message's retry).
   */
  private async drain(recipient: string, force: boolean): Promise<boolean> {
    const { store } = this.deps;
    if (!force) {
      const held = await this.heldBy(recipient, await this.deps.policyOf(recipient));
      if (held) {
        // the next publication change drains it; the sweep need not look before much later
        await store.postpone(recipient, new Date(Date.now() + this.deps.limits.retryMaxSeconds * 1000));
        this.deps.log.debug({ recipient, held }, "mailbox held by the recipient's presence");
        return false;
      }
    }
    if (!(await store.lease(recipient, new Date(Date.now() + LEASE_MS)))) {
      this.deps.log.debug({ recipient }, 'mailbox drained by another instance');
      return false;
    }
    let delivered = 0;
    try {
      // read once per drain: whether delivered messages stay as copies (network storage)
      const keepCopies = (await this.deps.policyOf(recipient)).deferredDelivery.networkStorage;
      for (;;) {
        const batch = await store.pending(recipient, BATCH);
        if (batch.length === 0) return false;
        for (const msg of batch) {
          if (this.stopped) return false;
          if (msg.expiresAt.getTime() <= Date.now()) {
            await this.expire(msg);
            continue;
          }
          const ok = await this.deliverStored(msg, keepCopies);
          if (!ok) return true;
          delivered++;
          if (delivered % BATCH === 0) await store.lease(recipient, new Date(Date.now() + LEASE_MS));
        }
      }
    } finally {
      if (delivered) this.deps.log.info({ recipient, delivered }, 'deferred messages delivered');
      await store.release(recipient);
    }
  }

  /** One stored message to its recipient; false when the mailbox must wait. */
  private async deliverStored(msg: StoredMessage, keepCopies: boolean): Promise<boolean> {
    const { store, metrics } = this.deps;
    // same Call-ID on every attempt, so that a device can recognise a duplicate
    const out = await this.send(msg.recipient, msg, `${msg._id}@${this.deps.domain}`, msg.attempts + 1);
    if (out.code < 300) {
      const mine =
        keepCopies && msg.kind === 'message' ? await store.keep(msg._id) : await store.remove(msg._id, msg.recipient);
      if (!mine) return true; // removed meanwhile (the user deleted it): nothing to charge twice
      metrics.count('ims_as_im_deferred_delivered_total', { kind: msg.kind });
      await this.charge(msg, out, 'delivered');
      await this.notify(msg, 'delivered');
      return true;
    }
    const attempts = msg.attempts + 1;
    if (RETRYABLE.has(out.code) && attempts >= this.deps.limits.maxDeliveryAttempts) {
      // a message the device keeps failing must not hold its mailbox until it expires
      if (await store.remove(msg._id, msg.recipient)) {
        metrics.count('ims_as_im_deferred_given_up_total', { code: String(out.code) });
        this.deps.log.warn(
          { recipient: msg.recipient, id: msg._id, code: out.code, attempts },
          'deferred delivery given up; the messages behind it go on',
        );
        await this.charge(
          msg,
          out,
          'failed',
          { reason: `gave up after ${attempts} attempts (last answer ${out.code})` },
          'unSuccessfulServiceDelivery',
        );
        await this.notify(msg, 'failed');
      }
      return true;
    }
    if (RETRYABLE.has(out.code)) {
      const wait = Math.min(this.deps.limits.retryBaseSeconds * 2 ** msg.attempts, this.deps.limits.retryMaxSeconds);
      const next = new Date(Date.now() + wait * 1000);
      await store.attemptFailed(msg._id, next);
      // the messages behind it wait as long: were one of them due, the sweep would retry the head early
      await store.postpone(msg.recipient, next);
      metrics.count('ims_as_im_deferred_retries_total', { code: String(out.code) });
      this.deps.log.info(
        { recipient: msg.recipient, id: msg._id, code: out.code, retryInSeconds: wait },
        'deferred delivery failed; will retry',
      );
      return false;
    }
    if (await store.remove(msg._id, msg.recipient)) {
      metrics.count('ims_as_im_deferred_refused_total', { code: String(out.code) });
      await this.charge(msg, out, 'rejected', { reason: `recipient answered ${out.code}` });
      await this.notify(msg, 'failed');
    }
    return true;
  }

  private async expire(msg: StoredMessage): Promise<void> {
    if (!(await this.deps.store.remove(msg._id, msg.recipient))) return;
    if (msg.state === 'kept') return; // delivered long ago: only the copy ends
    this.deps.metrics.count('ims_as_im_deferred_expired_total', { kind: msg.kind });
    this.deps.log.info({ recipient: msg.recipient, id: msg._id, kind: msg.kind }, 'deferred message expired');
    await this.charge(
      msg,
      { code: 408, reason: 'Expired', timedOut: true, at: new Date() },
      'expired',
      {},
      'timeLimit',
    );
    await this.notify(msg, 'failed');
  }

  /**
   * An operator expires a whole mailbox now: each message ends as at its expiry (408 CDR,
   * failure notification to a sender who asked). Returns how many pending messages ended.
   */
  async expireMailbox(recipient: string): Promise<number> {
    let ended = 0;
    for (;;) {
      const batch = await this.deps.store.list(recipient, { limit: 500 });
      if (batch.length === 0) return ended;
      for (const msg of batch) {
        if (msg.state === 'pending') ended++;
        await this.expire(msg);
      }
    }
  }

  /** Expired messages everywhere, and due retries of registered users. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.stopped) return;
    this.sweeping = (async () => {
      try {
        const now = new Date();
        for (const msg of await this.deps.store.expired(now, 500)) await this.expire(msg);
        for (const recipient of await this.deps.store.dueRecipients(now, 1000)) {
          if (this.stopped) return;
          if (await this.deps.registrations.isRegistered(recipient)) this.drainSoon(recipient);
          // offline: the next registration drains the mailbox; look again much later anyway
          else
            await this.deps.store.postpone(
              recipient,
              new Date(now.getTime() + this.deps.limits.retryMaxSeconds * 1000),
            );
        }
      } finally {
        this.sweeping = undefined;
      }
    })();
    await this.sweeping;
  }

  private async send(recipient: string, msg: ImMessage, callId: string, cseq: number): Promise<UacOutcome> {
    const headers: Array<[string, string]> = [
      ['From', msg.fromHeader],
      ['To', `<${recipient}>`],
      ['Call-ID', callId],
      ['CSeq', `${cseq} MESSAGE`],
      ['Max-Forwards', '70'],
      // the recipient sees when the message was sent, not when it was delivered
      ['Date', msg.sentAt.toUTCString()],
      ['P-Charging-Vector', msg.chargingVector],
      ['Content-Type', msg.contentType],
    ];
    if (!msg.privacy) headers.push(['P-Asserted-Identity', `<${msg.sender}>`]);
    return this.deps.uac.send({ method: 'MESSAGE', ruri: recipient, viaCore: true, headers, body: msg.body });
  }

  private async notify(msg: StoredMessage, status: 'delivered' | 'failed'): Promise<void> {
    if (msg.kind !== 'message' || !msg.imdn) return;
    if (status === 'delivered' ? !msg.imdn.positive : !msg.imdn.negative) return;
    let note: ReturnType<NotificationFactory>;
    try {
      note = this.notificationFactory?.(msg, status);
    } catch (err) {
      this.deps.log.error({ err, id: msg._id }, 'delivery notification could not be built');
      return;
    }
    if (!note) return;
    const { to } = note;
    try {
      const policy = await this.deps.policyOf(to);
      const r = await this.handOver(to, note.message, policy);
      this.deps.metrics.count('ims_as_im_notifications_total', { status, result: r.result });
    } catch (err) {
      this.deps.log.error({ err, to }, 'delivery notification not sent');
    }
  }

  private async charge(
    msg: StoredMessage,
    out: UacOutcome,
    outcome: string,
    extra: Record<string, string | number | boolean> = {},
    cause?: CauseForRecordClosing,
  ): Promise<void> {
    if (msg.kind !== 'message') return; // notifications are the service's own traffic
    await this.deps.charging.record({
      service: 'im',
      role: 'terminating',
      sipMethod: 'MESSAGE',
      sessionId: msg.callId,
      callingParty: msg.sender,
      calledParty: msg.recipient,
      requestTime: msg.sentAt,
      responseTime: out.at,
      statusCode: out.code,
      outcome,
      ...(cause ? { cause } : {}),
      chargingVector: msg.chargingVector,
      messageBody: { contentType: headerValueOnly(msg.contentType), contentLength: msg.size },
      extra: {
        deferred: true,
        attempts: msg.attempts + 1,
        storedSeconds: Math.round((out.at.getTime() - msg.sentAt.getTime()) / 1000),
        ...(msg.via ? { via: msg.via } : {}),
        ...extra,
      },
    });
  }
}
