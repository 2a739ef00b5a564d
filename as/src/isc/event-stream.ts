import { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import { NetstringDecoder, NetstringError, encodeNetstring } from './netstring.js';
import type { IscEvent } from './types.js';

type Events = { up: []; down: [reason: string] };

/**
 * The AS end of Kamailio's evapi event stream: one TCP connection, opened by the AS, that
 * authenticates with the ISC secret and then receives events as netstrings, and carries
 * the AS's own requests the other way. It reconnects with backoff; while it is down both
 * sides use HTTP instead.
 */
export class KamailioEventStream extends TypedEmitter<Events> {
  private socket?: Socket;
  private retryMs = 250;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private connected = false;

  constructor(private readonly opts: {
    host: string;
    port: number;
    secret: string;
    onEvent: (ev: IscEvent) => Promise<void>;
    log: Logger;
    metrics: Metrics;
  }) {
    super();
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
    this.socket.write(encodeNetstring(payload));
    return true;
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
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
      const was = this.connected;
      this.connected = false;
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
    this.opts.metrics.count('isc_stream_events_total', { type: ev.type });
    this.opts.onEvent(ev).catch((err: unknown) => this.opts.log.error({ err, type: ev.type }, 'event handling failed'));
  }
}
