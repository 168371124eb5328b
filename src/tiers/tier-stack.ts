/**
 * The ordered tiers below the facade: L1 (when there is one) and the remote tiers, fastest
 * first. Everything that touches more than one tier lives here: the read paths (get's chain, a
 * load's read, the multi-key read), the one step that examines a remote answer (tags, expiry,
 * kept copies, counters, promotion), promotion itself, and the write, delete and clear
 * fan-outs with their per-tier timing and fault reporting. The load rules (src/loading/) and
 * the facade call in; neither touches a tier directly.
 */
import { staleEnd, type Entry } from '../entry.js';
import { SerializationError, TierError, isCacheError } from '../errors.js';
import type { Faults } from '../faults.js';
import { now } from '../internal/clock.js';
import { checkValue } from '../internal/values.js';
import type { FillGuard, FillTicket } from '../loading/fill-guard.js';
import type { Wakeups } from '../loading/wakeups.js';
import type { CacheCounters, TierCounters, TierOperation } from '../metrics/stats.js';
import { maskOf, type WriteOptions } from '../options.js';
import type { TagTimes } from '../sync/tags.js';
import type { ReadHandler } from './read-batch.js';
import { copyWithLife, expiries, staleEnds, type TierLife } from './lives.js';
import type { MemoryTier } from './memory/memory-tier.js';
import type { MemoryStore } from './memory/memory-store.js';
import { UNREAD_LEASE, type PreparedWrite, type RemoteTier, type StoredEntry } from './tier.js';
import type { WriteMask } from './write-targets.js';

/** One entry to write to every tier. */
export interface WriteItem {
  key: string;
  value: unknown;
  options: WriteOptions | undefined;
  /** How long past expiry copies are kept (grace / fail-safe); the cache's when absent. */
  keep?: number;
  /** When the value was produced, if not now: a tagged loader result dates from the load's start. */
  createdAt?: number;
}

/** Notes that a load's read of remote tier `index` failed, unless an earlier read noted a lease. */
function unread(leases: unknown[], index: number): void {
  if (leases[index] === undefined) leases[index] = UNREAD_LEASE;
}

/** A write encoded for every tier before anything is written. */
interface WritePlan {
  /** Per remote tier, its writes and their lives in ms. */
  perTier: PreparedWrite[][];
  lives: number[][];
  /** L1's entries by key. */
  memory: Map<string, Entry>;
  /** The keys written, in order. */
  written: string[];
  /** Per tier (memory first), the keys writeTo leaves out of it, which it must drop. */
  drops: string[][];
  /** Each key's top-tier entry. */
  first: Map<string, Entry>;
}

/**
 * Tells the other instances which keys a write or delete changed (the bus). `orderedConnection`
 * is the connection it publishes on when that runs commands in the order sent (see
 * RemoteTier.orderedConnection).
 */
export interface Announcer {
  readonly orderedConnection: object | undefined;
  announce(keys: readonly string[]): Promise<void>;
}

/** A remote hit, and the name of the tier that answered. */
export interface Found {
  entry: Entry;
  tier: string;
}

/** Where a read leaves the newest expired-but-kept copy it passed over, and its tier. */
export interface StaleSlot {
  entry: Entry | undefined;
  tier: string;
}

export interface TierStackOptions {
  memory: MemoryTier | undefined;
  remotes: readonly RemoteTier[];
  counters: CacheCounters;
  faults: Faults;
  guard: FillGuard;
  wakes: Wakeups;
  clock: () => number;
  /** The clock for expiry checks on hits: coarse unless the caller injected one. */
  readClock: () => number;
  /** The cache's writeTo mask; undefined for every tier. */
  writeMask: WriteMask | undefined;
  /** How long past expiry promoted copies are kept (the cache's grace / fail-safe). */
  keep: number;
  jitter: number;
  /** Life of a cached null/undefined, when negative caching sets one. */
  negativeTtl: number | undefined;
  /** Tag invalidation times, checked for every tagged remote hit. */
  tags: TagTimes;
  /** Index in `remotes` of the tier that holds tag times (its faults are counted there). */
  tagTier: number;
  /** The latest expiry an L1 copy may get now (capped while the bus is disconnected). */
  l1Cap: (now: number) => number;
  /** Runs background work that close() waits for. */
  track: (work: Promise<void>) => void;
}

