/**
 * The replay log: after an outage a subscriber reads what it missed from the log and keeps the
 * rest of its L1; it drops L1 only when its place in the log is gone (trimmed, or lost with a
 * restarted Redis); older peers without a log keep working both ways.
 */
import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { RedisPubSubTransport } from '../../src/sync/transport.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { startRedis } from '../helpers/redis-server.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { until } from '../helpers/wait-for.js';

const redis = redisFixture();
const { instance } = redis;
let prefixCounter = 0;
const DEADLINE_MS = 20_000;

/** The reconnect events of `cache`, as 'replayed' or 'dropped'. */
function reconnects(cache: TierCache): string[] {
  const seen: string[] = [];
  cache.on('bus:reconnect', (e) => seen.push(e.replayed ? 'replayed' : 'dropped'));
  return seen;
}

async function fill(writer: TierCache, reader: TierCache, count: number): Promise<void> {
  await heard([reader], () =>
    writer.setMany(Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: 'v0' }))),
  );
  // A big setMany goes out as several messages: read until the last one has arrived too.
  await until('the reader to hold every key', async () => {
    for (let i = 0; i < count; i++) await reader.get(`k${i}`);
    return reader.stats().memory!.entries === count;
  });
}

describe('replay after an outage', () => {
  it('CLIENT KILL while another instance rewrites keys: the rewrites are replayed, the other L1 entries stay, nothing stale is read', async () => {
    const prefix = `rp${++prefixCounter}:`;
    const a = instance(prefix);
    const b = instance(prefix, { bus: { disconnectedTtl: 50 } });
    await subscribed(a, b);
    await fill(a, b, 1_000);
    const events = reconnects(b);
    const rewritten = Array.from({ length: 10 }, (_, i) => `k${i}`);
    expect(await redis.server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBeGreaterThanOrEqual(2);
    // Rewrites of 10 keys go on until b is back, so some land while it cannot hear them.
    const from = Date.now();
    for (let n = 1; events.length === 0 && Date.now() - from < DEADLINE_MS; n++) {
      const key = `k${n % 10}`;
      await a.set(key, `v${n}`);
    }
    expect(events).toEqual(['replayed']);
    const bus = b.stats().bus;
    expect(bus.replays).toBe(1);
    expect(bus.replayed).toBeGreaterThan(0);
    expect(bus.logLosses).toBe(0);
    // The 10 rewritten once more, heard live: none of them is left in b's L1, the rest are.
    await heard([b], () => a.setMany(rewritten.map((key) => ({ key, value: 'final' }))));
    expect(b.stats().memory!.entries).toBe(990);
    for (const key of rewritten) expect(await b.get(key)).toBe('final');
    // The 990 others are still in L1, with their full lives (past the 50 ms disconnected cap).
    await new Promise((resolve) => setTimeout(resolve, 60));
    const redisHits = b.stats().tiers[1]!.hits;
    for (let i = 10; i < 1_000; i++) expect(await b.get(`k${i}`)).toBe('v0');
    expect(b.stats().tiers[1]!.hits).toBe(redisHits);
  });

  it('a log trimmed past the subscriber’s place: L1 is dropped, as without a log', async () => {
    const prefix = `rt${++prefixCounter}:`;
    const proxy = await startTcpProxy(redis.server);
    try {
      const channel = `tiercache:bus:${prefix}`;
      const a = instance(prefix);
      // b's bus (subscriber, heartbeats and log reads) goes through the proxy.
      const viaProxy = redis.server.client({ host: proxy.host, port: proxy.port });
      const b = redis.track(
        createCache({
          tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: redis.server.client(), prefix })],
          bus: {
            transport: new RedisPubSubTransport(viaProxy, channel, 10_000),
            heartbeat: '100ms',
            heartbeatTimeout: '300ms',
          },
        }),
      );
      await subscribed(a, b);
      await fill(a, b, 20);
      const events = reconnects(b);
      const outages: string[] = [];
      b.on('bus:disconnect', (e) => outages.push(e.reason));
      proxy.blackhole();
      await until('b to notice the silence', () => outages.length > 0);
      await a.set('k0', 'v1');
      // Trimmed to nothing: b's place is gone.
      await redis.server.cli('XTRIM', `${channel}:log`, 'MAXLEN', '0');
      proxy.heal();
      await until('b to be back', () => events.length > 0);
      expect(events).toEqual(['dropped']);
      expect(b.stats().bus.logLosses).toBeGreaterThanOrEqual(1);
      expect(b.stats().memory!.entries).toBe(0);
      expect(await b.get('k0')).toBe('v1');
      // The log goes on from the trimmed stream: the next outage replays again.
      await heard([b], () => a.set('k1', 'v1'));
      expect(await b.get('k1')).toBe('v1');
    } finally {
      await proxy.close();
    }
  });

  it('a restarted Redis lost the log: L1 is dropped (kept for fail-safe alone), and replay works again on the new log', async () => {
    const own = await startRedis();
    const prefix = `rr${++prefixCounter}:`;
    const [a, b] = [instance(prefix, { failSafe: true }, own), instance(prefix, { failSafe: true }, own)];
    await subscribed(a, b);
    await fill(a, b, 20);
    const events = reconnects(b);
    await own.kill();
    await own.restart();
    await until('b to be back', () => events.length > 0);
    expect(events).toEqual(['dropped']);
    expect(b.stats().bus.logLosses).toBeGreaterThanOrEqual(1);
    expect(b.stats().memory!.entries).toBe(0);
    // Gone as hits, but with Redis emptied and the origin failing too, b answers with the last
    // value it saw rather than an error.
    expect(await b.getOrSet('k2', () => Promise.reject(new Error('origin down')))).toBe('v0');
    await subscribed(a, b);
    await heard([b], () => a.set('k0', 'v1'));
    expect(await b.get('k0')).toBe('v1');
    expect(await b.get('k1')).toBeUndefined(); // Redis lost it too
    // On the new log a short outage is replayed again.
    await b.set('k1', 'v1');
    await own.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await until('b to be back again', () => events.length > 1);
    expect(events[1]).toBe('replayed');
    expect(await b.get('k1')).toBe('v1');
  });
});

