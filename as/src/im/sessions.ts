import { randomBytes, randomUUID } from 'node:crypto';
import type { Charging } from '../charging/charging.js';
import type { CauseForRecordClosing, RoleOfNode } from '../charging/record.js';
import { encodeContext, type IscCall } from '../isc/dispatcher.js';
import {
  chargingVectorOf,
  headerText,
  privateIdentityOf,
  reply,
  type ContinueDecision,
  type IscDecision,
  type SessionAnswerEvent,
  type SessionEndEvent,
} from '../isc/types.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { headerValueOnly, parseNameAddr, utf8ByteLength } from '../sip/index.js';
import { wantsPrivacy } from '../sip/request-checks.js';
import type { LocalDomain } from '../users/local-domain.js';
import type { UserDirectory } from '../users/user-directory.js';
import type { Registrations } from '../registrations/registrations.js';
import { deliveryTargets } from '../registrations/delivery-targets.js';
import type { ConversationHistory } from './history.js';
import type { ImPolicies } from './im-policies.js';
import { Participation } from './participation.js';
import type { AnchorMessage, AnchorStats, MediaAnchor } from './session-anchor.js';
import { type FileSelector, type MsrpMedia, msrpAnswerSdp, parseMsrpMedia, rewriteMsrpMedia } from '../msrp/sdp.js';
import type { DeferredEndpoint, DeferredSessionRefusal } from './deferred-endpoint.js';
import type { UacRequest } from '../isc/uac.js';
import { isUtf8 } from 'node:buffer';
import type { ImMessage } from './message-store.js';
import { tryParseMsrpUri } from '../msrp/uri.js';
import { acceptsFileType, keepsHistoryWith, type ImPolicy } from '../xdm/usages/im-policy.js';

/** Prefix of the outcome context of a session's INVITE (a MESSAGE's context is plain JSON). */
export const SESSION_CONTEXT_PREFIX = 'session:';

const ANONYMOUS_URI = 'sip:anonymous@anonymous.invalid';

/** One IM session this instance anchors, from its INVITE to its end. */
interface LiveSession {
  key: string;
  callId: string;
  fromTag: string;
  toTag?: string;
  caller: string;
  callee: string;
  roles: RoleOfNode[];
  invitedAt: Date;
  answeredAt?: Date;
  chargingVector: string;
  privacy: boolean;
  /** The callee's a=path the anchor was given (space-separated). */
  calleePath?: string;
  /** The caller's a=path the anchor was given (space-separated). */
  callerPath: string;
  /** Taken by the IM server for an offline callee: its messages are stored as deferred ones. */
  deferred?: boolean;
  /**
   * The dialog of a deferred session as its UAS (the AS, through Kamailio's reply) holds it:
   * what a BYE from the AS needs when the caller's MSRP side ends (RFC 3261 12.1.1).
   */
  deferredDialog?: {
    /** The To tag of the 200 (Kamailio's local tag for the INVITE's transaction). */
    localTag: string;
    /** The INVITE's To, without tag: our side's From in the BYE. */
    localParty: string;
    /** The INVITE's From, without tag. */
    remoteParty: string;
    /** The caller's Contact. */
    remoteTarget: string;
    /** The INVITE's Record-Route values, in order (the UAS route set). */
    routeSet: string[];
    cseq: number;
  };
  /** A file transfer (RFC 5547) offer's a=file-selector, when the session is one. */
  file?: FileSelector;
  /** The AS's URI towards each party (from the anchor). */
  sides?: { offererSide: string; answererSide: string };
  /** A re-offer (re-INVITE, UPDATE) on its way: who made it and the path it offers. */
  reoffer?: { by: 'offerer' | 'answerer'; path: string[]; setup?: string };
  /**
   * Whole messages and their bytes each way, from the anchor's 'message' events, without
   * is-composing indications (never charged as messages). Not the switch's sessionStats: it
   * counts is-composing too, and it is gone once the switch has said a session ended.
   */
  tally: AnchorStats;
  /** The IMPI Kamailio authenticated the caller with (TS 32.298 privateUserID), when it did. */
  impi?: string;
  /** The offer's body as the INVITE carried it (TS 32.298 list-Of-Message-Bodies). */
  offer?: { contentType: string; contentLength: number };
  /** The tally as it was at the last interim record: each record counts its own span. */
  chargedTally?: AnchorStats;
  /** Interim records written so far (the final record is one more in the chain). */
  interimRecords: number;
  /** When the span of the next record began (the 200, then each interim record). */
  spanStart?: Date;
  interimTimer?: NodeJS.Timeout;
}

/**
 * Ends a SIP dialog both ways through Kamailio (dlg.terminate_dlg): 'gone' when Kamailio no
 * longer holds it (a party's BYE got there first).
 */
export type DialogTerminator = (dialog: {
  callId: string;
  fromTag: string;
  toTag: string;
}) => Promise<'terminated' | 'gone'>;

