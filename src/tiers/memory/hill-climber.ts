/**
 * Adapting W-TinyLFU's window: how much of the capacity goes to the recency-ordered admission
 * window rather than the frequency-filtered main space. The policy reports requests and
 * evictions; `adjust` answers, from time to time, with a signed share of the capacity to move
 * into (positive) or out of (negative) the window.
 *
 * Two climbers:
 *
 * - `GhostClimber` (the default) walks towards the window size where the marginal hit rates of
 *   window and main are equal, measured in the same sample period. A small direct-mapped table of
 *   recently evicted key hashes ("ghosts", as in ARC, Megiddo and Modha, FAST'03) is tagged by
 *   where each key was evicted from. A miss on a *window ghost* (a candidate the filter just
 *   rejected) is a hit a slightly larger window would have had; a miss on a *main ghost* (a
 *   victim just evicted from main) is one a slightly larger main would have had. To first order,
 *   growing the window by Δ gains `windowGhostHits / allEvictions · Δ` (every miss flows through
 *   the window) and shrinking main by Δ loses `mainGhostHits / mainEvictions · Δ`, so the walk
 *   goes where the larger of the two points. Each period ends on evidence, not on a request
 *   count: once the split of ghost hits is significant under a binomial test (or is still
 *   ambiguous after `maxEvidence` hits, which holds), so small and large caches decide on equally
 *   strong evidence and a clear signal acts within a few thousand requests. The step grows while
 *   the direction holds and halves when it flips (Rprop, Riedmiller and Braun 1993), and after
 *   each move the statistics wait for the regions to turn over (`settle`), so the climber does
 *   not chase the transient its own move caused.
 *
 *   Why not compare hit ratios across periods, as Caffeine does? On real traces the hit ratio
 *   drifts between periods by as much as a window step changes it (OLTP's phases swing it from
 *   14% to 33%), so that walk is mostly noise; Caffeine's own samples (10 × capacity requests)
 *   are too long for a 100,000-entry cache to adapt within the Scarab trace at all. Comparing two
 *   marginal rates measured over the same requests cancels the drift.
 *
 * - `HitRatioClimber` is Caffeine's (`BoundedLocalCache#climb`; Einziger et al., "Adaptive Software
 *   Cache Management", Middleware 2018), kept for comparison in the simulator.
 */
export interface WindowClimber {
  /** A request hit (hot path: a counter bump). */
  onHit(): void;
  /** A request missed; `hash` is the key's hash. */
  onMiss(hash: number): void;
  /** A node was evicted from the window side (a rejected candidate) or from main (a victim). */
  onEvict(hash: number, fromMain: boolean): void;
  /** The share of capacity to move into the window (negative: out of it), or 0 for no change. */
  adjust(): number;
  reset(): void;
  /** Bytes of bookkeeping the climber holds (its ghost table). */
  readonly byteSize: number;
}

export interface GhostClimberSettings {
  /** Ghost table slots, as a share of the capacity in entries (at least 16 slots). */
  ghostShare: number;
  /** Fewest ghost hits before a decision. */
  minEvidence: number;
  /** Ghost hits after which a period without a significant difference ends, holding. */
  maxEvidence: number;
  /** z-score at which the two marginal rates count as different. */
  significance: number;
  /**
   * Evictions, as a multiple of the ghost slots, after which a period with at most one ghost
   * hit ends as "blind" (nothing evicted comes back within the ghosts' horizon).
   */
  blindPeriod: number;
  /** First step, as a share of the capacity. */
  initialStep: number;
  minStep: number;
  maxStep: number;
  /** Evictions ignored after a move, as a multiple of the entries moved (the regions settle). */
  settle: number;
  /** Step multiplier while the direction holds, and when it flips. */
  grow: number;
  shrink: number;
}

export const DEFAULT_GHOST_CLIMBER: Readonly<GhostClimberSettings> = Object.freeze({
  ghostShare: 1 / 16,
  minEvidence: 30,
  maxEvidence: 400,
  significance: 1.5,
  settle: 2,
  blindPeriod: 64,
  initialStep: 0.05,
  minStep: 0.005,
  maxStep: 0.2,
  grow: 1.5,
  shrink: 0.5,
});

const WINDOW_GHOST = 1;
const MAIN_GHOST = 2;

export class GhostClimber implements WindowClimber {
  readonly #settings: GhostClimberSettings;
  readonly #blindEvictions: number;
  readonly #capacity: number;
  #settling = 0;
  readonly #ghosts: Int32Array;
  readonly #shift: number;
  #windowGhostHits = 0;
  #mainGhostHits = 0;
  #windowEvictions = 0;
  #mainEvictions = 0;
  #step: number;
  #direction = 0;

  constructor(capacity: number, settings: Partial<GhostClimberSettings> = {}) {
    this.#settings = { ...DEFAULT_GHOST_CLIMBER, ...settings };
    const { ghostShare, blindPeriod, initialStep } = this.#settings;
    const slots = Math.max(16, 2 ** Math.ceil(Math.log2(Math.max(1, capacity * ghostShare))));
    this.#ghosts = new Int32Array(slots);
    this.#shift = 32 - Math.log2(slots);
    this.#blindEvictions = blindPeriod * slots;
    this.#capacity = capacity;
    this.#step = initialStep;
  }

  /** Bytes of the ghost table. */
  get byteSize(): number {
    return this.#ghosts.byteLength;
  }

  onHit(): void {}

