import { createCache, GUARD_DEFAULTS, redisTier } from './library.js';
import { verdict } from './harness.js';

const CALLS = 400;
const LOADER_MS = 2;

/**
 * getOrSet of cold keys while Redis is gone (SIGKILL) and while it hangs (SIGSTOP), on a
 * private server, beside the loader's own time. Target: p99 within a read and a write timeout
 * plus the loader (the breaker should make most calls skip Redis entirely).
 */
export async function redisDown(): Promise<boolean> {
  const { startRedis } = await import('../test/helpers/redis-server.js');
  const server = await startRedis();
  const timeout = Number.parseInt(GUARD_DEFAULTS.timeout, 10);
  const loader = async () => {
    await new Promise((resolve) => setTimeout(resolve, LOADER_MS));
    return { ok: true };
  };
  let ok = true;
  try {
    for (const fault of ['killed', 'hanging'] as const) {
      const cache = createCache({ tiers: [redisTier({ client: server.url, prefix: 'bench-down:' })] });
      await cache.set('warm', 1);
      if (fault === 'killed') await server.kill();
      else await server.pause();
      const own: number[] = [];
      const all: number[] = [];
      for (let i = 0; i < CALLS; i++) {
        const started = performance.now();
        await loader();
        own.push(performance.now() - started);
        const began = performance.now();
        await cache.getOrSet(`${fault}:${i}`, loader);
        all.push(performance.now() - began);
      }
      if (fault === 'killed') await server.restart();
      else await server.resume();
      await cache.close();
      const p = (values: number[], q: number) =>
        values.sort((a, b) => a - b)[Math.floor(q * (values.length - 1))]!;
      const met = p(all, 0.99) <= 2 * timeout + p(own, 0.99) + 5;
      ok &&= met;
      console.log(
        `Redis ${fault}: getOrSet p50 ${p(all, 0.5).toFixed(1)} ms, p99 ${p(all, 0.99).toFixed(1)} ms; loader alone p50 ${p(own, 0.5).toFixed(1)} ms, p99 ${p(own, 0.99).toFixed(1)} ms (target p99 ≤ 2 × ${timeout} ms timeout + loader) ${verdict(met)}`,
      );
    }
  } finally {
    await server.stop();
  }
  return ok;
}
