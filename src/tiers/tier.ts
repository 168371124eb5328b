import type { Entry } from '../entry.js';
import type { BreakerState } from './circuit-breaker.js';
import type { TierCoordination } from './coordination.js';
import type { ReadHandler } from './read-batch.js';

/** An entry read from a remote tier, with its encoded size so L1 can account bytes exactly. */
export interface StoredEntry {
  entry: Entry;
  /** The payload's length: bytes, or UTF-16 units for a payload read as text (the same for ASCII). */
  size: number;
}

/**
 * A read that also says what the key held: its `lease`, which a conditional fill hands back
 * (opaque to the cache; undefined: the fill checks nothing).
 */
export interface Leased {
  found: StoredEntry | undefined;
  lease: unknown;
}

/**
 * The lease a load hands a tier's `fillMany` when its read of that tier failed (a timeout, the
 * breaker): what the key holds is unknown, so a tier with fill leases writes only a key that
 * holds nothing (no entry, no tombstone). A registered symbol, so every build of the package
 * (ESM, CJS, each entry point) sees the same one.
 */
export const UNREAD_LEASE: unique symbol = Symbol.for('tiercache.unreadLease');

/** A write prepared (encoded) before anything is written, so encoding errors write nothing. */
export interface PreparedWrite {
  key: string;
  entry: Entry;
  payload: string | Uint8Array;
}

/**
 * A tier below L1: Redis today, regional/global Redis chains and other stores later. All
 * methods may reject; the cache turns rejections into `TierError`s and degrades past the tier.
 */
export interface RemoteTier {
  readonly kind: 'remote';
  readonly name: string;
  /** Default life of entries written to this tier, in ms (Infinity for forever). */
  readonly ttl: number;
  /** Encodes without writing; throws the serializer's error for values it cannot encode. */
  prepare(key: string, entry: Entry): PreparedWrite;
  get(key: string): Promise<StoredEntry | undefined>;
  /**
   * Optional: `get` whose outcome goes to `handler` (with the read's duration in ms) in the
   * tier's own continuation, the returned promise settling with what the handler returns. The
   * cache's get() below L1 reads this way when it can, saving a promise and an async frame per
   * read (guardTier() and the Redis tier offer it).
   */
  read?<T, R>(key: string, handler: ReadHandler<T, R>, token: T): Promise<R>;
  /** One round trip for all keys; the result is aligned with `keys`. */
  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]>;
  /** Writes each prepared entry with its own life in ms, in one round trip. */
  setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void>;
  has(key: string): Promise<boolean>;
  delete(keys: readonly string[]): Promise<number>;
  /** Removes every key this tier owns (its prefix), in batches. */
  clear(): Promise<number>;
  /**
   * Removes the keys matching a Redis glob over cache keys (the tier adds its prefix), in
   * batches; tiers that cannot search their keys leave it out and `deleteByPattern` reports so.
   */
  deleteMatching?(pattern: string): Promise<number>;
  close(): Promise<void>;
  /**
   * The connection this tier's writes and deletes go out on, if it runs them in the order sent
   * (one Redis, not a Cluster) and `setMany()` and `delete()` hand every command to it before
   * they return. A bus transport publishing on the same one (`BusTransport.orderedConnection`) cannot
   * overtake such a write, so the cache publishes the invalidation at once instead of a round
   * trip later. Leave it out unless both hold: an invalidation heard before the write lands
   * lets another instance re-read and keep the old value.
   */
  readonly orderedConnection?: object | undefined;
  /**
   * Locks, tag times, namespace versions and a bus transport this tier can hold for its cache
   * (see TierCoordination); a tier without it still caches, see docs/writing-a-tier.md.
   */
  readonly coordination?: TierCoordination | undefined;
  /**
   * Fill leases, an optional capability (all three or none). A tier with them refuses a
   * loader's fill when a delete, clear or pattern delete reached the key after the load's miss
   * read, whichever instance issued it; a tier without them takes every fill (`setMany`), and
   * only the invalidation bus keeps a racing fill out of other instances' L1. See
   * docs/consistency.md, "Fill leases".
   *
   * `getLeased`/`getManyLeased` read as `get`/`getMany` do (one round trip) and note what each
   * key held; `fillMany` writes each entry only where the key still holds what its lease saw,
   * in one round trip, resolving per write with whether it was written.
   */
  getLeased?(key: string): Promise<Leased>;
  getManyLeased?(keys: readonly string[]): Promise<Leased[]>;
  fillMany?(
    writes: readonly PreparedWrite[],
    ttls: readonly number[],
    leases: readonly unknown[],
  ): Promise<boolean[]>;
  /**
   * Called once, when a cache takes the tier up, with where the tier's reports go; returns the
   * detach the cache calls on close(). A tier serves one open cache at a time: a cache refuses
   * a tier another open cache runs (give each cache its own tier; Redis tiers may share one
   * client). A tier without it reports nothing (its corrupt payloads are plain misses).
   */
  attach?(hooks: TierHooks): () => void;
  /** Timeout and breaker counters of a guarded tier, for `stats()`. */
  health?(): TierHealth;
}

/** Where a remote tier's reports go: given by the cache that runs it (`RemoteTier.attach`). */
export interface TierHooks {
  /** A stored payload the tier cannot read (it reads as a miss): garbage, a newer format. */
  corrupt(key: string, problem: string, cause?: unknown): void;
  /** A guarded tier's circuit breaker changed state. */
  breaker(state: BreakerState): void;
  /** A guarded tier's repair of missed writes failed (the first of a streak). */
  repairError(error: unknown): void;
  /**
   * For a tier with fill leases: how long, in ms, a delete keeps refusing fills whose read came
   * before it (the life of its tombstone), from the cache's load timeouts and lock lease.
   */
  readonly tombstoneTtl?: number;
}

/**
 * The hooks of the cache a tier serves, for tier implementations: `attach` is the tier's
 * `attach`, `corrupt` a stable function to hand a decoder (it reports to whichever cache is
 * attached at the time, and to nobody between caches).
 */
export class TierHookSlot {
  hooks: TierHooks | undefined = undefined;

  attach(hooks: TierHooks): () => void {
    this.hooks = hooks;
    return () => {
      if (this.hooks === hooks) this.hooks = undefined;
    };
  }

  readonly corrupt = (key: string, problem: string, cause?: unknown): void => {
    this.hooks?.corrupt(key, problem, cause);
  };
}

/** What a guarded tier reports beside the cache's own per-tier counters. */
export interface TierHealth {
  /** Calls that ran out of time. */
  timeouts: number;
  /**
   * Keys whose write or delete missed the tier, waiting to be deleted from it when it answers
   * again (`'all'`: too many to remember, the tier will be cleared), and repairs done.
   */
  repair: { pending: number | 'all'; done: number };
  /** The tier's circuit breaker, when it has one. */
  breaker?: {
    state: BreakerState;
    /** Times it opened. */
    opens: number;
    /** Calls skipped while it was open. */
    skipped: number;
  };
}
