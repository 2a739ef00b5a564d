/**
 * The conference focus of the IM controlling function (RFC 4353/4579, OMA SIMPLE IM;
 * docs/conference.md). Unlike one-to-one sessions, where Kamailio proxies the dialog and the
 * AS only rewrites SDP, the focus is the SIP UA of every participant's dialog: it answers the
 * INVITE to the conference URI itself (200 with its own SDP, Contact `;isfocus`), and takes
 * the BYE. Each participant's MSRP session ends at the AS's switch (an endpoint leg); what one
 * participant sends is fanned out to the others (fan-out.ts).
 *
 * Live state (dialogs, MSRP legs) is this instance's; the roster is told every change so that
 * conference NOTIFYs follow; a chat room and its last messages are store state.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Charging } from '../charging/charging.js';
import type { CauseForRecordClosing } from '../charging/record.js';
import type { IscCall } from '../isc/dispatcher.js';
import { chargingVectorOf, reply, type IscDecision } from '../isc/types.js';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { headerValueOnly, parseNameAddr } from '../sip/index.js';
import { wantsPrivacy } from '../sip/request-checks.js';
import type { LocalDomain } from '../users/local-domain.js';
import { parseMsrpMedia } from '../msrp/sdp.js';
import { tryParseMsrpUri } from '../msrp/uri.js';
import type { EndpointMessageEvent } from '../msrp/switch.js';
import { CPIM_CONTENT_TYPE } from '../im/formats/cpim.js';
import { parseRecipientListMessage, RecipientListError } from '../im/formats/recipient-list.js';
import type { ResolvedGroup } from '../im/group-messaging.js';
import type { ChatRooms } from './chat-rooms.js';
import { fanOut, type Seat } from './fan-out.js';
import { focusAnswerSdp, nicknameKey, nicknameProblem, offeredNickname } from './focus-sdp.js';
import type { JoinPolicy, RosterPort } from './roster-port.js';
import { referTarget, sipfrag } from './refer-to.js';
import { markDeclined, membersToDial } from './group-dial-out.js';
import { FOCUS_DIALOG_ALLOW, focusDialogDecision } from './focus-dialog-requests.js';
import type { UacOutcome, UacRequest } from '../isc/uac.js';
import type { Change } from '../cluster/changes.js';
import { relayOf, relayTargets, type RelayedMessage } from './relay.js';

/** A conference URI the focus serves: a provisioned chat room, or a pre-defined group of the XDMS. */
export interface ConferenceTarget {
  uri: string;
  /** The URI's user part (the focus's Contact user). */
  name: string;
  kind: 'room' | 'group' | 'adhoc';
  owner: string;
  subject?: string;
  maxParticipants?: number;
  private: boolean;
  /** A group's members (who may join). */
  members?: string[];
}

/** A live conference as the operator sees it. */
export interface LiveConferenceView {
  uri: string;
  kind: 'room' | 'group' | 'adhoc';
  owner: string;
  startedAt: Date;
  participants: string[];
}

/** What the focus needs of the MSRP switch (as/src/msrp/switch.ts). */
export interface FocusMedia {
  openEndpoint(key: string, peer: { path: string[]; setup?: string }): string;
  endpointAnswered(key: string, peer: { path: string[]; setup?: string }): void;
  repathEndpoint(key: string, peer: { path: string[]; setup?: string }): boolean;
  deliver(key: string, msg: { contentType: string; body: Buffer }): Promise<void>;
  closeEndpoint(key: string): void;
  setEndpointVetter(vet: (m: EndpointMessageEvent) => { code: number; comment: string } | undefined): void;
  on(event: 'endpoint-message', listener: (m: EndpointMessageEvent) => void): unknown;
  on(event: 'endpoint-lost', listener: (e: { key: string; reason: string }) => void): unknown;
}

interface Tally {
  messages: number;
  bytes: number;
}

/** One participant's dialog with the focus, on this instance. */
interface Participant extends Seat {
  conference: string;
  callId: string;
  remoteTag: string;
  localTag: string;
  contact?: string;
  invitedBy?: string;
  joiningMethod?: 'dialed-in' | 'dialed-out';
  /** The participant's From (name-addr without tag): the To of the focus's requests. */
  remoteParty: string;
  /** CSeq of the focus's own requests in this dialog. */
  localCseq: number;
  joinedAt: Date;
  chargingVector: string;
  sent: Tally;
  received: Tally;
}

/** A conference with participants on this instance. */
interface LiveConference {
  uri: string;
  kind: 'room' | 'group' | 'adhoc';
  owner: string;
  /** The conference URI's user part (the focus's Contact user). */
  name: string;
  startedAt: Date;
  chargingVector: string;
  participants: Map<string, Participant>;
  /** Everyone who took part, for the conference's record. */
  joined: number;
  messages: number;
  bytes: number;
}

export class ConferenceFocus {
  private readonly conferences = new Map<string, LiveConference>();
  private readonly byKey = new Map<string, Participant>();
  private readonly byCallId = new Map<string, Participant>();

