import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSentinel } from 'redis';
import {
  createCache,
  hasErrorCode,
  memoryTier,
  redisTier,
  type CacheError,
  type TierCache,
} from '../../src/index.js';
import { sharedSentinel } from '../helpers/backends.js';
import { storedEntry } from '../helpers/stored.js';
import { nodeRedis5, nodeRedis6, type ClientLibrary, type TestClient } from '../helpers/client-libraries.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { expectOneLoaderCall } from '../helpers/single-flight.js';
import { done, notYet, until, waitFor } from '../helpers/wait-for.js';
import { busSuite } from '../integration/suites/bus-suite.js';
import { coreSuite } from '../integration/suites/core-suite.js';
import { fillLeaseSuite } from '../integration/suites/fill-lease-suite.js';

// node-redis's Sentinel (createSentinel) goes through its own adapter (node-redis-sentinel.ts):
// commands of a tick on one master client, the bus's subscriber a connection of the tier's own
// that follows failovers. One Sentinel setup for the whole file; the failover comes last, as it
// leaves the setup without a replica.
const shared = sharedSentinel();
afterAll(() => shared.stopAll());

describe('node-redis Sentinel', () => {
  describe('core', () => coreSuite(shared.as(nodeRedis5)));
  describe('bus', () => busSuite(shared.as(nodeRedis5)));
  // Leases, deleteByPattern, namespaces, tags and the invalidator: the Lua scripts and SCAN.
  describe('fill leases', () => fillLeaseSuite(shared.as(nodeRedis5)));
});

describe('node-redis 6 Sentinel', () => {
  describe('bus', () => busSuite(shared.as(nodeRedis6)));
});

/**
 * Kills every cache's subscriber connection on the master, by id (`CLIENT KILL TYPE pubsub` misses RESP3
 * ones, redis 6's default, which Redis does not count as pub/sub clients), through a connection
 * that is already open.
 */
async function killSubscribers(): Promise<number> {
  const admin = shared.admin();
  const list = String(await admin.call('CLIENT', 'LIST'));
  const ids = [...list.matchAll(/^id=(\d+) .*? name=(\S*) .*? sub=(\d+) psub=(\d+) ssub=(\d+)/gm)]
    // Not the sentinels' own (their hello channel): kept off by maxclients, they could fail over.
    .filter(
      ([, , name, sub, psub, ssub]) =>
        !name!.startsWith('sentinel-') && Number(sub) + Number(psub) + Number(ssub) > 0,
    )
    .map(([, id]) => id!);
  for (const id of ids) await admin.call('CLIENT', 'KILL', 'ID', id);
  return ids.length;
}

