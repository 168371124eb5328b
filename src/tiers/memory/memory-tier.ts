import type { Entry, RemovalReason } from '../../entry.js';
import { InvalidOptionError, describe } from '../../errors.js';
import { parseDuration, type Duration } from '../../internal/duration.js';
import { MemoryStore } from './memory-store.js';
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
  /** Most bytes held (encoded size when known, else an estimate or `sizeOf`). @default Infinity */
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
}

export const MEMORY_TIER_DEFAULTS = Object.freeze({
  name: 'memory',
  maxEntries: 10_000,
  maxBytes: Number.POSITIVE_INFINITY,
  ttl: '60s',
  policy: 'tinylfu',
  valueMode: 'reference',
} as const);

/** The in-process tier (L1). */
export function memoryTier(options: MemoryTierOptions = {}): MemoryTier {
  return new MemoryTier(options);
}

export class MemoryTier {
  readonly kind = 'memory';
  readonly name: string;
  readonly ttl: number;
  readonly store: MemoryStore;
  readonly valueMode: ValueMode;
  readonly #sizeOf: ((value: unknown) => number) | undefined;

  constructor(options: MemoryTierOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('memoryTier', `expected an options object, got ${describe(options)}`);
    }
    this.name = options.name ?? MEMORY_TIER_DEFAULTS.name;
    if (typeof this.name !== 'string' || this.name === '') {
      throw new InvalidOptionError(
        'memoryTier.name',
        `expected a non-empty string, got ${describe(this.name)}`,
      );
    }
    const maxEntries = options.maxEntries ?? MEMORY_TIER_DEFAULTS.maxEntries;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new InvalidOptionError(
        `${this.name}.maxEntries`,
        `expected a positive integer, got ${describe(maxEntries)}`,
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
    const factory = resolvePolicy(options.policy ?? MEMORY_TIER_DEFAULTS.policy, `${this.name}.policy`);
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
    this.#sizeOf = maxBytes === Number.POSITIVE_INFINITY ? undefined : (options.sizeOf ?? estimateSize);
    this.store = new MemoryStore({
      maxEntries,
      maxWeight: maxBytes,
      policy: factory,
      onRemove: options.onRemove,
    });
  }

  /** Stores `entry`; `encodedSize` is the payload size when the value came through Redis. */
  set(key: string, entry: Entry, encodedSize?: number): void {
    let stored = entry;
    if (this.valueMode === 'freeze') deepFreeze(entry.value);
    else if (this.valueMode === 'clone') stored = { ...entry, value: structuredClone(entry.value) };
    const sizeOf = this.#sizeOf;
    const weight = sizeOf === undefined ? 1 : (encodedSize ?? sizeOf(entry.value));
    this.store.set(key, stored, weight);
  }

  /** Applies the value mode to a value read from L1. */
  output(value: unknown): unknown {
    return this.valueMode === 'clone' ? structuredClone(value) : value;
  }
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}
