import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, InvalidOptionError, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { prometheusMetrics } from '../../src/metrics/prometheus.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';

let server: RedisProcess;
const caches: TierCache[] = [];
let prefixCounter = 0;

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await stopAllRedis();
});

function twoTierCache(client = server.client()): TierCache {
  const cache = createCache({
    tiers: [
      memoryTier({ maxEntries: 2, policy: 'lru' }),
      // A generous timeout: a loaded machine must not turn a slow reply into a counted error.
      redisTier({ client, prefix: `prom${++prefixCounter}:`, timeout: '3s' }),
    ],
  });
  caches.push(cache);
  return cache;
}

/** The value of the one sample line starting with `series` (name plus labels). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('prometheusMetrics', () => {
  it('exports exact counts after a known script of operations', async () => {
    const registry = new Registry();
    const cache = twoTierCache();
    prometheusMetrics(cache, { registry, name: 'catalog', labels: { service: 'api' } });

    await cache.set('a', 1); // both tiers: set
    await cache.set('b', 2); // both tiers: set
    await cache.get('a'); // L1 hit
    await cache.get('zz'); // L1 miss, Redis miss
    await cache.getOrSet('c', () => 3); // L1 miss, Redis miss, loader; L1 evicts b (LRU)
    await cache.get('b'); // L1 miss, Redis hit, promoted to L1 (evicts a)
    await cache.delete('c'); // both tiers: delete
    await cache.getOrSet('d', () => Promise.reject(new Error('origin down'))).catch(() => {});

    const text = await registry.metrics();
    const l = (labels: string) => `{cache="catalog",service="api",${labels}}`;
    const expected: [string, number][] = [
      [`tiercache_operations_total${l('tier="memory",operation="get",result="hit"')}`, 1],
      [`tiercache_operations_total${l('tier="memory",operation="get",result="miss"')}`, 4],
      [`tiercache_operations_total${l('tier="memory",operation="set",result="ok"')}`, 3],
      [`tiercache_operations_total${l('tier="memory",operation="delete",result="ok"')}`, 1],
      [`tiercache_operations_total${l('tier="redis",operation="get",result="hit"')}`, 1],
      [`tiercache_operations_total${l('tier="redis",operation="get",result="miss"')}`, 3],
      [`tiercache_operations_total${l('tier="redis",operation="set",result="ok"')}`, 3],
      [`tiercache_operations_total${l('tier="redis",operation="delete",result="ok"')}`, 1],
      [`tiercache_hits_total${l('tier="redis"')}`, 1],
      [`tiercache_misses_total${l('tier="memory"')}`, 4],
      [`tiercache_hit_ratio${l('tier="redis"')}`, 0.25],
      [`tiercache_evictions_total${l('tier="memory",reason="evict"')}`, 2],
      [`tiercache_evictions_total${l('tier="memory",reason="delete"')}`, 1],
      [`tiercache_entries${l('tier="memory"')}`, 1],
      [`tiercache_bytes${l('tier="memory"')}`, 1],
      [`tiercache_loader_calls_total{cache="catalog",service="api"}`, 2],
      [`tiercache_loader_errors_total{cache="catalog",service="api"}`, 1],
      [`tiercache_loader_duration_seconds_count{cache="catalog",service="api"}`, 2],
      [`tiercache_bus_messages_in_total{cache="catalog",service="api"}`, 0],
      [`tiercache_stale_served_total{cache="catalog",service="api"}`, 0],
      // One Redis GET per single-key miss below L1 (zz, c, b, d), one SET pipeline per write.
      [`tiercache_operation_duration_seconds_count${l('tier="redis",operation="get"')}`, 4],
      [`tiercache_operation_duration_seconds_bucket${l('tier="redis",operation="get",le="+Inf"')}`, 4],
      [`tiercache_operation_duration_seconds_count${l('tier="redis",operation="set"')}`, 3],
      [`tiercache_operation_duration_seconds_count${l('tier="redis",operation="delete"')}`, 1],
    ];
    for (const [series, value] of expected) expect([series, sample(text, series)]).toEqual([series, value]);
    expect(text).toContain('# TYPE tiercache_operation_duration_seconds histogram');
    expect(text).toContain('# TYPE tiercache_operations_total counter');
    // Buckets are cumulative: each is at least the one before, and the last is the count.
    const buckets = text
      .split('\n')
      .filter((line) =>
        line.startsWith(
          `tiercache_operation_duration_seconds_bucket{cache="catalog",service="api",tier="redis",operation="get",le=`,
        ),
      )
      .map((line) => Number(line.split(' ')[1]));
    expect(buckets).toHaveLength(17);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
  });

  it('labels errors by the failed operation once a tier is down', async () => {
    const own = await startRedis();
    const registry = new Registry();
    const cache = twoTierCache(own.client({ enableOfflineQueue: false, maxRetriesPerRequest: 0 }));
    prometheusMetrics(cache, { registry, prefix: 'app_cache_' });
    await own.kill();
    expect(await cache.getOrSet('k', () => 1)).toBe(1); // get fails, loader, set fails
    await cache.delete('k');
    const text = await registry.metrics();
    const l = (labels: string) => `{cache="default",tier="redis",${labels}}`;
    expect(sample(text, `app_cache_operations_total${l('operation="get",result="error"')}`)).toBe(1);
    expect(sample(text, `app_cache_operations_total${l('operation="set",result="error"')}`)).toBe(1);
    expect(sample(text, `app_cache_operations_total${l('operation="delete",result="error"')}`)).toBe(1);
    expect(sample(text, `app_cache_operation_duration_seconds_count${l('operation="get"')}`)).toBe(1);
    // The tier's breaker is in exactly one state.
    const states = ['closed', 'open', 'half-open'].map((state) =>
      sample(text, `app_cache_breaker_state{cache="default",tier="redis",state="${state}"}`),
    );
    expect(states.reduce((sum, v) => sum! + v!, 0)).toBe(1);
    expect(sample(text, 'app_cache_timeouts_total{cache="default",tier="redis"}')).toBe(0);
  });

  it('puts several caches on one registry apart by the cache label, and unregisters them', async () => {
    const registry = new Registry();
    const users = createCache();
    const orders = createCache();
    caches.push(users, orders);
    const first = prometheusMetrics(users, { registry, name: 'users' });
    const second = prometheusMetrics(orders, { registry, name: 'orders' });
    expect(() => prometheusMetrics(createCache(), { registry, name: 'users' })).toThrow(/named "users"/);
    await users.getOrSet('u', () => 1);
    await orders.getOrSet('o1', () => 1);
    await orders.getOrSet('o2', () => 1);
    let text = await registry.metrics();
    expect(sample(text, 'tiercache_loader_calls_total{cache="users"}')).toBe(1);
    expect(sample(text, 'tiercache_loader_calls_total{cache="orders"}')).toBe(2);
    first.unregister();
    text = await registry.metrics();
    expect(sample(text, 'tiercache_loader_calls_total{cache="users"}')).toBeUndefined();
    expect(sample(text, 'tiercache_loader_calls_total{cache="orders"}')).toBe(2);
    second.unregister();
    expect(await registry.metrics()).not.toContain('tiercache_');
    // The names are free again.
    prometheusMetrics(users, { registry, name: 'users' });
    expect(await registry.metrics()).toContain('tiercache_loader_calls_total{cache="users"} 1');
  });

  it('registers on the default registry when none is given', async () => {
    const { register } = await import('prom-client');
    const cache = createCache();
    caches.push(cache);
    const exported = prometheusMetrics(cache, { prefix: 'default_reg_' });
    try {
      expect(await register.metrics()).toContain('default_reg_entries{cache="default",tier="memory"} 0');
    } finally {
      exported.unregister();
    }
  });

  it('rejects bad options naming the option', () => {
    const cache = createCache();
    caches.push(cache);
    const registry = new Registry();
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return error instanceof InvalidOptionError ? error.option : String(error);
      }
      return 'no error';
    };
    expect(code(() => prometheusMetrics({}, { registry }))).toBe('cache');
    expect(code(() => prometheusMetrics(cache, { registry, prefix: '9bad' }))).toBe('prefix');
    expect(code(() => prometheusMetrics(cache, { registry, labels: { tier: 'x' } }))).toBe('labels.tier');
    expect(code(() => prometheusMetrics(cache, { registry, buckets: [1, 0.5] }))).toBe('buckets');
    expect(code(() => prometheusMetrics(cache, { registry: {} as Registry }))).toBe('registry');
  });
});
