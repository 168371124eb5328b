import { describe } from '../errors.js';

/**
 * A duration: milliseconds as a number, or a string such as `'250ms'`, `'10s'`, `'5m'`, `'1h'`,
 * `'1d'`. `'forever'` means no expiry.
 */
export type Duration = number | `${number}${DurationUnit}` | 'forever';
type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd';

const UNIT_MS: Record<DurationUnit, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/** Infinity stands for 'forever' once resolved, so comparisons and Math.min just work. */
export const FOREVER = Number.POSITIVE_INFINITY;

/**
 * The longest finite duration: 100,000 years. Expiry instants (now + duration) then stay exact
 * integers, valid Dates, and within what Redis takes as a PX (a larger number reaches Redis in
 * exponent notation, or past its limit, and the write fails there).
 */
export const MAX_DURATION_MS = 100_000 * 365.25 * 86_400_000;

/** The longest wait a Node timer can make; a longer setTimeout fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolves a duration to milliseconds, or returns a sentence that says what is wrong with it.
 * Callers turn the sentence into the right typed error (option vs per-call TTL).
 */
export function parseDuration(
  value: unknown,
  { allowZero = false, timer = false }: { allowZero?: boolean; timer?: boolean } = {},
): number | string {
  let ms: number;
  if (value === 'forever') return FOREVER;
  if (typeof value === 'number') {
    ms = value;
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim());
    if (!match) return `expected milliseconds or a string like '10s', '5m', '1h', got ${describe(value)}`;
    ms = Number(match[1]) * UNIT_MS[match[2] as DurationUnit];
  } else {
    return `expected milliseconds or a string like '10s', got ${describe(value)}`;
  }
  if (!Number.isFinite(ms)) return `expected a finite duration, got ${describe(value)}`;
  if (ms < 0 || (ms === 0 && !allowZero)) return `expected a positive duration, got ${describe(value)}`;
  if (ms > MAX_DURATION_MS)
    return `expected at most 100,000 years (or 'forever' where it is allowed), got ${describe(value)}`;
  // A timer's wait: past this, setTimeout would fire at once rather than late.
  if (timer && ms > MAX_TIMER_MS)
    return `expected at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest a Node timer waits), got ${describe(value)}`;
  return Math.round(ms);
}
