/**
 * The focus's side of a participant's MSRP session (docs/conference.md): the SDP answer it
 * sends itself, and the nickname a participant asks for in its offer. Pure: no I/O.
 */

/** The nickname attribute of an offer: `a=nickname:<text>` on the MSRP media (or the session). */
export function offeredNickname(sdp: string): string | undefined {
  const m = /^a=nickname:[ \t]*([^\r\n]*)$/m.exec(sdp);
  const nick = m?.[1]?.trim();
  return nick ? nick : undefined;
}

/** A nickname the focus accepts: printable, no angle brackets or quotes (it is shown in CPIM From), 1 to 40 characters. */
export function nicknameProblem(nick: string): string | undefined {
  if ([...nick].length > 40) return 'a nickname has at most 40 characters';
  if (/[\u0000-\u001f\u007f<>"\\]/.test(nick)) return 'a nickname has no control characters, <, >, " or \\';
  return undefined;
}

/** Nicknames are unique regardless of case and surrounding blanks. */
export function nicknameKey(nick: string): string {
  return nick.trim().toLowerCase();
}

export interface FocusAnswer {
  /** Address in c= and the m= port: the AS's MSRP switch. */
  host: string;
  port: number;
  /** The AS's MSRP URI for this participant. */
  path: string;
  /** TCP/MSRP or TCP/TLS/MSRP, as offered. */
  proto: string;
  /** RFC 6135: the focus listens unless the participant asked to be passive; actpass in its own offers. */
  setup: 'active' | 'passive' | 'actpass';
  /** Sent as the session name (s=); the room's subject. */
  subject?: string;
  /** Session version for o=. */
  version: number;
}

/** The SDP answer of the focus: message/cpim only, wrapping text/plain and anything else (RFC 4975 8.6). */
export function focusAnswerSdp(a: FocusAnswer): string {
  const ipv = a.host.includes(':') ? 'IP6' : 'IP4';
  const subject = a.subject?.replace(/[\r\n]+/g, ' ').trim();
  return (
    [
      'v=0',
      `o=focus ${a.version} ${a.version} IN ${ipv} ${a.host}`,
      `s=${subject || '-'}`,
      `c=IN ${ipv} ${a.host}`,
      't=0 0',
      `m=message ${a.port} ${a.proto} *`,
      'a=accept-types:message/cpim text/plain',
      'a=accept-wrapped-types:text/plain *',
      `a=path:${a.path}`,
      `a=setup:${a.setup}`,
    ].join('\r\n') + '\r\n'
  );
}