/**
 * IM Server, session mode (OMA SIMPLE IM): the participating function for an INVITE with an
 * MSRP offer. The same policies as pager mode decide (barring, the recipient's IM policy,
 * privacy); then the AS anchors the media: the callee is offered the AS's MSRP URI, and
 * Kamailio, which proxies the dialog, shows the caller the AS's other URI in the answer
 * (docs/im-sessions.md). The session lives on the instance that decided its INVITE: Kamailio
 * hands that instance every event of the same Call-ID.
 */
export class SessionService {
  private readonly participation: Participation;
  private readonly byCallId = new Map<string, LiveSession>();
  private readonly byKey = new Map<string, LiveSession>();
  /** Established sessions per user of ours on this instance: the first sets them "in a chat", the last clears it. */
  private readonly inChat = new Map<string, number>();

  constructor(
    private readonly deps: {
      users: UserDirectory;
      domain: LocalDomain;
      policies: ImPolicies;
      charging: Charging;
      history: ConversationHistory;
      anchor: MediaAnchor;
      terminate: DialogTerminator;
      /** Largest message the switch relays: a file transfer (RFC 5547) offering more is refused. */
      maxMessageBytes: number;
      /** The operator's largest file (RFC 5547 offer); 0 or absent: maxMessageBytes, which caps it. */
      maxFileBytes?: number;
      /** An established session writes an interim record per role this often; 0 or absent: never. */
      interimRecordMs?: number;
      nodeAddress: string;
      metrics: Metrics;
      log: Logger;
      /** The registration mirror: which contacts take the session (absent: every contact). */
      registrations?: Registrations;
      /**
       * Deferred sessions: an INVITE to a user with no registered contact is taken by the IM
       * server (its MSRP end point) and every message is stored for delivery on registration.
       * Absent: such an INVITE gets 480.
       */
      deferred?: {
        endpoint: DeferredEndpoint;
        store: (recipient: string, msg: ImMessage) => Promise<{ result: 'deferred' | 'full' }>;
        /** The Contact of the 200 (a URI Kamailio sends the dialog's requests back to the AS for). */
        contact: string;
        /** Sends a request of the AS through Kamailio (the BYE when the caller's MSRP side ends). */
        send: (req: UacRequest) => Promise<{ code: number }>;
        /** The pager's largest message: a stored file above it is not delivered (history says so). */
        maxPagerBytes: number;
      };
      /** Says when one of our users is in a chat and when no longer (their IM presence source). */
      activity?: (user: string, state: 'chat' | 'none') => Promise<unknown>;
    },
  ) {
    this.participation = new Participation(deps);
    deps.metrics.describe(
      'ims_as_im_sessions_total',
      'IM sessions (INVITE with an MSRP offer) by step: offered, established, ended',
    );
    deps.metrics.describe(
      'ims_as_im_session_dialog_ends_total',
      'Dialogs of IM sessions the AS asked Kamailio to end after the MSRP side ended, by result: terminated, gone (a BYE crossed the request), failed',
    );
    deps.metrics.describe(
      'ims_as_im_session_interim_records_total',
      'Interim (partial) charging rounds of long IM sessions (one record per role each)',
    );
    deps.metrics.describe(
      'ims_as_im_session_deferred_messages_total',
      'Messages of deferred IM sessions (taken for an offline callee) by result: deferred, full',
    );
    deps.anchor.on('ended', (e) => this.settle('anchor-ended', this.onAnchorEnded(e.sessionKey, e.reason)));
    deps.anchor.on('message', (m) => this.settle('session-history', this.onMessage(m)));
  }

  /** Sessions anchored here now. */
  get size(): number {
    return this.byCallId.size;
  }

