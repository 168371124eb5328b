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
