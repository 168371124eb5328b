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
 * Shortest first lease: the owner renews it to the full `ttl` after a third of it, so it must
 * leave room for the acquire's reply, the owner's re-read of the tiers and a renewal's round
 * trip on a loaded machine.
 */
const MIN_FIRST_LEASE_MS = 2_000;

/**
 * A per-key lock in Redis (SET NX PX with a random token) so that across instances one loader
 * runs per key at a time. Its owner renews the lease while the loader runs (`hold`), so a short
 * `ttl` bounds how long a crashed owner blocks others without cutting a slow loader short. It is
 * an optimisation, not a mutex for correctness: if the lease lapses anyway (renewals failing),
 * another instance may load too, which costs an origin call, not consistency (both write whole
 * values).
 *
 * A SET NX that timed out for its caller is not cancelled: it may still land, late (a slow
 * server, or a Cluster client re-sending it to the promoted replica after a failover), and
 * leave a lock nobody knows it holds, which every instance would wait on. Two things bound
 * that: the acquire watches its own late reply and deletes the lock at once if it was taken;
 * and a new lock's first lease is short (`firstLease`), the owner renewing it to `ttl`, so a
 * lock whose reply never comes back (the connection lost after the SET ran) expires soon too.
 */
export class DistributedLock {
  readonly #client: Redis | Cluster;
  readonly options: ResolvedLock;
  /** Where lock keys start: inside the tier's prefix, so a cache locks only its own keys. */
  readonly #prefix: string;
  /** Life of a new lock until its owner first renews it, in ms: min(ttl, max(2 s, 8 × timeout)). */
  readonly firstLease: number;

  /** `prefix`: the key prefix of the Redis tier the locks live in. */
  constructor(client: Redis | Cluster, options: ResolvedLock, prefix: string) {
    this.#client = client;
    this.options = options;
    this.#prefix = prefix + LOCK_KEY_PREFIX;
    this.firstLease = Math.min(options.ttl, Math.max(MIN_FIRST_LEASE_MS, 8 * options.timeout));
  }

  /** A lease, or undefined when another owner holds the key. Rejects on Redis faults. */
  async acquire(key: string): Promise<Lease | undefined> {
    const lease = { key: this.#prefix + key, token: randomBytes(12).toString('base64url') };
    const sent = this.#client.set(lease.key, lease.token, 'PX', this.firstLease, 'NX');
    let reply: string | null;
    try {
      reply = await within(
        sent,
        this.options.timeout,
        `lock acquire timed out after ${this.options.timeout} ms`,
      );
    } catch (error) {
      // Given up on, but it may still land: if it took the lock, nobody would know. Free it.
      sent.then(
        (late) => {
          if (late === 'OK') this.release(lease).catch(() => {});
        },
        () => {},
      );
      throw error;
    }
    return reply === 'OK' ? lease : undefined;
  }

  /**
   * Renews `lease` to the full ttl, first after a third of the first lease, then every third
   * of the ttl, until the returned function is called or the lease is found lost. A renewal
   * that fails is not retried sooner: the lease may then lapse, which costs another instance's
   * origin call, as it did before renewals.
   */
  hold(lease: Lease): () => void {
    const ttl = this.options.ttl;
    let timer: NodeJS.Timeout | undefined;
    let held = true;
    const renew = (): void => {
      within(
        this.#client.eval(EXTEND, 1, lease.key, lease.token, ttl) as Promise<number>,
        this.options.timeout,
        `lock renewal timed out after ${this.options.timeout} ms`,
      ).then(
        (renewed) => {
          if (renewed !== 1) stop();
        },
        () => {},
      );
      schedule(ttl);
    };
    const schedule = (life: number): void => {
      if (!held) return;
      timer = setTimeout(renew, Math.max(1, Math.floor(life / 3)));
      // A loader still running must not keep an otherwise finished process alive.
      timer.unref();
    };
    const stop = (): void => {
      held = false;
      clearTimeout(timer);
    };
    schedule(this.firstLease);
    return stop;
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
