import { mix32 } from '../../internal/hash.js';

/**
 * An approximate, aging access counter for TinyLFU admission: a count-min sketch of 4-bit
 * counters behind a doorkeeper bloom filter.
 *
 * - Counters: 8 per 32-bit word, depth 4. As in Caffeine's FrequencySketch, the four counters of
 *   a key live in one 64-byte block (16 words), so an increment touches one cache line. The
 *   table holds 32 counters per expected entry (16 bytes), rounded up to a power of two: twice
 *   Caffeine's, which on the glimpse and Scarab traces removed most of the run-to-run spread
 *   that collisions cause (e.g. glimpse at 1,000 entries: 49.6–51.0% → 50.5–51.0% over seeds).
 *   Past {@link LARGE_SKETCH} entries it holds 8 (4 bytes), as the doorkeeper does its bits.
 * - Aging: after `sampleSize` (10 × capacity) counter increments every counter is halved and the
 *   doorkeeper cleared, so the sketch reflects recent popularity (the TinyLFU "reset").
 * - Doorkeeper: the first sighting of a key since the last reset only sets bits in a small bloom
 *   filter; the counters start counting at the second sighting. One-hit wonders, the bulk of
 *   most traces, then never touch the counters, which keeps their collisions rare.
 *
 * `frequency` adds the doorkeeper bit back, so before the first reset an estimate is never below
 * the true count (up to the ceiling of 16). Keys enter as 32-bit hashes (see `hashKey`), so
 * nothing here allocates.
 *
 * References: Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy"
 * (ACM ToS 2017); Cormode and Muthukrishnan, "An Improved Data Stream Summary: The Count-Min
 * Sketch and its Applications" (2005).
 */
export interface FrequencySketchOptions {
  /** Put a doorkeeper bloom filter in front of the counters. @default true */
  doorkeeper?: boolean | undefined;
  /**
   * Counters per expected entry: 32 (16 B) up to {@link LARGE_SKETCH} entries, 8 (4 B) past it.
   * @default see above
   */
  countersPerEntry?: number | undefined;
  /** Doorkeeper bits per expected entry: 32 (4 B) up to {@link LARGE_SKETCH} entries, 8 past it. */
  doorkeeperBits?: number | undefined;
  /** Additions between resets, as a multiple of the capacity. @default 10 */
  sampleFactor?: number | undefined;
  /** Mixed into every hash, so that colliding keys differ between instances. @default 0 */
  seed?: number | undefined;
}

/**
 * Capacity past which the sketch takes a quarter of the counters and doorkeeper bits per entry.
 * Collisions cost hit ratio in small caches (glimpse at 500 entries: 33.4% with 32 counters per
 * entry, 28.4% with 8), where the bytes do not matter; in large ones the many keys average the
 * collisions out (Scarab at 25,000 to 125,000 entries: within ±0.4 points, mostly above) and
 * the bytes do: 26 B per entry at 100,000 entries was a quarter of L1's structure.
 */
export const LARGE_SKETCH = 16_384;

export class FrequencySketch {
  /** Largest value a counter holds; with the doorkeeper bit an estimate reaches 16. */
  static readonly MAX_COUNTER = 15;

  #table = new Uint32Array(16);
  #blockMask = 0;
  #door = new Uint32Array(2);
  #doorShift = 26;
  #sampleSize = 10;
  #additions = 0;
  #capacity = 0;

  #useDoor: boolean;
  readonly #countersPerEntry: number | undefined;
  readonly #doorBitsPerEntry: number | undefined;
  readonly #sampleFactor: number;
  readonly #seed: number;

  constructor(capacity: number, options: FrequencySketchOptions = {}) {
    this.#useDoor = options.doorkeeper ?? true;
    this.#countersPerEntry = options.countersPerEntry;
    this.#doorBitsPerEntry = options.doorkeeperBits;
    this.#sampleFactor = options.sampleFactor ?? 10;
    this.#seed = mix32((options.seed ?? 0) ^ 0x9e3779b9);
    this.ensureCapacity(capacity);
  }

  /** The number of entries the sketch is sized for. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Additions (doorkeeper insertions and counter increments) between two resets. */
  get sampleSize(): number {
    return this.#sampleSize;
  }

  /** Additions since the last reset. */
  get additions(): number {
    return this.#additions;
  }

  /** Bytes held by the counter table and the doorkeeper. */
  get byteSize(): number {
    return this.#table.byteLength + this.#door.byteLength;
  }

