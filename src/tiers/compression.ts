import * as zlib from 'node:zlib';
import { InvalidOptionError, describe } from '../errors.js';
import { optionNames } from '../internal/option-names.js';

/**
 * Compression of stored payloads (RedisTierOptions.compression), with node:zlib alone.
 *
 * A compressed payload is `0xC1`, one byte naming the algorithm, then the compressed bytes of
 * the serializer's payload. 0xC1 is never a byte of UTF-8 text and is the one byte MessagePack
 * never uses, so no JSON or msgpack payload starts with it: every reader tells the two kinds
 * apart by their first byte, whatever its own option says, and an uncompressed read pays one
 * byte comparison. An older tiercache that knows nothing of compression fails to decode such a
 * payload (JSON.parse of the replacement character, or msgpack's "never used" token, which is
 * no envelope) and reports a corrupt miss; it never reads a wrong value.
 *
 * Work is synchronous: an entry is encoded in `prepare()` (so a write that cannot be encoded
 * writes nothing) and decoded where its reply arrives, both synchronous like the serializer
 * around them. Measured on Node 20 with 1 MiB of JSON records (docs/values.md), brotli at
 * quality 4 compresses in about as long as JSON.stringify takes and inflates in a seventh of
 * JSON.parse's time, while zlib's thread-pool variants cost 0.15–0.2 ms more per call at every
 * size and free the event loop of the smaller share of the work only.
 */

export type CompressionAlgorithm = 'brotli' | 'gzip' | 'zstd';

export interface CompressionOptions {
  /**
   * `'brotli'` compresses JSON best for its time; `'gzip'` compresses fastest at level 1;
   * `'zstd'` needs Node 22.15 (or 23.8) or later, and every instance that reads the tier must
   * run such a Node, since an older one cannot inflate what it wrote (a corrupt miss).
   * @default 'brotli'
   */
  algorithm?: CompressionAlgorithm;
  /**
   * Encoded entries smaller than this many bytes are stored as they are: below about a
   * kilobyte, compression saves less on the wire than it costs. A payload compression would
   * not make smaller is stored as it is too. 0 compresses every entry.
   * @default 1024
   */
  threshold?: number;
  /**
   * Effort, in the algorithm's own scale: brotli 0–11 (@default 4), gzip 1–9 (@default 1),
   * zstd 1–22 (@default 3). The defaults cost about what serializing costs; brotli's own default
   * (11) takes a hundred times as long for a few percent fewer bytes.
   */
  level?: number;
}

export const COMPRESSION_DEFAULTS = Object.freeze({
  algorithm: 'brotli',
  threshold: 1024,
  level: Object.freeze({ brotli: 4, gzip: 1, zstd: 3 }),
} as const);

/** The first byte of every compressed payload (see the top of this file). */
export const COMPRESSED = 0xc1;

/** The byte after COMPRESSED: which algorithm compressed the rest. */
const ALGORITHM_BYTES = Object.freeze({ brotli: 0x62 /* b */, gzip: 0x67 /* g */, zstd: 0x7a /* z */ });

const LEVELS: Readonly<Record<CompressionAlgorithm, readonly [number, number]>> = {
  brotli: [0, 11],
  gzip: [1, 9],
  zstd: [1, 22],
};

const COMPRESSION_OPTION_NAMES = optionNames<CompressionOptions>({
  algorithm: true,
  threshold: true,
  level: true,
});

/** The zstd functions of node:zlib, present from Node 22.15 / 23.8 (absent from this @types/node). */
interface ZstdZlib {
  zstdCompressSync?: (buffer: Uint8Array, options?: { params?: Record<number, number> }) => Buffer;
  zstdDecompressSync?: (buffer: Uint8Array, options?: { maxOutputLength?: number }) => Buffer;
  constants: { ZSTD_c_compressionLevel?: number };
}
const zstd = zlib as unknown as ZstdZlib;

/** Compresses payloads at or over a threshold; see RedisTierOptions.compression. */
export interface Compressor {
  readonly algorithm: CompressionAlgorithm;
  readonly threshold: number;
  readonly level: number;
  /** `payload` compressed behind its header, or `payload` itself when below the threshold or not made smaller. */
  compress(payload: string | Uint8Array): string | Uint8Array;
}

