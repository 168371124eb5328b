import keyvTestSuite from '@keyv/test-suite';
import { createCache as createCacheManager } from 'cache-manager';
import Keyv from 'keyv';
import * as vitest from 'vitest';
import { describe, expect, it } from 'vitest';
import { createCache, hasErrorCode, memoryTier } from '../../src/index.js';
import { TierCacheKeyv } from '../../src/keyv/index.js';
import { PATIENT } from '../helpers/backends.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

const redis = redisFixture({ timeout: PATIENT });
const { instance, track } = redis;

/** Calls of a Redis command on the file's server so far. */
async function calls(command: string): Promise<number> {
  const line = String(await redis.server.cli('INFO', 'commandstats'))
    .split('\n')
    .find((l) => l.startsWith(`cmdstat_${command}:`));
  return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)![1]);
}

describe('the published Keyv compliance suite (@keyv/test-suite)', () => {
  describe('over a cache with L1 and Redis', () => {
    let cache: ReturnType<typeof instance> | undefined;
    // The suite calls store() for every Keyv it makes; they all share one cache, as stores of
    // one Redis share its keys.
    keyvTestSuite(vitest, Keyv, () => new TierCacheKeyv((cache ??= instance('kvs:'))));
  });

  describe('over an L1-only cache', () => {
    const cache = track(createCache({ tiers: [memoryTier()] }));
    keyvTestSuite(vitest, Keyv, () => new TierCacheKeyv(cache));
  });
});

