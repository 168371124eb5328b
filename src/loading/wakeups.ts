/**
 * Sleeps that end early when a key is written. Waiters for another instance's lock poll the
 * Redis tier; whatever learns of a write first (the invalidation bus, or this instance's own
 * write) calls `wake(key)` so they re-check at once instead of at the next poll.
 */
export class Wakeups {
  readonly #sleepers = new Map<string, Set<() => void>>();

  /** Resolves after `ms`, or sooner on `wake(key)`. */
  sleep(key: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.#sleepers.get(key);
      if (set === undefined) {
        set = new Set();
        this.#sleepers.set(key, set);
      }
      const sleepers = set;
      const done = (): void => {
        clearTimeout(timer);
        sleepers.delete(done);
        if (sleepers.size === 0 && this.#sleepers.get(key) === sleepers) this.#sleepers.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });
  }

  wake(key: string): void {
    const set = this.#sleepers.get(key);
    if (set !== undefined) for (const done of [...set]) done();
  }

  /** Keys with sleepers; for leak tests. */
  get size(): number {
    return this.#sleepers.size;
  }
}
