import { LRUCache } from 'lru-cache';
import { createCache, memoryTier, type MemoryTierOptions } from '../src/index.js';
import { comparePair, fmtRate, sequentialRate, verdict } from './harness.js';

const KEYS = 10_000;
const OPS = 2_000_000;

/** `await cache.get(k)` on L1 hits against `await lruCache.get(k)` on raw lru-cache. */
export async function l1Hit(policy: MemoryTierOptions['policy'] = 'lru'): Promise<boolean> {
  const keys = Array.from({ length: KEYS }, (_, i) => `product:${i}`);
  const lru = new LRUCache<string, object>({ max: KEYS, ttl: 60_000 });
  const cache = createCache({ tiers: [memoryTier({ maxEntries: KEYS, policy })] });
  for (const key of keys) {
    lru.set(key, { key });
    await cache.set(key, { key });
  }
  const result = await comparePair({
    baseline: () => sequentialRate(OPS, (i) => lru.get(keys[i % KEYS]!)),
    subject: () => sequentialRate(OPS, (i) => cache.get(keys[i % KEYS]!)),
  });
  await cache.close();
  const ok = result.ratio >= 0.8;
  console.log(
    `L1 hit (${String(policy)}): await cache.get ${fmtRate(result.subject)} vs await lruCache.get ${fmtRate(result.baseline)}` +
      ` → ${result.ratio.toFixed(2)}x (target ≥ 0.80x) ${verdict(ok)}`,
  );
  return ok;
}
