import { Redis } from 'ioredis';
import { Redis as Ioredis6 } from 'ioredis6';
import { Redis as Iovalkey } from 'iovalkey';
import { createClient } from 'redis';
import { createClient as createClient6 } from 'redis6';
import type { RedisTierOptions } from '../src/index.js';
import { createCache, GUARD_DEFAULTS, redisTier } from './library.js';
import { comparePair, concurrentRate, fmtRate, sequentialRate, verdict, type PairResult } from './harness.js';

const KEYS = 5_000;
// Short runs, many rounds: see comparePair.
const OPS = 20_000;
const ROUNDS = 21;
const WORKERS = 64;
const SEQUENTIAL_OPS = 5_000;

/** How a scenario drives reads: `count` calls of `read(i)`, returning ops/s. */
type Driver = (count: number, read: (i: number) => Promise<unknown>) => Promise<number>;

/** A client package as the bench uses it: one client for the raw baseline, one for the tier. */
interface Clients {
  readonly name: string;
  /**
   * A connected client: its GET (the baseline's), MGET (the bare batcher's), the client itself
   * (the tier's), and close. `pipelined: false` makes an ioredis-family client without
   * auto-pipelining, which writes each command at once.
   */
  connect(
    url: string,
    pipelined?: boolean,
  ): Promise<{
    get(key: string): Promise<string | null>;
    mget(keys: string[]): Promise<(string | null)[]>;
    client: RedisTierOptions['client'];
    close(): void;
  }>;
}

/** What the bench uses of an ioredis-family client class. */
type IoredisClass = (new (
  url: string,
  options: { enableAutoPipelining: boolean },
) => {
  get(key: string): Promise<string | null>;
  sendCommand(command: never): unknown;
  disconnect(): void;
}) & {
  readonly Command: new (name: string, args: string[], options: { replyEncoding: 'utf8' }) => object;
};

/** What the bench uses of a node-redis major's createClient. */
type CreateClient = (options: { url: string }) => {
  connect(): Promise<unknown>;
  get(key: string): Promise<unknown>;
  mGet(keys: string[]): Promise<unknown>;
  destroy(): void;
};

/** A package of the ioredis family, with auto-pipelining as recommended for the tier. */
function ioredisFamily(name: string, Client: IoredisClass): Clients {
  return {
    name,
    connect: async (url, pipelined = true) => {
      const redis = new Client(url, { enableAutoPipelining: pipelined });
      return {
        get: (key) => redis.get(key),
        // Written at once, as the tier writes its own (direct-reads.ts): a batcher that left it
        // to the auto-pipeline would wait for setImmediate and pay for a Pipeline as well.
        mget: (keys) =>
          redis.sendCommand(new Client.Command('mget', keys, { replyEncoding: 'utf8' }) as never) as Promise<
            (string | null)[]
          >,
        client: redis as unknown as RedisTierOptions['client'],
        close: () => redis.disconnect(),
      };
    },
  };
}

/** A node-redis major, which pipelines the commands of one tick by itself. */
function nodeRedisMajor(name: string, create: CreateClient): Clients {
  return {
    name,
    connect: async (url) => {
      const redis = create({ url });
      await redis.connect();
      return {
        get: (key) => redis.get(key) as Promise<string | null>,
        mget: (keys) => redis.mGet(keys) as Promise<(string | null)[]>,
        client: redis as unknown as RedisTierOptions['client'],
        close: () => redis.destroy(),
      };
    },
  };
}

const ioredis = ioredisFamily('ioredis', Redis);
const nodeRedis = nodeRedisMajor('node-redis', createClient);
/** The other clients the tier supports, each with a row of its own (see l2HitOtherClients). */
const OTHER_CLIENTS: readonly Clients[] = [
  ioredisFamily('ioredis 6', Ioredis6),
  ioredisFamily('iovalkey', Iovalkey),
  nodeRedisMajor('node-redis 6', createClient6),
];

/** How compareL2 departs from its default comparison. */
interface Variation {
  /** Reads made on the raw client that stand in for the cache's (see idealBatcher). */
  against?: (
    raw: Awaited<ReturnType<Clients['connect']>>,
    prefix: string,
  ) => (key: string) => Promise<unknown>;
  /** false: the baseline's client without auto-pipelining (see Clients.connect). */
  rawPipelined?: boolean;
}

/**
 * L2 hits with L1 out of the way (a Redis-only cache) against the raw client of the same
 * package doing GET + JSON.parse of the very same payloads, both driven by `drive`.
 */
async function compareL2(
  url: string,
  batchReads: number | false,
  count: number,
  drive: Driver,
  clients: Clients = ioredis,
  { against, rawPipelined = true }: Variation = {},
): Promise<PairResult> {
  const prefix = 'bench-l2:';
  const raw = await clients.connect(url, rawPipelined);
  const mine = await clients.connect(url);
  const ours = createCache({ tiers: [redisTier({ client: mine.client, prefix, batchReads })] });
  const keys = Array.from({ length: KEYS }, (_, i) => `product:${i}`);
  const product = (i: number) => ({
    id: i,
    name: `Product ${i}`,
    price: 12.5,
    tags: ['a', 'b', 'c'],
    stock: { eu: 3, us: 7 },
  });
  await ours.setMany(keys.map((key, i) => ({ key, value: product(i), ttl: '10m' })));
  const result = await comparePair(
    {
      baseline: () =>
        drive(count, async (i) => {
          const payload = await raw.get(prefix + keys[i % KEYS]!);
          return JSON.parse(payload!) as unknown;
        }),
      subject: () => {
        const read = against === undefined ? (key: string) => ours.get(key) : against(raw, prefix);
        return drive(count, (i) => read(keys[i % KEYS]!));
      },
    },
    ROUNDS,
  );
  await ours.clear();
  await ours.close();
  mine.close();
  raw.close();
  return result;
}

