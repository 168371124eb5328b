import { describe, expect, it } from 'vitest';
import { createInvalidator, type TierCache } from '../../src/index.js';
import { escapeGlob } from '../../src/tiers/redis/redis-tier.js';
import { singleBackend } from '../helpers/backends.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { startRedis } from '../helpers/redis-server.js';
import { busSuite } from './suites/bus-suite.js';
import { waitFor, done, notYet, until } from '../helpers/wait-for.js';
import { heard, subscribed } from '../helpers/bus-waits.js';

const redis = redisFixture();
const { instance } = redis;
let prefixCounter = 0;

// The tests every backend runs (test/cluster runs them on a cluster).
busSuite(singleBackend());

describe('deleteByPattern, writeAround and the publish-only invalidator', () => {
  it('deleteByPattern removes matching keys from Redis by SCAN and from every L1, nothing else', async () => {
    const prefix = `pat${++prefixCounter}:`;
    const [a, b] = [instance(prefix), instance(prefix)];
    await subscribed(a, b);
    await heard([b], () =>
      a.setMany([
        { key: 'user:1', value: 1 },
        { key: 'user:2', value: 2 },
        { key: 'user*:x', value: 3 },
        { key: 'order:1', value: 4 },
      ]),
    );
    for (const key of ['user:1', 'user:2', 'user*:x', 'order:1']) await b.get(key);
    expect(b.stats().memory!.entries).toBe(4);
    await heard([b], () => a.deleteByPattern(`${escapeGlob('user*')}:*`));
    expect(await redis.server.cli('EXISTS', `${prefix}user*:x`)).toBe(0);
    expect(await b.get('user*:x')).toBeUndefined();
    expect(b.stats().memory!.entries).toBe(3);
    expect(await heardCount(b, () => a.deleteByPattern('user:*'))).toBe(1);
    expect(await b.get('user:1')).toBeUndefined();
    expect(await b.get('order:1')).toBe(4);
    expect(await redis.server.cli('EXISTS', `${prefix}order:1`)).toBe(1);
    expect(b.stats().tiers[0]!.hits).toBeGreaterThan(0);
  });

  it('writeAround runs the origin write, then invalidates the key everywhere', async () => {
    const prefix = `wa${++prefixCounter}:`;
    const [a, b] = [instance(prefix), instance(prefix)];
    await subscribed(a, b);
    let origin = 'v1';
    await heard([b], () => a.set('row', origin));
    expect(await b.getOrSet('row', () => origin)).toBe('v1');
    const result = await a.writeAround('row', () => {
      origin = 'v2';
      return 'written';
    });
    expect(result).toBe('written');
    await waitFor(
      async () => ((await b.getOrSet('row', () => origin)) === 'v2' ? done(undefined) : notYet('old')),
      {
        description: 'b to load v2',
        intervalMs: 5,
      },
    );
    await expect(a.writeAround('row', () => Promise.reject(new Error('origin down')))).rejects.toThrow(
      'origin down',
    );
    expect(await a.get('row')).toBe('v2');
  });

  it('createInvalidator deletes from Redis and makes every instance drop its L1 copy', async () => {
    const prefix = `inv${++prefixCounter}:`;
    const [a, b] = [instance(prefix), instance(prefix)];
    await subscribed(a, b);
    await heard([b], () => a.setMany([1, 2, 3].map((i) => ({ key: `k${i}`, value: i }))));
    for (const key of ['k1', 'k2', 'k3']) await b.get(key);
    const invalidator = createInvalidator({ redis: redis.server.url, prefix });
    try {
      await heard([a, b], () => invalidator.delete('k1'));
      expect(await a.get('k1')).toBeUndefined();
      expect(await b.get('k1')).toBeUndefined();
      await heard([a, b], () => invalidator.deleteByPattern('k[2]'));
      expect(await b.get('k2')).toBeUndefined();
      expect(await b.get('k3')).toBe(3);
      await heard([a, b], () => invalidator.clear());
      expect(await a.get('k3')).toBeUndefined();
      expect(b.stats().memory!.entries).toBe(0);
      expect(b.stats().bus.gaps).toBe(0);
    } finally {
      await invalidator.close();
    }
  });
});

