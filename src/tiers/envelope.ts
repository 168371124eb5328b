import type { Entry } from '../entry.js';
import { describe } from '../errors.js';
import type { Serializer } from '../serializers/serializer.js';
import { decompress, isCompressed } from './compression.js';
import type { StoredEntry, TierHooks } from './tier.js';

/**
 * The stored-entry format, version 1: what a remote tier keeps under each key, before its
 * serializer (JSON, msgpack) turns it into bytes. Stable: several versions of tiercache read
 * one Redis during a rolling deploy, so fields are only ever added, never renamed or given a
 * new meaning, and any change a reader could misread raises the version.
 *
 * Short field names keep payloads small:
 * ```
 * { "f": 1,                 format version; absent on entries written before it existed
 *                           (version 0, the same fields as version 1)
 *   "c": 1732…,             createdAt (epoch ms)
 *   "e": 1732… | null,      expiresAt; null for forever
 *   "v": …,                 the value; absent when "u" is set
 *   "u": 1,                 the value is undefined (negative caching), which JSON cannot carry
 *   "g": 1732… | null,      staleUntil (end of grace / fail-safe), only when past "e"; null: forever
 *   "t": ["user:1", …] }    tags
 * ```
 * A reader ignores fields it does not know. An entry of a version it cannot read (a newer
 * tiercache wrote it) is a miss reported as corrupt, never decoded by guesswork: the loader
 * then writes a version-1 entry over it, which the newer version reads as well.
 *
 * Outside the envelope, a payload may be compressed (see compression.ts): a first byte 0xC1,
 * which no serializer's payload starts with, an algorithm byte, then the serializer's payload
 * compressed. Every reader inflates what it finds, whatever its own option, so writers may turn
 * compression on or off at any time once every reader is of a version that knows the mark;
 * older ones report such a payload as corrupt. Compression is not an envelope version.
 */
export const STORED_FORMAT_VERSION = 1;

/** The largest payload decodeStored inflates unless told otherwise (RedisTierOptions.maxValueBytes). */
export const MAX_STORED_BYTES = 8 * 1024 * 1024;

export interface WireEnvelope {
  f?: number;
  c: number;
  e: number | null;
  g?: number | null;
  v?: unknown;
  u?: 1;
  t?: string[];
}

export function toWire(entry: Entry): WireEnvelope {
  const c = entry.createdAt;
  const e = entry.expiresAt === Number.POSITIVE_INFINITY ? null : entry.expiresAt;
  const wire: WireEnvelope =
    entry.value === undefined
      ? { f: STORED_FORMAT_VERSION, c, e, u: 1 }
      : { f: STORED_FORMAT_VERSION, c, e, v: entry.value };
  const g = entry.staleUntil;
  if (g !== undefined && g > entry.expiresAt) wire.g = g === Number.POSITIVE_INFINITY ? null : g;
  if (entry.tags !== undefined) wire.t = entry.tags as string[];
  return wire;
}

/** The entry a decoded payload holds, or a sentence saying why it is not one of ours. */
export function fromWire(raw: unknown): Entry | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return 'payload is not an envelope object';
  const wire = raw as Partial<WireEnvelope>;
  const f = wire.f;
  if (f !== undefined && f !== STORED_FORMAT_VERSION) return unreadableVersion(f);
  if (typeof wire.c !== 'number') return 'envelope has no creation time';
  if (typeof wire.e !== 'number' && wire.e !== null) return 'envelope has no expiry';
  if (wire.g !== undefined && typeof wire.g !== 'number' && wire.g !== null)
    return 'envelope has a malformed stale period';
  const expiresAt = wire.e ?? Number.POSITIVE_INFINITY;
  if (!('v' in wire) && wire.u !== 1) return 'envelope has no value';
  const value = wire.u === 1 ? undefined : wire.v;
  const t = wire.t;
  if (t !== undefined && (!Array.isArray(t) || !t.every((tag) => typeof tag === 'string')))
    return 'envelope has malformed tags';
  const entry: Entry =
    wire.g === undefined
      ? { value, createdAt: wire.c, expiresAt }
      : { value, createdAt: wire.c, expiresAt, staleUntil: wire.g ?? Number.POSITIVE_INFINITY };
  return t === undefined ? entry : { ...entry, tags: t };
}

function unreadableVersion(f: unknown): string {
  if (typeof f === 'number' && Number.isInteger(f) && f > STORED_FORMAT_VERSION)
    return `stored format version ${f} is newer than this tiercache reads (up to ${STORED_FORMAT_VERSION}); a later version wrote it`;
  return `unknown stored format version ${describe(f)}`;
}

/**
 * A stored payload as an entry with its (uncompressed) size, or a miss reported to `onCorrupt`
 * when it cannot be inflated within `maxBytes`, the serializer cannot decode it or it is not an
 * entry of ours. Every tier that stores the envelope reads it back this way; a tier that may
 * meet compressed payloads reads them as Buffers (a text read garbles them).
 */
export function decodeStored(
  key: string,
  payload: string | Buffer,
  serializer: Serializer,
  onCorrupt: TierHooks['corrupt'] | undefined,
  maxBytes: number = MAX_STORED_BYTES,
): StoredEntry | undefined {
  if (isCompressed(payload)) {
    const inflated = decompress(payload, maxBytes);
    if (!Buffer.isBuffer(inflated)) {
      onCorrupt?.(key, inflated.reason, inflated.error);
      return undefined;
    }
    payload = inflated;
  }
  let raw: unknown;
  try {
    raw = serializer.decode(payload);
  } catch (error) {
    onCorrupt?.(key, `the ${serializer.name} serializer cannot decode it`, error);
    return undefined;
  }
  const entry = fromWire(raw);
  if (typeof entry === 'string') {
    onCorrupt?.(key, entry);
    return undefined;
  }
  return { entry, size: payload.length };
}
