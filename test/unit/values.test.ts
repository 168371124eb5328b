import { describe, expect, it } from 'vitest';
import { createCache, jsonSerializer, memoryTier, type CacheError } from '../../src/index.js';
import { refusal } from '../helpers/refusal.js';
import { checkValue } from '../../src/internal/values.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

/** Values no plain JSON keeps, which every tier must hand back deep-equal. */
const KEPT: [string, unknown][] = [
  ['NaN, ±Infinity and -0', [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0]],
  ['a lone -0', -0],
  ['BigInts', { small: 12n, huge: 2n ** 100n, negative: -(2n ** 70n) }],
  ['undefined in objects and arrays', { a: undefined, list: [undefined, 1] }],
  ['Dates, invalid ones too', { at: new Date(5), never: new Date(Number.NaN) }],
  [
    'Maps with any keys',
    new Map<unknown, unknown>([
      [1, { a: 2 }],
      ['x', new Set([1, 'y'])],
      [{ k: 1 }, 3n],
    ]),
  ],
  ['Sets', new Set([1, 'a', null, undefined, Number.NaN])],
  ['a Buffer', Buffer.from([1, 2, 250])],
  ['a Uint8Array', new Uint8Array([4, 5])],
  [
    'other typed arrays',
    [new Float64Array([1.5, Number.NaN, -0]), new Int16Array([-3]), new BigInt64Array([-1n])],
  ],
  ['a view into a larger buffer', new Uint16Array(new ArrayBuffer(16), 4, 2)],
  [
    'an ArrayBuffer and a DataView',
    [new Uint8Array([9, 8]).buffer, new DataView(new Uint8Array([7]).buffer)],
  ],
  ['keys that are ours', { '$tc:date': 1, '$tc:$tc:x': { '$tc:map': [] }, $tc: 2 }],
  ['a key that looks like a tag, alone', { '$tc:number': 'NaN' }],
  ['strings with astral characters', '😀 \u{10FFFF}'],
  ['a deep value within the bound', nest(250)],
];

function nest(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { a: [value] };
  return value;
}

const serializers = [jsonSerializer(), msgpackSerializer()];

describe.each(serializers)('the $name serializer', (serializer) => {
  it.each(KEPT)('hands back %s deep-equal', (_name, value) => {
    const envelope = { f: 1, c: 1, e: null, v: value };
    expect(serializer.decode(encoded(serializer.encode(envelope)))).toStrictEqual(envelope);
    expect(() => checkValue('k', value)).not.toThrow();
  });

  it('hands back a class instance as a plain object holding the same data', () => {
    const decoded = serializer.decode(encoded(serializer.encode({ v: new Point(1, 2) })));
    expect(decoded).toStrictEqual({ v: { x: 1, y: 2 } });
  });
});

function encoded(payload: string | Uint8Array): string | Buffer {
  return typeof payload === 'string' ? payload : Buffer.from(payload);
}

describe('the JSON format', () => {
  const json = jsonSerializer();

  it('stays plain JSON for plain values, and marks only what needs reviving', () => {
    expect(json.encode({ a: [1, 'x', null, true] })).toBe('{"a":[1,"x",null,true]}');
    expect(json.encode({ at: new Date(5) })).toBe('~{"at":{"$tc:date":5}}');
    expect(json.encode({ n: Number.NaN, m: new Map([[1, 2]]) })).toBe(
      '~2{"n":{"$tc:number":"NaN"},"m":{"$tc:map":[[1,2]]}}',
    );
  });

  it('reads what tiercache 0.1 wrote: Dates, escaped keys, and an invalid Date as null', () => {
    expect(json.decode('~{"at":{"$tc:date":5},"$tc:$tc:k":1}')).toStrictEqual({
      at: new Date(5),
      '$tc:k': 1,
    });
    expect(Number.isNaN((json.decode('~{"$tc:date":null}') as Date).getTime())).toBe(true);
  });

  it('refuses unknown and malformed tags instead of guessing', () => {
    expect(() => json.decode('~2{"v":{"$tc:later":1}}')).toThrow(/unknown tag "\$tc:later"/);
    expect(() => json.decode('~2{"v":{"$tc:number":"7"}}')).toThrow(/malformed/);
    expect(() => json.decode('~2{"v":{"$tc:bytes":["Float64Array","AAA="]}}')).toThrow(RangeError);
  });

  it('ignores a toJSON method, as msgpack does', () => {
    const value = { toJSON: undefined, a: 1 };
    const withToJson = Object.assign(Object.create({ toJSON: () => 'other' }) as object, { a: 1 });
    expect(json.decode(json.encode(withToJson) as string)).toStrictEqual({ a: 1 });
    expect(json.decode(json.encode(value) as string)).toStrictEqual(value);
  });

  it('throws on functions and symbols rather than dropping them', () => {
    expect(() => json.encode({ f: () => 1 })).toThrow(/function/);
    expect(() => json.encode([Symbol('s')])).toThrow(/symbol/);
  });
});

