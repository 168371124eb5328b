import { holdsEntry, withoutGenerations } from '../helpers/stored.js';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { keySlot } from '../../src/internal/key-slot.js';
import { clusterFixture } from '../helpers/cluster-fixture.js';
import { startSentinel, type RedisSentinelHandle } from '../helpers/redis-sentinel.js';
import { subscribed } from '../helpers/bus-waits.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

describe('Redis Cluster', () => {
  const fixture = clusterFixture();
  const { caches } = fixture;
  let prefixCounter = 0;

  function instance(client: Cluster = fixture.cluster.client()): { cache: TierCache; prefix: string } {
    const prefix = `c${++prefixCounter}:`;
    const cache = createCache({ tiers: [memoryTier(), redisTier({ client, prefix })] });
    caches.push(cache);
    return { cache, prefix };
  }

  const keys = Array.from({ length: 200 }, (_, i) => `item:${i}`);

  it('caches made and closed on a Cluster client the caller keeps leave no listeners on its nodes', async () => {
    const client = fixture.cluster.client();
    await client.ping();
    const listeners = (): number[] =>
      client.nodes('all').flatMap((node) => ['end', 'error', 'connect'].map((e) => node.listenerCount(e)));
    const before = listeners();
    for (let i = 0; i < 12; i++) {
      const cache = createCache({ tiers: [redisTier({ client, prefix: 'listeners:' })], bus: false });
      await cache.set('k', i);
      await cache.close();
    }
    expect(listeners()).toEqual(before);
    client.disconnect();
  });

  it('spreads the test keys over every master (so the tests below cross slots and nodes)', async () => {
    const masters = new Set(
      await Promise.all(keys.map(async (key) => (await fixture.cluster.masterFor(`c0:${key}`)).port)),
    );
    expect(masters.size).toBe(3);
    expect(new Set(keys.map((key) => keySlot(`c0:${key}`))).size).toBeGreaterThan(100);
  });

  it('setMany and getMany across slots: no CROSSSLOT, one pipeline per master', async () => {
    const client = fixture.cluster.client();
    // A client learns the slot map when it connects; before that each slot goes on its own.
    await client.ping();
    let pipelines = 0;
    const original = client.pipeline.bind(client);
    client.pipeline = (...args: Parameters<Cluster['pipeline']>) => {
      pipelines++;
      return original(...args);
    };
    const { cache: writer } = instance(client);
    await writer.setMany(keys.map((key, i) => ({ key, value: { i } })));
    expect(pipelines).toBe(3);
    pipelines = 0;
    const reader = createCache({ tiers: [redisTier({ client, prefix: `c${prefixCounter}:` })] });
    caches.push(reader);
    expect(await reader.getMany(keys)).toEqual(keys.map((_, i) => ({ i })));
    expect(pipelines).toBe(3);
  });

  it('tags across slots: invalidateTags and tag-time reads never cross a slot', async () => {
    const client = fixture.cluster.client();
    const { cache: writer, prefix } = instance(client);
    const tags = Array.from({ length: 20 }, (_, i) => `tag:${i}`);
    await writer.setMany(keys.slice(0, 20).map((key, i) => ({ key, value: i, tags: [tags[i]!, 'all'] })));
    const reader = createCache({ tiers: [redisTier({ client, prefix })], bus: false });
    caches.push(reader);
    expect(await reader.getMany(keys.slice(0, 20))).toEqual(keys.slice(0, 20).map((_, i) => i));
    await writer.invalidateTags(tags.slice(0, 10));
    // A reader that never saw these tags reads their times from the masters owning them.
    const fresh = createCache({ tiers: [redisTier({ client, prefix })], bus: false });
    caches.push(fresh);
    const values = await fresh.getMany(keys.slice(0, 20));
    expect(values.slice(0, 10)).toEqual(new Array(10).fill(undefined));
    expect(values.slice(10)).toEqual(keys.slice(10, 20).map((_, i) => i + 10));
  });

  it('serves values across instances and deletes across slots', async () => {
    const { cache: a, prefix } = instance();
    const b = createCache({ tiers: [memoryTier(), redisTier({ client: fixture.cluster.client(), prefix })] });
    caches.push(b);
    await a.setMany(keys.slice(0, 50).map((key) => ({ key, value: key })));
    expect(await b.get('item:7')).toBe('item:7');
    expect(await a.deleteMany(keys.slice(0, 50))).toBeGreaterThanOrEqual(50);
    const admin = fixture.cluster.client();
    expect(await holdsEntry(admin, `${prefix}item:7`)).toBe(false);
  });

  it('getManyOrSet loads only what no node had, and writes it across slots', async () => {
    const { cache, prefix } = instance();
    await cache.setMany(keys.slice(0, 10).map((key) => ({ key, value: 'cached' })));
    const other = createCache({ tiers: [redisTier({ client: fixture.cluster.client(), prefix })] });
    caches.push(other);
    const loaded: string[][] = [];
    const values = await other.getManyOrSet(keys.slice(0, 30), async (missing) => {
      loaded.push(missing);
      return missing.map(() => 'loaded');
    });
    expect(values.slice(0, 10).every((v) => v === 'cached')).toBe(true);
    expect(values.slice(10).every((v) => v === 'loaded')).toBe(true);
    expect(loaded).toEqual([keys.slice(10, 30)]);
  });

  it('clear scans every master and removes only this prefix', async () => {
    const { cache, prefix } = instance();
    await cache.setMany(keys.map((key) => ({ key, value: 1 })));
    const admin = fixture.cluster.client();
    await admin.set('{other}:keep', 'x');
    await cache.clear();
    const left = await Promise.all(
      (await fixture.cluster.masters()).map((m) => m.cli('KEYS', `${prefix}*`) as Promise<string[]>),
    );
    expect(withoutGenerations(left.flat())).toEqual([]);
    expect(await admin.get('{other}:keep')).toBe('x');
  });
});

