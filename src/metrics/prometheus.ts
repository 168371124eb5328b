/**
 * Prometheus metrics for tiercache caches, through prom-client (an optional peer dependency,
 * hence its own entry point: `tiercache/prometheus`).
 *
 * Nothing is observed per operation: every metric is a collector that reads the cache's
 * counters and histograms when the registry is scraped. Several caches may share a registry;
 * their series differ by the `cache` label.
 */
import { register as defaultRegistry, type Metric, type Registry } from 'prom-client';
import { InvalidOptionError, describe } from '../errors.js';
import type { LatencyHistogram } from './histogram.js';
import { HISTOGRAMS, INSTRUMENTS, LATENCY_BUCKETS, checkBuckets } from './instruments.js';
import { metricsOf, type MetricsSource } from './source.js';
import type { CacheStats, TierOperation } from './stats.js';

export interface PrometheusOptions {
  /** The registry to register on. @default prom-client's default registry (`register`) */
  registry?: Registry;
  /** Prefix of every metric name. @default 'tiercache_' */
  prefix?: string;
  /** Value of the `cache` label, which tells caches on one registry apart. @default 'default' */
  name?: string;
  /**
   * Constant labels added to every series of this cache, e.g. `{ service: 'catalog' }`. Caches
   * sharing a registry and prefix must use the same label names.
   */
  labels?: Readonly<Record<string, string>>;
  /**
   * Upper bounds (seconds) of the latency histograms' buckets.
   * @default PROMETHEUS_DEFAULTS.buckets (100 µs to 10 s)
   */
  buckets?: readonly number[];
}

export const PROMETHEUS_DEFAULTS = Object.freeze({
  prefix: 'tiercache_',
  name: 'default',
  buckets: LATENCY_BUCKETS,
});

/** What `prometheusMetrics` returns: a way to stop exporting this cache. */
export interface PrometheusExport {
  /** The metric names registered (shared with other caches on the same registry and prefix). */
  readonly names: readonly string[];
  /** Removes this cache's series; the metrics leave the registry with the last cache. */
  unregister(): void;
}

type Labels = Record<string, string | number>;
interface Sample {
  metricName?: string;
  labels: Labels;
  value: number;
}
interface Attached {
  source: MetricsSource;
  labels: Labels;
}

/**
 * Registers the cache's metrics on a prom-client registry:
 *
 * | metric (after the prefix)        | type      | labels                                 |
 * | -------------------------------- | --------- | -------------------------------------- |
 * | `operations_total`               | counter   | cache, tier, operation, result         |
 * | `hits_total`, `misses_total`     | counter   | cache, tier                            |
 * | `hit_ratio`                      | gauge     | cache, tier                            |
 * | `evictions_total`                | counter   | cache, tier, reason                    |
 * | `entries`, `bytes`               | gauge     | cache, tier (the memory tier)          |
 * | `operation_duration_seconds`     | histogram | cache, tier, operation (remote tiers)  |
 * | `loader_duration_seconds`        | histogram | cache                                  |
 * | `loader_calls_total`, `loader_errors_total`, `corrupt_entries_total`, `bus_messages_out_total`, `bus_messages_in_total`, `stale_served_total` | counter | cache |
 *
 * `operations_total` results: `hit`/`miss` for `get` (one per key looked up), `ok` for `set`
 * and `delete` (one per entry), `error` for every failed tier call by its operation.
 */
export function prometheusMetrics(cache: object, options: PrometheusOptions = {}): PrometheusExport {
  const source = metricsOf(cache);
  if (source === undefined) {
    throw new InvalidOptionError('cache', `expected a cache made by createCache(), got ${describe(cache)}`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('prometheus', `expected an options object, got ${describe(options)}`);
  }
  const registry = options.registry ?? defaultRegistry;
  if (typeof registry?.registerMetric !== 'function') {
    throw new InvalidOptionError('registry', `expected a prom-client Registry, got ${describe(registry)}`);
  }
  const prefix = options.prefix ?? PROMETHEUS_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new InvalidOptionError(
      'prefix',
      `expected a Prometheus metric name prefix, got ${describe(prefix)}`,
    );
  }
  const name = options.name ?? PROMETHEUS_DEFAULTS.name;
  if (typeof name !== 'string' || name === '') {
    throw new InvalidOptionError('name', `expected a non-empty string, got ${describe(name)}`);
  }
  const labels = checkLabels(options.labels ?? {});
  const buckets = checkBuckets(options.buckets ?? PROMETHEUS_DEFAULTS.buckets);

  const group = groupFor(registry, prefix, buckets);
  for (const attached of group.caches) {
    if (attached.labels['cache'] === name) {
      throw new InvalidOptionError(
        'name',
        `a cache named "${name}" already exports to this registry with prefix "${prefix}"; give each cache its own name`,
      );
    }
  }
  const attached: Attached = { source, labels: { cache: name, ...labels } };
  group.caches.add(attached);
  return {
    names: group.metrics.map((m) => m.name),
    unregister() {
      if (!group.caches.delete(attached) || group.caches.size > 0) return;
      for (const metric of group.metrics) registry.removeSingleMetric(metric.name);
      groups.get(registry)?.delete(prefix);
    },
  };
}

