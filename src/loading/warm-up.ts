import { InvalidOptionError, InvalidValueError, describe } from '../errors.js';
import { checkWarmOptions, checkWriteOptions, type WriteOptions } from '../options.js';
import type { WriteItem } from '../tiers/tier-stack.js';

export interface WarmOptions {
  /** Keys per round trip. @default 500 */
  batchSize?: number;
  /** Called after every batch with the counts so far. */
  onProgress?: (progress: WarmProgress) => void;
}

export interface WarmTagsOption<T> {
  /** Tags of each item's entry, added to the call's `tags` (see `invalidateTags`). */
  tagsOf?: (item: T) => readonly string[];
}

export interface WarmProgress {
  /** Keys (or items) handled so far. */
  processed: number;
  /** Of those, how many were found in a remote tier (`warm`) or written (`warmFrom`). */
  loaded: number;
}

/** What warm-up needs of a cache: its key rules, its tiers' names, a batched read and write. */
export interface WarmTarget {
  readonly names: readonly string[];
  checkKey(key: string): void;
  checkKeys(keys: readonly string[]): void;
  /** Reads `keys` through the tiers (promoting what it finds); how many were found. */
  readMany(keys: readonly string[]): Promise<number>;
  /** Writes `items` to every tier, as setMany does. */
  write(items: readonly WriteItem[]): Promise<void>;
}

/** TierCache.warm: reads `keys` through the tiers, `batchSize` a round trip. */
export async function warmKeys(
  target: WarmTarget,
  keys: Iterable<string>,
  options: WarmOptions,
): Promise<WarmProgress> {
  const batchSize = checkWarmOptions(options, 'warm');
  const progress: WarmProgress = { processed: 0, loaded: 0 };
  for (const batch of batches(keys, batchSize)) {
    target.checkKeys(batch);
    progress.loaded += await target.readMany(batch);
    progress.processed += batch.length;
    options.onProgress?.({ ...progress });
  }
  return progress;
}

/** TierCache.warmFrom: writes each item of `source` under `keyOf(item)`, `batchSize` a round trip. */
export async function warmFrom<T>(
  target: WarmTarget,
  source: Iterable<T> | AsyncIterable<T>,
  keyOf: (item: T) => string,
  options: WarmOptions & WriteOptions & WarmTagsOption<T>,
): Promise<WarmProgress> {
  if (typeof keyOf !== 'function')
    throw new InvalidOptionError('keyOf', `expected a function of an item, got ${describe(keyOf)}`);
  const batchSize = checkWarmOptions(options, 'warmFrom');
  const { ttl, jitter, writeTo, tags, tagsOf } = options;
  if (tagsOf !== undefined && typeof tagsOf !== 'function')
    throw new InvalidOptionError('tagsOf', `expected a function of an item, got ${describe(tagsOf)}`);
  const write: WriteOptions | undefined =
    ttl === undefined && jitter === undefined && writeTo === undefined && tags === undefined
      ? undefined
      : {
          ...(ttl === undefined ? {} : { ttl }),
          ...(jitter === undefined ? {} : { jitter }),
          ...(writeTo === undefined ? {} : { writeTo }),
          ...(tags === undefined ? {} : { tags }),
        };
  if (write !== undefined) checkWriteOptions('warmFrom', write, target.names, 'warmFrom');
  // Per item: the call's tags and the item's own.
  const optionsOf = (item: T): WriteOptions | undefined => {
    if (tagsOf === undefined) return write;
    const own = { ...write, tags: [...(tags ?? []), ...tagsOf(item)] };
    checkWriteOptions('warmFrom', own, target.names, 'warmFrom');
    return own;
  };
  const progress: WarmProgress = { processed: 0, loaded: 0 };
  let batch: WriteItem[] = [];
  const flush = async (): Promise<void> => {
    await target.write(batch);
    progress.processed += batch.length;
    progress.loaded += batch.length;
    batch = [];
    options.onProgress?.({ ...progress });
  };
  for await (const item of source) {
    const key = keyOf(item);
    target.checkKey(key);
    if (item === undefined) throw new InvalidValueError(key, 'undefined cannot be stored');
    batch.push({ key, value: item, options: optionsOf(item) });
    if (batch.length >= batchSize) await flush();
  }
  if (batch.length > 0) await flush();
  return progress;
}

function* batches(keys: Iterable<string>, size: number): Generator<string[]> {
  let batch: string[] = [];
  for (const key of keys) {
    batch.push(key);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}
