import { CacheError, InvalidOptionError, InvalidTtlError, describe } from './errors.js';
import type { Clock } from './internal/clock.js';
import { parseDuration, type Duration } from './internal/duration.js';
import { OptionNames, optionNames } from './internal/option-names.js';
import {
  LOAD_OPTION_NAMES,
  NO_LOCK_TIER,
  resolveLock,
  resolvePlan,
  type LoadOptions,
  type LockOptions,
} from './loading/load-plan.js';
import { MemoryTier } from './tiers/memory/memory-tier.js';
import { TIER_IN_USE, isRunning } from './tiers/claims.js';
import { offered } from './tiers/coordination.js';
import type { RemoteTier } from './tiers/tier.js';
import { resolveBus, type BusOptions, type ResolvedBus } from './sync/bus-options.js';
import { checkTags } from './sync/tags.js';
import { writeMask, type WriteMask } from './tiers/write-targets.js';

export type Tier = MemoryTier | RemoteTier;

export interface NegativeCachingOptions {
  /** Cache a loader's `undefined` result. @default false */
  undefined?: boolean;
  /** Cache a loader's `null` result. @default true */
  null?: boolean;
  /** Life of a cached null/undefined in every tier. @default the tiers' own TTLs */
  ttl?: Duration;
}

export interface CacheOptions extends LoadOptions {
  /**
   * Distributed single flight for every `getOrSet` (per call: `lock: false` opts out): a lock
   * in the first Redis tier lets one instance call the loader for a key while the others wait
   * for its value. Needs a Redis tier. `true` uses the defaults. @default false
   */
  lock?: boolean | LockOptions;
  /**
   * The tiers, fastest first. At most one memory tier, and it must come first.
   * @default [memoryTier()]
   */
  tiers?: Tier[];
  /**
   * Names of the tiers that writes (set, loader results, warmFrom) and promotions go to; the
   * others are read but never filled, and a write drops their copy of the key so none keeps an
   * older value. Per call, `writeTo` overrides it for that write. @default every tier
   */
  writeTo?: readonly string[];
  /**
   * Fraction (0–1) by which each written entry's life is shortened at random, so keys written
   * together do not expire together. 0.1 spreads expiries over the last 10% of the TTL.
   * @default 0
   */
  jitter?: number;
  /** Whether null/undefined loader results are cached, and for how long. */
  negativeCaching?: NegativeCachingOptions;
  /** Longest key accepted, in UTF-8 bytes. @default 1024 */
  maxKeyBytes?: number;
  /**
   * Receives errors that did not fail a request: tier faults the cache degraded past, corrupt
   * payloads treated as misses, failed background promotions. @default ignore (they are counted)
   */
  onError?: (error: CacheError) => void;
  /**
   * `'degrade'`: a tier fault on a read or write is reported to `onError` and the request goes
   * on (next tier, origin, or success for writes that reached L1). `'throw'`: such faults
   * reject the request. @default 'degrade'
   */
  tierErrors?: 'degrade' | 'throw';
  /** Source of the current time in epoch ms (tests inject a fake one). @default Date.now */
  clock?: Clock;
  /**
   * The invalidation bus that keeps every instance's L1 consistent (Redis pub/sub). On by
   * default when a Redis tier is configured; `false` turns it off (then another instance's L1
   * may serve a value up to its L1 TTL after a write elsewhere). @default {} (on)
   */
  bus?: BusOptions | false;
  /**
   * Longest wait in `close()` for background work (refreshes, promotions, lock releases) to
   * finish. A refresh whose loader never settles (no `hardTimeout`) is then abandoned: its result
   * is dropped and a late error still goes to `onError`, never unhandled. `'forever'` waits for
   * everything. @default '5s'
   */
  closeTimeout?: Duration;
}

/** Per-tier lives by tier name, for entries whose tiers should differ from the defaults. */
export type TtlByTier = Readonly<Record<string, Duration>>;

export interface WriteOptions {
  /**
   * Life of the entry: one duration for every tier, or a map from tier name to duration (tiers
   * not named keep their default). A copy in an upper tier never outlives the copy below it.
   */
  ttl?: Duration | TtlByTier;
  /** Overrides the cache's `jitter` for this write. */
  jitter?: number;
  /**
   * Names of the tiers this write goes to (e.g. `['memory', 'global']`); every other tier drops
   * its copy of the key, so no tier keeps an older value. @default the cache's `writeTo`
   */
  writeTo?: readonly string[];
  /**
   * Tags of the entry: `invalidateTags([tag])` on any instance makes it a miss everywhere
   * (O(1) per tag). A loader can add tags with `context.setTags`. @default none
   */
  tags?: readonly string[];
}

