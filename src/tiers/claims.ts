/**
 * Which tier instances an open cache runs. A tier reports to the one cache attached to it, and
 * that cache's close() closes it, so a second open cache given the same instance is refused
 * (see resolveOptions) instead of silently taking its reports or losing it to the other's close.
 */
const running = new WeakSet<object>();

/** Whether an open cache runs `tier`. */
export function isRunning(tier: object): boolean {
  return running.has(tier);
}

/** Marks `tiers` as run by one cache; returns the release its close() calls. */
export function claimTiers(tiers: readonly object[]): () => void {
  for (const tier of tiers) running.add(tier);
  return () => {
    for (const tier of tiers) running.delete(tier);
  };
}

/** Why a tier is refused: it is already run by another open cache. */
export const TIER_IN_USE =
  'this tier instance already serves another open cache: give each cache its own tier (Redis tiers may share one ioredis client)';
