import type { Entry } from '../entry.js';
import { resolvePolicy, type PolicyName } from '../tiers/memory/policies.js';
import type { PolicyFactory } from '../tiers/memory/policy.js';
import { MemoryStore } from '../tiers/memory/memory-store.js';
import { tinyLfuPolicy } from '../tiers/memory/tinylfu-policy.js';
import { readTrace, traceOf, type Trace, type TraceFormat } from './trace.js';

/**
 * The hit-ratio simulator: replays a key trace through the real L1 (`MemoryStore` and its
 * policy, the code users run), one `get` per request and a `set` on each miss, and computes
 * Belady's optimal for the same sizes as a ceiling.
 */
export interface SimulateOptions {
  /** A trace file (see `readTrace` for formats and compression). */
  traceFile?: string | undefined;
  /** Format of `traceFile`; guessed from its name by default. */
  format?: TraceFormat | undefined;
  /** A trace already in memory, instead of `traceFile`. */
  trace?: Trace | Iterable<string | number> | undefined;
  /** Cache sizes in entries. */
  capacities: readonly number[];
  /** Policies by name, factory, or `{ name, factory }`. */
  policies: readonly PolicySpec[];
  /**
   * Compute Belady's optimal (with bypass) for each capacity.
   * @default true
   */
  opt?: boolean | undefined;
  /**
   * Requests replayed before counting starts (to leave out the cold start).
   * @default 0
   */
  warmup?: number | undefined;
  /**
   * Seed for `tinylfu` given by name, so that runs repeat exactly.
   * @default 1
   */
  seed?: number | undefined;
}

export type PolicySpec =
  PolicyName | PolicyFactory | { readonly name: string; readonly factory: PolicyFactory };

export interface HitCount {
  hits: number;
  requests: number;
  hitRatio: number;
}

export interface CapacityResult {
  capacity: number;
  /** By policy name, in the order given. */
  policies: Record<string, HitCount>;
  /** Belady's optimal with bypass; absent when `opt: false`. */
  opt?: HitCount;
}

export interface SimulationResult {
  requests: number;
  distinctKeys: number;
  results: CapacityResult[];
}

export async function simulate(options: SimulateOptions): Promise<SimulationResult> {
  const trace = await loadTrace(options);
  return simulateTrace(trace, options);
}

/** `simulate` for a trace already in memory; synchronous. */
export function simulateTrace(
  trace: Trace,
  options: Omit<SimulateOptions, 'trace' | 'traceFile' | 'format'>,
): SimulationResult {
  const seed = options.seed ?? 1;
  const warmup = options.warmup ?? 0;
  const named = options.policies.map((spec) => namedPolicy(spec, seed));
  const results = options.capacities.map((capacity): CapacityResult => {
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new TypeError(`Each capacity must be a positive integer, received ${String(capacity)}.`);
    }
    const policies: Record<string, HitCount> = {};
    for (const { name, factory } of named) policies[name] = replay(trace, capacity, factory, warmup);
    const result: CapacityResult = { capacity, policies };
    if (options.opt !== false) result.opt = optimal(trace, capacity, warmup);
    return result;
  });
  return { requests: trace.ids.length, distinctKeys: trace.keys.length, results };
}

async function loadTrace(options: SimulateOptions): Promise<Trace> {
  const { trace, traceFile } = options;
  if (trace !== undefined) return isTrace(trace) ? trace : traceOf(trace);
  if (traceFile === undefined) throw new TypeError('simulate needs either `traceFile` or `trace`.');
  return readTrace(traceFile, options.format);
}

function isTrace(value: Trace | Iterable<string | number>): value is Trace {
  return (value as Trace).ids instanceof Int32Array;
}

function namedPolicy(spec: PolicySpec, seed: number): { name: string; factory: PolicyFactory } {
  if (typeof spec === 'object') return spec;
  if (spec === 'tinylfu') return { name: spec, factory: tinyLfuPolicy({ seed }) };
  if (typeof spec === 'string') return { name: spec, factory: resolvePolicy(spec) };
  return { name: spec.name === '' ? 'custom' : spec.name, factory: spec };
}

