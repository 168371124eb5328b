import type { Entry } from '../entry.js';
import { InvalidOptionError, TierUnavailableError, describe } from '../errors.js';
import { coarseClock, now } from '../internal/clock.js';
import { FOREVER, parseDuration, type Duration } from '../internal/duration.js';
import { within } from '../loading/deadline.js';
import { explained } from './connection-errors.js';
import type { TierCoordination } from './coordination.js';
import { OptionNames, optionNames } from '../internal/option-names.js';
import { BoundedCall } from './bounded-call.js';
import { Deadlines } from './deadlines.js';
import { CALL, CircuitBreaker, PROBE, SKIP, type Admission, type BreakerOptions } from './circuit-breaker.js';
import { FillBatch } from './fill-batch.js';
import { PASS_THROUGH, ReadBatch, type RawReply, type ReadHandler } from './read-batch.js';
import {
  TierHookSlot,
  type Leased,
  type PreparedWrite,
  type RemoteTier,
  type StoredEntry,
  type TierHealth,
  type TierHooks,
} from './tier.js';

export type { ReadHandler } from './read-batch.js';

export interface GuardOptions {
  /**
   * Longest wait for a call on the request path: one duration for all, or `read` (get,
   * getMany, has) and `write` (set, delete) apart. A call that runs out rejects with a
   * `TierTimeoutError` and the request goes on without the tier; the command's own late reply
   * is dropped. `clear()` is never timed. `'forever'` turns timeouts off.
   * @default '250ms'
   */
  timeout?: Duration | { read?: Duration; write?: Duration };
  /**
   * The circuit breaker that skips the tier after repeated failures; `false` turns it off.
   * @default {} (on, with BREAKER_DEFAULTS)
   */
  breaker?: BreakerOptions | false;
  /**
   * A write or delete that fails, times out or is skipped leaves the tier holding an older
   * value. The tier remembers up to this many such keys and deletes them from the tier when it
   * answers again, before the breaker lets reads back in; past this many, it clears the tier
   * (its prefix) instead.
   * @default 10_000
   */
  repairLimit?: number;
  /**
   * Reads of the tier made in the same tick of the event loop (concurrent get() and getOrSet()
   * calls that missed L1) go to it as one multi-key read (MGET; a lone read, a GET) of up to this many keys, with
   * one timeout and one breaker outcome for the batch; `false` sends each read on its own. Only
   * tiers that can read many raw replies at once batch (a Redis tier on one server or Sentinel;
   * not on a Cluster, where one failing node would fail reads of keys on the others). The
   * fills of loads (getOrSet misses) made in one tick go the same way, as one fill script call.
   * @default 100
   */
  batchReads?: number | false;
  /**
   * The slowest transfer rate, in bytes per second, that still counts as a healthy tier: a call
   * moving a large payload gets this much longer than `timeout` for it, so big values do not
   * time out and open the breaker. A write's deadline grows by the bytes it and the writes
   * before it on the connection send; a read's (and any call's) by the bytes the connection
   * received while it waited, since a reply ahead of it (or its own) still arriving means the
   * server is answering. A hung server sends nothing, so its calls still fail at `timeout`.
   * (On a Cluster only the write allowance applies.)
   * @default 10_000_000 (10 MB/s)
   */
  minThroughput?: number;
}

export const GUARD_DEFAULTS = Object.freeze({
  timeout: '250ms',
  repairLimit: 10_000,
  batchReads: 100,
  minThroughput: 10_000_000,
} as const);

/** The names of {@link GuardOptions}, for the tiers whose options extend them. */
export const GUARD_OPTION_NAMES = optionNames<GuardOptions>({
  timeout: true,
  breaker: true,
  repairLimit: true,
  batchReads: true,
  minThroughput: true,
});
const TIMEOUT_OPTION_NAMES = new OptionNames(['read', 'write']);