  async handle(call: IscCall): Promise<IscDecision> {
    const { req, sip } = call;
    if (/;\s*tag=/i.test(sip.headers.get('To') ?? ''))
      return req.method === 'BYE' ? this.deferredBye(call) : this.reoffer(call);
    const sender = req.asserted ?? uriOf(sip.headers.get('From') ?? '');
    const target = this.deps.domain.canonical(req.ruri) ?? req.ruri;
    const callId = sip.headers.get('Call-ID') ?? '';
    const roles: RoleOfNode[] = [];
    if (req.orig) roles.push('originating');
    if (req.term) roles.push('terminating');
    const pcv = chargingVectorOf(sip.headers.get('P-Charging-Vector'), req);
    const session: LiveSession = {
      key: randomBytes(10).toString('hex'),
      callId,
      fromTag: /;\s*tag=([^;\s]+)/i.exec(sip.headers.get('From') ?? '')?.[1] ?? '',
      caller: sender,
      callee: target,
      roles,
      invitedAt: call.receivedAt,
      chargingVector: pcv ?? `icid-value=${randomUUID()};icid-generated-at=${this.deps.nodeAddress}`,
      privacy: wantsPrivacy(sip),
      tally: { fromOfferer: { messages: 0, bytes: 0 }, fromAnswerer: { messages: 0, bytes: 0 } },
      callerPath: '',
      interimRecords: 0,
    };
    const impi = privateIdentityOf(req);
    if (impi !== undefined) session.impi = impi;
    if (sip.body.length > 0) {
      session.offer = {
        contentType: headerValueOnly(sip.headers.get('Content-Type') ?? '') || 'application/sdp',
        contentLength: utf8ByteLength(sip.body),
      };
    }
    const refuse = async (code: number, reason: string, why: string, extra: Parameters<typeof reply>[2] = {}) => {
      await this.charge(session, { code, outcome: 'rejected', at: call.receivedAt, reason: why });
      return reply(code, reason, extra);
    };

    const contentType = headerValueOnly(sip.headers.get('Content-Type') ?? '').toLowerCase();
    const media = contentType === 'application/sdp' ? parseMsrpMedia(sip.body)[0] : undefined;
    if (!media || media.path.length === 0)
      return refuse(488, 'Not Acceptable Here', 'no MSRP media with a path', {
        warning: {
          agent: this.deps.domain.domain,
          text: 'the offer needs an m=message TCP/MSRP media line with a=path',
        },
      });

    // RFC 5547: the offer says how large the file is; one above the operator's maximum (or
    // one the switch would cut off) is refused now
    const fileSize = media.fileSelector?.size;
    const fileLimit = Math.min(this.deps.maxFileBytes || this.deps.maxMessageBytes, this.deps.maxMessageBytes);
    if (fileSize !== undefined && fileSize > fileLimit) {
      return refuse(488, 'Not Acceptable Here', 'file too large', {
        headers: [['Max-Message-Size', String(fileLimit)]],
        warning: {
          agent: this.deps.domain.domain,
          text: `the file is ${fileSize} bytes; the most accepted is ${fileLimit}`,
        },
      });
    }
    if (req.orig && (await this.participation.senderBarred(sender)))
      return refuse(403, 'Sender Barred From Messaging', 'sender barred');
    if (req.term) {
      if (!(await this.deps.users.exists(target))) return refuse(404, 'Not Found', 'unknown recipient');
      const { verdict } = await this.participation.recipientVerdict(target, sender);
      if (verdict === 'reject') return refuse(403, 'Forbidden', 'blocked by recipient');
      // a session cannot be taken and dropped unseen: the caller learns only that nobody answers
      if (verdict === 'discard') return refuse(480, 'Temporarily Unavailable', 'blocked by recipient (discard)');
      // a file offer passes the recipient's file policy whether they are online or not
      if (media.fileSelector) {
        const refusal = fileRefusal((await this.deps.policies.of(target)).fileTransfer, media.fileSelector);
        if (refusal)
          return refuse(488, 'Not Acceptable Here', `file refused by recipient: ${refusal}`, {
            warning: { agent: this.deps.domain.domain, text: refusal },
          });
      }
      if (!req.registered) {
        const deferred = this.deps.deferred;
        if (!deferred || !(await this.deps.policies.of(target)).deferredDelivery.enabled)
          return refuse(480, 'Temporarily Unavailable', 'recipient offline');
        return this.acceptDeferred(call, session, media, deferred);
      }
    }
    // the contacts that registered the OMA IM feature tag get the session, when any did
    const targets =
      req.term && this.deps.registrations
        ? await deliveryTargets(this.deps.registrations, target, sip, { preferIm: true })
        : undefined;
    if (targets?.kind === 'none')
      return refuse(480, 'Temporarily Unavailable', 'no contact of the recipient takes the session', {
        warning: {
          agent: this.deps.domain.domain,
          text: 'no registered contact of the recipient can take this request',
        },
      });

    // a=setup (RFC 6135) travels on unchanged in both SDPs, so the anchor takes each side's role
    const sides = this.deps.anchor.open(session.key, {
      path: media.path,
      acceptTypes: media.acceptTypes,
      ...(media.setup ? { setup: media.setup } : {}),
      // the file may not grow on the way past the size its offer declared
      ...(fileSize !== undefined ? { maxMessageBytes: fileSize } : {}),
    });
    const towardsCallee = authorityOf(sides.answererSide);
    const towardsCaller = authorityOf(sides.offererSide);
    if (!towardsCallee || !towardsCaller) {
      this.settle('anchor-close', Promise.resolve(this.deps.anchor.close(session.key, 'bad anchor URI')));
      throw new Error(
        `the MSRP anchor handed out URIs without an authority: ${sides.offererSide} ${sides.answererSide}`,
      );
    }
    session.callerPath = media.path.join(' ');
    session.sides = sides;
    this.byCallId.set(callId, session);
    this.byKey.set(session.key, session);
    this.deps.metrics.count('ims_as_im_sessions_total', { step: 'offered' });

    const decision: ContinueDecision = {
      action: 'continue',
      hdrs: pcv !== undefined ? '' : headerText([['P-Charging-Vector', session.chargingVector]]),
      ctx: encodeContext('im', SESSION_CONTEXT_PREFIX + JSON.stringify({ callId })),
      body: rewriteMsrpMedia(sip.body, { path: [sides.answererSide], ...towardsCallee }),
      ctype: 'application/sdp',
      sessPath: sides.offererSide,
      sessHost: towardsCaller.host,
      sessPort: String(towardsCaller.port),
    };
    if (session.privacy) decision.anonymize = true;
    if (targets?.kind === 'some') decision.targets = targets.targets;
    call.log.debug({ from: sender, to: target, session: session.key }, 'IM session offered through the AS');
    return decision;
  }