const ENTRY: Entry = Object.freeze({ value: null, createdAt: 0, expiresAt: Number.POSITIVE_INFINITY });

/** Replays the trace through a real `MemoryStore` bounded to `capacity` entries. */
export function replay(trace: Trace, capacity: number, policy: PolicyFactory, warmup = 0): HitCount {
  const store = new MemoryStore({ maxEntries: capacity, maxWeight: Number.POSITIVE_INFINITY, policy });
  const { ids, keys } = trace;
  let hits = 0;
  for (let i = 0; i < ids.length; i++) {
    const key = keys[ids[i]!]!;
    if (store.hit(key, 0) >= 0) {
      if (i >= warmup) hits++;
    } else {
      store.set(key, ENTRY, 1);
    }
  }
  return count(hits, Math.max(0, ids.length - warmup));
}

/**
 * Belady's MIN with bypass (Caffeine's "Clairvoyant"): on a miss with a full cache, the resident
 * key used furthest in the future is evicted, unless the missed key itself is used later than
 * all of them (or never again), in which case it is not admitted. Resident keys sit in a max-heap
 * by next use, with stale heap entries skipped lazily.
 */
export function optimal(trace: Trace, capacity: number, warmup = 0): HitCount {
  const { ids } = trace;
  const n = ids.length;
  const distinct = trace.keys.length;
  // next[i]: the next request for ids[i] after i, or n + id when there is none (unique, and
  // later than every real position).
  const next = new Int32Array(n);
  const last = new Int32Array(distinct).fill(-1);
  for (let i = n - 1; i >= 0; i--) {
    const id = ids[i]!;
    const following = last[id]!;
    next[i] = following === -1 ? n + id : following;
    last[id] = i;
  }
  const resident = new Uint8Array(distinct);
  const pending = new Int32Array(distinct); // the next use a resident key is filed under
  const heap = new MaxHeap(n + 1);
  let size = 0;
  let hits = 0;
  const idOf = (use: number): number => (use >= n ? use - n : ids[use]!);
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    const use = next[i]!;
    if (resident[id] === 1) {
      if (i >= warmup) hits++;
      pending[id] = use;
      heap.push(use);
      continue;
    }
    if (size < capacity) {
      resident[id] = 1;
      pending[id] = use;
      heap.push(use);
      size++;
      continue;
    }
    // Drop stale heap tops (keys re-filed under a later use, or evicted).
    let top = heap.peek();
    while (resident[idOf(top)] !== 1 || pending[idOf(top)] !== top) {
      heap.pop();
      top = heap.peek();
    }
    if (top <= use) continue; // bypass: the missed key is needed later than every resident one
    heap.pop();
    resident[idOf(top)] = 0;
    resident[id] = 1;
    pending[id] = use;
    heap.push(use);
  }
  return count(hits, Math.max(0, n - warmup));
}

function count(hits: number, requests: number): HitCount {
  return { hits, requests, hitRatio: requests === 0 ? 0 : hits / requests };
}

/** A binary max-heap of non-negative int32s. */
class MaxHeap {
  readonly #items: Int32Array;
  #size = 0;

  constructor(capacity: number) {
    this.#items = new Int32Array(capacity);
  }

  peek(): number {
    return this.#items[0]!;
  }

  push(value: number): void {
    const items = this.#items;
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = items[parent]!;
      if (above >= value) break;
      items[i] = above;
      i = parent;
    }
    items[i] = value;
  }

  pop(): void {
    const items = this.#items;
    const size = --this.#size;
    const value = items[size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && items[child + 1]! > items[child]!) child++;
      const below = items[child]!;
      if (below <= value) break;
      items[i] = below;
      i = child;
    }
    items[i] = value;
  }
}
