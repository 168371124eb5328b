import { describe, expect, it } from 'vitest';
import { cacheHeaders, createCache, memoryTier } from '../../src/index.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';

function setup() {
  const clock = new FakeClock();
  const cache = createCache({ tiers: [memoryTier({ ttl: '60s' })], clock: clock.read });
  return { cache, clock };
}

describe('entries with metadata', () => {
  it('getOrSetEntry reports a loaded value as from the origin, then as an L1 hit', async () => {
    const { cache, clock } = setup();
    const loaded = await cache.getOrSetEntry('p:1', () => ({ id: 1 }), { ttl: '30s' });
    expect(loaded).toEqual({
      value: { id: 1 },
      createdAt: clock.now,
      expiresAt: clock.now + 30_000,
      tier: 'origin',
    });
    const created = clock.now;
    clock.advance(10_000);
    const hit = await cache.getOrSetEntry('p:1', () => ({ id: 2 }));
    expect(hit).toEqual({
      value: { id: 1 },
      createdAt: created,
      expiresAt: created + 30_000,
      tier: 'memory',
    });
    expect(await cache.getEntry('p:1')).toEqual(hit);
    expect(cache.stats().tiers[0]).toMatchObject({ hits: 2, misses: 1 });
  });

  it('getEntry is undefined for a missing key and counts the miss', async () => {
    const { cache } = setup();
    expect(await cache.getEntry('nope')).toBeUndefined();
    expect(cache.stats().tiers[0]!.misses).toBe(1);
  });

  it('shares one loader call with getOrSet callers of the same key', async () => {
    const { cache, clock } = setup();
    const release = gate<string>();
    let calls = 0;
    const loader = () => {
      calls++;
      return release.promise;
    };
    const plain = cache.getOrSet('k', loader);
    const first = cache.getOrSetEntry('k', loader);
    const second = cache.getOrSetEntry('k', loader);
    release.resolve('v');
    expect(await plain).toBe('v');
    const expected = { value: 'v', createdAt: clock.now, expiresAt: clock.now + 60_000, tier: 'origin' };
    expect(await first).toEqual(expected);
    expect(await second).toEqual(expected);
    expect(calls).toBe(1);
  });

  it('a value the loader chose not to cache is fresh for no time', async () => {
    const { cache, clock } = setup();
    const info = await cache.getOrSetEntry('k', (context) => {
      context.skipCache();
      return 'once';
    });
    expect(info).toEqual({ value: 'once', createdAt: clock.now, expiresAt: clock.now, tier: 'origin' });
    expect(await cache.get('k')).toBeUndefined();
  });

  it('joins a getManyOrSet flight and describes what its loader produced', async () => {
    const { cache, clock } = setup();
    const release = gate<string[]>();
    const batch = cache.getManyOrSet(['a', 'b'], () => release.promise);
    const single = cache.getOrSetEntry('a', () => 'not called');
    release.resolve(['A', 'B']);
    await batch;
    expect(await single).toEqual({
      value: 'A',
      createdAt: clock.now,
      expiresAt: clock.now + 60_000,
      tier: 'origin',
    });
  });

  it('validates keys and refuses calls after close', async () => {
    const { cache } = setup();
    await expect(cache.getEntry('')).rejects.toMatchObject({ code: 'E_INVALID_KEY' });
    await expect(cache.getOrSetEntry('k', 'not a function' as never)).rejects.toMatchObject({
      code: 'E_INVALID_OPTION',
    });
    await cache.close();
    await expect(cache.getOrSetEntry('k', () => 1)).rejects.toMatchObject({ code: 'E_CLOSED' });
  });

  it('clone mode hands out copies with the metadata too', async () => {
    const cache = createCache({ tiers: [memoryTier({ valueMode: 'clone' })] });
    await cache.set('k', { n: 1 });
    const a = await cache.getEntry<{ n: number }>('k');
    a!.value.n = 2;
    expect((await cache.getEntry<{ n: number }>('k'))!.value).toEqual({ n: 1 });
  });
});

describe('a stale period is reported for grace only (issue 13 §7)', () => {
  it('a plain write under fail-safe (kept, but no grace) reports no staleUntil and no stale-* headers', async () => {
    const clock = new FakeClock();
    const cache = createCache({
      tiers: [memoryTier({ ttl: '30s' })],
      clock: clock.read,
      failSafe: { maxStaleAge: '29s' },
    });
    await cache.set('k', 1);
    const entry = await cache.getEntry('k');
    expect(entry).toEqual({ value: 1, createdAt: clock.now, expiresAt: clock.now + 30_000, tier: 'memory' });
    expect(cacheHeaders(entry!, {}, clock.now)['cache-control']).toBe('public, max-age=30');
    const loaded = await cache.getOrSetEntry('l', () => 2);
    expect(loaded.staleUntil).toBeUndefined();
    await cache.close();
  });

  it('grace is reported up to its end, not to the longer fail-safe keep; a call can give its own', async () => {
    const clock = new FakeClock();
    const cache = createCache({
      tiers: [memoryTier({ ttl: '30s' })],
      clock: clock.read,
      grace: '10s',
      failSafe: { maxStaleAge: '5m' },
    });
    await cache.set('k', 1);
    const entry = (await cache.getEntry('k'))!;
    expect(entry.staleUntil).toBe(entry.expiresAt + 10_000);
    expect(cacheHeaders(entry, {}, clock.now)['cache-control']).toBe(
      'public, max-age=30, stale-while-revalidate=10, stale-if-error=10',
    );
    const own = await cache.getOrSetEntry('o', () => 1, { grace: '20s' });
    expect(own.staleUntil).toBe(own.expiresAt + 20_000);
    await cache.close();
  });
});
