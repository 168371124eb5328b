/**
 * tiercache demo: a product-catalogue service in front of a real database, run as three
 * instances (separate processes) that share Redis, each with its own L1, driven by a skewed
 * load with writes. It prints a progress line every second and a summary table at the end, and
 * serves a live dashboard and each instance's Prometheus metrics while it runs.
 *
 *   npm run demo                          # 20 s, then the summary
 *   npm run demo -- --serve               # keeps running until Ctrl-C: open the dashboard
 *   npm run demo -- --duration 60s --instances 4 --writes 0.05
 *   REDIS_URL=redis://host:6379 DATABASE_URL=postgres://… npm run demo
 *
 * Redis: REDIS_URL, else a private redis-server (when one is on the PATH), else an in-process
 * stand-in shared by instances running in this process. Database: PostgreSQL when DATABASE_URL
 * is set, else SQLite in a temp dir; seeded at start either way.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/internal/duration.js';
import { seed, type DatabaseConfig } from './catalogue.js';
import { dashboardHtml } from './dashboard.js';
import { InProcessTier } from './in-process-tier.js';
import { startInstance, type InstanceConfig, type InstanceStats, type RunningInstance } from './instance.js';
import { ANSWERED, LoadGenerator, percentiles, type Answered, type Interval } from './load.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '20s' },
    serve: { type: 'boolean', default: false },
    instances: { type: 'string', default: '3' },
    products: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '24' },
    writes: { type: 'string', default: '0.01' },
    skew: { type: 'string', default: '1.0' },
    'db-latency': { type: 'string', default: '5ms' },
    'l1-entries': { type: 'string', default: '1000' },
    port: { type: 'string', default: '0' },
  },
});

function numberArg(name: keyof typeof args, check: (n: number) => boolean): number {
  const value = Number(args[name]);
  if (!check(value)) {
    console.error(`--${name}: ${String(args[name])} is not valid`);
    process.exit(2);
  }
  return value;
}
function durationArg(name: 'duration' | 'db-latency'): number {
  const ms = parseDuration(args[name], { allowZero: true });
  if (typeof ms === 'string') {
    console.error(`--${name}: ${ms}`);
    process.exit(2);
  }
  return ms;
}

const DURATION = durationArg('duration');
const INSTANCES = numberArg('instances', (n) => Number.isInteger(n) && n >= 1 && n <= 16);
const PRODUCTS = numberArg('products', (n) => Number.isInteger(n) && n >= 10);
const CONCURRENCY = numberArg('concurrency', (n) => Number.isInteger(n) && n >= 1);
const WRITES = numberArg('writes', (n) => n >= 0 && n <= 1);
const SKEW = numberArg('skew', (n) => n >= 0);
const L1_ENTRIES = numberArg('l1-entries', (n) => Number.isInteger(n) && n >= 1);
const PORT = numberArg('port', (n) => Number.isInteger(n) && n >= 0 && n < 65536);
const DB_LATENCY = durationArg('db-latency');
// One prefix per run, so runs sharing a Redis (REDIS_URL) never meet; one ":" at the end, as
// prefixes must (no prefix may start another).
const PREFIX = `tiercache-demo.${process.pid}:`;

interface Shared {
  label: string;
  /** Starts the instances; children when there is a real Redis, in this process otherwise. */
  start(config: Omit<InstanceConfig, 'name' | 'redisUrl'>): Promise<{ name: string; url: string }[]>;
  stop(): Promise<void>;
}

