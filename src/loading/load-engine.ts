/**
 * The load rules, written once. Every path that may call the origin — getOrSet, getOrSetEntry,
 * getManyOrSet, wrap, eager refresh and the refresh behind a grace answer — runs here, as a set
 * of per-key flights sharing one loader call:
 *
 *   start flights ─► kept copies (L1) ─► grace? answer stale, keep loading
 *        │
 *        ▼
 *   read the remote tiers (one read, or one multi-key read per tier) ─► hit: answer, done
 *        │
 *        ▼
 *   kept copies below ─► grace ─► back-off (fail-safe) ─► locks (take, or wait for the holder)
 *        │
 *        ▼
 *   one loader call for the keys left ─► soft/hard timeouts per key ─► write through the tier
 *   stack (fill guard) ─► answer; failures answer from kept copies under fail-safe
 *
 * A flight is registered from its start until its load ends, so callers that miss meanwhile
 * join it (single flight), also after it answered early from a kept copy. A rule added here
 * holds for one key and for a batch alike.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { Entry } from '../entry.js';
import {
  CacheClosedError,
  type CacheError,
  InvalidOptionError,
  InvalidValueError,
  LoaderCycleError,
  LoaderError,
  LoaderTimeoutError,
  describe,
  isCacheError,
} from '../errors.js';
import type { CacheEmitter, RefreshReason, StaleReason } from '../events.js';
import type { Faults } from '../faults.js';
import { now } from '../internal/clock.js';
import { FOREVER } from '../internal/duration.js';
import type { CacheCounters } from '../metrics/stats.js';
import { checkWriteOptions, type GetOrSetOptions, type WriteOptions } from '../options.js';
import { isDue } from '../tiers/lives.js';
import type { Found, StaleSlot, TierStack, WriteItem } from '../tiers/tier-stack.js';
import { Backoff } from './backoff.js';
import type { DistributedLock, Lease } from './distributed-lock.js';
import type { FillGuard, FillTicket } from './fill-guard.js';
import { LoadContext, type LoaderContext } from './load-context.js';
import { NO_LOCK_TIER, resolvePlan, type LoadPlan } from './load-plan.js';
import type { Wakeups } from './wakeups.js';

export type Loader<T> = (context: LoaderContext) => T | Promise<T>;

/**
 * A batch loader gets the keys no tier had and returns their values: a Map or plain object keyed
 * by key, or an array aligned with `keys`. Keys it leaves out load as `undefined`.
 */
export type BatchLoader<T> = (
  keys: string[],
  context: LoaderContext,
) => Promise<ReadonlyMap<string, T> | Readonly<Record<string, T>> | readonly (T | undefined)[]>;

/** What a flight's answer came from, for getOrSetEntry. */
export interface FlightInfo {
  entry: Entry | undefined;
  /** The tier that answered, or 'origin'. */
  tier: string;
}

/** The distributed lock and the remote tier that holds it. */
export interface LockSeat {
  readonly lock: DistributedLock;
  /** Index of that tier among the remote tiers (its faults are counted there). */
  readonly tier: number;
}

export interface LoadEngineOptions {
  stack: TierStack;
  guard: FillGuard;
  wakes: Wakeups;
  counters: CacheCounters;
  events: CacheEmitter;
  faults: Faults;
  clock: () => number;
  readClock: () => number;
  /** The cache-wide load plan; per-call options resolve over it. */
  plan: LoadPlan;
  lock: LockSeat | undefined;
  /** Whether a loaded value is written (negative caching). */
  cacheable: (value: unknown) => boolean;
  closed: () => boolean;
  /** Runs background work that close() waits for. */
  track: (work: Promise<void>) => void;
}

/** One key's load. */
interface Flight {
  readonly key: string;
  readonly ticket: FillTicket;
  readonly answer: Deferred;
  answered: boolean;
  /** An expired copy still kept for grace / fail-safe, and the tier it came from. */
  kept: Entry | undefined;
  keptTier: string;
  /**
   * The kept copy is a suspect: L1 held it when the bus lost track of invalidations, so it is
   * answered only when the load fails under fail-safe (or backs off after a failure).
   */
  suspect: boolean;
  readonly info: FlightInfo;
  /** Set when the callers have a value already: this load refreshes it. */
  refresh: RefreshReason | undefined;
  /** Why the flight answered early from its kept copy (callers joining later are served it too). */
  stale: StaleReason | undefined;
  /**
   * What the load's latest read before the loader call saw in each remote tier (see
   * RemoteTier.getLeased): a tier with fill leases stores the result only if the key still holds it.
   */
  readonly leases: unknown[];
}

