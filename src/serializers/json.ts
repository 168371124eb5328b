import type { Serializer } from './serializer.js';

/** Keys starting with this are ours: a tagged value's stand-in, or a user's key escaped. */
const TAG = '$tc:';
const DATE = `${TAG}date`;
const NUMBER = `${TAG}number`;
const BIGINT = `${TAG}bigint`;
const UNDEFINED = `${TAG}undefined`;
const MAP = `${TAG}map`;
const SET = `${TAG}set`;
const BYTES = `${TAG}bytes`;

/**
 * A payload that needs reviving starts with a mark; the common case is plain JSON, decoded by
 * one JSON.parse with nothing else to do. `~` holds only what tiercache 0.1 wrote (finite Dates,
 * escaped keys), which older versions read too; `~2` holds the later tags, which an older
 * version cannot parse (a miss it reports as corrupt) rather than misread.
 */
const MARK_1 = '~';
const MARK_2 = '~2';

/** A tagged stand-in for a value JSON has no form for: one own property, the tag. */
class Tagged {
  constructor(tag: string, data: unknown) {
    own(this as unknown as Record<string, unknown>, tag, data);
  }
}

/**
 * JSON that hands back what it was given, for every value tiercache accepts (see
 * src/internal/values.ts and docs/values.md): what JSON has no form for travels as a one-key
 * object whose key is a tag, `{"$tc:map": [[k, v], …]}`. So that no user object can pass for
 * one, a user key that starts with `$tc:` gets one more `$tc:` in front on the way out and loses
 * it on the way in. Functions and symbols throw. Class instances travel as their own enumerable
 * properties (a `toJSON` method is not called, as msgpack does not call it either).
 */
export function jsonSerializer(): Serializer {
  return {
    name: 'json',
    binary: false,
    encode(value) {
      if (plain(value, 0)) return JSON.stringify(value);
      let level = 0; // 0: plain JSON; 1: format-1 tags; 2: format-2 tags
      let escape = false;
      let escaping = false;
      const replacer = function (this: Record<string, unknown>, key: string): unknown {
        if (key.charCodeAt(0) === 36 /* $ */ && key.startsWith(TAG) && !(this instanceof Tagged))
          escape = true;
        const raw = this[key];
        switch (typeof raw) {
          case 'string':
          case 'boolean':
            return raw;
          case 'number':
            if (Number.isFinite(raw) && (raw !== 0 || 1 / raw > 0)) return raw;
            level = 2;
            return new Tagged(NUMBER, Object.is(raw, -0) ? '-0' : String(raw));
          case 'bigint':
            level = 2;
            return new Tagged(BIGINT, raw.toString());
          case 'undefined':
            level = 2;
            return new Tagged(UNDEFINED, 1);
          case 'object': {
            if (raw === null || Array.isArray(raw)) return raw;
            const proto: unknown = Object.getPrototypeOf(raw);
            if (proto !== Object.prototype && proto !== null) {
              if (raw instanceof Date) {
                if (level === 0) level = 1;
                return new Tagged(DATE, raw.getTime());
              }
              const tagged = tagOf(raw);
              if (tagged !== undefined) {
                level = 2;
                return tagged;
              }
            }
            return escaping ? escapeKeys(raw) : raw;
          }
          default:
            throw new TypeError(`a ${typeof raw} cannot be encoded as JSON`);
        }
      };
      let text = JSON.stringify(value, replacer) as string | undefined;
      if (escape) {
        // Rare: encode again, renaming our prefix's keys in every object on the way.
        escaping = true;
        text = JSON.stringify(value, replacer);
      }
      if (text === undefined) throw new TypeError('nothing to encode');
      if (level === 0 && !escape) return text;
      return (level === 2 ? MARK_2 : MARK_1) + text;
    },
    decode(payload) {
      const text = typeof payload === 'string' ? payload : payload.toString('utf8');
      if (text.charCodeAt(0) !== 126 /* ~ */) return JSON.parse(text) as unknown;
      return revive(JSON.parse(text.slice(text.startsWith(MARK_2) ? 2 : 1)));
    },
  };
}

/** Nesting past which `plain` stops looking (and the replacer, which reports a cycle, takes over). */
const PLAIN_DEPTH = 64;

/**
 * Whether JSON.stringify alone writes `value` as the replacer would, so it can run without one:
 * a replacer is a call back into JS per property and keeps V8 off its fast path (it made
 * encoding 2.7 times slower). True for what JSON holds as it is: strings, booleans, finite
 * numbers other than -0, null, arrays without holes and plain objects (no `$tc:` keys) of those.
 * Everything else (and a getter on a plain object that would answer differently the second
 * time, which the replacer would read once) takes the replacer.
 */
