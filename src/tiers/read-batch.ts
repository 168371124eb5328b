import type { StoredEntry } from './tier.js';

/**
 * Where a guarded read's outcome goes (see GuardedTier.read), with the read's duration in ms and
 * the token its caller passed. What a method returns (or throws) settles the read's promise.
 */
export interface ReadHandler<T, R> {
  found(key: string, found: StoredEntry | undefined, ms: number, token: T): R | PromiseLike<R>;
  /** The read failed: an error of the tier, a timeout, or the breaker or connection refusing it. */
  failed(key: string, error: unknown, ms: number, token: T): R | PromiseLike<R>;
}

/** The handler of a read whose caller wants the entry itself, or the tier's error. */
export const PASS_THROUGH: ReadHandler<unknown, StoredEntry | undefined> = {
  found: (_key, found) => found,
  failed: (_key, error) => {
    throw error;
  },
};

/** Turns one key's raw reply into its entry (see RawReads); may throw for one it cannot read. */
export interface Decoder {
  decodeRaw(key: string, raw: string | Buffer | null): StoredEntry | undefined;
}

/** The batch a read is joining while its promise is made (see ReadBatch.#join). */
let joining: ReadBatch | undefined;

/**
 * The reads of one tier made in one tick of the event loop, sent as one multi-key read (MGET)
 * when the tick is over. Under concurrency this is most of a Redis tier's reads: one command,
 * one reply and one timeout for them all instead of one each, which is far less work for both
 * the client and the server than as many pipelined GETs. Each read keeps its own promise and
 * handler, so to its caller it is an ordinary read.
 */
export class ReadBatch {
  readonly keys: string[] = [];
  readonly #handlers: ReadHandler<unknown, unknown>[] = [];
  readonly #tokens: unknown[] = [];
  readonly #resolves: ((value: unknown) => void)[] = [];
  readonly #rejects: ((error: unknown) => void)[] = [];

  /** `started`: when the first read joined, in performance.now() ms; every read's duration counts from it. */
  constructor(readonly started: number) {}

  add<T, R>(key: string, handler: ReadHandler<T, R>, token: T): Promise<R> {
    this.keys.push(key);
    this.#handlers.push(handler);
    this.#tokens.push(token);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the shared executor's target
    joining = this;
    return new Promise(ReadBatch.#join) as Promise<R>;
  }

  /** The multi-key read answered: `replies[i]` is the raw reply for `keys[i]`. */
  deliver(replies: readonly (string | Buffer | null)[], decoder: Decoder, ms: number): void {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      let found: StoredEntry | undefined;
      try {
        found = decoder.decodeRaw(key, replies[i] ?? null);
      } catch (error) {
        // One unreadable reply fails its own read, not the others.
        this.#failOne(i, error, ms);
        continue;
      }
      try {
        this.#resolves[i]!(this.#handlers[i]!.found(key, found, ms, this.#tokens[i]));
      } catch (error) {
        this.#rejects[i]!(error);
      }
    }
  }

  /** The multi-key read failed (or was refused): every read in the batch fails with `error`. */
  fail(error: unknown, ms: number): void {
    for (let i = 0; i < this.keys.length; i++) this.#failOne(i, error, ms);
  }

  /**
   * The executor of every batched read's promise, shared instead of a closure per read: the
   * Promise constructor runs it at once, so the batch it joins is the one just set.
   */
  static readonly #join = (resolve: (value: unknown) => void, reject: (error: unknown) => void): void => {
    const batch = joining!;
    batch.#resolves.push(resolve);
    batch.#rejects.push(reject);
    joining = undefined;
  };

  #failOne(i: number, error: unknown, ms: number): void {
    try {
      this.#resolves[i]!(this.#handlers[i]!.failed(this.keys[i]!, error, ms, this.#tokens[i]));
    } catch (thrown) {
      this.#rejects[i]!(thrown);
    }
  }
}