async function chooseRedis(): Promise<Shared> {
  const url = process.env['REDIS_URL'];
  if (url) return processes(`Redis at ${url} (REDIS_URL)`, url, async () => {});
  try {
    const { startRedis } = await import('../test/helpers/redis-server.js');
    const server = await startRedis();
    // The harness SIGKILLs its servers on SIGINT at once; the demo stops its instances and
    // prints the summary first, then stops the server itself (the exit hook still covers crashes).
    process.removeAllListeners('SIGINT');
    return processes(`a private redis-server on port ${server.port}`, server.url, () => server.stop());
  } catch (error) {
    const map = new Map<string, { payload: string; deleteAt: number }>();
    const running: RunningInstance[] = [];
    return {
      label:
        'an IN-PROCESS STAND-IN for Redis, instances in this process (no REDIS_URL, and redis-server ' +
        `could not start: ${(error as Error).message.split('\n')[0]})`,
      async start(config) {
        for (let i = 0; i < INSTANCES; i++)
          running.push(
            await startInstance(
              { ...config, name: `instance-${i + 1}`, redisUrl: undefined },
              new InProcessTier(map),
            ),
          );
        return running;
      },
      async stop() {
        await Promise.all(running.map((instance) => instance.close()));
      },
    };
  }
}

/** Instances as child processes sharing the Redis at `redisUrl`. */
function processes(label: string, redisUrl: string, stopRedis: () => Promise<void>): Shared {
  const children: ChildProcess[] = [];
  return {
    label,
    async start(config) {
      const file = join(import.meta.dirname, 'instance-process.ts');
      return Promise.all(
        Array.from({ length: INSTANCES }, (_, i) => {
          const name = `instance-${i + 1}`;
          const child = fork(file, [], {
            execArgv: ['--import', 'tsx'],
            env: { ...process.env, TIERCACHE_DEMO_INSTANCE: JSON.stringify({ ...config, name, redisUrl }) },
          });
          children.push(child);
          return new Promise<{ name: string; url: string }>((resolve, reject) => {
            child.once('message', (message: { url: string }) => resolve({ name, url: message.url }));
            child.once('exit', (code) =>
              reject(new Error(`${name} exited with code ${code} before it was ready`)),
            );
          });
        }),
      );
    },
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || !child.connected) return resolve();
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              child.once('exit', () => {
                clearTimeout(timer);
                resolve();
              });
              child.send({ type: 'stop' });
            }),
        ),
      );
      await stopRedis();
    },
  };
}

/** One point of the dashboard's series: one sampling interval. */
interface Point {
  t: number;
  seconds: number;
  requests: number;
  writes: number;
  errors: number;
  staleReads: number;
  answered: Record<Answered, number>;
  latency: Record<Answered, { p50: number; p99: number }>;
  hitRate: { memory: number; redis: number; total: number };
  originCalls: number;
}

async function instanceStats(instances: readonly { url: string }[]): Promise<InstanceStats[]> {
  return Promise.all(
    instances.map(async ({ url }) => (await fetch(`${url}/stats.json`)).json() as Promise<InstanceStats>),
  );
}

/** Sums of the counters the charts difference between samples. */
function totals(stats: readonly InstanceStats[]) {
  const sum = (f: (s: InstanceStats) => number) => stats.reduce((a, s) => a + f(s), 0);
  return {
    l1Hits: sum((s) => s.cache.tiers[0]!.hits),
    l1Misses: sum((s) => s.cache.tiers[0]!.misses),
    redisHits: sum((s) => s.cache.tiers[1]!.hits),
    redisMisses: sum((s) => s.cache.tiers[1]!.misses),
    loaderCalls: sum((s) => s.cache.loader.calls),
    dbQueries: sum((s) => s.dbQueries),
  };
}

const rate = (hits: number, misses: number): number =>
  hits + misses === 0 ? 0 : (100 * hits) / (hits + misses);
