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
 * Resolves a duration to milliseconds, or returns a sentence that says what is wrong with it.
 * Callers turn the sentence into the right typed error (option vs per-call TTL).
 */
export function parseDuration(value: unknown, { allowZero = false } = {}): number | string {
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
  return Math.round(ms);
}
