/**
 * Every error tiercache raises is a {@link CacheError} with a stable `code`. Codes are part of the
 * public API: match on them (or use the `is*` guards), not on messages, which may get clearer.
 */
export type CacheErrorCode =
  | 'E_INVALID_OPTION'
  | 'E_INVALID_KEY'
  | 'E_INVALID_TTL'
  | 'E_INVALID_VALUE'
  | 'E_SERIALIZATION'
  | 'E_VALUE_TOO_LARGE'
  | 'E_CORRUPT_ENTRY'
  | 'E_LOADER'
  | 'E_LOADER_TIMEOUT'
  | 'E_LOADER_CYCLE'
  | 'E_TIER'
  | 'E_TIER_TIMEOUT'
  | 'E_TIER_UNAVAILABLE'
  | 'E_CLOSED'
  | 'E_BUS';

// A registered symbol survives realms (vm contexts, duplicated package copies) where instanceof
// does not, so the guards below check it instead.
const BRAND = Symbol.for('tiercache.CacheError');

export interface CacheErrorDetails {
  key?: string | undefined;
  tier?: string | undefined;
  cause?: unknown;
}

export class CacheError extends Error {
  readonly code: CacheErrorCode;
  /** The cache key the error concerns, when there is one. */
  readonly key: string | undefined;
  /** The name of the tier the error came from, when there is one. */
  readonly tier: string | undefined;

