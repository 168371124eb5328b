import { performance } from 'node:perf_hooks';
import type { RedisPipeline } from './client.js';
import { InvalidOptionError, describe } from '../../errors.js';
import { FOREVER, parseDuration, type Duration } from '../../internal/duration.js';
import { optionNames } from '../../internal/option-names.js';

/** {@link RedisTierOptions.replicas}: how many replicas must acknowledge a write, and how long to wait. */
export interface ReplicasOptions {
  /** Replicas that must acknowledge (a positive integer, at most the replicas each master has). */
  wait: number;
  /** Longest wait for them, finite and above 0 (`WAIT` with 0 would block for ever). */
  timeout: Duration;
}

const REPLICAS_OPTION_NAMES = optionNames<ReplicasOptions>({ wait: true, timeout: true });

/** The shortest time a master that came back short of replicas is not sent WAIT again. */
const MIN_PAUSE_MS = 1_000;
/** …and, for long timeouts, this many timeouts: a WAIT then holds at most a tenth of its connection's time. */
const PAUSE_TIMEOUTS = 10;

/**
 * The WAIT that follows writes when `replicas` is set, and which masters lately lacked the
 * replicas to answer it.
 *
 * WAIT blocks the connection that sent it: every command queued behind it on that master (other
 * callers' reads, the bus's heartbeats and publishes) waits until the replicas answer or the
 * timeout ends. A master without enough replicas (its replica died, or it was just promoted and
 * has none yet) lets every WAIT run to its timeout, so a steady stream of writes would hold its
 * connection for ever and starve everything behind them: the bus would never hear its heartbeats
 * back. So after a WAIT comes back short, writes to that master skip the WAIT for a while and
 * count as unacknowledged at once, which is what the WAIT would have said, without the wait.
 */
export class ReplicaWait {
  readonly wait: number;
  readonly timeout: number;
  readonly #pauseMs: number;
  /** Master (address, or '' for a single Redis) → when WAITs to it may be sent again. */
  readonly #pausedUntil = new Map<string, number>();

  /** Checks `options` (the tier's `replicas`); `path` names it in errors. */
  constructor(options: ReplicasOptions, path: string) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidOptionError(path, `expected { wait, timeout }, got ${describe(options)}`);
    }
    REPLICAS_OPTION_NAMES.check(options, path);
    const { wait } = options;
    if (!Number.isInteger(wait) || wait < 1) {
      throw new InvalidOptionError(`${path}.wait`, `expected a positive integer, got ${describe(wait)}`);
    }
    const timeout = parseDuration(options.timeout, { timer: true });
    if (typeof timeout === 'string') throw new InvalidOptionError(`${path}.timeout`, timeout);
    if (timeout === FOREVER || timeout < 1) {
      throw new InvalidOptionError(
        `${path}.timeout`,
        `expected a finite duration of at least 1 ms, got ${describe(options.timeout)}`,
      );
    }
    this.wait = wait;
    this.timeout = Math.ceil(timeout);
    this.#pauseMs = Math.max(MIN_PAUSE_MS, PAUSE_TIMEOUTS * this.timeout);
  }

  /**
   * Appends the WAIT to a pipeline of writes bound for `node`, unless that master lately came
   * back short; what to pass to {@link check} with the pipeline's last reply.
   */
  append(pipeline: RedisPipeline, node: string): boolean {
    const until = this.#pausedUntil.get(node);
    if (until !== undefined) {
      if (performance.now() < until) return false;
      this.#pausedUntil.delete(node);
    }
    pipeline.wait(this.wait, this.timeout);
    return true;
  }

  /**
   * Throws unless enough replicas acknowledged the writes: `reply` is the WAIT's, or nothing
   * when {@link append} skipped it.
   */
  check(node: string, waited: boolean, reply: unknown): void {
    if (!waited) {
      throw new Error(
        `WAIT skipped: ${node === '' ? 'the master' : node} lately had fewer than ${this.wait} replicas to acknowledge writes`,
      );
    }
    if (typeof reply === 'number' && reply >= this.wait) return;
    this.#pausedUntil.set(node, performance.now() + this.#pauseMs);
    throw new Error(
      `WAIT: ${String(reply)} of ${this.wait} replicas acknowledged the write within ${this.timeout} ms`,
    );
  }
}
