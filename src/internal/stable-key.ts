/**
 * Builds a deterministic string from function arguments for `wrap()`: object keys are sorted so
 * `{a, b}` and `{b, a}` give the same cache key. Dates, bigints and undefined get distinct tags
 * because plain JSON would conflate or reject them.
 */
export function stableStringify(value: unknown): string {
  return JSON.stringify(normalize(value, new Set()));
}

function normalize(value: unknown, seen: Set<object>): unknown {
  if (value === undefined) return { $u: 1 };
  if (typeof value === 'bigint') return { $n: value.toString() };
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`cannot build a cache key from a ${typeof value} argument`);
  }
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return { $d: value.toISOString() };
  if (seen.has(value)) throw new TypeError('cannot build a cache key from a circular argument');
  seen.add(value);
  let out: unknown;
  if (Array.isArray(value)) {
    out = value.map((item) => normalize(item, seen));
  } else if (value instanceof Map) {
    out = { $m: [...value.entries()].map(([k, v]) => [normalize(k, seen), normalize(v, seen)]) };
  } else if (value instanceof Set) {
    out = { $s: [...value].map((item) => normalize(item, seen)) };
  } else {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort())
      sorted[key] = normalize((value as Record<string, unknown>)[key], seen);
    out = sorted;
  }
  seen.delete(value);
  return out;
}
