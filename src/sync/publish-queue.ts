import { emptyInvalidation, isEmpty, mergeInvalidation, weightOf, type Invalidation } from './message.js';

/**
 * Invalidations whose PUBLISH failed, waiting to be sent again. Coalesced: a key invalidated
 * ten times while Redis was away is sent once. Bounded: past `limit` entries the queue collapses
 * into one "drop everything" invalidation, which still covers every key it held (receivers lose
 * their L1, never correctness) and costs O(1) memory however long Redis stays away.
 */
export class PublishQueue {
  readonly #limit: number;
  #held: Invalidation = emptyInvalidation();
  /** Times the queue overflowed and collapsed into "drop everything". */
  overflows = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  get size(): number {
    return weightOf(this.#held) + (this.#held.all ? 1 : 0);
  }

  get empty(): boolean {
    return isEmpty(this.#held);
  }

  /** Holds `inv` for a retry; true when holding it overflowed the bound. */
  hold(inv: Invalidation): boolean {
    mergeInvalidation(this.#held, inv);
    if (weightOf(this.#held) <= this.#limit) return false;
    this.overflows++;
    // Receivers of "all" also forget the tag times and namespace versions they cached and read
    // them again from Redis, so those need not be kept either.
    this.#held = emptyInvalidation();
    this.#held.all = true;
    return true;
  }

  /** Everything held, in one invalidation; the queue is empty afterwards. */
  take(): Invalidation {
    const held = this.#held;
    this.#held = emptyInvalidation();
    return held;
  }
}