describe('TierCacheKeyv', () => {
  it('clear() empties its Keyv namespace on every instance and leaves other namespaces alone', async () => {
    const [a, b] = [instance('kv1:'), instance('kv1:')];
    await subscribed(a, b);
    const sessionsA = new Keyv({ store: new TierCacheKeyv(a), namespace: 'sessions' });
    const sessionsB = new Keyv({ store: new TierCacheKeyv(b), namespace: 'sessions' });
    const usersB = new Keyv({ store: new TierCacheKeyv(b), namespace: 'users' });
    await sessionsA.set('s1', { user: 7 });
    await usersB.set('s1', 'a user, not a session');
    expect(await sessionsB.get('s1')).toEqual({ user: 7 }); // now in b's L1 too
    await sessionsA.clear();
    expect(await sessionsA.get('s1')).toBeUndefined();
    await waitFor(
      async () => ((await sessionsB.get('s1')) === undefined ? done(0) : notYet('b still has s1')),
      { description: 'b to drop the cleared namespace', intervalMs: 5 },
    );
    expect(await usersB.get('s1')).toBe('a user, not a session');
  });

  it('keeps Keyv namespaces with ":" apart from each other and from the cache’s own keys', async () => {
    const cache = instance('kv2:');
    const ab = new Keyv({ store: new TierCacheKeyv(cache), namespace: 'a:b' });
    const a = new Keyv({ store: new TierCacheKeyv(cache), namespace: 'a' });
    await ab.set('c', 'in a:b');
    await a.set('b:c', 'in a');
    await cache.set('a:b:c', 'the cache’s own');
    await ab.clear();
    expect(await ab.get('c')).toBeUndefined();
    expect(await a.get('b:c')).toBe('in a');
    expect(await cache.get('a:b:c')).toBe('the cache’s own');
  });

  it('without a namespace (an empty one), clear() clears the whole cache', async () => {
    const cache = instance('kv3:');
    const keyv = new Keyv({ store: new TierCacheKeyv(cache), namespace: '' });
    await keyv.set('k', 1);
    await cache.set('other', 2);
    await keyv.clear();
    expect(await keyv.get('k')).toBeUndefined();
    expect(await cache.get('other')).toBeUndefined();
  });

  it('gives each entry the Keyv TTL in every tier, and the tiers’ own lives without one', async () => {
    const cache = instance('kv4:');
    const keyv = new Keyv({ store: new TierCacheKeyv(cache), namespace: 'ttl' });
    await keyv.set('short', 'x', 30_000);
    await keyv.setMany([
      { key: 'many', value: 'y', ttl: 20_000 },
      { key: 'plain', value: 'z' },
    ]);
    const pttl = async (key: string) => Number(await redis.server.cli('PTTL', `kv4:ttl:v0:ttl:${key}`));
    expect(await pttl('short')).toBeGreaterThan(20_000);
    expect(await pttl('short')).toBeLessThanOrEqual(30_000);
    expect(await pttl('many')).toBeGreaterThan(10_000);
    expect(await pttl('many')).toBeLessThanOrEqual(20_000);
    expect(await pttl('plain')).toBeGreaterThan(30_000); // the Redis tier's 5 min default
  });

  it('getMany and setMany take one round trip to Redis each; deleteMany removes every key', async () => {
    const writer = instance('kv5:');
    const reader = instance('kv5:');
    const keys = ['a', 'b', 'c'];
    const w = new Keyv({ store: new TierCacheKeyv(writer), namespace: 'many' });
    const r = new Keyv({ store: new TierCacheKeyv(reader), namespace: 'many' });
    await w.get('warm'); // reads the namespace's version once
    await r.get('warm');
    const [mgets, sets] = [await calls('mget'), await calls('set')];
    await w.setMany(keys.map((key, i) => ({ key, value: i })));
    expect(await calls('set')).toBe(sets + 3); // one pipeline of three SETs
    expect(await r.getMany(keys)).toEqual([0, 1, 2]);
    expect(await calls('mget')).toBe(mgets + 1);
    await subscribed(writer, reader);
    let deleted = false;
    await heard([writer], async () => void (deleted = await r.deleteMany(keys)));
    expect(deleted).toBe(true);
    expect(await w.getMany(keys)).toEqual([undefined, undefined, undefined]);
    expect(await r.deleteMany(keys)).toBe(false);
  });

  it('has() is true for a stored key and false once it is deleted', async () => {
    const cache = instance('kv6:');
    const keyv = new Keyv({ store: new TierCacheKeyv(cache) });
    await keyv.set('k', 'v');
    expect(await keyv.has('k')).toBe(true);
    await keyv.delete('k');
    expect(await keyv.has('k')).toBe(false);
  });

  it('works under cache-manager v7 (createCache({ stores: [keyv] }))', async () => {
    const cache = instance('kv7:');
    const manager = createCacheManager({
      stores: [new Keyv({ store: new TierCacheKeyv(cache), namespace: 'cm' })],
    });
    await manager.set('user:1', { name: 'Ada' }, 60_000);
    expect(await manager.get('user:1')).toEqual({ name: 'Ada' });
    expect(await manager.wrap('user:2', () => ({ name: 'Grace' }))).toEqual({ name: 'Grace' });
    expect(await manager.mget(['user:1', 'user:2', 'user:3'])).toEqual([
      { name: 'Ada' },
      { name: 'Grace' },
      undefined,
    ]);
    expect(await manager.del('user:1')).toBe(true);
    await manager.clear();
    expect(await manager.get('user:2')).toBeUndefined();
  });

  it('refuses anything but a TierCache, naming what it got', () => {
    const bad = () => new TierCacheKeyv({ get: () => undefined } as never);
    expect(bad).toThrow(/"TierCacheKeyv\.cache".*expected a TierCache/);
    try {
      bad();
    } catch (error) {
      expect(hasErrorCode(error, 'E_INVALID_OPTION')).toBe(true);
    }
  });

  it('rejects calls once the cache is closed (Keyv reports them as errors)', async () => {
    const cache = createCache({ tiers: [memoryTier()] });
    const store = new TierCacheKeyv(cache);
    await cache.close();
    await expect(store.get('k')).rejects.toMatchObject({ code: 'E_CLOSED' });
    const keyv = new Keyv({ store, throwOnErrors: true });
    await expect(keyv.set('k', 1)).rejects.toMatchObject({ code: 'E_CLOSED' });
  });
});
