/**
 * The least a cache needs from Redis, as an ACL: the rule docs/consistency.md#acls gives,
 * checked against a real server. Every feature runs under it without one refused command.
 */
import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError, type TierCache } from '../../src/index.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { until } from '../helpers/wait-for.js';

const redis = redisFixture();

/** The ACL rule of docs/consistency.md for a cache with prefix `shop:` and the default channel. */
const RULE = [
  'on',
  '>secret',
  'resetkeys',
  '~shop:*',
  '~tiercache:bus:shop:*',
  'resetchannels',
  '&tiercache:bus:shop:*',
  '-@all',
  '+@connection',
  '+info',
  '+get',
  '+mget',
  '+set',
  '+incr',
  '+getrange',
  '+strlen',
  '+exists',
  '+pexpire',
  '+del',
  '+unlink',
  '+scan',
  '+eval',
  '+evalsha',
  '+publish',
  '+subscribe',
  '+unsubscribe',
  '+xadd',
  '+xrange',
  '+xrevrange',
  '+xinfo',
];

describe('a cache under the documented least-privilege ACL', () => {
  it('runs reads, loads, locks, tags, namespaces, patterns, clear and the bus with its replay, and nothing is refused', async () => {
    await redis.server.cli('ACL', 'SETUSER', 'tc', ...RULE);
    const errors: CacheError[] = [];
    const instance = (): TierCache =>
      redis.track(
        createCache({
          tiers: [
            memoryTier({ ttl: '1h' }),
            redisTier({
              client: redis.server.client({ username: 'tc', password: 'secret' }),
              prefix: 'shop:',
              timeout: '5s',
            }),
          ],
          lock: true,
          failSafe: true,
          bus: {},
          onError: (error) => errors.push(error),
        }),
      );
    const [a, b] = [instance(), instance()];
    await subscribed(a, b);
    expect(await a.getOrSet('p:1', () => 'one', { tags: ['catalog'] })).toBe('one');
    expect(await b.getOrSet('p:1', () => 'never')).toBe('one');
    await heard([b], () => a.set('p:1', 'two', { tags: ['catalog'] }));
    expect(await b.get('p:1')).toBe('two');
    await heard([b], () => a.invalidateTags(['catalog']));
    expect(await b.get('p:1')).toBeUndefined();
    const products = a.namespace('products');
    await products.set('x', 1);
    await heard([b], () => products.clear());
    expect(await b.namespace('products').get('x')).toBeUndefined();
    await a.setMany([
      { key: 'q:1', value: 1 },
      { key: 'q:2', value: 2 },
    ]);
    await heard([b], () => a.deleteByPattern('q:*'));
    expect(await b.get('q:1')).toBeUndefined();
    // An outage is replayed from the log (XRANGE), not paid for with L1.
    await b.set('kept', 'k');
    const reconnects: boolean[] = [];
    b.on('bus:reconnect', (e) => reconnects.push(e.replayed));
    await redis.server.cli('CLIENT', 'KILL', 'USER', 'tc', 'TYPE', 'pubsub');
    await until('b to be back', () => reconnects.length > 0);
    expect(reconnects).toEqual([true]);
    await a.clear();
    // All but the fill generation, which refuses fills begun before the clear and then expires.
    expect(await redis.server.cli('KEYS', 'shop:*')).toEqual(['shop:__gen:']);
    expect(errors.map((e) => e.message)).toEqual([]);
    expect(a.stats().bus.invalid + b.stats().bus.invalid).toBe(0);
  });
});
