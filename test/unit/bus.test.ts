import { describe, expect, it } from 'vitest';
import type { BusOptions, CacheOptions, TierCache } from '../../src/index.js';
import {
  decodeMessage,
  emptyInvalidation,
  encodeMessage,
  type Invalidation,
} from '../../src/sync/message.js';
import { PublishQueue } from '../../src/sync/publish-queue.js';
import { gate } from '../helpers/fake-clock.js';
import { busInstances, type MemoryBroker } from '../helpers/memory-bus.js';

function inv(
  parts: Partial<{ keys: string[]; all: boolean; patterns: string[]; tags: Record<string, number> }>,
): Invalidation {
  const i = emptyInvalidation();
  for (const k of parts.keys ?? []) i.keys.add(k);
  for (const p of parts.patterns ?? []) i.patterns.add(p);
  for (const [t, at] of Object.entries(parts.tags ?? {})) i.tags.set(t, at);
  i.all = parts.all ?? false;
  return i;
}

/** Flushes setImmediate batches and microtask deliveries. */
const settle = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

/** Makes the others see a sequence gap in `a`'s messages: one is lost between two heard ones. */
async function gapFrom(a: TierCache, broker: MemoryBroker): Promise<void> {
  await a.set('gap:before', 1);
  await settle();
  broker.dropMessages = true;
  await a.set('gap:lost', 1);
  await settle();
  broker.dropMessages = false;
  await a.set('gap:after', 1);
  await settle();
}

/** Heartbeats are off by default here: these tests count messages and sequence numbers. */
function cluster(n: number, options: CacheOptions = {}, busOptions: BusOptions = {}) {
  return busInstances(Array<BusOptions>(n).fill({ heartbeat: false, ...busOptions }), options);
}

describe('bus messages', () => {
  it('round-trip every field and stay compact', () => {
    const message = encodeMessage('p1', 7, inv({ keys: ['a', 'b'], patterns: ['u:*'], tags: { t: 5 } }));
    expect(message).toBe('{"v":1,"i":"p1","q":7,"k":["a","b"],"p":["u:*"],"t":{"t":5}}');
    const decoded = decodeMessage(message);
    if (typeof decoded === 'string') throw new Error(decoded);
    expect(decoded.publisher).toBe('p1');
    expect(decoded.sequence).toBe(7);
    expect([...decoded.inv.keys]).toEqual(['a', 'b']);
    expect([...decoded.inv.patterns]).toEqual(['u:*']);
    expect(decoded.inv.tags.get('t')).toBe(5);
    expect(encodeMessage('p', 1, inv({ all: true, keys: ['x'] }))).toBe('{"v":1,"i":"p","q":1,"c":1}');
  });

  it('ignore unknown fields but reject other versions and malformed ones, saying why', () => {
    expect(typeof decodeMessage('{"v":1,"i":"p","q":1,"k":["a"],"z":{"future":true}}')).toBe('object');
    expect(decodeMessage('{"v":2,"i":"p","q":1}')).toMatch(/version/);
    expect(decodeMessage('nope')).toBe('not JSON');
    expect(decodeMessage('[1]')).toBe('not an object');
    expect(decodeMessage('{"v":1,"q":1}')).toMatch(/publisher/);
    expect(decodeMessage('{"v":1,"i":"p","q":0}')).toMatch(/sequence/);
    expect(decodeMessage('{"v":1,"i":"p","q":1,"k":[1]}')).toMatch(/keys/);
    expect(decodeMessage('{"v":1,"i":"p","q":1,"t":{"a":"x"}}')).toMatch(/tags/);
    expect(decodeMessage(Buffer.from('{"v":1,"i":"p","q":3}'))).toMatchObject({ sequence: 3 });
  });
});

describe('the publish retry queue', () => {
  it('coalesces per key and collapses into "drop everything" past its bound', () => {
    const queue = new PublishQueue(3);
    expect(queue.hold(inv({ keys: ['a', 'b'] }))).toBe(false);
    expect(queue.hold(inv({ keys: ['a', 'b'] }))).toBe(false);
    expect(queue.size).toBe(2);
    expect(queue.hold(inv({ keys: ['c', 'd'] }))).toBe(true);
    expect(queue.overflows).toBe(1);
    const taken = queue.take();
    expect(taken.all).toBe(true);
    expect(taken.keys.size).toBe(0);
    expect(queue.empty).toBe(true);
  });

  it('keeps the latest tag time when two invalidations of a tag coalesce', () => {
    const queue = new PublishQueue(10);
    queue.hold(inv({ tags: { t: 5 } }));
    queue.hold(inv({ tags: { t: 3 } }));
    expect(queue.take().tags.get('t')).toBe(5);
  });
});

