import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
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

/**
 * A per-key lock in Redis (SET NX PX with a random token) so that across instances one loader
 * runs per key at a time. It is an optimisation, not a mutex for correctness: if the lease
 * expires under a slow loader, another instance may load too, which costs an origin call, not
 * consistency (both write whole values).
 */
export class DistributedLock {
  readonly #client: Redis | Cluster;
  readonly options: ResolvedLock;

  constructor(client: Redis | Cluster, options: ResolvedLock) {
    this.#client = client;
    this.options = options;
  }

  /** A lease, or undefined when another owner holds the key. Rejects on Redis faults. */
  async acquire(key: string): Promise<Lease | undefined> {
    const lease = { key: this.options.prefix + key, token: randomBytes(12).toString('base64url') };
    const reply = await within(
      this.#client.set(lease.key, lease.token, 'PX', this.options.ttl, 'NX'),
      this.options.timeout,
      `lock acquire timed out after ${this.options.timeout} ms`,
    );
    return reply === 'OK' ? lease : undefined;
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
