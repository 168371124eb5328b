/**
 * The cache-wide counters both exporters publish, in one table so a new counter is one line
 * here (see the seam described in ./stats.ts). Names are Prometheus-style, without the prefix;
 * the OpenTelemetry exporter derives dotted names from them (`loader_calls_total` →
 * `loader.calls`).
 */
import type { CacheStats } from './stats.js';

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
    name: 'stale_served_total',
    help: 'Expired values returned: under grace, fail-safe, a soft timeout or a loader back-off.',
    read: (s: CacheStats) => s.staleServed,
  },
  {
    name: 'loader_soft_timeouts_total',
    help: 'Loader calls that passed their soft timeout (a stale value was returned meanwhile).',
    read: (s: CacheStats) => s.loaderTimeouts.soft,
  },
  {
    name: 'loader_hard_timeouts_total',
    help: 'Loader calls that passed their hard timeout.',
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
