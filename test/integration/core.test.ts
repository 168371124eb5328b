import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCache,
  hasErrorCode,
  memoryTier,
  redisTier,
  type CacheError,
  type Duration,
  type TierCache,
} from '../../src/index.js';
import { PATIENT, callsIn, singleBackend } from '../helpers/backends.js';
import { startRedis, type RedisProcess } from '../helpers/redis-server.js';
import { coreSuite } from './suites/core-suite.js';

let server: RedisProcess;
let admin: Redis;
let prefixCounter = 0;
let prefix: string;
const caches: TierCache[] = [];

beforeAll(async () => {
  server = await startRedis();
  admin = server.client();
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await server.stop();
});

beforeEach(() => {
  prefix = `single${++prefixCounter}:`;
});

coreSuite(singleBackend());

describe('single server only', () => {
  it('setMany of 100 entries is one pipeline', async () => {
    const client = server.client();
    const cache = createCache({ tiers: [memoryTier(), redisTier({ client, prefix, timeout: PATIENT })] });
    caches.push(cache);
    let pipelines = 0;
    const original = client.pipeline.bind(client);
    client.pipeline = (...args: Parameters<typeof client.pipeline>) => {
      pipelines++;
      return original(...args);
    };
    await cache.setMany(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: i })));
    expect(pipelines).toBe(1);
    expect(await admin.dbsize()).toBeGreaterThanOrEqual(100);
  });

  it("the misses of one tick fill with one script call, each caller's value cached", async () => {
    // A server of its own: Redis counts commands server-wide, and the caches of the tests before
    // (closed only after the file) may still run a script of theirs in the window counted here.
    const own = await startRedis();
    const cache = createCache({
      tiers: [memoryTier(), redisTier({ client: own.client(), prefix, timeout: PATIENT })],
    });
    const ownAdmin = own.client();
    try {
      await cache.getOrSet('warm', () => 0); // the script is loaded
      await ownAdmin.config('RESETSTAT');
      const sets = cache.stats().tiers[1]!.sets;
      const values = await Promise.all(
        Array.from({ length: 50 }, (_, i) => cache.getOrSet(`m${i}`, () => `v${i}`)),
      );
      expect(values).toEqual(Array.from({ length: 50 }, (_, i) => `v${i}`));
      expect(callsIn(await ownAdmin.info('commandstats'), 'evalsha')).toBe(1);
      for (let i = 0; i < 50; i++) expect(await ownAdmin.exists(`${prefix}m${i}`)).toBe(1);
      expect(cache.stats().tiers[1]!.sets - sets).toBe(50);
    } finally {
      ownAdmin.disconnect();
      await cache.close();
      await own.stop();
    }
  });

  it('a bad option does not leave the client made from a URL connecting', async () => {
    const clients = async () =>
      String(await admin.client('LIST'))
        .trim()
        .split('\n').length;
    const before = await clients();
    // One the store checks, one the guard checks.
    expect(() => redisTier({ client: server.url, ttl: 'bogus' as Duration })).toThrow(/"redis\.ttl"/);
    expect(() => redisTier({ client: server.url, timeout: 'soon' as Duration })).toThrow(/"redis\.timeout"/);
    // A client made just after it: once this one is connected, the other would have been too.
    const control = server.client();
    await control.ping();
    expect(await clients()).toBe(before + 1);
    control.disconnect();
  });
});

describe('when Redis fails', () => {
  it('keeps serving L1 hits and falls through to the loader, reporting each fault', async () => {
    const own = await startRedis();
    try {
      const errors: CacheError[] = [];
      const cache = createCache({
        tiers: [
          memoryTier(),
          redisTier({ client: own.client({ enableOfflineQueue: false, maxRetriesPerRequest: 0 }), prefix }),
        ],
        onError: (error) => errors.push(error),
      });
      caches.push(cache);
      await cache.set('warm', 'w');
      await own.kill();
      expect(await cache.get('warm')).toBe('w');
      expect(await cache.getOrSet('cold', () => 'from origin')).toBe('from origin');
      expect(await cache.get('cold')).toBe('from origin');
      expect(errors.length).toBeGreaterThanOrEqual(2);
      // The bus's failed publishes are reported too (E_BUS); the reads' faults are tier faults.
      expect(
        errors.filter((e) => e.code !== 'E_BUS').every((e) => e.code === 'E_TIER' && e.tier === 'redis'),
      ).toBe(true);
    } finally {
      await own.stop();
    }
  });

  it("rejects with a TierError when the cache asked for tierErrors: 'throw'", async () => {
    const own = await startRedis();
    try {
      const cache = createCache({
        tiers: [
          memoryTier(),
          redisTier({ client: own.client({ enableOfflineQueue: false, maxRetriesPerRequest: 0 }), prefix }),
        ],
        tierErrors: 'throw',
      });
      caches.push(cache);
      await own.kill();
      let thrown: unknown;
      try {
        await cache.getOrSet('k', () => 1);
      } catch (error) {
        thrown = error;
      }
      expect(hasErrorCode(thrown, 'E_TIER')).toBe(true);
    } finally {
      await own.stop();
    }
  });
});

describe('URL clients', () => {
  it('opens its own connection from a URL and closes it on close()', async () => {
    const tier = redisTier({ client: server.url, prefix });
    const cache = createCache({ tiers: [memoryTier(), tier] });
    await cache.set('k', 1);
    expect(await admin.exists(`${prefix}k`)).toBe(1);
    await cache.close();
    expect(tier.client.status).toBe('end');
  });
});
