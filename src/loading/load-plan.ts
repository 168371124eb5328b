import { InvalidOptionError, describe } from '../errors.js';
import { FOREVER, parseDuration, type Duration } from '../internal/duration.js';
import { optionNames } from '../internal/option-names.js';

export interface FailSafeOptions {
  /**
   * How long past its expiry a value is kept so it can stand in for a failing loader. Every
   * tier keeps entries this much longer (Redis PX included), so size memory with it in mind.
   * @default '10m'
   */
  maxStaleAge?: Duration;
  /**
   * After the loader fails for a key, how long it is not called again for that key while a
   * stale value can be served instead. @default '5s'
   */
  backoff?: Duration;
}

/** How `getOrSet` behaves when entries expire and the loader is slow or failing; cache-wide or per call. */
export interface LoadOptions {
  /**
   * Stale-while-revalidate: for this long after an entry expires it is still returned at once,
   * while one background call of the loader per key refreshes it. @default 0 (off)
   */
  grace?: Duration;
  /**
   * When the loader throws or times out and an expired value is still kept, serve that value
   * (a `stale` event with reason `failSafe`) instead of failing, and back off from the loader
   * for that key. `true` uses the defaults. @default false
   */
  failSafe?: boolean | FailSafeOptions;
  /**
   * If the loader has not answered after this long and an expired value is kept, return that
   * value; the loader keeps running and its result is cached when it lands. @default off
   */
  softTimeout?: Duration;
  /**
   * If the loader has not answered after this long, reject with `LoaderTimeoutError` (or serve
   * a kept value under `failSafe`). The loader is not cancelled; a late result is still cached.
   * @default off
   */
  hardTimeout?: Duration;
  /**
   * Fraction (0–1, exclusive) of an entry's life after which a `getOrSet` hit also starts one
   * background refresh of the key, so hot keys are renewed before they expire. `0.8` refreshes
   * in the last 20% of the life. @default off
   */
  eagerRefresh?: number;
}

/** Distributed single flight: one loader call per key across every instance sharing the Redis tier. */
export interface LockOptions {
  /**
   * Lock lease: longest a loader may hold the lock before others may take it. Keep it above
   * the loader's slowest normal run. @default '5s'
   */
  ttl?: Duration;
  /** How long an instance waits for another's loader before loading itself. @default the lock ttl */
  wait?: Duration;
  /** Interval between checks of the Redis tier while waiting. @default '25ms' */
  poll?: Duration;
  /**
   * Removed: lock keys live under the Redis tier's prefix (`<prefix>__lock:<key>`), so a cache
   * touches only its own keys. Passing it throws, rather than silently locking elsewhere.
   */
  prefix?: never;
  /** Longest wait for a lock command; past it the lock is skipped (local single flight). @default '250ms' */
  timeout?: Duration;
}

export interface ResolvedLock {
  ttl: number;
  wait: number;
  poll: number;
  timeout: number;
}

/** Load options resolved to milliseconds; FOREVER stands for "off" for timeouts. */
export interface LoadPlan {
  readonly grace: number;
  readonly failSafe: boolean;
  readonly maxStaleAge: number;
  readonly backoff: number;
  readonly softTimeout: number;
  readonly hardTimeout: number;
  /** 0 when off. */
  readonly eagerRefresh: number;
  readonly lock: boolean;
  /** How long past expiry copies are kept: the larger of grace and (under fail-safe) maxStaleAge. */
  readonly keep: number;
}

/** The names of {@link LoadOptions}, cache-wide and per call. */
export const LOAD_OPTION_NAMES = optionNames<LoadOptions>({
  grace: true,
  failSafe: true,
  softTimeout: true,
  hardTimeout: true,
  eagerRefresh: true,
});
const FAIL_SAFE_OPTION_NAMES = optionNames<FailSafeOptions>({ maxStaleAge: true, backoff: true });
const LOCK_OPTION_NAMES = optionNames<LockOptions>({
  ttl: true,
  wait: true,
  poll: true,
  prefix: true,
  timeout: true,
});

/** Why `lock` is refused when no remote tier offers locks. */
export const NO_LOCK_TIER =
  'distributed single flight needs a tier that holds locks (a Redis tier; see TierCoordination)';

export const LOAD_DEFAULTS = Object.freeze({
  grace: 0,
  failSafe: Object.freeze({ maxStaleAge: '10m', backoff: '5s' }),
  lock: Object.freeze({ ttl: '5s', poll: '25ms', timeout: '250ms' }),
} as const);

