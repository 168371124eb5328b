/**
 * Polling with a deadline: the one way the harness waits for a server, a cluster or a set of
 * sentinels to reach a state. A fixed sleep either wastes time or is too short on a loaded
 * 2-core machine; a poll returns as soon as the state is reached and, when it is not, fails with
 * what it last saw.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface WaitForOptions {
  /** What is being waited for, quoted in the timeout error. */
  readonly description: string;
  /** @default 10_000 */
  readonly timeoutMs?: number;
  /** Pause between two probes. @default 50 */
  readonly intervalMs?: number;
}

/** A probe's verdict: `done` with a value, or not yet with the reason (shown if time runs out). */
export type Probe<T> =
  { readonly done: true; readonly value: T } | { readonly done: false; readonly reason: string };

export const done = <T>(value: T): Probe<T> => ({ done: true, value });
export const notYet = (reason: string): Probe<never> => ({ done: false, reason });

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

/** Thrown by a probe to stop waiting at once; `waitFor` rethrows `reason`. */
export class GiveUp extends Error {
  override readonly name = 'GiveUp';
  constructor(readonly reason: unknown) {
    super('gave up waiting');
  }
}

/**
 * Calls `probe` until it reports done or the deadline passes. A probe that throws counts as
 * "not yet" (servers refuse connections while they start or fail over), and its message is kept
 * for the timeout error, unless it throws a `GiveUp`: then its reason is thrown at once.
 */
export async function waitFor<T>(probe: () => Promise<Probe<T>>, options: WaitForOptions): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last = 'no probe finished';
  for (;;) {
    try {
      const result = await probe();
      if (result.done) return result.value;
      last = result.reason;
    } catch (error) {
      if (error instanceof GiveUp) throw error.reason;
      last = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      throw new WaitTimeoutError(
        `Timed out after ${timeoutMs} ms waiting for ${options.description}; last state: ${last}`,
      );
    }
    await delay(intervalMs);
  }
}

/** Rejects with a WaitTimeoutError if `promise` has not settled within `timeoutMs`. */
export async function withDeadline<T>(
  promise: Promise<T>,
  timeoutMs: number,
  description: string,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new WaitTimeoutError(`Timed out after ${timeoutMs} ms waiting for ${description}.`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `waitFor` for a yes/no condition: resolves once it holds. */
export async function until(
  description: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<void> {
  await waitFor(async () => ((await condition()) ? done(undefined) : notYet('not yet')), {
    description,
    timeoutMs,
    intervalMs,
  });
}
