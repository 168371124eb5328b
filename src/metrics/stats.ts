/**
 * The cache's counters. Plain mutable fields, so counting is a single increment on any path and
 * the exporters (prometheus.ts, opentelemetry.ts) read them only when scraped: nothing is paid
 * per operation for metrics nobody collects.
 *
 * Adding a counter (the seam for features that count things):
 *   1. add a plain numeric field to `CacheCounters` (cache-wide) or `TierCounters` (per tier) and
 *      increment it where the thing happens;
 *   2. copy it into the snapshot in `snapshot()` and its field in `CacheStats`/`TierStats`;
 *   3. add one line to `CACHE_COUNTERS` in ./instruments.ts (cache-wide counters), and both
 *      exporters publish it under their prefix with no further code.
 */
import type { RemovalReason } from '../entry.js';
import type { TierHealth } from '../tiers/tier.js';
import { LatencyHistogram, type LatencySummary } from './histogram.js';

/** Remote-tier calls that are timed, one latency histogram each. */
export type TierOperation = 'get' | 'getMany' | 'set' | 'delete' | 'has' | 'clear' | 'promote' | 'lock';

export const REMOVAL_REASONS: readonly RemovalReason[] = Object.freeze([
  'evict',
  'expire',
  'delete',
  'invalidate',
  'replace',
]);

export type RemovalCounts = Record<RemovalReason, number>;

/** Counters one tier keeps; plain fields so the hit path is a single increment. */
export class TierCounters {
  hits = 0;
  misses = 0;
  sets = 0;
  deletes = 0;
  errors = 0;
  /** Errors by the operation that failed (the keys of TierOperation). */
  readonly errorsBy: Partial<Record<TierOperation, number>> = {};
  /** Entries that left this tier, by reason (the memory tier reports them). */
  readonly removals: RemovalCounts = { evict: 0, expire: 0, delete: 0, invalidate: 0, replace: 0 };
  /** Latency per operation; created on the first timing so untimed operations cost nothing. */
  readonly latency: Partial<Record<TierOperation, LatencyHistogram>> = {};
  /** Set by a metrics exporter that wants every timing as it happens (OpenTelemetry). */
  onTiming: ((operation: TierOperation, ms: number) => void) | undefined = undefined;

  constructor(
    readonly name: string,
    readonly kind: 'memory' | 'remote',
  ) {}

  /** Records one call's duration (performance.now() difference, ms). */
  time(operation: TierOperation, ms: number): void {
    (this.latency[operation] ??= new LatencyHistogram()).recordMs(ms);
    this.onTiming?.(operation, ms);
  }

  fault(operation: TierOperation): void {
    this.errors++;
    this.errorsBy[operation] = (this.errorsBy[operation] ?? 0) + 1;
  }
}

export class CacheCounters {
  readonly tiers: TierCounters[];
  loaderCalls = 0;
  loaderErrors = 0;
  readonly loaderLatency = new LatencyHistogram();
  /** Set by a metrics exporter that wants every loader timing as it happens. */
  onLoaderTiming: ((ms: number) => void) | undefined = undefined;
  corrupt = 0;
  /** Invalidation messages published by this instance (incremented by the bus). */
  busMessagesOut = 0;
  /** Invalidation messages received from other instances (incremented by the bus). */
  busMessagesIn = 0;
  /** Reads answered with an expired value kept for grace (incremented by stale serving). */
  staleServed = 0;
  softTimeouts = 0;
  hardTimeouts = 0;
  refreshes = 0;
  refreshErrors = 0;
  lockAcquired = 0;
  lockWaited = 0;
  lockTimedOut = 0;
  /** Loader results a remote tier refused to store (a delete came after the load's read). */
  fillsRefused = 0;

  constructor(tiers: readonly { readonly name: string; readonly kind: 'memory' | 'remote' }[]) {
    this.tiers = tiers.map((t) => new TierCounters(t.name, t.kind));
  }

