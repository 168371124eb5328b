import { describe, expect, it } from 'vitest';
import { jsonSerializer } from '../../src/index.js';

describe('json serializer: payload keys never become prototypes', () => {
  it('an escaped "$tc:__proto__" key in a payload decodes to an own property, not a prototype', () => {
    const serializer = jsonSerializer();
    const payload = '~{"a":{"$tc:__proto__":{"polluted":true},"$tc:x":1}}';
    const decoded = serializer.decode(payload) as { a: Record<string, unknown> };
    expect(Object.getPrototypeOf(decoded.a)).toBe(Object.prototype);
    expect((decoded.a as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.keys(decoded.a)).toEqual(['__proto__', 'x']);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('an own "__proto__" key round-trips as data, beside a key that needs escaping', () => {
    const serializer = jsonSerializer();
    const value = JSON.parse('{"__proto__":{"polluted":true},"$tc:date":"not a date"}') as object;
    const decoded = serializer.decode(serializer.encode(value) as string) as Record<string, unknown>;
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(decoded, '__proto__')?.value).toEqual({ polluted: true });
    expect(decoded['$tc:date']).toBe('not a date');
  });
});

describe('json serializer: plain values skip the replacer', () => {
  const serializer = jsonSerializer();
  const roundTrip = (value: unknown): unknown => serializer.decode(serializer.encode(value) as string);

  it('writes plain JSON as JSON.stringify does, and everything else as before', () => {
    const value = { a: [1, 'x', true, null, { b: -1.5 }], c: {} };
    expect(serializer.encode(value)).toBe(JSON.stringify(value));
    // Each of these, however deep in plain data, needs the replacer.
    for (const special of [-0, Number.NaN, Infinity, undefined, new Date(5), new Map([[1, 2]]), 1n]) {
      expect(roundTrip({ a: [{ b: special }] })).toEqual({ a: [{ b: special }] });
    }
    // eslint-disable-next-line no-sparse-arrays
    expect(roundTrip([1, , 3])).toEqual([1, undefined, 3]);
    expect(roundTrip({ a: { '$tc:map': 1 } })).toEqual({ a: { '$tc:map': 1 } });
  });

  it('hands data nested past the plain check to the replacer: deep Maps survive, cycles throw', () => {
    let deep: unknown = new Map([['leaf', 1]]);
    for (let i = 0; i < 100; i++) deep = { next: deep };
    expect(roundTrip(deep)).toEqual(deep);
    const cycle: Record<string, unknown> = { a: 1 };
    cycle['self'] = cycle;
    expect(() => serializer.encode(cycle)).toThrow(TypeError);
  });
});
