import type { Entry } from '../entry.js';
import { InvalidOptionError, describe } from '../errors.js';
import type { TagTimeStore } from '../tiers/coordination.js';
import type { Invalidation } from './message.js';
import type { SharedStateCache } from './local.js';

/**
 * How far ahead of this instance's clock a tag time heard on the bus may be: instances' clocks
 * differ by milliseconds with NTP, by seconds at worst; more is not a clock but a forgery.
 */
export const MAX_CLOCK_SKEW = 60_000;

/** Tag times remembered in-process; beyond it the oldest-learned is forgotten (see #floor). */
const MAX_TAGS = 10_000;

interface Known {
  /** The tag's invalidation time (epoch ms); 0 when it was never invalidated. */
  at: number;
  /** When this value was read from Redis or heard on the bus (for the staleness bound). */
  learnedAt: number;
}

/**
 * Tag invalidation times. `invalidateTags` records, per tag, the time it was invalidated (one
 * Redis key per tag, so it is O(1) per tag however many entries carry it); an entry created at
 * or before any of its tags' times is a miss. Times are cached here, kept current by the bus,
 * and read from the tier's store (batched) for tags an L2 read meets that are not known or not
 * trusted. Without a store (no tier offers one) the times here are the only copy.
 */
export class TagTimes implements SharedStateCache {
  /** The shared copy (a Redis tier's keys, behind its guard). */
  readonly #shared: TagTimeStore | undefined;
  readonly #clock: () => number;
  /** How old a cached time may be before an L2 read re-reads it: Infinity while the bus hears all. */
  readonly #maxAge: () => number;
  readonly #known = new Map<string, Known>();
  /**
   * The latest time forgotten to stay within MAX_TAGS: a tag not known locally is taken to have
   * been invalidated then, so forgetting can only turn hits into misses, never serve stale data.
   */
  #floor = 0;
  /**
   * Invalidations Redis did not take (it failed): sent again with the next Redis call, and kept
   * through forget(), so this instance never trusts Redis over what it knows it could not store.
   */
  readonly #unsent = new Map<string, number>();

  constructor(shared: TagTimeStore | undefined, clock: () => number, maxAge: () => number) {
    this.#shared = shared;
    this.#clock = clock;
    this.#maxAge = maxAge;
  }

  /**
   * True when `entry` was created at or before one of its tags' invalidation times as known
   * here (no Redis read: the L1 check). Only called for entries that carry tags.
   */
  isStale(entry: Entry): boolean {
    const tags = entry.tags!;
    for (let i = 0; i < tags.length; i++) {
      const known = this.#known.get(tags[i]!);
      if (entry.createdAt <= (known === undefined ? this.#floor : known.at)) return true;
    }
    return false;
  }

  /**
   * Makes sure the times of `tags` are known and trusted, reading the others from Redis in one
   * batch. Rejects if Redis cannot say: the caller then treats the tagged entries as misses.
   */
  async refresh(tags: Iterable<string>): Promise<void> {
    if (this.#shared === undefined) return;
    if (this.#unsent.size > 0) await this.#resend();
    const now = this.#clock();
    const maxAge = this.#maxAge();
    const wanted = new Set<string>();
    for (const tag of tags) {
      const known = this.#known.get(tag);
      if (known === undefined || now - known.learnedAt > maxAge) wanted.add(tag);
    }
    if (wanted.size === 0) return;
    const values = await this.#shared.read([...wanted]);
    let i = 0;
    for (const tag of wanted) this.#raise(tag, values[i++] ?? 0, now);
  }

  /**
   * Records that `tags` were invalidated at `at` (here, then in Redis: one command per tag,
   * pipelined on a single server). Rejects if Redis fails; the local record stays.
   */
  async invalidate(tags: readonly string[], at: number): Promise<void> {
    for (const tag of tags) this.#raise(tag, at, at);
    if (this.#shared === undefined) return;
    const times = new Map(this.#unsent);
    for (const tag of tags) times.set(tag, Math.max(at, times.get(tag) ?? at));
    try {
      await this.#store(times);
    } catch (error) {
      for (const [tag, time] of times) this.#unsent.set(tag, time);
      this.#bound();
      throw error;
    }
    for (const [tag, time] of times) if (this.#unsent.get(tag) === time) this.#unsent.delete(tag);
  }

  /** Tries again to store the times Redis missed; failures leave them for the next call. */
  async #resend(): Promise<void> {
    const times = new Map(this.#unsent);
    try {
      await this.#store(times);
    } catch {
      return; // the caller's own Redis call reports the fault
    }
    for (const [tag, time] of times) if (this.#unsent.get(tag) === time) this.#unsent.delete(tag);
  }

  #bound(): void {
    while (this.#unsent.size > MAX_TAGS) this.#unsent.delete(this.#unsent.keys().next().value!);
  }

  #store(times: ReadonlyMap<string, number>): Promise<void> {
    return this.#shared!.raise(times);
  }

  learn(inv: Invalidation): void {
    if (inv.tags.size === 0) return;
    const now = this.#clock();
    // A time from the bus is the publisher's clock, so it may be a little ahead of ours; one far
    // ahead is forged or broken (8.64e15 would make every entry of the tag stale until a
    // reconnect). Beyond the allowance it counts as "invalidated now": every entry already
    // holding the tag is dropped, and new ones cache again.
    for (const [tag, at] of inv.tags) this.#raise(tag, at > now + MAX_CLOCK_SKEW ? now : at, now);
  }

  forget(): void {
    // Messages may have been missed: times are read again from Redis. Without Redis the local
    // times are the only copy, so they stay.
    if (this.#shared === undefined) return;
    this.#known.clear();
    const now = this.#clock();
    for (const [tag, at] of this.#unsent) this.#raise(tag, at, now);
  }

  /** Number of tag times cached (for tests and stats). */
  get size(): number {
    return this.#known.size;
  }

  #raise(tag: string, at: number, learnedAt: number): void {
    const known = this.#known.get(tag);
    this.#known.delete(tag);
    this.#known.set(tag, { at: Math.max(at, known?.at ?? 0), learnedAt });
    if (this.#known.size > MAX_TAGS) {
      const [oldest, times] = this.#known.entries().next().value!;
      this.#known.delete(oldest);
      this.#floor = Math.max(this.#floor, times.at);
    }
  }
}

/** Validates a `tags` option (or `setTags` argument): a non-empty array of non-empty strings. */
export function checkTags(tags: unknown, option = 'tags'): readonly string[] {
  if (!Array.isArray(tags))
    throw new InvalidOptionError(option, `expected an array of tag strings, got ${describe(tags)}`);
  for (const tag of tags) {
    if (typeof tag !== 'string' || tag === '')
      throw new InvalidOptionError(option, `expected non-empty tag strings, got ${describe(tag)}`);
  }
  return tags as readonly string[];
}
