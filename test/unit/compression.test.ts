import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/entry.js';
import { InvalidOptionError, redisTier } from '../../src/index.js';
import { jsonSerializer } from '../../src/serializers/json.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import type { Serializer } from '../../src/serializers/serializer.js';
import {
  COMPRESSED,
  COMPRESSION_DEFAULTS,
  compressorOf,
  type CompressionAlgorithm,
} from '../../src/tiers/compression.js';
import { decodeStored, fromWire, toWire } from '../../src/tiers/envelope.js';

// The compressed payload framing (src/tiers/compression.ts) without a Redis: what is written,
// what every reader makes of it, and the options.

const zstdHere = typeof (zlib as { zstdCompressSync?: unknown }).zstdCompressSync === 'function';
const ALGORITHMS: CompressionAlgorithm[] = zstdHere ? ['brotli', 'gzip', 'zstd'] : ['brotli', 'gzip'];
const SERIALIZERS: Serializer[] = [jsonSerializer(), msgpackSerializer()];

/** JSON-ish records, compressible as real data is (repeated field names, varied values). */
function records(bytes: number): { id: number; name: string; tags: string[]; score: number }[] {
  const out = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const record = { id: i, name: `user ${i}`, tags: ['a', `t${i % 17}`], score: (i * 7919) % 1000 };
    out.push(record);
    n += JSON.stringify(record).length + 1;
  }
  return out;
}

const entryOf = (value: unknown): Entry => ({ value, createdAt: 1, expiresAt: 2 });

/** Decodes as the Redis tier does, collecting what it reports as corrupt. */
function decode(payload: string | Uint8Array, serializer: Serializer, maxBytes?: number) {
  const reports: { problem: string; cause: unknown }[] = [];
  const buffer = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const found = decodeStored(
    'k',
    buffer,
    serializer,
    (_key, problem, cause) => reports.push({ problem, cause }),
    maxBytes,
  );
  return { found, reports };
}

describe('compressed payloads', () => {
  for (const algorithm of ALGORITHMS)
    for (const serializer of SERIALIZERS)
      it(`${algorithm} over ${serializer.name}: marked, smaller, and read back whole`, () => {
        const compressor = compressorOf({ algorithm }, 'redis.compression')!;
        const value = records(50_000);
        const plain = serializer.encode(toWire(entryOf(value)));
        const packed = compressor.compress(plain) as Buffer;
        expect([packed[0], packed[1]]).toEqual([
          COMPRESSED,
          { brotli: 0x62, gzip: 0x67, zstd: 0x7a }[algorithm],
        ]);
        // msgpack records already name each field once: less left to gain than in JSON.
        expect(packed.byteLength).toBeLessThan(Buffer.byteLength(plain) / 2);
        const { found, reports } = decode(packed, serializer);
        expect(reports).toEqual([]);
        expect(found?.entry.value).toEqual(value);
        // L1 accounts the entry's encoded size, not what it took on the wire.
        expect(found?.size).toBe(Buffer.byteLength(plain));
      });

  it('no JSON or msgpack payload starts with the mark, so plain ones are never taken for compressed', () => {
    for (const serializer of SERIALIZERS)
      for (const value of [1, 'x', null, undefined, [1], { a: new Map([[1, 2]]) }, new Date(0), -0, 10n]) {
        const payload = serializer.encode(toWire(entryOf(value)));
        expect(Buffer.from(payload as string)[0]).not.toBe(COMPRESSED);
      }
  });

  it('below the threshold a payload is stored as it is, the very same string or buffer', () => {
    const compressor = compressorOf({ threshold: 1000 }, 'redis.compression')!;
    const text = 'x'.repeat(999);
    expect(compressor.compress(text)).toBe(text);
    // 333 three-byte characters are 999 bytes, under; one more is 1002 bytes, over.
    const wide = '€'.repeat(333);
    expect(compressor.compress(wide)).toBe(wide);
    expect((compressor.compress(`${wide}€`) as Buffer)[0]).toBe(COMPRESSED);
    const bytes = new Uint8Array(999);
    expect(compressor.compress(bytes)).toBe(bytes);
    expect((compressor.compress(new Uint8Array(1000)) as Buffer)[0]).toBe(COMPRESSED);
  });

  it('a payload compression would not make smaller is stored as it is', () => {
    const compressor = compressorOf({ algorithm: 'gzip', threshold: 0 }, 'redis.compression')!;
    const random = new Uint8Array(4096).map(() => Math.floor(Math.random() * 256));
    expect(compressor.compress(random)).toBe(random);
  });

  it('an older tiercache, which knows no mark, reads a compressed payload as corrupt, never as a value', () => {
    const compressor = compressorOf(true, 'redis.compression')!;
    for (const serializer of SERIALIZERS) {
      const packed = Buffer.from(compressor.compress(serializer.encode(toWire(entryOf(records(5000))))));
      // It read JSON as text, msgpack as bytes, and decoded without inflating.
      let outcome: unknown;
      try {
        outcome = fromWire(serializer.decode(serializer.binary ? packed : packed.toString('utf8')));
      } catch (error) {
        outcome = error;
      }
      expect(outcome instanceof Error || typeof outcome === 'string').toBe(true);
    }
  });
});

