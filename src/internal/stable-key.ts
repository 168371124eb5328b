import { InvalidOptionError } from '../errors.js';

/**
 * Builds a deterministic string from function arguments for `wrap()`'s default keys: object
 * keys are sorted so `{a, b}` and `{b, a}` give the same key, and two argument lists that are
 * not deep-equal never give the same string. Plain JSON conflates many values (NaN, ±Infinity
 * and null; -0 and 0; a hole and null; a RegExp, a Map and {}; undefined and a missing
 * property), so every such value gets a tag of its own: an object `{"$<tag>": ...}`. A plain
 * object's own key that starts with `$` gets one more `$`, so no argument can pass for a tag.
 *
 * What cannot be keyed faithfully (functions, symbols, class instances, cycles) is refused with
 * an `InvalidOptionError` that points to wrap's `key` option.
 */
export function stableStringify(value: unknown): string {
  try {
    return JSON.stringify(normalize(value, new Set()));
  } catch (error) {
    if (error instanceof InvalidOptionError) throw error;
    // A RangeError: arguments nested deeper than the stack allows.
    throw new InvalidOptionError(
      'wrap.key',
      `cannot build a default key from these arguments (${String(error)}); pass a \`key\` option`,
    );
  }
}

function refuse(what: string): never {
  throw new InvalidOptionError(
    'wrap.key',
    `cannot build a default key from an argument holding ${what}; pass a \`key\` option`,
  );
}

function normalize(value: unknown, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // NaN, ±Infinity (JSON's null) and -0 (JSON's 0) each get their own tag.
      if (!Number.isFinite(value) || Object.is(value, -0))
        return { $num: String(Object.is(value, -0) ? '-0' : value) };
      return value;
    case 'undefined':
      return { $u: 1 };
    case 'bigint':
      return { $n: value.toString() };
    case 'function':
    case 'symbol':
      return refuse(`a ${typeof value}`);
  }
  if (value === null) return null;
  const object = value as object;
  if (seen.has(object)) refuse('a circular reference');
  seen.add(object);
  let out: unknown;
  if (Array.isArray(object)) {
    out = Array.from({ length: object.length }, (_, i) =>
      i in object ? normalize((object as unknown[])[i], seen) : { $hole: 1 },
    );
  } else {
    const proto: unknown = Object.getPrototypeOf(object);
    if (proto === Object.prototype || proto === null) {
      // No prototype: an own "__proto__" key is then an ordinary property, never a prototype.
      const sorted = Object.create(null) as Record<string, unknown>;
      for (const key of Object.keys(object).sort()) {
        const name = key.charCodeAt(0) === 36 /* $ */ ? `$${key}` : key;
        sorted[name] = normalize((object as Record<string, unknown>)[key], seen);
      }
      // __proto__ as an own key: JSON.stringify writes own properties only, so it is kept.
      out = sorted;
    } else if (object instanceof Date) {
      out = { $d: normalize(object.getTime(), seen) };
    } else if (object instanceof Map) {
      out = { $m: [...object.entries()].map(([k, v]) => [normalize(k, seen), normalize(v, seen)]) };
    } else if (object instanceof Set) {
      out = { $s: [...object].map((item) => normalize(item, seen)) };
    } else if (object instanceof RegExp) {
      out = { $re: [object.source, object.flags] };
    } else if (ArrayBuffer.isView(object)) {
      const bytes = Buffer.from(object.buffer, object.byteOffset, object.byteLength).toString('base64');
      out = { $bin: [Buffer.isBuffer(object) ? 'Buffer' : object.constructor.name, bytes] };
    } else if (object instanceof ArrayBuffer) {
      out = { $bin: ['ArrayBuffer', Buffer.from(object).toString('base64')] };
    } else {
      refuse(`an instance of ${(object.constructor as { name?: string } | undefined)?.name ?? 'a class'}`);
    }
  }
  seen.delete(object);
  return out;
}
