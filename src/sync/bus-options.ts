import { InvalidOptionError, describe } from '../errors.js';
import { FOREVER, parseDuration, type Duration } from '../internal/duration.js';
import { optionNames } from '../internal/option-names.js';
import type { HeartbeatSettings } from './heartbeat.js';
import { MESSAGE_LIMIT_DEFAULTS } from './message.js';
import type { BusTransportRequest } from '../tiers/coordination.js';
import type { RemoteTier } from '../tiers/tier.js';
import type { BusTransport } from './transport.js';

export interface BusOptions extends PubSubOptions {
  /**
   * The remote tier that carries the bus (a Redis tier: its client publishes, a duplicate of
   * it subscribes).
   * @default the first remote tier that offers a bus transport (the first Redis tier)
   */
  tier?: string;
  /** Pub/sub channel; every instance sharing a key space must use the same one. @default `tiercache:bus:${tier prefix}` on a Redis tier */
  channel?: string;
  /**
   * Longest L1 life while the subscriber is disconnected (and before it first subscribes):
   * invalidations published meanwhile are lost, so a stale entry lives at most this long. On
   * reconnect L1 is dropped entirely. @default '1s'
   */
  disconnectedTtl?: Duration;
  /**
   * Most invalidated names (keys, patterns, tags, namespaces) held for retry while PUBLISH
   * fails. Beyond it the queue collapses into one "drop everything" message, reported by the
   * 'bus:overflow' event and `stats().bus.overflows`. @default 10_000
   */
  maxQueue?: number;
  /**
   * How long a PUBLISH may take before it counts as failed and is queued for retry; writes
   * wait for their publish at most this long. @default '250ms'
   */
  publishTimeout?: Duration;
  /**
   * How often this instance publishes a heartbeat on every channel it listens on (one small
   * PUBLISH per channel per interval). Hearing its own heartbeats back proves the subscription
   * end to end, which the connection state cannot: a socket can stay open while nothing arrives
   * (a silent partition, a hung Redis, a proxy that blackholes). Heartbeats also carry the
   * publisher's sequence number, so others notice a lost invalidation in a quiet period.
   * `false` turns them off: then only a closed connection caps L1 lives. @default '1s'
   */
  heartbeat?: Duration | false;
  /**
   * How old the newest heartbeat heard back on any channel may get before the subscription
   * counts as lost, exactly as if its connection had dropped: L1 lives are capped to
   * `disconnectedTtl` and 'bus:disconnect' is emitted with reason 'heartbeat'; once heartbeats
   * are heard again L1 is dropped and 'bus:reconnect' follows. A stale L1 value is then served
   * at most `heartbeatTimeout + disconnectedTtl` after a silent partition began. Must exceed
   * `heartbeat`. @default 3 × `heartbeat`
   */
  heartbeatTimeout?: Duration;
  /**
   * Largest bus message, in UTF-8 bytes. Publishers split what they send into messages within
   * it (a `deleteMany` of a million keys goes out as several); a receiver does not read a larger
   * one (parsing it could block the event loop for seconds) but drops all of its L1, counted in
   * `stats().bus.oversized`. Use the same value on every instance of a channel, and in
   * `createInvalidator`. At least 1024. @default 524_288 (512 KiB)
   */
  maxMessageBytes?: number;
  /**
   * Most names (keys, patterns, tags and namespaces together) in one bus message; publishers
   * split, and a receiver drops all of its L1 for a message with more, as for
   * `maxMessageBytes`. Use the same value on every instance. @default 10_000
   */
  maxMessageNames?: number;
  /** Another transport (another broker, a fault-injecting one in tests). */
  transport?: BusTransport;
}

export const BUS_DEFAULTS = Object.freeze({
  disconnectedTtl: '1s',
  maxQueue: 10_000,
  publishTimeout: '250ms',
  heartbeat: '1s',
  shardChannels: 16,
  replay: 10_000,
  maxMessageBytes: MESSAGE_LIMIT_DEFAULTS.maxBytes,
  maxMessageNames: MESSAGE_LIMIT_DEFAULTS.maxNames,
} as const);

/**
 * The default heartbeatTimeout, in heartbeat intervals: two heartbeats may be late or lost
 * before the subscription counts as lost.
 */
const HEARTBEAT_TIMEOUT_INTERVALS = 3;

