import { expect } from 'vitest';
import type { TierCache } from '../../src/index.js';
import { until } from './wait-for.js';

/**
 * 50 concurrent getOrSet calls of one missing key on each of `caches`, the loader held until one
 * runs: every caller gets its value, and the loader ran once in all (the distributed lock).
 */
export async function expectOneLoaderCall(caches: readonly TierCache[]): Promise<void> {
  let calls = 0;
  let release: (value: string) => void = () => {};
  const held = new Promise<string>((resolve) => (release = resolve));
  const loads = caches.flatMap((cache) =>
    Array.from({ length: 50 }, () =>
      cache.getOrSet('hot', () => {
        calls++;
        return held;
      }),
    ),
  );
  await until('a loader to run', () => calls > 0);
  release('loaded');
  expect(new Set(await Promise.all(loads))).toEqual(new Set(['loaded']));
  expect(calls).toBe(1);
}
