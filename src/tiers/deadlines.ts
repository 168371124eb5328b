/**
 * Timeouts for many short calls that share one duration, kept by one timer instead of one
 * `setTimeout` per call: a Redis tier times every call on the request path, and arming and
 * clearing a timer for each is a visible share of an L2 hit. Calls are queued in start order,
 * so with one duration their deadlines are in order too and a sweep looks only at the front.
 * A call expires at most `resolution` ms late.
 */
export interface Deadline {
  /** When it runs out, in performance.now() ms; set by `start`. */
  at: number;
  /** Cleared when the call settles, so that the sweep passes over it. */
  live: boolean;
  /** Called once, by the sweep, when the call is still live at `at`. */
  expire(): void;
}

export class Deadlines {
  readonly #duration: number;
  readonly #resolution: number;
  #queue: Deadline[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(duration: number) {
    this.#duration = duration;
    this.#resolution = Math.max(1, Math.min(25, Math.floor(duration / 10)));
  }

  /** Starts the clock of a call: its `expire` runs unless it is no longer `live` by then. */
  start(deadline: Deadline): void {
    deadline.at = performance.now() + this.#duration;
    this.#queue.push(deadline);
    if (this.#timer === undefined) this.#arm();
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#sweep(), this.#resolution);
    // Calls in flight must not keep alive a process that has nothing else to do.
    this.#timer.unref();
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = performance.now();
    const queue = this.#queue;
    let head = 0;
    for (; head < queue.length; head++) {
      const deadline = queue[head]!;
      if (!deadline.live) continue;
      if (deadline.at > now) break;
      deadline.live = false;
      deadline.expire();
    }
    // Keep only what is still in flight (or settled behind a call that is).
    this.#queue = head === queue.length ? [] : queue.slice(head);
    if (this.#queue.length > 0) this.#arm();
  }
}