/** WORKERS callers, each awaiting its read before the next. */
const concurrent: Driver = (count, read) => concurrentRate(count, WORKERS, read);

/**
 * L2 hits, 64 concurrent callers. With the default `batchReads` the cache sends each tick's
 * reads as one MGET; `batchReads: false` (one GET per read, as on a cluster) is printed for the
 * record: it measures the cache's own per-read cost.
 */
export async function l2Hit(
  url: string,
  batchReads: number | false = GUARD_DEFAULTS.batchReads,
): Promise<boolean> {
  if (batchReads !== false) return batchedL2(url, ioredis, batchReads);
  const result = await compareL2(url, false, OPS, concurrent);
  console.log(
    `L2 hit, ${WORKERS} concurrent, batchReads: false: cache.get ${fmtRate(result.subject)} vs raw ioredis GET+parse ${fmtRate(result.baseline)}` +
      ` → ${result.ratio.toFixed(2)}x (for the record)`,
  );
  return result.ratio >= 1.3;
}

/**
 * The batched L2 row of one client package, held to 1.3x its raw client, beside the ceiling of
 * batching on that client (see idealBatcher).
 */
async function batchedL2(url: string, clients: Clients, batchReads: number): Promise<boolean> {
  const result = await compareL2(url, batchReads, OPS, concurrent, clients);
  const ceiling = await compareL2(url, batchReads, OPS, concurrent, clients, { against: idealBatcher });
  const ok = result.ratio >= 1.3;
  console.log(
    `L2 hit, ${WORKERS} concurrent, ${clients.name}, reads batched: cache.get ${fmtRate(result.subject)} vs raw ${clients.name} GET+parse ${fmtRate(result.baseline)}` +
      ` → ${result.ratio.toFixed(2)}x (target ≥ 1.30x) ${verdict(ok)}; ${ceilingNote(ceiling)}`,
  );
  return ok;
}

function ceilingNote(ceiling: PairResult): string {
  return `a bare MGET per tick + parse, the most any batching cache can do on this client: ${ceiling.ratio.toFixed(2)}x`;
}

/**
 * L2 hits one at a time (one caller, each read awaited before the next): nothing to batch or
 * pipeline, so this is the cache's per-read overhead on top of the round trip (guard, decode,
 * envelope, counters).
 */
export async function l2HitSequential(url: string): Promise<boolean> {
  const result = await compareL2(url, GUARD_DEFAULTS.batchReads, SEQUENTIAL_OPS, sequentialRate);
  // The tier writes its lone GET at once (direct-reads.ts), where the baseline's auto-pipelined
  // client waits for setImmediate; a client without auto-pipelining writes it at once too.
  const plain = await compareL2(url, GUARD_DEFAULTS.batchReads, SEQUENTIAL_OPS, sequentialRate, ioredis, {
    rawPipelined: false,
  });
  const ok = result.ratio >= 0.95;
  console.log(
    `L2 hit, sequential, ioredis: cache.get ${fmtRate(result.subject)} vs raw ioredis GET+parse ${fmtRate(result.baseline)}` +
      ` → ${result.ratio.toFixed(2)}x (target ≥ 0.95x) ${verdict(ok)}; against raw ioredis without` +
      ` auto-pipelining (each GET written at once): ${plain.ratio.toFixed(2)}x`,
  );
  return ok;
}

/**
 * L2 hits, 64 concurrent callers, on a node-redis client against raw node-redis: the adapter's
 * cost (every command through sendCommand) with the cache's batching, held to ioredis's target.
 */
export function l2HitNodeRedis(url: string): Promise<boolean> {
  return batchedL2(url, nodeRedis, GUARD_DEFAULTS.batchReads);
}

/**
 * The 64-caller row on each other supported client (ioredis 6, iovalkey, node-redis 6), each
 * against its own raw client and held to the same target.
 */
export async function l2HitOtherClients(url: string): Promise<boolean> {
  let ok = true;
  for (const clients of OTHER_CLIENTS) ok = (await batchedL2(url, clients, GUARD_DEFAULTS.batchReads)) && ok;
  return ok;
}

/** The sequential row on node-redis, for the record beside ioredis's. */
export async function l2HitSequentialNodeRedis(url: string): Promise<void> {
  const result = await compareL2(url, GUARD_DEFAULTS.batchReads, SEQUENTIAL_OPS, sequentialRate, nodeRedis);
  console.log(
    `L2 hit, sequential, node-redis: cache.get ${fmtRate(result.subject)} vs raw node-redis GET+parse ${fmtRate(result.baseline)}` +
      ` → ${result.ratio.toFixed(2)}x (for the record)`,
  );
}

/**
 * The ceiling of batching on a client: each tick's reads as one MGET, then JSON.parse of each
 * payload and nothing else (no timeout, breaker, envelope, counters or promotion).
 */
function idealBatcher(raw: { mget(keys: string[]): Promise<(string | null)[]> }, prefix: string) {
  let waiting: { key: string; resolve: (value: unknown) => void }[] = [];
  const flush = (): void => {
    const batch = waiting;
    waiting = [];
    void raw.mget(batch.map(({ key }) => prefix + key)).then((payloads) => {
      payloads.forEach((payload, i) => batch[i]!.resolve(JSON.parse(payload!)));
    });
  };
  return (key: string): Promise<unknown> =>
    new Promise((resolve) => {
      if (waiting.length === 0) process.nextTick(flush);
      waiting.push({ key, resolve });
    });
}