/** The metrics of one registry and prefix, shared by every cache exported there. */
interface Group {
  caches: Set<Attached>;
  metrics: CollectedMetric[];
}

const groups = new WeakMap<Registry, Map<string, Group>>();

function groupFor(registry: Registry, prefix: string, buckets: readonly number[]): Group {
  let byPrefix = groups.get(registry);
  if (byPrefix === undefined) groups.set(registry, (byPrefix = new Map<string, Group>()));
  const existing = byPrefix.get(prefix);
  if (existing !== undefined) return existing;
  const group: Group = { caches: new Set(), metrics: [] };
  // One stats() snapshot per cache per scrape: prom-client starts every collector in one tick.
  const snapshots = new Map<Attached, CacheStats>();
  const each = (read: (stats: CacheStats, cache: Attached) => Sample[]): (() => Sample[]) => {
    return () => {
      const samples: Sample[] = [];
      for (const cache of group.caches) {
        let stats = snapshots.get(cache);
        if (stats === undefined) {
          if (snapshots.size === 0) queueMicrotask(() => snapshots.clear());
          stats = cache.source.stats();
          snapshots.set(cache, stats);
        }
        samples.push(...read(stats, cache));
      }
      return samples;
    };
  };
  for (const instrument of INSTRUMENTS) {
    group.metrics.push(
      new CollectedMetric(
        prefix + instrument.name,
        instrument.help,
        instrument.kind,
        each((stats, { labels }) =>
          instrument
            .read(stats)
            .map(({ attributes, value }) => ({ labels: { ...labels, ...attributes }, value })),
        ),
      ),
    );
  }
  const durations = prefix + HISTOGRAMS.operations.name;
  group.metrics.push(
    new CollectedMetric(durations, HISTOGRAMS.operations.help, 'histogram', () =>
      [...group.caches].flatMap(({ source, labels }) =>
        source.counters.tiers.flatMap((tier) =>
          (Object.entries(tier.latency) as [TierOperation, LatencyHistogram][]).flatMap(
            ([operation, histogram]) =>
              histogramSamples(durations, histogram, buckets, { ...labels, tier: tier.name, operation }),
          ),
        ),
      ),
    ),
  );
  const loader = prefix + HISTOGRAMS.loader.name;
  group.metrics.push(
    new CollectedMetric(loader, HISTOGRAMS.loader.help, 'histogram', () =>
      [...group.caches].flatMap(({ source, labels }) =>
        histogramSamples(loader, source.counters.loaderLatency, buckets, labels),
      ),
    ),
  );

  for (const m of group.metrics) {
    if (registry.getSingleMetric(m.name) !== undefined) {
      throw new InvalidOptionError(
        'prefix',
        `the registry already has a metric named ${m.name} (registered by something else); choose another prefix`,
      );
    }
  }
  for (const m of group.metrics) registry.registerMetric(m as unknown as Metric);
  byPrefix.set(prefix, group);
  return group;
}

/** Cumulative `_bucket` samples at `buckets` (seconds), plus `_sum` and `_count`. */
function histogramSamples(
  name: string,
  histogram: LatencyHistogram,
  buckets: readonly number[],
  labels: Labels,
): Sample[] {
  const samples: Sample[] = buckets.map((le) => ({
    metricName: `${name}_bucket`,
    labels: { ...labels, le },
    value: histogram.countAtOrBelow(le * 1e6),
  }));
  samples.push(
    { metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count },
    { metricName: `${name}_sum`, labels, value: histogram.sum / 1e6 },
    { metricName: `${name}_count`, labels, value: histogram.count },
  );
  return samples;
}

/** A prom-client metric whose samples come from a function run at scrape time. */
class CollectedMetric {
  readonly aggregator = 'sum';
  constructor(
    // prom-client renames counters in place for OpenMetrics output, so the name stays writable.
    public name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly collect: () => Sample[],
  ) {}

  get(): { name: string; help: string; type: string; values: Sample[]; aggregator: string } {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.collect(),
      aggregator: this.aggregator,
    };
  }

  reset(): void {
    // The values are the cache's own counters; a registry reset does not rewind them.
  }
}

function checkLabels(labels: unknown): Labels {
  if (typeof labels !== 'object' || labels === null) {
    throw new InvalidOptionError('labels', `expected an object of label values, got ${describe(labels)}`);
  }
  const reserved = new Set(['cache', 'tier', 'operation', 'result', 'reason', 'le']);
  for (const [key, value] of Object.entries(labels)) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(key) || reserved.has(key)) {
      throw new InvalidOptionError(
        `labels.${key}`,
        'not a valid label name, or one the exporter sets itself',
      );
    }
    if (typeof value !== 'string') {
      throw new InvalidOptionError(`labels.${key}`, `expected a string, got ${describe(value)}`);
    }
  }
  return { ...(labels as Labels) };
}
