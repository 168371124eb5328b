/**
 * A compact log-linear latency histogram in the manner of HdrHistogram: values (microseconds) are
 * kept exactly up to 2·S, and above that in S buckets per power of two, so any recorded value is
 * reported within 1/(2S) of itself (about 1.6% with S = 32) while the whole range from 1 µs to
 * over an hour fits in under 900 counters. Recording is a handful of integer operations and no
 * allocation, so every remote-tier call can be timed.
 */

/** log2 of the sub-buckets per power of two. */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
/** Largest recordable value in µs (2^32 − 1, about 71 minutes); longer ones are clamped. */
const MAX_VALUE = 0xffff_ffff;
const BUCKETS = indexOf(MAX_VALUE) + 1;

/** Worst relative error of a reported percentile against the recorded value it stands for. */
export const HISTOGRAM_RELATIVE_ERROR = 1 / (2 * SUB);

/** Percentiles of one histogram, in milliseconds. */
export interface LatencySummary {
  /** Values recorded. */
  count: number;
  /** Arithmetic mean, exact (from the running sum). */
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  /** Largest value recorded, exact. */
  max: number;
}

export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;
  /** Sum of recorded values in µs. */
  sum = 0;
  /** Largest recorded value in µs. */
  max = 0;

  /** Records a duration given in milliseconds (as performance.now() differences are). */
  recordMs(ms: number): void {
    this.record(Math.round(ms * 1000));
  }

  /** Records a value in µs; negative values count as 0 and huge ones are clamped. */
  record(micros: number): void {
    const value = micros > 0 ? (micros < MAX_VALUE ? micros : MAX_VALUE) : 0;
    this.#counts[indexOf(value)]!++;
    this.count++;
    this.sum += value;
    if (value > this.max) this.max = value;
  }

  /** The value in µs at quantile `q` (0–1): the midpoint of the bucket holding that rank (the max for the top rank). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    if (rank >= this.count) return this.max;
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(midpointOf(i), this.max);
    }
    return this.max;
  }

  /**
   * How many recorded values are at most `micros`, counting each bucket by its midpoint (for
   * exporting cumulative buckets at other boundaries, such as Prometheus's `le`).
   */
  countAtOrBelow(micros: number): number {
    let total = 0;
    for (let i = 0; i < BUCKETS; i++) {
      const count = this.#counts[i]!;
      if (count === 0) continue;
      if (midpointOf(i) > micros) break;
      total += count;
    }
    return total;
  }

  /** Adds another histogram's counts into this one. */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.#counts[i]! += other.#counts[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.max > this.max) this.max = other.max;
  }

  summary(): LatencySummary {
    const ms = (micros: number): number => micros / 1000;
    return {
      count: this.count,
      mean: this.count === 0 ? 0 : ms(this.sum / this.count),
      p50: ms(this.quantile(0.5)),
      p90: ms(this.quantile(0.9)),
      p99: ms(this.quantile(0.99)),
      max: ms(this.max),
    };
  }
}

function indexOf(value: number): number {
  if (value < 2 * SUB) return value;
  const shift = 31 - Math.clz32(value) - SUB_BITS;
  return shift * SUB + (value >>> shift);
}

function midpointOf(index: number): number {
  if (index < 2 * SUB) return index;
  const shift = Math.floor(index / SUB) - 1;
  const low = (index - shift * SUB) * 2 ** shift;
  return low + (2 ** shift - 1) / 2;
}
