/**
 * Redis dies or hangs under steady load from several cache instances. Every request must still
 * succeed, within the tier's timeout plus the loader's time; no promise may reject unhandled;
 * every instance's breaker must close again once Redis is back; and a value written after the
 * recovery must be what every instance reads.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';
import { trackUnhandled } from '../helpers/unhandled.js';

const TIMEOUT_MS = 100;
const LOADER_MS = 5;
/** Room for a loaded 2-core machine (GC, other test processes) on top of the modelled bound. */
const SLACK_MS = 1_000;
/** A request may wait one read and one write timeout, plus the loader. */
const BOUND_MS = 2 * TIMEOUT_MS + LOADER_MS + SLACK_MS;

afterAll(stopAllRedis);

const unhandled = trackUnhandled().reasons;

interface Version {
  key: string;
  version: number;
}

/**
 * Four instances over one Redis: two without L1 (so they read Redis on every request), two with
 * a short-lived L1 (without the invalidation bus, another instance's L1 may hold an older value
 * until its TTL). Readers loop over the keys with getOrSet; one writer bumps versions.
 */
class Load {
  readonly keys = Array.from({ length: 40 }, (_, i) => `item:${i}`);
  /** The origin: the latest version of every key. */
  readonly origin = new Map(this.keys.map((key) => [key, 0]));
  readonly instances: TierCache[];
  readonly failures: unknown[] = [];
  requests = 0;
  /** Slowest request since the last `mark()`. */
  slowest = 0;
  #running = true;
  #loops: Promise<void>[] = [];

  constructor(url: string, prefix: string) {
    const tier = () =>
      redisTier({ client: url, prefix, timeout: TIMEOUT_MS, breaker: { failures: 5, cooldown: 200 } });
    this.instances = [
      createCache({ tiers: [tier()] }),
      createCache({ tiers: [tier()] }),
      createCache({ tiers: [memoryTier({ ttl: 300 }), tier()] }),
      createCache({ tiers: [memoryTier({ ttl: 300 }), tier()] }),
    ];
  }

  loader(key: string): () => Promise<Version> {
    return async () => {
      await new Promise((resolve) => setTimeout(resolve, LOADER_MS));
      return { key, version: this.origin.get(key)! };
    };
  }

