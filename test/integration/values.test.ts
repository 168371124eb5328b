/**
 * Issue 13 §4: for every generated value, each tier hands back what was stored (a remote tier
 * and L1's clone mode: class instances as plain objects) or every configuration refuses the
 * write with a SerializationError, for the JSON and the msgpack serializer, on a real Redis.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createCache,
  isCacheError,
  jsonSerializer,
  memoryTier,
  redisTier,
  type CacheOptions,
  type Serializer,
  type TierCache,
} from '../../src/index.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import { redisFixture } from '../helpers/redis-fixture.js';

const redis = redisFixture();

class Point {
  constructor(
    readonly x: unknown,
    readonly y: number,
  ) {}
}

const text = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) }, // lone surrogates too
);
const name = fc.oneof(
  { weight: 8, arbitrary: text },
  { weight: 1, arbitrary: fc.constantFrom('__proto__', '$tc:map', '$tc:$tc:x', '$tc:', '') },
);
const leaf = fc.oneof(
  text,
  fc.double(), // NaN, ±Infinity and -0 included
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.date(), // invalid Dates included
  fc.uint8Array({ maxLength: 4 }).map((bytes) => Buffer.from(bytes)),
  fc.uint8Array({ maxLength: 4 }),
  fc.float64Array({ maxLength: 3 }),
  fc.bigInt64Array({ maxLength: 2 }),
  fc.constantFrom<unknown>(
    () => 1,
    Symbol('s'),
    /x/,
    new Error('e'),
    new WeakMap(),
    new Uint16Array([1, 2]).buffer,
  ),
);
const { value } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.sparseArray(tie('value'), { maxLength: 4 }),
    fc.dictionary(name, tie('value'), { maxKeys: 4 }),
    fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
    fc.array(tie('value'), { maxLength: 3 }).map((items) => new Set(items)),
    fc.tuple(tie('value'), fc.integer()).map(([x, y]) => new Point(x, y)),
  ),
}));

// set() refuses undefined itself (E_INVALID_VALUE: use delete()); inside a value it is kept.
const defined = value.filter((v) => v !== undefined);

/** What a remote tier hands back for `v`: class instances and null prototypes as plain objects. */
function asStored(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || v instanceof Date || ArrayBuffer.isView(v)) return v;
  if (v instanceof ArrayBuffer) return v;
  if (Array.isArray(v)) return v.map(asStored);
  if (v instanceof Map)
    return new Map([...(v as Map<unknown, unknown>)].map(([k, x]) => [asStored(k), asStored(x)]));
  if (v instanceof Set) return new Set([...(v as Set<unknown>)].map(asStored));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v))
    Object.defineProperty(out, k, {
      value: asStored((v as Record<string, unknown>)[k]),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}

/** The value `op` resolves to, or 'refused' for a SerializationError; anything else fails. */
async function outcome(op: () => Promise<unknown>): Promise<{ value: unknown } | 'refused'> {
  try {
    return { value: await op() };
  } catch (error) {
    if (isCacheError(error) && error.code === 'E_SERIALIZATION') return 'refused';
    throw error;
  }
}

describe.each<[string, () => Serializer]>([
  ['json', jsonSerializer],
  ['msgpack', msgpackSerializer],
])('every value round-trips or is refused everywhere (%s serializer)', (label, serializer) => {
  let caches: Record<string, TierCache>;
  let reader: TierCache;
  let n = 0;
  beforeAll(() => {
    const remote = () =>
      redisTier({
        client: redis.server.url,
        prefix: `values-${label}:`,
        serializer: serializer(),
        timeout: '5s',
      });
    const make = (tiers: NonNullable<CacheOptions['tiers']>) =>
      redis.track(createCache({ tiers, bus: false }));
    caches = {
      'L1 (reference)': make([memoryTier()]),
      'L1 (clone)': make([memoryTier({ valueMode: 'clone' })]),
      L2: make([remote()]),
      'L1+L2': make([memoryTier(), remote()]),
    };
    reader = make([remote()]);
  });

  it('set and getOrSet agree in every configuration, and a second instance reads the same', async () => {
    await fc.assert(
      fc.asyncProperty(defined, async (v) => {
        const key = `k${n++}`;
        const stored = asStored(v);
        const results = new Map<string, 'refused' | 'kept'>();
        for (const [config, cache] of Object.entries(caches)) {
          const set = await outcome(() => cache.set(key, v));
          const loaded = await outcome(() => cache.getOrSet(`${key}:loaded`, () => v));
          expect(loaded === 'refused').toBe(set === 'refused');
          results.set(config, set === 'refused' ? 'refused' : 'kept');
          if (set === 'refused') {
            expect(await cache.get(key)).toBeUndefined();
            continue;
          }
          const got = await cache.get(key);
          if (config === 'L1 (reference)' || config === 'L1+L2') expect(got).toBe(v);
          else expect(got).toStrictEqual(stored);
        }
        expect(new Set(results.values()).size).toBe(1);
        if (results.get('L2') === 'kept') {
          expect(await reader.get(key)).toStrictEqual(stored);
          expect(await reader.get(`${key}:loaded`)).toStrictEqual(stored);
        }
      }),
      { numRuns: 120 },
    );
  });
});
