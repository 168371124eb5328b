/**
 * The seam between the L1 store and its eviction/admission policy. The store owns the key →
 * slot map, the keys, values and expiry of each slot; a policy only orders slots and decides
 * which ones leave when the store is over its bounds. Slots are small integers (0 … capacity-1),
 * so a policy keeps its links and marks in typed arrays indexed by slot rather than in an object
 * per entry (see docs/l1.md#storage). The same policy code runs in the trace simulator, so hit
 * ratios measured there are the ones users get.
 */

/** What a policy may read about a resident slot; the store owns these. */
export interface PolicySlots {
  /** `hashKey(key)` of the slot's key (for frequency-aware policies). */
  hash(slot: number): number;
  /** Cost of the slot against `maxWeight` (bytes when the store is byte-bounded, else 1). */
  weight(slot: number): number;
}

export interface PolicyBounds {
  /** Most resident slots. */
  maxEntries: number;
  /** Most total weight; Infinity when only the entry count bounds the store. */
  maxWeight: number;
}

/** Called by a policy for each slot it removes; the candidate itself may be rejected this way. */
export type EvictCallback = (slot: number) => void;

export interface EvictionPolicy {
  readonly name: string;
  /** The store now numbers its slots 0 … capacity-1 (it only grows); size per-slot state to it. */
  grow(capacity: number): void;
  /** A resident slot was read. Hot path: must not allocate. */
  onHit(slot: number): void;
  /** A lookup for a key that is not resident (frequency-aware policies count it). */
  onMiss(key: string): void;
  /**
   * Makes `slot` resident, then evicts (through the callback) until the bounds hold again. A
   * policy may reject the candidate itself, in which case it calls the callback with it.
   */
  add(slot: number): void;
  /** A resident slot's weight changed from `previousWeight`; re-check bounds. */
  updateWeight(slot: number, previousWeight: number): void;
  /** A resident slot leaves for a reason other than eviction (delete, expiry, invalidation). */
  remove(slot: number): void;
  /** Every slot leaves; the policy forgets what it learnt. */
  clear(): void;
  /**
   * Estimated frequency of a key, for admission thresholds and adaptive TTLs (0 when unknown);
   * `slot` is its resident slot, if any, so hits the policy keeps per slot are counted too.
   */
  frequency(key: string, slot?: number): number;
  readonly size: number;
  readonly weight: number;
}

export type PolicyFactory = (
  bounds: PolicyBounds,
  slots: PolicySlots,
  evict: EvictCallback,
) => EvictionPolicy;