  /**
   * OMA SIMPLE IM deferred messaging for sessions: the IM server answers the INVITE for the
   * offline callee with its own MSRP end point behind the switch, and stores every message
   * the caller sends as a deferred message (delivered as a pager MESSAGE when the callee
   * registers, with the original sender, content type and body: a message/cpim body keeps its
   * CPIM headers). The dialog's requests come back to the AS (Contact `im-deferred`).
   */
  private acceptDeferred(
    call: IscCall,
    s: LiveSession,
    media: MsrpMedia,
    deferred: NonNullable<SessionService['deps']['deferred']>,
  ): IscDecision {
    const fileSize = media.fileSelector?.size;
    const sides = this.deps.anchor.open(s.key, {
      path: media.path,
      acceptTypes: media.acceptTypes,
      ...(media.setup ? { setup: media.setup } : {}),
      // as in a live session, the file may not grow past the size its offer declared
      ...(fileSize !== undefined ? { maxMessageBytes: fileSize } : {}),
    });
    const towardsCaller = authorityOf(sides.offererSide);
    if (!towardsCaller) {
      this.settle('anchor-close', Promise.resolve(this.deps.anchor.close(s.key, 'bad anchor URI')));
      throw new Error(`the MSRP anchor handed out a URI without an authority: ${sides.offererSide}`);
    }
    const endpointPath = deferred.endpoint.open(
      s.key,
      (m) => this.settle('deferred-session-message', this.storeDeferred(s, m.contentType, m.body)),
      (r) => this.settle('deferred-session-refusal', this.fileNotKept(s, r)),
    );
    this.deps.anchor.answered(s.key, { path: [endpointPath] });
    s.deferred = true;
    if (media.fileSelector) s.file = media.fileSelector;
    const sip = call.sip;
    s.deferredDialog = {
      localTag: call.req.toTag,
      localParty: withoutTag(sip.headers.get('To') ?? `<${s.callee}>`),
      remoteParty: withoutTag(sip.headers.get('From') ?? `<${s.caller}>`),
      remoteTarget: uriOf(sip.headers.get('Contact') ?? `<${s.caller}>`),
      routeSet: sip.headers.getAll('Record-Route'),
      cseq: 0,
    };
    s.callerPath = media.path.join(' ');
    s.sides = sides;
    s.answeredAt = call.receivedAt;
    s.spanStart = call.receivedAt;
    this.byCallId.set(s.callId, s);
    this.byKey.set(s.key, s);
    // charged like a live session: interim records while it lasts
    this.startInterimRecords(s);
    this.deps.metrics.count('ims_as_im_sessions_total', { step: 'offered' });
    this.deps.metrics.count('ims_as_im_sessions_total', { step: 'deferred' });
    call.log.debug({ from: s.caller, to: s.callee, session: s.key }, 'IM session taken for an offline callee');
    return reply(200, 'OK', {
      headers: [
        ['Contact', `<${deferred.contact}>`],
        ['P-Charging-Vector', s.chargingVector],
      ],
      body: msrpAnswerSdp({
        host: towardsCaller.host,
        port: towardsCaller.port,
        path: sides.offererSide,
        proto: media.proto,
        acceptTypes: media.acceptTypes,
        originId: Math.floor(call.receivedAt.getTime() / 1000),
      }),
      ctype: 'application/sdp',
    });
  }

  private startInterimRecords(s: LiveSession): void {
    const every = this.deps.interimRecordMs ?? 0;
    if (every <= 0) return;
    s.interimTimer = setInterval(() => this.settle('interim-record', this.interim(s)), every);
    s.interimTimer.unref();
  }

  /** One whole message of a deferred session, stored for the callee (is-composing never). */
  private async storeDeferred(s: LiveSession, contentType: string, body: Buffer): Promise<void> {
    if (headerValueOnly(contentType).toLowerCase() === 'application/im-iscomposing+xml') return;
    // a stored file is delivered as a pager MESSAGE with the file as its body: only when it
    // fits the pager's limit and is text (a SIP body crosses Kamailio's JSON interface as a
    // string, so bytes that are not UTF-8 would not arrive as sent)
    if (s.file) {
      const limit = this.deps.deferred!.maxPagerBytes;
      if (body.length > limit)
        return this.fileNotKept(s, {
          contentType,
          code: 413,
          reason: `${body.length} bytes, the most a stored message holds is ${limit}`,
        });
      if (!isUtf8(body) || body.includes(0))
        return this.fileNotKept(s, { contentType, code: 415, reason: 'not text: a stored message carries text only' });
    }
    const stored = await this.deps.deferred!.store(s.callee, {
      sender: s.caller,
      fromHeader: s.privacy ? `"Anonymous" <${ANONYMOUS_URI}>` : `<${s.caller}>`,
      contentType,
      body: body.toString('utf8'),
      sentAt: new Date(),
      callId: s.callId,
      chargingVector: s.chargingVector,
      privacy: s.privacy,
      kind: 'message',
    });
    this.deps.metrics.count('ims_as_im_session_deferred_messages_total', { result: stored.result });
  }