/** Resolves load options over `base` (the cache-wide plan), naming bad options by `path`. */
export function resolvePlan(options: LoadOptions & { lock?: unknown }, base?: LoadPlan): LoadPlan {
  const grace = options.grace === undefined ? (base?.grace ?? 0) : duration(options.grace, 'grace', true);
  let failSafe = base?.failSafe ?? false;
  let maxStaleAge = base?.maxStaleAge ?? (parseDuration(LOAD_DEFAULTS.failSafe.maxStaleAge) as number);
  let backoff = base?.backoff ?? (parseDuration(LOAD_DEFAULTS.failSafe.backoff) as number);
  const fs = options.failSafe;
  if (typeof fs === 'boolean') failSafe = fs;
  else if (typeof fs === 'object' && fs !== null) {
    FAIL_SAFE_OPTION_NAMES.check(fs, 'failSafe');
    failSafe = true;
    if (fs.maxStaleAge !== undefined) maxStaleAge = duration(fs.maxStaleAge, 'failSafe.maxStaleAge');
    if (fs.backoff !== undefined) backoff = duration(fs.backoff, 'failSafe.backoff', true);
  } else if (fs !== undefined) {
    throw new InvalidOptionError('failSafe', `expected a boolean or an options object, got ${describe(fs)}`);
  }
  const softTimeout =
    options.softTimeout === undefined
      ? (base?.softTimeout ?? FOREVER)
      : duration(options.softTimeout, 'softTimeout', false, true);
  const hardTimeout =
    options.hardTimeout === undefined
      ? (base?.hardTimeout ?? FOREVER)
      : duration(options.hardTimeout, 'hardTimeout', false, true);
  if (softTimeout !== FOREVER && softTimeout >= hardTimeout) {
    throw new InvalidOptionError(
      'softTimeout',
      `must be shorter than hardTimeout (${hardTimeout} ms), got ${describe(options.softTimeout ?? softTimeout)}`,
    );
  }
  let eagerRefresh = base?.eagerRefresh ?? 0;
  if (options.eagerRefresh !== undefined) {
    const ratio: unknown = options.eagerRefresh;
    if (typeof ratio !== 'number' || !(ratio > 0 && ratio < 1)) {
      throw new InvalidOptionError(
        'eagerRefresh',
        `expected a fraction between 0 and 1 (exclusive), got ${describe(ratio)}`,
      );
    }
    eagerRefresh = ratio;
  }
  let lock = base?.lock ?? false;
  if (options.lock !== undefined) {
    if (typeof options.lock === 'boolean') lock = options.lock;
    else if (base === undefined && typeof options.lock === 'object' && options.lock !== null) lock = true;
    else throw new InvalidOptionError('lock', `expected a boolean, got ${describe(options.lock)}`);
  }
  const keep = Math.max(grace, failSafe ? maxStaleAge : 0);
  return { grace, failSafe, maxStaleAge, backoff, softTimeout, hardTimeout, eagerRefresh, lock, keep };
}

export function resolveLock(options: unknown): ResolvedLock {
  const given: LockOptions = typeof options === 'object' && options !== null ? options : {};
  if (typeof options !== 'boolean' && given !== options) {
    throw new InvalidOptionError('lock', `expected a boolean or an options object, got ${describe(options)}`);
  }
  LOCK_OPTION_NAMES.check(given, 'lock');
  const defaults = LOAD_DEFAULTS.lock;
  const ttl = duration(given.ttl ?? defaults.ttl, 'lock.ttl', false, true);
  if (ttl === FOREVER) throw new InvalidOptionError('lock.ttl', "a lock lease must be finite, got 'forever'");
  const wait = given.wait === undefined ? ttl : duration(given.wait, 'lock.wait', true, true);
  const poll = duration(given.poll ?? defaults.poll, 'lock.poll', false, true);
  const timeout = duration(given.timeout ?? defaults.timeout, 'lock.timeout', false, true);
  if (given.prefix !== undefined) {
    throw new InvalidOptionError(
      'lock.prefix',
      `lock keys now live under the Redis tier's prefix (<prefix>__lock:<key>); remove this option (got ${describe(given.prefix)})`,
    );
  }
  return { ttl, wait, poll, timeout };
}

function duration(value: unknown, option: string, allowZero = false, timer = false): number {
  // 'forever' is no timer at all, so a timer's bound does not apply to it.
  const parsed = parseDuration(value, { allowZero, timer: timer && value !== 'forever' });
  if (typeof parsed === 'string') throw new InvalidOptionError(option, parsed);
  return parsed;
}

/** The shortest life of a delete's tombstone (see tiers/redis/fill-leases.ts), in ms. */
export const MIN_FILL_WINDOW = 10_000;

/**
 * How long a delete keeps refusing the fills of loads that read the key before it: the longest
 * a load of this cache normally runs, that is the larger of its hard timeout (past which its
 * callers have given up) and its lock lease (past which another instance loads), and at least
 * MIN_FILL_WINDOW. A loader slower than that whose read found the key empty can still fill.
 */
export function fillWindow(plan: LoadPlan, lockTtl: number | undefined): number {
  const hard = plan.hardTimeout === FOREVER ? 0 : plan.hardTimeout;
  return Math.max(MIN_FILL_WINDOW, hard, lockTtl ?? 0);
}
