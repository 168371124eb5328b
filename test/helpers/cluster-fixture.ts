/**
 * A test file's cluster, started before its tests and stopped after them. Apart from
 * redis-cluster.ts because it registers vitest hooks: the bench starts clusters through that
 * file, outside vitest, where importing vitest throws.
 */
import { afterAll, beforeAll } from 'vitest';
import type { TierCache } from '../../src/index.js';
import { startCluster, type RedisClusterHandle } from './redis-cluster.js';

/** One cluster for a test file, and the caches its tests make on it (see redisFixture). */
export interface ClusterFixture {
  /** The file's cluster; started in `beforeAll`, so read it inside tests and hooks. */
  readonly cluster: RedisClusterHandle;
  /** Caches closed in `afterAll`, before the cluster stops. */
  readonly caches: TierCache[];
}

/** Registers the file's `beforeAll` (starting a 3 + 3 cluster) and `afterAll`. */
export function clusterFixture(): ClusterFixture {
  let cluster: RedisClusterHandle | undefined;
  const caches: TierCache[] = [];
  beforeAll(async () => {
    cluster = await startCluster();
  }, 60_000);
  afterAll(async () => {
    // Caches first, while the cluster still answers their unsubscribe.
    await Promise.all(caches.map((cache) => cache.close()));
    await cluster?.stop();
  });
  return {
    get cluster() {
      if (cluster === undefined) throw new Error('clusterFixture: the cluster starts in beforeAll');
      return cluster;
    },
    caches,
  };
}
