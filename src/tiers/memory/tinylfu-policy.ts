import { hashKey, mix32 } from '../../internal/hash.js';
import { FrequencySketch, type FrequencySketchOptions } from './frequency-sketch.js';
import {
  GhostClimber,
  HitRatioClimber,
  type GhostClimberSettings,
  type HitRatioClimberSettings,
  type WindowClimber,
} from './hill-climber.js';
import type { EvictCallback, EvictionPolicy, PolicyBounds, PolicyFactory, PolicyNode } from './policy.js';

/**
 * W-TinyLFU (Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy",
 * ACM ToS 2017), shaped after Caffeine's `BoundedLocalCache`:
 *
 * - New nodes enter a small LRU *window*. Recency-biased bursts hit there.
 * - The window's overflow becomes a *candidate* for the main space, a segmented LRU
 *   (*probation* and *protected*). When the cache is over its bounds the candidate competes with
 *   probation's LRU *victim*: the one the frequency sketch has seen less often leaves. A hit in
 *   probation promotes a node to protected; protected's overflow is demoted back to probation.
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
 * The hit path is a sketch increment (one 64-byte block, hash read from the node) plus a few
 * link updates; it never allocates.
 */
const WINDOW = 1;
const PROBATION = 2;
const PROTECTED = 3;

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

export class TinyLfuPolicy<N extends PolicyNode> implements EvictionPolicy<N> {
  readonly name = 'tinylfu';
  readonly #bounds: PolicyBounds;
  readonly #evict: EvictCallback<N>;
  readonly #sketch: FrequencySketch;
  readonly #climber: WindowClimber | null;
  readonly #window = new AccessQueue();
  readonly #probation = new AccessQueue();
  readonly #protected = new AccessQueue();
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

