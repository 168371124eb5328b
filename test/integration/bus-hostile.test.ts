/**
 * Bus fuzz suite (issue 19): random and hostile messages published on the channel of real
 * caches on a real Redis never crash a process, never block its event loop beyond a generous
 * bound, and never poison what an instance believes: afterwards set, delete, namespace.clear
 * and invalidateTags still behave on every instance. Also: a SUBSCRIBE the ACL refuses is
 * reported, not silently never subscribed.
 */
import fc from 'fast-check';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError, type TierCache } from '../../src/index.js';
import { type BusTransport } from '../../src/extend.js';
import { RedisPubSubTransport } from '../../src/sync/transport.js';
import { heard, subscribed } from '../helpers/bus-waits.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { trackUnhandled } from '../helpers/unhandled.js';
import { until } from '../helpers/wait-for.js';

const redis = redisFixture();
const unhandled = trackUnhandled();
let prefixCounter = 0;

/** Generous, for a loaded 2-core machine; the bugs took 1.2 to 5 s per message. */
const MAX_BLOCK_MS = 500;

const glob = fc
  .array(fc.constantFrom('*', '?', '[', ']', '^', '-', '\\', 'a', 'z', ':', '[z-a]', '*?'), { maxLength: 30 })
  .map((parts) => parts.join(''));
const publisher = fc.constantFrom('p1', 'p2', 'p3');
const hostileMessage = fc.oneof(
  fc.string(),
  fc.json(),
  fc
    .record(
      {
        v: fc.oneof(fc.constant(1), fc.anything()),
        i: fc.oneof(publisher, fc.anything()),
        q: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.double(), fc.anything()),
        k: fc.oneof(fc.array(fc.string()), fc.anything()),
        p: fc.oneof(fc.array(glob, { maxLength: 5 }), fc.anything()),
        c: fc.oneof(fc.constant(1), fc.anything()),
        t: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.double(), fc.constant(8.64e15))), fc.anything()),
        n: fc.oneof(fc.dictionary(fc.string(), fc.oneof(fc.double(), fc.maxSafeNat())), fc.anything()),
        h: fc.oneof(fc.double(), fc.anything()),
      },
      { requiredKeys: [] },
    )
    .map((m) => JSON.stringify(m) ?? 'undefined'),
);

/**
 * Shapes the first probes did not try (issue 19, "probes run again on unseen cases"): binary and
 * invalid UTF-8 payloads, numbers JSON cannot hold, repeated fields, names that are not strings
 * or are lone surrogates or prototype names, name lists on either side of maxMessageNames,
 * versions and times that are negative, fractional, -0 or strings, and messages near
 * maxMessageBytes. `TIERCACHE_FUZZ_SEED` reruns them (and the generated ones) on another seed.
 */
const SEED = Number(process.env['TIERCACHE_FUZZ_SEED'] ?? 19);
const oddName = fc.oneof(
  fc.string(),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '\ud800', 'a\u0000b', '*', '[', ''),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.anything(),
);
const oddNumber = fc.oneof(
  fc.constantFrom(-1, -0, 0.5, 2 ** 53 + 2, -1e300, '1', '1e309', null, true),
  fc.double(),
  fc.integer(),
);
const unseenMessage: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(
    '{"v":1,"i":"p1","q":1e309}',
    '{"v":1,"i":"p1","q":1,"k":["a"],"k":{"length":1e9}}',
    '{"v":1,"i":"p1","q":1,"t":{"x":1e309}}',
    '{"v":1,"i":"p1","q":-0,"c":1}',
    '{"v":1.0,"i":"p1","q":2,"n":{"ns":-1}}',
    '\ufeff{"v":1,"i":"p1","q":3,"k":["a"]}',
    '{"v":1,"i":"p1","q":4,"k":[["a"],{"0":"b"}]}',
  ),
  fc
    .record(
      {
        v: fc.oneof(fc.constant(1), oddNumber),
        i: fc.oneof(fc.constantFrom('p1', 'p2'), oddName),
        q: oddNumber,
        k: fc.oneof(
          fc.array(oddName, { maxLength: 40 }),
          fc.array(fc.string(), { minLength: 999, maxLength: 1_001 }),
        ),
        p: fc.array(fc.oneof(glob, oddName), { maxLength: 20 }),
        c: oddNumber,
        t: fc.dictionary(oddName.map(String), oddNumber),
        n: fc.dictionary(oddName.map(String), oddNumber),
        h: oddNumber,
      },
      { requiredKeys: ['v', 'i', 'q'] },
    )
    .map((m) => JSON.stringify(m) ?? 'undefined'),
  fc
    .nat({ max: 64 })
    .map((extra) => JSON.stringify({ v: 1, i: 'big', q: 1, k: ['x'.repeat(9_950 + extra)] })),
);

