import { Packr } from 'msgpackr';
import type { Serializer } from './serializer.js';

/**
 * MessagePack through msgpackr (an optional peer dependency): faster and smaller than JSON, and
 * keeps Dates, Maps, Sets, BigInts and binary data. Import from `tiercache/msgpack`.
 */
export function msgpackSerializer(): Serializer {
  const packr = new Packr({ moreTypes: true, useRecords: false });
  return {
    name: 'msgpack',
    binary: true,
    encode: (value) => packr.pack(value),
    decode: (payload): unknown =>
      packr.unpack(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload),
  };
}
