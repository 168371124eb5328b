import type { Entry, RemovalReason } from '../../entry.js';
import { InvalidOptionError, describe } from '../../errors.js';
import { parseDuration, type Duration } from '../../internal/duration.js';
import { OptionNames, optionNames } from '../../internal/option-names.js';
import { cloneValue, deepFreeze } from '../../internal/copy-value.js';
import { MemoryStore, keptWhole } from './memory-store.js';
import { resolvePolicy, type PolicyName } from './policies.js';
import type { PolicyFactory } from './policy.js';
import { estimateSize } from './size-of.js';

/**
 * What L1 hands back. L1 keeps values by reference for speed, so a caller that mutates a value
 * it got from the cache mutates the cached copy; choose 'clone' or 'freeze' if callers mutate.
 */
export type ValueMode = 'reference' | 'clone' | 'freeze';

export interface MemoryTierOptions {
  /** Name in stats, errors and per-tier TTL maps. @default 'memory' */
  name?: string;
  /** Most entries held. A bound is required so L1 can never grow without limit. @default 10_000 */
  maxEntries?: number;
  /**
   * Most bytes held, counting per entry its value (an estimate, or the encoded size when it came
   * through Redis and is larger, or `sizeOf`), its key and its slot, so that a full L1 holds no
   * more heap than this (docs/l1.md#sizing-l1-from-a-memory-budget). @default Infinity
   */
  maxBytes?: number;
  /** Default life of entries in L1; keep it shorter than the Redis tier's. @default '60s' */
  ttl?: Duration;
  /**
   * Eviction and admission policy: 'tinylfu' (adaptive W-TinyLFU: frequency-aware admission,
   * scan-resistant) or 'lru', or your own factory. @default 'tinylfu'
   */
  policy?: PolicyName | PolicyFactory;
  /** Size of a value in bytes when it did not come through a remote tier. @default estimate */
  sizeOf?: (value: unknown) => number;
  /** @default 'reference' */
  valueMode?: ValueMode;
  /** Called when an entry leaves L1, with the reason. */
  onRemove?: (key: string, entry: Entry, reason: RemovalReason) => void;
  /**
   * Hot/cold separation: a key enters L1 only once it has been looked up `minHits` times
   * within the frequency sketch's window; until then it is served from the tiers below. Needs
   * the 'tinylfu' policy (LRU keeps no frequencies). @default { minHits: 0 } (admit all)
   */
  admission?: { minHits: number };
  /**
   * Adaptive L1 TTL: a key's L1 life grows with its estimated access frequency, from `ttl`
   * for a key seen once up to `max` for the hottest keys, and never beyond the life the entry
   * has left in the tier below. Needs the 'tinylfu' policy. A write's explicit `ttl` wins.
   */
  adaptiveTtl?: { max: Duration };
}

export const MEMORY_TIER_DEFAULTS = Object.freeze({
  name: 'memory',
  maxEntries: 10_000,
  maxBytes: Number.POSITIVE_INFINITY,
  ttl: '60s',
  policy: 'tinylfu',
  valueMode: 'reference',
} as const);

const MEMORY_OPTION_NAMES = optionNames<MemoryTierOptions>({
  name: true,
  maxEntries: true,
  maxBytes: true,
  ttl: true,
  policy: true,
  sizeOf: true,
  valueMode: true,
  onRemove: true,
  admission: true,
  adaptiveTtl: true,
});

/**
 * The most entries an L1 may hold. Its bookkeeping is sized up front (about 20 bytes per entry,
 * 320 MB at this bound), so a larger bound would fail at allocation, or take the heap.
 */
export const MAX_MEMORY_ENTRIES = 2 ** 24;

/** A nested options object (`admission`, `adaptiveTtl`): an object holding only `names`. */
function nested(value: unknown, names: readonly string[], path: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null)
    throw new InvalidOptionError(path, `expected an options object, got ${describe(value)}`);
  new OptionNames(names).check(value, path);
  return value as Record<string, unknown>;
}

/** The in-process tier (L1). */
export function memoryTier(options: MemoryTierOptions = {}): MemoryTier {
  return new MemoryTier(options);
}