  /**
   * A file sent in a deferred session that cannot be kept for delivery: the refusal goes into
   * the history of each party who keeps one (the caller's `sent`, the callee's `received`),
   * with the status that says why (413: too large for a stored message; 415: not text).
   */
  private async fileNotKept(s: LiveSession, r: DeferredSessionRefusal): Promise<void> {
    const name = s.file?.name !== undefined ? `"${s.file.name}"` : 'a file';
    const type = headerValueOnly(r.contentType) || s.file?.type || 'application/octet-stream';
    this.deps.metrics.count('ims_as_im_session_deferred_messages_total', { result: 'file-refused' });
    this.deps.log.info({ callId: s.callId, code: r.code, reason: r.reason }, 'file of a deferred session not kept');
    const at = new Date();
    const callerAsSeen = s.privacy ? ANONYMOUS_URI : s.caller;
    const text = `${name} (${type}) for later delivery was not kept: ${r.reason}`;
    for (const [owner, direction, peer] of [
      [s.caller, 'sent', s.callee],
      [s.callee, 'received', callerAsSeen],
    ] as const) {
      if (!this.deps.domain.canonical(owner)) continue;
      const policy = await this.deps.policies.of(owner);
      if (!keepsHistoryWith(policy, owner === s.caller ? s.callee : s.caller, this.participation.canonicalOf)) continue;
      await this.deps.history.archive(
        { owner, direction, peer, at, contentType: 'text/plain', body: text, callId: s.callId, status: r.code },
        policy.history.maxMessages,
      );
    }
  }

  /**
   * The AS ends a deferred session's dialog itself (its caller's MSRP side ended): a BYE from
   * the UAS side of the dialog, sent by Kamailio to the caller's Contact along the route set.
   * A 481 means the caller's own BYE crossed it: the same end.
   */
  private async byeDeferred(s: LiveSession): Promise<void> {
    const d = s.deferredDialog;
    const send = this.deps.deferred?.send;
    if (!d || !send) return;
    d.cseq++;
    let result: 'terminated' | 'gone' | 'failed';
    try {
      const outcome = await send({
        method: 'BYE',
        ruri: d.remoteTarget,
        nexthop: d.routeSet.length > 0 ? uriOf(d.routeSet[0]!) : d.remoteTarget,
        headers: [
          ['From', `${d.localParty};tag=${d.localTag}`],
          ['To', `${d.remoteParty};tag=${s.fromTag}`],
          ['Call-ID', s.callId],
          ['CSeq', `${d.cseq} BYE`],
          ...d.routeSet.map((r): [string, string] => ['Route', r]),
          ['Max-Forwards', '70'],
        ],
      });
      result = outcome.code < 300 ? 'terminated' : outcome.code === 481 ? 'gone' : 'failed';
      if (result === 'failed')
        this.deps.log.warn({ callId: s.callId, code: outcome.code }, 'the BYE of a deferred session was refused');
    } catch (err) {
      result = 'failed';
      this.deps.log.warn({ err, callId: s.callId }, 'the BYE of a deferred session was not sent');
    }
    this.deps.metrics.count('ims_as_im_session_dialog_ends_total', { result });
  }

  /** A BYE in the dialog of a deferred session (the caller ends it): the session ends here. */
  private async deferredBye(call: IscCall): Promise<IscDecision> {
    const s = this.byCallId.get(call.sip.headers.get('Call-ID') ?? '');
    if (!s?.deferred) return reply(481, 'Call/Transaction Does Not Exist');
    const stats = this.forget(s, 'BYE');
    await this.charge(s, {
      code: 200,
      outcome: 'ended',
      at: call.receivedAt,
      reason: 'BYE (deferred session)',
      cause: 'serviceDeliveryEndSuccessfully',
      stats,
    });
    return reply(200, 'OK');
  }

