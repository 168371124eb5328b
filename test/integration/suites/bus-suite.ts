import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheOptions, type TierCache } from '../../../src/index.js';
import type { Backend } from '../../helpers/backends.js';
import { waitFor, done, notYet } from '../../helpers/wait-for.js';
import { heard, subscribed } from '../../helpers/bus-waits.js';

/**
 * The invalidation bus between instances on real Redis, for any backend: test/integration runs
 * it on a single server (classic pub/sub), test/cluster on a three-master cluster (sharded
 * pub/sub by default; the cluster file runs it with classic pub/sub too).
 */
export function busSuite(backend: Backend, busOptions: CacheOptions['bus'] = {}): void {
  let prefixCounter = 0;
  const caches: TierCache[] = [];

  beforeAll(() => backend.start(), 60_000);

  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    await backend.stop();
  });

  function instance(prefix: string, options: CacheOptions = {}): TierCache {
    const cache = createCache({
      tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: backend.client(), prefix })],
      bus: busOptions,
      ...options,
    });
    caches.push(cache);
    return cache;
  }

  describe('the invalidation bus between instances', () => {
    it('drops the other instances’ L1 copies on set, delete and clear, and keeps the writer’s own', async () => {
      const prefix = `bus${++prefixCounter}:`;
      const [a, b, c] = [instance(prefix), instance(prefix), instance(prefix)];
      await subscribed(a, b, c);
      await heard([b, c], () => a.set('k', 1));
      expect(await b.get('k')).toBe(1);
      expect(await c.get('k')).toBe(1);
      const removed: string[] = [];
      b.on('remove', (e) => removed.push(`${e.key}:${e.reason}`));
      await a.set('k', 2);
      await waitFor(async () => (removed.includes('k:invalidate') ? done(undefined) : notYet('no removal')), {
        description: 'b to drop k',
        intervalMs: 5,
      });
      expect(await b.get('k')).toBe(2);
      await waitFor(async () => ((await c.get('k')) === 2 ? done(undefined) : notYet('c still old')), {
        description: 'c to see 2',
        intervalMs: 5,
      });
      // The writer ignores its own message: its fresh L1 copy stays.
      expect(a.stats().tiers[0]!.hits).toBe(0);
      expect(await a.get('k')).toBe(2);
      expect(a.stats().tiers[0]!.hits).toBe(1);
      await b.delete('k');
      await waitFor(
        async () => ((await a.get('k')) === undefined ? done(undefined) : notYet('a still has k')),
        {
          description: 'a to lose k',
          intervalMs: 5,
        },
      );
      await heard([b, c], () => a.set('x', 1));
      expect(await c.get('x')).toBe(1);
      await b.clear();
      await waitFor(
        async () => (c.stats().memory!.entries === 0 ? done(undefined) : notYet('c has entries')),
        {
          description: 'c to clear L1',
          intervalMs: 5,
        },
      );
      expect(a.stats().bus.messagesOut).toBeGreaterThan(0);
      expect(c.stats().bus.messagesIn).toBeGreaterThanOrEqual(3);
    });
  });
}
