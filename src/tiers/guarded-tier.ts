import type { Entry } from '../entry.js';
import { InvalidOptionError, TierTimeoutError, TierUnavailableError, describe } from '../errors.js';
import { coarseClock } from '../internal/clock.js';
import { FOREVER, parseDuration, type Duration } from '../internal/duration.js';
import { Deadlines, type Deadline } from './deadlines.js';
import { CALL, CircuitBreaker, PROBE, SKIP, type Admission, type BreakerOptions } from './circuit-breaker.js';
import type { PreparedWrite, RemoteTier, StoredEntry, TierHealth } from './tier.js';

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
}

export const GUARD_DEFAULTS = Object.freeze({ timeout: '250ms', repairLimit: 10_000 } as const);

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
  readonly #writeTimeout: number;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #connected: (() => boolean) | undefined;
  readonly #raw: (RemoteTier & RawReads) | undefined;
  #timeouts = 0;
  /** One timeout keeper per duration in use (read, write), so each one's deadlines stay in order. */
  readonly #deadlines = new Map<number, Deadlines>();
  /** Keys whose last write or delete may have missed the tier; deleted from it on recovery. */
  readonly #dirty = new Set<string>();
  readonly #repairLimit: number;
  /** More keys missed the tier than `repairLimit`: recovery clears the tier instead. */
  #overflow = false;
  #repairing: Promise<void> | undefined;
  #repairs = 0;
  onBreaker: RemoteTier['onBreaker'] = undefined;

  constructor(tier: T, options: GuardOptions = {}, hooks: GuardHooks = {}) {
    this.inner = tier;
    this.#raw = hasRawReads(tier) ? tier : undefined;
    const path = tier.name;
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(path, `expected an options object, got ${describe(options)}`);
    }
    const timeout = options.timeout ?? GUARD_DEFAULTS.timeout;
    if (typeof timeout === 'object' && timeout !== null) {
      this.readTimeout = timeoutOf(timeout.read ?? GUARD_DEFAULTS.timeout, `${path}.timeout.read`);
      this.#writeTimeout = timeoutOf(timeout.write ?? GUARD_DEFAULTS.timeout, `${path}.timeout.write`);
    } else {
      this.readTimeout = this.#writeTimeout = timeoutOf(timeout, `${path}.timeout`);
    }
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
    const raw = this.#raw;
    if (raw === undefined) return this.#call('get', this.readTimeout, () => this.inner.get(key));
    // Every L2 read comes this way: no closure, and the decoding rides on the guard's own
    // continuation (see RawReads).
    const admission = this.#admit('get');
    if (typeof admission !== 'number') return admission;
    let pending: Promise<string | Buffer | null>;
    try {
      pending = raw.readRaw(key);
    } catch (error) {
      pending = rejected(error);
    }
    return this.#bounded('get', this.readTimeout, admission, pending, undefined, raw, key);
  }

  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return this.#call('getMany', this.readTimeout, () => this.inner.getMany(keys));
  }

  setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    return this.#call(
      'set',
      this.#writeTimeout,
      () => this.inner.setMany(writes, ttls),
      writes.map((write) => write.key),
    );
  }

  has(key: string): Promise<boolean> {
    return this.#call('has', this.readTimeout, () => this.inner.has(key));
  }

  delete(keys: readonly string[]): Promise<number> {
    return this.#call('delete', this.#writeTimeout, () => this.inner.delete(keys), keys);
  }

  deleteMatching(pattern: string): Promise<number> {
    const inner = this.inner;
    if (inner.deleteMatching === undefined)
      return Promise.reject(new Error(`tier "${this.name}" cannot delete by pattern`));
    // Like clear(), a SCAN over the keyspace is not timed.
    return this.#call('deleteMatching', FOREVER, () => inner.deleteMatching!(pattern));
  }

  clear(): Promise<number> {
    // Whatever was dirty is gone once the clear succeeds; if it fails, anything may be left.
    return this.#call('clear', FOREVER, () => this.inner.clear()).then(
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
    return this.#call(operation, write ? this.#writeTimeout : this.readTimeout, run);
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

  #call<R>(operation: string, timeout: number, run: () => Promise<R>, keys?: readonly string[]): Promise<R> {
    const admission = this.#admit(operation, keys);
    if (typeof admission !== 'number') return admission;
    return this.#bounded(operation, timeout, admission, attempt(run), keys);
  }

  /** The breaker's admission for a call, or the rejection of a call that may not go ahead. */
  #admit(operation: string, keys?: readonly string[]): Admission | Promise<never> {
    const breaker = this.#breaker;
    const admission: Admission = breaker === undefined ? CALL : breaker.admit();
    if (admission === SKIP || (admission === PROBE && this.#repair(PROBE))) {
      // With writes to repair, the repair is the probe: nothing may be read from the tier
      // before the values it missed are gone from it.
      if (keys !== undefined) this.#spoil(keys);
      return Promise.reject(new TierUnavailableError(this.name, operation, 'circuit-open'));
    }
    if (this.#connected !== undefined && !this.#connected()) {
      breaker?.record(admission, false);
      if (keys !== undefined) this.#spoil(keys);
      return Promise.reject(new TierUnavailableError(this.name, operation, 'disconnected'));
    }
    return admission;
  }

  /**
   * Waits for an admitted call under its timeout; the outcome goes to #settled. With `raw`, the
   * reply is decoded for `key` before the caller sees it.
   */
  #bounded<R>(
    operation: string,
    timeout: number,
    admission: Admission,
    pending: Promise<unknown>,
    keys?: readonly string[],
    raw?: RawReads,
    key?: string,
  ): Promise<R> {
    const deadlines = timeout === FOREVER ? undefined : this.#deadlinesFor(timeout);
    const call = new BoundedCall<R>(this.#settled, deadlines, this.name, operation, timeout, admission, keys);
    if (raw !== undefined) {
      call.raw = raw;
      call.key = key!;
    }
    capturing = call as BoundedCall<unknown>;
    const result = new Promise<unknown>(capture) as Promise<R>;
    deadlines?.start(call);
    // Both handlers stay attached after a timeout, so a late rejection is never unhandled.
    pending.then(
      (value) => call.succeed(value),
      (error: unknown) => call.fail(error),
    );
    return result;
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

  #deadlinesFor(timeout: number): Deadlines {
    let deadlines = this.#deadlines.get(timeout);
    if (deadlines === undefined) {
      deadlines = new Deadlines(timeout);
      this.#deadlines.set(timeout, deadlines);
    }
    return deadlines;
  }

  /** Remembers keys whose write or delete may not have reached the tier. */
  #spoil(keys: readonly string[]): void {
    if (this.#overflow) return;
    for (const key of keys) this.#dirty.add(key);
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
    const keys = [...this.#dirty];
    const run = overflow ? () => this.inner.clear() : () => this.inner.delete(keys);
    const timeout = overflow ? FOREVER : this.#writeTimeout;
    this.#repairing = this.#bounded<number>('repair', timeout, admission, attempt(run)).then(
      () => {
        if (overflow) this.#overflow = false;
        for (const key of keys) this.#dirty.delete(key);
        this.#repairs++;
      },
      () => {
        // Still dirty: the next probe or successful call tries again.
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
  resolve: (value: R) => void = ignore;
  reject: (error: unknown) => void = ignore;
  /** Set for a raw read: the reply is decoded for `key` on success. */
  raw: RawReads | undefined = undefined;
  key = '';

  constructor(
    readonly report: (call: BoundedCall<unknown>, ok: boolean) => void,
    readonly deadlines: Deadlines | undefined,
    readonly tier: string,
    readonly operation: string,
    readonly timeout: number,
    readonly admission: Admission,
    readonly keys: readonly string[] | undefined,
  ) {}

  succeed(value: unknown): void {
    if (this.settled) return;
    const raw = this.raw;
    if (raw !== undefined) {
      // A decoder that throws fails the call as a rejected tier read did before decoding moved
      // here; thrown from this handler it would reject a promise nobody holds instead.
      try {
        value = raw.decodeRaw(this.key, value as string | Buffer | null);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
    this.#settle();
    this.report(this as BoundedCall<unknown>, true);
    this.resolve(value as R);
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.#settle();
    this.report(this as BoundedCall<unknown>, false);
    this.reject(error);
  }

  expire(): void {
    // A stalled event loop fires timers before it reads sockets: give a reply that is already
    // waiting one turn of I/O before calling the call late.
    setImmediate(() => {
      if (this.settled) return;
      this.timedOut = true;
      this.fail(new TierTimeoutError(this.tier, this.operation, this.timeout));
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

function timeoutOf(value: unknown, path: string): number {
  const ms = parseDuration(value);
  if (typeof ms === 'string') throw new InvalidOptionError(path, ms);
  return ms;
}