export class TierStack {
  readonly memory: MemoryTier | undefined;
  readonly store: MemoryStore | undefined;
  readonly remotes: readonly RemoteTier[];
  readonly memoryCounters: TierCounters | undefined;
  readonly remoteCounters: readonly TierCounters[];
  /** Every tier's name, memory first. */
  readonly names: readonly string[];
  readonly #lives: readonly TierLife[];
  /** Remote tier i sits at i + offset in `names` and write masks. */
  readonly #offset: number;
  readonly #o: TierStackOptions;
  /** What get() does with each remote tier's answer (see #getFrom). */
  readonly #getSteps: readonly ReadHandler<FillTicket, unknown>[];
  /** Whether a read's hit can be promoted: there is a tier above the lowest one. */
  readonly #fills: boolean;

  constructor(options: TierStackOptions) {
    this.#o = options;
    const { memory, remotes, counters } = options;
    this.memory = memory;
    this.store = memory?.store;
    this.remotes = remotes;
    this.#offset = memory ? 1 : 0;
    this.memoryCounters = memory ? counters.tiers[0] : undefined;
    this.remoteCounters = counters.tiers.slice(this.#offset);
    this.#lives = [
      ...(memory ? [memory] : []),
      ...remotes.map((tier) => ({ name: tier.name, lifeFor: () => tier.ttl })),
    ];
    this.names = this.#lives.map((tier) => tier.name);
    this.#getSteps = remotes.map((_, index) => this.#getStep(index));
    this.#fills = memory !== undefined || remotes.length > 1;
  }

  /**
   * The fill ticket of a read from the remote tiers (not of a load, which fills every tier). A
   * cache of one Redis and no L1 has nothing to promote into, so its reads need not be tracked.
   */
  readTicket(key: string): FillTicket {
    return this.#fills ? this.#o.guard.begin(key) : this.#o.guard.detached(key);
  }

  // --- reads ------------------------------------------------------------------------------------

  /**
   * get() below L1, from remote tier `index` down. Not an async function awaiting each tier: a
   * guarded tier hands its answer straight to the tier's step (#getStep), whose return value
   * settles the promise get() returned; that is one promise and no async frame per L2 read.
   */
  getFrom(index: number, key: string, ticket: FillTicket): Promise<unknown> {
    const tier = this.remotes[index]!;
    const step = this.#getSteps[index]!;
    return tier.read !== undefined ? tier.read(key, step, ticket) : this.#getUnguarded(index, key, ticket);
  }