/** The compressor an option asks for (undefined for none); throws InvalidOptionError naming `path`. */
export function compressorOf(option: unknown, path: string): Compressor | undefined {
  if (option === undefined || option === false) return undefined;
  const options: CompressionOptions = option === true ? {} : (option as CompressionOptions);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError(path, `expected a boolean or an options object, got ${describe(option)}`);
  }
  COMPRESSION_OPTION_NAMES.check(options, path);
  const algorithm = options.algorithm ?? COMPRESSION_DEFAULTS.algorithm;
  if (!Object.hasOwn(ALGORITHM_BYTES, algorithm)) {
    throw new InvalidOptionError(
      `${path}.algorithm`,
      `expected 'brotli', 'gzip' or 'zstd', got ${describe(algorithm)}`,
    );
  }
  if (algorithm === 'zstd' && zstd.zstdCompressSync === undefined) {
    throw new InvalidOptionError(`${path}.algorithm`, ZSTD_MISSING);
  }
  const threshold = options.threshold ?? COMPRESSION_DEFAULTS.threshold;
  if (!Number.isInteger(threshold) || threshold < 0) {
    throw new InvalidOptionError(
      `${path}.threshold`,
      `expected a whole number of bytes, 0 or more, got ${describe(threshold)}`,
    );
  }
  const [min, max] = LEVELS[algorithm];
  const level = options.level ?? COMPRESSION_DEFAULTS.level[algorithm];
  if (!Number.isInteger(level) || level < min || level > max) {
    throw new InvalidOptionError(
      `${path}.level`,
      `expected a whole number from ${min} to ${max} for ${algorithm}, got ${describe(level)}`,
    );
  }
  const squeeze = squeezer(algorithm, level);
  const header = ALGORITHM_BYTES[algorithm];
  return {
    algorithm,
    threshold,
    level,
    compress(payload) {
      // UTF-8 takes 1 to 3 bytes per UTF-16 unit: most strings are sized by their length alone.
      if (typeof payload === 'string') {
        if (payload.length * 3 < threshold) return payload;
        if (payload.length < threshold && Buffer.byteLength(payload, 'utf8') < threshold) return payload;
      } else if (payload.byteLength < threshold) return payload;
      const plain = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
      const packed = squeeze(plain);
      if (packed.byteLength + 2 >= plain.byteLength) return payload;
      const out = Buffer.allocUnsafe(packed.byteLength + 2);
      out[0] = COMPRESSED;
      out[1] = header;
      out.set(packed, 2);
      return out;
    },
  };
}

function squeezer(algorithm: CompressionAlgorithm, level: number): (plain: Uint8Array) => Buffer {
  switch (algorithm) {
    case 'brotli':
      return (plain) =>
        zlib.brotliCompressSync(plain, {
          params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: level,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: plain.byteLength,
          },
        });
    case 'gzip':
      return (plain) => zlib.gzipSync(plain, { level });
    case 'zstd': {
      const params = { [zstd.constants.ZSTD_c_compressionLevel ?? 100]: level };
      return (plain) => zstd.zstdCompressSync!(plain, { params });
    }
  }
}

const ZSTD_MISSING = `zstd needs Node 22.15 (or 23.8) or later, whose node:zlib has it; this is Node ${process.versions.node}. Use 'brotli' or 'gzip'`;

/** Whether a stored payload is compressed (a text read cannot be: it starts with a character). */
export function isCompressed(payload: string | Buffer): payload is Buffer {
  return typeof payload !== 'string' && payload[0] === COMPRESSED;
}

/**
 * A compressed payload inflated, never past `maxBytes` (zlib stops there: a small payload that
 * would inflate to gigabytes costs `maxBytes` at most), or why it cannot be.
 */
export function decompress(payload: Buffer, maxBytes: number): Buffer | { reason: string; error?: unknown } {
  const algorithm = ALGORITHMS.get(payload[1]!);
  if (algorithm === undefined) {
    return {
      reason: `it is compressed by an unknown algorithm (byte ${describe(payload[1])}); a later tiercache wrote it`,
    };
  }
  const inflate = INFLATE[algorithm];
  if (inflate === undefined) return { reason: `it is compressed with zstd, and ${ZSTD_MISSING}` };
  try {
    return inflate(payload.subarray(2), { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE')
      return {
        reason: `its ${algorithm} payload inflates past maxValueBytes (${maxBytes}); not inflated further`,
      };
    return { reason: `its ${algorithm} payload cannot be inflated`, error };
  }
}

/** Each algorithm by the byte that names it in a payload. */
const ALGORITHMS = new Map(
  Object.entries(ALGORITHM_BYTES).map(([name, byte]) => [byte as number, name as CompressionAlgorithm]),
);

/** Each algorithm's inflate; undefined for zstd on a Node without it. */
const INFLATE: Readonly<
  Record<CompressionAlgorithm, ((body: Buffer, options: { maxOutputLength: number }) => Buffer) | undefined>
> = {
  brotli: (body, options) => zlib.brotliDecompressSync(body, options),
  gzip: (body, options) => zlib.gunzipSync(body, options),
  zstd: zstd.zstdDecompressSync,
};
