import { randomBytes } from 'node:crypto';
import { isCluster, isReplyError, orderedConnectionOf, type RedisClient } from '../tiers/redis/client.js';
import { BusError } from '../errors.js';
import { guardSocketErrors } from '../internal/socket-errors.js';
import { watchConnectionErrors, type ConnectionErrors } from '../tiers/connection-errors.js';
import { RedisBusLog, type BusLog } from './replay-log.js';

/**
 * How the bus reaches Redis. The bus only knows this seam, so sharded pub/sub on a cluster
 * (SSUBSCRIBE/SPUBLISH) or another broker is one more implementation, not a change to the bus.
 */
export interface BusTransport {
  publish(message: string): Promise<void>;
  /**
   * Starts listening. `onMessage` gets every payload on the channel(s), with the channel it came
   * on; `onState(true)` comes once the subscription is in place (again, after every reconnect),
   * `onState(false)` as soon as the connection is lost, since messages published from then on
   * may never arrive.
   */
  subscribe(
    onMessage: (payload: string | Buffer, channel?: string) => void,
    onState: (subscribed: boolean) => void,
    onError?: (error: BusError) => void,
  ): void;
  close(): Promise<void>;
  /**
   * Every channel `subscribe` listens on, for a transport that listens on several (sharded
   * pub/sub): the bus's heartbeat must prove each subscription, so it publishes on every one of
   * them through `publishTo`, and on `publishChannel` through `publish`. Without these the
   * heartbeat travels through `publish` alone.
   */
  readonly channels?: readonly string[];
  /** The one of `channels` that `publish` sends on. */
  readonly publishChannel?: string;
  /**
   * A `publish` failed or took longer than publishTimeout: a transport of several channels may
   * send the next one on another (see ShardedPubSubTransport.publishFailed).
   */
  publishFailed?(): void;
  publishTo?(channel: string, message: string): Promise<void>;
  /**
   * Private channels `subscribe` also listens on, which no other instance uses: one per
   * subscriber connection (in the slot of each shard channel, for sharded pub/sub). When given,
   * the heartbeat goes there through `publishTo` instead of on the shared `channels`, so it
   * proves each connection end to end at a cost that does not grow with the fleet.
   */
  readonly heartbeatChannels?: readonly string[];
  /**
   * The replay log kept beside `channels`, when there is one: `publish` then appends every
   * message to it (and publishes it with its position), and the bus reads back what it missed
   * while away instead of dropping L1.
   */
  readonly log?: BusLog | undefined;
  /**
   * The connection `publish` sends on, if it runs commands in the order sent: a remote tier
   * naming the same one (`RemoteTier.orderedConnection`) has its writes run before a message published
   * after them, so the cache need not wait for them before publishing.
   */
  readonly orderedConnection?: object | undefined;
  /**
   * Why the publishing connection is down, while it is: its last connection error (NOAUTH after
   * the password changed, an untrusted certificate). The bus names it in its publish and
   * heartbeat errors, which would otherwise only say that the client is reconnecting or that a
   * PUBLISH timed out.
   */
  lastError?(): Error | undefined;
  /**
   * Drops the subscriber connection(s) and connects again. The bus calls it when its own
   * heartbeats stop coming back while the connection looks open (a silent partition, a NAT or
   * proxy that dropped the flow): a new connection may get through where the old one hangs,
   * and nothing else would ever notice the old one is dead.
   */
  reconnect?(): void;
}

/**
 * Classic pub/sub on one channel: PUBLISH on the tier's own client, SUBSCRIBE on a dedicated
 * duplicate of it (a subscribed connection can run nothing else). Works on a single server, a
 * Sentinel-managed master and, through ioredis' classic pub/sub, on a Cluster.
 */
export class RedisPubSubTransport implements BusTransport {
  readonly channel: string;
  readonly channels: readonly string[];
  readonly publishChannel: string;
  readonly heartbeatChannels: readonly string[];
  readonly log: BusLog | undefined;
  readonly orderedConnection: object | undefined;
  readonly #log: RedisBusLog | undefined;
  readonly #publisher: RedisClient;
  readonly #connection: ConnectionErrors;
  #subscriber: RedisClient | undefined;
  #closed = false;

  #wasReady: boolean;
  /** Timers of SUBSCRIBE retries after a refusal, cleared on close. */
  readonly #retries = new Set<NodeJS.Timeout>();

