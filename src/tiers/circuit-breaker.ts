import { InvalidOptionError, describe } from '../errors.js';
import { parseDuration, type Duration } from '../internal/duration.js';
import { optionNames } from '../internal/option-names.js';

/**
 * `closed`: calls go through. `open`: calls are skipped at once. `half-open`: one probe call
 * goes through to test whether the tier is back; the others are still skipped.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /**
   * This many failures in a row open the breaker; so do this many failures within `window` if
   * they are at least `failureRate` of the calls in it. @default 5
   */
  failures?: number;
  /**
   * Share (0–1] of the calls in `window` that must have failed to open the breaker, so a busy
   * tier with a rare error keeps serving. @default 0.5
   */
  failureRate?: number;
  /** Rolling window over which failures are counted. @default '10s' */
  window?: Duration;
  /** How long the breaker stays open before it lets a probe through. @default '1s' */
  cooldown?: Duration;
}

export const BREAKER_DEFAULTS = Object.freeze({
  failures: 5,
  failureRate: 0.5,
  window: '10s',
  cooldown: '1s',
} as const);

const BREAKER_OPTION_NAMES = optionNames<BreakerOptions>({
  failures: true,
  failureRate: true,
  window: true,
  cooldown: true,
});

/** What {@link CircuitBreaker.admit} decided for one call. */
export const SKIP = 0;
export const CALL = 1;
export const PROBE = 2;
export type Admission = typeof SKIP | typeof CALL | typeof PROBE;

/** The window is split in this many buckets; older buckets roll off as time moves. */
const BUCKETS = 10;

/**
 * A circuit breaker over a rolling window of call outcomes. The caller asks `admit()` before a
 * call and reports the outcome with `record()`; time comes from an injected clock, so the
 * breaker has no timers of its own.
 *
 * While open, outcomes of calls admitted earlier are ignored: only a probe decides whether the
 * tier is back, so a burst of late replies from a server that hung cannot close it.
 */
export class CircuitBreaker {
  state: BreakerState = 'closed';
  /** Times the breaker opened since creation. */
  opens = 0;
  /** Calls skipped because the breaker was open. */
  skipped = 0;
  readonly #failures: number;
  readonly #rate: number;
  readonly #width: number;
  readonly #cooldown: number;
  readonly #ok = new Uint32Array(BUCKETS);
  readonly #bad = new Uint32Array(BUCKETS);
  /** Bucket number (time / width) of the newest bucket. */
  #bucket = 0;
  /** Failures since the last success. */
  #streak = 0;
  #openedAt = 0;
  #probeAt = 0;
  readonly #clock: () => number;
  readonly #onChange: (state: BreakerState) => void;

  constructor(
    options: BreakerOptions,
    clock: () => number,
    onChange: (state: BreakerState) => void,
    path = 'breaker',
  ) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(path, `expected an options object or false, got ${describe(options)}`);
    }
    BREAKER_OPTION_NAMES.check(options, path);
    const failures = options.failures ?? BREAKER_DEFAULTS.failures;
    if (!Number.isInteger(failures) || failures < 1) {
      throw new InvalidOptionError(
        `${path}.failures`,
        `expected a positive integer, got ${describe(failures)}`,
      );
    }
    const rate = options.failureRate ?? BREAKER_DEFAULTS.failureRate;
    if (typeof rate !== 'number' || !(rate > 0 && rate <= 1)) {
      throw new InvalidOptionError(
        `${path}.failureRate`,
        `expected a number in (0, 1], got ${describe(rate)}`,
      );
    }
    this.#failures = failures;
    this.#rate = rate;
    this.#width = Math.max(
      1,
      Math.ceil(duration(options.window ?? BREAKER_DEFAULTS.window, `${path}.window`) / BUCKETS),
    );
    this.#cooldown = duration(options.cooldown ?? BREAKER_DEFAULTS.cooldown, `${path}.cooldown`);
    this.#clock = clock;
    this.#onChange = onChange;
  }

  /** Whether a call may go ahead now, and whether it is the half-open probe. */
  admit(): Admission {
    if (this.state === 'closed') return CALL;
    const now = this.#clock();
    if (this.state === 'open') {
      if (now - this.#openedAt < this.#cooldown) {
        this.skipped++;
        return SKIP;
      }
      this.#probeAt = now;
      this.#change('half-open');
      return PROBE;
    }
    // Half-open with a probe out. A probe that never settles (a tier without a timeout) must
    // not hold the breaker half-open forever: after a cool-down, another probe may go.
    if (now - this.#probeAt < this.#cooldown) {
      this.skipped++;
      return SKIP;
    }
    this.#probeAt = now;
    return PROBE;
  }

  record(admission: Admission, ok: boolean): void {
    if (admission === PROBE) {
      if (this.state !== 'half-open') return;
      if (ok) {
        this.#ok.fill(0);
        this.#bad.fill(0);
        this.#streak = 0;
        this.#change('closed');
      } else {
        this.#open(this.#clock());
      }
      return;
    }
    if (this.state !== 'closed' || admission !== CALL) return;
    const now = this.#clock();
    const i = this.#roll(now);
    if (ok) {
      this.#ok[i]!++;
      this.#streak = 0;
      return;
    }
    this.#bad[i]!++;
    // A tier that just went down fails every call: open at once, however many calls
    // succeeded earlier in the window.
    if (++this.#streak >= this.#failures) {
      this.#open(now);
      return;
    }
    let bad = 0;
    let all = 0;
    for (let b = 0; b < BUCKETS; b++) {
      bad += this.#bad[b]!;
      all += this.#bad[b]! + this.#ok[b]!;
    }
    if (bad >= this.#failures && bad >= this.#rate * all) this.#open(now);
  }

  #open(now: number): void {
    this.#openedAt = now;
    this.opens++;
    this.#change('open');
  }

  #change(state: BreakerState): void {
    this.state = state;
    this.#onChange(state);
  }

  /** Moves the window to `now`, clearing buckets that rolled off; the index of now's bucket. */
  #roll(now: number): number {
    const bucket = Math.floor(now / this.#width);
    const passed = bucket - this.#bucket;
    if (passed !== 0) {
      // A clock that went backwards clears the window rather than crediting old buckets.
      if (passed < 0 || passed >= BUCKETS) {
        this.#ok.fill(0);
        this.#bad.fill(0);
      } else {
        for (let b = this.#bucket + 1; b <= bucket; b++) {
          this.#ok[b % BUCKETS] = 0;
          this.#bad[b % BUCKETS] = 0;
        }
      }
      this.#bucket = bucket;
    }
    return bucket % BUCKETS;
  }
}

function duration(value: Duration, path: string): number {
  const ms = parseDuration(value);
  if (typeof ms === 'string') throw new InvalidOptionError(path, ms);
  if (ms === Number.POSITIVE_INFINITY)
    throw new InvalidOptionError(path, `expected a finite duration, got ${describe(value)}`);
  return ms;
}
