import { afterAll, describe, expect, it } from 'vitest';
import { performance } from 'node:perf_hooks';
import {
  BusError,
  createCache,
  createInvalidator,
  memoryTier,
  redisTier,
  type CacheError,
  type CacheOptions,
  type TierCache,
} from '../../src/index.js';
import { keySlot } from '../../src/internal/key-slot.js';
import { shardChannels } from '../../src/sync/sharded-transport.js';
import { clusterBackend } from '../helpers/backends.js';
import { subscribed } from '../helpers/bus-waits.js';
import { holdsEntry } from '../helpers/stored.js';
import { done, notYet, until, waitFor } from '../helpers/wait-for.js';
import { busSuite } from '../integration/suites/bus-suite.js';

// The single-server bus suite, on a three-master cluster with sharded pub/sub (the default for
// a Cluster client); the tests below reuse the same cluster.
const backend = clusterBackend();
busSuite(backend);

const caches: TierCache[] = [];
afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
});

function instance(prefix: string, bus: CacheOptions['bus'] = {}): TierCache {
  const cache = createCache({
    tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: backend.client(), prefix })],
    bus,
  });
  caches.push(cache);
  return cache;
}

describe('the bus on Redis Cluster', () => {
  it('spreads the shard channels over every master and sends SPUBLISH, not cluster-wide PUBLISH', async () => {
    const masters = await backend.cluster().masters();
    const served = await Promise.all(
      shardChannels('tiercache:bus:spread:', 16).map(async (channel) => {
        const slot = keySlot(channel);
        const owner = await backend.cluster().masterFor(channel);
        return { slot, port: owner.port };
      }),
    );
    expect(new Set(served.map((s) => s.port)).size).toBe(masters.length);

    const [a, b] = [instance('spread:'), instance('spread:')];
    await subscribed(a, b);
    const [spublish, publish] = [
      await backend.commandCalls('spublish'),
      await backend.commandCalls('publish'),
    ];
    await a.set('k', 1);
    expect(await b.get('k')).toBe(1);
    await a.set('k', 2);
    await until('b to drop k', () => b.stats().bus.messagesIn >= 2);
    expect(await b.get('k')).toBe(2);
    expect(await backend.commandCalls('spublish')).toBeGreaterThan(spublish);
    expect(await backend.commandCalls('publish')).toBe(publish);
  });

  it('runs on classic pub/sub when asked', async () => {
    const [a, b] = [instance('classic:', { pubsub: 'classic' }), instance('classic:', { pubsub: 'classic' })];
    await subscribed(a, b);
    const publish = await backend.commandCalls('publish');
    await a.set('k', 1);
    expect(await b.get('k')).toBe(1);
    await a.set('k', 2);
    await until('b to hear the write', () => b.stats().bus.messagesIn >= 2);
    expect(await b.get('k')).toBe(2);
    expect(await backend.commandCalls('publish')).toBeGreaterThan(publish);
  });

  it('createInvalidator on a Cluster client reaches the caches over sharded pub/sub', async () => {
    const [a, b] = [instance('inv:'), instance('inv:')];
    await subscribed(a, b);
    await a.set('k', 1);
    expect(await b.get('k')).toBe(1);
    const invalidator = createInvalidator({ redis: backend.client(), prefix: 'inv:' });
    await invalidator.delete('k');
    await until('b to drop k', () => b.stats().bus.messagesIn >= 2);
    expect(await b.get('k')).toBeUndefined();
    // The delete leaves a tombstone under the key (fill leases), never the old entry.
    expect(await holdsEntry(backend.admin(), 'inv:k')).toBe(false);
    await invalidator.close();
  });

  it('distributed single flight works on the cluster: one loader call for a cold key across instances', async () => {
    const all = [0, 1, 2].map(() => {
      const cache = createCache({
        tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: backend.client(), prefix: 'lock:' })],
        lock: { timeout: '5s', wait: '10s' },
      });
      caches.push(cache);
      return cache;
    });
    let calls = 0;
    const loader = async () => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 300));
      return 'v';
    };
    // Keys on every master: the lock key lives in the same slot as nothing else it needs.
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    const values = await Promise.all(all.flatMap((cache) => keys.map((key) => cache.getOrSet(key, loader))));
    expect(values.every((v) => v === 'v')).toBe(true);
    expect(calls).toBe(keys.length);
  });

  it('sends its heartbeats on private channels, one in each shard channel’s slot, none on the shared ones, and hears them all back', async () => {
    const channels = shardChannels('tiercache:bus:hb:', 16);
    let shared = 0;
    // A listener per shard channel, on the master that owns it: another instance would hear
    // what arrives there.
    const spies = await Promise.all(
      channels.map(async (channel) => {
        const spy = (await backend.cluster().masterFor(channel)).client();
        spy.on('smessage', (_from: string, payload: string) => {
          if ((JSON.parse(payload) as { h?: number }).h !== undefined) shared++;
        });
        await spy.ssubscribe(channel);
        return spy;
      }),
    );
    try {
      const a = instance('hb:', { heartbeat: '100ms', heartbeatTimeout: '300ms' });
      await subscribed(a);
      // Each private channel lives on the master of its shard channel (the same hash tag).
      for (const channel of channels) {
        const master = await backend.cluster().masterFor(channel);
        const own = (await master.cli('PUBSUB', 'SHARDCHANNELS', `${channel}:hb:*`)) as string[];
        expect(own).toHaveLength(1);
        expect(keySlot(own[0]!)).toBe(keySlot(channel));
      }
      // Ten heartbeat timeouts: every private channel's heartbeats come back, none go astray.
      const from = performance.now();
      await until('3 s of heartbeats', () => performance.now() - from > 3_000, 20_000);
      expect(shared).toBe(0);
      expect(a.stats().bus.subscribed).toBe(true);
      expect(a.stats().bus.heartbeatErrors).toBe(0);
      expect(a.stats().bus.disconnects).toBe(0);
    } finally {
      for (const spy of spies) spy.disconnect();
    }
  });

  // Last in the file: it leaves one shard without a replica.
  it('an SSUBSCRIBE the ACL refuses is reported as a BusError naming the channel and NOPERM, and retried until allowed', async () => {
    const prefix = 'aclc:';
    const nodes = backend.cluster().nodes.filter((node) => node.state === 'running');
    const acl = (...rules: string[]) =>
      Promise.all(nodes.map((node) => node.cli('ACL', 'SETUSER', 'nosub', ...rules)));
    await acl('on', '>pw', '~*', 'resetchannels', '&other', '+@all');
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [
        memoryTier({ ttl: '1h' }),
        redisTier({
          client: backend.cluster().client({ redisOptions: { username: 'nosub', password: 'pw' } }),
          prefix,
        }),
      ],
      onError: (error) => errors.push(error),
    });
    caches.push(cache);
    const refusal = await waitFor(
      async () => {
        const found = errors.find((e) => e instanceof BusError && e.operation === 'subscribe');
        return found === undefined
          ? notYet(errors.map((e) => e.message).join('; '))
          : done(found as BusError);
      },
      { description: 'the refused SSUBSCRIBE to be reported', timeoutMs: 10_000 },
    );
    expect(shardChannels(`tiercache:bus:${prefix}`, 16)).toContain(refusal.channel);
    expect(refusal.message).toContain(`on channel "${refusal.channel}"`);
    expect(refusal.message).toContain('NOPERM');
    expect(cache.stats().bus.subscribed).toBe(false);
    // Once the ACL allows the channels, a retry subscribes.
    await acl(`&tiercache:bus:${prefix}*`);
    await until('the bus to subscribe', () => cache.stats().bus.subscribed, 15_000);
  });

  it('resubscribes on the promoted replica when the channel’s master dies, and replays the outage from the log there', async () => {
    // One shard channel, so the test knows which master carries every message.
    const bus = { shardChannels: 1 };
    const channel = shardChannels('tiercache:bus:fo:', 1)[0]!;
    const [a, b] = [instance('fo:', bus), instance('fo:', bus)];
    await subscribed(a, b);
    const events: string[] = [];
    b.on('bus:disconnect', () => events.push('disconnect'));
    let replayed: boolean | undefined;
    b.on('bus:reconnect', (e) => {
      events.push('reconnect');
      replayed = e.replayed;
    });
    let dropped = 0;
    b.on('remove', (e) => {
      if (e.reason === 'invalidate') dropped++;
    });
    await a.set('k', 1);
    await a.set('other', 1);
    expect(await b.get('k')).toBe(1);
    expect(await b.get('other')).toBe(1);

    const victim = await backend.cluster().masterFor(channel);
    await backend.cluster().failover(victim);
    await until('b to resubscribe', () => events.includes('reconnect'), 20_000);
    expect(events[0]).toBe('disconnect');
    // The replay log moved to the promoted replica with the slot: b read it and kept its L1
    // copies, or, if the log's tail had not replicated yet, b's place is gone and L1 was dropped.
    if (replayed === true) expect(b.stats().memory!.entries).toBe(2);
    else {
      expect(dropped).toBeGreaterThanOrEqual(2);
      expect(b.stats().memory!.entries).toBe(0);
    }
    await subscribed(a);

    // Messages flow again, through the promoted replica.
    expect(await b.get('k')).toBe(1);
    const heard = b.stats().bus.messagesIn;
    await a.set('k', 2);
    await until('b to hear the write after the failover', () => b.stats().bus.messagesIn > heard);
    expect(await b.get('k')).toBe(2);
  });
});

