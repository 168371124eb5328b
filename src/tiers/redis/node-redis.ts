/**
 * node-redis (the `redis` package, v5) seen through the client interface of client.ts. Every
 * command goes through the client's `sendCommand`, so the adapter needs nothing of node-redis's
 * typed command API (which changes between majors) and holds no copy of the package: commands
 * sent in one tick share one write, which is what an ioredis pipeline is for.
 *
 * What differs, and is made good here:
 * - Replies come as strings unless a command asks for Buffers (a type mapping per command).
 * - A server's error reply is an `ErrorReply` (name 'Error'): it is named 'ReplyError' here, the
 *   name the bus tells replies from lost connections by.
 * - There is no `status`: it is read off `isOpen`/`isReady`. A lost connection shows as
 *   'reconnecting' (the 'close' event of ioredis), a closed client as 'end'.
 * - node-redis resubscribes a subscriber before it reports 'ready' again, so a SUBSCRIBE the bus
 *   sends on 'ready' finds the channels subscribed and resolves at once: it is still the moment
 *   the subscription is known to be back.
 */
import { EventEmitter } from 'node:events';
import {
  hasShape,
  type Listener,
  type RedisArg,
  type RedisConnection,
  type RedisPipeline,
} from './client.js';

/** What the adapter uses of a node-redis client (structural: the package is an optional peer). */
export interface NodeRedisClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  sendCommand(args: (string | Buffer)[], options?: object): Promise<unknown>;
  duplicate(overrides?: object): NodeRedisClient;
  connect(): Promise<unknown>;
  destroy?(): void;
  disconnect(): Promise<void>;
  close?(): Promise<void>;
  quit?(): Promise<unknown>;
  subscribe(channels: string[], listener: (message: string, channel: string) => void): Promise<void>;
  sSubscribe?(
    channels: string[],
    listener: (message: Buffer, channel: Buffer) => void,
    bufferMode: true,
  ): Promise<void>;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  readonly options?: { readonly clientSideCache?: unknown } | undefined;
}

/** Whether `value` has the shape of a node-redis client (`createClient`, v5 or v6). */
export function isNodeRedisClient(value: object): value is NodeRedisClient {
  return (
    typeof (value as { isReady?: unknown }).isReady === 'boolean' &&
    hasShape(value, ['sendCommand', 'duplicate', 'connect'], true)
  );
}

/**
 * Why a node-redis client, Cluster or Sentinel (`kind`) cannot serve a tier, or undefined. One
 * never connected (or closed) would reject every command: it is refused at construction rather
 * than left to degrade the tier. One with client-side caching keeps a cache beside the tier's.
 */
export function nodeRedisProblem(
  kind: 'client' | 'Cluster' | 'Sentinel',
  open: boolean,
  clientSideCache: unknown,
): string | undefined {
  if (!open) {
    return `the node-redis ${kind} is not open: await ${kind.toLowerCase()}.connect() before giving it to the tier (a closed one cannot be used)`;
  }
  if (clientSideCache !== undefined) {
    return `a node-redis ${kind} with clientSideCache keeps a cache of its own beside the tier: give the tier one without`;
  }
  return undefined;
}

export const STRINGS = Object.freeze({ typeMapping: {} });
// 36 is RESP's bulk string ('$'): mapped to Buffer, as ioredis's *Buffer commands reply.
export const BUFFERS = Object.freeze({ typeMapping: { 36: Buffer } });

/** node-redis's error classes of a server's reply (their `name` is the plain 'Error'). */
const REPLY_CLASSES = new Set(['ErrorReply', 'SimpleError', 'BlobError', 'MultiErrorReply']);

export function named(error: unknown): never {
  if (error instanceof Error && REPLY_CLASSES.has(error.constructor.name)) {
    Object.defineProperty(error, 'name', { value: 'ReplyError', configurable: true, writable: true });
  }
  throw error;
}

