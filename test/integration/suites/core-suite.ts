import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCache,
  hasErrorCode,
  memoryTier,
  redisTier,
  type CacheError,
  type CacheOptions,
  type TierCache,
} from '../../../src/index.js';
import { msgpackSerializer } from '../../../src/serializers/msgpack.js';
import { PATIENT, type Backend } from '../../helpers/backends.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { holdsEntry, withoutGenerations } from '../../helpers/stored.js';

/**
 * The core behaviours against real Redis, for any backend: test/integration runs it on a single
 * server, test/cluster on a three-master cluster.
 */
export function coreSuite(backend: Backend): void {
  let admin: Redis | Cluster;
  let prefixCounter = 0;
  let prefix: string;
  const caches: TierCache[] = [];

  beforeAll(async () => {
    await backend.start();
    admin = backend.admin();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    await backend.stop();
  });

  beforeEach(() => {
    prefix = `t${++prefixCounter}:`;
  });

  /** A cache with L1 + L2 on the backend; each test gets its own key prefix. */
  function instance(options: CacheOptions & { memoryTtl?: number; redisTtl?: number } = {}): TierCache {
    const { memoryTtl, redisTtl, ...rest } = options;
    const cache = createCache({
      tiers: [
        memoryTier(memoryTtl === undefined ? {} : { ttl: memoryTtl }),
        redisTier({
          client: backend.client(),
          prefix,
          timeout: PATIENT,
          ...(redisTtl === undefined ? {} : { ttl: redisTtl }),
        }),
      ],
      ...rest,
    });
    caches.push(cache);
    return cache;
  }

  const commandCalls = (command: string) => backend.commandCalls(command);

  describe('two instances sharing Redis', () => {
    it('serves a value written by one instance from L2 on another, then from its L1', async () => {
      // Without a bus on the writer: its invalidation could reach b mid-read and (rightly) stop
      // that read from filling L1, which is test/integration/bus.test.ts's subject, not this one's.
      const a = instance({ bus: false });
      const b = instance();
      await a.set('user:1', { name: 'Ada', born: new Date('1815-12-10T00:00:00Z') });
      const first = await b.get<{ name: string; born: Date }>('user:1');
      expect(first?.born).toBeInstanceOf(Date);
      expect(first).toEqual({ name: 'Ada', born: new Date('1815-12-10T00:00:00Z') });
      await b.get('user:1');
      expect(b.stats().tiers.map((t) => [t.name, t.hits])).toEqual([
        ['memory', 1],
        ['redis', 1],
      ]);
    });

    it('shares loader results: the second instance does not call the origin', async () => {
      const a = instance();
      const b = instance();
      let calls = 0;
      const loader = async () => {
        calls++;
        return { price: 9.5 };
      };
      expect(await a.getOrSet('p', loader)).toEqual({ price: 9.5 });
      expect(await b.getOrSet('p', loader)).toEqual({ price: 9.5 });
      expect(calls).toBe(1);
    });

    it('gives a promoted L1 copy no more life than the L2 entry has left', async () => {
      const clock = new FakeClock();
      const a = instance({ clock: clock.read, memoryTtl: 60_000 });
      const b = instance({ clock: clock.read, memoryTtl: 60_000 });
      await a.set('k', 'v', { ttl: { redis: 5_000 } });
      clock.advance(4_000);
      expect(await b.get('k')).toBe('v');
      clock.advance(1_000);
      // The L2 entry's logical life ended; B's L1 copy, promoted with 1 s left, must end with it.
      let loads = 0;
      expect(await b.getOrSet('k', () => (loads++, 'fresh'))).toBe('fresh');
      expect(loads).toBe(1);
    });
  });

  describe('Redis tier writes', () => {
    it('writes the loader result to Redis with the Redis tier TTL', async () => {
      const cache = instance({ redisTtl: 120_000 });
      await cache.getOrSet('k', () => 1);
      const pttl = await admin.pttl(`${prefix}k`);
      expect(pttl).toBeGreaterThan(110_000);
      expect(pttl).toBeLessThanOrEqual(120_000);
    });

    it('applies a per-tier TTL map and keeps "forever" without expiry', async () => {
      const cache = instance();
      await cache.set('k', 1, { ttl: { memory: '1s', redis: '42s' } });
      expect(await admin.pttl(`${prefix}k`)).toBeGreaterThan(41_000);
      await cache.set('f', 1, { ttl: 'forever' });
      expect(await admin.pttl(`${prefix}f`)).toBe(-1);
    });

    it('writes nothing anywhere when a value cannot be encoded', async () => {
      const cache = instance();
      let thrown: unknown;
      try {
        await cache.set('big', { n: () => 10 });
      } catch (error) {
        thrown = error;
      }
      expect(hasErrorCode(thrown, 'E_SERIALIZATION')).toBe(true);
      expect((thrown as CacheError).message).toMatch(/"big": value\.n: a function cannot be cached/);
      expect(await cache.has('big')).toBe(false);
      expect(await admin.exists(`${prefix}big`)).toBe(0);
    });

    it('clear removes this prefix only, in SCAN batches', async () => {
      const cache = instance();
      await cache.setMany(Array.from({ length: 1200 }, (_, i) => ({ key: `k${i}`, value: i })));
      await admin.set('{other}:keep', 'x');
      await cache.clear();
      expect(withoutGenerations(await backend.keys(`${prefix}*`))).toEqual([]);
      expect(await admin.get('{other}:keep')).toBe('x');
      expect(await cache.get('k1')).toBeUndefined();
    });

    it('deletes from every tier', async () => {
      const a = instance();
      const b = instance();
      await a.set('k', 1);
      expect(await b.get('k')).toBe(1);
      expect(await a.delete('k')).toBe(true);
      expect(await holdsEntry(admin, `${prefix}k`)).toBe(false);
      expect(await a.has('k')).toBe(false);
    });
  });

  describe('round trips', () => {
    it('getMany of 100 keys missing in L1 is one MGET (one per slot on a cluster) and no GET', async () => {
      const writer = instance();
      await writer.setMany(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: i })));
      const reader = instance();
      const [mget, get] = [await commandCalls('mget'), await commandCalls('get')];
      const values = await reader.getMany(Array.from({ length: 100 }, (_, i) => `k${i}`));
      expect(values).toEqual(Array.from({ length: 100 }, (_, i) => i));
      const expected = backend.mgetsFor(Array.from({ length: 100 }, (_, i) => `${prefix}k${i}`));
      expect((await commandCalls('mget')) - mget).toBe(expected);
      expect((await commandCalls('get')) - get).toBe(0);
      // Now all in L1: no Redis command at all.
      await reader.getMany(['k1', 'k2']);
      expect((await commandCalls('mget')) - mget).toBe(expected);
    });

    it('getManyOrSet: one L1 pass, one MGET, one batch loader call for what is missing', async () => {
      const writer = instance();
      await writer.setMany([
        { key: 'a', value: 'A' },
        { key: 'b', value: 'B' },
      ]);
      const cache = instance();
      await cache.set('l1', 'L1');
      const mget = await commandCalls('mget');
      const batches: string[][] = [];
      const values = await cache.getManyOrSet(['l1', 'a', 'b', 'c', 'd'], async (keys) => {
        batches.push(keys);
        return keys.map((k) => k.toUpperCase());
      });
      expect(values).toEqual(['L1', 'A', 'B', 'C', 'D']);
      expect(batches).toEqual([['c', 'd']]);
      expect((await commandCalls('mget')) - mget).toBe(
        backend.mgetsFor(['a', 'b', 'c', 'd'].map((k) => prefix + k)),
      );
      expect((await admin.exists(`${prefix}c`)) + (await admin.exists(`${prefix}d`))).toBe(2);
    });
  });

  describe('batched reads', () => {
    /** A Redis-only cache (no L1 to answer repeats), reads batched by default. */
    function redisOnly(options: { batchReads?: number | false; onError?: (error: CacheError) => void } = {}) {
      const { batchReads, onError } = options;
      const cache = createCache({
        tiers: [
          redisTier({
            client: backend.client(),
            prefix,
            timeout: PATIENT,
            ...(batchReads === undefined ? {} : { batchReads }),
          }),
        ],
        ...(onError === undefined ? {} : { onError }),
      });
      caches.push(cache);
      return cache;
    }
    const keys = Array.from({ length: 60 }, (_, i) => `k${i}`);

    it(`concurrent gets of one tick are ${backend.shape === 'single' ? 'one MGET' : 'single GETs on a cluster'}, each caller getting its own value`, async () => {
      const writer = instance();
      await writer.setMany(keys.map((key, i) => ({ key, value: { i } })));
      const cache = redisOnly();
      await cache.get('warm-up');
      const [mget, get] = [await commandCalls('mget'), await commandCalls('get')];
      const values = await Promise.all([...keys, 'absent'].map((key) => cache.get(key)));
      expect(values).toEqual([...keys.map((_, i) => ({ i })), undefined]);
      const [mgets, gets] = [(await commandCalls('mget')) - mget, (await commandCalls('get')) - get];
      // A batch spanning cluster nodes would fail on any one of them: no batching there.
      expect([mgets, gets]).toEqual(backend.shape === 'single' ? [1, 0] : [0, keys.length + 1]);
      const tier = cache.stats().tiers[0]!;
      expect([tier.hits, tier.misses]).toEqual([keys.length, 2]);
      expect(tier.latency?.get?.count).toBe(keys.length + 2);
    });

    it('splits a tick of reads into batches of batchReads keys, and sends GETs with batchReads: false', async () => {
      const writer = instance();
      await writer.setMany(keys.map((key, i) => ({ key, value: i })));
      const small = redisOnly({ batchReads: 25 });
      const unbatched = redisOnly({ batchReads: false });
      await Promise.all([small.get('warm-up'), unbatched.get('warm-up')]);
      let [mget, get] = [await commandCalls('mget'), await commandCalls('get')];
      expect(await Promise.all(keys.map((key) => small.get(key)))).toEqual(keys.map((_, i) => i));
      expect([(await commandCalls('mget')) - mget, (await commandCalls('get')) - get]).toEqual(
        backend.shape === 'single' ? [3, 0] : [0, keys.length],
      );
      [mget, get] = [await commandCalls('mget'), await commandCalls('get')];
      expect(await Promise.all(keys.map((key) => unbatched.get(key)))).toEqual(keys.map((_, i) => i));
      expect([(await commandCalls('mget')) - mget, (await commandCalls('get')) - get]).toEqual([
        0,
        keys.length,
      ]);
    });

    it('a corrupt payload in a batch is a miss for its key only', async () => {
      const writer = instance();
      await writer.setMany([
        { key: 'good1', value: 1 },
        { key: 'good2', value: 2 },
      ]);
      await admin.set(`${prefix}bad`, '{not json');
      const errors: CacheError[] = [];
      const cache = redisOnly({ onError: (error) => errors.push(error) });
      expect(await Promise.all(['good1', 'bad', 'good2'].map((key) => cache.get(key)))).toEqual([
        1,
        undefined,
        2,
      ]);
      expect(errors.map((error) => [error.code, error.key])).toEqual([['E_CORRUPT_ENTRY', 'bad']]);
    });

    it('getOrSet callers that miss L1 together share batches, and each key still loads once', async () => {
      const writer = instance();
      await writer.setMany(keys.slice(0, 30).map((key, i) => ({ key, value: i })));
      const cache = instance();
      const loads = new Map<string, number>();
      const loader = (key: string) => () => {
        loads.set(key, (loads.get(key) ?? 0) + 1);
        return `loaded ${key}`;
      };
      // Every key asked for by three callers at once; half are in Redis, half load.
      const values = await Promise.all(
        [...keys, ...keys, ...keys].map((key) => cache.getOrSet(key, loader(key))),
      );
      const expected = keys.map((key, i) => (i < 30 ? i : `loaded ${key}`));
      expect(values).toEqual([...expected, ...expected, ...expected]);
      expect([...loads.values()]).toEqual(Array(30).fill(1));
    });

    it('rejects a batchReads that is not a positive integer or false, naming it', () => {
      for (const batchReads of [0, -1, 1.5, true]) {
        expect(() => redisTier({ client: admin, batchReads: batchReads as number })).toThrow(
          /"redis\.batchReads".*expected a positive integer or false/,
        );
      }
    });
  });

  describe('payloads', () => {
    it('treats a corrupt or foreign payload under the prefix as a counted, reported miss', async () => {
      const errors: CacheError[] = [];
      const cache = instance({ onError: (error) => errors.push(error) });
      await admin.set(`${prefix}garbage`, '{not json');
      await admin.set(`${prefix}foreign`, JSON.stringify({ some: 'other app' }));
      expect(await cache.get('garbage')).toBeUndefined();
      expect(await cache.getOrSet('foreign', () => 'mine')).toBe('mine');
      expect(errors.map((e) => [e.code, e.key])).toEqual([
        ['E_CORRUPT_ENTRY', 'garbage'],
        ['E_CORRUPT_ENTRY', 'foreign'],
      ]);
      expect(cache.stats().corrupt).toBe(2);
      expect(await cache.get('foreign')).toBe('mine');
    });

    it('round-trips Dates, Maps and binary data through msgpack', async () => {
      const make = () =>
        createCache({
          tiers: [
            memoryTier(),
            redisTier({
              client: backend.client(),
              prefix,
              serializer: msgpackSerializer(),
              timeout: PATIENT,
            }),
          ],
        });
      const a = make();
      const b = make();
      caches.push(a, b);
      const value = { at: new Date(5), map: new Map([['x', 1]]), bytes: new Uint8Array([1, 2, 3]) };
      await a.set('m', value);
      expect(await b.get('m')).toEqual(value);
    });
  });

  describe('warm-up', () => {
    it('warm fills L1 from Redis in batches, reporting progress', async () => {
      const writer = instance();
      const keys = Array.from({ length: 1000 }, (_, i) => `w${i}`);
      await writer.setMany(keys.map((key, i) => ({ key, value: i })));
      const reader = instance();
      const mget = await commandCalls('mget');
      const seen: number[] = [];
      const result = await reader.warm([...keys, 'absent'], {
        batchSize: 300,
        onProgress: (p) => seen.push(p.processed),
      });
      expect(result).toEqual({ processed: 1001, loaded: 1000 });
      expect(seen).toEqual([300, 600, 900, 1001]);
      const batches = [
        keys.slice(0, 300),
        keys.slice(300, 600),
        keys.slice(600, 900),
        [...keys.slice(900), 'absent'],
      ];
      const expected = batches.reduce((sum, b) => sum + backend.mgetsFor(b.map((k) => prefix + k)), 0);
      expect((await commandCalls('mget')) - mget).toBe(expected);
      const before = reader.stats().tiers[0]!.hits;
      expect(await reader.getMany(keys)).toEqual(keys.map((_, i) => i));
      expect(reader.stats().tiers[0]!.hits - before).toBe(1000);
    });

    it("warmFrom writes an origin query's rows to every tier", async () => {
      const cache = instance();
      async function* rows() {
        for (let id = 0; id < 250; id++) yield { id, name: `row ${id}` };
      }
      const progress = await cache.warmFrom(rows(), (row) => `row:${row.id}`, { batchSize: 100, ttl: '10m' });
      expect(progress).toEqual({ processed: 250, loaded: 250 });
      const other = instance();
      expect(await other.get('row:249')).toEqual({ id: 249, name: 'row 249' });
      expect(await admin.pttl(`${prefix}row:0`)).toBeGreaterThan(590_000);
    });
  });

  describe('hot/cold admission', () => {
    it('keeps a key out of L1 until it was looked up minHits times; until then L2 serves it', async () => {
      const writer = instance();
      await writer.set('k', 'v');
      const reader = createCache({
        tiers: [
          memoryTier({ admission: { minHits: 3 } }),
          redisTier({ client: backend.client(), prefix, timeout: PATIENT }),
        ],
      });
      caches.push(reader);
      const servedBy = async () => {
        const before = reader.stats().tiers.map((t) => t.hits);
        expect(await reader.get('k')).toBe('v');
        return reader.stats().tiers.findIndex((t, i) => t.hits > before[i]!);
      };
      expect([await servedBy(), await servedBy(), await servedBy(), await servedBy()]).toEqual([1, 1, 1, 0]);
    });
  });
}
