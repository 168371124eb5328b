/**
 * What keeps this instance's L1 in step with the others: the invalidation bus, what it does to
 * this instance (LocalSync), namespace versions and tag times. Built once per cache from its
 * resolved options.
 */
import type { CacheEmitter } from '../events.js';
import type { Faults } from '../faults.js';
import type { FillGuard } from '../loading/fill-guard.js';
import type { CacheCounters } from '../metrics/stats.js';
import type { ResolvedBus } from './bus-options.js';
import { offered } from '../tiers/coordination.js';
import type { MemoryStore } from '../tiers/memory/memory-store.js';
import type { RemoteTier } from '../tiers/tier.js';
import type { Announcer } from '../tiers/tier-stack.js';
import { InvalidationBus } from './bus.js';
import { LocalSync } from './local.js';
import { emptyInvalidation, type Invalidation } from './message.js';
import { namespaceMatcher, NamespaceVersions } from './namespaces.js';
import { TagTimes } from './tags.js';
import { dropMatching, workBudget } from './work.js';

/** Without a bus, how long a tag time read from Redis is trusted before L2 reads re-read it. */
const UNBUSSED_TAG_AGE = 1_000;

export interface CacheSyncOptions {
  /** The remote tiers: the first that offers tag times holds them, and likewise namespaces. */
  remotes: readonly RemoteTier[];
  bus: ResolvedBus | undefined;
  store: MemoryStore | undefined;
  guard: FillGuard;
  clock: () => number;
  events: CacheEmitter;
  faults: Faults;
  counters: CacheCounters;
}

export class CacheSync implements Announcer {
  readonly bus: InvalidationBus | undefined;
  /** The bus's publishing connection, when it runs commands in order (see Announcer). */
  readonly orderedConnection: object | undefined;
  readonly namespaces: NamespaceVersions;
  readonly tags: TagTimes;
  /** Index among the remote tiers of the one holding tag times (-1: none, they are local). */
  readonly tagTier: number;
  readonly #guard: FillGuard;

  constructor(options: CacheSyncOptions) {
    const { remotes, store, guard, clock, faults } = options;
    this.#guard = guard;
    const versions = offered(remotes, 'namespaces');
    this.namespaces = new NamespaceVersions(
      versions && { tier: remotes[versions.index]!.name, store: versions.part },
      options.bus !== undefined,
    );
    this.namespaces.onError = (error) => faults.report(error, true);
    this.namespaces.onChange = (names) => {
      guard.invalidateAll();
      if (store === undefined) return;
      const budget = workBudget();
      dropMatching(store, namespaceMatcher(names, budget), budget, 'invalidate');
    };
    let local: LocalSync | undefined;
    if (options.bus !== undefined) {
      local = new LocalSync(store, guard, clock, options.bus.disconnectedTtl);
      local.shared.push(this.namespaces);
      this.bus = new InvalidationBus(
        options.bus.transport,
        local,
        options.bus,
        options.events,
        (error) => faults.report(error, false),
        options.counters,
      );
      this.orderedConnection = options.bus.transport.orderedConnection;
    }
    const bus = this.bus;
    const untrustedFor = options.bus?.disconnectedTtl ?? UNBUSSED_TAG_AGE;
    const tagTimes = offered(remotes, 'tagTimes');
    this.tagTier = tagTimes?.index ?? -1;
    this.tags = new TagTimes(tagTimes?.part, clock, () =>
      bus?.subscribed === true ? Number.POSITIVE_INFINITY : untrustedFor,
    );
    local?.shared.push(this.tags);
  }

  // The announcements below never reject: a failed publish is retried by the bus.

  /** Tells the other instances that `keys` changed. */
  announce(keys: readonly string[]): Promise<void> {
    return this.#publish((inv) => {
      for (const key of keys) inv.keys.add(key);
    });
  }

  /** Tells the other instances that the keys matching `pattern` were deleted. */
  announcePattern(pattern: string): Promise<void> {
    return this.#publish((inv) => inv.patterns.add(pattern));
  }

  /** Tells the other instances that every key was deleted. */
  announceClear(): Promise<void> {
    return this.#publish((inv) => (inv.all = true));
  }

  /** Clears namespace `name` everywhere: bumps its version (rejects if it cannot), then announces it. */
  async clearNamespace(name: string): Promise<void> {
    const version = await this.namespaces.bump(name);
    await this.#publish((inv) => inv.namespaces.set(name, version));
  }

  /**
   * Invalidates `tags` as of `at`: records the time where the tag times live (a failure goes to
   * `fault`; the time is then kept locally) and tells the other instances.
   */
  async invalidateTags(tags: readonly string[], at: number, fault: (error: unknown) => void): Promise<void> {
    // Loads in flight may carry one of these tags: they may not fill (the fill guard), neither
    // before the time is recorded nor while it is.
    this.#guard.invalidateAll();
    try {
      await this.tags.invalidate(tags, at);
    } catch (error) {
      fault(error);
    }
    this.#guard.invalidateAll();
    await this.#publish((inv) => {
      for (const tag of tags) inv.tags.set(tag, at);
    });
  }

  #publish(fill: (inv: Invalidation) => void): Promise<void> {
    if (this.bus === undefined) return Promise.resolve();
    const inv = emptyInvalidation();
    fill(inv);
    return this.bus.publish(inv);
  }

  /** The latest expiry an L1 copy may get now: capped while the bus is disconnected. */
  l1Cap(now: number): number {
    return this.bus === undefined ? Number.POSITIVE_INFINITY : this.bus.lifeCap(now);
  }

  close(): Promise<void> {
    return this.bus?.close() ?? Promise.resolve();
  }
}
