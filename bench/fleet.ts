/**
 * The bus at fleet scale: N cache instances (each its own connections) on one Redis, idle and
 * under a write load. Reports Redis output bytes/s and CPU (INFO deltas) per instance, idle, for
 * this bus (private heartbeats) beside the broadcast heartbeats of the previous version (the
 * same bus on a transport without private channels, as a custom one has); and per-instance
 * invalidation latency p50/p99 beside a raw SET-then-PUBLISH to N raw subscribers.
 * FLEET_SIZES=10,50,200 (the default) picks the fleet sizes.
 */
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { TierCache } from '../src/index.js';
import { RedisPubSubTransport, type BusTransport } from '../src/sync/transport.js';
import { createCache, memoryTier, redisTier } from './library.js';
import { verdict } from './harness.js';

const IDLE_MS = 3_000;
const WRITES = 150;
const WRITE_EVERY_MS = 10;

interface RedisCounters {
  bytes: number;
  cpu: number;
}

async function counters(admin: Redis): Promise<RedisCounters> {
  const stats = await admin.info('stats');
  const cpu = await admin.info('cpu');
  const field = (text: string, name: string): number =>
    Number(new RegExp(`${name}:([0-9.]+)`).exec(text)![1]);
  return {
    bytes: field(stats, 'total_net_output_bytes'),
    cpu: field(cpu, 'used_cpu_user') + field(cpu, 'used_cpu_sys'),
  };
}

/** Redis output bytes/s and CPU ms/s over `ms` of whatever runs meanwhile. */
async function measure(
  admin: Redis,
  ms: number,
): Promise<{ bytesPerSecond: number; cpuMsPerSecond: number }> {
  const before = await counters(admin);
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = await counters(admin);
  return {
    bytesPerSecond: ((after.bytes - before.bytes) * 1000) / ms,
    cpuMsPerSecond: ((after.cpu - before.cpu) * 1e6) / ms,
  };
}

/** Delivery times of invalidation messages for write `w:<n>` keys, per receiving instance. */
class Arrivals {
  readonly sentAt = new Map<number, number>();
  readonly latencies: number[] = [];
  /** Per write, its first arrival: what Redis adds, before this one process's fan-out queue. */
  readonly first = new Map<number, number>();