  constructor(
    private readonly deps: {
      rooms: ChatRooms;
      groups: { resolve(uri: string): Promise<ResolvedGroup | undefined> };
      domain: LocalDomain;
      media: FocusMedia;
      charging: Charging;
      policy: JoinPolicy;
      roster?: RosterPort;
      /** Sends the focus's own in-dialog requests (BYE, NOTIFY) through Kamailio's tm (UacClient). */
      uac: { send(req: UacRequest): Promise<UacOutcome> };
      /** The focus's Contact host (the core's address: in-dialog requests come back through it). */
      contactHost: string;
      msrpHost: string;
      msrpPort: () => number;
      /** The conference factory's user part (sip:<it>@<domain>). */
      factoryUser: () => string;
      /** Most users one ad-hoc INVITE's recipient list may name. */
      maxInvitees: () => number;
      /** Messages of a room replayed to a joiner (read at each join: reloadable). */
      replayMessages: () => number;
      instance: string;
      nodeAddress: string;
      metrics: Metrics;
      log: Logger;
      /** Our users in a conference are in a chat (their IM activity, shared with one-to-one sessions). */
      inChat?: { enter(user: string): Promise<void>; leave(user: string): Promise<void> };
      /** Members a group's conference invites when it starts (its <invite-members>; group-dial-out.ts). */
      groupInvitees?: (groupUri: string) => Promise<string[]>;
      /**
       * Several instances: the change feed that carries messages to the legs other instances
       * hold (relay.ts), and the largest message it may carry (conference.maxMessageBytes).
       */
      relay?: { publish(change: Change): Promise<void>; maxMessageBytes: () => number };
    },
  ) {
    deps.metrics.describe('ims_as_conference_participants_total', 'conference participants by step: joined, left');
    deps.metrics.describe(
      'ims_as_conference_relay_refused_total',
      'conference messages too large for the change feed: not relayed to other instances',
    );
    deps.media.on('endpoint-message', (m) => this.settle('conference-message', this.onMessage(m)));
    // a message that cannot be fanned out is refused on MSRP (400 unreadable, 403 To naming nobody)
    deps.media.setEndpointVetter((m) => {
      const sender = this.byKey.get(m.key);
      const conference = sender ? this.conferences.get(sender.conference) : undefined;
      if (!sender || !conference) return undefined;
      const out = fanOut(conference.uri, sender, this.seatsOf(conference), m.contentType, m.body, new Date());
      return 'refuse' in out ? { code: out.code, comment: out.refuse } : undefined;
    });
    deps.media.on('endpoint-lost', (e) => this.settle('conference-media-lost', this.onMediaLost(e.key, e.reason)));
  }

  /** Participants connected to this instance's focus. */
  get size(): number {
    return this.byKey.size;
  }

  /** The conference a Request-URI names, if any: a chat room, else a pre-defined group. */
  async conferenceOf(ruri: string): Promise<ConferenceTarget | undefined> {
    const m = /^sips?:([^@;?]+)@([^;?>]+)/i.exec(ruri);
    if (!m || !this.deps.domain.isLocalHost(m[2]!.replace(/:\d+$/, ''))) return undefined;
    const name = decodeURIComponent(m[1]!).toLowerCase();
    const room = await this.deps.rooms.get(this.deps.rooms.uriOf(name));
    if (room)
      return {
        uri: room._id,
        name: room.name,
        kind: 'room',
        owner: room.owner,
        private: room.private,
        ...(room.subject !== undefined ? { subject: room.subject } : {}),
        ...(room.maxParticipants !== undefined ? { maxParticipants: room.maxParticipants } : {}),
      };
    const group = await this.deps.groups.resolve(`sip:${name}@${this.deps.domain.domain}`);
    if (group)
      return { uri: group.uri, name, kind: 'group', owner: group.owner, private: true, members: group.members };
    return undefined;
  }

  /** An INVITE to a room: the focus answers it itself. */
  /** Whether a Request-URI is the conference factory (ad-hoc conferences, RFC 5366). */
  isFactory(ruri: string): boolean {
    const m = /^sips?:([^@;?]+)@([^;?>]+)/i.exec(ruri);
    return (
      !!m &&
      this.deps.domain.isLocalHost(m[2]!.replace(/:\d+$/, '')) &&
      decodeURIComponent(m[1]!).toLowerCase() === this.deps.factoryUser().toLowerCase()
    );
  }

  /**
   * An INVITE to the conference factory: a new ad-hoc conference, its creator the first
   * participant and its owner; with a recipient list (RFC 5366: multipart/mixed with an
   * application/resource-lists+xml part, `Require: recipient-list-invite`), the focus then
   * invites every listed user.
   */
  async createAdhoc(call: IscCall): Promise<IscDecision> {
    const { sip } = call;
    const contentType = sip.headers.get('Content-Type') ?? '';
    let offer = sip.body;
    let invitees: string[] = [];
    if (headerValueOnly(contentType).toLowerCase() === 'multipart/mixed') {
      let parsed;
      try {
        parsed = parseRecipientListMessage(sip.body, contentType, { maxRecipients: this.deps.maxInvitees() });
      } catch (err) {
        if (err instanceof RecipientListError)
          return reply(err.code, REASON_PHRASES[err.code] ?? 'Bad Request', { warning: err.message });
        throw err;
      }
      if (headerValueOnly(parsed.message.contentType).toLowerCase() !== 'application/sdp')
        return reply(415, 'Unsupported Media Type', { headers: [['Accept', 'application/sdp, multipart/mixed']] });
      offer = parsed.message.body;
      invitees = parsed.recipients.map((r) => this.deps.domain.canonical(r.uri) ?? r.uri);
      const required = sip.headers.getAll('Require').flatMap((v) => v.split(',').map((t) => t.trim().toLowerCase()));
      if (!required.includes('recipient-list-invite'))
        return reply(400, 'Bad Request', {
          warning: 'a recipient list needs Require: recipient-list-invite (RFC 5366)',
        });
    }
    const creator = call.req.asserted ?? uriOf(sip.headers.get('From') ?? '');
    const name = `adhoc-${randomBytes(6).toString('hex')}`;
    const target: ConferenceTarget = {
      uri: `sip:${name}@${this.deps.domain.domain}`,
      name,
      kind: 'adhoc',
      owner: creator,
      private: false,
    };
    const decision = await this.join(call, target, offer);
    if (decision.action === 'reply' && decision.code === 200 && invitees.length > 0) {
      const conference = this.conferences.get(target.uri)!;
      const others = [...new Set(invitees)].filter((u) => u.toLowerCase() !== creator.toLowerCase());
      this.settle('adhoc-invite', this.dialOutAll(conference, others, creator));
    }
    return decision;
  }

