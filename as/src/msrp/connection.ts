/**
 * One MSRP connection (TCP or TLS, either direction): frames what arrives, hands the events
 * one at a time to the switch (reading pauses while an event is handled, so a slow far side
 * slows the sender instead of filling memory), serialises what is written (WriteLock), and
 * tracks our requests' transactions until their response or the 30 s of RFC 4975 section 7.
 */
import type { Socket } from 'node:net';
import { MsrpFramer, type FrameEvent } from './framer.js';
import {
  type ContinuationFlag,
  type MsrpHead,
  type MsrpMessage,
  bodyPreamble,
  bodyTrailer,
  serializeMessage,
} from './message.js';
import { WriteLock } from './write-lock.js';

/** How long a request of ours waits for its response. */
export const TRANSACTION_TIMEOUT_MS = 30_000;

/** A transaction that got no response: the far side is gone or silent. */
export const NO_RESPONSE = 408;

export interface ConnectionHandler {
  /** One framing event; a rejection closes the connection. */
  onFrame(conn: MsrpConnection, ev: FrameEvent): Promise<void> | void;
  onClose(conn: MsrpConnection, reason: string): void;
}

let nextConnectionId = 1;

export class MsrpConnection {
  readonly id = nextConnectionId++;
  private readonly framer: MsrpFramer;
  private readonly queue: Buffer[] = [];
  private pumping = false;
  private closedReason?: string;
  private readonly pending = new Map<string, { resolve: (code: number) => void; timer: NodeJS.Timeout }>();
  readonly lock = new WriteLock();
  /** Sessions (our session ids) using this connection. */
  readonly sessionIds = new Set<string>();
  lastActivity = Date.now();

  constructor(
    readonly socket: Socket,
    /** Where the far side is reached ("msrp://host:port"), for reuse of connections we opened. */
    readonly authority: string,
    private readonly handler: ConnectionHandler,
    maxHeadBytes?: number,
  ) {
    this.framer = new MsrpFramer(maxHeadBytes);
    socket.on('data', (data: Buffer) => {
      this.lastActivity = Date.now();
      this.queue.push(data);
      if (!this.pumping) this.pump().catch((err: unknown) => this.close(`handling failed: ${(err as Error).message}`));
    });
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('connection closed by the far side'));
    socket.on('end', () => this.close('connection closed by the far side'));
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    this.socket.pause();
    try {
      while (this.queue.length && !this.closed) {
        for (const ev of this.framer.push(this.queue.shift()!)) {
          if (this.closed) break;
          await this.handler.onFrame(this, ev);
        }
      }
    } catch (err) {
      this.close(`handling failed: ${(err as Error).message}`);
    } finally {
      this.pumping = false;
      if (!this.closed) this.socket.resume();
    }
  }

  /** Writes raw bytes; resolves once the socket takes more (backpressure). */
  async write(data: Buffer): Promise<void> {
    if (this.closed) throw new Error(`connection closed: ${this.closedReason}`);
    this.lastActivity = Date.now();
    this.corkUntilNextTurn();
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
    if (this.closed) throw new Error(`connection closed: ${this.closedReason}`);
  }

  /**
   * A chunk is written as its head, body pieces and end-line, and responses follow each other:
   * corked until the event loop's next turn they leave in one segment instead of one each.
   * The uncork is a setImmediate, not a nextTick: a write's awaiting caller resumes in a
   * microtask, which would come after a nextTick and so after the uncork. Backpressure still
   * works: a full buffer makes write() wait for 'drain', which follows the uncork.
   */
  private corked = false;
  private corkUntilNextTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  /** Sends one whole message (a response, a REPORT, a small SEND) under the lock. */
  async send(msg: MsrpMessage): Promise<void> {
    const release = await this.lock.acquire();
    try {
      await this.write(serializeMessage(msg));
    } finally {
      release();
    }
  }

  /**
   * Starts a request whose body follows in pieces; the caller holds the lock from before
   * this call until `endBody`. Returns the promise of the response code.
   */
  async beginBody(head: MsrpHead): Promise<void> {
    await this.write(bodyPreamble(head));
  }

  async endBody(tid: string, flag: ContinuationFlag): Promise<void> {
    await this.write(bodyTrailer(tid, flag));
  }

  /** The response code of our request `tid` (NO_RESPONSE after the timeout or a close). */
  expectResponse(tid: string): Promise<number> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(NO_RESPONSE);
      const timer = setTimeout(() => {
        this.pending.delete(tid);
        resolve(NO_RESPONSE);
      }, TRANSACTION_TIMEOUT_MS);
      timer.unref();
      this.pending.set(tid, { resolve, timer });
    });
  }

  /** A response arrived: settles its transaction; false when none waits for it. */
  settle(tid: string, code: number): boolean {
    const p = this.pending.get(tid);
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(tid);
    p.resolve(code);
    return true;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closedReason = reason;
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve(NO_RESPONSE);
    }
    this.pending.clear();
    this.socket.destroy();
    this.handler.onClose(this, reason);
  }
}
