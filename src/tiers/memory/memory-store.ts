import type { Entry, RemovalReason } from '../../entry.js';
import { hashKey } from '../../internal/hash.js';
import type { EvictionPolicy, PolicyFactory, PolicySlots } from './policy.js';

export interface MemoryStoreOptions {
  maxEntries: number;
  maxWeight: number;
  policy: PolicyFactory;
  onRemove?: ((key: string, entry: Entry, reason: RemovalReason) => void) | undefined;
}

/**
 * The most slots a store keeps a settled promise for, one per slot (see `settled`). Measured
 * (bench/l1-scale.ts, Zipf 0.9): kept promises made a hit 1.2x faster at 1,000 entries and 1.05x
 * at 10,000, but 0.9x at 30,000 and beyond, where most hits found another key's promise in a
 * shared cell and paid for a new one that also had to be promoted out of the young generation.
 */
const PROMISE_SLOTS = 32_768;

/** Slots the store starts with and grows by at least. */
const MIN_SLOTS = 64;

/**
 * The L1 map, laid out as arrays indexed by slot rather than an object per entry (see
 * docs/l1.md#storage): a Map from key to slot, then per slot its key and value in plain arrays
 * and its expiry and creation instants side by side in one Float64Array. An entry with tags or a
 * stale period (`staleUntil` after `expiresAt`) keeps its whole `Entry` in the value array instead, marked by a NaN creation
 * instant; most entries have neither, and cost no object of their own. The policy keeps its
 * links and marks per slot in typed arrays too. Freed slots are chained through the value
 * array and reused before the arrays grow; they grow by doubling up to `maxEntries` + 1 (the
 * newcomer is added before the policy evicts).
 *
 * Lookups are one Map#get plus an expiry compare; expired entries are dropped when touched, and
 * otherwise leave through eviction, so no timers run per entry.
 */
export class MemoryStore {
  readonly #map = new Map<string, number>();
  readonly #policy: EvictionPolicy;
  readonly #onRemove: MemoryStoreOptions['onRemove'];
  readonly #maxSlots: number;
  #capacity = 0;
  /** Slots handed out at least once (0 … used-1); the rest are untouched. */
  #used = 0;
  /** The first free slot (each free slot's value is the next), or -1. */
  #free = -1;
  #keys: (string | undefined)[] = [];
  #values: unknown[] = [];
  /** Per slot: expiresAt at 2 × slot, createdAt (NaN when the value array holds the Entry) after. */
  #times = new Float64Array(0);
  /** Per slot weights, made at the first weight other than 1. */
  #weights: Float64Array | undefined;
  /** Per slot, the settled promise its hits share; undefined past PROMISE_SLOTS. */
  readonly #promises: (Promise<unknown> | undefined)[] | undefined;
  /**
   * Entries capExpiry shortened, by slot: the key, the value array's cell and expiry as capped,
   * and the full expiry (and whole Entry, for entries kept whole), until restored or cleared.
   */
  readonly #capped = new Map<
    number,
    { key: string; cell: unknown; until: number; full: number; whole: Entry | undefined }
  >();
  /**
   * Copies L1 held when the bus lost track of what was invalidated (see `demote`), by key, in
   * the order demoted; undefined until the first demotion. Never answered as hits.
   */
  #suspects: Map<string, Entry> | undefined;
  evictions = 0;
  /**
   * Set by a cache that tags entries: true when a tagged entry's tag was invalidated after it
   * was created. Asked only for entries with tags, so untagged hits pay nothing for it.
   */
  tagged: ((entry: Entry) => boolean) | undefined;

