import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { clusterFixture } from '../helpers/cluster-fixture.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

/**
 * A master dies under steady load. The cache must keep answering (from the origin while the
 * slot has no master, then from the promoted replica), no request may take longer than the
 * failover itself, and once the cluster is whole again nothing stale is served.
 */
describe('Redis Cluster failover under load', () => {
  const fixture = clusterFixture();
  const { caches } = fixture;

  it('keeps serving through a master kill and serves no stale value after it', async () => {
    const prefix = 'fo:';
    const keys = Array.from({ length: 60 }, (_, i) => `item:${i}`);
    // The origin: the latest version of every key. Writers bump it, then write the cache.
    const origin = new Map(keys.map((key) => [key, 0]));
    const instance = (): TierCache => {
      const cache = createCache({
        tiers: [redisTier({ client: fixture.cluster.client(), prefix, timeout: '250ms' })],
      });
      caches.push(cache);
      return cache;
    };
    const writer = instance();
    const readers = [instance(), instance(), instance()];
    await writer.setMany(keys.map((key) => ({ key, value: { key, version: 0 } })));

    const load = startLoad(readers, writer, keys, origin);

    // Let the load settle, then kill the master that serves one of the keys.
    await load.settle();
    const victim = await fixture.cluster.masterFor(`${prefix}${keys[0]}`);
    const killedAt = performance.now();
    await fixture.cluster.failover(victim);
    const failoverMs = performance.now() - killedAt;
    expect(failoverMs).toBeGreaterThan(1_000); // the bound below is meaningful only if so
    await load.settle();
    const { failures, slowest } = await load.stop();

    expect(failures).toEqual([]);
    // While the slot has no master, the cluster client would hold commands for the whole
    // failover; the tier's timeouts bound a request to a timed-out read and write (2 × 250 ms)
    // plus the loader, and a write to its bus publishes (the one in flight and its own, 250 ms
    // each), with room for a loaded 2-core machine.
    expect(slowest).toBeLessThan(2_500);

    await breakersClosed([writer, ...readers]);

    // After the failover: one more write of every key, then every reader sees exactly it.
    for (const key of keys) {
      const version = origin.get(key)! + 1;
      origin.set(key, version);
      await writer.set(key, { key, version });
    }
    for (const reader of readers) {
      const values = await reader.getMany<{ key: string; version: number }>(keys);
      expect(values.map((v) => v?.version)).toEqual(keys.map((key) => origin.get(key)));
    }
  }, 60_000);

  // Runs after the test above, on the same cluster: it kills a master that still has a replica.
  it('with L1 and the bus: keeps serving through a master kill, drops L1 on resubscribe, converges with nothing stale', async () => {
    const prefix = 'fobus:';
    const keys = Array.from({ length: 60 }, (_, i) => `item:${i}`);
    const origin = new Map(keys.map((key) => [key, 0]));
    const instance = (): TierCache => {
      const cache = createCache({
        tiers: [
          memoryTier({ ttl: '1h' }),
          redisTier({ client: fixture.cluster.client(), prefix, timeout: '250ms' }),
        ],
      });
      caches.push(cache);
      return cache;
    };
    const writer = instance();
    const readers = [instance(), instance(), instance()];
    const all = [writer, ...readers];
    await waitFor(async () => (all.every((c) => c.stats().bus.subscribed) ? done(undefined) : notYet('')), {
      description: 'every bus to subscribe',
    });
    const resubscribed = readers.map(
      (reader) => new Promise<void>((resolve) => reader.on('bus:reconnect', () => resolve())),
    );
    await writer.setMany(keys.map((key) => ({ key, value: { key, version: 0 } })));

    const load = startLoad(readers, writer, keys, origin);

    await load.settle();
    const l1HitsBefore = readers.reduce((sum, r) => sum + r.stats().tiers[0]!.hits, 0);
    const masters = await fixture.cluster.masters();
    const withReplica = await Promise.all(
      masters.map(async (m) => (await fixture.cluster.replicasOf(m)).length > 0),
    );
    const victim = masters[withReplica.indexOf(true)]!;
    await fixture.cluster.failover(victim);
    // Every shard channel's subscription is rebuilt (on the promoted replica for the dead
    // master's channels), and each reader dropped its L1 then: messages may have been lost.
    await Promise.all(resubscribed);
    await load.settle();
    const { failures, slowest } = await load.stop();

    expect(failures).toEqual([]);
    // A write waits at most for a timed-out Redis write (250 ms), the publish already in flight
    // and its own (250 ms each, bus.publishTimeout); the rest is room for a loaded 2-core
    // machine. Reads are served by L1 or a timed-out read plus the loader.
    expect(slowest).toBeLessThan(2_500);
    // L1 served reads throughout: the readers were not just reading through to Redis.
    expect(readers.reduce((sum, r) => sum + r.stats().tiers[0]!.hits, 0)).toBeGreaterThan(l1HitsBefore);
    for (const reader of readers) expect(reader.stats().bus.disconnects).toBeGreaterThanOrEqual(1);
    await breakersClosed(all);

    for (const key of keys) {
      const version = origin.get(key)! + 1;
      origin.set(key, version);
      await writer.set(key, { key, version });
    }
    const latest = keys.map((key) => origin.get(key));
    for (const reader of readers) {
      await waitFor(
        async () => {
          const values = await reader.getMany<{ key: string; version: number }>(keys);
          const versions = values.map((v) => v?.version);
          return versions.every((v, i) => v === latest[i]) ? done(undefined) : notYet(versions.join());
        },
        { description: 'every reader to see the last writes', timeoutMs: 5_000, intervalMs: 20 },
      );
    }
    // Converged through the bus, not through expiry: L1 entries live for an hour.
    for (const reader of readers) {
      const values = await reader.getMany<{ key: string; version: number }>(keys);
      expect(values.map((v) => v?.version)).toEqual(latest);
    }
  }, 60_000);
});

