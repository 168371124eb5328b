import type { CacheError } from '../errors.js';

/**
 * Rate-limits reports of a fault that others can cause at will: anyone who can PUBLISH on the
 * bus channel can send 50,000 invalid messages a second, and one `onError` call (a log line,
 * an alert) per message would turn a nuisance into an outage. The first report goes out at
 * once; after it, at most one summary per interval says how many were held back and shows the
 * latest. A quiet interval re-arms it. Counters are kept by the caller and still count each one.
 */
export class ReportLimiter {
  readonly #report: (error: CacheError) => void;
  readonly #interval: number;
  readonly #summarize: (held: number, latest: CacheError, interval: number) => CacheError;
  #timer: NodeJS.Timeout | undefined;
  #held = 0;
  #latest: CacheError | undefined;

  constructor(
    report: (error: CacheError) => void,
    summarize: (held: number, latest: CacheError, interval: number) => CacheError,
    interval = 1_000,
  ) {
    this.#report = report;
    this.#summarize = summarize;
    this.#interval = interval;
  }

  report(error: CacheError): void {
    if (this.#timer === undefined) {
      this.#report(error);
      this.#arm();
      return;
    }
    this.#held++;
    this.#latest = error;
  }

  /** Drops what is held back (the cache is closing: nobody is listening for a summary). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#held = 0;
    this.#latest = undefined;
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#flush(), this.#interval);
    this.#timer.unref();
  }

  #flush(): void {
    this.#timer = undefined;
    const held = this.#held;
    const latest = this.#latest;
    if (held === 0 || latest === undefined) return;
    this.#held = 0;
    this.#latest = undefined;
    this.#report(this.#summarize(held, latest, this.#interval));
    this.#arm();
  }
}
