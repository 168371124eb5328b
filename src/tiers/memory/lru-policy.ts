import type { EvictCallback, EvictionPolicy, PolicyBounds, PolicySlots } from './policy.js';
import { SlotLinks } from './slot-links.js';

const QUEUE = 0;
const RESIDENT = 1;

/**
 * Plain least-recently-used: one queue of slots, most recent at its end. Kept as the baseline
 * and for recency-only workloads.
 */
export class LruPolicy implements EvictionPolicy {
  readonly name = 'lru';
  readonly #links = new SlotLinks(1, 0);
  #size = 0;
  #weight = 0;
  readonly #bounds: PolicyBounds;
  readonly #slots: PolicySlots;
  readonly #evict: EvictCallback;

  constructor(bounds: PolicyBounds, slots: PolicySlots, evict: EvictCallback) {
    this.#bounds = bounds;
    this.#slots = slots;
    this.#evict = evict;
  }

  get size(): number {
    return this.#size;
  }

  get weight(): number {
    return this.#weight;
  }

  /** 1 when `slot` is resident, else 0. */
  regionOf(slot: number): number {
    return this.#links.state(slot);
  }

  grow(capacity: number): void {
    this.#links.grow(capacity);
  }

  onHit(slot: number): void {
    this.#links.moveToMru(QUEUE, slot);
  }

  onMiss(_key: string): void {}

  frequency(_key: string): number {
    return 0;
  }

  add(slot: number): void {
    if (this.#links.state(slot) === RESIDENT) return;
    this.#links.pushMru(QUEUE, slot);
    this.#links.setState(slot, RESIDENT);
    this.#size++;
    this.#weight += this.#slots.weight(slot);
    this.#enforce();
  }

  updateWeight(slot: number, previousWeight: number): void {
    if (this.#links.state(slot) !== RESIDENT) return;
    this.#weight += this.#slots.weight(slot) - previousWeight;
    this.#enforce();
  }

  remove(slot: number): void {
    if (this.#links.state(slot) !== RESIDENT) return;
    this.#links.unlink(slot);
    this.#links.setState(slot, 0);
    this.#size--;
    this.#weight -= this.#slots.weight(slot);
  }

  clear(): void {
    const links = this.#links;
    links.clear(QUEUE, (slot) => links.setState(slot, 0));
    this.#size = 0;
    this.#weight = 0;
  }

  #enforce(): void {
    const { maxEntries, maxWeight } = this.#bounds;
    while (this.#size > maxEntries || this.#weight > maxWeight) {
      const victim = this.#links.lru(QUEUE);
      if (victim < 0) break;
      this.remove(victim);
      this.#evict(victim);
    }
  }
}
