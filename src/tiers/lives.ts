/**
 * How long each copy of an entry lives: the TTL arithmetic every write and promotion shares.
 * Pure functions over absolute instants (epoch ms), so the rules read in one place and test
 * without a cache.
 */
import { staleEnd, type Entry } from '../entry.js';
import { parseDuration, type Duration } from '../internal/duration.js';
import type { TtlByTier } from '../options.js';
import type { WriteMask } from './write-targets.js';

/** A tier as the arithmetic sees it: its name and its default life for a key. */
export interface TierLife {
  readonly name: string;
  lifeFor(key: string): number;
}

/** What decides a write's lives besides the tiers. */
export interface LifeRequest {
  key: string;
  /** The write's `ttl`: one duration for every tier, or by tier name. */
  ttl: Duration | TtlByTier | undefined;
  /** Fraction of each life cut at random. */
  jitter: number;
  /** The negative-caching life, for a null/undefined value that has one. */
  negative: number | undefined;
}

/**
 * Absolute expiry per tier (aligned with `tiers`, fastest first). Each tier's life comes from
 * the write's `ttl` (one duration, or by tier name), else the negative-caching TTL, else the
 * tier's default; jitter shortens it; then every copy is capped by the one below, so an upper
 * copy never outlives its source. Tiers outside `mask` (writeTo) hold no copy and cap nothing:
 * their slot gets the life of the copy below, which is what a reader of the top written tier sees.
 */
export function expiries(
  tiers: readonly TierLife[],
  request: LifeRequest,
  now: number,
  mask: WriteMask | undefined,
): number[] {
  const { ttl, jitter, negative, key } = request;
  const out = new Array<number>(tiers.length);
  let cap = Number.POSITIVE_INFINITY;
  for (let i = tiers.length - 1; i >= 0; i--) {
    if (mask !== undefined && !mask[i]!) {
      out[i] = cap;
      continue;
    }
    const tier = tiers[i]!;
    let life = tier.lifeFor(key);
    if (typeof ttl === 'object') {
      const own = ttl[tier.name];
      if (own !== undefined) life = parseDuration(own) as number;
    } else if (ttl !== undefined) {
      life = parseDuration(ttl) as number;
    } else if (negative !== undefined) {
      life = negative;
    }
    if (jitter > 0 && life !== Number.POSITIVE_INFINITY) life -= life * jitter * Math.random();
    cap = Math.min(cap, now + life);
    out[i] = cap;
  }
  return out;
}

/** Per tier (aligned with `expiries`), when the copy is dropped: `keep` past expiry, capped by the tier below. */
export function staleEnds(expiries: readonly number[], keep: number): readonly number[] {
  if (keep === 0) return expiries;
  const ends = new Array<number>(expiries.length);
  let cap = Number.POSITIVE_INFINITY;
  for (let i = expiries.length - 1; i >= 0; i--) {
    cap = Math.min(cap, expiries[i]! + keep);
    ends[i] = cap;
  }
  return ends;
}

/**
 * A copy of `entry` expiring at `expiresAt`, kept `keep` ms past that but never past the
 * source's own stale period, so a promoted copy outlives its source in neither sense.
 */
export function copyWithLife(entry: Entry, expiresAt: number, keep: number): Entry {
  const staleUntil = Math.min(expiresAt + keep, staleEnd(entry));
  return expiresAt === entry.expiresAt && staleUntil === entry.staleUntil
    ? entry
    : entry.tags === undefined
      ? { value: entry.value, createdAt: entry.createdAt, expiresAt, staleUntil }
      : { value: entry.value, createdAt: entry.createdAt, expiresAt, staleUntil, tags: entry.tags };
}

/**
 * Whether `entry` is in the last (1 - ratio) of its life, the life being the time from its
 * creation to its expiry, or `life` if shorter (a copy that is younger than its value).
 */
export function isDue(entry: Entry, ratio: number, now: number, life: number): boolean {
  return now >= entry.expiresAt - (1 - ratio) * Math.min(life, entry.expiresAt - entry.createdAt);
}
