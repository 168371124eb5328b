/**
 * Property tests: over keys and values of every shape, what the cache returns is what was
 * stored (see values.test.ts for values JSON has no form for), or a typed CacheError;
 * never a crash or an untyped rejection.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, isCacheError, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';

let server: RedisProcess;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(stopAllRedis);

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 });
const leaf = fc.oneof(
  text,
  fc.integer(),
  fc.double(), // -0, NaN and ±Infinity included
  fc.boolean(),
  fc.constant(null),
  fc.date({ noInvalidDate: true }),
);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 5 }),
    // an own __proto__ key is refused (values.test.ts checks it)
    fc.dictionary(
      text.filter((k) => k !== '__proto__'),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
}));

/** Runs `op`: it must resolve, or reject with a CacheError; anything else fails the property. */
async function typed<T>(op: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
  try {
    return { ok: true, value: await op() };
  } catch (error) {
    if (!isCacheError(error)) throw error;
    return { ok: false };
  }
}

describe('properties: memory only', () => {
  it('get returns what set stored (by reference), and getOrSet what the loader returned', async () => {
    const cache = createCache({ tiers: [memoryTier({ maxEntries: 100_000 })] });
    await fc.assert(
      fc.asyncProperty(key, value, async (k, v) => {
        await cache.set(k, v);
        expect(await cache.get(k)).toBe(v);
        await cache.delete(k);
        expect(await cache.getOrSet(k, () => v)).toBe(v);
        expect(await cache.getOrSet(k, () => 'other')).toBe(v);
        await cache.delete(k);
      }),
      { numRuns: 300 },
    );
    await cache.close();
  });

  it("returns a deep copy under valueMode 'clone'", async () => {
    const cache = createCache({ tiers: [memoryTier({ valueMode: 'clone' })] });
    await fc.assert(
      fc.asyncProperty(key, value, async (k, v) => {
        await cache.set(k, v);
        // structuredClone semantics: equal content (null-prototype objects come back plain).
        const got = await cache.get(k);
        expect(got).toEqual(v);
        if (typeof v === 'object' && v !== null) expect(got).not.toBe(v);
      }),
      { numRuns: 200 },
    );
    await cache.close();
  });
});

describe('properties: memory + Redis', () => {
  let writer: TierCache;
  let reader: TierCache;
  beforeAll(() => {
    writer = createCache({
      tiers: [memoryTier(), redisTier({ client: server.url, prefix: 'prop:', timeout: '3s' })],
    });
    // No L1: every read decodes what Redis holds.
    reader = createCache({ tiers: [redisTier({ client: server.url, prefix: 'prop:', timeout: '3s' })] });
  });
  afterAll(async () => {
    await Promise.all([writer.close(), reader.close()]);
  });

  it('another instance reads back what was stored', async () => {
    await fc.assert(
      fc.asyncProperty(key, value, async (k, v) => {
        await writer.set(k, v);
        expect(await reader.get(k)).toEqual(v);
        await writer.delete(k);
        expect(await reader.get(k)).toBeUndefined();
        expect(await writer.getOrSet(k, () => v)).toBe(v);
        expect(await reader.getOrSet(k, () => 'other')).toEqual(v);
        await writer.delete(k);
      }),
      { numRuns: 150 },
    );
  });

  it('values JSON cannot carry (BigInt, symbols, functions, cycles, Maps) give a typed error or a value, never a crash', async () => {
    const odd = fc.anything({
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
      withNullPrototype: true,
      withBoxedValues: true,
    });
    await fc.assert(
      fc.asyncProperty(key, odd, async (k, v) => {
        const stored = await typed(() => writer.set(k, v));
        if (v === undefined) expect(stored.ok).toBe(false);
        const read = await typed(() => reader.get(k));
        expect(read.ok).toBe(true);
        const loaded = await typed(() => writer.getOrSet(`${k}:loaded`, () => v));
        if (loaded.ok) expect(loaded.value).toBe(v);
        await writer.deleteMany([k, `${k}:loaded`]);
      }),
      { numRuns: 150 },
    );
  });

  it('bad keys are a typed error, never a crash', async () => {
    const bad = fc.oneof(
      fc.constant(''),
      fc.integer(),
      fc.constant(null),
      fc.string({ minLength: 400 }).map((s) => s.repeat(4)),
    );
    await fc.assert(
      fc.asyncProperty(bad, async (k) => {
        for (const op of [
          () => writer.get(k as string),
          () => writer.set(k as string, 1),
          () => writer.getOrSet(k as string, () => 1),
        ]) {
          const result = await typed(op);
          expect(result.ok).toBe(false);
        }
      }),
      { numRuns: 50 },
    );
  });
});
