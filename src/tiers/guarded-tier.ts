import type { Entry } from '../entry.js';
import { InvalidOptionError, TierTimeoutError, TierUnavailableError, describe } from '../errors.js';
import { coarseClock, now } from '../internal/clock.js';
import { FOREVER, parseDuration, type Duration } from '../internal/duration.js';
import { Deadlines, type Deadline } from './deadlines.js';
import { CALL, CircuitBreaker, PROBE, SKIP, type Admission, type BreakerOptions } from './circuit-breaker.js';
import { PASS_THROUGH, ReadBatch, type ReadHandler } from './read-batch.js';
import type { PreparedWrite, RemoteTier, StoredEntry, TierHealth } from './tier.js';

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
   * calls that missed L1) go to it as one multi-key read (MGET) of up to this many keys, with
   * one timeout and one breaker outcome for the batch; `false` sends each read on its own. Only
   * tiers that can read many raw replies at once batch (a Redis tier on one server or Sentinel;
   * not on a Cluster, where one failing node would fail reads of keys on the others).
   * @default 100
   */
  batchReads?: number | false;
}

export const GUARD_DEFAULTS = Object.freeze({
  timeout: '250ms',
  repairLimit: 10_000,
  batchReads: 100,
} as const);

/** Hooks a tier implementation gives its guard; not options a user sets. */
export interface GuardHooks {
  /** Whether the tier's client can take a call now; when not, calls fail fast. */
  connected?: () => boolean;
  /**
   * Time source of the breaker, which reads it on every call's outcome.
   * @default Date.now, cached for up to a millisecond (see coarseClock)
   */
  clock?: () => number;
}

/**
 * A tier that can hand over a read as its raw reply and a decoder. The guard then decodes in the
 * continuation it has anyway, where the tier would chain one more promise onto every read.
 */
export interface RawReads {
  readRaw(key: string): Promise<string | Buffer | null>;
  decodeRaw(key: string, raw: string | Buffer | null): StoredEntry | undefined;
  /** The raw replies of many keys in one round trip, in order; lets the guard batch reads. */
  readRawMany?(keys: readonly string[]): Promise<(string | Buffer | null)[]>;
  /**
   * False when a multi-key read can fail as a whole where single reads would not (keys on a
   * Cluster's several nodes): the guard then does not batch.
   */
  readonly batchable?: boolean;
}

function hasRawReads(tier: RemoteTier): tier is RemoteTier & RawReads {
  const candidate = tier as Partial<RawReads>;
  return typeof candidate.readRaw === 'function' && typeof candidate.decodeRaw === 'function';
}

/** Wraps any remote tier in timeouts and a circuit breaker. */
export function guardTier<T extends RemoteTier>(tier: T, options: GuardOptions = {}): GuardedTier<T> {
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
  onBreaker: RemoteTier['onBreaker'] = undefined;
  /** Receives the first failure of a streak of failed repairs; set by the cache that owns the tier. */
  onRepairError: ((error: unknown) => void) | undefined = undefined;

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
        (state) => this.onBreaker?.(state),
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
    const canBatch = this.#raw?.readRawMany !== undefined && this.#raw.batchable !== false;
    this.#batchLimit = batch === false || !canBatch ? 0 : batch;
  }

  get name(): string {
    return this.inner.name;
  }

  get ttl(): number {
    return this.inner.ttl;
  }

  get onCorrupt(): RemoteTier['onCorrupt'] {
    return this.inner.onCorrupt;
  }

  set onCorrupt(hook: RemoteTier['onCorrupt']) {
    this.inner.onCorrupt = hook;
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
      if (batch === undefined || batch.keys.length >= this.#batchLimit) {
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
    return call.promise;
  }

  /** Sends a batch of reads as one multi-key read under the read timeout and the breaker. */
  readonly #send = (batch: ReadBatch): void => {
    if (this.#batch === batch) this.#batch = undefined;
    const admission = this.#admit('get');
    if (typeof admission !== 'number') {
      batch.fail(admission, now() - batch.started);
      return;
    }
    let pending: Promise<unknown>;
    try {
      pending = this.#raw!.readRawMany!(batch.keys);
    } catch (error) {
      pending = rejected(error);
    }
    // Timed from now, not from the batch's first read: a deadline list stays in start order.
    const call = this.#start('get', this.#readDeadlines, admission, pending, undefined);
    call.raw = this.#raw;
    call.batch = batch;
  };

  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return this.#call('getMany', this.#readDeadlines, () => this.inner.getMany(keys));
  }

  setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    return this.#call(
      'set',
      this.#writeDeadlines,
      () => this.inner.setMany(writes, ttls),
      writes.map((write) => write.key),
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
        this.#overflow = true;
        throw error;
      },
    );
  }

  close(): Promise<void> {
    // A running repair is not awaited (it may wait on a hung server); closing the client
    // settles it, and its outcome no longer matters.
    return this.inner.close();
  }

  /**
   * Runs another call against this tier's store (tag times) under the tier's read or write
   * timeout and its breaker, so a hung or failed server fails it fast like the tier's own calls.
   */
  guarded<R>(operation: string, write: boolean, run: () => Promise<R>): Promise<R> {
    return this.#call(operation, write ? this.#writeDeadlines : this.#readDeadlines, run);
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
  ): Promise<R> {
    const admission = this.#admit(operation, keys);
    if (typeof admission !== 'number') return rejected(admission);
    return this.#start<R>(operation, deadlines, admission, attempt(run), keys).promise;
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
      return new TierUnavailableError(this.name, operation, 'disconnected');
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
  ): BoundedCall<R> {
    const call = new BoundedCall<R>(this.#settled, deadlines, this.name, operation, admission, keys);
    deadlines?.start(call, started);
    // Both handlers stay attached after a timeout, so a late rejection is never unhandled.
    pending.then(
      (value) => {
        if (call.timedOut && operation === 'set') this.#landedLate(keys!);
        call.succeed(value);
      },
      (error: unknown) => call.fail(error),
    );
    return call;
  }

  /** The guard's side of a settled call: the breaker, the timeout count, repairs. */
  readonly #settled = (call: BoundedCall<unknown>, ok: boolean): void => {
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
    this.#repairing = this.#start<number>(
      'repair',
      deadlines,
      admission,
      attempt(run),
      undefined,
    ).promise.then(
      () => {
        if (overflow) this.#overflow = false;
        for (const [key, spoil] of dirty) if (this.#dirty.get(key) === spoil) this.#dirty.delete(key);
        this.#repairs++;
        this.#repairFailing = false;
      },
      (error: unknown) => {
        // Still dirty: the next probe or successful call tries again. Said once per streak,
        // as a failing repair also keeps the breaker from closing.
        if (!this.#repairFailing) this.onRepairError?.(error);
        this.#repairFailing = true;
      },
    );
    void this.#repairing.finally(() => (this.#repairing = undefined));
    return true;
  }
}