  /**
   * A re-INVITE or UPDATE with an MSRP offer inside a session (Kamailio hands those of a
   * tracked dialog to the AS like the initial offer): the offer goes on naming the AS's leg
   * towards the other party, and the answer, rewritten by Kamailio, names the AS's leg towards
   * the offerer, so the media stays anchored. A new path is taken once the answer comes.
   */
  private reoffer(call: IscCall): IscDecision {
    const { sip } = call;
    const callId = sip.headers.get('Call-ID') ?? '';
    const s = this.byCallId.get(callId);
    const sides = s?.sides;
    if (!s || !sides) return reply(481, 'Call/Transaction Does Not Exist');
    if (s.deferred)
      return reply(488, 'Not Acceptable Here', {
        warning: { agent: this.deps.domain.domain, text: 'a deferred session takes no new offer' },
      });
    const contentType = headerValueOnly(sip.headers.get('Content-Type') ?? '').toLowerCase();
    const media = contentType === 'application/sdp' ? parseMsrpMedia(sip.body)[0] : undefined;
    if (!media || media.path.length === 0)
      return reply(488, 'Not Acceptable Here', {
        warning: { agent: this.deps.domain.domain, text: 'the re-offer needs the MSRP media with a=path' },
      });
    const fromTag = /;\s*tag=([^;\s]+)/i.exec(sip.headers.get('From') ?? '')?.[1] ?? '';
    const by = fromTag === s.fromTag ? 'offerer' : 'answerer';
    s.reoffer = { by, path: media.path, ...(media.setup ? { setup: media.setup } : {}) };
    const towardsOther = by === 'offerer' ? sides.answererSide : sides.offererSide;
    const towardsOfferer = by === 'offerer' ? sides.offererSide : sides.answererSide;
    const other = authorityOf(towardsOther)!;
    const self = authorityOf(towardsOfferer)!;
    call.log.debug({ callId, by, session: s.key }, 'IM session re-offer anchored');
    return {
      action: 'continue',
      ctx: encodeContext('im', SESSION_CONTEXT_PREFIX + JSON.stringify({ callId, reoffer: true })),
      body: rewriteMsrpMedia(sip.body, { path: [towardsOther], ...other }),
      ctype: 'application/sdp',
      sessPath: towardsOfferer,
      sessHost: self.host,
      sessPort: String(self.port),
    };
  }

  /** Final answer to the INVITE (Kamailio's outcome event). */
  async onOutcome(payload: string, code: number, at: Date): Promise<void> {
    let callId: string;
    let reoffer = false;
    try {
      ({ callId, reoffer = false } = JSON.parse(payload) as { callId: string; reoffer?: boolean });
    } catch {
      this.deps.log.error({ payload }, 'unreadable session outcome context');
      return;
    }
    const s = this.byCallId.get(callId);
    if (!s) return;
    // a re-offer's answer changes nothing of the session when it fails (RFC 3261 14.1)
    if (reoffer) {
      s.reoffer = undefined;
      return;
    }
    if (code >= 200 && code < 300) {
      if (s.answeredAt) return; // a 2xx retransmitted or from another fork
      s.answeredAt = at;
      s.spanStart = at;
      this.deps.metrics.count('ims_as_im_sessions_total', { step: 'established' });
      this.chatting(s, +1);
      this.startInterimRecords(s);
      return;
    }
    this.forget(s, `INVITE answered ${code}`);
    await this.charge(s, { code, outcome: 'failed', at, reason: 'not answered' });
  }

  /** The callee's SDP (18x/2xx): where the anchor reaches the callee. */
  async onAnswer(ev: SessionAnswerEvent): Promise<void> {
    const s = this.byCallId.get(ev.callId);
    if (!s) {
      this.deps.log.warn({ callId: ev.callId }, 'answer of a session this instance does not hold');
      return;
    }
    const media = parseMsrpMedia(ev.sdp)[0];
    if (!media || media.path.length === 0) {
      this.deps.log.warn({ callId: ev.callId, code: ev.code }, 'callee answered without MSRP media');
      return;
    }
    if (s.reoffer) {
      this.reofferAnswered(s, s.reoffer, media.path, media.setup);
      return;
    }
    if (ev.toTag) s.toTag = ev.toTag;
    // an 18x and its 200 (or a retransmitted 200) carry the same answer: connect once
    const path = media.path.join(' ');
    if (s.calleePath === path) return;
    s.calleePath = path;
    this.deps.anchor.answered(s.key, { path: media.path, ...(media.setup ? { setup: media.setup } : {}) });
  }

  /** Both sides of a re-offer's exchange are known: a side whose path changed is bound again. */
  private reofferAnswered(
    s: LiveSession,
    offer: NonNullable<LiveSession['reoffer']>,
    answerPath: string[],
    answerSetup: string | undefined,
  ): void {
    const answerer = offer.by === 'offerer' ? 'answerer' : 'offerer';
    for (const [side, path, setup] of [
      [offer.by, offer.path, offer.setup],
      [answerer, answerPath, answerSetup],
    ] as const) {
      const joined = path.join(' ');
      if (side === 'offerer') s.callerPath = joined;
      else s.calleePath = joined;
      this.deps.anchor.repath(s.key, side, { path, ...(setup ? { setup } : {}) });
    }
  }

  /** The dialog ended in Kamailio (BYE from either side, or its lifetime). */
  async onEnd(ev: SessionEndEvent, at: Date): Promise<void> {
    const s = this.byCallId.get(ev.callId);
    if (!s) return;
    const stats = this.forget(s, ev.by);
    await this.charge(s, {
      code: 200,
      outcome: 'ended',
      at,
      reason: ev.by === 'bye' ? 'BYE' : 'dialog lifetime',
      cause: ev.by === 'bye' ? 'serviceDeliveryEndSuccessfully' : 'timeLimit',
      stats,
    });
  }