  async join(call: IscCall, room: ConferenceTarget, offerBody?: string): Promise<IscDecision> {
    const { req, sip } = call;
    const from = sip.headers.get('From') ?? '';
    const user = req.asserted ?? uriOf(from);
    const anonymous = wantsPrivacy(sip);
    const callId = sip.headers.get('Call-ID') ?? '';
    const remoteTag = /;\s*tag=([^;\s]+)/i.exec(from)?.[1] ?? '';
    if (this.byCallId.has(callId)) return reply(491, 'Request Pending');
    const contentType = headerValueOnly(sip.headers.get('Content-Type') ?? '').toLowerCase();
    const media =
      offerBody !== undefined
        ? parseMsrpMedia(offerBody)[0]
        : contentType === 'application/sdp'
          ? parseMsrpMedia(sip.body)[0]
          : undefined;
    if (!media || media.path.length === 0)
      return reply(488, 'Not Acceptable Here', {
        warning: {
          agent: this.deps.domain.domain,
          text: 'the offer needs an m=message TCP/MSRP media line with a=path',
        },
      });
    const live = this.conferences.get(room.uri);
    if (!live) await this.rosterChanged(room.uri, true);
    const present = (live?.participants.size ?? 0) + (this.remoteSeats.get(room.uri)?.length ?? 0);
    const verdict = await this.deps.policy.mayJoin(
      {
        uri: room.uri,
        kind: room.kind,
        owner: room.owner,
        private: room.private,
        ...(room.members ? { members: room.members } : {}),
        ...(room.maxParticipants !== undefined ? { maxParticipants: room.maxParticipants } : {}),
        present,
      },
      user,
      { anonymous },
    );
    if ('refuse' in verdict)
      return reply(verdict.refuse.code, REASON_PHRASES[verdict.refuse.code] ?? 'Forbidden', {
        warning: { agent: this.deps.domain.domain, text: verdict.refuse.reason },
      });

    const nickname = offeredNickname(offerBody ?? sip.body);
    if (nickname !== undefined) {
      const problem = nicknameProblem(nickname);
      if (problem)
        return reply(488, 'Not Acceptable Here', { warning: { agent: this.deps.domain.domain, text: problem } });
      const taken = [...(live?.participants.values() ?? []), ...(this.remoteSeats.get(room.uri) ?? [])].some(
        (p) => p.nickname !== undefined && nicknameKey(p.nickname) === nicknameKey(nickname),
      );
      if (taken)
        return reply(403, 'Nickname Taken', {
          warning: { agent: this.deps.domain.domain, text: `the nickname "${nickname}" is taken in this conference` },
        });
    }

    const key = randomBytes(10).toString('hex');
    const localUri = this.deps.media.openEndpoint(key, {
      path: media.path,
      ...(media.setup ? { setup: media.setup } : {}),
    });
    const conference = live ?? this.startConference(room, call);
    // the roster knows the conference before its first participant (conference NOTIFYs follow it)
    if (!live)
      await this.deps.roster?.open({
        _id: room.uri,
        kind: room.kind,
        owner: room.owner,
        focusInstance: this.deps.instance,
        ...(room.subject !== undefined ? { subject: room.subject } : {}),
        ...(room.maxParticipants !== undefined ? { maxParticipants: room.maxParticipants } : {}),
      });
    const p: Participant = {
      key,
      uri: user,
      anonymous,
      conference: room.uri,
      callId,
      remoteTag,
      localTag: req.toTag,
      remoteParty: from.replace(/;\s*tag=[^;\s]+/i, '').trim(),
      localCseq: 0,
      joinedAt: call.receivedAt,
      chargingVector:
        chargingVectorOf(sip.headers.get('P-Charging-Vector'), req) ??
        `icid-value=${randomUUID()};icid-generated-at=${this.deps.nodeAddress}`,
      sent: { messages: 0, bytes: 0 },
      received: { messages: 0, bytes: 0 },
      ...(nickname !== undefined ? { nickname } : {}),
    };
    const contact = sip.headers.get('Contact');
    conference.owner = room.owner;
    conference.name = room.name;
    if (contact) p.contact = uriOf(contact);
    this.seat(conference, p);
    await this.tellRoster(p, 'connected');

    // the room's last messages wait in the leg until the joiner's MSRP connection is there
    const replay = room.kind === 'room' ? await this.deps.rooms.lastMessages(room.uri, this.deps.replayMessages()) : [];
    for (const old of replay)
      await this.deps.media.deliver(key, { contentType: old.contentType, body: Buffer.from(old.body) });

    const uri = tryParseMsrpUri(localUri);
    const sdp = focusAnswerSdp({
      host: (uri?.host ?? this.deps.msrpHost).replace(/^\[(.*)\]$/, '$1'),
      port: uri?.port ?? this.deps.msrpPort(),
      path: localUri,
      proto: media.proto,
      setup: media.setup === 'passive' ? 'active' : 'passive',
      version: Math.floor(Date.now() / 1000),
      ...(room.subject !== undefined ? { subject: room.subject } : {}),
    });
    call.log.info({ room: room.uri, user, key, nickname }, 'conference: participant joined');
    // the first INVITE to a group starts its conference: the group may ask to invite its members
    if (!live && room.kind === 'group' && this.deps.groupInvitees) {
      const invitees = this.deps.groupInvitees;
      this.settle(
        'group-invite',
        invitees(room.uri).then((members) =>
          this.dialOutAll(
            conference,
            membersToDial(
              members,
              user,
              [...conference.participants.values()].map((x) => x.uri),
            ),
            user,
          ),
        ),
      );
    }
    return reply(200, 'OK', {
      headers: [
        ['Contact', `<sip:${room.name}@${this.deps.contactHost}>;isfocus`],
        ['Allow', FOCUS_DIALOG_ALLOW],
      ],
      body: sdp,
      ctype: 'application/sdp',
    });
  }

