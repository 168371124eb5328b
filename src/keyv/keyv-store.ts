import { EventEmitter } from 'node:events';
import type { KeyvStoreAdapter, StoredData } from 'keyv';
import type { TierCache } from '../cache.js';
import { InvalidOptionError, describe } from '../errors.js';
import type { WriteOptions } from '../options.js';
import type { CacheNamespace } from '../sync/namespaces.js';

/** The calls a Keyv store makes, answered by the whole cache or by one of its namespaces. */
type Target = Pick<
  CacheNamespace,
  'get' | 'getMany' | 'set' | 'setMany' | 'delete' | 'deleteMany' | 'has' | 'clear'
>;

/**
 * A Keyv storage adapter over a {@link TierCache}: `new Keyv({ store: new TierCacheKeyv(cache) })`,
 * and so under cache-manager v7 (`createCache({ stores: [keyv] })`) and NestJS's cache module.
 *
 * - Keyv's namespace is the cache's namespace of the same name (`cache.namespace()`), so Keyv's
 *   `clear()` empties that namespace alone, on every instance, in O(1) (one INCR and one bus
 *   message). Without a namespace (`namespace: undefined`), `clear()` clears the whole cache.
 * - Keyv's TTL (milliseconds) is the entry's life in every tier; without one, the tiers' own
 *   default lives apply (Keyv's "forever" is the cache's longest configured life).
 * - Keys are stored as Keyv hands them over (with Keyv's `namespace:` prefix), so two Keyv
 *   instances never share a key by accident.
 * - The cache stays yours: Keyv's `disconnect()` does not close it; call `cache.close()`.
 */
export class TierCacheKeyv extends EventEmitter implements KeyvStoreAdapter {
  /** Keyv reads and writes options here (its test suite sets `opts.deserialize`, for one). */
  opts: Record<string, unknown>;
  readonly cache: TierCache;
  #namespace: string | undefined;
  #target: Target;

  constructor(cache: TierCache) {
    super();
    if (!isCache(cache)) {
      throw new InvalidOptionError(
        'TierCacheKeyv.cache',
        `expected a TierCache (from createCache()), got ${describe(cache)}`,
      );
    }
    this.cache = cache;
    this.opts = { cache };
    this.#target = wholeCache(cache);
  }

  /** Set by Keyv to its own `namespace` option (`'keyv'` unless you give another). */
  get namespace(): string | undefined {
    return this.#namespace;
  }

  set namespace(name: string | undefined) {
    this.#namespace = name === '' ? undefined : name;
    this.#target =
      this.#namespace === undefined
        ? wholeCache(this.cache)
        : this.cache.namespace(namespaceName(this.#namespace));
  }

  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.#target.get<StoredData<Value>>(key);
  }

  getMany<Value>(keys: string[]): Promise<StoredData<Value | undefined>[]> {
    return this.#target.getMany<StoredData<Value | undefined>>(keys);
  }

  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    await this.#target.set(key, value, lifeOf(ttl));
    return true;
  }

  /** Every entry in one round trip per tier, each with its own TTL. */
  async setMany(entries: { key: string; value: unknown; ttl?: number }[]): Promise<void> {
    await this.#target.setMany(entries.map(({ key, value, ttl }) => ({ key, value, ...lifeOf(ttl) })));
  }

  delete(key: string): Promise<boolean> {
    return this.#target.delete(key);
  }

  /** True when any of `keys` was removed. */
  async deleteMany(keys: string[]): Promise<boolean> {
    return (await this.#target.deleteMany(keys)) > 0;
  }

  has(key: string): Promise<boolean> {
    return this.#target.has(key);
  }

  /** Empties Keyv's namespace (every instance, O(1)), or the whole cache without a namespace. */
  clear(): Promise<void> {
    return this.#target.clear();
  }
}

/**
 * Whether `value` looks like a TierCache. Not `instanceof`: each entry point of the package is
 * built on its own, so a cache from `tiercache` is not an instance of this entry's copy.
 */
function isCache(value: unknown): value is TierCache {
  const cache = value as Partial<Record<keyof TierCache, unknown>> | null;
  return (
    typeof cache === 'object' &&
    cache !== null &&
    CACHE_METHODS.every((method) => typeof cache[method] === 'function')
  );
}

const CACHE_METHODS = [
  'get',
  'getMany',
  'set',
  'setMany',
  'delete',
  'deleteMany',
  'has',
  'clear',
  'namespace',
] as const satisfies readonly (keyof TierCache)[];

/** The cache itself as a target: a Keyv store without a namespace. */
function wholeCache(cache: TierCache): Target {
  return {
    get: (key) => cache.get(key),
    getMany: (keys) => cache.getMany(keys),
    set: (key, value, options) => cache.set(key, value, options),
    setMany: (items, options) => cache.setMany(items, options),
    delete: (key) => cache.delete(key),
    deleteMany: (keys) => cache.deleteMany(keys),
    has: (key) => cache.has(key),
    clear: () => cache.clear(),
  };
}

/**
 * A cache namespace's name for a Keyv namespace: cache namespaces cannot hold `:` (it ends the
 * namespace's part of a stored key), so `:` and the escape character itself are escaped.
 */
function namespaceName(keyvNamespace: string): string {
  return keyvNamespace.replaceAll('%', '%25').replaceAll(':', '%3A');
}

/** Keyv's TTL in ms (undefined: the tiers' defaults) as write options. */
function lifeOf(ttl: number | undefined): WriteOptions | undefined {
  return ttl === undefined ? undefined : { ttl };
}
