import { chargingVectorOf, privateIdentityOf } from '../isc/types.js';
import { randomUUID } from 'node:crypto';
import type { Charging } from '../charging/charging.js';
import type { RoleOfNode } from '../charging/record.js';
import type { AsConfig } from '../config/config.js';
import { encodeContext, type IscCall, type IscService } from '../isc/dispatcher.js';
import {
  headerText,
  reply,
  type ContinueDecision,
  type IscDecision,
  type ReplyDecision,
  type WarningText,
} from '../isc/types.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { Registrations } from '../registrations/registrations.js';
import { parseNameAddr, splitHeaderList, utf8ByteLength, type SipRequest, headerValueOnly } from '../sip/index.js';
import { wantsPrivacy } from '../sip/request-checks.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import { keepsHistoryWith, type ImPolicy } from '../xdm/usages/im-policy.js';
import {
  ANONYMOUS_FROM as CPIM_ANONYMOUS,
  CpimParseError,
  imdnRequest,
  isImdnNotification,
  isRfc3339DateTime,
  parseCpim,
  serializeCpim,
  withReplacedFrom,
  type CpimMessage,
} from './formats/cpim.js';
import { RecipientListError, parseRecipientListMessage } from './formats/recipient-list.js';
import type { GroupDirectory } from './group-messaging.js';
import { GroupListError, type GroupPolicy } from '../conference/group-policy.js';
import type { ConversationHistory } from './history.js';
import type { ImPolicies } from './im-policies.js';
import { Participation } from './participation.js';
import type { ImMessage } from './message-store.js';
import type { HandOver, StoreAndForward } from './store-and-forward.js';
import { BackgroundWork } from '../util/background-work.js';
import { survive } from '../util/contain.js';
import { rateLimitedReply, type UserRateLimits } from '../limits/user-rate-limits.js';

/** What the recipient sees as the sender when the sender asked for privacy (RFC 3323). */
const ANONYMOUS_URI = CPIM_ANONYMOUS.uri;
const ANONYMOUS_SIP_FROM = `"Anonymous" <${ANONYMOUS_URI}>`;
const RECIPIENT_LIST_TAG = 'recipient-list-message';
/** RFC 3994 is-composing indications. */
const IS_COMPOSING = 'application/im-iscomposing+xml';

/** The im settings the pager works with (see as/src/config/config.ts). */
export type PagerLimits = Pick<AsConfig['im'], 'maxMessageBytes' | 'maxRecipients' | 'exploderUser'>;

/**
 * What the IM service keeps about a MESSAGE it let continue, carried by Kamailio in the
 * transaction and handed back with the final outcome: no AS instance holds it in memory.
 */
interface PagerContext {
  callId: string;
  from: string;
  to: string;
  roles: RoleOfNode[];
  /** Request time, ms since the epoch. */
  at: number;
  contentType: string;
  contentLength: number;
  chargingVector: string;
  /** IMPI Kamailio authenticated the sender with, when it did. */
  impi?: string;
  /** An is-composing indication (RFC 3994): no charging record, whatever its outcome. */
  composing?: true;
}

/** A MESSAGE as the IM service reads it once. */
interface Incoming {
  call: IscCall;
  /** Asserted identity of the sender (From when Kamailio asserted none). */
  sender: string;
  /** Request-URI, canonical when it is one of ours. */
  target: string;
  contentType: string;
  body: string;
  size: number;
  privacy: boolean;
  /** Parsed CPIM body, when the content is message/cpim. */
  cpim?: CpimMessage;
  /** An is-composing indication (RFC 3994), bare or wrapped in CPIM: never charged, archived or stored. */
  composing: boolean;
  requires: string[];
  ctx: PagerContext;
  pcvPresent: boolean;
}

/**
 * IM Server, pager mode (RFC 3428 MESSAGE): the participating function (originating: may the
 * sender send, size, history; terminating: the recipient's IM policy, size, delivery or
 * deferral), and the controlling function for group URIs (OMA groups) and URI lists
 * (RFC 5365), whose copies each go through the member's terminating policy.
 */
