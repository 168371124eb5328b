/**
 * The seam between the L1 store and its eviction/admission policy. The store owns the key → node
 * map and the values; a policy only orders nodes and decides which ones leave when the store is
 * over its bounds. The same policy code runs in the trace simulator, so hit ratios measured
 * there are the ones users get.
 */

/** Fields every resident node carries for the policy. Policies may add their own links. */
export interface PolicyNode {
  readonly key: string;
  /**
   * `hashKey(key)`, computed once when the node is created so that frequency-aware policies
   * never re-hash the key string on the hit path.
   */
  readonly hash: number;
  /** Cost of the node against `maxWeight` (bytes when the store is byte-bounded, else 1). */
  weight: number;
  /** Policy-owned links; the store never reads them. */
  prev: PolicyNode | null;
  next: PolicyNode | null;
  /** Policy-owned region marker (e.g. window / probation / protected); 0 until added. */
  region: number;
  /** Policy-owned scratch number (tinylfu: the sketch epoch in which the key's counters were full). */
  mark: number;
  /** Policy-owned flag (tinylfu: read since the node last reached its queue's recent end). */
  referenced: boolean;
}

export interface PolicyBounds {
  /** Most resident nodes. */
  maxEntries: number;
  /** Most total weight; Infinity when only the entry count bounds the store. */
  maxWeight: number;
}

/** Called by a policy for each node it removes; the candidate itself may be rejected this way. */
export type EvictCallback<N extends PolicyNode> = (node: N) => void;

export interface EvictionPolicy<N extends PolicyNode = PolicyNode> {
  readonly name: string;
  /** A resident node was read. Hot path: must not allocate. */
  onHit(node: N): void;
  /** A lookup for a key that is not resident (frequency-aware policies count it). */
  onMiss(key: string): void;
  /**
   * Makes `node` resident, then evicts (through the callback) until the bounds hold again. A
   * policy may reject the candidate itself, in which case it calls the callback with it.
   */
  add(node: N): void;
  /** A resident node's weight changed from `previousWeight` to `node.weight`; re-check bounds. */
  updateWeight(node: N, previousWeight: number): void;
  /** A resident node leaves for a reason other than eviction (delete, expiry, invalidation). */
  remove(node: N): void;
  clear(): void;
  /**
   * Estimated frequency of a key, for admission thresholds and adaptive TTLs (0 when unknown);
   * `node` is its resident node, if any, so hits the policy keeps on nodes are counted too.
   */
  frequency(key: string, node?: N): number;
  readonly size: number;
  readonly weight: number;
}

export type PolicyFactory = <N extends PolicyNode>(
  bounds: PolicyBounds,
  evict: EvictCallback<N>,
) => EvictionPolicy<N>;
