import { describe, expect, it } from 'vitest';
import {
  CacheError,
  createCache,
  hasErrorCode,
  isCacheError,
  LoaderError,
  memoryTier,
  TierCache,
  type CacheOptions,
} from '../../src/index.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';

function setup(options: CacheOptions = {}, memory: Parameters<typeof memoryTier>[0] = {}) {
  const clock = new FakeClock();
  const cache = createCache({ tiers: [memoryTier(memory)], clock: clock.read, ...options });
  return { cache, clock };
}

async function rejection(promise: Promise<unknown>): Promise<CacheError> {
  try {
    await promise;
  } catch (error) {
    if (isCacheError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

describe('reads and writes', () => {
  it('returns what was set, and undefined after delete', async () => {
    const { cache } = setup();
    await cache.set('a', { n: 1 });
    expect(await cache.get('a')).toEqual({ n: 1 });
    expect(await cache.has('a')).toBe(true);
    expect(await cache.delete('a')).toBe(true);
    expect(await cache.get('a')).toBeUndefined();
    expect(await cache.has('a')).toBe(false);
    expect(await cache.delete('a')).toBe(false);
  });

  it('expires entries at the tier TTL, and at a per-call TTL', async () => {
    const { cache, clock } = setup({}, { ttl: '60s' });
    await cache.set('default', 1);
    await cache.set('short', 2, { ttl: '5s' });
    await cache.set('forever', 3, { ttl: 'forever' });
    clock.advance(4_999);
    expect(await cache.get('short')).toBe(2);
    clock.advance(1);
    expect(await cache.get('short')).toBeUndefined();
    clock.advance(54_999);
    expect(await cache.get('default')).toBe(1);
    clock.advance(1);
    expect(await cache.get('default')).toBeUndefined();
    clock.advance(10 * 365 * 86_400_000);
    expect(await cache.get('forever')).toBe(3);
  });

  it('shortens lives by up to the jitter fraction, never lengthens them', async () => {
    const { cache, clock } = setup({ jitter: 0.5 }, { ttl: 1000, maxEntries: 1000 });
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await cache.setMany(keys.map((key) => ({ key, value: 1 })));
    clock.advance(499);
    expect((await cache.getMany(keys)).every((v) => v === 1)).toBe(true);
    clock.advance(251);
    const alive = (await cache.getMany(keys)).filter((v) => v === 1).length;
    // Lives are spread uniformly over 500..1000 ms, so about half are gone at 750 ms.
    expect(alive).toBeGreaterThan(40);
    expect(alive).toBeLessThan(160);
    clock.advance(250);
    expect((await cache.getMany(keys)).every((v) => v === undefined)).toBe(true);
  });

  it('getMany returns values aligned with the keys, repeated keys included', async () => {
    const { cache } = setup();
    await cache.setMany([
      { key: 'a', value: 1 },
      { key: 'b', value: 2 },
    ]);
    expect(await cache.getMany(['a', 'zz', 'b', 'a'])).toEqual([1, undefined, 2, 1]);
  });

  it('clear removes every entry', async () => {
    const { cache } = setup();
    await cache.set('a', 1);
    await cache.clear();
    expect(await cache.get('a')).toBeUndefined();
    expect(cache.stats().memory?.entries).toBe(0);
  });

  it('evicts the least recently used entry when maxEntries is reached', async () => {
    const { cache } = setup({}, { maxEntries: 2, policy: 'lru' });
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.get('a');
    await cache.set('c', 3);
    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([1, undefined, 3]);
    expect(cache.stats().memory).toMatchObject({ entries: 2, evictions: 1 });
  });

  it('keeps total estimated bytes within maxBytes', async () => {
    for (const policy of ['lru', 'tinylfu'] as const) {
      const { cache } = setup({}, { maxBytes: 2_000, maxEntries: 1_000, policy });
      for (let i = 0; i < 100; i++) await cache.set(`k${i}`, 'x'.repeat(100));
      const { memory } = cache.stats();
      expect(memory!.weight).toBeLessThanOrEqual(2_000);
      expect(memory!.entries).toBeGreaterThan(0);
      expect(memory!.entries).toBeLessThan(100);
      const resident = (await cache.getMany(Array.from({ length: 100 }, (_, i) => `k${i}`))).filter(Boolean);
      expect(resident).toHaveLength(memory!.entries);
    }
  });
});

describe('maxBytes counts what an entry costs besides its value', () => {
  it('each entry weighs its value, its key and its slot, never only the value (nor its encoded size alone)', async () => {
    const { cache } = setup({}, { maxBytes: 1_000_000, maxEntries: 1_000 });
    await cache.set('k', 'x'.repeat(100)); // a 100-character string: 216 bytes estimated
    const weight = cache.stats().memory!.weight;
    expect(weight).toBe(216 + 100 + 16 + 2 * 'k'.length);
    const { cache: longer } = setup({}, { maxBytes: 1_000_000, maxEntries: 1_000 });
    await longer.set('a-longer-key', 'x'.repeat(100));
    expect(longer.stats().memory!.weight - weight).toBe(2 * ('a-longer-key'.length - 1));
  });
});

describe('getOrSet', () => {
  it('calls the loader once for 1,000 concurrent callers of one key', async () => {
    const { cache } = setup();
    const release = gate<string>();
    let calls = 0;
    const all = Array.from({ length: 1000 }, () =>
      cache.getOrSet('hot', () => {
        calls++;
        return release.promise;
      }),
    );
    release.resolve('v');
    expect(new Set(await Promise.all(all))).toEqual(new Set(['v']));
    expect(calls).toBe(1);
    expect(await cache.getOrSet('hot', () => 'other')).toBe('v');
    expect(cache.stats().loader.calls).toBe(1);
  });

  it('hands a loader error, wrapped with the key, to every waiter and caches nothing', async () => {
    const { cache } = setup();
    const boom = new Error('db down');
    const release = gate<string>();
    const all = Array.from({ length: 10 }, () => rejection(cache.getOrSet('k', () => release.promise)));
    release.reject(boom);
    const errors = await Promise.all(all);
    for (const error of errors) {
      expect(error).toBeInstanceOf(LoaderError);
      expect(error.code).toBe('E_LOADER');
      expect(error.key).toBe('k');
      expect(error.cause).toBe(boom);
    }
    expect(await cache.has('k')).toBe(false);
    expect(await cache.getOrSet('k', () => 'ok')).toBe('ok');
    expect(cache.stats().loader).toMatchObject({ calls: 2, errors: 1 });
  });

  it('wraps a synchronous throw from the loader too', async () => {
    const { cache } = setup();
    const error = await rejection(
      cache.getOrSet('k', () => {
        throw new TypeError('bad');
      }),
    );
    expect(error.code).toBe('E_LOADER');
  });

  it('does not cache undefined by default, caches null by default', async () => {
    const { cache } = setup();
    let calls = 0;
    const load = (value: unknown) => () => {
      calls++;
      return value;
    };
    await cache.getOrSet('u', load(undefined));
    await cache.getOrSet('u', load(undefined));
    expect(calls).toBe(2);
    await cache.getOrSet('n', load(null));
    expect(await cache.getOrSet('n', load('x'))).toBeNull();
    expect(calls).toBe(3);
  });

  it('caches undefined with its own TTL when negative caching asks for it', async () => {
    const { cache, clock } = setup({ negativeCaching: { undefined: true, ttl: '1s' } });
    let calls = 0;
    const loader = () => {
      calls++;
      return undefined;
    };
    await cache.getOrSet('u', loader);
    expect(await cache.getOrSet('u', loader)).toBeUndefined();
    expect(calls).toBe(1);
    clock.advance(1000);
    await cache.getOrSet('u', loader);
    expect(calls).toBe(2);
  });

  it('lets the loader choose the TTL from what it loaded, or skip caching', async () => {
    const { cache, clock } = setup();
    await cache.getOrSet('max-age', (ctx) => {
      ctx.setTtl('2s');
      return 'a';
    });
    await cache.getOrSet('private', (ctx) => {
      ctx.skipCache();
      return 'b';
    });
    expect(await cache.has('private')).toBe(false);
    clock.advance(1999);
    expect(await cache.get('max-age')).toBe('a');
    clock.advance(1);
    expect(await cache.get('max-age')).toBeUndefined();
  });

  it('does not cache a loader result when the key was written while it loaded', async () => {
    const { cache } = setup();
    const release = gate<string>();
    const pending = cache.getOrSet('k', () => release.promise);
    await cache.set('k', 'newer');
    release.resolve('older');
    expect(await pending).toBe('older');
    expect(await cache.get('k')).toBe('newer');
  });

  it('does not cache a loader result when the key was deleted while it loaded', async () => {
    const { cache } = setup();
    const release = gate<string>();
    const pending = cache.getOrSet('k', () => release.promise);
    await cache.delete('k');
    release.resolve('older');
    await pending;
    expect(await cache.has('k')).toBe(false);
  });
});

describe('getManyOrSet', () => {
  it('calls the batch loader once with only the missing keys', async () => {
    const { cache } = setup();
    await cache.set('a', 'A');
    const calls: string[][] = [];
    const result = await cache.getManyOrSet(['a', 'b', 'c', 'b'], async (keys) => {
      calls.push(keys);
      return new Map(keys.map((k) => [k, k.toUpperCase()]));
    });
    expect(result).toEqual(['A', 'B', 'C', 'B']);
    expect(calls).toEqual([['b', 'c']]);
    expect(await cache.getMany(['b', 'c'])).toEqual(['B', 'C']);
  });

  it('accepts arrays and records from the batch loader', async () => {
    const { cache } = setup();
    expect(await cache.getManyOrSet(['x', 'y'], async (keys) => keys.map((k) => k + '!'))).toEqual([
      'x!',
      'y!',
    ]);
    expect(await cache.getManyOrSet(['p', 'q'], async () => ({ p: 1, q: 2 }))).toEqual([1, 2]);
  });

  it('joins keys another call is already loading instead of loading them again', async () => {
    const { cache } = setup();
    const release = gate<string>();
    const single = cache.getOrSet('shared', () => release.promise);
    const seen: string[][] = [];
    const batch = cache.getManyOrSet(['shared', 'own'], async (keys) => {
      seen.push(keys);
      return keys.map(() => 'batch');
    });
    release.resolve('single');
    expect(await batch).toEqual(['single', 'batch']);
    expect(await single).toBe('single');
    expect(seen).toEqual([['own']]);
    // And the other way round: a single getOrSet joins a key a batch is loading.
    const slow = gate<string[]>();
    const batch2 = cache.getManyOrSet(['m1', 'm2'], () => slow.promise);
    let singleCalls = 0;
    const joined = cache.getOrSet('m2', () => {
      singleCalls++;
      return 'single';
    });
    slow.resolve(['one', 'two']);
    expect(await batch2).toEqual(['one', 'two']);
    expect(await joined).toBe('two');
    expect(singleCalls).toBe(0);
  });

  it('fails every waiting key with a LoaderError when the batch loader throws', async () => {
    const { cache } = setup();
    const error = await rejection(
      cache.getManyOrSet(['a', 'b'], () => {
        throw new Error('nope');
      }),
    );
    expect(error.code).toBe('E_LOADER');
    expect(await cache.getMany(['a', 'b'])).toEqual([undefined, undefined]);
  });

  it('rejects a batch result of the wrong length', async () => {
    const { cache } = setup();
    const error = await rejection(cache.getManyOrSet(['a', 'b'], async () => ['only one']));
    expect(error.code).toBe('E_INVALID_VALUE');
  });
});

describe('wrap', () => {
  it('caches by arguments, ignoring object key order', async () => {
    const { cache } = setup();
    let calls = 0;
    const find = cache.wrap(
      async (query: { a: number; b: number }, page: number) => {
        calls++;
        return query.a + query.b + page;
      },
      { name: 'find' },
    );
    expect(await find({ a: 1, b: 2 }, 1)).toBe(4);
    expect(await find({ b: 2, a: 1 }, 1)).toBe(4);
    expect(await find({ a: 1, b: 2 }, 2)).toBe(5);
    expect(calls).toBe(2);
  });

  it('uses a custom key builder', async () => {
    const { cache } = setup();
    const user = cache.wrap(async (id: number) => ({ id }), { key: (id) => `user:${id}` });
    await user(7);
    expect(await cache.get('user:7')).toEqual({ id: 7 });
  });

  it('needs a name or a key for an anonymous function, and says so as a rejection, not a throw', async () => {
    const { cache } = setup();
    const anonymous = cache.wrap(async () => 1);
    await expect(anonymous()).rejects.toThrow(/needs a `name` or a `key`/);
  });
});

describe('values', () => {
  it('hands back the cached object itself by default', async () => {
    const { cache } = setup();
    const value = { n: 1 };
    await cache.set('a', value);
    expect(await cache.get('a')).toBe(value);
  });

  it('answers repeated L1 hits with one settled promise, until the value changes', async () => {
    const { cache } = setup();
    await cache.set('a', { n: 1 });
    const first = cache.get('a');
    expect(cache.get('a')).toBe(first);
    expect(cache.getOrSet('a', () => ({ n: 0 }))).toBe(first);
    expect(await first).toEqual({ n: 1 });
    await cache.set('a', { n: 2 });
    const second = cache.get('a');
    expect(second).not.toBe(first);
    expect(await second).toEqual({ n: 2 });
    // A clone per read cannot share one.
    const cloning = setup({}, { valueMode: 'clone' }).cache;
    await cloning.set('a', { n: 1 });
    expect(cloning.get('a')).not.toBe(cloning.get('a'));
  });

  it("returns a private copy per read with valueMode 'clone'", async () => {
    const { cache } = setup({}, { valueMode: 'clone' });
    const value = { n: 1 };
    await cache.set('a', value);
    value.n = 2;
    const read = await cache.get<{ n: number }>('a');
    expect(read).toEqual({ n: 1 });
    read!.n = 3;
    expect(await cache.get('a')).toEqual({ n: 1 });
  });

  it("deep-freezes values with valueMode 'freeze'", async () => {
    const { cache } = setup({}, { valueMode: 'freeze' });
    await cache.set('a', { inner: { n: 1 } });
    const read = await cache.get<{ inner: { n: number } }>('a');
    expect(Object.isFrozen(read!.inner)).toBe(true);
  });
});

describe('bad input', () => {
  it.each([
    ['an empty key', ''],
    ['a number', 42],
    ['undefined', undefined],
    ['a key over maxKeyBytes', 'é'.repeat(600)],
  ])('rejects %s as a key with E_INVALID_KEY', async (_, key) => {
    const { cache } = setup();
    const error = await rejection(cache.get(key as string));
    expect(error.code).toBe('E_INVALID_KEY');
    expect((await rejection(cache.set(key as string, 1))).code).toBe('E_INVALID_KEY');
  });

  it('reserves the keys where tag times and namespace versions live, on every path', async () => {
    const { cache } = setup();
    for (const key of ['__tag:catalog', '__ns:products']) {
      const error = await rejection(cache.get(key));
      expect(error.code).toBe('E_INVALID_KEY');
      expect(error.message).toMatch(/reserved/);
      expect((await rejection(cache.set(key, 1))).code).toBe('E_INVALID_KEY');
      expect((await rejection(cache.getOrSet(key, () => 1))).code).toBe('E_INVALID_KEY');
      expect((await rejection(cache.has(key))).code).toBe('E_INVALID_KEY');
    }
    // Only those prefixes: other keys starting with underscores are ordinary keys.
    await cache.set('__private', 1);
    await cache.set('__tags', 2);
    expect([await cache.get('__private'), await cache.get('__tags')]).toEqual([1, 2]);
  });

  it('names the key and the bytes when a key is too long', async () => {
    const { cache } = setup({ maxKeyBytes: 8 });
    const error = await rejection(cache.get('abcdefghi'));
    expect(error.message).toMatch(/"abcdefghi".*9 bytes.*maxKeyBytes \(8\)/);
  });

  it.each([0, -1, 'soon', Number.NaN, '10 parsecs'])(
    'rejects the TTL %s with E_INVALID_TTL and writes nothing',
    async (ttl) => {
      const { cache } = setup();
      const error = await rejection(cache.set('k', 1, { ttl: ttl as number }));
      expect(error.code).toBe('E_INVALID_TTL');
      expect(error.key).toBe('k');
      expect(await cache.has('k')).toBe(false);
    },
  );

  it('rejects a TTL map naming a tier that does not exist', async () => {
    const { cache } = setup();
    const error = await rejection(cache.set('k', 1, { ttl: { redis: '1m' } }));
    expect(error.message).toMatch(/no tier is named "redis"/);
  });

  it('rejects undefined as a value', async () => {
    const { cache } = setup();
    const error = await rejection(cache.set('k', undefined));
    expect(error.code).toBe('E_INVALID_VALUE');
    expect(error.message).toContain('"k"');
  });

  it('rejects a whole setMany before writing any of it', async () => {
    const { cache } = setup();
    const error = await rejection(
      cache.setMany([
        { key: 'ok', value: 1 },
        { key: '', value: 2 },
      ]),
    );
    expect(error.code).toBe('E_INVALID_KEY');
    expect(await cache.has('ok')).toBe(false);
  });

  it.each<[string, () => unknown, RegExp]>([
    ['maxEntries 0', () => memoryTier({ maxEntries: 0 }), /"memory.maxEntries".*got 0/],
    ['a ttl string', () => memoryTier({ ttl: 'ten' as '10s' }), /"memory.ttl".*"ten"/],
    ['an unknown policy', () => memoryTier({ policy: 'fifo' as 'lru' }), /"memory.policy".*"fifo"/],
    ['jitter 2', () => createCache({ jitter: 2 }), /"jitter".*got 2/],
    ['an empty tier list', () => createCache({ tiers: [] }), /"tiers"/],
    [
      'a memory tier second',
      () => createCache({ tiers: [memoryTier(), memoryTier({ name: 'b' })] }),
      /"tiers\[1\]"/,
    ],
    ['a non-tier', () => createCache({ tiers: [{} as never] }), /"tiers\[0\]"/],
  ])('throws E_INVALID_OPTION at construction for %s', (_, build, message) => {
    let thrown: unknown;
    try {
      build();
    } catch (error) {
      thrown = error;
    }
    expect(hasErrorCode(thrown, 'E_INVALID_OPTION')).toBe(true);
    expect((thrown as Error).message).toMatch(message);
  });

  it('rejects calls after close with E_CLOSED', async () => {
    const { cache } = setup();
    await cache.close();
    expect((await rejection(cache.get('a'))).code).toBe('E_CLOSED');
  });
});

describe('stats', () => {
  it('counts hits, misses and loader calls per tier', async () => {
    const { cache } = setup();
    await cache.getOrSet('a', () => 1);
    await cache.getOrSet('a', () => 1);
    await cache.get('b');
    const stats = cache.stats();
    expect(stats.tiers[0]).toMatchObject({ name: 'memory', hits: 1, misses: 2, sets: 1 });
    expect(stats.tiers[0]!.hitRate).toBeCloseTo(1 / 3);
    expect(stats.loader).toMatchObject({ calls: 1, errors: 0 });
    expect(cache).toBeInstanceOf(TierCache);
  });
});

describe('events', () => {
  it('delivers error events to listeners until they unsubscribe, and survives a throwing listener', async () => {
    const { cache } = setup();
    const seen: string[] = [];
    const off = cache.on('error', ({ error }) => seen.push(error.code));
    cache.on('error', () => {
      throw new Error('listener bug');
    });
    // Drive an error through the public surface: a remote-less cache has none, so use a tier
    // whose every call fails.
    const failing = createCache({
      tiers: [
        memoryTier(),
        {
          kind: 'remote',
          name: 'broken',
          ttl: 1000,
          prepare: (key, entry) => ({ key, entry, payload: '' }),
          get: () => Promise.reject(new Error('down')),
          getMany: () => Promise.reject(new Error('down')),
          setMany: () => Promise.reject(new Error('down')),
          has: () => Promise.reject(new Error('down')),
          delete: () => Promise.reject(new Error('down')),
          clear: () => Promise.reject(new Error('down')),
          close: () => Promise.resolve(),
        },
      ],
    });
    const offFailing = failing.on('error', ({ error }) => seen.push(`${error.code}:${error.tier}`));
    expect(await failing.getOrSet('k', () => 1)).toBe(1);
    offFailing();
    await failing.get('other');
    off();
    expect(seen).toEqual(['E_TIER:broken', 'E_TIER:broken']);
    expect(cache.stats().tiers[0]!.errors).toBe(0);
  });
});

describe('smarter L1', () => {
  it('gives hot keys longer L1 lives with adaptiveTtl, up to the maximum', async () => {
    const { cache, clock } = setup({}, { ttl: '1s', adaptiveTtl: { max: '16s' } });
    // Sixteen lookups make 'hot' as frequent as the sketch can tell; 'cold' was never looked up.
    for (let i = 0; i < 16; i++) await cache.get('hot');
    await cache.set('hot', 'h');
    await cache.set('cold', 'c');
    clock.advance(1_000);
    expect(await cache.get('cold')).toBeUndefined();
    expect(await cache.get('hot')).toBe('h');
    clock.advance(14_999);
    expect(await cache.get('hot')).toBe('h');
    clock.advance(1);
    expect(await cache.get('hot')).toBeUndefined();
  });

  it('counts hits a key took while resident in L1 towards its adaptive TTL', async () => {
    const { cache, clock } = setup({}, { ttl: '1s', adaptiveTtl: { max: '16s' } });
    await cache.set('k', 1);
    for (let i = 0; i < 16; i++) expect(await cache.get('k')).toBe(1);
    await cache.set('k', 2);
    clock.advance(10_000);
    expect(await cache.get('k')).toBe(2);
  });

  it('lets an explicit TTL win over the adaptive one', async () => {
    const { cache, clock } = setup({}, { ttl: '1s', adaptiveTtl: { max: '1m' } });
    for (let i = 0; i < 16; i++) await cache.get('hot');
    await cache.set('hot', 'h', { ttl: 500 });
    clock.advance(500);
    expect(await cache.get('hot')).toBeUndefined();
  });

  it('reports why entries leave L1', async () => {
    const { cache, clock } = setup({}, { maxEntries: 2, ttl: '1s', policy: 'lru' });
    const seen: string[] = [];
    cache.on('remove', ({ key, reason, tier }) => seen.push(`${tier}:${key}:${reason}`));
    await cache.set('a', 1);
    await cache.set('a', 2);
    await cache.set('b', 1);
    await cache.set('c', 1);
    await cache.delete('b');
    clock.advance(1_000);
    await cache.get('c');
    expect(seen).toEqual(['memory:a:replace', 'memory:a:evict', 'memory:b:delete', 'memory:c:expire']);
  });

  it.each<[string, Parameters<typeof memoryTier>[0], RegExp]>([
    ['minHits with lru', { policy: 'lru', admission: { minHits: 2 } }, /"memory.policy".*tinylfu/],
    ['adaptiveTtl with lru', { policy: 'lru', adaptiveTtl: { max: '5m' } }, /"memory.policy"/],
    ['minHits 99', { admission: { minHits: 99 } }, /"memory.admission.minHits".*99/],
    [
      'adaptiveTtl shorter than ttl',
      { ttl: '1m', adaptiveTtl: { max: '10s' } },
      /"memory.adaptiveTtl.max".*longer/,
    ],
  ])('rejects %s at construction', (_, options, message) => {
    expect(() => memoryTier(options)).toThrow(message);
  });
});
