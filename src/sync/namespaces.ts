import type { Cluster, Redis } from 'ioredis';
import { InvalidKeyError } from '../errors.js';
import type { LoaderContext } from '../loading/load-context.js';
import type { GetOrSetOptions, WriteOptions } from '../options.js';
import type { Invalidation } from './message.js';
import type { SharedStateCache } from './local.js';

/**
 * Namespace versions: a namespace's keys live under `name:v<version>:`, so bumping the version
 * (one INCR in Redis) makes every old entry unreachable at once; they expire on their own.
 * Versions are cached here and kept current by the bus; without a bus (or before it has said
 * anything) they are read from Redis, and without Redis they are local counters.
 */
export class NamespaceVersions implements SharedStateCache {
  readonly #redis: { client: Redis | Cluster; prefix: string } | undefined;
  /** Whether the bus keeps cached versions current; without it every use reads Redis. */
  readonly #cacheable: boolean;
  readonly #known = new Map<string, number>();
  /** Drops L1 keys of a namespace whose version changed. */
  onChange: ((name: string) => void) | undefined;

  constructor(redis: { client: Redis | Cluster; prefix: string } | undefined, cacheable: boolean) {
    this.#redis = redis;
    this.#cacheable = cacheable || redis === undefined;
  }

  /** The key prefix of namespace `name` now. Rejects if Redis cannot say. */
  async prefixOf(name: string): Promise<string> {
    let version = this.#cacheable ? this.#known.get(name) : undefined;
    if (version === undefined) {
      version = this.#redis === undefined ? 0 : Number((await this.#redis.client.get(this.#key(name))) ?? 0);
      if (this.#cacheable) version = this.#raise(name, version);
    }
    return `${name}:v${version}:`;
  }

  /** Bumps the version; resolves with the new one. */
  async bump(name: string): Promise<number> {
    const version =
      this.#redis === undefined
        ? (this.#known.get(name) ?? 0) + 1
        : await this.#redis.client.incr(this.#key(name));
    this.#raise(name, version);
    this.onChange?.(name);
    return version;
  }

  learn(inv: Invalidation): void {
    for (const [name, version] of inv.namespaces) {
      this.#raise(name, version);
      this.onChange?.(name);
    }
  }

  forget(): void {
    // Local counters are the only copy: keep them. Redis-backed ones are read again.
    if (this.#redis !== undefined) this.#known.clear();
  }

  #raise(name: string, version: number): number {
    const known = Math.max(version, this.#known.get(name) ?? 0);
    this.#known.set(name, known);
    return known;
  }

  #key(name: string): string {
    return `${this.#redis!.prefix}__ns:${name}`;
  }
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
  delete(key: string): Promise<boolean>;
  has(key: string): Promise<boolean>;
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
    return this.#host.get<T>(await this.#key(key));
  }

  async getOrSet<T>(
    key: string,
    loader: (context: LoaderContext) => T | Promise<T>,
    options?: GetOrSetOptions,
  ): Promise<T> {
    return this.#host.getOrSet<T>(await this.#key(key), loader, options);
  }

  async set<T>(key: string, value: T, options?: WriteOptions): Promise<void> {
    return this.#host.set(await this.#key(key), value, options);
  }

  async delete(key: string): Promise<boolean> {
    return this.#host.delete(await this.#key(key));
  }

  async has(key: string): Promise<boolean> {
    return this.#host.has(await this.#key(key));
  }

  /** Makes every entry of this namespace unreachable on every instance (one INCR, one message). */
  clear(): Promise<void> {
    return this.#clear();
  }

  async #key(key: string): Promise<string> {
    if (typeof key !== 'string' || key === '')
      throw new InvalidKeyError(key, 'a key must be a non-empty string');
    return (await this.#versions.prefixOf(this.name)) + key;
  }
}
