import type { WorkBudget } from './work.js';

/**
 * Redis glob patterns (the MATCH syntax of SCAN and KEYS) as a predicate, so L1 drops exactly
 * the keys a `deleteByPattern` removed from Redis. Patterns come from the bus, i.e. from anyone
 * who can PUBLISH on the channel, so this never throws and never backtracks exponentially.
 *
 * Semantics are those of Redis 7's `stringmatchlen` (util.c) with case-sensitive matching, on the
 * UTF-8 bytes Redis stores (a key's string is encoded exactly as the Redis client sends it):
 * - `*` any run of bytes, `?` any one byte, `\x` the byte x (a trailing `\` is a literal `\`);
 * - `[...]` one byte from a class: `^` first negates it, `\x` is x, `a-z` a range whose ends
 *   Redis swaps when reversed (`[z-a]` is `[a-z]`) and compares as signed chars (so a range
 *   with a byte of 0x80 or more wraps the way Redis's does), `]` first closes an empty class
 *   (`[]` matches nothing, `[^]` any byte); an unterminated class ends with the pattern (`k[ab`
 *   is `k[ab]`, a lone trailing `[` matches nothing, `[^` any byte);
 * - the empty key matches only the empty pattern (Redis 7), and `*` itself: KEYS and SCAN take
 *   a lone `*` as "every key" without matching.
 * The class grammar never depends on the key, so a pattern compiles once into tokens that each
 * match exactly one byte, or `*`. Matching is then the classic greedy scan that backs up to the
 * last `*` only: O(key × pattern) at worst, and a pattern needing more bytes than the key has
 * fails at once, so a huge pattern costs O(key²) per key at most. That is still too much for a
 * bus message to spend on every L1 key, so a matcher may be given a budget of steps it spends
 * (see work.ts).
 *
 * Redis 7.2.6+ also gives up (no match) beyond 1000 nested `*`s; L1 matching those keys anyway
 * only drops more than Redis did, which costs hits, never correctness.
 */
export function globMatcher(pattern: string, budget?: WorkBudget): (key: string) => boolean {
  // KEYS and SCAN skip matching for exactly `*`: everything, the empty key included.
  if (pattern === '*') return () => true;
  const compiled = compile(encoder.encode(pattern));
  return budget === undefined
    ? (key) => matches(compiled, key, UNBOUNDED)
    : (key) => matches(compiled, key, budget);
}

/** The budget of a match nobody bounds (an application's own deleteByPattern). */
const UNBOUNDED: WorkBudget = { steps: Number.POSITIVE_INFINITY };

const STAR = 0;
const ANY = 1;
const BYTE = 2;
const SET = 3;

interface Compiled {
  /** One of STAR, ANY, BYTE, SET per token. */
  readonly kinds: Uint8Array;
  /** BYTE: the byte; SET: where its 256-bit membership set starts in `sets`. */
  readonly args: Uint32Array;
  /** Classes as 8 words of 32 bits each (negation already applied). */
  readonly sets: Uint32Array;
  readonly length: number;
  /** Bytes a key needs at least: the tokens that are not `*`. */
  readonly minBytes: number;
}

const encoder = new TextEncoder();
/** Reused for each key's UTF-8 bytes; grown when a longer key comes. */
let scratch = new Uint8Array(256);

/** A byte as C's (signed) char, which Redis's class ranges compare. */
function signed(byte: number): number {
  return byte < 128 ? byte : byte - 256;
}

function compile(p: Uint8Array): Compiled {
  const n = p.length;
  const kinds = new Uint8Array(n);
  const args = new Uint32Array(n);
  let classes = 0;
  for (let j = 0; j < n; j++) if (p[j] === 0x5b) classes++;
  const sets = new Uint32Array(classes * 8);
  let nextSet = 0;
  let length = 0;
  let minBytes = 0;
  let i = 0;
  while (i < n) {
    const ch = p[i]!;
    if (ch === 0x2a /* * */) {
      if (length === 0 || kinds[length - 1] !== STAR) kinds[length++] = STAR;
      i++;
      continue;
    }
    minBytes++;
    if (ch === 0x3f /* ? */) {
      kinds[length++] = ANY;
      i++;
    } else if (ch === 0x5b /* [ */) {
      const at = nextSet;
      nextSet += 8;
      const add = (byte: number): void => {
        sets[at + (byte >>> 5)]! |= 1 << (byte & 31);
      };
      i++;
      const negate = i < n && p[i] === 0x5e; /* ^ */
      if (negate) i++;
      for (;;) {
        if (i < n && p[i] === 0x5c /* \ */ && n - i >= 2) {
          i++;
          add(p[i]!);
        } else if (i < n && p[i] === 0x5d /* ] */) {
          break;
        } else if (i >= n) {
          // Unterminated: the class ends with the pattern (Redis steps back onto its last byte).
          i--;
          break;
        } else if (n - i >= 3 && p[i + 1] === 0x2d /* - */) {
          const a = signed(p[i]!);
          const b = signed(p[i + 2]!);
          const hi = Math.max(a, b);
          for (let c = Math.min(a, b); c <= hi; c++) add(c & 0xff);
          i += 2;
        } else {
          add(p[i]!);
        }
        i++;
      }
      i++;
      if (negate) for (let w = at; w < at + 8; w++) sets[w] = ~sets[w]! >>> 0;
      kinds[length] = SET;
      args[length++] = at;
    } else {
      // `\x` is x; a `\` that ends the pattern is itself.
      if (ch === 0x5c && n - i >= 2) i++;
      kinds[length] = BYTE;
      args[length++] = p[i]!;
      i++;
    }
  }
  return { kinds, args, sets, length, minBytes };
}

/**
 * Whether `key` matches, spending a step per key byte encoded and per byte compared on
 * `budget`; false without looking once it is spent (the caller then drops everything).
 */
function matches(c: Compiled, key: string, budget: WorkBudget): boolean {
  if (budget.steps < 0) return false;
  // Every UTF-16 unit takes at most 3 UTF-8 bytes.
  if (scratch.length < key.length * 3) scratch = new Uint8Array(key.length * 3);
  const s = scratch;
  const n = encoder.encodeInto(key, s).written;
  budget.steps -= n;
  if (n === 0) return c.length === 0;
  if (c.minBytes > n) return false;
  const { kinds, args, sets, length } = c;
  let t = 0;
  let i = 0;
  // The last `*` seen and where in the key it currently stops: on a mismatch it takes one more
  // byte. Earlier `*`s never need to: every token but `*` takes exactly one byte, so any match
  // an earlier star could make longer, the last one can make too.
  let star = -1;
  let starAt = 0;
  let steps = 0;
  while (i < n) {
    steps++;
    if (t < length) {
      const kind = kinds[t]!;
      if (kind === STAR) {
        star = t++;
        starAt = i;
        continue;
      }
      const b = s[i]!;
      if (
        kind === ANY ||
        (kind === BYTE ? args[t] === b : (sets[args[t]! + (b >>> 5)]! & (1 << (b & 31))) !== 0)
      ) {
        t++;
        i++;
        continue;
      }
    }
    if (star < 0) {
      budget.steps -= steps;
      return false;
    }
    t = star + 1;
    i = ++starAt;
  }
  budget.steps -= steps;
  while (t < length && kinds[t] === STAR) t++;
  return t === length;
}