  constructor(bounds: PolicyBounds, evict: EvictCallback<N>, options: TinyLfuOptions = {}) {
    this.#bounds = bounds;
    this.#evict = evict;
    const { maxEntries, maxWeight } = bounds;
    const sketchCapacity = Number.isFinite(maxEntries) ? maxEntries : Math.min(maxWeight, 1_024);
    this.#random = mix32(options.seed ?? Math.floor(Math.random() * 0x7fffffff)) || 1;
    this.#sketch = new FrequencySketch(sketchCapacity, { seed: this.#random, ...options.sketch });
    this.#climber = options.adaptive === false ? null : createClimber(sketchCapacity, options.climber);
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

  onHit(node: N): void {
    // A resident key's hits are kept on its node (4 bits, with the sketch epoch they belong
    // to) instead of going to the sketch, whose random access was most of a hit's cost; they
    // join the sketch's estimate when the node competes for admission and are applied to the
    // sketch when the node leaves, so its frequency outlives its residency.
    const sketch = this.#sketch;
    const pending = deferredHits(node, sketch.epoch);
    if (pending < 15) {
      node.mark = sketch.epoch * 16 + pending + 1;
      sketch.countDeferred();
    }
    if (this.#full) this.#climber?.onHit();
    switch (node.region) {
      case WINDOW:
        this.#window.moveToMru(node);
        break;
      case PROBATION:
        if (node.weight > this.#protectedMaxWeight) {
          this.#probation.moveToMru(node);
          break;
        }
        this.#probation.unlink(node);
        this.#protected.pushMru(node);
        node.region = PROTECTED;
        this.#demoteFromProtected();
        break;
      case PROTECTED:
        // The largest region, so the one where relinking on every hit costs most: it is
        // ordered by second chance instead (see AccessQueue.coldest).
        node.referenced = true;
        break;
    }
  }

  onMiss(key: string): void {
    const hash = hashKey(key);
    this.#sketch.increment(hash);
    if (this.#full) this.#climber?.onMiss(hash);
  }

  /** The sketch's estimate, counting the doorkeeper's first sighting (0 … 16). */
  frequency(key: string, node?: N): number {
    return node !== undefined && node.region !== 0
      ? this.#frequencyOf(node)
      : this.#sketch.frequency(hashKey(key));
  }

  /** `frequency` for a hash already computed (e.g. a node's). */
  frequencyOfHash(hash: number): number {
    return this.#sketch.frequency(hash);
  }

  add(node: N): void {
    if (node.region !== 0) return;
    node.region = WINDOW;
    this.#window.pushMru(node);
    this.#size++;
    this.#weight += node.weight;
    if (node.weight > this.#bounds.maxWeight) {
      this.#evictNode(node);
      return;
    }
    if (this.#size > this.#sketch.capacity && !Number.isFinite(this.#bounds.maxEntries)) {
      this.#sketch.ensureCapacity(this.#size * 2);
    }
    this.#evictEntries();
    this.#climb();
  }

  updateWeight(node: N, previousWeight: number): void {
    if (node.region === 0) return;
    const delta = node.weight - previousWeight;
    this.#weight += delta;
    this.#queueOf(node).weight += delta;
    if (node.weight > this.#bounds.maxWeight) {
      this.#evictNode(node);
      return;
    }
    if (node.region === PROTECTED) this.#demoteFromProtected();
    this.#evictEntries();
  }

  remove(node: N): void {
    if (node.region === 0) return;
    const pending = deferredHits(node, this.#sketch.epoch);
    if (pending > 0) this.#sketch.applyDeferred(node.hash, pending);
    node.mark = -1;
    this.#queueOf(node).unlink(node);
    node.region = 0;
    this.#size--;
    this.#weight -= node.weight;
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

  #queueOf(node: PolicyNode): AccessQueue {
    return node.region === WINDOW
      ? this.#window
      : node.region === PROBATION
        ? this.#probation
        : this.#protected;
  }

  #overBounds(): boolean {
    return this.#size > this.#bounds.maxEntries || this.#weight > this.#bounds.maxWeight;
  }

  /** Evicts `node`; `from` says which side lost (for the climber), 0 for a plain rejection. */
  #evictNode(node: PolicyNode, from = 0): void {
    if (from !== 0) {
      this.#full = true;
      this.#climber?.onEvict(node.hash, from !== WINDOW);
    }
    this.remove(node as N);
    this.#evict(node as N);
  }

  /** Moves the window's overflow into probation, then evicts from main until the bounds hold. */
  #evictEntries(): void {
    const window = this.#window;
    let candidate: PolicyNode | null = null;
    while (window.count > this.#windowMaxEntries || window.weight > this.#windowMaxWeight) {
      const node = window.lru();
      if (node === null) break;
      window.unlink(node);
      this.#probation.pushMru(node);
      node.region = PROBATION;
      candidate ??= node;
    }
    if (this.#overBounds()) this.#evictFromMain(candidate);
  }

  /**
   * Caffeine's `evictFromMain`: candidates are taken from the new arrivals in probation (then the
   * window), victims from probation's LRU end (then protected, then the window); each round
   * evicts whichever of the two the sketch has seen less.
   */
  #evictFromMain(first: PolicyNode | null): void {
    const maxWeight = this.#bounds.maxWeight;
    let candidate = first;
    let candidateQueue = PROBATION;
    let victimQueue = PROBATION;
    let victim = this.#probation.lru();
    while (this.#overBounds()) {
      if (candidate === null && candidateQueue === PROBATION) {
        candidate = this.#window.lru();
        candidateQueue = WINDOW;
      }
      if (candidate === null && victim === null) {
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
      if (victim !== null && victim.weight === 0) {
        victim = this.#next(victim);
        continue;
      }
      if (candidate !== null && candidate.weight === 0) {
        candidate = this.#next(candidate);
        continue;
      }
      if (victim === null) {
        const evicted = candidate!;
        candidate = this.#next(evicted);
        this.#evictNode(evicted, WINDOW);
        continue;
      }
      if (candidate === null) {
        const evicted = victim;
        victim = this.#next(evicted);
        this.#evictNode(evicted, victimQueue);
        continue;
      }
      if (candidate === victim) {
        victim = this.#next(victim);
        this.#evictNode(candidate, WINDOW);
        candidate = null;
        continue;
      }
      if (candidate.weight > maxWeight || !this.#admit(candidate, victim)) {
        const evicted = candidate;
        candidate = this.#next(evicted);
        this.#evictNode(evicted, WINDOW);
      } else {
        const evicted = victim;
        victim = this.#next(evicted);
        this.#evictNode(evicted, victimQueue);
        candidate = this.#next(candidate);
      }
    }
  }

  /** The node after `node` towards its queue's MRU end, or null at the end. */
  #next(node: PolicyNode): PolicyNode | null {
    return this.#queueOf(node).after(node);
  }

  #admit(candidate: PolicyNode, victim: PolicyNode): boolean {
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

  /** A resident node's frequency: the sketch's estimate plus the hits kept on the node. */
  #frequencyOf(node: PolicyNode): number {
    const sketch = this.#sketch;
    return Math.min(16, sketch.frequency(node.hash) + deferredHits(node, sketch.epoch));
  }

