import { SerializationError } from '../errors.js';
import { wellFormed } from './keys.js';

/**
 * The values tiercache stores: what every tier (L1 in any value mode, Redis through the JSON or
 * the msgpack serializer) hands back deep-equal to what was written. A value outside them is
 * refused on the write path (set, setMany, the writes of getOrSet, getManyOrSet, wrap, warm,
 * warmFrom), in L1 as well, so no tier serves a value that another would change or lose:
 *
 * - primitives: strings (well-formed Unicode), every number (NaN, ±Infinity and -0 included),
 *   BigInt, booleans, null, and undefined inside objects, arrays, Maps and Sets;
 * - arrays without holes, plain objects (own enumerable string keys, except `__proto__`), Date
 *   (invalid ones included), Map, Set, Buffer, typed arrays, DataView, ArrayBuffer;
 * - instances of other classes, as their own enumerable data: a remote tier hands them back as
 *   plain objects, as structuredClone does (see docs/values.md).
 *
 * Refused, with the path inside the value: functions, symbols, lone surrogates, sparse arrays,
 * own `__proto__` keys, circular references, nesting deeper than MAX_DEPTH, and built-ins whose
 * state is not in their properties (RegExp, Error, Promise, WeakMap, URL, boxed primitives…).
 *
 * One walk on the write path only; reads never check. Paths are built only on a refusal.
 */
export const MAX_DEPTH = 512;

/** Throws a SerializationError naming the path of the first part of `value` no tier keeps. */
export function checkValue(key: string, value: unknown): void {
  const ancestors: object[] = [];
  const problem = check(value, 0, ancestors);
  if (problem !== undefined) {
    const path = `value${problem.path.reverse().join('')}`;
    // A path through a deep value is shortened to its start: enough to find the place.
    throw new SerializationError(
      key,
      undefined,
      problem.what,
      path.length > 200 ? `${path.slice(0, 200)}…` : path,
    );
  }
}

interface Problem {
  /** Path segments, innermost first (pushed while the walk unwinds). */
  path: string[];
  what: string;
}

function check(value: unknown, depth: number, ancestors: object[]): Problem | undefined {
  switch (typeof value) {
    case 'string':
      return wellFormed(value)
        ? undefined
        : problem('a string that is not well-formed Unicode (it holds a lone surrogate) cannot be cached');
    case 'number':
    case 'boolean':
    case 'bigint':
    case 'undefined':
      return undefined;
    case 'function':
      return problem('a function cannot be cached');
    case 'symbol':
      return problem('a symbol cannot be cached');
  }
  if (value === null) return undefined;
  const object = value as object;
  if (depth >= MAX_DEPTH) {
    const at = ancestors.indexOf(object);
    return problem(
      at === -1
        ? `a value nested deeper than ${MAX_DEPTH} levels cannot be cached`
        : 'a circular reference cannot be cached',
    );
  }
  ancestors.push(object);
  const found = checkObject(object, depth + 1, ancestors);
  ancestors.pop();
  return found;
}

function checkObject(object: object, depth: number, ancestors: object[]): Problem | undefined {
  if (Array.isArray(object)) {
    for (let i = 0; i < object.length; i++) {
      const item: unknown = object[i];
      if (item === undefined && !(i in object))
        return within(
          problem('a sparse array cannot be cached (fill the hole with undefined or null)'),
          `[${i}]`,
        );
      const found = check(item, depth, ancestors);
      if (found !== undefined) return within(found, `[${i}]`);
    }
    return undefined;
  }
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto === Object.prototype || proto === null) return checkProperties(object, depth, ancestors);
  if (object instanceof Date || ArrayBuffer.isView(object) || object instanceof ArrayBuffer) return undefined;
  if (object instanceof Map) {
    let i = 0;
    for (const [k, v] of object as Map<unknown, unknown>) {
      const found = check(k, depth, ancestors) ?? check(v, depth, ancestors);
      if (found !== undefined) return within(found, `.entries()[${i}]`);
      i++;
    }
    return undefined;
  }
  if (object instanceof Set) {
    let i = 0;
    for (const item of object as Set<unknown>) {
      const found = check(item, depth, ancestors);
      if (found !== undefined) return within(found, `.values()[${i}]`);
      i++;
    }
    return undefined;
  }
  const kind = Object.prototype.toString.call(object).slice(8, -1);
  // A class instance reports itself as an Object: its state is its own properties. Built-ins
  // that keep state elsewhere (internal slots, closures) report their own name.
  if (kind !== 'Object') return problem(`${kind} objects cannot be cached`);
  return checkProperties(object, depth, ancestors);
}

function checkProperties(object: object, depth: number, ancestors: object[]): Problem | undefined {
  // msgpackr renames it and a plain assignment would set a prototype: no tier keeps it as data.
  if (Object.hasOwn(object, '__proto__'))
    return within(problem('a property named "__proto__" cannot be cached'), '.__proto__');
  for (const name of Object.keys(object)) {
    const found = wellFormed(name)
      ? check((object as Record<string, unknown>)[name], depth, ancestors)
      : problem('a property name that is not well-formed Unicode cannot be cached');
    if (found !== undefined) return within(found, segment(name));
  }
  return undefined;
}

function problem(what: string): Problem {
  return { path: [], what };
}

function within(found: Problem, segment: string): Problem {
  found.path.push(segment);
  return found;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function segment(name: string): string {
  return IDENTIFIER.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}
