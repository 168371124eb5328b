import type { Serializer } from './serializer.js';

/** Keys starting with this are ours: a Date's stand-in, or a user's key escaped. */
const TAG = '$tc:';
const DATE_TAG = `${TAG}date`;
// Payloads that need reviving (Dates, escaped keys) start with this marker; the common case is
// decoded by a plain JSON.parse with no reviver, which is several times faster.
const REVIVE_MARK = '~';

/**
 * JSON with `Date`s kept as `Date`s. Rejects what JSON would silently change: BigInt (throws
 * in JSON.stringify already), circular structures, and non-finite numbers are left as JSON does
 * (null), as users of JSON expect.
 *
 * A Date travels as `{"$tc:date": ms}`. So that no user object can pass for one, a user key
 * that starts with `$tc:` gets one more `$tc:` in front on the way out and loses it on the way in.
 */
export function jsonSerializer(): Serializer {
  return {
    name: 'json',
    binary: false,
    encode(value) {
      let revive = false;
      let escape = false;
      const replacer = function (this: Record<string, unknown>, key: string, replaced: unknown): unknown {
        if (key.charCodeAt(0) === 36 /* $ */ && key.startsWith(TAG)) escape = true;
        const raw = this[key];
        if (raw instanceof Date) {
          revive = true;
          return { [DATE_TAG]: raw.getTime() };
        }
        return replaced;
      };
      const text = JSON.stringify(value, replacer);
      if (escape) {
        // Rare: encode again, renaming our prefix's keys in every object on the way.
        return (
          REVIVE_MARK +
          JSON.stringify(value, function (this: Record<string, unknown>, key: string, replaced: unknown) {
            const out = replacer.call(this, key, replaced);
            return out === replaced ? escapeKeys(out) : out;
          })
        );
      }
      return revive ? REVIVE_MARK + text : text;
    },
    decode(payload) {
      const text = typeof payload === 'string' ? payload : payload.toString('utf8');
      if (text.charCodeAt(0) !== 126 /* ~ */) return JSON.parse(text) as unknown;
      return JSON.parse(text.slice(1), (_key, value: unknown): unknown => {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
        if (Object.hasOwn(value, DATE_TAG)) return new Date((value as Record<string, number>)[DATE_TAG]!);
        return unescapeKeys(value as Record<string, unknown>);
      }) as unknown;
    },
  };
}

function escapeKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (!keys.some((key) => key.startsWith(TAG))) return value;
  const out: Record<string, unknown> = {};
  for (const key of keys)
    own(out, key.startsWith(TAG) ? TAG + key : key, (value as Record<string, unknown>)[key]);
  return out;
}

function unescapeKeys(value: Record<string, unknown>): Record<string, unknown> {
  const keys = Object.keys(value);
  if (!keys.some((key) => key.startsWith(TAG))) return value;
  const out: Record<string, unknown> = {};
  for (const key of keys) own(out, key.startsWith(TAG) ? key.slice(TAG.length) : key, value[key]);
  return out;
}

/**
 * Sets an own property, whatever its name: a plain assignment of `__proto__` (a key a payload
 * can carry, escaped or not) would set the copy's prototype to an object from the payload.
 */
function own(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}