const circular: Record<string, unknown> = { a: { b: [] } };
((circular['a'] as Record<string, unknown>)['b'] as unknown[]).push(circular);

const REFUSED: [string, unknown, string, RegExp][] = [
  ['a function', { items: [1, 2, 3, () => 1] }, 'value.items[3]', /a function cannot be cached/],
  ['a symbol', new Map([['k', Symbol('s')]]), 'value.entries()[0]', /a symbol/],
  ['a lone surrogate', { name: 'a\ud800' }, 'value.name', /well-formed Unicode/],
  ['a lone surrogate in a key', { 'k\udc00': 1 }, 'value["k\\udc00"]', /property name/],
  // eslint-disable-next-line no-sparse-arrays -- the hole is the point
  ['a sparse array', { list: [1, , 3] }, 'value.list[1]', /sparse array/],
  ['an own __proto__ key', JSON.parse('{"a":{"__proto__":1}}') as unknown, 'value.a.__proto__', /__proto__/],
  ['a RegExp', { pattern: /x/ }, 'value.pattern', /RegExp objects cannot be cached/],
  ['an Error', [new Error('x')], 'value[0]', /Error objects/],
  ['a Promise', { p: Promise.resolve(1) }, 'value.p', /Promise objects/],
  ['a WeakMap', new Set([new WeakMap()]), 'value.values()[0]', /WeakMap objects/],
  ['a URL', { 'home page': new URL('https://example.com') }, 'value["home page"]', /URL objects/],
  ['a boxed number', { n: new Number(1) }, 'value.n', /Number objects/],
  ['a circular reference', circular, 'value.a.b[0]', /circular/],
  ['nesting past the bound', nest(300), 'value.a[0].a[0]', /deeper than 512 levels/],
  ['a function at the top', () => 1, 'value', /a function/],
];

describe('values no tier keeps are refused on every write, in L1 too, naming the path', () => {
  for (const valueMode of ['reference', 'clone', 'freeze'] as const) {
    it.each(REFUSED)(`${valueMode}: %s`, async (_name, value, path, problem) => {
      const cache = createCache({ tiers: [memoryTier({ valueMode })] });
      const error = await refusal(() => cache.set('k', value));
      expect(error.code).toBe('E_SERIALIZATION');
      expect(error.message).toMatch(problem);
      expect(error.message).toContain(`key "k": ${path}`);
      expect((error as CacheError & { path?: string }).path?.startsWith(path)).toBe(true);
      expect(await cache.get('k')).toBeUndefined();
      const loaded = await refusal(() => cache.getOrSet('k', () => value));
      expect(loaded.code).toBe('E_SERIALIZATION');
      expect(await cache.get('k')).toBeUndefined();
      await cache.close();
    });
  }

  it('refuses the whole batch of setMany, getManyOrSet and warm when one value is refused', async () => {
    const cache = createCache({ tiers: [memoryTier()] });
    const bad: unknown = { f: () => 1 };
    expect(
      (
        await refusal(() =>
          cache.setMany([
            { key: 'a', value: 1 },
            { key: 'b', value: bad },
          ]),
        )
      ).key,
    ).toBe('b');
    expect(await cache.get('a')).toBeUndefined();
    const many = await refusal(() => cache.getManyOrSet(['c', 'd'], () => Promise.resolve({ c: 1, d: bad })));
    expect(many.message).toMatch(/key "d": value\.f: a function/);
    const wrapped = cache.wrap((n: number) => (n > 0 ? bad : 1), { name: 'f' });
    expect((await refusal(() => wrapped(1))).code).toBe('E_SERIALIZATION');
    await cache.close();
  });
});
