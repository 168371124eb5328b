/**
 * A three-tier chain as a multi-region deployment runs it: L1, a regional Redis ("us") and a
 * global Redis ("global"), two real redis-server processes.
 */
import { holdsEntry } from '../helpers/stored.js';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCache,
  InvalidOptionError,
  memoryTier,
  redisTier,
  type CacheError,
  type CacheOptions,
  type Duration,
  type TierCache,
} from '../../src/index.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

let us: RedisProcess;
let global: RedisProcess;
let usAdmin: Redis;
let globalAdmin: Redis;
let prefix: string;
let counter = 0;
const caches: TierCache[] = [];

beforeAll(async () => {
  [us, global] = await Promise.all([startRedis({ label: 'us' }), startRedis({ label: 'global' })]);
  usAdmin = us.client();
  globalAdmin = global.client();
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await stopAllRedis();
});

beforeEach(() => {
  prefix = `chain${++counter}:`;
});

/** An instance of the service: its own L1 and connections to both Redis servers. */
function instance(
  options: Omit<CacheOptions, 'tiers'> = {},
  servers = { us, global },
  usTimeout: Duration = '3s',
): TierCache {
  // Generous timeouts: a loaded 2-core machine must not turn a slow reply into a tier fault.
  const cache = createCache({
    tiers: [
      memoryTier({ ttl: '1m' }),
      redisTier({ client: servers.us.client(), name: 'us', ttl: '10m', prefix, timeout: usTimeout }),
      redisTier({ client: servers.global.client(), name: 'global', ttl: '1h', prefix, timeout: '3s' }),
    ],
    ...options,
  });
  caches.push(cache);
  return cache;
}

const hitsByTier = (cache: TierCache) => Object.fromEntries(cache.stats().tiers.map((t) => [t.name, t.hits]));

async function promoted(admin: Redis, key: string): Promise<void> {
  await waitFor(
    async () => ((await holdsEntry(admin, prefix + key)) ? done(true) : notYet('not promoted yet')),
    {
      description: `${key} promoted`,
    },
  );
}

