import type { StoredEntry } from './tier.js';

/**
 * Where a guarded read's outcome goes (see GuardedTier.read), with the read's duration in ms and
 * the token its caller passed. What a method returns (or throws) settles the read's promise.
 */
export interface ReadHandler<T, R> {
  /** `reply` is the raw reply `found` was decoded from, for a tier with raw reads. */
  found(
    key: string,
    found: StoredEntry | undefined,
    ms: number,
    token: T,
    reply?: RawReply,
  ): R | PromiseLike<R>;
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

/**
 * A raw read's reply: the stored payload, null for none, or a number for a payload not
 * transferred: (a tier that reads oversized values by script) the size of a value too large to
 * transfer, or {@link NOT_A_STRING}. Either is a corrupt miss whose fill may replace whatever
 * the key holds (see fill-leases.ts).
 */
export type RawReply = string | Buffer | number | null;

/** The raw reply for a key that holds a hash, list, stream… rather than a payload. */
export const NOT_A_STRING = -1;

/** Turns one key's raw reply into its entry (see RawReads); may throw for one it cannot read. */
export interface Decoder {
  decodeRaw(key: string, raw: RawReply): StoredEntry | undefined;
}

/** What settles a lone read handed over by its batch (see ReadBatch.handOver). */
export interface ReadTarget {
  handler: ReadHandler<unknown, unknown> | undefined;
  token: unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
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
  /** The keys to read, each once however many reads of it joined. */
  readonly keys: string[] = [];
  /** Where each key is in `keys`: concurrent reads of one key share its reply and its decoding. */
  readonly #positions = new Map<string, number>();
  /** Per read, in the order they joined: its key's position in `keys`, handler, token, settlers. */
  readonly #slots: number[] = [];
  readonly #handlers: ReadHandler<unknown, unknown>[] = [];
  readonly #tokens: unknown[] = [];
  readonly #resolves: ((value: unknown) => void)[] = [];
  readonly #rejects: ((error: unknown) => void)[] = [];

  /** `started`: when the first read joined, in performance.now() ms; every read's duration counts from it. */
  constructor(readonly started: number) {}

  /** Whether a read of `key` has joined. */
  has(key: string): boolean {
    return this.#positions.has(key);
  }

  /** Reads joined (several may share a key). */
  get size(): number {
    return this.#slots.length;
  }

  add<T, R>(key: string, handler: ReadHandler<T, R>, token: T): Promise<R> {
    let position = this.#positions.get(key);
    if (position === undefined) {
      position = this.keys.length;
      this.keys.push(key);
      this.#positions.set(key, position);
    }
    this.#slots.push(position);
    this.#handlers.push(handler);
    this.#tokens.push(token);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the shared executor's target
    joining = this;
    return new Promise(ReadBatch.#join) as Promise<R>;
  }

  /**
   * Hands the batch's one read to `target`, which then settles it as an unbatched read: its
   * handler and token, and the settlers of the promise its caller holds.
   */
  handOver(target: ReadTarget): void {
    target.handler = this.#handlers[0];
    target.token = this.#tokens[0];
    target.resolve = this.#resolves[0]!;
    target.reject = this.#rejects[0]!;
  }

  /** The multi-key read answered: `replies[i]` is the raw reply for `keys[i]`. */
  deliver(replies: readonly RawReply[], decoder: Decoder, ms: number): void {
    const keys = this.keys;
    // Each key is decoded once; an unreadable reply fails the reads of its own key, not the others.
    const found = new Array<StoredEntry | undefined>(keys.length);
    let failures: Map<number, unknown> | undefined;
    for (let k = 0; k < keys.length; k++) {
      try {
        found[k] = decoder.decodeRaw(keys[k]!, replies[k] ?? null);
      } catch (error) {
        (failures ??= new Map()).set(k, error);
      }
    }
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i++) {
      const k = slots[i]!;
      if (failures?.has(k) === true) {
        this.#failOne(i, failures.get(k), ms);
        continue;
      }
      try {
        this.#resolves[i]!(
          this.#handlers[i]!.found(keys[k]!, found[k], ms, this.#tokens[i], replies[k] ?? null),
        );
      } catch (error) {
        this.#rejects[i]!(error);
      }
    }
  }

  /** The multi-key read failed (or was refused): every read in the batch fails with `error`. */
  fail(error: unknown, ms: number): void {
    for (let i = 0; i < this.#slots.length; i++) this.#failOne(i, error, ms);
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
      const key = this.keys[this.#slots[i]!]!;
      this.#resolves[i]!(this.#handlers[i]!.failed(key, error, ms, this.#tokens[i]));
    } catch (thrown) {
      this.#rejects[i]!(thrown);
    }
  }
}