  /** A BYE in a participant's dialog with the focus: it leaves. */
  async bye(call: IscCall): Promise<IscDecision> {
    const callId = call.sip.headers.get('Call-ID') ?? '';
    const p = this.byCallId.get(callId);
    if (!p) return reply(481, 'Call/Transaction Does Not Exist');
    await this.leave(p, {
      how: 'departed',
      reason: 'BYE',
      cause: 'serviceDeliveryEndSuccessfully',
      at: call.receivedAt,
    });
    return reply(200, 'OK');
  }

  /**
   * A REFER in a participant's dialog (RFC 4579): `method=BYE` from the conference's owner
   * removes the participant it names, or ends the conference when it names the conference
   * itself; the focus BYEs them through Kamailio and reports the outcome to the referrer in a
   * NOTIFY (message/sipfrag, RFC 3515). Adding a user (dial-out) is not built: 501.
   */
  async refer(call: IscCall): Promise<IscDecision> {
    const callId = call.sip.headers.get('Call-ID') ?? '';
    const referrer = this.byCallId.get(callId);
    if (!referrer) return reply(481, 'Call/Transaction Does Not Exist');
    const referTo = call.sip.headers.getAll('Refer-To');
    if (referTo.length !== 1) return reply(400, 'Bad Request', { warning: 'a REFER needs exactly one Refer-To' });
    const target = referTarget(referTo[0]!);
    if (!target) return reply(400, 'Bad Request', { warning: 'Refer-To is not a SIP URI' });
    const conference = this.conferences.get(referrer.conference);
    if (!conference) return reply(481, 'Call/Transaction Does Not Exist');
    if (target.method === 'INVITE') {
      // any participant may bring someone in (RFC 4579 5.5): the focus dials out
      this.settle(
        'refer-invite',
        this.carryOutInvite(referrer, conference, target.uri, call.sip.headers.get('CSeq') ?? ''),
      );
      return reply(202, 'Accepted', {
        headers: [['Contact', `<sip:${conference.name}@${this.deps.contactHost}>;isfocus`]],
      });
    }
    if (target.method !== 'BYE')
      return reply(501, 'Not Implemented', { warning: `the focus does not refer with ${target.method}` });
    if (referrer.uri.toLowerCase() !== conference.owner.toLowerCase())
      return reply(403, 'Forbidden', { warning: "only the conference's owner removes participants" });
    const ending = target.uri.toLowerCase() === conference.uri.toLowerCase();
    const removed = ending
      ? [...conference.participants.values()].filter((p) => p !== referrer)
      : [...conference.participants.values()].filter((p) => p.uri.toLowerCase() === target.uri.toLowerCase());
    if (!ending && removed.length === 0)
      return reply(404, 'Not Found', { warning: `${target.uri} is not in the conference` });
    // answered now; the BYEs and the NOTIFY follow
    this.settle('refer-bye', this.carryOutRemoval(referrer, removed, ending, call.sip.headers.get('CSeq') ?? ''));
    return reply(202, 'Accepted', {
      headers: [['Contact', `<sip:${conference.name}@${this.deps.contactHost}>;isfocus`]],
    });
  }

  private async carryOutRemoval(
    referrer: Participant,
    removed: Participant[],
    ending: boolean,
    referCseq: string,
  ): Promise<void> {
    // let the 202 leave first: the NOTIFY must not overtake it
    await new Promise((r) => setTimeout(r, 100));
    const outcomes = await Promise.all(removed.map((p) => this.boot(p)));
    const failed = outcomes.find((o) => o.code >= 300);
    const final = failed ?? { code: 200, reason: 'OK' };
    await this.referOutcome(referrer, referCseq, final);
    if (ending) await this.boot(referrer);
  }

