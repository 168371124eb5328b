import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError } from '../../src/index.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { startRedis } from '../helpers/redis-server.js';
import { subscribed } from '../helpers/bus-waits.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

const redis = redisFixture();
const { instance, track } = redis;

describe('namespaces', () => {
  it('clear() is one INCR and one message: every instance stops serving the old entries', async () => {
    const [a, b] = [instance('ns1:'), instance('ns1:')];
    await subscribed(a, b);
    const products = a.namespace('products');
    const other = a.namespace('orders');
    await products.set('1', 'old');
    await other.set('1', 'kept');
    expect(await redis.server.cli('EXISTS', 'ns1:products:v0:1')).toBe(1);
    const bProducts = b.namespace('products');
    expect(await bProducts.get('1')).toBe('old');
    expect(await bProducts.get('1')).toBe('old'); // from b's L1
    const incrs = async () =>
      Number(
        /calls=(\d+)/.exec(
          String(await redis.server.cli('INFO', 'commandstats'))
            .split('\n')
            .find((l) => l.startsWith('cmdstat_incr:')) ?? 'calls=0',
        )![1],
      );
    const before = await incrs();
    await products.clear();
    expect(await incrs()).toBe(before + 1);
    expect(await products.get('1')).toBeUndefined();
    await waitFor(
      async () => ((await bProducts.get('1')) === undefined ? done(0) : notYet('b still serves old')),
      {
        description: 'b to see the clear',
        intervalMs: 5,
      },
    );
    expect(await bProducts.getOrSet('1', () => 'new')).toBe('new');
    expect(await products.get('1')).toBe('new');
    expect(await b.namespace('orders').get('1')).toBe('kept');
    // A fresh instance reads the version from Redis.
    expect(await instance('ns1:').namespace('products').get('1')).toBe('new');
  });

  it('bypasses the cache rather than failing while Redis cannot say the version', async () => {
    const own = await startRedis();
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [memoryTier(), redisTier({ client: own.client(), prefix: 'down:', timeout: '100ms' })],
      bus: false, // so every call reads the version from Redis
      onError: (error) => errors.push(error),
    });
    track(cache);
    const ns = cache.namespace('p');
    await ns.set('k', 'cached');
    await own.pause(); // a hung Redis: without a timeout the version read would wait forever
    try {
      let calls = 0;
      const load = () => {
        calls++;
        return 'origin';
      };
      expect(await ns.getOrSet('k', load)).toBe('origin');
      expect(calls).toBe(1);
      expect(await ns.get('k')).toBeUndefined();
      await expect(ns.clear()).rejects.toMatchObject({ code: 'E_TIER' });
      expect(errors.some((e) => e.code === 'E_TIER' && /namespace version read/.test(e.message))).toBe(true);
    } finally {
      await own.resume();
    }
    // Back to caching once Redis answers. (The timed-out INCR may still have run on resume, as
    // a timed-out command can: its outcome is unknown, so the old entries may be gone.)
    await ns.set('after', 'cached');
    expect(await ns.get('after')).toBe('cached');
    await own.stop();
  });

  it('works without Redis as a local version counter', async () => {
    const cache = createCache();
    track(cache);
    const ns = cache.namespace('n');
    await ns.set('k', 1);
    await ns.clear();
    expect(await ns.get('k')).toBeUndefined();
    expect(() => cache.namespace('a:b')).toThrow(/namespace/);
  });
});
