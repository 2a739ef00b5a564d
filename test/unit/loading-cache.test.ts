import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoadingCache } from '../../as/src/util/loading-cache.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('keeps a loaded value until forgotten, older than maxAgeMs, or pushed out by newer keys', async () => {
  let loads = 0;
  const load = (v: string) => async () => (loads++, v);
  const cache = new LoadingCache<string>({ maxEntries: 2, maxAgeMs: 50 });
  assert.equal(await cache.get('a', load('a1')), 'a1');
  assert.equal(await cache.get('a', load('a2')), 'a1');
  cache.forget('a');
  assert.equal(await cache.get('a', load('a3')), 'a3');
  await sleep(60);
  assert.equal(await cache.get('a', load('a4')), 'a4', 'too old: loaded again');
  await cache.get('b', load('b1'));
  await cache.get('c', load('c1'));
  assert.equal(cache.size, 2);
  assert.equal(await cache.get('a', load('a5')), 'a5', 'the oldest key went first');
  assert.equal(loads, 6);
});

test('a failed load is not kept', async () => {
  const cache = new LoadingCache<string>({ maxEntries: 10 });
  await assert.rejects(
    cache.get('k', async () => {
      throw new Error('down');
    }),
    /down/,
  );
  assert.equal(await cache.get('k', async () => 'up'), 'up');
});
