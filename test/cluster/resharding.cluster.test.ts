import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
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
// prefix (their hash tags are {0} … {15}), and these tests move all of them.
let cluster: RedisClusterHandle;
const clients: TestClient[] = [];
const caches: TierCache[] = [];

beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 0 });
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await Promise.all(clients.map((client) => client.close()));
  await cluster?.stop();
});

/** Moves `slot`, keys and all, from the master serving it to `to`, as `redis-cli --cluster reshard` does. */
async function moveSlot(slot: number, from: RedisProcess, to: RedisProcess): Promise<void> {
  const [fromId, toId] = await Promise.all([from.cli('CLUSTER', 'MYID'), to.cli('CLUSTER', 'MYID')]);
  await to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', String(fromId));
  await from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', String(toId));
  for (;;) {
    const keys = (await from.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')) as string[];
    if (keys.length === 0) break;
    await from.cli('MIGRATE', to.host, String(to.port), '', '0', '5000', 'KEYS', ...keys);
  }
  for (const master of await cluster.masters())
    await master.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', String(toId));
}

let prefixes = 0;

describe.each([ioredis5, ioredis6, iovalkey, nodeRedis5])(
  'a resharding that moves the bus channels to other masters ($name)',
  (library: ClientLibrary) => {
    it('makes every instance resubscribe at once, without a publish of its own, and hear the writes after', async () => {
      const prefix = `reshard${++prefixes}:`;
      const instance = (): TierCache => {
        const client = library.cluster(cluster.startupNodes);
        clients.push(client);
        // Heartbeats every 30 s: neither a heartbeat gone silent nor a heartbeat's SPUBLISH
        // redirected to the new master can be what tells an instance here.
        const cache = createCache({
          tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: client.client, prefix })],
          bus: { heartbeat: '30s' },
        });
        caches.push(cache);
        return cache;
      };
      const [a, b] = [instance(), instance()];
      await subscribed(a, b);
      await heard([b], () => a.set('k', 1));
      expect(await b.get('k')).toBe(1);
      const disconnects = [a, b].map((cache) => cache.stats().bus.disconnects);

      const masters = await cluster.masters();
      for (const channel of shardChannels(`tiercache:bus:${prefix}`, 16)) {
        const from = await cluster.masterFor(channel);
        const to = masters[(masters.findIndex((master) => master.port === from.port) + 1) % masters.length]!;
        await moveSlot(keySlot(channel), from, to);
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
