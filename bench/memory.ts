import type { Entry } from '../src/extend.js';
import { memoryTier } from './library.js';
import type { MemoryTierOptions } from '../src/index.js';

/**
 * Resident memory of a byte-bounded L1: fills it far past `maxBytes` with ~1 KB product objects,
 * decoded from JSON as values from Redis are, then compares the heap's growth (after a full GC)
 * with the bytes the tier accounted, for both ways a size is known: the encoded (JSON) size of a
 * value that came through Redis, and the estimate for a value set directly. The difference per
 * entry is the overhead to allow for when sizing L1 from a memory budget. Needs --expose-gc.
 */
export async function memoryFootprint(policy: NonNullable<MemoryTierOptions['policy']>): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) {
    console.log('L1 memory: skipped (run node with --expose-gc; npm run bench does)');
    return;
  }
  const budget = 32 * 1024 * 1024;
  for (const sizing of ['encoded', 'estimated'] as const) {
    gc();
    const before = process.memoryUsage().heapUsed;
    const tier = memoryTier({ maxEntries: 1_000_000, maxBytes: budget, policy });
    for (let i = 0; i < 60_000; i++) {
      const json = JSON.stringify({
        id: i,
        name: `Product ${i}`,
        description: `${i}:${'lorem ipsum '.repeat(66)}`,
        price: i / 100,
        tags: ['a', 'b', 'c'],
      });
      const entry: Entry = {
        value: JSON.parse(json) as unknown,
        createdAt: 0,
        expiresAt: Number.POSITIVE_INFINITY,
      };
      tier.set(`product:${i}`, entry, sizing === 'encoded' ? json.length : undefined);
    }
    await Promise.resolve();
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    const entries = tier.store.size;
    const weight = tier.store.weight;
    console.log(
      `L1 memory (${String(policy)}, ${sizing} sizes, maxBytes ${budget / 1024 / 1024} MiB): ${entries.toLocaleString('en-US')} entries, ` +
        `${(weight / 1024 / 1024).toFixed(1)} MiB accounted, heap grew ${(grown / 1024 / 1024).toFixed(1)} MiB ` +
        (grown > weight
          ? `→ ${((grown - weight) / entries).toFixed(0)} B per entry beyond the accounted size`
          : `→ within the accounted size (${(grown / weight).toFixed(2)} of it: the count errs high)`),
    );
    tier.store.clear();
  }
}
