import { afterAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError } from '../../../src/index.js';
import { singleBackend } from '../../helpers/backends.js';
import type { ClientLibrary, TestClient } from '../../helpers/client-libraries.js';
import { isReplyError } from '../../../src/tiers/redis/client.js';
import { adoptClient } from '../../../src/tiers/redis/clients.js';
import { subscribed } from '../../helpers/bus-waits.js';
import { expectOneLoaderCall } from '../../helpers/single-flight.js';
import { until } from '../../helpers/wait-for.js';
import { startRedis, stopAllRedis } from '../../helpers/redis-server.js';
import { busSuite } from './bus-suite.js';
import { coreSuite } from './core-suite.js';
import { fillLeaseSuite } from './fill-lease-suite.js';
import { redisTierConformance } from './tier-conformance.js';

/**
 * What every supported client library is held to, on a single server: the core behaviours, the
 * bus between instances, the tier's conformance suite, and falling back to the origin when the
 * server dies. Each of these runs the client through different commands and events (batched
 * reads and scripts; pub/sub on a duplicate connection; every RemoteTier call; the connection
 * state). The ioredis 5 runs of the same suites are core, bus and conformance.test.ts; the
 * cluster runs live in test/cluster.
 */
export function clientSuite(library: ClientLibrary): void {
  describe(`core, ${library.name}`, () => coreSuite(singleBackend(library)));
  describe(`bus, ${library.name}`, () => busSuite(singleBackend(library)));
  describe(`conformance, ${library.name}`, () => redisTierConformance(singleBackend(library)));
  // Leases, deleteByPattern, namespaces, tags and the invalidator: the Lua scripts and SCAN.
  describe(`fill leases, ${library.name}`, () => fillLeaseSuite(singleBackend(library)));

  describe(`the client's errors, ${library.name}`, () => {
    const made: TestClient[] = [];
    afterAll(async () => {
      await Promise.all(made.map((client) => client.close()));
      await stopAllRedis();
    });

    it('reads a value over maxValueBytes as a corrupt miss, again and again, never as a tier error', async () => {
      const server = await startRedis();
      const made1 = library.single(server);
      made.push(made1);
      const errors: CacheError[] = [];
      const cache = createCache({
        tiers: [redisTier({ client: made1.client, prefix: 'big:', maxValueBytes: 1024 })],
        onError: (error) => errors.push(error),
      });
      await server.cli('SET', 'big:k', 'x'.repeat(4096));
      // The first read transfers it and learns the key is oversized; later ones read by script.
      for (let i = 0; i < 3; i++) expect(await cache.get('k')).toBeUndefined();
      expect(errors.map((e) => e.code)).toEqual(['E_CORRUPT_ENTRY', 'E_CORRUPT_ENTRY', 'E_CORRUPT_ENTRY']);
      expect(cache.stats().tiers[0]!.errors).toBe(0);
      await cache.close();
    });

    it("tells the server's error replies (NOSCRIPT, NOPERM) from a closed connection", async () => {
      const server = await startRedis();
      const made1 = library.single(server);
      made.push(made1);
      const { client } = adoptClient(made1.client, 'client');
      const refused = await client.evalsha('0'.repeat(40), 0).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isReplyError(refused)).toBe(true);
      expect((refused as Error).message).toMatch(/^NOSCRIPT/);
      await made1.close();
      const lost = await client.get('k').then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(lost).toBeInstanceOf(Error);
      expect(isReplyError(lost)).toBe(false);
    });
  });

  describe(`the distributed lock and the breaker, ${library.name}`, () => {
    const made: TestClient[] = [];
    afterAll(async () => {
      await Promise.all(made.map((client) => client.close()));
      await stopAllRedis();
    });

    it('two instances × 50 callers of a missing key make one loader call', async () => {
      const server = await startRedis();
      const caches = [1, 2].map(() => {
        const client = library.single(server);
        made.push(client);
        return createCache({
          tiers: [memoryTier(), redisTier({ client: client.client, prefix: 'lock:', timeout: '3s' })],
          lock: { timeout: '3s', poll: '10ms' },
        });
      });
      try {
        await expectOneLoaderCall(caches);
      } finally {
        await Promise.all(caches.map((cache) => cache.close()));
      }
    });

    it('a hung server (SIGSTOP): calls time out, the breaker opens and skips it, and closes once it answers', async () => {
      const server = await startRedis();
      const client = library.single(server);
      made.push(client);
      const states: string[] = [];
      const cache = createCache({
        tiers: [
          memoryTier(),
          redisTier({
            client: client.client,
            prefix: 'hung:',
            timeout: 100,
            breaker: { failures: 3, cooldown: 200 },
          }),
        ],
        onError: () => {},
      });
      cache.on('breaker', ({ state }) => states.push(state));
      try {
        await cache.set('warm', 'w');
        await server.pause();
        for (let i = 0; i < 4; i++) expect(await cache.getOrSet(`k${i}`, () => i)).toBe(i);
        expect(states).toEqual(['open']);
        expect(cache.stats().tiers[1]!.timeouts).toBeGreaterThanOrEqual(3);
        expect(cache.stats().tiers[1]!.breaker!.skipped).toBeGreaterThan(0);
        await server.resume();
        await until(
          'the breaker to close',
          async () => {
            await cache.getOrSet(`probe${Math.random()}`, () => 0);
            return cache.stats().tiers[1]!.breaker!.state === 'closed';
          },
          15_000,
        );
      } finally {
        await cache.close();
      }
    });
  });

  describe(`when the server dies, ${library.name}`, () => {
    const made: TestClient[] = [];
    afterAll(async () => {
      await Promise.all(made.map((client) => client.close()));
      await stopAllRedis();
    });

    it('keeps serving L1 hits and loads misses from the origin, reporting each fault', async () => {
      const server = await startRedis();
      const client = library.single(server);
      made.push(client);
      const errors: CacheError[] = [];
      const cache = createCache({
        tiers: [memoryTier(), redisTier({ client: client.client, prefix: 'dies:', timeout: '1s' })],
        onError: (error) => errors.push(error),
      });
      try {
        // From a steady state: an entry written before the bus's first subscription may be
        // dropped from L1 when the subscription starts, since nothing vouches for it.
        await subscribed(cache);
        await cache.set('warm', 'w');
        expect(await cache.get('warm')).toBe('w');
        await server.kill();
        expect(await cache.get('warm')).toBe('w');
        expect(await cache.getOrSet('cold', () => 'from origin')).toBe('from origin');
        expect(await cache.get('cold')).toBe('from origin');
        const tierErrors = errors.filter((e) => e.code !== 'E_BUS');
        expect(tierErrors.length).toBeGreaterThanOrEqual(1);
        expect(tierErrors.every((e) => e.code === 'E_TIER' && e.tier === 'redis')).toBe(true);
      } finally {
        await cache.close();
      }
    });
  });
}