/** How one run calls its loader: the raw call, and its result as values aligned with the keys. */
interface Call {
  readonly run: (keys: string[], context: LoadContext) => unknown;
  readonly values: (keys: readonly string[], loaded: unknown) => unknown[];
}

interface Run {
  readonly call: Call;
  readonly options: GetOrSetOptions | undefined;
  readonly plan: LoadPlan;
  /** An eager refresh: callers hold live copies, and a copy below that is itself due loads too. */
  readonly eager: boolean;
}

export class LoadEngine {
  readonly #o: LoadEngineOptions;
  readonly #flights = new Map<string, Flight>();
  readonly #infos = new WeakMap<Promise<unknown>, FlightInfo>();
  readonly #backoff: Backoff;
  /** The keys whose loaders run in the current async context, outermost first. */
  readonly #chain = new AsyncLocalStorage<readonly string[]>();
  /**
   * Loader calls running. On Node 20 an enabled AsyncLocalStorage runs a hook on every promise
   * the process makes, which halved the rate of L1 hits (and slows every await of the app)
   * once any loader had run; the chain is disabled again whenever no loader runs, so the
   * hooks cost only while loads are in flight.
   */
  #loading = 0;

  constructor(options: LoadEngineOptions) {
    this.#o = options;
    this.#backoff = new Backoff(options.clock);
  }

