import { SerializationError } from '../errors.js';

/**
 * L1's `valueMode: 'clone'` copy: what a remote tier hands back, without the bytes. Unlike
 * structuredClone it keeps a Buffer a Buffer; like it (and like every remote tier) it turns
 * class instances and null-prototype objects into plain objects holding the same data. Values
 * were checked on the write path (src/internal/values.ts: no cycles, bounded depth); a value
 * too deep for the stack still ends as a SerializationError naming the key, as every error the
 * cache raises is a CacheError.
 */
export function cloneValue(key: string, value: unknown): unknown {
  try {
    return copy(value);
  } catch (error) {
    throw new SerializationError(key, 'clone', error);
  }
}

function copy(value: unknown): unknown {
  if (typeof value === 'function' || typeof value === 'symbol')
    throw new TypeError(`a ${typeof value} cannot be copied`);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copy);
  if (value instanceof Date) return new Date(value.getTime());
  if (value instanceof Map)
    return new Map([...(value as Map<unknown, unknown>)].map(([k, v]) => [copy(k), copy(v)]));
  if (value instanceof Set) return new Set([...(value as Set<unknown>)].map(copy));
  if (ArrayBuffer.isView(value)) {
    if (Buffer.isBuffer(value)) return Buffer.from(value);
    if (value instanceof DataView)
      return new DataView(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
    return (value as unknown as Uint8Array).slice();
  }
  if (value instanceof ArrayBuffer) return value.slice(0);
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(value)) {
    const item = copy((value as Record<string, unknown>)[name]);
    if (name === '__proto__')
      Object.defineProperty(out, name, { value: item, writable: true, enumerable: true, configurable: true });
    else out[name] = item;
  }
  return out;
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