/**
 * One admitted call: its deadline, and the settling of the promise the caller holds. One object
 * per call rather than a handful of closures, as every L2 read makes one.
 */
class BoundedCall<R> implements Deadline {
  at = 0;
  previous: Deadline | null = null;
  next: Deadline | null = null;
  settled = false;
  timedOut = false;
  readonly promise: Promise<R>;
  resolve: (value: R | PromiseLike<R>) => void = ignore;
  reject: (error: unknown) => void = ignore;
  /** Set for a raw read: the reply is decoded for `key` on success. */
  raw: RawReads | undefined = undefined;
  key = '';
  /** Set for a read(): the outcome goes through it, with the token and the start time. */
  handler: ReadHandler<unknown, unknown> | undefined = undefined;
  token: unknown = undefined;
  started = 0;
  /** Set for a batch of reads: the outcome goes to each of them, and this call's promise is unused. */
  batch: ReadBatch | undefined = undefined;

  constructor(
    readonly report: (call: BoundedCall<unknown>, ok: boolean) => void,
    readonly deadlines: Deadlines | undefined,
    readonly tier: string,
    readonly operation: string,
    readonly admission: Admission,
    readonly keys: readonly string[] | undefined,
  ) {
    capturing = this as BoundedCall<unknown>;
    this.promise = new Promise(capture) as Promise<R>;
  }

  succeed(value: unknown): void {
    if (this.settled) return;
    const batch = this.batch;
    if (batch !== undefined) {
      this.#settle();
      this.report(this as BoundedCall<unknown>, true);
      batch.deliver(value as (string | Buffer | null)[], this.raw!, now() - batch.started);
      return;
    }
    const raw = this.raw;
    if (raw !== undefined) {
      // A decoder that throws fails the call as a rejected tier read would; thrown from this
      // handler it would reject a promise nobody holds instead.
      try {
        value = raw.decodeRaw(this.key, value as string | Buffer | null);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
    this.#settle();
    this.report(this as BoundedCall<unknown>, true);
    const handler = this.handler;
    if (handler === undefined) {
      this.resolve(value as R);
      return;
    }
    try {
      this.resolve(
        handler.found(this.key, value as StoredEntry | undefined, now() - this.started, this.token) as R,
      );
    } catch (error) {
      this.reject(error);
    }
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.#settle();
    this.report(this as BoundedCall<unknown>, false);
    if (this.batch !== undefined) {
      this.batch.fail(error, now() - this.batch.started);
      return;
    }
    const handler = this.handler;
    if (handler === undefined) {
      this.reject(error);
      return;
    }
    try {
      this.resolve(handler.failed(this.key, error, now() - this.started, this.token) as R);
    } catch (thrown) {
      this.reject(thrown);
    }
  }

  expire(): void {
    // A stalled event loop fires timers before it reads sockets: give a reply that is already
    // waiting one turn of I/O before calling the call late.
    setImmediate(() => {
      if (this.settled) return;
      this.timedOut = true;
      this.fail(new TierTimeoutError(this.tier, this.operation, this.deadlines!.duration));
    });
  }

  #settle(): void {
    this.settled = true;
    this.deadlines?.settle(this);
  }
}

function ignore(): void {}

/**
 * The executor of every BoundedCall's promise, shared instead of a closure per call: the
 * Promise constructor runs it at once, so the call it fills in is the one just set here.
 */
let capturing: BoundedCall<unknown> | undefined;
function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  capturing!.resolve = resolve;
  capturing!.reject = reject;
  capturing = undefined;
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