describe.each([nodeRedis5, nodeRedis6])('a $name Sentinel', (library: ClientLibrary) => {
  const made: TestClient[] = [];
  const caches: TierCache[] = [];
  beforeAll(() => shared.start(), 60_000);
  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    await Promise.all(made.map((client) => client.close()));
  });

  const client = () => {
    const handle = shared.handle();
    const made1 = library.sentinel!(handle.sentinels, handle.masterName);
    made.push(made1);
    return made1.client;
  };

  it('refuses one that was never connected, saying to connect it first', () => {
    const handle = shared.handle();
    const sentinel = createSentinel({ name: handle.masterName, sentinelRootNodes: [...handle.sentinels] });
    let thrown: unknown;
    try {
      redisTier({ client: sentinel });
    } catch (error) {
      thrown = error;
    }
    expect(hasErrorCode(thrown, 'E_INVALID_OPTION')).toBe(true);
    expect((thrown as Error).message).toContain('await sentinel.connect() before giving it to the tier');
  });

  it('waits for a write before publishing its invalidation (its commands may be reordered)', async () => {
    const tier = redisTier({ client: client(), prefix: `order${library.name.length}:` });
    expect(tier.orderedConnection).toBeUndefined();
    await tier.close();
  });

  it('two instances × 50 callers of a missing key make one loader call', async () => {
    const [a, b] = [1, 2].map(() => {
      const cache = createCache({
        tiers: [
          memoryTier(),
          redisTier({ client: client(), prefix: `lock${library.name.length}:`, timeout: '3s' }),
        ],
        lock: { timeout: '3s', poll: '10ms' },
      });
      caches.push(cache);
      return cache;
    });
    await expectOneLoaderCall([a!, b!]);
  });
  it('replicas: writes and deletes resolve once the replica has them (WAIT on the connection that wrote)', async () => {
    const errors: CacheError[] = [];
    const prefix = `rw${library.name.length}:`;
    const cache = createCache({
      tiers: [redisTier({ client: client(), prefix, timeout: '3s', replicas: { wait: 1, timeout: '1s' } })],
      bus: false,
      onError: (error) => errors.push(error),
    });
    caches.push(cache);
    const replica = shared.handle().replica;
    await cache.set('one', 1);
    expect(await replica.cli('EXISTS', `${prefix}one`)).toBe(1);
    await cache.setMany(['a', 'b', 'c'].map((key) => ({ key, value: key })));
    expect(await replica.cli('EXISTS', `${prefix}a`, `${prefix}b`, `${prefix}c`)).toBe(3);
    await cache.deleteMany(['a', 'b', 'c']);
    // A delete leaves a tombstone (fill leases), never the entry.
    for (const key of ['a', 'b', 'c'])
      expect(storedEntry((await replica.cli('GET', `${prefix}${key}`)) as string | null)).toBe(false);
    expect(errors).toEqual([]);
  });

  it('the bus replays from its log what an instance missed while its subscriber was cut off', async () => {
    const prefix = `rp${library.name.length}:`;
    const make = (options: { bus?: { disconnectedTtl: number } } = {}) => {
      const cache = createCache({
        tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: client(), prefix, timeout: '3s' })],
        ...options,
      });
      caches.push(cache);
      return cache;
    };
    const a = make();
    const b = make({ bus: { disconnectedTtl: 50 } });
    await subscribed(a, b);
    await heard([b], () => a.setMany(Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: 'v0' }))));
    await until('b to hold every key', async () => {
      for (let i = 0; i < 100; i++) await b.get(`k${i}`);
      return b.stats().memory!.entries === 100;
    });
    const events: string[] = [];
    b.on('bus:reconnect', (e) => events.push(e.replayed ? 'replayed' : 'dropped'));
    // Every subscriber connection on the master, b's among them, cut off, and kept off (the
    // master takes no new connection) while a rewrites 10 keys.
    const admin = shared.admin();
    const [, maxclients] = (await admin.call('CONFIG', 'GET', 'maxclients')) as [string, string];
    await admin.call('CONFIG', 'SET', 'maxclients', '1');
    try {
      expect(await killSubscribers()).toBeGreaterThanOrEqual(2);
      await until('b to notice', () => b.stats().bus.subscribed === false);
      for (let n = 1; n <= 20; n++) await a.set(`k${n % 10}`, `v${n}`);
    } finally {
      await admin.call('CONFIG', 'SET', 'maxclients', maxclients);
    }
    await until('b to resubscribe', () => events.length > 0);
    expect(events).toEqual(['replayed']);
    expect(b.stats().bus.replayed).toBeGreaterThan(0);
    await a.setMany(Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: 'final' })));
    await until('b to read the rewritten keys', async () => {
      const values = await b.getMany(Array.from({ length: 10 }, (_, i) => `k${i}`));
      return values.every((value) => value === 'final');
    });
    // The other 90 stayed in b's L1: read without asking Redis.
    const redisHits = b.stats().tiers[1]!.hits;
    for (let i = 10; i < 100; i++) expect(await b.get(`k${i}`)).toBe('v0');
    expect(b.stats().tiers[1]!.hits).toBe(redisHits);
  });

  it('a master that hangs on writes (CLIENT PAUSE WRITE): calls time out, the breaker opens and skips it, and closes once it answers', async () => {
    const states: string[] = [];
    const cache = createCache({
      tiers: [
        memoryTier(),
        redisTier({
          client: client(),
          prefix: `hung${library.name.length}:`,
          timeout: 50,
          breaker: { failures: 3, cooldown: 200 },
        }),
      ],
      // No bus: its PUBLISHes would wait out the pause too, and the calls with them.
      bus: false,
      onError: () => {},
    });
    caches.push(cache);
    cache.on('breaker', ({ state }) => states.push(state));
    await cache.set('warm', 'w');
    // Writes only: the sentinels' PINGs are still answered, so this is a hang, never a failover
    // (a pause of every command would cost the sentinels their link within down-after / 2).
    await shared.handle().master.cli('CLIENT', 'PAUSE', '600', 'WRITE');
    for (let i = 0; i < 4; i++) await cache.set(`k${i}`, i);
    expect(states).toEqual(['open']);
    expect(cache.stats().tiers[1]!.timeouts).toBeGreaterThanOrEqual(3);
    expect(cache.stats().tiers[1]!.breaker!.skipped).toBeGreaterThan(0);
    await until(
      'the breaker to close',
      async () => {
        await cache.getOrSet(`probe${Math.random()}`, () => 0);
        return cache.stats().tiers[1]!.breaker!.state === 'closed';
      },
      15_000,
    );
  });
});

