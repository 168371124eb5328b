import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { stopAllRedis } from '../helpers/redis-server.js';
import { startTlsRedis, testCertificates, type TestCertificates } from '../helpers/tls.js';

/**
 * A TLS socket whose handshake failed can raise a second 'error' while it is torn down (the
 * server's alert after the client rejected its certificate); ioredis listens for only one. Every
 * client the library creates or listens on — the tier's own, the one it was given, the bus's
 * subscriber, a Cluster's nodes — must keep that second error handled until the client has ended,
 * however the close races the handshake. (Issue 19, §5: 2 of 6 rounds crashed the process.)
 */
describe('closing caches whose TLS connections fail', () => {
  let certificates: TestCertificates;
  let tlsPort: number;
  beforeAll(async () => {
    certificates = testCertificates();
    ({ tlsPort } = await startTlsRedis(certificates));
  });
  afterAll(stopAllRedis);

  /** Builds `rounds` caches at once, closes each after its own delay, and counts uncaught errors. */
  async function closeWhileFailing(
    rounds: number,
    make: () => { cache: TierCache; client?: Redis | Cluster },
  ): Promise<unknown[]> {
    const uncaught: unknown[] = [];
    const record = (error: unknown): void => {
      uncaught.push(error);
    };
    process.on('uncaughtException', record);
    try {
      await Promise.all(
        Array.from({ length: rounds }, async (_, i) => {
          const { cache, client } = make();
          const read = cache.getOrSet('k', () => 'origin');
          // Spread over the handshake and the reconnects after it: 0 to ~120 ms.
          await new Promise((resolve) => setTimeout(resolve, (i * 7) % 121));
          await cache.close();
          client?.disconnect();
          // Served by the origin whatever happened to Redis.
          expect(await read).toBe('origin');
        }),
      );
      // Late alerts from the last torn-down sockets.
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.off('uncaughtException', record);
    }
    return uncaught;
  }

  const retry = { maxRetriesPerRequest: 0, retryStrategy: (n: number) => Math.min(n * 10, 50) };
  const cacheOn = (client: Redis | Cluster | string): TierCache =>
    createCache({
      tiers: [memoryTier({ ttl: '1m' }), redisTier({ client, prefix: 'tls:', timeout: '100ms' })],
      onError: () => {},
    });

  it('an owned client (rediss:// URL) whose CA is not trusted, with its bus subscriber', async () => {
    const uncaught = await closeWhileFailing(30, () => ({ cache: cacheOn(`rediss://127.0.0.1:${tlsPort}`) }));
    expect(uncaught).toEqual([]);
  });

  it('a given client whose server name the certificate does not cover, with the bus subscriber duplicated from it', async () => {
    const uncaught = await closeWhileFailing(30, () => {
      const client = new Redis({
        host: '127.0.0.1',
        port: tlsPort,
        tls: { ca: certificates.ca, servername: 'elsewhere.example' },
        ...retry,
      });
      client.on('error', () => {});
      return { cache: cacheOn(client), client };
    });
    expect(uncaught).toEqual([]);
  });

  it('a given Cluster client whose nodes fail the handshake', async () => {
    const uncaught = await closeWhileFailing(20, () => {
      const client = new Cluster([{ host: '127.0.0.1', port: tlsPort }], {
        redisOptions: { tls: { ca: certificates.ca, servername: 'elsewhere.example' }, ...retry },
        clusterRetryStrategy: (n: number) => Math.min(n * 10, 50),
      });
      client.on('error', () => {});
      return { cache: cacheOn(client), client };
    });
    expect(uncaught).toEqual([]);
  });
});