export class PagerService implements IscService {
  readonly name = 'im' as const;
  /** Group copies still being sent after the 202 (drained on stop). */
  private readonly explosions: BackgroundWork;
  private readonly participation: Participation;

  constructor(
    private readonly deps: {
      users: UserDirectory;
      domain: LocalDomain;
      registrations: Registrations;
      charging: Charging;
      policies: ImPolicies;
      groups: GroupDirectory;
      /** Who may send to a group, its members expanded, how many may take part. */
      groupPolicy: GroupPolicy;
      forward: StoreAndForward;
      history: ConversationHistory;
      limits: PagerLimits;
      nodeAddress: string;
      metrics: Metrics;
      log: Logger;
      /** Per-user limit on group and URI-list messages (each fans out to every member). */
      rateLimits?: UserRateLimits;
    },
  ) {
    this.explosions = new BackgroundWork(deps);
    this.participation = new Participation(deps);
  }

  /** Resolves when every accepted group message has been exploded (shutdown). */
  async drain(): Promise<void> {
    await this.explosions.drain();
  }

  async handle(call: IscCall): Promise<IscDecision> {
    if (call.req.method !== 'MESSAGE') return reply(501, 'Not Implemented');
    const read = await this.read(call);
    if ('action' in read) return read;
    const m = read;
    const { req } = call;

    if (req.orig) {
      const refused = await this.originatingCheck(m);
      if (refused) return refused;
    }

    const exploder = `sip:${this.deps.limits.exploderUser}@${this.deps.domain.domain}`;
    if (req.term && m.target === exploder) return this.recipientList(m);
    // recipient-list-message is only understood by the URI-list service
    const unsupported = m.requires;
    if (unsupported.length) {
      await this.charge(m.ctx, 420, 'rejected', call.receivedAt, { reason: 'unsupported extension' });
      return reply(420, 'Bad Extension', { headers: [['Unsupported', unsupported.join(', ')]] });
    }
    if (req.term) {
      // users first: the common case costs no group lookup
      if (await this.deps.users.exists(m.target)) return this.terminating(m);
      if (await this.deps.groups.isGroup(m.target)) return this.groupMessage(m);
      await this.charge(m.ctx, 404, 'rejected', call.receivedAt, { reason: 'unknown recipient' });
      return reply(404, 'Not Found');
    }
    // originating only: the recipient is elsewhere, Kamailio routes it on
    await this.archive(m.sender, 'sent', m.target, m);
    return this.continueDecision(m);
  }

  async onOutcome(payload: string, code: number, at: Date): Promise<void> {
    let ctx: PagerContext;
    try {
      ctx = JSON.parse(payload) as PagerContext;
    } catch {
      this.deps.log.error({ payload }, 'unreadable MESSAGE outcome context');
      return;
    }
    await this.charge(ctx, code, code >= 200 && code < 300 ? 'delivered' : 'failed', at);
  }

  // -------------------------------------------------------------------------------------
  // Reading the request
  // -------------------------------------------------------------------------------------

