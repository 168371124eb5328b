import type { Entry } from '../../entry.js';
import { InvalidOptionError, SerializationError, ValueTooLargeError, describe } from '../../errors.js';
import { FOREVER, parseDuration, type Duration } from '../../internal/duration.js';
import { wellFormed } from '../../internal/keys.js';
import { optionNames } from '../../internal/option-names.js';
import { jsonSerializer } from '../../serializers/json.js';
import { BUS_KEY_SPACE, GENERATION_KEY_PREFIX, isReserved } from '../../sync/reserved-keys.js';
import type { Serializer } from '../../serializers/serializer.js';
import { watchConnectionErrors, type ConnectionErrors } from '../connection-errors.js';
import type { TierCoordination } from '../coordination.js';
import { compressorOf, type CompressionOptions, type Compressor } from '../compression.js';
import { MAX_STORED_BYTES, decodeStored, toWire } from '../envelope.js';
import { GUARD_OPTION_NAMES, GuardedTier, type GuardOptions, type RawReads } from '../guarded-tier.js';
import { NOT_A_STRING, type RawReply } from '../read-batch.js';
import {
  TierHookSlot,
  UNREAD_LEASE,
  type Leased,
  type PreparedWrite,
  type RemoteTier,
  type StoredEntry,
  type TierHooks,
} from '../tier.js';
import {
  isCluster,
  isReplyError,
  orderedConnectionOf,
  type RedisClient,
  type RedisConnection,
  type RedisPipeline,
} from './client.js';
import { adoptClient, checkClient, type RedisClientOption } from './clients.js';
import { ClusterRoutes, REDIRECTS, isRedirect, throwFirstError } from './cluster-routes.js';
import { redisCoordination } from './coordination.js';
import { directReads, type EntryReads } from './direct-reads.js';
import { ReplicaWait, type ReplicasOptions } from './replica-wait.js';
import {
  BURY_SCRIPT,
  FILL_SCRIPT,
  TOMBSTONE_TTL,
  generationKey,
  generationKeys,
  isTombstone,
  leaseOf,
  newGeneration,
  seenOf,
  tombstone,
  tombstoneMark,
  type RedisLease,
} from './fill-leases.js';
import { needsEval, sendsEval, type Script } from './script.js';

export interface RedisTierOptions extends GuardOptions {
  /**
   * A client of ioredis (5 or 6) or iovalkey (`Redis`, a Sentinel-configured `Redis`, or a
   * `Cluster`), a connected node-redis client (`createClient`, `createCluster` or
   * `createSentinel`, redis 5 or 6; see docs/clients.md), or a `redis://` URL from which the tier creates (and on `close()` quits) its own
   * ioredis client (ioredis must then be installed) with auto-pipelining on and fail-fast
   * settings (`OWNED_CLIENT_OPTIONS` in clients.ts). A client you pass in stays yours to close; whatever
   * its settings, the tier's `timeout` and `breaker` bound the wait, and once it has been ready
   * the tier sends nothing while it is disconnected.
   */
  client: RedisClientOption;
  /** Name in stats, errors and per-tier TTL maps. @default 'redis' */
  name?: string;
  /** Default life of entries in this tier. @default '5m' */
  ttl?: Duration;
  /**
   * Prefix of every key this tier and its cache write (entries, tag times, namespace versions,
   * locks); `clear()` removes exactly these. It must end with `:` and contain no other `:`
   * (`'shop:'`, `'shop.v2:'`, `'{shop}:'`; not `'shop:v2:'` nor `''`): then no prefix is the
   * start of another, so no cache can reach another's keys, whatever keys it is given.
   * @default 'tc:'
   */
  prefix?: string;
  /** @default jsonSerializer() (see docs/values.md); `msgpackSerializer()` from 'tiercache/msgpack' is faster */
  serializer?: Serializer;
  /** Keys per SCAN/UNLINK batch in `clear()`. @default 500 */
  scanCount?: number;
  /**
   * Largest encoded entry, in bytes, this tier writes or reads. A write over it is refused
   * before anything is written to any tier (`ValueTooLargeError`); a stored value over it (one
   * another writer planted) is a corrupt miss, never decoded, and after the first such read this
   * instance reads that key by a script that answers with the size alone while the value stays
   * over the limit. 8 MiB: past it a JSON decode stalls the event loop for tens of ms, a read
   * holds the connection (and every call queued behind it) for as long again, and a value that
   * big is better kept elsewhere and cached as a reference. At most 512 MiB (Redis's own limit).
   * @default 8_388_608 (8 MiB)
   */
  maxValueBytes?: number;
  /**
   * Compresses encoded entries of `threshold` bytes or more (`true`: brotli at quality 4, from
   * 1 KiB; see {@link CompressionOptions}). JSON records shrink to 8–15% of their size, for
   * about the time JSON.stringify takes (docs/values.md has the figures). maxValueBytes bounds
   * the entry before compression, and a compressed entry is never inflated past it.
   *
   * Whatever this option says, the tier reads compressed and plain entries alike, so it can be
   * turned on or off at any time. It is off by default for rolling upgrades: a tiercache older
   * than compression reads a compressed entry as a corrupt miss (never a wrong value), so turn
   * it on once every instance that reads this Redis runs a version that has this option.
   * @default false
   */
  compression?: boolean | CompressionOptions;
  /**
   * Waits after every write and delete of entries until `wait` replicas of the master that took
   * it acknowledge it (Redis `WAIT`), for at most `timeout`. Redis replicates asynchronously: a
   * master that dies before it sent a delete or an overwrite to its replica loses it at the
   * failover, and the promoted replica serves the older value until its TTL. With `replicas`, a
   * write or delete that fewer than `wait` replicas acknowledged in time counts as failed: it is
   * reported (`TierError`), counted by the breaker, and its keys are deleted again once the tier
   * answers (the repair), so a lost invalidation is made good after the failover. Costs one
   * replication round trip per write, within the tier's `timeout`. `WAIT` does not make a write
   * durable: with more replicas than `wait`, the one promoted may not be one that acknowledged.
   * Tag times, namespace versions and `clear()` are not waited for. WAIT holds the connection
   * that sent it, so once a master answers short (it lacks the replicas), writes to it skip the
   * WAIT and count as unacknowledged for the next second (or ten timeouts, if longer) instead of
   * holding every command queued behind them for the whole timeout. @default undefined (no WAIT)
   */
  replicas?: ReplicasOptions;
}

