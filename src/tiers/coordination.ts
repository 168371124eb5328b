import type { BusTransport } from '../sync/transport.js';

/**
 * What a remote tier can do for its cache beyond storing entries: hold the locks of distributed
 * single flight, tag invalidation times and namespace versions, and carry the invalidation bus.
 * Every part is optional; the cache takes each from the first remote tier that offers it. The
 * core knows tiers only through this seam, so a new store (or another Redis client) adds
 * coordination by implementing it, without touching the cache. What a cache does without a
 * part is in docs/writing-a-tier.md#coordination.
 *
 * Keys given here are the cache's own (a cache key, a tag, a namespace name): a tier puts them
 * where no entry can reach them (the Redis tier: `<prefix>__lock:<key>` and so on).
 */
export interface TierCoordination {
  /** Per-key locks for distributed single flight (`lock` option). */
  readonly locks?: LockStore;
  /** Tag invalidation times, shared by every instance (`invalidateTags`). */
  readonly tagTimes?: TagTimeStore;
  /** Namespace version counters, shared by every instance (`cache.namespace()`). */
  readonly namespaces?: VersionStore;
  /**
   * A transport for the invalidation bus. Called once per cache, with the bus options that
   * concern the transport; throws an `InvalidOptionError` for options it cannot honour.
   */
  busTransport?(request: BusTransportRequest): BusTransport;
}

/**
 * Locks with an owner token and a life. The cache adds timeouts, renewals and the release of a
 * lock taken by a call that timed out; these calls only do the store's part.
 */
export interface LockStore {
  /** Takes `key`'s lock for `ms` as `token` if nobody holds it; true when taken. */
  acquire(key: string, token: string, ms: number): Promise<boolean>;
  /** Renews the lock to `ms` if `token` still holds it; false when it was lost. */
  extend(key: string, token: string, ms: number): Promise<boolean>;
  /** Deletes the lock if `token` still holds it; true when it did. */
  release(key: string, token: string): Promise<boolean>;
}

/** Tag invalidation times (epoch ms), which only ever move forward. */
export interface TagTimeStore {
  /** The times of `tags`, aligned (0 for a tag never invalidated). */
  read(tags: readonly string[]): Promise<number[]>;
  /** Raises each tag's time to at least the given one (never lowers it: clocks differ). */
  raise(times: ReadonlyMap<string, number>): Promise<void>;
}

/** Namespace version counters. */
export interface VersionStore {
  /** The namespace's version (0 when it was never cleared). */
  read(name: string): Promise<number>;
  /** Increments the version; resolves with the new one. */
  bump(name: string): Promise<number>;
}

/** The bus options a transport is made from; validated by the cache except where noted. */
export interface BusTransportRequest {
  /** The channel the caches of one key space meet on; undefined: the tier's default. */
  channel: string | undefined;
  /** `bus.pubsub` as given (a Redis-specific choice; other transports may ignore it). */
  pubsub: 'sharded' | 'classic' | undefined;
  /** `bus.shardChannels`, checked. */
  shardChannels: number;
  /** `bus.replay`, checked: entries each channel's replay log keeps, or false for no log. */
  replay: number | false;
  /** How option errors name the options: `bus.` for a cache, empty for an invalidator. */
  optionPrefix: string;
}

/** The first of `remotes` that offers `part`, with its index; undefined when none does. */
export function offered<K extends keyof TierCoordination>(
  remotes: readonly { readonly coordination?: TierCoordination | undefined }[],
  part: K,
): { index: number; part: NonNullable<TierCoordination[K]> } | undefined {
  for (let index = 0; index < remotes.length; index++) {
    const found = remotes[index]!.coordination?.[part];
    if (found !== undefined) return { index, part: found };
  }
  return undefined;
}