  private async read(call: IscCall): Promise<Incoming | ReplyDecision> {
    const { req, sip } = call;
    // (an alias or number the sender was asserted as counts as the user: policies, barring, limits)
    const asserted = req.asserted ?? safeUri(sip.headers.get('From') ?? '');
    const sender = this.deps.domain.canonical(asserted) ?? asserted;
    const target = this.deps.domain.canonical(req.ruri) ?? req.ruri;
    const contentTypeHeader = sip.headers.get('Content-Type') ?? 'text/plain';
    const contentType = headerValueOnly(contentTypeHeader);
    const body = sip.body;
    const pcv = chargingVectorOf(sip.headers.get('P-Charging-Vector'), req);
    const roles: RoleOfNode[] = [];
    if (req.orig) roles.push('originating');
    if (req.term) roles.push('terminating');
    const ctx: PagerContext = {
      callId: sip.headers.get('Call-ID') ?? '',
      from: sender,
      to: target,
      roles,
      at: call.receivedAt.getTime(),
      contentType,
      contentLength: utf8ByteLength(body),
      chargingVector: pcv ?? `icid-value=${randomUUID()};icid-generated-at=${this.deps.nodeAddress}`,
    };
    const impi = privateIdentityOf(req);
    if (impi !== undefined) ctx.impi = impi;
    const m: Incoming = {
      call,
      sender,
      target,
      contentType: contentTypeHeader,
      body,
      size: ctx.contentLength,
      privacy: wantsPrivacy(sip),
      requires: requireTags(sip),
      ctx,
      pcvPresent: pcv !== undefined,
      composing: false,
    };
    if (contentType === 'message/cpim') {
      try {
        m.cpim = parseCpim(body);
      } catch (err) {
        if (!(err instanceof CpimParseError)) throw err;
        await this.charge(ctx, 400, 'rejected', call.receivedAt, { reason: 'malformed CPIM' });
        return reply(400, 'Malformed CPIM Message', { warning: warning(this.deps.domain.domain, err.message) });
      }
      // the CPIM From is what a chat client shows: it must be the sender we authenticated
      if (req.orig && m.cpim.from && !this.sameUser(m.cpim.from.uri, sender)) {
        await this.charge(ctx, 403, 'rejected', call.receivedAt, { reason: 'CPIM From is not the sender' });
        return reply(403, 'CPIM From Does Not Match Sender');
      }
    }
    if (contentType === IS_COMPOSING || m.cpim?.contentType.toLowerCase() === IS_COMPOSING) {
      m.composing = true;
      ctx.composing = true;
    }
    return m;
  }

  /** A CPIM From names the authenticated sender (any of our host aliases, sip or im scheme). */
  private sameUser(cpimFrom: string, sender: string): boolean {
    const ours = this.deps.domain.canonical(cpimFrom);
    if (ours !== undefined && ours === this.deps.domain.canonical(sender)) return true;
    const a = userAndHost(cpimFrom);
    const b = userAndHost(sender);
    if (!a || !b || a.user !== b.user) return false;
    return a.host === b.host || (this.deps.domain.isLocalHost(a.host) && this.deps.domain.isLocalHost(b.host));
  }

  // -------------------------------------------------------------------------------------
  // Participating function
  // -------------------------------------------------------------------------------------

  /** The sender's side: barred users and oversized messages go no further. */
  private async originatingCheck(m: Incoming): Promise<ReplyDecision | undefined> {
    if (await this.participation.senderBarred(m.sender)) {
      await this.charge(m.ctx, 403, 'rejected', m.call.receivedAt, { reason: 'sender barred' });
      return reply(403, 'Sender Barred From Messaging');
    }
    if (m.size > this.deps.limits.maxMessageBytes) return this.tooLarge(m);
    return undefined;
  }

