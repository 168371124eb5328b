import { staleEnd, type Entry, type EntryInfo } from './entry.js';
import {
  type CacheError,
  CacheClosedError,
  CorruptEntryError,
  InvalidOptionError,
  InvalidValueError,
  LoaderError,
  LoaderTimeoutError,
  SerializationError,
  TierError,
  TierUnavailableError,
  describe,
  isCacheError,
} from './errors.js';
import {
  CacheEmitter,
  type CacheEventName,
  type CacheListener,
  type RefreshReason,
  type StaleReason,
} from './events.js';
import { coarseClock, now } from './internal/clock.js';
import { FOREVER, parseDuration } from './internal/duration.js';
import { cloneValue } from './internal/copy-value.js';
import { KeyRules, wellFormed } from './internal/keys.js';
import { stableStringify } from './internal/stable-key.js';
import { SoftTimeout, deadline, within } from './loading/deadline.js';
import { DistributedLock, type Lease } from './loading/distributed-lock.js';
import { FillGuard, type FillTicket } from './loading/fill-guard.js';
import { resolveLock, resolvePlan, type LoadPlan } from './loading/load-plan.js';
import { Wakeups } from './loading/wakeups.js';
import { LoadContext, type LoaderContext } from './loading/load-context.js';
import { exposeMetrics } from './metrics/source.js';
import {
  CacheCounters,
  snapshot,
  type CacheStats,
  type TierCounters,
  type TierOperation,
} from './metrics/stats.js';
import {
  checkSetManyItem,
  checkWarmOptions,
  checkWriteOptions,
  refusedOptions,
  resolveWrap,
  maskOf,
  resolveOptions,
  type CacheOptions,
  type GetOrSetOptions,
  type ResolvedOptions,
  type WriteOptions,
} from './options.js';
import { memoryTier, type MemoryTier } from './tiers/memory/memory-tier.js';
import type { MemoryNode, MemoryStore } from './tiers/memory/memory-store.js';
import { RedisTier } from './tiers/redis-tier.js';
import { GuardedTier, type ReadHandler } from './tiers/guarded-tier.js';
import type { PreparedWrite, RemoteTier, StoredEntry } from './tiers/tier.js';
import { writeMask, type WriteMask } from './tiers/write-targets.js';
import { InvalidationBus } from './sync/bus.js';
import { LocalSync } from './sync/local.js';
import { globMatcher } from './sync/glob.js';
import { CacheNamespace, NamespaceVersions } from './sync/namespaces.js';
import { emptyInvalidation, type Invalidation } from './sync/message.js';
import { TagTimes, checkTags } from './sync/tags.js';

export type Loader<T> = (context: LoaderContext) => T | Promise<T>;

/**
 * A batch loader gets the keys no tier had and returns their values: a Map or plain object keyed
 * by key, or an array aligned with `keys`. Keys it leaves out load as `undefined`.
 */
export type BatchLoader<T> = (
  keys: string[],
  context: LoaderContext,
) => Promise<ReadonlyMap<string, T> | Readonly<Record<string, T>> | readonly (T | undefined)[]>;

export interface SetManyItem<T = unknown> extends WriteOptions {
  key: string;
  value: T;
}

export interface WrapOptions<A extends unknown[]> extends WriteOptions {
  /** Builds the cache key from the arguments. @default `${name}:${stable JSON of args}` */
  key?: (...args: A) => string;
  /** Key prefix for the default key builder. @default the function's name */
  name?: string;
}

export interface WarmOptions {
  /** Keys per round trip. @default 500 */
  batchSize?: number;
  /** Called after every batch with the counts so far. */
  onProgress?: (progress: WarmProgress) => void;
}

export interface WarmTagsOption<T> {
  /** Tags of each item's entry, added to the call's `tags` (see `invalidateTags`). */
  tagsOf?: (item: T) => readonly string[];
}

export interface WarmProgress {
  /** Keys (or items) handled so far. */
  processed: number;
  /** Of those, how many were found in a remote tier (`warm`) or written (`warmFrom`). */
  loaded: number;
}

interface WriteItem {
  key: string;
  value: unknown;
  options: WriteOptions | undefined;
  /** How long past expiry copies are kept (grace / fail-safe); the cache's when absent. */
  keep?: number;
  /** When the value was produced, if not now: a tagged loader result dates from the load's start. */
  createdAt?: number;
}

/** Where #readRemotes leaves the newest expired-but-kept copy it passed over, and its tier. */
interface StaleSlot {
  entry: Entry | undefined;
  tier: string;
}

/** Filled in by a getOrSet flight as it settles, for getOrSetEntry callers sharing it. */
interface FlightInfo {
  entry: Entry | undefined;
  tier: string;
}

interface Deferred {
  promise: Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * A multi-level cache: an optional in-process tier first, then remote tiers in order, then the
 * caller's loader. See docs/design.md for the consistency and failure model.
 */
export class TierCache {
  readonly #options: ResolvedOptions;
  readonly #memory: MemoryTier | undefined;
  readonly #store: MemoryStore | undefined;
  readonly #remotes: readonly RemoteTier[];
  readonly #counters: CacheCounters;
  readonly #memoryCounters: TierCounters | undefined;
  readonly #remoteCounters: readonly TierCounters[];
  /** What get() does with each remote tier's answer (see #getFrom). */
  readonly #getSteps: readonly ReadHandler<FillTicket, unknown>[];
  /** Every tier's name and default life, memory first; remote tier i sits at i + #offset. */
  readonly #lives: readonly { readonly name: string; readonly ttl: number }[];
  /** The tiers writes and promotions go to, aligned with #lives; undefined for all. */
  readonly #writeMask: WriteMask | undefined;
  readonly #offset: number;
  readonly #clock: () => number;
  /** The clock for L1 expiry checks on hits: coarse unless the caller injected one. */
  readonly #readClock: () => number;
  readonly #flights = new Map<string, Promise<unknown>>();
  readonly #flightInfo = new WeakMap<Promise<unknown>, FlightInfo>();
  readonly #guard: FillGuard;
  readonly #background = new Set<Promise<void>>();
  readonly #keys: KeyRules;
  /** Every tier's name, memory first (for validating per-call `ttl` maps and `writeTo`). */
  readonly #tierNames: readonly string[];
  readonly #clone: boolean;
  #closed = false;
  readonly #events = new CacheEmitter();
  /** Cache-wide grace, fail-safe, timeouts, eager refresh and lock switch. */
  readonly #plan: LoadPlan;
  /** Whether getOrSet hits check for eager refresh (cache-wide); per-call options also can. */
  readonly #eager: boolean;
  readonly #lock: DistributedLock | undefined;
  /** Index in #remotes of the Redis tier the lock lives in. */
  readonly #lockTier: number;
  readonly #wakes = new Wakeups();
  /** Background refreshes in flight, one per key. */
  readonly #refreshes = new Map<string, Promise<void>>();
  /** Keys whose loader failed recently under fail-safe → until when it is not called again. */
  readonly #backoff = new Map<string, number>();
  /** The invalidation bus and what it does to this instance, when a Redis tier carries one. */
  readonly #bus: InvalidationBus | undefined;
  readonly #local: LocalSync | undefined;
  readonly #namespaces: NamespaceVersions;
  /** Tag invalidation times (src/sync/tags.ts). */
  readonly #tags: TagTimes;

