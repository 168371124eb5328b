import type { FillGuard } from '../loading/fill-guard.js';
import type { MemoryStore } from '../tiers/memory/memory-store.js';
import type { BusTarget } from './bus.js';
import { globMatcher } from './glob.js';
import type { Invalidation } from './message.js';
import { dropMatching, workBudget } from './work.js';

/** Caches of shared state (tag times, namespace versions) that invalidations update. */
export interface SharedStateCache {
  /** Takes in what a message says changed. */
  learn(inv: Invalidation): void;
  /** Forgets everything, to be read again from Redis: messages may have been missed. */
  forget(): void;
}

/**
 * Applies invalidations to this instance: L1 loses the entries (removal reason 'invalidate'),
 * and the fill guard makes reads already in flight for them stale, so a read that raced the
 * remote write cannot put the older value back into L1. Receivers never re-fetch: the next
 * access reads through, so one write does not set off a read from every instance.
 */
export class LocalSync implements BusTarget {
  readonly #store: MemoryStore | undefined;
  readonly #guard: FillGuard;
  readonly #clock: () => number;
  readonly #disconnectedTtl: number;
  readonly shared: SharedStateCache[] = [];

  constructor(
    store: MemoryStore | undefined,
    guard: FillGuard,
    clock: () => number,
    disconnectedTtl: number,
  ) {
    this.#store = store;
    this.#guard = guard;
    this.#clock = clock;
    this.#disconnectedTtl = disconnectedTtl;
  }

  apply(inv: Invalidation): void {
    if (inv.all) {
      // A clear(), unlike a lost message, says every copy is wrong: none is kept even as a suspect.
      this.#guard.invalidateAll();
      this.#store?.clear('invalidate');
      for (const cache of this.shared) cache.learn(inv);
      return;
    }
    const store = this.#store;
    for (const key of inv.keys) {
      this.#guard.invalidate(key);
      store?.delete(key, 'invalidate');
    }
    if (inv.patterns.size > 0 || inv.tags.size > 0 || inv.namespaces.size > 0) {
      // In-flight reads do not say which pattern, tag or namespace their result will carry.
      this.#guard.invalidateAll();
    }
    for (const cache of this.shared) cache.learn(inv);
    if (store === undefined) return;
    if (inv.patterns.size > 0) {
      // Within a budget of steps: matching every key against every pattern could block the
      // event loop for as long as the sender likes.
      const budget = workBudget();
      const matchers = [...inv.patterns].map((pattern) => globMatcher(pattern, budget));
      dropMatching(store, (key) => matchers.some((matches) => matches(key)), budget, 'invalidate');
    }
  }

  /**
   * What was invalidated is unknown: L1 is emptied, but copies with a stale period stay as
   * suspects, for fail-safe to answer with when the loader fails (and Redis with it), never
   * as hits: when the origin is down, the last value seen beats an error.
   */
  resync(): void {
    this.#guard.invalidateAll();
    this.#store?.demote(this.#clock(), 'invalidate');
    for (const cache of this.shared) cache.forget();
  }

  disconnected(): void {
    this.#store?.capExpiry(this.#clock() + this.#disconnectedTtl);
  }

  recovered(): void {
    this.#store?.restoreExpiry();
  }
}