describe('the bus inside a cache', () => {
  it('batches the invalidations of one tick into one message', async () => {
    const { broker, caches } = cluster(2);
    const [a] = caches;
    await Promise.all([a!.set('x', 1), a!.set('y', 2), a!.delete('z'), a!.setMany([{ key: 'w', value: 0 }])]);
    expect(broker.log).toHaveLength(1);
    expect((JSON.parse(broker.log[0]!) as { k: string[] }).k.sort()).toEqual(['w', 'x', 'y', 'z']);
  });

  it('drops the named keys on other instances only, with reason invalidate', async () => {
    const { caches } = cluster(2);
    const [a, b] = caches;
    await b!.set('k', 'b-old');
    await settle();
    const removed: string[] = [];
    b!.on('remove', (e) => removed.push(`${e.key}:${e.reason}`));
    await a!.set('k', 'a-new');
    await settle();
    expect(removed).toEqual(['k:invalidate']);
    expect(await b!.get('k')).toBeUndefined();
    expect(await a!.get('k')).toBe('a-new');
  });

  it('stops a read in flight from filling L1 with what it read before a remote write', async () => {
    const { caches } = cluster(2);
    const [a, b] = caches;
    const loading = gate<string>();
    const read = b!.getOrSet('k', () => loading.promise);
    await settle();
    await a!.delete('k');
    await settle();
    loading.resolve('old');
    expect(await read).toBe('old');
    expect(b!.stats().memory!.entries).toBe(0);
  });

  it('counts and reports corrupt or foreign messages and goes on', async () => {
    const { broker, caches, errors } = cluster(1);
    const [a] = caches;
    await a!.set('k', 1);
    await settle();
    broker.inject('garbage');
    broker.inject('{"v":9,"i":"x","q":1}');
    await settle();
    expect(a!.stats().bus.invalid).toBe(2);
    // The second is held back for the once-a-second summary (see bus-hostile.test.ts).
    expect(errors.map((e) => e.code)).toEqual(['E_BUS']);
    expect(await a!.get('k')).toBe(1);
  });

  it('drops all of L1 on a sequence gap, and says so', async () => {
    const { broker, caches } = cluster(2);
    const [a, b] = caches;
    await b!.set('keep?', 1);
    await a!.set('x', 1);
    await settle();
    const gaps: unknown[] = [];
    b!.on('bus:gap', (e) => gaps.push(e));
    broker.dropMessages = true;
    await a!.set('y', 1);
    await settle();
    broker.dropMessages = false;
    expect(await b!.get('keep?')).toBe(1);
    await a!.set('z', 1);
    await settle();
    expect(gaps).toEqual([{ publisher: expect.any(String), expected: 2, received: 3 }]);
    expect(b!.stats().bus.gaps).toBe(1);
    expect(await b!.get('keep?')).toBeUndefined();
  });

  it('keeps what a gap dropped as suspects that only a failing loader under fail-safe answers with', async () => {
    const { broker, caches, clock } = cluster(2, { failSafe: { maxStaleAge: '1h' } });
    const [a, b] = caches;
    await b!.getOrSet('kept', () => 'v1', { ttl: '1m' });
    await b!.getOrSet('fresh', () => 'f1', { ttl: '1m' });
    await b!.getOrSet('plain', () => 'p1', { ttl: '1m', failSafe: false });
    await gapFrom(a!, broker);
    expect(b!.stats().bus.gaps).toBe(1);
    const failing = () => Promise.reject(new Error('origin down'));
    // Never a hit: a working loader is asked, even though the suspect is within its ttl.
    expect(await b!.getOrSet('fresh', () => 'f2')).toBe('f2');
    expect(await b!.getOrSet('fresh', failing)).toBe('f2');
    // Nor a grace answer: grace serves before the loader fails.
    await expect(b!.getOrSet('kept', failing, { failSafe: false, grace: '1h' })).rejects.toThrow(
      /origin down/,
    );
    // Only a failed load under fail-safe answers with it.
    const stale: unknown[] = [];
    b!.on('stale', (e) => stale.push(e));
    expect(await b!.getOrSet('kept', failing)).toBe('v1');
    expect(stale).toEqual([{ key: 'kept', reason: 'failSafe' }]);
    // An entry without a stale period is not kept at all.
    await expect(b!.getOrSet('plain', failing)).rejects.toThrow(/origin down/);
    // Past its stale period it is gone.
    clock.advance(2 * 60 * 60 * 1000);
    await expect(b!.getOrSet('kept', failing)).rejects.toThrow(/origin down/);
  });

  it('forgets a suspect once its key is invalidated, written or cleared', async () => {
    const { broker, caches } = cluster(2, { failSafe: true });
    const [a, b] = caches;
    for (const key of ['deleted', 'matched', 'written', 'cleared']) await b!.getOrSet(key, () => 'old');
    await gapFrom(a!, broker);
    const failing = () => Promise.reject(new Error('origin down'));
    await a!.delete('deleted');
    await a!.deleteByPattern('match*');
    await settle();
    await expect(b!.getOrSet('deleted', failing)).rejects.toThrow(/origin down/);
    await expect(b!.getOrSet('matched', failing)).rejects.toThrow(/origin down/);
    await b!.set('written', 'new');
    await b!.delete('written');
    await expect(b!.getOrSet('written', failing)).rejects.toThrow(/origin down/);
    await a!.clear();
    await settle();
    await expect(b!.getOrSet('cleared', failing)).rejects.toThrow(/origin down/);
  });

  it('caps L1 lives while disconnected and drops L1 on reconnect', async () => {
    const { caches, transports, clock } = cluster(2);
    const [, b] = caches;
    await b!.set('old', 1);
    transports[1]!.disconnect();
    expect(b!.stats().bus.subscribed).toBe(false);
    await b!.set('during', 2);
    clock.advance(999);
    expect(await b!.get('old')).toBe(1);
    expect(await b!.get('during')).toBe(2);
    clock.advance(2);
    expect(await b!.get('old')).toBeUndefined();
    expect(await b!.get('during')).toBeUndefined();
    await b!.set('again', 3);
    const events: string[] = [];
    b!.on('bus:reconnect', () => events.push('reconnect'));
    transports[1]!.connect();
    expect(events).toEqual(['reconnect']);
    expect(await b!.get('again')).toBeUndefined();
    await b!.set('after', 4);
    clock.advance(10_000);
    expect(await b!.get('after')).toBe(4);
  });

  it('retries failed publishes, coalesced per key', async () => {
    const { broker, caches, errors } = cluster(2, {});
    const [a, b] = caches;
    await b!.set('k1', 'old');
    await settle();
    broker.failPublishes = new Error('down');
    await a!.set('k1', 1);
    await a!.set('k1', 2);
    expect(a!.stats().bus.queued).toBe(1);
    expect(errors.some((e) => e.code === 'E_BUS')).toBe(true);
    broker.failPublishes = undefined;
    await waitUntil(() => a!.stats().bus.queued === 0);
    await settle();
    expect(await b!.get('k1')).toBeUndefined();
    const sent = JSON.parse(broker.log.at(-1)!);
    expect(sent.k).toEqual(['k1']);
  });

  it('collapses the queue into one "drop everything" message when it overflows', async () => {
    const { broker, caches } = cluster(2, {}, { maxQueue: 3 });
    const [a, b] = caches;
    const overflow: unknown[] = [];
    a!.on('bus:overflow', (e) => overflow.push(e));
    await b!.set('unrelated', 1);
    await settle();
    broker.failPublishes = new Error('down');
    await a!.setMany(Array.from({ length: 5 }, (_, i) => ({ key: `k${i}`, value: i })));
    expect(overflow).toEqual([{ limit: 3 }]);
    expect(a!.stats().bus.overflows).toBe(1);
    broker.failPublishes = undefined;
    await waitUntil(() => a!.stats().bus.queued === 0);
    await settle();
    expect(JSON.parse(broker.log.at(-1)!).c).toBe(1);
    expect(b!.stats().memory!.entries).toBe(0);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
