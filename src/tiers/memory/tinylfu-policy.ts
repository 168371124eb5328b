import { hashKey, mix32 } from '../../internal/hash.js';
import { FrequencySketch, type FrequencySketchOptions } from './frequency-sketch.js';
import {
  GhostClimber,
  HitRatioClimber,
  type GhostClimberSettings,
  type HitRatioClimberSettings,
  type WindowClimber,
} from './hill-climber.js';
import type { EvictCallback, EvictionPolicy, PolicyBounds, PolicyFactory, PolicySlots } from './policy.js';
import { SlotLinks } from './slot-links.js';

/**
 * W-TinyLFU (Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy",
 * ACM ToS 2017), shaped after Caffeine's `BoundedLocalCache`:
 *
 * - New nodes enter a small LRU *window*. Recency-biased bursts hit there.
 * - The window's overflow becomes a *candidate* for the main space, a segmented LRU
 *   (*probation* and *protected*). When the cache is over its bounds the candidate competes with
 *   probation's LRU *victim*: the one the frequency sketch has seen less often leaves. A hit in
 *   probation promotes a node to protected; protected's overflow is demoted back to probation
 *   at the next insertion (as in Caffeine, where maintenance does it after the reads).
 * - The window's share of the capacity (1% at first, at least 0.3%, at most 80%) adapts by hill climbing
 *   towards equal marginal hit rates of window and main, measured with ghosts of evicted keys
 *   (see `GhostClimber`): recency-heavy workloads get a large window (Scarab at 100,000 entries:
 *   ~0.5, within half a point of LRU), frequency-heavy ones a small one. Caffeine's climber, which
 *   compares hit ratios of successive periods, is available as `climber: 'hit-ratio'`.
 * - Hash flooding: an attacker who makes a hot victim collide with many keys can keep every new
 *   entry out. As in Caffeine's `admit`, a warm candidate that loses is admitted anyway with
 *   probability 1/128, which breaks the attack at a negligible cost in hit ratio.
 *
 * Both bounds hold at once: each region's limit is its share of `maxEntries` and of `maxWeight`.
 * A node heavier than `maxWeight` on its own is rejected as soon as it is added.
 *
 * Per slot the policy keeps links and one state word in a `SlotLinks` (see STATE below); the
 * hit path updates that word and, outside the protected region, a few links. It never
 * allocates.
 */
const WINDOW = 1;
const PROBATION = 2;
const PROTECTED = 3;

/**
 * A slot's state word: bits 0–1 its region (0 when not resident), bit 2 the second-chance mark
 * (read since it last reached protected's recent end), bits 3–6 the hits kept for it, bits 7–30
 * the sketch epoch (mod 2^24) those hits belong to.
 */
const REGION = 3;
const REFERENCED = 4;
const EPOCH_MASK = 0xffffff;

/** Candidates at least this frequent that lose are sometimes admitted anyway (Caffeine: 6). */
const ADMIT_HASHDOS_THRESHOLD = 6;

