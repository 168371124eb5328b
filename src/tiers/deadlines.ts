/**
 * Timeouts for many short calls that share one duration, kept by one timer instead of one
 * `setTimeout` per call: a Redis tier times every call on the request path, and arming and
 * clearing a timer for each is a visible share of an L2 hit. Calls in flight are linked in start
 * order, so with one duration their deadlines are in order too and a sweep looks only at the
 * front. A call that settles unlinks itself at once: a settled call kept until the next sweep
 * would survive young-generation collections with everything it references, and the copying
 * was a fifth of an L2 hit. A call expires at most `resolution` ms late.
 */
export interface Deadline {
  /** When it runs out, in performance.now() ms; set by `start`. */
  at: number;
  /** Links of the in-flight list; owned by {@link Deadlines}. */
  previous: Deadline | null;
  next: Deadline | null;
  /** Called once, by the sweep, when the call is still in flight at `at`. */
  expire(): void;
}

export class Deadlines {
  /** The duration every deadline here runs for, in ms. */
  readonly duration: number;
  readonly #resolution: number;
  #first: Deadline | null = null;
  #last: Deadline | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(duration: number) {
    this.duration = duration;
    this.#resolution = Math.max(1, Math.min(25, Math.floor(duration / 10)));
  }

  /**
   * Starts the clock of a call, which started at `now` (performance.now() ms; a caller that
   * reads the clock anyway passes its reading): its `expire` runs unless `settle` comes first.
   */
  start(deadline: Deadline, now = performance.now()): void {
    deadline.at = now + this.duration;
    const last = this.#last;
    deadline.previous = last;
    deadline.next = null;
    if (last === null) this.#first = deadline;
    else last.next = deadline;
    this.#last = deadline;
    if (this.#timer === undefined) this.#arm();
  }

  /** The call settled (or expired): forget it. Safe to call more than once. */
  settle(deadline: Deadline): void {
    const { previous, next } = deadline;
    if (previous === null && this.#first !== deadline) return;
    if (previous === null) this.#first = next;
    else previous.next = next;
    if (next === null) this.#last = previous;
    else next.previous = previous;
    deadline.previous = deadline.next = null;
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#sweep(), this.#resolution);
    // Calls in flight must not keep alive a process that has nothing else to do.
    this.#timer.unref();
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = performance.now();
    for (let first = this.#first; first !== null && first.at <= now; first = this.#first) {
      this.settle(first);
      first.expire();
    }
    if (this.#first !== null) this.#arm();
  }
}
