import { type CacheError, TierError, TierUnavailableError } from './errors.js';
import type { CacheEmitter } from './events.js';
import type { TierCounters, TierOperation } from './metrics/stats.js';

/**
 * Where every failure that did not fail a request goes: the `onError` hook and the `error`
 * event, or (with `tierErrors: 'throw'`, for faults on the request path) a rejection. One place,
 * so a tier fault, a corrupt payload and a failed background refresh are reported alike.
 */
export class Faults {
  readonly #onError: (error: CacheError) => void;
  readonly #events: CacheEmitter;
  readonly throwTierErrors: boolean;

  constructor(onError: (error: CacheError) => void, throwTierErrors: boolean, events: CacheEmitter) {
    this.#onError = onError;
    this.throwTierErrors = throwTierErrors;
    this.#events = events;
  }

  report(error: CacheError, mayThrow: boolean): void {
    if (mayThrow && this.throwTierErrors) throw error;
    try {
      this.#onError(error);
    } catch {
      // A throwing error hook must not turn a degraded request into a failed one.
    }
    this.#events.emit('error', { error });
  }

  /** Counts and reports a tier fault; rethrows it when the cache was built with tierErrors:'throw'. */
  tier(
    counters: TierCounters,
    operation: TierOperation,
    cause: unknown,
    key?: string,
    mayThrow = true,
  ): void {
    // Calls skipped by an open breaker are counted by the tier; its 'breaker' event said why.
    if (cause instanceof TierUnavailableError && cause.reason === 'circuit-open' && !this.throwTierErrors)
      return;
    counters.fault(operation);
    this.report(new TierError(counters.name, operation, cause, key), mayThrow);
  }
}
