import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCache,
  memoryTier,
  redisTier,
  type CacheError,
  type CacheOptions,
  type TierCache,
} from '../../src/index.js';
import { keySlot } from '../../src/internal/key-slot.js';
import { shardChannels } from '../../src/sync/sharded-transport.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import {
  ioredis5,
  ioredis6,
  iovalkey,
  nodeRedis5,
  type ClientLibrary,
  type TestClient,
} from '../helpers/client-libraries.js';
import { startCluster, type RedisClusterHandle } from '../helpers/redis-cluster.js';
import type { RedisProcess } from '../helpers/redis-server.js';
import { until } from '../helpers/wait-for.js';

// A cluster of its own, without replicas: the bus's shard channels live in 16 slots whatever the
// prefix (their hash tags are {0} … {15}), and these tests move all of them, and stop a master.
let cluster: RedisClusterHandle;
const clients: TestClient[] = [];
const caches: TierCache[] = [];

beforeAll(async () => {
  // Without full coverage, a stopped master takes down only its own slots (see the last test).
  cluster = await startCluster({
    masters: 3,
    replicasPerMaster: 0,
    args: ['--cluster-require-full-coverage', 'no'],
  });
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await Promise.all(clients.map((client) => client.close()));
  await cluster?.stop();
});

/**
 * Starts moving `slot` from the master serving it to `to`, as `redis-cli --cluster reshard`
 * does: `count` of its keys move now (the rest stay, and are answered with ASK redirects once
 * gone); `finish()` moves the rest and hands the slot over.
 */
async function startMove(
  slot: number,
  from: RedisProcess,
  to: RedisProcess,
  count = Number.POSITIVE_INFINITY,
): Promise<{ finish(): Promise<void> }> {
  const [fromId, toId] = await Promise.all([from.cli('CLUSTER', 'MYID'), to.cli('CLUSTER', 'MYID')]);
  await to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', String(fromId));
  await from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', String(toId));
  const move = async (limit: number): Promise<void> => {
    for (let moved = 0; moved < limit;) {
      const batch = Math.min(100, limit - moved);
      const keys = (await from.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), String(batch))) as string[];
      if (keys.length === 0) return;
      await from.cli('MIGRATE', to.host, String(to.port), '', '0', '5000', 'KEYS', ...keys);
      moved += keys.length;
    }
  };
  await move(count);
  return {
    async finish() {
      await move(Number.POSITIVE_INFINITY);
      for (const master of await cluster.masters())
        await master.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', String(toId));
    },
  };
}

/** Moves `slot`, keys and all, from the master serving it to `to`. */
async function moveSlot(slot: number, from: RedisProcess, to: RedisProcess): Promise<void> {
  await (await startMove(slot, from, to)).finish();
}

/** The next master after `node` (which serves some slot) in `cluster.masters()` order. */
async function nextMaster(node: RedisProcess): Promise<RedisProcess> {
  const masters = await cluster.masters();
  return masters[(masters.findIndex((master) => master.port === node.port) + 1) % masters.length]!;
}

let prefixes = 0;

/**
 * A cache on its own `library` client of the cluster: L1 (unless `l1` is false) over a Redis
 * tier under `prefix`, with `options` besides; closed after the file.
 */
function instance(
  library: ClientLibrary,
  prefix: string,
  options: Omit<CacheOptions, 'tiers'> = {},
  l1 = true,
): TierCache {
  const client = library.cluster(cluster.startupNodes);
  clients.push(client);
  const cache = createCache({
    tiers: [...(l1 ? [memoryTier({ ttl: '1h' })] : []), redisTier({ client: client.client, prefix })],
    ...options,
  });
  caches.push(cache);
  return cache;
}

describe.each([ioredis5, ioredis6, iovalkey, nodeRedis5])(
  'a resharding that moves the bus channels to other masters ($name)',
  (library: ClientLibrary) => {
    it('makes every instance resubscribe at once, without a publish of its own, and hear the writes after', async () => {
      const prefix = `reshard${++prefixes}:`;
      // Heartbeats every 30 s: neither a heartbeat gone silent nor a heartbeat's SPUBLISH
      // redirected to the new master can be what tells an instance here.
      const bus = { heartbeat: '30s' } as const;
      const [a, b] = [instance(library, prefix, { bus }), instance(library, prefix, { bus })];
      await subscribed(a, b);
      await heard([b], () => a.set('k', 1));
      expect(await b.get('k')).toBe(1);
      const disconnects = [a, b].map((cache) => cache.stats().bus.disconnects);

      for (const channel of shardChannels(`tiercache:bus:${prefix}`, 16)) {
        const from = await cluster.masterFor(channel);
        await moveSlot(keySlot(channel), from, await nextMaster(from));
      }

      // Redis unsubscribed both from the moved channels: each rebuilds its subscriptions.
      await until(
        'both instances to count the lost subscription',
        () => [a, b].every((cache, i) => cache.stats().bus.disconnects > disconnects[i]!),
        5_000,
      );
      await subscribed(a, b);
      expect(await b.get('k')).toBe(1);
      await heard([b], () => a.set('k', 2));
      expect(await b.get('k')).toBe(2);
      await heard([a], () => b.set('k', 3));
      expect(await a.get('k')).toBe(3);
    });
  },
);

