/**
 * Which Redis clients a tier accepts, and the one rule that tells them apart. A client is told by
 * its shape, never by `instanceof`: ioredis 5 and 6, iovalkey and node-redis are separate
 * packages (an application may even hold two copies of one), and none of them is a dependency of
 * tiercache. The ioredis family is used as it is; node-redis through its adapters.
 */
import { createRequire } from 'node:module';
import { InvalidOptionError, describe } from '../../errors.js';
import {
  hasShape,
  type NodeConnectionOverrides,
  type RedisClient,
  type RedisClusterClient,
  type RedisConnection,
} from './client.js';
import {
  isNodeRedisClient,
  NodeRedisConnection,
  nodeRedisProblem,
  type NodeRedisClient,
} from './node-redis.js';
import { isNodeRedisCluster, NodeRedisClusterClient, type NodeRedisCluster } from './node-redis-cluster.js';
import {
  isNodeRedisSentinel,
  NodeRedisSentinelClient,
  type NodeRedisSentinel,
} from './node-redis-sentinel.js';

/**
 * An ioredis-family client: `Redis` or `Cluster` of ioredis 5 or 6, or of iovalkey (a Sentinel
 * connection is a `Redis`). Structural, so that naming it needs none of those packages installed.
 */
export interface IoredisFamilyClient {
  readonly status: string;
  pipeline(...args: never[]): unknown;
  mgetBuffer(...args: never[]): unknown;
  callBuffer(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
}

/** A node-redis client (the `redis` package: `createClient()`), connected. Structural, as above. */
export interface NodeRedisFamilyClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
  connect(...args: never[]): unknown;
}

/** A node-redis Cluster (`createCluster()`), connected. Structural, as above. */
export interface NodeRedisFamilyCluster {
  readonly isOpen: boolean;
  sendCommand(...args: never[]): unknown;
  nodeClient(...args: never[]): unknown;
  duplicate(...args: never[]): unknown;
}

/** A node-redis Sentinel (`createSentinel()`), connected. Structural, as above. */
export interface NodeRedisFamilySentinel {
  readonly isOpen: boolean;
  sendCommand(...args: never[]): unknown;
  getMasterNode(...args: never[]): unknown;
  acquire(...args: never[]): unknown;
}

/** What `redisTier({ client })` and `createInvalidator({ redis })` accept. */
export type RedisClientOption =
  IoredisFamilyClient | NodeRedisFamilyClient | NodeRedisFamilyCluster | NodeRedisFamilySentinel | string;

/** Named in the error for anything else. */
export const SUPPORTED_CLIENTS =
  'a redis:// or rediss:// URL, a client of ioredis (5 or 6) or iovalkey (Redis, Sentinel-configured Redis, or Cluster), or a connected node-redis client (createClient, createCluster or createSentinel, redis 5 or 6)';

/** The rule for the ioredis family (its forks keep ioredis's API, Buffer variants and all). */
function isIoredisFamily(value: object): boolean {
  return (
    typeof (value as { status?: unknown }).status === 'string' &&
    hasShape(value, ['pipeline', 'mgetBuffer', 'callBuffer', 'evalsha', 'duplicate', 'on'])
  );
}

type ClientKind = 'url' | 'ioredis' | 'node-redis' | 'node-redis cluster' | 'node-redis sentinel';

