import { TierTimeoutError } from '../errors.js';
import { now } from '../internal/clock.js';
import type { Admission } from './circuit-breaker.js';
import { explained } from './connection-errors.js';
import type { Deadline, Deadlines } from './deadlines.js';
import type { RawReads } from './guarded-tier.js';
import type { RawReply, ReadBatch, ReadHandler } from './read-batch.js';
import type { StoredEntry } from './tier.js';

/**
 * One admitted call of a guarded tier, under its deadline: who hears of its outcome (the
 * caller's promise, a read's handler, or a batch of reads), what it counts in the guard's bytes
 * in flight, and how a late reply is told from a timeout. One object per call rather than a
 * handful of closures, as every L2 read makes one.
 */
export class BoundedCall<R> implements Deadline {
  at = 0;
  previous: Deadline | null = null;
  next: Deadline | null = null;
  settled = false;
  timedOut = false;
  resolve: (value: R | PromiseLike<R>) => void = ignore;
  reject: (error: unknown) => void = ignore;
  /** Set for a raw read: the reply is decoded for `key` on success. */
  raw: RawReads | undefined = undefined;
  key = '';
  /** Set for a read(): the outcome goes through it, with the token and the start time. */
  handler: ReadHandler<unknown, unknown> | undefined = undefined;
  token: unknown = undefined;
  started = 0;
  /** Set for a batch of reads: the outcome goes to each of them. */
  batch: ReadBatch | undefined = undefined;
  /** Bytes this call counts in the guard's bytes in flight until it settles (its payload, or its expected reply). */
  inFlight = 0;
  /** Bytes the call must wait to be sent (those in flight before it, and its own). */
  allowance = 0;
  /** The connection's received-bytes count when the call started (then at its last check). */
  receivedAt = 0;
  /** Bytes the connection received while the call waited, as of its last check. */
  received = 0;
  /** The guard's extension (see GuardedTier.#extension); set when the call has a deadline. */
  extension: ((call: BoundedCall<unknown>) => number) | undefined = undefined;
  /** The connection's last error, for a timeout's message. */
  why: (() => Error | undefined) | undefined = undefined;
  /** The timer of a deadline extended past the shared sweep. */
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly report: (call: BoundedCall<unknown>, ok: boolean) => void,
    readonly deadlines: Deadlines | undefined,
    readonly tier: string,
    readonly operation: string,
    readonly admission: Admission,
    readonly keys: readonly string[] | undefined,
  ) {}

  /**
   * The promise the caller holds, which `succeed` and `fail` settle. A batch's call has none (its
   * reads have theirs), nor has a lone batched read's (it settles that read's own promise).
   */
  promised(): Promise<R> {
    capturing = this as BoundedCall<unknown>;
    return new Promise(capture) as Promise<R>;
  }

  succeed(value: unknown): void {
    if (this.settled) return;
    const batch = this.batch;
    if (batch !== undefined) {
      this.#settle();
      this.report(this as BoundedCall<unknown>, true);
      batch.deliver(value as RawReply[], this.raw!, now() - batch.started);
      return;
    }
    const raw = this.raw;
    const reply = raw === undefined ? undefined : (value as RawReply);
    if (raw !== undefined) {
      // A decoder that throws fails the call as a rejected tier read would; thrown from this
      // handler it would reject a promise nobody holds instead.
      try {
        value = raw.decodeRaw(this.key, value as RawReply);
      } catch (error) {
        this.fail(error);
        return;
      }
    }
    this.#settle();
    this.report(this as BoundedCall<unknown>, true);
    const handler = this.handler;
    if (handler === undefined) {
      this.resolve(value as R);
      return;
    }
    try {
      this.resolve(
        handler.found(
          this.key,
          value as StoredEntry | undefined,
          now() - this.started,
          this.token,
          reply,
        ) as R,
      );
    } catch (error) {
      this.reject(error);
    }
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.#settle();
    this.report(this as BoundedCall<unknown>, false);
    if (this.batch !== undefined) {
      this.batch.fail(error, now() - this.batch.started);
      return;
    }
    const handler = this.handler;
    if (handler === undefined) {
      this.reject(error);
      return;
    }
    try {
      this.resolve(handler.failed(this.key, error, now() - this.started, this.token) as R);
    } catch (thrown) {
      this.reject(thrown);
    }
  }

  expire(): void {
    // A stalled event loop fires timers before it reads sockets: give a reply that is already
    // waiting one turn of I/O before calling the call late.
    setImmediate(BoundedCall.#overdue, this as BoundedCall<unknown>);
  }

  static readonly #overdue = (call: BoundedCall<unknown>): void => {
    if (call.settled) return;
    // A transfer under way: its own timer, off the shared list (whose deadlines stay in order).
    const more = call.extension?.(call) ?? 0;
    if (more >= 1) {
      call.timer = setTimeout(BoundedCall.#overdue, more, call);
      call.timer.unref();
      return;
    }
    call.timedOut = true;
    const error = new TierTimeoutError(call.tier, call.operation, call.deadlines!.duration);
    call.fail(call.why === undefined ? error : explained(error, call.why()));
  };

  #settle(): void {
    this.settled = true;
    this.deadlines?.settle(this);
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

function ignore(): void {}

/**
 * The executor of every BoundedCall's promise, shared instead of a closure per call: the
 * Promise constructor runs it at once, so the call it fills in is the one just set here.
 */
let capturing: BoundedCall<unknown> | undefined;
function capture(resolve: (value: unknown) => void, reject: (error: unknown) => void): void {
  capturing!.resolve = resolve;
  capturing!.reject = reject;
  capturing = undefined;
}