  timeLoader(ms: number): void {
    this.loaderLatency.recordMs(ms);
    this.onLoaderTiming?.(ms);
  }
}

export interface TierStats {
  name: string;
  kind: 'memory' | 'remote';
  hits: number;
  misses: number;
  /** hits / (hits + misses) at this tier, 0 before any lookup. */
  hitRate: number;
  sets: number;
  deletes: number;
  errors: number;
  /** Errors by the operation that failed. */
  errorsByOperation: Partial<Record<TierOperation, number>>;
  /**
   * Entries that left the tier, by reason: `evict` (the policy made room), `expire`, `delete`,
   * `invalidate` (another instance changed it), `replace` (a newer value took its place).
   * Reported by the memory tier; always zero for remote tiers, whose server evicts on its own.
   */
  evictions: RemovalCounts;
  /** Live entries (memory tier only). */
  entries?: number;
  /** Bytes accounted (memory tier only; the entry count unless the tier has `maxBytes`). */
  bytes?: number;
  /**
   * Latency percentiles (ms) per timed operation. Remote tiers only: L1 operations take well
   * under a microsecond and are not timed, so the hit path reads no clock.
   */
  latency: Partial<Record<TierOperation, LatencySummary>>;
  /** Calls that ran out of time (remote tiers with a timeout). */
  timeouts?: number;
  /** The tier's circuit breaker: state, times opened, calls skipped while open. */
  breaker?: TierHealth['breaker'];
  /** Keys whose writes missed the tier, deleted from it when it is back (remote tiers). */
  repair?: TierHealth['repair'];
}

export interface CacheStats {
  tiers: TierStats[];
  /** Lookups answered by some tier. */
  hits: number;
  /** Lookups that no tier answered (went to the loader, or returned undefined). */
  misses: number;
  hitRate: number;
  /** Loader calls (a batch loader call counts once), failures, and their latency in ms. */
  loader: { calls: number; errors: number; latency: LatencySummary };
  /**
   * Keys whose load passed its soft timeout (a stale value was served) or hard timeout; a batch
   * call counts once per key.
   */
  loaderTimeouts: { soft: number; hard: number };
  /** Background refreshes (grace and eager) started, and those that failed. */
  refresh: { started: number; failed: number };
  /** Distributed single flight: locks taken, waits for another instance, waits given up. */
  lock: { acquired: number; waited: number; timedOut: number };
  /**
   * Loader results a remote tier with fill leases refused to store (per tier), because a
   * delete, clear or pattern delete reached the key after the load read it; their callers got
   * the value, no tier (L1 included) kept it.
   */
  fillsRefused: number;
  /** Payloads that could not be decoded and were treated as misses. */
  corrupt: number;
  /** The invalidation bus: messages sent and received, gaps, outages, the retry queue. */
  bus: BusStats;
  /** Expired values returned: under grace, fail-safe, a soft timeout or a loader back-off. */
  staleServed: number;
  /** L1 entries and evictions, when there is an L1 (also in `tiers[0]`). */
  memory?: { entries: number; weight: number; evictions: number };
}

/** Zeros (and `subscribed: false`) when the cache runs no bus. */
export interface BusStats {
  /** Messages published (one per tick's batch of invalidations). */
  messagesOut: number;
  /** Messages received from other instances and applied. */
  messagesIn: number;
  /** Whether the subscriber is subscribed now. */
  subscribed: boolean;
  /** Messages ignored because they could not be read (corrupt, foreign, unknown version). */
  invalid: number;
  /** Sequence gaps detected; each dropped L1. */
  gaps: number;
  /**
   * Times the subscriber lost its connection or stopped hearing its own heartbeat; each capped L1
   * lives, then dropped L1.
   */
  disconnects: number;
  /** Failed PUBLISH attempts; their invalidations were queued for retry. */
  publishErrors: number;
  /** Failed heartbeat PUBLISHes (not retried; the next heartbeat takes their place). */
  heartbeatErrors: number;
  /** Messages over `bus.maxMessageBytes`/`maxMessageNames`: not read; each dropped all of L1. */
  oversized: number;
  /** Invalidated names waiting in the retry queue now. */
  queued: number;
  /** Times the retry queue overflowed into one "drop everything" message. */
  overflows: number;
  /** Outages and gaps made good from the replay log: L1 kept. */
  replays: number;
  /** Messages applied from the replay log. */
  replayed: number;
  /** Times the replay log could not say what was missed (trimmed, lost, unreadable): each dropped L1. */
  logLosses: number;
}

