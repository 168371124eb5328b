import { Cluster as Ioredis6Cluster, Redis as Ioredis6 } from 'ioredis6';
import { Cluster as IoredisCluster, Redis as Ioredis } from 'ioredis';
import { Cluster as IovalkeyCluster, Redis as Iovalkey } from 'iovalkey';
import * as redis5 from 'redis';
import * as redis6 from 'redis6';
import type { RedisClientOption } from '../../src/tiers/redis/clients.js';
import { noop } from './redis-server.js';

/** Where a server listens. */
export interface Address {
  readonly host: string;
  readonly port: number;
}

/**
 * A Redis client package, as the tests make its clients: a Backend (backends.ts) makes every
 * client for caches through one, so the same suites run on each package.
 */
export interface ClientLibrary {
  readonly name: string;
  /** A client of one server, reconnecting every 100 ms, connecting (not yet ready). */
  single(address: Address): TestClient;
  /** A Cluster client from its startup nodes, connecting. */
  cluster(nodes: readonly Address[]): TestClient;
  /** A client of the master the sentinels name `masterName`, connecting (where the package has one). */
  sentinel?(sentinels: readonly Address[], masterName: string): TestClient;
}

/** A client a test hands to a tier, and closes when its backend stops. */
export interface TestClient {
  readonly client: RedisClientOption;
  close(): Promise<void>;
}

interface IoredisLike {
  on(event: string, listener: () => void): unknown;
  disconnect(): void;
}

/** An ioredis-family package: each has its own `Redis` and `Cluster` classes with ioredis's options. */
function ioredisFamily(
  name: string,
  Redis: new (options: object) => IoredisLike,
  Cluster: new (nodes: Address[], options: object) => IoredisLike,
  clusterAutoPipelining = true,
): ClientLibrary {
  const wrap = (client: IoredisLike): TestClient => {
    client.on('error', noop);
    return {
      client: client as unknown as RedisClientOption,
      close: async () => client.disconnect(),
    };
  };
  return {
    name,
    single: ({ host, port }) =>
      wrap(new Redis({ host, port, retryStrategy: () => 100, enableAutoPipelining: true })),
    // Auto-pipelining on a Cluster only where it routes scripts by their keys: iovalkey 0.4
    // groups EVAL/EVALSHA by their first argument (the script), so a tick of fills for keys on
    // different masters fails as a whole (docs/clients.md).
    cluster: (nodes) => wrap(new Cluster([...nodes], { enableAutoPipelining: clusterAutoPipelining })),
  };
}

export const ioredis5 = ioredisFamily('ioredis', Ioredis, IoredisCluster);
export const ioredis6 = ioredisFamily('ioredis 6', Ioredis6, Ioredis6Cluster);
export const iovalkey = ioredisFamily('iovalkey', Iovalkey, IovalkeyCluster, false);

interface NodeRedisLike {
  on(event: string, listener: () => void): unknown;
  connect(): Promise<unknown>;
  readonly isOpen: boolean;
  destroy(): void;
}

/**
 * A node-redis major: its `createClient`, `createCluster` and `createSentinel`. Clients are
 * connecting when handed out.
 */
function nodeRedis(
  name: string,
  createClient: (options: object) => NodeRedisLike,
  createCluster: (options: object) => NodeRedisLike,
  createSentinel: (options: object) => NodeRedisLike,
): ClientLibrary {
  const wrap = (client: NodeRedisLike): TestClient => {
    client.on('error', noop);
    client.connect().catch(noop);
    return {
      client: client as unknown as RedisClientOption,
      close: async () => {
        if (client.isOpen) client.destroy();
      },
    };
  };
  return {
    name,
    single: ({ host, port }) => wrap(createClient({ socket: { host, port, reconnectStrategy: () => 100 } })),
    cluster: (nodes) =>
      wrap(createCluster({ rootNodes: nodes.map(({ host, port }) => ({ socket: { host, port } })) })),
    sentinel: (sentinels, masterName) =>
      wrap(
        createSentinel({
          name: masterName,
          sentinelRootNodes: sentinels.map(({ host, port }) => ({ host, port })),
          nodeClientOptions: { socket: { reconnectStrategy: () => 100 } },
        }),
      ),
  };
}

export const nodeRedis5 = nodeRedis(
  'node-redis',
  redis5.createClient,
  redis5.createCluster as (options: object) => NodeRedisLike,
  redis5.createSentinel as (options: object) => NodeRedisLike,
);
export const nodeRedis6 = nodeRedis(
  'node-redis 6',
  redis6.createClient,
  redis6.createCluster as (options: object) => NodeRedisLike,
  redis6.createSentinel as (options: object) => NodeRedisLike,
);
