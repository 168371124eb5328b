import { describe, expect, it } from 'vitest';
import { createCache, memoryTier } from '../../src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';

describe('stats', () => {
  it('counts L1 removals by reason, and reports entries and bytes', async () => {
    const clock = new FakeClock();
    const cache = createCache({
      tiers: [memoryTier({ maxEntries: 2, policy: 'lru', ttl: '1s' })],
      clock: clock.read,
    });
    await cache.set('a', 1);
    await cache.set('a', 2); // replace
    await cache.set('b', 1);
    await cache.set('c', 1); // evicts a
    await cache.delete('b'); // delete
    clock.advance(1_001);
    expect(await cache.get('c')).toBeUndefined(); // expire
    const [tier] = cache.stats().tiers;
    expect(tier).toMatchObject({
      name: 'memory',
      kind: 'memory',
      sets: 4,
      deletes: 1,
      entries: 0,
      bytes: 0,
      evictions: { evict: 1, expire: 1, delete: 1, invalidate: 0, replace: 1 },
      latency: {},
    });
  });

  it('times loader calls, counts their errors, and starts bus and stale counters at zero', async () => {
    const cache = createCache();
    await cache.getOrSet('a', () => 1);
    await cache.getOrSet('b', () => Promise.reject(new Error('down'))).catch(() => {});
    await cache.getManyOrSet(['c', 'd'], (keys) => Promise.resolve(keys.map(() => 1)));
    const stats = cache.stats();
    expect(stats.loader).toMatchObject({ calls: 3, errors: 1, latency: { count: 3 } });
    expect(stats.loader.latency.max).toBeGreaterThanOrEqual(stats.loader.latency.p50);
    expect(stats.bus).toMatchObject({ messagesOut: 0, messagesIn: 0, subscribed: false, gaps: 0, queued: 0 });
    expect(stats.staleServed).toBe(0);
  });
});