describe('namespaces and tags on a cluster', () => {
  it('namespace.clear() reaches every instance, and a new instance reads the version from the cluster', async () => {
    const a = instance('nsc:');
    const b = instance('nsc:');
    await subscribed(a, b);
    await a.namespace('products').set('1', 'old');
    expect(await b.namespace('products').get('1')).toBe('old'); // now in b's L1
    await a.namespace('products').clear();
    await waitFor(
      async () =>
        (await b.namespace('products').get('1')) === undefined
          ? done(undefined)
          : notYet('b still serves it'),
      { description: "b to drop the namespace's entries", timeoutMs: 10_000, intervalMs: 10 },
    );
    expect(await instance('nsc:').namespace('products').get('1')).toBeUndefined();
    await a.namespace('products').set('1', 'new');
    expect(await instance('nsc:').namespace('products').get('1')).toBe('new');
  });

  it('invalidateTags drops tagged entries on every instance, leaves others, and a new instance sees the tag time', async () => {
    const a = instance('tagc:');
    const b = instance('tagc:');
    await subscribed(a, b);
    // Keys and tags spread over the slots, so tag times live on several masters.
    const keys = Array.from({ length: 30 }, (_, i) => `product:${i}`);
    await a.setMany(
      keys.map((key, i) => ({ key, value: i, tags: [`p:${i}`, i % 2 === 0 ? 'even' : 'odd'] })),
    );
    expect(await b.getMany(keys)).toEqual(keys.map((_, i) => i)); // b's L1 holds them all
    await a.invalidateTags(['even']);
    await waitFor(
      async () => {
        const values = await b.getMany<number>(keys);
        return values.every((v, i) => (i % 2 === 0 ? v === undefined : v === i))
          ? done(undefined)
          : notYet(values.join());
      },
      { description: 'b to drop exactly the even entries', timeoutMs: 10_000, intervalMs: 10 },
    );
    const fresh = instance('tagc:');
    const values = await fresh.getMany<number>(keys);
    expect(values).toEqual(keys.map((_, i) => (i % 2 === 0 ? undefined : i)));
  });
});
