/**
 * When a write's invalidation goes out. It may never reach another instance before the write is
 * in Redis (that instance would re-read the old value and keep it), so it follows the write; but
 * on one Redis, where the bus publishes on the connection the write went out on, Redis runs the
 * two in the order sent, and the message goes with the write instead of a round trip after it.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

afterAll(stopAllRedis);

/** Counts the replay-log appends (each published message is one) sent on `client`. */
function countPublishes(client: Redis): { count: number } {
  const seen = { count: 0 };
  const evalsha = client.evalsha.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as unknown as { evalsha: typeof evalsha }).evalsha = (...args: unknown[]) => {
    if (String(args[2]).endsWith(':log')) seen.count++;
    return evalsha(...args);
  };
  return seen;
}

/** Waits until `cache` has heard more messages than `before`. */
async function heardSince(cache: TierCache, before: number): Promise<void> {
  await waitFor(async () => (cache.stats().bus.messagesIn > before ? done(undefined) : notYet('not heard')), {
    description: 'the message to arrive',
    intervalMs: 2,
  });
}

/** No timeouts: a paused server holds the write until it resumes, instead of failing it. */
const patient = { timeout: 'forever', breaker: false } as const;

let prefixes = 0;
const caches: TierCache[] = [];
afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
});

describe('a write on one Redis', () => {
  let server: RedisProcess;
  beforeAll(async () => {
    server = await startRedis();
  });

  function pair(): { a: TierCache; b: TierCache; published: { count: number } } {
    const prefix = `one${++prefixes}:`;
    const client = server.client();
    const published = countPublishes(client);
    const a = createCache({
      tiers: [memoryTier({ ttl: '1h' }), redisTier({ client, prefix, ...patient })],
    });
    const b = createCache({
      tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: server.client(), prefix, ...patient })],
    });
    caches.push(a, b);
    return { a, b, published };
  }

  for (const [name, change] of [
    ['set()', (cache: TierCache) => cache.set('k', 2)],
    ['delete()', (cache: TierCache) => cache.delete('k')],
  ] as const) {
    it(`${name} sends its invalidation with the write, and it still arrives after it`, async () => {
      const { a, b, published } = pair();
      await subscribed(a, b);
      await heard([b], () => a.set('k', 1));
      expect(await b.get('k')).toBe(1); // from Redis into b's L1
      const before = published.count;
      const heardBefore = b.stats().bus.messagesIn;
      await server.pause();
      let changed: Promise<unknown>;
      try {
        changed = change(a);
        // Redis answers nothing while paused: the message went out without waiting for the write.
        await waitFor(async () => (published.count > before ? done(undefined) : notYet('not published')), {
          description: 'the invalidation to be sent',
          timeoutMs: 2_000,
          intervalMs: 2,
        });
      } finally {
        await server.resume();
      }
      await changed;
      await heardSince(b, heardBefore);
      // Redis ran the write before the message, so b's re-read finds the new state.
      expect(await b.get('k')).toBe(name === 'set()' ? 2 : undefined);
    });
  }
});

describe('which tiers publish right behind their writes', () => {
  it('a single-server client does; with replicas (WAIT) it does not', async () => {
    const server = await startRedis();
    const client = server.client();
    expect(redisTier({ client }).orderedConnection).toBe(client);
    expect(redisTier({ client, replicas: { wait: 1, timeout: '10ms' } }).orderedConnection).toBeUndefined();
  });
});

describe('a write to two Redis tiers', () => {
  let regional: RedisProcess;
  let global: RedisProcess;
  beforeAll(async () => {
    [regional, global] = await Promise.all([startRedis(), startRedis()]);
  });

  it('publishes only once every tier has the write: the bus connection orders only its own', async () => {
    const prefix = `two${++prefixes}:`;
    const make = (): { cache: TierCache; published: { count: number } } => {
      const client = regional.client();
      const published = countPublishes(client);
      const cache = createCache({
        tiers: [
          memoryTier({ ttl: '1h' }),
          redisTier({ name: 'regional', client, prefix, ...patient }),
          redisTier({ name: 'global', client: global.client(), prefix, ...patient }),
        ],
      });
      caches.push(cache);
      return { cache, published };
    };
    const { cache: a, published } = make();
    const { cache: b } = make();
    await subscribed(a, b);
    await heard([b], () => a.set('k', 1));
    expect(await b.get('k')).toBe(1);
    const before = published.count;
    const heardBefore = b.stats().bus.messagesIn;
    const old = await regional.cli('GET', `${prefix}k`);
    await global.pause();
    let written: Promise<void>;
    try {
      written = a.set('k', 2);
      // The regional tier (the bus's connection) has the write; the global one cannot have it.
      await waitFor(
        async () =>
          String(await regional.cli('GET', `${prefix}k`)) !== String(old)
            ? done(undefined)
            : notYet('not written'),
        { description: 'the regional write', intervalMs: 2 },
      );
      expect(published.count).toBe(before);
    } finally {
      await global.resume();
    }
    await written;
    await heardSince(b, heardBefore);
    expect(published.count).toBe(before + 1);
    expect(await b.get('k')).toBe(2);
  });
});
