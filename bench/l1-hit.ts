import { LRUCache } from 'lru-cache';
import { mulberry32, ZipfSampler } from '../src/cli/synthetic.js';
import { createCache, memoryTier } from './library.js';
import type { MemoryTierOptions } from '../src/index.js';
import { comparePair, fmtRate, sequentialRate, verdict } from './harness.js';

const KEYS = 10_000;
// Short runs, many rounds: see comparePair.
const OPS = 200_000;
const ROUNDS = 41;
const SEQUENCE = 1 << 20;

/**
 * `await cache.get(k)` on L1 hits against `await lruCache.get(k)` on raw lru-cache, over the
 * same key sequence: a uniform cycle through every key (tinylfu's worst case: every key equally
 * warm, so no sketch counter saturates), or Zipf(0.99) (a typical skewed load).
 */
export async function l1Hit(
  policy: NonNullable<MemoryTierOptions['policy']>,
  keysDrawn: 'uniform' | 'zipf',
): Promise<boolean> {
  const keys = Array.from({ length: KEYS }, (_, i) => `product:${i}`);
  const zipf = new ZipfSampler(KEYS, 0.99, mulberry32(7));
  const sequence =
    keysDrawn === 'zipf'
      ? Array.from({ length: SEQUENCE }, () => keys[zipf.next()]!)
      : Array.from({ length: SEQUENCE }, (_, i) => keys[i % KEYS]!);
  const lru = new LRUCache<string, object>({ max: KEYS, ttl: 60_000 });
  const cache = createCache({ tiers: [memoryTier({ maxEntries: KEYS, policy })] });
  for (const key of keys) {
    lru.set(key, { key });
    await cache.set(key, { key });
  }
  // A service's cache has run loaders before it serves hits: measure it in that state (a loader
  // once left promise hooks on for the whole process, which halved this rate).
  await cache.getOrSet('bench:loaded', () => 1);
  const result = await comparePair(
    {
      baseline: () => sequentialRate(OPS, (i) => lru.get(sequence[i & (SEQUENCE - 1)]!)),
      subject: () => sequentialRate(OPS, (i) => cache.get(sequence[i & (SEQUENCE - 1)]!)),
    },
    ROUNDS,
  );
  await cache.close();
  const ok = result.ratio >= 0.8;
  console.log(
    `L1 hit (${String(policy)}, ${keysDrawn} keys): await cache.get ${fmtRate(result.subject)} vs await lruCache.get ${fmtRate(result.baseline)}` +
      ` → ${result.ratio.toFixed(2)}x (target ≥ 0.80x) ${verdict(ok)}`,
  );
  return ok;
}
