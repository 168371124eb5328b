import { LoaderTimeoutError } from '../errors.js';
import { FOREVER } from '../internal/duration.js';

/** What a {@link deadline} rejects with when the soft timeout passes first. */
export class SoftTimeout extends Error {}

/**
 * `work`, raced against a soft and a hard timeout (FOREVER for none). The soft one rejects with
 * SoftTimeout, the hard one with a LoaderTimeoutError. `work` is never cancelled, and its own
 * later rejection is observed here, so it cannot surface as unhandled.
 */
export function deadline<T>(work: Promise<T>, key: string, soft: number, hard: number): Promise<T> {
  if (soft === FOREVER && hard === FOREVER) return work;
  return new Promise<T>((resolve, reject) => {
    const timers: NodeJS.Timeout[] = [];
    if (soft !== FOREVER) timers.push(setTimeout(() => reject(new SoftTimeout(key)), soft));
    if (hard !== FOREVER) timers.push(setTimeout(() => reject(new LoaderTimeoutError(key, hard)), hard));
    const settle = (): void => timers.forEach(clearTimeout);
    work.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the loader's own rejection, passed through
        reject(error);
      },
    );
  });
}

/** `promise`, or a rejection with `Error(message)` after `ms` (for Redis calls on the request path). */
export function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