  /** The MSRP side ended (a connection dropped, idle): the SIP dialog ends both ways. */
  private async onAnchorEnded(key: string, reason: string): Promise<void> {
    const s = this.byKey.get(key);
    if (!s) return;
    const stats = this.forget(s, reason);
    const at = new Date();
    this.deps.log.info({ callId: s.callId, reason, toTag: s.toTag }, 'IM session media ended: ending its dialog');
    // a deferred session's dialog is the AS's own (Kamailio's dialog module does not track it)
    if (s.deferred) await this.byeDeferred(s);
    else if (s.toTag) await this.endDialog(s, s.toTag);
    // charged whatever became of the dialog: the session was forgotten above, so the BYE's own
    // session-end event finds nothing and this is the one record per role
    await this.charge(s, {
      code: 200,
      outcome: 'ended',
      at,
      reason: `media: ${reason}`,
      cause: 'unSuccessfulServiceDelivery',
      stats,
    });
  }

  /**
   * Has Kamailio end the dialog. A party's BYE may cross the request (the dialog is ending
   * already, Kamailio no longer holds it): that is the same end, counted, not an error.
   */
  private async endDialog(s: LiveSession, toTag: string): Promise<void> {
    let result: 'terminated' | 'gone' | 'failed';
    try {
      result = await this.deps.terminate({ callId: s.callId, fromTag: s.fromTag, toTag });
    } catch (err) {
      result = 'failed';
      this.deps.log.warn({ err, callId: s.callId }, 'Kamailio did not end the dialog of an IM session');
    }
    if (result === 'gone') this.deps.log.debug({ callId: s.callId }, 'IM session dialog already ending (BYE crossed)');
    this.deps.metrics.count('ims_as_im_session_dialog_ends_total', { result });
  }

  /** Text messages of a session go into the history of each party who keeps one. */
  private async onMessage(m: AnchorMessage): Promise<void> {
    const s = this.byKey.get(m.sessionKey);
    if (!s || m.isComposing) return;
    const tally = m.from === 'offerer' ? s.tally.fromOfferer : s.tally.fromAnswerer;
    tally.messages++;
    tally.bytes += m.bytes;
    if (m.text === undefined) return;
    // a caller who asked for privacy stays anonymous in the callee's history, both ways
    const callerAsSeen = s.privacy ? ANONYMOUS_URI : s.caller;
    const at = new Date();
    const entries =
      m.from === 'offerer'
        ? ([
            [s.caller, 'sent', s.callee],
            [s.callee, 'received', callerAsSeen],
          ] as const)
        : ([
            [s.callee, 'sent', callerAsSeen],
            [s.caller, 'received', s.callee],
          ] as const);
    for (const [owner, direction, peer] of entries) {
      if (!this.deps.domain.canonical(owner)) continue;
      const policy = await this.deps.policies.of(owner);
      // a conversation kept by name is matched on the other party's real identity
      if (!keepsHistoryWith(policy, owner === s.caller ? s.callee : s.caller, this.participation.canonicalOf)) continue;
      await this.deps.history.archive(
        { owner, direction, peer, at, contentType: m.contentType, body: m.text, callId: s.callId },
        policy.history.maxMessages,
      );
    }
  }

  /**
   * A partial record per role for a long session (TS 32.298: closed for timeLimit), chained by
   * recordSequenceNumber with the same ICID; it counts the messages and bytes of its own span.
   */
  private async interim(s: LiveSession): Promise<void> {
    if (!this.byKey.has(s.key)) return;
    s.interimRecords++;
    this.deps.metrics.count('ims_as_im_session_interim_records_total');
    await this.charge(s, {
      code: 200,
      outcome: 'interim',
      at: new Date(),
      reason: 'interim',
      cause: 'timeLimit',
      stats: s.tally,
      part: s.interimRecords,
    });
  }

  /**
   * A stop of the AS: the sessions' interim-record timers end (charging stops after this; the
   * sessions themselves end with the MSRP switch's stop).
   */
  stop(): void {
    for (const s of this.byKey.values()) if (s.interimTimer) clearInterval(s.interimTimer);
  }

  /** Drops the session here and in the anchor; its counts as they were at the end. */
  private forget(s: LiveSession, reason: string) {
    if (s.interimTimer) clearInterval(s.interimTimer);
    if (s.deferred) this.deps.deferred?.endpoint.close(s.key);
    const stats = s.tally;
    this.settle('anchor-close', Promise.resolve(this.deps.anchor.close(s.key, reason)));
    this.byCallId.delete(s.callId);
    this.byKey.delete(s.key);
    this.deps.metrics.count('ims_as_im_sessions_total', { step: 'ended' });
    // a deferred session never counted its parties in (nobody chats with the server's end point)
    if (s.answeredAt && !s.deferred) this.chatting(s, -1);
    return stats;
  }