  /**
   * getOrSet after an L1 miss: joins the key's flight, or starts one. The promise settles with
   * the value (not cloned) or the load's error.
   */
  flight(key: string, loader: Loader<unknown>, options: GetOrSetOptions | undefined): Promise<unknown> {
    this.#checkCycle(key);
    const joined = this.#joinable(key);
    if (joined !== undefined) return this.#join(joined);
    if (typeof loader !== 'function')
      throw new InvalidOptionError('loader', `expected a function, got ${describe(loader)}`);
    if (options !== undefined) checkWriteOptions(key, options, this.#o.stack.names, 'getOrSet');
    const plan = this.planFor(options);
    const flights = this.#start([key]);
    this.#launch(flights, { call: single(loader), options, plan, eager: false });
    return flights[0]!.answer.promise;
  }

  /** What answered a promise `flight()` returned, once it settled. */
  infoOf(answer: Promise<unknown>): FlightInfo | undefined {
    return this.#infos.get(answer);
  }

  /**
   * getManyOrSet after its L1 pass: each key joins its flight or gets a new one, and the new
   * ones share one batch loader call. Answers by key.
   */
  many(
    keys: Iterable<string>,
    loader: BatchLoader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
  ): Map<string, Promise<unknown>> {
    const answers = new Map<string, Promise<unknown>>();
    const fresh: string[] = [];
    for (const key of keys) {
      this.#checkCycle(key);
      const joined = this.#joinable(key);
      if (joined !== undefined) answers.set(key, this.#join(joined));
      else fresh.push(key);
    }
    if (fresh.length > 0) {
      const flights = this.#start(fresh);
      for (const flight of flights) answers.set(flight.key, flight.answer.promise);
      this.#launch(flights, { call: batch(loader), options, plan, eager: false });
    }
    return answers;
  }

  /**
   * On a getOrSet hit: starts a background refresh when the entry is in the last part of its
   * life. L1's share of the life is measured against the memory tier's TTL, so a short L1 copy
   * of a long-lived value refreshes from the tier below, not from the origin.
   */
  eagerCheck(
    key: string,
    entry: Entry,
    loader: Loader<unknown>,
    options: GetOrSetOptions | undefined,
    l1Life: number,
  ): void {
    const ratio = options?.eagerRefresh ?? this.#o.plan.eagerRefresh;
    if (typeof ratio !== 'number' || !(ratio > 0 && ratio < 1) || typeof loader !== 'function') return;
    if (!isDue(entry, ratio, this.#o.readClock(), l1Life)) return;
    if (this.#flights.has(key)) return;
    let plan: LoadPlan;
    try {
      plan = this.planFor(options);
    } catch {
      return; // a bad per-call option is reported by the next call that misses
    }
    this.#refresh([key], single(loader), options, plan);
  }

  /**
   * getManyOrSet's eager refresh: its L1 hits in the last part of their life are refreshed in
   * the background by one batch (a fresh copy below that is not itself due is promoted rather
   * than loaded). Keys already loading, or backing off from a failing loader, are left alone.
   */
  refreshDue(
    due: Iterable<string>,
    loader: BatchLoader<unknown>,
    options: GetOrSetOptions | undefined,
    plan: LoadPlan,
  ): void {
    const keys = [...due].filter((key) => !this.#flights.has(key) && !this.#backoff.active(key));
    this.#refresh(keys, batch(loader), options, plan);
  }

  /** The cache's load plan, or the call's options resolved over it. */
  planFor(options: GetOrSetOptions | undefined): LoadPlan {
    const base = this.#o.plan;
    if (
      options === undefined ||
      (options.grace === undefined &&
        options.failSafe === undefined &&
        options.softTimeout === undefined &&
        options.hardTimeout === undefined &&
        options.eagerRefresh === undefined &&
        options.lock === undefined)
    ) {
      return base;
    }
    const plan = resolvePlan(options, base);
    if (plan.lock && this.#o.lock === undefined) throw new InvalidOptionError('lock', NO_LOCK_TIER);
    return plan;
  }

  /** After close()'s wait: callers still waiting on a load get CacheClosedError. */
  abandon(): void {
    for (const flight of this.#flights.values()) {
      if (flight.answered) continue;
      flight.answered = true;
      flight.answer.reject(new CacheClosedError('wait for a load'));
    }
  }

  // --- a run ------------------------------------------------------------------------------------

  /**
   * The key's flight, if a caller may join it: one still waiting for its answer, or one that
   * answered early from a kept copy while nothing has written or invalidated the key since (the
   * fill guard's ticket). After a write, that stale answer is older than what the writer
   * acknowledged: the caller starts a new flight instead.
   */
  #joinable(key: string): Flight | undefined {
    const flight = this.#flights.get(key);
    if (flight === undefined) return undefined;
    return !flight.answered || this.#o.guard.isCurrent(flight.ticket) ? flight : undefined;
  }

  /** A caller joining `flight`; one that already answered from its kept copy serves it stale. */
  #join(flight: Flight): Promise<unknown> {
    if (flight.stale !== undefined) this.#countStale(flight.key, flight.stale);
    return flight.answer.promise;
  }

  #countStale(key: string, reason: StaleReason): void {
    this.#o.counters.staleServed++;
    this.#o.events.emit('stale', { key, reason });
  }

  #checkCycle(key: string): void {
    const chain = this.#chain.getStore();
    if (chain !== undefined && chain.includes(key)) throw new LoaderCycleError(key, chain);
  }

  #start(keys: readonly string[]): Flight[] {
    return keys.map((key) => {
      const flight: Flight = {
        key,
        ticket: this.#o.guard.begin(key),
        answer: defer(),
        answered: false,
        kept: undefined,
        keptTier: '',
        suspect: false,
        info: { entry: undefined, tier: '' },
        refresh: undefined,
        stale: undefined,
        leases: [],
      };
      this.#flights.set(key, flight);
      this.#infos.set(flight.answer.promise, flight.info);
      return flight;
    });
  }

  #refresh(keys: readonly string[], call: Call, options: GetOrSetOptions | undefined, plan: LoadPlan): void {
    if (keys.length === 0 || this.#o.closed()) return;
    const flights = this.#start(keys);
    for (const flight of flights) {
      flight.refresh = 'eager';
      this.#o.counters.refreshes++;
      this.#o.events.emit('refresh', { key: flight.key, reason: 'eager' });
      // Its failure is reported by #fail; a caller that joined sees it as its own rejection.
      flight.answer.promise.catch(noop);
    }
    this.#launch(flights, { call, options, plan, eager: true });
  }

  /** Runs the flights' load in the background (close() waits for it); it never rejects. */
  #launch(flights: readonly Flight[], run: Run): void {
    const work = this.#run(flights, run).finally(() => {
      for (const flight of flights) {
        this.#end(flight);
        this.#o.guard.end(flight.ticket);
      }
    });
    this.#o.track(work);
  }

  async #run(flights: readonly Flight[], run: Run): Promise<void> {
    try {
      const { plan, eager } = run;
      const { stack } = this.#o;
      const keep = plan.keep > 0 && !eager;
      if (keep && stack.store !== undefined) {
        const at = this.#o.clock();
        for (const flight of flights) {
          flight.kept = stack.store.peekStale(flight.key, at);
          if (flight.kept === undefined && plan.failSafe) {
            flight.kept = stack.store.peekSuspect(flight.key, at);
            flight.suspect = flight.kept !== undefined;
          }
          flight.keptTier = stack.memory!.name;
        }
      }
      // A kept L1 copy within grace answers before any remote read; the load goes on behind it.
      let pending = this.#judgeKept(flights, plan);
      if (stack.remotes.length > 0) pending = await this.#readBelow(pending, run, keep);
      pending = this.#judgeKept(pending, plan);
      const closed = this.#o.closed();
      const load = pending.filter((flight) => {
        if (this.#backoff.active(flight.key)) {
          // A refresh leaves a failing loader alone; a caller gets the kept copy under fail-safe.
          if (flight.answered || eager) return false;
          if (plan.failSafe && flight.kept !== undefined) {
            this.#serveKept(flight, 'backoff');
            return false;
          }
        }
        // After close() nothing new is refreshed; callers still waiting are still answered.
        return !(closed && flight.answered);
      });
      if (load.length > 0) await this.#load(load, run);
    } catch (error) {
      // A fault under tierErrors:'throw' (a read, a lock), or a bug: every caller still waiting
      // hears it rather than waiting forever.
      for (const flight of flights)
        this.#reject(flight, isCacheError(error) ? error : new LoaderError(flight.key, error));
    }
  }

  /**
   * Drops kept copies past the plan's keep, answers from those within grace (the load goes on
   * as their refresh), and answers at once from a kept copy that is still live. Returns the
   * flights that still load.
   */
  #judgeKept(flights: readonly Flight[], plan: LoadPlan): Flight[] {
    const at = this.#o.clock();
    const next: Flight[] = [];
    for (const flight of flights) {
      const kept = flight.kept;
      if (kept !== undefined && !flight.answered) {
        if (at >= kept.expiresAt + plan.keep) {
          flight.kept = undefined;
        } else if (flight.suspect) {
          // Kept for a failed load alone: never a hit, nor a grace answer.
        } else if (kept.expiresAt > at) {
          // Live after all (it did not expire yet when peeked): it is the answer.
          this.#found(flight, { entry: kept, tier: flight.keptTier });
          continue;
        } else if (at < kept.expiresAt + plan.grace) {
          this.#serveKept(flight, 'grace');
          flight.refresh = 'grace';
          this.#o.counters.refreshes++;
          this.#o.events.emit('refresh', { key: flight.key, reason: 'grace' });
        }
      }
      next.push(flight);
    }
    return next;
  }

  /** Reads the remote tiers for `flights`; returns those still to load. */
  async #readBelow(flights: readonly Flight[], run: Run, keep: boolean): Promise<Flight[]> {
    const { stack, clock } = this.#o;
    const due = (entry: Entry): boolean => run.eager && isDue(entry, run.plan.eagerRefresh, clock(), FOREVER);
    if (flights.length === 1) {
      const flight = flights[0]!;
      const slot: StaleSlot | undefined = keep ? { entry: flight.kept, tier: flight.keptTier } : undefined;
      const found = await stack.read(flight.key, flight.ticket, slot, flight.leases);
      if (slot !== undefined) this.#keepBelow(flight, slot);
      if (found === undefined || due(found.entry)) return [flight];
      this.#found(flight, found);
      return [];
    }
    const slots = keep
      ? new Map(flights.map((f) => [f.key, { entry: f.kept, tier: f.keptTier }]))
      : undefined;
    const found = await stack.readMany(
      flights.map((flight) => flight.ticket),
      slots,
      new Map(flights.map((flight) => [flight.key, flight.leases])),
    );
    const next: Flight[] = [];
    for (const flight of flights) {
      const slot = slots?.get(flight.key);
      if (slot !== undefined) this.#keepBelow(flight, slot);
      const hit = found.get(flight.key);
      if (hit === undefined || due(hit.entry)) next.push(flight);
      else this.#found(flight, hit);
    }
    return next;
  }

  /** Takes the kept copy a remote read left in `slot`: a newer one from below is no suspect. */
  #keepBelow(flight: Flight, slot: StaleSlot): void {
    if (slot.entry !== flight.kept) flight.suspect = false;
    flight.kept = slot.entry;
    flight.keptTier = slot.tier;
  }

  /**
   * The loader call for `flights`, after the distributed lock when the plan has it on: every
   * key's lock is tried at once; one loader call serves the keys won (and those whose lock could
   * not be reached), while the rest wait for their holders' values; what the waits leave
   * (holders that wrote nothing in time, locks won later) loads in a second call.
   */
  async #load(flights: readonly Flight[], run: Run): Promise<void> {
    const seat = this.#o.lock;
    if (!run.plan.lock || seat === undefined) return this.#call(flights, run, undefined);
    // The tier's breaker already knows Redis is gone: no lock round trip to time out on.
    if (this.#o.stack.remotes[seat.tier]!.health?.().breaker?.state === 'open')
      return this.#call(flights, run, undefined);
    const giveUpAt = Date.now() + seat.lock.options.wait;
    const first = await Promise.all(flights.map((flight) => this.#attempt(flight, seat)));
    const busy = flights.filter((_, i) => first[i] === 'busy');
    await Promise.all([
      this.#callWith(flights, first, run),
      Promise.all(busy.map((flight) => this.#wait(flight, seat, giveUpAt))).then((outcomes) =>
        this.#callWith(busy, outcomes, run),
      ),
    ]);
  }

  /** The loader call for the flights whose lock outcome says they load (a lease, or no lock). */
  #callWith(flights: readonly Flight[], outcomes: readonly LockOutcome[], run: Run): Promise<void> {
    const load: Flight[] = [];
    const leases = new Map<string, Lease>();
    flights.forEach((flight, i) => {
      const outcome = outcomes[i]!;
      if (outcome === 'busy' || outcome === 'done') return;
      load.push(flight);
      if (outcome !== null) leases.set(flight.key, outcome);
    });
    return this.#call(load, run, leases);
  }

  /**
   * One try at `flight`'s lock: the lease (after checking that the holder before us did not
   * just write the value), 'busy', 'done' when that value was there, or null when the lock could
   * not be reached (the caller loads without it).
   */
  async #attempt(flight: Flight, seat: LockSeat): Promise<LockOutcome> {
    const { counters, events } = this.#o;
    let lease: Lease | undefined;
    try {
      lease = await seat.lock.acquire(flight.key);
    } catch (error) {
      events.emit('lock', { key: flight.key, outcome: 'failed' });
      this.#o.stack.fault(seat.tier, 'lock', error, flight.key, false);
      return null;
    }
    if (lease === undefined) return 'busy';
    counters.lockAcquired++;
    events.emit('lock', { key: flight.key, outcome: 'acquired' });
    const found = await this.#o.stack.read(flight.key, flight.ticket, undefined, flight.leases);
    if (found === undefined) return lease;
    this.#found(flight, found);
    this.#release(seat, lease);
    return 'done';
  }

  /**
   * Waits for the instance holding `flight`'s lock to write the value: polls the tiers (woken
   * early by a write this instance hears of), retries the lock, and gives up at `giveUpAt`
   * (null: load without the lock).
   */
  async #wait(flight: Flight, seat: LockSeat, giveUpAt: number): Promise<LockOutcome> {
    const { counters, events, wakes, stack } = this.#o;
    counters.lockWaited++;
    events.emit('lock', { key: flight.key, outcome: 'waited' });
    for (;;) {
      if (Date.now() >= giveUpAt) {
        counters.lockTimedOut++;
        events.emit('lock', { key: flight.key, outcome: 'timedOut' });
        return null;
      }
      await wakes.sleep(flight.key, seat.lock.options.poll);
      const found = await stack.read(flight.key, flight.ticket, undefined, flight.leases);
      if (found !== undefined) {
        this.#found(flight, found);
        return 'done';
      }
      const outcome = await this.#attempt(flight, seat);
      if (outcome !== 'busy') return outcome;
    }
  }

  /**
   * One loader call for `flights` and the write of its results; `leases` are renewed while it
   * runs and released after the write, so waiters polling the tier find the value first.
   */
  async #call(
    flights: readonly Flight[],
    run: Run,
    leases: ReadonlyMap<string, Lease> | undefined,
  ): Promise<void> {
    if (flights.length === 0) return;
    const { plan, options, call } = run;
    const { counters, events, clock, stack } = this.#o;
    const seat = this.#o.lock;
    const letGo = leases === undefined ? [] : [...leases.values()].map((lease) => seat!.lock.hold(lease));
    const timers = this.#timeouts(flights, plan);
    try {
      counters.loaderCalls++;
      const keys = flights.map((flight) => flight.key);
      const context = new LoadContext(keys[0]!);
      const chain = [...(this.#chain.getStore() ?? []), ...keys];
      const started = now();
      const loadStart = clock();
      let loaded: unknown;
      this.#loading++;
      try {
        loaded = await this.#chain.run(chain, () => call.run(keys, context));
      } catch (error) {
        counters.loaderErrors++;
        for (const flight of flights) {
          const failure = new LoaderError(flight.key, error);
          events.emit('loaderError', { key: flight.key, error: failure });
          this.#fail(flight, failure, plan);
        }
        return;
      } finally {
        counters.timeLoader(now() - started);
        if (--this.#loading === 0) this.#chain.disable();
      }
      for (const key of keys) this.#backoff.clear(key);
      const values = call.values(keys, loaded);
      const loadedAt = clock();
      const written = new Map<string, Entry>();
      if (!context.skipped && !this.#o.closed()) {
        const own = withOverrides(options, context.overrides);
        const createdAt = own?.tags === undefined ? undefined : loadStart;
        const items: WriteItem[] = [];
        flights.forEach((flight, i) => {
          if (!this.#o.cacheable(values[i])) return;
          items.push({
            key: flight.key,
            value: values[i],
            options: own,
            keep: plan.keep,
            ...(createdAt === undefined ? {} : { createdAt }),
          });
        });
        if (items.length > 0)
          await stack.fill(
            items,
            new Map(flights.map((f) => [f.key, f.ticket])),
            new Map(flights.map((f) => [f.key, f.leases])),
            written,
          );
      }
      flights.forEach((flight, i) => {
        if (flight.answered) return;
        flight.info.tier = 'origin';
        flight.info.entry = written.get(flight.key) ?? {
          value: values[i],
          createdAt: loadedAt,
          expiresAt: loadedAt,
        };
        this.#answer(flight, values[i]);
      });
    } catch (error) {
      // A result that cannot be encoded, a bad batch shape, a tier fault under tierErrors:'throw'.
      for (const flight of flights)
        this.#fail(flight, isCacheError(error) ? error : new LoaderError(flight.key, error), plan);
    } finally {
      for (const timer of timers) clearTimeout(timer);
      for (const release of letGo) release();
      if (leases !== undefined) for (const lease of leases.values()) this.#release(seat!, lease);
    }
  }

  /**
   * The loader call's soft and hard timeouts, per key: at `softTimeout` a key with a kept copy
   * is answered from it, at `hardTimeout` every key still waiting fails with a
   * LoaderTimeoutError. The call goes on either way, and its late result is still written.
   */
  #timeouts(flights: readonly Flight[], plan: LoadPlan): NodeJS.Timeout[] {
    const timers: NodeJS.Timeout[] = [];
    if (plan.softTimeout !== FOREVER && flights.some((f) => f.kept !== undefined && !f.answered)) {
      timers.push(
        setTimeout(() => {
          for (const flight of flights) {
            if (flight.kept === undefined || flight.answered || flight.suspect) continue;
            this.#timedOut(flight.key, 'soft');
            this.#serveKept(flight, 'softTimeout');
          }
        }, plan.softTimeout),
      );
    }
    if (plan.hardTimeout !== FOREVER) {
      timers.push(
        setTimeout(() => {
          for (const flight of flights) {
            if (flight.answered) continue;
            this.#timedOut(flight.key, 'hard');
            this.#fail(flight, new LoaderTimeoutError(flight.key, plan.hardTimeout), plan);
          }
        }, plan.hardTimeout),
      );
    }
    return timers;
  }

  // --- answers ----------------------------------------------------------------------------------

  #found(flight: Flight, found: Found): void {
    if (flight.answered) return;
    flight.info.entry = found.entry;
    flight.info.tier = found.tier;
    this.#answer(flight, found.entry.value);
  }

  /**
   * Answers the flight's callers. A final answer also ends the flight for callers to come, who
   * start a new one; an early answer from a kept copy leaves it open (its load goes on, and
   * callers meanwhile join it rather than load the key again).
   */
  #answer(flight: Flight, value: unknown, final = true): void {
    if (flight.answered) return;
    flight.answered = true;
    if (final) this.#end(flight);
    flight.answer.resolve(value);
  }

  #reject(flight: Flight, error: CacheError): void {
    if (flight.answered) return;
    flight.answered = true;
    this.#end(flight);
    flight.answer.reject(error);
  }

  #end(flight: Flight): void {
    if (this.#flights.get(flight.key) === flight) this.#flights.delete(flight.key);
  }

  /** Answers from the kept copy, counted as stale served; getOrSetEntry then describes it. */
  #serveKept(flight: Flight, reason: StaleReason): void {
    if (flight.answered) return;
    this.#countStale(flight.key, reason);
    flight.stale = reason;
    flight.info.entry = flight.kept;
    flight.info.tier = flight.keptTier;
    this.#answer(flight, flight.kept!.value, reason !== 'grace' && reason !== 'softTimeout');
  }

  /**
   * A failed (or timed-out) load of `flight`: under fail-safe it backs off from the loader and
   * answers from its kept copy; a refresh's failure is reported; else the callers get `error`.
   */
  #fail(flight: Flight, error: CacheError, plan: LoadPlan): void {
    if (plan.failSafe) this.#backoff.start(flight.key, plan.backoff);
    if (flight.refresh !== undefined) {
      // Once: a hard timeout and the loader's own late failure are one failed refresh.
      this.#refreshFailed(flight.key, flight.refresh, error);
      flight.refresh = undefined;
    }
    if (flight.answered) return;
    if (plan.failSafe && flight.kept !== undefined) this.#serveKept(flight, 'failSafe');
    else this.#reject(flight, error);
  }

  #refreshFailed(key: string, reason: RefreshReason, cause: CacheError): void {
    const { counters, events, faults } = this.#o;
    counters.refreshErrors++;
    events.emit('refreshFailed', { key, reason, error: cause });
    faults.report(cause, false);
  }

  #timedOut(key: string, kind: 'soft' | 'hard'): void {
    if (kind === 'soft') this.#o.counters.softTimeouts++;
    else this.#o.counters.hardTimeouts++;
    this.#o.events.emit('loaderTimeout', { key, kind });
  }

  #release(seat: LockSeat, lease: Lease): void {
    this.#o.track(seat.lock.release(lease).then(noop, noop));
  }
}

