import type { Cluster, Redis } from 'ioredis';
import { keySlot } from '../../src/internal/key-slot.js';
import type { RedisClientOption } from '../../src/tiers/redis/clients.js';
import { ioredis5, type ClientLibrary, type TestClient } from './client-libraries.js';
import { startCluster, type RedisClusterHandle } from './redis-cluster.js';
import { startSentinel, type RedisSentinelHandle } from './redis-sentinel.js';
import { startRedis, type RedisProcess } from './redis-server.js';

/**
 * What a parameterised suite needs from "a Redis": clients for caches, an admin view of the
 * data, and command counters. One implementation per deployment shape, so the same tests run
 * on a single server and on a cluster.
 */
export interface Backend {
  readonly shape: 'single' | 'cluster';
  /** The shape, with the client library when it is not ioredis 5 ("single, iovalkey"). */
  readonly name: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A new client for a cache, of the backend's client library (closed by stop()). */
  client(): RedisClientOption;
  /** A client for test assertions (routes keys on a cluster). */
  admin(): Redis | Cluster;
  /** Every key matching a glob, across all masters. */
  keys(pattern: string): Promise<string[]>;
  /** Calls of a command since start, summed over all masters. */
  commandCalls(command: string): Promise<number>;
  /** How many MGETs a getMany of these full keys should send: 1, or one per slot on a cluster. */
  mgetsFor(fullKeys: readonly string[]): number;
}

/**
 * Clients made for caches, closed (before the servers stop) by `close()`. The
 * ioredis 5 clients of the servers' own helpers are closed by them.
 */
function clientsOf() {
  const made = new Set<TestClient>();
  return {
    add(client: TestClient): RedisClientOption {
      made.add(client);
      return client.client;
    },
    async close(): Promise<void> {
      await Promise.all([...made].map((client) => client.close()));
      made.clear();
    },
  };
}

/** A single server; caches get clients of `library` (ioredis 5 by default), assertions ioredis 5. */
export function singleBackend(library: ClientLibrary = ioredis5): Backend {
  let server: RedisProcess;
  let admin: Redis;
  const clients = clientsOf();
  return {
    shape: 'single',
    name: library === ioredis5 ? 'single' : `single, ${library.name}`,
    async start() {
      server = await startRedis();
      admin = server.client();
    },
    async stop() {
      await clients.close();
      await server.stop();
    },
    client: () =>
      library === ioredis5
        ? server.client({ enableAutoPipelining: true })
        : clients.add(library.single(server)),
    admin: () => admin,
    keys: (pattern) => admin.keys(pattern),
    commandCalls: async (command) => callsIn(await admin.info('commandstats'), command),
    mgetsFor: () => 1,
  };
}

export function clusterBackend(
  library: ClientLibrary = ioredis5,
): Backend & { cluster(): RedisClusterHandle } {
  let cluster: RedisClusterHandle;
  let admin: Cluster;
  const masters = () => cluster.masters();
  const clients = clientsOf();
  return {
    shape: 'cluster',
    name: library === ioredis5 ? 'cluster' : `cluster, ${library.name}`,
    async start() {
      cluster = await startCluster();
      admin = cluster.client();
      await admin.ping();
    },
    async stop() {
      await clients.close();
      await cluster.stop();
    },
    /** The cluster itself, for failovers. */
    cluster: () => cluster,
    client: () =>
      library === ioredis5
        ? cluster.client({ enableAutoPipelining: true })
        : clients.add(library.cluster(cluster.startupNodes)),
    admin: () => admin,
    async keys(pattern) {
      const found = await Promise.all(
        (await masters()).map((m) => m.cli('KEYS', pattern) as Promise<string[]>),
      );
      return found.flat();
    },
    async commandCalls(command) {
      const infos = await Promise.all(
        (await masters()).map((m) => m.cli('INFO', 'commandstats') as Promise<string>),
      );
      return infos.reduce((sum, info) => sum + callsIn(info, command), 0);
    },
    mgetsFor: (fullKeys) => new Set(fullKeys.map((key) => keySlot(key))).size,
  };
}

/** Calls of `command` in an INFO commandstats reply. */
export function callsIn(info: string, command: string): number {
  const line = info.split('\n').find((l) => l.startsWith(`cmdstat_${command}:`));
  return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)![1]);
}

/**
 * Redis call timeout for tests that are not about Redis faults. The tier's 250 ms default is
 * right for a service, but on a 2-core machine running many redis-servers and test workers a
 * call can stall that long; the cache then (correctly) degrades, and a test of something else
 * fails. Fault tests set their own short timeouts.
 */
export const PATIENT = '5s';

/**
 * `backend` started once, by the first suite that starts it, and stopped by `stopAll()` rather
 * than by each suite: several suites (of several client libraries, through `as`) then share one
 * cluster instead of starting six redis-servers each.
 */
export function sharedBackend(backend: Backend & { cluster(): RedisClusterHandle }) {
  let started: Promise<void> | undefined;
  const start = () => (started ??= backend.start());
  const clients = clientsOf();
  return {
    /** The shared backend, making its cache clients with `library`. */
    as(library: ClientLibrary): Backend {
      return {
        ...backend,
        name: `${backend.shape}, ${library.name}`,
        start,
        stop: () => clients.close(),
        client: () => clients.add(library.cluster(backend.cluster().startupNodes)),
      };
    },
    async stopAll(): Promise<void> {
      await clients.close();
      if (started !== undefined) await backend.stop();
    },
  };
}

/**
 * One Sentinel setup (master, replica, three sentinels), started by the first suite that starts
 * it and stopped by `stopAll()`, shared by the suites of a file as `sharedBackend` shares a
 * cluster. To the suites it is a single server (one master): `shape` is 'single'; assertions go
 * through an ioredis client that finds the master through the sentinels, so they follow a
 * failover.
 */
export function sharedSentinel() {
  let sentinel: RedisSentinelHandle | undefined;
  let admin: Redis;
  let started: Promise<void> | undefined;
  const start = () =>
    (started ??= startSentinel().then(async (handle) => {
      sentinel = handle;
      admin = handle.client();
      await admin.ping();
    }));
  const clients = clientsOf();
  return {
    /** The setup, once started: for failovers. */
    handle: (): RedisSentinelHandle => sentinel!,
    /** An ioredis client of the master, through the sentinels (connected once started). */
    admin: (): Redis => admin,
    start,
    /** The shared setup, making its cache clients with `library` (one that has Sentinel clients). */
    as(library: ClientLibrary): Backend {
      return {
        shape: 'single',
        name: `sentinel, ${library.name}`,
        start,
        stop: () => clients.close(),
        client: () => clients.add(library.sentinel!(sentinel!.sentinels, sentinel!.masterName)),
        admin: () => admin,
        keys: (pattern) => admin.keys(pattern),
        commandCalls: async (command) => callsIn(await admin.info('commandstats'), command),
        mgetsFor: () => 1,
      };
    },
    async stopAll(): Promise<void> {
      await clients.close();
      if (sentinel !== undefined) await sentinel.stop();
    },
  };
}
