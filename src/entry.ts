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
}

/** Why an entry left a tier; reported to `onRemove` hooks and metrics. */
export type RemovalReason = 'evict' | 'expire' | 'delete' | 'invalidate' | 'replace';

/** The time `entry` has left at `now`, in milliseconds (Infinity for entries kept forever). */
export function remainingLife(entry: Entry, now: number): number {
  return entry.expiresAt - now;
}
