import { FILL } from '../../src/tiers/redis/fill-leases.js';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  createCache,
  memoryTier,
  redisTier,
  ValueTooLargeError,
  type CacheError,
  type RedisTierOptions,
  type TierCache,
} from '../../src/index.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { parseInfo } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

// Large values against a real Redis, with the default 250 ms tier timeout unless a test says so.
const redis = redisFixture();
const { track } = redis;
let run = 0;

const MB = 1024 * 1024;

/** A cache with only a Redis tier, so every read goes to Redis, reporting its errors. */
function l2Only(prefix: string, options: Omit<RedisTierOptions, 'client' | 'prefix'> = {}) {
  const errors: CacheError[] = [];
  const tier = redisTier({ client: redis.server.client({ enableAutoPipelining: true }), prefix, ...options });
  const cache = track(createCache({ tiers: [tier], bus: false, onError: (error) => errors.push(error) }));
  return { cache, errors, client: tier.client as Redis };
}

async function stat(section: string, field: string): Promise<number> {
  const info = parseInfo((await redis.server.cli('INFO', section)) as string);
  return Number(info.get(field) ?? 0);
}

async function evalCalls(): Promise<number> {
  const line = parseInfo((await redis.server.cli('INFO', 'commandstats')) as string).get('cmdstat_eval');
  return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
}

function breakerOf(cache: TierCache) {
  return cache.stats().tiers.at(-1)!;
}

describe('big values under the default timeout', () => {
  it('64 concurrent reads of 1 MB values all hit, with no timeout and a closed breaker', async () => {
    const prefix = `big${++run}:`;
    const { cache, errors } = l2Only(prefix, { timeout: '10s' });
    const value = 'v'.repeat(MB);
    for (let i = 0; i < 64; i++) await cache.set(`k${i}`, `${i}${value}`);
    const reader = l2Only(prefix);
    // A fresh instance learns the size of values from its first reply (or its first write).
    expect(await reader.cache.get('k0')).toHaveLength(MB + 1);
    const found = await Promise.all(Array.from({ length: 64 }, (_, i) => reader.cache.get<string>(`k${i}`)));
    expect(
      found.filter((v, i) => v?.startsWith(`${i}v`) === true && v.length === MB + String(i).length),
    ).toHaveLength(64);
    expect(reader.errors).toEqual([]);
    expect(breakerOf(reader.cache)).toMatchObject({ timeouts: 0, breaker: { opens: 0 } });
    expect(errors).toEqual([]);
  });

  it('16 concurrent 1 MB set()s land without a timeout and leave the breaker closed', async () => {
    const prefix = `big${++run}:`;
    const { cache, errors } = l2Only(prefix);
    await Promise.all(Array.from({ length: 16 }, (_, i) => cache.set(`w${i}`, `${i}:${'w'.repeat(MB)}`)));
    expect(errors).toEqual([]);
    expect(breakerOf(cache)).toMatchObject({ timeouts: 0, errors: 0, breaker: { opens: 0 } });
    expect(await redis.server.cli('STRLEN', `${prefix}w15`)).toBeGreaterThan(MB);
  });
});

