/**
 * Adapts the share of the cache given to W-TinyLFU's admission window by hill climbing on the
 * hit ratio, as in Caffeine (`BoundedLocalCache#climb`; Einziger et al., "Adaptive Software
 * Cache Management", Middleware 2018): after each sample period, keep moving the window in the
 * same direction while the hit ratio does not drop, reverse when it does, and shrink the step
 * geometrically so the walk settles; a large jump in hit ratio (a new workload phase) restarts
 * it with the full step.
 *
 * Caffeine samples for 10 × capacity requests with a 6.25% step. That is too slow for large
 * caches on short, recency-biased traces (Scarab at 100,000 entries makes ~1 decision in the
 * whole trace), so the defaults here sample for a shorter period and take larger first steps.
 */
export interface HillClimberSettings {
  /** Requests per sample period, as a multiple of the capacity in entries. */
  sampleFactor: number;
  /** Fewest requests per sample period, so that tiny caches do not chase noise. */
  minSample: number;
  /** Most requests per sample period. */
  maxSample: number;
  /** First (and restarted) step, as a share of the capacity. */
  initialStep: number;
  /** Smallest step before the climber rests; it wakes on a restart. */
  minStep: number;
  /** Step multiplier after each sample period without a restart. */
  stepDecay: number;
  /** Change in hit ratio between two samples that restarts the walk with the full step. */
  restartThreshold: number;
  /** Changes in hit ratio smaller than this count as "no worse" (keeps direction). */
  tolerance: number;
}

export const DEFAULT_CLIMBER: Readonly<HillClimberSettings> = Object.freeze({
  sampleFactor: 10,
  minSample: 5_000,
  maxSample: Number.POSITIVE_INFINITY,
  initialStep: 0.0625,
  minStep: 0,
  stepDecay: 0.98,
  restartThreshold: 0.05,
  tolerance: 0,
});

export class HillClimber {
  /** Hits and misses in the current sample; the policy bumps them directly (hot path). */
  hits = 0;
  misses = 0;
  readonly #settings: HillClimberSettings;
  readonly #sampleSize: number;
  #previousHitRate = 0;
  /** Signed: the direction of the last move (positive grows the window) times its size. */
  #step: number;

  constructor(capacity: number, settings: Partial<HillClimberSettings> = {}) {
    this.#settings = { ...DEFAULT_CLIMBER, ...settings };
    const { sampleFactor, minSample, maxSample, initialStep } = this.#settings;
    const entries = Number.isFinite(capacity) ? capacity : 0;
    this.#sampleSize = Math.max(1, Math.round(Math.min(maxSample, Math.max(minSample, sampleFactor * entries))));
    // Start by shrinking, as Caffeine does: most workloads favour frequency over recency, and
    // the first sample (which has no predecessor) always "improves".
    this.#step = -initialStep;
  }

  get sampleSize(): number {
    return this.#sampleSize;
  }

  /** The signed share of capacity to move into the window (negative: out of it), or 0. */
  adjust(): number {
    const requests = this.hits + this.misses;
    if (requests < this.#sampleSize) return 0;
    const { initialStep, minStep, stepDecay, restartThreshold, tolerance } = this.#settings;
    const hitRate = this.hits / requests;
    const change = hitRate - this.#previousHitRate;
    const amount = change >= -tolerance ? this.#step : -this.#step;
    const direction = amount >= 0 ? 1 : -1;
    this.#step = Math.abs(change) >= restartThreshold ? direction * initialStep : stepDecay * amount;
    if (Math.abs(this.#step) < minStep) this.#step = direction * minStep;
    this.#previousHitRate = hitRate;
    this.hits = 0;
    this.misses = 0;
    return amount;
  }

  reset(): void {
    this.hits = 0;
    this.misses = 0;
    this.#previousHitRate = 0;
    this.#step = -this.#settings.initialStep;
  }
}
