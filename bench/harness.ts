/**
 * Measures operations per second as the median of several rounds, alternating subject and
 * baseline in every round so drift (JIT warm-up, a busy neighbour core) hits both alike.
 */
export interface Pair {
  baseline: () => Promise<number>;
  subject: () => Promise<number>;
}

export interface PairResult {
  baseline: number;
  subject: number;
  ratio: number;
}

export async function comparePair(pair: Pair, rounds = 7): Promise<PairResult> {
  const baseline: number[] = [];
  const subject: number[] = [];
  await pair.baseline();
  await pair.subject();
  for (let i = 0; i < rounds; i++) {
    baseline.push(await pair.baseline());
    subject.push(await pair.subject());
  }
  const b = median(baseline);
  const s = median(subject);
  return { baseline: b, subject: s, ratio: s / b };
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