describe('maxValueBytes', () => {
  it('refuses a write over it before anything is written, naming key, size and limit', async () => {
    const prefix = `max${++run}:`;
    const cache = track(
      createCache({
        tiers: [memoryTier(), redisTier({ client: redis.server.client(), prefix, maxValueBytes: 1000 })],
        bus: false,
      }),
    );
    const error = await cache.set('big', 'x'.repeat(2000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValueTooLargeError);
    expect(error).toMatchObject({ code: 'E_VALUE_TOO_LARGE', key: 'big', tier: 'redis', limit: 1000 });
    expect((error as ValueTooLargeError).size).toBeGreaterThan(2000);
    expect((error as Error).message).toMatch(/"big".*maxValueBytes 1000/);
    expect(await cache.get('big')).toBeUndefined();
    expect(await redis.server.cli('EXISTS', `${prefix}big`)).toBe(0);
    // Multi-byte text is counted in UTF-8 bytes: 400 characters of 3 bytes are over 1000.
    await expect(cache.set('wide', '€'.repeat(400))).rejects.toBeInstanceOf(ValueTooLargeError);
    await cache.set('fits', 'x'.repeat(900));
    expect(await cache.get('fits')).toHaveLength(900);
  });

  it('validates the option, naming it', () => {
    for (const bad of [0, 1.5, -1, 513 * MB, '1MB' as unknown as number]) {
      expect(() => redisTier({ client: 'redis://127.0.0.1:1', name: 'l2', maxValueBytes: bad })).toThrow(
        /"l2\.maxValueBytes"/,
      );
    }
  });

  it('a planted oversized value is a corrupt miss, transferred once, never decoded, and takes nothing down', async () => {
    const prefix = `plant${++run}:`;
    // 64 MB of zero bytes, made by the server itself; the default limit is 8 MiB.
    await redis.server.cli('SETRANGE', `${prefix}huge`, 64 * MB - 1, 'x');
    const { cache, errors, client } = l2Only(prefix);
    await cache.set('small', 'ok');
    // The first read transfers it (on a loaded machine that may even time out once, before the
    // instance has seen a reply that big); it is never decoded, and is reported as corrupt.
    await waitFor(
      async () => {
        expect(await cache.get('huge')).toBeUndefined();
        return errors.some((e) => e.code === 'E_CORRUPT_ENTRY') ? done(true) : notYet('no corrupt report');
      },
      { description: 'the oversized value to be reported', timeoutMs: 30_000 },
    );
    const corrupt = errors.find((e) => e.code === 'E_CORRUPT_ENTRY')!;
    expect(corrupt.message).toMatch(/67108864 bytes, over maxValueBytes \(8388608\)/);
    const corruptBefore = cache.stats().corrupt;
    // From now on this instance asks for the size alone.
    const stream = () => (client.stream as { bytesRead: number }).bytesRead;
    const evals = await evalCalls();
    const before = stream();
    for (let i = 0; i < 10; i++) {
      const [huge, small] = await Promise.all([cache.get('huge'), cache.get('small')]);
      expect([huge, small]).toEqual([undefined, 'ok']);
    }
    expect(stream() - before).toBeLessThan(10_000);
    expect((await evalCalls()) - evals).toBe(10);
    expect(cache.stats().corrupt - corruptBefore).toBe(10);
    expect(breakerOf(cache)).toMatchObject({ breaker: { state: 'closed', opens: 0 } });
    // Once the key holds a value of a sane size again, it reads as usual. (The fill script is
    // loaded first: sent by EVALSHA, it is not one more EVAL.)
    await redis.server.cli('SCRIPT', 'LOAD', FILL);
    expect(await cache.getOrSet('huge', () => 'fixed')).toBe('fixed');
    expect(await cache.get('huge')).toBe('fixed');
    expect(await cache.get('huge')).toBe('fixed');
    expect((await evalCalls()) - evals).toBe(11);
  });
});

describe('a key holding another type than a string', () => {
  it('is a corrupt miss that takes nothing down, and a fill or a delete replaces it (issue 19 rerun: five reads opened the breaker)', async () => {
    const prefix = `type${++run}:`;
    const { cache, errors } = l2Only(prefix);
    await cache.set('small', 'ok');
    await redis.server.cli('HSET', `${prefix}hash`, 'f', 'v');
    await redis.server.cli('RPUSH', `${prefix}list`, 'x');
    await redis.server.cli('SADD', `${prefix}set`, 'x');
    for (let i = 0; i < 10; i++) {
      expect(await cache.get('hash')).toBeUndefined();
      expect(await cache.get('small')).toBe('ok');
    }
    expect(await cache.getMany(['small', 'hash', 'list'])).toEqual(['ok', undefined, undefined]);
    expect(await cache.has('set')).toBe(false);
    expect(breakerOf(cache)).toMatchObject({ errors: 0, breaker: { state: 'closed', opens: 0 } });
    expect(errors.filter((e) => e.code !== 'E_CORRUPT_ENTRY')).toEqual([]);
    expect(errors[0]!.message).toMatch(/"hash".*another type than a string \(WRONGTYPE\)/);
    // The loader's value replaces it; a delete of several keys buries every one of them.
    expect(await cache.getOrSet('hash', () => 'loaded')).toBe('loaded');
    expect(await cache.get('hash')).toBe('loaded');
    expect(await cache.deleteMany(['list', 'set', 'small'])).toBe(3);
    expect(await cache.getMany(['list', 'set', 'small'])).toEqual([undefined, undefined, undefined]);
    expect(breakerOf(cache)).toMatchObject({ errors: 0, breaker: { state: 'closed', opens: 0 } });
  });
});

describe('oversized values under msgpack', () => {
  // The size-only read went by callBuffer, which ioredis's auto-pipelining sends without its
  // command name: the pipeline threw from a setImmediate, an uncaught exception.
  it('regression: an oversized key is read by script with auto-pipelining, with no uncaught error', async () => {
    const prefix = `mp${++run}:`;
    await redis.server.cli('SETRANGE', `${prefix}huge`, 2 * MB - 1, 'x');
    const { cache, errors } = l2Only(prefix, { serializer: msgpackSerializer(), maxValueBytes: MB });
    await cache.set('small', { ok: true });
    const evals = await evalCalls();
    for (let i = 0; i < 3; i++)
      expect(await Promise.all([cache.get('huge'), cache.get('small')])).toEqual([undefined, { ok: true }]);
    // The first read transferred it; the next two asked for its size alone.
    expect((await evalCalls()) - evals).toBe(2);
    expect(errors.map((e) => e.message)).toEqual(
      Array(3).fill(expect.stringMatching(/2097152 bytes, over maxValueBytes \(1048576\)/)),
    );
  });
});

describe('concurrent reads of one key', () => {
  it('two get()s of one key in one tick read it from Redis once', async () => {
    const prefix = `co${++run}:`;
    const { cache } = l2Only(prefix);
    await cache.set('k', { big: 'x'.repeat(100_000) });
    const hits = await stat('stats', 'keyspace_hits');
    const [a, b] = await Promise.all([cache.get('k'), cache.get('k')]);
    expect(a).toEqual(b);
    expect((await stat('stats', 'keyspace_hits')) - hits).toBe(1);
  });

  // A batch of reads closes at about 1 MB of expected replies: once values that big have been
  // seen, every read of a tick started a batch of its own, and a second read of a key sent it again.
  it('reads of one 1 MB key in one tick, among reads of others, name it once (Redis tier alone, and under an L1)', async () => {
    const prefix = `co${++run}:`;
    const { cache } = l2Only(prefix, { timeout: '10s' });
    const value = 'v'.repeat(MB);
    await cache.setMany(['a', 'b', 'c'].map((key) => ({ key, value: key + value })));
    const layered = redis.instance(prefix, { bus: false });
    for (const reader of [cache, layered]) {
      // Each reader has seen a reply this big, so it expects one per key read.
      expect(await reader.get('c')).toHaveLength(MB + 1);
      const hits = await stat('stats', 'keyspace_hits');
      const found = await Promise.all(['a', 'b', 'a', 'b', 'a'].map((key) => reader.get<string>(key)));
      expect(found.map((v) => v?.slice(0, 2))).toEqual(['av', 'bv', 'av', 'bv', 'av']);
      expect((await stat('stats', 'keyspace_hits')) - hits).toBe(2);
    }
  });
});