describe('Redis Sentinel', () => {
  let sentinel: RedisSentinelHandle;

  beforeAll(async () => {
    sentinel = await startSentinel();
  }, 60_000);

  afterAll(async () => {
    await sentinel.stop();
  });

  it('works through a Sentinel-configured client and keeps working after a failover', async () => {
    const client = sentinel.client();
    const cache = createCache({ tiers: [memoryTier(), redisTier({ client, prefix: 's:' })] });
    const reader = createCache({ tiers: [redisTier({ client: sentinel.client(), prefix: 's:' })] });
    // Two instances with L1 and the bus (classic pub/sub through the Sentinel-managed master).
    const [a, b] = [0, 1].map(() =>
      createCache({
        tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: sentinel.client(), prefix: 'sb:' })],
      }),
    );
    await subscribed(a!, b!);
    const reconnected = new Promise<void>((resolve) => b!.on('bus:reconnect', () => resolve()));
    await a!.set('k', 1);
    expect(await b!.get('k')).toBe(1);
    await cache.set('before', 1);
    expect(await reader.get('before')).toBe(1);
    await sentinel.failover();
    // The cache degrades (never throws) while the client finds the new master; once it has,
    // writes and reads go through again.
    await waitFor(
      async () => {
        await cache.set('after', 2);
        return (await reader.get('after')) === 2 ? done(true) : notYet('the new master does not answer yet');
      },
      { description: 'cache works through the promoted master', timeoutMs: 20_000 },
    );
    // The bus resubscribed on the new master and dropped b's L1 (messages may have been lost).
    await reconnected;
    expect(b!.stats().memory!.entries).toBe(0);
    await waitFor(
      async () => {
        await a!.set('k', 2);
        return (await b!.get('k')) === 2 ? done(true) : notYet('b does not see the write yet');
      },
      { description: 'the bus to carry writes after the failover', timeoutMs: 20_000 },
    );
    const heard = b!.stats().bus.messagesIn;
    await a!.set('k', 3);
    await waitFor(async () => (b!.stats().bus.messagesIn > heard ? done(true) : notYet('')), {
      description: 'b to hear the write',
    });
    expect(await b!.get('k')).toBe(3);
    await Promise.all([cache.close(), reader.close(), a!.close(), b!.close()]);
  }, 40_000);
});
