import { randomInt } from 'node:crypto';
import { isReplyError, type RedisClusterClient, type RedisConnection } from '../tiers/redis/client.js';
import { nodeConnection, onShardChannelsMoved } from '../tiers/redis/clients.js';
import { BusError } from '../errors.js';
import { keySlot } from '../internal/key-slot.js';
import { guardSocketErrors } from '../internal/socket-errors.js';
import { watchConnectionErrors, type ConnectionErrors } from '../tiers/connection-errors.js';
import { within } from '../loading/deadline.js';
import { RedisBusLog, type BusLog } from './replay-log.js';
import { heartbeatChannel, type BusTransport } from './transport.js';

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;
/**
 * After an SSUBSCRIBE the server refused (an ACL without the channel), the next attempt waits
 * 1 s, doubling to 30 s: the ACL may be fixed while the process runs, but asking every 2 s
 * would report the same refusal for ever.
 */
const REFUSED_RETRY_MIN_MS = 1_000;
const REFUSED_RETRY_MAX_MS = 30_000;
/** A subscribe attempt that takes longer (a node that accepts but never answers) starts over. */
const ATTEMPT_TIMEOUT_MS = 5_000;
/**
 * A SPUBLISH unanswered for this long suggests its master hangs (SIGSTOP, a partition): the
 * client's slot map is refreshed then, and again every STALL_MS while any such publish is
 * outstanding, so both the client and the subscriptions follow a failover.
 */
const STALL_MS = 1_000;

/** `shards` shard channels named from `base`, each with its own hash tag, so their slots spread over the masters. */
export function shardChannels(base: string, shards: number): string[] {
  return Array.from({ length: shards }, (_, i) => `${base}:{${i}}`);
}

/**
 * Sharded pub/sub on a Redis Cluster (SPUBLISH/SSUBSCRIBE, Redis 7). Classic PUBLISH on a
 * cluster is broadcast to every node over the cluster bus, so its cost grows with the cluster;
 * a shard message only travels within the shard (master and replicas) that owns its channel.
 *
 * The bus uses a fixed set of shard channels whose hash tags spread them over the slots. Each
 * publisher sends its messages on one of them, chosen at random, so its sequence numbers arrive
 * in order and the bus's gap detection still works, and moves to the next one only when a
 * publish fails (see publishFailed); every subscriber listens on all of them, with one
 * connection per master that owns any.
 *
 * The subscriber connections are managed here rather than by ioredis' cluster subscriber, so
 * that the bus learns exactly when it is subscribed everywhere: a lost connection (a master
 * died, a failover moved the slot) reports `onState(false)` at once, and the subscription is
 * rebuilt from a fresh CLUSTER SLOTS — on the promoted replica after a failover — before
 * `onState(true)` tells the bus to treat the outage as a gap.
 *
 * A resharding that moves a channel's slot closes nothing either: Redis unsubscribes the
 * connection from the channel, which rebuilds the subscriptions the same way.
 *
 * A master that hangs instead of dying (SIGSTOP, a partition) closes nothing: its connections
 * stay open, and ioredis goes on routing commands to it until something refreshes its slot map,
 * which nothing does on its own (no MOVED ever comes back). So a SPUBLISH left unanswered for
 * STALL_MS makes the transport refresh the client's slot map, again every STALL_MS while one
 * is outstanding; and every refresh (ours, or ioredis' own after a MOVED) is compared with the
 * masters the subscriptions are on. Once the slot map names another master for a channel, the
 * subscriptions are rebuilt there, and the client drops the hung node, so the commands stuck on
 * it are sent again to the promoted replica (ioredis' retry of commands on a closed connection).
 */
export class ShardedPubSubTransport implements BusTransport {
  readonly channels: readonly string[];
  /** Which of `channels` this instance publishes on (see publishFailed). */
  #publishing: number;
  /** One private heartbeat channel per shard channel, in its slot (so on its master and connection). */
  readonly heartbeatChannels: readonly string[];
  readonly log: BusLog | undefined;
  readonly #log: RedisBusLog | undefined;
  readonly #client: RedisClusterClient;
  /** Every channel subscribed to, shard and heartbeat ones. */
  readonly #listened: Set<string>;
  #connections: RedisConnection[] = [];
  #onMessage: ((payload: string | Buffer, channel?: string) => void) | undefined;
  #onState: ((subscribed: boolean) => void) | undefined;
  #onError: ((error: BusError) => void) | undefined;
  /** Refused attempts in a row, for the refusal back-off. */
  #refusals = 0;
  /** Bumped on every teardown, so events of an abandoned attempt are ignored. */
  #generation = 0;
  #subscribed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_MIN_MS;
  #closed = false;
  readonly #connection: ConnectionErrors;
  #wasReady: boolean;
  /** Master address → channels, of the current generation's subscriptions (attempted or in place). */
  #owners: Map<string, string[]> | undefined;
  /** SPUBLISHes outstanding for longer than STALL_MS. */
  #stalled = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  #refreshing = false;
  readonly #onRefresh = (): void => this.#checkOwners();

