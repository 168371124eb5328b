import type { PreparedWrite } from './tier.js';

/**
 * The fills (loads' conditional writes, RemoteTier.fillMany) of one tier made in one tick, sent
 * as one fillMany when the tick is over. Concurrent getOrSet misses each fill one key: one
 * script call each cost Redis about 5 µs of Lua setup apiece, six times a SET, and the client a
 * command each; batched, a tick's misses fill in one call, as their reads went in one MGET.
 * Each caller still gets its own writes' outcomes, and the batch's failure.
 */
export class FillBatch {
  readonly writes: PreparedWrite[] = [];
  readonly ttls: number[] = [];
  readonly leases: unknown[] = [];
  /** Payload bytes (string lengths) of the writes so far. */
  bytes = 0;
  /** Per caller: where its writes start, how many, and its settlers. */
  readonly #callers: {
    start: number;
    count: number;
    resolve: (done: boolean[]) => void;
    reject: (error: unknown) => void;
  }[] = [];

  add(
    writes: readonly PreparedWrite[],
    ttls: readonly number[],
    leases: readonly unknown[],
    bytes: number,
  ): Promise<boolean[]> {
    const start = this.writes.length;
    this.writes.push(...writes);
    this.ttls.push(...ttls);
    this.leases.push(...leases);
    this.bytes += bytes;
    return new Promise((resolve, reject) =>
      this.#callers.push({ start, count: writes.length, resolve, reject }),
    );
  }

  /** The batch's fillMany answered: each caller gets the outcomes of its own writes. */
  readonly deliver = (done: readonly boolean[]): void => {
    for (const { start, count, resolve } of this.#callers) resolve(done.slice(start, start + count));
  };

  /** The batch's fillMany failed (or was refused): every caller hears it. */
  readonly fail = (error: unknown): void => {
    for (const { reject } of this.#callers) reject(error);
  };
}