  /** The recipient's side, for a provisioned user of ours. */
  private async terminating(m: Incoming): Promise<IscDecision> {
    const { call } = m;
    const to = m.target;
    const { policy, verdict } = await this.participation.recipientVerdict(to, m.sender);
    if (verdict === 'reject') {
      await this.charge(m.ctx, 403, 'rejected', call.receivedAt, { reason: 'blocked by recipient' });
      return reply(403, 'Forbidden');
    }
    if (verdict === 'discard') {
      // the sender cannot tell a discarded message from a delivered one
      await this.charge(m.ctx, 200, 'discarded', call.receivedAt, { reason: 'blocked by recipient' });
      return reply(200, 'OK');
    }
    if (m.size > this.deps.limits.maxMessageBytes) return this.tooLarge(m);

    const message = this.imMessage(m);
    if (call.req.orig) await this.archive(m.sender, 'sent', to, m);
    await this.archiveReceived(to, policy, message);
    // presence-aware delivery: a registered user whose presence says closed or busy gets it later
    const heldBy = call.req.registered ? await this.deps.forward.heldBy(to, policy) : undefined;
    const reachable = call.req.registered && heldBy === undefined;
    if (m.composing) {
      // delivered now or not at all: an offline (or held) recipient has nobody typing to see
      if (reachable) return this.continueDecision(m);
      const why = heldBy ? `recipient's presence is ${heldBy}` : 'recipient is offline';
      return reply(480, 'Temporarily Unavailable', {
        warning: warning(this.deps.domain.domain, `${why}; is-composing indications are not stored`),
      });
    }
    if (reachable) {
      if (policy.deferredDelivery.networkStorage) await this.deps.forward.keepCopy(to, message);
      return this.continueDecision(m);
    }
    if (!policy.deferredDelivery.enabled) {
      await this.charge(m.ctx, 480, 'failed', call.receivedAt, {
        reason: heldBy
          ? `recipient's presence is ${heldBy}, deferred delivery off`
          : 'recipient offline, deferred delivery off',
      });
      return reply(480, 'Temporarily Unavailable');
    }
    const stored = await this.deps.forward.defer(to, message);
    if (stored.result === 'full') {
      await this.charge(m.ctx, 480, 'rejected', call.receivedAt, { reason: 'recipient storage full' });
      return reply(480, 'Recipient Message Storage Full', {
        warning: warning(
          this.deps.domain.domain,
          `${heldBy ? `recipient's presence is ${heldBy}` : 'recipient is offline'} and their message storage is full`,
        ),
      });
    }
    // stored: the answer is 202 now, whatever happens to its CDR
    await survive(
      this.deps,
      'im-charging',
      this.charge(m.ctx, 202, 'deferred', call.receivedAt, { storedId: stored.id, ...(heldBy ? { heldBy } : {}) }),
      { callId: m.ctx.callId },
    );
    return reply(202, 'Accepted');
  }

  private async tooLarge(m: Incoming): Promise<ReplyDecision> {
    const max = this.deps.limits.maxMessageBytes;
    await this.charge(m.ctx, 413, 'rejected', m.call.receivedAt, { reason: 'too large' });
    return reply(413, 'Request Entity Too Large', {
      headers: [['Max-Message-Size', String(max)]],
      warning: warning(this.deps.domain.domain, `message body is ${m.size} bytes; the most accepted is ${max}`),
    });
  }

  /** Lets Kamailio deliver to the registered contacts, anonymised when the sender asked. */
  private continueDecision(m: Incoming): ContinueDecision {
    const decision: ContinueDecision = {
      action: 'continue',
      hdrs: m.pcvPresent ? '' : headerText([['P-Charging-Vector', m.ctx.chargingVector]]),
      ctx: encodeContext(this.name, JSON.stringify(m.ctx)),
    };
    if (m.privacy) {
      decision.anonymize = true;
      const anonymous = anonymousCpimBody(m);
      if (anonymous !== undefined) {
        decision.body = anonymous;
        decision.ctype = m.contentType;
      }
    }
    m.call.log.debug({ from: m.sender, to: m.target, roles: m.ctx.roles }, 'MESSAGE continues to delivery');
    return decision;
  }

  // -------------------------------------------------------------------------------------
  // Controlling function: groups and URI lists
  // -------------------------------------------------------------------------------------

  private async recipientList(m: Incoming): Promise<IscDecision> {
    if (!m.requires.includes(RECIPIENT_LIST_TAG)) {
      await this.charge(m.ctx, 403, 'rejected', m.call.receivedAt, {
        reason: 'URI-list request without Require: recipient-list-message',
      });
      return reply(403, 'Recipient List Required', {
        warning: warning(
          this.deps.domain.domain,
          'send with Require: recipient-list-message and a recipient-list body',
        ),
      });
    }
    let parsed;
    try {
      parsed = parseRecipientListMessage(m.body, m.contentType, { maxRecipients: this.deps.limits.maxRecipients });
    } catch (err) {
      if (!(err instanceof RecipientListError)) throw err;
      await this.charge(m.ctx, err.code, 'rejected', m.call.receivedAt, { reason: err.message });
      return reply(
        err.code,
        err.code === 415 ? 'Unsupported Media Type' : err.code === 403 ? 'Too Many Recipients' : 'Bad Recipient List',
        {
          warning: warning(this.deps.domain.domain, err.message),
        },
      );
    }
    const inner: Incoming = {
      ...m,
      contentType: parsed.message.contentType,
      body: parsed.message.body,
      size: utf8ByteLength(parsed.message.body),
    };
    return this.explode(
      inner,
      m.target,
      parsed.recipients.map((r) => r.uri),
    );
  }

