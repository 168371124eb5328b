import type { Entry } from '../src/extend.js';
import { jsonSerializer } from '../src/index.js';
import { type PreparedWrite, type RemoteTier, type StoredEntry } from '../src/extend.js';

/**
 * The demo's stand-in for Redis when neither REDIS_URL nor a redis-server binary is available:
 * a shared in-process map that still encodes every value, so sizes and copy semantics match.
 * It is a demo fallback only; the tests always use real redis-server processes.
 */
export class InProcessTier implements RemoteTier {
  readonly kind = 'remote';
  readonly ttl: number;
  readonly name: string;
  readonly #data: Map<string, { payload: string; deleteAt: number }>;
  readonly #serializer = jsonSerializer();

  constructor(shared: Map<string, { payload: string; deleteAt: number }>, name = 'redis', ttl = 300_000) {
    this.#data = shared;
    this.name = name;
    this.ttl = ttl;
  }

  prepare(key: string, entry: Entry): PreparedWrite {
    const e = entry.expiresAt === Number.POSITIVE_INFINITY ? null : entry.expiresAt;
    return { key, entry, payload: this.#serializer.encode({ c: entry.createdAt, e, v: entry.value }) };
  }

  async get(key: string): Promise<StoredEntry | undefined> {
    await Promise.resolve();
    const found = this.#data.get(key);
    if (found === undefined || found.deleteAt <= Date.now()) return undefined;
    const wire = this.#serializer.decode(found.payload) as { c: number; e: number | null; v: unknown };
    return {
      entry: { value: wire.v, createdAt: wire.c, expiresAt: wire.e ?? Infinity },
      size: found.payload.length,
    };
  }

  async getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return Promise.all(keys.map((key) => this.get(key)));
  }

  async setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    writes.forEach((write, i) =>
      this.#data.set(write.key, { payload: write.payload as string, deleteAt: Date.now() + ttls[i]! }),
    );
  }

  async has(key: string): Promise<boolean> {
    return (await this.get(key)) !== undefined;
  }

  async delete(keys: readonly string[]): Promise<number> {
    return keys.filter((key) => this.#data.delete(key)).length;
  }

  async clear(): Promise<number> {
    const size = this.#data.size;
    this.#data.clear();
    return size;
  }

  async close(): Promise<void> {}
}
