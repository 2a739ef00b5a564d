import type { Logger } from '../log/logger.js';
import type { Metrics } from '../ops/metrics.js';
import type { SipRequest } from '../sip/index.js';
import { readRequest } from './message-text.js';
import { checkIscEvent, checkIscRequest } from './frame-check.js';
import { kamailioTime, reply, type IscDecision, type IscEvent, type IscRequest, type OutcomeEvent } from './types.js';
import { BackgroundWork } from '../util/background-work.js';
import { STORE_RETRY_AFTER_SECONDS, type StoreOutages } from '../store/store-fault.js';

/** One initial request handed to a service, parsed once. */
export interface IscCall {
  req: IscRequest;
  sip: SipRequest;
  /** When Kamailio received the request. */
  receivedAt: Date;
  log: Logger;
}

/** A service behind the ISC interface (presence, im ...). */
export interface IscService {
  readonly name: IscRequest['service'];
  handle(call: IscCall): Promise<IscDecision>;
  /** Final outcome of a request this service let continue with `ctx`. */
  onOutcome?(ctx: string, code: number, at: Date): Promise<void>;
}

/** Receives the non-request events (registrations, AS-originated replies). */
export type EventSink = (event: IscEvent) => Promise<void>;

/**
 * Routes ISC requests to services and events to their consumers. A service that does not
 * decide within `deadlineMs` gets the client a 503 now rather than Kamailio's timeout later.
 */
export class IscDispatcher {
  private readonly services = new Map<string, IscService>();
  private readonly sinks = new Map<IscEvent['type'], EventSink>();
  /** Outcome work acknowledged to Kamailio but not finished yet (drained on stop). */
  private readonly background: BackgroundWork;
  /** Requests Kamailio waits on a decision for (a shutdown answers them before leaving). */
  private deciding = 0;

  constructor(private readonly opts: { log: Logger; metrics: Metrics; deadlineMs: number; outages: StoreOutages }) {
    this.background = new BackgroundWork(opts);
  }

  register(service: IscService): this {
    this.services.set(service.name, service);
    return this;
  }

  on(type: Exclude<IscEvent['type'], 'outcome'>, sink: EventSink): this {
    this.sinks.set(type, sink);
    return this;
  }

  /** Decides on a request frame from Kamailio (stream or HTTP); one its schema refuses gets 400. */
  async request(frame: unknown): Promise<IscDecision> {
    const checked = checkIscRequest(frame);
    if (!checked.ok) {
      this.frameRefused('request', checked.problem);
      return reply(400, 'Bad ISC Request');
    }
    const req = checked.value;
    this.deciding++;
    try {
      return await this.decide(req);
    } finally {
      this.deciding--;
    }
  }

  /** Decisions being made now. */
  get inFlight(): number {
    return this.deciding;
  }