export type { ReplicasOptions };

export const REDIS_TIER_DEFAULTS = Object.freeze({
  name: 'redis',
  ttl: '5m',
  prefix: 'tc:',
  scanCount: 500,
  maxValueBytes: MAX_STORED_BYTES,
  compression: false,
} as const);

/** Redis's largest string (proto-max-bulk-len's default). */
const REDIS_MAX_BULK = 512 * 1024 * 1024;

/** How many keys known to hold an oversized value an instance remembers (read by script). */
const OVERSIZED_KEYS = 1_024;

/** GET unless the value is over ARGV[1] bytes: then only its size, so it is not transferred. */
const CAPPED_GET =
  "local n = redis.call('strlen', KEYS[1]) if n > tonumber(ARGV[1]) then return n end return redis.call('get', KEYS[1])";

/**
 * Whether a payload read as text was bytes that are not UTF-8: a compressed payload (a peer's
 * with compression on) starts with 0xC1, which is never UTF-8, so its text starts with U+FFFD.
 * No JSON payload does. A custom text serializer's payload that starts with U+FFFD is read
 * again for nothing, then decoded as bytes as before.
 */
function mangled(reply: RawReply): boolean {
  return typeof reply === 'string' && reply.charCodeAt(0) === 0xfffd;
}

/**
 * A key holding a hash, list, stream… (planted, or another program's key under the prefix) is a
 * corrupt miss, as MGET already reads it (nil), and its fill replaces it: GET's WRONGTYPE error
 * would count against the tier, and five reads of that one key opened the breaker for every key
 * (issue 19 rerun). Other errors stay errors.
 */
function notAString(error: unknown): RawReply {
  if (isReplyError(error) && error.message.startsWith('WRONGTYPE')) return NOT_A_STRING;
  throw error;
}

const REDIS_OPTION_NAMES = GUARD_OPTION_NAMES.with(
  ...optionNames<Omit<RedisTierOptions, keyof GuardOptions>>({
    client: true,
    name: true,
    ttl: true,
    prefix: true,
    serializer: true,
    scanCount: true,
    maxValueBytes: true,
    compression: true,
    replicas: true,
  }).names,
);

/** A Redis tier (L2, or a regional/global tier in a chain). */
export function redisTier(options: RedisTierOptions): RedisTier {
  return new RedisTier(options);
}

/**
 * The Redis tier the cache uses: {@link RedisStore}'s commands behind per-call timeouts, a
 * circuit breaker, and a fail-fast check of the client's connection.
 */
export class RedisTier extends GuardedTier<RedisStore> {
  constructor(options: RedisTierOptions) {
    const store = new RedisStore(options);
    try {
      super(store, options, {
        connected: connectionCheck(store.client),
        received: receivedBytes(store.client),
        lastError: () => store.connection.last(),
      });
    } catch (error) {
      // A bad guard option: a client made from a URL would otherwise go on connecting forever.
      void store.close().catch(() => {});
      throw error;
    }
  }

  get client(): RedisClient {
    return this.inner.client;
  }

  get prefix(): string {
    return this.inner.prefix;
  }
}

