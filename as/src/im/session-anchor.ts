import { EventEmitter } from 'node:events';

/** Messages and bytes one party sent through the anchor during a session. */
export interface DirectionStats {
  messages: number;
  bytes: number;
}

export interface AnchorStats {
  fromOfferer: DirectionStats;
  fromAnswerer: DirectionStats;
}

/** A complete message the anchor passed on (text only when it is a text type). */
export interface AnchorMessage {
  sessionKey: string;
  from: 'offerer' | 'answerer';
  messageId: string;
  contentType: string;
  bytes: number;
  text?: string;
}

/**
 * What the IM session service needs from the MSRP switch that anchors a session's media: the
 * AS's URI for each side, the callee's path once it answers, the end of a session, its counts,
 * and its 'message' and 'ended' events. The MSRP switch (as/src/msrp) is one; the service
 * never depends on more than this.
 */
export interface MediaAnchor {
  open(sessionKey: string, offerer: { path: string[]; acceptTypes?: string[] }): { offererSide: string; answererSide: string };
  answered(sessionKey: string, answerer: { path: string[] }): void;
  close(sessionKey: string, reason: string): void;
  stats(sessionKey: string): AnchorStats | undefined;
  on(event: 'message', listener: (m: AnchorMessage) => void): unknown;
  on(event: 'ended', listener: (e: { sessionKey: string; reason: string }) => void): unknown;
}

/**
 * An anchor that hands out this instance's MSRP URIs and keeps the paths, but relays no media:
 * the SIP side of sessions works with it (both parties see the AS in their SDP) while no MSRP
 * switch is built in. Its counts stay at zero.
 */
export class SignallingOnlyAnchor extends EventEmitter implements MediaAnchor {
  private readonly sessions = new Map<string, { offerer: string[]; answerer?: string[] }>();

  constructor(private readonly endpoint: { host: string; port: number }) {
    super();
  }

  open(sessionKey: string, offerer: { path: string[] }): { offererSide: string; answererSide: string } {
    this.sessions.set(sessionKey, { offerer: offerer.path });
    const base = `msrp://${this.endpoint.host}:${this.endpoint.port}/${sessionKey}`;
    return { offererSide: `${base}a;tcp`, answererSide: `${base}b;tcp` };
  }

  answered(sessionKey: string, answerer: { path: string[] }): void {
    const s = this.sessions.get(sessionKey);
    if (s) s.answerer = answerer.path;
  }

  close(sessionKey: string): void {
    this.sessions.delete(sessionKey);
  }

  stats(sessionKey: string): AnchorStats | undefined {
    if (!this.sessions.has(sessionKey)) return undefined;
    return { fromOfferer: { messages: 0, bytes: 0 }, fromAnswerer: { messages: 0, bytes: 0 } };
  }

  /** Sessions open now. */
  get size(): number {
    return this.sessions.size;
  }
}