  /** `logLength`: entries each shard channel's replay log keeps (approximately), or false for none. */
  constructor(client: RedisClusterClient, base: string, shards: number, logLength: number | false = false) {
    this.#client = client;
    this.#connection = watchConnectionErrors(client);
    this.channels = shardChannels(base, shards);
    this.#publishing = randomInt(shards);
    this.heartbeatChannels = this.channels.map(heartbeatChannel);
    this.#listened = new Set([...this.channels, ...this.heartbeatChannels]);
    this.log = this.#log = logLength === false ? undefined : new RedisBusLog(client, logLength, true);
    this.#wasReady = client.status === 'ready';
    if (!this.#wasReady) client.once('ready', () => (this.#wasReady = true));
    client.on('refresh', this.#onRefresh);
  }

  /** The channel this instance publishes on. */
  get publishChannel(): string {
    return this.channels[this.#publishing]!;
  }

  /**
   * The last publish did not go through in time: the next goes out on the next channel, whose
   * slot most likely another master serves. The master of this one may be dying or failing
   * over, and ioredis holds the commands sent for its slots until the cluster has settled
   * (seconds), while every other instance's L1 keeps what the writes replaced. Switching costs
   * nothing in correctness: invalidations commute (deletes are idempotent, tag times and
   * namespace versions only rise), each channel's log orders the messages it carries, and a
   * late message heard after a newer one of the same publisher on another channel only makes
   * a receiver without the log drop its L1.
   */
  publishFailed(): void {
    this.#publishing = (this.#publishing + 1) % this.channels.length;
  }

  publish(message: string): Promise<void> {
    const log = this.log;
    if (log === undefined) return this.publishTo(this.publishChannel, message);
    return this.#sent(() => log.publish(this.publishChannel, message));
  }

  lastError(): Error | undefined {
    return this.#connection.last();
  }

  publishTo(channel: string, message: string): Promise<void> {
    return this.#sent(() => this.#client.spublish(channel, message));
  }

  /** Sends what `send` sends, refreshing the slot map while it stays unanswered (see above). */
  async #sent(send: () => Promise<unknown>): Promise<void> {
    const client = this.#client;
    if (this.#wasReady && client.status !== 'ready') throw new Error(`the Redis client is ${client.status}`);
    const sent = send();
    let stalled = false;
    const timer = setTimeout(() => {
      stalled = true;
      this.#stalled++;
      this.#refresh();
    }, STALL_MS);
    timer.unref();
    try {
      await sent;
    } finally {
      clearTimeout(timer);
      if (stalled) this.#stalled--;
    }
  }

  subscribe(
    onMessage: (payload: string | Buffer, channel?: string) => void,
    onState: (subscribed: boolean) => void,
    onError?: (error: BusError) => void,
  ): void {
    this.#onMessage = onMessage;
    this.#onState = onState;
    this.#onError = onError;
    if (this.#log !== undefined) this.#log.onUnlogged = onError;
    void this.#attempt();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    this.#client.off('refresh', this.#onRefresh);
    this.#connection.dispose();
    this.#teardown();
    await Promise.resolve();
  }

  async #attempt(): Promise<void> {
    if (this.#closed) return;
    const generation = ++this.#generation;
    try {
      await within(this.#subscribeAll(generation), ATTEMPT_TIMEOUT_MS, 'shard subscribe timed out');
    } catch (error) {
      // A lost connection or a failover needs no report: the bus tells of the disconnect. A
      // refusal would leave the bus never subscribed, L1 lives capped and nobody told.
      if (error instanceof BusError && generation === this.#generation && !this.#closed) {
        this.#onError?.(error);
        this.#lost(generation, Math.min(REFUSED_RETRY_MAX_MS, REFUSED_RETRY_MIN_MS * 2 ** this.#refusals++));
        return;
      }
      this.#lost(generation);
      return;
    }
    if (generation !== this.#generation || this.#closed) return;
    this.#retryDelay = RETRY_MIN_MS;
    this.#refusals = 0;
    this.#subscribed = true;
    this.#onState?.(true);
  }

  async #subscribeAll(generation: number): Promise<void> {
    const owners = await this.#slotOwners();
    if (generation !== this.#generation) return;
    this.#owners = owners;
    const connections = [...owners].map(([address, channels]) => {
      const [host, port] = splitAddress(address);
      const connection = nodeConnection(this.#client, host, port, {
        autoResubscribe: false,
        enableOfflineQueue: true,
        // One lost connection rebuilds the whole subscription from a fresh slot map, so a
        // connection never reconnects on its own (it could reach a demoted master).
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      connection.on('error', () => {
        // Reported through 'close' → the bus's 'bus:disconnect' event.
      });
      guardSocketErrors(connection);
      connection.on('close', () => this.#lost(generation));
      // A resharding moved a channel's slot: its messages now go to a master this connection is
      // not on. Nothing closes, and only the next SPUBLISH of this instance's own (a heartbeat,
      // up to a `heartbeat` interval later) would have been redirected and shown it.
      onShardChannelsMoved(connection, () => this.#lost(generation));
      connection.on('smessageBuffer', (channelName: Buffer, payload: Buffer) => {
        const channel = channelName.toString();
        if (generation === this.#generation && this.#listened.has(channel))
          this.#onMessage?.(payload, channel);
      });
      return { connection, channels };
    });
    this.#connections = connections.map((c) => c.connection);
    await Promise.all(
      connections.map(async ({ connection, channels }) => {
        await connection.connect();
        // One SSUBSCRIBE per shard channel and its heartbeat channel (one slot per call).
        await Promise.all(
          channels.map((channel) =>
            connection
              .ssubscribe(channel, this.heartbeatChannels[this.channels.indexOf(channel)]!)
              .catch((error: unknown) => {
                throw isRefusal(error) ? new BusError('subscribe', error, channel) : error;
              }),
          ),
        );
      }),
    );
  }

  /**
   * Master address → the bus channels whose slots it serves, from a slot map asked for now: the
   * client's own, refreshed (it asks the nodes in turn, each for at most slotsRefreshTimeout, so
   * a hung node costs a second, not the attempt), or CLUSTER SLOTS before the client is ready.
   */
  async #slotOwners(): Promise<Map<string, string[]>> {
    const client = this.#client;
    if (client.status === 'ready') {
      await new Promise<void>((resolve, reject) =>
        client.refreshSlotsCache((error) => (error ? reject(error) : resolve())),
      );
      const owners = this.#mappedOwners();
      if (owners !== undefined) return owners;
    }
    const ranges = await client.cluster('SLOTS');
    const owners = new Map<string, string[]>();
    for (const channel of this.channels) {
      const slot = keySlot(channel);
      const range = ranges.find(([start, end]) => slot >= start && slot <= end);
      const master = range?.[2];
      if (master === undefined) throw new Error(`slot ${slot} is not served`);
      const address = `${master[0]}:${master[1]}`;
      owners.set(address, [...(owners.get(address) ?? []), channel]);
    }
    return owners;
  }

  /** Master address → channels per the client's slot map; undefined if a channel's slot has no master in it. */
  #mappedOwners(): Map<string, string[]> | undefined {
    const owners = new Map<string, string[]>();
    for (const channel of this.channels) {
      const address = this.#client.slots[keySlot(channel)]?.[0];
      if (address === undefined) return undefined;
      owners.set(address, [...(owners.get(address) ?? []), channel]);
    }
    return owners;
  }

  /** After a slot map refresh: rebuilds the subscriptions if a channel now lives on another master. */
  #checkOwners(): void {
    const current = this.#owners;
    if (this.#closed || current === undefined) return;
    const mapped = this.#mappedOwners();
    if (mapped === undefined || sameOwners(current, mapped)) return;
    this.#lost(this.#generation);
  }

  /**
   * Refreshes the client's slot map (its 'refresh' event runs #checkOwners), at most one at a
   * time, and again every STALL_MS while a SPUBLISH is still unanswered.
   */
  #refresh(): void {
    if (this.#closed || this.#refreshing || this.#refreshTimer !== undefined) return;
    this.#refreshing = true;
    this.#client.refreshSlotsCache(() => {
      this.#refreshing = false;
      if (this.#closed || this.#stalled === 0) return;
      this.#refreshTimer = setTimeout(() => {
        this.#refreshTimer = undefined;
        if (this.#stalled > 0) this.#refresh();
      }, STALL_MS);
      this.#refreshTimer.unref();
    });
  }

  /** Rebuilds every shard subscription from a fresh slot map, as after a lost connection. */
  reconnect(): void {
    this.#lost(this.#generation);
  }

  /** Tears down the attempt of `generation` and tries again after `delay` (the back-off by default). */
  #lost(generation: number, delay?: number): void {
    if (generation !== this.#generation || this.#closed) return;
    this.#generation++;
    this.#owners = undefined;
    this.#teardown();
    if (this.#subscribed) {
      this.#subscribed = false;
      this.#onState?.(false);
    }
    const wait = delay ?? this.#retryDelay;
    if (delay === undefined) this.#retryDelay = Math.min(RETRY_MAX_MS, wait * 2);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#attempt(), wait);
    this.#retryTimer.unref();
  }

  #teardown(): void {
    for (const connection of this.#connections) connection.disconnect();
    this.#connections = [];
  }
}

/**
 * An ACL refusal (NOPERM), as opposed to the replies of a cluster in the middle of a failover
 * (CLUSTERDOWN, MOVED, TRYAGAIN), which the usual quick retries outlast and nobody needs to hear of.
 */
function isRefusal(error: unknown): boolean {
  return isReplyError(error) && error.message.startsWith('NOPERM');
}

function sameOwners(a: Map<string, string[]>, b: Map<string, string[]>): boolean {
  if (a.size !== b.size) return false;
  for (const [address, channels] of a) {
    const other = b.get(address);
    if (other === undefined || other.join('\n') !== channels.join('\n')) return false;
  }
  return true;
}

function splitAddress(address: string): [string, number] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon), Number(address.slice(colon + 1))];
}
