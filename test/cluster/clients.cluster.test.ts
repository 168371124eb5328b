import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError, type TierCache } from '../../src/index.js';
import { clusterBackend, sharedBackend } from '../helpers/backends.js';
import { ioredis6, iovalkey, nodeRedis5, nodeRedis6 } from '../helpers/client-libraries.js';
import { busSuite } from '../integration/suites/bus-suite.js';
import { coreSuite } from '../integration/suites/core-suite.js';
import { redisTierConformance } from '../integration/suites/tier-conformance.js';
import { subscribed } from '../helpers/bus-waits.js';
import { storedEntry } from '../helpers/stored.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

// The Cluster clients of every other supported package, on one shared cluster (ioredis 5 runs
// these suites in core, bus and conformance.cluster.test.ts).
const cluster = clusterBackend();
const shared = sharedBackend(cluster);
afterAll(() => shared.stopAll());

// node-redis's Cluster goes through its own adapter (node-redis-cluster.ts): per-slot scripts
// and pipelines per master, SCAN on every master's client, and sharded pub/sub on connections
// duplicated from a master's client.
describe('node-redis Cluster', () => {
  describe('core', () => coreSuite(shared.as(nodeRedis5)));
  // One conformance variant: each clears a cluster's 16,384 generation keys many times.
  describe('conformance', () => redisTierConformance(shared.as(nodeRedis5), ['json']));
  describe('bus', () => busSuite(shared.as(nodeRedis5)));
});

describe('node-redis 6 Cluster', () => {
  describe('bus', () => busSuite(shared.as(nodeRedis6)));
});

// The ioredis-family Clusters are used as they are; what is theirs alone is the sharded bus's
// connection per master, a duplicate of one of the Cluster's own nodes. (The conformance suite
// on an iovalkey Cluster is how its auto-pipelining of scripts was found: docs/clients.md.)
describe('iovalkey Cluster', () => {
  describe('bus', () => busSuite(shared.as(iovalkey)));
});

describe('ioredis 6 Cluster', () => {
  describe('bus', () => busSuite(shared.as(ioredis6)));
});

/** Lets timers and I/O run between calls a loop makes (an L1 hit resolves without either). */
const yieldToTimers = () => new Promise<void>((resolve) => setImmediate(resolve));

