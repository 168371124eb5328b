import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  createCache,
  memoryTier,
  redisTier,
  type BreakerState,
  type CacheError,
  type RedisTierOptions,
  type TierCache,
} from '../../src/index.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';
import { trackUnhandled } from '../helpers/unhandled.js';

/** Generous bound for "the timeout plus the loader's time" on a loaded 2-core machine. */
const SLACK_MS = 1_500;
const TIMEOUT_MS = 100;

afterAll(stopAllRedis);

const unhandled = trackUnhandled().reasons;
afterEach(() => {
  expect(unhandled).toEqual([]);
});

let prefixCounter = 0;
const caches: TierCache[] = [];
afterAll(async () => {
  await Promise.all(caches.map((cache) => cache.close()));
});

function setup(client: RedisTierOptions['client'], options: Partial<RedisTierOptions> = {}, l1 = true) {
  const tier = redisTier({
    client,
    prefix: `faults${++prefixCounter}:`,
    timeout: TIMEOUT_MS,
    breaker: { failures: 3, cooldown: 200 },
    ...options,
  });
  const errors: CacheError[] = [];
  const states: BreakerState[] = [];
  const cache = createCache({
    tiers: l1 ? [memoryTier(), tier] : [tier],
    onError: (error) => errors.push(error),
  });
  cache.on('breaker', ({ state }) => states.push(state));
  caches.push(cache);
  return { cache, tier, errors, states };
}

/** How long `work` takes, in ms. */
async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}

/** Keeps calling getOrSet until the breaker has closed again and writes reach Redis. */
async function waitForRecovery(cache: TierCache, server: RedisProcess, prefix: string) {
  let n = 0;
  await waitFor(
    async () => {
      const key = `recover${n++}`;
      await cache.set(key, n);
      const state = cache.stats().tiers.at(-1)!.breaker?.state;
      const stored = await server.cli('EXISTS', `${prefix}${key}`);
      return state === 'closed' && stored === 1
        ? done(true)
        : notYet(`breaker ${state}, stored ${String(stored)}`);
    },
    { description: 'the breaker to close and writes to land', timeoutMs: 15_000, intervalMs: 50 },
  );
}

describe('Redis killed', () => {
  it('a URL client fails fast: getOrSet answers from the loader, L1 hits keep coming, the breaker recovers', async () => {
    const server = await startRedis();
    const { cache, tier, errors, states } = setup(server.url);
    await cache.set('warm', 'w');
    await server.kill();

    const [value, ms] = await timed(() =>
      cache.getOrSet('cold', async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return 'origin';
      }),
    );
    expect(value).toBe('origin');
    expect(ms).toBeLessThan(TIMEOUT_MS + 20 + SLACK_MS);
    expect(await cache.get('warm')).toBe('w');
    for (let i = 0; i < 5; i++) expect(await cache.getOrSet(`k${i}`, () => i)).toBe(i);
    expect(states).toContain('open');
    expect(errors.every((e) => e.code === 'E_TIER')).toBe(true);
    expect(cache.stats().tiers[1]!.breaker!.skipped).toBeGreaterThan(0);

    await server.restart();
    await waitForRecovery(cache, server, tier.prefix);
    expect(states.at(-1)).toBe('closed');
    await cache.set('after', 'new');
    expect(await server.cli('EXISTS', `${tier.prefix}after`)).toBe(1);
    await cache.close();
  });

  it('a client passed in with ioredis defaults (offline queue, 20 retries) does not queue the request', async () => {
    const server = await startRedis();
    const { cache } = setup(server.client(), {}, false);
    await cache.set('warm', 'w');
    await server.kill();
    const [value, ms] = await timed(() => cache.getOrSet('cold', () => 'origin'));
    expect(value).toBe('origin');
    expect(ms).toBeLessThan(2 * TIMEOUT_MS + SLACK_MS);
    await server.restart();
    await waitForRecovery(cache, server, `faults${prefixCounter}:`);
  });
});

