import { Redis, type Cluster } from 'ioredis';
import { createCache, redisTier } from './library.js';
import { comparePair, concurrentRate, fmtRate, verdict } from './harness.js';

const KEYS = 2_000;
const OPS = 50_000;
const WORKERS = 64;

/**
 * L2 hits (no L1) on a 3-master cluster beside the same on a single Redis, same run, and the
 * pipelines a getMany over many slots sends (target: one per master). The single Redis reads
 * unbatched here, as a cluster tier does: like for like.
 */
export async function clusterScenario(
  singleUrl: string,
  cluster: Cluster,
  masters: number,
): Promise<boolean> {
  const prefix = 'bench-cl:';
  const single = new Redis(singleUrl, { enableAutoPipelining: true });
  const onSingle = createCache({ tiers: [redisTier({ client: single, prefix, batchReads: false })] });
  const onCluster = createCache({ tiers: [redisTier({ client: cluster, prefix })] });
  const keys = Array.from({ length: KEYS }, (_, i) => `product:${i}`);
  const items = keys.map((key, i) => ({
    key,
    value: { id: i, name: `Product ${i}`, price: 12.5 },
    ttl: '10m' as const,
  }));
  await onSingle.setMany(items);
  await onCluster.setMany(items);
  const result = await comparePair(
    {
      baseline: () => concurrentRate(OPS, WORKERS, (i) => onSingle.get(keys[i % KEYS]!)),
      subject: () => concurrentRate(OPS, WORKERS, (i) => onCluster.get(keys[i % KEYS]!)),
    },
    3,
  );
  let pipelines = 0;
  const original = cluster.pipeline.bind(cluster);
  cluster.pipeline = (...args: Parameters<Cluster['pipeline']>) => {
    pipelines++;
    return original(...args);
  };
  const many = await onCluster.getMany(keys.slice(0, 100));
  cluster.pipeline = original;
  const ok = pipelines === masters && many.every((v) => v !== undefined);
  console.log(
    `Cluster L2 hit, ${WORKERS} concurrent: ${fmtRate(result.subject)} vs single Redis (unbatched) ${fmtRate(result.baseline)} → ${result.ratio.toFixed(2)}x; ` +
      `getMany(100 keys over many slots): ${pipelines} pipelines for ${masters} masters ${verdict(ok)}`,
  );
  await onSingle.clear();
  await onCluster.clear();
  await onSingle.close();
  await onCluster.close();
  single.disconnect();
  return ok;
}
