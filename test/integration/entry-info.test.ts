import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier } from '../../src/index.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';

let server: RedisProcess;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(stopAllRedis);

describe('entry metadata across tiers', () => {
  it('names the remote tier that answered and keeps the creation time from the writer', async () => {
    const tiers = () => [
      memoryTier({ ttl: '5s' }),
      redisTier({ client: server.url, prefix: 'info:', ttl: '1m' }),
    ];
    const writer = createCache({ tiers: tiers() });
    const reader = createCache({ tiers: tiers() });
    try {
      const written = await writer.getOrSetEntry('p:1', () => ({ id: 1 }));
      expect(written.tier).toBe('origin');
      const fromRedis = await reader.getOrSetEntry('p:1', () => ({ id: 2 }));
      expect(fromRedis).toMatchObject({ value: { id: 1 }, tier: 'redis', createdAt: written.createdAt });
      // The remote copy lives a minute; the answer describes that copy.
      expect(fromRedis.expiresAt - fromRedis.createdAt).toBe(60_000);
      const promoted = await reader.getEntry('p:1');
      expect(promoted).toMatchObject({ tier: 'memory', createdAt: written.createdAt });
      expect(promoted!.expiresAt).toBeLessThanOrEqual(Date.now() + 5_000);
      const other = createCache({ tiers: tiers() });
      expect(await other.getEntry('p:1')).toMatchObject({ tier: 'redis', value: { id: 1 } });
      await other.close();
    } finally {
      await writer.clear();
      await Promise.all([writer.close(), reader.close()]);
    }
  });
});
