/** Counters one tier keeps; plain fields so the hit path is a single increment. */
export class TierCounters {
  hits = 0;
  misses = 0;
  sets = 0;
  deletes = 0;
  errors = 0;
  constructor(readonly name: string) {}
}

export class CacheCounters {
  readonly tiers: TierCounters[];
  loaderCalls = 0;
  loaderErrors = 0;
  corrupt = 0;
  constructor(tierNames: readonly string[]) {
    this.tiers = tierNames.map((name) => new TierCounters(name));
  }
}

export interface TierStats {
  name: string;
  hits: number;
  misses: number;
  /** hits / (hits + misses) at this tier, 0 before any lookup. */
  hitRate: number;
  sets: number;
  deletes: number;
  errors: number;
}

export interface CacheStats {
  tiers: TierStats[];
  /** Lookups answered by some tier. */
  hits: number;
  /** Lookups that no tier answered (went to the loader, or returned undefined). */
  misses: number;
  hitRate: number;
  loader: { calls: number; errors: number };
  /** Payloads that could not be decoded and were treated as misses. */
  corrupt: number;
  /** L1 entries and evictions, when there is an L1. */
  memory?: { entries: number; weight: number; evictions: number };
}

export function snapshot(counters: CacheCounters): Omit<CacheStats, 'memory'> {
  const tiers = counters.tiers.map((t) => ({
    name: t.name,
    hits: t.hits,
    misses: t.misses,
    hitRate: rate(t.hits, t.misses),
    sets: t.sets,
    deletes: t.deletes,
    errors: t.errors,
  }));
  const hits = tiers.reduce((sum, t) => sum + t.hits, 0);
  // Every lookup that reached the last tier and missed there missed the whole cache.
  const misses = tiers.at(-1)?.misses ?? 0;
  return {
    tiers,
    hits,
    misses,
    hitRate: rate(hits, misses),
    loader: { calls: counters.loaderCalls, errors: counters.loaderErrors },
    corrupt: counters.corrupt,
  };
}

function rate(hits: number, misses: number): number {
  const total = hits + misses;
  return total === 0 ? 0 : hits / total;
}
