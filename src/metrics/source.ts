import type { CacheCounters, CacheStats } from './stats.js';

/**
 * How exporters reach a cache's live counters without widening the cache's public type. A
 * registered symbol, because tiercache/prometheus and tiercache/opentelemetry are built as
 * separate bundles and must find the same key on a cache made by the main bundle.
 */
export const metricsSource: unique symbol = Symbol.for('tiercache.metrics');

export interface MetricsSource {
  counters: CacheCounters;
  stats(): CacheStats;
}

/** Attaches the source to `cache` as a hidden property. */
export function exposeMetrics(cache: object, source: MetricsSource): void {
  Object.defineProperty(cache, metricsSource, { value: source, enumerable: false });
}

/** The source of a cache made by createCache(), or undefined for anything else. */
export function metricsOf(cache: unknown): MetricsSource | undefined {
  if (typeof cache !== 'object' || cache === null) return undefined;
  return (cache as { [metricsSource]?: MetricsSource })[metricsSource];
}
