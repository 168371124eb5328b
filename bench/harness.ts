/**
 * Measures operations per second by alternating subject and baseline runs, many short rounds of
 * each. The ratio is the median of each round's own ratio: a round's two runs sit side by side in
 * time, so a slow spell of this shared machine (its raw rates drift by 2x over a minute) hits both
 * alike instead of whichever side it happened to fall on.
 */
export interface Pair {
  baseline: () => Promise<number>;
  subject: () => Promise<number>;
}

export interface PairResult {
  /** Median rates over the rounds, for display. */
  baseline: number;
  subject: number;
  /** Median of the per-round ratios subject / baseline. */
  ratio: number;
}

export async function comparePair(pair: Pair, rounds = 7): Promise<PairResult> {
  const baseline: number[] = [];
  const subject: number[] = [];
  const ratios: number[] = [];
  await pair.baseline();
  await pair.subject();
  for (let i = 0; i < rounds; i++) {
    const b = await pair.baseline();
    const s = await pair.subject();
    baseline.push(b);
    subject.push(s);
    ratios.push(s / b);
  }
  return { baseline: median(baseline), subject: median(subject), ratio: median(ratios) };
}

/** Runs `op` `count` times sequentially with `await`; returns ops/s. */
export async function sequentialRate(count: number, op: (i: number) => unknown): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await op(i);
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** Runs `count` ops spread over `workers` concurrent loops; returns ops/s. */
export async function concurrentRate(
  count: number,
  workers: number,
  op: (i: number) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < count) await op(next++);
    }),
  );
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export function fmtRate(opsPerSecond: number): string {
  return opsPerSecond >= 1e6
    ? `${(opsPerSecond / 1e6).toFixed(2)} M/s`
    : `${(opsPerSecond / 1e3).toFixed(1)} k/s`;
}

export function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'MISS';
}