  /** Counts an established session in or out for each party of ours; tells the presence source on 0 <-> 1. */
  private chatting(s: LiveSession, delta: 1 | -1): void {
    const activity = this.deps.activity;
    if (!activity) return;
    for (const user of new Set([s.caller, s.callee])) {
      if (!this.deps.domain.canonical(user)) continue;
      const before = this.inChat.get(user) ?? 0;
      const after = Math.max(0, before + delta);
      if (after === 0) this.inChat.delete(user);
      else this.inChat.set(user, after);
      if (before === 0 && after === 1)
        this.settle(
          'im-activity',
          activity(user, 'chat').then(() => undefined),
        );
      if (before === 1 && after === 0)
        this.settle(
          'im-activity',
          activity(user, 'none').then(() => undefined),
        );
    }
  }

  /** One record per role this AS played in the session. */
  private async charge(
    s: LiveSession,
    r: {
      code: number;
      outcome: string;
      at: Date;
      reason: string;
      cause?: CauseForRecordClosing;
      stats?: AnchorStats;
      /** The place of an interim record in the chain (the final one follows the last). */
      part?: number;
    },
  ): Promise<void> {
    const extra: Record<string, string | number> = { reason: r.reason };
    if (s.answeredAt) {
      extra.sessionStart = s.answeredAt.toISOString();
      if (r.part === undefined) extra.sessionEnd = r.at.toISOString();
      // a chained record covers its own span (since the 200 or the previous interim record)
      if (s.interimRecords > 0) {
        extra.spanStart = (s.spanStart ?? s.answeredAt).toISOString();
        extra.spanEnd = r.at.toISOString();
      }
    }
    if (r.stats) {
      const before = s.chargedTally;
      extra.messagesFromCaller = r.stats.fromOfferer.messages - (before?.fromOfferer.messages ?? 0);
      extra.bytesFromCaller = r.stats.fromOfferer.bytes - (before?.fromOfferer.bytes ?? 0);
      extra.messagesToCaller = r.stats.fromAnswerer.messages - (before?.fromAnswerer.messages ?? 0);
      extra.bytesToCaller = r.stats.fromAnswerer.bytes - (before?.fromAnswerer.bytes ?? 0);
      s.chargedTally = {
        fromOfferer: { ...r.stats.fromOfferer },
        fromAnswerer: { ...r.stats.fromAnswerer },
      };
    }
    // each record of a chain is delivered over its own span (TS 32.298 service delivery times)
    const deliveredFrom = s.interimRecords > 0 ? (s.spanStart ?? s.answeredAt) : s.answeredAt;
    s.spanStart = r.at;
    const part = r.part ?? (s.interimRecords > 0 ? s.interimRecords + 1 : undefined);
    await Promise.all(
      s.roles.map((role) =>
        this.deps.charging.record({
          service: 'im',
          role,
          sipMethod: 'INVITE',
          sessionId: s.callId,
          callingParty: s.caller,
          calledParty: s.callee,
          requestTime: s.invitedAt,
          responseTime: s.answeredAt ?? r.at,
          // a session is delivered from its answer to its end
          ...(deliveredFrom ? { deliveryStartTime: deliveredFrom, deliveryEndTime: r.at } : {}),
          ...(s.impi !== undefined ? { privateUserId: s.impi } : {}),
          ...(s.offer ? { messageBody: s.offer } : {}),
          statusCode: r.code,
          outcome: r.outcome,
          chargingVector: s.chargingVector,
          ...(r.cause ? { cause: r.cause } : {}),
          ...(part !== undefined ? { recordSequenceNumber: part } : {}),
          extra,
        }),
      ),
    );
  }

  private settle(reaction: string, work: Promise<void>): void {
    work.catch((err: unknown) => {
      this.deps.metrics.count('ims_as_reaction_failures_total', { reaction: `im:${reaction}` });
      this.deps.log.error({ err }, `${reaction} failed`);
    });
  }
}

/** Why a recipient's file-transfer policy refuses a file offer (the Warning text), or undefined. */
function fileRefusal(policy: ImPolicy['fileTransfer'], file: FileSelector): string | undefined {
  if (!policy.enabled) return 'the recipient takes no files';
  if (!acceptsFileType(policy.acceptTypes, file.type))
    return `the recipient takes no files of type ${file.type ?? '(none given)'}`;
  if (policy.maxSize !== undefined && (file.size === undefined || file.size > policy.maxSize))
    return `the recipient takes files up to ${policy.maxSize} bytes${file.size === undefined ? ', and this offer names no size' : ''}`;
  return undefined;
}

/** Host (without IPv6 brackets) and port of an MSRP URI the anchor handed out. */
function authorityOf(uri: string): { host: string; port: number } | undefined {
  const u = tryParseMsrpUri(uri);
  return u ? { host: u.host.replace(/^\[(.*)\]$/, '$1'), port: u.port ?? 2855 } : undefined;
}

/** A From or To header value without its tag parameter. */
function withoutTag(value: string): string {
  return value.replace(/;\s*tag=[^;\s]+/i, '').trim();
}

function uriOf(nameAddr: string): string {
  try {
    return parseNameAddr(nameAddr).uri;
  } catch {
    return nameAddr.trim();
  }
}
