import type { GetOrSetOptions, Loader, TierCache } from '../../src/index.js';

/**
 * The two ways a load starts. The load rules (grace, fail-safe, timeouts, back-off, eager
 * refresh, the distributed lock) are one engine's, so a resilience test written against `load`
 * holds through both: `getOrSet`, and `getManyOrSet` asking for the one key.
 */
export const LOAD_PATHS = [
  {
    name: 'getOrSet',
    load: <T>(cache: TierCache, key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> =>
      cache.getOrSet(key, loader, options),
  },
  {
    name: 'getManyOrSet',
    load: async <T>(
      cache: TierCache,
      key: string,
      loader: Loader<T>,
      options?: GetOrSetOptions,
    ): Promise<T> => {
      const [value] = await cache.getManyOrSet(
        [key],
        async (_keys, context) => [await loader(context)],
        options,
      );
      return value as T;
    },
  },
] as const;
