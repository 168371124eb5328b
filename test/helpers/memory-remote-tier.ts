import type { Entry } from '../../src/entry.js';
import { SerializationError } from '../../src/errors.js';
import { jsonSerializer } from '../../src/serializers/json.js';
import type { Serializer } from '../../src/serializers/serializer.js';
import { globMatcher } from '../../src/sync/glob.js';
import { decodeStored, toWire } from '../../src/tiers/envelope.js';
import type { RawReads } from '../../src/tiers/guarded-tier.js';
import {
  TierHookSlot,
  type PreparedWrite,
  type RemoteTier,
  type StoredEntry,
  type TierHooks,
} from '../../src/tiers/tier.js';

/** The keyspace several in-memory tiers share, as tiers under different prefixes share a Redis. */
export class MemoryKeyspace {
  readonly data = new Map<string, { payload: string | Buffer; deleteAt: number }>();

  constructor(readonly clock: () => number = Date.now) {}

  /** The payload under a full key, or undefined once its life is over (dropped then, lazily). */
  read(full: string): string | Buffer | undefined {
    const found = this.data.get(full);
    if (found === undefined) return undefined;
    if (found.deleteAt <= this.clock()) {
      this.data.delete(full);
      return undefined;
    }
    return found.payload;
  }
}

export type Mode = 'ok' | 'hang' | 'fail';

export interface MemoryRemoteTierOptions {
  keyspace?: MemoryKeyspace;
  /** @default 'memory-remote' */
  name?: string;
  /** @default 60_000 */
  ttl?: number;
  /** @default '' */
  prefix?: string;
  /** @default jsonSerializer() */
  serializer?: Serializer;
}

/**
 * A RemoteTier kept in a Map, for tests that need a second kind of remote tier beside Redis: it
 * encodes every entry with the stored envelope and a serializer (so sizes, copies, refused values
 * and corrupt payloads behave as in Redis), honours each write's life, and confines clear() and
 * deleteMatching() to its prefix. A test scripts faults through `mode`: every call then fails,
 * or hangs until the test settles it through `hung`.
 */
export class MemoryRemoteTier implements RemoteTier {
  readonly kind = 'remote';
  readonly name: string;
  readonly ttl: number;
  readonly prefix: string;
  readonly keyspace: MemoryKeyspace;
  readonly #serializer: Serializer;
  readonly #hooks = new TierHookSlot();
  mode: Mode = 'ok';
  /** Calls made, faulty or not. */
  calls = 0;
  /** Rejecters of hung calls, so a test can make them settle late. */
  readonly hung: ((error: Error) => void)[] = [];
  closes = 0;

  constructor(options: MemoryRemoteTierOptions = {}) {
    this.keyspace = options.keyspace ?? new MemoryKeyspace();
    this.name = options.name ?? 'memory-remote';
    this.ttl = options.ttl ?? 60_000;
    this.prefix = options.prefix ?? '';
    this.#serializer = options.serializer ?? jsonSerializer();
  }

  attach(hooks: TierHooks): () => void {
    return this.#hooks.attach(hooks);
  }

  prepare(key: string, entry: Entry): PreparedWrite {
    try {
      return { key, entry, payload: this.#serializer.encode(toWire(entry)) };
    } catch (error) {
      throw new SerializationError(key, this.#serializer.name, error);
    }
  }

  get(key: string): Promise<StoredEntry | undefined> {
    return this.run(() => this.decode(key, this.keyspace.read(this.prefix + key)));
  }

  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return this.run(() => keys.map((key) => this.decode(key, this.keyspace.read(this.prefix + key))));
  }

  setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    return this.run(() => {
      const now = this.keyspace.clock();
      writes.forEach(({ key, payload }, i) => {
        // A copy, as a server would hold: the caller may reuse its buffer.
        const stored = typeof payload === 'string' ? payload : Buffer.from(payload);
        this.keyspace.data.set(this.prefix + key, { payload: stored, deleteAt: now + ttls[i]! });
      });
    });
  }

  has(key: string): Promise<boolean> {
    return this.run(() => this.keyspace.read(this.prefix + key) !== undefined);
  }

  delete(keys: readonly string[]): Promise<number> {
    return this.run(() => {
      let removed = 0;
      for (const key of new Set(keys)) {
        const full = this.prefix + key;
        if (this.keyspace.read(full) !== undefined && this.keyspace.data.delete(full)) removed++;
      }
      return removed;
    });
  }

  clear(): Promise<number> {
    return this.run(() => this.#deleteWhere(() => true));
  }

  deleteMatching(pattern: string): Promise<number> {
    return this.run(() => this.#deleteWhere(globMatcher(pattern)));
  }

  close(): Promise<void> {
    this.closes++;
    return Promise.resolve();
  }

  /** Stores a raw payload under `key`, bypassing prepare(): garbage, or another version's entry. */
  plant(key: string, payload: string | Buffer, life = Number.POSITIVE_INFINITY): void {
    this.keyspace.data.set(this.prefix + key, { payload, deleteAt: this.keyspace.clock() + life });
  }

  /** Runs a call as the scripted mode says, asynchronously like a network store. */
  protected run<R>(work: () => R): Promise<R> {
    this.calls++;
    if (this.mode === 'fail') return Promise.reject(new Error('connection refused'));
    if (this.mode === 'hang') return new Promise<R>((_resolve, reject) => this.hung.push(reject));
    return Promise.resolve().then(work);
  }

  protected decode(key: string, payload: string | Buffer | undefined): StoredEntry | undefined {
    return payload === undefined
      ? undefined
      : decodeStored(key, payload, this.#serializer, this.#hooks.corrupt);
  }

  /** Deletes this tier's live keys (cache keys, without the prefix) that `matches` accepts. */
  #deleteWhere(matches: (key: string) => boolean): number {
    let removed = 0;
    for (const full of [...this.keyspace.data.keys()]) {
      if (!full.startsWith(this.prefix)) continue;
      if (this.keyspace.read(full) === undefined) continue;
      if (matches(full.slice(this.prefix.length)) && this.keyspace.data.delete(full)) removed++;
    }
    return removed;
  }
}

/** The in-memory tier with RawReads, so a guard around it decodes reads itself and batches them. */
export class RawMemoryRemoteTier extends MemoryRemoteTier implements RawReads {
  readonly batchable = true;

  readRaw(key: string): Promise<string | Buffer | null> {
    return this.run(() => this.keyspace.read(this.prefix + key) ?? null);
  }

  readRawMany(keys: readonly string[]): Promise<(string | Buffer | null)[]> {
    return this.run(() => keys.map((key) => this.keyspace.read(this.prefix + key) ?? null));
  }

  decodeRaw(key: string, raw: string | Buffer | null): StoredEntry | undefined {
    return raw === null ? undefined : this.decode(key, raw);
  }
}