function plain(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && (value !== 0 || 1 / value > 0);
    case 'object': {
      if (value === null) return true;
      if (depth >= PLAIN_DEPTH) return false;
      if (Array.isArray(value)) {
        // A hole reads as undefined, which is not plain: holes take the replacer too.
        for (let i = 0; i < value.length; i++) if (!plain(value[i], depth + 1)) return false;
        return true;
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const object = value as Record<string, unknown>;
      for (const key of Object.keys(object)) {
        if (key.charCodeAt(0) === 36 /* $ */ && key.startsWith(TAG)) return false;
        if (!plain(object[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/** The stand-in of a Map, a Set or binary data; undefined for other objects. */
function tagOf(raw: object): Tagged | undefined {
  if (raw instanceof Map) return new Tagged(MAP, [...(raw as Map<unknown, unknown>)]);
  if (raw instanceof Set) return new Tagged(SET, [...(raw as Set<unknown>)]);
  if (ArrayBuffer.isView(raw)) {
    const kind = Buffer.isBuffer(raw) ? 'Buffer' : Object.prototype.toString.call(raw).slice(8, -1);
    return new Tagged(BYTES, [
      kind,
      Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64'),
    ]);
  }
  if (raw instanceof ArrayBuffer)
    return new Tagged(BYTES, ['ArrayBuffer', Buffer.from(raw).toString('base64')]);
  return undefined;
}

const TYPED_ARRAYS: Readonly<Record<string, new (buffer: ArrayBuffer) => ArrayBufferView>> = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
};

/**
 * Replaces the tagged stand-ins in a parsed payload by what they stand for and unescapes keys,
 * in place where it can (JSON.parse's objects are ours). A malformed or unknown tag throws: the
 * payload is corrupt, or a later version wrote it, and is never read by guesswork.
 */
function revive(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = revive(value[i]);
    return value;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  let escaped = false;
  for (const key of keys) {
    if (!key.startsWith(TAG)) continue;
    if (keys.length === 1 && key.charCodeAt(TAG.length) !== 36 /* $ */)
      return untag(key, revive(object[key]));
    escaped = true;
  }
  if (!escaped) {
    for (const key of keys) {
      const item = object[key];
      if (typeof item !== 'object' || item === null) continue;
      const revived = revive(item);
      if (revived === item) continue;
      if (key === '__proto__') own(object, key, revived);
      else object[key] = revived;
    }
    return object;
  }
  const out: Record<string, unknown> = {};
  for (const key of keys) own(out, key.startsWith(TAG) ? key.slice(TAG.length) : key, revive(object[key]));
  return out;
}

function untag(tag: string, data: unknown): unknown {
  switch (tag) {
    case DATE:
      // null: tiercache 0.1 wrote an invalid Date's NaN time as JSON does.
      if (typeof data === 'number' || data === null) return new Date(data ?? Number.NaN);
      break;
    case NUMBER:
      if (data === 'NaN' || data === 'Infinity' || data === '-Infinity' || data === '-0') return Number(data);
      break;
    case BIGINT:
      if (typeof data === 'string' && /^-?\d+$/.test(data)) return BigInt(data);
      break;
    case UNDEFINED:
      return undefined;
    case MAP:
      if (Array.isArray(data) && data.every((pair) => Array.isArray(pair) && pair.length === 2))
        return new Map(data as [unknown, unknown][]);
      break;
    case SET:
      if (Array.isArray(data)) return new Set(data);
      break;
    case BYTES:
      if (Array.isArray(data) && typeof data[0] === 'string' && typeof data[1] === 'string')
        return bytesOf(data[0], data[1]);
      break;
    default:
      throw new TypeError(`unknown tag "${tag}"`);
  }
  throw new TypeError(`malformed "${tag}"`);
}

function bytesOf(kind: string, base64: string): unknown {
  const bytes = Buffer.from(base64, 'base64');
  if (kind === 'Buffer') return bytes;
  const copy = new ArrayBuffer(bytes.length);
  new Uint8Array(copy).set(bytes);
  if (kind === 'ArrayBuffer') return copy;
  const View = Object.hasOwn(TYPED_ARRAYS, kind) ? TYPED_ARRAYS[kind] : undefined;
  if (View === undefined) throw new TypeError(`unknown binary type "${kind}"`);
  return new View(copy); // a length that is not a whole number of elements throws a RangeError
}

function escapeKeys(value: object): object {
  const keys = Object.keys(value);
  if (!keys.some((key) => key.startsWith(TAG))) return value;
  const out: Record<string, unknown> = {};
  for (const key of keys)
    own(out, key.startsWith(TAG) ? TAG + key : key, (value as Record<string, unknown>)[key]);
  return out;
}

/**
 * Sets an own property, whatever its name: a plain assignment of `__proto__` (a key a payload
 * can carry, escaped or not) would set the copy's prototype to an object from the payload.
 */
function own(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}