// Last in the file: these fail masters over (the killed one stays down).
describe('node-redis Cluster: replicas and failovers', () => {
  const backend = shared.as(nodeRedis5);
  const caches: TierCache[] = [];
  beforeAll(() => backend.start(), 60_000);
  afterAll(() => Promise.all(caches.map((cache) => cache.close())));

  function instance(prefix: string, errors: CacheError[], options: { replicas?: boolean } = {}): TierCache {
    const cache = createCache({
      tiers: [
        memoryTier({ ttl: '1h' }),
        redisTier({
          client: backend.client(),
          prefix,
          timeout: '250ms',
          ...(options.replicas === true ? { replicas: { wait: 1, timeout: '1s' } } : {}),
        }),
      ],
      onError: (error) => errors.push(error),
    });
    caches.push(cache);
    return cache;
  }

  /** Whether the replica of the master that serves `fullKey` holds an entry there (read by the CLI). */
  async function replicaHolds(fullKey: string): Promise<boolean> {
    const [replica] = await cluster.cluster().replicasOf(await cluster.cluster().masterFor(fullKey));
    const client = replica!.client();
    try {
      await client.call('READONLY');
      return storedEntry(await client.get(fullKey));
    } finally {
      client.disconnect();
    }
  }

  it("replicas: writes and deletes across slots resolve once each master's replica has them", async () => {
    const errors: CacheError[] = [];
    const cache = instance('nrw:', errors, { replicas: true });
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    // The single-key path, and the per-master pipelines of setMany, each followed by its WAIT.
    await cache.set('one', 1);
    expect(await replicaHolds('nrw:one')).toBe(true);
    await cache.setMany(keys.map((key) => ({ key, value: key })));
    for (const key of keys) expect(await replicaHolds(`nrw:${key}`)).toBe(true);
    await cache.deleteMany(keys);
    for (const key of keys) expect(await replicaHolds(`nrw:${key}`)).toBe(false);
    expect(errors).toEqual([]);
  });

  it('SIGKILL of a master under load: no call fails, the sharded bus resubscribes on the promoted replica, and an invalidation after it reaches every instance', async () => {
    const errors: CacheError[] = [];
    const prefix = 'nrkill:';
    // No replicas: once its replica is promoted the shard has none, and every write to it would
    // count as failed (the breaker would skip the tier, as documented for `replicas`).
    const all = [0, 1, 2].map(() => instance(prefix, errors));
    await subscribed(...all);
    const reconnected = all.map(
      (cache) => new Promise<void>((resolve) => cache.on('bus:reconnect', () => resolve())),
    );
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    const failures: unknown[] = [];
    let running = true;
    const load = all.map(async (cache, worker) => {
      for (let n = 0; running; n++) {
        await yieldToTimers();
        const key = keys[(n * 7 + worker) % keys.length]!;
        try {
          if (n % 3 === 0) await cache.set(key, n);
          else await cache.getOrSet(key, () => n);
        } catch (error) {
          failures.push(error);
        }
      }
    });
    try {
      const victim = await cluster.cluster().masterFor(`${prefix}${keys[0]}`);
      await cluster.cluster().failover(victim);
      await waitFor(
        async () => {
          const buses = all.map((c) => c.stats().bus);
          return buses.every((bus) => bus.disconnects > 0 && bus.subscribed)
            ? done(undefined)
            : notYet(JSON.stringify(buses.map((b) => ({ sub: b.subscribed, disc: b.disconnects }))));
        },
        { description: 'every bus to subscribe again', timeoutMs: 30_000 },
      );
    } finally {
      running = false;
      await Promise.all(load);
    }
    expect(failures).toEqual([]);
    await Promise.all(reconnected);
    await worksAfterFailover(all);
  }, 90_000);

  it('SIGSTOP of a master: calls end in bounded time, the sharded bus resubscribes on the promoted replica, and an invalidation after it reaches every instance', async () => {
    const errors: CacheError[] = [];
    const all = [0, 1, 2].map(() => instance('nrstop:', errors));
    await subscribed(...all);
    // A master that still has a replica (the test above killed one).
    const handle = cluster.cluster();
    const masters = await handle.masters();
    const withReplica = await Promise.all(masters.map(async (m) => (await handle.replicasOf(m)).length > 0));
    const victim = masters[withReplica.indexOf(true)]!;
    const failures: unknown[] = [];
    let slowest = 0;
    let running = true;
    const load = all.map(async (cache, worker) => {
      for (let n = 0; running; n++) {
        await yieldToTimers();
        const started = performance.now();
        try {
          await cache.getOrSet(`k${(n * 7 + worker) % 30}`, () => n);
        } catch (error) {
          failures.push(error);
        }
        slowest = Math.max(slowest, performance.now() - started);
      }
    });
    try {
      await handle.failover(victim, { how: 'pause' });
      // Nothing closes on a hung master: each bus notices by its heartbeat, finds the promoted
      // replica (the adapter rediscovers the slot map) and subscribes there.
      await waitFor(
        async () => {
          const buses = all.map((c) => c.stats().bus);
          return buses.every((bus) => bus.disconnects > 0 && bus.subscribed)
            ? done(undefined)
            : notYet(JSON.stringify(buses.map((b) => ({ sub: b.subscribed, disc: b.disconnects }))));
        },
        { description: 'every bus to notice the hung master and subscribe again', timeoutMs: 30_000 },
      );
      running = false;
      await Promise.all(load);
      expect(failures).toEqual([]);
      // The tier's timeouts (250 ms) and breaker bound a call, whatever the hung master holds.
      expect(slowest).toBeLessThan(2_500);
      await worksAfterFailover(all);
    } finally {
      running = false;
      await Promise.all(load);
      await victim.resume();
    }
  }, 90_000);
});

/**
 * After a failover: a write through the promoted master reaches every instance, and the
 * invalidation of one published after it is heard by every other instance's bus.
 */
async function worksAfterFailover(all: readonly TierCache[]): Promise<void> {
  const [a, ...others] = all;
  await waitFor(
    async () => {
      await a!.set('k', 1);
      for (const cache of others) if ((await cache.get('k')) !== 1) return notYet('not yet');
      return done(undefined);
    },
    { description: 'writes through the promoted replica', timeoutMs: 20_000 },
  );
  const heard = others.map((c) => c.stats().bus.messagesIn);
  await a!.set('k', 2);
  await waitFor(
    async () =>
      others.every((c, i) => c.stats().bus.messagesIn > heard[i]!) ? done(undefined) : notYet('not heard'),
    { description: 'the others to hear the write published after the failover', timeoutMs: 10_000 },
  );
  for (const cache of others) expect(await cache.get('k')).toBe(2);
}