/** A lock try's outcome: a lease, 'busy' (held elsewhere), 'done' (the value is there), null (no lock). */
type LockOutcome = Lease | 'busy' | 'done' | null;

interface Deferred {
  promise: Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

function defer(): Deferred {
  let resolve!: (value: unknown) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<unknown>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function noop(): void {}

/** getOrSet's loader as a call of one key. */
function single(loader: Loader<unknown>): Call {
  return { run: (_keys, context) => loader(context), values: (_keys, loaded) => [loaded] };
}

/** getManyOrSet's loader as a call. */
function batch(loader: BatchLoader<unknown>): Call {
  return { run: (keys, context) => loader(keys, context), values: valuesOf };
}

function valuesOf(keys: readonly string[], loaded: unknown): unknown[] {
  if (loaded instanceof Map) return keys.map((key) => loaded.get(key) as unknown);
  if (Array.isArray(loaded)) {
    if (loaded.length !== keys.length) {
      throw new InvalidValueError(
        keys[0]!,
        `the batch loader returned ${loaded.length} values for ${keys.length} keys`,
      );
    }
    return loaded;
  }
  if (typeof loaded === 'object' && loaded !== null)
    return keys.map((key) => (loaded as Record<string, unknown>)[key]);
  throw new InvalidValueError(
    keys[0]!,
    `the batch loader must return a Map, an object or an array, got ${describe(loaded)}`,
  );
}

/** The call's write options with a loader's overrides on top; tags from both are kept. */
function withOverrides(
  options: WriteOptions | undefined,
  overrides: WriteOptions | undefined,
): WriteOptions | undefined {
  if (overrides === undefined) return options;
  const merged = { ...options, ...overrides };
  if (options?.tags !== undefined && overrides.tags !== undefined)
    merged.tags = [...new Set([...options.tags, ...overrides.tags])];
  return merged;
}
