/**
 * The switched sessions: by the SIP side's key, and by the AS session id in each leg's URI
 * (what an incoming To-Path names).
 */
import type { MsrpLeg, Side } from './leg.js';

export interface SwitchedSession {
  key: string;
  offerer: MsrpLeg;
  answerer: MsrpLeg;
  acceptTypes?: string[];
  /** Largest message of this session when below the switch's own maximum (a file transfer's size). */
  maxMessageBytes?: number;
  openedAt: number;
  lastActivity: number;
}

export class SessionTable {
  private readonly byKey = new Map<string, SwitchedSession>();
  private readonly bySessionId = new Map<string, { session: SwitchedSession; side: Side }>();

  get size(): number {
    return this.byKey.size;
  }

  add(s: SwitchedSession): void {
    this.byKey.set(s.key, s);
    this.bySessionId.set(s.offerer.sessionId, { session: s, side: 'offerer' });
    this.bySessionId.set(s.answerer.sessionId, { session: s, side: 'answerer' });
  }

  get(key: string): SwitchedSession | undefined {
    return this.byKey.get(key);
  }

  bySession(sessionId: string): { session: SwitchedSession; side: Side } | undefined {
    return this.bySessionId.get(sessionId);
  }

  remove(key: string): SwitchedSession | undefined {
    const s = this.byKey.get(key);
    if (!s) return undefined;
    this.byKey.delete(key);
    this.bySessionId.delete(s.offerer.sessionId);
    this.bySessionId.delete(s.answerer.sessionId);
    return s;
  }

  all(): SwitchedSession[] {
    return [...this.byKey.values()];
  }
}

/** The other leg of a session. */
export function otherLeg(s: SwitchedSession, side: Side): MsrpLeg {
  return side === 'offerer' ? s.answerer : s.offerer;
}
