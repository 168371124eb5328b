import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError } from '../../src/index.js';
import { PATIENT } from '../helpers/backends.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { parseInfo, startRedis } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';
import { heard, subscribed } from '../helpers/bus-waits.js';

const redis = redisFixture({ timeout: PATIENT });
const { instance, track } = redis;
let prefixCounter = 0;

describe('tags', () => {
  it('invalidateTags drops tagged entries from L1 and L2 on this and another instance, nothing else', async () => {
    const prefix = `tags${++prefixCounter}:`;
    const clock = new FakeClock();
    const [a, b] = [instance(prefix, { clock: clock.read }), instance(prefix, { clock: clock.read })];
    await subscribed(a, b);
    await heard([b], () =>
      a.setMany([
        { key: 'p1', value: 'one', tags: ['product:1', 'catalog'] },
        { key: 'p2', value: 'two', tags: ['product:2', 'catalog'] },
        { key: 'plain', value: 'untagged' },
      ]),
    );
    await a.set('p3', 'three', { tags: ['product:3'] });
    for (const key of ['p1', 'p2', 'p3', 'plain']) expect(await b.get(key)).toBeDefined();
    expect(b.stats().memory!.entries).toBe(4);
    clock.advance(10);
    await heard([b], () => a.invalidateTags(['catalog']));
    clock.advance(10);
    // Both instances miss in L1, and the L2 copies are misses too (they are still in Redis).
    for (const cache of [a, b]) {
      expect(await cache.get('p1')).toBeUndefined();
      expect(await cache.get('p2')).toBeUndefined();
      expect(await cache.get('p3')).toBe('three');
      expect(await cache.get('plain')).toBe('untagged');
    }
    expect(await redis.server.cli('EXISTS', `${prefix}p1`)).toBe(1);
    // A third instance that never heard the message reads the tag time from Redis.
    const c = instance(prefix, { clock: clock.read, bus: false });
    expect(await c.get('p1')).toBeUndefined();
    expect(await c.getMany(['p1', 'p2', 'p3', 'plain'])).toEqual([undefined, undefined, 'three', 'untagged']);
    // Entries written after the invalidation are served, on every instance.
    await heard([b], () => a.set('p1', 'one v2', { tags: ['product:1', 'catalog'] }));
    expect(await b.get('p1')).toBe('one v2');
    expect(await c.get('p1')).toBe('one v2');
    expect(await a.getOrSet('p2', () => 'two v2', { tags: ['catalog'] })).toBe('two v2');
    expect(await b.get('p2')).toBe('two v2');
  });

  it('takes tags from the loader context, added to the call’s', async () => {
    const prefix = `tags${++prefixCounter}:`;
    const clock = new FakeClock();
    const [a, b] = [instance(prefix, { clock: clock.read }), instance(prefix, { clock: clock.read })];
    await subscribed(a, b);
    let loads = 0;
    const loader = (context: { setTags(tags: readonly string[]): void }): string => {
      loads++;
      context.setTags(['row:7']);
      return `v${loads}`;
    };
    expect(await a.getOrSet('q', loader, { tags: ['query'] })).toBe('v1');
    expect(await b.getOrSet('q', loader)).toBe('v1');
    clock.advance(5);
    await heard([a], () => b.invalidateTags(['row:7']));
    clock.advance(5);
    expect(await a.getOrSet('q', loader, { tags: ['query'] })).toBe('v2');
    expect(await b.getOrSet('q', loader)).toBe('v2');
    clock.advance(5);
    await heard([b], () => a.invalidateTags(['query']));
    clock.advance(5);
    expect(await b.getOrSet('q', loader)).toBe('v3');
    expect(loads).toBe(3);
    await expect(a.getOrSet('x', () => 1, { tags: ['ok', ''] })).rejects.toThrow(/tags/);
    await expect(a.set('x', 1, { tags: 'catalog' as unknown as string[] })).rejects.toThrow(/tags/);
    await expect(a.invalidateTags([7 as unknown as string])).rejects.toThrow(/tags/);
    await expect(
      a.getOrSet('y', (context) => {
        context.setTags('nope' as unknown as string[]);
        return 1;
      }),
    ).rejects.toThrow(/setTags/);
  });

  it('is O(1) per tag: one command per tag however many entries carry it, no scan', async () => {
    const own = await startRedis();
    try {
      const clock = new FakeClock();
      const cache = instance('o1:', { clock: clock.read, bus: false }, own);
      await cache.setMany(Array.from({ length: 500 }, (_, i) => ({ key: `k${i}`, value: i, tags: ['big'] })));
      await own.cli('CONFIG', 'RESETSTAT');
      clock.advance(1);
      await cache.invalidateTags(['big', 'other']);
      const stats = parseInfo(String(await own.cli('INFO', 'commandstats')));
      const calls = [...stats].filter(([name]) => name.startsWith('cmdstat_'));
      expect(calls.some(([name]) => /scan|keys|unlink|del$/.test(name))).toBe(false);
      const count = (name: string): number => Number(/calls=(\d+)/.exec(stats.get(name) ?? '')?.[1] ?? 0);
      expect(count('cmdstat_eval')).toBe(2);
      expect(await own.cli('DBSIZE')).toBe(502);
      clock.advance(1);
      expect(await cache.getMany(['k0', 'k499'])).toEqual([undefined, undefined]);
    } finally {
      await own.stop();
    }
  });

  it('never caches a load that started before an invalidation of its tag as fresh', async () => {
    for (let round = 0; round < 10; round++) {
      const prefix = `race${++prefixCounter}:`;
      const clock = new FakeClock();
      // Same instance: the fill guard keeps the older result out of every tier.
      const a = instance(prefix, { clock: clock.read });
      const loading = gate<string>();
      const started = gate();
      const first = a.getOrSet(
        'r',
        () => {
          started.resolve();
          return loading.promise;
        },
        { tags: ['t'] },
      );
      await started.promise;
      clock.advance(1);
      await a.invalidateTags(['t']);
      clock.advance(1);
      loading.resolve('old');
      expect(await first).toBe('old');
      expect(await a.getOrSet('r', () => 'new', { tags: ['t'] })).toBe('new');

      // Another instance that has not heard the invalidation (no bus) writes the older result:
      // it is dated from the load's start, so it is a miss everywhere.
      const b = instance(prefix, { clock: clock.read, bus: false });
      const loadingB = gate<string>();
      const startedB = gate();
      const second = b.getOrSet(
        'r2',
        () => {
          startedB.resolve();
          return loadingB.promise;
        },
        { tags: ['u'] },
      );
      await startedB.promise;
      clock.advance(1);
      await a.invalidateTags(['u']);
      clock.advance(1);
      loadingB.resolve('old');
      expect(await second).toBe('old');
      expect(await a.get('r2')).toBeUndefined();
    }
  });

  it('does not serve a tag-invalidated entry stale under grace or fail-safe', async () => {
    const prefix = `grace${++prefixCounter}:`;
    const clock = new FakeClock();
    const a = instance(prefix, { clock: clock.read, grace: '1h', failSafe: true });
    expect(await a.getOrSet('g', () => 'old', { ttl: '1s', tags: ['t'] })).toBe('old');
    clock.advance(2_000);
    await a.invalidateTags(['t']);
    clock.advance(1);
    // Expired and invalidated: grace would answer 'old' at once; the tag makes it a plain miss.
    await expect(
      a.getOrSet('g', () => {
        throw new Error('origin down');
      }),
    ).rejects.toThrow(/origin down/);
    expect(await a.getOrSet('g', () => 'new', { tags: ['t'] })).toBe('new');
  });

  it('has() answers as get() does below L1: not for a tag-invalidated copy, nor an expired one kept for grace', async () => {
    const prefix = `has${++prefixCounter}:`;
    const clock = new FakeClock();
    const writer = instance(prefix, { clock: clock.read, grace: '1h' });
    // No L1 and no bus: has() can only go by what Redis holds.
    const reader = createCache({
      tiers: [redisTier({ client: redis.server.client(), prefix, timeout: '5s' })],
      clock: clock.read,
      bus: false,
    });
    track(reader);
    await writer.set('tagged', 'v', { tags: ['t'] });
    await writer.set('short', 'v', { ttl: '1s' });
    expect([await reader.has('tagged'), await reader.has('short')]).toEqual([true, true]);
    clock.advance(10);
    await writer.invalidateTags(['t']);
    clock.advance(2_000);
    // Both copies are still in Redis (the expired one for grace): neither is a value get() serves.
    expect(await redis.server.cli('EXISTS', `${prefix}tagged`, `${prefix}short`)).toBe(2);
    expect([await reader.get('tagged'), await reader.get('short')]).toEqual([undefined, undefined]);
    expect([await reader.has('tagged'), await reader.has('short')]).toEqual([false, false]);
  });

  it('warmFrom tags what it writes: the call’s tags and each item’s own', async () => {
    const prefix = `warm${++prefixCounter}:`;
    const clock = new FakeClock();
    const cache = instance(prefix, { clock: clock.read });
    const rows = [
      { id: 1, brand: 'acme' },
      { id: 2, brand: 'globex' },
    ];
    const progress = await cache.warmFrom(rows, (row) => `row:${row.id}`, {
      tags: ['catalog'],
      tagsOf: (row) => [`brand:${row.brand}`],
    });
    expect(progress).toEqual({ processed: 2, loaded: 2 });
    clock.advance(10);
    await cache.invalidateTags(['brand:acme']);
    clock.advance(10);
    expect(await cache.getMany(['row:1', 'row:2'])).toEqual([undefined, { id: 2, brand: 'globex' }]);
    await cache.invalidateTags(['catalog']);
    clock.advance(10);
    expect(await cache.get('row:2')).toBeUndefined();
    await expect(
      cache.warmFrom(rows, (row) => `row:${row.id}`, { tagsOf: 'brand' as never }),
    ).rejects.toThrow(/tagsOf/);
  });

  it('bounds how long a cached tag time is trusted without the bus', async () => {
    const prefix = `bound${++prefixCounter}:`;
    const clock = new FakeClock();
    const writer = instance(prefix, { clock: clock.read, bus: false });
    const reader = createCache({
      tiers: [redisTier({ client: redis.server.client(), prefix, timeout: '5s' })],
      clock: clock.read,
      bus: false,
    });
    track(reader);
    await writer.set('k', 1, { tags: ['t'] });
    expect(await reader.get('k')).toBe(1);
    clock.advance(10);
    await writer.invalidateTags(['t']);
    // The reader trusts the time it read for up to 1 s, then reads it again.
    expect(await reader.get('k')).toBe(1);
    clock.advance(1_001);
    expect(await reader.get('k')).toBeUndefined();
  });

  it('degrades with Redis down: reports, keeps the invalidation locally, never crashes', async () => {
    const own = await startRedis();
    const errors: CacheError[] = [];
    const clock = new FakeClock();
    const cache = createCache({
      tiers: [
        memoryTier({ ttl: '1h' }),
        redisTier({ client: own.client(), prefix: 'down:', timeout: '300ms' }),
      ],
      clock: clock.read,
      onError: (error) => errors.push(error),
    });
    track(cache);
    try {
      await cache.set('k', 1, { tags: ['t'] });
      await cache.set('plain', 2);
      await own.kill();
      clock.advance(1);
      await cache.invalidateTags(['t']);
      expect(errors.some((e) => e.code === 'E_TIER')).toBe(true);
      expect(await cache.get('k')).toBeUndefined();
      expect(await cache.get('plain')).toBe(2);
      await own.restart();
      clock.advance(1);
      expect(await cache.get('k')).toBeUndefined();
      // The time Redis missed goes out with the next tag call once Redis answers again.
      await cache.set('k', 1, { tags: ['t'] });
      await waitFor(async () => (own.state === 'running' ? done(undefined) : notYet('down')), {
        description: 'redis up',
      });
      await waitFor(
        async () => {
          await cache.invalidateTags(['other']);
          return (await own.cli('EXISTS', 'down:__tag:t')) === 1 ? done(undefined) : notYet('not resent');
        },
        { description: 'the missed tag time to reach Redis', timeoutMs: 10_000, intervalMs: 100 },
      );
    } finally {
      await own.stop();
    }
  });
});