export interface TinyLfuOptions {
  /**
   * Initial share of the capacity for the admission window.
   * @default 0.01
   */
  initialWindow?: number | undefined;
  /**
   * Smallest share of the capacity the climber may leave the window (at least one entry). On
   * loops the ghost climber walks the window down to its floor; with a floor of one entry a
   * loop 1.2x a 2,000-entry cache got 75% against 82% for a fixed 1% window (measured, the
   * admission filter churns main more with a one-entry window). 0.3% keeps 82%, and the real
   * traces' and Zipf's figures stay within 0.02 pt of what they were (see bench/hit-ratio.ts).
   * @default 0.003
   */
  minWindow?: number | undefined;
  /**
   * Largest share of the capacity the climber may give the window. Past 1 − 0.2 × 0.99 the
   * window also takes probation's share.
   * @default 0.8
   */
  maxWindow?: number | undefined;
  /**
   * Share of the main space (capacity minus window) reserved for protected nodes.
   * @default 0.8
   */
  protectedShare?: number | undefined;
  /**
   * Adapt the window size by hill climbing; `false` keeps `initialWindow`.
   * @default true
   */
  adaptive?: boolean | undefined;
  /** Overrides for the frequency sketch. */
  sketch?: FrequencySketchOptions | undefined;
  /**
   * How the window adapts: `'ghost'` (marginal hit rates from evicted-key ghosts) or
   * `'hit-ratio'` (Caffeine's climber, for comparison), optionally with setting overrides.
   * @default 'ghost'
   */
  climber?:
    | 'ghost'
    | 'hit-ratio'
    | ({ kind: 'ghost' } & Partial<GhostClimberSettings>)
    | ({ kind: 'hit-ratio' } & Partial<HitRatioClimberSettings>)
    | undefined;
  /**
   * Seed of the generator behind the hash-flooding defence; set it for reproducible
   * simulations. By default each policy draws its own.
   */
  seed?: number | undefined;
}

export class TinyLfuPolicy implements EvictionPolicy {
  readonly name = 'tinylfu';
  readonly #bounds: PolicyBounds;
  readonly #slots: PolicySlots;
  readonly #evict: EvictCallback;
  readonly #sketch: FrequencySketch;
  /** Whether the sketch grows with the store (a byte bound) rather than being sized up front. */
  readonly #sketchGrows: boolean;
  readonly #climber: WindowClimber | null;
  readonly #links = new SlotLinks(4, 0);
  readonly #window: AccessQueue;
  readonly #probation: AccessQueue;
  readonly #protected: AccessQueue;
  readonly #minWindowShare: number;
  readonly #maxWindowShare: number;
  /** Probation's share, kept as the window and protected trade capacity (as in Caffeine). */
  readonly #probationShare: number;
  #windowShare: number;
  #protectedShare: number;
  #windowMaxEntries = 0;
  #windowMaxWeight = 0;
  #protectedMaxEntries = 0;
  #protectedMaxWeight = 0;
  #size = 0;
  #weight = 0;
  /** Set at the first eviction: the climber only samples a full cache. */
  #full = false;
  #random: number;