  constructor(code: CacheErrorCode, message: string, details: CacheErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.key = details.key;
    this.tier = details.tier;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/** An option passed to a constructor or factory is wrong; thrown at construction. */
export class InvalidOptionError extends CacheError {
  /** Dotted path of the option, e.g. `tiers[1].ttl`. */
  readonly option: string;
  constructor(option: string, message: string) {
    super('E_INVALID_OPTION', `Invalid option "${option}": ${message}`);
    this.option = option;
  }
}

export class InvalidKeyError extends CacheError {
  constructor(key: unknown, problem: string) {
    super('E_INVALID_KEY', `Invalid cache key ${describe(key)}: ${problem}`, {
      key: typeof key === 'string' ? key : undefined,
    });
  }
}

export class InvalidTtlError extends CacheError {
  constructor(ttl: unknown, problem: string, key?: string) {
    super(
      'E_INVALID_TTL',
      `Invalid TTL ${describe(ttl)}${key === undefined ? '' : ` for key "${key}"`}: ${problem}`,
      {
        key,
      },
    );
  }
}

export class InvalidValueError extends CacheError {
  constructor(key: string, problem: string) {
    super('E_INVALID_VALUE', `Invalid value for key "${key}": ${problem}`, { key });
  }
}

/**
 * A value cannot be cached: a tier's serializer failed on it, or (no serializer named) it holds
 * something no tier keeps faithfully, found at `path` before anything was written.
 */
export class SerializationError extends CacheError {
  /** Where inside the value the problem is, e.g. `value.items[3]`, when one part is to blame. */
  readonly path: string | undefined;
  constructor(key: string, serializer: string | undefined, cause: unknown, path?: string) {
    super(
      'E_SERIALIZATION',
      serializer === undefined
        ? `Cannot cache the value for key "${key}": ${path === undefined ? '' : `${path}: `}${messageOf(cause)}`
        : `Cannot encode the value for key "${key}" with the ${serializer} serializer: ${messageOf(cause)}`,
      typeof cause === 'string' ? { key } : { key, cause },
    );
    this.path = path;
  }
}

/**
 * An encoded value is larger than a tier's `maxValueBytes`: the write was refused before
 * anything was written to any tier.
 */
export class ValueTooLargeError extends CacheError {
  /** The encoded size, in bytes. */
  readonly size: number;
  /** The tier's `maxValueBytes`. */
  readonly limit: number;
  constructor(key: string, tier: string, size: number, limit: number) {
    super(
      'E_VALUE_TOO_LARGE',
      `Value for key "${key}" is ${size} bytes encoded, more than tier "${tier}" takes (maxValueBytes ${limit}); nothing was written`,
      { key, tier },
    );
    this.size = size;
    this.limit = limit;
  }
}

/** A stored payload could not be decoded or is not a tiercache entry; it was treated as a miss. */
export class CorruptEntryError extends CacheError {
  constructor(key: string, tier: string, problem: string, cause?: unknown) {
    super('E_CORRUPT_ENTRY', `Corrupt or foreign entry for key "${key}" in tier "${tier}": ${problem}`, {
      key,
      tier,
      cause,
    });
  }
}

/** The loader threw or rejected; `cause` is what it threw. Nothing was cached. */
export class LoaderError extends CacheError {
  constructor(key: string, cause: unknown) {
    super('E_LOADER', `Loader failed for key "${key}": ${messageOf(cause)}`, { key, cause });
  }
}

/** The loader did not answer within `hardTimeout` and no stale value could stand in. */
export class LoaderTimeoutError extends CacheError {
  /** The hard timeout that passed, in ms. */
  readonly timeout: number;
  constructor(key: string, timeout: number) {
    super('E_LOADER_TIMEOUT', `Loader for key "${key}" did not answer within ${timeout} ms`, { key });
    this.timeout = timeout;
  }
}

/**
 * A loader asked for a key whose load it is part of (`a` → `a`, or `a` → `b` → `a`): that call
 * would wait on itself forever, so it fails at once. `chain` lists the keys loading, outermost
 * first.
 */
export class LoaderCycleError extends CacheError {
  readonly chain: readonly string[];
  constructor(key: string, chain: readonly string[]) {
    super(
      'E_LOADER_CYCLE',
      `Loader cycle: the loader of ${chain.map((k) => `"${k}"`).join(' → ')} asked for "${key}", which is loading in that chain and would wait on itself`,
      { key },
    );
    this.chain = chain;
  }
}

/** A tier (e.g. Redis) failed an operation; reported to `onError`, the request degraded past it. */
export class TierError extends CacheError {
  readonly operation: string;
  constructor(tier: string, operation: string, cause: unknown, key?: string) {
    super(
      'E_TIER',
      `Tier "${tier}" failed ${operation}${key === undefined ? '' : ` for key "${key}"`}: ${messageOf(cause)}`,
      {
        key,
        tier,
        cause,
      },
    );
    this.operation = operation;
  }
}

/** A tier call took longer than the tier's `timeout`; the request went on without it. */
export class TierTimeoutError extends CacheError {
  readonly operation: string;
  /** The timeout that ran out, in ms. */
  readonly timeout: number;
  constructor(tier: string, operation: string, timeout: number) {
    super('E_TIER_TIMEOUT', `Tier "${tier}" did not answer ${operation} within ${timeout} ms`, { tier });
    this.operation = operation;
    this.timeout = timeout;
  }
}

/**
 * A tier call was not attempted: the tier's circuit breaker is open (`circuit-open`), or its
 * client lost its connection and fails fast rather than queueing (`disconnected`).
 */
export class TierUnavailableError extends CacheError {
  readonly operation: string;
  readonly reason: 'circuit-open' | 'disconnected';
  constructor(tier: string, operation: string, reason: 'circuit-open' | 'disconnected') {
    super(
      'E_TIER_UNAVAILABLE',
      reason === 'circuit-open'
        ? `Tier "${tier}" skipped ${operation}: its circuit breaker is open`
        : `Tier "${tier}" skipped ${operation}: its client is not connected`,
      { tier },
    );
    this.operation = operation;
    this.reason = reason;
  }
}

/**
 * The invalidation bus could not publish (the invalidation was queued for retry) or received a
 * message it cannot read (ignored and counted). Reported to `onError`; never fails a request.
 */
export class BusError extends CacheError {
  readonly operation: string;
  /** The pub/sub channel concerned, when it is one channel (e.g. a refused SUBSCRIBE). */
  readonly channel: string | undefined;
  constructor(operation: string, cause: unknown, channel?: string) {
    super(
      'E_BUS',
      `Invalidation bus failed ${operation}${channel === undefined ? '' : ` on channel "${channel}"`}: ${messageOf(cause)}`,
      { cause },
    );
    this.operation = operation;
    this.channel = channel;
  }
}

export class CacheClosedError extends CacheError {
  constructor(operation: string) {
    super('E_CLOSED', `Cannot ${operation}: the cache is closed`);
  }
}

export function isCacheError(value: unknown): value is CacheError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

export function hasErrorCode<C extends CacheErrorCode>(
  value: unknown,
  code: C,
): value is CacheError & { code: C } {
  return isCacheError(value) && value.code === code;
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** Quotes a bad value for a message without dumping a huge object into logs. */
export function describe(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return 'an array';
  return 'an object';
}