export interface GetOrSetOptions extends WriteOptions, LoadOptions {
  /** Distributed single flight for this call; overrides the cache's `lock` switch. */
  lock?: boolean;
}

const CACHE_OPTION_NAMES = optionNames<CacheOptions>({
  grace: true,
  failSafe: true,
  softTimeout: true,
  hardTimeout: true,
  eagerRefresh: true,
  lock: true,
  tiers: true,
  writeTo: true,
  jitter: true,
  negativeCaching: true,
  maxKeyBytes: true,
  onError: true,
  tierErrors: true,
  clock: true,
  bus: true,
  closeTimeout: true,
});
const NEGATIVE_OPTION_NAMES = optionNames<NegativeCachingOptions>({ undefined: true, null: true, ttl: true });
const WRITE_OPTION_NAMES = optionNames<WriteOptions>({ ttl: true, jitter: true, writeTo: true, tags: true });
const GET_OR_SET_OPTION_NAMES = LOAD_OPTION_NAMES.with(...WRITE_OPTION_NAMES.names, 'lock');

/**
 * The calls that take write options, with the names each accepts. `setMany` sees an item merged
 * over the call's options, so an item's `key` and `value` are among its names.
 */
const CALL_OPTION_NAMES = {
  set: WRITE_OPTION_NAMES,
  setMany: WRITE_OPTION_NAMES.with('key', 'value'),
  getOrSet: GET_OR_SET_OPTION_NAMES,
  getManyOrSet: GET_OR_SET_OPTION_NAMES,
  wrap: WRITE_OPTION_NAMES,
  warmFrom: WRITE_OPTION_NAMES,
} as const;
export type WriteCall = keyof typeof CALL_OPTION_NAMES;

export const CACHE_DEFAULTS = Object.freeze({
  jitter: 0,
  maxKeyBytes: 1024,
  tierErrors: 'degrade',
  closeTimeout: '5s',
  negativeCaching: Object.freeze({ undefined: false, null: true }),
} as const);

export interface ResolvedOptions {
  memory: MemoryTier | undefined;
  remotes: RemoteTier[];
  jitter: number;
  maxKeyBytes: number;
  cacheUndefined: boolean;
  cacheNull: boolean;
  negativeTtl: number | undefined;
  onError: (error: CacheError) => void;
  throwTierErrors: boolean;
  clock: Clock;
  bus: ResolvedBus | undefined;
  /** In ms. */
  closeTimeout: number;
}

/**
 * Validates and resolves the cache's options. When it refuses them, it first closes the Redis
 * connections the given tiers opened from URLs: nothing else would, and an open connection
 * keeps the process from exiting.
 */
export function resolveOptions(options: CacheOptions, defaultMemory: () => MemoryTier): ResolvedOptions {
  try {
    return resolve(options, defaultMemory);
  } catch (error) {
    closeUnusedTiers(options);
    throw error;
  }
}

/** Closes each remote tier of a refused configuration that no cache has taken up yet. */
function closeUnusedTiers(options: CacheOptions): void {
  const tiers: unknown = typeof options === 'object' && options !== null ? options.tiers : undefined;
  if (!Array.isArray(tiers)) return;
  for (const tier of tiers as unknown[]) {
    if (typeof tier !== 'object' || tier === null) continue;
    const remote = tier as Partial<RemoteTier>;
    // Closing a tier another cache runs would break that cache.
    if (remote.kind !== 'remote' || typeof remote.close !== 'function' || isRunning(remote)) continue;
    try {
      remote.close().catch(() => {});
    } catch {
      // a custom tier whose close() throws: nothing more can be done for it
    }
  }
}

