import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { TypedEmitter } from '../util/typed-emitter.js';
import { StreamLink } from './stream-link.js';
import { STREAM_FRAME_LIMIT } from './stream-window.js';
import { reply, type IscDecision, type StreamFrame, type StreamRequestFrame } from './types.js';
import { contain } from '../util/contain.js';

type Events = { up: []; down: [reason: string] };

/** A link with less than this in flight and queued takes the next request. */
const ROOMY_LINK_BYTES = 16_000;

/** How long the stream must have brought no request or event before a leaving AS closes it. */
const STREAM_QUIET_MS = 250;

/**
 * The AS end of Kamailio's evapi event stream: a few TCP connections (StreamLink), opened
 * by the AS, that receive Kamailio's events as netstrings and carry the AS's own requests
 * the other way. Several links because Kamailio reads each connection through one 32 KB
 * buffer and the AS may only have that much unconfirmed on it (StreamWindow): with one
 * link, a burst of NOTIFYs waited on confirmations. The stream is up while any link is;
 * while none is, both sides use HTTP instead.
 */
export class KamailioEventStream extends TypedEmitter<Events> {
  /** When the last request or event arrived (close() waits for a quiet moment after it). */
  private lastWorkAt = 0;
  private readonly links: StreamLink[];
  private fallback: (payload: string) => void = () => {};
  private upCount = 0;

  constructor(
    private readonly opts: {
      host: string;
      port: number;
      secret: string;
      /** This AS instance's name (instanceName): Kamailio routes by it. */
      instance: string;
      onEvent: (ev: unknown) => Promise<unknown>;
      /** Decides an initial request Kamailio sent on the stream (it waits for the decision frame). */
      onRequest: (req: unknown) => Promise<IscDecision>;
      log: Logger;
      metrics: Metrics;
      /** Connections to open (Kamailio's evapi max_clients must allow them). */
      links?: number;
      ackTimeoutMs?: number;
      helloTimeoutMs?: number;
    },
  ) {
    super();
    const { host, port, secret, instance, log, metrics, ackTimeoutMs, helloTimeoutMs } = opts;
    this.links = Array.from({ length: Math.max(1, opts.links ?? 4) }, (_, i) => {
      let up = false;
      return new StreamLink({
        host,
        port,
        secret,
        instance,
        log,
        metrics,
        ...(ackTimeoutMs !== undefined ? { ackTimeoutMs } : {}),
        ...(helloTimeoutMs !== undefined ? { helloTimeoutMs } : {}),
        onPayload: (p) => this.deliver(p),
        onUp: () => {
          up = true;
          if (++this.upCount === 1) {
            log.info({ host, port }, 'Kamailio event stream connected');
            this.emit('up');
          }
          log.debug({ link: i }, 'event stream link up');
        },
        onDown: (unsent) => {
          for (const payload of unsent) this.fallback(payload);
          if (!up) return;
          up = false;
          if (--this.upCount === 0) {
            log.warn('Kamailio event stream closed; events go over HTTP until it is back');
            this.emit('down', 'closed');
          }
        },
      });
    });
  }

  /** Where requests go that were queued on a link when it went down (HTTP). */
  fallbackTo(send: (payload: string) => void): void {
    this.fallback = send;
  }

  get isUp(): boolean {
    return this.upCount > 0;
  }

  /**
   * Sends one request to Kamailio: on the first link with room, so that requests of one
   * turn leave together (one write, one confirmation), else on the least busy one; false
   * when no link is up, so the caller can use HTTP instead.
   */
  send(payload: string): boolean {
    let best: StreamLink | undefined;
    for (const link of this.links) {
      if (!link.isUp) continue;
      if (link.load < ROOMY_LINK_BYTES) return link.send(payload);
      if (!best || link.load < best.load) best = link;
    }
    return best?.send(payload) ?? false;
  }

  start(): void {
    for (const link of this.links) link.start();
  }

  stop(): void {
    for (const link of this.links) link.stop();
  }

  /**
   * Asks Kamailio to send no more initial requests on any link (resolves when it
   * confirmed for each, or after `limitMs`). Requests already on their way still come.
   */
  async leave(limitMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.opts.log.warn(
          { limitMs },
          'Kamailio did not confirm that the stream is leaving (is kamailio-cfg current?)',
        );
        resolve();
      }, limitMs);
    });
    await Promise.race([Promise.all(this.links.map((l) => l.leave())), late]);
    clearTimeout(timer);
  }

  /**
   * Closes the stream once `idle()` holds (no decision is being made) and what was handed
   * to it is written and confirmed by Kamailio, or after `limitMs`: closing at once would
   * drop decisions Kamailio is waiting for, and it would answer their clients 503.
   */
  async close(limitMs: number, idle: () => boolean = () => true): Promise<void> {
    const until = Date.now() + limitMs;
    // a worker that picked this instance just before it left may still be relaying a request
    // to it: close after a quiet moment on the stream, not at the first idle instant
    const done = () => idle() && this.links.every((l) => l.settled) && Date.now() - this.lastWorkAt >= STREAM_QUIET_MS;
    while (!done() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    if (!done()) this.opts.log.warn({ limitMs }, 'event stream closed with decisions or frames unconfirmed');
    this.stop();
  }

  private deliver(payload: string): void {
    let ev: StreamFrame;
    try {
      ev = JSON.parse(payload) as StreamFrame;
    } catch {
      this.opts.log.error({ payload: payload.slice(0, 200) }, 'event stream payload is not JSON');
      return;
    }
    if (ev.type === 'stream-ack') {
      // sent to every link; the one whose window holds the id takes it
      for (const link of this.links) if (link.ack(Number(ev.id))) break;
      return;
    }
    if (ev.type === 'leaving-ack') {
      for (const link of this.links) if (link.left(Number(ev.id))) break;
      return;
    }
    this.lastWorkAt = Date.now();
    if (ev.type === 'request') {
      this.decide(ev);
      return;
    }
    this.opts.metrics.count('ims_as_isc_stream_events_total', { type: ev.type });
    contain(this.opts, 'stream-event', () => this.opts.onEvent(ev), { type: ev.type });
  }

  /**
   * Answers a request Kamailio suspended: the decision frame names its transaction first
   * ({"tix":..,"tlb":..}, which is how route evapi:message-received tells it from a request
   * of ours). A decision that cannot be sent leaves Kamailio to answer 503 after fr_timer.
   */
  private decide(frame: StreamRequestFrame): void {
    const { tix, tlb, req } = frame;
    this.opts.metrics.count('ims_as_isc_stream_requests_total');
    const decided = this.opts.onRequest(req);
    contain(
      this.opts,
      'stream-decision',
      decided.then((decision) => {
        let payload = JSON.stringify({ tix, tlb, ...decision });
        const bytes = Buffer.byteLength(payload, 'utf8');
        if (bytes > STREAM_FRAME_LIMIT) {
          // Kamailio sends only requests below ISC_STREAM_MAX_BYTES here, so this is a bug of ours
          this.opts.log.error({ method: req?.method, bytes }, 'decision too large for the event stream: 500');
          payload = JSON.stringify({ tix, tlb, ...reply(500, 'Decision Too Large') });
        }
        if (!this.send(payload)) {
          this.opts.metrics.count('ims_as_isc_stream_decisions_lost_total');
          this.opts.log.error({ method: req?.method }, 'event stream down: decision not sent (Kamailio answers 503)');
        }
      }),
      { method: req?.method },
    );
  }
}