  heard(payload: string | Buffer): void {
    const text = payload.toString();
    const match = /"k":\["w:(\d+)"/.exec(text);
    if (match === null) return;
    const sent = this.sentAt.get(Number(match[1]));
    if (sent === undefined) return;
    const latency = performance.now() - sent;
    this.latencies.push(latency);
    if (!this.first.has(Number(match[1]))) this.first.set(Number(match[1]), latency);
  }
}

/** The bus's transport, with every message timed on arrival; `broadcast` hides the private heartbeat channels and the log. */
function timed(client: Redis, channel: string, arrivals: Arrivals, broadcast: boolean): BusTransport {
  const inner = new RedisPubSubTransport(client, channel, broadcast ? false : 10_000);
  const subscribe: BusTransport['subscribe'] = (onMessage, onState, onError) =>
    inner.subscribe(
      (payload, from) => {
        arrivals.heard(payload);
        onMessage(payload, from);
      },
      onState,
      onError,
    );
  const base: BusTransport = {
    publish: (m) => inner.publish(m),
    subscribe,
    reconnect: () => inner.reconnect(),
    close: () => inner.close(),
    orderedConnection: inner.orderedConnection,
  };
  if (broadcast) return base;
  return {
    ...base,
    channels: inner.channels,
    publishChannel: inner.publishChannel,
    heartbeatChannels: inner.heartbeatChannels,
    publishTo: (channel, m) => inner.publishTo(channel, m),
    log: inner.log,
  };
}

async function fleet(
  url: string,
  size: number,
  prefix: string,
  broadcast: boolean,
  arrivals: Arrivals,
): Promise<{ caches: TierCache[]; clients: Redis[] }> {
  const clients: Redis[] = [];
  const caches = Array.from({ length: size }, () => {
    const client = new Redis(url, { enableAutoPipelining: true });
    clients.push(client);
    return createCache({
      tiers: [memoryTier({ ttl: '1h' }), redisTier({ client, prefix })],
      bus: { transport: timed(client, `tiercache:bus:${prefix}`, arrivals, broadcast) },
    });
  });
  const deadline = Date.now() + 30_000;
  while (!caches.every((c) => c.stats().bus.subscribed) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  return { caches, clients };
}

async function close(run: { caches: TierCache[]; clients: Redis[] }): Promise<void> {
  await Promise.all(run.caches.map((c) => c.close()));
  for (const client of run.clients) client.disconnect();
}

/** Writes `w:<n>` keys at a steady pace through `write`; the arrivals hold the latencies. */
async function writeLoad(arrivals: Arrivals, write: (key: string) => Promise<unknown>): Promise<void> {
  for (let n = 0; n < WRITES; n++) {
    const started = performance.now();
    arrivals.sentAt.set(n, started);
    await write(`w:${n}`);
    const rest = WRITE_EVERY_MS - (performance.now() - started);
    if (rest > 0) await new Promise((resolve) => setTimeout(resolve, rest));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
}

/** Raw SET then PUBLISH to `size` raw subscribers: the floor of an invalidation's latency. */
async function rawFloor(url: string, size: number): Promise<Arrivals> {
  const arrivals = new Arrivals();
  const channel = 'fleet:raw';
  const subscribers = await Promise.all(
    Array.from({ length: size }, async () => {
      const subscriber = new Redis(url);
      subscriber.on('message', (_channel: string, payload: string) => arrivals.heard(payload));
      await subscriber.subscribe(channel);
      return subscriber;
    }),
  );
  const writer = new Redis(url);
  try {
    await writeLoad(arrivals, async (key) => {
      await writer.set(key, '1');
      await writer.publish(channel, JSON.stringify({ v: 1, i: 'raw', q: 1, k: [key] }));
    });
  } finally {
    writer.disconnect();
    for (const s of subscribers) s.disconnect();
  }
  return arrivals;
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(2)} KB/s`;

export async function fleetScenario(url: string): Promise<boolean> {
  const sizes = (process.env['FLEET_SIZES'] ?? '10,50,200').split(',').map(Number);
  const admin = new Redis(url);
  let ok = true;
  console.log(
    `\nThe bus at fleet scale (N instances on one Redis; idle per instance, ${IDLE_MS / 1000} s each):`,
  );
  try {
    for (const size of sizes) {
      const idle: Record<string, { bytesPerSecond: number; cpuMsPerSecond: number }> = {};
      for (const broadcast of [true, false]) {
        const run = await fleet(
          url,
          size,
          `fleet${size}${broadcast ? 'b' : 'p'}:`,
          broadcast,
          new Arrivals(),
        );
        try {
          await new Promise((resolve) => setTimeout(resolve, 1_200)); // first heartbeats out
          idle[broadcast ? 'broadcast' : 'private'] = await measure(admin, IDLE_MS);
        } finally {
          await close(run);
        }
      }
      const before = idle['broadcast']!;
      const now = idle['private']!;
      console.log(
        `  N=${String(size).padStart(3)} idle per instance: ${kb(now.bytesPerSecond / size)} out, ` +
          `${(now.cpuMsPerSecond / size).toFixed(3)} ms CPU/s (broadcast heartbeats: ` +
          `${kb(before.bytesPerSecond / size)}, ${(before.cpuMsPerSecond / size).toFixed(3)} ms/s)`,
      );
      // Under a write load: one writer, every other instance times each message's arrival.
      const arrivals = new Arrivals();
      const run = await fleet(url, size + 1, `fleet${size}w:`, false, arrivals);
      let timed: Arrivals;
      let load: { bytesPerSecond: number; cpuMsPerSecond: number };
      try {
        const [writer] = run.caches;
        const writes = writeLoad(arrivals, (key) => writer!.set(key, 1));
        load = await measure(admin, 1_000);
        await writes;
        timed = arrivals;
      } finally {
        await close(run);
      }
      const floor = await rawFloor(url, size);
      // All N instances run in this one process, so the n-th arrival of a message also waits for
      // the n-1 instances handled before it; the first arrival is what a process of its own sees.
      const first = percentile([...timed.first.values()], 0.5);
      const rawFirst = percentile([...floor.first.values()], 0.5);
      const ratio = first / rawFirst;
      ok &&= ratio <= 2;
      const ms = (values: number[]): string =>
        `${percentile(values, 0.5).toFixed(2)} / ${percentile(values, 0.99).toFixed(2)} ms`;
      console.log(
        `        under ${1000 / WRITE_EVERY_MS} writes/s: Redis ${kb(load.bytesPerSecond)} out, ` +
          `${load.cpuMsPerSecond.toFixed(1)} ms CPU/s; invalidation p50 ${first.toFixed(2)} ms ` +
          `(raw SET+PUBLISH ${rawFirst.toFixed(2)} ms): ${ratio.toFixed(2)}x the floor (target <= 2x) ` +
          `${verdict(ratio <= 2)}; all N in this process p50/p99 ${ms(timed.latencies)} ` +
          `(raw ${ms(floor.latencies)})`,
      );
    }
  } finally {
    admin.disconnect();
  }
  return ok;
}
