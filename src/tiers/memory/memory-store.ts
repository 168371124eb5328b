import type { Entry, RemovalReason } from '../../entry.js';
import { hashKey } from '../../internal/hash.js';
import type { EvictionPolicy, PolicyFactory, PolicyNode } from './policy.js';

export class MemoryNode implements PolicyNode {
  readonly key: string;
  readonly hash: number;
  entry: Entry;
  weight: number;
  prev: PolicyNode | null = null;
  next: PolicyNode | null = null;
  region = 0;
  mark = -1;
  referenced = false;
  /**
   * `Promise.resolve(entry.value)`, made at the first hit that asks and reused by the next ones:
   * allocating a promise per hit was a visible share of an L1 hit. Cleared when the value changes.
   */
  settled: Promise<unknown> | undefined = undefined;

  constructor(key: string, entry: Entry, weight: number) {
    this.key = key;
    this.hash = hashKey(key);
    this.entry = entry;
    this.weight = weight;
  }
}

export interface MemoryStoreOptions {
  maxEntries: number;
  maxWeight: number;
  policy: PolicyFactory;
  onRemove?: ((key: string, entry: Entry, reason: RemovalReason) => void) | undefined;
}

/**
 * The L1 map. Lookups are one Map#get plus an expiry compare; expired nodes are dropped when
 * touched, and otherwise leave through eviction, so no timers run per entry.
 */
export class MemoryStore {
  readonly #map = new Map<string, MemoryNode>();
  readonly #policy: EvictionPolicy<MemoryNode>;
  readonly #onRemove: MemoryStoreOptions['onRemove'];
  evictions = 0;
  /**
   * Set by a cache that tags entries: true when a tagged entry's tag was invalidated after it
   * was created. Asked only for entries with tags, so untagged hits pay one property check.
   */
  tagged: ((entry: Entry) => boolean) | undefined;

  constructor(options: MemoryStoreOptions) {
    this.#onRemove = options.onRemove;
    this.#policy = options.policy<MemoryNode>(
      { maxEntries: options.maxEntries, maxWeight: options.maxWeight },
      (node) => {
        this.#map.delete(node.key);
        this.evictions++;
        this.#onRemove?.(node.key, node.entry, 'evict');
      },
    );
  }

  get policy(): EvictionPolicy<MemoryNode> {
    return this.#policy;
  }

  get size(): number {
    return this.#map.size;
  }

  get weight(): number {
    return this.#policy.weight;
  }

  /** The live entry for `key`, recording the access with the policy. */
  get(key: string, now: number): Entry | undefined {
    return this.hit(key, now)?.entry;
  }

  /** `get`, answering with the live entry's node. */
  hit(key: string, now: number): MemoryNode | undefined {
    const node = this.#map.get(key);
    if (node === undefined) {
      this.#policy.onMiss(key);
      return undefined;
    }
    if (node.entry.expiresAt <= now) {
      // A stale copy (grace, fail-safe) stays until its stale period ends; it is a miss here
      // and is reached through peekStale by the loading path.
      if (!((node.entry.staleUntil ?? 0) > now)) this.#drop(node, 'expire');
      this.#policy.onMiss(key);
      return undefined;
    }
    if (node.entry.tags !== undefined && this.tagged?.(node.entry)) {
      this.#drop(node, 'invalidate');
      this.#policy.onMiss(key);
      return undefined;
    }
    this.#policy.onHit(node);
    return node;
  }

  /** The entry for `key` if it is live or still within its stale period; no access is counted. */
  peekStale(key: string, now: number): Entry | undefined {
    const node = this.#map.get(key);
    if (node === undefined) return undefined;
    const entry = node.entry;
    // A tag invalidation says the value is wrong, not old: it is never served stale either.
    if (entry.tags !== undefined && this.tagged?.(entry)) return undefined;
    return entry.expiresAt > now || (entry.staleUntil ?? 0) > now ? entry : undefined;
  }

  /**
   * Whether the policy has seen `key` at least `times` times recently, counting the request in
   * progress when `get` just missed it: an admission threshold for promoting keys into this
   * tier (e.g. `seenAtLeast(key, 2)` skips one-hit wonders). Uses the policy's frequency
   * estimate, which for `tinylfu` never under-counts within its aging period (up to 16) and
   * for `lru` is always 0.
   */
  seenAtLeast(key: string, times: number): boolean {
    return times <= 0 || this.frequency(key) >= times;
  }

  /** The policy's frequency estimate for `key`, counting hits it keeps on a resident node. */
  frequency(key: string): number {
    return this.#policy.frequency(key, this.#map.get(key));
  }

  /** Whether `key` has a node (live or expired); no access is counted. */
  has(key: string): boolean {
    return this.#map.has(key);
  }

  /** The live entry for `key` without counting an access. */
  peek(key: string, now: number): Entry | undefined {
    const node = this.#map.get(key);
    if (node === undefined || node.entry.expiresAt <= now) return undefined;
    if (node.entry.tags !== undefined && this.tagged?.(node.entry)) return undefined;
    return node.entry;
  }

  set(key: string, entry: Entry, weight: number): void {
    const existing = this.#map.get(key);
    if (existing !== undefined) {
      const previous = existing.entry;
      const previousWeight = existing.weight;
      existing.entry = entry;
      existing.settled = undefined;
      existing.weight = weight;
      this.#onRemove?.(key, previous, 'replace');
      this.#policy.onHit(existing);
      if (weight !== previousWeight) this.#policy.updateWeight(existing, previousWeight);
      return;
    }
    const node = new MemoryNode(key, entry, weight);
    this.#map.set(key, node);
    this.#policy.add(node);
  }

  delete(key: string, reason: RemovalReason = 'delete'): boolean {
    const node = this.#map.get(key);
    if (node === undefined) return false;
    this.#drop(node, reason);
    return true;
  }

  clear(reason: RemovalReason = 'delete'): void {
    const onRemove = this.#onRemove;
    if (onRemove !== undefined) for (const node of this.#map.values()) onRemove(node.key, node.entry, reason);
    this.#map.clear();
    this.#policy.clear();
  }

  /** Drops every entry `matches` accepts, with `reason`; how many went. O(entries). */
  deleteWhere(matches: (key: string, entry: Entry) => boolean, reason: RemovalReason): number {
    let removed = 0;
    for (const node of [...this.#map.values()]) {
      if (matches(node.key, node.entry)) {
        this.#drop(node, reason);
        removed++;
      }
    }
    return removed;
  }

  /** Shortens every entry's life to end by `until` at the latest. O(entries). */
  capExpiry(until: number): void {
    for (const node of this.#map.values()) {
      const { entry } = node;
      if (entry.expiresAt > until) node.entry = { ...entry, expiresAt: until };
    }
  }

  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  #drop(node: MemoryNode, reason: RemovalReason): void {
    this.#map.delete(node.key);
    this.#policy.remove(node);
    this.#onRemove?.(node.key, node.entry, reason);
  }
}