function resolve(options: CacheOptions, defaultMemory: () => MemoryTier): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', `expected an options object, got ${describe(options)}`);
  }
  CACHE_OPTION_NAMES.check(options, 'createCache options');
  const tiers = options.tiers ?? [defaultMemory()];
  if (!Array.isArray(tiers) || tiers.length === 0) {
    throw new InvalidOptionError('tiers', `expected a non-empty array of tiers, got ${describe(tiers)}`);
  }
  let memory: MemoryTier | undefined;
  const remotes: RemoteTier[] = [];
  const names = new Set<string>();
  tiers.forEach((tier, i) => {
    if (tier instanceof MemoryTier) {
      if (i !== 0)
        throw new InvalidOptionError(
          `tiers[${i}]`,
          'a memory tier must be the first tier, and only one is allowed',
        );
      memory = tier;
    } else if (typeof tier === 'object' && tier !== null && (tier as { kind?: unknown }).kind === 'remote') {
      remotes.push(tier);
    } else {
      throw new InvalidOptionError(
        `tiers[${i}]`,
        `expected memoryTier() or redisTier(), got ${describe(tier)}`,
      );
    }
    if (isRunning(tier)) throw new InvalidOptionError(`tiers[${i}]`, TIER_IN_USE);
    if (names.has(tier.name))
      throw new InvalidOptionError(`tiers[${i}].name`, `the name "${tier.name}" is used by two tiers`);
    names.add(tier.name);
  });
  const jitter = options.jitter ?? CACHE_DEFAULTS.jitter;
  checkJitter(jitter, 'jitter');
  const maxKeyBytes = options.maxKeyBytes ?? CACHE_DEFAULTS.maxKeyBytes;
  if (!Number.isInteger(maxKeyBytes) || maxKeyBytes < 1) {
    throw new InvalidOptionError('maxKeyBytes', `expected a positive integer, got ${describe(maxKeyBytes)}`);
  }
  const negative = options.negativeCaching ?? {};
  if (typeof negative !== 'object' || negative === null) {
    throw new InvalidOptionError('negativeCaching', `expected an options object, got ${describe(negative)}`);
  }
  NEGATIVE_OPTION_NAMES.check(negative, 'negativeCaching');
  for (const which of ['undefined', 'null'] as const) {
    if (negative[which] !== undefined && typeof negative[which] !== 'boolean') {
      throw new InvalidOptionError(
        `negativeCaching.${which}`,
        `expected a boolean, got ${describe(negative[which])}`,
      );
    }
  }
  let negativeTtl: number | undefined;
  if (negative.ttl !== undefined) {
    const parsed = parseDuration(negative.ttl);
    if (typeof parsed === 'string') throw new InvalidOptionError('negativeCaching.ttl', parsed);
    negativeTtl = parsed;
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new InvalidOptionError('onError', `expected a function, got ${describe(options.onError)}`);
  }
  const tierErrors = options.tierErrors ?? CACHE_DEFAULTS.tierErrors;
  if (tierErrors !== 'degrade' && tierErrors !== 'throw') {
    throw new InvalidOptionError('tierErrors', `expected 'degrade' or 'throw', got ${describe(tierErrors)}`);
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new InvalidOptionError(
      'clock',
      `expected a function returning epoch ms, got ${describe(options.clock)}`,
    );
  }
  const closeTimeout = parseDuration(options.closeTimeout ?? CACHE_DEFAULTS.closeTimeout, {
    allowZero: true,
    timer: true,
  });
  if (typeof closeTimeout === 'string') throw new InvalidOptionError('closeTimeout', closeTimeout);
  const bus = resolveBus(options.bus, remotes);
  // What the cache resolves from these options later, checked here too, so that every refusal
  // happens while the tiers opened from URLs can still be closed (see resolveOptions).
  writeMask(options.writeTo, [...names], 'writeTo');
  const plan = resolvePlan({
    ...options,
    lock: options.lock === undefined ? undefined : options.lock !== false,
  });
  if (offered(remotes, 'locks') !== undefined) resolveLock(options.lock ?? true);
  else if (plan.lock) throw new InvalidOptionError('lock', NO_LOCK_TIER);
  return {
    memory,
    remotes,
    closeTimeout,
    jitter,
    maxKeyBytes,
    cacheUndefined: negative.undefined ?? CACHE_DEFAULTS.negativeCaching.undefined,
    cacheNull: negative.null ?? CACHE_DEFAULTS.negativeCaching.null,
    negativeTtl,
    onError: options.onError ?? (() => {}),
    throwTierErrors: tierErrors === 'throw',
    clock: options.clock ?? Date.now,
    bus,
  };
}

export function checkJitter(jitter: unknown, option: string): asserts jitter is number {
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new InvalidOptionError(option, `expected a fraction from 0 to 1, got ${describe(jitter)}`);
  }
}

/**
 * Validates a call's write options against the cache's tiers (names in `ttl` maps and
 * `writeTo`); `key` names the call in errors.
 */
export function checkWriteOptions(
  key: string,
  options: WriteOptions,
  tierNames: readonly string[],
  call: WriteCall,
): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`${call} options`, `expected an options object, got ${describe(options)}`);
  }
  CALL_OPTION_NAMES[call].check(options, `${call} options`);
  const { ttl, jitter } = options;
  if (jitter !== undefined) checkJitter(jitter, 'jitter');
  if (options.tags !== undefined) checkTags(options.tags);
  if (options.writeTo !== undefined) writeMask(options.writeTo, tierNames, 'writeTo');
  if (ttl === undefined) return;
  if (typeof ttl === 'object' && ttl !== null) {
    for (const [name, life] of Object.entries(ttl)) {
      if (!tierNames.includes(name)) throw new InvalidTtlError(ttl, `no tier is named "${name}"`, key);
      const parsed = parseDuration(life);
      if (typeof parsed === 'string') throw new InvalidTtlError(life, `${parsed} (tier "${name}")`, key);
    }
    return;
  }
  const parsed = parseDuration(ttl);
  if (typeof parsed === 'string') throw new InvalidTtlError(ttl, parsed, key);
}

