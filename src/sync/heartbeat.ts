import { performance } from 'node:perf_hooks';

export interface HeartbeatSettings {
  /** Between two heartbeats on each channel, in ms. */
  interval: number;
  /** How old the newest heartbeat heard back on a channel may get, in ms, before the subscription counts as lost. */
  timeout: number;
}

/** One in-flight heartbeat PUBLISH, seen twice. */
export interface HeartbeatSend {
  /** Settles as the bus counts the PUBLISH: rejects if it failed or took longer than publishTimeout. */
  readonly result: Promise<void>;
  /** Settles when the PUBLISH really does; no heartbeat follows on the channel before, so none pile up in a client's queue while Redis hangs. */
  readonly settled: Promise<unknown>;
}

/** The heartbeats of one channel: the publisher id they carry there, and how to send one. */
export interface HeartbeatStream {
  readonly publisher: string;
  send(sentAt: number): HeartbeatSend;
}

export interface HeartbeatListener {
  /** A channel heard none of its heartbeats back for longer than the timeout. */
  silent(): void;
  /** After silent(), every channel heard a recent heartbeat back. */
  heard(): void;
  /** A heartbeat PUBLISH failed; `first` is true for the first failure since one last succeeded. */
  failed(error: unknown, first: boolean): void;
}

interface StreamState {
  readonly stream: HeartbeatStream;
  /** Send time of the newest heartbeat heard back: everything published on the channel before it has arrived. */
  proven: number;
  busy: boolean;
  /** Whether its last heartbeat PUBLISH failed. */
  failing: boolean;
}

/**
 * Proves the subscriber's subscription end to end. A socket can stay open while nothing arrives
 * (a partition, a hung Redis, a proxy that blackholes), and the client never notices; so the
 * instance publishes a heartbeat on every channel it listens on and watches its own heartbeats
 * come back. A heartbeat heard back proves that whatever was published on its channel before it
 * was sent has been received, so the age of the newest one bounds what may have been missed.
 *
 * Times come from the monotonic clock, never the cache's clock: a heartbeat's send time is only
 * ever compared with this process's own timers.
 */
export class Heartbeat {
  readonly #streams = new Map<string, StreamState>();
  readonly #settings: HeartbeatSettings;
  readonly #listener: HeartbeatListener;
  readonly #beatTimer: NodeJS.Timeout;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Between watch() and unwatch(): only a subscription believed in place can go silent. */
  #watching = false;
  #silent = false;
  /** Channels whose last heartbeat PUBLISH failed; an outage is reported when the first one does. */
  #failing = 0;
  /** Whether this outage was reported: once, until every channel's heartbeat went out again. */
  #reported = false;
  #closed = false;

  constructor(streams: readonly HeartbeatStream[], settings: HeartbeatSettings, listener: HeartbeatListener) {
    this.#settings = settings;
    this.#listener = listener;
    const now = performance.now();
    for (const stream of streams)
      this.#streams.set(stream.publisher, { stream, proven: now, busy: false, failing: false });
    // Beating goes on whatever the subscriber's state: other instances' gap checks read this
    // instance's sequence number from its heartbeats.
    this.#beatTimer = setInterval(() => this.#beat(), settings.interval);
    this.#beatTimer.unref();
  }

  /** Whether a channel went silent while watched, and has not been heard since. */
  get silent(): boolean {
    return this.#silent;
  }

  /** Whether every channel's last heartbeat PUBLISH went out: silence is then on the receiving side. */
  get publishing(): boolean {
    return this.#failing === 0;
  }

  /** The subscription was just confirmed, which proves every channel as of now: watch from here. */
  watch(): void {
    if (this.#closed) return;
    const now = performance.now();
    for (const state of this.#streams.values()) state.proven = Math.max(state.proven, now);
    this.#watching = true;
    this.#silent = false;
    this.#arm(this.#settings.timeout);
  }

  /** The connection itself is lost: the bus knows already, and nothing can be heard until watch(). */
  unwatch(): void {
    this.#watching = false;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  /** Takes in a heartbeat heard on the bus; false when `publisher` is not one of this instance's. */
  hear(publisher: string, sentAt: number): boolean {
    const state = this.#streams.get(publisher);
    if (state === undefined) return false;
    // Only this process stamps these, with its own clock, so a time from the future is forged
    // (the publisher id is on the wire for anyone to copy): believed, it would prove the
    // subscription for ever and blind the silence check.
    if (sentAt > state.proven && sentAt <= performance.now()) state.proven = sentAt;
    if (this.#silent && this.#watching && this.#overdue() < 0) {
      this.#silent = false;
      this.#arm(-this.#overdue());
      this.#listener.heard();
    }
    return true;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#beatTimer);
    this.unwatch();
  }

  #beat(): void {
    if (this.#closed) return;
    for (const state of this.#streams.values()) {
      if (state.busy) continue;
      state.busy = true;
      // Whole ms keep the message short; rounding down only makes the proof more cautious.
      const send = state.stream.send(Math.floor(performance.now()));
      const free = (): void => {
        state.busy = false;
      };
      send.settled.then(free, free);
      send.result.then(
        () => {
          if (!state.failing) return;
          state.failing = false;
          if (--this.#failing === 0) this.#reported = false;
        },
        (error: unknown) => {
          if (this.#closed) return;
          if (!state.failing) this.#failing++;
          state.failing = true;
          this.#listener.failed(error, !this.#reported);
          this.#reported = true;
        },
      );
    }
  }

  /** How far past the timeout the stalest channel is, in ms (negative: how long until it is). */
  #overdue(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const state of this.#streams.values()) oldest = Math.min(oldest, state.proven);
    return performance.now() - oldest - this.#settings.timeout;
  }

  #arm(delay: number): void {
    clearTimeout(this.#deadlineTimer);
    // Timers may fire a little early; the check re-arms for the rest rather than trust them.
    this.#deadlineTimer = setTimeout(() => this.#check(), Math.max(1, Math.ceil(delay)));
    this.#deadlineTimer.unref();
  }

  /**
   * The deadline timer fired. A stalled event loop (a burst of messages, a long GC) fires timers
   * before it reads sockets: a heartbeat that came back meanwhile is read in this turn's I/O, so
   * the verdict waits for it.
   */
  #check(): void {
    this.#deadlineTimer = undefined;
    setImmediate(this.#verdict);
  }

  readonly #verdict = (): void => {
    // Re-armed by watch() meanwhile, or stopped: that call decides now.
    if (this.#closed || !this.#watching || this.#silent || this.#deadlineTimer !== undefined) return;
    const overdue = this.#overdue();
    if (overdue < 0) {
      this.#arm(-overdue);
      return;
    }
    this.#silent = true;
    this.#listener.silent();
  };
}