/**
 * Bytes a single connection has received, which extends the deadlines of calls waiting behind a
 * large reply (GuardOptions.minThroughput). None for a Cluster: traffic of one node says
 * nothing about a call waiting on another.
 */
function receivedBytes(client: RedisClient): (() => number) | undefined {
  if (isCluster(client)) return undefined;
  // The socket is replaced on reconnect (and absent before the first connect).
  return () => client.stream?.bytesRead ?? 0;
}

/**
 * Whether a client may be sent a command now. Before its first connect it may (commands wait
 * in its queue, bounded by the tier's timeout); once it has been ready, only while ready, so a
 * lost connection fails calls at once instead of queueing them for a reconnect.
 */
function connectionCheck(client: RedisClient): () => boolean {
  let wasReady = client.status === 'ready';
  if (!wasReady) client.once('ready', () => (wasReady = true));
  return () => client.status === 'ready' || !wasReady;
}

/** Redis commands of a tier, unguarded: {@link RedisTier} adds timeouts and the breaker. */
export class RedisStore implements RemoteTier, RawReads {
  readonly kind = 'remote';
  readonly name: string;
  readonly ttl: number;
  readonly prefix: string;
  readonly client: RedisClient;
  /** How entries are read: written at once where the client allows it (see direct-reads.ts). */
  readonly #reads: EntryReads;
  readonly #owned: boolean;
  /** The client's last connection error (see connection-errors.ts). */
  readonly connection: ConnectionErrors;
  /** Set for a Cluster client: multi-key commands are split by slot and grouped by master. */
  readonly #routes: ClusterRoutes | undefined;
  readonly #serializer: Serializer;
  readonly #scanCount: number;
  readonly maxValueBytes: number;
  /** Compresses large payloads on write (RedisTierOptions.compression); reads inflate whatever they find. */
  readonly #compressor: Compressor | undefined;
  /**
   * Whether payloads are read as text: with a text serializer and no compression of its own,
   * what this tier writes is UTF-8 text, which both ioredis and node-redis turn into a string
   * faster than into a Buffer the serializer then decodes (5–6% of a batched read). A peer that
   * compresses writes bytes a text read would mangle; see {@link mangled} for how they are told
   * apart and read again as bytes.
   */
  readonly #text: boolean;
  /** WAIT after writes and deletes (RedisTierOptions.replicas), the timeout in ms. */
  readonly #replicas: ReplicaWait | undefined;
  /** Locks, tag times and namespace versions beside the entries; the bus on pub/sub. */
  readonly coordination: TierCoordination;
  /**
   * The client, when a bus message published on it after a write runs after the write (see
   * orderedConnectionOf); never with `replicas`, where a write is done only once WAIT answered.
   */
  readonly orderedConnection: object | undefined;
  /**
   * Keys found holding a value over maxValueBytes, read by CAPPED_GET until they hold a smaller
   * one: a planted huge value is transferred once per instance, not on every read.
   */
  readonly #oversized = new Set<string>();
  /** The cache this tier serves: corrupt payloads are reported to it. */
  readonly #hooks = new TierHookSlot();
  /** Life of the tombstone a delete leaves, in ms (see fill-leases.ts); the cache's fill window, given by attach(). */
  tombstoneTtl = TOMBSTONE_TTL;
  /** The start of every tombstone this tier writes, for the delete script's count. */
  readonly #mark: string | Buffer;
  /** The fill generation last learned from Redis (see fill-leases.ts); '' before any clear. */
  #generation = '';

  /** No batched reads on a Cluster: a batch spans nodes, and one failing node would fail it all. */
  get batchable(): boolean {
    return this.#routes === undefined;
  }