export function toArgs(command: string, args: readonly RedisArg[]): (string | Buffer)[] {
  const out: (string | Buffer)[] = [command];
  for (const arg of args) out.push(typeof arg === 'number' ? String(arg) : arg);
  return out;
}

/** Events of the adapter and the node-redis events that raise them. */
const SOURCES: Readonly<Record<string, readonly string[]>> = {
  ready: ['ready'],
  end: ['end'],
  error: ['error'],
  connect: ['connect'],
  // ioredis's 'close': the connection is gone (node-redis reconnects, or was closed).
  close: ['reconnecting', 'end'],
  // ioredis 6's 'moved': Redis unsubscribed the connection from a shard channel whose slot moved.
  moved: ['sharded-channel-moved'],
};

/** What an adapter forwards events from: a node-redis client or Cluster. */
interface EventSource {
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
}

/**
 * What both node-redis adapters do alike: forward the events tiercache listens for from the
 * client or Cluster they wrap (while anyone listens, and only then, so a caller's client is left
 * as it was found), and send the commands, each through the adapter's own `send` (a client's
 * sendCommand, or a Cluster's, routed by the command's key).
 */
export abstract class NodeRedisCommands extends EventEmitter {
  readonly #from: EventSource;
  /** Per adapter event, the events of the wrapped client it stands for. */
  readonly #sources: Readonly<Record<string, readonly string[]>>;
  /** Forwarders installed on the wrapped client, per adapter event. */
  readonly #forwarders = new Map<string, Listener>();

  constructor(from: EventSource, sources: Readonly<Record<string, readonly string[]>>) {
    super();
    this.#from = from;
    this.#sources = sources;
    this.on('newListener', (event: string) => {
      if (this.listenerCount(event) === 0) this.#forward(event);
    });
    this.on('removeListener', (event: string) => {
      if (this.listenerCount(event) === 0) this.#unforward(event);
    });
  }

  abstract send(command: string, args: readonly RedisArg[], buffers?: boolean): Promise<unknown>;

  scan(
    cursor: string,
    match: 'MATCH',
    pattern: string,
    count: 'COUNT',
    n: number,
  ): Promise<[string, string[]]> {
    return this.send('SCAN', [cursor, match, pattern, count, n]) as Promise<[string, string[]]>;
  }

  pipeline(): RedisPipeline {
    return new NodeRedisPipeline((command, args, buffers) => this.send(command, args, buffers));
  }

  /** Called as each forwarded event passes, before it is emitted. */
  protected heard(_event: string): void {}

  #forward(event: string): void {
    const sources = this.#sources[event];
    if (sources === undefined || this.#forwarders.has(event)) return;
    const forwarder: Listener = (...args) => {
      this.heard(event);
      this.emit(event, ...(args as unknown[]));
    };
    this.#forwarders.set(event, forwarder);
    for (const source of sources) this.#from.on(source, forwarder);
  }

  #unforward(event: string): void {
    const forwarder = this.#forwarders.get(event);
    if (forwarder === undefined) return;
    this.#forwarders.delete(event);
    for (const source of this.#sources[event]!) this.#from.off(source, forwarder);
  }

