/**
 * The demo's load generator: concurrent clients sending a skewed (Zipf) mix of product reads and
 * a few price updates to the instances, recording per second how many responses each tier
 * answered and how fast (from the `x-cache-tier` header the service sends), and checking every
 * read against the writes acknowledged before it started.
 */
import { mulberry32, ZipfSampler } from '../src/cli/synthetic.js';

export type Answered = 'memory' | 'redis' | 'origin';
export const ANSWERED: readonly Answered[] = ['memory', 'redis', 'origin'];

export interface LoadOptions {
  urls: readonly string[];
  products: number;
  /** Zipf exponent of product popularity. */
  skew: number;
  concurrency: number;
  /** Fraction of requests that are price updates. */
  writeRatio: number;
  seed: number;
}

/** Latencies in microseconds for one tier over one interval. */
export class Latencies {
  values: number[] = [];
  add(micros: number): void {
    this.values.push(micros);
  }
  percentile(p: number): number {
    if (this.values.length === 0) return 0;
    this.values.sort((a, b) => a - b);
    return this.values[Math.min(this.values.length - 1, Math.floor((p / 100) * this.values.length))]!;
  }
}

/** What the generator saw over an interval (one dashboard point, or the whole run). */
export class Interval {
  readonly answered: Record<Answered, Latencies> = {
    memory: new Latencies(),
    redis: new Latencies(),
    origin: new Latencies(),
  };
  /** Client-side round trips of all reads (the per-tier figures are the service's own time). */
  readonly roundTrip = new Latencies();
  writes = 0;
  errors = 0;
  /** Reads that returned a price older than a write acknowledged before the read started. */
  staleReads = 0;
  get reads(): number {
    return ANSWERED.reduce((sum, tier) => sum + this.answered[tier].values.length, 0);
  }
}

export class LoadGenerator {
  readonly total = new Interval();
  #current = new Interval();
  #running = false;
  #workers: Promise<void>[] = [];
  readonly #options: LoadOptions;
  readonly #zipf: ZipfSampler;
  readonly #random: () => number;
  /** Per product: the last acknowledged price, and whether a write of it is in flight. */
  readonly #prices = new Map<number, { price: number | undefined; writing: boolean; version: number }>();

  constructor(options: LoadOptions) {
    this.#options = options;
    this.#random = mulberry32(options.seed);
    this.#zipf = new ZipfSampler(options.products, options.skew, mulberry32(options.seed + 1));
  }

  start(): void {
    this.#running = true;
    this.#workers = Array.from({ length: this.#options.concurrency }, () => this.#worker());
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
  }

  /** The interval since the last call, and a new one begun. */
  take(): Interval {
    const taken = this.#current;
    this.#current = new Interval();
    return taken;
  }

  async #worker(): Promise<void> {
    const { urls, writeRatio } = this.#options;
    while (this.#running) {
      // Product ids are 1-based; ranks shuffle them so the hottest products are spread out.
      const id = 1 + ((this.#zipf.next() * 7919) % this.#options.products);
      const url = urls[Math.floor(this.#random() * urls.length)]!;
      try {
        if (this.#random() < writeRatio) await this.#write(url, id);
        else await this.#read(url, id);
      } catch {
        this.#current.errors++;
        this.total.errors++;
        // An instance that is gone (shutdown) would otherwise spin this loop.
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  async #read(url: string, id: number): Promise<void> {
    const known = this.#prices.get(id);
    const expected = known !== undefined && !known.writing ? known : undefined;
    const version = expected?.version;
    const started = performance.now();
    const response = await fetch(`${url}/products/${id}`);
    const body = (await response.json()) as { price?: number };
    const roundTrip = (performance.now() - started) * 1000;
    if (!response.ok) throw new Error(`GET /products/${id}: ${response.status}`);
    const tier = (response.headers.get('x-cache-tier') ?? 'origin') as Answered;
    const timing = /dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '');
    const server = timing === null ? roundTrip : Number(timing[1]) * 1000;
    for (const interval of [this.#current, this.total]) {
      interval.answered[tier in interval.answered ? tier : 'origin'].add(server);
      interval.roundTrip.add(roundTrip);
    }
    const now = this.#prices.get(id);
    // Only a read that no write overlapped can be judged.
    if (
      expected?.price !== undefined &&
      now !== undefined &&
      now.version === version &&
      !now.writing &&
      body.price !== expected.price
    ) {
      this.#current.staleReads++;
      this.total.staleReads++;
    }
  }

  async #write(url: string, id: number): Promise<void> {
    const state = this.#prices.get(id) ?? { price: undefined, writing: false, version: 0 };
    if (state.writing) return;
    state.writing = true;
    state.version++;
    this.#prices.set(id, state);
    const price = Math.round(this.#random() * 20_000) / 100;
    try {
      const response = await fetch(`${url}/products/${id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ price }),
      });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`PUT /products/${id}: ${response.status}`);
      state.price = price;
      this.#current.writes++;
      this.total.writes++;
    } finally {
      state.writing = false;
    }
  }
}

export function percentiles(latencies: { percentile(p: number): number }): { p50: number; p99: number } {
  return { p50: latencies.percentile(50), p99: latencies.percentile(99) };
}
