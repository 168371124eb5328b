/**
 * Reproducible synthetic traces for the simulator and the policy tests. Every generator is
 * driven by a seeded mulberry32, so a given set of options always yields the same trace. Keys
 * are non-negative integers; `traceOf` turns them into the strings the store sees.
 */

/** mulberry32: a tiny, fast 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Samples ranks 0 … keys-1 with P(rank r) ∝ 1 / (r+1)^exponent, by binary search over the
 * precomputed CDF (exact for any exponent, unlike rejection shortcuts that assume s > 1).
 */
export class ZipfSampler {
  readonly #cdf: Float64Array;
  readonly #random: () => number;

  constructor(keys: number, exponent: number, random: () => number) {
    if (!Number.isSafeInteger(keys) || keys < 1)
      throw new TypeError(`keys must be a positive integer, received ${keys}.`);
    this.#cdf = zipfCdf(keys, exponent);
    this.#random = random;
  }

  next(): number {
    const cdf = this.#cdf;
    const u = this.#random();
    let low = 0;
    let high = cdf.length - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (cdf[mid]! > u) high = mid;
      else low = mid + 1;
    }
    return low;
  }
}

function zipfCdf(keys: number, exponent: number): Float64Array {
  const cdf = new Float64Array(keys);
  let sum = 0;
  for (let r = 0; r < keys; r++) cdf[r] = sum += 1 / Math.pow(r + 1, exponent);
  for (let r = 0; r < keys; r++) cdf[r] = cdf[r]! / sum;
  cdf[keys - 1] = 1;
  return cdf;
}

/**
 * The hit ratio a cache of `capacity` entries can reach at best on a stationary Zipf stream
 * (without clairvoyance): the total probability of the `capacity` most popular keys.
 */
export function zipfTopMass(keys: number, exponent: number, capacity: number): number {
  let top = 0;
  let total = 0;
  for (let r = 0; r < keys; r++) {
    const p = 1 / Math.pow(r + 1, exponent);
    total += p;
    if (r < capacity) top += p;
  }
  return top / total;
}

export interface ZipfOptions {
  /** Distinct keys. */
  keys: number;
  /** Skew `s`; 0.9 is a typical web/object-store workload. */
  exponent: number;
  /** Requests. */
  length: number;
  seed: number;
}

/** A stationary Zipf stream. */
export function zipfTrace({ keys, exponent, length, seed }: ZipfOptions): Int32Array {
  const sampler = new ZipfSampler(keys, exponent, mulberry32(seed));
  const trace = new Int32Array(length);
  for (let i = 0; i < length; i++) trace[i] = sampler.next();
  return trace;
}

export interface ScanOptions extends ZipfOptions {
  /** Zipf requests between two scans. */
  scanEvery: number;
  /** Keys per scan; each scan reads keys never seen before or after. */
  scanLength: number;
}

/** Zipf with periodic one-time scans (a batch job or crawler walking cold data). */
export function zipfWithScansTrace({
  keys,
  exponent,
  length,
  seed,
  scanEvery,
  scanLength,
}: ScanOptions): Int32Array {
  const sampler = new ZipfSampler(keys, exponent, mulberry32(seed));
  const trace = new Int32Array(length);
  let fresh = keys;
  let sinceScan = 0;
  for (let i = 0; i < length;) {
    if (sinceScan === scanEvery) {
      for (let j = 0; j < scanLength && i < length; j++) trace[i++] = fresh++;
      sinceScan = 0;
      continue;
    }
    trace[i++] = sampler.next();
    sinceScan++;
  }
  return trace;
}

export interface ShiftingOptions extends ZipfOptions {
  /** Requests between two popularity shifts. */
  period: number;
  /** How far the ranking moves at each shift, in keys; by default a tenth of the keys. */
  shift?: number | undefined;
}

/**
 * Zipf whose hot set rotates: every `period` requests the rank → key mapping moves by `shift`,
 * so yesterday's hot keys go cold and keys never popular before become hot.
 */
export function shiftingZipfTrace({
  keys,
  exponent,
  length,
  seed,
  period,
  shift,
}: ShiftingOptions): Int32Array {
  const sampler = new ZipfSampler(keys, exponent, mulberry32(seed));
  const step = shift ?? Math.max(1, Math.floor(keys / 10));
  const trace = new Int32Array(length);
  for (let i = 0; i < length; i++) {
    const offset = Math.floor(i / period) * step;
    trace[i] = (sampler.next() + offset) % keys;
  }
  return trace;
}

/** A loop over `keys` keys, repeated to `length` requests (LRU's worst case when keys > capacity). */
export function loopTrace({ keys, length }: { keys: number; length: number }): Int32Array {
  const trace = new Int32Array(length);
  for (let i = 0; i < length; i++) trace[i] = i % keys;
  return trace;
}
