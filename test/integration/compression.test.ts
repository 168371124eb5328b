import * as zlib from 'node:zlib';

import { describe, expect, it } from 'vitest';
import { createCache, redisTier, type CacheError, type RedisTierOptions } from '../../src/index.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import type { CompressionAlgorithm } from '../../src/tiers/compression.js';
import { redisFixture } from '../helpers/redis-fixture.js';

// Compressed entries (RedisTierOptions.compression) against a real Redis: what lands in Redis,
// and what readers with and without the option make of it.
const redis = redisFixture();
const { track } = redis;
let run = 0;

const zstdHere = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';
const ALGORITHMS: CompressionAlgorithm[] = zstdHere ? ['brotli', 'gzip', 'zstd'] : ['brotli', 'gzip'];
const MARK: Record<CompressionAlgorithm, string> = { brotli: 'c162', gzip: 'c167', zstd: 'c17a' };

/** A cache with only a Redis tier, so every read goes to Redis, reporting its errors. */
function l2Only(prefix: string, options: Omit<RedisTierOptions, 'client' | 'prefix'> = {}) {
  const errors: CacheError[] = [];
  const tier = redisTier({ client: redis.server.client({ enableAutoPipelining: true }), prefix, ...options });
  const cache = track(createCache({ tiers: [tier], bus: false, onError: (error) => errors.push(error) }));
  return { cache, errors };
}

/** The bytes Redis holds under a full key. */
async function stored(fullKey: string): Promise<Buffer> {
  const admin = redis.server.client();
  try {
    return (await admin.getBuffer(fullKey))!;
  } finally {
    admin.disconnect();
  }
}

/** JSON-ish records of about `bytes` bytes. */
function records(bytes: number): { id: number; name: string; email: string; active: boolean }[] {
  const out = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const record = { id: i, name: `user ${i}`, email: `user${i}@example.com`, active: i % 3 === 0 };
    out.push(record);
    n += JSON.stringify(record).length + 1;
  }
  return out;
}

describe('compressed entries in Redis', () => {
  for (const algorithm of ALGORITHMS)
    it(`${algorithm}: values of 2 kB, 100 kB and 1 MB are stored marked and smaller, and read back whole`, async () => {
      const prefix = `z${++run}:`;
      const { cache, errors } = l2Only(prefix, { compression: { algorithm }, timeout: '5s' });
      for (const size of [2_000, 100_000, 1_000_000]) {
        const value = records(size);
        await cache.set(`v${size}`, value);
        const bytes = await stored(`${prefix}v${size}`);
        expect(bytes.subarray(0, 2).toString('hex')).toBe(MARK[algorithm]);
        expect(bytes.byteLength).toBeLessThan(JSON.stringify(value).length / 4);
        expect(await cache.get(`v${size}`)).toEqual(value);
      }
      expect(errors).toEqual([]);
    });

  it('msgpack entries compress and read back too, also in a batch with plain ones', async () => {
    const prefix = `zm${++run}:`;
    const { cache, errors } = l2Only(prefix, { serializer: msgpackSerializer(), compression: true });
    const big = { rows: records(50_000), at: new Date(5), ids: new Set([1, 2]) };
    await cache.setMany<unknown>([
      { key: 'big', value: big },
      { key: 'small', value: 'tiny' },
    ]);
    expect((await stored(`${prefix}big`))[0]).toBe(0xc1);
    expect((await stored(`${prefix}small`))[0]).not.toBe(0xc1);
    expect(await cache.getMany(['big', 'small'])).toEqual([big, 'tiny']);
    expect(errors).toEqual([]);
  });

  it('below the threshold an entry is stored as plain JSON text', async () => {
    const prefix = `zt${++run}:`;
    const { cache } = l2Only(prefix, { compression: { threshold: 4096 } });
    await cache.set('under', 'x'.repeat(3000));
    await cache.set('over', 'x'.repeat(5000));
    const under = await stored(`${prefix}under`);
    expect(under.toString('utf8')).toMatch(/^\{"f":1,.*"v":"x{3000}"\}$/);
    expect((await stored(`${prefix}over`)).subarray(0, 2).toString('hex')).toBe(MARK.brotli);
    expect(await cache.get('under')).toBe('x'.repeat(3000));
    expect(await cache.get('over')).toBe('x'.repeat(5000));
  });

  it('a reader without compression reads what a writer with it wrote, and the other way round', async () => {
    const prefix = `zr${++run}:`;
    const writer = l2Only(prefix, { compression: { algorithm: 'gzip' } });
    const plainWriter = l2Only(prefix);
    const value = records(20_000);
    await writer.cache.set('packed', value);
    await plainWriter.cache.set('plain', value);
    expect((await stored(`${prefix}packed`))[0]).toBe(0xc1);
    expect((await stored(`${prefix}plain`))[0]).toBe('{'.charCodeAt(0));
    for (const reader of [l2Only(prefix), l2Only(prefix, { compression: true })]) {
      expect(await reader.cache.getMany(['packed', 'plain'])).toEqual([value, value]);
      expect(await reader.cache.get('packed')).toEqual(value);
      expect(reader.errors).toEqual([]);
    }
    // With an L1 in front, what is promoted is the value, not its compressed bytes.
    const layered = redis.instance(prefix, { bus: false });
    expect(await layered.get('packed')).toEqual(value);
    expect(await layered.get('packed')).toEqual(value);
  });
});

