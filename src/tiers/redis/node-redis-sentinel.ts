/**
 * A node-redis Sentinel (`createSentinel`, redis 5 and 6) seen through the client interface of
 * client.ts, as node-redis.ts does for a single client. The Sentinel finds the master, follows
 * failovers and sends each command on one of its pool's master clients (`_execute`); this
 * adapter adds what the tier needs on top.
 *
 * What differs from a node-redis client, and is made good here:
 * - Commands sent in one tick go to the master together, on one master client, in order: as one
 *   `_execute` call. (redis 5's Sentinel leases a pool client per command, and commands of one
 *   tick after the first wait for the lease one by one, each a round trip, where a later command
 *   may overtake them; with `masterPoolSize` over 1 they may even land on other connections,
 *   where a WAIT would vouch for nothing the tier wrote.) A command the master refused with
 *   READONLY, or lost with its connection, is sent again to the master the Sentinel finds next,
 *   as the Sentinel does itself; one that was answered is never sent twice.
 * - `status` is 'ready' while the Sentinel has a connected master client: while it has none (the
 *   master died, a failover is under way) the tier fails calls at once instead of queueing them.
 * - A subscriber cannot share the Sentinel's pub/sub connection and still tell the bus when its
 *   subscription was lost. `duplicate()` makes a connection of the tier's own: a copy of a master
 *   client of the Sentinel, made again on the new master after every failover it reports.
 */
import { hasShape, type Listener, type RedisArg, type RedisConnection } from './client.js';
import {
  BUFFERS,
  named,
  NodeRedisCommands,
  NodeRedisConnection,
  STRINGS,
  toArgs,
  type NodeRedisClient,
} from './node-redis.js';

/** What the adapter uses of a node-redis Sentinel (structural: the package is an optional peer). */
export interface NodeRedisSentinel {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  readonly clientSideCache?: unknown;
  /** Runs `fn` on a master client of the Sentinel's pool (after it found the master). */
  _execute<T>(isReadonly: boolean | undefined, fn: (client: NodeRedisClient) => Promise<T>): Promise<T>;
  /** The master's address while one of its clients is connected, else undefined. */
  getMasterNode(): { readonly host: string; readonly port: number } | undefined;
  close(): Promise<void>;
  destroy(): Promise<void> | void;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
}

/** Whether `value` has the shape of a node-redis Sentinel (`createSentinel`, v5 or v6). */
export function isNodeRedisSentinel(value: object): value is NodeRedisSentinel {
  return hasShape(value, ['_execute', 'getMasterNode', 'acquire'], true);
}

/** Events of the adapter and the Sentinel events that raise them (redis 6 has all; 5 only 'error'). */
const SOURCES: Readonly<Record<string, readonly string[]>> = {
  ready: ['ready'],
  end: ['end'],
  error: ['error'],
  close: ['reconnecting', 'end'],
};

interface Queued {
  readonly args: (string | Buffer)[];
  readonly options: object;
  readonly resolve: (reply: unknown) => void;
  readonly reject: (error: unknown) => void;
  settled: boolean;
}

/** Whether the Sentinel would send a command that failed so on `client` again (what its `execute` retries). */
function resent(error: unknown, client: NodeRedisClient): boolean {
  return error instanceof Error && (error.message.startsWith('READONLY') || !client.isReady);
}

/** What the Sentinel's adapter and its subscriber connections have alike. */
abstract class SentinelCommands extends NodeRedisCommands {
  readonly isCluster = false;
  readonly options = {};

  ssubscribe(): Promise<unknown> {
    return Promise.reject(new Error('a Sentinel-managed master has no sharded pub/sub'));
  }

  /** A connection of its own to the master, that follows failovers (not connected yet). */
  duplicate(): RedisConnection {
    return new NodeRedisSentinelSubscriber(this.sentinel);
  }

  protected abstract readonly sentinel: NodeRedisSentinel;
}

/** A node-redis Sentinel as a {@link RedisConnection}. */
export class NodeRedisSentinelClient extends SentinelCommands implements RedisConnection {
  /** Each tick's commands are one lease of the pool, and a failed batch is sent again later. */
  readonly inOrder = false;
  protected readonly sentinel: NodeRedisSentinel;
  #everReady: boolean;
  /** Commands of this tick, sent together on the next one. */
  #batch: Queued[] | undefined;

  constructor(sentinel: NodeRedisSentinel) {
    super(sentinel, SOURCES);
    this.sentinel = sentinel;
    this.#everReady = sentinel.isReady;
  }

  get status(): string {
    const sentinel = this.sentinel;
    if (!sentinel.isOpen) return 'end';
    if (sentinel.isReady && sentinel.getMasterNode() !== undefined) {
      this.#everReady = true;
      return 'ready';
    }
    return this.#everReady ? 'reconnecting' : 'connecting';
  }

