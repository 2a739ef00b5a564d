import { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import { NetstringDecoder, NetstringError, encodeNetstring } from './netstring.js';
import { StreamWindow } from './stream-window.js';
import type { IscEvent } from './types.js';

type Events = { up: []; down: [reason: string] };

/**
 * The AS end of Kamailio's evapi event stream: one TCP connection, opened by the AS, that
 * authenticates with the ISC secret and then receives events as netstrings, and carries
 * the AS's own requests the other way, under the flow control of StreamWindow (Kamailio
 * confirms each batch). It reconnects with backoff; while it is down both sides use HTTP
 * instead.
 */
export class KamailioEventStream extends TypedEmitter<Events> {
  private socket?: Socket;
  private retryMs = 250;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private connected = false;
  private readonly window = new StreamWindow();
  private watchdog?: NodeJS.Timeout;
  private pumpScheduled = false;
  private fallback: (payload: string) => void = () => {};

  constructor(private readonly opts: {
    host: string;
    port: number;
    secret: string;
    onEvent: (ev: IscEvent) => Promise<void>;
    log: Logger;
    metrics: Metrics;
    /** How long Kamailio may take to confirm a batch before the stream is deemed broken. */
    ackTimeoutMs?: number;
  }) {
    super();
  }

  /** Where requests go that were queued for the stream when it went down (HTTP). */
  fallbackTo(send: (payload: string) => void): void {
    this.fallback = send;
  }

  get isUp(): boolean {
    return this.connected;
  }

  /**
   * Sends one request to Kamailio on the stream (a netstring); false when the stream is
   * down, so the caller can use HTTP instead.
   */
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

  /** Writes every batch the window lets out now. */
  private pump(): void {
    const socket = this.socket;
    if (!this.connected || !socket) return;
    for (let batch = this.window.next(Date.now()); batch; batch = this.window.next(Date.now())) {
      socket.write(batch.data);
      this.opts.metrics.count('isc_stream_batches_total');
    }
  }

  /** A batch Kamailio did not confirm in time: its reads went wrong; start afresh. */
  private checkAcks(): void {
    const oldest = this.window.oldestSentAt;
    const limit = this.opts.ackTimeoutMs ?? 5000;
    if (oldest === undefined || Date.now() - oldest < limit || !this.socket) return;
    this.opts.log.error({ ackTimeoutMs: limit, queued: this.window.queued },
      'Kamailio did not confirm requests on the event stream (is kamailio-cfg current?); reconnecting');
    this.opts.metrics.count('isc_stream_resets_total', { reason: 'ack-timeout' });
    this.socket.destroy();
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.socket?.destroy();
  }

  private connect(): void {
    const { host, port, log } = this.opts;
    const socket = new Socket();
    const decoder = new NetstringDecoder();
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.connect(port, host, () => {
      socket.write(encodeNetstring(`hello ${this.opts.secret}`));
      this.connected = true;
      this.retryMs = 250;
      clearInterval(this.watchdog);
      this.watchdog = setInterval(() => this.checkAcks(), 1000);
      this.watchdog.unref();
      log.info({ host, port }, 'Kamailio event stream connected');
      this.emit('up');
    });
    socket.on('data', (chunk: Buffer) => {
      let payloads: string[];
      try {
        payloads = decoder.push(chunk);
      } catch (err) {
        if (!(err instanceof NetstringError)) throw err;
        log.error({ err: err.message }, 'event stream framing broken; reconnecting');
        socket.destroy();
        return;
      }
      for (const p of payloads) this.deliver(p);
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'event stream socket error'));
    socket.on('close', () => {
      if (this.socket !== socket) return;
      const was = this.connected;
      this.connected = false;
      clearInterval(this.watchdog);
      // unconfirmed requests may or may not have been taken: their replies or their
      // transaction timeouts tell; the ones never written go over HTTP
      for (const payload of this.window.reset()) this.fallback(payload);
      if (was) {
        log.warn('Kamailio event stream closed; events go over HTTP until it is back');
        this.emit('down', 'closed');
      }
      if (this.stopped) return;
      this.timer = setTimeout(() => this.connect(), this.retryMs);
      this.timer.unref();
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    });
  }

  private deliver(payload: string): void {
    let ev: IscEvent;
    try {
      ev = JSON.parse(payload) as IscEvent;
    } catch {
      this.opts.log.error({ payload: payload.slice(0, 200) }, 'event stream payload is not JSON');
      return;
    }
    if (ev.type === 'stream-ack') {
      this.window.ack(Number(ev.id));
      this.pump();
      return;
    }
    this.opts.metrics.count('isc_stream_events_total', { type: ev.type });
    this.opts.onEvent(ev).catch((err: unknown) => this.opts.log.error({ err, type: ev.type }, 'event handling failed'));
  }
}
