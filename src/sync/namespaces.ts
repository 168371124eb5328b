import { CacheClosedError, InvalidKeyError, TierError, type CacheError } from '../errors.js';
import { LoadContext, type LoaderContext } from '../loading/load-context.js';
import type { GetOrSetOptions, WriteOptions } from '../options.js';
import type { Invalidation } from './message.js';
import type { VersionStore } from '../tiers/coordination.js';
import type { SharedStateCache } from './local.js';
import type { WorkBudget } from './work.js';

/** The shared versions (a tier's version store, bounded by its read timeout) and the tier's name. */
export interface SharedVersions {
  readonly tier: string;
  readonly store: VersionStore;
}

/**
 * Namespace versions: a namespace's keys live under `name:v<version>:`, so bumping the version
 * (one INCR in Redis) makes every old entry unreachable at once; they expire on their own.
 * Versions are cached here and kept current by the bus; without a bus (or before it has said
 * anything) they are read from the tier's store, and without one they are local counters.
 */
export class NamespaceVersions implements SharedStateCache {
  readonly #shared: SharedVersions | undefined;
  /** Whether the bus keeps cached versions current; without it every use reads Redis. */
  readonly #cacheable: boolean;
  readonly #known = new Map<string, number>();
  /**
   * Bumped whenever cached versions are dropped: a version read from Redis while it changed may
   * be older than the change, so it is used but not cached.
   */
  #changes = 0;
  /** Drops L1 keys of namespaces whose version changed (all those one message names, at once). */
  onChange: ((names: ReadonlySet<string>) => void) | undefined;
  /** Hears Redis faults that made a namespace call bypass the cache. */
  onError: ((error: CacheError) => void) | undefined;

  constructor(shared: SharedVersions | undefined, cacheable: boolean) {
    this.#shared = shared;
    this.#cacheable = cacheable || shared === undefined;
  }

