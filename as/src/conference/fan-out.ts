/**
 * What the focus does with one message a participant sent (docs/conference.md): who receives
 * it and as what. Everyone else receives it, CPIM-wrapped with the sender as the conference
 * shows it (its URI, its nickname, or anonymous); a CPIM `To` naming participants (by URI or
 * by nickname) makes it private to them. Pure: no I/O.
 */
import { ANONYMOUS_FROM, buildCpim, CPIM_CONTENT_TYPE, type CpimAddress, parseCpim } from '../im/formats/cpim.js';
import { nicknameKey } from './focus-sdp.js';

export const IS_COMPOSING = 'application/im-iscomposing+xml';

/** A participant as the fan-out needs it. */
export interface Seat {
  key: string;
  uri: string;
  nickname?: string;
  anonymous: boolean;
}

export interface FanOut {
  /** Keys of the participants that receive it. */
  to: string[];
  /** The CPIM body each receives (the same for all). */
  body: string;
  /** Sent to named participants only. */
  private: boolean;
  /** An is-composing indication: relayed, never kept or counted as a message. */
  isComposing: boolean;
}

/** How a participant appears to the others. */
export function shownAs(s: Seat): CpimAddress {
  if (s.anonymous) return s.nickname ? { display: s.nickname, uri: ANONYMOUS_FROM.uri } : ANONYMOUS_FROM;
  return s.nickname ? { display: s.nickname, uri: s.uri } : { uri: s.uri };
}

/**
 * The fan-out of a message from `sender` in conference `conference`, or `{ refuse }` with the
 * MSRP reason when the message cannot be read or names nobody present.
 */
export function fanOut(
  conference: string,
  sender: Seat,
  seats: readonly Seat[],
  contentType: string,
  body: Buffer,
  now: Date,
): FanOut | { refuse: string; code: 400 | 403 } {
  let innerType = contentType || 'text/plain';
  let content = body.toString('utf8');
  let named: CpimAddress[] = [];
  if (contentType === CPIM_CONTENT_TYPE) {
    let msg;
    try {
      msg = parseCpim(content);
    } catch (err) {
      return { refuse: `unreadable CPIM: ${(err as Error).message}`, code: 400 };
    }
    innerType = msg.contentTypeRaw;
    content = msg.content;
    named = msg.to.filter((t) => t.uri.toLowerCase() !== conference.toLowerCase());
  }
  const others = seats.filter((s) => s.key !== sender.key);
  let to = others;
  if (named.length > 0) {
    to = others.filter((s) =>
      named.some(
        (n) =>
          (!s.anonymous && n.uri.toLowerCase() === s.uri.toLowerCase()) ||
          (s.nickname !== undefined && n.display !== undefined && nicknameKey(n.display) === nicknameKey(s.nickname)),
      ),
    );
    if (to.length === 0) return { refuse: 'the CPIM To names no participant of this conference', code: 403 };
  }
  const isComposing = innerType.split(';')[0]!.trim().toLowerCase() === IS_COMPOSING;
  const privateTo = named.length > 0;
  const cpim = buildCpim({
    from: shownAs(sender),
    to: privateTo ? to.map(shownAs) : { uri: conference },
    dateTime: now.toISOString(),
    contentType: innerType,
    content,
  });
  return { to: to.map((s) => s.key), body: cpim.toString(), private: privateTo, isComposing };
}
