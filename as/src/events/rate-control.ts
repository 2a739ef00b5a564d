/**
 * SIP event notification rate control (RFC 6446), as pure functions: reading the Event header
 * parameters, the notifier's adjustment of them, the Subscription-State echo, and the timing
 * decision for the next NOTIFY. No timers here; the notifier owns those.
 *
 * RFC 6446 works in rates (notifications per second), not intervals:
 *  - max-rate: at most this many NOTIFYs per second, i.e. a NOTIFY no sooner than 1/max-rate
 *    seconds after the previous one (section 5);
 *  - min-rate: at least this many, i.e. a NOTIFY at the latest 1/min-rate seconds after the
 *    previous one, changed state or not (section 6);
 *  - adaptive-min-rate: like min-rate, but the wait stretches or shrinks with how many NOTIFYs
 *    went out over a rolling period (sections 7.2, 7.4).
 */

/** The rate-control values, each in notifications per second (RFC 6446 section 9.2). */
export interface RateRequest {
  maxRate?: number;
  minRate?: number;
  adaptiveMinRate?: number;
}

/** Local policy of the notifier applied on top of what the subscriber asked (RFC 6446 sections 4.2, 5.3, 6.3, 7.3). */
export interface RatePolicy {
  /** Shortest time between two NOTIFYs the notifier allows, in seconds (0 = none): caps max-rate at its reciprocal. */
  localMinInterval: number;
  /** Highest min-rate / adaptive-min-rate accepted, per second, to bound the load they cause; undefined = no ceiling. */
  maxMinRate?: number;
  /** Seconds left in the subscription (the expiry granted): a max-rate allowing no NOTIFY before then is raised. */
  expires?: number;
}

/** A rate-control parameter that does not follow the grammar: the SUBSCRIBE gets 400. */
export class RateControlError extends Error {
  readonly status = 400 as const;
  /** Short phrase usable as the SIP reason phrase. */
  readonly reason: string;
  constructor(reason: string, detail?: string) {
    super(detail ? `${reason}: ${detail}` : reason);
    this.name = 'RateControlError';
    this.reason = reason;
  }
}

/** Event / Subscription-State parameter names, in the order they are echoed. */
const PARAMS = [
  ['max-rate', 'maxRate'],
  ['min-rate', 'minRate'],
  ['adaptive-min-rate', 'adaptiveMinRate'],
] as const;

/** Bounds the grammar can express: 1*2DIGIT ["." 1*10DIGIT], zero excluded. */
export const RATE_MIN = 0.0000000001;
export const RATE_MAX = 99.9999999999;

/** 1*2DIGIT ["." 1*10DIGIT] (RFC 6446 section 9.2). */
const RATE_SYNTAX = /^[0-9]{1,2}(?:\.[0-9]{1,10})?$/;

/**
 * How many times 1/adaptive-min-rate the rolling period lasts when the caller gives none: the
 * RFC requires more than once and recommends several times (section 7.4).
 */
export const ADAPTIVE_PERIOD_FACTOR = 5;

/**
 * Reads max-rate, min-rate and adaptive-min-rate from Event header parameters (names lower
 * case, as parseValueParams gives them), from a SUBSCRIBE or from the 2xx to a NOTIFY.
 * undefined when none is present, which on a refresh means the subscriber removes rate control
 * (sections 5.1, 6.1, 7.1). Throws RateControlError (400) on a value outside the grammar.
 * Combinations are never an error: the notifier adjusts them (section 8, negotiateRate).
 */
export function parseRateRequest(eventParams: ReadonlyMap<string, string>): RateRequest | undefined {
  let out: RateRequest | undefined;
  for (const [name, field] of PARAMS) {
    const raw = eventParams.get(name);
    if (raw === undefined) continue;
    const text = raw.trim();
    if (!RATE_SYNTAX.test(text)) throw new RateControlError(`Bad ${name}`, `'${raw}' is not a rate`);
    const value = Number(text);
    // The grammar admits "0" and "0.0"; the RFC excludes zero explicitly.
    if (!(value > 0)) throw new RateControlError(`Bad ${name}`, 'a rate of zero is not allowed');
    (out ??= {})[field] = value;
  }
  return out;
}

