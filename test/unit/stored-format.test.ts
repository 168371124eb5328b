import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/entry.js';
import { jsonSerializer } from '../../src/serializers/json.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import type { Serializer } from '../../src/serializers/serializer.js';
import { STORED_FORMAT_VERSION, fromWire, toWire } from '../../src/tiers/envelope.js';

// Golden payloads of the stored-entry format (src/tiers/envelope.ts). Entries in Redis outlive
// the process that wrote them and are read by other versions during a rolling deploy, so these
// bytes may only change together with STORED_FORMAT_VERSION. They cover the envelope and its
// serializer's bytes, not a tier's payload framing around them (prefixes, compression marks):
// values are plain JSON-able data, which every serializer encodes the same way.

const T = 1_700_000_000_000;

interface Golden {
  name: string;
  entry: Entry;
  json: string;
  /** msgpack, hex. */
  msgpack: string;
}

const GOLDEN: Golden[] = [
  {
    name: 'a nested value with a finite life',
    entry: {
      value: { name: 'Ada', roles: ['admin', 'dev'], age: 36, ok: true, none: null },
      createdAt: T,
      expiresAt: T + 300_000,
    },
    json: '{"f":1,"c":1700000000000,"e":1700000300000,"v":{"name":"Ada","roles":["admin","dev"],"age":36,"ok":true,"none":null}}',
    msgpack:
      'd4724094a166a163a165a17601cb4278bcfe56800000cb4278bcfe9fbe0000d4724195a46e616d65a5726f6c6573a3616765a26f6ba46e6f6e65a341646192a561646d696ea364657624c3c0',
  },
  {
    name: 'an undefined value kept forever',
    entry: { value: undefined, createdAt: T, expiresAt: Number.POSITIVE_INFINITY },
    json: '{"f":1,"c":1700000000000,"e":null,"u":1}',
    msgpack: 'd4724094a166a163a165a17501cb4278bcfe56800000c001',
  },
  {
    name: 'null with a stale period and tags',
    entry: {
      value: null,
      createdAt: T,
      expiresAt: T + 60_000,
      staleUntil: T + 120_000,
      tags: ['user:1', 'team'],
    },
    json: '{"f":1,"c":1700000000000,"e":1700000060000,"v":null,"g":1700000120000,"t":["user:1","team"]}',
    msgpack:
      'd4724096a166a163a165a176a167a17401cb4278bcfe56800000cb4278bcfe65260000c0cb4278bcfe73cc000092a6757365723a31a47465616d',
  },
  {
    name: 'a string served stale forever',
    entry: { value: 'text', createdAt: T, expiresAt: T + 60_000, staleUntil: Number.POSITIVE_INFINITY },
    json: '{"f":1,"c":1700000000000,"e":1700000060000,"v":"text","g":null}',
    msgpack: 'd4724095a166a163a165a176a16701cb4278bcfe56800000cb4278bcfe65260000a474657874c0',
  },
];

/** The same entries as written by tiercache before the format had a version (version 0). */
const VERSION_0: { json: string; msgpack: string }[] = [
  {
    json: '{"c":1700000000000,"e":1700000300000,"v":{"name":"Ada","roles":["admin","dev"],"age":36,"ok":true,"none":null}}',
    msgpack:
      'd4724093a163a165a176cb4278bcfe56800000cb4278bcfe9fbe0000d4724195a46e616d65a5726f6c6573a3616765a26f6ba46e6f6e65a341646192a561646d696ea364657624c3c0',
  },
  { json: '{"c":1700000000000,"e":null,"u":1}', msgpack: 'd4724093a163a165a175cb4278bcfe56800000c001' },
  {
    json: '{"c":1700000000000,"e":1700000060000,"v":null,"g":1700000120000,"t":["user:1","team"]}',
    msgpack:
      'd4724095a163a165a176a167a174cb4278bcfe56800000cb4278bcfe65260000c0cb4278bcfe73cc000092a6757365723a31a47465616d',
  },
  {
    json: '{"c":1700000000000,"e":1700000060000,"v":"text","g":null}',
    msgpack: 'd4724094a163a165a176a167cb4278bcfe56800000cb4278bcfe65260000a474657874c0',
  },
];

const serializers: [string, Serializer, (golden: { json: string; msgpack: string }) => string | Buffer][] = [
  ['json', jsonSerializer(), (g) => g.json],
  ['msgpack', msgpackSerializer(), (g) => Buffer.from(g.msgpack, 'hex')],
];

function bytes(payload: string | Uint8Array): string {
  return typeof payload === 'string' ? payload : Buffer.from(payload).toString('hex');
}

function read(serializer: Serializer, payload: string | Buffer): Entry | string {
  return fromWire(serializer.decode(payload));
}

describe('stored entry format', () => {
  it('is version 1', () => {
    expect(STORED_FORMAT_VERSION).toBe(1);
  });

  describe.each(serializers)('with the %s serializer', (name, serializer, payloadOf) => {
    it.each(GOLDEN)('writes $name to the golden bytes and reads them back', (golden) => {
      const encoded = serializer.encode(toWire(golden.entry));
      expect(bytes(encoded)).toBe(name === 'json' ? golden.json : golden.msgpack);
      expect(read(serializer, payloadOf(golden))).toEqual(golden.entry);
    });

    it('reads entries written before the format had a version as version 0, unchanged', () => {
      VERSION_0.forEach((old, i) => {
        expect(read(serializer, payloadOf(old))).toEqual(GOLDEN[i]!.entry);
      });
    });

    it('refuses an entry of a newer version, naming it, instead of guessing at its fields', () => {
      const future = serializer.encode({ f: 2, c: T, e: null, v: 'looks readable' });
      const problem = read(serializer, typeof future === 'string' ? future : Buffer.from(future));
      expect(problem).toBe(
        'stored format version 2 is newer than this tiercache reads (up to 1); a later version wrote it',
      );
    });
  });

  it.each([0, -1, 1.5, '1', null, [1], { major: 1 }])('refuses the malformed version %j, naming it', (f) => {
    expect(fromWire({ f, c: T, e: null, v: 1 })).toMatch(/^unknown stored format version /);
  });

  it('ignores fields it does not know, so later versions may add some without a new version', () => {
    expect(fromWire({ f: 1, c: T, e: null, v: 1, z: { future: true } })).toEqual({
      value: 1,
      createdAt: T,
      expiresAt: Number.POSITIVE_INFINITY,
    });
  });

  it('writes the version first and no stale period that ends with the expiry', () => {
    const wire = toWire({ value: 1, createdAt: T, expiresAt: T + 1, staleUntil: T + 1 });
    expect(Object.keys(wire)).toEqual(['f', 'c', 'e', 'v']);
  });
});