  send(command: string, args: readonly RedisArg[], buffers = false): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#batch === undefined) {
        this.#batch = [];
        process.nextTick(() => this.#flush());
      }
      const options = buffers ? BUFFERS : STRINGS;
      this.#batch.push({ args: toArgs(command, args), options, resolve, reject, settled: false });
    }).catch(named);
  }

  /** Sends the tick's commands on one master client; those the Sentinel would resend go again. */
  #flush(): void {
    const batch = this.#batch!;
    this.#batch = undefined;
    this.sentinel
      ._execute(false, async (client) => {
        const sending = batch.filter((queued) => !queued.settled);
        const failures = await Promise.all(
          sending.map((queued) =>
            client.sendCommand(queued.args, queued.options).then(
              (reply) => {
                queued.settled = true;
                queued.resolve(reply);
                return undefined;
              },
              (error: unknown) => error,
            ),
          ),
        );
        let again: Error | undefined;
        sending.forEach((queued, i) => {
          const error = failures[i];
          if (error === undefined) return;
          if (resent(error, client)) {
            again ??= error as Error;
            return;
          }
          queued.settled = true;
          queued.reject(error);
        });
        // The Sentinel finds the master again and calls back with its client, up to its
        // maxCommandRediscovers; then (or for anything else) it rejects, failing what is left.
        if (again !== undefined) throw again;
      })
      .catch((error: unknown) => {
        for (const queued of batch) {
          if (queued.settled) continue;
          queued.settled = true;
          queued.reject(error);
        }
      });
  }

  /** The tier subscribes on a connection of its own (duplicate()), never on the Sentinel. */
  subscribe(): Promise<unknown> {
    return Promise.reject(new Error('subscribe on a duplicate() of the node-redis Sentinel adapter'));
  }

  /** The Sentinel is given connected (clients.ts); there is nothing to connect. */
  async connect(): Promise<void> {}

  quit(): Promise<unknown> {
    return this.sentinel.close();
  }

  disconnect(): void {
    if (this.sentinel.isOpen) void Promise.resolve(this.sentinel.destroy()).catch(() => {});
  }
}

/** Retrying to find the master for a subscriber, after the Sentinel failed to. */
const REPOINT_RETRY_MS = 1_000;

/** A source of no events: the subscriber emits its own. */
const NO_EVENTS = { on: () => undefined, off: () => undefined };

/**
 * A connection of its own to the Sentinel's master, for the bus's subscriber: a copy of one of
 * the Sentinel's master clients (its settings, the master's address), made again on the new
 * master whenever the Sentinel reports a MASTER_CHANGE. Each copy's events are its own; the
 * bus sees a lost connection ('close') when one is replaced, and 'ready' once the next is up.
 */
class NodeRedisSentinelSubscriber extends SentinelCommands implements RedisConnection {
  protected readonly sentinel: NodeRedisSentinel;
  #current: NodeRedisConnection | undefined;
  #opened = false;
  #closed = false;
  /** Bumped on every repoint, so that a slower, older one gives up. */
  #generation = 0;
  #retry: NodeJS.Timeout | undefined;
  readonly #onTopology = (event: { type?: unknown } | undefined): void => {
    if (event?.type === 'MASTER_CHANGE') void this.#repoint();
  };

  constructor(sentinel: NodeRedisSentinel) {
    super(NO_EVENTS, {});
    this.sentinel = sentinel;
  }

  get status(): string {
    if (this.#closed) return 'end';
    if (!this.#opened) return 'wait';
    const status = this.#current?.status;
    if (status === 'ready') return 'ready';
    return status === undefined || status === 'wait' ? 'connecting' : 'reconnecting';
  }

  /** Drops the copy in use and makes one to the master the Sentinel knows now. */
  async #repoint(): Promise<void> {
    const generation = ++this.#generation;
    clearTimeout(this.#retry);
    this.#retire();
    let model: NodeRedisClient;
    try {
      // Waits while the Sentinel finds the master (after a failover it reports); an array, so
      // the client is not awaited as a promise.
      [model] = await this.sentinel._execute(false, (client) => Promise.resolve([client] as const));
    } catch {
      if (this.#closed || generation !== this.#generation) return;
      this.#retry = setTimeout(() => void this.#repoint(), REPOINT_RETRY_MS);
      this.#retry.unref();
      return;
    }
    if (this.#closed || generation !== this.#generation) return;
    const current = new NodeRedisConnection(model.duplicate()).unopened();
    const relay =
      (event: string): Listener =>
      (...args) => {
        if (this.#current === current) this.emit(event, ...(args as unknown[]));
      };
    // Every listener stays for the copy's life: node-redis raises an unheard 'error'.
    current.on('error', relay('error'));
    current.on('ready', relay('ready'));
    current.on('close', relay('close'));
    current.on('message', relay('message'));
    this.#current = current;
    await current.connect().catch(() => {});
  }

  /** Takes the copy in use out of service: a lost connection to the bus, if it was up. */
  #retire(): void {
    const current = this.#current;
    if (current === undefined) return;
    this.#current = undefined;
    const wasReady = current.status === 'ready';
    current.disconnect();
    if (wasReady && !this.#closed) this.emit('close');
  }

  send(command: string, args: readonly RedisArg[], buffers = false): Promise<unknown> {
    const current = this.#current;
    if (current === undefined) return Promise.reject(new Error('the subscriber is not connected'));
    return current.send(command, args, buffers);
  }

  subscribe(...channels: string[]): Promise<unknown> {
    const current = this.#current;
    if (current === undefined) return Promise.reject(new Error('the subscriber is not connected'));
    return current.subscribe(...channels);
  }

  dropConnection(): void {
    this.#current?.dropConnection();
  }

  async connect(): Promise<void> {
    if (this.#opened || this.#closed) return;
    this.#opened = true;
    this.sentinel.on('topology-change', this.#onTopology);
    await this.#repoint();
  }

  quit(): Promise<unknown> {
    this.disconnect();
    return Promise.resolve();
  }

  disconnect(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.sentinel.off('topology-change', this.#onTopology);
    const current = this.#current;
    this.#current = undefined;
    current?.disconnect();
    this.emit('end');
  }
}