/**
 * The rate control the notifier applies and echoes, after local policy and the RFC's
 * adjustments; undefined when none is in force.
 *  - max-rate is lowered to the local policy's 1/localMinInterval, which applies even when the
 *    subscriber asked for nothing (section 5.2);
 *  - a max-rate so low that no NOTIFY could go out before the subscription expires is raised to
 *    1/expires (section 5.3);
 *  - min-rate and adaptive-min-rate are lowered to the policy ceiling (sections 6.3, 7.3) and
 *    then to max-rate (section 8);
 *  - min-rate is dropped when not below adaptive-min-rate (section 8).
 * Every value is brought to what the grammar can carry, so the value used is the value echoed.
 */
export function negotiateRate(requested: RateRequest | undefined, policy: RatePolicy): RateRequest | undefined {
  let maxRate = requested?.maxRate;
  if (policy.localMinInterval > 0) {
    const cap = 1 / policy.localMinInterval;
    maxRate = maxRate === undefined ? cap : Math.min(maxRate, cap);
  }
  if (maxRate !== undefined && policy.expires !== undefined && policy.expires > 0 && 1 / maxRate > policy.expires) {
    maxRate = 1 / policy.expires;
  }

  const lower = (rate: number | undefined): number | undefined => {
    if (rate === undefined) return undefined;
    if (policy.maxMinRate !== undefined) rate = Math.min(rate, policy.maxMinRate);
    if (maxRate !== undefined) rate = Math.min(rate, maxRate);
    return rate;
  };
  let minRate = lower(requested?.minRate);
  const adaptiveMinRate = lower(requested?.adaptiveMinRate);
  if (minRate !== undefined && adaptiveMinRate !== undefined && minRate >= adaptiveMinRate) minRate = undefined;

  const out: RateRequest = {};
  if (maxRate !== undefined) out.maxRate = quantize(maxRate);
  if (minRate !== undefined) out.minRate = quantize(minRate);
  if (adaptiveMinRate !== undefined) out.adaptiveMinRate = quantize(adaptiveMinRate);
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * The Subscription-State parameters reflecting the rate control in force, e.g.
 * ";max-rate=0.2;min-rate=0.01" (sections 4.2, 5.2, 6.2, 7.2); '' when none.
 */
export function rateStateParams(rate: RateRequest | undefined): string {
  if (!rate) return '';
  let out = '';
  for (const [name, field] of PARAMS) {
    const value = rate[field];
    if (value !== undefined) out += `;${name}=${formatRate(value)}`;
  }
  return out;
}

/** A rate as the grammar writes it: at most 2 integer and 10 fraction digits, no trailing zeros. */
export function formatRate(rate: number): string {
  const text = quantize(rate).toFixed(10);
  return text.replace(/\.?0+$/, '');
}

/** What nextWindow needs to know about one subscription; times in ms since the epoch. */
export interface WindowState {
  now: number;
  /** When the previous NOTIFY was sent; undefined = none yet. */
  lastSentAt?: number;
  /** When the subscription expires. */
  expiresAt: number;
  /** NOTIFYs sent so far in the subscription. */
  notifyCount: number;
  /**
   * When the subscription was created (adaptive-min-rate only). Without it the algorithm cannot
   * run and the timeout is 1/adaptive-min-rate (still bounded by max-rate).
   */
  createdAt?: number;
  /**
   * When the NOTIFYs of at least the last adaptive period were sent (adaptive-min-rate only;
   * see recordSend). Without it notifyCount stands in: exact while the subscription is younger
   * than one period, a lifetime average after that.
   */
  recentSends?: readonly number[];
  /** The adaptive rolling period in seconds; adaptivePeriod() when absent or not above 1/adaptive-min-rate. */
  period?: number;
}

/**
 * When the next NOTIFY may go, and when one must go even without a change.
 *  - notBefore: no NOTIFY before it (max-rate, section 5.2): a change arriving earlier waits
 *    until then and goes out carrying the latest state, several changes making one NOTIFY.
 *    The NOTIFY answering a SUBSCRIBE, the one for pending→active and the final one are exempt;
 *    the caller sends those at once.
 *  - keepAliveAt: a NOTIFY is due then if none went out meanwhile (min-rate, section 6.2;
 *    adaptive-min-rate, sections 7.2 and 7.4); undefined when neither is in force or the time
 *    falls at or after the expiry. Never before notBefore.
 */
export function nextWindow(rate: RateRequest | undefined, s: WindowState): { notBefore: number; keepAliveAt?: number } {
  const last = s.lastSentAt;
  if (last === undefined) {
    // Nothing sent yet: RFC 6665 wants a NOTIFY right away.
    const owed = rate?.minRate !== undefined || rate?.adaptiveMinRate !== undefined;
    return owed ? { notBefore: s.now, keepAliveAt: s.now } : { notBefore: s.now };
  }
  const gap = rate?.maxRate !== undefined ? seconds(1 / rate.maxRate) : 0;
  const notBefore = Math.max(s.now, last + gap);
  if (!rate) return { notBefore };

  let due: number | undefined;
  if (rate.minRate !== undefined) due = last + seconds(1 / rate.minRate);
  if (rate.adaptiveMinRate !== undefined) {
    const at = last + seconds(adaptiveTimeout(rate, s));
    due = due === undefined ? at : Math.min(due, at);
  }
  if (due === undefined) return { notBefore };
  due = Math.max(due, last + gap);
  return due < s.expiresAt ? { notBefore, keepAliveAt: due } : { notBefore };
}

/** The rolling period for an adaptive-min-rate, in seconds: ADAPTIVE_PERIOD_FACTOR / adaptive-min-rate. */
export function adaptivePeriod(adaptiveMinRate: number): number {
  return ADAPTIVE_PERIOD_FACTOR / adaptiveMinRate;
}

/**
 * The seconds to wait after the previous NOTIFY (RFC 6446 section 7.4):
 *   timeout = count / (adaptive-min-rate^2 * period)                       (1)
 *   timeout = MAX(1/max-rate, count / (adaptive-min-rate^2 * period))      (2) with max-rate
 * where count is the NOTIFYs sent in the period ending with the previous one (step 4 of
 * section 7.2 recomputes it at each send). Step 1 starts a subscription with a history of
 * period * adaptive-min-rate NOTIFYs: the part of the window before the subscription existed is
 * taken as filled at adaptive-min-rate, so that history fades out over the first period.
 */
export function adaptiveTimeout(rate: RateRequest, s: WindowState): number {
  const amr = rate.adaptiveMinRate;
  if (amr === undefined) throw new RangeError('no adaptive-min-rate in force');
  const period = effectivePeriod(amr, s.period);
  const at = s.lastSentAt ?? s.now;
  // Without a creation time the history cannot be aged: count it at its nominal
  // period * adaptive-min-rate, which gives 1/adaptive-min-rate.
  const created = s.createdAt;
  if (created === undefined) return withMaxRate(rate, 1 / amr);
  const ageSec = Math.max(0, (at - created) / 1000);
  const windowStart = at - period * 1000;

  let sent: number;
  if (s.recentSends) {
    sent = 0;
    for (const t of s.recentSends) if (t > windowStart && t <= at) sent++;
  } else {
    sent = ageSec <= period ? s.notifyCount : (s.notifyCount * period) / ageSec;
  }
  const inherited = amr * Math.max(0, period - ageSec);
  return withMaxRate(rate, (sent + inherited) / (amr * amr * period));
}

/** Equation (2): the adaptive timeout never goes below 1/max-rate. */
function withMaxRate(rate: RateRequest, timeout: number): number {
  return rate.maxRate !== undefined ? Math.max(1 / rate.maxRate, timeout) : timeout;
}

/**
 * The send history after a NOTIFY at `at`: appended, and trimmed to the adaptive period (what
 * WindowState.recentSends wants). Returns [] when no adaptive-min-rate is in force.
 */
export function recordSend(
  history: readonly number[],
  at: number,
  rate: RateRequest | undefined,
  period?: number,
): number[] {
  if (rate?.adaptiveMinRate === undefined) return [];
  const from = at - effectivePeriod(rate.adaptiveMinRate, period) * 1000;
  const kept = history.filter((t) => t > from && t <= at);
  kept.push(at);
  return kept;
}

function effectivePeriod(amr: number, period: number | undefined): number {
  // The RFC requires a period longer than 1/adaptive-min-rate.
  return period !== undefined && period > 1 / amr ? period : adaptivePeriod(amr);
}

/** Seconds to whole milliseconds, the scheduler's resolution. */
function seconds(sec: number): number {
  return Math.round(sec * 1000);
}

/** Rounds to the 10 fraction digits the grammar carries and keeps within its range. */
function quantize(rate: number): number {
  const r = Math.round(rate * 1e10) / 1e10;
  return Math.min(RATE_MAX, Math.max(RATE_MIN, r));
}
