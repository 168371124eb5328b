/**
 * Fail-safe's back-off: a key whose loader failed is left alone for a while (its kept copy
 * answers instead), so a failing origin is not called once per request. Bounded: beyond
 * `limit` keys the oldest are forgotten first.
 */
export class Backoff {
  readonly #until = new Map<string, number>();
  readonly #clock: () => number;
  readonly #limit: number;

  constructor(clock: () => number, limit = 10_000) {
    this.#clock = clock;
    this.#limit = limit;
  }

  /** Whether `key`'s loader failed less than its back-off ago. */
  active(key: string): boolean {
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > this.#clock()) return true;
    this.#until.delete(key);
    return false;
  }

  /** Leaves `key`'s loader alone for `ms`. */
  start(key: string, ms: number): void {
    if (this.#until.size >= this.#limit) this.#until.delete(this.#until.keys().next().value!);
    this.#until.set(key, this.#clock() + ms);
  }

  /** The loader answered: back to normal. */
  clear(key: string): void {
    this.#until.delete(key);
  }
}