  constructor(options: RedisTierOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError('redisTier', `expected an options object, got ${describe(options)}`);
    }
    REDIS_OPTION_NAMES.check(options, 'redisTier options');
    checkClient(options.client, 'redisTier.client');
    this.name = options.name ?? REDIS_TIER_DEFAULTS.name;
    if (typeof this.name !== 'string' || this.name === '') {
      throw new InvalidOptionError(
        'redisTier.name',
        `expected a non-empty string, got ${describe(this.name)}`,
      );
    }
    const ttl = parseDuration(options.ttl ?? REDIS_TIER_DEFAULTS.ttl);
    if (typeof ttl === 'string') throw new InvalidOptionError(`${this.name}.ttl`, ttl);
    this.ttl = ttl;
    this.prefix = checkPrefix(options.prefix ?? REDIS_TIER_DEFAULTS.prefix, `${this.name}.prefix`);
    this.#serializer = options.serializer ?? jsonSerializer();
    const serializer: Partial<Serializer> = this.#serializer;
    if (
      typeof serializer !== 'object' ||
      serializer === null ||
      typeof serializer.encode !== 'function' ||
      typeof serializer.decode !== 'function' ||
      typeof serializer.name !== 'string'
    ) {
      throw new InvalidOptionError(
        `${this.name}.serializer`,
        `expected a serializer ({ name, binary, encode, decode }), got ${describe(serializer)}`,
      );
    }
    const scanCount = options.scanCount ?? REDIS_TIER_DEFAULTS.scanCount;
    if (!Number.isInteger(scanCount) || scanCount < 1) {
      throw new InvalidOptionError(
        `${this.name}.scanCount`,
        `expected a positive integer, got ${describe(scanCount)}`,
      );
    }
    this.#scanCount = scanCount;
    const maxValueBytes = options.maxValueBytes ?? REDIS_TIER_DEFAULTS.maxValueBytes;
    if (!Number.isInteger(maxValueBytes) || maxValueBytes < 1 || maxValueBytes > REDIS_MAX_BULK) {
      throw new InvalidOptionError(
        `${this.name}.maxValueBytes`,
        `expected a whole number of bytes from 1 to ${REDIS_MAX_BULK} (512 MiB), got ${describe(maxValueBytes)}`,
      );
    }
    this.maxValueBytes = maxValueBytes;
    this.#compressor = compressorOf(options.compression, `${this.name}.compression`);
    // Only a serializer that says it writes text: one that gives no answer (a JavaScript user's
    // may not) could be binary, and a text read would mangle its bytes.
    this.#text = this.#serializer.binary === false && this.#compressor === undefined;
    this.#replicas =
      options.replicas === undefined ? undefined : new ReplicaWait(options.replicas, `${this.name}.replicas`);
    this.#mark = tombstoneMark(this.#serializer);
    // Last, once every option is known good: a client made from a URL starts connecting at once,
    // and one made before a throw would go on reconnecting for the life of the process.
    const { client, owned } = adoptClient(options.client, 'redisTier.client');
    this.client = client;
    // Only where the guard batches reads: unbatched, each read written at once is a write (a
    // syscall) of its own where the auto-pipeline makes one of a tick's reads; 64 concurrent
    // callers read at 0.77x raw ioredis that way, against 0.88x through the auto-pipeline.
    this.#reads = options.batchReads === false ? client : directReads(client);
    this.#owned = owned;
    if (isCluster(client)) this.#routes = new ClusterRoutes(client, this.#replicas);
    // Connection errors surface through command rejections, which name the last one; this
    // listener also keeps ioredis from printing every reconnect attempt as an unhandled event.
    this.connection = watchConnectionErrors(this.client);
    this.coordination = redisCoordination(this.client, this.prefix);
    this.orderedConnection = this.#replicas === undefined ? orderedConnectionOf(client) : undefined;
  }

  attach(hooks: TierHooks): () => void {
    if (hooks.tombstoneTtl !== undefined) this.tombstoneTtl = hooks.tombstoneTtl;
    return this.#hooks.attach(hooks);
  }

  prepare(key: string, entry: Entry): PreparedWrite {
    let payload: string | Uint8Array;
    try {
      payload = this.#serializer.encode(toWire(entry));
    } catch (error) {
      throw new SerializationError(key, this.#serializer.name, error);
    }
    const size = this.#overLimit(payload);
    if (size !== 0) throw new ValueTooLargeError(key, this.name, size, this.maxValueBytes);
    if (this.#compressor !== undefined) payload = this.#compressor.compress(payload);
    return { key, entry, payload };
  }

  /**
   * The byte size of a payload over maxValueBytes, or 0 when it is within: a string is counted
   * only when its length alone cannot tell (UTF-8 takes 1 to 3 bytes per UTF-16 unit).
   */
  #overLimit(payload: string | Uint8Array): number {
    const max = this.maxValueBytes;
    if (typeof payload !== 'string') return payload.byteLength > max ? payload.byteLength : 0;
    if (payload.length * 3 <= max) return 0;
    if (payload.length > max) return Buffer.byteLength(payload, 'utf8');
    const bytes = Buffer.byteLength(payload, 'utf8');
    return bytes > max ? bytes : 0;
  }

  get(key: string): Promise<StoredEntry | undefined> {
    return this.readRaw(key).then((raw) => this.decodeRaw(key, raw));
  }

  /**
   * The stored payload of `key` as Redis returns it (see RawReads: the guard decodes it): text
   * or bytes (see #text).
   */
  readRaw(key: string): Promise<RawReply> {
    const full = this.prefix + key;
    if (this.#oversized.size !== 0 && this.#oversized.has(key))
      return this.#readCapped(full).catch(notAString);
    if (!this.#text) return this.#readBytes(full);
    return this.#reads
      .get(full)
      .then((reply) => (mangled(reply) ? this.#readBytes(full) : reply), notAString);
  }

  /** A GET of `full` as bytes. */
  #readBytes(full: string): Promise<RawReply> {
    return this.#reads.getBuffer(full).catch(notAString);
  }

  /** `replies` (of a text read of `full`) with each mangled payload read again as bytes. */
  async #unmangled(full: readonly string[], replies: RawReply[]): Promise<RawReply[]> {
    let again: number[] | undefined;
    for (let i = 0; i < replies.length; i++) if (mangled(replies[i]!)) (again ??= []).push(i);
    if (again === undefined) return replies;
    // One GET each: compressed payloads are large, and a Cluster routes a GET by its own key.
    const bytes = await Promise.all(again.map((i) => this.#readBytes(full[i]!)));
    again.forEach((i, j) => (replies[i] = bytes[j]!));
    return replies;
  }

  /**
   * A read of a key known to hold an oversized value: its size (a number, reported as corrupt
   * by decodeRaw) while it is still over the limit, else the payload.
   */
  #readCapped(full: string): Promise<RawReply> {
    return this.client.evalBuffer!(CAPPED_GET, 1, full, this.maxValueBytes) as Promise<RawReply>;
  }

  decodeRaw(key: string, raw: RawReply): StoredEntry | undefined {
    if (raw === null) {
      if (this.#oversized.size !== 0) this.#oversized.delete(key);
      return undefined;
    }
    if (raw === NOT_A_STRING) {
      this.#hooks.corrupt(key, 'the key holds another type than a string (WRONGTYPE): read as a miss');
      return undefined;
    }
    if (typeof raw === 'number') {
      this.#tooLarge(key, raw);
      return undefined;
    }
    const size = this.#overLimit(raw);
    if (size !== 0) {
      this.#tooLarge(key, size);
      return undefined;
    }
    if (this.#oversized.size !== 0) this.#oversized.delete(key);
    const found = this.#decode(key, raw);
    // A deleted key's tombstone (see fill-leases.ts) reads as nothing.
    return found !== undefined && isTombstone(found.entry) ? undefined : found;
  }

  /** A stored value over maxValueBytes: a corrupt miss, and its key is read by script from now on. */
  #tooLarge(key: string, size: number): void {
    const known = this.#oversized;
    known.delete(key);
    known.add(key);
    if (known.size > OVERSIZED_KEYS) known.delete(known.values().next().value!);
    this.#hooks.corrupt(
      key,
      `the stored value is ${size} bytes, over maxValueBytes (${this.maxValueBytes}); not decoded`,
    );
  }

  async getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    if (keys.length === 0) return [];
    const payloads = await this.readRawMany(keys);
    return payloads.map((payload, i) => this.decodeRaw(keys[i]!, payload));
  }

  /** The stored payloads of `keys`, in order, in one round trip (one per master on a Cluster). */
  async readRawMany(keys: readonly string[]): Promise<RawReply[]> {
    if (this.#oversized.size !== 0 && keys.some((key) => this.#oversized.has(key))) {
      // Keys known to be oversized by script, one each; the rest in one read as usual.
      // Decided once: other reads may change the set while these wait.
      const capped = keys.map((key) => this.#oversized.has(key));
      const [known, others] = await Promise.all([
        Promise.all(keys.filter((_, i) => capped[i]).map((key) => this.#readCapped(this.prefix + key))),
        capped.every(Boolean) ? [] : this.readRawMany(keys.filter((_, i) => !capped[i])),
      ]);
      let k = 0;
      let r = 0;
      return capped.map((isCapped) => (isCapped ? known[k++]! : others[r++]!));
    }
    const full = keys.map((key) => this.prefix + key);
    const text = this.#text;
    if (this.#routes === undefined) {
      if (!text) return this.#reads.mgetBuffer(full);
      return this.#reads.mget(full).then((replies) => this.#unmangled(full, replies));
    }
    const payloads = new Array<RawReply>(full.length).fill(null);
    // MGET must stay within one slot (CROSSSLOT otherwise); one pipeline per master keeps it
    // to one round trip per node, run in parallel.
    await this.#routes.perNode(full, (pipeline, slotKeys, positions) => {
      void (text ? pipeline.mget(slotKeys) : pipeline.mgetBuffer(slotKeys));
      return (reply: unknown) => {
        (reply as (string | Buffer | null)[]).forEach((payload, j) => (payloads[positions[j]!] = payload));
      };
    });
    return text ? this.#unmangled(full, payloads) : payloads;
  }

  async setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    // Every payload written here is within maxValueBytes: these keys read as usual again.
    if (this.#oversized.size !== 0) for (const write of writes) this.#oversized.delete(write.key);
    if (writes.length === 1) {
      await this.#set(writes[0] as PreparedWrite, ttls[0] as number);
      return;
    }
    const bodies = writes.map((write) => this.#payload(write));
    const queue = (pipeline: RedisPipeline, i: number): void => {
      const [full, body] = bodies[i]!;
      const ttl = ttls[i] as number;
      if (ttl === FOREVER) pipeline.set(full, body);
      else pipeline.set(full, body, 'PX', toPx(ttl));
    };
    if (this.#routes === undefined) {
      await this.#exec((pipeline) => bodies.forEach((_, i) => queue(pipeline, i)), bodies[0]![0]);
      return;
    }
    await this.#routes.perNode(
      bodies.map(([full]) => full),
      (pipeline, _slotKeys, positions) => {
        for (const i of positions) queue(pipeline, i);
        return undefined;
      },
    );
  }

  async has(key: string): Promise<boolean> {
    // Not EXISTS: a deleted key holds its tombstone.
    return (await this.get(key)) !== undefined;
  }

  /**
   * Deletes by leaving a tombstone under each key (see fill-leases.ts): one script call, one per
   * slot on a Cluster. Counts the keys that held something other than a tombstone.
   */
  async delete(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const args = [tombstone(this.#serializer), toPx(this.tombstoneTtl), this.#mark];
    const counts = await Promise.all(
      this.#bySlot(keys.map((key) => this.prefix + key)).map(
        (slotKeys) => this.#runScript(BURY_SCRIPT, slotKeys, args) as Promise<number>,
      ),
    );
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Every key, or (on a Cluster) the keys grouped by slot: one script call each. */
  #bySlot(fullKeys: string[]): string[][] {
    return this.#routes?.bySlot(fullKeys) ?? [fullKeys];
  }

  async clear(): Promise<number> {
    await this.#newGeneration();
    // The generation keys stay: a clear refuses the fills of loads that began before it.
    const generations = this.prefix + GENERATION_KEY_PREFIX;
    return this.#deleteScanned(`${escapeGlob(this.prefix)}*`, (full) => !full.startsWith(generations));
  }

  async deleteMatching(pattern: string): Promise<number> {
    await this.#newGeneration();
    // A pattern is over cache keys: the tag times, versions and locks beside them are not its to
    // delete (a `_*` pattern would otherwise revive tag-invalidated entries).
    const start = this.prefix.length;
    return this.#deleteScanned(escapeGlob(this.prefix) + pattern, (full) => !isReserved(full.slice(start)));
  }

  /**
   * Sets a new fill generation before clear() or deleteByPattern() removes anything, so that a
   * load whose read came before them cannot fill a key they found empty (see fill-leases.ts).
   */
  async #newGeneration(): Promise<void> {
    const generation = newGeneration();
    // It needs to outlive only the loads it refuses: as long as a tombstone.
    const life = toPx(this.tombstoneTtl);
    const keys = generationKeys(this.prefix, this.#routes !== undefined);
    if (this.#routes === undefined) await this.client.set(keys[0]!, generation, 'PX', life);
    else
      await this.#routes.perNode(keys, (pipeline, slotKeys) => {
        for (const key of slotKeys) pipeline.set(key, generation, 'PX', life);
        return undefined;
      });
    // Reads from now on begin after the change: their fills may go ahead.
    this.#generation = generation;
  }

  // --- fill leases (see fill-leases.ts) ---------------------------------------------------------

  /** The fill generation this instance knows now: a read notes it when it begins. */
  generation(): string {
    return this.#generation;
  }

  /** What a read saw, as its lease. */
  lease(reply: RawReply, generation: string): RedisLease {
    return leaseOf(reply, generation);
  }

  async getLeased(key: string): Promise<Leased> {
    const generation = this.#generation;
    const reply = await this.readRaw(key);
    return { found: this.decodeRaw(key, reply), lease: leaseOf(reply, generation) };
  }

  async getManyLeased(keys: readonly string[]): Promise<Leased[]> {
    if (keys.length === 0) return [];
    const generation = this.#generation;
    const replies = await this.readRawMany(keys);
    return replies.map((reply, i) => ({
      found: this.decodeRaw(keys[i]!, reply),
      lease: leaseOf(reply, generation),
    }));
  }

  /**
   * Writes each entry only where its key still holds what its lease saw, and the generation is
   * still the one the lease knew: one script call (one per slot on a Cluster). Per write,
   * whether it was written. A write without a lease (undefined) checks nothing but the generation
   * it cannot know either: it is written as by setMany.
   */
  fillMany(
    writes: readonly PreparedWrite[],
    ttls: readonly number[],
    leases: readonly unknown[],
  ): Promise<boolean[]> {
    if (this.#oversized.size !== 0) for (const write of writes) this.#oversized.delete(write.key);
    if (writes.length === 1) {
      // The getOrSet miss: no grouping, one script call.
      const full = this.prefix + writes[0]!.key;
      return this.#fill([full], writes, ttls, leases, [0]).then((reply) => [reply === 1 || reply[0] === 1]);
    }
    const full = writes.map((write) => this.prefix + write.key);
    const groups = this.#routes?.slotGroups(full) ?? [writes.map((_, i) => i)];
    const filled = new Array<boolean>(writes.length).fill(true);
    return Promise.all(
      groups.map((positions) =>
        this.#fill(
          positions.map((i) => full[i]!),
          writes,
          ttls,
          leases,
          positions,
        ).then((reply) => {
          if (reply !== 1) positions.forEach((i, j) => (filled[i] = reply[j] === 1));
        }),
      ),
    ).then(() => filled);
  }

  /**
   * One fill script call for the writes at `positions` (keys `fullKeys`, all in one slot):
   * 1 when all were written, else a flag per write (the current generation is learned).
   */
  #fill(
    fullKeys: string[],
    writes: readonly PreparedWrite[],
    ttls: readonly number[],
    leases: readonly unknown[],
    positions: readonly number[],
  ): Promise<1 | number[]> {
    const keys = [generationKey(this.prefix, fullKeys[0]!, this.#routes !== undefined), ...fullKeys];
    const args: (string | Buffer | number)[] = [];
    for (const i of positions) {
      const lease = leases[i] as RedisLease | typeof UNREAD_LEASE | undefined;
      const ttl = ttls[i]!;
      args.push(
        (lease === UNREAD_LEASE ? undefined : lease?.generation) ?? this.#generation,
        seenOf(lease),
        this.#payload(writes[i]!)[1],
        ttl === FOREVER ? '' : toPx(ttl),
      );
    }
    return this.#runScript(FILL_SCRIPT, keys, args).then((reply) => {
      if (reply === 1) return 1;
      const flags = reply as (number | string)[];
      this.#generation = String(flags[positions.length] ?? '');
      return flags as number[];
    });
  }

  /** SCAN (never KEYS) for `match` in batches of scanCount, UNLINKing each batch. */
  async #deleteScanned(match: string, keep?: (fullKey: string) => boolean): Promise<number> {
    // SCAN walks one node's keyspace: on a cluster, walk every master.
    const routes = this.#routes;
    const nodes = routes?.masters() ?? [this.client as RedisConnection];
    const counts = await Promise.all(
      nodes.map(async (node) => {
        let removed = 0;
        let cursor = '0';
        do {
          const [next, scanned] = await node.scan(cursor, 'MATCH', match, 'COUNT', this.#scanCount);
          cursor = next;
          const found = keep === undefined ? scanned : scanned.filter(keep);
          if (found.length > 0) removed += await (routes?.unlink(node, found) ?? node.unlink(...found));
        } while (cursor !== '0');
        return removed;
      }),
    );
    return counts.reduce((sum, n) => sum + n, 0);
  }

  async close(): Promise<void> {
    const client = this.client;
    if (!this.#owned) {
      this.connection.dispose();
      return;
    }
    if (client.status === 'end') return;
    if (client.status !== 'ready') {
      // Nothing to say goodbye to: stop reconnecting. (A client between reconnects never
      // reaches 'end' in ioredis, so there is nothing to wait for either.)
      client.disconnect();
      return;
    }
    // quit() resolves on the server's OK, before the socket closes; 'end' means it is released.
    // A hung server never answers QUIT, and one that dies meanwhile leaves the client between
    // reconnects: drop the socket after a grace period, and wait a bounded time for 'end'.
    let timer: NodeJS.Timeout | undefined;
    const ended = new Promise<void>((resolve) => {
      client.once('end', () => resolve());
      timer = setTimeout(() => {
        client.disconnect();
        timer = setTimeout(resolve, QUIT_GRACE_MS * 2);
      }, QUIT_GRACE_MS);
    });
    client.quit().catch(() => client.disconnect());
    await ended;
    clearTimeout(timer);
  }

  #set(write: PreparedWrite, ttl: number): Promise<unknown> {
    const [full, body] = this.#payload(write);
    if (this.#replicas !== undefined) {
      // One pipeline, so the WAIT follows the SET on the connection (the node) that took it.
      return this.#exec(
        (pipeline) =>
          ttl === FOREVER ? pipeline.set(full, body) : pipeline.set(full, body, 'PX', toPx(ttl)),
        full,
      );
    }
    return ttl === FOREVER ? this.client.set(full, body) : this.client.set(full, body, 'PX', toPx(ttl));
  }

  /**
   * Runs a script of writes (EVALSHA, EVAL when Redis does not know it); with `replicas`, in a
   * pipeline of its own followed by WAIT, like every other write.
   */
  #runScript(
    script: Script,
    keys: readonly string[],
    args: readonly (string | Buffer | number)[],
  ): Promise<unknown> {
    const client = this.client;
    if (this.#replicas === undefined) return script.run(client, keys, args);
    const key = keys[0]!;
    const viaEval = (): Promise<unknown> =>
      this.#exec((pipeline) => pipeline.eval(script.body, keys.length, ...keys, ...args), key).then(
        (replies) => replies[0],
      );
    if (sendsEval(client)) return viaEval();
    return this.#exec((pipeline) => pipeline.evalsha(script.sha, keys.length, ...keys, ...args), key).then(
      (replies) => replies[0],
      (error: unknown) => {
        if (!needsEval(error, client)) throw error;
        return viaEval();
      },
    );
  }

  /**
   * Runs the writes `queue` puts on a pipeline (to the master of `key`; a single Redis is one
   * master, ''), WAITing for replicas after them when asked; the writes' replies.
   */
  async #exec(queue: (pipeline: RedisPipeline) => unknown, key: string): Promise<unknown[]> {
    const replicas = this.#replicas;
    if (replicas === undefined) {
      const pipeline = this.client.pipeline();
      queue(pipeline);
      return throwFirstError(await pipeline.exec());
    }
    for (let attempt = 1; ; attempt++) {
      const node = this.#routes?.masterOf(key) ?? '';
      const pipeline = this.client.pipeline();
      queue(pipeline);
      const waited = replicas.append(pipeline, node);
      const results = (await pipeline.exec()) ?? [];
      // The client follows no redirect of a pipeline holding a write, and WAIT is one: after a
      // failover or a slot migration the writes come back MOVED or ASK. They were not run, so
      // they go again, where the refreshed slot map says.
      if (
        this.#routes !== undefined &&
        attempt < REDIRECTS &&
        results.some(([error]) => error !== null && isRedirect(error))
      ) {
        await this.#routes.refreshSlots();
        continue;
      }
      const replies = throwFirstError(results);
      replicas.check(node, waited, waited ? replies.pop() : undefined);
      return replies;
    }
  }

  #payload(write: PreparedWrite): [string, string | Buffer] {
    const { payload } = write;
    const body =
      typeof payload === 'string' || Buffer.isBuffer(payload)
        ? payload
        : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return [this.prefix + write.key, body];
  }

  #decode(key: string, payload: string | Buffer): StoredEntry | undefined {
    return decodeStored(key, payload, this.#serializer, this.#hooks.corrupt, this.maxValueBytes);
  }
}