  /**
   * A MESSAGE to a group: the group's policy says whether the sender may send (403 with the
   * reason in a Warning otherwise: a non-member, an anonymous sender the group does not allow),
   * and the members (references expanded) get the copies, no more than the group may hold.
   */
  private async groupMessage(m: Incoming): Promise<IscDecision> {
    const policy = this.deps.groupPolicy;
    const may = await policy.maySend(m.target, m.sender, { anonymous: m.privacy });
    if ('refuse' in may) {
      const { code, reason } = may.refuse;
      await this.charge(m.ctx, code, 'rejected', m.call.receivedAt, { reason, via: m.target });
      return reply(code, code === 403 ? 'Forbidden By Group Policy' : 'Not Found', {
        warning: warning(this.deps.domain.domain, reason),
      });
    }
    let members: string[] | undefined;
    try {
      members = await policy.members(m.target);
    } catch (err) {
      if (!(err instanceof GroupListError)) throw err;
      await this.charge(m.ctx, 403, 'rejected', m.call.receivedAt, { reason: err.detail, via: m.target });
      return reply(403, 'Group List Unresolvable', { warning: warning(this.deps.domain.domain, err.detail) });
    }
    if (!members) {
      await this.charge(m.ctx, 404, 'rejected', m.call.receivedAt, { reason: 'unknown recipient' });
      return reply(404, 'Not Found');
    }
    return this.explode(m, m.target, members, await policy.maxParticipants(m.target));
  }

  /**
   * One 202 to the sender; each member's copy then goes through that member's terminating
   * policy and is delivered or deferred. A member that is itself a group (or a list
   * service) would make a loop: the whole request is refused before anything is sent.
   */
  private async explode(
    m: Incoming,
    service: string,
    members: string[],
    maxParticipants?: number,
  ): Promise<IscDecision> {
    const exploder = `sip:${this.deps.limits.exploderUser}@${this.deps.domain.domain}`;
    const targets = members.map((u) => this.deps.domain.canonical(u) ?? u);
    for (const t of targets) {
      if (t === exploder || (await this.deps.groups.isGroup(t))) {
        await this.charge(m.ctx, 403, 'rejected', m.call.receivedAt, { reason: `nested group ${t}`, via: service });
        return reply(403, 'Nested Groups Not Allowed', {
          warning: warning(this.deps.domain.domain, `${t} is a group; groups may not contain groups`),
        });
      }
    }
    const copies = [...new Set(targets)].filter((t) => t !== m.sender);
    // a group's participants: the sender and every copy
    if (maxParticipants !== undefined && copies.length + 1 > maxParticipants) {
      await this.charge(m.ctx, 403, 'rejected', m.call.receivedAt, { reason: 'group over its size', via: service });
      return reply(403, 'Too Many Participants', {
        warning: warning(this.deps.domain.domain, `the group is limited to ${maxParticipants} participants`),
      });
    }
    if (copies.length > this.deps.limits.maxRecipients) {
      await this.charge(m.ctx, 403, 'rejected', m.call.receivedAt, { reason: 'too many recipients', via: service });
      return reply(403, 'Too Many Recipients', {
        warning: warning(this.deps.domain.domain, `at most ${this.deps.limits.maxRecipients} recipients`),
      });
    }
    if (m.size > this.deps.limits.maxMessageBytes) return this.tooLarge(m);
    // counted once the request is known to explode: a refused one costs its members nothing
    const refusal = await this.deps.rateLimits?.take('group', m.sender);
    if (refusal) return rateLimitedReply(refusal, this.deps.domain.domain);
    if (m.call.req.orig) await this.archive(m.sender, 'sent', service, m);
    await this.charge(m.ctx, 202, 'accepted', m.call.receivedAt, { via: service, recipients: copies.length });
    this.deps.metrics.count('ims_as_im_explosions_total', {});
    const message: ImMessage = { ...this.imMessage(m), via: service };
    this.explosions.start('group-explosion', this.sendCopies(message, copies), { service });
    return reply(202, 'Accepted');
  }

