import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HISTOGRAM_RELATIVE_ERROR, LatencyHistogram } from '../../src/metrics/histogram.js';

/** The exact value at quantile q of sorted values, by the same rank rule (ceil(q·n), 1-based). */
function exact(sorted: readonly number[], q: number): number {
  return sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
}

describe('LatencyHistogram', () => {
  it('reports zeros before anything is recorded', () => {
    expect(new LatencyHistogram().summary()).toEqual({ count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });

  it('keeps values below 64 µs exactly', () => {
    const h = new LatencyHistogram();
    for (let v = 0; v < 64; v++) h.record(v);
    expect(h.quantile(0.5)).toBe(31);
    expect(h.quantile(1)).toBe(63);
    expect(h.countAtOrBelow(9)).toBe(10);
  });

  it('reports every quantile within its relative error bound of the exact value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff_ffff }), { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, q) => {
          const h = new LatencyHistogram();
          for (const v of values) h.record(v);
          const want = exact(
            [...values].sort((a, b) => a - b),
            q,
          );
          const got = h.quantile(q);
          expect(Math.abs(got - want)).toBeLessThanOrEqual(want * HISTOGRAM_RELATIVE_ERROR + 0.5);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps count, mean and max exact, and clamps out-of-range values', () => {
    const h = new LatencyHistogram();
    h.recordMs(1.5);
    h.recordMs(2.5);
    h.record(-5);
    expect(h.summary()).toMatchObject({ count: 3, mean: 4 / 3, max: 2.5 });
    h.record(2 ** 40);
    expect(h.max).toBe(0xffff_ffff);
    expect(h.quantile(1)).toBe(0xffff_ffff);
  });

  it('a log-normal workload: p50/p90/p99 close to the exact ones', () => {
    const h = new LatencyHistogram();
    const values: number[] = [];
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) + 0.5) / 2 ** 31;
    for (let i = 0; i < 20_000; i++) {
      const normal = Math.sqrt(-2 * Math.log(random())) * Math.cos(2 * Math.PI * random());
      const v = Math.round(Math.exp(6 + normal));
      values.push(v);
      h.record(v);
    }
    values.sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const want = exact(values, q);
      expect(Math.abs(h.quantile(q) - want) / want).toBeLessThanOrEqual(HISTOGRAM_RELATIVE_ERROR);
    }
  });

  it('merges counts, sums and maxima', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let v = 1; v <= 100; v++) (v % 2 ? a : b).record(v * 1000);
    a.merge(b);
    expect(a.count).toBe(100);
    expect(a.max).toBe(100_000);
    expect(Math.abs(a.quantile(0.5) - 50_000) / 50_000).toBeLessThanOrEqual(HISTOGRAM_RELATIVE_ERROR);
    expect(a.countAtOrBelow(10_500)).toBe(10);
  });
});