/** Hooks a tier implementation gives its guard; not options a user sets. */
export interface GuardHooks {
  /** Whether the tier's client can take a call now; when not, calls fail fast. */
  connected?: () => boolean;
  /**
   * Time source of the breaker, which reads it on every call's outcome.
   * @default Date.now, cached for up to a millisecond (see coarseClock)
   */
  clock?: () => number;
  /**
   * Bytes the tier's connection has received so far (it may restart from 0 on a reconnect):
   * progress that extends the deadline of calls waiting on it (see `minThroughput`).
   */
  received?: (() => number) | undefined;
  /** The connection's last error, named in the tier's faults so that they say why. */
  lastError?: (() => Error | undefined) | undefined;
}

/**
 * A tier that can hand over a read as its raw reply and a decoder. The guard then decodes in the
 * continuation it has anyway, where the tier would chain one more promise onto every read.
 */
export interface RawReads {
  readRaw(key: string): Promise<RawReply>;
  decodeRaw(key: string, raw: RawReply): StoredEntry | undefined;
  /** The raw replies of many keys in one round trip, in order; lets the guard batch reads. */
  readRawMany?(keys: readonly string[]): Promise<RawReply[]>;
  /**
   * False when a multi-key read can fail as a whole where single reads would not (keys on a
   * Cluster's several nodes): the guard then does not batch.
   */
  readonly batchable?: boolean;
  /** Fill leases from raw reads: the generation a read notes when it begins, and its lease. */
  generation?(): string;
  lease?(reply: RawReply, generation: string): unknown;
}

function hasRawReads(tier: RemoteTier): tier is RemoteTier & RawReads {
  const candidate = tier as Partial<RawReads>;
  return typeof candidate.readRaw === 'function' && typeof candidate.decodeRaw === 'function';
}

/** Wraps any remote tier in timeouts and a circuit breaker. */
export function guardTier<T extends RemoteTier>(tier: T, options: GuardOptions = {}): GuardedTier<T> {
  if (typeof options === 'object' && options !== null) GUARD_OPTION_NAMES.check(options, 'guardTier options');
  return new GuardedTier(tier, options);
}

/**
 * A remote tier behind per-call timeouts, a circuit breaker and a fail-fast connection check.
 * Every rejection it produces is an ordinary tier fault to the cache, which degrades past it;
 * a call skipped by the open breaker is a `TierUnavailableError` that the cache counts without
 * reporting each one (the breaker's `open` event already said so).
 */
export class GuardedTier<T extends RemoteTier = RemoteTier> implements RemoteTier {
  readonly kind = 'remote';
  readonly inner: T;
  /** Longest wait for a read, in ms (FOREVER for none); other reads of this Redis use it too. */
  readonly readTimeout: number;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #connected: (() => boolean) | undefined;
  readonly #raw: (RemoteTier & RawReads) | undefined;
  /** Most keys per batched read; 0 when reads are not batched. */
  readonly #batchLimit: number;
  /** The batch this tick's reads join, until it is sent. */
  #batch: ReadBatch | undefined;
  /**
   * This tick's earlier batches, closed but not yet sent (a tick's reads split into several only
   * past batchReads keys or about BATCH_BYTES of replies, as one read of a 1 MB value does): a
   * read of a key one of them names joins it, so the value is transferred and decoded once.
   */
  readonly #closed: ReadBatch[] = [];
  /** The batch this tick's fills join, until it is sent (batched where reads are). */
  #fills: FillBatch | undefined;
  #timeouts = 0;
  /** The timeout keepers of reads and writes (one when their timeouts agree; none for FOREVER). */
  readonly #readDeadlines: Deadlines | undefined;
  readonly #writeDeadlines: Deadlines | undefined;
  /**
   * Keys whose last write or delete may have missed the tier (or landed late), each with the
   * number of its latest spoiling; deleted from the tier on recovery. A repair forgets a key only
   * if it was not spoiled again while the repair ran.
   */
  readonly #dirty = new Map<string, number>();
  #spoils = 0;
  /** Whether the last repair failed: failures are reported once per streak. */
  #repairFailing = false;
  readonly #repairLimit: number;
  /** More keys missed the tier than `repairLimit`: recovery clears the tier instead. */
  #overflow = false;
  #repairing: Promise<void> | undefined;
  #repairs = 0;
  /** minThroughput in bytes per ms. */
  readonly #bytesPerMs: number;
  readonly #received: (() => number) | undefined;
  readonly #why: (() => Error | undefined) | undefined;
  /**
   * Bytes of calls in flight: payloads of writes and expected replies of reads. A call waits for
   * those sent before it, and (pipelined together) may wait for all of them.
   */
  #inFlight = 0;
  /**
   * Bytes a raw read's reply is expected to take per key: the largest seen lately (decaying
   * with each reply), so reads of keys known to be big get the time to transfer them.
   */
  #perKey = 0;
  /** The inner tier's coordination, its calls bounded by this guard (see #guard). */
  readonly coordination: TierCoordination | undefined;
  /** The cache this tier serves: breaker changes and failed repairs go to it. */
  readonly #hooks = new TierHookSlot();

