import type { Serializer } from './serializer.js';

const DATE_TAG = '$tc:date';
// Payloads that contain a Date start with this marker; the common case (no Dates) is decoded by a
// plain JSON.parse with no reviver, which is several times faster.
const REVIVE_MARK = '~';

/**
 * JSON with `Date`s kept as `Date`s. Rejects what JSON would silently change: BigInt (throws
 * in JSON.stringify already), circular structures, and non-finite numbers are left as JSON does
 * (null), as users of JSON expect.
 */
export function jsonSerializer(): Serializer {
  return {
    name: 'json',
    binary: false,
    encode(value) {
      let sawDate = false;
      const text = JSON.stringify(value, function (this: Record<string, unknown>, key, replaced: unknown) {
        const raw = this[key];
        if (raw instanceof Date) {
          sawDate = true;
          return { [DATE_TAG]: raw.getTime() };
        }
        return replaced;
      });
      return sawDate ? REVIVE_MARK + text : text;
    },
    decode(payload) {
      const text = typeof payload === 'string' ? payload : payload.toString('utf8');
      if (text.charCodeAt(0) !== 126 /* ~ */) return JSON.parse(text) as unknown;
      return JSON.parse(text.slice(1), (_key, value: unknown): unknown => {
        if (typeof value === 'object' && value !== null && DATE_TAG in value) {
          return new Date((value as Record<string, number>)[DATE_TAG] as number);
        }
        return value;
      }) as unknown;
    },
  };
}
