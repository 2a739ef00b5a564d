/**
 * An MSRP session the AS ends itself (the conference focus, docs/conference.md): no other leg
 * to relay to. What a participant sends is collected whole (bounded by the switch's message
 * limit) and handed up; what the AS sends waits here until the participant's connection is
 * bound (a joiner's replayed messages are queued before it connects).
 */
import { ByteCoverage } from './chunking.js';
import type { MsrpConnection } from './connection.js';

/** A message arriving from the participant, chunk by chunk. */
export interface EndpointInbound {
  contentType: string;
  coverage: ByteCoverage;
  /** Chunks as they came: first byte (1-based) and data. */
  chunks: Array<{ start: number; data: Buffer }>;
  bytes: number;
  endsAt?: number;
  refused?: number;
}

/** A message the AS sends to the participant. */
export interface EndpointOutbound {
  contentType: string;
  body: Buffer;
}

export class EndpointLeg {
  readonly inbound = new Map<string, EndpointInbound>();
  connection?: MsrpConnection;
  /** Sent once the connection is bound, in order. */
  readonly queued: EndpointOutbound[] = [];
  messages = 0;
  bytes = 0;
  lastActivity = Date.now();

  constructor(
    readonly key: string,
    readonly sessionId: string,
    readonly localUri: string,
    public peerPath: string[],
  ) {}

  bind(conn: MsrpConnection): void {
    this.connection = conn;
    conn.sessionIds.add(this.sessionId);
  }

  get ready(): boolean {
    return this.connection !== undefined && !this.connection.closed;
  }

  release(): void {
    this.connection?.sessionIds.delete(this.sessionId);
    this.queued.length = 0;
  }
}

/** The whole body of a message once every byte up to its end has arrived, else undefined. */
export function assembled(msg: EndpointInbound): Buffer | undefined {
  if (msg.endsAt === undefined || !msg.coverage.covers(msg.endsAt)) return undefined;
  const body = Buffer.alloc(msg.endsAt);
  for (const c of msg.chunks)
    c.data.copy(body, c.start - 1, 0, Math.max(0, Math.min(c.data.length, msg.endsAt - c.start + 1)));
  return body;
}