describe('compressed payloads a reader refuses', () => {
  it('a corrupt compressed payload is a corrupt miss, reported, and the loader writes over it', async () => {
    const prefix = `zc${++run}:`;
    const { cache, errors } = l2Only(prefix, { compression: true });
    await cache.set('k', records(10_000));
    const bytes = await stored(`${prefix}k`);
    await redis.server.cli('SET', `${prefix}k`, bytes.subarray(0, bytes.length - 8));
    expect(await cache.get('k')).toBeUndefined();
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['E_CORRUPT_ENTRY', expect.stringMatching(/its brotli payload cannot be inflated/)],
    ]);
    expect(await cache.getOrSet('k', () => 'reloaded')).toBe('reloaded');
    expect(await cache.get('k')).toBe('reloaded');
  });

  it('a zip bomb (a small payload inflating past maxValueBytes) is a corrupt miss, not inflated', async () => {
    const prefix = `zb${++run}:`;
    const { cache, errors } = l2Only(prefix, { maxValueBytes: 1024 * 1024 });
    // 64 MiB of zeros in about 12 kB, planted by hand: no tiercache writer would write it.
    const bomb = Buffer.concat([
      Buffer.from([0xc1, 0x62]),
      zlib.brotliCompressSync(Buffer.alloc(64 * 1024 * 1024), {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 },
      }),
    ]);
    const admin = redis.server.client();
    await admin.set(`${prefix}bomb`, bomb);
    admin.disconnect();
    await cache.set('fine', 'ok');
    const before = process.memoryUsage().arrayBuffers;
    expect(await Promise.all([cache.get('bomb'), cache.get('fine')])).toEqual([undefined, 'ok']);
    // Garbage is not collected in between: inflated, it would hold 64 MiB more here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      [
        'E_CORRUPT_ENTRY',
        expect.stringMatching(/inflates past maxValueBytes \(1048576\); not inflated further/),
      ],
    ]);
    expect(cache.stats().tiers[0]).toMatchObject({ breaker: { state: 'closed' } });
  });

  it('maxValueBytes bounds the entry before compression: a writer cannot store what readers would refuse', async () => {
    const prefix = `zx${++run}:`;
    const { cache } = l2Only(prefix, { compression: true, maxValueBytes: 10_000 });
    // Compresses to a few hundred bytes, but is 20 kB once inflated.
    await expect(cache.set('k', 'x'.repeat(20_000))).rejects.toMatchObject({ code: 'E_VALUE_TOO_LARGE' });
    expect(await redis.server.cli('EXISTS', `${prefix}k`)).toBe(0);
  });
});