  constructor(options: MemoryStoreOptions) {
    this.#onRemove = options.onRemove;
    this.#maxSlots = options.maxEntries + 1;
    if (this.#maxSlots <= PROMISE_SLOTS)
      this.#promises = new Array<Promise<unknown> | undefined>(this.#maxSlots).fill(undefined);
    const slots: PolicySlots = {
      hash: (slot) => hashKey(this.#keys[slot]!),
      weight: (slot) => (this.#weights === undefined ? 1 : this.#weights[slot]!),
    };
    this.#policy = options.policy(
      { maxEntries: options.maxEntries, maxWeight: options.maxWeight },
      slots,
      (slot) => {
        const key = this.#keys[slot]!;
        this.#map.delete(key);
        this.evictions++;
        this.#release(slot, key, 'evict');
      },
    );
  }

  get policy(): EvictionPolicy {
    return this.#policy;
  }

  get size(): number {
    return this.#map.size;
  }

  get weight(): number {
    return this.#policy.weight;
  }

  /** Slots the arrays hold now (they grow with the entries, up to maxEntries + 1). */
  get capacity(): number {
    return this.#capacity;
  }

  /** The live entry for `key`, recording the access with the policy. */
  get(key: string, now: number): Entry | undefined {
    const slot = this.hit(key, now);
    return slot < 0 ? undefined : this.#entry(slot);
  }

  /** `get` answering with the live entry's slot (-1 on a miss): read it with `value`/`settled`. */
  hit(key: string, now: number): number {
    const slot = this.#map.get(key);
    if (slot === undefined) {
      this.#policy.onMiss(key);
      return -1;
    }
    const times = this.#times;
    const createdAt = times[2 * slot + 1]!;
    if (times[2 * slot]! <= now) {
      // A stale copy (grace, fail-safe) stays until its stale period ends; it is a miss here
      // and is reached through peekStale by the loading path.
      if (!(createdAt !== createdAt && ((this.#values[slot] as Entry).staleUntil ?? 0) > now))
        this.#drop(slot, 'expire');
      this.#policy.onMiss(key);
      return -1;
    }
    if (createdAt !== createdAt && this.#invalidated(this.#values[slot] as Entry)) {
      this.#drop(slot, 'invalidate');
      this.#policy.onMiss(key);
      return -1;
    }
    this.#policy.onHit(slot);
    return slot;
  }

  /** The value in a live slot `hit` answered with. */
  value(slot: number): unknown {
    const value = this.#values[slot];
    const createdAt = this.#times[2 * slot + 1]!;
    return createdAt === createdAt ? value : (value as Entry).value;
  }

  /**
   * `Promise.resolve(value(slot))`, which a small store keeps for the slot's next hits while it
   * keeps its value, so that a hit allocates nothing; a large one makes one per hit, as an
   * `await` of a plain value would (see PROMISE_SLOTS).
   */
  settled(slot: number): Promise<unknown> {
    const promises = this.#promises;
    if (promises === undefined) return Promise.resolve(this.value(slot));
    return (promises[slot] ??= Promise.resolve(this.value(slot)));
  }

  /** The entry in a live slot `hit` answered with. */
  entryAt(slot: number): Entry {
    return this.#entry(slot);
  }

  /** The entry for `key` if it is live or still within its stale period; no access is counted. */
  peekStale(key: string, now: number): Entry | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined) return undefined;
    const entry = this.#entry(slot);
    // A tag invalidation says the value is wrong, not old: it is never served stale either.
    if (this.#invalidated(entry)) return undefined;
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

  /** The policy's frequency estimate for `key`, counting hits it keeps for a resident slot. */
  frequency(key: string): number {
    return this.#policy.frequency(key, this.#map.get(key));
  }

  /** Whether `key` has a slot (live or expired); no access is counted. */
  has(key: string): boolean {
    return this.#map.has(key);
  }

  /** The live entry for `key` without counting an access. */
  peek(key: string, now: number): Entry | undefined {
    const slot = this.#map.get(key);
    if (slot === undefined || this.#times[2 * slot]! <= now) return undefined;
    const entry = this.#entry(slot);
    return this.#invalidated(entry) ? undefined : entry;
  }

  set(key: string, entry: Entry, weight: number): void {
    this.#suspects?.delete(key);
    const existing = this.#map.get(key);
    if (existing !== undefined) {
      const previous = this.#onRemove === undefined ? undefined : this.#entry(existing);
      const previousWeight = this.#weightOf(existing);
      this.#write(existing, entry, weight);
      if (previous !== undefined) this.#onRemove!(key, previous, 'replace');
      this.#policy.onHit(existing);
      if (weight !== previousWeight) this.#policy.updateWeight(existing, previousWeight);
      return;
    }
    const slot = this.#allocate();
    this.#keys[slot] = key;
    this.#write(slot, entry, weight);
    this.#map.set(key, slot);
    this.#policy.add(slot);
  }

  delete(key: string, reason: RemovalReason = 'delete'): boolean {
    this.#suspects?.delete(key);
    const slot = this.#map.get(key);
    if (slot === undefined) return false;
    this.#drop(slot, reason);
    return true;
  }

  clear(reason: RemovalReason = 'delete'): void {
    this.#suspects = undefined;
    this.#drain(reason);
  }

  /**
   * Empties the store, keeping each entry that still has a stale period as a suspect: a copy
   * that may have been invalidated unseen, which `peekSuspect` hands to a load whose loader
   * fails under fail-safe, and never to anything else. The suspects are bounded by
   * `maxEntries`, the oldest demoted going first, and leave when the key is written, deleted,
   * matched by `deleteWhere`, or past its stale period.
   */
  demote(now: number, reason: RemovalReason): void {
    const suspects = (this.#suspects ??= new Map<string, Entry>());
    for (const [key, slot] of this.#map) {
      const entry = this.#entry(slot);
      if (!((entry.staleUntil ?? 0) > now) || this.#invalidated(entry)) continue;
      suspects.delete(key);
      suspects.set(key, entry);
    }
    // Oldest first: the expired go, and the oldest while there are more than maxEntries.
    for (const [key, entry] of suspects)
      if (!(entry.staleUntil! > now) || suspects.size >= this.#maxSlots) suspects.delete(key);
    this.#drain(reason);
  }

  /** `key`'s suspect copy (see `demote`) while its stale period lasts and no tag invalidated it. */
  peekSuspect(key: string, now: number): Entry | undefined {
    const entry = this.#suspects?.get(key);
    if (entry === undefined) return undefined;
    if (entry.staleUntil! > now && !this.#invalidated(entry)) return entry;
    this.#suspects!.delete(key);
    return undefined;
  }

  /** Forgets `key`'s suspect copy: something newer was written where L1 did not keep it. */
  forgetSuspect(key: string): void {
    this.#suspects?.delete(key);
  }

  /** Empties the slots (not the suspects), reporting each entry removed for `reason`. */
  #drain(reason: RemovalReason): void {
    const onRemove = this.#onRemove;
    if (onRemove !== undefined) for (const [key, slot] of this.#map) onRemove(key, this.#entry(slot), reason);
    this.#map.clear();
    this.#capped.clear();
    this.#policy.clear();
    this.#keys.fill(undefined);
    this.#values.fill(undefined);
    void this.#promises?.fill(undefined);
    this.#used = 0;
    this.#free = -1;
  }

  /** Drops every entry `matches` accepts, with `reason`; how many went. O(entries). */
  deleteWhere(matches: (key: string, entry: Entry) => boolean, reason: RemovalReason): number {
    const suspects = this.#suspects;
    if (suspects !== undefined)
      for (const [key, entry] of suspects) if (matches(key, entry)) suspects.delete(key);
    let removed = 0;
    for (const [key, slot] of [...this.#map]) {
      if (matches(key, this.#entry(slot))) {
        this.#drop(slot, reason);
        removed++;
      }
    }
    return removed;
  }

  /**
   * Shortens every entry's life to end by `until` at the latest. O(entries). The full lives are
   * remembered until `restoreExpiry()` or `clear()`.
   */
  capExpiry(until: number): void {
    const times = this.#times;
    for (const slot of this.#map.values()) {
      const full = times[2 * slot]!;
      if (!(full > until)) continue;
      const earlier = this.#capped.get(slot);
      const kept = earlier !== undefined && this.#stillCapped(slot, earlier) ? earlier : undefined;
      times[2 * slot] = until;
      const createdAt = times[2 * slot + 1]!;
      const whole = createdAt !== createdAt ? (this.#values[slot] as Entry) : undefined;
      if (whole !== undefined) this.#values[slot] = { ...whole, expiresAt: until };
      this.#capped.set(slot, {
        key: this.#keys[slot]!,
        cell: this.#values[slot],
        until,
        full: kept?.full ?? full,
        whole: kept?.whole ?? whole,
      });
    }
  }

  /**
   * Gives the entries `capExpiry` shortened their full lives back, those still held and not
   * replaced since (even if the cap has passed); how many. O(capped entries).
   */
  restoreExpiry(): number {
    let restored = 0;
    for (const [slot, capped] of this.#capped) {
      if (!this.#stillCapped(slot, capped)) continue;
      this.#times[2 * slot] = capped.full;
      if (capped.whole !== undefined) this.#values[slot] = capped.whole;
      restored++;
    }
    this.#capped.clear();
    return restored;
  }

  /** Whether `slot` still holds the entry capExpiry capped (not dropped, replaced or reused). */
  #stillCapped(slot: number, capped: { key: string; cell: unknown; until: number }): boolean {
    return (
      this.#map.get(capped.key) === slot &&
      this.#values[slot] === capped.cell &&
      this.#times[2 * slot] === capped.until
    );
  }

  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  #invalidated(entry: Entry): boolean {
    return entry.tags !== undefined && this.tagged !== undefined && this.tagged(entry);
  }

  #entry(slot: number): Entry {
    const createdAt = this.#times[2 * slot + 1]!;
    if (createdAt !== createdAt) return this.#values[slot] as Entry;
    return { value: this.#values[slot], createdAt, expiresAt: this.#times[2 * slot]! };
  }

  #weightOf(slot: number): number {
    return this.#weights === undefined ? 1 : this.#weights[slot]!;
  }

  #write(slot: number, entry: Entry, weight: number): void {
    const rich = keptWhole(entry);
    this.#values[slot] = rich ? entry : entry.value;
    this.#times[2 * slot] = entry.expiresAt;
    this.#times[2 * slot + 1] = rich ? Number.NaN : entry.createdAt;
    if (weight !== 1 && this.#weights === undefined) this.#weights = new Float64Array(this.#capacity).fill(1);
    if (this.#weights !== undefined) this.#weights[slot] = weight;
    this.#forgetPromise(slot);
  }

  #forgetPromise(slot: number): void {
    if (this.#promises !== undefined) this.#promises[slot] = undefined;
  }

  #allocate(): number {
    const free = this.#free;
    if (free >= 0) {
      this.#free = this.#values[free] as number;
      return free;
    }
    if (this.#used === this.#capacity) this.#grow();
    return this.#used++;
  }

  #grow(): void {
    const capacity = Math.min(this.#maxSlots, Math.max(MIN_SLOTS, 2 * this.#capacity));
    if (capacity <= this.#capacity) throw new RangeError(`the L1 store is full (${this.#capacity} slots)`);
    this.#keys = grown(this.#keys, capacity);
    this.#values = grown(this.#values, capacity);
    const times = new Float64Array(2 * capacity);
    times.set(this.#times);
    this.#times = times;
    if (this.#weights !== undefined) {
      const weights = new Float64Array(capacity).fill(1);
      weights.set(this.#weights);
      this.#weights = weights;
    }
    this.#capacity = capacity;
    this.#policy.grow(capacity);
  }

  #drop(slot: number, reason: RemovalReason): void {
    const key = this.#keys[slot]!;
    this.#map.delete(key);
    this.#policy.remove(slot);
    this.#release(slot, key, reason);
  }

  /** Frees a slot the policy no longer holds, reporting its entry as removed for `reason`. */
  #release(slot: number, key: string, reason: RemovalReason): void {
    const entry = this.#onRemove === undefined ? undefined : this.#entry(slot);
    this.#forgetPromise(slot);
    this.#keys[slot] = undefined;
    this.#values[slot] = this.#free;
    this.#free = slot;
    if (entry !== undefined) this.#onRemove!(key, entry, reason);
  }
}

/**
 * Whether the store keeps `entry` as its whole object rather than its value alone: it has tags
 * or a stale period. A stale limit at or before expiry is no stale period (the facade always
 * writes one).
 */
export function keptWhole(entry: Entry): boolean {
  return entry.tags !== undefined || (entry.staleUntil ?? 0) > entry.expiresAt;
}

/** `items` copied into a packed array of `capacity` cells (a sparse one would be a hash table). */
function grown<T>(items: readonly T[], capacity: number): (T | undefined)[] {
  const copy = new Array<T | undefined>(capacity).fill(undefined);
  for (let i = 0; i < items.length; i++) copy[i] = items[i];
  return copy;
}