/** The hand-made ones: each was a crash, a stall or a poisoning in issue 19. */
function craftedMessages(): string[] {
  const m = (fields: Record<string, unknown>, q = 1): string =>
    JSON.stringify({ v: 1, i: 'forger', q, ...fields });
  return [
    m({ p: ['user:[z-a]*', 'k[ab', 'k\\', '[', '[^'] }),
    m({ p: [`${'*?'.repeat(40)}#`] }, 2),
    m({ p: [`${'*a'.repeat(5_000)}*b`] }, 3),
    m({ n: { products: 1e300 } }, 4),
    m({ n: { products: Number.MAX_SAFE_INTEGER } }, 5),
    m({ n: { products: 3 } }, 6),
    m({ t: { catalog: 8.64e15 } }, 7),
    m({ q: Number.MAX_SAFE_INTEGER }),
    m({ k: Array.from({ length: 200_000 }, (_, i) => String(i)) }, 8),
    m({ k: ['x'.repeat(1024 * 1024)] }, 9),
    `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
    `{"v":1,"i":"deep","q":1,"k":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
    m({ k: { length: 1e9 } }, 10),
    m({ t: { __proto__: 5, constructor: 1 } }, 11),
  ];
}

/**
 * Caches on the fixture's server whose bus transport times each message's handling: that is the
 * event-loop block one message causes (wall time around a synchronous call, so other processes
 * on the machine only count while it runs).
 */
function instances(
  prefix: string,
  n: number,
): { caches: TierCache[]; errors: CacheError[]; slowest: () => number } {
  const errors: CacheError[] = [];
  let slowest = 0;
  const caches = Array.from({ length: n }, () => {
    const client = redis.server.client({ enableAutoPipelining: true });
    const inner = new RedisPubSubTransport(client, `tiercache:bus:${prefix}`);
    const transport: BusTransport = {
      publish: (message) => inner.publish(message),
      subscribe: (onMessage, onState, onError) =>
        inner.subscribe(
          (payload) => {
            const started = performance.now();
            onMessage(payload);
            slowest = Math.max(slowest, performance.now() - started);
          },
          onState,
          onError,
        ),
      close: () => inner.close(),
      reconnect: () => inner.reconnect(),
    };
    return redis.track(
      createCache({
        tiers: [memoryTier({ ttl: '1h' }), redisTier({ client, prefix })],
        bus: { transport },
        onError: (e) => errors.push(e),
      }),
    );
  });
  return { caches, errors, slowest: () => slowest };
}

/** `n` subscribed instances under a new prefix, each holding `warm` in L1, and a client to publish with. */
async function warmed(n: number) {
  const prefix = `hostile${++prefixCounter}:`;
  const set = instances(prefix, n);
  await subscribed(...set.caches);
  await set.caches[0]!.set('warm', 1);
  for (const c of set.caches) await c.get('warm');
  return { ...set, channel: `tiercache:bus:${prefix}`, raw: redis.server.client() };
}

/** Resolves once every cache processed everything published on `channel` before this call. */
async function drained(channel: string, caches: TierCache[], marker: string): Promise<void> {
  const gapped = new Set<TierCache>();
  const offs = caches.map((cache) =>
    cache.on('bus:gap', (e) => {
      if (e.publisher === marker) gapped.add(cache);
    }),
  );
  const publisher = redis.server.client();
  // Messages arrive in order: a gap of the marker's own comes after everything before it.
  await publisher.publish(channel, JSON.stringify({ v: 1, i: marker, q: 1 }));
  await publisher.publish(channel, JSON.stringify({ v: 1, i: marker, q: 3 }));
  try {
    await until('every instance to read up to the marker', () => gapped.size === caches.length, 30_000);
  } finally {
    for (const off of offs) off();
  }
}

/** After whatever came over the bus, the caches must still keep each other honest. */
async function stillConsistent(caches: TierCache[]): Promise<void> {
  const [a, ...others] = caches as [TierCache, ...TierCache[]];
  await heard(others, () => a.set('k', 1));
  for (const c of others) expect(await c.get('k')).toBe(1);
  await heard(others, () => a.set('k', 2));
  for (const c of others) expect(await c.get('k')).toBe(2);
  await heard(others, () => a.delete('k'));
  for (const c of others) expect(await c.get('k')).toBeUndefined();

  await a.namespace('products').set('p', 'v1');
  for (const c of others) expect(await c.namespace('products').get('p')).toBe('v1');
  await heard(others, () => a.namespace('products').clear());
  for (const c of others) expect(await c.namespace('products').get('p')).toBeUndefined();
  await others[0]!.namespace('products').set('p', 'v2');
  expect(await a.namespace('products').get('p')).toBe('v2');
  for (const c of others) expect(await c.namespace('products').get('p')).toBe('v2');

  for (const c of others) await c.set(`t:${others.indexOf(c)}`, 1, { tags: ['catalog'] });
  for (const c of others) expect(await c.get(`t:${others.indexOf(c)}`)).toBe(1);
  await heard(others, () => a.invalidateTags(['catalog']));
  for (const c of others) expect(await c.get(`t:${others.indexOf(c)}`)).toBeUndefined();
  for (const c of others) {
    await c.set('fresh', 1, { tags: ['catalog'] });
    expect(await c.get('fresh')).toBe(1);
  }
}

describe('hostile bus messages', () => {
  it('crafted ones (issue 19) crash nothing, block nothing for long, poison nothing', async () => {
    const { caches, slowest, channel, raw } = await warmed(3);
    const crafted = craftedMessages();
    for (const message of crafted) await raw.publish(channel, message);
    await drained(channel, caches, 'end-crafted');
    expect(slowest()).toBeLessThan(MAX_BLOCK_MS);
    for (const c of caches) expect([c.stats().bus.oversized, c.stats().bus.disconnects]).toEqual([2, 0]);
    await stillConsistent(caches);
    expect(unhandled.reasons).toEqual([]);
  });

  it('generated ones do the same', async () => {
    const prefix = `hostile${++prefixCounter}:`;
    const channel = `tiercache:bus:${prefix}`;
    const { caches, errors, slowest } = instances(prefix, 2);
    await subscribed(...caches);
    const raw = redis.server.client();
    const messages = fc.sample(hostileMessage, { numRuns: 3_000, seed: SEED });
    // All sent at once, but published before the marker: drained() publishes it on another
    // connection, which may otherwise overtake this one's queue (every message then unread).
    await Promise.all(messages.map((message) => raw.publish(channel, message)));
    await drained(channel, caches, 'end-generated');
    expect(slowest()).toBeLessThan(MAX_BLOCK_MS);
    // Thousands of bad messages, a handful of reports: the first, then one summary a second.
    expect(caches[0]!.stats().bus.invalid).toBeGreaterThan(100);
    expect(errors.length).toBeLessThan(50);
    await stillConsistent(caches);
    expect(unhandled.reasons).toEqual([]);
  });

  it('shapes the first probes did not try do the same', async () => {
    const { caches, slowest, channel, raw } = await warmed(2);
    const messages = fc.sample(unseenMessage, { numRuns: 2_000, seed: SEED + 1 });
    await Promise.all(messages.map((message) => raw.publish(channel, message)));
    await drained(channel, caches, 'end-unseen');
    expect(slowest()).toBeLessThan(MAX_BLOCK_MS);
    for (const c of caches) expect(c.stats().bus.disconnects).toBe(0);
    await stillConsistent(caches);
    expect(unhandled.reasons).toEqual([]);
  });
});

describe('a SUBSCRIBE the ACL refuses', () => {
  it('is reported as a BusError naming the channel and Redis’s NOPERM reply, and retried', async () => {
    const prefix = `acl${++prefixCounter}:`;
    const channel = `tiercache:bus:${prefix}`;
    await redis.server.cli('ACL', 'SETUSER', 'nosub', 'on', '>pw', '~*', 'resetchannels', '&other', '+@all');
    const errors: CacheError[] = [];
    const cache = redis.track(
      createCache({
        tiers: [
          memoryTier({ ttl: '1h' }),
          redisTier({ client: redis.server.client({ username: 'nosub', password: 'pw' }), prefix }),
        ],
        onError: (e) => errors.push(e),
      }),
    );
    await until('the refusal to be reported', () =>
      errors.some((e) => e.code === 'E_BUS' && (e as { operation?: string }).operation === 'subscribe'),
    );
    const refusal = errors.find((e) => (e as { operation?: string }).operation === 'subscribe')!;
    expect(refusal.message).toContain(`on channel "${channel}"`);
    expect(refusal.message).toContain('NOPERM');
    expect((refusal as { channel?: string }).channel).toBe(channel);
    expect(cache.stats().bus.subscribed).toBe(false);
    // Once the ACL allows it (the channel and its private heartbeat channels), the retry subscribes.
    await redis.server.cli('ACL', 'SETUSER', 'nosub', `&${channel}*`);
    await until('the bus to subscribe', () => cache.stats().bus.subscribed, 15_000);
  });
});