  constructor(options: CacheOptions = {}) {
    const resolved = resolveOptions(options, () => memoryTier());
    this.#options = resolved;
    this.#memory = resolved.memory;
    this.#store = resolved.memory?.store;
    this.#remotes = resolved.remotes;
    this.#clock = resolved.clock;
    this.#guard = new FillGuard(resolved.memory !== undefined || resolved.remotes.length > 1);
    this.#readClock = resolved.clock === Date.now ? coarseClock() : resolved.clock;
    this.#keys = new KeyRules(resolved.maxKeyBytes);
    this.#clone = resolved.memory?.valueMode === 'clone';
    this.#lives = [...(this.#memory ? [this.#memory] : []), ...this.#remotes];
    this.#offset = this.#memory ? 1 : 0;
    this.#tierNames = this.#lives.map((t) => t.name);
    this.#writeMask = writeMask(options.writeTo, this.#tierNames, 'writeTo');
    this.#counters = new CacheCounters([...(this.#memory ? [this.#memory] : []), ...this.#remotes]);
    this.#memoryCounters = this.#memory ? this.#counters.tiers[0] : undefined;
    this.#remoteCounters = this.#counters.tiers.slice(this.#memory ? 1 : 0);
    this.#getSteps = this.#remotes.map((_, index) => this.#getStep(index));
    exposeMetrics(this, { counters: this.#counters, stats: () => this.stats() });
    this.#plan = resolvePlan({
      ...options,
      lock: options.lock === undefined ? undefined : options.lock !== false,
    });
    this.#eager = this.#plan.eagerRefresh > 0;
    this.#lockTier = this.#remotes.findIndex((tier) => tier instanceof RedisTier);
    if (this.#lockTier >= 0) {
      const tier = this.#remotes[this.#lockTier] as RedisTier;
      this.#lock = new DistributedLock(tier.client, resolveLock(options.lock ?? true), tier.prefix);
    } else if (this.#plan.lock) {
      throw new InvalidOptionError('lock', 'distributed single flight needs a Redis tier to hold its locks');
    }
    if (this.#memory !== undefined) {
      const tier = this.#memory.name;
      const removals = this.#memoryCounters!.removals;
      this.#memory.removalHook = (key, _entry, reason) => {
        removals[reason]++;
        if (this.#events.has('remove')) this.#events.emit('remove', { key, tier, reason });
      };
    }
    for (const tier of this.#remotes) {
      tier.onCorrupt = (key, problem, cause) => {
        this.#counters.corrupt++;
        this.#report(new CorruptEntryError(key, tier.name, problem, cause), false);
      };
      tier.onBreaker = (state) => this.#events.emit('breaker', { tier: tier.name, state });
      tier.onRepairError = (error) => this.#report(new TierError(tier.name, 'repair', error), false);
    }
    const redis = this.#remotes.find((tier): tier is RedisTier => tier instanceof RedisTier);
    this.#namespaces = new NamespaceVersions(redis, resolved.bus !== undefined);
    this.#namespaces.onError = (error) => this.#report(error, true);
    this.#namespaces.onChange = (name) => {
      this.#guard.invalidateAll();
      this.#store?.deleteWhere((key) => key.startsWith(`${name}:v`), 'invalidate');
    };
    if (resolved.bus !== undefined) {
      this.#local = new LocalSync(this.#store, this.#guard, this.#clock, resolved.bus.disconnectedTtl);
      this.#local.shared.push(this.#namespaces);
      this.#bus = new InvalidationBus(
        resolved.bus.transport,
        this.#local,
        resolved.bus,
        this.#events,
        (error) => this.#report(error, false),
        this.#counters,
      );
    }
    const tagStore = redis;
    const bus = this.#bus;
    const untrustedFor = resolved.bus?.disconnectedTtl ?? UNBUSSED_TAG_AGE;
    this.#tags = new TagTimes(
      tagStore && {
        client: tagStore.client,
        prefix: tagStore.prefix,
        guarded: (operation, write, run) => tagStore.guarded(operation, write, run),
      },
      this.#clock,
      () => (bus?.subscribed === true ? Number.POSITIVE_INFINITY : untrustedFor),
    );
    this.#local?.shared.push(this.#tags);
    if (this.#store !== undefined) this.#store.tagged = (entry) => this.#tags.isStale(entry);
  }

  /** The value for `key` from the first tier that has it, or undefined. Never calls a loader. */
  get<T = unknown>(key: string): Promise<T | undefined> {
    // Not async: an L1 hit returns an already-settled promise without an async frame, which is
    // most of the cost of a hit. Every failure still arrives as a rejection, never a throw.
    const hit = this.#lookup(key);
    if (hit === undefined) return this.#checked(key, 'get', () => this.#getBelow<T>(key));
    if (hit === MISS) return this.#getBelow<T>(key);
    return this.#settled(hit) as Promise<T>;
  }

  /**
   * The cached value for `key`, or the loader's result, which is then written to every tier.
   * Concurrent calls for one key share one lookup and one loader call.
   */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    const refused = options === undefined ? undefined : refusedOptions(options, 'getOrSet');
    if (refused !== undefined) return refused;
    const hit = this.#lookup(key);
    if (hit === undefined) return this.#checked(key, 'getOrSet', () => this.#getOrLoad(key, loader, options));
    if (hit === MISS) return this.#getOrLoad(key, loader, options);
    if (this.#eager || options !== undefined) this.#eagerCheck(key, hit.entry, loader, options);
    return this.#settled(hit) as Promise<T>;
  }

  /**
   * Like `get`, with the entry's metadata: when it was created, until when it is fresh (and
   * stale, with grace), and which tier answered. For HTTP caching headers.
   */
  async getEntry<T = unknown>(key: string): Promise<EntryInfo<T> | undefined> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError('getEntry');
    const hit = this.#memoryEntry(key);
    if (hit !== undefined) return hit as EntryInfo<T>;
    if (this.#remotes.length === 0) return undefined;
    const ticket = this.#guard.begin(key);
    const info: FlightInfo = { entry: undefined, tier: '' };
    try {
      const found = await this.#readRemotes(key, ticket, info);
      return found === undefined ? undefined : this.#info<T>(found, info.tier);
    } finally {
      this.#guard.end(ticket);
    }
  }

  /**
   * Like `getOrSet`, with the entry's metadata (see `getEntry`); `tier` is `'origin'` when the
   * loader ran. Shares the single flight with `getOrSet`: concurrent calls of either kind for
   * one key share one lookup and one loader call. Grace and fail-safe apply as in `getOrSet`;
   * eager refresh does not (an HTTP route's loader can only run inside its own request).
   */
  async getOrSetEntry<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<EntryInfo<T>> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError('getOrSetEntry');
    const hit = this.#memoryEntry(key);
    if (hit !== undefined) return hit as EntryInfo<T>;
    const flight = this.#flightFor(key, loader, options);
    const value = await flight;
    const info = this.#flightInfo.get(flight);
    if (info?.entry !== undefined) return this.#info<T>(info.entry, info.tier);
    // A getManyOrSet flight keeps no metadata: describe what L1 now holds, else an uncached value.
    const now = this.#clock();
    const stored = this.#store?.peek(key, now);
    if (stored !== undefined) return this.#info<T>(stored, this.#memory!.name);
    return { value: this.#output(value) as T, createdAt: now, expiresAt: now, tier: 'origin' };
  }

  /** Values for `keys` (aligned), with one lookup per tier for all keys that missed above it. */
  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#keys.checkAll(keys);
    if (this.#closed) throw new CacheClosedError('getMany');
    const results = new Array<T | undefined>(keys.length).fill(undefined);
    const missing = this.#memoryPass(keys, results);
    if (missing.size === 0 || this.#remotes.length === 0) return results;
    const tickets = [...missing.keys()].map((key) => this.#guard.begin(key));
    try {
      const found = await this.#readRemotesMany(tickets);
      for (const [key, entry] of found)
        for (const i of missing.get(key)!) results[i] = this.#output(entry.value) as T;
    } finally {
      for (const ticket of tickets) this.#guard.end(ticket);
    }
    return results;
  }

  /**
   * Like `getMany`, then one call of `loader` for every key no tier had; its results are written
   * to every tier in one round trip per tier. Keys already being loaded by another call are
   * joined, not loaded twice.
   */
  async getManyOrSet<T>(
    keys: readonly string[],
    loader: BatchLoader<T>,
    options?: GetOrSetOptions,
  ): Promise<T[]> {
    this.#keys.checkAll(keys);
    if (this.#closed) throw new CacheClosedError('getManyOrSet');
    if (typeof loader !== 'function')
      throw new InvalidOptionError('loader', `expected a function, got ${describe(loader)}`);
    if (options !== undefined) checkWriteOptions(keys[0] ?? '', options, this.#tierNames, 'getManyOrSet');
    const plan = this.#planFor(options);
    const results = new Array<T>(keys.length);
    const due = plan.eagerRefresh > 0 && this.#memory !== undefined ? new Set<string>() : undefined;
    const missing = this.#memoryPass(keys, results, due && { ratio: plan.eagerRefresh, due });
    if (due !== undefined && due.size > 0) this.#refreshDue(due, loader, options, plan);
    if (missing.size === 0) return results;
    const waits: Promise<void>[] = [];
    const mine = new Map<string, Deferred>();
    for (const [key, positions] of missing) {
      let flight = this.#flights.get(key);
      if (flight === undefined) {
        const deferred = defer();
        mine.set(key, deferred);
        flight = deferred.promise;
        this.#join(key, flight);
      }
      waits.push(
        flight.then((value) => {
          for (const i of positions) results[i] = this.#output(value) as T;
        }),
      );
    }
    // Tracked: under grace the callers may have their answers before the load is done.
    if (mine.size > 0) this.#track(this.#loadBatch(mine, loader, options, plan));
    await Promise.all(waits);
    return results;
  }

  /** Writes `value` to every tier. Rejects, writing nothing, if the value cannot be encoded. */
  async set<T>(key: string, value: T, options?: WriteOptions): Promise<void> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError('set');
    if (value === undefined)
      throw new InvalidValueError(key, 'undefined cannot be stored; use delete() to remove a key');
    if (options !== undefined) checkWriteOptions(key, options, this.#tierNames, 'set');
    await this.#write([{ key, value, options }], undefined);
  }

  /** Writes many entries: every value is encoded first, then one round trip per remote tier. */
  async setMany<T>(items: readonly SetManyItem<T>[], options?: WriteOptions): Promise<void> {
    if (!Array.isArray(items)) {
      throw new InvalidOptionError('items', `expected an array of { key, value }, got ${describe(items)}`);
    }
    if (this.#closed) throw new CacheClosedError('setMany');
    const writes: WriteItem[] = items.map((item: SetManyItem<T>) => {
      checkSetManyItem(item);
      this.#keys.check(item.key);
      if (item.value === undefined)
        throw new InvalidValueError(item.key, 'undefined cannot be stored; use delete() to remove a key');
      const own =
        item.ttl === undefined &&
        item.jitter === undefined &&
        item.writeTo === undefined &&
        item.tags === undefined
          ? options
          : { ...options, ...item };
      if (own !== undefined) checkWriteOptions(item.key, own, this.#tierNames, 'setMany');
      return { key: item.key, value: item.value, options: own };
    });
    await this.#write(writes, undefined);
  }

  /** Removes `key` from every tier; true if any tier had it. */
  async delete(key: string): Promise<boolean> {
    return (await this.deleteMany([key])) > 0;
  }

  /** Removes `keys` from every tier (one round trip per remote tier); how many tier copies went. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    this.#keys.checkAll(keys);
    if (this.#closed) throw new CacheClosedError('delete');
    let removed = 0;
    for (const key of keys) {
      this.#guard.invalidate(key);
      if (this.#store?.delete(key)) {
        removed++;
        this.#memoryCounters!.deletes++;
      }
    }
    const counts = await Promise.all(
      this.#remotes.map(async (tier, i) => {
        try {
          const count = await this.#timed(i, 'delete', () => tier.delete(keys));
          this.#remoteCounters[i]!.deletes += count;
          return count;
        } catch (error) {
          this.#tierFault(tier, i, 'delete', error, keys.length === 1 ? keys[0] : undefined);
          return 0;
        }
      }),
    );
    // A read that missed L1 after it was emptied above may have read a remote copy before it
    // went: it must not fill L1 with it.
    for (const key of keys) this.#guard.invalidate(key);
    await this.#publish(keysInvalidation(keys));
    return counts.reduce((sum, n) => sum + n, removed);
  }

  /**
   * Removes every key matching a Redis glob (`*`, `?`, `[a-z]`, `\` before a literal; build
   * literal parts with `escapeGlob`) from every tier: L1 by matching its keys, Redis tiers by
   * SCAN in batches (never KEYS), then one invalidation for the pattern on the bus. Resolves
   * with the number of copies removed. O(keys in each tier): meant for rare, broad changes.
   */
  async deleteByPattern(pattern: string): Promise<number> {
    if (typeof pattern !== 'string' || pattern === '')
      throw new InvalidOptionError('pattern', `expected a non-empty glob string, got ${describe(pattern)}`);
    if (this.#closed) throw new CacheClosedError('deleteByPattern');
    const matches = globMatcher(pattern);
    this.#guard.invalidateAll();
    const removed = this.#store?.deleteWhere((key) => matches(key), 'delete') ?? 0;
    if (removed > 0) this.#memoryCounters!.deletes += removed;
    const counts = await Promise.all(
      this.#remotes.map(async (tier, i) => {
        try {
          if (tier.deleteMatching === undefined) throw new Error('this tier cannot delete by pattern');
          const count = await this.#timed(i, 'delete', () => tier.deleteMatching!(pattern));
          this.#remoteCounters[i]!.deletes += count;
          return count;
        } catch (error) {
          this.#tierFault(tier, i, 'delete', error);
          return 0;
        }
      }),
    );
    this.#guard.invalidateAll();
    const inv = emptyInvalidation();
    inv.patterns.add(pattern);
    await this.#publish(inv);
    return counts.reduce((sum, n) => sum + n, removed);
  }

  /**
   * A view whose keys live in namespace `name` (stored as `name:v<version>:key`). Its `clear()`
   * is O(1) on every instance: it bumps the version (INCR in Redis), so the old entries become
   * unreachable and expire on their own; the new version is propagated on the bus.
   */
  namespace(name: string): CacheNamespace {
    if (typeof name !== 'string' || name === '' || name.includes(':'))
      throw new InvalidOptionError(
        'namespace',
        `expected a non-empty name without ':', got ${describe(name)}`,
      );
    return new CacheNamespace(name, this, this.#namespaces, async () => {
      if (this.#closed) throw new CacheClosedError('namespace.clear');
      const inv = emptyInvalidation();
      inv.namespaces.set(name, await this.#namespaces.bump(name));
      await this.#publish(inv);
    });
  }

  /**
   * Invalidates every entry carrying any of `tags`, in every tier and on every instance, in
   * O(1) per tag: records each tag's invalidation time in Redis (one key per tag) and tells the
   * other instances on the bus. Entries created at or before that time are misses from then on
   * (and are never served stale under grace or fail-safe); nothing is scanned or deleted, the
   * old entries expire on their own. With Redis down the time is kept locally and reported.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    checkTags(tags);
    if (this.#closed) throw new CacheClosedError('invalidateTags');
    if (tags.length === 0) return;
    const at = this.#clock();
    // Loads in flight may carry one of these tags: they may not fill (the fill guard).
    this.#guard.invalidateAll();
    try {
      await this.#tags.invalidate(tags, at);
    } catch (error) {
      const i = this.#lockTier;
      this.#tierFault(this.#remotes[i]!, i, 'set', error);
    }
    this.#guard.invalidateAll();
    const inv = emptyInvalidation();
    for (const tag of tags) inv.tags.set(tag, at);
    await this.#publish(inv);
  }

  /**
   * Write-around: runs `write` (the caller's write to the origin), then removes `key` from
   * every tier and every instance's L1, so the next read loads the new value. If `write`
   * throws, nothing is invalidated and the error propagates.
   */
  async writeAround<R>(key: string, write: () => R | Promise<R>): Promise<R> {
    this.#keys.check(key);
    if (typeof write !== 'function')
      throw new InvalidOptionError('write', `expected a function, got ${describe(write)}`);
    if (this.#closed) throw new CacheClosedError('writeAround');
    const result = await write();
    await this.deleteMany([key]);
    return result;
  }

  /**
   * Whether `get(key)` would find a value: some tier holds a live entry that no tag invalidated
   * (a copy kept only for grace or fail-safe does not count). Does not promote or count as a hit;
   * reads the entry from a remote tier rather than asking whether the key exists.
   */
  async has(key: string): Promise<boolean> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError('has');
    if (this.#store?.peek(key, this.#clock()) !== undefined) return true;
    for (const [i, tier] of this.#remotes.entries()) {
      // The entry itself, not EXISTS: Redis keeps an expired copy for grace and fail-safe, and
      // a tag-invalidated one, which get() would not serve.
      let found: StoredEntry | undefined;
      try {
        found = await this.#timed(i, 'has', () => tier.get(key));
      } catch (error) {
        this.#tierFault(tier, i, 'has', error, key);
        continue;
      }
      if (found?.entry.tags !== undefined && !(await this.#tagsCurrent([found]))[0]) continue;
      if (found !== undefined && found.entry.expiresAt > this.#clock()) return true;
    }
    return false;
  }

  /** Removes this cache's entries from every tier: L1 entirely, remote tiers by their prefix. */
  async clear(): Promise<void> {
    if (this.#closed) throw new CacheClosedError('clear');
    this.#guard.invalidateAll();
    this.#store?.clear('delete');
    let refused: TierError | undefined;
    await Promise.all(
      this.#remotes.map(async (tier, i) => {
        try {
          await this.#timed(i, 'clear', () => tier.clear());
        } catch (error) {
          // A clear that missed the tier (down, timed out, skipped) is done when it is back; one
          // Redis refused (an error reply, e.g. no SCAN permission) leaves every key: say so.
          if (!(error instanceof Error && error.name === 'ReplyError'))
            this.#tierFault(tier, i, 'clear', error);
          else {
            this.#remoteCounters[i]!.fault('clear');
            refused ??= new TierError(tier.name, 'clear', error);
          }
        }
      }),
    );
    this.#guard.invalidateAll();
    const all = emptyInvalidation();
    all.all = true;
    await this.#publish(all);
    if (refused !== undefined) throw refused;
  }

  /**
   * A cached version of `fn`: calls with equal arguments (objects compared by content, key order
   * ignored) share one cache entry and one in-flight call.
   */
  wrap<A extends unknown[], R>(
    fn: (...args: A) => Promise<R> | R,
    options: WrapOptions<A> = {},
  ): (...args: A) => Promise<R> {
    // Refusals reach the wrapped function's calls as rejections, as for every cache method.
    const plan = resolveWrap(fn, options, this.#tierNames);
    if (isCacheError(plan)) return () => Promise.reject(plan);
    const { name, write } = plan;
    const keyOf =
      (plan.key as ((...args: A) => string) | undefined) ??
      ((...args: A) => `${name}:${stableStringify(args)}`);
    return async (...args: A) => this.getOrSet<R>(keyOf(...args), () => fn(...args), write);
  }

  /**
   * Fills L1 (and any remote tier above the one holding them) with `keys` from the remote tiers,
   * `batchSize` keys per round trip, so a new instance starts with a warm L1. Keys no tier has
   * are skipped. Resolves with the counts; `onProgress` hears after every batch.
   */
  async warm(keys: Iterable<string>, options: WarmOptions = {}): Promise<WarmProgress> {
    if (this.#closed) throw new CacheClosedError('warm');
    const batchSize = checkWarmOptions(options, 'warm');
    const progress: WarmProgress = { processed: 0, loaded: 0 };
    for (const batch of batches(keys, batchSize)) {
      this.#keys.checkAll(batch);
      const tickets = batch.map((key) => this.#guard.begin(key));
      try {
        progress.loaded += (await this.#readRemotesMany(tickets)).size;
      } finally {
        for (const ticket of tickets) this.#guard.end(ticket);
      }
      progress.processed += batch.length;
      options.onProgress?.({ ...progress });
    }
    return progress;
  }

  /**
   * Writes every item of `source` (for example the rows of an origin query, sync or async) to
   * every tier under `keyOf(item)`, in batches of one round trip per remote tier.
   */
  async warmFrom<T>(
    source: Iterable<T> | AsyncIterable<T>,
    keyOf: (item: T) => string,
    options: WarmOptions & WriteOptions & WarmTagsOption<T> = {},
  ): Promise<WarmProgress> {
    if (this.#closed) throw new CacheClosedError('warmFrom');
    if (typeof keyOf !== 'function')
      throw new InvalidOptionError('keyOf', `expected a function of an item, got ${describe(keyOf)}`);
    const batchSize = checkWarmOptions(options, 'warmFrom');
    const { ttl, jitter, writeTo, tags, tagsOf } = options;
    if (tagsOf !== undefined && typeof tagsOf !== 'function')
      throw new InvalidOptionError('tagsOf', `expected a function of an item, got ${describe(tagsOf)}`);
    const write: WriteOptions | undefined =
      ttl === undefined && jitter === undefined && writeTo === undefined && tags === undefined
        ? undefined
        : {
            ...(ttl === undefined ? {} : { ttl }),
            ...(jitter === undefined ? {} : { jitter }),
            ...(writeTo === undefined ? {} : { writeTo }),
            ...(tags === undefined ? {} : { tags }),
          };
    if (write !== undefined) checkWriteOptions('warmFrom', write, this.#tierNames, 'warmFrom');
    // Per item: the call's tags and the item's own.
    const optionsOf = (item: T): WriteOptions | undefined => {
      if (tagsOf === undefined) return write;
      const own = { ...write, tags: [...(tags ?? []), ...tagsOf(item)] };
      checkWriteOptions('warmFrom', own, this.#tierNames, 'warmFrom');
      return own;
    };
    const progress: WarmProgress = { processed: 0, loaded: 0 };
    let batch: WriteItem[] = [];
    const flush = async (): Promise<void> => {
      await this.#write(batch, undefined);
      progress.processed += batch.length;
      progress.loaded += batch.length;
      batch = [];
      options.onProgress?.({ ...progress });
    };
    for await (const item of source) {
      const key = keyOf(item);
      this.#keys.check(key);
      if (item === undefined) throw new InvalidValueError(key, 'undefined cannot be stored');
      batch.push({ key, value: item, options: optionsOf(item) });
      if (batch.length >= batchSize) await flush();
    }
    if (batch.length > 0) await flush();
    return progress;
  }

  /** True once `close()` was called; every call refuses with `CacheClosedError` from then on. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends CacheEventName>(name: K, listener: CacheListener<K>): () => void {
    return this.#events.on(name, listener);
  }

  off<K extends CacheEventName>(name: K, listener: CacheListener<K>): void {
    this.#events.off(name, listener);
  }

  /**
   * Counters since creation: per tier (hits, misses, sets, deletes, errors, evictions by reason,
   * L1 entries and bytes, remote latency percentiles), loader calls, errors and latency, corrupt
   * payloads, bus messages, stale values served.
   */
  stats(): CacheStats {
    const stats: CacheStats = snapshot(this.#counters);
    this.#remotes.forEach((tier, i) => {
      if (tier.health !== undefined) Object.assign(stats.tiers[i + this.#offset]!, tier.health());
    });
    if (this.#store !== undefined) {
      stats.memory = {
        entries: this.#store.size,
        weight: this.#store.weight,
        evictions: this.#store.evictions,
      };
      stats.tiers[0]!.entries = this.#store.size;
      stats.tiers[0]!.bytes = this.#store.weight;
    }
    const bus = this.#bus;
    if (bus !== undefined) {
      Object.assign(stats.bus, bus.counters, {
        subscribed: bus.subscribed,
        queued: bus.queued,
        overflows: bus.overflows,
      });
    }
    return stats;
  }

  /**
   * Stops accepting calls, waits for background promotions, and closes Redis connections the
   * cache opened itself (from URLs). Clients you passed in stay open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await settledWithin([...this.#background], this.#options.closeTimeout);
    await this.#bus?.close();
    await Promise.allSettled(this.#remotes.map((tier) => tier.close()));
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * The L1 fast path of get/getOrSet: the node on a hit, MISS on a counted miss (or for any
   * valid key when there is no L1), undefined when the key needs validating (or the cache is
   * closed) on the slow path.
   */
  #lookup(key: string): MemoryNode | typeof MISS | undefined {
    if (!this.#keys.plainlyValid(key) || this.#closed) return undefined;
    const store = this.#store;
    // Without L1 a valid key goes straight below, uncounted (there are no L1 counters).
    if (store === undefined) return wellFormed(key) ? MISS : undefined;
    const node = store.hit(key, this.#readClock());
    if (node !== undefined) {
      this.#memoryCounters!.hits++;
      return node;
    }
    if (!wellFormed(key)) return undefined; // a lone surrogate: check() refuses it on the slow path
    this.#memoryCounters!.misses++;
    return MISS;
  }

  /** An L1 hit's answer: one settled promise per entry, shared by its hits, unless cloning. */
  #settled(node: MemoryNode): Promise<unknown> {
    if (this.#clone) return new Promise((resolve) => resolve(this.#output(node.entry.value)));
    return (node.settled ??= Promise.resolve(node.entry.value));
  }

  /** The slow path's entry: validates the key, then answers from L1 or goes below it. */
  async #checked<T>(key: string, operation: string, below: () => Promise<T>): Promise<T> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError(operation);
    const entry = this.#store?.get(key, this.#clock());
    if (entry !== undefined) {
      this.#memoryCounters!.hits++;
      return this.#output(entry.value) as T;
    }
    if (this.#memoryCounters !== undefined) this.#memoryCounters.misses++;
    return below();
  }

  #getBelow<T>(key: string): Promise<T | undefined> {
    if (this.#remotes.length === 0) return Promise.resolve(undefined);
    return this.#getFrom(0, key, this.#guard.begin(key)) as Promise<T | undefined>;
  }

  /**
   * get() below L1, from remote tier `index` down. Not an async function awaiting each tier: a
   * guarded tier hands its answer straight to the tier's step (#getStep), whose return value
   * settles the promise get() returned; that is one promise and no async frame per L2 read.
   */
  #getFrom(index: number, key: string, ticket: FillTicket): Promise<unknown> {
    const tier = this.#remotes[index]!;
    const step = this.#getSteps[index]!;
    return tier instanceof GuardedTier
      ? tier.read(key, step, ticket)
      : this.#getUnguarded(index, key, ticket);
  }

  /** #getFrom for a custom tier without a guard: the same steps, timed here. */
  async #getUnguarded(index: number, key: string, ticket: FillTicket): Promise<unknown> {
    const step = this.#getSteps[index]!;
    const started = now();
    let found: StoredEntry | undefined;
    try {
      found = await this.#remotes[index]!.get(key);
    } catch (error) {
      return step.failed(key, error, now() - started, ticket);
    }
    return step.found(key, found, now() - started, ticket);
  }

  /** What get() makes of remote tier `index`'s answer: a value, or the next tier's read. */
  #getStep(index: number): ReadHandler<FillTicket, unknown> {
    const tier = this.#remotes[index]!;
    const counters = this.#remoteCounters[index]!;
    const next = (key: string, ticket: FillTicket): unknown => {
      if (index + 1 < this.#remotes.length) return this.#getFrom(index + 1, key, ticket);
      this.#guard.end(ticket);
      return undefined;
    };
    const settle = (key: string, found: StoredEntry | undefined, ticket: FillTicket): unknown => {
      // The coarse clock, as for L1 hits: an expiry may be seen up to a millisecond late.
      if (found === undefined || found.entry.expiresAt <= this.#readClock()) {
        counters.misses++;
        return next(key, ticket);
      }
      counters.hits++;
      try {
        if (index > 0 || this.#memory !== undefined) this.#promote([[ticket, found]], index);
      } finally {
        this.#guard.end(ticket);
      }
      return found.entry.value;
    };
    return {
      found: (key, found, ms, ticket) => {
        counters.time('get', ms);
        if (found?.entry.tags === undefined) return settle(key, found, ticket);
        return this.#tagsCurrent([found]).then(([current]) =>
          settle(key, current === true ? found : undefined, ticket),
        );
      },
      failed: (key, error, ms, ticket) => {
        counters.time('get', ms);
        try {
          this.#tierFault(tier, index, 'get', error, key);
        } catch (thrown) {
          this.#guard.end(ticket);
          throw thrown;
        }
        return next(key, ticket);
      },
    };
  }

  /** After an L1 miss: join the key's flight, or start one (lower tiers, then the loader). */
  async #getOrLoad<T>(key: string, loader: Loader<T>, options: GetOrSetOptions | undefined): Promise<T> {
    return this.#output(await this.#flightFor(key, loader, options)) as T;
  }

  #flightFor(key: string, loader: Loader<unknown>, options: GetOrSetOptions | undefined): Promise<unknown> {
    let flight = this.#flights.get(key);
    if (flight === undefined) {
      if (typeof loader !== 'function')
        throw new InvalidOptionError('loader', `expected a function, got ${describe(loader)}`);
      if (options !== undefined) checkWriteOptions(key, options, this.#tierNames, 'getOrSet');
      const plan = this.#planFor(options);
      let stale: Entry | undefined;
      if (plan.keep > 0 && this.#store !== undefined) {
        const now = this.#clock();
        stale = this.#store.peekStale(key, now);
        if (stale !== undefined && now < stale.expiresAt + plan.grace) {
          // Within grace: the stale L1 copy answers at once, and one refresh runs behind it.
          if (stale.expiresAt <= now) {
            this.#servedStale(key, 'grace');
            this.#refresh(key, loader, options, plan, 'grace');
          }
          const answered = Promise.resolve(stale.value);
          this.#flightInfo.set(answered, { entry: stale, tier: this.#memory!.name });
          return answered;
        }
      }
      const info: FlightInfo = { entry: undefined, tier: '' };
      flight = this.#load(key, loader, options, plan, stale, info);
      this.#flightInfo.set(flight, info);
      this.#join(key, flight);
    }
    return flight;
  }
  /** The cache's load plan, or the call's options resolved over it. */
  #planFor(options: GetOrSetOptions | undefined): LoadPlan {
    if (
      options === undefined ||
      (options.grace === undefined &&
        options.failSafe === undefined &&
        options.softTimeout === undefined &&
        options.hardTimeout === undefined &&
        options.eagerRefresh === undefined &&
        options.lock === undefined)
    ) {
      return this.#plan;
    }
    const plan = resolvePlan(options, this.#plan);
    if (plan.lock && this.#lock === undefined)
      throw new InvalidOptionError('lock', 'distributed single flight needs a Redis tier to hold its locks');
    return plan;
  }

  /**
   * On a getOrSet hit: starts a background refresh when the entry is in the last part of its
   * life. L1's share of the life is measured against the memory tier's TTL, so a short L1 copy
   * of a long-lived value refreshes from the tier below, not from the origin.
   */
  #eagerCheck(
    key: string,
    entry: Entry,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
  ): void {
    const ratio = options?.eagerRefresh ?? this.#plan.eagerRefresh;
    if (typeof ratio !== 'number' || !(ratio > 0 && ratio < 1) || typeof loader !== 'function') return;
    if (!isDue(entry, ratio, this.#readClock(), this.#memory!.ttl)) return;
    // A key loading already (a getManyOrSet eager refresh runs as flights) is left to that.
    if (this.#refreshes.has(key) || this.#flights.has(key)) return;
    let plan: LoadPlan;
    try {
      plan = this.#planFor(options);
    } catch {
      return; // a bad per-call option is reported by the next call that misses
    }
    this.#refresh(key, loader, options, plan, 'eager');
  }

  /** The L1 entry for `key` with its metadata, counting the hit or miss (getEntry's L1 pass). */
  #memoryEntry(key: string): EntryInfo | undefined {
    const store = this.#store;
    if (store === undefined) return undefined;
    const entry = store.get(key, this.#clock());
    if (entry === undefined) {
      this.#memoryCounters!.misses++;
      return undefined;
    }
    this.#memoryCounters!.hits++;
    return this.#info(entry, this.#memory!.name);
  }

  #info<T>(entry: Entry, tier: string): EntryInfo<T> {
    const info = {
      value: this.#output(entry.value) as T,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      tier,
    };
    const staleUntil = entry.staleUntil;
    return staleUntil === undefined || staleUntil <= entry.expiresAt ? info : { ...info, staleUntil };
  }

  #output(value: unknown): unknown {
    return this.#clone ? cloneValue('(read from L1)', value) : value;
  }

  #join(key: string, flight: Promise<unknown>): void {
    this.#flights.set(key, flight);
    const done = (): void => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    };
    flight.then(done, done);
  }

  /**
   * L1 pass of a multi-key read: fills hits into `results`, returns missing key → positions.
   * With `eager`, hits in the last `1 - ratio` of their life go into `due`.
   */
  #memoryPass<T>(
    keys: readonly string[],
    results: (T | undefined)[],
    eager?: { ratio: number; due: Set<string> },
  ): Map<string, number[]> {
    const missing = new Map<string, number[]>();
    const store = this.#store;
    const now = this.#clock();
    keys.forEach((key, i) => {
      const entry = store?.get(key, now);
      if (entry !== undefined) {
        this.#memoryCounters!.hits++;
        results[i] = this.#output(entry.value) as T;
        if (eager !== undefined && isDue(entry, eager.ratio, now, this.#memory!.ttl)) eager.due.add(key);
        return;
      }
      if (store !== undefined) this.#memoryCounters!.misses++;
      const positions = missing.get(key);
      if (positions === undefined) missing.set(key, [i]);
      else positions.push(i);
    });
    return missing;
  }

  /**
   * A flight: the remote tiers, then the loader. An expired copy still kept (from L1, or the
   * newest one a remote tier holds) is served under grace, or stands in for a failing or slow
   * loader (#produce).
   */
  async #load(
    key: string,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
    stale: Entry | undefined,
    info: FlightInfo,
  ): Promise<unknown> {
    const ticket = this.#guard.begin(key);
    let handedOff = false;
    try {
      const slot: StaleSlot = { entry: stale, tier: this.#memory?.name ?? '' };
      const found = await this.#readRemotes(key, ticket, info, plan.keep > 0 ? slot : undefined);
      if (found !== undefined) {
        info.entry = found;
        return found.value;
      }
      const now = this.#clock();
      const kept =
        slot.entry !== undefined && now < slot.entry.expiresAt + plan.keep ? slot.entry : undefined;
      if (kept !== undefined) {
        // Whatever answers below, a stale answer describes the kept copy.
        info.entry = kept;
        info.tier = slot.tier;
        if (now < kept.expiresAt + plan.grace) {
          this.#servedStale(key, 'grace');
          this.#refresh(key, loader, options, plan, 'grace');
          return kept.value;
        }
      }
      handedOff = true;
      return await this.#produce(key, loader, options, plan, ticket, kept, info);
    } finally {
      if (!handedOff) this.#guard.end(ticket);
    }
  }

  /**
   * Calls the loader (after the distributed lock, when on) and applies timeouts and fail-safe.
   * Takes over `ticket` and ends it when the loader's result is written, which may be after a
   * soft timeout returned `stale` to the callers.
   */
  async #produce(
    key: string,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
    ticket: FillTicket,
    stale: Entry | undefined,
    /** The flight's metadata; undefined for a background refresh. */
    info: FlightInfo | undefined,
  ): Promise<unknown> {
    let owned = true;
    try {
      if (this.#backingOff(key)) {
        if (info === undefined) return undefined;
        if (stale !== undefined && plan.failSafe) {
          this.#servedStale(key, 'backoff');
          return stale.value;
        }
      }
      let lease: Lease | undefined;
      if (plan.lock && this.#lock !== undefined) {
        const outcome = await this.#lockOrWait(key, ticket);
        if ('found' in outcome) return outcome.found.value;
        lease = outcome.lease;
      }
      owned = false;
      const work = this.#runLoader(key, loader, options, plan, ticket, lease, info);
      try {
        return await deadline(work, key, stale === undefined ? FOREVER : plan.softTimeout, plan.hardTimeout);
      } catch (error) {
        if (error instanceof SoftTimeout) {
          this.#loaderTimedOut(key, 'soft');
          this.#servedStale(key, 'softTimeout');
          return stale!.value;
        }
        if (error instanceof LoaderTimeoutError) this.#loaderTimedOut(key, 'hard');
        if (plan.failSafe) {
          this.#backOff(key, plan);
          if (stale !== undefined) {
            this.#servedStale(key, 'failSafe');
            return stale.value;
          }
        }
        throw error;
      }
    } finally {
      if (owned) this.#guard.end(ticket);
    }
  }

  /** One loader call and the write of its result; ends `ticket` and releases `lease` when done. */
  async #runLoader(
    key: string,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
    ticket: FillTicket,
    lease: Lease | undefined,
    info: FlightInfo | undefined,
  ): Promise<unknown> {
    const letGo = lease === undefined ? undefined : this.#lock!.hold(lease);
    try {
      this.#counters.loaderCalls++;
      const context = new LoadContext(key);
      let value: unknown;
      const started = now();
      const loadStart = this.#clock();
      try {
        value = await loader(context);
      } catch (error) {
        this.#counters.loaderErrors++;
        const failure = new LoaderError(key, error);
        this.#events.emit('loaderError', { key, error: failure });
        throw failure;
      } finally {
        this.#counters.timeLoader(now() - started);
      }
      this.#backoff.delete(key);
      const loadedAt = this.#clock();
      const origin: Entry = { value, createdAt: loadedAt, expiresAt: loadedAt };
      let entry = origin;
      if (!context.skipped && this.#cacheable(value) && !this.#closed) {
        const own = withOverrides(options, context.overrides);
        const written = new Map<string, Entry>();
        const item: WriteItem = { key, value, options: own, keep: plan.keep };
        if (own?.tags !== undefined) item.createdAt = loadStart;
        await this.#write([item], new Map([[key, ticket]]), written);
        entry = written.get(key) ?? origin;
      }
      if (info !== undefined) {
        info.tier = 'origin';
        info.entry = entry;
      }
      return value;
    } finally {
      letGo?.();
      this.#guard.end(ticket);
      // Released after the write, so waiters polling the tier find the value before the lock goes.
      if (lease !== undefined) this.#track(this.#lock!.release(lease).then(noop, noop));
    }
  }

  /**
   * Distributed single flight: takes the key's lock, or waits for the instance holding it to
   * write the value (polling the tiers, woken early by #wakes), or loads itself when the wait
   * runs out or Redis cannot be reached.
   */
  async #lockOrWait(
    key: string,
    ticket: FillTicket,
  ): Promise<{ found: Entry } | { lease: Lease | undefined }> {
    const lock = this.#lock!;
    // The tier's breaker already knows Redis is gone: no lock round trip to time out on.
    if ((this.#remotes[this.#lockTier] as RedisTier).health().breaker?.state === 'open')
      return { lease: undefined };
    const giveUpAt = Date.now() + lock.options.wait;
    let waited = false;
    for (;;) {
      let lease: Lease | undefined;
      try {
        lease = await lock.acquire(key);
      } catch (error) {
        this.#events.emit('lock', { key, outcome: 'failed' });
        this.#tierFault(this.#remotes[this.#lockTier]!, this.#lockTier, 'lock', error, key, false);
        return { lease: undefined };
      }
      if (lease !== undefined) {
        this.#counters.lockAcquired++;
        this.#events.emit('lock', { key, outcome: 'acquired' });
        // The holder before us may have written and released between our miss and our lock.
        const found = await this.#readRemotes(key, ticket);
        if (found === undefined) return { lease };
        this.#track(lock.release(lease).then(noop, noop));
        return { found };
      }
      if (!waited) {
        waited = true;
        this.#counters.lockWaited++;
        this.#events.emit('lock', { key, outcome: 'waited' });
      }
      if (Date.now() >= giveUpAt) {
        this.#counters.lockTimedOut++;
        this.#events.emit('lock', { key, outcome: 'timedOut' });
        return { lease: undefined };
      }
      await this.#wakes.sleep(key, lock.options.poll);
      const found = await this.#readRemotes(key, ticket);
      if (found !== undefined) return { found };
    }
  }

  /** Starts one background refresh of `key` unless one runs; close() waits for it. */
  #refresh(
    key: string,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
    reason: RefreshReason,
  ): void {
    if (this.#refreshes.has(key) || this.#closed) return;
    this.#counters.refreshes++;
    this.#events.emit('refresh', { key, reason });
    const work = this.#refreshNow(key, loader, options, plan, reason).then(noop, (cause: unknown) =>
      this.#refreshFailed(key, reason, cause),
    );
    this.#refreshes.set(key, work);
    void work.finally(() => this.#refreshes.delete(key));
    this.#track(work);
  }

  #loaderTimedOut(key: string, kind: 'soft' | 'hard'): void {
    if (kind === 'soft') this.#counters.softTimeouts++;
    else this.#counters.hardTimeouts++;
    this.#events.emit('loaderTimeout', { key, kind });
  }

  #refreshFailed(key: string, reason: RefreshReason, cause: unknown): void {
    this.#counters.refreshErrors++;
    const error = isCacheError(cause) ? cause : new LoaderError(key, cause);
    this.#events.emit('refreshFailed', { key, reason, error });
    this.#report(error, false);
  }

  /**
   * getManyOrSet's eager refresh: its L1 hits in the last part of their life are refreshed in
   * the background by one batch, through the same path as its misses (a fresh copy below that
   * is not itself due is promoted rather than loaded). Keys already loading are left to that.
   */
  #refreshDue(
    due: ReadonlySet<string>,
    loader: BatchLoader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
  ): void {
    if (this.#closed) return;
    const mine = new Map<string, Deferred>();
    for (const key of due) {
      // As getOrSet's refresh: a key backing off from a failing loader is not refreshed.
      if (this.#flights.has(key) || this.#refreshes.has(key) || this.#backingOff(key)) continue;
      const deferred = defer();
      mine.set(key, deferred);
      this.#join(key, deferred.promise);
      this.#counters.refreshes++;
      this.#events.emit('refresh', { key, reason: 'eager' });
      deferred.promise.catch((cause: unknown) => this.#refreshFailed(key, 'eager', cause));
    }
    if (mine.size > 0) this.#track(this.#loadBatch(mine, loader, options, plan, true));
  }

  async #refreshNow(
    key: string,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
    reason: RefreshReason,
  ): Promise<void> {
    const ticket = this.#guard.begin(key);
    let handedOff = false;
    try {
      // A fresh copy below (promoted by the read) is a refresh, unless it is itself due.
      const found = await this.#readRemotes(key, ticket);
      if (found !== undefined) {
        if (reason !== 'eager' || !isDue(found, plan.eagerRefresh, this.#clock(), FOREVER)) return;
      }
      handedOff = true;
      await this.#produce(key, loader, options, plan, ticket, undefined, undefined);
    } finally {
      if (!handedOff) this.#guard.end(ticket);
    }
  }

  #servedStale(key: string, reason: StaleReason): void {
    this.#counters.staleServed++;
    this.#events.emit('stale', { key, reason });
  }

  /**
   * getManyOrSet below L1: one multi-key read per remote tier, then one batch loader call for
   * what is still missing. Under `grace` a key with a kept copy is answered from it at once and
   * refreshed by that same batch call; under `failSafe` a failing batch answers such keys from
   * their kept copies. Never rejects: every outcome goes to the keys' deferreds.
   */
  async #loadBatch(
    mine: Map<string, Deferred>,
    loader: BatchLoader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
    /** An eager refresh: a copy found below that is itself due is loaded too. */
    eager = false,
  ): Promise<void> {
    const keys = [...mine.keys()];
    const tickets = keys.map((key) => this.#guard.begin(key));
    /** The loader call's soft and hard timeouts; like getOrSet's, they cover its write too. */
    let timers: NodeJS.Timeout[] = [];
    const stale = new Map<string, Entry>();
    if (!eager && plan.keep > 0 && this.#store !== undefined) {
      const now = this.#clock();
      for (const key of keys) {
        const kept = this.#store.peekStale(key, now);
        if (kept !== undefined) stale.set(key, kept);
      }
    }
    try {
      // An eager refresh serves nothing stale: its callers have their live L1 copies.
      const found = await this.#readRemotesMany(tickets, plan.keep > 0 && !eager ? stale : undefined);
      const foundAt = this.#clock();
      const missing: string[] = [];
      for (const key of keys) {
        const entry = found.get(key);
        if (entry === undefined || (eager && isDue(entry, plan.eagerRefresh, foundAt, FOREVER)))
          missing.push(key);
        else mine.get(key)!.resolve(entry.value);
      }
      if (missing.length === 0) return;
      // A copy counts only within this call's own keep (the entry may allow longer).
      const readAt = this.#clock();
      for (const [key, entry] of stale)
        if (found.has(key) || readAt >= entry.expiresAt + plan.keep) stale.delete(key);
      /** Keys whose callers have their answer already (grace, or a timeout below). */
      const answered = new Set<string>();
      for (const [key, entry] of stale) {
        if (readAt < entry.expiresAt + plan.grace) {
          this.#servedStale(key, 'grace');
          mine.get(key)!.resolve(entry.value);
          answered.add(key);
        }
      }
      // As in getOrSet: a key whose loader failed lately under fail-safe is answered from its
      // kept copy, and left out of the call, until its back-off ends.
      const rest: string[] = [];
      for (const key of missing) {
        const kept = stale.get(key);
        if (!plan.failSafe || kept === undefined || !this.#backingOff(key)) {
          rest.push(key);
          continue;
        }
        if (readAt >= kept.expiresAt + plan.grace) {
          this.#servedStale(key, 'backoff');
          mine.get(key)!.resolve(kept.value);
        }
      }
      if (rest.length === 0) return;
      // A key whose load failed (or ran out of time): its kept copy under fail-safe, else the
      // error; under fail-safe it backs off from the loader either way.
      const fail = (key: string, error: CacheError): void => {
        if (plan.failSafe) this.#backOff(key, plan);
        if (answered.has(key)) return;
        answered.add(key);
        const kept = stale.get(key);
        if (plan.failSafe && kept !== undefined) {
          this.#servedStale(key, 'failSafe');
          mine.get(key)!.resolve(kept.value);
        } else {
          mine.get(key)!.reject(error);
        }
      };
      this.#counters.loaderCalls++;
      const context = new LoadContext(rest[0]!);
      let loaded: Awaited<ReturnType<BatchLoader<unknown>>>;
      const started = now();
      const loadStart = this.#clock();
      timers = this.#batchTimeouts(rest, stale, plan, mine, answered, fail);
      try {
        loaded = await loader(rest, context);
      } catch (error) {
        this.#counters.loaderErrors++;
        for (const key of rest) fail(key, new LoaderError(key, error));
        return;
      } finally {
        this.#counters.timeLoader(now() - started);
      }
      for (const key of rest) this.#backoff.delete(key);
      const values = valuesOf(rest, loaded);
      const writes: WriteItem[] = [];
      if (!context.skipped) {
        const own = withOverrides(options, context.overrides);
        const createdAt = own?.tags === undefined ? undefined : loadStart;
        rest.forEach((key, i) => {
          if (this.#cacheable(values[i]))
            writes.push({
              key,
              value: values[i],
              options: own,
              keep: plan.keep,
              ...(createdAt === undefined ? {} : { createdAt }),
            });
        });
      }
      const byKey = new Map(keys.map((key, i) => [key, tickets[i]!]));
      await this.#write(writes, byKey);
      rest.forEach((key, i) => mine.get(key)!.resolve(values[i]));
    } catch (error) {
      // Whatever failed (a loader result that cannot be encoded, a bad batch shape, a tier
      // fault under tierErrors:'throw') fails every key of this batch that is still waiting.
      for (const [key, deferred] of mine)
        deferred.reject(isCacheError(error) ? error : new LoaderError(key, error));
    } finally {
      for (const timer of timers) clearTimeout(timer);
      for (const ticket of tickets) this.#guard.end(ticket);
    }
  }

  /**
   * getOrSet's soft and hard timeouts, per key of a batch loader call: at `softTimeout` a key
   * with a kept copy is answered from it, at `hardTimeout` every key still waiting `fail`s with
   * a LoaderTimeoutError. The call goes on either way, and its late result is still written.
   * Returns the timers, to clear when the call and its write end.
   */
  #batchTimeouts(
    keys: readonly string[],
    stale: ReadonlyMap<string, Entry>,
    plan: LoadPlan,
    mine: ReadonlyMap<string, Deferred>,
    answered: Set<string>,
    fail: (key: string, error: CacheError) => void,
  ): NodeJS.Timeout[] {
    const timers: NodeJS.Timeout[] = [];
    if (plan.softTimeout !== FOREVER && keys.some((key) => stale.has(key))) {
      timers.push(
        setTimeout(() => {
          for (const key of keys) {
            const kept = stale.get(key);
            if (kept === undefined || answered.has(key)) continue;
            answered.add(key);
            this.#loaderTimedOut(key, 'soft');
            this.#servedStale(key, 'softTimeout');
            mine.get(key)!.resolve(kept.value);
          }
        }, plan.softTimeout),
      );
    }
    if (plan.hardTimeout !== FOREVER) {
      timers.push(
        setTimeout(() => {
          for (const key of keys) {
            if (answered.has(key)) continue;
            this.#loaderTimedOut(key, 'hard');
            fail(key, new LoaderTimeoutError(key, plan.hardTimeout));
          }
        }, plan.hardTimeout),
      );
    }
    return timers;
  }

  /** Whether `key`'s loader failed under fail-safe less than its back-off ago. */
  #backingOff(key: string): boolean {
    const until = this.#backoff.get(key);
    if (until === undefined) return false;
    if (until > this.#clock()) return true;
    this.#backoff.delete(key);
    return false;
  }

  /** Leaves `key`'s failing loader alone for the plan's back-off (oldest keys forgotten first). */
  #backOff(key: string, plan: LoadPlan): void {
    if (this.#backoff.size >= MAX_BACKOFF_KEYS) this.#backoff.delete(this.#backoff.keys().next().value!);
    this.#backoff.set(key, this.#clock() + plan.backoff);
  }

  #cacheable(value: unknown): boolean {
    if (value === undefined) return this.#options.cacheUndefined;
    if (value === null) return this.#options.cacheNull;
    return true;
  }

  /**
   * Looks `key` up in the remote tiers in order and promotes a hit to the tiers above it; names
   * the tier that answered in `info` when given. Expired copies still kept for grace/fail-safe
   * are misses; the newest goes into `stale`.
   */
  async #readRemotes(
    key: string,
    ticket: FillTicket,
    info?: FlightInfo,
    stale?: StaleSlot,
  ): Promise<Entry | undefined> {
    const remotes = this.#remotes;
    for (let i = 0; i < remotes.length; i++) {
      const tier = remotes[i]!;
      const counters = this.#remoteCounters[i]!;
      let found: StoredEntry | undefined;
      // #timed inlined: this is every L2 read, and its closure and async frame showed up there.
      const started = now();
      try {
        found = await tier.get(key);
        counters.time('get', now() - started);
      } catch (error) {
        counters.time('get', now() - started);
        this.#tierFault(tier, i, 'get', error, key);
        continue;
      }
      if (found?.entry.tags !== undefined && !(await this.#tagsCurrent([found]))[0]) found = undefined;
      // The coarse clock, as for L1 hits: an expiry may be seen up to a millisecond late.
      if (found === undefined || found.entry.expiresAt <= this.#readClock()) {
        counters.misses++;
        if (
          stale !== undefined &&
          found !== undefined &&
          staleEnd(found.entry) > this.#clock() &&
          (stale.entry === undefined || found.entry.createdAt > stale.entry.createdAt)
        ) {
          stale.entry = found.entry;
          stale.tier = tier.name;
        }
        continue;
      }
      counters.hits++;
      if (i > 0 || this.#memory !== undefined) this.#promote([[ticket, found]], i);
      if (info !== undefined) info.tier = tier.name;
      return found.entry;
    }
    return undefined;
  }

  /** The multi-key form of #readRemotes: one getMany per tier for the keys still missing. */
  async #readRemotesMany(
    tickets: readonly FillTicket[],
    /** Expired copies still kept for grace/fail-safe go here, the newest per key. */
    stale?: Map<string, Entry>,
  ): Promise<Map<string, Entry>> {
    const found = new Map<string, Entry>();
    let pending = tickets;
    for (let i = 0; i < this.#remotes.length && pending.length > 0; i++) {
      const tier = this.#remotes[i]!;
      const counters = this.#remoteCounters[i]!;
      let stored: (StoredEntry | undefined)[];
      try {
        stored = await this.#timed(i, 'getMany', () => tier.getMany(pending.map((t) => t.key)));
      } catch (error) {
        this.#tierFault(tier, i, 'getMany', error);
        continue;
      }
      if (stored.some((hit) => hit?.entry.tags !== undefined)) {
        const current = await this.#tagsCurrent(stored);
        stored = stored.map((hit, j) => (current[j] ? hit : undefined));
      }
      const now = this.#clock();
      const hits: [FillTicket, StoredEntry][] = [];
      const next: FillTicket[] = [];
      pending.forEach((ticket, j) => {
        const hit = stored[j];
        if (hit === undefined || hit.entry.expiresAt <= now) {
          counters.misses++;
          next.push(ticket);
          const kept = stale?.get(ticket.key);
          if (
            stale !== undefined &&
            hit !== undefined &&
            staleEnd(hit.entry) > now &&
            (kept === undefined || hit.entry.createdAt > kept.createdAt)
          )
            stale.set(ticket.key, hit.entry);
        } else {
          counters.hits++;
          hits.push([ticket, hit]);
          found.set(ticket.key, hit.entry);
        }
      });
      if (hits.length > 0 && (i > 0 || this.#memory !== undefined)) this.#promote(hits, i);
      pending = next;
    }
    return found;
  }

  /**
   * Copies hits from remote tier `index` into every tier above it. A copy gets the smaller of
   * its tier's TTL and the life the entry has left below, so it never outlives its source; a
   * read that raced a write (stale ticket) promotes nothing.
   */
  #promote(hits: readonly [FillTicket, StoredEntry][], index: number): void {
    const now = this.#clock();
    const current = hits.filter(([ticket]) => this.#guard.isCurrent(ticket));
    if (current.length === 0) return;
    const memory = this.#memory;
    const keep = this.#plan.keep;
    const mask = this.#writeMask;
    if (memory !== undefined && (mask === undefined || mask[0]!)) {
      for (const [ticket, { entry, size }] of current) {
        const expiresAt = this.#l1Expiry(Math.min(now + memory.lifeFor(ticket.key), entry.expiresAt), now);
        memory.set(ticket.key, copyWithLife(entry, expiresAt, keep), size);
      }
    }
    for (let i = 0; i < index; i++) {
      if (mask !== undefined && !mask[i + this.#offset]!) continue;
      const tier = this.#remotes[i]!;
      const writes: PreparedWrite[] = [];
      const lives: number[] = [];
      for (const [ticket, { entry }] of current) {
        const copy = copyWithLife(entry, Math.min(now + tier.ttl, entry.expiresAt), keep);
        try {
          writes.push(tier.prepare(ticket.key, copy)); // over this tier's maxValueBytes: not promoted
        } catch (error) {
          this.#tierFault(tier, i, 'promote', error, ticket.key, false);
          continue;
        }
        lives.push(staleEnd(copy) - now);
      }
      if (writes.length === 0) continue;
      this.#track(
        this.#timed(i, 'promote', () => tier.setMany(writes, lives)).catch((error: unknown) => {
          this.#tierFault(tier, i, 'promote', error, undefined, false);
        }),
      );
    }
  }

  /**
   * Writes entries to every tier. With tickets (loader results), a key whose ticket went stale
   * while it loaded is returned to its callers but not cached. Encodes everything before
   * writing anything. `out`, when given, receives each written key's top-tier entry.
   */
  async #write(
    items: readonly WriteItem[],
    tickets: ReadonlyMap<string, FillTicket> | undefined,
    out?: Map<string, Entry>,
  ): Promise<void> {
    const now = this.#clock();
    const memory = this.#memory;
    const remotes = this.#remotes;
    const perTier: PreparedWrite[][] = remotes.map(() => []);
    const lives: number[][] = remotes.map(() => []);
    const memoryEntries: [string, Entry][] = [];
    const written: string[] = [];
    // Keys each tier left out by writeTo must drop, memory's first.
    const drops: string[][] = this.#lives.map(() => []);
    for (const item of items) {
      if (tickets !== undefined && !this.#guard.isCurrent(tickets.get(item.key)!)) continue;
      written.push(item.key);
      const mask = maskOf(item.options, this.#tierNames, this.#writeMask);
      const expiries = this.#expiries(item, now, mask);
      const createdAt = item.createdAt ?? now;
      const tags = item.options?.tags;
      const ends = staleEnds(expiries, item.keep ?? this.#plan.keep);
      remotes.forEach((tier, i) => {
        const at = i + this.#offset;
        if (mask !== undefined && !mask[at]!) {
          drops[at]!.push(item.key);
          return;
        }
        const entry: Entry = {
          value: item.value,
          createdAt,
          expiresAt: expiries[at]!,
          staleUntil: ends[at]!,
          ...(tags && { tags }),
        };
        try {
          perTier[i]!.push(tier.prepare(item.key, entry));
        } catch (error) {
          throw isCacheError(error) ? error : new SerializationError(item.key, tier.name, error);
        }
        lives[i]!.push(ends[at]! - now);
      });
      const first: Entry = {
        value: item.value,
        createdAt,
        expiresAt: expiries[0]!,
        staleUntil: ends[0]!,
        ...(tags && { tags }),
      };
      if (memory !== undefined) {
        if (mask === undefined || mask[0]!) {
          const capped = this.#l1Expiry(first.expiresAt, now);
          memoryEntries.push([
            item.key,
            capped === first.expiresAt ? first : { ...first, expiresAt: capped },
          ]);
        } else {
          drops[0]!.push(item.key);
        }
      }
      out?.set(item.key, first);
    }
    // Reads of these keys that are still in flight now hold older data: they may not fill.
    for (const key of written) this.#guard.invalidate(key);
    if (this.#wakes.size > 0) for (const key of written) this.#wakes.wake(key);
    for (const [key, entry] of memoryEntries) {
      if (memory!.set(key, entry, undefined)) this.#memoryCounters!.sets++;
    }
    if (memory !== undefined) for (const key of drops[0]!) this.#store!.delete(key);
    await Promise.all(
      remotes.map(async (tier, i) => {
        const writes = perTier[i]!;
        const dropped = drops[i + this.#offset]!;
        if (dropped.length > 0) {
          try {
            await this.#timed(i, 'delete', () => tier.delete(dropped));
          } catch (error) {
            this.#tierFault(tier, i, 'delete', error, dropped.length === 1 ? dropped[0] : undefined);
          }
        }
        if (writes.length === 0) return;
        try {
          await this.#timed(i, 'set', () => tier.setMany(writes, lives[i]!));
          this.#remoteCounters[i]!.sets += writes.length;
        } catch (error) {
          this.#tierFault(tier, i, 'set', error, writes.length === 1 ? writes[0]!.key : undefined);
        }
      }),
    );
    // Loader fills change nothing another instance could hold; writes do. Published after the
    // remote tiers have the new value, so an instance that drops its copy re-reads the new one.
    if (tickets === undefined && written.length > 0) await this.#publish(keysInvalidation(written));
  }

  /**
   * Per hit (aligned), whether no tag of it was invalidated after it was created, reading the
   * tag times this instance does not know (or no longer trusts) from Redis in one batch. If
   * Redis cannot say, tagged hits are misses: serving them could serve invalidated data.
   */
  async #tagsCurrent(hits: readonly (StoredEntry | undefined)[]): Promise<boolean[]> {
    const tags: string[] = [];
    for (const hit of hits) if (hit?.entry.tags !== undefined) tags.push(...hit.entry.tags);
    try {
      await this.#tags.refresh(tags);
    } catch (error) {
      const i = this.#lockTier;
      this.#tierFault(this.#remotes[i]!, i, 'get', error, undefined, false);
      return hits.map((hit) => hit?.entry.tags === undefined);
    }
    return hits.map((hit) => hit?.entry.tags === undefined || !this.#tags.isStale(hit.entry));
  }

  /** Tells the other instances (never rejects; a failed publish is retried by the bus). */
  #publish(inv: Invalidation): Promise<void> {
    return this.#bus === undefined ? Promise.resolve() : this.#bus.publish(inv);
  }

  /** An L1 expiry, capped while the bus is disconnected (a missed invalidation lives no longer). */
  #l1Expiry(expiresAt: number, now: number): number {
    return this.#bus === undefined ? expiresAt : Math.min(expiresAt, this.#bus.lifeCap(now));
  }

  /**
   * Absolute expiry per tier, aligned with #lives. Each tier's life comes from the write's
   * `ttl` (one duration, or by tier name), else the negative-caching TTL for null/undefined,
   * else the tier's default; jitter shortens it; then every copy is capped by the one below.
   * Tiers outside `mask` (writeTo) are skipped.
   */
  #expiries(item: WriteItem, now: number, mask: WriteMask | undefined): number[] {
    const { ttl, jitter = this.#options.jitter } = item.options ?? {};
    const negative = item.value === null || item.value === undefined ? this.#options.negativeTtl : undefined;
    const tiers = this.#lives;
    const expiries = new Array<number>(tiers.length);
    let cap = Number.POSITIVE_INFINITY;
    for (let i = tiers.length - 1; i >= 0; i--) {
      // A tier this write skips holds no copy, so it caps nothing above it; its slot gets the
      // life of the copy below, which is what a reader of the top written tier sees.
      if (mask !== undefined && !mask[i]!) {
        expiries[i] = cap;
        continue;
      }
      const tier = tiers[i]!;
      let life: number = tier === this.#memory ? this.#memory.lifeFor(item.key) : tier.ttl;
      if (typeof ttl === 'object') {
        const own = ttl[tier.name];
        if (own !== undefined) life = parseDuration(own) as number;
      } else if (ttl !== undefined) {
        life = parseDuration(ttl) as number;
      } else if (negative !== undefined) {
        life = negative;
      }
      if (jitter > 0 && life !== Number.POSITIVE_INFINITY) life -= life * jitter * Math.random();
      cap = Math.min(cap, now + life);
      expiries[i] = cap;
    }
    return expiries;
  }

  /** Counts and reports a tier fault; rethrows it when the cache was built with tierErrors:'throw'. */
  #tierFault(
    tier: RemoteTier,
    index: number,
    operation: TierOperation,
    cause: unknown,
    key?: string,
    mayThrow = true,
  ): void {
    // Calls skipped by an open breaker are counted by the tier; its 'breaker' event said why.
    if (
      cause instanceof TierUnavailableError &&
      cause.reason === 'circuit-open' &&
      !this.#options.throwTierErrors
    )
      return;
    this.#remoteCounters[index]!.fault(operation);
    this.#report(new TierError(tier.name, operation, cause, key), mayThrow);
  }

  #report(error: CacheError, mayThrow: boolean): void {
    if (mayThrow && this.#options.throwTierErrors) throw error;
    try {
      this.#options.onError(error);
    } catch {
      // A throwing error hook must not turn a degraded request into a failed one.
    }
    this.#events.emit('error', { error });
  }

  /** Runs one call to remote tier `index`, recording its latency whether it succeeds or fails. */
  async #timed<T>(index: number, operation: TierOperation, call: () => Promise<T>): Promise<T> {
    const started = now();
    try {
      return await call();
    } finally {
      this.#remoteCounters[index]!.time(operation, now() - started);
    }
  }

  #track(work: Promise<void>): void {
    this.#background.add(work);
    void work.finally(() => this.#background.delete(work));
  }
}

/** Creates a {@link TierCache}. */
export function createCache(options: CacheOptions = {}): TierCache {
  return new TierCache(options);
}

/** Waits until every one of `work` has settled, or `ms` have passed (FOREVER: no bound). */
function settledWithin(work: readonly Promise<unknown>[], ms: number): Promise<void> {
  const all = Promise.allSettled(work).then(noop);
  return ms === FOREVER ? all : within(all, ms, 'close timed out').catch(noop);
}

/** What #lookup returns for a counted L1 miss. */
const MISS = Symbol('miss');

function* batches(keys: Iterable<string>, size: number): Generator<string[]> {
  let batch: string[] = [];
  for (const key of keys) {
    batch.push(key);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

function keysInvalidation(keys: Iterable<string>): Invalidation {
  const inv = emptyInvalidation();
  for (const key of keys) inv.keys.add(key);
  return inv;
}

/** Without a bus, how long a tag time read from Redis is trusted before L2 reads re-read it. */
const UNBUSSED_TAG_AGE = 1_000;

/** The call's write options with a loader's overrides on top; tags from both are kept. */
function withOverrides(
  options: WriteOptions | undefined,
  overrides: WriteOptions | undefined,
): WriteOptions | undefined {
  if (overrides === undefined) return options;
  const merged = { ...options, ...overrides };
  if (options?.tags !== undefined && overrides.tags !== undefined)
    merged.tags = [...new Set([...options.tags, ...overrides.tags])];
  return merged;
}

/** Most keys remembered in the fail-safe back-off map; the oldest go first beyond it. */
const MAX_BACKOFF_KEYS = 10_000;

function noop(): void {}

/**
 * A copy of `entry` expiring at `expiresAt`, kept `keep` ms past that but never past the
 * source's own stale period, so a promoted copy outlives its source in neither sense.
 */
function copyWithLife(entry: Entry, expiresAt: number, keep: number): Entry {
  const staleUntil = Math.min(expiresAt + keep, staleEnd(entry));
  return expiresAt === entry.expiresAt && staleUntil === entry.staleUntil
    ? entry
    : entry.tags === undefined
      ? { value: entry.value, createdAt: entry.createdAt, expiresAt, staleUntil }
      : { value: entry.value, createdAt: entry.createdAt, expiresAt, staleUntil, tags: entry.tags };
}

/** Per tier (aligned with expiries), when the copy is dropped: `keep` past expiry, capped by the tier below. */
function staleEnds(expiries: readonly number[], keep: number): readonly number[] {
  if (keep === 0) return expiries;
  const ends = new Array<number>(expiries.length);
  let cap = Number.POSITIVE_INFINITY;
  for (let i = expiries.length - 1; i >= 0; i--) {
    cap = Math.min(cap, expiries[i]! + keep);
    ends[i] = cap;
  }
  return ends;
}

/**
 * Whether `entry` is in the last (1 - ratio) of its life, the life being the time from its
 * creation to its expiry, or `life` if shorter (a copy that is younger than its value).
 */
function isDue(entry: Entry, ratio: number, now: number, life: number): boolean {
  return now >= entry.expiresAt - (1 - ratio) * Math.min(life, entry.expiresAt - entry.createdAt);
}

function defer(): Deferred {
  let resolve!: (value: unknown) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<unknown>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function valuesOf(keys: readonly string[], loaded: unknown): unknown[] {
  if (loaded instanceof Map) return keys.map((key) => loaded.get(key) as unknown);
  if (Array.isArray(loaded)) {
    if (loaded.length !== keys.length) {
      throw new InvalidValueError(
        keys[0]!,
        `the batch loader returned ${loaded.length} values for ${keys.length} keys`,
      );
    }
    return loaded;
  }
  if (typeof loaded === 'object' && loaded !== null)
    return keys.map((key) => (loaded as Record<string, unknown>)[key]);
  throw new InvalidValueError(
    keys[0]!,
    `the batch loader must return a Map, an object or an array, got ${describe(loaded)}`,
  );
}
