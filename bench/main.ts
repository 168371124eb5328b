/**
 * npm run bench — speed figures, each printed beside a baseline measured in the same run.
 * Uses REDIS_URL when set, else a private redis-server started for the run.
 */
import { bigValues } from './big-values.js';
import { clusterScenario } from './cluster.js';
import { fleetScenario } from './fleet.js';
import { getMany } from './get-many.js';
import { hitRatios } from './hit-ratio.js';
import { memoryFootprint } from './memory.js';
import { l1Hit } from './l1-hit.js';
import { l1Scale } from './l1-scale.js';
import {
  l2Hit,
  l2HitNodeRedis,
  l2HitOtherClients,
  l2HitSequential,
  l2HitSequentialNodeRedis,
} from './l2-hit.js';
import { missPath } from './miss.js';
import { resilienceHit } from './resilience.js';
import { redisDown } from './redis-down.js';

async function redisUrl(): Promise<{ url: string; stop: () => Promise<void> } | undefined> {
  if (process.env['REDIS_URL']) return { url: process.env['REDIS_URL'], stop: async () => {} };
  try {
    const { startRedis } = await import('../test/helpers/redis-server.js');
    const server = await startRedis();
    return { url: server.url, stop: () => server.stop() };
  } catch (error) {
    console.log(`(no Redis: ${(error as Error).message.split('\n')[0]}; Redis scenarios skipped)`);
    return undefined;
  }
}

/** Starts a private 3-master cluster (when redis-server is on the PATH) for the cluster figures. */
async function onCluster(singleUrl: string): Promise<boolean> {
  const { startCluster } = await import('../test/helpers/redis-cluster.js');
  const cluster = await startCluster();
  try {
    const client = cluster.client({ enableAutoPipelining: true });
    await client.ping();
    return await clusterScenario(singleUrl, client, (await cluster.masters()).length);
  } finally {
    await cluster.stop();
  }
}

async function main(): Promise<void> {
  console.log(
    `tiercache benchmarks — node ${process.version}, ${(await import('node:os')).cpus().length} cores\n`,
  );
  const results: boolean[] = [];
  results.push(await l1Hit('tinylfu', 'zipf'));
  results.push(await l1Hit('lru', 'zipf'));
  results.push(await l1Hit('lru', 'uniform'));
  // tinylfu's worst case, printed for the record: every key equally warm.
  await l1Hit('tinylfu', 'uniform');
  // 1k to 1M resident entries, speed and memory, each from a process of its own.
  results.push(await l1Scale());
  const redis = await redisUrl();
  if (redis !== undefined) {
    try {
      results.push(await l2Hit(redis.url));
      results.push(await l2HitSequential(redis.url));
      // One GET per read, as on a cluster: the cache's own cost per read, for the record.
      await l2Hit(redis.url, false);
      results.push(await l2HitNodeRedis(redis.url));
      // ioredis 6, iovalkey and node-redis 6, each against its own raw client.
      results.push(await l2HitOtherClients(redis.url));
      // One caller on node-redis, for the record beside ioredis's row.
      await l2HitSequentialNodeRedis(redis.url);
      results.push(await resilienceHit(redis.url));
      // The miss path (read, loader, conditional fill), for the record beside raw GET+SET.
      await missPath(redis.url);
      results.push(await getMany(redis.url));
      // Bytes stored and latency for 10 KB to 1 MB, compression off and on.
      results.push(await bigValues(redis.url));
      results.push(await fleetScenario(redis.url));
      results.push(await onCluster(redis.url));
      results.push(await redisDown());
    } finally {
      await redis.stop();
    }
  }
  console.log('');
  await memoryFootprint('tinylfu');
  console.log('\nHit ratios (the real L1 policy code, replayed):');
  results.push(await hitRatios());
  console.log(`\n${results.filter(Boolean).length} of ${results.length} targets met.`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