  /** #getFrom for a tier that cannot hand a read to a handler: the same steps, timed here. */
  async #getUnguarded(index: number, key: string, ticket: FillTicket): Promise<unknown> {
    const step = this.#getSteps[index]!;
    const started = now();
    let found: StoredEntry | undefined;
    try {
      found = await this.remotes[index]!.get(key);
    } catch (error) {
      return step.failed(key, error, now() - started, ticket);
    }
    return step.found(key, found, now() - started, ticket);
  }

  /** What get() makes of remote tier `index`'s answer: a value, or the next tier's read. */
  #getStep(index: number): ReadHandler<FillTicket, unknown> {
    const counters = this.remoteCounters[index]!;
    const guard = this.#o.guard;
    const next = (key: string, ticket: FillTicket): unknown => {
      if (index + 1 < this.remotes.length) return this.getFrom(index + 1, key, ticket);
      guard.end(ticket);
      return undefined;
    };
    const settle = (key: string, found: StoredEntry | undefined, ticket: FillTicket): unknown => {
      let hit: boolean;
      try {
        hit = this.#examine(index, ticket, found, undefined);
      } catch (error) {
        guard.end(ticket);
        throw error;
      }
      if (!hit) return next(key, ticket);
      guard.end(ticket);
      return found!.entry.value;
    };
    return {
      found: (key, found, ms, ticket) => {
        counters.time('get', ms);
        if (found?.entry.tags === undefined) return settle(key, found, ticket);
        return this.#tagsCurrent([found]).then(([current]) =>
          settle(key, current === true ? found : undefined, ticket),
        );
      },
      failed: (key, error, ms, ticket) => {
        counters.time('get', ms);
        try {
          this.fault(index, 'get', error, key);
        } catch (thrown) {
          guard.end(ticket);
          throw thrown;
        }
        return next(key, ticket);
      },
    };
  }

  /**
   * Looks `key` up in the remote tiers in order and promotes a hit to the tiers above it.
   * Expired copies still kept for grace/fail-safe are misses; the newest goes into `stale`.
   * A load's read passes `leases`: each tier read notes there, at its index, what the key held
   * (see RemoteTier.getLeased), for the fill.
   */
  async read(
    key: string,
    ticket: FillTicket,
    stale?: StaleSlot,
    leases?: unknown[],
  ): Promise<Found | undefined> {
    const remotes = this.remotes;
    for (let i = 0; i < remotes.length; i++) {
      const tier = remotes[i]!;
      const counters = this.remoteCounters[i]!;
      let found: StoredEntry | undefined;
      // #timed inlined: this is every L2 read, and its closure and async frame showed up there.
      const started = now();
      try {
        if (leases === undefined || tier.getLeased === undefined) found = await tier.get(key);
        else ({ found, lease: leases[i] } = await tier.getLeased(key));
        counters.time('get', now() - started);
      } catch (error) {
        counters.time('get', now() - started);
        this.fault(i, 'get', error, key);
        if (leases !== undefined) unread(leases, i);
        continue;
      }
      if (found?.entry.tags !== undefined && !(await this.#tagsCurrent([found]))[0]) found = undefined;
      if (this.#examine(i, ticket, found, stale)) return { entry: found!.entry, tier: tier.name };
    }
    return undefined;
  }

  /** The multi-key form of `read`: one getMany per tier for the keys still missing. */
  async readMany(
    tickets: readonly FillTicket[],
    /** Per key, where the newest expired copy still kept for grace/fail-safe goes. */
    stale?: ReadonlyMap<string, StaleSlot>,
    /** Per key, where a load's read notes each tier's lease (see read()). */
    leases?: ReadonlyMap<string, unknown[]>,
  ): Promise<Map<string, Found>> {
    const found = new Map<string, Found>();
    let pending = tickets;
    for (let i = 0; i < this.remotes.length && pending.length > 0; i++) {
      const tier = this.remotes[i]!;
      let stored: (StoredEntry | undefined)[];
      try {
        const keys = pending.map((t) => t.key);
        if (leases === undefined || tier.getManyLeased === undefined) {
          stored = await this.timed(i, 'getMany', () => tier.getMany(keys));
        } else {
          const leased = await this.timed(i, 'getMany', () => tier.getManyLeased!(keys));
          stored = leased.map((one, j) => {
            leases.get(keys[j]!)![i] = one.lease;
            return one.found;
          });
        }
      } catch (error) {
        this.fault(i, 'getMany', error);
        if (leases !== undefined) for (const ticket of pending) unread(leases.get(ticket.key)!, i);
        continue;
      }
      if (stored.some((hit) => hit?.entry.tags !== undefined)) {
        const current = await this.#tagsCurrent(stored);
        stored = stored.map((hit, j) => (current[j] ? hit : undefined));
      }
      const hits: [FillTicket, StoredEntry][] = [];
      const next: FillTicket[] = [];
      pending.forEach((ticket, j) => {
        const hit = stored[j];
        if (this.#examine(i, ticket, hit, stale?.get(ticket.key), false)) {
          hits.push([ticket, hit!]);
          found.set(ticket.key, { entry: hit!.entry, tier: tier.name });
        } else {
          next.push(ticket);
        }
      });
      if (hits.length > 0) this.#promoteAbove(hits, i);
      pending = next;
    }
    return found;
  }

  /**
   * The one judgement of a remote answer every read path makes (after its tag check): a live
   * copy is a hit, counted and (unless `promote` is false) promoted to the tiers above; anything
   * else is a miss, and an expired copy still within its stale period becomes `stale`'s
   * candidate when it is newer than what `stale` holds.
   */
  #examine(
    index: number,
    ticket: FillTicket,
    found: StoredEntry | undefined,
    stale: StaleSlot | undefined,
    promote = true,
  ): boolean {
    const counters = this.remoteCounters[index]!;
    // The coarse clock, as for L1 hits: an expiry may be seen up to a millisecond late.
    if (found === undefined || found.entry.expiresAt <= this.#o.readClock()) {
      counters.misses++;
      if (
        stale !== undefined &&
        found !== undefined &&
        staleEnd(found.entry) > this.#o.clock() &&
        (stale.entry === undefined || found.entry.createdAt > stale.entry.createdAt)
      ) {
        stale.entry = found.entry;
        stale.tier = this.remotes[index]!.name;
      }
      return false;
    }
    counters.hits++;
    if (promote) this.#promoteAbove([[ticket, found]], index);
    return true;
  }

  /** Whether some tier holds a live, current copy of `key` (no promotion, no hit counted). */
  async has(key: string): Promise<boolean> {
    if (this.store?.peek(key, this.#o.clock()) !== undefined) return true;
    for (const [i, tier] of this.remotes.entries()) {
      // The entry itself, not EXISTS: Redis keeps an expired copy for grace and fail-safe, and
      // a tag-invalidated one, which get() would not serve.
      let found: StoredEntry | undefined;
      try {
        found = await this.timed(i, 'has', () => tier.get(key));
      } catch (error) {
        this.fault(i, 'has', error, key);
        continue;
      }
      if (found?.entry.tags !== undefined && !(await this.#tagsCurrent([found]))[0]) continue;
      if (found !== undefined && found.entry.expiresAt > this.#o.clock()) return true;
    }
    return false;
  }

  // --- promotion and writes ---------------------------------------------------------------------

  #promoteAbove(hits: readonly [FillTicket, StoredEntry][], index: number): void {
    if (index > 0 || this.memory !== undefined) this.#promote(hits, index);
  }

  /**
   * Copies hits from remote tier `index` into every tier above it. A copy gets the smaller of
   * its tier's TTL and the life the entry has left below, so it never outlives its source; a
   * read that raced a write (stale ticket) promotes nothing.
   */
  #promote(hits: readonly [FillTicket, StoredEntry][], index: number): void {
    const guard = this.#o.guard;
    const current = hits.filter(([ticket]) => guard.isCurrent(ticket));
    if (current.length === 0) return;
    const at = this.#o.clock();
    const memory = this.memory;
    const { keep, writeMask: mask } = this.#o;
    if (memory !== undefined && (mask === undefined || mask[0]!)) {
      for (const [ticket, { entry, size }] of current) {
        const expiresAt = this.#l1Expiry(Math.min(at + memory.lifeFor(ticket.key), entry.expiresAt), at);
        memory.set(ticket.key, copyWithLife(entry, expiresAt, keep), size);
      }
    }
    for (let i = 0; i < index; i++) {
      if (mask !== undefined && !mask[i + this.#offset]!) continue;
      const tier = this.remotes[i]!;
      const writes: PreparedWrite[] = [];
      const lives: number[] = [];
      for (const [ticket, { entry }] of current) {
        const copy = copyWithLife(entry, Math.min(at + tier.ttl, entry.expiresAt), keep);
        try {
          writes.push(tier.prepare(ticket.key, copy)); // over this tier's maxValueBytes: not promoted
        } catch (error) {
          this.fault(i, 'promote', error, ticket.key, false);
          continue;
        }
        lives.push(staleEnd(copy) - at);
      }
      if (writes.length === 0) continue;
      this.#o.track(
        this.timed(i, 'promote', () => tier.setMany(writes, lives)).catch((error: unknown) => {
          this.fault(i, 'promote', error, undefined, false);
        }),
      );
    }
  }

  /**
   * Writes entries to every tier, unconditionally (set, setMany, warmFrom: the last writer wins),
   * and has `announcer` tell the other instances. Encodes everything before writing anything.
   */
  async write(items: readonly WriteItem[], announcer: Announcer): Promise<void> {
    const plan = this.#prepare(items, undefined);
    if (plan.written.length === 0) return;
    this.#claim(plan.written);
    this.#fillMemory(plan, plan.written);
    const touched = this.remotes.filter(
      (_, i) => plan.perTier[i]!.length > 0 || plan.drops[i + this.#offset]!.length > 0,
    );
    // The drops go first, a round trip before the writes: only a plain write is sent at once.
    const plain = this.remotes.every((_, i) => plan.drops[i + this.#offset]!.length === 0);
    await this.#announceAfter(
      this.#writeRemotes(plan, undefined),
      plain ? touched : undefined,
      plan.written,
      announcer,
    );
  }

  /**
   * Announces `keys` once `change` is done in every remote tier, so an instance that drops its
   * copy re-reads the new state. When every tier in `sent` (the tiers `change` has already sent
   * commands to) runs them on the announcer's ordered connection, the announcement cannot
   * overtake them: it goes at once, saving a round trip.
   */
  async #announceAfter<T>(
    change: Promise<T>,
    sent: readonly RemoteTier[] | undefined,
    keys: readonly string[],
    announcer: Announcer,
  ): Promise<T> {
    const on = announcer.orderedConnection;
    if (on !== undefined && sent?.every((tier) => tier.orderedConnection === on) === true) {
      return (await Promise.all([change, announcer.announce(keys)]))[0];
    }
    const done = await change;
    await announcer.announce(keys);
    return done;
  }

  /**
   * Fills the tiers with loader results. A key whose ticket went stale while it loaded (this
   * instance wrote or heard of an invalidation) is not cached; neither is one that a remote tier
   * with fill leases refused (a delete, clear or pattern delete reached it after the load's read
   * noted its lease in `leases`, per remote tier): the callers still get the value. L1 is filled
   * only after the remote tiers took the value. `out` receives each filled key's top-tier entry.
   */
  async fill(
    items: readonly WriteItem[],
    tickets: ReadonlyMap<string, FillTicket>,
    leases: ReadonlyMap<string, readonly unknown[]>,
    out: Map<string, Entry>,
  ): Promise<void> {
    const guard = this.#o.guard;
    const plan = this.#prepare(items, tickets);
    // As for any write: reads of these keys in flight may not fill, and nobody joins this load
    // any more. Fresh tickets then tell whether an invalidation came while the tiers answered.
    this.#claim(plan.written);
    const watch = new Map(plan.written.map((key) => [key, guard.begin(key)]));
    const refused = await this.#writeRemotes(plan, leases);
    // An invalidation heard while the remote tiers answered also keeps the value out of L1.
    const filled = plan.written.filter((key) => !refused.has(key) && guard.isCurrent(watch.get(key)!));
    for (const ticket of watch.values()) guard.end(ticket);
    this.#fillMemory(plan, filled);
    for (const key of filled) out.set(key, plan.first.get(key)!);
  }

  /**
   * Writes a plan to every remote tier at once: unconditionally, or (given `leases`) as fills
   * that a tier with fill leases may refuse. Resolves with the keys some tier refused. A tier
   * that cannot answer is reported and refuses nothing: L1 is still filled, as it always was.
   */
  async #writeRemotes(
    plan: WritePlan,
    leases: ReadonlyMap<string, readonly unknown[]> | undefined,
  ): Promise<Set<string>> {
    const refused = new Set<string>();
    await Promise.all(
      this.remotes.map(async (tier, i) => {
        // Awaited only when there is something to drop: otherwise the write is sent before this
        // returns, which write() relies on.
        if (plan.drops[i + this.#offset]!.length > 0) await this.#drop(plan, i);
        const writes = plan.perTier[i]!;
        if (writes.length === 0) return;
        const lives = plan.lives[i]!;
        try {
          const done = await this.timed(i, 'set', () =>
            leases === undefined || tier.fillMany === undefined
              ? tier.setMany(writes, lives).then(() => undefined)
              : tier.fillMany(
                  writes,
                  lives,
                  writes.map((write) => leases.get(write.key)?.[i]),
                ),
          );
          let sets = writes.length;
          done?.forEach((ok, j) => {
            if (ok) return;
            refused.add(writes[j]!.key);
            sets--;
          });
          this.remoteCounters[i]!.sets += sets;
          this.#o.counters.fillsRefused += writes.length - sets;
        } catch (error) {
          this.fault(i, 'set', error, writes.length === 1 ? writes[0]!.key : undefined);
        }
      }),
    );
    return refused;
  }

  /** Encodes every item for every tier, skipping keys whose ticket went stale. */
  #prepare(items: readonly WriteItem[], tickets: ReadonlyMap<string, FillTicket> | undefined): WritePlan {
    const at = this.#o.clock();
    const guard = this.#o.guard;
    const remotes = this.remotes;
    const plan: WritePlan = {
      perTier: remotes.map(() => []),
      lives: remotes.map(() => []),
      memory: new Map(),
      written: [],
      // Keys each tier left out by writeTo must drop, memory's first.
      drops: this.names.map(() => []),
      first: new Map(),
    };
    // Every tier, L1 included, refuses what another tier would change or lose (values.ts).
    for (const item of items) checkValue(item.key, item.value);
    for (const item of items) {
      if (tickets !== undefined && !guard.isCurrent(tickets.get(item.key)!)) continue;
      plan.written.push(item.key);
      const mask = maskOf(item.options, this.names, this.#o.writeMask);
      const ends0 = this.#expiries(item, at, mask);
      const createdAt = item.createdAt ?? at;
      const tags = item.options?.tags;
      const ends = staleEnds(ends0, item.keep ?? this.#o.keep);
      remotes.forEach((tier, i) => {
        const slot = i + this.#offset;
        if (mask !== undefined && !mask[slot]!) {
          plan.drops[slot]!.push(item.key);
          return;
        }
        const entry: Entry = {
          value: item.value,
          createdAt,
          expiresAt: ends0[slot]!,
          staleUntil: ends[slot]!,
          ...(tags && { tags }),
        };
        try {
          plan.perTier[i]!.push(tier.prepare(item.key, entry));
        } catch (error) {
          throw isCacheError(error) ? error : new SerializationError(item.key, tier.name, error);
        }
        plan.lives[i]!.push(ends[slot]! - at);
      });
      const first: Entry = {
        value: item.value,
        createdAt,
        expiresAt: ends0[0]!,
        staleUntil: ends[0]!,
        ...(tags && { tags }),
      };
      if (this.memory !== undefined) {
        if (mask === undefined || mask[0]!) {
          const capped = this.#l1Expiry(first.expiresAt, at);
          plan.memory.set(item.key, capped === first.expiresAt ? first : { ...first, expiresAt: capped });
        } else {
          plan.drops[0]!.push(item.key);
        }
      }
      plan.first.set(item.key, first);
    }
    return plan;
  }

  /** Reads of these keys that are still in flight now hold older data: they may not fill. */
  #claim(keys: readonly string[]): void {
    const { guard, wakes } = this.#o;
    for (const key of keys) guard.invalidate(key);
    if (wakes.size > 0) for (const key of keys) wakes.wake(key);
  }

  /** Puts `keys`' entries into L1 (and drops the keys writeTo leaves out of it). */
  #fillMemory(plan: WritePlan, keys: readonly string[]): void {
    const memory = this.memory;
    if (memory === undefined) return;
    for (const key of keys) {
      const entry = plan.memory.get(key);
      if (entry !== undefined && memory.set(key, entry, undefined)) this.memoryCounters!.sets++;
    }
    for (const key of plan.drops[0]!) this.store!.delete(key);
  }

  /** Deletes from remote tier `index` the keys the write's writeTo leaves out of it. */
  async #drop(plan: WritePlan, index: number): Promise<void> {
    const dropped = plan.drops[index + this.#offset]!;
    try {
      await this.timed(index, 'delete', () => this.remotes[index]!.delete(dropped));
    } catch (error) {
      this.fault(index, 'delete', error, dropped.length === 1 ? dropped[0] : undefined);
    }
  }

  /** Absolute expiry per tier, aligned with `names` (see lives.ts). */
  #expiries(item: WriteItem, at: number, mask: WriteMask | undefined): number[] {
    const { ttl, jitter = this.#o.jitter } = item.options ?? {};
    const negative = item.value === null || item.value === undefined ? this.#o.negativeTtl : undefined;
    return expiries(this.#lives, { key: item.key, ttl: ttl, jitter, negative }, at, mask);
  }

  /** An L1 expiry, capped while the bus is disconnected (a missed invalidation lives no longer). */
  #l1Expiry(expiresAt: number, at: number): number {
    return Math.min(expiresAt, this.#o.l1Cap(at));
  }

  // --- removals ---------------------------------------------------------------------------------

  /** Removes `keys` from every tier (one round trip per remote tier); how many tier copies went. */
  async delete(keys: readonly string[], announcer: Announcer): Promise<number> {
    const guard = this.#o.guard;
    let removed = 0;
    for (const key of keys) {
      guard.invalidate(key);
      if (this.store?.delete(key)) {
        removed++;
        this.memoryCounters!.deletes++;
      }
    }
    const deleting = this.#eachRemote('delete', (tier) => tier.delete(keys), keys).then((counts) => {
      // A read that missed L1 after it was emptied above may have read a remote copy before it
      // went: it must not fill L1 with it.
      for (const key of keys) guard.invalidate(key);
      return counts;
    });
    return (await this.#announceAfter(deleting, this.remotes, keys, announcer)) + removed;
  }

  /** Removes every key matching a glob (`matches` is its L1 form) from every tier. */
  async deleteMatching(pattern: string, matches: (key: string) => boolean): Promise<number> {
    const guard = this.#o.guard;
    guard.invalidateAll();
    const removed = this.store?.deleteWhere(matches, 'delete') ?? 0;
    if (removed > 0) this.memoryCounters!.deletes += removed;
    const counts = await this.#eachRemote('delete', (tier) => {
      if (tier.deleteMatching === undefined) throw new Error('this tier cannot delete by pattern');
      return tier.deleteMatching(pattern);
    });
    guard.invalidateAll();
    return counts + removed;
  }

  /**
   * Removes this cache's entries from every tier: L1 entirely, remote tiers by their prefix.
   * Resolves with the error of a tier that refused (the caller rejects with it, after telling
   * the other instances).
   */
  async clear(): Promise<TierError | undefined> {
    const guard = this.#o.guard;
    guard.invalidateAll();
    this.store?.clear('delete');
    let refused: TierError | undefined;
    await Promise.all(
      this.remotes.map(async (tier, i) => {
        try {
          await this.timed(i, 'clear', () => tier.clear());
        } catch (error) {
          // A clear that missed the tier (down, timed out, skipped) is done when it is back; one
          // Redis refused (an error reply, e.g. no SCAN permission) leaves every key: say so.
          if (!(error instanceof Error && error.name === 'ReplyError')) this.fault(i, 'clear', error);
          else {
            this.remoteCounters[i]!.fault('clear');
            refused ??= new TierError(tier.name, 'clear', error);
          }
        }
      }),
    );
    guard.invalidateAll();
    return refused;
  }

  /**
   * Runs one removal on every remote tier at once, counting what each removed; a tier that
   * fails is reported and counts 0.
   */
  async #eachRemote(
    operation: 'delete',
    call: (tier: RemoteTier) => Promise<number>,
    keys?: readonly string[],
  ): Promise<number> {
    const counts = await Promise.all(
      this.remotes.map(async (tier, i) => {
        try {
          const count = await this.timed(i, operation, () => call(tier));
          this.remoteCounters[i]!.deletes += count;
          return count;
        } catch (error) {
          this.fault(i, operation, error, keys?.length === 1 ? keys[0] : undefined);
          return 0;
        }
      }),
    );
    return counts.reduce((sum, n) => sum + n, 0);
  }

  // --- faults, timing, tags ---------------------------------------------------------------------

  /** Counts and reports a fault of remote tier `index` (rethrown under tierErrors:'throw'). */
  fault(index: number, operation: TierOperation, cause: unknown, key?: string, mayThrow = true): void {
    this.#o.faults.tier(this.remoteCounters[index]!, operation, cause, key, mayThrow);
  }

  /** Runs one call to remote tier `index`, recording its latency whether it succeeds or fails. */
  async timed<T>(index: number, operation: TierOperation, call: () => Promise<T>): Promise<T> {
    const started = now();
    try {
      return await call();
    } finally {
      this.remoteCounters[index]!.time(operation, now() - started);
    }
  }

  /**
   * Per hit (aligned), whether no tag of it was invalidated after it was created, reading the
   * tag times this instance does not know (or no longer trusts) from Redis in one batch. If
   * Redis cannot say, tagged hits are misses: serving them could serve invalidated data.
   */
  async #tagsCurrent(hits: readonly (StoredEntry | undefined)[]): Promise<boolean[]> {
    const { tags: times, tagTier } = this.#o;
    const tags: string[] = [];
    for (const hit of hits) if (hit?.entry.tags !== undefined) tags.push(...hit.entry.tags);
    try {
      await times.refresh(tags);
    } catch (error) {
      this.fault(tagTier, 'get', error, undefined, false);
      return hits.map((hit) => hit?.entry.tags === undefined);
    }
    return hits.map((hit) => hit?.entry.tags === undefined || !times.isStale(hit.entry));
  }
}
