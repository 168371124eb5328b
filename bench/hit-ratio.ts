/**
 * Hit ratios of the L1 policies on the six real traces in ../shared/traces, beside the figures
 * published for them (see that directory's README for provenance and exact LRU/OPT).
 *
 *   npx tsx bench/hit-ratio.ts [trace-name-filter]
 *
 * Columns: our lru, our tinylfu (default: ghost climber), tinylfu with Caffeine's hit-ratio
 * climber, our OPT (Belady with bypass), then the published LRU, best W-TinyLFU-family result
 * and OPT. Runs are seeded, so they repeat exactly.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { optimal, replay } from '../src/cli/simulate.js';
import { loopTrace, zipfTopMass, zipfTrace } from '../src/cli/synthetic.js';
import { readTrace, traceOf, type Trace } from '../src/cli/trace.js';
import { MemoryStore } from '../src/tiers/memory/memory-store.js';
import { policies } from '../src/tiers/memory/policies.js';
import { TinyLfuPolicy, tinyLfuPolicy } from '../src/tiers/memory/tinylfu-policy.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TRACES = resolve(ROOT, '../shared/traces');
const SEED = 1;

/**
 * Published figures from ../shared/traces/README.md, section 2 (percent; "c" = read off a
 * chart, "nb" = OPT without bypass). Family = W-TinyLFU implementations (Caffeine, BitFaster
 * ConcurrentLfu, otter, theine); the best one per size. Sources:
 * [B1] BitFaster PR #132 (OLTP LRU), [B2] BitFaster PR #196 (ConcurrentLfu on OLTP),
 * [B3] BitFaster PR #131 (glimpse LRU), [D1] dw-cache README (loop LRU),
 * [O1] otter docs/performance/hit-ratio.md charts (otter, theine), [R1] ristretto SVGs (glimpse OPT),
 * [C1] cache2k-benchmark trace tests (OPT without bypass), [K1] Caffeine issue #106 (Scarab).
 */
interface Published {
  lru?: string;
  family?: string;
  opt?: string;
}
const PUBLISHED: Record<string, Record<number, Published>> = {
  oltp: {
    250: { lru: '16.47 B1', family: '24.88 BitFaster B2' },
    500: { lru: '23.45 B1', family: '33.73 BitFaster B2' },
    750: { lru: '28.28 B1', family: '37.46 BitFaster B2' },
    1000: { lru: '32.83 B1', family: '40.01 BitFaster B2' },
    1250: { lru: '36.21 B1', family: '42.5c otter O1' },
    1500: { lru: '38.70 B1', family: '43.9c otter O1' },
    1750: { lru: '40.79 B1', family: '45.06 BitFaster B2' },
    2000: { lru: '42.47 B1', family: '46.09 BitFaster B2' },
  },
  glimpse: {
    100: { opt: '7.66nb C1' },
    250: { lru: '0.91 B3', family: '15.2c otter O1', opt: '18c R1' },
    500: { lru: '0.95 B3', family: '32.8c otter O1', opt: '34c R1' },
    750: { lru: '1.15 B3', family: '43.1c otter O1', opt: '46c R1' },
    1000: { lru: '11.21 B3', family: '50.3c otter O1', opt: '53c R1' },
    1250: { lru: '21.25 B3', family: '51.9c otter O1', opt: '57c R1' },
    1500: { lru: '36.56 B3', family: '53.0c otter O1', opt: '58c R1' },
    1750: { lru: '45.04 B3', family: '56.8c theine O1', opt: '58c R1' },
    2000: { lru: '57.41 B3', family: '57.9c theine O1', opt: '58c R1' },
  },
  loop: {
    100: { lru: '0.0 D1' },
    250: { lru: '0.0 D1' },
    500: { lru: '0.0 D1' },
    750: { lru: '0.0 D1' },
    1000: { lru: '0.0 D1' },
    1250: { lru: '99.8 D1' },
  },
  multi2: {
    100: { opt: '35.38nb C1' },
    600: { opt: '55.50nb C1' },
    1800: { opt: '73.12nb C1' },
  },
  sprite: {
    100: { opt: '50.79nb C1' },
    200: { opt: '68.9nb C1' },
    400: { opt: '84.6nb C1' },
    600: { opt: '89.9 C1' },
    800: { opt: '92.2 C1' },
    1000: { opt: '93.2 C1' },
  },
  scarab: {
    1000: { lru: '27.0c O1', family: '34.8c otter O1' },
    5000: { lru: '41.3c O1', family: '47.1c theine O1' },
    10000: { lru: '48.8c O1', family: '52c otter O1' },
    25000: { lru: '60.2c O1', family: '59.9c otter O1' },
    50000: { lru: '69.2c O1', family: '64.4c otter O1' },
    75000: { lru: '73.6c O1', family: '70.8c theine O1' },
    100000: { lru: '75.91 K1', family: '72.9c theine O1 (Caffeine 72.35 K1)', opt: '79.25 K1' },
    125000: { lru: '77.4c O1', family: '75c theine O1' },
  },
};

