/**
 * `tiercache`: what an application uses. Extension points (the remote tier contract, the guard,
 * eviction policies, bus transports) are in `tiercache/extend`; the tier conformance suite in
 * `tiercache/testing`.
 */
export { TierCache, createCache } from './cache.js';
export type {
  BatchLoader,
  Loader,
  SetManyItem,
  WarmOptions,
  WarmProgress,
  WarmTagsOption,
  WrapOptions,
} from './cache.js';
export type {
  CacheOptions,
  GetOrSetOptions,
  NegativeCachingOptions,
  Tier,
  TtlByTier,
  WriteOptions,
} from './options.js';
export { CACHE_DEFAULTS } from './options.js';
export type {
  BusOutageReason,
  CacheEvents,
  CacheEventName,
  CacheListener,
  RefreshReason,
  StaleReason,
} from './events.js';
export type { FailSafeOptions, LoadOptions, LockOptions } from './loading/load-plan.js';
export { LOAD_DEFAULTS } from './loading/load-plan.js';
export type { LoaderContext } from './loading/load-context.js';
export type { EntryInfo, RemovalReason } from './entry.js';
export type { Duration } from './internal/duration.js';
export type { Clock } from './internal/clock.js';
export { memoryTier, MemoryTier, MEMORY_TIER_DEFAULTS } from './tiers/memory/memory-tier.js';
export type { MemoryTierOptions, ValueMode } from './tiers/memory/memory-tier.js';
export { redisTier, RedisTier, REDIS_TIER_DEFAULTS } from './tiers/redis/redis-tier.js';
export type { RedisTierOptions, ReplicasOptions } from './tiers/redis/redis-tier.js';
export { COMPRESSION_DEFAULTS } from './tiers/compression.js';
export type { CompressionAlgorithm, CompressionOptions } from './tiers/compression.js';
export type { TierHealth } from './tiers/tier.js';
// The guard's and breaker's options are the Redis tier's `timeout`, `breaker`… options.
export { GUARD_DEFAULTS } from './tiers/guarded-tier.js';
export type { GuardOptions } from './tiers/guarded-tier.js';
export { BREAKER_DEFAULTS } from './tiers/circuit-breaker.js';
export type { BreakerOptions, BreakerState } from './tiers/circuit-breaker.js';
export { jsonSerializer } from './serializers/json.js';
export type { Serializer } from './serializers/serializer.js';
export type { CacheStats, TierStats, TierOperation, RemovalCounts, BusStats } from './metrics/stats.js';
export type { LatencySummary } from './metrics/histogram.js';
export { BUS_DEFAULTS } from './sync/bus-options.js';
export type { BusOptions, PubSubOptions } from './sync/bus-options.js';
export { createInvalidator } from './tiers/redis/invalidator.js';
export type { CacheNamespace } from './sync/namespaces.js';
export type { Invalidator, InvalidatorOptions } from './tiers/redis/invalidator.js';
export {
  CacheError,
  CacheClosedError,
  CorruptEntryError,
  InvalidKeyError,
  InvalidOptionError,
  InvalidTtlError,
  InvalidValueError,
  LoaderError,
  LoaderTimeoutError,
  LoaderCycleError,
  SerializationError,
  ValueTooLargeError,
  TierError,
  TierTimeoutError,
  TierUnavailableError,
  BusError,
  isCacheError,
  hasErrorCode,
} from './errors.js';
export type { CacheErrorCode, CacheErrorDetails } from './errors.js';
export { cacheControl, MAX_AGE_CAP_SECONDS } from './http/cache-control.js';
export type { CacheControlOptions } from './http/cache-control.js';
export { cacheHeaders } from './http/headers.js';
export type { CacheHeaders, HttpCacheOptions } from './http/headers.js';
export { entityTag, httpDate, isNotModified, notModifiedHeaders, valueTag } from './http/validators.js';
export type { RequestHeaders, Validators } from './http/validators.js';