/** What the cache that runs a memory tier gives it (see MemoryTier.attach). */
export interface MemoryTierHooks {
  /** Hears every removal, to count it and emit it as an event. */
  removed: (key: string, entry: Entry, reason: RemovalReason) => void;
  /** True when a tagged entry's tag was invalidated after it was created (see MemoryStore). */
  tagged: (entry: Entry) => boolean;
}

export class MemoryTier {
  readonly kind = 'memory';
  readonly name: string;
  readonly ttl: number;
  readonly store: MemoryStore;
  readonly valueMode: ValueMode;
  /** An entry's weight under a byte bound; undefined without one (every entry weighs 1). */
  readonly #weigh: Weigher | undefined;
  readonly #minHits: number;
  /** Extra life a key earns per unit of estimated frequency (0 without adaptive TTLs). */
  readonly #lifePerHit: number;
  /** The removal hook of the cache that runs this tier (see attach). */
  #removed: ((key: string, entry: Entry, reason: RemovalReason) => void) | undefined;

  /**
   * Wires the cache that takes this tier up; returns the detach its close() calls. A cache
   * refuses a tier another open cache runs, so these are one cache's at a time.
   */
  attach(hooks: MemoryTierHooks): () => void {
    this.#removed = hooks.removed;
    this.store.tagged = hooks.tagged;
    return () => {
      if (this.#removed !== hooks.removed) return;
      this.#removed = undefined;
      this.store.tagged = undefined;
    };
  }

  constructor(options: MemoryTierOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('memoryTier', `expected an options object, got ${describe(options)}`);
    }
    MEMORY_OPTION_NAMES.check(options, 'memoryTier options');
    nested(options.admission, ['minHits'], 'memoryTier options.admission');
    nested(options.adaptiveTtl, ['max'], 'memoryTier options.adaptiveTtl');
    this.name = options.name ?? MEMORY_TIER_DEFAULTS.name;
    if (typeof this.name !== 'string' || this.name === '') {
      throw new InvalidOptionError(
        'memoryTier.name',
        `expected a non-empty string, got ${describe(this.name)}`,
      );
    }
    const maxEntries = options.maxEntries ?? MEMORY_TIER_DEFAULTS.maxEntries;
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_MEMORY_ENTRIES) {
      throw new InvalidOptionError(
        `${this.name}.maxEntries`,
        `expected an integer from 1 to ${MAX_MEMORY_ENTRIES}, got ${describe(maxEntries)}`,
      );
    }
    const maxBytes = options.maxBytes ?? MEMORY_TIER_DEFAULTS.maxBytes;
    if (typeof maxBytes !== 'number' || !(maxBytes > 0)) {
      throw new InvalidOptionError(
        `${this.name}.maxBytes`,
        `expected a positive number of bytes, got ${describe(maxBytes)}`,
      );
    }
    const ttl = parseDuration(options.ttl ?? MEMORY_TIER_DEFAULTS.ttl);
    if (typeof ttl === 'string') throw new InvalidOptionError(`${this.name}.ttl`, ttl);
    this.ttl = ttl;
    const policyName = options.policy ?? MEMORY_TIER_DEFAULTS.policy;
    const factory = resolvePolicy(policyName, `${this.name}.policy`);
    const minHits = options.admission?.minHits ?? 0;
    if (!Number.isInteger(minHits) || minHits < 0 || minHits > 15) {
      throw new InvalidOptionError(
        `${this.name}.admission.minHits`,
        `expected an integer from 0 to 15, got ${describe(minHits)}`,
      );
    }
    this.#minHits = minHits;
    this.#lifePerHit = 0;
    if (options.adaptiveTtl !== undefined) {
      const max = parseDuration(options.adaptiveTtl.max);
      if (typeof max === 'string') throw new InvalidOptionError(`${this.name}.adaptiveTtl.max`, max);
      if (!(max > ttl)) {
        throw new InvalidOptionError(
          `${this.name}.adaptiveTtl.max`,
          `must be longer than the tier's ttl (${ttl} ms), got ${describe(options.adaptiveTtl.max)}`,
        );
      }
      if (max === Number.POSITIVE_INFINITY)
        throw new InvalidOptionError(`${this.name}.adaptiveTtl.max`, "must be finite, got 'forever'");
      // Frequencies run 1 (seen once) to FREQUENCY_CAP; life grows linearly between them.
      this.#lifePerHit = (max - ttl) / (FREQUENCY_CAP - 1);
    }
    if ((minHits > 0 || this.#lifePerHit > 0) && policyName === 'lru') {
      throw new InvalidOptionError(
        `${this.name}.policy`,
        "admission.minHits and adaptiveTtl need key frequencies, which the 'lru' policy does not keep; use 'tinylfu'",
      );
    }
    this.valueMode = options.valueMode ?? MEMORY_TIER_DEFAULTS.valueMode;
    if (!['reference', 'clone', 'freeze'].includes(this.valueMode)) {
      throw new InvalidOptionError(
        `${this.name}.valueMode`,
        `expected 'reference', 'clone' or 'freeze', got ${describe(this.valueMode)}`,
      );
    }
    if (options.sizeOf !== undefined && typeof options.sizeOf !== 'function') {
      throw new InvalidOptionError(
        `${this.name}.sizeOf`,
        `expected a function, got ${describe(options.sizeOf)}`,
      );
    }
    // Weights only matter under a byte bound; without one every entry weighs 1 and no size is
    // ever estimated, which keeps writes cheap.
    this.#weigh = maxBytes === Number.POSITIVE_INFINITY ? undefined : weigher(options.sizeOf);
    const userHook = options.onRemove;
    this.store = new MemoryStore({
      maxEntries,
      maxWeight: maxBytes,
      policy: factory,
      onRemove: (key, entry, reason) => {
        userHook?.(key, entry, reason);
        this.#removed?.(key, entry, reason);
      },
    });
  }

