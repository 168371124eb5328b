import { assembleCache } from './assemble.js';
import type { EntryInfo } from './entry.js';
import { CacheClosedError, InvalidOptionError, InvalidValueError, describe, isCacheError } from './errors.js';
import { CacheEmitter, type CacheEventName, type CacheListener } from './events.js';
import { FOREVER } from './internal/duration.js';
import { wellFormed, type KeyRules } from './internal/keys.js';
import { stableStringify } from './internal/stable-key.js';
import { within } from './loading/deadline.js';
import type { FillGuard } from './loading/fill-guard.js';
import type { BatchLoader, LoadEngine, Loader } from './loading/load-engine.js';
import { resolvePlan, type LoadPlan } from './loading/load-plan.js';
import {
  warmFrom,
  warmKeys,
  type WarmOptions,
  type WarmProgress,
  type WarmTagsOption,
  type WarmTarget,
} from './loading/warm-up.js';
import { exposeMetrics } from './metrics/source.js';
import { cacheStats, type CacheCounters, type CacheStats, type TierCounters } from './metrics/stats.js';
import {
  checkSetManyItem,
  checkWriteOptions,
  refusedOptions,
  resolveWrap,
  type CacheOptions,
  type GetOrSetOptions,
  type ResolvedOptions,
  type WriteOptions,
} from './options.js';
import { EntryReads } from './tiers/entry-reads.js';
import type { MemoryTier } from './tiers/memory/memory-tier.js';
import type { MemoryStore } from './tiers/memory/memory-store.js';
import type { TierStack, WriteItem } from './tiers/tier-stack.js';
import type { CacheSync } from './sync/cache-sync.js';
import { globMatcher } from './sync/glob.js';
import { CacheNamespace } from './sync/namespaces.js';
import { checkTags } from './sync/tags.js';

export type { BatchLoader, Loader } from './loading/load-engine.js';
export type { WarmOptions, WarmProgress, WarmTagsOption } from './loading/warm-up.js';

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

/**
 * A multi-level cache: an optional in-process tier first, then remote tiers in order, then the
 * caller's loader. The facade checks each call's arguments and hands it on: reads, writes and
 * removals to the tier stack (src/tiers/tier-stack.ts), everything that may call a loader to the
 * load engine (src/loading/load-engine.ts), invalidations to the bus (src/sync/). Only the L1
 * hit path is answered here, because a call through another object would cost a hit its speed.
 * See docs/design.md for the consistency and failure model.
 */
export class TierCache {
  readonly #options: ResolvedOptions;
  readonly #memory: MemoryTier | undefined;
  readonly #store: MemoryStore | undefined;
  readonly #stack: TierStack;
  /** L1's counters, held here for the hit path (one field read, not two). */
  readonly #memoryCounters: TierCounters | undefined;
  readonly #engine: LoadEngine;
  readonly #sync: CacheSync;
  readonly #reads: EntryReads;
  readonly #counters: CacheCounters;
  readonly #keys: KeyRules;
  readonly #guard: FillGuard;
  readonly #clock: () => number;
  /** The clock for L1 expiry checks on hits: coarse unless the caller injected one. */
  readonly #readClock: () => number;
  readonly #background = new Set<Promise<void>>();
  readonly #clone: boolean;
  /** Whether getOrSet hits check for eager refresh (cache-wide); per-call options also can. */
  readonly #eager: boolean;
  /** The cache-wide load plan. */
  readonly #plan: LoadPlan;
  readonly #events = new CacheEmitter();
  /** Detaches this cache's hooks from its tiers and frees them for another cache (close()). */
  readonly #release: () => void;
  readonly #warmTarget: WarmTarget;
  #closed = false;