const PUBSUB_OPTION_NAMES = optionNames<PubSubOptions>({ pubsub: true, shardChannels: true, replay: true });
const BUS_OPTION_NAMES = PUBSUB_OPTION_NAMES.with(
  ...optionNames<Omit<BusOptions, keyof PubSubOptions>>({
    tier: true,
    channel: true,
    disconnectedTtl: true,
    maxQueue: true,
    publishTimeout: true,
    heartbeat: true,
    heartbeatTimeout: true,
    maxMessageBytes: true,
    maxMessageNames: true,
    transport: true,
  }).names,
);

export interface ResolvedBus {
  transport: BusTransport;
  disconnectedTtl: number;
  maxQueue: number;
  publishTimeout: number;
  heartbeat: HeartbeatSettings | undefined;
  maxMessageBytes: number;
  maxMessageNames: number;
}

/** The bus a cache runs, or undefined when it has none (turned off, or no tier to carry it). */
export function resolveBus(
  option: BusOptions | false | undefined,
  remotes: readonly RemoteTier[],
): ResolvedBus | undefined {
  if (option === false) return undefined;
  const options = option ?? {};
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('bus', `expected false or an options object, got ${describe(option)}`);
  }
  BUS_OPTION_NAMES.check(options, 'bus');
  const carriers = remotes.filter((tier) => tier.coordination?.busTransport !== undefined);
  let tier = carriers[0];
  if (options.tier !== undefined) {
    tier = carriers.find((t) => t.name === options.tier);
    if (tier === undefined) {
      const named = remotes.some((t) => t.name === options.tier);
      throw new InvalidOptionError(
        'bus.tier',
        named
          ? `the tier ${describe(options.tier)} cannot carry the bus (it offers no bus transport)`
          : `no tier is named ${describe(options.tier)}`,
      );
    }
  }
  const disconnectedTtl = parseDuration(options.disconnectedTtl ?? BUS_DEFAULTS.disconnectedTtl);
  if (typeof disconnectedTtl === 'string')
    throw new InvalidOptionError('bus.disconnectedTtl', disconnectedTtl);
  const publishTimeout = parseDuration(options.publishTimeout ?? BUS_DEFAULTS.publishTimeout, {
    timer: true,
  });
  if (typeof publishTimeout === 'string') throw new InvalidOptionError('bus.publishTimeout', publishTimeout);
  const heartbeat = resolveHeartbeat(options);
  const maxQueue = options.maxQueue ?? BUS_DEFAULTS.maxQueue;
  if (!Number.isInteger(maxQueue) || maxQueue < 1) {
    throw new InvalidOptionError('bus.maxQueue', `expected a positive integer, got ${describe(maxQueue)}`);
  }
  const { maxMessageBytes, maxMessageNames } = resolveMessageLimits(options, 'bus.');
  if (options.channel !== undefined && (typeof options.channel !== 'string' || options.channel === '')) {
    throw new InvalidOptionError(
      'bus.channel',
      `expected a non-empty string, got ${describe(options.channel)}`,
    );
  }
  const request = transportRequest(options, options.channel, 'bus.');
  let transport = options.transport;
  if (transport === undefined) {
    if (tier === undefined) return undefined;
    transport = tier.coordination!.busTransport!(request);
  }
  return {
    transport,
    disconnectedTtl,
    maxQueue,
    publishTimeout,
    heartbeat,
    maxMessageBytes,
    maxMessageNames,
  };
}

/** The message bounds `options` ask for, checked; `optionPrefix` names them in errors. */
export function resolveMessageLimits(
  options: Pick<BusOptions, 'maxMessageBytes' | 'maxMessageNames'>,
  optionPrefix: string,
): { maxMessageBytes: number; maxMessageNames: number } {
  const maxMessageBytes = options.maxMessageBytes ?? BUS_DEFAULTS.maxMessageBytes;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1024) {
    throw new InvalidOptionError(
      `${optionPrefix}maxMessageBytes`,
      `expected an integer of at least 1024, got ${describe(maxMessageBytes)}`,
    );
  }
  const maxMessageNames = options.maxMessageNames ?? BUS_DEFAULTS.maxMessageNames;
  if (!Number.isSafeInteger(maxMessageNames) || maxMessageNames < 1) {
    throw new InvalidOptionError(
      `${optionPrefix}maxMessageNames`,
      `expected a positive integer, got ${describe(maxMessageNames)}`,
    );
  }
  return { maxMessageBytes, maxMessageNames };
}