interface Version {
  key: string;
  version: number;
}

/**
 * Steady load: each reader loops getOrSet over the keys (loading the origin's latest version),
 * the writer bumps one key's version at the origin and then writes it through the cache.
 * Records failed requests and the slowest one.
 */
function startLoad(
  readers: readonly TierCache[],
  writer: TierCache,
  keys: readonly string[],
  origin: Map<string, number>,
) {
  let running = true;
  let requests = 0;
  let slowest = 0;
  const failures: unknown[] = [];
  const timed = async (work: () => Promise<unknown>): Promise<void> => {
    const started = performance.now();
    try {
      await work();
    } catch (error) {
      failures.push(error);
    }
    slowest = Math.max(slowest, performance.now() - started);
    requests++;
    // Requests arrive from I/O. An L1 hit, or a request while a breaker is open (skip Redis,
    // synchronous loader), settles in microtasks only: a loop of those would starve the timers.
    await new Promise((resolve) => setImmediate(resolve));
  };
  const readLoops = readers.map(async (reader, r) => {
    for (let i = r; running; i++) {
      const key = keys[i % keys.length]!;
      await timed(() => reader.getOrSet<Version>(key, () => ({ key, version: origin.get(key)! })));
    }
  });
  const writeLoop = (async () => {
    for (let i = 0; running; i++) {
      const key = keys[(i * 7) % keys.length]!;
      const version = origin.get(key)! + 1;
      origin.set(key, version);
      await timed(() => writer.set(key, { key, version }));
    }
  })();
  return {
    /** Resolves once 500 more requests have completed. */
    settle: () => {
      const from = requests;
      return waitUntil(() => requests > from + 500);
    },
    stop: async () => {
      running = false;
      await Promise.all([...readLoops, writeLoop]);
      return { failures, slowest };
    },
  };
}

/**
 * The cluster is whole again for a cache once its Redis tier's breaker has closed (a breaker
 * that opened during the failover probes on the next call after its cool-down).
 */
async function breakersClosed(caches: readonly TierCache[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (const cache of caches) {
    const redis = () => cache.stats().tiers.find((tier) => tier.breaker !== undefined)!;
    while (redis().breaker!.state !== 'closed') {
      if (Date.now() > deadline) throw new Error('a breaker stayed open after the failover');
      await cache.get('probe');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function waitUntil(condition: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
