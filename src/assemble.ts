/**
 * Builds the parts of one cache from its options, in the order they depend on each other: the
 * tiers and their counters, the fill guard, the load plan and the lock, the sync (bus, tags,
 * namespaces), the tiers' hooks, the tier stack and the load engine. The facade (cache.ts) only
 * holds what this returns and hands calls to it.
 */
import type { CacheEmitter } from './events.js';
import { Faults } from './faults.js';
import { coarseClock } from './internal/clock.js';
import { KeyRules } from './internal/keys.js';
import { DistributedLock } from './loading/distributed-lock.js';
import { FillGuard } from './loading/fill-guard.js';
import { LoadEngine, type LockSeat } from './loading/load-engine.js';
import { fillWindow, resolveLock, resolvePlan, type LoadPlan } from './loading/load-plan.js';
import { Wakeups } from './loading/wakeups.js';
import { CacheCounters } from './metrics/stats.js';
import { resolveOptions, type CacheOptions, type ResolvedOptions } from './options.js';
import { CacheSync } from './sync/cache-sync.js';
import { attachTiers } from './tiers/attach.js';
import { offered } from './tiers/coordination.js';
import { memoryTier } from './tiers/memory/memory-tier.js';
import { TierStack } from './tiers/tier-stack.js';
import { writeMask } from './tiers/write-targets.js';

/** What the parts need from the facade that holds them. */
export interface FacadeHooks {
  /** Whether close() was called. */
  closed(): boolean;
  /** Keeps background work (refreshes, promotions, lock releases) for close() to wait for. */
  track(work: Promise<void>): void;
}

/** One cache's parts. */
export interface CacheParts {
  readonly options: ResolvedOptions;
  readonly keys: KeyRules;
  readonly guard: FillGuard;
  readonly counters: CacheCounters;
  readonly plan: LoadPlan;
  /** The clock for L1 expiry checks on hits: coarse unless the caller injected one. */
  readonly readClock: () => number;
  readonly sync: CacheSync;
  readonly stack: TierStack;
  readonly engine: LoadEngine;
  /** Detaches the cache's hooks from its tiers and frees them for another cache. */
  readonly release: () => void;
}

/** Checks `options` (throwing InvalidOptionError) and builds every part of a cache. */
export function assembleCache(options: CacheOptions, events: CacheEmitter, facade: FacadeHooks): CacheParts {
  const resolved = resolveOptions(options, () => memoryTier());
  const { memory, remotes, clock } = resolved;
  const readClock = clock === Date.now ? coarseClock() : clock;
  // Always on: besides fills, it tells the load engine whether a flight that answered early
  // from a kept copy may still be joined (nothing written since).
  const guard = new FillGuard();
  const tiers = [...(memory ? [memory] : []), ...remotes];
  const counters = new CacheCounters(tiers);
  const faults = new Faults(resolved.onError, resolved.throwTierErrors, events);
  const plan = resolvePlan({
    ...options,
    lock: options.lock === undefined ? undefined : options.lock !== false,
  });
  const locks = offered(remotes, 'locks');
  // resolveOptions refused `lock` when no tier holds locks.
  const lock: LockSeat | undefined = locks && {
    lock: new DistributedLock(locks.part, resolveLock(options.lock ?? true)),
    tier: locks.index,
  };
  const sync = new CacheSync({
    remotes,
    bus: resolved.bus,
    store: memory?.store,
    guard,
    clock,
    events,
    faults,
    counters,
  });
  const release = attachTiers({
    memory,
    remotes,
    counters,
    events,
    faults,
    tagged: (entry) => sync.tags.isStale(entry),
    tombstoneTtl: fillWindow(plan, lock?.lock.options.ttl),
  });
  const wakes = new Wakeups();
  const track = (work: Promise<void>): void => facade.track(work);
  const stack = new TierStack({
    memory,
    remotes,
    counters,
    faults,
    guard,
    wakes,
    clock,
    readClock,
    writeMask: writeMask(
      options.writeTo,
      tiers.map((tier) => tier.name),
      'writeTo',
    ),
    keep: plan.keep,
    jitter: resolved.jitter,
    negativeTtl: resolved.negativeTtl,
    tags: sync.tags,
    tagTier: sync.tagTier,
    l1Cap: (at) => sync.l1Cap(at),
    track,
  });
  const engine = new LoadEngine({
    stack,
    guard,
    wakes,
    counters,
    events,
    faults,
    clock,
    readClock,
    plan,
    lock,
    cacheable: (value) =>
      value === undefined ? resolved.cacheUndefined : value === null ? resolved.cacheNull : true,
    closed: () => facade.closed(),
    track,
  });
  return {
    options: resolved,
    keys: new KeyRules(resolved.maxKeyBytes),
    guard,
    counters,
    plan,
    readClock,
    sync,
    stack,
    engine,
    release,
  };
}