export function snapshot(counters: CacheCounters): Omit<CacheStats, 'memory'> {
  const tiers: TierStats[] = counters.tiers.map((t) => {
    const latency: TierStats['latency'] = {};
    for (const [operation, histogram] of Object.entries(t.latency))
      latency[operation as TierOperation] = histogram.summary();
    return {
      name: t.name,
      kind: t.kind,
      hits: t.hits,
      misses: t.misses,
      hitRate: rate(t.hits, t.misses),
      sets: t.sets,
      deletes: t.deletes,
      errors: t.errors,
      errorsByOperation: { ...t.errorsBy },
      evictions: { ...t.removals },
      latency,
    };
  });
  const hits = tiers.reduce((sum, t) => sum + t.hits, 0);
  // Every lookup that reached the last tier and missed there missed the whole cache.
  const misses = tiers.at(-1)?.misses ?? 0;
  return {
    tiers,
    hits,
    misses,
    hitRate: rate(hits, misses),
    loader: {
      calls: counters.loaderCalls,
      errors: counters.loaderErrors,
      latency: counters.loaderLatency.summary(),
    },
    loaderTimeouts: { soft: counters.softTimeouts, hard: counters.hardTimeouts },
    refresh: { started: counters.refreshes, failed: counters.refreshErrors },
    lock: { acquired: counters.lockAcquired, waited: counters.lockWaited, timedOut: counters.lockTimedOut },
    fillsRefused: counters.fillsRefused,
    corrupt: counters.corrupt,
    bus: {
      messagesOut: counters.busMessagesOut,
      messagesIn: counters.busMessagesIn,
      subscribed: false,
      invalid: 0,
      gaps: 0,
      disconnects: 0,
      publishErrors: 0,
      heartbeatErrors: 0,
      oversized: 0,
      queued: 0,
      overflows: 0,
      replays: 0,
      replayed: 0,
      logLosses: 0,
    },
    staleServed: counters.staleServed,
  };
}

/** What a cache's stats read besides its counters: L1's size, the remote tiers' health, the bus. */
export interface StatsSources {
  readonly store: { readonly size: number; readonly weight: number; readonly evictions: number } | undefined;
  readonly remotes: readonly { health?(): TierHealth }[];
  readonly bus:
    | {
        readonly counters: object;
        readonly subscribed: boolean;
        readonly queued: number;
        readonly overflows: number;
      }
    | undefined;
}

/** TierCache.stats(): the counters' snapshot with the live figures of L1, the tiers and the bus. */
export function cacheStats(counters: CacheCounters, sources: StatsSources): CacheStats {
  const stats: CacheStats = snapshot(counters);
  const { store, remotes, bus } = sources;
  const offset = store === undefined ? 0 : 1;
  remotes.forEach((tier, i) => {
    if (tier.health !== undefined) Object.assign(stats.tiers[i + offset]!, tier.health());
  });
  if (store !== undefined) {
    stats.memory = { entries: store.size, weight: store.weight, evictions: store.evictions };
    stats.tiers[0]!.entries = store.size;
    stats.tiers[0]!.bytes = store.weight;
  }
  if (bus !== undefined) {
    Object.assign(stats.bus, bus.counters, {
      subscribed: bus.subscribed,
      queued: bus.queued,
      overflows: bus.overflows,
    });
  }
  return stats;
}

function rate(hits: number, misses: number): number {
  const total = hits + misses;
  return total === 0 ? 0 : hits / total;
}
