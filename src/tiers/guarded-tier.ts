import type { Entry } from '../entry.js';
import { InvalidOptionError, TierTimeoutError, TierUnavailableError, describe } from '../errors.js';
import { FOREVER, parseDuration, type Duration } from '../internal/duration.js';
import { CALL, CircuitBreaker, SKIP, type Admission, type BreakerOptions } from './circuit-breaker.js';
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
}

export const GUARD_DEFAULTS = Object.freeze({ timeout: '250ms' } as const);

/** Hooks a tier implementation gives its guard; not options a user sets. */
export interface GuardHooks {
  /** Whether the tier's client can take a call now; when not, calls fail fast. */
  connected?: () => boolean;
  /** Time source of the breaker. @default Date.now */
  clock?: () => number;
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
  readonly #readTimeout: number;
  readonly #writeTimeout: number;
  readonly #breaker: CircuitBreaker | undefined;
  readonly #connected: (() => boolean) | undefined;
  #timeouts = 0;
  onBreaker: RemoteTier['onBreaker'] = undefined;

  constructor(tier: T, options: GuardOptions = {}, hooks: GuardHooks = {}) {
    this.inner = tier;
    const path = tier.name;
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(path, `expected an options object, got ${describe(options)}`);
    }
    const timeout = options.timeout ?? GUARD_DEFAULTS.timeout;
    if (typeof timeout === 'object' && timeout !== null) {
      this.#readTimeout = timeoutOf(timeout.read ?? GUARD_DEFAULTS.timeout, `${path}.timeout.read`);
      this.#writeTimeout = timeoutOf(timeout.write ?? GUARD_DEFAULTS.timeout, `${path}.timeout.write`);
    } else {
      this.#readTimeout = this.#writeTimeout = timeoutOf(timeout, `${path}.timeout`);
    }
    const breaker = options.breaker ?? {};
    if (breaker !== false) {
      this.#breaker = new CircuitBreaker(
        breaker,
        hooks.clock ?? Date.now,
        (state) => this.onBreaker?.(state),
        `${path}.breaker`,
      );
    }
    this.#connected = hooks.connected;
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
    return this.#call('get', this.#readTimeout, () => this.inner.get(key));
  }

  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return this.#call('getMany', this.#readTimeout, () => this.inner.getMany(keys));
  }

  setMany(writes: readonly PreparedWrite[], ttls: readonly number[]): Promise<void> {
    return this.#call('set', this.#writeTimeout, () => this.inner.setMany(writes, ttls));
  }

  has(key: string): Promise<boolean> {
    return this.#call('has', this.#readTimeout, () => this.inner.has(key));
  }

  delete(keys: readonly string[]): Promise<number> {
    return this.#call('delete', this.#writeTimeout, () => this.inner.delete(keys));
  }

  clear(): Promise<number> {
    return this.#call('clear', FOREVER, () => this.inner.clear());
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  health(): TierHealth {
    const breaker = this.#breaker;
    return breaker === undefined
      ? { timeouts: this.#timeouts }
      : {
          timeouts: this.#timeouts,
          breaker: { state: breaker.state, opens: breaker.opens, skipped: breaker.skipped },
        };
  }

  #call<R>(operation: string, timeout: number, run: () => Promise<R>): Promise<R> {
    const breaker = this.#breaker;
    const admission: Admission = breaker === undefined ? CALL : breaker.admit();
    if (admission === SKIP) {
      return Promise.reject(new TierUnavailableError(this.name, operation, 'circuit-open'));
    }
    if (this.#connected !== undefined && !this.#connected()) {
      breaker?.record(admission, false);
      return Promise.reject(new TierUnavailableError(this.name, operation, 'disconnected'));
    }
    let pending: Promise<R>;
    try {
      pending = run();
    } catch (error) {
      // Passed on as thrown: the cache wraps whatever a tier throws in a TierError.
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      pending = Promise.reject(error);
    }
    if (timeout === FOREVER) {
      if (breaker === undefined) return pending;
      return pending.then(
        (value) => {
          breaker.record(admission, true);
          return value;
        },
        (error: unknown) => {
          breaker.record(admission, false);
          throw error;
        },
      );
    }
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        // A stalled event loop fires timers before it reads sockets: give a reply that is
        // already waiting one turn of I/O before calling the call late.
        setImmediate(() => {
          if (settled) return;
          settled = true;
          this.#timeouts++;
          breaker?.record(admission, false);
          reject(new TierTimeoutError(this.name, operation, timeout));
        });
      }, timeout);
      timer.unref();
      // Both handlers stay attached after a timeout, so a late rejection is never unhandled.
      pending.then(
        (value) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          breaker?.record(admission, true);
          resolve(value);
        },
        (error: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          breaker?.record(admission, false);
          // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
          reject(error);
        },
      );
    });
  }
}

function timeoutOf(value: unknown, path: string): number {
  const ms = parseDuration(value);
  if (typeof ms === 'string') throw new InvalidOptionError(path, ms);
  return ms;
}
