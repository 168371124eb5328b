import {
  AggregationTemporality,
  DataPointType,
  MeterProvider,
  MetricReader,
  type HistogramMetricData,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { createCache, InvalidOptionError, memoryTier, redisTier } from '../../src/index.js';
import { openTelemetryMetrics } from '../../src/metrics/opentelemetry.js';
import { redisFixture } from '../helpers/redis-fixture.js';

/** A reader the test pulls from; collect() runs the observable callbacks. */
class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  async metrics(): Promise<Map<string, MetricData>> {
    const { resourceMetrics } = await this.collect();
    const byName = new Map<string, MetricData>();
    for (const scope of resourceMetrics.scopeMetrics)
      for (const metric of scope.metrics) byName.set(metric.descriptor.name, metric);
    return byName;
  }
}

/** The value of the data point whose attributes include `attributes`. */
function point(metric: MetricData | undefined, attributes: Record<string, string>): unknown {
  const found = metric?.dataPoints.find((p) =>
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v),
  );
  return found?.value;
}

const redis = redisFixture();
const { track } = redis;

describe('openTelemetryMetrics', () => {
  it('observes the same counts as stats() and records every remote call in the histogram', async () => {
    const reader = new PullReader();
    const provider = new MeterProvider({ readers: [reader] });
    const cache = createCache({
      tiers: [memoryTier(), redisTier({ client: redis.server.client(), prefix: 'otel:', timeout: '5s' })],
    });
    track(cache);
    const exported = openTelemetryMetrics(cache, {
      meter: provider.getMeter('test'),
      name: 'catalog',
      attributes: { region: 'us' },
    });
    await cache.set('a', 1);
    await cache.get('a'); // L1 hit
    await cache.get('zz'); // L1 miss, Redis miss
    await cache.getOrSet('b', () => 2); // miss, miss, loader
    await cache.delete('a');

    const metrics = await reader.metrics();
    const ops = metrics.get('tiercache.operations');
    expect(ops?.dataPointType).toBe(DataPointType.SUM);
    expect(ops?.dataPointType === DataPointType.SUM && ops.isMonotonic).toBe(true);
    const tier = (name: string, operation: string, result: string) => ({
      cache: 'catalog',
      region: 'us',
      tier: name,
      operation,
      result,
    });
    expect(point(ops, tier('memory', 'get', 'hit'))).toBe(1);
    expect(point(ops, tier('memory', 'get', 'miss'))).toBe(2);
    expect(point(ops, tier('redis', 'get', 'miss'))).toBe(2);
    expect(point(ops, tier('redis', 'set', 'ok'))).toBe(2);
    expect(point(ops, tier('redis', 'delete', 'ok'))).toBe(1);
    expect(point(metrics.get('tiercache.loader.calls'), { cache: 'catalog' })).toBe(1);
    expect(point(metrics.get('tiercache.entries'), { tier: 'memory' })).toBe(1);
    expect(point(metrics.get('tiercache.evictions'), { reason: 'delete' })).toBe(1);
    expect(point(metrics.get('tiercache.hit.ratio'), { tier: 'memory' })).toBeCloseTo(1 / 3);

    const durations = metrics.get('tiercache.operation.duration') as HistogramMetricData;
    expect(durations.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(durations.descriptor.unit).toBe('s');
    const gets = durations.dataPoints.find(
      (p) => p.attributes['tier'] === 'redis' && p.attributes['operation'] === 'get',
    );
    expect(gets?.value.count).toBe(2);
    expect(gets?.value.buckets.boundaries[0]).toBe(0.0001);
    const loader = metrics.get('tiercache.loader.duration') as HistogramMetricData;
    expect(loader.dataPoints[0]?.value.count).toBe(1);

    expect(() => openTelemetryMetrics(cache, { meter: provider.getMeter('test') })).toThrow(
      InvalidOptionError,
    );
    exported.unregister();
    await cache.get('zz');
    const after = await reader.metrics();
    // The callback is gone and no further call is recorded.
    expect(point(after.get('tiercache.operations'), tier('redis', 'get', 'miss'))).not.toBe(3);
    const stillTwo = (
      after.get('tiercache.operation.duration') as HistogramMetricData | undefined
    )?.dataPoints.find((p) => p.attributes['operation'] === 'get');
    expect(stillTwo?.value.count ?? 2).toBe(2);
    await provider.shutdown();
  });

  it('rejects what is not a cache or a meter', () => {
    expect(() => openTelemetryMetrics({})).toThrow(/createCache/);
    const cache = createCache();
    track(cache);
    expect(() => openTelemetryMetrics(cache, { meter: {} as never })).toThrow(/Meter/);
    expect(() => openTelemetryMetrics(cache, { buckets: [2, 1] })).toThrow(/buckets/);
  });
});