  private async carryOutInvite(
    referrer: Participant,
    conference: LiveConference,
    user: string,
    referCseq: string,
  ): Promise<void> {
    const outcome = await this.dialOut(conference, user, referrer.uri);
    if (this.byKey.get(referrer.key) !== referrer) return;
    await this.referOutcome(referrer, referCseq, outcome);
  }

  /** The one NOTIFY of a REFER's implicit subscription (RFC 3515): how the request it asked for ended, as sipfrag. */
  private async referOutcome(
    referrer: Participant,
    referCseq: string,
    outcome: { code: number; reason: string },
  ): Promise<void> {
    const referId = /^\s*(\d+)/.exec(referCseq)?.[1];
    await this.sendInDialog(
      referrer,
      'NOTIFY',
      [
        ['Event', referId ? `refer;id=${referId}` : 'refer'],
        ['Subscription-State', 'terminated;reason=noresource'],
        ['Content-Type', 'message/sipfrag'],
      ],
      sipfrag(outcome.code, outcome.reason),
    );
  }

  /** The focus dials out to each of `users` once the 200 that started it has left (ad-hoc, groups). */
  private async dialOutAll(conference: LiveConference, users: string[], invitedBy: string): Promise<void> {
    if (users.length === 0) return;
    await new Promise((r) => setTimeout(r, 100));
    await Promise.all(users.map((u) => this.dialOut(conference, u, invitedBy)));
  }

  /**
   * The focus invites `user` into the conference: an INVITE of its own through Kamailio (routed
   * to the user's contacts like any request of ours); Kamailio's tm acknowledges the 2xx of a
   * locally sent INVITE, and reports the 2xx's To-tag, Contact and SDP (uac-reply).
   */
  private async dialOut(conference: LiveConference, user: string, invitedBy: string): Promise<UacOutcome> {
    const key = randomBytes(10).toString('hex');
    const localUri = this.deps.media.openEndpoint(key, { path: [] });
    const uri = tryParseMsrpUri(localUri);
    const callId = `focus-${randomUUID()}@${this.deps.domain.domain}`;
    const localTag = randomBytes(8).toString('hex');
    const sdp = focusAnswerSdp({
      host: (uri?.host ?? this.deps.msrpHost).replace(/^\[(.*)\]$/, '$1'),
      port: uri?.port ?? this.deps.msrpPort(),
      path: localUri,
      proto: 'TCP/MSRP',
      setup: 'actpass',
      version: Math.floor(Date.now() / 1000),
    });
    const outcome = await this.deps.uac.send({
      method: 'INVITE',
      ruri: user,
      viaCore: true,
      headers: [
        ['From', `<${conference.uri}>;tag=${localTag}`],
        ['To', `<${user}>`],
        ['Call-ID', callId],
        ['CSeq', '1 INVITE'],
        ['Contact', `<sip:${conference.name}@${this.deps.contactHost}>;isfocus`],
        ['Referred-By', `<${invitedBy}>`],
        ['Max-Forwards', '70'],
        ['Content-Type', 'application/sdp'],
      ],
      body: sdp,
    });
    const media = outcome.sdp ? parseMsrpMedia(outcome.sdp)[0] : undefined;
    const live = this.conferences.get(conference.uri) === conference;
    if (outcome.code >= 300 || !media || media.path.length === 0 || !outcome.dialog || !live) {
      this.deps.media.closeEndpoint(key);
      // who was asked and did not come stays in the roster, disconnected (the conference goes on)
      if (live && outcome.code >= 300)
        await markDeclined(this.deps.roster, conference.uri, { user, invitedBy, code: outcome.code, at: new Date() });
      if (outcome.code < 300) {
        this.deps.log.warn({ user, callId }, 'conference: dial-out answered without usable MSRP media');
        return { ...outcome, code: 488, reason: 'Not Acceptable Here' };
      }
      return outcome;
    }
    const p: Participant = {
      key,
      uri: user,
      anonymous: false,
      conference: conference.uri,
      callId,
      remoteTag: outcome.dialog.remoteTag,
      localTag,
      remoteParty: `<${user}>`,
      localCseq: 1,
      joinedAt: outcome.at,
      chargingVector: `icid-value=${randomUUID()};icid-generated-at=${this.deps.nodeAddress}`,
      sent: { messages: 0, bytes: 0 },
      received: { messages: 0, bytes: 0 },
      invitedBy,
      joiningMethod: 'dialed-out',
    };
    p.contact = outcome.dialog.remoteTarget;
    this.seat(conference, p);
    this.deps.media.endpointAnswered(key, { path: media.path, ...(media.setup ? { setup: media.setup } : {}) });
    await this.tellRoster(p, 'connected');
    this.deps.log.info({ conference: conference.uri, user, key }, 'conference: participant dialled out');
    return outcome;
  }

  /** The focus ends a participant's dialog (BYE through Kamailio) and records its departure as booted. */
  private async boot(p: Participant, reason = 'removed by the owner'): Promise<UacOutcome> {
    await this.leave(p, {
      how: 'booted',
      reason,
      cause: 'serviceDeliveryEndSuccessfully',
      at: new Date(),
    });
    return this.sendInDialog(p, 'BYE', []);
  }