/** The tiers a write with these options goes to; `fallback` (the cache's writeTo) when it names none. */
export function maskOf(
  options: WriteOptions | undefined,
  tierNames: readonly string[],
  fallback: WriteMask | undefined,
): WriteMask | undefined {
  if (options?.writeTo === undefined) return fallback;
  return writeMask(options.writeTo, tierNames, 'writeTo');
}

const WARM_OPTION_NAMES = new OptionNames(['batchSize', 'onProgress']);
const WARM_FROM_OPTION_NAMES = WARM_OPTION_NAMES.with(...WRITE_OPTION_NAMES.names, 'tagsOf');

/**
 * Checks `warm`'s or `warmFrom`'s options object (its names, `onProgress`); resolves to the
 * batch size. `warmFrom`'s write options are checked by checkWriteOptions.
 */
export function checkWarmOptions(options: unknown, call: 'warm' | 'warmFrom'): number {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError(`${call} options`, `expected an options object, got ${describe(options)}`);
  }
  (call === 'warm' ? WARM_OPTION_NAMES : WARM_FROM_OPTION_NAMES).check(options, `${call} options`);
  const { onProgress, batchSize } = options as { onProgress?: unknown; batchSize?: unknown };
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new InvalidOptionError(
      `${call} options.onProgress`,
      `expected a function, got ${describe(onProgress)}`,
    );
  }
  return checkBatchSize(batchSize);
}

/** `warm`/`warmFrom`'s batch size: a positive integer, 500 when absent. */
function checkBatchSize(batchSize: unknown = 500): number {
  if (!Number.isInteger(batchSize) || (batchSize as number) < 1) {
    throw new InvalidOptionError('batchSize', `expected a positive integer, got ${describe(batchSize)}`);
  }
  return batchSize as number;
}

const SET_MANY_ITEM_NAMES = WRITE_OPTION_NAMES.with('key', 'value');

/** Checks that a `setMany` item is an object holding only an item's names. */
export function checkSetManyItem(item: unknown): void {
  if (typeof item !== 'object' || item === null) {
    throw new InvalidOptionError('setMany items', `expected { key, value } objects, got ${describe(item)}`);
  }
  SET_MANY_ITEM_NAMES.check(item, 'setMany item');
}

/**
 * The names check of a call's options for paths that must not throw (getOrSet answers an L1 hit
 * without an async frame): the refusal as a rejected promise, or undefined when all is well.
 */
export function refusedOptions(options: object, call: WriteCall): Promise<never> | undefined {
  try {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(`${call} options`, `expected an options object, got ${describe(options)}`);
    }
    CALL_OPTION_NAMES[call].check(options, `${call} options`);
    return undefined;
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}

const WRAP_OPTION_NAMES = WRITE_OPTION_NAMES.with('key', 'name');

/** `wrap`'s options resolved: the key builder or the name for default keys, and the write options. */
export interface WrapPlan {
  key: ((...args: never[]) => string) | undefined;
  name: string;
  write: WriteOptions;
}

/**
 * Checks `wrap(fn, options)`, returning the refusal rather than throwing it: `wrap` hands a
 * refusal to every call of the wrapped function as a rejection, as for any other cache method.
 */
export function resolveWrap(
  fn: unknown,
  options: unknown,
  tierNames: readonly string[],
): WrapPlan | CacheError {
  try {
    if (typeof fn !== 'function')
      throw new InvalidOptionError('wrap', `expected a function, got ${describe(fn)}`);
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('wrap options', `expected an options object, got ${describe(options)}`);
    }
    WRAP_OPTION_NAMES.check(options, 'wrap options');
    const { key, name = fn.name, ...write } = options as WriteOptions & { key?: unknown; name?: unknown };
    if (key !== undefined && typeof key !== 'function') {
      throw new InvalidOptionError('wrap.key', `expected a function of the arguments, got ${describe(key)}`);
    }
    if (key === undefined && (typeof name !== 'string' || name === '')) {
      throw new InvalidOptionError(
        'wrap.name',
        'an anonymous function needs a `name` or a `key` option to build cache keys',
      );
    }
    checkWriteOptions(typeof name === 'string' ? name : 'wrap', write, tierNames, 'wrap');
    return { key: key as WrapPlan['key'], name: name as string, write };
  } catch (error) {
    if (error instanceof CacheError) return error;
    throw error;
  }
}
