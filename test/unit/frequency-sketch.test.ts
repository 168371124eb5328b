import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/internal/hash.js';
import { FrequencySketch, LARGE_SKETCH } from '../../src/tiers/memory/frequency-sketch.js';
import { mulberry32 } from '../../src/cli/synthetic.js';

describe('FrequencySketch', () => {
  it('never under-counts before aging, for every key of a skewed stream', () => {
    const sketch = new FrequencySketch(1_000, { seed: 3 });
    const random = mulberry32(11);
    const truth = new Map<number, number>();
    // Fewer increments than the sample size, so no reset happens.
    for (let i = 0; i < 5_000; i++) {
      const key = Math.floor(random() ** 3 * 2_000);
      const hash = hashKey(`k${key}`);
      sketch.increment(hash);
      truth.set(key, (truth.get(key) ?? 0) + 1);
    }
    expect(sketch.additions).toBeLessThan(sketch.sampleSize);
    for (const [key, count] of truth) {
      expect(sketch.frequency(hashKey(`k${key}`))).toBeGreaterThanOrEqual(Math.min(count, 16));
    }
  });

  it('counts small frequencies exactly, the first sighting living in the doorkeeper', () => {
    const sketch = new FrequencySketch(10_000, { seed: 5 });
    const hash = hashKey('user:42');
    expect(sketch.frequency(hash)).toBe(0);
    for (let n = 1; n <= 5; n++) {
      sketch.increment(hash);
      expect(sketch.frequency(hash)).toBe(n);
    }
  });

  it('keeps one-hit wonders out of the counters (they only set doorkeeper bits)', () => {
    const sketch = new FrequencySketch(1_000, { seed: 7 });
    for (let i = 0; i < 500; i++) sketch.increment(hashKey(`once:${i}`));
    expect(sketch.additions).toBe(0);
    const plain = new FrequencySketch(1_000, { seed: 7, doorkeeper: false });
    for (let i = 0; i < 500; i++) plain.increment(hashKey(`once:${i}`));
    expect(plain.additions).toBe(500);
  });

  it('halves every count and clears the doorkeeper on reset', () => {
    const sketch = new FrequencySketch(1_000, { seed: 9 });
    const counts = [1, 2, 3, 6, 9, 14];
    const hashes = counts.map((_, i) => hashKey(`hot:${i}`));
    counts.forEach((count, i) => {
      for (let n = 0; n < count; n++) sketch.increment(hashes[i]!);
    });
    counts.forEach((count, i) => expect(sketch.frequency(hashes[i]!)).toBe(count));
    sketch.reset();
    // The counters held count − 1 (the first sighting was the doorkeeper's), halved; the
    // doorkeeper is empty again.
    counts.forEach((count, i) => expect(sketch.frequency(hashes[i]!)).toBe((count - 1) >>> 1));
  });

  it('ages by itself after sample size (10 × capacity) counter increments', () => {
    const sketch = new FrequencySketch(64, { seed: 1 });
    expect(sketch.sampleSize).toBe(640);
    const hot = hashKey('hot');
    for (let n = 0; n < 16; n++) sketch.increment(hot);
    expect(sketch.frequency(hot)).toBe(16);
    const random = mulberry32(5);
    // Repeat sightings of other keys drive the additions up until the sketch resets itself.
    let previous = sketch.additions;
    for (let i = 0; i < 10_000; i++) {
      sketch.increment(hashKey(`k${Math.floor(random() * 200)}`));
      if (sketch.additions < previous) break;
      previous = sketch.additions;
    }
    expect(sketch.additions).toBeLessThan(previous);
    // 15 in the counters halves to 7; the doorkeeper bit is gone.
    expect(sketch.frequency(hot)).toBe(7);
  });

  it('saturates at 15 in the counters (16 with the doorkeeper bit)', () => {
    const sketch = new FrequencySketch(100, { seed: 2 });
    const hash = hashKey('busy');
    for (let n = 0; n < 40; n++) sketch.increment(hash);
    expect(sketch.frequency(hash)).toBe(16);
  });

  it('forgets everything on clear', () => {
    const sketch = new FrequencySketch(100, { seed: 2 });
    const hash = hashKey('a');
    sketch.increment(hash);
    sketch.increment(hash);
    sketch.clear();
    expect(sketch.frequency(hash)).toBe(0);
    expect(sketch.additions).toBe(0);
  });

  it('sizes its table to the capacity: 16 B of counters and 4 B of doorkeeper per entry', () => {
    expect(new FrequencySketch(1_024).byteSize).toBe(1_024 * 20);
    const grown = new FrequencySketch(16);
    grown.ensureCapacity(4_096);
    expect(grown.capacity).toBe(4_096);
    expect(grown.byteSize).toBe(4_096 * 20);
  });

  it('is sized from the capacity: 20 B per entry in small caches, a quarter of that in large ones', () => {
    // Power-of-two rounding: 16,384 entries fill their table exactly, 131,072 too.
    expect(new FrequencySketch(LARGE_SKETCH).byteSize / LARGE_SKETCH).toBe(20);
    expect(new FrequencySketch(131_072).byteSize / 131_072).toBe(5);
    expect(
      new FrequencySketch(131_072, { countersPerEntry: 32, doorkeeperBits: 32 }).byteSize / 131_072,
    ).toBe(20);
    // Grown past the bound, it takes the large size per entry.
    const sketch = new FrequencySketch(LARGE_SKETCH);
    sketch.ensureCapacity(8 * LARGE_SKETCH);
    expect(sketch.byteSize / (8 * LARGE_SKETCH)).toBe(5);
  });
});