  constructor(bounds: PolicyBounds, slots: PolicySlots, evict: EvictCallback, options: TinyLfuOptions = {}) {
    this.#bounds = bounds;
    this.#slots = slots;
    this.#evict = evict;
    this.#window = new AccessQueue(WINDOW, this.#links, slots);
    this.#probation = new AccessQueue(PROBATION, this.#links, slots);
    this.#protected = new AccessQueue(PROTECTED, this.#links, slots);
    const { maxEntries, maxWeight } = bounds;
    const capacity = Number.isFinite(maxEntries) ? maxEntries : Math.min(maxWeight, 1_024);
    // Bounded by entries alone, the store fills up to maxEntries: the sketch is sized for that
    // now. Under a byte bound, maxEntries is only a ceiling and how many entries fit is unknown:
    // a sketch for the ceiling was 40 MB of a 256 MB L1, so it starts small and grows with the
    // store (grow()), losing its counts at each doubling while the L1 fills.
    this.#sketchGrows = Number.isFinite(maxWeight);
    this.#random = mix32(options.seed ?? Math.floor(Math.random() * 0x7fffffff)) || 1;
    this.#sketch = new FrequencySketch(this.#sketchGrows ? Math.min(capacity, 1_024) : capacity, {
      seed: this.#random,
      ...options.sketch,
    });
    this.#climber = options.adaptive === false ? null : createClimber(capacity, options.climber);
    this.#minWindowShare = Number.isFinite(maxEntries)
      ? Math.min(1, Math.max(options.minWindow ?? 0.003, 1 / Math.max(1, maxEntries)))
      : 0;
    this.#maxWindowShare = Math.max(this.#minWindowShare, Math.min(1, options.maxWindow ?? 0.8));
    const protectedOfMain = options.protectedShare ?? 0.8;
    this.#windowShare = clamp(options.initialWindow ?? 0.01, this.#minWindowShare, this.#maxWindowShare);
    this.#protectedShare = protectedOfMain * (1 - this.#windowShare);
    this.#probationShare = (1 - protectedOfMain) * (1 - this.#windowShare);
    this.#resize();
  }

  get size(): number {
    return this.#size;
  }

  get weight(): number {
    return this.#weight;
  }

  /** The window's current share of the capacity (adapted by the hill climber). */
  get windowShare(): number {
    return this.#windowShare;
  }

  /** Bytes of the frequency sketch (counters and doorkeeper). */
  get sketchBytes(): number {
    return this.#sketch.byteSize;
  }

  /** Bytes of the window climber's bookkeeping (the ghost table). */
  get climberBytes(): number {
    return this.#climber?.byteSize ?? 0;
  }

  /** The region `slot` is in (0 when not resident; 1 window, 2 probation, 3 protected). */
  regionOf(slot: number): number {
    return this.#links.state(slot) & REGION;
  }

  grow(capacity: number): void {
    this.#links.grow(capacity);
    if (this.#sketchGrows) this.#sketch.ensureCapacity(Math.min(capacity, this.#bounds.maxEntries));
  }

  onHit(slot: number): void {
    // A resident key's hits are kept in its state word (4 bits, with the sketch epoch they
    // belong to) instead of going to the sketch, whose random access was most of a hit's cost;
    // they join the sketch's estimate when the slot competes for admission and are applied to
    // the sketch when it leaves, so its frequency outlives its residency.
    const links = this.#links;
    const sketch = this.#sketch;
    let state = links.state(slot);
    const epoch = sketch.epoch & EPOCH_MASK;
    const pending = deferredHits(state, epoch);
    if (pending < 15) {
      state = (state & (REGION | REFERENCED)) | ((pending + 1) << 3) | (epoch << 7);
      sketch.countDeferred();
    }
    if (this.#full) this.#climber?.onHit();
    switch (state & REGION) {
      case WINDOW:
        links.setState(slot, state);
        links.moveToMru(WINDOW, slot);
        break;
      case PROBATION:
        links.setState(slot, state);
        if (this.#slots.weight(slot) > this.#protectedMaxWeight) {
          links.moveToMru(PROBATION, slot);
          break;
        }
        // Protected's overflow goes back to probation at the next add, not here: the demotion's
        // second-chance scan touches two or three cold slots, a tenth of a hit's time at 100k
        // uniform keys. Nothing is evicted between adds, so no eviction sees the overflow.
        this.#probation.unlink(slot);
        this.#protected.pushMru(slot);
        break;
      case PROTECTED:
        // The largest region, so the one where relinking on every hit costs most: it is
        // ordered by second chance instead (see AccessQueue.coldest).
        links.setState(slot, state | REFERENCED);
        break;
    }
  }

  onMiss(key: string): void {
    const hash = hashKey(key);
    this.#sketch.increment(hash);
    if (this.#full) this.#climber?.onMiss(hash);
  }

  /** The sketch's estimate, counting the doorkeeper's first sighting (0 … 16). */
  frequency(key: string, slot?: number): number {
    return slot !== undefined && slot >= 0 && this.regionOf(slot) !== 0
      ? this.#frequencyOf(slot)
      : this.#sketch.frequency(hashKey(key));
  }

  /** `frequency` for a hash already computed. */
  frequencyOfHash(hash: number): number {
    return this.#sketch.frequency(hash);
  }

  add(slot: number): void {
    if (this.regionOf(slot) !== 0) return;
    this.#links.setState(slot, 0);
    this.#window.pushMru(slot);
    this.#size++;
    const weight = this.#slots.weight(slot);
    this.#weight += weight;
    if (weight > this.#bounds.maxWeight) {
      this.#evictSlot(slot);
      return;
    }
    if (this.#size > this.#sketch.capacity && !Number.isFinite(this.#bounds.maxEntries)) {
      this.#sketch.ensureCapacity(this.#size * 2);
    }
    this.#demoteFromProtected();
    this.#evictEntries();
    this.#climb();
  }

  updateWeight(slot: number, previousWeight: number): void {
    const region = this.regionOf(slot);
    if (region === 0) return;
    const weight = this.#slots.weight(slot);
    const delta = weight - previousWeight;
    this.#weight += delta;
    this.#queue(region).weight += delta;
    if (weight > this.#bounds.maxWeight) {
      this.#evictSlot(slot);
      return;
    }
    if (region === PROTECTED) this.#demoteFromProtected();
    this.#evictEntries();
  }

  remove(slot: number): void {
    const state = this.#links.state(slot);
    const region = state & REGION;
    if (region === 0) return;
    const pending = deferredHits(state, this.#sketch.epoch & EPOCH_MASK);
    if (pending > 0) this.#sketch.applyDeferred(this.#slots.hash(slot), pending);
    this.#queue(region).unlink(slot);
    this.#links.setState(slot, 0);
    this.#size--;
    this.#weight -= this.#slots.weight(slot);
  }

  clear(): void {
    this.#window.clear();
    this.#probation.clear();
    this.#protected.clear();
    this.#size = 0;
    this.#weight = 0;
    this.#full = false;
    this.#sketch.clear();
    this.#climber?.reset();
  }

  #queue(region: number): AccessQueue {
    return region === WINDOW ? this.#window : region === PROBATION ? this.#probation : this.#protected;
  }

  #overBounds(): boolean {
    return this.#size > this.#bounds.maxEntries || this.#weight > this.#bounds.maxWeight;
  }

  /** Evicts `slot`; `from` says which side lost (for the climber), 0 for a plain rejection. */
  #evictSlot(slot: number, from = 0): void {
    if (from !== 0) {
      this.#full = true;
      this.#climber?.onEvict(this.#slots.hash(slot), from !== WINDOW);
    }
    this.remove(slot);
    this.#evict(slot);
  }

  /** Moves the window's overflow into probation, then evicts from main until the bounds hold. */
  #evictEntries(): void {
    const window = this.#window;
    let candidate = -1;
    while (window.count > this.#windowMaxEntries || window.weight > this.#windowMaxWeight) {
      const slot = window.lru();
      if (slot < 0) break;
      window.unlink(slot);
      this.#probation.pushMru(slot);
      if (candidate < 0) candidate = slot;
    }
    if (this.#overBounds()) this.#evictFromMain(candidate);
  }

  /**
   * Caffeine's `evictFromMain`: candidates are taken from the new arrivals in probation (then the
   * window), victims from probation's LRU end (then protected, then the window); each round
   * evicts whichever of the two the sketch has seen less. Slots are -1 for none.
   */
  #evictFromMain(first: number): void {
    const maxWeight = this.#bounds.maxWeight;
    const slots = this.#slots;
    let candidate = first;
    let candidateQueue = PROBATION;
    let victimQueue = PROBATION;
    let victim = this.#probation.lru();
    while (this.#overBounds()) {
      if (candidate < 0 && candidateQueue === PROBATION) {
        candidate = this.#window.lru();
        candidateQueue = WINDOW;
      }
      if (candidate < 0 && victim < 0) {
        if (victimQueue === PROBATION) {
          victim = this.#protected.lru();
          victimQueue = PROTECTED;
          continue;
        }
        if (victimQueue === PROTECTED) {
          victim = this.#window.lru();
          victimQueue = WINDOW;
          continue;
        }
        break;
      }
      if (victim >= 0 && slots.weight(victim) === 0) {
        victim = this.#links.after(victim);
        continue;
      }
      if (candidate >= 0 && slots.weight(candidate) === 0) {
        candidate = this.#links.after(candidate);
        continue;
      }
      if (victim < 0) {
        const evicted = candidate;
        candidate = this.#links.after(evicted);
        this.#evictSlot(evicted, WINDOW);
        continue;
      }
      if (candidate < 0) {
        const evicted = victim;
        victim = this.#links.after(evicted);
        this.#evictSlot(evicted, victimQueue);
        continue;
      }
      if (candidate === victim) {
        victim = this.#links.after(victim);
        this.#evictSlot(candidate, WINDOW);
        candidate = -1;
        continue;
      }
      if (slots.weight(candidate) > maxWeight || !this.#admit(candidate, victim)) {
        const evicted = candidate;
        candidate = this.#links.after(evicted);
        this.#evictSlot(evicted, WINDOW);
      } else {
        const evicted = victim;
        victim = this.#links.after(evicted);
        this.#evictSlot(evicted, victimQueue);
        candidate = this.#links.after(candidate);
      }
    }
  }

  #admit(candidate: number, victim: number): boolean {
    const candidateFrequency = this.#frequencyOf(candidate);
    const victimFrequency = this.#frequencyOf(victim);
    if (candidateFrequency > victimFrequency) return true;
    if (candidateFrequency < ADMIT_HASHDOS_THRESHOLD) return false;
    // xorshift32: cheap, and seeded per policy so simulations can be reproduced.
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x;
    return (x & 127) === 0;
  }

  /** A resident slot's frequency: the sketch's estimate plus the hits kept for it. */
  #frequencyOf(slot: number): number {
    const sketch = this.#sketch;
    const pending = deferredHits(this.#links.state(slot), sketch.epoch & EPOCH_MASK);
    return Math.min(16, sketch.frequency(this.#slots.hash(slot)) + pending);
  }

  #demoteFromProtected(): void {
    spill(this.#protected, this.#probation, this.#protectedMaxEntries, this.#protectedMaxWeight);
  }

  #climb(): void {
    const climber = this.#climber;
    if (climber === null || !this.#full) return;
    const amount = climber.adjust();
    if (amount > 0) this.#increaseWindow(amount);
    else if (amount < 0) this.#decreaseWindow(-amount);
  }

  #increaseWindow(amount: number): void {
    const share = Math.min(amount, this.#maxWindowShare - this.#windowShare);
    if (share <= 0) return;
    // The window grows at protected's expense; past that (maxWindow > 1 - probation), probation's.
    this.#windowShare += share;
    this.#protectedShare = Math.max(0, this.#protectedShare - share);
    this.#resize();
    this.#demoteFromProtected();
    // Fill the larger window from main's coldest end so that it takes effect now.
    const window = this.#window;
    for (;;) {
      let from = this.#probation;
      let slot = from.lru();
      if (slot < 0) {
        from = this.#protected;
        slot = from.coldest();
        if (slot < 0) break;
      }
      if (
        window.count + 1 > this.#windowMaxEntries ||
        window.weight + this.#slots.weight(slot) > this.#windowMaxWeight
      )
        break;
      from.unlink(slot);
      window.pushMru(slot);
    }
  }

  #decreaseWindow(amount: number): void {
    const share = Math.min(amount, this.#windowShare - this.#minWindowShare);
    if (share <= 0) return;
    // Give probation back what the window took from it, the rest to protected.
    this.#windowShare -= share;
    this.#protectedShare = Math.max(
      0,
      Math.min(this.#protectedShare + share, 1 - this.#windowShare - this.#probationShare),
    );
    this.#resize();
    spill(this.#window, this.#probation, this.#windowMaxEntries, this.#windowMaxWeight);
  }

  #resize(): void {
    const { maxEntries, maxWeight } = this.#bounds;
    this.#windowMaxEntries = part(maxEntries, this.#windowShare);
    this.#windowMaxWeight = part(maxWeight, this.#windowShare);
    this.#protectedMaxEntries = part(maxEntries, this.#protectedShare);
    this.#protectedMaxWeight = part(maxWeight, this.#protectedShare);
  }
}

/** `share` of a bound that may be Infinity (where 0 × Infinity would be NaN). */
function part(bound: number, share: number): number {
  return share <= 0 ? 0 : bound * share;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

/**
 * Hits kept in a slot's state word, halved once per aging reset since they were counted, as
 * the sketch's counters were.
 */
function deferredHits(state: number, epoch: number): number {
  const count = (state >>> 3) & 15;
  if (count === 0) return 0;
  const elapsed = (epoch - (state >>> 7)) & EPOCH_MASK;
  return elapsed === 0 ? count : elapsed > 3 ? 0 : count >> elapsed;
}

/** Moves `from`'s least recent slots to `to`'s most recent end until `from` is within bounds. */
function spill(from: AccessQueue, to: AccessQueue, maxEntries: number, maxWeight: number): void {
  while (from.count > maxEntries || from.weight > maxWeight) {
    const slot = from.coldest();
    if (slot < 0) break;
    from.unlink(slot);
    to.pushMru(slot);
  }
}

/** One region's access order (a queue of the shared links) with the region's count and weight. */
class AccessQueue {
  count = 0;
  weight = 0;
  readonly #region: number;
  readonly #links: SlotLinks;
  readonly #slots: PolicySlots;

  constructor(region: number, links: SlotLinks, slots: PolicySlots) {
    this.#region = region;
    this.#links = links;
    this.#slots = slots;
  }

  /**
   * The least recent slot not read since it reached the recent end; read ones on the way are
   * moved to the recent end with the mark cleared (CLOCK's second chance). Only the protected
   * region marks slots, so elsewhere this is `lru()`. Each mark costs at most one move, so a
   * hot key pays one relink per trip through the queue instead of one per hit.
   */
  coldest(): number {
    const links = this.#links;
    let slot = links.lru(this.#region);
    while (slot >= 0) {
      const state = links.state(slot);
      if ((state & REFERENCED) === 0) break;
      links.setState(slot, state & ~REFERENCED);
      links.moveToMru(this.#region, slot);
      slot = links.lru(this.#region);
    }
    return slot;
  }

  lru(): number {
    return this.#links.lru(this.#region);
  }

  /** Appends `slot` at the recent end and marks it as this region's, unread. */
  pushMru(slot: number): void {
    const links = this.#links;
    links.pushMru(this.#region, slot);
    links.setState(slot, (links.state(slot) & ~(REGION | REFERENCED)) | this.#region);
    this.count++;
    this.weight += this.#slots.weight(slot);
  }

  unlink(slot: number): void {
    const links = this.#links;
    links.unlink(slot);
    links.setState(slot, links.state(slot) & ~(REGION | REFERENCED));
    this.count--;
    this.weight -= this.#slots.weight(slot);
  }

  clear(): void {
    const links = this.#links;
    links.clear(this.#region, (slot) => links.setState(slot, 0));
    this.count = 0;
    this.weight = 0;
  }
}

function createClimber(capacity: number, option: TinyLfuOptions['climber']): WindowClimber {
  if (option === undefined || option === 'ghost') return new GhostClimber(capacity);
  if (option === 'hit-ratio') return new HitRatioClimber(capacity);
  const { kind, ...settings } = option;
  return kind === 'ghost' ? new GhostClimber(capacity, settings) : new HitRatioClimber(capacity, settings);
}

/** A `PolicyFactory` for W-TinyLFU with these options. */
export function tinyLfuPolicy(options: TinyLfuOptions = {}): PolicyFactory {
  return (bounds, slots, evict) => new TinyLfuPolicy(bounds, slots, evict, options);
}
