import { CorruptEntryError, TierError } from '../errors.js';
import type { Entry } from '../entry.js';
import type { CacheEmitter } from '../events.js';
import type { Faults } from '../faults.js';
import type { CacheCounters } from '../metrics/stats.js';
import { claimTiers } from './claims.js';
import type { MemoryTier } from './memory/memory-tier.js';
import type { RemoteTier } from './tier.js';

/** What a cache gives its tiers to report to. */
export interface TierWiring {
  readonly memory: MemoryTier | undefined;
  readonly remotes: readonly RemoteTier[];
  readonly counters: CacheCounters;
  readonly events: CacheEmitter;
  readonly faults: Faults;
  /** Whether a tagged L1 entry's tag was invalidated after it was written. */
  readonly tagged: (entry: Entry) => boolean;
  /** The cache's fill window: how long a delete's tombstone lives. */
  readonly tombstoneTtl: number;
}

/**
 * Takes a cache's tiers up: claims them (resolveOptions already refused a tier another open
 * cache runs), and gives each this cache's hooks (removals, tag checks, corrupt payloads,
 * breaker changes, failed repairs) and its fill window through its own attach(), nothing
 * assigned onto it. Returns the release the cache's close() calls.
 */
export function attachTiers(wiring: TierWiring): () => void {
  const { memory, remotes, counters, events, faults, tagged, tombstoneTtl } = wiring;
  const detaches = [claimTiers(memory === undefined ? remotes : [memory, ...remotes])];
  if (memory !== undefined) {
    const removals = counters.tiers[0]!.removals;
    detaches.push(
      memory.attach({
        removed: (key, _entry, reason) => {
          removals[reason]++;
          if (events.has('remove')) events.emit('remove', { key, tier: memory.name, reason });
        },
        tagged,
      }),
    );
  }
  for (const tier of remotes) {
    const detach = tier.attach?.({
      corrupt: (key, problem, cause) => {
        counters.corrupt++;
        faults.report(new CorruptEntryError(key, tier.name, problem, cause), false);
      },
      breaker: (state) => events.emit('breaker', { tier: tier.name, state }),
      repairError: (error) => faults.report(new TierError(tier.name, 'repair', error), false),
      tombstoneTtl,
    });
    if (detach !== undefined) detaches.push(detach);
  }
  return () => {
    for (const detach of detaches) detach();
  };
}
