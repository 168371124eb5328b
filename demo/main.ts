/**
 * tiercache demo: a simulated product service. Several cache instances (as several service
 * instances would have) share one Redis; each has its own L1. A skewed (Zipf) read workload hits
 * them while the origin takes tens of milliseconds per read. At the end it prints, per tier, how
 * many requests it served and how fast, and how many origin calls the cache saved.
 *
 *   npm run demo                       # private redis-server if one is on the PATH
 *   REDIS_URL=redis://host:6379 npm run demo
 *   npm run demo -- --seconds 5 --instances 3
 */
import { parseArgs } from 'node:util';
import { createCache, memoryTier, redisTier, type RemoteTier, type TierCache } from '../src/index.js';
import { InProcessTier } from './in-process-tier.js';
import { prng, Samples, zipf } from './workload.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    instances: { type: 'string', default: '4' },
    products: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '16' },
    'l1-size': { type: 'string', default: '1000' },
  },
});
const SECONDS = Number(args.seconds);
const INSTANCES = Number(args.instances);
const PRODUCTS = Number(args.products);
const CONCURRENCY = Number(args.concurrency);
const L1_SIZE = Number(args['l1-size']);

interface L2 {
  label: string;
  tier(): RemoteTier;
  stop(): Promise<void>;
}

async function chooseL2(): Promise<L2> {
  const prefix = `tiercache-demo:${process.pid}:`;
  if (process.env['REDIS_URL']) {
    const url = process.env['REDIS_URL'];
    return {
      label: `Redis at ${url} (REDIS_URL)`,
      tier: () => redisTier({ client: url, prefix }),
      stop: async () => {},
    };
  }
  try {
    const { startRedis } = await import('../test/helpers/redis-server.js');
    const server = await startRedis();
    return {
      label: `a private redis-server on port ${server.port}`,
      tier: () => redisTier({ client: server.url, prefix }),
      stop: () => server.stop(),
    };
  } catch (error) {
    const shared = new Map<string, { payload: string; deleteAt: number }>();
    return {
      label: `an IN-PROCESS STAND-IN for Redis (no REDIS_URL, and redis-server could not start: ${(error as Error).message.split('\n')[0]})`,
      tier: () => new InProcessTier(shared),
      stop: async () => {},
    };
  }
}

interface Product {
  id: number;
  name: string;
  price: number;
  updatedAt: Date;
}

let originCalls = 0;
/** The origin: a database read that takes 20–40 ms. */
async function loadProduct(id: number): Promise<Product> {
  originCalls++;
  await new Promise((resolve) => setTimeout(resolve, 20 + ((id * 7919) % 21)));
  return {
    id,
    name: `Product ${id}`,
    price: Math.round((id % 500) * 1.37 * 100) / 100,
    updatedAt: new Date(),
  };
}

const latency = { memory: new Samples(), redis: new Samples(), origin: new Samples() };

async function worker(cache: TierCache, draw: () => number, until: number): Promise<void> {
  while (performance.now() < until) {
    const id = draw();
    let loaded = false;
    // The L1 hit counter moves synchronously inside the call on a hit, so reading it around the
    // call (no await in between) tells which tier answered without racing other workers.
    const l1Before = cache.stats().tiers[0]!.hits;
    const started = performance.now();
    const pending = cache.getOrSet(`product:${id}`, () => {
      loaded = true;
      return loadProduct(id);
    });
    const fromL1 = cache.stats().tiers[0]!.hits > l1Before;
    await pending;
    const micros = (performance.now() - started) * 1000;
    (fromL1 ? latency.memory : loaded ? latency.origin : latency.redis).add(micros);
  }
}

function fmtMicros(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`;
}

async function main(): Promise<void> {
  const l2 = await chooseL2();
  console.log(
    `tiercache demo: ${INSTANCES} service instances, each with its own L1 (${L1_SIZE} entries, 30 s),`,
  );
  console.log(`sharing L2 = ${l2.label}.`);
  console.log(
    `Workload: ${PRODUCTS} products, Zipf(1.0) reads, ${CONCURRENCY} concurrent requests per instance, ${SECONDS} s.`,
  );
  console.log('Origin: a simulated database read of 20–40 ms.\n');

  const caches = Array.from({ length: INSTANCES }, () =>
    createCache({ tiers: [memoryTier({ maxEntries: L1_SIZE, ttl: '30s' }), l2.tier()] }),
  );
  const random = prng(42);
  const draw = zipf(PRODUCTS, 1.0, random);
  const started = performance.now();
  const until = started + SECONDS * 1000;
  const progress = setInterval(() => {
    const requests = latency.memory.count + latency.redis.count + latency.origin.count;
    const elapsed = (performance.now() - started) / 1000;
    // On a terminal the progress line rewrites itself; in a log it prints one line per second.
    process.stdout.write(
      `${process.stdout.isTTY ? '\r' : '\n'}  ${elapsed.toFixed(0).padStart(3)} s  ${requests.toLocaleString('en-US').padStart(10)} requests  ` +
        `${originCalls.toLocaleString('en-US').padStart(7)} origin calls  ` +
        `${((1 - originCalls / Math.max(1, requests)) * 100).toFixed(1)}% served from cache `,
    );
  }, 1000);
  await Promise.all(
    caches.flatMap((cache) => Array.from({ length: CONCURRENCY }, () => worker(cache, draw, until))),
  );
  clearInterval(progress);
  process.stdout.write('\n\n');

  const total = latency.memory.count + latency.redis.count + latency.origin.count;
  const rows = [
    ['L1 (memory, per instance)', latency.memory],
    ['L2 (shared Redis)', latency.redis],
    ['origin (database)', latency.origin],
  ] as const;
  console.log('tier                          requests   share     p50 latency   p99 latency');
  for (const [name, samples] of rows) {
    console.log(
      `${name.padEnd(28)}${samples.count.toLocaleString('en-US').padStart(10)}  ${((samples.count / total) * 100).toFixed(1).padStart(5)}%` +
        `  ${fmtMicros(samples.percentile(50)).padStart(12)}  ${fmtMicros(samples.percentile(99)).padStart(12)}`,
    );
  }
  const l2Stats = caches.map((c) => c.stats().tiers[1]!);
  const l2Hits = l2Stats.reduce((sum, t) => sum + t.hits, 0);
  const l2Misses = l2Stats.reduce((sum, t) => sum + t.misses, 0);
  const l1Hits = caches.reduce((sum, c) => sum + c.stats().tiers[0]!.hits, 0);
  console.log(
    `\nL1 hit rate ${((l1Hits / total) * 100).toFixed(1)}%, L2 hit rate (of L1 misses) ${((l2Hits / Math.max(1, l2Hits + l2Misses)) * 100).toFixed(1)}%`,
  );
  console.log(
    `origin calls: ${originCalls.toLocaleString('en-US')} for ${total.toLocaleString('en-US')} requests — ` +
      `${(total - originCalls).toLocaleString('en-US')} saved (${(((total - originCalls) / total) * 100).toFixed(1)}%), ` +
      `about ${(((total - originCalls) * 30) / 1000).toFixed(0)} s of database time.`,
  );
  await caches[0]!.clear();
  await Promise.all(caches.map((cache) => cache.close()));
  await l2.stop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