  /** `logLength`: entries the replay log keeps (approximately), or false for no log. */
  constructor(client: RedisClient, channel: string, logLength: number | false = false) {
    this.#publisher = client;
    this.#connection = watchConnectionErrors(client);
    this.orderedConnection = orderedConnectionOf(client);
    this.channel = this.publishChannel = channel;
    this.channels = [channel];
    this.heartbeatChannels = [heartbeatChannel(channel)];
    this.log = this.#log = logLength === false ? undefined : new RedisBusLog(client, logLength, false);
    this.#wasReady = client.status === 'ready';
    if (!this.#wasReady) client.once('ready', () => (this.#wasReady = true));
  }

  async publish(message: string): Promise<void> {
    this.#checkReady();
    if (this.log !== undefined) await this.log.publish(this.channel, message);
    else await this.#publisher.publish(this.channel, message);
  }

  async publishTo(channel: string, message: string): Promise<void> {
    this.#checkReady();
    await this.#publisher.publish(channel, message);
  }

  lastError(): Error | undefined {
    return this.#connection.last();
  }

  /**
   * Once connected, a client that lost its connection would queue the PUBLISH for the
   * reconnect; failing now sends the invalidation to the retry queue instead.
   */
  #checkReady(): void {
    const status = this.#publisher.status;
    if (this.#wasReady && status !== 'ready') throw new Error(`the Redis client is ${status}`);
  }

  subscribe(
    onMessage: (payload: string | Buffer, channel?: string) => void,
    onState: (subscribed: boolean) => void,
    onError?: (error: BusError) => void,
  ): void {
    if (this.#log !== undefined) this.#log.onUnlogged = onError;
    // Resubscribing ourselves on every 'ready' (instead of ioredis' autoResubscribe) tells us
    // exactly when the subscription is back: when SUBSCRIBE's reply arrives.
    const publisher = this.#publisher;
    const subscriber: RedisClient = isCluster(publisher)
      ? publisher.duplicate([], {
          redisOptions: { ...publisher.options.redisOptions, autoResubscribe: false },
        })
      : publisher.duplicate({ autoResubscribe: false, enableOfflineQueue: true });
    this.#subscriber = subscriber;
    // A client built with lazyConnect would wait for a first command that never comes.
    if (subscriber.status === 'wait') subscriber.connect().catch(() => {});
    let subscribed = false;
    const lost = (): void => {
      if (!subscribed) return;
      subscribed = false;
      onState(false);
    };
    subscriber.on('error', () => {
      // Connection errors show up as 'close' and reconnects; the bus reports the state change.
    });
    guardSocketErrors(subscriber);
    subscriber.on('close', lost);
    subscriber.on('end', lost);
    const listened = new Set([this.channel, ...this.heartbeatChannels]);
    subscriber.on('message', (channel: string, payload: string) => {
      if (listened.has(channel)) onMessage(payload, channel);
    });
    let refusals = 0;
    const trySubscribe = (): void => {
      if (this.#closed || subscribed) return;
      subscriber.subscribe(...listened).then(
        () => {
          refusals = 0;
          if (this.#closed || subscribed) return;
          subscribed = true;
          onState(true);
        },
        (error: unknown) => {
          // A dropped connection needs nothing: the next 'ready' tries again. A refusal (an ACL
          // user without &channel permission) would leave the bus never subscribed, L1 lives
          // capped for ever and nobody told: report it, and try again now and then (1 s
          // doubling to 30 s), since the ACL may be fixed while the process runs.
          if (!isReplyError(error) || this.#closed) return;
          onError?.(new BusError('subscribe', error, this.channel));
          const timer = setTimeout(
            () => {
              if (subscriber.status === 'ready') trySubscribe();
            },
            Math.min(30_000, 1_000 * 2 ** refusals++),
          );
          timer.unref();
          this.#retries.add(timer);
        },
      );
    };
    subscriber.on('ready', trySubscribe);
  }

  reconnect(): void {
    const subscriber = this.#subscriber;
    if (this.#closed || subscriber === undefined) return;
    if (isCluster(subscriber)) {
      subscriber.disconnect(true);
      return;
    }
    // Destroyed, not ended: end() waits for the peer's FIN, which a partition never delivers.
    // ioredis sees the socket close and reconnects as its retryStrategy says.
    if (subscriber.dropConnection !== undefined) subscriber.dropConnection();
    else subscriber.stream?.destroy();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#connection.dispose();
    for (const timer of this.#retries) clearTimeout(timer);
    this.#retries.clear();
    const subscriber = this.#subscriber;
    if (subscriber === undefined || subscriber.status === 'end') return;
    subscriber.disconnect();
    await Promise.resolve();
  }
}

/**
 * A private channel beside `channel` for one subscriber's heartbeat: random, so no other
 * instance listens, and in `channel`'s hash slot (its `{tag}` comes first), so on a Cluster it
 * lives on the same master and connection as the shard channel it proves.
 */
export function heartbeatChannel(channel: string): string {
  return `${channel}:hb:${randomBytes(6).toString('base64url')}`;
}