  get(key: string): Promise<string | null> {
    return this.send('GET', [key]) as Promise<string | null>;
  }
  getBuffer(key: string): Promise<Buffer | null> {
    return this.send('GET', [key], true) as Promise<Buffer | null>;
  }
  mget(keys: string[]): Promise<(string | null)[]> {
    return this.send('MGET', keys) as Promise<(string | null)[]>;
  }
  mgetBuffer(keys: string[]): Promise<(Buffer | null)[]> {
    return this.send('MGET', keys, true) as Promise<(Buffer | null)[]>;
  }
  set(key: string, value: RedisArg, ...options: RedisArg[]): Promise<string | null> {
    return this.send('SET', [key, value, ...options]) as Promise<string | null>;
  }
  incr(key: string): Promise<number> {
    return this.send('INCR', [key]) as Promise<number>;
  }
  unlink(...keys: string[]): Promise<number> {
    return this.send('UNLINK', keys) as Promise<number>;
  }
  evalsha(sha: string, numKeys: number, ...args: RedisArg[]): Promise<unknown> {
    return this.send('EVALSHA', [sha, numKeys, ...args]);
  }
  eval(script: string, numKeys: number, ...args: RedisArg[]): Promise<unknown> {
    return this.send('EVAL', [script, numKeys, ...args]);
  }
  evalBuffer(script: string, numKeys: number, ...args: RedisArg[]): Promise<unknown> {
    return this.send('EVAL', [script, numKeys, ...args], true);
  }
  call(command: string, args: RedisArg[]): Promise<unknown> {
    return this.send(command, args);
  }
  callBuffer(command: string, args: RedisArg[]): Promise<unknown> {
    return this.send(command, args, true);
  }
  publish(channel: string, message: string): Promise<unknown> {
    return this.send('PUBLISH', [channel, message]);
  }
}

/** A node-redis client as a {@link RedisConnection}. */
export class NodeRedisConnection extends NodeRedisCommands implements RedisConnection {
  readonly isCluster = false;
  readonly #client: NodeRedisClient;
  #everOpen: boolean;
  #everReady: boolean;
  readonly #onMessage = (message: string, channel: string): void =>
    void this.emit('message', channel, message);
  readonly #onShardMessage = (message: Buffer, channel: Buffer): void =>
    void this.emit('smessageBuffer', channel, message);

  constructor(client: NodeRedisClient) {
    super(client, SOURCES);
    this.#client = client;
    this.#everOpen = client.isOpen;
    this.#everReady = client.isReady;
  }

  protected override heard(event: string): void {
    if (event === 'ready') this.#everReady = true;
  }

  get status(): string {
    const client = this.#client;
    if (client.isReady) {
      this.#everReady = true;
      return 'ready';
    }
    if (client.isOpen) return this.#everReady ? 'reconnecting' : 'connecting';
    return this.#everOpen ? 'end' : 'wait';
  }

  /** No socket to show (nor byte counts): dropping the connection is a method of its own. */
  dropConnection(): void {
    const client = this.#client;
    if (!client.isOpen) return;
    if (client.destroy !== undefined) client.destroy();
    else void client.disconnect().catch(() => {});
    client.connect().catch(() => {});
  }

  send(command: string, args: readonly RedisArg[], buffers = false): Promise<unknown> {
    return this.#client.sendCommand(toArgs(command, args), buffers ? BUFFERS : STRINGS).catch(named);
  }

  subscribe(...channels: string[]): Promise<unknown> {
    return this.#client.subscribe(channels, this.#onMessage).catch(named);
  }

