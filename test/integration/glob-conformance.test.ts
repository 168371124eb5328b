/**
 * The L1 glob matcher against a real Redis: for generated patterns and keys, L1 must drop
 * exactly the keys Redis's KEYS/SCAN MATCH finds (issue 19: `k[ab` deleted `ka` in Redis while
 * every L1 kept it; `[z-a]` crashed every instance).
 */
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeGlob } from '../../src/tiers/redis/redis-tier.js';
import { globMatcher } from '../../src/sync/glob.js';
import { GLOB_CASES } from '../helpers/glob-cases.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';

let server: RedisProcess;
let raw: Redis;
let prefixed: Redis;

beforeAll(async () => {
  server = await startRedis();
  raw = server.client({ db: 1 });
  prefixed = server.client({ db: 2 });
});

afterAll(stopAllRedis);

/** Characters that mean something to the glob, or sit at the edges of ranges, and multi-byte ones. */
const META = ['*', '?', '[', ']', '^', '-', '\\'];
const PLAIN = ['a', 'b', 'c', 'z', 'A', 'Z', '0', ':', '_', ' ', 'é', 'ÿ', '€', '\u0000', '\u007f'];
const keyChar = fc.constantFrom(...PLAIN, '[', ']', '^', '-', '\\', '*', '?');
const patternChar = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PLAIN) },
  { weight: 3, arbitrary: fc.constantFrom(...META) },
  // whole constructs, so classes and ranges come up often, reversed and unterminated too
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '[a-c]',
      '[c-a]',
      '[z-a]',
      '[^a]',
      '[^a-c',
      '[]',
      '[^]',
      '[\\]]',
      '[a-]',
      '[-a]',
      '\\*',
      '\\[',
    ),
  },
);
const patternArb = fc.array(patternChar, { maxLength: 8 }).map((parts) => parts.join(''));

/** The keys Redis's KEYS returns for `pattern`, in db `client` (every key there starts with `strip`). */
async function redisMatches(client: Redis, pattern: string, strip = ''): Promise<Set<string>> {
  const found = await client.keys(pattern);
  return new Set(found.map((key) => key.slice(strip.length)));
}

describe('the L1 glob matcher conforms to Redis', () => {
  it('on the hand-picked cases, the issue 19 examples among them', async () => {
    for (const [pattern, key, expected] of GLOB_CASES) {
      await raw.flushdb();
      await raw.set(key, '1');
      const redis = (await raw.keys(pattern)).includes(key);
      expect([pattern, key, redis]).toEqual([pattern, key, expected]);
      expect([pattern, key, globMatcher(pattern)(key)]).toEqual([pattern, key, redis]);
    }
  });

  it('on generated patterns against generated keys', async () => {
    const keys = [
      ...new Set(
        fc.sample(
          fc.array(keyChar, { minLength: 1, maxLength: 6 }).map((c) => c.join('')),
          {
            numRuns: 400,
            seed: 19,
          },
        ),
      ),
      'ka',
      'kb',
      'user:1',
      'user:Q',
    ];
    await raw.flushdb();
    await raw.mset(keys.flatMap((key) => [key, '1']));
    await fc.assert(
      fc.asyncProperty(patternArb, async (pattern) => {
        const redis = await redisMatches(raw, pattern);
        const matches = globMatcher(pattern);
        const l1 = new Set(keys.filter((key) => matches(key)));
        expect([pattern, [...l1].sort()]).toEqual([pattern, [...redis].sort()]);
      }),
      { numRuns: 1_500 },
    );
  });

  it('behind a tier prefix, as deleteByPattern runs it (escaped prefix + pattern)', async () => {
    const prefix = 'p[*?\\]:';
    const keys = [
      ...new Set(
        fc.sample(
          fc.array(keyChar, { minLength: 1, maxLength: 5 }).map((c) => c.join('')),
          {
            numRuns: 200,
            seed: 7,
          },
        ),
      ),
    ];
    await prefixed.flushdb();
    await prefixed.mset(keys.flatMap((key) => [prefix + key, '1']));
    await fc.assert(
      fc.asyncProperty(patternArb, async (pattern) => {
        // Exactly what RedisStore.deleteMatching SCANs for.
        const redis = await redisMatches(prefixed, escapeGlob(prefix) + pattern, prefix);
        const matches = globMatcher(pattern);
        const l1 = new Set(keys.filter((key) => matches(key)));
        expect([pattern, [...l1].sort()]).toEqual([pattern, [...redis].sort()]);
      }),
      { numRuns: 800 },
    );
  });

  it('SCAN MATCH agrees with KEYS on what the test compares', async () => {
    await raw.flushdb();
    await raw.mset('ka', '1', 'kb', '1', 'k[ab', '1', 'user:q', '1');
    for (const pattern of ['k[ab', 'user:[z-a]*', '*?*?*?#', 'k\\']) {
      const [cursor, found] = await raw.scan('0', 'MATCH', pattern, 'COUNT', 10_000);
      expect(cursor).toBe('0');
      expect(new Set(found)).toEqual(await redisMatches(raw, pattern));
    }
  });
});
