import { SerializationError } from '../errors.js';

/**
 * L1's `valueMode: 'clone'` copy. structuredClone throws a DOMException for what it cannot
 * copy (functions, symbols as values, class-private state) and a RangeError for a value nested
 * too deep for the stack; either becomes a SerializationError naming the key, as every
 * error the cache raises is a CacheError.
 */
export function cloneValue(key: string, value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch (error) {
    throw new SerializationError(key, 'clone', error);
  }
}

/**
 * L1's `valueMode: 'freeze'`: freezes the value and everything it holds. Typed arrays and
 * DataViews cannot be frozen (Object.freeze throws on them), so they are left as they are, as
 * are Maps' and Sets' contents, which Object.freeze does not reach. Iterative, so a deep value
 * cannot overflow the stack.
 */
export function deepFreeze(value: unknown): void {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next !== 'object' || next === null || Object.isFrozen(next) || ArrayBuffer.isView(next))
      continue;
    Object.freeze(next);
    for (const key of Object.keys(next)) pending.push((next as Record<string, unknown>)[key]);
  }
}
