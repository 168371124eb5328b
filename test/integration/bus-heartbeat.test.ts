import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCache,
  memoryTier,
  redisTier,
  type BusOptions,
  type CacheError,
  type TierCache,
} from '../../src/index.js';
import { type BusTransport } from '../../src/extend.js';
import { defaultChannel } from '../../src/tiers/redis/coordination.js';
import { RedisPubSubTransport } from '../../src/sync/transport.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { startRedis, type RedisProcess } from '../helpers/redis-server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { until as waitUntil } from '../helpers/wait-for.js';

// Short settings, so outages show within a second; the deadlines below are far longer, for a
// loaded 2-core machine.
const HEARTBEAT: BusOptions = { heartbeat: '100ms', heartbeatTimeout: '300ms', disconnectedTtl: '500ms' };
const DEADLINE_MS = 20_000;

let server: RedisProcess;
let proxy: TcpProxy;
let prefixCounter = 0;
const caches: TierCache[] = [];

beforeAll(async () => {
  server = await startRedis();
  proxy = await startTcpProxy(server);
});

afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
  await proxy.close();
  await server.stop();
});

interface Instance {
  cache: TierCache;
  events: string[];
  errors: CacheError[];
}

/**
 * A cache on `server`; with `subscriberVia`, its bus subscriber alone connects through that
 * proxy, while its L2 reads and its PUBLISHes go straight to Redis.
 */
function instance(prefix: string, bus: BusOptions, subscriberVia?: TcpProxy): Instance {
  const events: string[] = [];
  const errors: CacheError[] = [];
  const client = server.client();
  let transport: BusTransport | undefined;
  if (subscriberVia !== undefined) {
    const viaProxy: Redis = server.client({ host: subscriberVia.host, port: subscriberVia.port });
    transport = splitTransport(client, viaProxy, defaultChannel(prefix));
  }
  const cache = createCache({
    tiers: [memoryTier({ ttl: '1h' }), redisTier({ client, prefix })],
    bus: { ...bus, ...(transport && { transport }) },
    onError: (error) => errors.push(error),
  });
  cache.on('bus:disconnect', (e) => events.push(`disconnect:${e.reason}`));
  cache.on('bus:reconnect', () => events.push('reconnect'));
  caches.push(cache);
  return { cache, events, errors };
}

/** Publishes on `publisher`, subscribes on a duplicate of `subscriber`: the bus's own transport, split. */
function splitTransport(publisher: Redis, subscriber: Redis, channel: string): BusTransport {
  const publishing = new RedisPubSubTransport(publisher, channel);
  const subscribing = new RedisPubSubTransport(subscriber, channel);
  return {
    publish: (message) => publishing.publish(message),
    subscribe: (onMessage, onState) => subscribing.subscribe(onMessage, onState),
    reconnect: () => subscribing.reconnect(),
    close: () => subscribing.close(),
  };
}

const until = (description: string, condition: () => boolean | Promise<boolean>): Promise<void> =>
  waitUntil(description, condition, DEADLINE_MS, 10);

