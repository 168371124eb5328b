/**
 * A fast 32-bit string hash for the L1 policy: FNV-1a over UTF-16 code units, finished with
 * murmur3's fmix32 so that keys differing only in their last characters still differ in the
 * high bits (FNV alone mixes those poorly, and the frequency sketch indexes with high bits).
 * It reads char codes in place, so hashing never allocates.
 *
 * The result keeps 30 bits so that it is a V8 small integer: a full unsigned 32-bit value is
 * stored boxed in a heap number for 3 keys in 4, an extra allocation per L1 node and an extra
 * load on every hit. Consumers re-mix it where they need 32 bits.
 */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h) >>> 2;
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}
