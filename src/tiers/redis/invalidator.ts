import { randomBytes } from 'node:crypto';
import { BusError, InvalidKeyError, InvalidOptionError, describe } from '../../errors.js';
import { wellFormed } from '../../internal/keys.js';
import { optionNames } from '../../internal/option-names.js';
import type { RedisClientOption } from './clients.js';
import { REDIS_TIER_DEFAULTS, RedisStore, checkPrefix } from './redis-tier.js';
import {
  resolveMessageLimits,
  transportRequest,
  type BusOptions,
  type PubSubOptions,
} from '../../sync/bus-options.js';
import type { BusTransport } from '../../sync/transport.js';
import { checkChannel, defaultChannel, redisBusTransport } from './coordination.js';
import { isReserved } from '../../sync/reserved-keys.js';
import {
  emptyInvalidation,
  encodeMessage,
  splitInvalidation,
  type Invalidation,
} from '../../sync/message.js';

interface InvalidatorConnection {
  /** A client as `redisTier`'s `client` takes (stays yours to close), or a `redis://` URL. */
  redis: RedisClientOption;
  /** The key prefix of the caches' Redis tier (the same rule: ends with `:`, no other `:`). @default 'tc:' */
  prefix?: string;
  /** The caches' bus channel. @default `tiercache:bus:${prefix}` */
  channel?: string;
}
/**
 * Pub/sub options and message bounds must match the caches' `bus` options (sharded by default on
 * a Cluster; messages split to `maxMessageBytes`/`maxMessageNames`).
 */
export type InvalidatorOptions = InvalidatorConnection &
  PubSubOptions &
  Pick<BusOptions, 'maxMessageBytes' | 'maxMessageNames'>;

/**
 * Publish-only access to the caches' invalidation bus, for a service that writes the origin but
 * does not cache: it removes keys from the shared Redis tier and tells every cache instance to
 * drop its L1 copy. It never subscribes, so it holds no connection but the one it publishes on.
 */
export interface Invalidator {
  /** Removes `keys` from Redis, then from every instance's L1. */
  delete(keys: string | readonly string[]): Promise<void>;
  /** Removes the keys matching a Redis glob from Redis (SCAN), then from every instance's L1. */
  deleteByPattern(pattern: string): Promise<void>;
  /** Removes every key under the prefix from Redis, then drops every instance's L1. */
  clear(): Promise<void>;
  /** Closes the connection if the invalidator opened it from a URL. */
  close(): Promise<void>;
}

const INVALIDATOR_OPTION_NAMES = optionNames<InvalidatorOptions>({
  redis: true,
  prefix: true,
  channel: true,
  maxMessageBytes: true,
  maxMessageNames: true,
  pubsub: true,
  shardChannels: true,
  replay: true,
});

/** Creates a publish-only {@link Invalidator}. Rejections are `BusError`s or Redis errors. */
export function createInvalidator(options: InvalidatorOptions): Invalidator {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('createInvalidator', `expected an options object, got ${describe(options)}`);
  }
  INVALIDATOR_OPTION_NAMES.check(options, 'createInvalidator options');
  const prefix = checkPrefix(options.prefix ?? REDIS_TIER_DEFAULTS.prefix, 'prefix');
  const channel = options.channel ?? defaultChannel(prefix);
  if (typeof channel !== 'string' || channel === '') {
    throw new InvalidOptionError('channel', `expected a non-empty string, got ${describe(channel)}`);
  }
  checkChannel(channel, prefix, 'channel');
  const { maxMessageBytes, maxMessageNames } = resolveMessageLimits(options, '');
  const limits = { maxBytes: maxMessageBytes, maxNames: maxMessageNames };
  // Every option checked before the store exists: one made from a URL starts connecting at once.
  const request = transportRequest(options, channel, '');
  const store = new RedisStore({ client: options.redis, prefix });
  let transport: BusTransport;
  try {
    transport = redisBusTransport(store.client, prefix, request);
  } catch (error) {
    // 'sharded' on a single-node client: close the connection a URL opened.
    store.close().catch(() => {});
    throw error;
  }
  const id = randomBytes(9).toString('base64url');
  let sequence = 0;
  // Sends in order, so sequence numbers only jump when a message is really lost.
  let last: Promise<unknown> = Promise.resolve();
  const publish = (inv: Invalidation): Promise<void> => {
    const sent = last.then(async () => {
      try {
        for (const part of splitInvalidation(inv, limits)) {
          await transport.publish(encodeMessage(id, sequence + 1, part));
          sequence++;
        }
      } catch (error) {
        throw new BusError('publish', error);
      }
    });
    last = sent.catch(() => {});
    return sent;
  };
  return {
    async delete(keys) {
      const list = typeof keys === 'string' ? [keys] : [...keys];
      for (const key of list)
        if (typeof key !== 'string' || key === '' || !wellFormed(key))
          throw new InvalidKeyError(key, 'expected a non-empty string of well-formed Unicode');
        else if (isReserved(key))
          throw new InvalidKeyError(key, 'tag times, versions and locks are not entries');
      if (list.length === 0) return;
      await store.delete(list);
      const inv = emptyInvalidation();
      for (const key of list) inv.keys.add(key);
      await publish(inv);
    },
    async deleteByPattern(pattern) {
      if (typeof pattern !== 'string' || pattern === '')
        throw new InvalidOptionError('pattern', `expected a non-empty glob string, got ${describe(pattern)}`);
      await store.deleteMatching(pattern);
      const inv = emptyInvalidation();
      inv.patterns.add(pattern);
      await publish(inv);
    },
    async clear() {
      await store.clear();
      const inv = emptyInvalidation();
      inv.all = true;
      await publish(inv);
    },
    close: () => store.close(),
  };
}
