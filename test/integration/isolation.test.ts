import { withoutGenerations } from '../helpers/stored.js';
import { describe, expect, it } from 'vitest';
import {
  createCache,
  createInvalidator,
  memoryTier,
  redisTier,
  type CacheOptions,
  type TierCache,
} from '../../src/index.js';
import { InvalidOptionError } from '../../src/errors.js';
import { PATIENT } from '../helpers/backends.js';
import { gate } from '../helpers/fake-clock.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

// Several caches on one real Redis: each may touch only the keys under its own prefix.
const redis = redisFixture({ timeout: PATIENT });
const { track } = redis;
let run = 0;

/** A cache with only a Redis tier (no L1 to hide what Redis holds), without a bus unless asked. */
function redisOnly(prefix: string, options: CacheOptions = {}): TierCache {
  return track(
    createCache({
      tiers: [redisTier({ client: redis.server.client(), prefix, timeout: PATIENT })],
      bus: false,
      ...options,
    }),
  );
}

async function keysOf(pattern: string): Promise<string[]> {
  return withoutGenerations((await redis.server.cli('KEYS', pattern)) as string[]).sort();
}

describe('key prefixes: one cache never reaches another cache’s keys', () => {
  it('refuses a prefix that could start another one, or none, naming the option', async () => {
    const client = 'redis://127.0.0.1:1';
    for (const prefix of ['a:b:', 'a', 'a:b', '', ':']) {
      const attempt = () => redisTier({ client, prefix: prefix === ':' ? '::' : prefix });
      expect(attempt).toThrow(InvalidOptionError);
      expect(attempt).toThrow(/redis\.prefix/);
    }
    expect(() => redisTier({ client, prefix: '' })).toThrow(/cannot be empty/);
    expect(() => redisTier({ client, prefix: 'shop:v2:' })).toThrow(/"shop\.v2:"/);
    expect(() => redisTier({ client, name: 'l2', prefix: 7 as unknown as string })).toThrow(/l2\.prefix/);
    expect(() => createInvalidator({ redis: client, prefix: '' })).toThrow(InvalidOptionError);
    expect(() => createInvalidator({ redis: client, prefix: 'a:b:' })).toThrow(/"prefix"/);
    // Lock keys follow the tier's prefix: a lock prefix of its own is refused, not ignored.
    const tier = redisTier({ client, prefix: 'a:' });
    expect(() => createCache({ tiers: [tier], lock: { prefix: 'tc-lock:' } as unknown as boolean })).toThrow(
      /lock\.prefix/,
    );
    await tier.close();
    // The bus's key space is no cache's prefix, and a channel's replay log is no key of its own
    // cache (issue 19 rerun: prefix "tiercache:" cleared every other cache's replay log).
    expect(() => redisTier({ client, prefix: 'tiercache:' })).toThrow(/replay log/);
    expect(() => createInvalidator({ redis: client, prefix: 'tiercache:' })).toThrow(/"prefix"/);
    expect(() => createInvalidator({ redis: client, prefix: 'a:', channel: 'a:bus' })).toThrow(
      /"channel".*replay log/,
    );
    const own = redisTier({ client, prefix: 'a:' });
    expect(() => createCache({ tiers: [own], bus: { channel: 'a:bus' } })).toThrow(/bus\.channel/);
    await own.close();
    // Valid: one delimiter, last; anything else inside (hash tags, dots, dashes).
    for (const prefix of ['a:', '{shop}:', 'shop.v2:', 'x-y_z:']) {
      await redisTier({ client, prefix }).close();
    }
  });

  it('a user key that spells another prefix stays under its own cache’s prefix', async () => {
    const n = ++run;
    // "a1:" and "a1b1:" share a start, but neither is the start of the other's keys.
    const a = redisOnly(`a${n}:`);
    const ab = redisOnly(`a${n}b${n}:`);
    const b = redisOnly(`b${n}:`);
    await b.set('x', 'b-x');
    await ab.set('x', 'ab-x');
    await a.set(`b${n}:x`, 'a-bx');
    await a.set(`b${n}x`, 'a-bnx');
    expect(await a.get('x')).toBeUndefined();
    expect(await b.get('x')).toBe('b-x');
    expect(await ab.get('x')).toBe('ab-x');
    expect(await a.get(`b${n}:x`)).toBe('a-bx');
    expect(await keysOf(`*${n}*`)).toEqual(
      [`a${n}:b${n}:x`, `a${n}:b${n}x`, `a${n}b${n}:x`, `b${n}:x`].sort(),
    );

    await a.deleteByPattern('*');
    expect(await keysOf(`*${n}*`)).toEqual([`a${n}b${n}:x`, `b${n}:x`].sort());
    await a.set('again', 1);
    await a.clear();
    expect(await keysOf(`*${n}*`)).toEqual([`a${n}b${n}:x`, `b${n}:x`].sort());
    expect(await ab.get('x')).toBe('ab-x');
    expect(await b.get('x')).toBe('b-x');
  });

  it('tag times, namespace versions and locks live under the prefix, and a user key cannot revive a tagged entry', async () => {
    const n = ++run;
    const a = redisOnly(`ta${n}:`);
    const b = redisOnly(`tb${n}:`);
    await b.set('p', 'b-p', { tags: ['t'] });
    await b.invalidateTags(['t']);
    expect(await b.get('p')).toBeUndefined();
    // The keys that revived B's entry when prefixes could nest now belong to A alone.
    await expect(a.set('__tag:t', 0)).rejects.toThrow(/reserved/);
    await a.set(`tb${n}:__tag:t`, 0);
    await a.set('p', 'a-p', { tags: ['t'] });
    expect(await b.get('p')).toBeUndefined();
    expect(await a.get('p')).toBe('a-p');
    await a.namespace('users').set('u1', 'one');
    await a.namespace('users').clear();
    await a.getOrSet('locked', () => 'loaded');
    const keys = await keysOf(`*${n}:*`);
    expect(keys.filter((key) => !key.startsWith(`ta${n}:`) && !key.startsWith(`tb${n}:`))).toEqual([]);
    expect(keys).toContain(`tb${n}:__tag:t`);
    expect(keys).toContain(`ta${n}:__ns:users`);
  });

  it('deleteByPattern leaves the tag times beside the entries: a tagged entry it did not match stays invalidated', async () => {
    const n = ++run;
    const prefix = `dp${n}:`;
    const a = redisOnly(prefix);
    await a.set('_one', 1, { tags: ['t'] });
    await a.set('two', 2, { tags: ['t'] });
    await a.invalidateTags(['t']);
    await a.deleteByPattern('_*');
    expect(await redis.server.cli('EXISTS', `${prefix}__tag:t`)).toBe(1);
    expect(await redis.server.cli('EXISTS', `${prefix}two`)).toBe(1);
    // A fresh instance, which knows no tag time but what Redis holds.
    expect(await redisOnly(prefix).get('two')).toBeUndefined();
  });

  it('caches with different prefixes do not wait on each other’s locks; instances of one prefix share them', async () => {
    const n = ++run;
    const lock = { timeout: PATIENT, wait: '20s', poll: '10ms' } as const;
    const x1 = redisOnly(`lx${n}:`, { lock });
    const x2 = redisOnly(`lx${n}:`, { lock });
    const y = redisOnly(`ly${n}:`, { lock });
    const slow = gate<string>();
    const first = x1.getOrSet('k', () => slow.promise);
    await waitFor(
      async () =>
        (await redis.server.cli('EXISTS', `lx${n}:__lock:k`)) === 1 ? done(true) : notYet('no lock'),
      { description: 'x1 to hold the lock of k' },
    );
    // y loads at once under its own lock; x2 waits for x1's loader.
    let x2Loads = 0;
    const second = x2.getOrSet('k', () => {
      x2Loads++;
      return 'x2';
    });
    expect(await y.getOrSet('k', () => 'y')).toBe('y');
    expect(y.stats().lock).toMatchObject({ acquired: 1, waited: 0 });
    slow.resolve('x1');
    expect(await Promise.all([first, second])).toEqual(['x1', 'x1']);
    expect(x2Loads).toBe(0);
    expect(await keysOf(`l?${n}:__lock:*`)).toEqual([]);
  });

  it('a user allowed only its prefix’s keys can take locks, tag and clear', async () => {
    const n = ++run;
    const prefix = `acl${n}:`;
    await redis.server.cli('ACL', 'SETUSER', `u${n}`, 'on', '>pw', `~${prefix}*`, '&*', '+@all');
    const client = redis.server.client({ username: `u${n}`, password: 'pw' });
    const errors: unknown[] = [];
    const cache = track(
      createCache({
        tiers: [memoryTier(), redisTier({ client, prefix, timeout: PATIENT })],
        bus: false,
        lock: { timeout: PATIENT },
        onError: (error) => errors.push(error),
      }),
    );
    expect(await cache.getOrSet('k', () => 'v', { tags: ['t'] })).toBe('v');
    expect(cache.stats().lock.acquired).toBe(1);
    await cache.invalidateTags(['t']);
    await cache.clear();
    expect(errors).toEqual([]);
  });
});

describe('the invalidator keeps to its prefix', () => {
  it('clears and deletes by pattern only under its prefix, and refuses reserved keys', async () => {
    const n = ++run;
    const a = redisOnly(`ia${n}:`);
    const ab = redisOnly(`ia${n}b:`);
    await a.set('x', 1);
    await ab.set('x', 2);
    await a.set('t', 3, { tags: ['t'] });
    await a.invalidateTags(['t']);
    const invalidator = createInvalidator({ redis: redis.server.client(), prefix: `ia${n}:` });
    try {
      await expect(invalidator.delete('__tag:t')).rejects.toThrow(/__tag:t/);
      await invalidator.deleteByPattern('*');
      expect(await keysOf(`ia${n}*`)).toEqual([`ia${n}:__tag:t`, `ia${n}b:x`]);
      await invalidator.clear();
      expect(await keysOf(`ia${n}*`)).toEqual([`ia${n}b:x`]);
    } finally {
      await invalidator.close();
    }
  });
});
