/**
 * A node-redis Cluster (`createCluster`, redis 5 and 6) seen through the client interface of
 * client.ts, as node-redis.ts does for a single client. Each command goes through the Cluster's
 * `sendCommand` with the key it is routed by, so node-redis follows MOVED and ASK itself; the
 * commands the tier groups into a "pipeline" per master are sent in one tick, so each master's
 * client writes them together, in order.
 *
 * What differs from an ioredis Cluster, and is made good here:
 * - There is no `status` nor 'ready' event: a Cluster is 'ready' while it is open, and 'ready'
 *   is emitted once `connect()` resolves.
 * - Its slot map is read from `slots` (a master and its replicas per slot). node-redis learns a
 *   new one only from a MOVED or ASK, which never comes when a master dies: commands for its
 *   slots wait on a client reconnecting to it for ever, though a replica took over. So every
 *   connection error of the Cluster or of a node (while the tier listens) rediscovers the slot
 *   map, at most every REDISCOVER_MS, as `refreshSlotsCache` does (through the Cluster's
 *   `_slots.rediscover`); each ends with a 'refresh' event, as ioredis's refresh does.
 * - The nodes (for SCAN) are its masters' own clients; a shard subscriber's connection is a
 *   duplicate of one of them, pointed at the node.
 */
import { within } from '../../loading/deadline.js';
import {
  hasShape,
  type Listener,
  type NodeConnectionOverrides,
  type RedisArg,
  type RedisClusterClient,
  type RedisConnection,
  type RedisPipeline,
} from './client.js';
import {
  BUFFERS,
  keyOf,
  named,
  NodeRedisCommands,
  NodeRedisConnection,
  NodeRedisPipeline,
  STRINGS,
  toArgs,
  type NodeRedisClient,
} from './node-redis.js';

interface NodeAddress {
  readonly host: string;
  readonly port: number;
  readonly client?: NodeRedisClient | undefined;
}

/** What the adapter uses of a node-redis Cluster (structural: the package is an optional peer). */
export interface NodeRedisCluster {
  readonly isOpen: boolean;
  sendCommand(
    firstKey: string | Buffer | undefined,
    isReadonly: boolean | undefined,
    args: (string | Buffer)[],
    options?: object,
  ): Promise<unknown>;
  readonly masters: readonly NodeAddress[];
  readonly replicas?: readonly NodeAddress[];
  readonly slots: readonly (
    { readonly master: NodeAddress; readonly replicas?: readonly NodeAddress[] } | undefined
  )[];
  duplicate(overrides?: object): NodeRedisCluster;
  /** Its slot map: `rediscover` asks `startWith`'s node (else the root nodes) for a new one. */
  readonly _slots?: { rediscover?(startWith: NodeRedisClient): Promise<void> } | undefined;
  connect(): Promise<unknown>;
  close?(): Promise<void>;
  destroy?(): void;
  disconnect(): Promise<void>;
  subscribe(channels: string[], listener: (message: string, channel: string) => void): Promise<void>;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
}

/** Whether `value` has the shape of a node-redis Cluster. */
export function isNodeRedisCluster(value: object): value is NodeRedisCluster {
  return (
    Array.isArray((value as { masters?: unknown }).masters) &&
    hasShape(value, ['sendCommand', 'nodeClient', 'duplicate'], true)
  );
}

const address = (node: NodeAddress): string => `${node.host}:${node.port}`;

/** Events of the adapter and the node-redis Cluster events that raise them. */
const SOURCES: Readonly<Record<string, readonly string[]>> = {
  // node-redis emits 'connect' once it has learned the slot map: only then can it route.
  ready: ['connect'],
  // A node's connection errors (its master died, say) are the Cluster's too: they name why a
  // command failed, and start a rediscovery.
  error: ['error', 'node-error'],
  end: ['disconnect'],
  close: ['disconnect'],
};

/** The shortest time between two rediscoveries of the slot map started by errors. */
const REDISCOVER_MS = 500;
/**
 * How long a master has to answer PING to be asked for the slot map, and how long a
 * rediscovery is waited for: a hung master (SIGSTOP, a partition) never answers, and node-redis
 * waits for it for ever.
 */