  start(): void {
    this.#loops = this.instances.map(async (cache, r) => {
      for (let i = r * 7; this.#running; i++) {
        const key = this.keys[i % this.keys.length]!;
        await this.#timed(() => cache.getOrSet(key, this.loader(key)));
        // Requests arrive from I/O: an L1 hit settles in a microtask, and a loop of those
        // alone would starve the timers (and the clock) forever.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    const writer = this.instances[0]!;
    this.#loops.push(
      (async () => {
        for (let i = 0; this.#running; i++) {
          const key = this.keys[(i * 3) % this.keys.length]!;
          const version = this.origin.get(key)! + 1;
          this.origin.set(key, version);
          await this.#timed(() => writer.set(key, { key, version }));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })(),
    );
  }

  /** Resets the slowest-request watermark and returns the request count. */
  mark(): number {
    this.slowest = 0;
    return this.requests;
  }

  async requestsPast(count: number, description: string): Promise<void> {
    await waitFor(async () => (this.requests >= count ? done(true) : notYet(`${this.requests} requests`)), {
      description,
      timeoutMs: 20_000,
      intervalMs: 10,
    });
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Polls until every instance's breaker is closed and a write through each reaches Redis. */
  async recovered(server: RedisProcess, prefix: string): Promise<void> {
    let n = 0;
    await waitFor(
      async () => {
        const states: string[] = [];
        for (const cache of this.instances) {
          const key = `probe:${n++}`;
          await cache.set(key, n);
          const state = cache.stats().tiers.at(-1)!.breaker!.state;
          const stored = await server.cli('EXISTS', `${prefix}${key}`);
          states.push(stored === 1 ? state : `${state} (write missed)`);
        }
        return states.every((s) => s === 'closed') ? done(true) : notYet(states.join(', '));
      },
      { description: 'every breaker to close', timeoutMs: 20_000, intervalMs: 50 },
    );
  }

  /** Writes a new version of every key through one instance; every instance must then read it. */
  async assertNotStale(): Promise<void> {
    const writer = this.instances[1]!;
    for (const key of this.keys) {
      const version = this.origin.get(key)! + 1;
      this.origin.set(key, version);
      await writer.set(key, { key, version });
    }
    const expected = this.keys.map((key) => this.origin.get(key));
    for (const [i, cache] of this.instances.entries()) {
      // Instances with L1 may serve their older copy until its 300 ms TTL runs out.
      await waitFor(
        async () => {
          const values = await cache.getMany<Version>(this.keys);
          const versions = values.map((v) => v?.version);
          const behind = versions.filter((v, j) => v !== expected[j]).length;
          return behind === 0 ? done(true) : notYet(`${behind} keys behind`);
        },
        { description: `instance ${i} to read the new versions`, timeoutMs: 5_000, intervalMs: 50 },
      );
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.instances.map((cache) => cache.close()));
  }

  async #timed(work: () => Promise<unknown>): Promise<void> {
    const started = performance.now();
    try {
      await work();
    } catch (error) {
      this.failures.push(error);
    }
    this.slowest = Math.max(this.slowest, performance.now() - started);
    this.requests++;
  }
}

describe('Redis faults under load from four instances', () => {
  it('SIGKILL and restart: no request fails or waits past the bound, breakers close, nothing stale after', async () => {
    const server = await startRedis();
    const prefix = 'chaos-kill:';
    const load = new Load(server.url, prefix);
    try {
      load.start();
      await load.requestsPast(load.mark() + 500, 'load before the kill');

      await server.kill();
      const down = load.mark();
      await load.requestsPast(down + 1_000, 'load while Redis is dead');
      // The L1 instances reach Redis only once their entries expire, which 1,000 fast L1 hits
      // may not outlast: wait for every breaker rather than assume it.
      await waitFor(
        async () => {
          const opens = load.instances.map((c) => c.stats().tiers.at(-1)!.breaker!.opens);
          return opens.every((n) => n >= 1) ? done(true) : notYet(`opens ${opens.join(', ')}`);
        },
        { description: 'every breaker to open', timeoutMs: 10_000 },
      );
      const slowestWhileDown = load.slowest;

      await server.restart();
      await load.recovered(server, prefix);
      await load.requestsPast(load.requests + 500, 'load after the restart');
      await load.stop();

      console.log(`kill: slowest request while Redis was dead ${slowestWhileDown.toFixed(0)} ms`);
      expect(load.failures).toEqual([]);
      expect(slowestWhileDown).toBeLessThan(BOUND_MS);
      await load.assertNotStale();
      expect(unhandled).toEqual([]);
    } finally {
      await load.stop();
      await load.close();
      await server.stop();
    }
  }, 60_000);

  it('SIGSTOP past the timeout, then SIGCONT: same guarantees', async () => {
    const server = await startRedis();
    const prefix = 'chaos-stop:';
    const load = new Load(server.url, prefix);
    try {
      load.start();
      await load.requestsPast(load.mark() + 500, 'load before the pause');

      await server.pause();
      const paused = load.mark();
      try {
        // Well past the timeout: the breakers open, and probes time out against the hung server.
        await load.requestsPast(paused + 1_000, 'load while Redis hangs');
        await waitFor(
          async () => {
            const opens = load.instances.map((c) => c.stats().tiers.at(-1)!.breaker!.opens);
            return opens.every((n) => n >= 2) ? done(true) : notYet(`opens ${opens.join(', ')}`);
          },
          { description: 'every breaker to open, probe and open again', timeoutMs: 10_000 },
        );
      } finally {
        await server.resume();
      }
      const slowestWhilePaused = load.slowest;
      expect(load.instances.every((c) => c.stats().tiers.at(-1)!.timeouts! >= 1)).toBe(true);

      await load.recovered(server, prefix);
      await load.requestsPast(load.requests + 500, 'load after the resume');
      await load.stop();

      console.log(`stop: slowest request while Redis hung ${slowestWhilePaused.toFixed(0)} ms`);
      expect(load.failures).toEqual([]);
      expect(slowestWhilePaused).toBeLessThan(BOUND_MS);
      await load.assertNotStale();
      expect(unhandled).toEqual([]);
    } finally {
      await load.stop();
      await load.close();
      await server.stop();
    }
  }, 60_000);
});