describe('a three-tier chain (L1, regional Redis, global Redis)', () => {
  it('writes every tier, and each copy is capped by the one below', async () => {
    const cache = instance();
    await cache.set('k', 'v', { ttl: { us: '2h', global: '30m' } });
    const [usLife, globalLife] = await Promise.all([
      usAdmin.pttl(prefix + 'k'),
      globalAdmin.pttl(prefix + 'k'),
    ]);
    expect(globalLife).toBeGreaterThan(29 * 60_000);
    expect(globalLife).toBeLessThanOrEqual(30 * 60_000);
    // us asked for 2 h but may not outlive global's 30 min.
    expect(usLife).toBeLessThanOrEqual(30 * 60_000);
    expect(usLife).toBeGreaterThan(29 * 60_000);
  });

  it('promotes a global hit to the regional tier and L1 of another instance, never outliving the source', async () => {
    const writer = instance();
    await writer.set('p', { sku: 1 }, { writeTo: ['global'], ttl: '20s' });
    expect(await holdsEntry(usAdmin, prefix + 'p')).toBe(false);

    const reader = instance();
    expect(await reader.get('p')).toEqual({ sku: 1 });
    expect(hitsByTier(reader)).toEqual({ memory: 0, us: 0, global: 1 });
    await promoted(usAdmin, 'p');
    // The regional copy gets the life the global copy has left (≤ 20 s), not its own 10 min.
    const usLife = await usAdmin.pttl(prefix + 'p');
    expect(usLife).toBeGreaterThan(0);
    expect(usLife).toBeLessThanOrEqual(20_000);
    expect(await reader.get('p')).toEqual({ sku: 1 });
    expect(hitsByTier(reader)).toEqual({ memory: 1, us: 0, global: 1 });

    // A third instance finds it regionally now.
    const third = instance();
    expect(await third.get('p')).toEqual({ sku: 1 });
    expect(hitsByTier(third)).toEqual({ memory: 0, us: 1, global: 0 });
  });

  it('writeTo on a call writes the named tiers and drops older copies from the others', async () => {
    const cache = instance();
    await cache.set('w', 'old');
    await cache.set('w', 'new', { writeTo: ['memory', 'us'] });
    expect(await holdsEntry(usAdmin, prefix + 'w')).toBe(true);
    // global held 'old': it must not serve it to anyone later.
    expect(await holdsEntry(globalAdmin, prefix + 'w')).toBe(false);
    expect(await cache.get('w')).toBe('new');

    // Without L1: the next read comes from the regional tier.
    await cache.set('x', 'v1', { writeTo: ['us', 'global'] });
    expect(await cache.get('x')).toBe('v1');
    expect(hitsByTier(cache)['us']).toBe(1);

    // getOrSet's loader result follows writeTo too.
    expect(await cache.getOrSet('y', () => 'loaded', { writeTo: ['global'] })).toBe('loaded');
    expect(await holdsEntry(usAdmin, prefix + 'y')).toBe(false);
    expect(await holdsEntry(globalAdmin, prefix + 'y')).toBe(true);
  });

  it("the cache's writeTo keeps writes and promotions out of a read-only tier", async () => {
    const other = instance();
    await other.set('shared', 'from-us', { writeTo: ['us'] });
    const cache = instance({ writeTo: ['memory', 'global'] });
    await cache.set('a', 1);
    expect(await holdsEntry(usAdmin, prefix + 'a')).toBe(false);
    expect(await holdsEntry(globalAdmin, prefix + 'a')).toBe(true);
    // Reads still use the regional tier...
    expect(await cache.get('shared')).toBe('from-us');
    expect(hitsByTier(cache)['us']).toBe(1);
    // ...and a global hit is promoted to L1 only.
    const heard = cache.stats().bus.messagesIn;
    await other.set('g', 'from-global', { writeTo: ['global'] });
    // Let the write's invalidation reach this instance first, or it would drop the L1 copy.
    await waitFor(
      async () => (cache.stats().bus.messagesIn > heard ? done(true) : notYet('no bus message yet')),
      { description: 'the invalidation of g' },
    );
    expect(await cache.get('g')).toBe('from-global');
    expect(await cache.get('g')).toBe('from-global');
    expect(hitsByTier(cache)).toEqual({ memory: 1, us: 1, global: 1 });
    expect(await holdsEntry(usAdmin, prefix + 'g')).toBe(false);
  });

  it('rejects writeTo naming an unknown tier, at construction and per call', async () => {
    expect(() => instance({ writeTo: ['eu'] })).toThrow(InvalidOptionError);
    expect(() => instance({ writeTo: [] })).toThrow(/non-empty/);
    const cache = instance();
    await expect(cache.set('k', 1, { writeTo: ['memory', 'eu'] })).rejects.toThrow(/no tier is named "eu"/);
  });

  it('degrades past a killed regional tier to the global one, and past both to the origin', async () => {
    const regional = await startRedis({ label: 'us-doomed' });
    const errors: CacheError[] = [];
    const writer = instance({}, { us: regional, global });
    await writer.set('d', 'kept globally');
    await regional.kill();

    // The dead tier's calls end at a short timeout (or at once, once its client knows).
    const reader = instance({ onError: (error) => errors.push(error) }, { us: regional, global }, '250ms');
    expect(await reader.get('d')).toBe('kept globally');
    expect(hitsByTier(reader)).toMatchObject({ us: 0, global: 1 });
    // Writes still reach L1 and the global tier.
    await reader.set('e', 'written');
    expect(await globalAdmin.get(prefix + 'e')).not.toBeNull();
    // Tier faults name the regional tier; the bus (on the first Redis tier) reports its own.
    const tierFaults = errors.filter((e) => e.code === 'E_TIER');
    expect(tierFaults.length).toBeGreaterThan(0);
    expect(tierFaults.every((e) => e.tier === 'us')).toBe(true);
    expect(errors.every((e) => e.code === 'E_TIER' || e.code === 'E_BUS')).toBe(true);
    expect(reader.stats().tiers.find((t) => t.name === 'us')!.errors).toBeGreaterThan(0);

    const lonely = await startRedis({ label: 'global-doomed' });
    const orphan = instance({}, { us: regional, global: lonely }, '250ms');
    await lonely.kill();
    expect(await orphan.getOrSet('o', () => 'from origin')).toBe('from origin');
    expect(orphan.stats().loader.calls).toBe(1);
  });
});
