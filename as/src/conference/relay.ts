/**
 * A conference's messages between AS instances (docs/conference.md, "Several instances"):
 * each participant's MSRP leg ends at the instance that answered its INVITE, so the instance
 * that takes a SEND delivers to the legs it holds and hands the same CPIM to the others as a
 * `conference-message` change on the change feed; each of them delivers to its own legs when
 * it reads it. Pure: no I/O.
 */
import type { Change } from '../cluster/changes.js';
import type { FanOut } from './fan-out.js';

export type RelayedMessage = Extract<Change, { kind: 'conference-message' }>;

/** Room on top of the participant's content for the CPIM headers the focus writes (From, To, DateTime, types). */
export const CPIM_HEADROOM_BYTES = 4096;

/**
 * The change that carries one fanned-out message to the other instances, or undefined when
 * nothing is for them (a private message whose recipients are all here) or it is larger than
 * a conference message may be (the feed never carries more than `maxMessageBytes` plus headers).
 */
export function relayOf(
  out: FanOut,
  m: { conference: string; origin: string; sender: string; at: Date; remoteKeys: ReadonlySet<string> },
  maxMessageBytes: number,
): RelayedMessage | { tooLarge: number } | undefined {
  const to = out.private ? out.to.filter((k) => m.remoteKeys.has(k)) : undefined;
  if (to && to.length === 0) return undefined;
  const bytes = Buffer.byteLength(out.body);
  if (bytes > maxMessageBytes + CPIM_HEADROOM_BYTES) return { tooLarge: bytes };
  return {
    kind: 'conference-message',
    uri: m.conference,
    origin: m.origin,
    sender: m.sender,
    at: m.at.toISOString(),
    ...(to ? { to } : {}),
    body: out.body,
    isComposing: out.isComposing,
  };
}

/** A leg this instance holds in the conference, as the relay needs it. */
export interface LocalLeg {
  key: string;
  joinedAt: Date;
}

/**
 * The legs of this instance a relayed message goes to: the named ones of a private message,
 * else every leg but the sender's that was there when the message was said (a later joiner
 * gets a room's message by replay, never twice).
 */
export function relayTargets(msg: RelayedMessage, legs: readonly LocalLeg[]): string[] {
  const at = Date.parse(msg.at);
  if (msg.to) {
    const named = new Set(msg.to);
    return legs.filter((l) => named.has(l.key)).map((l) => l.key);
  }
  return legs.filter((l) => l.key !== msg.sender && l.joinedAt.getTime() <= at).map((l) => l.key);
}