  /** A request of the focus in a participant's dialog, straight to its Contact (no route set: the focus answered itself). */
  private async sendInDialog(
    p: Participant,
    method: string,
    extra: Array<[string, string]>,
    body?: string,
  ): Promise<UacOutcome> {
    p.localCseq++;
    const target = p.contact ?? p.uri;
    const name = this.conferences.get(p.conference)?.name ?? /^sips?:([^@]+)@/i.exec(p.conference)?.[1] ?? 'focus';
    return this.deps.uac.send({
      method,
      ruri: target,
      nexthop: target,
      headers: [
        ['From', `<${p.conference}>;tag=${p.localTag}`],
        ['To', `${p.remoteParty};tag=${p.remoteTag}`],
        ['Call-ID', p.callId],
        ['CSeq', `${p.localCseq} ${method}`],
        ['Contact', `<sip:${name}@${this.deps.contactHost}>;isfocus`],
        ['Max-Forwards', '70'],
        ...extra,
      ],
      ...(body !== undefined ? { body } : {}),
    });
  }

  /** The conferences with participants on this instance (conference-admin.ts lists them). */
  liveConferences(): LiveConferenceView[] {
    return [...this.conferences.values()].map((c) => ({
      uri: c.uri,
      kind: c.kind,
      owner: c.owner,
      startedAt: c.startedAt,
      participants: [...c.participants.values()].map((p) => p.uri),
    }));
  }

  /**
   * Ends a conference for everyone (the operator's command, conference-admin.ts): each
   * participant leaves as booted and gets the focus's BYE; the last departure ends the
   * roster (final NOTIFY) and writes the conference's record, once, as any ending does.
   * Undefined when no conference of that URI is live here.
   */
  async endConference(uri: string, reason: string): Promise<{ byes: UacOutcome[] } | undefined> {
    const c = this.conferences.get(uri);
    if (!c) return undefined;
    const byes = await Promise.all([...c.participants.values()].map((p) => this.boot(p, reason)));
    return { byes };
  }

  /**
   * A request in a participant's dialog other than BYE and REFER (re-INVITE, UPDATE, INFO,
   * OPTIONS, any other): answered as focus-dialog-requests.ts decides; a re-offer with a new
   * a=path re-binds the participant's MSRP leg.
   */
  async inDialog(call: IscCall): Promise<IscDecision> {
    const p = this.byCallId.get(call.sip.headers.get('Call-ID') ?? '');
    if (!p) return reply(481, 'Call/Transaction Does Not Exist');
    const d = focusDialogDecision({
      method: call.req.method,
      contentType: headerValueOnly(call.sip.headers.get('Content-Type') ?? '').toLowerCase(),
      body: call.sip.body,
      ...(call.sip.headers.get('Info-Package') !== undefined
        ? { infoPackage: call.sip.headers.get('Info-Package')! }
        : {}),
    });
    if (d.kind === 'reply')
      return reply(d.code, d.reason, {
        ...(d.headers ? { headers: d.headers } : {}),
        ...(d.warning ? { warning: { agent: this.deps.domain.domain, text: d.warning } } : {}),
      });
    if (d.kind === 'ok') return reply(200, 'OK');
    if (
      d.media &&
      this.deps.media.repathEndpoint(p.key, { path: d.media.path, ...(d.media.setup ? { setup: d.media.setup } : {}) })
    )
      call.log.info(
        { conference: p.conference, key: p.key, path: d.media.path },
        'conference: participant moved its MSRP path',
      );
    const name = this.conferences.get(p.conference)?.name ?? 'focus';
    const localUri = this.deps.media.openEndpoint(p.key, { path: d.media?.path ?? [] });
    const uri = tryParseMsrpUri(localUri);
    const sdp = focusAnswerSdp({
      host: (uri?.host ?? this.deps.msrpHost).replace(/^\[(.*)\]$/, '$1'),
      port: uri?.port ?? this.deps.msrpPort(),
      path: localUri,
      proto: d.media?.proto ?? 'TCP/MSRP',
      setup: !d.media ? 'actpass' : d.media.setup === 'passive' ? 'active' : 'passive',
      version: Math.floor(Date.now() / 1000),
    });
    return reply(200, 'OK', {
      headers: [
        ['Contact', `<sip:${name}@${this.deps.contactHost}>;isfocus`],
        ['Allow', FOCUS_DIALOG_ALLOW],
      ],
      body: sdp,
      ctype: 'application/sdp',
    });
  }

  /** Whether an in-dialog request belongs to a participant's dialog with the focus here. */
  holdsDialog(callId: string): boolean {
    return this.byCallId.has(callId);
  }

  private startConference(room: ConferenceTarget, call: IscCall): LiveConference {
    const c: LiveConference = {
      uri: room.uri,
      kind: room.kind,
      owner: room.owner,
      name: room.name,
      startedAt: call.receivedAt,
      chargingVector: `icid-value=${randomUUID()};icid-generated-at=${this.deps.nodeAddress}`,
      participants: new Map(),
      joined: 0,
      messages: 0,
      bytes: 0,
    };
    this.conferences.set(room.uri, c);
    return c;
  }