const FILES: Record<string, string> = {
  oltp: 'oltp.arc.gz',
  glimpse: 'gli.trace.gz',
  loop: 'loop.trace.gz',
  multi2: 'multi2.trace.gz',
  sprite: 'sprite.trace.gz',
  scarab: 'scarab-recs.trace.xz',
};

/** The targets for our tinylfu, in percent. */
const TARGETS: { trace: string; capacity: number; atLeast: number; why: string }[] = [
  { trace: 'oltp', capacity: 1000, atLeast: 40.0, why: 'BitFaster W-TinyLFU 40.01' },
  { trace: 'oltp', capacity: 250, atLeast: 24.9, why: 'BitFaster W-TinyLFU 24.88' },
  { trace: 'glimpse', capacity: 1000, atLeast: 50.3, why: 'otter 50.3' },
  { trace: 'scarab', capacity: 100000, atLeast: 74.9, why: 'within 1 pt of LRU 75.91' },
  { trace: 'loop', capacity: 750, atLeast: 70.3, why: '0.95 of OPT 74.04: a loop 1.35x the cache' },
];

const LOOP_FACTORS = [1.05, 1.1, 1.2, 1.3, 1.5, 1.75, 2];

const pct = (ratio: number): string => (100 * ratio).toFixed(2);

/** The synthetic targets: stationary Zipf against the best online ratio, and a loop. */
function synthetic(): boolean {
  const capacity = 2_000;
  const length = 400_000;
  const zipf = traceOf(zipfTrace({ keys: 100_000, exponent: 0.9, length, seed: SEED }));
  const best = zipfTopMass(100_000, 0.9, capacity);
  const zipfTiny = replay(zipf, capacity, tinyLfuPolicy({ seed: SEED }), length / 4).hitRatio;
  const zipfLru = replay(zipf, capacity, policies.lru, length / 4).hitRatio;
  const zipfOpt = optimal(zipf, capacity, length / 4).hitRatio;
  const zipfOk = zipfTiny / best >= 0.95;
  console.log(
    `Zipf(0.9), 100k keys, 2k entries: tinylfu ${pct(zipfTiny)}% = ${(zipfTiny / best).toFixed(3)} of the best online ` +
      `(${pct(best)}%; target ≥ 0.95) ${zipfOk ? 'PASS' : 'MISS'}; lru ${pct(zipfLru)}%, Belady OPT ${pct(zipfOpt)}%`,
  );
  // Loops longer than the cache (LRU's worst case: 0%). Belady keeps capacity/keys of them, so
  // 80% is reachable up to 1.25x; beyond that the target is 0.95 of OPT.
  let loopOk = true;
  const cells: string[] = [];
  for (const factor of LOOP_FACTORS) {
    const keys = Math.round(capacity * factor);
    const loop = traceOf(loopTrace({ keys, length }));
    const hit = replay(loop, capacity, tinyLfuPolicy({ seed: SEED })).hitRatio;
    const opt = optimal(loop, capacity).hitRatio;
    const ok = hit >= Math.min(0.8, 0.95 * opt);
    loopOk &&= ok;
    cells.push(`${factor}x ${pct(hit)}% (OPT ${pct(opt)})${ok ? '' : ' MISS'}`);
  }
  console.log(
    `Loops over 1.05–2 × capacity (2k entries; target ≥ min(80%, 0.95 OPT)) ${loopOk ? 'PASS' : 'MISS'}: ${cells.join(', ')}`,
  );
  return zipfOk && loopOk;
}

