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
   * means "run check", not "invalid".
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
