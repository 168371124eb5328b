import { describe, expect, it } from 'vitest';
import {
  createCache,
  InvalidOptionError,
  memoryTier,
  type CacheError,
  type TierCache,
} from '../../src/index.js';
import { guardTier } from '../../src/extend.js';
import { MemoryRemoteTier } from '../helpers/memory-remote-tier.js';

function refusal(make: () => unknown): InvalidOptionError {
  try {
    make();
  } catch (error) {
    if (error instanceof InvalidOptionError) return error;
    throw error;
  }
  throw new Error('expected the configuration to be refused');
}

describe('a tier serves one open cache: hooks are given to it, never assigned onto it', () => {
  it('a cache runs a frozen tier: the cache adds nothing to the tier object, and its reports still arrive', async () => {
    const inner = new MemoryRemoteTier({ name: 'remote' });
    const tier = guardTier(inner);
    const l1 = memoryTier({ maxEntries: 2 });
    Object.freeze(tier);
    Object.freeze(l1);
    const errors: CacheError[] = [];
    const cache = createCache({ tiers: [l1, tier], onError: (error) => errors.push(error) });
    inner.plant('bad', 'not a payload {');
    expect(await cache.get('bad')).toBeUndefined();
    expect(cache.stats().corrupt).toBe(1);
    expect(errors.map((error) => error.code)).toEqual(['E_CORRUPT_ENTRY']);
    const removed: string[] = [];
    cache.on('remove', ({ key, reason }) => removed.push(`${key}:${reason}`));
    await cache.setMany(['a', 'b', 'c'].map((key) => ({ key, value: key })));
    // Which key goes is the eviction policy's choice; that the cache hears it is the point.
    expect(removed).toHaveLength(1);
    expect(removed[0]).toMatch(/^[ab]:evict$/);
    await cache.close();
  });

  it('refuses a memory tier or a remote tier another open cache runs, naming it, and leaves that cache working', async () => {
    const l1 = memoryTier();
    const remote = new MemoryRemoteTier({ name: 'remote' });
    const first = createCache({ tiers: [l1, remote] });
    await first.set('k', 1);

    const again = refusal(() => createCache({ tiers: [l1] }));
    expect(again.option).toBe('tiers[0]');
    expect(again.message).toMatch(/already serves another open cache/);
    const remoteAgain = refusal(() => createCache({ tiers: [memoryTier(), remote] }));
    expect(remoteAgain.option).toBe('tiers[1]');
    // A refused configuration closes the tiers it was given, except those another cache runs.
    expect(remote.closes).toBe(0);

    remote.plant('bad', 'not a payload {');
    expect(await first.get('bad')).toBeUndefined();
    expect(first.stats().corrupt).toBe(1);
    expect(await first.get('k')).toBe(1);
    await first.close();
  });

  it('once its cache is closed, a tier may serve a new cache, whose hooks alone hear it', async () => {
    const remote = new MemoryRemoteTier({ name: 'remote' });
    const first: TierCache = createCache({ tiers: [remote] });
    await first.close();
    const second = createCache({ tiers: [remote] });
    remote.plant('bad', 'not a payload {');
    expect(await second.get('bad')).toBeUndefined();
    expect(second.stats().corrupt).toBe(1);
    expect(first.stats().corrupt).toBe(0);
    await second.close();
  });
});
