import {
  isCluster,
  type RedisClient,
  type RedisClusterClient,
  type RedisConnection,
} from '../tiers/redis/client.js';

function ignore(): void {}

/**
 * Keeps every socket of `client` (on a Cluster: of each node and of its pub/sub subscriber)
 * from raising an uncaught 'error'. ioredis listens for one 'error' per socket (`once`), but a
 * TLS socket whose handshake failed can raise a second one while it is torn down (the server's
 * alert after the client rejected its certificate); with no listener left, that one ends the
 * process — typically while a cache is being closed. Each socket gets a no-op listener when its
 * client reports an error or connects; a client-level listener comes first, since ioredis only
 * emits an error to a client that listens. Returns a function that stops guarding new sockets
 * (a client the caller was given outlives it); the sockets that exist by then stay guarded.
 */
export function guardSocketErrors(client: RedisClient): () => void {
  return isCluster(client) ? guardCluster(client) : guardRedis(client);
}

function guardRedis(redis: RedisConnection): () => void {
  const guard = (): void => {
    const stream = redis.stream as NodeJS.EventEmitter | undefined;
    if (stream !== undefined && !stream.listeners('error').includes(ignore)) stream.on('error', ignore);
  };
  redis.on('error', guard);
  redis.on('connect', guard);
  return () => {
    redis.off('error', guard);
    redis.off('connect', guard);
    guard();
  };
}

/** ioredis' Cluster keeps its classic pub/sub connection private; read it where it lives. */
interface WithSubscriber {
  subscriber?: { getInstance?: () => RedisConnection | undefined | null };
}

function guardCluster(cluster: RedisClusterClient): () => void {
  const guarded = new Map<RedisConnection, () => void>();
  const add = (node: RedisConnection | undefined | null): void => {
    if (node === undefined || node === null || guarded.has(node)) return;
    const unguard = guardRedis(node);
    const forget = (): void => void guarded.delete(node);
    node.once('end', forget);
    // Stopping takes the 'end' listener off too: a client the caller keeps would otherwise
    // gather one per cache made and closed on it.
    guarded.set(node, () => {
      node.off('end', forget);
      unguard();
    });
  };
  const scan = (): void => {
    for (const node of cluster.nodes('all')) add(node);
    // The subscriber connection is replaced when its node leaves; check again after the
    // Cluster's own handlers of the same event have run.
    add((cluster as unknown as WithSubscriber).subscriber?.getInstance?.());
    queueMicrotask(() => add((cluster as unknown as WithSubscriber).subscriber?.getInstance?.()));
  };
  scan();
  cluster.on('+node', scan);
  cluster.on('-node', scan);
  cluster.on('refresh', scan);
  return () => {
    cluster.off('+node', scan);
    cluster.off('-node', scan);
    cluster.off('refresh', scan);
    for (const unguard of guarded.values()) unguard();
    guarded.clear();
  };
}