  /**
   * Sizes the sketch for `capacity` entries. Growing discards the counts (they cannot be
   * redistributed over the new table); a smaller or equal capacity is a no-op.
   */
  ensureCapacity(capacity: number): void {
    const wanted = Math.max(1, Math.min(Math.floor(capacity), 1 << 28));
    if (wanted <= this.#capacity) return;
    this.#capacity = wanted;
    // 8 counters a word; at least one 16-word block.
    const large = wanted > LARGE_SKETCH;
    const counters = this.#countersPerEntry ?? (large ? 8 : 32);
    const words = Math.max(16, ceilPowerOfTwo((wanted * counters) / 8));
    this.#table = new Uint32Array(words);
    this.#blockMask = (words >>> 4) - 1;
    // Two probes. A sample period can see many more distinct keys than the capacity (OLTP: ~5
    // per entry); at 8 bits per entry the filter saturated on small caches and glimpse at 250
    // entries fell from 16.6% to 9.6%, hence 32 there.
    const doorBits = Math.max(64, ceilPowerOfTwo(wanted * (this.#doorBitsPerEntry ?? (large ? 8 : 32))));
    this.#door = new Uint32Array(doorBits >>> 5);
    this.#doorShift = 32 - Math.log2(doorBits);
    this.#sampleSize = Math.max(10, Math.round(this.#sampleFactor * wanted));
    this.#additions = 0;
  }

  /**
   * Counts resets and clears. While it is unchanged a key whose counters were all full stays
   * full (counters only fall at a reset), so callers may skip its increments: see `increment`.
   */
  epoch = 0;

  /**
   * Records one access to the key with this hash. Returns true when all four of the key's
   * counters are saturated afterwards: further increments are then no-ops until `epoch` moves.
   */
  increment(hash: number): boolean {
    const blockHash = mix32(hash ^ this.#seed);
    // A first sighting only sets doorkeeper bits and does not count towards aging: counting it
    // made the sketch age (and the doorkeeper forget) about twice as fast on traces full of
    // one-hit wonders, which cost ~0.5 pt of hit ratio on OLTP.
    if (this.#useDoor && !this.#doorAdd(blockHash)) return false;
    const table = this.#table;
    const counterHash = rehash(blockHash);
    const block = (blockHash & this.#blockMask) << 4;
    let added = false;
    let full = true;
    for (let i = 0; i < 4; i++) {
      // Per row: 2 bits pick one of the row's 4 words, 3 bits one of the word's 8 counters.
      const h = counterHash >>> (i << 3);
      const index = block + (i << 2) + (h & 3);
      const shift = ((h >>> 2) & 7) << 2;
      const word = table[index]!;
      const count = (word >>> shift) & 15;
      if (count !== 15) {
        table[index] = word + (1 << shift);
        added = true;
        if (count !== 14) full = false;
      }
    }
    if (added && ++this.#additions >= this.#sampleSize) {
      this.reset();
      return false;
    }
    return full;
  }

  /**
   * Counts an access whose increment the caller keeps aside (a resident key's hits, kept on
   * its node), so that aging keeps its cadence. True when this triggered a reset.
   */
  countDeferred(): boolean {
    if (++this.#additions < this.#sampleSize) return false;
    this.reset();
    return true;
  }

  /** Applies `times` deferred increments of one key, already counted by `countDeferred`. */
  applyDeferred(hash: number, times: number): void {
    const additions = this.#additions;
    const useDoor = this.#useDoor;
    // The key was resident, so it passed the doorkeeper; go straight to the counters.
    this.#useDoor = false;
    for (let i = 0; i < times; i++) this.increment(hash);
    this.#useDoor = useDoor;
    this.#additions = additions;
  }

  /** Estimated accesses to the key with this hash since aging began (0 … 16). */
  frequency(hash: number): number {
    const blockHash = mix32(hash ^ this.#seed);
    const table = this.#table;
    const counterHash = rehash(blockHash);
    const block = (blockHash & this.#blockMask) << 4;
    let min = 15;
    for (let i = 0; i < 4; i++) {
      const h = counterHash >>> (i << 3);
      const count = (table[block + (i << 2) + (h & 3)]! >>> (((h >>> 2) & 7) << 2)) & 15;
      if (count < min) min = count;
    }
    return this.#useDoor && this.#doorContains(blockHash) ? min + 1 : min;
  }

  /** Ages the sketch: halves every counter and clears the doorkeeper. */
  reset(): void {
    const table = this.#table;
    let odd = 0;
    for (let i = 0; i < table.length; i++) {
      const word = table[i]!;
      odd += bitCount(word & 0x11111111);
      table[i] = (word >>> 1) & 0x77777777;
    }
    this.#door.fill(0);
    this.epoch++;
    // Like Caffeine: the truncated halves (odd counters, four per addition) leave the count too.
    this.#additions = Math.max(0, (this.#additions - (odd >>> 2)) >>> 1);
  }

  /** Forgets everything. */
  clear(): void {
    this.epoch++;
    this.#table.fill(0);
    this.#door.fill(0);
    this.#additions = 0;
  }

  /** Sets the key's doorkeeper bits; true when they were all set already. */
  #doorAdd(blockHash: number): boolean {
    const door = this.#door;
    // Two probes from the high bits of two multiplicative hashes: independent of the low bits
    // that pick the counter block, so keys sharing a block do not share doorkeeper bits.
    const a = Math.imul(blockHash, 0x9e3779b1) >>> this.#doorShift;
    const b = Math.imul(blockHash, 0x85ebca77) >>> this.#doorShift;
    const ba = 1 << (a & 31);
    const bb = 1 << (b & 31);
    const present = (door[a >>> 5]! & ba) !== 0 && (door[b >>> 5]! & bb) !== 0;
    door[a >>> 5] = door[a >>> 5]! | ba;
    door[b >>> 5] = door[b >>> 5]! | bb;
    return present;
  }

  #doorContains(blockHash: number): boolean {
    const door = this.#door;
    const a = Math.imul(blockHash, 0x9e3779b1) >>> this.#doorShift;
    const b = Math.imul(blockHash, 0x85ebca77) >>> this.#doorShift;
    return (door[a >>> 5]! & (1 << (a & 31))) !== 0 && (door[b >>> 5]! & (1 << (b & 31))) !== 0;
  }
}

function rehash(x: number): number {
  x = Math.imul(x, 0x31848bab);
  x ^= x >>> 14;
  return x >>> 0;
}

function bitCount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

function ceilPowerOfTwo(x: number): number {
  return x <= 1 ? 1 : 2 ** Math.ceil(Math.log2(x));
}
