import type { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError, type TierCache } from '../../src/index.js';
import { ShardedPubSubTransport } from '../../src/sync/sharded-transport.js';
import { subscribed } from '../helpers/bus-waits.js';
import { clusterFixture } from '../helpers/cluster-fixture.js';
import { holdsEntry } from '../helpers/stored.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

/**
 * Masters of a 3 + 3 cluster fail while caches use it: SIGSTOP (a hung master whose connections
 * stay open and unanswered) and SIGKILL (connections close at once). Each test leaves the
 * cluster whole again (the stopped master resumed, the killed one restarted as a replica).
 */
describe('Cluster failovers', () => {
  const fixture = clusterFixture();
  const { caches } = fixture;

  /** An instance with L1 (1 h: only the bus can make it drop a copy) and its own client and shard transport. */
  function instance(prefix: string): {
    cache: TierCache;
    client: Cluster;
    transport: ShardedPubSubTransport;
  } {
    const client = fixture.cluster.client();
    const transport = new ShardedPubSubTransport(client, `tiercache:bus:${prefix}`, 16);
    const cache = createCache({
      tiers: [memoryTier({ ttl: '1h' }), redisTier({ client, prefix })],
      bus: { transport },
    });
    caches.push(cache);
    return { cache, client, transport };
  }

  it('SIGSTOP of a master: the sharded bus resubscribes on the promoted replica, and an invalidation published after the failover reaches every instance', async () => {
    const all = [instance('stopbus:'), instance('stopbus:'), instance('stopbus:')];
    const caches = all.map((i) => i.cache);
    await subscribed(...caches);
    const reconnected = caches.map(
      (cache) => new Promise<void>((resolve) => cache.on('bus:reconnect', () => resolve())),
    );
    // The first instance publishes on a channel of the master that hangs.
    const victim = await fixture.cluster.masterFor(all[0]!.transport.publishChannel);
    await fixture.cluster.failover(victim, { how: 'pause' });
    try {
      // Every instance listens on channels of the hung master: each must notice (heartbeat),
      // find the promoted replica and subscribe there.
      await waitFor(
        async () => {
          const buses = caches.map((c) => c.stats().bus);
          return buses.every((bus) => bus.disconnects > 0 && bus.subscribed)
            ? done(undefined)
            : notYet(JSON.stringify(buses.map((b) => ({ sub: b.subscribed, disc: b.disconnects }))));
        },
        { description: 'every bus to notice the hung master and subscribe again', timeoutMs: 30_000 },
      );
      await Promise.all(reconnected);

      await caches[0]!.set('k', 1);
      for (const cache of caches) expect(await cache.get('k')).toBe(1); // now in every L1, for 1 h
      const heard = caches.map((c) => c.stats().bus.messagesIn);
      await caches[0]!.set('k', 2);
      await waitFor(
        async () =>
          caches.slice(1).every((c, i) => c.stats().bus.messagesIn > heard[i + 1]!)
            ? done(undefined)
            : notYet('not heard yet'),
        { description: 'the others to hear the write published after the failover', timeoutMs: 10_000 },
      );
      for (const cache of caches) expect(await cache.get('k')).toBe(2);
    } finally {
      await victim.resume();
      await fixture.cluster.waitUntilHealthy(30_000);
    }
  }, 90_000);

  /** Fails `key`'s master over to its replica with CLUSTER FAILOVER: no client is told. */
  async function gracefulFailover(key: string): Promise<void> {
    const master = await fixture.cluster.masterFor(key);
    const [replica] = await fixture.cluster.replicasOf(master);
    await replica!.cli('CLUSTER', 'FAILOVER');
    await waitFor(
      async () =>
        ((await master.cli('ROLE')) as unknown[])[0] === 'slave' ? done(undefined) : notYet('not yet'),
      { description: 'the old master to become a replica', timeoutMs: 15_000 },
    );
    await fixture.cluster.waitUntilHealthy(15_000);
  }

  it('multi-key writes, deletes and repairs follow MOVED across slots when the client’s slot map is stale', async () => {
    const prefix = 'moved:';
    const client = fixture.cluster.client();
    const errors: CacheError[] = [];
    const cache = createCache({
      // Following ~66 redirects (one per slot) takes longer than 250 ms on a loaded machine; this
      // test is about following them, not about their latency.
      tiers: [redisTier({ client, prefix, timeout: '5s' })],
      bus: false,
      onError: (error) => errors.push(error),
    });
    caches.push(cache);
    const keys = Array.from({ length: 200 }, (_, i) => `item:${i}`);
    await cache.setMany(keys.map((key) => ({ key, value: 1 })));
    // A graceful failover: the replica takes over, the old master answers MOVED from now on, and
    // nothing tells this client (no connection drops, no command fails).
    await gracefulFailover(`${prefix}${keys[0]}`);

    // One pipeline to the old master carries an UNLINK per slot; each gets its own MOVED.
    await cache.setMany(keys.map((key) => ({ key, value: 2 })));
    expect(await cache.getMany(keys)).toEqual(keys.map(() => 2));
    await cache.deleteMany(keys);
    expect(errors).toEqual([]);
    const admin = fixture.cluster.client();
    // Deletes leave tombstones under the keys (fill leases), never the old entries.
    expect(await Promise.all(keys.map((key) => holdsEntry(admin, `${prefix}${key}`)))).toEqual(
      keys.map(() => false),
    );
  }, 60_000);

  it('with replicas (WAIT), single and multi-key writes and deletes follow MOVED after a failover the client did not see', async () => {
    const prefix = 'movedwait:';
    const client = fixture.cluster.client();
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [redisTier({ client, prefix, timeout: '5s', replicas: { wait: 1, timeout: '2s' } })],
      bus: false,
      onError: (error) => errors.push(error),
    });
    caches.push(cache);
    const keys = Array.from({ length: 50 }, (_, i) => `item:${i}`);
    await cache.setMany(keys.map((key) => ({ key, value: 1 })));
    await cache.set('one', 1);
    await gracefulFailover(`${prefix}one`);
    // A pipeline ending in WAIT is not redirected by the client: the tier follows the MOVED.
    await cache.set('one', 2);
    await cache.setMany(keys.map((key) => ({ key, value: 2 })));
    expect(errors).toEqual([]);
    expect(await cache.get('one')).toBe(2);
    expect(await cache.getMany(keys)).toEqual(keys.map(() => 2));
    await cache.delete('one');
    await cache.deleteMany(keys);
    expect(errors).toEqual([]);
    const admin = fixture.cluster.client();
    expect(await holdsEntry(admin, `${prefix}one`)).toBe(false);
    expect(await Promise.all(keys.map((key) => holdsEntry(admin, `${prefix}${key}`)))).toEqual(
      keys.map(() => false),
    );
  }, 60_000);
});