  ssubscribe(...channels: string[]): Promise<unknown> {
    const client = this.#client;
    if (client.sSubscribe === undefined)
      return Promise.reject(new Error('this node-redis client has no sSubscribe'));
    return client.sSubscribe(channels, this.#onShardMessage, true).catch(named);
  }

  /** A new client like this one (node-redis's own duplicate), not connected yet. */
  duplicate(): RedisConnection {
    return new NodeRedisConnection(this.#client.duplicate()).unopened();
  }

  /** This adapter of a client made but not connected yet (its status is 'wait' until connect()). */
  unopened(): this {
    this.#everOpen = false;
    this.#everReady = false;
    return this;
  }

  get options(): object {
    return this.#client.options ?? {};
  }

  async connect(): Promise<void> {
    this.#everOpen = true;
    await this.#client.connect();
  }

  quit(): Promise<unknown> {
    const client = this.#client;
    return client.close !== undefined ? client.close() : (client.quit?.() ?? client.disconnect());
  }

  disconnect(): void {
    const client = this.#client;
    if (!client.isOpen) return;
    if (client.isReady) {
      destroy(client);
      return;
    }
    // node-redis does not check, once a socket it is making is made, whether it was destroyed
    // meanwhile: it connects and keeps it, open for ever (seen when a cache closed right after it
    // was made, its bus subscriber still connecting). So a connect under way is let end first,
    // connected or failed (between attempts no socket is being made), and destroyed then.
    const settle = (): void => {
      client.off('ready', settle);
      client.off('error', settle);
      if (client.isOpen) destroy(client);
    };
    client.on('ready', settle);
    client.on('error', settle);
  }
}

function destroy(client: NodeRedisClient): void {
  if (client.destroy !== undefined) client.destroy();
  else void client.disconnect().catch(() => {});
}

/**
 * Sends one command: `buffers` for bulk replies as Buffers; `route`, on a Cluster, the key whose
 * master a keyless command goes to.
 */
export type Send = (
  command: string,
  args: readonly RedisArg[],
  buffers: boolean,
  route?: RedisArg,
) => Promise<unknown>;

/**
 * Commands queued, then sent in one tick (one write per connection, in order, as a pipeline
 * would be); each answers `[error, reply]`, as ioredis's `exec` does.
 */
export class NodeRedisPipeline implements RedisPipeline {
  readonly #send: Send;
  readonly #commands: [command: string, args: RedisArg[], buffers: boolean][] = [];

  constructor(send: Send) {
    this.#send = send;
  }

  get length(): number {
    return this.#commands.length;
  }

  #queue(command: string, args: RedisArg[], buffers = false): RedisPipeline {
    this.#commands.push([command, args, buffers]);
    return this;
  }

  get(key: string): RedisPipeline {
    return this.#queue('GET', [key]);
  }
  getBuffer(key: string): RedisPipeline {
    return this.#queue('GET', [key], true);
  }
  mget(keys: string[]): RedisPipeline {
    return this.#queue('MGET', keys);
  }
  mgetBuffer(keys: string[]): RedisPipeline {
    return this.#queue('MGET', keys, true);
  }
  set(key: string, value: RedisArg, ...options: RedisArg[]): RedisPipeline {
    return this.#queue('SET', [key, value, ...options]);
  }
  incr(key: string): RedisPipeline {
    return this.#queue('INCR', [key]);
  }
  unlink(...keys: string[]): RedisPipeline {
    return this.#queue('UNLINK', keys);
  }
  evalsha(sha: string, numKeys: number, ...args: RedisArg[]): RedisPipeline {
    return this.#queue('EVALSHA', [sha, numKeys, ...args]);
  }
  eval(script: string, numKeys: number, ...args: RedisArg[]): RedisPipeline {
    return this.#queue('EVAL', [script, numKeys, ...args]);
  }
  wait(replicas: number, timeout: number): RedisPipeline {
    return this.#queue('WAIT', [replicas, timeout]);
  }

  exec(): Promise<[Error | null, unknown][]> {
    // WAIT names no key: on a Cluster it goes where the command before it went (see
    // node-redis-cluster.ts), so it is sent with that command's key as its route.
    let route: RedisArg | undefined;
    return Promise.all(
      this.#commands.map(([command, args, buffers]) => {
        const sent = this.#send(command, args, buffers, command === 'WAIT' ? route : undefined);
        route = keyOf(command, args) ?? route;
        return sent.then(
          (reply): [Error | null, unknown] => [null, reply],
          (error: unknown): [Error | null, unknown] => [
            error instanceof Error ? error : new Error(String(error)),
            undefined,
          ],
        );
      }),
    );
  }
}

/** The key a command is routed by on a Cluster (undefined: any node). */
export function keyOf(command: string, args: readonly RedisArg[]): RedisArg | undefined {
  switch (command) {
    case 'EVAL':
    case 'EVALSHA':
      return Number(args[1]) > 0 ? args[2] : undefined;
    case 'PUBLISH':
    case 'WAIT':
    case 'CLUSTER':
      return undefined;
    default:
      return args[0];
  }
}
