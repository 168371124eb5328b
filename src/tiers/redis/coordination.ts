/**
 * The Redis tier's coordination (see ../coordination.ts): locks, tag times and namespace
 * versions as keys beside the entries under the tier's prefix, and the bus on Redis pub/sub.
 * Everything here speaks the client interface of client.ts; the cache only sees the interfaces.
 */
import { isCluster, type RedisClient } from './client.js';
import { InvalidOptionError, describe } from '../../errors.js';
import {
  BUS_KEY_SPACE,
  LOCK_KEY_PREFIX,
  NAMESPACE_KEY_PREFIX,
  TAG_KEY_PREFIX,
} from '../../sync/reserved-keys.js';
import { ShardedPubSubTransport } from '../../sync/sharded-transport.js';
import { RedisPubSubTransport, type BusTransport } from '../../sync/transport.js';
import type {
  BusTransportRequest,
  LockStore,
  TagTimeStore,
  TierCoordination,
  VersionStore,
} from '../coordination.js';

// Compare-and-delete: a loader that outlived its lease must not delete the next owner's lock.
const RELEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

// Compare-and-renew, for the same reason.
const EXTEND =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";

/**
 * Sets a tag's invalidation time unless Redis already holds a later one, so instances whose
 * clocks differ slightly never move a tag's time backwards. One key: slot-safe on a Cluster.
 */
const RAISE = `local c = tonumber(redis.call('GET', KEYS[1]))
if c == nil or c < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end
return tostring(c)`;

/** The channel instances on a Redis tier with this key prefix meet on by default. */
export function defaultChannel(prefix: string): string {
  return `${BUS_KEY_SPACE}bus:${prefix}`;
}

/**
 * `channel`, refused when its replay log (`<channel>:log`, and `<channel>:{n}:log` per shard)
 * would be a key under the tier's own `prefix`: clear() would delete it, and a user key could
 * overwrite it. The default channel never is ({@link BUS_KEY_SPACE} is no cache's prefix).
 */
export function checkChannel(channel: string, prefix: string, path: string): string {
  if (channel.startsWith(prefix)) {
    throw new InvalidOptionError(
      path,
      `the channel ${describe(channel)} starts with the key prefix ${describe(prefix)}: its replay log would be a key of the cache, which clear() deletes and a user key can overwrite; pick a channel outside the prefix`,
    );
  }
  return channel;
}

/** Everything a Redis tier with `prefix` on `client` coordinates. */
export function redisCoordination(client: RedisClient, prefix: string): Required<TierCoordination> {
  return {
    locks: redisLocks(client, prefix),
    tagTimes: redisTagTimes(client, prefix),
    namespaces: redisVersions(client, prefix),
    busTransport: (request) => redisBusTransport(client, prefix, request),
  };
}

/** SET NX PX locks with a random owner token, at `<prefix>__lock:<key>`. */
export function redisLocks(client: RedisClient, prefix: string): LockStore {
  const keyOf = (key: string): string => prefix + LOCK_KEY_PREFIX + key;
  return {
    acquire: async (key, token, ms) => (await client.set(keyOf(key), token, 'PX', ms, 'NX')) === 'OK',
    extend: async (key, token, ms) => (await client.eval(EXTEND, 1, keyOf(key), token, ms)) === 1,
    release: async (key, token) => (await client.eval(RELEASE, 1, keyOf(key), token)) === 1,
  };
}

/** One key per tag at `<prefix>__tag:<tag>`, raised by script. */
export function redisTagTimes(client: RedisClient, prefix: string): TagTimeStore {
  const keyOf = (tag: string): string => prefix + TAG_KEY_PREFIX + tag;
  const cluster = isCluster(client);
  return {
    async read(tags) {
      const keys = tags.map(keyOf);
      // A Cluster cannot MGET across slots: one GET per tag, which ioredis routes (and pipelines
      // with autopipelining); a single server answers them all with one MGET.
      const values = cluster
        ? await Promise.all(keys.map((key) => client.get(key)))
        : await client.mget(keys);
      return values.map((value) => Number(value ?? 0) || 0);
    },
    async raise(times) {
      if (cluster) {
        await Promise.all([...times].map(([tag, at]) => client.eval(RAISE, 1, keyOf(tag), String(at))));
        return;
      }
      const pipeline = client.pipeline();
      for (const [tag, at] of times) pipeline.eval(RAISE, 1, keyOf(tag), String(at));
      const results = (await pipeline.exec()) ?? [];
      for (const [error] of results) if (error) throw error;
    },
  };
}

/** One counter per namespace at `<prefix>__ns:<name>` (INCR). */
export function redisVersions(client: RedisClient, prefix: string): VersionStore {
  const keyOf = (name: string): string => prefix + NAMESPACE_KEY_PREFIX + name;
  return {
    read: async (name) => Number((await client.get(keyOf(name))) ?? 0),
    bump: (name) => client.incr(keyOf(name)),
  };
}

/**
 * The pub/sub transport `request` asks for: classic PUBLISH/SUBSCRIBE, or sharded
 * (SPUBLISH/SSUBSCRIBE, the default on a Cluster client).
 */
export function redisBusTransport(
  client: RedisClient,
  prefix: string,
  request: BusTransportRequest,
): BusTransport {
  const channel = checkChannel(
    request.channel ?? defaultChannel(prefix),
    prefix,
    `${request.optionPrefix}channel`,
  );
  const pubsub = request.pubsub ?? (isCluster(client) ? 'sharded' : 'classic');
  if (pubsub === 'classic') return new RedisPubSubTransport(client, channel, request.replay);
  if (!isCluster(client)) {
    throw new InvalidOptionError(
      `${request.optionPrefix}pubsub`,
      `'sharded' needs a Cluster client; got a single-node client`,
    );
  }
  return new ShardedPubSubTransport(client, channel, request.shardChannels, request.replay);
}