  constructor(tier: T, options: GuardOptions = {}, hooks: GuardHooks = {}) {
    this.inner = tier;
    this.#raw = hasRawReads(tier) ? tier : undefined;
    const path = tier.name;
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(path, `expected an options object, got ${describe(options)}`);
    }
    const timeout = options.timeout ?? GUARD_DEFAULTS.timeout;
    let writeTimeout: number;
    if (typeof timeout === 'object' && timeout !== null) {
      TIMEOUT_OPTION_NAMES.check(timeout, `${path}.timeout`);
      this.readTimeout = timeoutOf(timeout.read ?? GUARD_DEFAULTS.timeout, `${path}.timeout.read`);
      writeTimeout = timeoutOf(timeout.write ?? GUARD_DEFAULTS.timeout, `${path}.timeout.write`);
    } else {
      this.readTimeout = writeTimeout = timeoutOf(timeout, `${path}.timeout`);
    }
    this.#readDeadlines = deadlinesOf(this.readTimeout);
    this.#writeDeadlines =
      writeTimeout === this.readTimeout ? this.#readDeadlines : deadlinesOf(writeTimeout);
    const breaker = options.breaker ?? {};
    if (breaker !== false) {
      this.#breaker = new CircuitBreaker(
        breaker,
        hooks.clock ?? coarseClock(),
        (state) => this.#hooks.hooks?.breaker(state),
        `${path}.breaker`,
      );
    }
    this.#connected = hooks.connected;
    const limit = options.repairLimit ?? GUARD_DEFAULTS.repairLimit;
    if (!Number.isInteger(limit) || limit < 0) {
      throw new InvalidOptionError(
        `${path}.repairLimit`,
        `expected a non-negative integer, got ${describe(limit)}`,
      );
    }
    this.#repairLimit = limit;
    const batch = options.batchReads ?? GUARD_DEFAULTS.batchReads;
    if (batch !== false && (!Number.isInteger(batch) || batch < 1)) {
      throw new InvalidOptionError(
        `${path}.batchReads`,
        `expected a positive integer or false, got ${describe(batch)}`,
      );
    }
    const throughput = options.minThroughput ?? GUARD_DEFAULTS.minThroughput;
    if (typeof throughput !== 'number' || !(throughput > 0) || throughput === Number.POSITIVE_INFINITY) {
      throw new InvalidOptionError(
        `${path}.minThroughput`,
        `expected a positive number of bytes per second, got ${describe(throughput)}`,
      );
    }
    this.#bytesPerMs = throughput / 1000;
    this.#received = hooks.received;
    this.#why = hooks.lastError;
    const canBatch = this.#raw?.readRawMany !== undefined && this.#raw.batchable !== false;
    this.#batchLimit = batch === false || !canBatch ? 0 : batch;
    this.coordination = tier.coordination && this.#guard(tier.coordination);
  }

  /**
   * Tag times go through the guard like the tier's own calls (its timeout and breaker: tag reads
   * are on the read path, and a hung server must fail them fast); namespace versions under the
   * read timeout alone; locks and the bus transport as they are (the lock has its own timeout,
   * and the load engine takes no lock while the breaker is open; the bus has its own).
   */
  #guard(given: TierCoordination): TierCoordination {
    const { locks, tagTimes, namespaces } = given;
    const ms = this.readTimeout;
    const bounded = <R>(reply: Promise<R>, what: string): Promise<R> =>
      ms === FOREVER ? reply : within(reply, ms, `${what} timed out after ${ms} ms`);
    return {
      ...(locks && { locks }),
      ...(tagTimes && {
        tagTimes: {
          read: (tags) => this.#call('tags', this.#readDeadlines, () => tagTimes.read(tags)),
          raise: (times) => this.#call('invalidateTags', this.#writeDeadlines, () => tagTimes.raise(times)),
        },
      }),
      ...(namespaces && {
        namespaces: {
          read: (name) =>
            bounded(
              attempt(() => namespaces.read(name)),
              'namespace version read',
            ),
          bump: (name) =>
            bounded(
              attempt(() => namespaces.bump(name)),
              'namespace version bump',
            ),
        },
      }),
      ...(given.busTransport && { busTransport: given.busTransport.bind(given) }),
    };
  }

  get name(): string {
    return this.inner.name;
  }

  get ttl(): number {
    return this.inner.ttl;
  }

  /** Calls reach the inner tier before they return (see #call), so its ordering holds here too. */
  get orderedConnection(): object | undefined {
    return this.inner.orderedConnection;
  }

  /** The cache's hooks, here for the guard's reports and passed on for the tier's own. */
  attach(hooks: TierHooks): () => void {
    const detach = this.#hooks.attach(hooks);
    const inner = this.inner.attach?.(hooks);
    return () => {
      detach();
      inner?.();
    };
  }

  prepare(key: string, entry: Entry): PreparedWrite {
    return this.inner.prepare(key, entry);
  }

  get(key: string): Promise<StoredEntry | undefined> {
    return this.#read(key, undefined, undefined);
  }

  /**
   * Reads `key` and hands the outcome to `handler` in the guard's own continuation; the promise
   * returned settles with what the handler returns (or rejects with what it throws). The cache's
   * get() below L1 reads this way: awaiting get() instead would add a promise and an async frame
   * to every L2 read.
   */
  read<T, R>(key: string, handler: ReadHandler<T, R>, token: T): Promise<R> {
    return this.#read(key, handler, token);
  }

  /** get() without a handler: the entry found, or the tier's error as a rejection. */
  #read<T, R>(key: string, handler: ReadHandler<T, R> | undefined, token: T): Promise<R> {
    if (this.#batchLimit > 0) {
      let batch = this.#batch;
      if (batch !== undefined && this.#closed.length !== 0 && !batch.has(key))
        batch = this.#closed.find((closed) => closed.has(key)) ?? batch;
      // A batch is closed at batchReads keys, or at about BATCH_BYTES of expected replies: Redis
      // builds an MGET's whole reply before sending a byte of it, so a batch of big values would
      // sit silent (and time out) where single GETs each start arriving at once.
      if (
        batch === undefined ||
        ((batch.keys.length >= this.#batchLimit || batch.keys.length * this.#perKey >= BATCH_BYTES) &&
          !batch.has(key))
      ) {
        if (batch !== undefined) this.#closed.push(batch);
        batch = this.#batch = new ReadBatch(now());
        // After the tick's other work (and its other reads), before any I/O.
        process.nextTick(this.#send, batch);
      }
      return batch.add(key, handler ?? (PASS_THROUGH as ReadHandler<T, R>), token);
    }
    // Timed only for a handler (the caller that passes none times the call itself); the same
    // reading starts the deadline.
    const started = handler === undefined ? undefined : now();
    const admission = this.#admit('get');
    if (typeof admission !== 'number') {
      if (handler === undefined) return rejected(admission);
      try {
        return Promise.resolve(handler.failed(key, admission, now() - started!, token));
      } catch (error) {
        return rejected(error);
      }
    }
    const raw = this.#raw;
    let pending: Promise<unknown>;
    try {
      pending = raw === undefined ? this.inner.get(key) : raw.readRaw(key);
    } catch (error) {
      pending = rejected(error);
    }
    const call = this.#start<R>('get', this.#readDeadlines, admission, pending, undefined, started);
    // No closure per read: the call itself carries what its continuation needs.
    call.raw = raw;
    call.key = key;
    call.handler = handler;
    call.token = token;
    call.started = started ?? 0;
    this.#expect(call as BoundedCall<unknown>, this.#perKey);
    return call.promised();
  }

  /** Sends a batch of reads as one multi-key read under the read timeout and the breaker. */
  readonly #send = (batch: ReadBatch): void => {
    if (this.#batch === batch) this.#batch = undefined;
    // Sent in the order they were made: a closed batch is the first of the list.
    else if (this.#closed[0] === batch) this.#closed.shift();
    const admission = this.#admit('get');
    if (typeof admission !== 'number') {
      batch.fail(admission, now() - batch.started);
      return;
    }
    const raw = this.#raw!;
    const keys = batch.keys;
    // A lone read as a GET: Redis and the client both do less for it than for an MGET of one,
    // which made a sequential reader's L2 hit 0.15 ms instead of 0.11. It settles as an
    // unbatched read does, without a reply array or a promise of its own: that was a tenth of
    // a sequential reader's L2 hit.
    const lone = batch.size === 1;
    const single = keys.length === 1;
    let pending: Promise<unknown>;
    try {
      pending = single ? raw.readRaw(keys[0]!) : raw.readRawMany!(keys);
    } catch (error) {
      pending = rejected(error);
    }
    // Several reads of one key share the batch's delivery, which takes a reply per key.
    if (single && !lone) pending = pending.then(inArray);
    // Timed from now, not from the batch's first read: a deadline list stays in start order.
    const call = this.#start('get', this.#readDeadlines, admission, pending, undefined);
    call.raw = raw;
    if (lone) {
      call.key = keys[0]!;
      call.started = batch.started;
      batch.handOver(call);
    } else call.batch = batch;
    this.#expect(call, this.#perKey * keys.length);
  };

  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return this.#call('getMany', this.#readDeadlines, () => this.inner.getMany(keys));
  }

  /**
   * A load's read with its lease: batched with the tick's other reads like get(). A tier without
   * fill leases reads as get() with no lease, and fillMany() then writes as setMany().
   */
  getLeased(key: string): Promise<Leased> {
    const raw = this.#raw;
    if (raw?.generation !== undefined && raw.lease !== undefined)
      return this.#read(key, this.#leased, raw.generation());
    const inner = this.inner;
    if (inner.getLeased !== undefined)
      return this.#call('get', this.#readDeadlines, () => inner.getLeased!(key));
    return this.get(key).then((found) => ({ found, lease: undefined }));
  }

  readonly #leased: ReadHandler<string, Leased> = {
    found: (_key, found, _ms, generation, reply) => ({
      found,
      lease: reply === undefined ? undefined : this.#raw!.lease!(reply, generation),
    }),
    failed: (_key, error) => {
      throw error;
    },
  };

  getManyLeased(keys: readonly string[]): Promise<Leased[]> {
    const inner = this.inner;
    if (inner.getManyLeased !== undefined)
      return this.#call('getMany', this.#readDeadlines, () => inner.getManyLeased!(keys));
    return this.getMany(keys).then((found) => found.map((one) => ({ found: one, lease: undefined })));
  }

  fillMany(
    writes: readonly PreparedWrite[],
    ttls: readonly number[],
    leases: readonly unknown[],
  ): Promise<boolean[]> {
    const inner = this.inner;
    if (inner.fillMany === undefined) return this.setMany(writes, ttls).then(() => writes.map(() => true));
    if (this.#batchLimit === 0) return this.#write(writes, () => inner.fillMany!(writes, ttls, leases));
    let batch = this.#fills;
    // Closed, as a read batch is, at batchReads writes or about BATCH_BYTES: one script holds
    // Redis (and every command behind it) for as long as it runs.
    if (batch === undefined || batch.writes.length >= this.#batchLimit || batch.bytes >= BATCH_BYTES) {
      batch = this.#fills = new FillBatch();
      process.nextTick(this.#sendFills, batch);
    }
    let bytes = 0;
    for (const write of writes) bytes += payloadLength(write.payload);
    return batch.add(writes, ttls, leases, bytes);
  }

  /** Sends a tick's fills as one fillMany, under the write timeout and the breaker. */
  readonly #sendFills = (batch: FillBatch): void => {
    if (this.#fills === batch) this.#fills = undefined;
    this.#write(batch.writes, () => this.inner.fillMany!(batch.writes, batch.ttls, batch.leases)).then(
      batch.deliver,
      batch.fail,
    );
  };

  setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    return this.#write(writes, () => this.inner.setMany(writes, ttls));
  }

  /** A write of `writes` under the write timeout; a write that misses the tier spoils its keys. */
  #write<R>(writes: readonly PreparedWrite[], run: () => Promise<R>): Promise<R> {
    let bytes = 0;
    for (const write of writes) bytes += payloadLength(write.payload);
    // What this instance writes, it will read back.
    if (bytes > this.#perKey * writes.length) this.#perKey = bytes / writes.length;
    return this.#call(
      'set',
      this.#writeDeadlines,
      run,
      writes.map((write) => write.key),
      bytes,
    );
  }

  has(key: string): Promise<boolean> {
    return this.#call('has', this.#readDeadlines, () => this.inner.has(key));
  }

  delete(keys: readonly string[]): Promise<number> {
    return this.#call('delete', this.#writeDeadlines, () => this.inner.delete(keys), keys);
  }

  deleteMatching(pattern: string): Promise<number> {
    const inner = this.inner;
    if (inner.deleteMatching === undefined)
      return Promise.reject(new Error(`tier "${this.name}" cannot delete by pattern`));
    // Like clear(), a SCAN over the keyspace is not timed.
    return this.#call('deleteMatching', undefined, () => inner.deleteMatching!(pattern));
  }

  clear(): Promise<number> {
    // Whatever was dirty is gone once the clear succeeds; if it fails, anything may be left.
    return this.#call('clear', undefined, () => this.inner.clear()).then(
      (removed) => {
        this.#dirty.clear();
        this.#overflow = false;
        return removed;
      },
      (error: unknown) => {
        // A clear that missed the tier is done when it answers again. One it refused (an error
        // reply: no SCAN permission, say) would be refused again, and as the repair it would keep
        // the breaker open for good: the caller's rejection is the whole answer.
        if (!isReplyError(error)) this.#overflow = true;
        throw error;
      },
    );
  }

  close(): Promise<void> {
    // A running repair is not awaited (it may wait on a hung server); closing the client
    // settles it, and its outcome no longer matters.
    return this.inner.close();
  }

  health(): TierHealth {
    const breaker = this.#breaker;
    const health: TierHealth = {
      timeouts: this.#timeouts,
      repair: { pending: this.#overflow ? 'all' : this.#dirty.size, done: this.#repairs },
    };
    if (breaker !== undefined) {
      health.breaker = { state: breaker.state, opens: breaker.opens, skipped: breaker.skipped };
    }
    return health;
  }

  #call<R>(
    operation: string,
    deadlines: Deadlines | undefined,
    run: () => Promise<R>,
    keys?: readonly string[],
    bytes = 0,
  ): Promise<R> {
    const admission = this.#admit(operation, keys);
    if (typeof admission !== 'number') return rejected(admission);
    return this.#start<R>(operation, deadlines, admission, attempt(run), keys, undefined, bytes).promised();
  }

  /** The breaker's admission for a call, or the error of a call that may not go ahead. */
  #admit(operation: string, keys?: readonly string[]): Admission | TierUnavailableError {
    const breaker = this.#breaker;
    const admission: Admission = breaker === undefined ? CALL : breaker.admit();
    if (admission === SKIP || (admission === PROBE && this.#repair(PROBE))) {
      // With writes to repair, the repair is the probe: nothing may be read from the tier
      // before the values it missed are gone from it.
      if (keys !== undefined) this.#spoil(keys);
      return new TierUnavailableError(this.name, operation, 'circuit-open');
    }
    if (this.#connected !== undefined && !this.#connected()) {
      breaker?.record(admission, false);
      if (keys !== undefined) this.#spoil(keys);
      const error = new TierUnavailableError(this.name, operation, 'disconnected');
      return explained(error, this.#why?.()) as TierUnavailableError;
    }
    return admission;
  }

  /**
   * Starts waiting for an admitted call under `deadlines` (none: no timeout); the outcome goes
   * to #settled. `started` is the call's start, when the caller has read the clock already.
   */
  #start<R>(
    operation: string,
    deadlines: Deadlines | undefined,
    admission: Admission,
    pending: Promise<unknown>,
    keys: readonly string[] | undefined,
    started?: number,
    bytes = 0,
  ): BoundedCall<R> {
    const call = new BoundedCall<R>(this.#settled, deadlines, this.name, operation, admission, keys);
    if (deadlines !== undefined) {
      if (bytes > 0) {
        // Sent after the writes already in flight, then its own payload.
        call.inFlight = bytes;
        this.#inFlight += bytes;
        call.allowance = this.#inFlight;
      }
      if (this.#received !== undefined) call.receivedAt = this.#received();
      call.extension = this.#extension;
      call.why = this.#why;
      deadlines.start(call, started);
    }
    // Both handlers stay attached after a timeout, so a late rejection is never unhandled.
    pending.then(
      (value) => {
        if (call.timedOut && operation === 'set') this.#landedLate(keys!);
        // Late replies too: a reply that took too long says how long the next may take.
        if (call.raw !== undefined) this.#learn(value);
        call.succeed(value);
      },
      (error: unknown) => call.fail(this.#why === undefined ? error : explained(error, this.#why())),
    );
    return call;
  }

  /** The guard's side of a settled call: the breaker, the timeout count, repairs. */
  readonly #settled = (call: BoundedCall<unknown>, ok: boolean): void => {
    if (call.inFlight > 0) this.#inFlight -= call.inFlight;
    this.#breaker?.record(call.admission, ok);
    if (ok) {
      if (call.admission === CALL && this.#dirty.size > 0) this.#repair(CALL);
      return;
    }
    if (call.timedOut) this.#timeouts++;
    if (call.keys !== undefined) this.#spoil(call.keys);
  };

  /**
   * A write that timed out for its caller has landed after all, possibly after newer writes
   * by other instances (a slow server, or a Cluster client re-sending it to the promoted replica
   * after a failover): the tier may now hold the older value. Delete it again, at once if the
   * breaker lets calls through, else as the next probe.
   */
  #landedLate(keys: readonly string[]): void {
    this.#spoil(keys);
    if (this.#breaker === undefined || this.#breaker.state === 'closed') this.#repair(CALL);
  }

  /**
   * How much longer than its deadline a call still in flight may take, in ms (below 1: none).
   * A write has the time to send its payload after the bytes in flight before it, and any call
   * the time to send the writes still in flight. Beyond that,
   * a call waits on only while the connection keeps receiving (a reply ahead of it, or its own,
   * is arriving), and for at most the time those bytes take at minThroughput: a server that
   * hangs after a burst fails its calls at the next check, and one that trickles gains nothing.
   */
  readonly #extension = (call: BoundedCall<unknown>): number => {
    const rate = this.#bytesPerMs;
    const at = now();
    // Auto-pipelined writes leave together, and a reply can trail the whole pipeline's payload:
    // while writes are in flight, any call may wait for all of them to be sent.
    const sent = call.at + Math.max(call.allowance, this.#inFlight) / rate;
    if (at < sent) return sent - at;
    if (this.#received === undefined) return 0;
    const received = this.#received();
    const fresh = received - call.receivedAt;
    call.receivedAt = received;
    // A reconnect restarts the count (fresh < 0): nothing arrived that this call waits for.
    if (fresh <= 0) return 0;
    call.received += fresh;
    return sent + call.received / rate - at;
  };

  /**
   * Counts a read's expected reply bytes as work in flight on the connection: Redis builds the
   * replies of a pipeline before it sends them, so a read waits for the transfer of those before
   * it as well as its own.
   */
  #expect(call: BoundedCall<unknown>, bytes: number): void {
    if (bytes < 1 || call.settled || call.deadlines === undefined) return;
    call.inFlight = bytes;
    this.#inFlight += bytes;
    call.allowance = this.#inFlight;
  }

  /** Learns the size of a raw read's reply (one payload, or a batch's payloads). */
  #learn(reply: unknown): void {
    let bytes = 0;
    let keys = 1;
    if (Array.isArray(reply)) {
      keys = Math.max(1, reply.length);
      for (const one of reply as unknown[]) bytes += replyLength(one);
    } else bytes = replyLength(reply);
    const perKey = bytes / keys;
    const decayed = this.#perKey - this.#perKey / 16;
    this.#perKey = perKey > decayed ? perKey : decayed < 64 ? 0 : decayed;
  }

  /** Remembers keys whose write or delete may not have reached the tier. */
  #spoil(keys: readonly string[]): void {
    if (this.#overflow) return;
    const spoil = ++this.#spoils;
    for (const key of keys) this.#dirty.set(key, spoil);
    if (this.#dirty.size > this.#repairLimit) {
      this.#overflow = true;
      this.#dirty.clear();
    }
  }

  /**
   * Deletes from the tier the keys whose writes or deletes did not reach it (or clears the tier
   * when there were too many to remember), in the background, once at a time. Each such key
   * is deleted once the tier answers again, never rewritten: the next read loads it afresh.
   * Returns whether a repair is under way (or could not start, the client being disconnected):
   * either way the call that asked skips the tier.
   */
  #repair(admission: Admission): boolean {
    if (this.#repairing !== undefined) return true;
    if (this.#dirty.size === 0 && !this.#overflow) return false;
    if (this.#connected !== undefined && !this.#connected()) {
      this.#breaker?.record(admission, false);
      return true;
    }
    const overflow = this.#overflow;
    const dirty = [...this.#dirty];
    const keys = dirty.map(([key]) => key);
    // The tier's own delete, which on a Cluster groups the keys by slot and master.
    const run = overflow ? () => this.inner.clear() : () => this.inner.delete(keys);
    const deadlines = overflow ? undefined : this.#writeDeadlines;
    this.#repairing = this.#start<number>('repair', deadlines, admission, attempt(run), undefined)
      .promised()
      .then(
        () => {
          if (overflow) this.#overflow = false;
          for (const [key, spoil] of dirty) if (this.#dirty.get(key) === spoil) this.#dirty.delete(key);
          this.#repairs++;
          this.#repairFailing = false;
        },
        (error: unknown) => {
          // Still dirty: the next probe or successful call tries again. Said once per streak,
          // as a failing repair also keeps the breaker from closing.
          if (!this.#repairFailing) this.#hooks.hooks?.repairError(error);
          this.#repairFailing = true;
        },
      );
    void this.#repairing.finally(() => (this.#repairing = undefined));
    return true;
  }
}

/** An error the server answered with (ioredis' ReplyError): the command arrived and was refused. */
function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}

function replyLength(reply: unknown): number {
  return typeof reply === 'string' || Buffer.isBuffer(reply) ? reply.length : 0;
}

/** Expected reply bytes at which a batch of reads is closed (see GuardedTier.#read). */
const BATCH_BYTES = 1024 * 1024;

function inArray<T>(item: T): T[] {
  return [item];
}

function payloadLength(payload: string | Uint8Array): number {
  // A string's UTF-16 length: close enough to its bytes for a deadline, and free to read.
  return typeof payload === 'string' ? payload.length : payload.byteLength;
}

/** `run()`, with a synchronous throw turned into a rejection. */
function attempt<R>(run: () => Promise<R>): Promise<R> {
  try {
    return run();
  } catch (error) {
    return rejected(error);
  }
}

/** Passed on as thrown: the cache wraps whatever a tier throws in a TierError. */
function rejected(error: unknown): Promise<never> {
  // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
  return Promise.reject(error);
}

function deadlinesOf(timeout: number): Deadlines | undefined {
  return timeout === FOREVER ? undefined : new Deadlines(timeout);
}

function timeoutOf(value: unknown, path: string): number {
  const ms = parseDuration(value);
  if (typeof ms === 'string') throw new InvalidOptionError(path, ms);
  return ms;
}
