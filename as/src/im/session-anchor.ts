/** Messages and bytes one party sent through the anchor during a session. */
export interface DirectionStats {
  messages: number;
  bytes: number;
}

export interface AnchorStats {
  fromOfferer: DirectionStats;
  fromAnswerer: DirectionStats;
}

/** A complete message the anchor passed on (text only for small text bodies). */
export interface AnchorMessage {
  sessionKey: string;
  from: 'offerer' | 'answerer';
  messageId: string;
  contentType: string;
  bytes: number;
  text?: string;
  /** An is-composing indication (RFC 3994): relayed, never kept in a history. */
  isComposing?: boolean;
}

/**
 * What the IM session service needs from the MSRP switch that anchors a session's media
 * (as/src/msrp/switch.ts): the AS's URI for each side, the callee's path once it answers, the
 * end of a session, and its 'message' and 'ended' events. The service depends on
 * no more than this, so its unit tests run with a fake.
 */
export interface MediaAnchor {
  open(
    sessionKey: string,
    offerer: { path: string[]; acceptTypes?: string[]; setup?: string; maxMessageBytes?: number },
  ): { offererSide: string; answererSide: string };
  answered(sessionKey: string, answerer: { path: string[]; setup?: string }): void;
  /** A re-offer's exchange moved one side to another path (the same path changes nothing). */
  repath(sessionKey: string, side: 'offerer' | 'answerer', peer: { path: string[]; setup?: string }): void;
  close(sessionKey: string, reason: string): void | Promise<void>;
  on(event: 'message', listener: (m: AnchorMessage) => void): unknown;
  on(event: 'ended', listener: (e: { sessionKey: string; reason: string }) => void): unknown;
}
