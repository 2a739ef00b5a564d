/**
 * application/conference-info+xml (RFC 4575): what a conference's roster looks like to a
 * watcher. Pure: no I/O. The full state names every user; a partial state (state="partial")
 * only the users, description and state that changed since the document the watcher has,
 * users that left the roster as state="deleted". The version is the caller's: it grows with
 * each document sent on one subscription.
 *
 * A participant who asked for privacy is shown as anonymous: no URI of theirs appears; the
 * user's entity is an opaque anonymous URI (RFC 3323 anonymous.invalid) that stays the same
 * for that participant, so that partial documents can name the user again.
 */
import { createHash } from 'node:crypto';
import type { Conference, ConferenceParticipant } from './roster.js';
import { escapeAttribute, escapeText } from '../xml/xml-tree.js';

export const CONFERENCE_INFO_CONTENT_TYPE = 'application/conference-info+xml';
export const CONFERENCE_INFO_NS = 'urn:ietf:params:xml:ns:conference-info';

/** What the watcher was last sent, to compute the next partial document from. */
export interface SentConferenceInfo {
  /** [user entity, its rendering] of every user sent (stores keep no dotted field names: pairs). */
  users: Array<[string, string]>;
  description: string;
  state: string;
}

export interface ConferenceInfoDocument {
  body: string;
  sent: SentConferenceInfo;
  /** A partial document with nothing in it: no NOTIFY is needed. */
  unchanged: boolean;
}

/** The entity a participant is shown under: its URI, or an opaque anonymous one. */
export function userEntity(conferenceUri: string, p: ConferenceParticipant): string {
  if (!p.anonymous) return p.uri;
  // from values the others never see (the dialog's Call-ID is random), so it cannot be reversed
  const seed = `${conferenceUri}\n${p.uri}\n${p.dialog?.callId ?? ''}\n${p.joinedAt?.getTime() ?? ''}`;
  return `sip:anonymous-${createHash('sha256').update(seed).digest('hex').slice(0, 16)}@anonymous.invalid`;
}

const when = (d: Date | undefined) => (d ? `<when>${d.toISOString()}</when>` : '');

function endpointXml(p: ConferenceParticipant): string {
  const parts: string[] = [];
  parts.push(`<status>${p.status}</status>`);
  if (p.joiningMethod) parts.push(`<joining-method>${p.joiningMethod}</joining-method>`);
  // who brought an anonymous participant in is theirs to hide too
  const by = p.invitedBy && !p.anonymous ? `<by>${escapeText(p.invitedBy)}</by>` : '';
  if (p.joinedAt || by) parts.push(`<joining-info>${when(p.joinedAt)}${by}</joining-info>`);
  if (p.disconnectionMethod) parts.push(`<disconnection-method>${p.disconnectionMethod}</disconnection-method>`);
  if (p.leftAt) parts.push(`<disconnection-info>${when(p.leftAt)}</disconnection-info>`);
  // one MSRP message stream per participant, live while connected
  const mediaStatus = p.status === 'connected' ? 'sendrecv' : p.status === 'on-hold' ? 'inactive' : undefined;
  if (mediaStatus)
    parts.push(
      `<media id="msrp"><display-text>MSRP</display-text><type>message</type><status>${mediaStatus}</status></media>`,
    );
  // the endpoint's entity is its contact: hidden for an anonymous participant
  const entity = !p.anonymous && p.endpoint ? ` entity="${escapeAttribute(p.endpoint)}"` : '';
  return `<endpoint${entity}>${parts.join('')}</endpoint>`;
}

function userXml(entity: string, p: ConferenceParticipant): string {
  const shown = p.anonymous ? 'Anonymous' : (p.nickname ?? p.displayName);
  const display = shown !== undefined ? `<display-text>${escapeText(shown)}</display-text>` : '';
  return `<user entity="${escapeAttribute(entity)}" state="full">${display}${endpointXml(p)}</user>`;
}

function descriptionXml(c: Conference): string {
  const subject = c.subject !== undefined ? `<subject>${escapeText(c.subject)}</subject>` : '';
  const max = c.maxParticipants !== undefined ? `<maximum-user-count>${c.maxParticipants}</maximum-user-count>` : '';
  return (
    `<conference-description>${subject}${max}` +
    `<available-media><entry label="msrp"><display-text>MSRP</display-text><type>message</type><status>sendrecv</status></entry></available-media>` +
    `</conference-description>`
  );
}

function stateXml(c: Conference): string {
  const count = c.participants.filter((p) => p.status !== 'disconnected').length;
  return `<conference-state><user-count>${count}</user-count><active>${c.endedAt ? 'false' : 'true'}</active><locked>false</locked></conference-state>`;
}

/**
 * The conference-info document for `c` at `version`: full when `previous` is undefined,
 * otherwise partial against what `previous` says the watcher has.
 */
export function conferenceInfo(c: Conference, version: number, previous?: SentConferenceInfo): ConferenceInfoDocument {
  const users = c.participants.map((p) => {
    const entity = userEntity(c._id, p);
    return [entity, userXml(entity, p)] as [string, string];
  });
  const description = descriptionXml(c);
  const state = stateXml(c);
  const sent: SentConferenceInfo = { users, description, state };
  const head = (docState: 'full' | 'partial') =>
    `<?xml version="1.0" encoding="UTF-8"?>\n<conference-info xmlns="${CONFERENCE_INFO_NS}" entity="${escapeAttribute(c._id)}" state="${docState}" version="${version}">`;

  if (!previous) {
    const body = `${head('full')}${description}${state}<users>${users.map(([, x]) => x).join('')}</users></conference-info>\n`;
    return { body, sent, unchanged: false };
  }
  const before = new Map(previous.users);
  const now = new Map(users);
  const changed = users.filter(([entity, xml]) => before.get(entity) !== xml).map(([, xml]) => xml);
  const gone = previous.users
    .filter(([entity]) => !now.has(entity))
    .map(([entity]) => `<user entity="${escapeAttribute(entity)}" state="deleted"/>`);
  const parts: string[] = [];
  if (description !== previous.description) parts.push(description);
  if (state !== previous.state) parts.push(state);
  if (changed.length || gone.length) parts.push(`<users state="partial">${[...changed, ...gone].join('')}</users>`);
  const body = `${head('partial')}${parts.join('')}</conference-info>\n`;
  return { body, sent, unchanged: parts.length === 0 };
}