function resolveHeartbeat(options: BusOptions): HeartbeatSettings | undefined {
  const timeoutOption = options.heartbeatTimeout;
  const timeout = timeoutOption === undefined ? undefined : parseDuration(timeoutOption, { timer: true });
  if (typeof timeout === 'string') throw new InvalidOptionError('bus.heartbeatTimeout', timeout);
  if (timeout === FOREVER) {
    throw new InvalidOptionError('bus.heartbeatTimeout', `expected a finite duration, got 'forever'`);
  }
  if (options.heartbeat === false) return undefined;
  const interval = parseDuration(options.heartbeat ?? BUS_DEFAULTS.heartbeat, { timer: true });
  if (typeof interval === 'string') throw new InvalidOptionError('bus.heartbeat', interval);
  if (interval === FOREVER) {
    throw new InvalidOptionError('bus.heartbeat', `expected a finite duration or false, got 'forever'`);
  }
  if (timeout === undefined) return { interval, timeout: interval * HEARTBEAT_TIMEOUT_INTERVALS };
  if (timeout <= interval) {
    // Heard back at best one interval apart, heartbeats would time out between any two of them.
    throw new InvalidOptionError(
      'bus.heartbeatTimeout',
      `must exceed bus.heartbeat (${interval} ms), got ${describe(timeoutOption)}`,
    );
  }
  return { interval, timeout };
}

/** Which pub/sub the bus uses and over how many shard channels; the same for every instance. */
export interface PubSubOptions {
  /**
   * Which Redis pub/sub carries the messages. `'sharded'` (SPUBLISH/SSUBSCRIBE, Redis 7, Cluster
   * clients only) keeps each message within the shard that owns its channel; `'classic'`
   * (PUBLISH/SUBSCRIBE) broadcasts it over the whole cluster bus. Every instance sharing a key
   * space must use the same mode. @default 'sharded' on a Cluster client, 'classic' otherwise
   */
  pubsub?: 'sharded' | 'classic';
  /**
   * How many shard channels sharded pub/sub spreads over the cluster's slots (each publisher
   * uses one, every subscriber listens on all). Every instance must use the same number.
   * @default 16
   */
  shardChannels?: number;
  /**
   * How many messages the replay log keeps per channel: a Redis Stream `<channel>:log` beside
   * each channel (trimmed approximately, so a little more), written by the same script that
   * publishes. A subscriber back from an outage (a dropped connection, a silent partition, a
   * failover) reads what it missed there and keeps the rest of its L1; only when its place in
   * the log is gone (trimmed, or lost with Redis's data) does it drop L1 as without a log.
   * Each entry holds one message (typically 100 to 200 bytes). `false` publishes without a
   * log; every instance should use the same setting. @default 10_000
   */
  replay?: number | false;
}

/**
 * What a tier needs to make the transport `options` ask for, checked. `optionPrefix` names them
 * in errors: `bus.` for a cache, empty for an invalidator.
 */
export function transportRequest(
  options: PubSubOptions,
  channel: string | undefined,
  optionPrefix: string,
): BusTransportRequest {
  const shardChannels = options.shardChannels ?? BUS_DEFAULTS.shardChannels;
  if (!Number.isInteger(shardChannels) || shardChannels < 1 || shardChannels > 1024) {
    throw new InvalidOptionError(
      `${optionPrefix}shardChannels`,
      `expected an integer from 1 to 1024, got ${describe(shardChannels)}`,
    );
  }
  const pubsub = options.pubsub;
  if (pubsub !== undefined && pubsub !== 'sharded' && pubsub !== 'classic') {
    throw new InvalidOptionError(
      `${optionPrefix}pubsub`,
      `expected 'sharded' or 'classic', got ${describe(pubsub)}`,
    );
  }
  const replay = options.replay ?? BUS_DEFAULTS.replay;
  if (replay !== false && (!Number.isSafeInteger(replay) || replay < 1)) {
    throw new InvalidOptionError(
      `${optionPrefix}replay`,
      `expected a positive integer or false, got ${describe(replay)}`,
    );
  }
  return { channel, pubsub, shardChannels, replay, optionPrefix };
}
