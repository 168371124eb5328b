import { randomBytes } from 'node:crypto';
import type { LockStore } from '../tiers/coordination.js';
import { within } from './deadline.js';
import type { ResolvedLock } from './load-plan.js';

/** A held lock (of a cache key): only the token's owner may release it. */
export interface Lease {
  readonly key: string;
  readonly token: string;
}

/**
 * Shortest first lease: the owner renews it to the full `ttl` after a third of it, so it must
 * leave room for the acquire's reply, the owner's re-read of the tiers and a renewal's round
 * trip on a loaded machine.
 */
const MIN_FIRST_LEASE_MS = 2_000;

/**
 * A per-key lock in a tier's lock store (Redis: SET NX PX with a random token) so that across
 * instances one loader runs per key at a time. Its owner renews the lease while the loader runs
 * (`hold`), so a short `ttl` bounds how long a crashed owner blocks others without cutting a
 * slow loader short. It is an optimisation, not a mutex for correctness: if the lease lapses
 * anyway (renewals failing), another instance may load too, which costs an origin call, not
 * consistency (both write whole values).
 *
 * A SET NX that timed out for its caller is not cancelled: it may still land, late (a slow
 * server, or a Cluster client re-sending it to the promoted replica after a failover), and
 * leave a lock nobody knows it holds, which every instance would wait on. Two things bound
 * that: the acquire watches its own late reply and deletes the lock at once if it was taken;
 * and a new lock's first lease is short (`firstLease`), the owner renewing it to `ttl`, so a
 * lock whose reply never comes back (the connection lost after the SET ran) expires soon too.
 */
export class DistributedLock {
  readonly #store: LockStore;
  readonly options: ResolvedLock;
  /** Life of a new lock until its owner first renews it, in ms: min(ttl, max(2 s, 8 × timeout)). */
  readonly firstLease: number;

  constructor(store: LockStore, options: ResolvedLock) {
    this.#store = store;
    this.options = options;
    this.firstLease = Math.min(options.ttl, Math.max(MIN_FIRST_LEASE_MS, 8 * options.timeout));
  }

  /** A lease, or undefined when another owner holds the key. Rejects on store faults. */
  async acquire(key: string): Promise<Lease | undefined> {
    const lease = { key, token: randomBytes(12).toString('base64url') };
    const sent = attempt(() => this.#store.acquire(key, lease.token, this.firstLease));
    let taken: boolean;
    try {
      taken = await within(
        sent,
        this.options.timeout,
        `lock acquire timed out after ${this.options.timeout} ms`,
      );
    } catch (error) {
      // Given up on, but it may still land: if it took the lock, nobody would know. Free it.
      sent.then(
        (late) => {
          if (late) this.release(lease).catch(() => {});
        },
        () => {},
      );
      throw error;
    }
    return taken ? lease : undefined;
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
        attempt(() => this.#store.extend(lease.key, lease.token, ttl)),
        this.options.timeout,
        `lock renewal timed out after ${this.options.timeout} ms`,
      ).then(
        (renewed) => {
          if (!renewed) stop();
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
    return within(
      attempt(() => this.#store.release(lease.key, lease.token)),
      this.options.timeout,
      `lock release timed out after ${this.options.timeout} ms`,
    );
  }
}

/** `run()`, a synchronous throw (a custom store's bug) turned into a rejection. */
function attempt<R>(run: () => Promise<R>): Promise<R> {
  try {
    return run();
  } catch (error) {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    return Promise.reject(error);
  }
}