  /**
   * The key prefix of namespace `name` now, or undefined when Redis cannot say in time: then no
   * copy can be trusted to be of the current version, and the namespace's calls bypass the cache
   * (reads miss, getOrSet calls its loader) rather than fail.
   */
  async prefixOf(name: string): Promise<string | undefined> {
    let version = this.#cacheable ? this.#known.get(name) : undefined;
    if (version === undefined) {
      const changes = this.#changes;
      if (this.#shared === undefined) {
        version = 0;
      } else {
        try {
          version = await this.#shared.store.read(name);
        } catch (error) {
          this.onError?.(new TierError(this.#shared.tier, 'namespace version read', error, name));
          return undefined;
        }
      }
      if (this.#cacheable && changes === this.#changes) version = this.#raise(name, version);
    }
    return `${name}:v${version}:`;
  }

  /** Bumps the version; resolves with the new one. Rejects with a TierError if Redis cannot. */
  async bump(name: string): Promise<number> {
    let version: number;
    if (this.#shared === undefined) {
      version = (this.#known.get(name) ?? 0) + 1;
    } else {
      try {
        version = await this.#shared.store.bump(name);
      } catch (error) {
        throw new TierError(this.#shared.tier, 'namespace clear', error, name);
      }
    }
    this.#raise(name, version);
    this.onChange?.(new Set([name]));
    return version;
  }

  /**
   * A version heard on the bus is only a hint that the namespace changed: anyone can publish
   * `"n": { "products": 1e300 }` (or a plausible 8), and adopting it would point this instance
   * at keys nobody else reads or writes, so `clear()` would silently stop working here. With
   * Redis the cached version is dropped (with the namespace's L1 entries) and the next use reads
   * the real one (GET); only without Redis, where the bus is the sole source, is it adopted.
   */
  learn(inv: Invalidation): void {
    if (inv.namespaces.size === 0) return;
    for (const [name, version] of inv.namespaces) {
      if (this.#shared === undefined) this.#raise(name, version);
      else {
        this.#known.delete(name);
        this.#changes++;
      }
    }
    // One pass over L1 for all of them: a message may name 10,000 namespaces.
    this.onChange?.(new Set(inv.namespaces.keys()));
  }

  forget(): void {
    // Local counters are the only copy: keep them. Redis-backed ones are read again.
    if (this.#shared === undefined) return;
    this.#known.clear();
    this.#changes++;
  }

  #raise(name: string, version: number): number {
    const known = Math.max(version, this.#known.get(name) ?? 0);
    this.#known.set(name, known);
    return known;
  }
}

/**
 * Whether a key belongs to one of the namespaces `names` (stored as `name:v<version>:key`), in
 * one scan of the key whatever the number of names, spending a step per key character on
 * `budget` (false without looking once it is spent: the caller then drops everything).
 */
export function namespaceMatcher(names: ReadonlySet<string>, budget: WorkBudget): (key: string) => boolean {
  return (key) => {
    if (budget.steps < 0) return false;
    budget.steps -= key.length;
    for (let at = key.indexOf(':v'); at >= 0; at = key.indexOf(':v', at + 1))
      if (names.has(key.slice(0, at))) return true;
    return false;
  };
}

/** One write of a namespace's `setMany` (the cache's SetManyItem). */
export interface NamespaceItem<T = unknown> extends WriteOptions {
  key: string;
  value: T;
}

/** The part of a cache a namespace view calls; keys are already prefixed. */
interface NamespaceHost {
  get<T>(key: string): Promise<T | undefined>;
  getOrSet<T>(
    key: string,
    loader: (context: LoaderContext) => T | Promise<T>,
    options?: GetOrSetOptions,
  ): Promise<T>;
  set<T>(key: string, value: T, options?: WriteOptions): Promise<void>;
  getMany<T>(keys: readonly string[]): Promise<(T | undefined)[]>;
  setMany<T>(items: readonly NamespaceItem<T>[], options?: WriteOptions): Promise<void>;
  delete(key: string): Promise<boolean>;
  deleteMany(keys: readonly string[]): Promise<number>;
  has(key: string): Promise<boolean>;
  /** True once the cache is closed: the view refuses calls then, as the cache does. */
  readonly closed: boolean;
}

/**
 * A view of a cache whose keys live in one namespace. `clear()` is O(1): it bumps the
 * namespace's version in Redis and tells every instance on the bus, so all of the namespace's
 * entries become unreachable at once, everywhere.
 */
export class CacheNamespace {
  readonly name: string;
  readonly #host: NamespaceHost;
  readonly #versions: NamespaceVersions;
  readonly #clear: () => Promise<void>;

  constructor(name: string, host: NamespaceHost, versions: NamespaceVersions, clear: () => Promise<void>) {
    this.name = name;
    this.#host = host;
    this.#versions = versions;
    this.#clear = clear;
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    this.#open('namespace.get');
    const full = await this.#key(key);
    return full === undefined ? undefined : this.#host.get<T>(full);
  }

  async getOrSet<T>(
    key: string,
    loader: (context: LoaderContext) => T | Promise<T>,
    options?: GetOrSetOptions,
  ): Promise<T> {
    this.#open('namespace.getOrSet');
    const full = await this.#key(key);
    return full === undefined ? loader(new LoadContext(key)) : this.#host.getOrSet<T>(full, loader, options);
  }

  /** Skipped (the fault reported) while the namespace's version cannot be read. */
  async set<T>(key: string, value: T, options?: WriteOptions): Promise<void> {
    this.#open('namespace.set');
    const full = await this.#key(key);
    if (full !== undefined) await this.#host.set(full, value, options);
  }

  async delete(key: string): Promise<boolean> {
    this.#open('namespace.delete');
    const full = await this.#key(key);
    return full === undefined ? false : this.#host.delete(full);
  }

  /** Values for `keys` (aligned), in one lookup per tier; all misses while the version cannot be read. */
  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#open('namespace.getMany');
    const full = await this.#keys(keys);
    return full === undefined ? keys.map(() => undefined) : this.#host.getMany<T>(full);
  }

  /** Writes many entries in one round trip per tier; skipped like `set` while the version cannot be read. */
  async setMany<T>(items: readonly NamespaceItem<T>[], options?: WriteOptions): Promise<void> {
    this.#open('namespace.setMany');
    const full = await this.#keys(items.map((item) => item.key));
    if (full !== undefined)
      await this.#host.setMany(
        items.map((item, i) => ({ ...item, key: full[i]! })),
        options,
      );
  }

  /** Removes `keys` (one round trip per tier); how many tier copies went. */
  async deleteMany(keys: readonly string[]): Promise<number> {
    this.#open('namespace.deleteMany');
    const full = await this.#keys(keys);
    return full === undefined ? 0 : this.#host.deleteMany(full);
  }

  async has(key: string): Promise<boolean> {
    this.#open('namespace.has');
    const full = await this.#key(key);
    return full === undefined ? false : this.#host.has(full);
  }

  /** Makes every entry of this namespace unreachable on every instance (one INCR, one message). */
  clear(): Promise<void> {
    return this.#clear();
  }

  #open(operation: string): void {
    if (this.#host.closed) throw new CacheClosedError(operation);
  }

  /** The full key, or undefined while the namespace's version cannot be read. */
  async #key(key: string): Promise<string | undefined> {
    return (await this.#keys([key]))?.[0];
  }

  /** The full keys, or undefined while the namespace's version cannot be read. */
  async #keys(keys: readonly string[]): Promise<string[] | undefined> {
    if (!Array.isArray(keys)) throw new InvalidKeyError(keys, 'expected an array of keys');
    for (const key of keys)
      if (typeof key !== 'string' || key === '')
        throw new InvalidKeyError(key, 'a key must be a non-empty string');
    const prefix = await this.#versions.prefixOf(this.name);
    return prefix === undefined ? undefined : keys.map((key) => prefix + key);
  }
}
