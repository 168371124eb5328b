import { CacheError, InvalidOptionError, InvalidTtlError, describe } from './errors.js';
import type { Clock } from './internal/clock.js';
import { parseDuration, type Duration } from './internal/duration.js';
import type { LoadOptions, LockOptions } from './loading/load-plan.js';
import { MemoryTier } from './tiers/memory/memory-tier.js';
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

export function resolveOptions(options: CacheOptions, defaultMemory: () => MemoryTier): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', `expected an options object, got ${describe(options)}`);
  }
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
  });
  if (typeof closeTimeout === 'string') throw new InvalidOptionError('closeTimeout', closeTimeout);
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
    bus: resolveBus(options.bus, remotes),
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
export function checkWriteOptions(key: string, options: WriteOptions, tierNames: readonly string[]): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('options', `expected an options object, got ${describe(options)}`);
  }
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

/** `warm`/`warmFrom`'s batch size: a positive integer, 500 when absent. */
export function checkBatchSize(batchSize: unknown = 500): number {
  if (!Number.isInteger(batchSize) || (batchSize as number) < 1) {
    throw new InvalidOptionError('batchSize', `expected a positive integer, got ${describe(batchSize)}`);
  }
  return batchSize as number;
}
