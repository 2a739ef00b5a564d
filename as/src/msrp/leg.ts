/**
 * One leg of a switched session: the AS's URI towards one participant, that participant's
 * path, the connection the leg runs on once bound, and what travelled through it.
 *
 * The offerer's leg is bound by the offerer's first SEND on a connection it opened (it is the
 * active side); the answerer's leg by the connection the AS opens to the answerer's path.
 */
import type { ByteCoverage } from './chunking.js';
import type { MsrpConnection } from './connection.js';

export type Side = 'offerer' | 'answerer';

/** What the AS keeps of a message it relays out on this leg, to map REPORTs back. */
export interface RelayedMessage {
  /** The sender's From-Path on the other leg: where REPORTs about the message go. */
  senderPath: string;
  successReport: boolean;
  failureReport: 'yes' | 'no' | 'partial';
}

/** A message arriving on this leg, while its chunks come in (relayed on as they arrive). */
export interface InboundMessage {
  total?: number;
  /** 1-based byte spans received (counted once). */
  coverage: ByteCoverage;
  /** Set once the message is refused (413 too large, 400 bad range): later chunks get it too. */
  refused?: number;
  /** The last byte of the message, known once its `$` chunk ended (chunks may come out of order). */
  endsAt?: number;
  contentType: string;
  /** The body, collected only while it is small text (for the 'message' event's history text). */
  textParts?: Buffer[];
  bytes: number;
}

export class MsrpLeg {
  /** Messages arriving from this leg's participant, by Message-ID. */
  readonly inbound = new Map<string, InboundMessage>();
  peerPath?: string[];
  connection?: MsrpConnection;
  messages = 0;
  bytes = 0;
  /** Messages relayed out on this leg, by Message-ID (kept: the AS does not renumber). */
  readonly relayed = new Map<string, RelayedMessage>();
  private waiters: Array<(c: MsrpConnection | undefined) => void> = [];

  constructor(
    readonly side: Side,
    readonly sessionId: string,
    readonly localUri: string,
  ) {}

  bind(conn: MsrpConnection): void {
    this.connection = conn;
    conn.sessionIds.add(this.sessionId);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(conn);
  }

  /** Usable: bound to an open connection and knowing where to send. */
  get ready(): boolean {
    return this.connection !== undefined && !this.connection.closed && this.peerPath !== undefined;
  }

  /** The connection once the leg is ready, or undefined after `ms`. */
  whenReady(ms: number): Promise<MsrpConnection | undefined> {
    if (this.ready) return Promise.resolve(this.connection);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, ms);
      const waiter = (c: MsrpConnection | undefined) => {
        clearTimeout(timer);
        resolve(c && this.ready ? c : undefined);
      };
      this.waiters.push(waiter);
    });
  }

  /** Wakes waiters (with nothing): the session is closing. */
  release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w(undefined);
    this.connection?.sessionIds.delete(this.sessionId);
  }
}