describe('what a reader refuses', () => {
  const json = jsonSerializer();

  it.each(ALGORITHMS)(
    'a %s payload that does not inflate is a corrupt miss naming the algorithm, with its cause',
    (algorithm) => {
      const packed = compressorOf({ algorithm }, 'c')!.compress(JSON.stringify(records(5000))) as Buffer;
      // Cut short, as a write torn by a crash would leave it.
      const { found, reports } = decode(packed.subarray(0, packed.length - 8), json);
      expect(found).toBeUndefined();
      expect(reports).toEqual([
        { problem: `its ${algorithm} payload cannot be inflated`, cause: expect.any(Error) },
      ]);
    },
  );

  it('an unknown algorithm byte is a corrupt miss saying a later tiercache wrote it', () => {
    const { found, reports } = decode(Buffer.from([COMPRESSED, 0x51, 1, 2, 3]), json);
    expect(found).toBeUndefined();
    expect(reports.map((r) => r.problem)).toEqual([
      expect.stringMatching(/unknown algorithm.*later tiercache/),
    ]);
  });

  it.skipIf(zstdHere)(
    'a zstd payload on a Node without zstd is a corrupt miss naming the Node it needs',
    () => {
      const { found, reports } = decode(Buffer.from([COMPRESSED, 0x7a, 1, 2, 3]), json);
      expect(found).toBeUndefined();
      expect(reports[0]!.problem).toMatch(/zstd needs Node 22\.15/);
    },
  );

  it('a zip bomb is a corrupt miss, inflated no further than maxValueBytes', () => {
    // 64 MiB of zeros in about 12 kB; the reader allows 1 MiB.
    const bomb = Buffer.concat([
      Buffer.from([COMPRESSED, 0x62]),
      zlib.brotliCompressSync(Buffer.alloc(64 * 1024 * 1024), {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 },
      }),
    ]);
    expect(bomb.byteLength).toBeLessThan(100_000);
    const before = process.memoryUsage().arrayBuffers;
    const { found, reports } = decode(bomb, json, 1024 * 1024);
    // Garbage is not collected in between: had it inflated, 64 MiB more would be held here.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    expect(found).toBeUndefined();
    expect(reports.map((r) => r.problem)).toEqual([
      'its brotli payload inflates past maxValueBytes (1048576); not inflated further',
    ]);
  });
});

describe('the compression option', () => {
  const tier = (compression: unknown) =>
    redisTier({ client: 'redis://127.0.0.1:1', name: 'l2', compression: compression as boolean });

  it('is off by default, and true means brotli at quality 4 from 1 KiB', () => {
    expect(compressorOf(undefined, 'c')).toBeUndefined();
    expect(compressorOf(false, 'c')).toBeUndefined();
    expect(compressorOf(true, 'c')).toMatchObject({ algorithm: 'brotli', level: 4, threshold: 1024 });
    expect(COMPRESSION_DEFAULTS.level).toEqual({ brotli: 4, gzip: 1, zstd: 3 });
    expect(compressorOf({ algorithm: 'gzip' }, 'c')).toMatchObject({ level: 1, threshold: 1024 });
  });

  it.each([
    ['a string', 'brotli', /"l2\.compression": expected a boolean or an options object, got "brotli"/],
    [
      'an unknown algorithm',
      { algorithm: 'lz4' },
      /"l2\.compression\.algorithm": expected 'brotli', 'gzip' or 'zstd', got "lz4"/,
    ],
    ['a negative threshold', { threshold: -1 }, /"l2\.compression\.threshold".*got -1/],
    ['a fractional threshold', { threshold: 1.5 }, /"l2\.compression\.threshold".*got 1\.5/],
    [
      'a brotli level past 11',
      { level: 12 },
      /"l2\.compression\.level": expected a whole number from 0 to 11 for brotli, got 12/,
    ],
    [
      'a gzip level of 0',
      { algorithm: 'gzip', level: 0 },
      /"l2\.compression\.level".*1 to 9 for gzip, got 0/,
    ],
    [
      'a misspelt option',
      { treshold: 10 },
      /"l2\.compression\.treshold": unknown option; did you mean "threshold"/,
    ],
  ])('refuses %s with InvalidOptionError naming the option', (_what, compression, message) => {
    const error = (() => {
      try {
        tier(compression);
      } catch (thrown) {
        return thrown;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toMatch(message);
  });

  it.skipIf(zstdHere)('refuses zstd on a Node without it, naming the Node version it needs', () => {
    expect(() => tier({ algorithm: 'zstd' })).toThrow(InvalidOptionError);
    expect(() => tier({ algorithm: 'zstd' })).toThrow(
      /"l2\.compression\.algorithm": zstd needs Node 22\.15 \(or 23\.8\) or later.*this is Node 20/,
    );
  });
});
