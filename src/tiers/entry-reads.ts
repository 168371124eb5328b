/**
 * The reads that answer with more than one value: several keys at once (getMany, getManyOrSet,
 * warm) and entries with their metadata (getEntry, getOrSetEntry). The L1 hit path of get and
 * getOrSet is not here: it stays in the facade, where a call through another object would cost a
 * hit its speed.
 */
import type { Entry, EntryInfo } from '../entry.js';
import { cloneValue } from '../internal/copy-value.js';
import type { FillGuard } from '../loading/fill-guard.js';
import { isDue } from './lives.js';
import type { MemoryTier } from './memory/memory-tier.js';
import type { Found, TierStack } from './tier-stack.js';

export interface EntryReadsOptions {
  memory: MemoryTier | undefined;
  stack: TierStack;
  guard: FillGuard;
  clock: () => number;
  /** The cache-wide grace: what entries' stale periods are reported by. */
  grace: number;
}

export class EntryReads {
  readonly #memory: MemoryTier | undefined;
  readonly #stack: TierStack;
  readonly #guard: FillGuard;
  readonly #clock: () => number;
  readonly #grace: number;
  /** Whether values read from L1 are handed out as copies (valueMode 'clone'). */
  readonly clone: boolean;

  constructor(options: EntryReadsOptions) {
    this.#memory = options.memory;
    this.#stack = options.stack;
    this.#guard = options.guard;
    this.#clock = options.clock;
    this.#grace = options.grace;
    this.clone = options.memory?.valueMode === 'clone';
  }

  /** A value as a caller gets it: a copy when L1 hands out copies. */
  output(value: unknown): unknown {
    return this.clone ? cloneValue('(read from L1)', value) : value;
  }

  /** The L1 entry for `key` with its metadata, counting the hit or miss (getEntry's L1 pass). */
  memoryEntry(key: string): EntryInfo | undefined {
    const memory = this.#memory;
    if (memory === undefined) return undefined;
    const entry = memory.store.get(key, this.#clock());
    const counters = this.#stack.memoryCounters!;
    if (entry === undefined) {
      counters.misses++;
      return undefined;
    }
    counters.hits++;
    return this.info(entry, memory.name);
  }

  /** `key`'s entry from the remote tiers, with its metadata (getEntry below L1). */
  async remoteEntry(key: string): Promise<EntryInfo | undefined> {
    if (this.#stack.remotes.length === 0) return undefined;
    const ticket = this.#stack.readTicket(key);
    try {
      const found = await this.#stack.read(key, ticket);
      return found === undefined ? undefined : this.info(found.entry, found.tier);
    } finally {
      this.#guard.end(ticket);
    }
  }

  /**
   * The entry as getEntry reports it. A copy is kept past its expiry for grace and for
   * fail-safe alike, but only grace serves it stale while a refresh runs (fail-safe serves it
   * only when the loader fails): `staleUntil` is the end of grace, never of the fail-safe keep,
   * or cacheHeaders would announce stale-while-revalidate for an entry that has no grace.
   */
  info<T>(entry: Entry, tier: string, grace = this.#grace): EntryInfo<T> {
    const info = {
      value: this.output(entry.value) as T,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      tier,
    };
    const staleUntil = Math.min(entry.staleUntil ?? entry.expiresAt, entry.expiresAt + grace);
    return staleUntil <= entry.expiresAt ? info : { ...info, staleUntil };
  }

  /**
   * L1 pass of a multi-key read: fills hits into `results`, returns missing key → positions.
   * With `eager`, hits in the last `1 - ratio` of their life go into `due`.
   */
  memoryPass<T>(
    keys: readonly string[],
    results: (T | undefined)[],
    eager?: { ratio: number; due: Set<string> },
  ): Map<string, number[]> {
    const missing = new Map<string, number[]>();
    const memory = this.#memory;
    const counters = this.#stack.memoryCounters;
    const at = this.#clock();
    keys.forEach((key, i) => {
      const entry = memory?.store.get(key, at);
      if (entry !== undefined) {
        counters!.hits++;
        results[i] = this.output(entry.value) as T;
        if (eager !== undefined && isDue(entry, eager.ratio, at, memory!.ttl)) eager.due.add(key);
        return;
      }
      if (counters !== undefined) counters.misses++;
      const positions = missing.get(key);
      if (positions === undefined) missing.set(key, [i]);
      else positions.push(i);
    });
    return missing;
  }

  /** One multi-key read of the remote tiers (promoting what it finds), under fill tickets. */
  async readMany(keys: readonly string[]): Promise<Map<string, Found>> {
    const tickets = keys.map((key) => this.#stack.readTicket(key));
    try {
      return await this.#stack.readMany(tickets);
    } finally {
      for (const ticket of tickets) this.#guard.end(ticket);
    }
  }
}
