/**
 * The envelope a value is stored in, in every tier. Instants are absolute epoch milliseconds so a
 * copy promoted from a lower tier can be given exactly the life it has left there.
 */
export interface Entry<T = unknown> {
  readonly value: T;
  /** When the value was produced (set, or returned by the loader). */
  readonly createdAt: number;
  /** When this copy stops being served; Infinity for 'forever'. */
  readonly expiresAt: number;
  /**
   * When this copy is dropped, at or after `expiresAt`: between the two it is stale, served
   * only under `grace` or `failSafe`. Absent means `expiresAt`.
   */
  readonly staleUntil?: number;
  /**
   * The tags the entry was written with: it is a miss once any of them is invalidated
   * (`invalidateTags`) at or after `createdAt`.
   */
  readonly tags?: readonly string[];
}

/**
 * What `getEntry` and `getOrSetEntry` return: the value with the metadata HTTP caching needs
 * (see `tiercache`'s http helpers). Instants are epoch milliseconds.
 */
export interface EntryInfo<T = unknown> {
  readonly value: T;
  /** When the value was produced (set, or returned by the loader). */
  readonly createdAt: number;
  /**
   * Fresh until: when the copy that answered stops being served. Equal to `createdAt` when the
   * loader's result was not cached (skipCache, or an uncached null/undefined).
   */
  readonly expiresAt: number;
  /** Until when it may be served stale (grace), when the entry has one. */
  readonly staleUntil?: number;
  /** The name of the tier that answered, or `'origin'` when the loader produced the value. */
  readonly tier: string;
}

/** Why an entry left a tier; reported to `onRemove` hooks and metrics. */
export type RemovalReason = 'evict' | 'expire' | 'delete' | 'invalidate' | 'replace';

/** The time `entry` has left at `now`, in milliseconds (Infinity for entries kept forever). */
export function remainingLife(entry: Entry, now: number): number {
  return entry.expiresAt - now;
}

/** When `entry` is dropped: its stale period's end, or its expiry when it has none. */
export function staleEnd(entry: Entry): number {
  return entry.staleUntil ?? entry.expiresAt;
}
