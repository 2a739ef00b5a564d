import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Lease } from '../../as/src/cluster/lease.js';
import { SingletonJobs } from '../../as/src/cluster/singleton-jobs.js';
import { silentLogger } from '../../as/src/log/logger.js';
import { SqliteStore } from '../../as/src/store/sqlite-store.js';
import type { Collection, Doc, Store } from '../../as/src/store/port.js';
import { sleep, until } from '../helpers/until.js';

const TTL_MS = 600;
const RENEW_MS = 150;
/**
 * One instance's view of the shared store, which can die: from `kill()` on, every call fails
 * as if its process were gone (its timers still fire, so nothing it does may keep the job).
 */
function mortal(store: Store): { store: Store; kill(): void } {
  let dead = false;
  const wrap = <T extends Doc>(c: Collection<T>): Collection<T> =>
    new Proxy(c, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) =>
          dead
            ? Promise.reject(new Error('instance is dead'))
            : (v as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
  return {
    store: {
      engine: store.engine,
      collection: (name) => wrap(store.collection(name)),
      ping: () => store.ping(),
      close: async () => undefined,
    },
    kill: () => void (dead = true),
  };
}

describe('singleton jobs: leases in the store', () => {
  let dir = '';
  let store: SqliteStore;
  const running: SingletonJobs[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'singleton-jobs-'));
    store = await SqliteStore.open(dir);
  });
  afterEach(async () => {
    for (const j of running.splice(0)) await j.stop();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  function instance(id: string, s: Store, runs: number[]): SingletonJobs {
    const jobs = new SingletonJobs({
      store: s,
      instance: id,
      ttlMs: TTL_MS,
      renewMs: RENEW_MS,
      log: silentLogger(),
    }).add({ name: 'sweep', everyMs: 20, run: async () => void runs.push(Date.now()) });
    running.push(jobs);
    return jobs;
  }

  it('a lease is held by one instance until it lapses', async () => {
    const a = new Lease(store, 'job:x', 'a', 300);
    const b = new Lease(store, 'job:x', 'b', 300);
    assert.equal(await a.acquire(), true);
    assert.equal(await b.acquire(), false);
    assert.equal(await a.acquire(), true, 'the holder renews');
    assert.equal(a.held, true);
    assert.equal(b.held, false);
    await sleep(320);
    assert.equal(a.held, false, 'not renewed: the holder knows it lost it');
    assert.equal(await b.acquire(), true, 'lapsed: another takes it');
    assert.equal(await a.acquire(), false);
  });

  it('two instances on one store: exactly one runs the job', async () => {
    const runsA: number[] = [];
    const runsB: number[] = [];
    const a = instance('as-a', store, runsA);
    const b = instance('as-b', store, runsB);
    await a.start();
    await b.start();
    await sleep(400);
    assert.ok(runsA.length > 5, `the holder ran the job ${runsA.length} times`);
    assert.equal(runsB.length, 0, 'the other instance must not run it');
    assert.equal(a.holds('sweep'), true);
    assert.equal(b.holds('sweep'), false);
  });

  /** Two instances started, the first (on `storeOfA`) running the job. */
  async function firstRunning(storeOfA: Store) {
    const runsA: number[] = [];
    const runsB: number[] = [];
    const a = instance('as-a', storeOfA, runsA);
    const b = instance('as-b', store, runsB);
    await a.start();
    await b.start();
    await until('the first instance running the job', () => runsA.length > 0);
    return { a, b, runsA, runsB };
  }

  it(`the owner dies (stops renewing): the other takes over within ttl + renew (${TTL_MS + RENEW_MS} ms)`, async (t) => {
    const dying = mortal(store);
    const { runsA, runsB } = await firstRunning(dying.store);
    dying.kill();
    const diedAt = Date.now();
    await until('the survivor running the job', () => runsB.length > 0, 5000);
    const takeover = runsB[0]! - diedAt;
    t.diagnostic(`taken over ${takeover} ms after the owner died (ttl ${TTL_MS} ms, renewal every ${RENEW_MS} ms)`);
    assert.ok(takeover <= TTL_MS + RENEW_MS + 100, `took ${takeover} ms`);
    // the dead one's own clock told it the lease ran out: it ran nothing after that
    const lastA = runsA[runsA.length - 1]!;
    assert.ok(lastA < runsB[0]!, 'the two instances ran the job at the same time');
  });

  it('an instance that stops gives its jobs up at once', async () => {
    const { a, runsB } = await firstRunning(store);
    const stoppedAt = Date.now();
    await a.stop();
    running.splice(running.indexOf(a), 1);
    await until('the other instance running the job', () => runsB.length > 0);
    assert.ok(
      runsB[0]! - stoppedAt < RENEW_MS + 100,
      `took ${runsB[0]! - stoppedAt} ms: a released lease need not lapse first`,
    );
  });

  it('heartbeats: a dead instance is listed as dead, a live one is not', async () => {
    const dying = mortal(store);
    const a = instance('as-a', dying.store, []);
    const b = instance('as-b', store, []);
    await a.start();
    await b.start();
    assert.deepEqual(await b.heartbeats!.alive(), ['as-a', 'as-b']);
    assert.deepEqual(await b.heartbeats!.dead(), []);
    dying.kill();
    await sleep(TTL_MS + 50);
    assert.deepEqual(await b.heartbeats!.dead(), ['as-a']);
    await b.heartbeats!.forget('as-a');
    assert.deepEqual(await b.heartbeats!.dead(), []);
  });

  it('alone (no store): every job runs, and at once when asked to', async () => {
    const runs: number[] = [];
    const jobs = SingletonJobs.alone(silentLogger());
    running.push(jobs);
    jobs.add({ name: 'x', everyMs: 1000, run: async () => void runs.push(1), runWhenTaken: true });
    await until('the first run', () => runs.length === 1, 200);
    assert.equal(jobs.holds('x'), true);
  });
});