describe('Redis hanging (SIGSTOP)', () => {
  it('getOrSet answers within the timeout plus the loader time, and the breaker skips the tier', async () => {
    const server = await startRedis();
    const { cache, tier, errors, states } = setup(server.client());
    await cache.set('warm', 'w');
    await server.pause();
    try {
      const [value, ms] = await timed(() => cache.getOrSet('cold', () => 'origin'));
      expect(value).toBe('origin');
      // One read timeout, then the write's: the loader value is returned after both.
      expect(ms).toBeLessThan(2 * TIMEOUT_MS + SLACK_MS);
      expect(hasCause(errors, 'E_TIER_TIMEOUT')).toBe(true);
      expect(await cache.get('warm')).toBe('w');
      // Keys that miss L1 while the breaker is open skip Redis at once.
      for (let i = 0; i < 3; i++) await cache.getOrSet(`k${i}`, () => i);
      expect(states).toEqual(['open']);
      const [, skippedMs] = await timed(() => cache.getOrSet('skipped', () => 'fast'));
      expect(skippedMs).toBeLessThan(TIMEOUT_MS);
      expect(cache.stats().tiers[1]!.timeouts).toBeGreaterThanOrEqual(3);
    } finally {
      await server.resume();
    }
    await waitForRecovery(cache, server, tier.prefix);
    await cache.set('after', 'new');
    expect(await server.cli('GET', `${tier.prefix}after`)).toContain('new');
  });

  it('a value changed while Redis hung is not served in its old version from Redis afterwards', async () => {
    const server = await startRedis();
    const a = setup(server.client(), {}, false);
    const prefix = a.tier.prefix;
    const b = setup(server.client(), { prefix }, false);
    await a.cache.set('k', 'old');
    await a.cache.set('d', 'old');
    await server.pause();
    try {
      for (let i = 0; i < 3; i++) await a.cache.getOrSet(`x${i}`, () => i);
      expect(a.states).toEqual(['open']);
      // Skipped by the open breaker: Redis still holds the old values.
      await a.cache.set('k', 'new');
      await a.cache.delete('d');
    } finally {
      await server.resume();
    }
    await waitForRecovery(a.cache, server, prefix);
    expect(await b.cache.get('k')).toBeUndefined();
    expect(await b.cache.get('d')).toBeUndefined();
    expect(a.cache.stats().tiers[0]!.repair).toMatchObject({ pending: 0 });
  });

  it('close() of a URL client returns while the server hangs', async () => {
    const server = await startRedis();
    const { cache, tier } = setup(server.url);
    await cache.set('k', 1);
    await server.pause();
    try {
      const [, ms] = await timed(() => cache.close());
      // QUIT gets 500 ms, then the socket 500 ms to close before it is destroyed.
      expect(ms).toBeLessThan(1_000 + SLACK_MS);
      expect(tier.client.status).toBe('end');
    } finally {
      await server.resume();
    }
  });
});

describe('options', () => {
  it('a URL client is created with fail-fast settings', () => {
    const tier = redisTier({ client: 'redis://127.0.0.1:1', prefix: 'opts:' });
    expect(tier.client.options).toMatchObject({
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      connectTimeout: 2_000,
    });
    void tier.close();
  });

  it('rejects a bad timeout or breaker naming the option', () => {
    expect(() => redisTier({ client: 'redis://127.0.0.1:1', name: 'l2', timeout: 'fast' as never })).toThrow(
      /"l2\.timeout"/,
    );
    expect(() => redisTier({ client: 'redis://127.0.0.1:1', breaker: { failures: 0 } })).toThrow(
      /"redis\.breaker\.failures"/,
    );
  });
});

function hasCause(errors: CacheError[], code: string): boolean {
  return errors.some((e) => (e.cause as { code?: string } | undefined)?.code === code);
}

describe('a server without EVALSHA (rename-command, or an ACL allowing only EVAL)', () => {
  it('runs every script as EVAL: fills, deletes and the replay log work, one refusal and no reports', async () => {
    const server = await startRedis({ args: ['--rename-command', 'EVALSHA', ''] });
    const prefix = `noevalsha${++prefixCounter}:`;
    const errors: unknown[] = [];
    const make = (): TierCache => {
      const cache = createCache({
        tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: server.client(), prefix })],
        onError: (error) => errors.push(error),
      });
      caches.push(cache);
      return cache;
    };
    const [a, b] = [make(), make()];
    await waitFor(
      async () =>
        a.stats().bus.subscribed && b.stats().bus.subscribed ? done(undefined) : notYet('not subscribed'),
      { description: 'both buses to subscribe', timeoutMs: 10_000, intervalMs: 10 },
    );
    // A fill (the lease script), then a read of it from Redis by the other instance.
    expect(await a.getOrSet('k', () => 1)).toBe(1);
    expect(await b.get('k')).toBe(1);
    // A write published through the replay log: b drops its copy and re-reads the new value.
    const heardBefore = b.stats().bus.messagesIn;
    await a.set('k', 2);
    await waitFor(
      async () => (b.stats().bus.messagesIn > heardBefore ? done(undefined) : notYet('not heard')),
      { description: 'b to hear the write', intervalMs: 5 },
    );
    expect(await b.get('k')).toBe(2);
    // A delete (the tombstone script).
    expect(await a.delete('k')).toBe(true);
    expect(await server.cli('GET', `${prefix}k`)).not.toBe(null); // the tombstone
    expect(await b.getOrSet('k', () => 3)).toBe(3);
    expect(errors).toEqual([]);
    const stats = a.stats().tiers[1]!;
    expect(stats.errors).toBe(0);
  });
});
