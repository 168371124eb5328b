import type { RemovalReason } from './entry.js';
import type { CacheError } from './errors.js';
import type { BreakerState } from './tiers/circuit-breaker.js';

/**
 * Events a cache emits, by name. Later features add their events here, so listeners are typed
 * and documented in one place. Events are for things that happen at most once per lookup below
 * L1 (never per L1 hit), so emitting costs nothing measurable.
 */
export interface CacheEvents {
  /** A fault the cache degraded past, or a corrupt payload treated as a miss. */
  error: { error: CacheError };
  /**
   * An entry left the memory tier: `evict` (the policy made room), `expire`, `delete`,
   * `invalidate` (another instance changed it), or `replace` (a newer value took its place).
   */
  remove: { key: string; tier: string; reason: RemovalReason };
  /**
   * A remote tier's circuit breaker changed state: `open` (the tier is skipped after repeated
   * failures), `half-open` (a probe call is testing it), `closed` (the probe succeeded).
   */
  breaker: { tier: string; state: BreakerState };
  /**
   * An expired value was returned: `grace` (stale-while-revalidate), `failSafe` (the loader
   * failed or hit its hard timeout), `softTimeout` (the loader is still running), `backoff`
   * (the loader failed recently and is not called again yet).
   */
  stale: { key: string; reason: StaleReason };
  /** A background refresh started: `grace` (a stale value was served) or `eager` (a hit near expiry). */
  refresh: { key: string; reason: RefreshReason };
  /** A background refresh failed; the error also goes to `onError`. */
  refreshFailed: { key: string; reason: RefreshReason; error: CacheError };
  /** The loader threw or rejected (whether or not a stale value was served instead). */
  loaderError: { key: string; error: CacheError };
  /** The loader passed its soft or hard timeout. */
  loaderTimeout: { key: string; kind: 'soft' | 'hard' };
  /**
   * Distributed single flight: this instance took the key's lock (`acquired`), found another
   * instance loading and waited (`waited`), gave up waiting and loaded itself (`timedOut`), or
   * could not reach Redis and loaded with local single flight only (`failed`).
   */
  lock: { key: string; outcome: 'acquired' | 'waited' | 'timedOut' | 'failed' };
  /**
   * The bus stopped trusting its subscription, so L1 lives are capped until it is back: the
   * subscriber lost its `connection`, or its own `heartbeat` stopped coming back within
   * `bus.heartbeatTimeout` (a silent partition: the socket is open but nothing arrives).
   */
  'bus:disconnect': { reason: BusOutageReason };
  /**
   * The bus subscriber is subscribed (or heard) again. `replayed`: what was missed meanwhile was
   * read from the replay log and applied, and the rest of L1 kept; false: L1 was dropped, as
   * invalidations may have been missed (no log, or the log no longer reached back far enough).
   */
  'bus:reconnect': { replayed: boolean };
  /** A publisher's sequence number jumped: messages were lost, so L1 was dropped. */
  'bus:gap': { publisher: string; expected: number; received: number };
  /** The publish retry queue passed its bound and collapsed into one "drop everything" message. */
  'bus:overflow': { limit: number };
}

/** Why the bus stopped trusting its subscription: the connection said so, or the heartbeat stopped coming back. */
export type BusOutageReason = 'connection' | 'heartbeat';
export type StaleReason = 'grace' | 'failSafe' | 'softTimeout' | 'backoff';
export type RefreshReason = 'grace' | 'eager';

export type CacheEventName = keyof CacheEvents;
export type CacheListener<K extends CacheEventName> = (payload: CacheEvents[K]) => void;

/**
 * A minimal typed emitter. Unlike node:events it never throws for an unheard 'error', and a
 * throwing listener cannot break the cache operation that emitted.
 */
export class CacheEmitter {
  readonly #listeners = new Map<CacheEventName, Set<(payload: never) => void>>();

  on<K extends CacheEventName>(name: K, listener: CacheListener<K>): () => void {
    let set = this.#listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(name, set);
    }
    set.add(listener);
    return () => this.off(name, listener);
  }

  off<K extends CacheEventName>(name: K, listener: CacheListener<K>): void {
    const set = this.#listeners.get(name);
    set?.delete(listener);
    if (set?.size === 0) this.#listeners.delete(name);
  }

  /** Whether anyone listens; callers may skip building a payload when no one does. */
  has(name: CacheEventName): boolean {
    return this.#listeners.has(name);
  }

  emit<K extends CacheEventName>(name: K, payload: CacheEvents[K]): void {
    const set = this.#listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) {
      try {
        (listener as CacheListener<K>)(payload);
      } catch {
        // A listener's bug must not fail the cache operation that emitted the event.
      }
    }
  }
}