  private async sendCopies(message: ImMessage, members: string[]): Promise<void> {
    // a few at a time: fast for small groups, gentle on Kamailio for big ones
    const queue = [...members];
    const worker = async () => {
      for (let member = queue.shift(); member !== undefined; member = queue.shift())
        await this.sendCopy(message, member);
    };
    await Promise.all(Array.from({ length: Math.min(8, queue.length) }, worker));
  }

  private async sendCopy(message: ImMessage, member: string): Promise<void> {
    const copyCtx: PagerContext = {
      callId: message.callId,
      from: message.sender,
      to: member,
      roles: ['terminating'],
      at: message.sentAt.getTime(),
      contentType: headerValueOnly(message.contentType),
      contentLength: utf8ByteLength(message.body),
      chargingVector: message.chargingVector,
      ...(message.kind === 'composing' ? { composing: true as const } : {}),
    };
    const via = message.via ?? '';
    const memberAor = this.deps.domain.canonical(member);
    if (!memberAor || !(await this.deps.users.exists(memberAor))) {
      await this.charge(copyCtx, 404, 'rejected', new Date(), { reason: 'member is not a user of ours', via });
      return;
    }
    const { policy, verdict } = await this.participation.recipientVerdict(member, message.sender);
    if (verdict !== 'accept') {
      await this.charge(
        copyCtx,
        verdict === 'reject' ? 403 : 200,
        verdict === 'reject' ? 'rejected' : 'discarded',
        new Date(),
        { reason: 'blocked by recipient', via },
      );
      return;
    }
    await this.archiveReceived(member, policy, message);
    const r: HandOver = await this.deps.forward.handOver(member, message, policy);
    const [code, outcome] = handOverCharge(r);
    await this.charge(copyCtx, code, outcome, new Date(), {
      via,
      ...(r.result === 'deferred' ? { storedId: r.id } : {}),
    });
  }

  // -------------------------------------------------------------------------------------
  // Shared pieces
  // -------------------------------------------------------------------------------------

  /** The message as delivery and storage carry it: anonymised when the sender asked. */
  private imMessage(m: Incoming): ImMessage {
    const sip = m.call.sip;
    const fromHeader = m.privacy ? ANONYMOUS_SIP_FROM : stripTag(sip.headers.get('From') ?? `<${m.sender}>`);
    const body = anonymousCpimBody(m) ?? m.body;
    const msg: ImMessage = {
      sender: m.sender,
      fromHeader,
      contentType: m.contentType,
      body,
      sentAt: m.call.receivedAt,
      callId: m.ctx.callId,
      chargingVector: m.ctx.chargingVector,
      privacy: m.privacy,
      kind: m.composing ? 'composing' : 'message',
    };
    if (m.composing) return msg;
    if (m.cpim) {
      if (isImdnNotification(m.cpim)) {
        msg.kind = 'notification';
      } else {
        const ask = imdnRequest(m.cpim);
        const positive = ask.dispositions.has('positive-delivery');
        const negative = ask.dispositions.has('negative-delivery');
        if (ask.messageId && (positive || negative)) {
          const dt = m.cpim.dateTime;
          msg.imdn = {
            messageId: ask.messageId,
            dateTime: dt && isRfc3339DateTime(dt) ? dt : m.call.receivedAt.toISOString(),
            positive,
            negative,
          };
        }
      }
    }
    return msg;
  }