  onMiss(hash: number): void {
    const slot = Math.imul(hash, 0x9e3779b1) >>> this.#shift;
    const ghost = this.#ghosts[slot]!;
    // The low two bits tag the ghost's kind; the rest must match the key's hash.
    if (ghost === 0 || (ghost ^ hash) >>> 2 !== 0) return;
    this.#ghosts[slot] = 0;
    if (this.#settling > 0) return;
    if ((ghost & 3) === WINDOW_GHOST) this.#windowGhostHits++;
    else this.#mainGhostHits++;
  }

  onEvict(hash: number, fromMain: boolean): void {
    const slot = Math.imul(hash, 0x9e3779b1) >>> this.#shift;
    this.#ghosts[slot] = (hash & ~3) | (fromMain ? MAIN_GHOST : WINDOW_GHOST);
    if (this.#settling > 0) {
      this.#settling--;
      return;
    }
    if (fromMain) this.#mainEvictions++;
    else this.#windowEvictions++;
  }

  adjust(): number {
    const windowHits = this.#windowGhostHits;
    const mainHits = this.#mainGhostHits;
    const hits = windowHits + mainHits;
    const evictions = this.#windowEvictions + this.#mainEvictions;
    const mainEvictions = this.#mainEvictions;
    const { minEvidence, maxEvidence, significance } = this.#settings;
    let direction = 0;
    if (hits <= 1 && evictions >= this.#blindEvictions) {
      // Many evictions and (almost) no evicted key came back: no sign that recency pays, so
      // lean towards frequency. This leaves states where the ghosts see nothing, e.g. a loop
      // longer than the cache with a large window (nothing evicted returns within the ghosts'
      // horizon, and the window never hits).
      direction = -1;
    } else if (hits < minEvidence) {
      return 0;
    } else if (mainEvictions === 0) {
      // Main evicted nothing: the filter rejected every candidate, so there is no measure of
      // main's marginal value; in a loop over slightly more keys than fit, growing the window
      // would only break the set main holds.
      if (hits < maxEvidence) return 0;
    } else {
      // If both sides had the same marginal rate, a ghost hit would be a window ghost with
      // probability q (window ghosts are weighed per eviction of any kind, main ghosts per main
      // eviction; see above). Decide as soon as the split is significant; hold if it never is.
      const q = evictions / (evictions + mainEvictions);
      const z = (windowHits - hits * q) / Math.sqrt(hits * q * (1 - q));
      if (z >= significance) direction = 1;
      else if (z <= -significance) direction = -1;
      else if (hits < maxEvidence) return 0;
    }
    this.#windowGhostHits = this.#mainGhostHits = 0;
    this.#windowEvictions = this.#mainEvictions = 0;
    if (direction === 0) return this.#hold();
    const { initialStep, minStep, maxStep, grow, shrink } = this.#settings;
    if (this.#direction === 0) this.#step = initialStep;
    else if (direction === this.#direction) this.#step = Math.min(maxStep, this.#step * grow);
    else this.#step = Math.max(minStep, this.#step * shrink);
    this.#direction = direction;
    this.#settling = Math.round(this.#settings.settle * this.#step * this.#capacity);
    return direction * this.#step;
  }

  #hold(): number {
    this.#step = Math.max(this.#settings.minStep, this.#step * this.#settings.shrink);
    return 0;
  }

  reset(): void {
    this.#ghosts.fill(0);
    this.#windowGhostHits = this.#mainGhostHits = 0;
    this.#windowEvictions = this.#mainEvictions = 0;
    this.#step = this.#settings.initialStep;
    this.#direction = 0;
    this.#settling = 0;
  }
}

export interface HitRatioClimberSettings {
  /** Requests per sample period, as a multiple of the capacity (Caffeine: 10). */
  sampleFactor: number;
  /** First (and restarted) step, as a share of the capacity (Caffeine: 0.0625). */
  initialStep: number;
  /** Step multiplier after each period without a restart (Caffeine: 0.98). */
  stepDecay: number;
  /** Change in hit ratio between two periods that restarts the walk (Caffeine: 0.05). */
  restartThreshold: number;
}

export const DEFAULT_HIT_RATIO_CLIMBER: Readonly<HitRatioClimberSettings> = Object.freeze({
  sampleFactor: 10,
  initialStep: 0.0625,
  stepDecay: 0.98,
  restartThreshold: 0.05,
});

export class HitRatioClimber implements WindowClimber {
  readonly #settings: HitRatioClimberSettings;
  readonly #sampleSize: number;
  #hits = 0;
  #misses = 0;
  #previousHitRate = 0;
  /** Signed: direction of the last move (positive grows the window) times its size. */
  #step: number;

  constructor(capacity: number, settings: Partial<HitRatioClimberSettings> = {}) {
    this.#settings = { ...DEFAULT_HIT_RATIO_CLIMBER, ...settings };
    this.#sampleSize = Math.max(100, Math.round(this.#settings.sampleFactor * capacity));
    this.#step = -this.#settings.initialStep;
  }

  readonly byteSize = 0;

  onHit(): void {
    this.#hits++;
  }

  onMiss(_hash: number): void {
    this.#misses++;
  }

  onEvict(_hash: number, _fromMain: boolean): void {}

  adjust(): number {
    const requests = this.#hits + this.#misses;
    if (requests < this.#sampleSize) return 0;
    const { initialStep, stepDecay, restartThreshold } = this.#settings;
    const hitRate = this.#hits / requests;
    const change = hitRate - this.#previousHitRate;
    const amount = change >= 0 ? this.#step : -this.#step;
    this.#step = Math.abs(change) >= restartThreshold ? Math.sign(amount) * initialStep : stepDecay * amount;
    this.#previousHitRate = hitRate;
    this.#hits = this.#misses = 0;
    return amount;
  }

  reset(): void {
    this.#hits = this.#misses = 0;
    this.#previousHitRate = 0;
    this.#step = -this.#settings.initialStep;
  }
}