const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
const fmtMicros = (us: number): string =>
  us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`;

const SHARE_LABEL: Record<Answered, string> = { memory: 'L1', redis: 'Redis', origin: 'origin' };

async function main(): Promise<void> {
  const shared = await chooseRedis();
  const databaseUrl = process.env['DATABASE_URL'];
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-demo-'));
  const db: DatabaseConfig = databaseUrl
    ? { kind: 'postgres', url: databaseUrl }
    : { kind: 'sqlite', file: join(dir, 'catalogue.db') };
  await seed(db, PRODUCTS);
  const instances = await shared.start({
    port: 0,
    prefix: PREFIX,
    db,
    dbLatencyMs: DB_LATENCY,
    l1Entries: L1_ENTRIES,
    l1Ttl: '30s',
    redisTtl: '5m',
  });

  const description =
    `${INSTANCES} instances (L1 ${fmtInt(L1_ENTRIES)} entries each) sharing ${shared.label}; ` +
    `${db.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'} with ${fmtInt(PRODUCTS)} products (+${DB_LATENCY} ms per query); ` +
    `Zipf(${SKEW}) reads, ${(WRITES * 100).toFixed(1)}% writes, ${CONCURRENCY} concurrent clients`;
  const points: Point[] = [];
  const dashboard = await serveDashboard(() => ({ description, instances, points: points.slice(-300) }));

  console.log('tiercache demo: a product catalogue behind a multi-level cache');
  console.log(`  ${INSTANCES} service instances, each with its own L1, sharing ${shared.label}`);
  console.log(
    `  origin: ${db.kind === 'sqlite' ? `SQLite at ${db.file}` : 'PostgreSQL (DATABASE_URL)'}, ${fmtInt(PRODUCTS)} products, +${DB_LATENCY} ms per query`,
  );
  console.log(
    `  load: Zipf(${SKEW}) product reads, ${(WRITES * 100).toFixed(1)}% price updates, ${CONCURRENCY} concurrent clients`,
  );
  console.log(`  dashboard:  ${dashboard.url}/dashboard`);
  for (const instance of instances)
    console.log(`  ${instance.name}: ${instance.url}/products/1   metrics: ${instance.url}/metrics`);
  console.log(
    args.serve
      ? '  running until Ctrl-C\n'
      : `  running for ${DURATION / 1000} s (--serve keeps it running)\n`,
  );

  const load = new LoadGenerator({
    urls: instances.map((i) => i.url),
    products: PRODUCTS,
    skew: SKEW,
    concurrency: CONCURRENCY,
    writeRatio: WRITES,
    seed: 42,
  });
  const started = performance.now();
  let previous = totals(await instanceStats(instances));
  let sampledAt = started;
  load.start();
  console.log(
    '  each second: reads/s, the share of reads answered by L1, Redis and the origin, database queries/s',
  );

  const sample = async (): Promise<void> => {
    const interval: Interval = load.take();
    const now = performance.now();
    const current = totals(await instanceStats(instances));
    const requests = interval.reads;
    const point: Point = {
      t: (now - started) / 1000,
      seconds: (now - sampledAt) / 1000,
      requests,
      writes: interval.writes,
      errors: interval.errors,
      staleReads: interval.staleReads,
      answered: { memory: 0, redis: 0, origin: 0 },
      latency: { memory: { p50: 0, p99: 0 }, redis: { p50: 0, p99: 0 }, origin: { p50: 0, p99: 0 } },
      hitRate: {
        memory: rate(current.l1Hits - previous.l1Hits, current.l1Misses - previous.l1Misses),
        redis: rate(current.redisHits - previous.redisHits, current.redisMisses - previous.redisMisses),
        total: 0,
      },
      originCalls: current.dbQueries - previous.dbQueries,
    };
    for (const tier of ANSWERED) {
      point.answered[tier] = interval.answered[tier].values.length;
      const { p50, p99 } = percentiles(interval.answered[tier]);
      point.latency[tier] = { p50: p50 / 1000, p99: p99 / 1000 };
    }
    point.hitRate.total = requests === 0 ? 0 : 100 * (1 - point.answered.origin / requests);
    // "Redis N%" means one thing everywhere in this output: the share of reads Redis answered,
    // as in the summary table. Hit rates (of the lookups a tier saw) are always called that.
    const share = (count: number): number => (requests === 0 ? 0 : (100 * count) / requests);
    points.push(point);
    previous = current;
    sampledAt = now;
    const line =
      `  ${point.t.toFixed(0).padStart(4)} s ${fmtInt(requests / point.seconds).padStart(7)} req/s` +
      ANSWERED.map(
        (tier) => `   ${SHARE_LABEL[tier]} ${share(point.answered[tier]).toFixed(1).padStart(5)}%`,
      ).join('') +
      `   database ${fmtInt(point.originCalls / point.seconds).padStart(5)} queries/s` +
      `   stale reads ${load.total.staleReads}`;
    // On a terminal the progress line rewrites itself; in a log it prints one line per second.
    process.stdout.write(process.stdout.isTTY ? `\r${line}` : `${line}\n`);
  };

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => void sample().catch(() => {}), 1000);
    const finish = (): void => {
      clearInterval(timer);
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      clearTimeout(deadline);
      resolve();
    };
    const deadline = setTimeout(finish, args.serve ? 2 ** 31 - 1 : DURATION);
    process.on('SIGINT', finish);
    process.on('SIGTERM', finish);
  });
  await load.stop();
  const finalStats = await instanceStats(instances).catch(() => undefined);
  const elapsed = (performance.now() - started) / 1000;
  process.stdout.write(process.stdout.isTTY ? '\n\n' : '\n');
  summary(load.total, finalStats, elapsed);
  dashboard.server.closeAllConnections();
  await new Promise((resolve) => dashboard.server.close(resolve));
  await shared.stop();
  rmSync(dir, { recursive: true, force: true });
}

