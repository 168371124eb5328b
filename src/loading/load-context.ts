import { InvalidTtlError } from '../errors.js';
import { parseDuration, type Duration } from '../internal/duration.js';
import type { TtlByTier, WriteOptions } from '../options.js';
import { checkTags } from '../sync/tags.js';

/**
 * Handed to a loader so it can decide how its result is cached from what it loaded: a TTL from
 * an HTTP max-age, or "do not cache this one".
 */
export interface LoaderContext {
  /** The key being loaded (for batch loaders, the first of the batch). */
  readonly key: string;
  /** Caches this result with a different life (one duration, or per tier name). */
  setTtl(ttl: Duration | TtlByTier): void;
  /** Returns this result to the callers without caching it in any tier. */
  skipCache(): void;
  /**
   * Caches this result with these tags (added to the call's `tags`), e.g. tags named after
   * the rows the loader read, so `invalidateTags` of any of them makes it a miss.
   */
  setTags(tags: readonly string[]): void;
}

export class LoadContext implements LoaderContext {
  readonly key: string;
  skipped = false;
  overrides: WriteOptions | undefined;

  constructor(key: string) {
    this.key = key;
  }

  setTtl(ttl: Duration | TtlByTier): void {
    // Validate now, inside the loader, so the mistake is reported where it was made.
    if (typeof ttl !== 'object') {
      const parsed = parseDuration(ttl);
      if (typeof parsed === 'string') throw new InvalidTtlError(ttl, parsed, this.key);
    }
    this.overrides = { ...this.overrides, ttl };
  }

  skipCache(): void {
    this.skipped = true;
  }

  setTags(tags: readonly string[]): void {
    const checked = checkTags(tags, 'setTags');
    const own = this.overrides?.tags ?? [];
    this.overrides = { ...this.overrides, tags: [...new Set([...own, ...checked])] };
  }
}
