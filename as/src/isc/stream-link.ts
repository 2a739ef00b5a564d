import { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { NetstringDecoder, NetstringError, encodeNetstring } from './netstring.js';
import { StreamWindow } from './stream-window.js';
import type { StreamHelloAckFrame } from './types.js';

export interface StreamLinkOptions {
  host: string;
  port: number;
  secret: string;
  /** This AS instance's name (instanceName), said in the hello. */
  instance: string;
  /** Each payload Kamailio sends (JSON text). */
  onPayload: (payload: string) => void;
  onUp: () => void;
  /** The link went down; `unsent` are the requests it took but never wrote. */
  onDown: (unsent: string[]) => void;
  log: Logger;
  metrics: Metrics;
  /** How long Kamailio may take to confirm a batch before the link is deemed broken. */
  ackTimeoutMs?: number;
  /** How long Kamailio may take to answer the hello before the connection is dropped and retried. */
  helloTimeoutMs?: number;
}

/**
 * One evapi connection: authenticates with the ISC secret, reads Kamailio's netstrings,
 * writes the AS's requests under the flow control of its own StreamWindow, reconnects
 * with backoff. Kamailio keeps one 32 KB read buffer per connection, so each link has a
 * window of its own.
 *
 * The link is up only once Kamailio answered the hello with a `hello-ack` naming the
 * random id the hello carried: a TCP connect alone proves nothing (whatever else listens
 * on the evapi port, or a Kamailio that refuses the secret, accepts it), and a link counted
 * up on it would take requests into the void and report a healthy stream.
 */
export class StreamLink {
  private socket?: Socket;
  private retryMs = 250;
  /** When the current connection was made, and whether Kamailio sent anything on it. */
  private connectedAt = 0;
  private heard = false;
  /** Connections in a row Kamailio closed right after the hello (logged once per streak). */
  private refusedInRow = 0;
  private timer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private stopped = false;
  private connected = false;
  /** The id the hello on the current connection carried, until Kamailio answers it. */
  private greeting?: number;
  private helloTimer?: NodeJS.Timeout;
  /** Connections in a row whose hello went unanswered (logged once per streak). */
  private unansweredInRow = 0;
  private pumpScheduled = false;
  private readonly window = new StreamWindow();
  /** The link asked Kamailio to send it no more requests: id of the ask, and who waits for the answer. */
  private leaving?: { id: number; taken: () => void };

  constructor(private readonly opts: StreamLinkOptions) {}

  get isUp(): boolean {
    return this.connected;
  }

  /** Nothing waits to be written or confirmed (or the link is down: nothing can be). */
  get settled(): boolean {
    return !this.connected || (this.window.queued === 0 && this.window.inFlightBytes === 0);
  }

  /** Bytes written and unconfirmed plus a rough measure of what waits: to pick the least busy link. */
  get load(): number {
    return this.window.inFlightBytes + this.window.queued * 1024;
  }

  /** Takes one request (a JSON object); false when the link is down. */
  send(payload: string): boolean {
    if (!this.connected || !this.socket) return false;
    this.window.push(payload);
    // requests made in one turn of the event loop leave as one batch (one write, one ack)
    if (!this.pumpScheduled) {
      this.pumpScheduled = true;
      setImmediate(() => {
        this.pumpScheduled = false;
        this.pump();
      });
    }
    return true;
  }

  /**
   * Asks Kamailio to send no more initial requests on this link (a stopping AS still
   * answers the ones it has): resolves when Kamailio confirms, or at once when the link
   * is down. The id is random because Kamailio's answer reaches every leaving link.
   */
  leave(): Promise<void> {
    clearTimeout(this.timer); // a link waiting to reconnect stays down
    return new Promise((resolve) => {
      const id = 1 + Math.floor(Math.random() * 2 ** 31);
      this.leaving = { id, taken: resolve };
      if (!this.send(JSON.stringify({ type: 'leaving', id }))) resolve();
    });
  }

  /** Kamailio's answer to a leave(): true when it was this link's. */
  left(id: number): boolean {
    if (this.leaving?.id !== id) return false;
    this.leaving.taken();
    return true;
  }

  /** A confirmation Kamailio sent to every link: true when it was this link's. */
  ack(id: number): boolean {
    if (!this.window.ack(id)) return false;
    this.pump();
    return true;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.helloTimer);
    clearInterval(this.watchdog);
    this.socket?.destroy();
  }

  /** Writes every batch the window lets out now. */
  private pump(): void {
    const socket = this.socket;
    if (!this.connected || !socket) return;
    for (let batch = this.window.next(Date.now()); batch; batch = this.window.next(Date.now())) {
      socket.write(batch.data);
      this.opts.metrics.count('ims_as_isc_stream_batches_total');
    }
  }

  /** A batch Kamailio did not confirm in time: its reads went wrong; start afresh. */
  private checkAcks(): void {
    const oldest = this.window.oldestSentAt;
    const limit = this.opts.ackTimeoutMs ?? 5000;
    if (oldest === undefined || Date.now() - oldest < limit || !this.socket) return;
    this.opts.log.error(
      { ackTimeoutMs: limit, queued: this.window.queued },
      'Kamailio did not confirm requests on the event stream (is kamailio-cfg current?); reconnecting',
    );
    this.opts.metrics.count('ims_as_isc_stream_resets_total', { reason: 'ack-timeout' });
    this.socket.destroy();
  }

  private connect(): void {
    const { host, port, log } = this.opts;
    const socket = new Socket();
    const decoder = new NetstringDecoder();
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.connect(port, host, () => {
      const id = 1 + Math.floor(Math.random() * 2 ** 31);
      this.greeting = id;
      this.connectedAt = Date.now();
      this.heard = false;
      socket.write(encodeNetstring(`hello ${this.opts.secret} ${this.opts.instance} ${id}`));
      this.helloTimer = setTimeout(() => this.helloUnanswered(socket), this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS);
      this.helloTimer.unref();
    });
    socket.on('data', (chunk: Buffer) => {
      this.heard = true;
      this.refusedInRow = 0;
      let payloads: string[];
      try {
        payloads = decoder.push(chunk);
      } catch (err) {
        if (!(err instanceof NetstringError)) throw err;
        log.error({ err: err.message }, 'event stream framing broken; reconnecting');
        socket.destroy();
        return;
      }
      for (const p of payloads) {
        // hello-acks reach every connection of this instance: each takes its own id only
        if (p.startsWith(HELLO_ACK_PREFIX)) this.helloAnswered(socket, p);
        else this.opts.onPayload(p);
      }
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'event stream socket error'));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      const was = this.connected;
      const unanswered = this.greeting !== undefined;
      this.connected = false;
      this.greeting = undefined;
      clearTimeout(this.helloTimer);
      clearInterval(this.watchdog);
      if (was || unanswered) this.noteRefusal();
      // unconfirmed requests may or may not have been taken: their replies or their
      // transaction timeouts tell; the ones never written are handed back
      const unsent = this.window.reset();
      this.leaving?.taken();
      if (was || unsent.length) this.opts.onDown(unsent);
      // a link that left stays down: reconnected, it would take requests again
      if (this.stopped || this.leaving) return;
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.timer.unref();
      // at most 2 s between attempts: once a slot is free the stream is back within seconds
      this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    });
  }

  /** A hello-ack arrived on `socket`: the link is up when it names this connection's hello. */
  private helloAnswered(socket: Socket, payload: string): void {
    let id: unknown;
    try {
      id = (JSON.parse(payload) as Partial<StreamHelloAckFrame>).id;
    } catch {
      return;
    }
    if (this.socket !== socket || this.greeting === undefined || id !== this.greeting) return;
    this.greeting = undefined;
    clearTimeout(this.helloTimer);
    this.connected = true;
    this.retryMs = 250;
    this.unansweredInRow = 0;
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.checkAcks(), 1000);
    this.watchdog.unref();
    this.opts.onUp();
  }

  /**
   * Nothing answered the hello in time: whatever holds the port is not a Kamailio that
   * took our secret (another process bound it, or a kamailio-cfg older than this AS).
   * Dropped and retried with the usual backoff; logged once per streak.
   */
  private helloUnanswered(socket: Socket): void {
    if (this.socket !== socket || this.greeting === undefined) return;
    this.opts.metrics.count('ims_as_isc_stream_resets_total', { reason: 'hello-unanswered' });
    if (this.unansweredInRow++ === 0) {
      this.opts.log.warn(
        { host: this.opts.host, port: this.opts.port, helloTimeoutMs: this.opts.helloTimeoutMs ?? HELLO_TIMEOUT_MS },
        'nothing answered the event stream hello (is it Kamailio on that port, with a current kamailio-cfg?); retrying',
      );
    }
    socket.destroy();
  }

  /**
   * A connection Kamailio closed within a second of the hello, having sent nothing, was
   * refused: evapi's client slots were all taken (max_clients; Kamailio logs "too many
   * clients") or the secret is wrong. Counted and logged, once per streak.
   */
  private noteRefusal(): void {
    if (this.heard || Date.now() - this.connectedAt > REFUSED_WITHIN_MS) {
      this.refusedInRow = 0;
      return;
    }
    this.opts.metrics.count('ims_as_isc_stream_refused_total');
    if (this.refusedInRow++ === 0) {
      this.opts.log.warn(
        { host: this.opts.host, port: this.opts.port },
        'Kamailio closed the event stream connection right after the hello: all evapi client slots taken (max_clients), or a wrong secret; retrying',
      );
    }
  }
}

const RETRY_MAX_MS = 2000;
const HELLO_TIMEOUT_MS = 3000;
const HELLO_ACK_PREFIX = '{"type":"hello-ack"';
const REFUSED_WITHIN_MS = 1000;