/** The one rule: what `value` is, or an InvalidOptionError naming the supported clients. */
function kindOf(value: unknown, path: string): ClientKind {
  if (typeof value === 'string' && /^rediss?:\/\//.test(value)) return 'url';
  if (typeof value === 'object' && value !== null) {
    if (isIoredisFamily(value)) return 'ioredis';
    // A Sentinel first: node-redis 6's Sentinel also has the duplicate() of a client; then a
    // Cluster: node-redis 6's Cluster also has the isOpen and isReady of a client.
    if (isNodeRedisSentinel(value))
      return usable(
        'node-redis sentinel',
        nodeRedisProblem('Sentinel', value.isOpen, value.clientSideCache),
        path,
      );
    if (isNodeRedisCluster(value))
      return usable('node-redis cluster', nodeRedisProblem('Cluster', value.isOpen, undefined), path);
    if (isNodeRedisClient(value))
      return usable(
        'node-redis',
        nodeRedisProblem('client', value.isOpen, value.options?.clientSideCache),
        path,
      );
    const near = nearMiss(value);
    if (near !== undefined) throw new InvalidOptionError(path, near);
  }
  throw new InvalidOptionError(path, `expected ${SUPPORTED_CLIENTS}, got ${describe(value)}`);
}

/**
 * Why a node-redis object that is not a client cannot serve a tier, or undefined: a pool spreads
 * a tick's commands over its connections (no batched reads, no order between a write and its bus
 * message) and has no connection to subscribe on; a legacy-mode wrapper answers by callback.
 */
function nearMiss(value: object): string | undefined {
  if ('idleClients' in value && hasShape(value, ['execute', 'sendCommand'])) {
    return 'a node-redis client pool (createClientPool) cannot serve a tier, which needs one connection for its commands and another to subscribe on: give it a client (createClient) of its own';
  }
  if (value.constructor?.name === 'RedisLegacyClient') {
    return 'a node-redis legacy-mode client (client.legacy()) answers by callback: give the tier the client .legacy() was called on';
  }
  return undefined;
}

/** `kind`, unless `problem` says why that client cannot serve a tier: then an InvalidOptionError. */
function usable(kind: ClientKind, problem: string | undefined, path: string): ClientKind {
  if (problem !== undefined) throw new InvalidOptionError(path, problem);
  return kind;
}

/** Throws unless `value` is a supported client or URL: checked before any other option. */
export function checkClient(value: unknown, path: string): void {
  kindOf(value, path);
}

/**
 * The client to use for `value` (a client the caller keeps), or for a URL one the tier creates
 * and owns. Called once every other option is known good: a client made from a URL starts
 * connecting at once.
 */
export function adoptClient(value: unknown, path: string): { client: RedisClient; owned: boolean } {
  switch (kindOf(value, path)) {
    case 'url':
      return { client: ownedClient(value as string, path), owned: true };
    case 'ioredis':
      // The family's API is the internal client interface (client.ts): used as it is.
      return { client: value as RedisClient, owned: false };
    case 'node-redis':
      return {
        client: new NodeRedisConnection(value as NodeRedisFamilyClient & NodeRedisClient),
        owned: false,
      };
    case 'node-redis cluster':
      return {
        client: new NodeRedisClusterClient(value as NodeRedisFamilyCluster & NodeRedisCluster),
        owned: false,
      };
    case 'node-redis sentinel':
      return {
        client: new NodeRedisSentinelClient(value as NodeRedisFamilySentinel & NodeRedisSentinel),
        owned: false,
      };
  }
}

/**
 * ioredis settings of a client the tier creates from a URL: commands fail instead of waiting
 * for a reconnect (and are never re-sent later, out of order with newer writes), and a dead
 * host is given up on quickly. The offline queue stays on only for the first connect; after
 * that the tier itself refuses to send while the client is not ready.
 */
export const OWNED_CLIENT_OPTIONS = Object.freeze({
  enableAutoPipelining: true,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  connectTimeout: 2_000,
  // A hung server never closes its side: destroy the socket after this long instead of 2 s.
  disconnectTimeout: 500,
  retryStrategy: (attempt: number): number => Math.min(attempt * 100, 1_000),
} as const);

type RedisConstructor = new (url: string, options: object) => RedisConnection;

/**
 * An ioredis client for a URL. ioredis is an optional peer, loaded only here, synchronously (so
 * that a tier is whole once constructed) and from where this module is: its file in the CJS
 * build, its URL in the ESM build (where import.meta is, and __filename is not).
 */
function ownedClient(url: string, path: string): RedisConnection {
  let Redis: RedisConstructor;
  try {
    const here = typeof __filename === 'string' ? __filename : (import.meta as { url?: string }).url!;
    Redis = (createRequire(here)('ioredis') as { Redis: RedisConstructor }).Redis;
  } catch (error) {
    throw new InvalidOptionError(
      path,
      `a URL needs the ioredis package, which is not installed (${(error as Error).message.split('\n')[0]}): ` +
        'install ioredis, or pass a client you made (ioredis, iovalkey, or a connected node-redis client, Cluster or Sentinel)',
    );
  }
  return new Redis(url, { ...OWNED_CLIENT_OPTIONS });
}

/**
 * A connection of its own to one node of `cluster`, with the Cluster's node settings and
 * `overrides`, connected only on `connect()`. An ioredis-family Cluster's nodes are its own
 * package's `Redis`, so the connection is a duplicate of one of them (ioredis mixes EventEmitter
 * into its class, so a node's `constructor` is not the class to call).
 */
export function nodeConnection(
  cluster: RedisClusterClient,
  host: string,
  port: number,
  overrides: NodeConnectionOverrides,
): RedisConnection {
  if (cluster.connectNode !== undefined) return cluster.connectNode(host, port, overrides);
  const node = cluster.nodes('master')[0] ?? cluster.nodes('all')[0];
  if (node === undefined) throw new Error('the Cluster client knows no node yet');
  return node.duplicate({ host, port, readOnly: false, lazyConnect: true, ...overrides });
}

/**
 * Calls `listener` when Redis unsubscribes `connection` from shard channels of its own accord,
 * as it does when their slot migrates to another master (a resharding): the connection stays
 * open and hears nothing more on them. ioredis 6 says so with a 'moved' event, and so does the
 * node-redis adapter (from node-redis's 'sharded-channel-moved'); ioredis 5 and iovalkey only
 * report the reply that answered no command, as an 'error'.
 */
export function onShardChannelsMoved(connection: RedisConnection, listener: () => void): void {
  connection.on('moved', listener);
  connection.on('error', (error: unknown) => {
    if (
      error instanceof Error &&
      error.message.startsWith('Command queue state error') &&
      error.message.includes('Last reply: sunsubscribe,')
    )
      listener();
  });
}