function summary(total: Interval, stats: InstanceStats[] | undefined, elapsed: number): void {
  const requests = total.reads;
  const rows: [string, Answered][] = [
    ['L1 (memory, per instance)', 'memory'],
    ['Redis (shared)', 'redis'],
    ['origin (database)', 'origin'],
  ];
  console.log('answered by                   requests   share   p50 latency   p99 latency');
  for (const [label, tier] of rows) {
    const latencies = total.answered[tier];
    const { p50, p99 } = percentiles(latencies);
    const count = latencies.values.length;
    console.log(
      `${label.padEnd(28)}${fmtInt(count).padStart(10)}  ${((100 * count) / Math.max(1, requests)).toFixed(1).padStart(5)}%` +
        `  ${fmtMicros(p50).padStart(12)}  ${fmtMicros(p99).padStart(12)}`,
    );
  }
  const trip = percentiles(total.roundTrip);
  console.log(
    `${'all reads, client round trip'.padEnd(28)}${fmtInt(requests).padStart(10)}  100.0%` +
      `  ${fmtMicros(trip.p50).padStart(12)}  ${fmtMicros(trip.p99).padStart(12)}`,
  );
  console.log(
    `(per tier: the service's own time, from its Server-Timing header; ${elapsed.toFixed(1)} s, ${fmtInt(requests / elapsed)} reads/s)`,
  );
  if (stats !== undefined) {
    const sums = totals(stats);
    console.log(
      `\norigin calls: ${fmtInt(sums.loaderCalls)} loads, ${fmtInt(sums.dbQueries)} database queries (incl. writes) ` +
        `for ${fmtInt(requests + total.writes)} requests: ${(100 * (1 - total.answered.origin.values.length / Math.max(1, requests))).toFixed(1)}% of reads served from cache`,
    );
    for (const s of stats) {
      const [l1, redis] = s.cache.tiers;
      console.log(
        `  ${s.name}: L1 hit rate ${rate(l1!.hits, l1!.misses).toFixed(1)}%, Redis hit rate (of L1 misses) ${rate(redis!.hits, redis!.misses).toFixed(1)}%, ` +
          `${fmtInt(s.cache.loader.calls)} loads`,
      );
    }
  }
  console.log(
    `writes: ${fmtInt(total.writes)} price updates; reads that returned a price older than an acknowledged write: ${total.staleReads}` +
      (total.errors > 0 ? `; failed requests: ${total.errors}` : ''),
  );
}

async function serveDashboard(data: () => object): Promise<{ server: Server; url: string }> {
  const html = dashboardHtml('tiercache demo: product catalogue');
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/api/series') {
      response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(JSON.stringify(data()));
    } else if (path === '/dashboard' || path === '/dashboard/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(html);
    } else if (path === '/') {
      response.writeHead(302, { location: '/dashboard' });
      response.end();
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(PORT, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : PORT;
  return { server, url: `http://127.0.0.1:${port}` };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