  #demoteFromProtected(): void {
    spill(this.#protected, this.#probation, PROBATION, this.#protectedMaxEntries, this.#protectedMaxWeight);
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
      let node = from.lru();
      if (node === null) {
        from = this.#protected;
        node = from.coldest();
        if (node === null) break;
      }
      if (window.count + 1 > this.#windowMaxEntries || window.weight + node.weight > this.#windowMaxWeight)
        break;
      from.unlink(node);
      window.pushMru(node);
      node.region = WINDOW;
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
    spill(this.#window, this.#probation, PROBATION, this.#windowMaxEntries, this.#windowMaxWeight);
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
 * One region's access order: a circular doubly linked list through the nodes' own `prev`/`next`
 * around a sentinel, least recent first, with the region's count and weight.
 */
/**
 * Hits kept on `node` (its `mark`: epoch × 16 + count), halved once per aging reset since
 * they were counted, as the sketch's counters were.
 */
function deferredHits(node: PolicyNode, epoch: number): number {
  const mark = node.mark;
  if (mark < 0) return 0;
  const elapsed = epoch - (mark >> 4);
  return elapsed === 0 ? mark & 15 : elapsed > 3 ? 0 : (mark & 15) >> elapsed;
}

/** Moves `from`'s least recent nodes to `to`'s most recent end until `from` is within bounds. */
function spill(
  from: AccessQueue,
  to: AccessQueue,
  region: number,
  maxEntries: number,
  maxWeight: number,
): void {
  while (from.count > maxEntries || from.weight > maxWeight) {
    const node = from.coldest();
    if (node === null) break;
    from.unlink(node);
    to.pushMru(node);
    node.region = region;
  }
}

class AccessQueue {
  count = 0;
  weight = 0;
  readonly #sentinel: PolicyNode;

  constructor() {
    const sentinel: PolicyNode = {
      key: '',
      hash: 0,
      weight: 0,
      prev: null,
      next: null,
      region: 0,
      mark: -1,
      referenced: false,
    };
    sentinel.prev = sentinel.next = sentinel;
    this.#sentinel = sentinel;
  }

  /**
   * The least recent node not read since it reached the recent end; read ones on the way are
   * moved to the recent end with the mark cleared (CLOCK's second chance). Only the protected
   * region marks nodes, so elsewhere this is `lru()`. Each mark costs at most one move, so a
   * hot key pays one relink per trip through the queue instead of one per hit.
   */
  coldest(): PolicyNode | null {
    const sentinel = this.#sentinel;
    let node = sentinel.next!;
    while (node !== sentinel && node.referenced) {
      node.referenced = false;
      this.moveToMru(node);
      node = sentinel.next!;
    }
    return node === sentinel ? null : node;
  }

  lru(): PolicyNode | null {
    const node = this.#sentinel.next!;
    return node === this.#sentinel ? null : node;
  }

  after(node: PolicyNode): PolicyNode | null {
    const next = node.next;
    return next === this.#sentinel ? null : next;
  }

  pushMru(node: PolicyNode): void {
    const sentinel = this.#sentinel;
    const tail = sentinel.prev!;
    node.prev = tail;
    node.next = sentinel;
    tail.next = node;
    sentinel.prev = node;
    this.count++;
    this.weight += node.weight;
  }

  unlink(node: PolicyNode): void {
    node.prev!.next = node.next;
    node.next!.prev = node.prev;
    node.prev = node.next = null;
    node.referenced = false;
    this.count--;
    this.weight -= node.weight;
  }

  moveToMru(node: PolicyNode): void {
    const sentinel = this.#sentinel;
    if (sentinel.prev === node) return;
    node.prev!.next = node.next;
    node.next!.prev = node.prev;
    const tail = sentinel.prev!;
    node.prev = tail;
    node.next = sentinel;
    tail.next = node;
    sentinel.prev = node;
  }

  clear(): void {
    const sentinel = this.#sentinel;
    for (let node = sentinel.next!; node !== sentinel;) {
      const next = node.next!;
      node.prev = node.next = null;
      node.region = 0;
      node = next;
    }
    sentinel.prev = sentinel.next = sentinel;
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
  return <N extends PolicyNode>(bounds: PolicyBounds, evict: EvictCallback<N>) =>
    new TinyLfuPolicy<N>(bounds, evict, options);
}
