import { describe, expect, it } from 'vitest';
import {
  cacheControl,
  cacheHeaders,
  createCache,
  createInvalidator,
  memoryTier,
  redisTier,
} from '../../src/index.js';
import { refusal } from '../helpers/refusal.js';
import { closest } from '../../src/internal/option-names.js';
import { stableStringify } from '../../src/internal/stable-key.js';
import { wellFormed } from '../../src/internal/keys.js';
import { FakeClock } from '../helpers/fake-clock.js';

function setup(memory: Parameters<typeof memoryTier>[0] = {}) {
  const clock = new FakeClock();
  return createCache({ tiers: [memoryTier(memory)], clock: clock.read });
}

const entry = { value: 1, createdAt: 0, expiresAt: 60_000, tier: 'memory' };

describe('unknown option names are refused, naming the path and the closest known name', () => {
  it.each([
    [
      'createCache',
      () => createCache({ hardtimeout: '100ms' } as never),
      /createCache options\.hardtimeout.*did you mean "hardTimeout"/,
    ],
    [
      'negativeCaching',
      () => createCache({ negativeCaching: { nul: true } } as never),
      /negativeCaching\.nul.*"null"/,
    ],
    [
      'failSafe',
      () => createCache({ failSafe: { maxStale: '1m' } } as never),
      /failSafe\.maxStale.*"maxStaleAge"/,
    ],
    ['memoryTier', () => memoryTier({ ttll: '1s' } as never), /memoryTier options\.ttll.*"ttl"/],
    [
      'memoryTier.admission',
      () => memoryTier({ admission: { minhit: 1 } } as never),
      /admission\.minhit.*"minHits"/,
    ],
    [
      'redisTier',
      () => redisTier({ client: 'redis://127.0.0.1:1', prefx: 'a:' } as never),
      /redisTier options\.prefx.*"prefix"/,
    ],
    [
      'redisTier breaker',
      () => redisTier({ client: 'redis://127.0.0.1:1', breaker: { failure: 3 } } as never),
      /breaker\.failure.*"failures"/,
    ],
    [
      'cacheControl',
      () => cacheControl(entry, { maxage: 5 } as never),
      /cacheControl options\.maxage.*"maxAge"/,
    ],
    ['cacheHeaders', () => cacheHeaders(entry, { etg: false } as never), /cacheHeaders options\.etg.*"etag"/],
    [
      'createInvalidator',
      () => createInvalidator({ redis: 'redis://127.0.0.1:1', chanel: 'x' } as never),
      /createInvalidator options\.chanel.*"channel"/,
    ],
  ])('%s', async (_name, run, message) => {
    const error = await refusal(run);
    expect(error.code).toBe('E_INVALID_OPTION');
    expect(error.message).toMatch(message);
  });

  it('refuses per-call names on a miss, on an L1 hit and when joining a flight, as rejections', async () => {
    const cache = setup();
    const bad = { hardtimeut: '100ms' } as never;
    const miss = await refusal(() => cache.getOrSet('a', () => 1, bad));
    expect(miss.message).toMatch(/getOrSet options\.hardtimeut.*did you mean "hardTimeout"/);
    await cache.set('a', 1);
    let hit: Promise<unknown> | undefined;
    expect(() => (hit = cache.getOrSet('a', () => 1, bad))).not.toThrow();
    await expect(hit).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
    await expect(cache.getOrSet('a', () => 1, bad)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
    let release!: (v: number) => void;
    const flight = cache.getOrSet('b', () => new Promise<number>((resolve) => (release = resolve)));
    await expect(cache.getOrSet('b', () => 2, bad)).rejects.toMatchObject({ code: 'E_INVALID_OPTION' });
    release(1);
    expect(await flight).toBe(1);
  });

  it('refuses names in set, setMany (options and items), getManyOrSet, wrap, warm and warmFrom', async () => {
    const cache = setup();
    expect((await refusal(() => cache.set('a', 1, { tll: 5 } as never))).message).toMatch(
      /set options\.tll.*"ttl"/,
    );
    expect((await refusal(() => cache.setMany([{ key: 'a', value: 1, tgas: [] } as never]))).message).toMatch(
      /setMany item\.tgas.*"tags"/,
    );
    expect((await refusal(() => cache.setMany([null as never]))).code).toBe('E_INVALID_OPTION');
    expect(
      (await refusal(() => cache.getManyOrSet(['a'], async () => [1], { grce: 5 } as never))).message,
    ).toMatch(/getManyOrSet options\.grce.*"grace"/);
    const wrapped = cache.wrap(async (n: number) => n, { name: 'f', tl: 5 } as never);
    expect((await refusal(() => wrapped(1))).message).toMatch(/wrap options\.tl.*"ttl"/);
    expect((await refusal(() => cache.warm(['a'], { batchsize: 5 } as never))).message).toMatch(
      /warm options\.batchsize.*"batchSize"/,
    );
    expect((await refusal(() => cache.warmFrom([1], String, { tagsof: () => [] } as never))).message).toMatch(
      /warmFrom options\.tagsof.*"tagsOf"/,
    );
    expect(await cache.get('a')).toBeUndefined();
  });

  it('suggests only names within a typo, case ignored', () => {
    expect(closest('hardtimeout', ['hardTimeout', 'softTimeout'])).toBe('hardTimeout');
    expect(closest('ttll', ['ttl', 'tags'])).toBe('ttl');
    expect(closest('tlt', ['ttl'])).toBe('ttl');
    expect(closest('banana', ['ttl', 'tags'])).toBeUndefined();
  });
});

describe('every error is a CacheError', () => {
  it('bounds maxEntries instead of failing to allocate', async () => {
    const error = await refusal(() => memoryTier({ maxEntries: 1e12 }));
    expect(error.message).toMatch(/maxEntries.*from 1 to/);
  });

  it('refuses TTLs Redis cannot hold, and timeouts a Node timer cannot wait', async () => {
    const cache = setup();
    expect((await refusal(() => cache.set('a', 1, { ttl: 1e300 }))).code).toBe('E_INVALID_TTL');
    expect((await refusal(() => memoryTier({ ttl: 1e300 }))).code).toBe('E_INVALID_OPTION');
    // setTimeout(…, 30 days) would fire after 1 ms: the loader would "time out" at once.
    const timeout = await refusal(() => cache.getOrSet('a', () => 1, { hardTimeout: '30d' }));
    expect(timeout.message).toMatch(/hardTimeout.*24\.8 days/);
    expect(await cache.getOrSet('b', () => 2, { hardTimeout: '20d', ttl: '36500d' })).toBe(2);
  });

  it("turns a clone of a value too deep for structuredClone into a SerializationError (valueMode 'clone')", async () => {
    const cache = setup({ valueMode: 'clone' });
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const error = await refusal(() => cache.set('deep', deep));
    expect(error.code).toBe('E_SERIALIZATION');
    expect((await refusal(() => cache.set('f', { f: () => 1 }))).code).toBe('E_SERIALIZATION');
  });

  it("freezes values holding typed arrays under valueMode 'freeze' instead of throwing", async () => {
    const cache = setup({ valueMode: 'freeze' });
    await cache.set('b', { bytes: new Uint8Array([1, 2]) });
    expect(await cache.get('b')).toEqual({ bytes: new Uint8Array([1, 2]) });
  });
});

describe('keys and prefixes', () => {
  it('refuses an empty prefix, which would let clear() empty the database', async () => {
    expect((await refusal(() => redisTier({ client: 'redis://127.0.0.1:1', prefix: '' }))).message).toMatch(
      /prefix cannot be empty/,
    );
    expect(
      (await refusal(() => createInvalidator({ redis: 'redis://127.0.0.1:1', prefix: '' }))).message,
    ).toMatch(/prefix cannot be empty/);
  });

  it('refuses keys with lone surrogates on every path, fast path included', async () => {
    const cache = setup();
    for (const key of ['user:\ud800', 'user:\udbff', '\udc00x', 'a\udfff\ud800']) {
      expect((await refusal(() => cache.set(key, 1))).code).toBe('E_INVALID_KEY');
      expect((await refusal(() => cache.get(key))).code).toBe('E_INVALID_KEY');
      expect((await refusal(() => cache.getOrSet(key, () => 1))).code).toBe('E_INVALID_KEY');
      expect((await refusal(() => cache.getMany([key]))).code).toBe('E_INVALID_KEY');
    }
    const noL1 = createCache({ tiers: [memoryTier()], bus: false });
    expect((await refusal(() => noL1.getOrSet('x\ud800', () => 1))).code).toBe('E_INVALID_KEY');
    expect(await cache.getOrSet('emoji:\ud83d\ude00', () => 1)).toBe(1);
  });

  it('tells well-formed text from lone surrogates', () => {
    expect(wellFormed('plain')).toBe(true);
    expect(wellFormed('\ud83d\ude00')).toBe(true);
    expect(wellFormed('\ud83d')).toBe(false);
    expect(wellFormed('\ude00\ud83d')).toBe(false);
    expect(wellFormed('x\ude00')).toBe(false);
  });
});

describe('wrap() default keys', () => {
  it('gives argument lists that are not deep-equal different keys', () => {
    const distinct: unknown[][] = [
      [NaN],
      [null],
      [Infinity],
      [-Infinity],
      [0],
      [-0],
      [/x/],
      [/x/g],
      [{}],
      [new Map()],
      [new Set()],
      [[]],
      [[undefined]],
      [[null]],
      // eslint-disable-next-line no-sparse-arrays
      [[, 1]],
      [{ a: undefined }],
      [{ $u: 1 }],
      [undefined],
      [],
      [new Date(0)],
      [new Date(NaN)],
      [0n],
      ['0'],
      [new Uint8Array([1])],
      [Buffer.from([1])],
      [new Int8Array([1])],
    ];
    const keys = distinct.map((args) => stableStringify(args));
    expect(new Set(keys).size).toBe(distinct.length);
    expect(stableStringify([{ a: 1, b: 2 }])).toBe(stableStringify([{ b: 2, a: 1 }]));
  });

  it('refuses what it cannot key with a CacheError, as a rejection', async () => {
    const cache = setup();
    const f = cache.wrap(async (_arg: unknown) => 1, { name: 'f' });
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect((await refusal(() => f(circular))).message).toMatch(/circular/);
    expect((await refusal(() => f(() => 1))).message).toMatch(/function/);
    class Point {
      x = 1;
    }
    expect((await refusal(() => f(new Point()))).message).toMatch(/Point/);
    expect(await f(JSON.parse('{"__proto__": 1}'))).toBe(1);
  });
});