describe('node-redis Sentinel failover', () => {
  beforeAll(() => shared.start(), 60_000);

  // redis 5 and 6 through the same failover: a setup has one replica to promote.
  it('writes, reads and the bus keep working after a failover, on redis 5 and 6', async () => {
    const handle = shared.handle();
    const made: TestClient[] = [];
    const errors: CacheError[] = [];
    const pair = (library: ClientLibrary) =>
      [0, 1].map(() => {
        const client = library.sentinel!(handle.sentinels, handle.masterName);
        made.push(client);
        return createCache({
          tiers: [
            memoryTier({ ttl: '1h' }),
            redisTier({ client: client.client, prefix: `fo${library.name.length}:`, timeout: '1s' }),
          ],
          onError: (error) => errors.push(error),
        });
      }) as [TierCache, TierCache];
    const pairs = [pair(nodeRedis5), pair(nodeRedis6)];
    try {
      await subscribed(...pairs.flat());
      for (const [a, b] of pairs) {
        await a.set('k', 1);
        expect(await b.get('k')).toBe(1);
      }
      const reconnected = pairs.map(
        ([, b]) => new Promise<void>((resolve) => b.on('bus:reconnect', () => resolve())),
      );
      // Callers go on through the failover: none may get an error (the cache degrades instead).
      const failures: unknown[] = [];
      let running = true;
      const load = pairs.flat().map(async (cache, worker) => {
        for (let n = 0; running; n++) {
          await new Promise<void>((resolve) => setImmediate(resolve)); // an L1 hit yields to nothing
          try {
            if (n % 3 === 0) await cache.set(`load${n % 20}`, n);
            else await cache.getOrSet(`load${(n + worker) % 20}`, () => n);
          } catch (error) {
            failures.push(error);
          }
        }
      });
      try {
        await handle.failover();
      } finally {
        running = false;
        await Promise.all(load);
      }
      expect(failures).toEqual([]);
      for (const [a, b] of pairs) {
        await waitFor(
          async () => {
            await a.set('after', 2);
            return (await b.get('after')) === 2 ? done(true) : notYet('the new master does not answer yet');
          },
          { description: 'writes and reads through the promoted master', timeoutMs: 20_000 },
        );
      }
      // Each bus resubscribed on the new master (and dropped its L1: messages may have been lost).
      await Promise.all(reconnected);
      for (const [a, b] of pairs) {
        await waitFor(
          async () => {
            await a.set('k', 2);
            return (await b.get('k')) === 2 ? done(true) : notYet('b does not see the write yet');
          },
          { description: 'the bus to carry writes after the failover', timeoutMs: 20_000 },
        );
        const heard = b.stats().bus.messagesIn;
        await a.set('k', 3);
        await waitFor(async () => (b.stats().bus.messagesIn > heard ? done(true) : notYet('')), {
          description: 'b to hear the write',
        });
        expect(await b.get('k')).toBe(3);
      }
      // What failed meanwhile was reported as tier or bus errors, never thrown to callers.
      expect(errors.every((e) => e.code === 'E_TIER' || e.code === 'E_BUS')).toBe(true);
    } finally {
      await Promise.all(pairs.flat().map((cache) => cache.close()));
      await Promise.all(made.map((client) => client.close()));
    }
  }, 60_000);
});
