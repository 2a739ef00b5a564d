import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  RATE_MAX,
  RATE_MIN,
  RateControlError,
  adaptivePeriod,
  adaptiveTimeout,
  formatRate,
  negotiateRate,
  nextWindow,
  parseRateRequest,
  rateStateParams,
  recordSend,
  type RateRequest,
} from '../../as/src/events/rate-control.js';
import { parseValueParams } from '../../as/src/sip/index.js';

/** Equal to within floating-point noise (the formula squares a decimal rate). */
function near(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} ≉ ${expected}`);
}

const params = (entries: Array<[string, string]>): Map<string, string> => new Map(entries);

/**
 * A minimal notifier loop driven only by nextWindow: a NOTIFY at 0 (the SUBSCRIBE's), then state
 * changes wait for notBefore and coalesce, and keep-alives fire at keepAliveAt.
 */
function simulate(
  rate: RateRequest | undefined,
  changes: Array<{ at: number; state: string }>,
  until: number,
  expiresAt = 1e9,
): Array<{ at: number; state: string }> {
  const sends = [{ at: 0, state: 'initial' }];
  let history = recordSend([], 0, rate);
  let current = 'initial';
  let pending = false;
  let next = 0;
  let now = 0;
  for (;;) {
    const last = sends[sends.length - 1]!.at;
    const w = nextWindow(rate, {
      now,
      lastSentAt: last,
      expiresAt,
      notifyCount: sends.length,
      createdAt: 0,
      recentSends: history,
    });
    const change = changes[next]?.at;
    const sendAt = pending ? w.notBefore : w.keepAliveAt;
    if (change !== undefined && (sendAt === undefined || change <= sendAt)) {
      if (change > until) break;
      now = change;
      current = changes[next]!.state;
      pending = true;
      next++;
      continue;
    }
    if (sendAt === undefined || sendAt > until) break;
    now = sendAt;
    sends.push({ at: now, state: current });
    history = recordSend(history, now, rate);
    pending = false;
  }
  return sends;
}

describe('rate control parameters (RFC 6446 section 9.2)', () => {
  it('reads the three Event parameters as notifications per second', () => {
    assert.deepEqual(
      parseRateRequest(
        params([
          ['max-rate', '5'],
          ['min-rate', '0.05'],
          ['adaptive-min-rate', '0.1'],
        ]),
      ),
      {
        maxRate: 5,
        minRate: 0.05,
        adaptiveMinRate: 0.1,
      },
    );
    assert.deepEqual(parseRateRequest(params([['max-rate', '99.9999999999']])), { maxRate: RATE_MAX });
    assert.deepEqual(parseRateRequest(params([['min-rate', '00.0000000001']])), { minRate: RATE_MIN });
  });

  it('reads them from a real Event header, ignoring other parameters', () => {
    const ev = parseValueParams('presence;id=7;Max-Rate=0.2 ;adaptive-min-rate=0.01');
    assert.deepEqual(parseRateRequest(ev.params), { maxRate: 0.2, adaptiveMinRate: 0.01 });
  });

  it('gives undefined without any rate parameter (on a refresh: rate control removed)', () => {
    assert.equal(parseRateRequest(new Map()), undefined);
    assert.equal(parseRateRequest(params([['id', '3']])), undefined);
  });

  it('refuses values outside the grammar with 400', () => {
    const bad = ['', 'abc', '100', '1.12345678901', '-1', '1e3', '.5', '5.', '0', '0.0000000000', '"5"', '0x10', '1,5'];
    for (const value of bad) {
      assert.throws(
        () => parseRateRequest(params([['max-rate', value]])),
        (e: unknown) => e instanceof RateControlError && e.status === 400 && e.reason === 'Bad max-rate',
        `max-rate=${value}`,
      );
    }
    assert.throws(() => parseRateRequest(params([['adaptive-min-rate', 'fast']])), /Bad adaptive-min-rate/);
    assert.throws(() => parseRateRequest(params([['min-rate', '']])), /Bad min-rate/);
  });

  it('does not refuse combinations: min-rate above max-rate is adjusted later, not rejected (section 8)', () => {
    assert.deepEqual(
      parseRateRequest(
        params([
          ['max-rate', '0.1'],
          ['min-rate', '2'],
        ]),
      ),
      { maxRate: 0.1, minRate: 2 },
    );
  });
});

describe('negotiateRate (sections 4.2, 5.2, 5.3, 6.3, 7.3, 8)', () => {
  it('is undefined when nothing is asked and policy adds nothing', () => {
    assert.equal(negotiateRate(undefined, { localMinInterval: 0 }), undefined);
    assert.equal(negotiateRate({}, { localMinInterval: 0 }), undefined);
  });

  it('keeps what the subscriber asked when policy allows it', () => {
    assert.deepEqual(negotiateRate({ maxRate: 0.5, minRate: 0.01 }, { localMinInterval: 0 }), {
      maxRate: 0.5,
      minRate: 0.01,
    });
  });

  it('local minimum interval lowers max-rate, also when none was asked', () => {
    assert.deepEqual(negotiateRate(undefined, { localMinInterval: 5 }), { maxRate: 0.2 });
    assert.deepEqual(negotiateRate({ maxRate: 1 }, { localMinInterval: 5 }), { maxRate: 0.2 });
    // A stricter request than policy stays.
    assert.deepEqual(negotiateRate({ maxRate: 0.1 }, { localMinInterval: 5 }), { maxRate: 0.1 });
    assert.deepEqual(negotiateRate({ minRate: 0.05 }, { localMinInterval: 2 }), { maxRate: 0.5, minRate: 0.05 });
  });

  it('brings values to the 10 fraction digits the grammar carries', () => {
    assert.deepEqual(negotiateRate(undefined, { localMinInterval: 3 }), { maxRate: 0.3333333333 });
    assert.deepEqual(negotiateRate(undefined, { localMinInterval: 1e12 }), { maxRate: RATE_MIN });
  });

  it('raises a max-rate that would allow no NOTIFY before expiry to 1/expires (section 5.3)', () => {
    assert.deepEqual(negotiateRate({ maxRate: 0.001 }, { localMinInterval: 0, expires: 600 }), {
      maxRate: 0.0016666667,
    });
    assert.deepEqual(negotiateRate({ maxRate: 0.01 }, { localMinInterval: 0, expires: 600 }), { maxRate: 0.01 });
    // expires=0 (unsubscribe) leaves it alone.
    assert.deepEqual(negotiateRate({ maxRate: 0.001 }, { localMinInterval: 0, expires: 0 }), { maxRate: 0.001 });
  });

  it('lowers min-rate and adaptive-min-rate to max-rate (section 8)', () => {
    assert.deepEqual(negotiateRate({ maxRate: 0.2, minRate: 1 }, { localMinInterval: 0 }), {
      maxRate: 0.2,
      minRate: 0.2,
    });
    assert.deepEqual(negotiateRate({ maxRate: 0.2, adaptiveMinRate: 3 }, { localMinInterval: 0 }), {
      maxRate: 0.2,
      adaptiveMinRate: 0.2,
    });
    // Against the max-rate policy imposes too.
    assert.deepEqual(negotiateRate({ minRate: 1 }, { localMinInterval: 10 }), { maxRate: 0.1, minRate: 0.1 });
  });

  it('drops a min-rate that is not below adaptive-min-rate (section 8)', () => {
    assert.deepEqual(negotiateRate({ minRate: 0.5, adaptiveMinRate: 0.1 }, { localMinInterval: 0 }), {
      adaptiveMinRate: 0.1,
    });
    assert.deepEqual(negotiateRate({ minRate: 0.1, adaptiveMinRate: 0.1 }, { localMinInterval: 0 }), {
      adaptiveMinRate: 0.1,
    });
    assert.deepEqual(negotiateRate({ minRate: 0.05, adaptiveMinRate: 0.1 }, { localMinInterval: 0 }), {
      minRate: 0.05,
      adaptiveMinRate: 0.1,
    });
  });

  it('applies a policy ceiling on the minimum rates (sections 6.3, 7.3)', () => {
    assert.deepEqual(negotiateRate({ minRate: 10, adaptiveMinRate: 20 }, { localMinInterval: 0, maxMinRate: 1 }), {
      adaptiveMinRate: 1,
    });
    assert.deepEqual(negotiateRate({ minRate: 10 }, { localMinInterval: 0, maxMinRate: 1 }), { minRate: 1 });
  });

  it('a refresh without parameters removes rate control, leaving only policy (sections 5.1, 6.1, 7.1)', () => {
    const before = negotiateRate(parseRateRequest(params([['min-rate', '0.1']])), { localMinInterval: 0 });
    assert.deepEqual(before, { minRate: 0.1 });
    assert.equal(negotiateRate(parseRateRequest(new Map()), { localMinInterval: 0 }), undefined);
    assert.deepEqual(negotiateRate(parseRateRequest(new Map()), { localMinInterval: 5 }), { maxRate: 0.2 });
  });
});

describe('Subscription-State echo (sections 4.2, 5.2, 6.2, 7.2)', () => {
  it('writes the values in force as Subscription-State parameters', () => {
    assert.equal(
      rateStateParams({ maxRate: 0.2, minRate: 0.01, adaptiveMinRate: 0.05 }),
      ';max-rate=0.2;min-rate=0.01;adaptive-min-rate=0.05',
    );
    assert.equal(rateStateParams({ minRate: 5 }), ';min-rate=5');
    assert.equal(rateStateParams(negotiateRate(undefined, { localMinInterval: 3 })), ';max-rate=0.3333333333');
  });

  it('is empty when no rate control is in force', () => {
    assert.equal(rateStateParams(undefined), '');
    assert.equal(rateStateParams({}), '');
  });

  it('formats within the grammar', () => {
    assert.equal(formatRate(5), '5');
    assert.equal(formatRate(0.25), '0.25');
    assert.equal(formatRate(1 / 7), '0.1428571429');
    assert.equal(formatRate(RATE_MIN), '0.0000000001');
    assert.equal(formatRate(1e-15), '0.0000000001');
    assert.equal(formatRate(150), '99.9999999999');
    for (const r of [5, 0.25, 1 / 7, 1e-15, 150, 12.5]) assert.match(formatRate(r), /^[0-9]{1,2}(\.[0-9]{1,10})?$/);
  });
});

describe('nextWindow: max-rate (section 5.2)', () => {
  const rate = { maxRate: 0.2 }; // no NOTIFY within 5 s of the previous

  it('holds a change until 1/max-rate after the previous NOTIFY', () => {
    assert.deepEqual(nextWindow(rate, { now: 1_000, lastSentAt: 0, expiresAt: 600_000, notifyCount: 1 }), {
      notBefore: 5_000,
    });
    assert.deepEqual(nextWindow(rate, { now: 7_000, lastSentAt: 0, expiresAt: 600_000, notifyCount: 1 }), {
      notBefore: 7_000,
    });
  });

  it('sends a burst of changes as one NOTIFY at the end of the interval, with the latest state', () => {
    const sends = simulate(
      rate,
      [
        { at: 1_000, state: 'a' },
        { at: 2_000, state: 'b' },
        { at: 3_500, state: 'c' },
        { at: 9_000, state: 'd' },
        { at: 9_500, state: 'e' },
      ],
      60_000,
    );
    assert.deepEqual(sends, [
      { at: 0, state: 'initial' },
      { at: 5_000, state: 'c' },
      { at: 10_000, state: 'e' },
    ]);
  });

  it('sends a lone change after a quiet spell at once', () => {
    assert.deepEqual(simulate(rate, [{ at: 42_000, state: 'x' }], 60_000), [
      { at: 0, state: 'initial' },
      { at: 42_000, state: 'x' },
    ]);
  });

  it('uses whole milliseconds for a policy interval of 3 s', () => {
    const policy = negotiateRate(undefined, { localMinInterval: 3 });
    assert.deepEqual(nextWindow(policy, { now: 10, lastSentAt: 0, expiresAt: 600_000, notifyCount: 1 }), {
      notBefore: 3_000,
    });
  });

  it('does not hold anything without rate control, and owes the first NOTIFY at once', () => {
    assert.deepEqual(nextWindow(undefined, { now: 1_000, lastSentAt: 900, expiresAt: 600_000, notifyCount: 1 }), {
      notBefore: 1_000,
    });
    assert.deepEqual(nextWindow(rate, { now: 1_000, expiresAt: 600_000, notifyCount: 0 }), { notBefore: 1_000 });
  });
});

describe('nextWindow: min-rate (section 6.2)', () => {
  const rate = { minRate: 0.1 }; // a NOTIFY at least every 10 s

  it('asks for a keep-alive 1/min-rate after the previous NOTIFY', () => {
    assert.deepEqual(nextWindow(rate, { now: 1_000, lastSentAt: 0, expiresAt: 600_000, notifyCount: 1 }), {
      notBefore: 1_000,
      keepAliveAt: 10_000,
    });
  });

  it('restarts the wait from any NOTIFY, changed state or keep-alive', () => {
    assert.deepEqual(simulate(rate, [{ at: 15_000, state: 'x' }], 35_000), [
      { at: 0, state: 'initial' },
      { at: 10_000, state: 'initial' },
      { at: 15_000, state: 'x' },
      { at: 25_000, state: 'x' },
      { at: 35_000, state: 'x' },
    ]);
  });

  it('asks for none at or after expiry (the final NOTIFY covers it)', () => {
    assert.deepEqual(nextWindow(rate, { now: 1_000, lastSentAt: 0, expiresAt: 10_000, notifyCount: 1 }), {
      notBefore: 1_000,
    });
    assert.equal(
      nextWindow(rate, { now: 1_000, lastSentAt: 0, expiresAt: 10_001, notifyCount: 1 }).keepAliveAt,
      10_000,
    );
  });

  it('owes the first NOTIFY at once', () => {
    assert.deepEqual(nextWindow(rate, { now: 500, expiresAt: 600_000, notifyCount: 0 }), {
      notBefore: 500,
      keepAliveAt: 500,
    });
  });

  it('combined with max-rate: bursts coalesce and keep-alives still come', () => {
    const both = negotiateRate({ maxRate: 0.2, minRate: 0.1 }, { localMinInterval: 0 });
    assert.deepEqual(
      simulate(
        both,
        [
          { at: 1_000, state: 'a' },
          { at: 2_000, state: 'b' },
        ],
        26_000,
      ),
      [
        { at: 0, state: 'initial' },
        { at: 5_000, state: 'b' },
        { at: 15_000, state: 'b' },
        { at: 25_000, state: 'b' },
      ],
    );
  });

  it('never places a keep-alive before max-rate allows a NOTIFY', () => {
    const w = nextWindow({ maxRate: 0.1, minRate: 1 }, { now: 100, lastSentAt: 0, expiresAt: 600_000, notifyCount: 1 });
    assert.deepEqual(w, { notBefore: 10_000, keepAliveAt: 10_000 });
  });
});

describe('nextWindow: adaptive-min-rate (sections 7.2, 7.4)', () => {
  // adaptive-min-rate 0.1 ⇒ period = 5 / 0.1 = 50 s, amr² · period = 0.01 · 50 = 0.5;
  // the subscription starts with a history of period · amr = 5 NOTIFYs (step 1).
  const rate = { adaptiveMinRate: 0.1 };
  const base = { expiresAt: 3_600_000, createdAt: 0 };

  it('uses a period several times 1/adaptive-min-rate', () => {
    assert.equal(adaptivePeriod(0.1), 50);
    assert.ok(adaptivePeriod(0.1) > 1 / 0.1);
  });

  it('after the first NOTIFY: count = 1 sent + 5 inherited ⇒ timeout 6 / 0.5 = 12 s', () => {
    const s = { ...base, now: 0, lastSentAt: 0, notifyCount: 1, recentSends: [0] };
    near(adaptiveTimeout(rate, s), 12);
    assert.deepEqual(nextWindow(rate, s), { notBefore: 0, keepAliveAt: 12_000 });
  });

  it('after the keep-alive at 12 s: count = 2 + 0.1·(50−12) = 5.8 ⇒ 11.6 s', () => {
    const s = { ...base, now: 12_000, lastSentAt: 12_000, notifyCount: 2, recentSends: [0, 12_000] };
    near(adaptiveTimeout(rate, s), 11.6);
    assert.equal(nextWindow(rate, s).keepAliveAt, 23_600);
  });

  it('a burst stretches the wait: 5 sent by 4 s + 4.6 inherited = 9.6 ⇒ 19.2 s', () => {
    const sends = [0, 1_000, 2_000, 3_000, 4_000];
    const s = { ...base, now: 4_000, lastSentAt: 4_000, notifyCount: 5, recentSends: sends };
    near(adaptiveTimeout(rate, s), 19.2);
    assert.equal(nextWindow(rate, s).keepAliveAt, 23_200);
  });

  it('settles at 1/adaptive-min-rate when NOTIFYs go at that rate', () => {
    const sends = Array.from({ length: 11 }, (_, i) => i * 10_000); // 0 … 100 s
    const s = { ...base, now: 100_000, lastSentAt: 100_000, notifyCount: 11, recentSends: sends };
    // Window (50 s, 100 s] holds 60, 70, 80, 90, 100: count 5 ⇒ 5 / 0.5 = 10 s.
    near(adaptiveTimeout(rate, s), 10);
  });

  it('a quiet period shortens the wait: 1 NOTIFY in the window ⇒ 1 / 0.5 = 2 s', () => {
    const s = { ...base, now: 100_000, lastSentAt: 100_000, notifyCount: 2, recentSends: [0, 100_000] };
    near(adaptiveTimeout(rate, s), 2);
    assert.equal(nextWindow(rate, s).keepAliveAt, 102_000);
  });

  it('with max-rate the timeout is never below 1/max-rate (equation 2)', () => {
    const withMax = { maxRate: 0.25, adaptiveMinRate: 0.1 };
    const s = { ...base, now: 100_000, lastSentAt: 100_000, notifyCount: 2, recentSends: [0, 100_000] };
    near(adaptiveTimeout(withMax, s), 4); // MAX(1/0.25, 2)
    assert.deepEqual(nextWindow(withMax, s), { notBefore: 104_000, keepAliveAt: 104_000 });
  });

  it('honours a configured period above 1/adaptive-min-rate, and replaces one that is not', () => {
    const s = { ...base, now: 100_000, lastSentAt: 100_000, notifyCount: 2, recentSends: [0, 100_000] };
    near(adaptiveTimeout(rate, { ...s, period: 20 }), 5); // 1 / (0.01 · 20)
    near(adaptiveTimeout(rate, { ...s, period: 10 }), 2); // not > 1/amr: default 50 s
  });

  it('stands in notifyCount for the history: exact within the first period, averaged after', () => {
    near(adaptiveTimeout(rate, { ...base, now: 4_000, lastSentAt: 4_000, notifyCount: 5 }), 19.2);
    // 11 NOTIFYs over 100 s ⇒ 5.5 per 50 s ⇒ 5.5 / 0.5 = 11 s.
    near(adaptiveTimeout(rate, { ...base, now: 100_000, lastSentAt: 100_000, notifyCount: 11 }), 11);
  });

  it('falls back to 1/adaptive-min-rate without a creation time', () => {
    const s = { expiresAt: 3_600_000, now: 4_000, lastSentAt: 4_000, notifyCount: 40 };
    near(adaptiveTimeout(rate, s), 10);
    near(adaptiveTimeout({ maxRate: 0.05, adaptiveMinRate: 0.05 }, s), 20);
    assert.equal(nextWindow(rate, s).keepAliveAt, 14_000);
  });

  it('combined with min-rate, the earlier deadline wins', () => {
    const s = { ...base, now: 4_000, lastSentAt: 4_000, notifyCount: 5, recentSends: [0, 1_000, 2_000, 3_000, 4_000] };
    assert.equal(nextWindow({ minRate: 0.0625, adaptiveMinRate: 0.1 }, s).keepAliveAt, 20_000); // 16 s < 19.2 s
    assert.equal(nextWindow({ minRate: 0.01, adaptiveMinRate: 0.1 }, s).keepAliveAt, 23_200);
  });

  it('keeps only the last period of send times', () => {
    assert.deepEqual(recordSend([0, 10_000, 60_000], 70_000, rate), [60_000, 70_000]);
    assert.deepEqual(recordSend([0, 10_000], 20_000, { maxRate: 1 }), []);
  });

  it('drives a keep-alive stream that adapts to the history', () => {
    const sends = simulate(rate, [], 40_000).map((x) => x.at);
    // 0 → +12 s → +11.6 s (23.6 s) → count 3 + 0.1·(50−23.6)=5.64 ⇒ +11.28 s (34.88 s)
    assert.deepEqual(sends, [0, 12_000, 23_600, 34_880]);
  });
});
