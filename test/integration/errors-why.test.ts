import { describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type CacheError } from '../../src/index.js';
import { subscribed } from '../helpers/bus-waits.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { startRedis } from '../helpers/redis-server.js';
import { startTlsRedis, testCertificates } from '../helpers/tls.js';
import { until } from '../helpers/wait-for.js';

const redis = redisFixture();
const { track } = redis;

describe('errors say why', () => {
  it('clear() rejects when Redis refuses its SCAN, and the tier is not left waiting to clear', async () => {
    await redis.server.cli('ACL', 'SETUSER', 'noscan', 'on', '>pw', '~*', '&*', '+@all', '-scan');
    const tier = redisTier({
      client: redis.server.client({ username: 'noscan', password: 'pw' }),
      prefix: 'ns1:',
    });
    const cache = track(createCache({ tiers: [tier], bus: false }));
    await cache.set('k', 1);
    const error = (await cache.clear().catch((e: unknown) => e)) as CacheError;
    expect(error).toMatchObject({ code: 'E_TIER', tier: 'redis' });
    expect(error.message).toMatch(/NOPERM|scan/i);
    expect(await cache.get('k')).toBe(1);
    expect(cache.stats().tiers[0]).toMatchObject({ repair: { pending: 0 }, breaker: { state: 'closed' } });
  });

  it('a TLS failure reaches onError naming the certificate problem', async () => {
    const { tlsPort } = await startTlsRedis(testCertificates());
    // Untrusted CA: the client does not know the test CA.
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [redisTier({ client: `rediss://127.0.0.1:${tlsPort}`, prefix: 'tls:' })],
      bus: false,
      onError: (error) => errors.push(error),
    });
    try {
      expect(await cache.getOrSet('k', () => 'origin')).toBe('origin');
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(error.message).toMatch(/certificate/);
    } finally {
      await cache.close();
    }
  });

  it('the password changed under a connected cache: the bus’s publish errors name NOAUTH', async () => {
    // Before, the bus said only "the Redis client is reconnecting" (or that a PUBLISH timed
    // out), while the tier's errors for the same connection named NOAUTH.
    const server = await startRedis();
    const admin = server.client(); // stays connected and authenticated through the change
    const errors: CacheError[] = [];
    const a = track(
      createCache({
        tiers: [memoryTier(), redisTier({ client: server.client(), prefix: 'pw:' })],
        onError: (error) => errors.push(error),
      }),
    );
    await subscribed(a);
    await admin.call('CONFIG', 'SET', 'requirepass', 'changed');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'normal');
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    // Each set publishes, and fails to; once the client has seen NOAUTH, the report names it.
    await until(
      'a failed publish naming NOAUTH',
      async () => {
        await a.set('k', 1);
        return errors.some(
          (e) => e.code === 'E_BUS' && /publish/.test(e.message) && /NOAUTH/.test(e.message),
        );
      },
      10_000,
      50,
    );
  });
});
