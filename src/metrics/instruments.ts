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
    help: 'Reads answered with a stale value during its grace period.',
    read: (s: CacheStats) => s.staleServed,
  },
]);