  /** L1 life for `key` in ms: the tier's ttl, grown with the key's frequency when adaptive. */
  lifeFor(key: string): number {
    if (this.#lifePerHit === 0) return this.ttl;
    const frequency = Math.min(FREQUENCY_CAP, Math.max(1, this.store.frequency(key)));
    return this.ttl + (frequency - 1) * this.#lifePerHit;
  }

  /**
   * Stores `entry` unless hot/cold admission keeps the key out (then returns false);
   * `encodedSize` is the payload size when the value came through Redis.
   */
  set(key: string, entry: Entry, encodedSize?: number): boolean {
    // A resident key is hot already; replacing it must never leave the older copy behind.
    if (this.#minHits > 0 && !this.store.has(key) && !this.store.seenAtLeast(key, this.#minHits)) {
      this.store.forgetSuspect(key);
      return false;
    }
    let stored = entry;
    if (this.valueMode === 'freeze') deepFreeze(entry.value);
    else if (this.valueMode === 'clone') stored = { ...entry, value: cloneValue(key, entry.value) };
    const weigh = this.#weigh;
    this.store.set(key, stored, weigh === undefined ? 1 : weigh(key, entry, encodedSize));
    return true;
  }

  /** Applies the value mode to a value read from L1. */
  output(value: unknown): unknown {
    return this.valueMode === 'clone' ? cloneValue('(read from L1)', value) : value;
  }
}

type Weigher = (key: string, entry: Entry, encodedSize: number | undefined) => number;

/**
 * An entry's weight under `maxBytes`: what it costs the heap, so that a full L1 holds no more.
 * Its value: `sizeOf` when given (the encoded size when known), else the larger of the estimate
 * and the encoded size, which misses a decoded object's headers. Beyond the value: the key
 * (estimated, as values are, at two bytes a character) and the structure of a slot, which
 * measured 66-90 bytes from 100,000 to a million entries (docs/l1.md#storage) and is taken at
 * 100; an entry kept whole (tags, a stale period) has an entry object of its own besides.
 */
function weigher(sizeOf: ((value: unknown) => number) | undefined): Weigher {
  return (key, entry, encodedSize) =>
    (sizeOf === undefined
      ? Math.max(encodedSize ?? 0, estimateSize(entry.value))
      : (encodedSize ?? sizeOf(entry.value))) +
    SLOT_BYTES +
    16 +
    2 * key.length +
    (keptWhole(entry) ? ENTRY_OBJECT_BYTES : 0);
}

const SLOT_BYTES = 100;
const ENTRY_OBJECT_BYTES = 100;

/** The sketch's largest estimate (4-bit counters plus the doorkeeper's first sighting). */
const FREQUENCY_CAP = 16;
