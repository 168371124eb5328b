import { Packr } from 'msgpackr';
import type { Serializer } from './serializer.js';

/**
 * MessagePack through msgpackr (an optional peer dependency): faster and smaller than JSON, and
 * keeps Dates, Maps, Sets, BigInts and binary data. Import from `tiercache/msgpack`.
 */
export function msgpackSerializer(): Serializer {
  // structuredClone mode keeps Maps and Sets apart from plain objects (and allows shared refs);
  // its record definitions travel inside each payload, so any instance can decode any payload.
  const packr = new Packr({ moreTypes: true, structuredClone: true });
  return {
    name: 'msgpack',
    binary: true,
    encode: (value) => packr.pack(value),
    decode: (payload): unknown =>
      packr.unpack(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload),
  };
}
