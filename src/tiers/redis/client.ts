/**
 * What tiercache asks of a Redis client: the commands, replies and events it uses, and nothing
 * more. The shape is ioredis's (so an ioredis-family client, ioredis 5 and 6 and iovalkey, is used
 * as it is); another client family is adapted to it once, in its own module (see clients.ts).
 * Nothing outside the Redis tier's folder and the bus transports talks to a client.
 */

/** A command argument as every client sends it. */
export type RedisArg = string | number | Buffer;

/**
 * A listener of a client event. Its arguments differ per event (what ioredis passes), so the
 * type is as loose as EventEmitter's own: the one place an `any` is needed.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Listener = (...args: any[]) => void;

/** Events a client emits. */
export interface ClientEvents {
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
}

/** The commands tiercache sends, on a connection, a Cluster or a pipeline. */
export interface RedisCommands<Reply> {
  get(key: string): Reply;
  getBuffer(key: string): Reply;
  mget(keys: string[]): Reply;
  mgetBuffer(keys: string[]): Reply;
  set(key: string, value: RedisArg): Reply;
  set(key: string, value: RedisArg, px: 'PX', ms: number): Reply;
  incr(key: string): Reply;
  unlink(...keys: string[]): Reply;
  evalsha(sha: string, numKeys: number, ...args: RedisArg[]): Reply;
  eval(script: string, numKeys: number, ...args: RedisArg[]): Reply;
}

/** Commands queued and sent together; `exec` answers `[error, reply]` per command. */
export interface RedisPipeline extends RedisCommands<RedisPipeline> {
  readonly length: number;
  wait(replicas: number, timeout: number): RedisPipeline;
  exec(): Promise<[Error | null, unknown][] | null>;
}

/** What a single connection and a Cluster both offer. */
export interface RedisClientBase extends ClientEvents {
  /** 'wait' (lazy, not connected yet), 'connecting', 'ready', 'reconnecting', 'end', … */
  readonly status: string;
  get(key: string): Promise<string | null>;
  getBuffer(key: string): Promise<Buffer | null>;
  mget(keys: string[]): Promise<(string | null)[]>;
  mgetBuffer(keys: string[]): Promise<(Buffer | null)[]>;
  set(key: string, value: RedisArg): Promise<string | null>;
  set(key: string, value: RedisArg, px: 'PX', ms: number): Promise<string | null>;
  set(key: string, value: RedisArg, px: 'PX', ms: number, nx: 'NX'): Promise<string | null>;
  incr(key: string): Promise<number>;
  unlink(...keys: string[]): Promise<number>;
  evalsha(sha: string, numKeys: number, ...args: RedisArg[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: RedisArg[]): Promise<unknown>;
  /**
   * EVAL with bulk replies as Buffers. Every supported client has it: ioredis and its forks at
   * run time though their types leave it out (hence optional here, so their clients still fit),
   * the node-redis adapters by declaration. (`callBuffer('EVAL')` would not do: with
   * auto-pipelining ioredis drops its command name and throws outside any promise.)
   */
  evalBuffer?(script: string, numKeys: number, ...args: RedisArg[]): Promise<unknown>;
  /** Any command, replies as strings (`callBuffer`: as Buffers). */
  call(command: string, args: RedisArg[]): Promise<unknown>;
  callBuffer(command: string, args: RedisArg[]): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(...channels: string[]): Promise<unknown>;
  pipeline(): RedisPipeline;
  connect(): Promise<void>;
  quit(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
}

/** A connection to one server (or a Sentinel-managed master). */
export interface RedisConnection extends RedisClientBase {
  readonly isCluster?: boolean;
  /**
   * False when commands sent apart (in different ticks) may run out of the order they were sent
   * in: a pool of connections, or a resend after a failover (the node-redis Sentinel adapter).
   * A bus message may then not go out right behind the write it announces (see
   * RemoteTier.orderedConnection).
   */
  readonly inOrder?: boolean;
  /** The socket (ioredis), replaced on reconnect; absent before the first connect. */
  readonly stream?: { readonly bytesRead?: number; destroy(): void } | undefined;
  /**
   * Drops the connection at once (no goodbye a partition would never deliver) and lets the
   * client reconnect: an adapter's own way; an ioredis client's is destroying its `stream`.
   */
  dropConnection?(): void;
  scan(
    cursor: string,
    match: 'MATCH',
    pattern: string,
    count: 'COUNT',
    n: number,
  ): Promise<[string, string[]]>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  /** A new connection with the same settings (`overrides` on top: ioredis options). */
  duplicate(overrides?: object): RedisConnection;
  /** Its settings, for a connection made like it to another node. */
  readonly options?: object;
}

/** A Cluster client: commands routed by slot. */
export interface RedisClusterClient extends RedisClientBase {
  readonly isCluster: boolean;
  spublish(channel: string, message: string): Promise<unknown>;
  nodes(role: 'master' | 'all'): RedisConnection[];
  /** Slot → addresses (`host:port`, master first), as last learned. */
  readonly slots: readonly (readonly string[] | undefined)[];
  refreshSlotsCache(callback: (error?: Error | null) => void): void;
  cluster(subcommand: 'SLOTS'): Promise<[number, number, ...[string, number, ...unknown[]][]][]>;
  /** A new Cluster client like it (ioredis's signature: the startup nodes, then options). */
  duplicate(startupNodes: never[], options: { redisOptions?: object | undefined }): RedisClusterClient;
  /**
   * A connection of its own to one node, with `overrides`, connected only on `connect()`: an
   * adapter's own way; an ioredis Cluster's is a duplicate of one of its nodes (clients.ts).
   */
  connectNode?(host: string, port: number, overrides: NodeConnectionOverrides): RedisConnection;
  /** Its settings; `redisOptions` are those of each node connection. */
  readonly options: { readonly redisOptions?: object | undefined };
}

export type RedisClient = RedisConnection | RedisClusterClient;

/** Settings of a subscriber connection: it resubscribes itself, so the client must not. */
export interface SubscriberOverrides {
  autoResubscribe: false;
  enableOfflineQueue?: boolean;
}

/** Settings of a shard subscriber connection: it never reconnects on its own, nor retries. */
export interface NodeConnectionOverrides extends SubscriberOverrides {
  retryStrategy: () => null;
  maxRetriesPerRequest: 0;
}

/** Whether `value` has a boolean `isOpen` and a function for each of `methods`: how clients are told apart. */
export function hasShape(value: object, methods: readonly string[], isOpen = false): boolean {
  const fields = value as Record<string, unknown>;
  return (
    (!isOpen || typeof fields['isOpen'] === 'boolean') &&
    methods.every((name) => typeof fields[name] === 'function')
  );
}

export function isCluster(client: RedisClient): client is RedisClusterClient {
  return client.isCluster === true;
}

/**
 * `client` when Redis runs what is sent on it in the order sent, so a message published on it
 * after a write cannot overtake the write (RemoteTier.orderedConnection); undefined for a
 * Cluster (the channel's node is another connection) or a client that may reorder (`inOrder`).
 */
export function orderedConnectionOf(client: RedisClient): object | undefined {
  return isCluster(client) || client.inOrder === false ? undefined : client;
}

/**
 * An error the server replied with (as opposed to a lost connection or a timeout). Told by name,
 * not by class: every client library (and every copy of one) has its own class.
 */
export function isReplyError(error: unknown): error is Error {
  return error instanceof Error && (error.name === 'ReplyError' || error.name === 'ErrorReply');
}
