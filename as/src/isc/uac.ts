import { randomUUID } from 'node:crypto';
import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import { generateTag } from '../sip/index.js';
import { STREAM_FRAME_LIMIT } from './stream-window.js';
import { headerText, type UacReplyEvent } from './types.js';
import { contain } from '../util/contain.js';

/** A request the AS originates, sent through Kamailio. */
export interface UacRequest {
  method: string;
  ruri: string;
  /** Header name/value pairs; Call-ID, CSeq and a From tag are added when missing. */
  headers: Array<[string, string]>;
  body?: string;
  /** Where to send it first (an in-dialog request: the first URI of its route set). */
  nexthop?: string;
  /**
   * Route it through Kamailio's request routing (lookup of the Request-URI's contacts,
   * forking to all of them). In-dialog requests that carry their own Route set or target
   * a contact directly leave this off.
   */
  viaCore?: boolean;
}

export interface UacOutcome {
  code: number;
  reason: string;
  /** No final reply was reported within the transaction timeout. */
  timedOut: boolean;
  at: Date;
  /** A 2xx to an INVITE: what the dialog needs (To-tag, the callee's Contact, its SDP). */
  toTag?: string;
  contact?: string;
  sdp?: string;
}

/** A faster way to hand requests to Kamailio than one HTTP exchange each (the event stream). */
export interface RequestChannel {
  /** Takes one /uac JSON payload; false when the channel is down. */
  send(payload: string): boolean;
  /** Where payloads it took but could not write before going down are handed back. */
  fallbackTo(send: (payload: string) => void): void;
}

interface Pending {
  resolve: (o: UacOutcome) => void;
  timer: NodeJS.Timeout;
}

/** Correlates a reply with its request: Call-ID and CSeq identify a client transaction. */
function transactionKey(callId: string, cseq: string): string {
  return `${callId.trim()}|${cseq.trim().replace(/\s+/g, ' ').toUpperCase()}`;
}

/**
 * Sends AS-originated requests through Kamailio's /uac path (t_uac_send, which keeps From
 * and To tags intact) and resolves each with its final outcome: the reply Kamailio reports
 * back (reply_route), or a timeout when none arrives within the transaction timeout plus
 * a margin (Kamailio does not report its own local 408s).
 */
export class UacClient {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly opts: {
      httpUrl: string;
      secret: string;
      /** Kamailio's SIP URI, next hop of requests routed through the core. */
      coreUri: string;
      domain: string;
      /** This instance's evapi tag (instanceTag): Kamailio reports replies to it. */
      instanceTag: string;
      transactionTimeoutMs: number;
      log: Logger;
      metrics: Metrics;
    },
  ) {}

  private channel?: RequestChannel;

  /** Requests go over this channel while it is up, over HTTP otherwise. */
  useChannel(channel: RequestChannel): void {
    this.channel = channel;
    channel.fallbackTo((payload) => contain(this.opts, 'uac-http-fallback', this.post(payload)));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  async send(req: UacRequest): Promise<UacOutcome> {
    const headers = [...req.headers];
    const find = (name: string) => headers.find(([n]) => n.toLowerCase() === name.toLowerCase());
    const callId = find('Call-ID')?.[1] ?? `isc-${randomUUID()}@${this.opts.domain}`;
    // one space between number and method: Kamailio keys the reply's origin on it
    const cseq = (find('CSeq')?.[1] ?? `1 ${req.method}`).trim().replace(/\s+/g, ' ');
    if (!find('Call-ID')) headers.push(['Call-ID', callId]);
    if (!find('CSeq')) headers.push(['CSeq', cseq]);
    const from = find('From');
    if (!from) throw new TypeError('UacRequest needs a From header');
    if (!/;\s*tag=/i.test(from[1])) from[1] = `${from[1]};tag=${generateTag()}`;
    if (!find('To')) throw new TypeError('UacRequest needs a To header');
    if (req.body && !find('Content-Type')) throw new TypeError('UacRequest with a body needs Content-Type');
    if (req.viaCore) headers.push(['X-ISC-Origin', this.opts.secret]);

    const key = transactionKey(callId, cseq);
    const outcome = new Promise<UacOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        this.opts.metrics.count('ims_as_uac_outcomes_total', { method: req.method, code: '408' });
        resolve({ code: 408, reason: 'Request Timeout', timedOut: true, at: new Date() });
      }, this.opts.transactionTimeoutMs + 2000);
      this.pending.set(key, { resolve, timer });
    });

    const payload = JSON.stringify({
      method: req.method,
      ruri: req.ruri,
      nexthop: req.viaCore ? this.opts.coreUri : (req.nexthop ?? ''),
      headers: headerText(headers),
      body: req.body ?? '',
      callId,
      cseq,
      inst: this.opts.instanceTag,
    });
    // Kamailio's evapi reads a frame into a 32 KB buffer: a larger one (a big list NOTIFY) goes over HTTP
    if (Buffer.byteLength(payload, 'utf8') <= STREAM_FRAME_LIMIT && this.channel?.send(payload)) {
      this.opts.metrics.count('ims_as_uac_sent_total', { via: 'stream' });
    } else {
      await this.post(payload);
    }
    return outcome;
  }

  /** Hands one request to Kamailio's /uac; a refusal or an unreachable core settles it at once. */
  private async post(payload: string): Promise<void> {
    this.opts.metrics.count('ims_as_uac_sent_total', { via: 'http' });
    const failed = (code: number, reason: string) => {
      const { callId, cseq, method } = JSON.parse(payload) as { callId: string; cseq: string; method: string };
      const key = transactionKey(callId, cseq);
      const p = this.pending.get(key);
      if (p) {
        clearTimeout(p.timer);
        this.pending.delete(key);
        p.resolve({ code, reason, timedOut: false, at: new Date() });
      }
      return method;
    };
    try {
      const res = await fetch(`${this.opts.httpUrl}/uac`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-isc-secret': this.opts.secret },
        body: payload,
        signal: AbortSignal.timeout(3000),
      });
      await res.arrayBuffer();
      if (res.status !== 202) {
        const method = failed(500, 'Not Sent');
        this.opts.log.error({ status: res.status, method }, 'Kamailio refused an AS-originated request');
      }
    } catch (err) {
      const method = failed(503, 'Core Unreachable');
      this.opts.log.error({ err: (err as Error).message, method }, 'Kamailio unreachable for an AS-originated request');
    }
  }

  /** A final reply Kamailio reported for one of our requests. */
  onReply(ev: UacReplyEvent): void {
    const key = transactionKey(ev.callId, ev.cseq);
    const p = this.pending.get(key);
    if (!p) {
      this.opts.log.debug(
        { callId: ev.callId, cseq: ev.cseq, code: ev.code },
        'reply for no pending request (late or not ours)',
      );
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(key);
    const method = ev.cseq.trim().split(/\s+/)[1] ?? '?';
    this.opts.metrics.count('ims_as_uac_outcomes_total', { method, code: String(ev.code) });
    p.resolve({
      code: ev.code,
      reason: ev.reason,
      timedOut: false,
      at: new Date(),
      ...(ev.toTag !== undefined ? { toTag: ev.toTag } : {}),
      ...(ev.contact !== undefined ? { contact: ev.contact } : {}),
      ...(ev.sdp !== undefined ? { sdp: ev.sdp } : {}),
    });
  }

  /** Resolves everything still waiting (shutdown): the caller sees a 503, not a hang. */
  close(): void {
    for (const [key, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ code: 503, reason: 'Shutting Down', timedOut: false, at: new Date() });
      this.pending.delete(key);
    }
  }
}