const REDISCOVER_TIMEOUT_MS = 2_000;

/** A node-redis Cluster as a {@link RedisClusterClient}. */
export class NodeRedisClusterClient extends NodeRedisCommands implements RedisClusterClient {
  readonly isCluster = true;
  readonly #cluster: NodeRedisCluster;
  /** One adapter per node client, so that a node keeps its identity across nodes() calls. */
  readonly #nodes = new WeakMap<NodeRedisClient, NodeRedisConnection>();
  #everOpen: boolean;
  #discovery: Promise<void> | undefined;
  /** The slot map rediscovery under way, one at a time. */
  #rediscovery: Promise<void> | undefined;
  #rediscoveredAt = -Infinity;
  #rediscoverTimer: NodeJS.Timeout | undefined;
  readonly #onMessage = (message: string, channel: string): void =>
    void this.emit('message', channel, message);

  constructor(cluster: NodeRedisCluster) {
    super(cluster, SOURCES);
    this.#cluster = cluster;
    this.#everOpen = cluster.isOpen;
  }

  get status(): string {
    const cluster = this.#cluster;
    if (cluster.isOpen) return cluster.masters.length === 0 ? 'connecting' : 'ready';
    return this.#everOpen ? 'end' : 'wait';
  }

  /**
   * Resolves once the slot map is known. node-redis cannot route a command before (it throws),
   * and it is open from the moment `connect()` is called: commands sent meanwhile wait for it,
   * bounded by the tier's timeout as any call is.
   */
  #discovered(): Promise<void> | undefined {
    const cluster = this.#cluster;
    if (!cluster.isOpen || cluster.masters.length > 0) return undefined;
    return (this.#discovery ??= new Promise<void>((resolve) => {
      const done = (): void => {
        cluster.off('connect', done);
        this.#discovery = undefined;
        resolve();
      };
      cluster.on('connect', done);
    }));
  }

  get options(): { readonly redisOptions?: object | undefined } {
    return {};
  }

  send(command: string, args: readonly RedisArg[], buffers = false, route?: RedisArg): Promise<unknown> {
    const discovered = this.#discovered();
    if (discovered !== undefined) return discovered.then(() => this.send(command, args, buffers, route));
    const key = route ?? keyOf(command, args);
    return this.#cluster
      .sendCommand(
        typeof key === 'number' ? String(key) : key,
        false,
        toArgs(command, args),
        buffers ? BUFFERS : STRINGS,
      )
      .catch(named);
  }

  spublish(channel: string, message: string): Promise<unknown> {
    return this.send('SPUBLISH', [channel, message]);
  }
  async subscribe(...channels: string[]): Promise<unknown> {
    await this.#discovered();
    return this.#cluster.subscribe(channels, this.#onMessage).catch(named);
  }

  override pipeline(): RedisPipeline {
    return new NodeRedisPipeline((command, args, buffers, route) => this.send(command, args, buffers, route));
  }

  /** Its masters' (or every node's) own clients, as far as they are connected. */
  nodes(role: 'master' | 'all'): RedisConnection[] {
    const cluster = this.#cluster;
    const nodes = role === 'master' ? cluster.masters : [...cluster.masters, ...(cluster.replicas ?? [])];
    const connections: RedisConnection[] = [];
    for (const node of nodes) {
      const client = node.client;
      if (client === undefined) continue;
      let connection = this.#nodes.get(client);
      if (connection === undefined) this.#nodes.set(client, (connection = new NodeRedisConnection(client)));
      connections.push(connection);
    }
    return connections;
  }

  /** Slot → `host:port` of its master, then its replicas; read on access, never copied. */
  get slots(): readonly (readonly string[] | undefined)[] {
    const shards = this.#cluster.slots;
    return new Proxy([] as (readonly string[] | undefined)[], {
      get(target, property) {
        if (typeof property !== 'string' || !/^\d+$/.test(property))
          return Reflect.get(target, property) as unknown;
        const shard = shards[Number(property)];
        return shard === undefined ? undefined : [shard.master, ...(shard.replicas ?? [])].map(address);
      },
    });
  }

  refreshSlotsCache(callback: (error?: Error | null) => void): void {
    void this.#rediscover().then(() => callback(null));
  }

  protected override heard(event: string): void {
    if (event === 'error') this.#rediscoverSoon();
  }

  /** A rediscovery after a connection error, REDISCOVER_MS after the last one at the soonest. */
  #rediscoverSoon(): void {
    if (this.#rediscovery !== undefined || this.#rediscoverTimer !== undefined) return;
    const wait = Math.max(0, this.#rediscoveredAt + REDISCOVER_MS - performance.now());
    this.#rediscoverTimer = setTimeout(() => {
      this.#rediscoverTimer = undefined;
      void this.#rediscover();
    }, wait);
    this.#rediscoverTimer.unref();
  }

  /**
   * Asks the first master to answer a PING (else, when none is connected, one of the root
   * nodes) for the slot map, and emits 'refresh' once the Cluster routes by it (or gave up).
   * Failures are the Cluster's 'error' events.
   */
  #rediscover(): Promise<void> {
    if (this.#rediscovery !== undefined) return this.#rediscovery;
    // Cleared in a callback, which runs after the assignment below even when the rediscovery
    // ends without waiting for anything (a Cluster that knows no master yet).
    const run = this.#rediscoverNow().finally(() => {
      if (this.#rediscovery === run) this.#rediscovery = undefined;
      this.#rediscoveredAt = performance.now();
      this.emit('refresh');
    });
    this.#rediscovery = run;
    return run;
  }

  async #rediscoverNow(): Promise<void> {
    try {
      const cluster = this.#cluster;
      const slots = cluster._slots;
      if (!cluster.isOpen || slots?.rediscover === undefined) return;
      const clients = cluster.masters.flatMap((node) => (node.client === undefined ? [] : [node.client]));
      const connected = clients.filter((client) => client.isReady);
      // A master that died is not connected: its client (node-redis then asks the root nodes).
      const start =
        connected.length === 0
          ? clients[0]
          : await within(
              Promise.any(connected.map((client) => client.sendCommand(['PING']).then(() => client))),
              REDISCOVER_TIMEOUT_MS,
              'no master answers',
            );
      if (start !== undefined) await within(slots.rediscover(start), REDISCOVER_TIMEOUT_MS, 'rediscovery');
    } catch {
      // Reported as the Cluster's 'error' (it tried every root node), or nobody answers yet.
    }
  }

  cluster(subcommand: 'SLOTS'): Promise<[number, number, ...[string, number, ...unknown[]][]][]> {
    return this.send('CLUSTER', [subcommand]) as Promise<
      [number, number, ...[string, number, ...unknown[]][]][]
    >;
  }

  /** A new Cluster like it (node-redis's own duplicate), not connected yet. */
  duplicate(): RedisClusterClient {
    const copy = new NodeRedisClusterClient(this.#cluster.duplicate());
    copy.#everOpen = false;
    return copy;
  }

  /** A client of its own to one node, a duplicate of a master's client pointed there. */
  connectNode(host: string, port: number, overrides: NodeConnectionOverrides): RedisConnection {
    void overrides; // node-redis resubscribes by itself; the duplicate never reconnects (below).
    const model = this.#cluster.masters.find((node) => node.client !== undefined)?.client;
    if (model === undefined) throw new Error('the node-redis Cluster has no connected master yet');
    const socket = (model.options as { socket?: object } | undefined)?.socket ?? {};
    const connection = new NodeRedisConnection(
      model.duplicate({ socket: { ...socket, host, port, reconnectStrategy: false } }),
    );
    return connection.unopened();
  }

  async connect(): Promise<void> {
    this.#everOpen = true;
    await this.#cluster.connect();
  }

  quit(): Promise<unknown> {
    const cluster = this.#cluster;
    return cluster.close !== undefined ? cluster.close() : cluster.disconnect();
  }

  disconnect(): void {
    const cluster = this.#cluster;
    if (!cluster.isOpen) return;
    if (cluster.destroy !== undefined) cluster.destroy();
    else void cluster.disconnect().catch(() => {});
  }
}
