import { InvalidKeyError } from '../errors.js';
import { isReserved, RESERVED_KEY_PREFIXES } from '../sync/reserved-keys.js';

/**
 * The key rules every public call applies: a non-empty string, not in the reserved spaces, at
 * most `maxKeyBytes` UTF-8 bytes. Built once per cache so the hot path knows which keys are
 * too short to need byte counting.
 */
export class KeyRules {
  readonly maxKeyBytes: number;
  /** Keys up to this many UTF-16 units cannot exceed maxKeyBytes, so they skip byte counting. */
  readonly shortKey: number;

  constructor(maxKeyBytes: number) {
    this.maxKeyBytes = maxKeyBytes;
    this.shortKey = Math.floor(maxKeyBytes / 3);
  }

  check(key: unknown): asserts key is string {
    if (typeof key !== 'string') throw new InvalidKeyError(key, `expected a string, got ${typeof key}`);
    if (key.length === 0) throw new InvalidKeyError(key, 'a key cannot be empty');
    if (isReserved(key)) {
      throw new InvalidKeyError(
        key,
        `keys starting with ${RESERVED_KEY_PREFIXES.map((p) => `"${p}"`).join(', ')} are reserved: tag times, namespace versions and locks live there`,
      );
    }
    if (!wellFormed(key)) {
      throw new InvalidKeyError(
        key,
        'it is not well-formed Unicode (a lone surrogate): Redis would store it as U+FFFD, one key for many',
      );
    }
    if (key.length > this.shortKey) {
      const bytes = Buffer.byteLength(key, 'utf8');
      if (bytes > this.maxKeyBytes) {
        throw new InvalidKeyError(
          key,
          `it is ${bytes} bytes long, more than maxKeyBytes (${this.maxKeyBytes})`,
        );
      }
    }
  }

  checkAll(keys: unknown): asserts keys is readonly string[] {
    if (!Array.isArray(keys)) throw new InvalidKeyError(keys, 'expected an array of keys');
    for (const key of keys) this.check(key);
  }

  /**
   * Whether `key` certainly passes `check` without running it: the L1 fast path's test. False
   * means "run check", not "invalid". It does not look for lone surrogates (that would scan the
   * key on every hit): an L1 hit can only be for a key some write checked, and the fast path's
   * misses ask {@link wellFormed} before they read a lower tier or call a loader.
   */
  plainlyValid(key: unknown): key is string {
    return (
      typeof key === 'string' &&
      key.length !== 0 &&
      key.length <= this.shortKey &&
      key.charCodeAt(0) !== 95 /* _ */
    );
  }
}

/** A lone surrogate: a high one not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Whether `text` is well-formed Unicode (String.prototype.isWellFormed, which Node 20 lacks).
 * Redis keys are bytes: ioredis encodes a lone surrogate as U+FFFD, so `'a\uD800'` and
 * `'a\uDBFF'` would be one key in Redis and two in L1. Text without surrogates, nearly all
 * keys, costs one scan by a regex with no backtracking.
 */
export function wellFormed(text: string): boolean {
  return !SURROGATE.test(text) || !LONE_SURROGATE.test(text);
}