/** Prints hit ratios on synthetic and real traces; true when every target is met. */
export async function hitRatios(filter?: string): Promise<boolean> {
  let allMet = synthetic();
  if (!existsSync(TRACES)) {
    console.log(`Skipping the real traces: no traces at ${TRACES} (they live in ../shared/traces).`);
    return allMet;
  }
  const started = performance.now();
  const ours = new Map<string, number>();
  const header = [
    'trace',
    'size',
    'lru',
    'tinylfu',
    'tlfu/hit-ratio',
    'OPT',
    '| pub LRU',
    'pub W-TinyLFU best',
    'pub OPT',
  ];
  const rows: string[][] = [];
  for (const [name, file] of Object.entries(FILES)) {
    if (filter !== undefined && !name.includes(filter)) continue;
    const path = resolve(TRACES, file);
    if (!existsSync(path)) {
      console.log(`Skipping ${name}: ${path} is missing.`);
      continue;
    }
    const trace: Trace = await readTrace(path);
    for (const [size, published] of Object.entries(PUBLISHED[name]!)) {
      const capacity = Number(size);
      const tinylfu = replay(trace, capacity, tinyLfuPolicy({ seed: SEED })).hitRatio;
      ours.set(`${name}@${capacity}`, 100 * tinylfu);
      rows.push([
        name,
        capacity.toLocaleString('en-US'),
        pct(replay(trace, capacity, policies.lru).hitRatio),
        pct(tinylfu),
        pct(replay(trace, capacity, tinyLfuPolicy({ seed: SEED, climber: 'hit-ratio' })).hitRatio),
        pct(optimal(trace, capacity).hitRatio),
        `| ${published.lru ?? '–'}`,
        published.family ?? '–',
        published.opt ?? '–',
      ]);
    }
  }
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (i < 2 || i >= 6 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));

  console.log('\nTargets (our tinylfu):');
  for (const { trace, capacity, atLeast, why } of TARGETS) {
    const got = ours.get(`${trace}@${capacity}`);
    const verdict = got === undefined ? 'SKIP' : got >= atLeast ? 'PASS' : 'MISS';
    if (verdict === 'MISS') allMet = false;
    console.log(
      `  ${verdict}  ${trace}@${capacity.toLocaleString('en-US')}: ${got?.toFixed(2) ?? '–'}% >= ${atLeast}% (${why})`,
    );
  }

  console.log(`\n${memoryLine()}`);
  console.log(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
  return allMet;
}

/** Policy bookkeeping per entry: sketch and ghost table bytes over capacity, plus node fields. */
function memoryLine(): string {
  const capacity = 100_000;
  const store = new MemoryStore({
    maxEntries: capacity,
    maxWeight: Number.POSITIVE_INFINITY,
    policy: tinyLfuPolicy({ seed: SEED }),
  });
  const policy = store.policy as TinyLfuPolicy;
  const sketch = policy.sketchBytes / capacity;
  const ghosts = policy.climberBytes / capacity;
  // The policy's per-slot cells: next, prev and a state word (region, mark, kept hits), Int32 each.
  const fields = 3 * 4;
  return (
    `Memory (tinylfu, ${capacity.toLocaleString('en-US')} entries): sketch ${sketch.toFixed(2)} B + ghosts ${ghosts.toFixed(2)} B ` +
    `+ slot links ${fields} B = ${(sketch + ghosts + fields).toFixed(2)} B per entry (lru: the same slot links, no sketch).`
  );
}

// Run directly (`npx tsx bench/hit-ratio.ts [trace]`) or from bench/main.ts.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  await hitRatios(process.argv[2]);
}