  private async onMessage(m: EndpointMessageEvent): Promise<void> {
    const sender = this.byKey.get(m.key);
    if (!sender) return;
    const conference = this.conferences.get(sender.conference);
    if (!conference) return;
    const now = new Date();
    // its place in the room's kept messages, taken on arrival (see ChatRooms.sequenceOf)
    const seq = this.deps.rooms.sequenceOf(now);
    const out = fanOut(conference.uri, sender, this.seatsOf(conference), m.contentType, m.body, now);
    if ('refuse' in out) {
      this.deps.log.info(
        { conference: conference.uri, key: m.key, why: out.refuse },
        'conference: message not relayed',
      );
      return;
    }
    // the other instances' legs: published before any await, so the feed keeps the sender's order
    const relayed = this.relayToOthers(conference, sender, out, now);
    const body = Buffer.from(out.body);
    if (!out.isComposing) {
      sender.sent.messages++;
      sender.sent.bytes += m.body.length;
      conference.messages++;
      conference.bytes += m.body.length;
    }
    await this.deliverHere(out.to, body, out.isComposing);
    await relayed;
    // said to the room (not private, not a typing indication): kept for the next joiners
    if (conference.kind === 'room' && !out.private && !out.isComposing)
      await this.deps.rooms.remember(
        conference.uri,
        { contentType: CPIM_CONTENT_TYPE, body: out.body, at: now },
        this.deps.replayMessages(),
        seq,
      );
  }

  /** Delivers one CPIM to the legs this instance holds among `keys`, tallying what each received. */
  private async deliverHere(keys: readonly string[], body: Buffer, isComposing: boolean): Promise<void> {
    await Promise.all(
      keys.map(async (key) => {
        const r = this.byKey.get(key);
        if (!r) return;
        if (!isComposing) {
          r.received.messages++;
          r.received.bytes += body.length;
        }
        await this.deps.media.deliver(key, { contentType: CPIM_CONTENT_TYPE, body });
      }),
    );
  }

  /** Everyone in the conference as the fan-out sees them: the legs here and those other instances hold. */
  private seatsOf(conference: LiveConference): Seat[] {
    return [...conference.participants.values(), ...(this.remoteSeats.get(conference.uri) ?? [])];
  }

  /** Participants whose legs other instances hold, by conference (from the roster; refreshed on its changes). */
  private readonly remoteSeats = new Map<string, Seat[]>();

  /**
   * The roster of a conference changed (a 'conference' change, from any instance): refreshes
   * who other instances hold, for the conferences this one has legs in (or is about to).
   */
  async rosterChanged(uri: string, joining = false): Promise<void> {
    const get = this.deps.roster?.get;
    if (!get || !this.deps.relay || (!joining && !this.conferences.has(uri))) return;
    const c = await get.call(this.deps.roster, uri);
    const seats = (c && !c.endedAt ? c.participants : [])
      .filter((p) => p.status === 'connected' && p.instance !== undefined && p.instance !== this.deps.instance)
      .map((p) => ({
        key: p.leg ?? `${p.instance}:${p.uri}`,
        uri: p.uri,
        anonymous: p.anonymous,
        ...(p.nickname !== undefined ? { nickname: p.nickname } : {}),
      }));
    if (seats.length > 0 && (joining || this.conferences.has(uri))) this.remoteSeats.set(uri, seats);
    else this.remoteSeats.delete(uri);
  }

  /** Hands a message to the other instances (the change feed); alone, the feed is in memory and this costs nothing. */
  private relayToOthers(
    conference: LiveConference,
    sender: Participant,
    out: Exclude<ReturnType<typeof fanOut>, { refuse: string }>,
    at: Date,
  ): Promise<void> {
    const relay = this.deps.relay;
    if (!relay) return Promise.resolve();
    const remoteKeys = new Set((this.remoteSeats.get(conference.uri) ?? []).map((s) => s.key));
    const msg = relayOf(
      out,
      { conference: conference.uri, origin: this.deps.instance, sender: sender.key, at, remoteKeys },
      relay.maxMessageBytes(),
    );
    if (!msg) return Promise.resolve();
    if ('tooLarge' in msg) {
      this.deps.metrics.count('ims_as_conference_relay_refused_total');
      this.deps.log.warn({ conference: conference.uri, bytes: msg.tooLarge }, 'conference: message too large to relay');
      return Promise.resolve();
    }
    // (never rejects: a feed that cannot take it must not keep the message from the legs here or the replay)
    return relay.publish(msg).catch((err: unknown) => {
      this.deps.metrics.count('ims_as_reaction_failures_total', { reaction: 'conference:relay' });
      this.deps.log.error({ err, conference: conference.uri }, 'conference: message not relayed to other instances');
    });
  }

  /** A message said on another instance: delivered to the legs this one holds in that conference. */
  async messageRelayed(msg: RelayedMessage): Promise<void> {
    if (msg.origin === this.deps.instance) return; // delivered when it was taken
    const conference = this.conferences.get(msg.uri);
    if (!conference) return;
    const keys = relayTargets(
      msg,
      [...conference.participants.values()].map((p) => ({ key: p.key, joinedAt: p.joinedAt })),
    );
    await this.deliverHere(keys, Buffer.from(msg.body), msg.isComposing);
  }

  private async onMediaLost(key: string, reason: string): Promise<void> {
    const p = this.byKey.get(key);
    if (!p) return;
    // the dialog stays until the participant's BYE; its media is gone, so it has left
    await this.leave(p, {
      how: 'failed',
      reason: `media: ${reason}`,
      cause: 'unSuccessfulServiceDelivery',
      at: new Date(),
    });
  }

