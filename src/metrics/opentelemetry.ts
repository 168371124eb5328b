/**
 * OpenTelemetry metrics for a tiercache cache through `@opentelemetry/api` (an optional peer
 * dependency, hence its own entry point: `tiercache/opentelemetry`). The same instruments as the
 * Prometheus exporter: counters and gauges are observable (read from stats() once per
 * collection), and the two latency histograms record each remote call and loader call as it
 * finishes, which only happens while an export is attached.
 */
import {
  metrics,
  type Attributes,
  type BatchObservableCallback,
  type Histogram,
  type Meter,
  type Observable,
} from '@opentelemetry/api';
import { InvalidOptionError, describe } from '../errors.js';
import { HISTOGRAMS, INSTRUMENTS, LATENCY_BUCKETS, checkBuckets } from './instruments.js';
import { metricsOf } from './source.js';

export interface OpenTelemetryOptions {
  /** The meter to create instruments on. @default metrics.getMeter('tiercache') */
  meter?: Meter;
  /** Prefix of every instrument name. @default 'tiercache.' */
  prefix?: string;
  /** Value of the `cache` attribute, which tells caches on one meter apart. @default 'default' */
  name?: string;
  /** Constant attributes added to every data point of this cache, e.g. `{ region: 'us' }`. */
  attributes?: Readonly<Record<string, string>>;
  /**
   * Bucket boundaries (seconds) suggested to the SDK for the latency histograms.
   * @default the Prometheus exporter's buckets (100 µs to 10 s)
   */
  buckets?: readonly number[];
}

export const OPENTELEMETRY_DEFAULTS = Object.freeze({
  prefix: 'tiercache.',
  name: 'default',
  buckets: LATENCY_BUCKETS,
});

export interface OpenTelemetryExport {
  /** Stops observing and recording this cache. */
  unregister(): void;
}

/**
 * Creates the cache's instruments on `meter`: `operations` (tier, operation, result), `hits`,
 * `misses`, `hit.ratio`, `evictions` (tier, reason), `entries`, `bytes`, `loader.calls`,
 * `loader.errors`, `corrupt.entries`, `bus.messages.out`, `bus.messages.in`, `stale.served`,
 * and the histograms `operation.duration` (tier, operation) and `loader.duration`, all in
 * seconds and all under the prefix, with the `cache` attribute. One export per cache.
 */
export function openTelemetryMetrics(cache: object, options: OpenTelemetryOptions = {}): OpenTelemetryExport {
  const source = metricsOf(cache);
  if (source === undefined) {
    throw new InvalidOptionError('cache', `expected a cache made by createCache(), got ${describe(cache)}`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('opentelemetry', `expected an options object, got ${describe(options)}`);
  }
  const meter = options.meter ?? metrics.getMeter('tiercache');
  if (typeof meter?.createObservableCounter !== 'function') {
    throw new InvalidOptionError('meter', `expected an OpenTelemetry Meter, got ${describe(meter)}`);
  }
  const prefix = options.prefix ?? OPENTELEMETRY_DEFAULTS.prefix;
  if (typeof prefix !== 'string') {
    throw new InvalidOptionError('prefix', `expected a string, got ${describe(prefix)}`);
  }
  const name = options.name ?? OPENTELEMETRY_DEFAULTS.name;
  if (typeof name !== 'string' || name === '') {
    throw new InvalidOptionError('name', `expected a non-empty string, got ${describe(name)}`);
  }
  const own = options.attributes ?? {};
  if (typeof own !== 'object' || own === null || Object.values(own).some((v) => typeof v !== 'string')) {
    throw new InvalidOptionError('attributes', `expected an object of string values, got ${describe(own)}`);
  }
  const buckets = checkBuckets(options.buckets ?? OPENTELEMETRY_DEFAULTS.buckets);
  const { counters } = source;
  if (counters.onLoaderTiming !== undefined || counters.tiers.some((t) => t.onTiming !== undefined)) {
    throw new InvalidOptionError(
      'cache',
      'this cache already exports to OpenTelemetry; unregister that export first',
    );
  }
  const base: Attributes = { cache: name, ...own };

  const observables = INSTRUMENTS.map((spec) => {
    const instrumentName = prefix + dotted(spec.name);
    const instrumentOptions = { description: spec.help, unit: spec.unit ?? '1' };
    return {
      spec,
      observable:
        spec.kind === 'counter'
          ? meter.createObservableCounter(instrumentName, instrumentOptions)
          : meter.createObservableGauge(instrumentName, instrumentOptions),
    };
  });
  const callback: BatchObservableCallback = (result) => {
    const stats = source.stats();
    for (const { spec, observable } of observables) {
      for (const { attributes, value } of spec.read(stats))
        result.observe(observable, value, { ...base, ...attributes });
    }
  };
  const all: Observable[] = observables.map((o) => o.observable);
  meter.addBatchObservableCallback(callback, all);

  const histogram = (spec: { name: string; help: string }): Histogram =>
    meter.createHistogram(prefix + dotted(spec.name), {
      description: spec.help,
      unit: 's',
      advice: { explicitBucketBoundaries: [...buckets] },
    });
  const durations = histogram(HISTOGRAMS.operations);
  const loader = histogram(HISTOGRAMS.loader);
  for (const tier of counters.tiers) {
    // Attribute objects per tier and operation are built once, not per recording.
    const byOperation = new Map<string, Attributes>();
    tier.onTiming = (operation, ms) => {
      let attributes = byOperation.get(operation);
      if (attributes === undefined) {
        attributes = { ...base, tier: tier.name, operation };
        byOperation.set(operation, attributes);
      }
      durations.record(ms / 1000, attributes);
    };
  }
  counters.onLoaderTiming = (ms) => loader.record(ms / 1000, base);

  return {
    unregister() {
      meter.removeBatchObservableCallback(callback, all);
      for (const tier of counters.tiers) tier.onTiming = undefined;
      counters.onLoaderTiming = undefined;
    },
  };
}

/** `loader_calls_total` → `loader.calls`; `operation_duration_seconds` → `operation.duration`. */
function dotted(name: string): string {
  return name.replace(/_(total|seconds)$/, '').replaceAll('_', '.');
}