describe('subscriber outages', () => {
  it('resubscribes by itself after CLIENT KILL, caps L1 meanwhile and serves nothing stale after', async () => {
    const prefix = `kill${++prefixCounter}:`;
    const [a, b] = [instance(prefix), instance(prefix, { bus: { disconnectedTtl: 50 } })];
    await subscribed(a, b);
    await heard([b], () => a.set('k', 'v1'));
    expect(await b.get('k')).toBe('v1');
    const events: string[] = [];
    b.on('bus:disconnect', () => events.push('disconnect'));
    b.on('bus:reconnect', () => events.push('reconnect'));
    // Kill every pub/sub connection: b's subscriber (and a's) reconnect and resubscribe.
    await redis.server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await waitFor(async () => (events.includes('reconnect') ? done(undefined) : notYet(events.join())), {
      description: 'b to resubscribe',
      intervalMs: 5,
    });
    expect(events).toEqual(['disconnect', 'reconnect']);
    expect(b.stats().bus.disconnects).toBe(1);
    // Nothing was missed (the replay log says so): b keeps its copy, with its full life back.
    const redisHits = b.stats().tiers[1]!.hits;
    expect(b.stats().bus.replays).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 60)); // past the 50 ms disconnectedTtl cap
    expect(await b.get('k')).toBe('v1');
    expect(b.stats().tiers[1]!.hits).toBe(redisHits);
    await subscribed(a, b);
    await heard([b], () => a.set('k', 'v2'));
    expect(await b.get('k')).toBe('v2');
  });

  it('survives a Redis restart: invalidations published meanwhile are retried, L1 is dropped on reconnect', async () => {
    const own = await startRedis();
    const prefix = `restart${++prefixCounter}:`;
    const [a, b] = [instance(prefix, {}, own), instance(prefix, {}, own)];
    await subscribed(a, b);
    await heard([b], () => a.set('k', 'v1'));
    expect(await b.get('k')).toBe('v1');
    await own.kill();
    await a.set('k', 'v2'); // L2 write fails; the publish is queued
    expect(a.stats().bus.queued).toBeGreaterThan(0);
    await own.restart();
    await subscribed(a, b);
    await waitFor(async () => (a.stats().bus.queued === 0 ? done(undefined) : notYet('queued')), {
      description: 'the retry queue to drain',
      intervalMs: 10,
    });
    // b dropped its L1 on reconnect: it reads through and never serves the stale v1 (Redis came
    // back empty, or holds v2 if the client resent a's SET after the restart).
    expect(b.stats().bus.disconnects).toBe(1);
    expect([undefined, 'v2']).toContain(await b.get('k'));
    await own.stop();
  });
});

describe('the bus retry queue', () => {
  it('sends what failed to publish as soon as the subscription is back, not after the back-off', async () => {
    const own = await startRedis();
    const prefix = `retry-now${++prefixCounter}:`;
    const [a, b] = [instance(prefix, {}, own), instance(prefix, {}, own)];
    await subscribed(a, b);
    await own.kill();
    await a.set('k', 'v2'); // the publish fails and is queued
    // Let the back-off grow to its 2 s ceiling (50, 100, … ms between tries).
    await until('six failed retries', () => a.stats().bus.publishErrors >= 7, 20_000);
    // Restart right after a failure, so the next timed retry is about 2 s away.
    const failed = a.stats().bus.publishErrors;
    await until('one more failed retry', () => a.stats().bus.publishErrors > failed, 20_000);
    await own.restart();
    await subscribed(a);
    const back = performance.now();
    await until('the retry queue to drain', () => a.stats().bus.queued === 0, 20_000, 2);
    // Without the retry on resubscription this took the rest of the back-off, about 1.7 s.
    expect(performance.now() - back).toBeLessThan(1_000);
    await own.stop();
  }, 60_000);
});

async function heardCount(cache: TierCache, write: () => Promise<unknown>): Promise<number> {
  const before = cache.stats().bus.messagesIn;
  await heard([cache], write);
  return cache.stats().bus.messagesIn - before;
}