describe('the bus heartbeat on a real Redis', () => {
  it('stops serving an invalidated L1 value when only this instance’s subscriber is silently cut off, and resyncs once it heals', async () => {
    const prefix = `hb${++prefixCounter}:`;
    const writer = instance(prefix, HEARTBEAT);
    const cut = instance(prefix, HEARTBEAT, proxy);
    // The same partition without a heartbeat: today's behaviour, for contrast.
    const blind = instance(prefix, { ...HEARTBEAT, heartbeat: false }, proxy);
    await subscribed(writer.cache, cut.cache, blind.cache);
    await heard([cut.cache, blind.cache], () => writer.cache.set('k', 'v1'));
    expect(await cut.cache.get('k')).toBe('v1');
    expect(await blind.cache.get('k')).toBe('v1');

    proxy.blackhole();
    try {
      await writer.cache.set('k', 'v2');
      const invalidatedAt = Date.now();
      await until('the cut-off instance to stop serving v1', async () => (await cut.cache.get('k')) === 'v2');
      const staleFor = Date.now() - invalidatedAt;
      expect(cut.events).toContain('disconnect:heartbeat');
      expect(cut.cache.stats().bus.subscribed).toBe(false);
      // heartbeatTimeout + disconnectedTtl = 800 ms, plus slack for timers on a loaded machine.
      expect(staleFor).toBeLessThan(800 + 4_000);
      // Without a heartbeat the open socket is trusted: the invalidated value is still served.
      expect(await blind.cache.get('k')).toBe('v1');
      expect(blind.events).toEqual([]);
      expect(blind.cache.stats().bus.subscribed).toBe(true);
      // Redis itself is fine: the writer (heartbeat on) is subscribed.
      await until('the writer to be subscribed', () => writer.cache.stats().bus.subscribed);
    } finally {
      proxy.heal();
    }

    await until('the cut-off instance to hear its heartbeat again', () => cut.cache.stats().bus.subscribed);
    expect(cut.events.at(-1)).toBe('reconnect');
    // Resynced: L1 was dropped.
    expect(cut.cache.stats().memory!.entries).toBe(0);
    // Converged: it hears invalidations again.
    expect(await cut.cache.get('k')).toBe('v2');
    await heard([cut.cache], () => writer.cache.set('k', 'v3'));
    expect(await cut.cache.get('k')).toBe('v3');
    // The blind instance got the held invalidation once the partition healed.
    await until('the blind instance to converge', async () => (await blind.cache.get('k')) === 'v3');
    expect(cut.cache.stats().bus.heartbeatErrors).toBe(0);
    expect(cut.errors).toEqual([]);
  });

  it('reconnects a subscriber whose open connection went silent, and hears invalidations again without the old one healing', async () => {
    const prefix = `hb${++prefixCounter}:`;
    const writer = instance(prefix, HEARTBEAT);
    const cut = instance(prefix, HEARTBEAT, proxy);
    await subscribed(writer.cache, cut.cache);
    await heard([cut.cache], () => writer.cache.set('k', 'v1'));
    expect(await cut.cache.get('k')).toBe('v1');
    const accepted = proxy.accepted;
    // Only the connection open now is cut off; a new one gets through.
    proxy.blackhole('open');
    try {
      await writer.cache.set('k', 'v2');
      await until('the cut-off instance to notice and resubscribe', () => cut.events.includes('reconnect'));
      expect(cut.events).toEqual(['disconnect:heartbeat', 'reconnect']);
      expect(proxy.accepted).toBeGreaterThan(accepted);
      expect(await cut.cache.get('k')).toBe('v2');
      await heard([cut.cache], () => writer.cache.set('k', 'v3'));
      expect(await cut.cache.get('k')).toBe('v3');
      expect(cut.errors).toEqual([]);
    } finally {
      proxy.heal();
    }
  });

  it('reports a heartbeat outage on every instance while Redis is paused, and recovers after it resumes', async () => {
    const prefix = `hb${++prefixCounter}:`;
    const all = [instance(prefix, HEARTBEAT), instance(prefix, HEARTBEAT), instance(prefix, HEARTBEAT)];
    const [a, b] = all;
    await subscribed(...all.map((i) => i.cache));
    await heard([b!.cache], () => a!.cache.set('k', 1));
    expect(await b!.cache.get('k')).toBe(1);

    await server.pause();
    try {
      await until('every instance to miss its heartbeat', () =>
        all.every((i) => i.events.includes('disconnect:heartbeat')),
      );
      for (const i of all) expect(i.cache.stats().bus.subscribed).toBe(false);
      // Paused past a heartbeat's publishTimeout too, so every instance sees one fail.
      await until('a heartbeat PUBLISH to fail on every instance', () =>
        all.every((i) => i.cache.stats().bus.heartbeatErrors > 0),
      );
    } finally {
      await server.resume();
    }

    await until('every instance to hear its heartbeat again', () =>
      all.every((i) => i.cache.stats().bus.subscribed),
    );
    for (const i of all) {
      expect(i.events).toContain('disconnect:heartbeat');
      expect(i.events).not.toContain('disconnect:connection');
      expect(i.events.at(-1)).toBe('reconnect');
      // One report for the whole outage, however many heartbeats failed.
      const reports = i.errors.filter((e) => e.code === 'E_BUS' && e.message.includes('heartbeat'));
      expect(reports).toHaveLength(1);
      // Heartbeats are never queued for retry.
      expect(i.cache.stats().bus.queued).toBe(0);
    }
    // Nothing was invalidated meanwhile: the replay log says so, and L1 is kept.
    expect(b!.cache.stats().memory!.entries).toBe(1);
    expect(b!.cache.stats().bus.replays).toBeGreaterThanOrEqual(1);
    await heard([b!.cache], () => a!.cache.set('k', 2));
    expect(await b!.cache.get('k')).toBe(2);
  });
});