describe('a rolling upgrade', () => {
  it('an older peer (no log, heartbeats on the shared channel) and this version hear each other, and an outage then drops L1', async () => {
    const prefix = `old${++prefixCounter}:`;
    const channel = `tiercache:bus:${prefix}`;
    const b = instance(prefix);
    await subscribed(b);
    const events = reconnects(b);
    // The older peer: a plain subscriber and publisher of format 1 without "x".
    const heardByOld: Record<string, unknown>[] = [];
    const oldSubscriber = redis.server.client();
    oldSubscriber.on('message', (_channel: string, payload: string) =>
      heardByOld.push(JSON.parse(payload) as Record<string, unknown>),
    );
    await oldSubscriber.subscribe(channel);
    const old = redis.server.client();
    try {
      await b.set('k', 'v1');
      await until('the older peer to hear b', () => heardByOld.some((m) => m['k'] !== undefined));
      const message = heardByOld.find((m) => m['k'] !== undefined)!;
      // What an older reader checks: version 1, a publisher id, a sequence number, the keys.
      expect(message).toMatchObject({ v: 1, q: 1, k: ['k'] });
      expect(typeof message['i']).toBe('string');
      // b applies the older peer's invalidations (and heartbeat), numbered on their own.
      await old.publish(channel, JSON.stringify({ v: 1, i: 'old-peer', q: 1, h: 5 }));
      const before = b.stats().bus.messagesIn;
      await old.publish(channel, JSON.stringify({ v: 1, i: 'old-peer', q: 2, k: ['k'] }));
      await until('b to drop k', () => b.stats().bus.messagesIn > before);
      expect(b.stats().memory!.entries).toBe(0);
      expect(b.stats().bus.gaps).toBe(0);
      // The older peer's messages are in no log: an outage now costs L1, as before.
      await b.get('k');
      await redis.server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await until('b to be back', () => events.length > 0);
      expect(events).toEqual(['dropped']);
      expect(b.stats().memory!.entries).toBe(0);
    } finally {
      oldSubscriber.disconnect();
      old.disconnect();
    }
  });
});

describe('a log Redis refuses to append to', () => {
  it('never stops an invalidation: it goes out without the log, reported once (issue 19 rerun: one SET or XADD on the log key stopped every one for good)', async () => {
    const forgeries: [string, (log: string) => Promise<unknown>][] = [
      ['a string at the log key', (log) => redis.server.cli('SET', log, 'x')],
      ['a hash at the log key', (log) => redis.server.cli('HSET', log, 'm', 'x')],
      [
        'an entry id past what Lua and readers can count',
        (log) => redis.server.cli('XADD', log, '12345678901234567-1', 'm', ''),
      ],
      [
        'the greatest entry id',
        (log) => redis.server.cli('XADD', log, '18446744073709551615-18446744073709551615', 'm', ''),
      ],
    ];
    for (const [what, forge] of forgeries) {
      const prefix = `rf${++prefixCounter}:`;
      const log = `tiercache:bus:${prefix}:log`;
      const errors: string[] = [];
      const a = instance(prefix, { onError: (e) => errors.push(e.message) });
      const b = instance(prefix);
      await subscribed(a, b);
      await heard([b], () => a.set('k', 0));
      expect(await b.get('k')).toBe(0);
      await redis.server.cli('DEL', log);
      await forge(log);
      for (const value of [1, 2, 3]) {
        await a.set('k', value);
        await until(`${what}: the other instance to read ${value}`, async () => (await b.get('k')) === value);
      }
      expect([what, a.stats().bus.publishErrors, b.stats().bus.invalid]).toEqual([what, 0, 0]);
      const reports = errors.filter((message) => message.includes(`the replay log "${log}" refused`));
      expect([what, reports.length]).toEqual([what, 1]);
    }
  });
});
