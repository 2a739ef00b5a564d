/**
 * Per-user limits per minute (as/src/limits/): two limiters on two connections to one
 * embedded store count as one, as two AS instances do; the answer beyond the limit; which
 * requests count. The store is the real embedded engine; the service behind the limits is a
 * stub that says it was reached.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IscCall, IscService } from '../../as/src/isc/dispatcher.js';
import { reply, type IscRequest } from '../../as/src/isc/types.js';
import { RateLimitedService } from '../../as/src/limits/rate-limited-service.js';
import { minuteWindow, secondsLeft } from '../../as/src/limits/minute-window.js';
import { RATE_LIMITED, UserRateLimits, rateLimitedReply } from '../../as/src/limits/user-rate-limits.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { Metrics } from '../../as/src/ops/metrics.js';
import { parseSipMessage, type SipRequest } from '../../as/src/sip/index.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import { LocalDomain } from '../../as/src/users/local-domain.js';

const ALICE = 'sip:alice@example.com';
/** 42 s into the current minute: 18 s left (near the real clock: the counters' TTL index reads it). */
const T0 = Math.floor(Date.now() / 60_000) * 60_000 + 42_000;

describe('per-user limits per minute', () => {
  let dir: string;
  let storeA: SqliteStore;
  let storeB: SqliteStore;
  let now: number;
  const limits = { message: 5, subscribe: 3, group: 2 };

  const limiter = (store: SqliteStore, metrics = new Metrics()) =>
    new UserRateLimits({ store, metrics, log: silentLogger(), limitOf: (k) => limits[k], now: () => now });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'limits-'));
    storeA = await SqliteStore.open(dir);
    storeB = await SqliteStore.open(dir);
    now = T0;
    Object.assign(limits, { message: 5, subscribe: 3, group: 2 });
  });
  afterEach(async () => {
    await storeA.close();
    await storeB.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two instances on one store count as one: exactly the limit passes, whoever takes which', async () => {
    const a = limiter(storeA);
    const b = limiter(storeB);
    await a.start();
    await b.start();
    const results = await Promise.all(Array.from({ length: 9 }, (_, i) => (i % 2 ? a : b).take('message', ALICE)));
    assert.equal(results.filter((r) => r === undefined).length, 5);
    const refused = results.filter((r) => r !== undefined);
    assert.equal(refused.length, 4);
    for (const r of refused) assert.deepEqual(r, { kind: 'message', limit: 5, retryAfter: 18 });
  });

  it('a new minute starts afresh; other users and other kinds have counters of their own', async () => {
    const a = limiter(storeA);
    for (let i = 0; i < 5; i++) assert.equal(await a.take('message', ALICE), undefined);
    assert.ok(await a.take('message', ALICE));
    assert.equal(await a.take('message', 'sip:bob@example.com'), undefined, 'bob has his own counter');
    assert.equal(await a.take('subscribe', ALICE), undefined, 'SUBSCRIBEs count apart');
    now += 18_000;
    assert.equal(await a.take('message', ALICE), undefined, 'the next minute');
  });

  it('refuses from memory once over: the store is not asked again this minute', async () => {
    const metrics = new Metrics();
    const a = limiter(storeA, metrics);
    for (let i = 0; i < 10; i++) await a.take('group', ALICE);
    const doc = await storeA.collection<{ _id: string; n: number }>('rate_counters').findOne({});
    assert.equal(doc?.n, 3, 'two passed, one went over; the other seven never reached the store');
    assert.equal(metrics.value(RATE_LIMITED, { kind: 'group' }), 8);
  });

  it('a limit raised by a reload applies within the minute; 0 turns the limit off and writes nothing', async () => {
    const a = limiter(storeA);
    for (let i = 0; i < 4; i++) await a.take('subscribe', ALICE);
    assert.ok(await a.take('subscribe', ALICE));
    limits.subscribe = 10;
    assert.equal(await a.take('subscribe', ALICE), undefined);
    limits.message = 0;
    for (let i = 0; i < 20; i++) assert.equal(await a.take('message', ALICE), undefined);
    assert.equal(
      await storeA.collection('rate_counters').count({ _id: { $in: [`message|${minuteWindow(now).index}|${ALICE}`] } }),
      0,
    );
  });

  it('answers 403 with Retry-After and a Warning naming the limit (not 503: that would turn every user away)', () => {
    const d = rateLimitedReply({ kind: 'message', limit: 5, retryAfter: 18 }, 'example.com');
    assert.equal(d.code, 403);
    assert.equal(d.reason, 'Rate Limit Exceeded');
    assert.match(d.hdrs ?? '', /^Retry-After: 18\r\n/m);
    assert.match(d.hdrs ?? '', /^Warning: 399 example\.com "at most 5 MESSAGEs per minute; try again in 18 s"\r\n/m);
    assert.equal(secondsLeft(minuteWindow(T0 + 17_999), T0 + 17_999), 1);
  });
});

describe('which requests the limits count', () => {
  let dir: string;
  let store: SqliteStore;
  let reached: number;
  let service: RateLimitedService;
  const domain = new LocalDomain('example.com', ['127.0.0.1']);
  const inner: IscService = {
    name: 'presence',
    handle: async () => {
      reached++;
      return reply(200, 'OK');
    },
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'limits-svc-'));
    store = await SqliteStore.open(dir);
    reached = 0;
    const limits = new UserRateLimits({ store, metrics: new Metrics(), log: silentLogger(), limitOf: () => 1 });
    service = new RateLimitedService(inner, limits, domain);
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function call(method: string, extra: Partial<IscRequest>, headers: string[] = []): IscCall {
    const msg = [
      `${method} sip:bob@example.com SIP/2.0`,
      'Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1',
      'From: <sip:alice@127.0.0.1>;tag=1',
      'To: <sip:bob@example.com>',
      `Call-ID: ${Math.random()}`,
      `CSeq: 1 ${method}`,
      'Max-Forwards: 70',
      ...headers,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    const req: IscRequest = {
      v: 1,
      service: 'presence',
      method,
      ruri: 'sip:bob@example.com',
      srcIp: '127.0.0.1',
      srcPort: 5070,
      proto: 'udp',
      toTag: 't',
      ts: '1',
      msg,
      ...extra,
    };
    return { req, sip: parseSipMessage(msg) as SipRequest, receivedAt: new Date(), log: silentLogger() };
  }

  it('SUBSCRIBEs of a user, asserted or named by From in a dialog, beyond the limit are refused before the service', async () => {
    assert.equal((await service.handle(call('SUBSCRIBE', { asserted: ALICE }, ['Event: presence']))).action, 'reply');
    const second = await service.handle(call('SUBSCRIBE', {}, ['Event: presence', 'Expires: 600']));
    assert.equal(
      second.action === 'reply' && second.code,
      403,
      'the in-dialog refresh counts for alice (From on an alias host)',
    );
    assert.equal(reached, 1);
  });

  it('un-SUBSCRIBEs and MESSAGEs not sent by a user of ours are never counted', async () => {
    for (let i = 0; i < 3; i++)
      await service.handle(call('SUBSCRIBE', { asserted: ALICE }, ['Event: presence', 'Expires: 0']));
    for (let i = 0; i < 3; i++) await service.handle(call('MESSAGE', { term: 1 }));
    assert.equal(reached, 6);
    await service.handle(call('MESSAGE', { orig: 1, asserted: ALICE }));
    const over = await service.handle(call('MESSAGE', { orig: 1, asserted: ALICE }));
    assert.equal(over.action === 'reply' && over.code, 403);
    assert.equal(reached, 7);
  });
});