  /**
   * Resolves true once no decision is being made, false if some still were after
   * `limitMs` (each has its deadline, so a limit above it is only a safety net).
   */
  async settle(limitMs: number): Promise<boolean> {
    const until = Date.now() + limitMs;
    while (this.deciding > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10));
    return this.deciding === 0;
  }

  private async decide(req: IscRequest): Promise<IscDecision> {
    const { metrics } = this.opts;
    const started = process.hrtime.bigint();
    const read = readRequest(req);
    if (read.refusal) {
      metrics.count('ims_as_isc_decisions_total', {
        service: req.service,
        method: req.method,
        decision: String(read.refusal.code),
      });
      return read.refusal;
    }
    const { sip } = read;
    const service = this.services.get(req.service);
    if (!service) return reply(501, 'Not Implemented');
    const log = this.opts.log.child({ svc: service.name, callId: sip.headers.get('Call-ID'), method: req.method });
    const call: IscCall = { req, sip, receivedAt: kamailioTime(req.ts), log };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<IscDecision>((resolve) => {
      timer = setTimeout(() => {
        log.error({ deadlineMs: this.opts.deadlineMs }, 'service did not decide in time: 503');
        resolve(reply(503, 'Service Unavailable', { headers: [['Retry-After', '5']] }));
      }, this.opts.deadlineMs);
    });
    try {
      const decision = await Promise.race([service.handle(call), deadline]);
      const label = decision.action === 'reply' ? String(decision.code) : 'continue';
      metrics.count('ims_as_isc_decisions_total', { service: service.name, method: req.method, decision: label });
      metrics.observe('ims_as_isc_decision_seconds', Number(process.hrtime.bigint() - started) / 1e9, {
        service: service.name,
      });
      return decision;
    } catch (err) {
      if (this.opts.outages.note(err)) {
        // the client may try again soon; nothing was acknowledged
        log.warn({ err }, 'store unavailable: 503');
        metrics.count('ims_as_isc_decisions_total', {
          service: service.name,
          method: req.method,
          decision: 'store-unavailable',
        });
        return reply(503, 'Service Unavailable', { headers: [['Retry-After', String(STORE_RETRY_AFTER_SECONDS)]] });
      }
      log.error({ err }, 'service failed: 500');
      metrics.count('ims_as_isc_decisions_total', { service: service.name, method: req.method, decision: 'error' });
      return reply(500, 'Server Internal Error');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Takes an event frame from Kamailio; false (and nothing done) when its schema refuses it. */
  async event(frame: unknown): Promise<boolean> {
    const checked = checkIscEvent(frame);
    if (!checked.ok) {
      this.frameRefused('event', checked.problem);
      return false;
    }
    const ev = checked.value;
    const started = process.hrtime.bigint();
    this.opts.metrics.count('ims_as_isc_events_total', { type: ev.type });
    if (ev.type === 'outcome') {
      // Kamailio posts outcomes from the worker that forwards the final reply to the sender:
      // acknowledge at once and charge in the background, or every sender waits for the CDR.
      this.background.start(
        'outcome',
        this.outcome(ev).finally(() => {
          this.opts.metrics.observe('ims_as_isc_event_seconds', Number(process.hrtime.bigint() - started) / 1e9, {
            type: ev.type,
          });
        }),
        { ctx: ev.ctx },
      );
      return true;
    }
    try {
      const sink = this.sinks.get(ev.type);
      if (!sink) {
        this.opts.log.warn({ type: ev.type }, 'event with no consumer dropped');
        return true;
      }
      await sink(ev);
      return true;
    } finally {
      this.opts.metrics.observe('ims_as_isc_event_seconds', Number(process.hrtime.bigint() - started) / 1e9, {
        type: ev.type,
      });
    }
  }

  /** A frame out of step with schemas/isc-*.schema.json: a kamailio.cfg the AS does not know. */
  private frameRefused(kind: 'request' | 'event', problem: string): void {
    this.opts.metrics.count('ims_as_isc_frames_refused_total', { kind });
    this.opts.log.error({ kind, problem }, 'ISC frame refused by its schema (is kamailio-cfg current?)');
  }

  /** Resolves when every acknowledged outcome has been handled (before charging stops). */
  async drain(): Promise<void> {
    await this.background.drain();
  }

  /** Outcome contexts are "<service>:<service payload>", as encodeContext built them. */
  private async outcome(ev: OutcomeEvent): Promise<void> {
    const colon = ev.ctx.indexOf(':');
    const service = colon > 0 ? this.services.get(ev.ctx.slice(0, colon) as IscRequest['service']) : undefined;
    if (!service?.onOutcome) {
      this.opts.log.warn({ ctx: ev.ctx }, 'outcome for no service dropped');
      return;
    }
    await service.onOutcome(ev.ctx.slice(colon + 1), ev.code, kamailioTime(ev.ts));
  }
}

/** Context string for a continue decision, routed back to `service` with the outcome. */
export function encodeContext(service: IscService['name'], payload: string): string {
  return `${service}:${payload}`;
}
