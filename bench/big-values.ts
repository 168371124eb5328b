import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as zlib from 'node:zlib';
import { Redis } from 'ioredis';
import type { CompressionAlgorithm } from '../src/index.js';
import { createCache, redisTier } from './library.js';
import { comparePair, sequentialRate, type PairResult } from './harness.js';

/** Payload sizes, and how many calls per round each gets: 20-50 ms of calls, so the whole run takes seconds. */
const SIZES = [
  { label: '10 KB', bytes: 10 * 1024, ops: 60 },
  { label: '100 KB', bytes: 100 * 1024, ops: 15 },
  { label: '1 MB', bytes: 1024 * 1024, ops: 3 },
] as const;
const ROUNDS = 5;

const zstdHere = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';
const MODES: (CompressionAlgorithm | 'off')[] = zstdHere
  ? ['off', 'brotli', 'gzip', 'zstd']
  : ['off', 'brotli', 'gzip'];

/** JSON-ish records, compressible as API responses are: repeated field names, varied values. */
function records(bytes: number): unknown[] {
  const cities = ['Paris', 'Berlin', 'Lisbon', 'Oslo'];
  const out: unknown[] = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const record = {
      id: i,
      name: `user ${i}`,
      email: `user${i}@example.com`,
      active: i % 3 === 0,
      score: ((i * 7919) % 1000) / 10,
      tags: ['a', 'b', `t${i % 17}`],
      createdAt: 1_732_000_000_000 + i * 1000,
      address: { city: cities[i % 4], zip: String(10_000 + ((i * 31) % 90_000)) },
    };
    out.push(record);
    n += JSON.stringify(record).length + 1;
  }
  return out;
}

interface Row {
  size: string;
  mode: string;
  stored: number;
  plain: number;
  get: PairResult;
  set: PairResult;
}

/**
 * Big values through a Redis-only cache (no L1: every get reads Redis), one call at a time, with
 * compression off and with each algorithm at its default level: bytes stored in Redis, and get
 * and set latency as ratios to raw ioredis of the same uncompressed payload (GET + JSON.parse,
 * JSON.stringify + SET), measured side by side in the same rounds. For the record, with one
 * target: brotli stores JSON records of 100 KB and more in at most a fifth of their bytes.
 */
export async function bigValues(url: string): Promise<boolean> {
  const prefix = 'bench-big:';
  const raw = new Redis(url, { enableAutoPipelining: true });
  const rows: Row[] = [];
  for (const { label, bytes, ops } of SIZES) {
    const value = records(bytes);
    const rawKey = `${prefix}raw:${bytes}`;
    await raw.set(rawKey, JSON.stringify(value), 'PX', 600_000);
    for (const mode of MODES) {
      const client = new Redis(url, { enableAutoPipelining: true });
      const cache = createCache({
        tiers: [
          redisTier({
            client,
            prefix: `${prefix.slice(0, -1)}.${mode}:`,
            compression: mode === 'off' ? false : { algorithm: mode },
            timeout: '5s',
          }),
        ],
        bus: false,
      });
      const key = `v${bytes}`;
      await cache.set(key, value, { ttl: '10m' });
      const stored = await raw.strlen(`${prefix.slice(0, -1)}.${mode}:${key}`);
      const get = await comparePair(
        {
          baseline: () => sequentialRate(ops, async () => JSON.parse((await raw.get(rawKey))!) as unknown),
          subject: () => sequentialRate(ops, () => cache.get(key)),
        },
        ROUNDS,
      );
      const set = await comparePair(
        {
          baseline: () => sequentialRate(ops, () => raw.set(rawKey, JSON.stringify(value), 'PX', 600_000)),
          subject: () => sequentialRate(ops, () => cache.set(key, value, { ttl: '10m' })),
        },
        ROUNDS,
      );
      rows.push({ size: label, mode, stored, plain: await raw.strlen(rawKey), get, set });
      await cache.clear();
      await cache.close();
      client.disconnect();
    }
    await raw.del(rawKey);
  }
  raw.disconnect();
  const ms = (rate: number): string => `${(1000 / rate).toFixed(rate > 1000 ? 3 : 2)} ms`;
  // Latency ratio: how many times raw ioredis's time one call takes.
  const times = (result: PairResult): string => `${(1 / result.ratio).toFixed(2)}x`;
  console.log(
    'Big values, Redis tier alone, one call at a time (raw: ioredis GET + JSON.parse / JSON.stringify + SET of the plain payload):',
  );
  console.log('  size    compression  stored bytes          get                    set');
  for (const row of rows) {
    const share = `${((row.stored / row.plain) * 100).toFixed(1)}%`;
    console.log(
      `  ${row.size.padEnd(7)} ${row.mode.padEnd(12)} ${String(row.stored).padStart(8)} (${share.padStart(6)})` +
        `   ${ms(row.get.subject).padStart(9)} ${times(row.get).padStart(6)} raw` +
        `   ${ms(row.set.subject).padStart(9)} ${times(row.set).padStart(6)} raw`,
    );
  }
  const brotli = rows.filter((row) => row.mode === 'brotli' && row.plain >= 100 * 1024);
  const ok = brotli.every((row) => row.stored <= row.plain / 5);
  console.log(
    `  brotli stores records of 100 KB and more in ≤ 20% of their bytes: ${ok ? 'PASS' : 'MISS'}` +
      (zstdHere ? '' : ` (zstd needs Node 22.15+; this is ${process.version})`),
  );
  return ok;
}

// Run directly (`npx tsup --silent && npx tsx bench/big-values.ts`; REDIS_URL or a private
// redis-server) or from bench/main.ts.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { startRedis } = await import('../test/helpers/redis-server.js');
  const server = process.env['REDIS_URL'] === undefined ? await startRedis() : undefined;
  try {
    await bigValues(process.env['REDIS_URL'] ?? server!.url);
  } finally {
    await server?.stop();
  }
}
