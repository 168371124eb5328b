import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { LOCK_KEY_PREFIX } from '../sync/reserved-keys.js';
import { within } from './deadline.js';
import type { ResolvedLock } from './load-plan.js';

/** A held lock: only the token's owner may release it. */
export interface Lease {
  readonly key: string;
  readonly token: string;
}

// Compare-and-delete: a loader that outlived its lease must not delete the next owner's lock.
const RELEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

// Compare-and-renew, for the same reason.
const EXTEND =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";

/**
 * A per-key lock in Redis (SET NX PX with a random token) so that across instances one loader
 * runs per key at a time. Its owner renews the lease while the loader runs (`hold`), so a short
 * `ttl` bounds how long a crashed owner blocks others without cutting a slow loader short. It is
 * an optimisation, not a mutex for correctness: if the lease lapses anyway (renewals failing),
 * another instance may load too, which costs an origin call, not consistency (both write whole
 * values).
 */
export class DistributedLock {
  readonly #client: Redis | Cluster;
  readonly options: ResolvedLock;
  /** Where lock keys start: inside the tier's prefix, so a cache locks only its own keys. */
  readonly #prefix: string;

  /** `prefix`: the key prefix of the Redis tier the locks live in. */
  constructor(client: Redis | Cluster, options: ResolvedLock, prefix: string) {
    this.#client = client;
    this.options = options;
    this.#prefix = prefix + LOCK_KEY_PREFIX;
  }

  /** A lease, or undefined when another owner holds the key. Rejects on Redis faults. */
  async acquire(key: string): Promise<Lease | undefined> {
    const lease = { key: this.#prefix + key, token: randomBytes(12).toString('base64url') };
    const reply = await within(
      this.#client.set(lease.key, lease.token, 'PX', this.options.ttl, 'NX'),
      this.options.timeout,
      `lock acquire timed out after ${this.options.timeout} ms`,
    );
    return reply === 'OK' ? lease : undefined;
  }

  /**
   * Renews `lease` every third of its life until the returned function is called or the lease
   * is found lost. A renewal that fails is not retried sooner: the lease may then lapse, which
   * costs another instance's origin call, as it did before renewals.
   */
  hold(lease: Lease): () => void {
    const ttl = this.options.ttl;
    const timer = setInterval(
      () => {
        within(
          this.#client.eval(EXTEND, 1, lease.key, lease.token, ttl) as Promise<number>,
          this.options.timeout,
          `lock renewal timed out after ${this.options.timeout} ms`,
        ).then(
          (renewed) => {
            if (renewed !== 1) clearInterval(timer);
          },
          () => {},
        );
      },
      Math.max(1, Math.floor(ttl / 3)),
    );
    // A loader still running must not keep an otherwise finished process alive.
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Deletes the lock if this lease still owns it; true if it did. */
  async release(lease: Lease): Promise<boolean> {
    const reply = await within(
      this.#client.eval(RELEASE, 1, lease.key, lease.token) as Promise<number>,
      this.options.timeout,
      `lock release timed out after ${this.options.timeout} ms`,
    );
    return reply === 1;
  }
}