/** How long close() waits for an owned client's QUIT before dropping the connection. */
const QUIT_GRACE_MS = 500;

/** Redis wants whole milliseconds of at least 1; a fractional life rounds up so it is never 0. */
function toPx(ttl: number): number {
  return Math.max(1, Math.ceil(ttl));
}

/**
 * The character every key prefix ends with and no prefix contains elsewhere. Because of it no
 * valid prefix starts another (`a:` and `a:b:` cannot both be prefixes), so a key under one
 * prefix is never a key under another, and a SCAN of `<prefix>*` finds only that prefix's keys.
 */
export const PREFIX_DELIMITER = ':';

/** A key prefix checked against the rule of {@link PREFIX_DELIMITER}; throws for a bad one. */
export function checkPrefix(prefix: unknown, path: string): string {
  if (typeof prefix !== 'string') {
    throw new InvalidOptionError(path, `expected a string ending in ":", got ${describe(prefix)}`);
  }
  if (prefix === '') {
    throw new InvalidOptionError(
      path,
      "a prefix cannot be empty: clear() would delete every key of the database, and other applications' keys would read as entries",
    );
  }
  if (!wellFormed(prefix))
    throw new InvalidOptionError(
      path,
      `expected well-formed Unicode (a lone surrogate), got ${describe(prefix)}`,
    );
  if (prefix === BUS_KEY_SPACE)
    throw new InvalidOptionError(
      path,
      `${describe(prefix)} is where every cache's bus channel and replay log live (${BUS_KEY_SPACE}bus:<prefix>:log): this cache's clear() would delete them, and its keys could overwrite them`,
    );
  const first = prefix.indexOf(PREFIX_DELIMITER);
  if (first !== prefix.length - 1) {
    const suggestion = `${prefix.replace(/:+$/, '').replaceAll(':', '.')}:`;
    throw new InvalidOptionError(
      path,
      `a prefix must end with ":" and contain no other ":", got ${describe(prefix)} (try ${describe(suggestion)}): ` +
        'otherwise one prefix can start another (as "a:" starts "a:b:"), and one cache would read, overwrite and clear the other\'s keys',
    );
  }
  return prefix;
}

/** Escapes Redis glob metacharacters so a prefix or key matches only itself in SCAN MATCH. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}