  private async leave(
    p: Participant,
    end: { how: 'departed' | 'booted' | 'failed'; reason: string; cause: CauseForRecordClosing; at: Date },
  ): Promise<void> {
    if (this.byKey.get(p.key) !== p) return;
    this.byKey.delete(p.key);
    this.byCallId.delete(p.callId);
    this.deps.media.closeEndpoint(p.key);
    const conference = this.conferences.get(p.conference);
    conference?.participants.delete(p.key);
    // policy: a conference ends with its last participant (a room stays provisioned). Decided
    // before any await: participants leaving together must not each see it empty and end it
    const ended = conference !== undefined && conference.participants.size === 0;
    if (ended) this.conferences.delete(conference.uri);
    this.chatting(p, 'leave');
    this.deps.metrics.count('ims_as_conference_participants_total', { step: 'left' });
    await this.tellRoster(p, 'disconnected', end.how, end.at);
    await this.chargeParticipant(p, end);
    if (ended) {
      this.remoteSeats.delete(conference.uri);
      // with several instances the conference ends when nobody is left on any of them (once)
      const roster = this.deps.roster;
      const endedHere = roster?.endIfEmpty
        ? await roster.endIfEmpty(conference.uri)
        : (await roster?.end(conference.uri), true);
      if (endedHere) await this.chargeConference(conference, end.at);
    }
  }

  /** A participant joined (dialled in or out): known by its key and its dialog from now on. */
  private seat(conference: LiveConference, p: Participant): void {
    conference.participants.set(p.key, p);
    conference.joined++;
    this.chatting(p, 'enter');
    this.byKey.set(p.key, p);
    this.byCallId.set(p.callId, p);
    this.deps.metrics.count('ims_as_conference_participants_total', { step: 'joined' });
  }

  /** A participant of ours entering or leaving counts for their IM activity (a presence source). */
  private chatting(p: Participant, step: 'enter' | 'leave'): void {
    const inChat = this.deps.inChat;
    if (!inChat || !this.deps.domain.canonical(p.uri)) return;
    this.settle('im-activity', step === 'enter' ? inChat.enter(p.uri) : inChat.leave(p.uri));
  }

  private async tellRoster(
    p: Participant,
    status: 'connected' | 'disconnected',
    how?: 'departed' | 'booted' | 'failed',
    at?: Date,
  ): Promise<void> {
    if (!this.deps.roster) return;
    await this.deps.roster.upsertParticipant(p.conference, {
      uri: p.uri,
      anonymous: p.anonymous,
      status,
      joiningMethod: p.joiningMethod ?? 'dialed-in',
      ...(p.invitedBy !== undefined ? { invitedBy: p.invitedBy } : {}),
      dialog: { callId: p.callId, remoteTag: p.remoteTag, localTag: p.localTag },
      joinedAt: p.joinedAt,
      ...(p.nickname !== undefined ? { nickname: p.nickname } : {}),
      ...(p.contact !== undefined ? { endpoint: p.contact } : {}),
      instance: this.deps.instance,
      leg: p.key,
      ...(how ? { disconnectionMethod: how } : {}),
      ...(at ? { leftAt: at } : {}),
    });
  }

  /** One record per participant per conference session: the focus is the terminating side of its dialog. */
  private async chargeParticipant(
    p: Participant,
    end: { reason: string; cause: CauseForRecordClosing; at: Date },
  ): Promise<void> {
    await this.deps.charging.record({
      service: 'im',
      role: 'terminating',
      sipMethod: 'INVITE',
      sessionId: p.callId,
      callingParty: p.uri,
      calledParty: p.conference,
      requestTime: p.joinedAt,
      responseTime: p.joinedAt,
      statusCode: 200,
      outcome: 'ended',
      chargingVector: p.chargingVector,
      cause: end.cause,
      extra: {
        conference: p.conference,
        conferenceRole: 'participant',
        reason: end.reason,
        sessionStart: p.joinedAt.toISOString(),
        sessionEnd: end.at.toISOString(),
        messagesSent: p.sent.messages,
        bytesSent: p.sent.bytes,
        messagesReceived: p.received.messages,
        bytesReceived: p.received.bytes,
      },
    });
  }

  /** The controlling function's record of the whole conference, when it ends. */
  private async chargeConference(c: LiveConference, at: Date): Promise<void> {
    await this.deps.charging.record({
      service: 'im',
      role: 'terminating',
      sipMethod: 'INVITE',
      sessionId: `conference:${c.uri}:${c.startedAt.getTime()}`,
      callingParty: c.uri,
      calledParty: c.uri,
      requestTime: c.startedAt,
      responseTime: c.startedAt,
      statusCode: 200,
      outcome: 'ended',
      chargingVector: c.chargingVector,
      cause: 'serviceDeliveryEndSuccessfully',
      extra: {
        conference: c.uri,
        conferenceRole: 'controlling',
        kind: c.kind,
        sessionStart: c.startedAt.toISOString(),
        sessionEnd: at.toISOString(),
        participants: c.joined,
        messages: c.messages,
        bytes: c.bytes,
      },
    });
  }

  private settle(reaction: string, work: Promise<void>): void {
    work.catch((err: unknown) => {
      this.deps.metrics.count('ims_as_reaction_failures_total', { reaction: `conference:${reaction}` });
      this.deps.log.error({ err }, `${reaction} failed`);
    });
  }
}

/** Reason phrases of the refusals a join check gives (RFC 3261 21). */
const REASON_PHRASES: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  415: 'Unsupported Media Type',
  486: 'Busy Here',
};

function uriOf(nameAddr: string): string {
  try {
    return parseNameAddr(nameAddr).uri;
  } catch {
    return nameAddr.trim();
  }
}
