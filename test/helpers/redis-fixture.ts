import { afterAll, beforeAll } from 'vitest';
import {
  createCache,
  memoryTier,
  redisTier,
  type CacheOptions,
  type RedisTierOptions,
  type TierCache,
} from '../../src/index.js';
import { startRedis, stopAllRedis, type RedisProcess } from './redis-server.js';

/** One private redis-server for a test file, and the caches its tests make on it. */
export interface RedisFixture {
  /** The file's server; started in `beforeAll`, so read it inside tests and hooks. */
  readonly server: RedisProcess;
  /**
   * A cache with a 1 h memory L1 and a Redis L2 under `prefix` on `target` (the file's server
   * by default), closed in `afterAll`.
   */
  readonly instance: (prefix: string, options?: CacheOptions, target?: RedisProcess) => TierCache;
  /** Closes a cache the test made itself in `afterAll`; returns it. */
  readonly track: <T extends TierCache>(cache: T) => T;
}

/**
 * Registers the file's `beforeAll`/`afterAll`. `tier` goes into every `instance()`'s Redis tier:
 * `{ timeout: PATIENT }` where no test needs a call to a dead Redis to fail fast.
 */
export function redisFixture(tier: Omit<RedisTierOptions, 'client' | 'prefix'> = {}): RedisFixture {
  let server: RedisProcess | undefined;
  const caches: TierCache[] = [];
  const started = (): RedisProcess => {
    if (server === undefined) throw new Error('redisFixture: the server starts in beforeAll');
    return server;
  };
  const track = <T extends TierCache>(cache: T): T => {
    caches.push(cache);
    return cache;
  };

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    // Caches first, while Redis still answers their unsubscribe; then every server of the file,
    // including one a test started itself and did not get to stop because it failed.
    await Promise.all(caches.map((cache) => cache.close()));
    await stopAllRedis();
  });

  return {
    get server() {
      return started();
    },
    instance: (prefix, options = {}, target = started()) =>
      track(
        createCache({
          tiers: [
            memoryTier({ ttl: '1h' }),
            redisTier({ client: target.client({ enableAutoPipelining: true }), prefix, ...tier }),
          ],
          ...options,
        }),
      ),
    track,
  };
}
