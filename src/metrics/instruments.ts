/**
 * What both exporters publish, in one place: each instrument reads its series from a stats()
 * snapshot. Names are Prometheus-style, without the prefix; the OpenTelemetry exporter derives
 * dotted names from them (`loader_calls_total` → `loader.calls`). A new cache-wide counter is
 * one line in CACHE_COUNTERS (see the seam described in ./stats.ts).
 */
import { InvalidOptionError, describe } from '../errors.js';
import { REMOVAL_REASONS, type CacheStats } from './stats.js';

const BREAKER_STATES = ['closed', 'open', 'half-open'] as const;

/** One series of an instrument: its own attributes (the exporter adds the cache's) and value. */
export interface Series {
  readonly attributes: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface InstrumentSpec {
  /** Metric name after the prefix; counters end in `_total`. */
  readonly name: string;
  readonly kind: 'counter' | 'gauge';
  readonly help: string;
  /** UCUM unit for OpenTelemetry. @default '1' */
  readonly unit?: string;
  read(stats: CacheStats): Series[];
}

export interface CounterSpec {
  /** Metric name after the prefix, ending in `_total`. */
  readonly name: string;
  readonly help: string;
  read(stats: CacheStats): number;
}

export const CACHE_COUNTERS: readonly CounterSpec[] = Object.freeze([
  {
    name: 'loader_calls_total',
    help: 'Loader (origin) calls; a batch loader call counts once.',
    read: (s: CacheStats) => s.loader.calls,
  },
  {
    name: 'loader_errors_total',
    help: 'Loader calls that threw or rejected.',
    read: (s: CacheStats) => s.loader.errors,
  },
  {
    name: 'corrupt_entries_total',
    help: 'Payloads that could not be decoded and were treated as misses.',
    read: (s: CacheStats) => s.corrupt,
  },
  {
    name: 'bus_messages_out_total',
    help: 'Invalidation messages this instance published.',
    read: (s: CacheStats) => s.bus.messagesOut,
  },
  {
    name: 'bus_messages_in_total',
    help: 'Invalidation messages received from other instances.',
    read: (s: CacheStats) => s.bus.messagesIn,
  },
  {
    name: 'bus_invalid_messages_total',
    help: 'Bus messages ignored because they were corrupt, foreign or of an unknown format.',
    read: (s: CacheStats) => s.bus.invalid,
  },
  {
    name: 'bus_oversized_messages_total',
    help: 'Bus messages over the size bounds, not read; each dropped L1.',
    read: (s: CacheStats) => s.bus.oversized,
  },
  {
    name: 'bus_gaps_total',
    help: 'Sequence gaps detected on the bus (lost messages); each dropped L1.',
    read: (s: CacheStats) => s.bus.gaps,
  },
  {
    name: 'bus_disconnects_total',
    help: 'Times the bus subscriber lost its connection or its heartbeat; each capped L1 lives, then dropped L1.',
    read: (s: CacheStats) => s.bus.disconnects,
  },
  {
    name: 'bus_publish_errors_total',
    help: 'Failed bus publishes; their invalidations were queued for retry.',
    read: (s: CacheStats) => s.bus.publishErrors,
  },
  {
    name: 'bus_heartbeat_errors_total',
    help: 'Failed bus heartbeat publishes (not retried).',
    read: (s: CacheStats) => s.bus.heartbeatErrors,
  },
  {
    name: 'bus_queue_overflows_total',
    help: 'Times the bus retry queue overflowed into one "drop everything" message.',
    read: (s: CacheStats) => s.bus.overflows,
  },
  {
    name: 'stale_served_total',
    help: 'Expired values returned: under grace, fail-safe, a soft timeout or a loader back-off.',
    read: (s: CacheStats) => s.staleServed,
  },
  {
    name: 'loader_soft_timeouts_total',
    help: 'Keys whose load passed its soft timeout (a stale value was returned meanwhile).',
    read: (s: CacheStats) => s.loaderTimeouts.soft,
  },
  {
    name: 'loader_hard_timeouts_total',
    help: 'Keys whose load passed its hard timeout.',
    read: (s: CacheStats) => s.loaderTimeouts.hard,
  },
  {
    name: 'refreshes_total',
    help: 'Background refreshes started (stale-while-revalidate and eager refresh).',
    read: (s: CacheStats) => s.refresh.started,
  },
  {
    name: 'refresh_errors_total',
    help: 'Background refreshes that failed.',
    read: (s: CacheStats) => s.refresh.failed,
  },
  {
    name: 'fills_refused_total',
    help: 'Loader results a remote tier refused to store because a delete reached the key after the load read it.',
    read: (s: CacheStats) => s.fillsRefused,
  },
  {
    name: 'lock_acquired_total',
    help: 'Distributed single flight: key locks this instance took.',
    read: (s: CacheStats) => s.lock.acquired,
  },
  {
    name: 'lock_waited_total',
    help: "Distributed single flight: loads that waited for another instance's loader.",
    read: (s: CacheStats) => s.lock.waited,
  },
  {
    name: 'lock_timed_out_total',
    help: 'Distributed single flight: waits that ran out, after which this instance loaded itself.',
    read: (s: CacheStats) => s.lock.timedOut,
  },
]);

/** Every counter and gauge, per tier first, then the cache-wide counters. */
export const INSTRUMENTS: readonly InstrumentSpec[] = Object.freeze([
  {
    name: 'operations_total',
    kind: 'counter',
    help: 'Tier operations by tier, operation and result (hit, miss, ok, error).',
    read: (s: CacheStats) =>
      s.tiers.flatMap(({ name: tier, ...t }) => [
        { attributes: { tier, operation: 'get', result: 'hit' }, value: t.hits },
        { attributes: { tier, operation: 'get', result: 'miss' }, value: t.misses },
        { attributes: { tier, operation: 'set', result: 'ok' }, value: t.sets },
        { attributes: { tier, operation: 'delete', result: 'ok' }, value: t.deletes },
        ...Object.entries(t.errorsByOperation).map(([operation, value]) => ({
          attributes: { tier, operation, result: 'error' },
          value,
        })),
      ]),
  },
  perTier('hits_total', 'counter', 'Lookups a tier answered.', (t) => t.hits),
  perTier('misses_total', 'counter', 'Lookups a tier could not answer.', (t) => t.misses),
  perTier(
    'hit_ratio',
    'gauge',
    'Hits / (hits + misses) at each tier since the cache started.',
    (t) => t.hitRate,
  ),
  {
    name: 'evictions_total',
    kind: 'counter',
    help: 'Entries that left the memory tier, by reason (evict, expire, delete, invalidate, replace).',
    read: (s: CacheStats) =>
      s.tiers
        .filter((t) => t.kind === 'memory')
        .flatMap((t) =>
          REMOVAL_REASONS.map((reason) => ({
            attributes: { tier: t.name, reason },
            value: t.evictions[reason],
          })),
        ),
  },
  perTier('entries', 'gauge', 'Entries held by the memory tier.', (t) => t.entries),
  {
    ...perTier(
      'bytes',
      'gauge',
      'Bytes accounted by the memory tier (its entry count unless it has maxBytes).',
      (t) => t.bytes,
    ),
    unit: 'By',
  },
  perTier('timeouts_total', 'counter', 'Remote tier calls that ran out of time.', (t) => t.timeouts),
  {
    name: 'breaker_state',
    kind: 'gauge',
    help: 'Circuit breaker of each remote tier: 1 for its current state (closed, open, half-open), else 0.',
    read: (s: CacheStats) =>
      s.tiers.flatMap((t) =>
        t.breaker === undefined
          ? []
          : BREAKER_STATES.map((state) => ({
              attributes: { tier: t.name, state },
              value: t.breaker!.state === state ? 1 : 0,
            })),
      ),
  },
  perTier(
    'breaker_opens_total',
    'counter',
    "Times a tier's circuit breaker opened.",
    (t) => t.breaker?.opens,
  ),
  perTier(
    'breaker_skipped_total',
    'counter',
    'Calls skipped (degraded past the tier) while its breaker was open.',
    (t) => t.breaker?.skipped,
  ),
  perTier(
    'repair_pending',
    'gauge',
    'Keys whose writes missed a tier, to delete from it when it is back (-1: too many, it will be cleared).',
    (t) => (t.repair === undefined ? undefined : t.repair.pending === 'all' ? -1 : t.repair.pending),
  ),
  perTier(
    'repairs_total',
    'counter',
    'Missed keys deleted from a tier once it answered again.',
    (t) => t.repair?.done,
  ),
  ...CACHE_COUNTERS.map((counter): InstrumentSpec => ({
    name: counter.name,
    kind: 'counter',
    help: counter.help,
    read: (s) => [{ attributes: {}, value: counter.read(s) }],
  })),
]);

/** An instrument with one series per tier that has the value (undefined skips the tier). */
function perTier(
  name: string,
  kind: 'counter' | 'gauge',
  help: string,
  value: (tier: CacheStats['tiers'][number]) => number | undefined,
): InstrumentSpec {
  return {
    name,
    kind,
    help,
    read: (s) =>
      s.tiers.flatMap((t) => {
        const v = value(t);
        return v === undefined ? [] : [{ attributes: { tier: t.name }, value: v }];
      }),
  };
}

/** The latency histograms, read from the live counters rather than a snapshot. */
export const HISTOGRAMS = Object.freeze({
  operations: {
    name: 'operation_duration_seconds',
    help: 'Latency of remote tier calls, by tier and operation.',
  },
  loader: { name: 'loader_duration_seconds', help: 'Latency of loader (origin) calls.' },
});

/** Default latency histogram bucket bounds in seconds: 100 µs to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
]);

export function checkBuckets(buckets: unknown): readonly number[] {
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    !buckets.every(
      (b, i) => typeof b === 'number' && b > 0 && Number.isFinite(b) && (i === 0 || b > buckets[i - 1]),
    )
  ) {
    throw new InvalidOptionError('buckets', `expected increasing positive seconds, got ${describe(buckets)}`);
  }
  return buckets as number[];
}