  private async archive(owner: string, direction: 'sent' | 'received', peer: string, m: Incoming): Promise<void> {
    if (m.composing) return; // a typing indication is no conversation
    if (!this.deps.domain.canonical(owner)) return;
    const policy = await this.deps.policies.of(owner);
    if (!keepsHistoryWith(policy, peer, this.participation.canonicalOf)) return;
    await this.deps.history.archive(
      {
        owner,
        direction,
        peer,
        at: m.call.receivedAt,
        contentType: m.contentType,
        body: m.body,
        callId: m.ctx.callId,
      },
      policy.history.maxMessages,
    );
  }

  private async archiveReceived(owner: string, policy: ImPolicy, msg: ImMessage): Promise<void> {
    if (msg.kind === 'composing' || !keepsHistoryWith(policy, msg.sender, this.participation.canonicalOf)) return;
    await this.deps.history.archive(
      {
        owner,
        direction: 'received',
        peer: msg.privacy ? ANONYMOUS_URI : msg.sender,
        at: msg.sentAt,
        contentType: msg.contentType,
        body: msg.body,
        callId: msg.callId,
      },
      policy.history.maxMessages,
    );
  }

  /** One charging record per role this AS played for the message. */
  private async charge(
    ctx: PagerContext,
    code: number,
    outcome: string,
    at: Date,
    extra?: Record<string, string | number | boolean>,
  ): Promise<void> {
    if (ctx.composing) return; // is-composing is signalling, not a chargeable message (docs/im.md)
    await Promise.all(
      ctx.roles.map((role) =>
        this.deps.charging.record({
          service: 'im',
          role,
          sipMethod: 'MESSAGE',
          sessionId: ctx.callId,
          callingParty: ctx.from,
          calledParty: ctx.to,
          requestTime: new Date(ctx.at),
          responseTime: at,
          statusCode: code,
          outcome,
          chargingVector: ctx.chargingVector,
          ...(typeof ctx.impi === 'string' ? { privateUserId: ctx.impi } : {}),
          messageBody: { contentType: ctx.contentType, contentLength: ctx.contentLength },
          ...(extra ? { extra } : {}),
        }),
      ),
    );
  }
}

/** The CPIM body with an anonymous From for a sender who asked for privacy; undefined when nothing changes. */
function anonymousCpimBody(m: Incoming): string | undefined {
  if (!m.privacy || !m.cpim || isAnonymous(m.cpim.from.uri)) return undefined;
  return serializeCpim(withReplacedFrom(m.cpim, CPIM_ANONYMOUS));
}

function handOverCharge(r: HandOver): [number, string] {
  switch (r.result) {
    case 'delivered':
      return [r.code, 'delivered'];
    case 'deferred':
      return [202, 'deferred'];
    case 'refused':
      return [r.code, 'rejected'];
    case 'full':
      return [480, 'rejected'];
    case 'unavailable':
      return [480, 'failed'];
  }
}

function requireTags(sip: SipRequest): string[] {
  return sip.headers
    .getAll('Require')
    .flatMap((v) => splitHeaderList(v))
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

function safeUri(nameAddr: string): string {
  try {
    return parseNameAddr(nameAddr).uri;
  } catch {
    return nameAddr.trim();
  }
}

function stripTag(from: string): string {
  return from.replace(/;\s*tag=[^;\s]*/i, '');
}

/** User and host (lowercased) of a sip:, sips:, im: or pres: URI: how CPIM and SIP identities compare. */
function userAndHost(uri: string): { user: string; host: string } | undefined {
  const m = /^(?:sips?|im|pres):([^@;?>]+)@([^;?>:]+)/i.exec(uri.trim().replace(/^<|>$/g, ''));
  return m ? { user: m[1]!, host: m[2]!.toLowerCase() } : undefined;
}

const ANONYMOUS = userAndHost(ANONYMOUS_URI)!;

function isAnonymous(uri: string): boolean {
  const u = userAndHost(uri);
  return u?.user === ANONYMOUS.user && u.host === ANONYMOUS.host;
}

function warning(host: string, text: string): WarningText {
  return { agent: host, text };
}