describe.each([ioredis5, ioredis6, iovalkey, nodeRedis5])(
  'a slot migrating while the cache reads and writes its keys ($name)',
  (library: ClientLibrary) => {
    it('answers every getOrSet with the current version, and leaves no stale copy once it is done', async () => {
      const prefix = `migrating${++prefixes}:`;
      const errors: CacheError[] = [];
      const onError = (error: CacheError): void => void errors.push(error);
      const [writer, reader] = [
        instance(library, prefix, { onError }),
        instance(library, prefix, { onError }),
      ];
      // One hash tag: every key in the slot that moves.
      const keys = Array.from({ length: 40 }, (_, i) => `{moving}:${i}`);
      const origin = new Map(keys.map((key) => [key, 0]));
      const load = (key: string) => () => origin.get(key)!;
      await writer.setMany(keys.map((key) => ({ key, value: 0 })));
      await subscribed(writer, reader);
      const current = async (cache: TierCache, subset: readonly string[]): Promise<string[]> => {
        const got = await Promise.all(subset.map((key) => cache.getOrSet(key, load(key))));
        return subset.filter((key, i) => got[i] !== origin.get(key));
      };

      const from = await cluster.masterFor(prefix + keys[0]!);
      const move = await startMove(keySlot(prefix + keys[0]!), from, await nextMaster(from), 20);
      // Half the keys are on the importing master (ASK), half still here.
      expect(await current(reader, keys)).toEqual([]);
      for (const key of keys.slice(0, 20)) origin.set(key, 1);
      await Promise.all(keys.slice(0, 10).map((key) => writer.set(key, 1)));
      await Promise.all(keys.slice(10, 20).map((key) => writer.delete(key)));
      await until(
        'the reader to see every write made during the move',
        async () => (await current(reader, keys)).length === 0,
      );

      await move.finish();
      for (const key of keys.slice(20)) origin.set(key, 2);
      await Promise.all(keys.slice(20, 30).map((key) => writer.set(key, 2)));
      await Promise.all(keys.slice(30).map((key) => writer.delete(key)));
      await until(
        'the reader to see every write made after it',
        async () => (await current(reader, keys)).length === 0,
      );
      // What Redis holds now (read by a cache without L1): each key's current version, or nothing.
      const redisOnly = instance(library, prefix, { onError }, false);
      const stored = await Promise.all(keys.map((key) => redisOnly.get(key)));
      expect(keys.filter((key, i) => stored[i] !== undefined && stored[i] !== origin.get(key))).toEqual([]);
      // A write may time out while the slot moves (it is then repaired); nothing is corrupt.
      expect(errors.filter((error) => error.code !== 'E_TIER')).toEqual([]);
    });
  },
);

describe('a master that stops answering while writers publish', () => {
  it('sends their invalidations on a channel another master serves, long before any heartbeat could tell', async () => {
    const prefix = `stalled${++prefixes}:`;
    // Two shard channels on two masters: each writer publishes on one of them, chosen at random.
    const [paused, other] = shardChannels(`tiercache:bus:${prefix}`, 2);
    const stopping = await cluster.masterFor(paused!);
    if ((await cluster.masterFor(other!)).port === stopping.port) {
      await moveSlot(keySlot(other!), stopping, await nextMaster(stopping));
    }
    // Heartbeats every 30 s (silence counts after 90 s): only the invalidations themselves can
    // reach the reader within this test.
    const stalling = (): TierCache =>
      instance(ioredis5, prefix, { bus: { heartbeat: '30s', shardChannels: 2 } });
    // Eight writers: that none publishes on the stopped master's channel has odds of 1 in 256.
    const writers = Array.from({ length: 8 }, stalling);
    const reader = stalling();
    await subscribed(reader, ...writers);
    // Every key in one slot, on a master that goes on answering.
    const keys = writers.map((_, i) => `{data}:${i}`);
    if ((await cluster.masterFor(prefix + keys[0]!)).port === stopping.port) {
      await moveSlot(keySlot(prefix + keys[0]!), stopping, await nextMaster(stopping));
    }
    await Promise.all(writers.map((writer, i) => writer.set(keys[i]!, 1)));
    await until('the reader to hold every key', async () =>
      (await Promise.all(keys.map((key) => reader.get(key)))).every((value) => value === 1),
    );

    await stopping.pause();
    try {
      await Promise.all(writers.map((writer, i) => writer.set(keys[i]!, 2)));
      await until(
        'the reader to hear every write',
        async () => (await Promise.all(keys.map((key) => reader.get(key)))).every((value) => value === 2),
        10_000,
      );
      expect(reader.stats().bus.disconnects).toBe(0);
    } finally {
      await stopping.resume();
      await cluster.waitUntilHealthy();
    }
  });
});
