/**
 * A fast, bounded estimate of a value's retained bytes, for `maxBytes` when no encoded size is
 * known (values set directly into L1 rather than read through Redis). It walks at most
 * `BUDGET` nodes, so a huge object costs bounded time; beyond that it extrapolates.
 */
const BUDGET = 2_000;
const OBJECT_OVERHEAD = 56;
const SLOT = 8;

export function estimateSize(value: unknown): number {
  const state = { left: BUDGET };
  return sizeOf(value, state);
}

function sizeOf(value: unknown, state: { left: number }): number {
  if (state.left-- <= 0) return 64;
  switch (typeof value) {
    case 'string':
      return 16 + value.length * 2;
    case 'number':
    case 'boolean':
    case 'undefined':
      return SLOT;
    case 'bigint':
      return 16 + Math.ceil(value.toString(16).length / 2);
    case 'object': {
      if (value === null) return SLOT;
      if (value instanceof Date) return OBJECT_OVERHEAD;
      if (ArrayBuffer.isView(value)) return OBJECT_OVERHEAD + value.byteLength;
      let total = OBJECT_OVERHEAD;
      if (Array.isArray(value)) {
        for (const item of value) total += SLOT + sizeOf(item, state);
        return total;
      }
      for (const key in value) {
        total += SLOT + 16 + key.length * 2 + sizeOf((value as Record<string, unknown>)[key], state);
      }
      return total;
    }
    default:
      return SLOT;
  }
}