  constructor(options: CacheOptions = {}) {
    const parts = assembleCache(options, this.#events, {
      closed: () => this.#closed,
      track: (work) => this.#track(work),
    });
    this.#options = parts.options;
    this.#memory = parts.options.memory;
    this.#store = this.#memory?.store;
    this.#clock = parts.options.clock;
    this.#readClock = parts.readClock;
    this.#keys = parts.keys;
    this.#guard = parts.guard;
    this.#counters = parts.counters;
    this.#plan = parts.plan;
    this.#eager = parts.plan.eagerRefresh > 0;
    this.#sync = parts.sync;
    this.#stack = parts.stack;
    this.#memoryCounters = parts.stack.memoryCounters;
    this.#engine = parts.engine;
    this.#release = parts.release;
    this.#reads = new EntryReads({
      memory: this.#memory,
      stack: this.#stack,
      guard: this.#guard,
      clock: this.#clock,
      grace: parts.plan.grace,
    });
    this.#clone = this.#reads.clone;
    this.#warmTarget = {
      names: this.#stack.names,
      checkKey: (key) => this.#keys.check(key),
      checkKeys: (keys) => this.#keys.checkAll(keys),
      readMany: async (keys) => (await this.#reads.readMany(keys)).size,
      write: (items) => this.#write(items),
    };
    exposeMetrics(this, { counters: this.#counters, stats: () => this.stats() });
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
    return this.#getOrSet(key, loader, options);
  }

  /** getOrSet once its options' names are known good (wrap checked its own once). */
  #getOrSet<T>(key: string, loader: Loader<T>, options: GetOrSetOptions | undefined): Promise<T> {
    const hit = this.#lookup(key);
    if (hit === undefined) return this.#checked(key, 'getOrSet', () => this.#getOrLoad(key, loader, options));
    if (hit === MISS) return this.#getOrLoad(key, loader, options);
    if (this.#eager || options !== undefined)
      this.#engine.eagerCheck(key, this.#store!.entryAt(hit), loader, options, this.#memory!.ttl);
    return this.#settled(hit) as Promise<T>;
  }

  /**
   * Like `get`, with the entry's metadata: when it was created, until when it is fresh (and
   * stale, with grace), and which tier answered. For HTTP caching headers.
   */
  async getEntry<T = unknown>(key: string): Promise<EntryInfo<T> | undefined> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError('getEntry');
    return (this.#reads.memoryEntry(key) ?? (await this.#reads.remoteEntry(key))) as EntryInfo<T> | undefined;
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
    const hit = this.#reads.memoryEntry(key);
    if (hit !== undefined) return hit as EntryInfo<T>;
    const flight = this.#engine.flight(key, loader, options);
    const value = await flight;
    const info = this.#engine.infoOf(flight);
    if (info?.entry !== undefined)
      return this.#reads.info<T>(info.entry, info.tier, resolvePlan(options ?? {}, this.#plan).grace);
    const at = this.#clock();
    return { value: this.#reads.output(value) as T, createdAt: at, expiresAt: at, tier: 'origin' };
  }

  /** Values for `keys` (aligned), with one lookup per tier for all keys that missed above it. */
  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#keys.checkAll(keys);
    if (this.#closed) throw new CacheClosedError('getMany');
    const results = new Array<T | undefined>(keys.length).fill(undefined);
    const missing = this.#reads.memoryPass(keys, results);
    if (missing.size === 0 || this.#stack.remotes.length === 0) return results;
    const found = await this.#reads.readMany([...missing.keys()]);
    for (const [key, { entry }] of found)
      for (const i of missing.get(key)!) results[i] = this.#output(entry.value) as T;
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
    if (options !== undefined) checkWriteOptions(keys[0] ?? '', options, this.#stack.names, 'getManyOrSet');
    const plan = this.#engine.planFor(options);
    const results = new Array<T>(keys.length);
    const due = plan.eagerRefresh > 0 && this.#memory !== undefined ? new Set<string>() : undefined;
    const missing = this.#reads.memoryPass(keys, results, due && { ratio: plan.eagerRefresh, due });
    if (due !== undefined && due.size > 0) this.#engine.refreshDue(due, loader, options, plan);
    if (missing.size === 0) return results;
    const answers = this.#engine.many(missing.keys(), loader, options, plan);
    await Promise.all(
      [...answers].map(async ([key, answer]) => {
        const value = await answer;
        for (const i of missing.get(key)!) results[i] = this.#output(value) as T;
      }),
    );
    return results;
  }

  /** Writes `value` to every tier. Rejects, writing nothing, if the value cannot be encoded. */
  async set<T>(key: string, value: T, options?: WriteOptions): Promise<void> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError('set');
    if (value === undefined)
      throw new InvalidValueError(key, 'undefined cannot be stored; use delete() to remove a key');
    if (options !== undefined) checkWriteOptions(key, options, this.#stack.names, 'set');
    await this.#write([{ key, value, options }]);
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
      if (own !== undefined) checkWriteOptions(item.key, own, this.#stack.names, 'setMany');
      return { key: item.key, value: item.value, options: own };
    });
    await this.#write(writes);
  }

  /** Removes `key` from every tier; true if any tier had it. */
  async delete(key: string): Promise<boolean> {
    return (await this.deleteMany([key])) > 0;
  }

  /** Removes `keys` from every tier (one round trip per remote tier); how many tier copies went. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    this.#keys.checkAll(keys);
    if (this.#closed) throw new CacheClosedError('delete');
    return this.#stack.delete(keys, this.#sync);
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
    const removed = await this.#stack.deleteMatching(pattern, globMatcher(pattern));
    await this.#sync.announcePattern(pattern);
    return removed;
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
    return new CacheNamespace(name, this, this.#sync.namespaces, () => {
      if (this.#closed) return Promise.reject(new CacheClosedError('namespace.clear'));
      return this.#sync.clearNamespace(name);
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
    await this.#sync.invalidateTags(tags, this.#clock(), (error) =>
      this.#stack.fault(this.#sync.tagTier, 'set', error),
    );
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
    return this.#stack.has(key);
  }

  /** Removes this cache's entries from every tier: L1 entirely, remote tiers by their prefix. */
  async clear(): Promise<void> {
    if (this.#closed) throw new CacheClosedError('clear');
    const refused = await this.#stack.clear();
    await this.#sync.announceClear();
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
    const plan = resolveWrap(fn, options, this.#stack.names);
    if (isCacheError(plan)) return () => Promise.reject(plan);
    const { name } = plan;
    // No options at all when wrap was given only key/name: a hit then skips the per-call checks.
    const write = Object.keys(plan.write).length === 0 ? undefined : plan.write;
    const keyOf =
      (plan.key as ((...args: A) => string) | undefined) ??
      ((...args: A) => `${name}:${stableStringify(args)}`);
    return async (...args: A) => this.#getOrSet<R>(keyOf(...args), () => fn(...args), write);
  }

  /**
   * Fills L1 (and any remote tier above the one holding them) with `keys` from the remote tiers,
   * `batchSize` keys per round trip, so a new instance starts with a warm L1. Keys no tier has
   * are skipped. Resolves with the counts; `onProgress` hears after every batch.
   */
  async warm(keys: Iterable<string>, options: WarmOptions = {}): Promise<WarmProgress> {
    if (this.#closed) throw new CacheClosedError('warm');
    return warmKeys(this.#warmTarget, keys, options);
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
    return warmFrom(this.#warmTarget, source, keyOf, options);
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
    return cacheStats(this.#counters, {
      store: this.#store,
      remotes: this.#stack.remotes,
      bus: this.#sync.bus,
    });
  }

  /**
   * Stops accepting calls, waits (up to `closeTimeout`) for loads and background work
   * (refreshes, promotions, lock releases), then fails the callers still waiting on a load with
   * `CacheClosedError`, and closes the Redis connections the cache opened itself (from URLs).
   * Clients you passed in stay open.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await settledWithin([...this.#background], this.#options.closeTimeout);
    this.#engine.abandon();
    await this.#sync.close();
    await Promise.allSettled(this.#stack.remotes.map((tier) => tier.close()));
    this.#release();
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * The L1 fast path of get/getOrSet: the L1 slot on a hit, MISS on a counted miss (or for any
   * valid key when there is no L1), undefined when the key needs validating (or the cache is
   * closed) on the slow path.
   */
  #lookup(key: string): number | typeof MISS | undefined {
    if (!this.#keys.plainlyValid(key) || this.#closed) return undefined;
    const store = this.#store;
    // Without L1 a valid key goes straight below, uncounted (there are no L1 counters).
    if (store === undefined) return wellFormed(key) ? MISS : undefined;
    const counters = this.#memoryCounters!;
    const slot = store.hit(key, this.#readClock());
    if (slot >= 0) {
      counters.hits++;
      return slot;
    }
    if (!wellFormed(key)) return undefined; // a lone surrogate: check() refuses it on the slow path
    counters.misses++;
    return MISS;
  }

  /** An L1 hit's answer: a settled promise its hits share (MemoryStore#settled), unless cloning. */
  #settled(slot: number): Promise<unknown> {
    const store = this.#store!;
    if (this.#clone) return new Promise((resolve) => resolve(this.#output(store.value(slot))));
    return store.settled(slot);
  }

  /** The slow path's entry: validates the key, then answers from L1 or goes below it. */
  async #checked<T>(key: string, operation: string, below: () => Promise<T>): Promise<T> {
    this.#keys.check(key);
    if (this.#closed) throw new CacheClosedError(operation);
    const counters = this.#stack.memoryCounters;
    const entry = this.#store?.get(key, this.#clock());
    if (entry !== undefined) {
      counters!.hits++;
      return this.#output(entry.value) as T;
    }
    if (counters !== undefined) counters.misses++;
    return below();
  }

  #getBelow<T>(key: string): Promise<T | undefined> {
    if (this.#stack.remotes.length === 0) return Promise.resolve(undefined);
    return this.#stack.getFrom(0, key, this.#stack.readTicket(key)) as Promise<T | undefined>;
  }

  /** After an L1 miss: join the key's flight, or start one (lower tiers, then the loader). */
  async #getOrLoad<T>(key: string, loader: Loader<T>, options: GetOrSetOptions | undefined): Promise<T> {
    return this.#output(await this.#engine.flight(key, loader, options)) as T;
  }

  #output(value: unknown): unknown {
    return this.#clone ? this.#reads.output(value) : value;
  }

  /** A write from the caller: every tier, and the invalidation other instances must apply. */
  #write(items: readonly WriteItem[]): Promise<void> {
    return this.#stack.write(items, this.#sync);
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

function noop(): void {}
