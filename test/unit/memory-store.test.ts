import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Entry, RemovalReason } from '../../src/entry.js';
import { MemoryStore } from '../../src/tiers/memory/memory-store.js';
import { lruPolicy } from '../../src/tiers/memory/policies.js';
import { tinyLfuPolicy } from '../../src/tiers/memory/tinylfu-policy.js';

const FOREVER = Number.POSITIVE_INFINITY;

function store(maxEntries: number, maxWeight = FOREVER, policy = lruPolicy) {
  const removed: [string, RemovalReason][] = [];
  const s = new MemoryStore({
    maxEntries,
    maxWeight,
    policy,
    onRemove: (key, _entry, reason) => removed.push([key, reason]),
  });
  return { s, removed };
}

const entry = (value: unknown, expiresAt = FOREVER, extra: Partial<Entry> = {}): Entry => ({
  value,
  createdAt: 5,
  expiresAt,
  ...extra,
});

describe('MemoryStore slots', () => {
  it('evicts in least-recently-used order under the lru policy', () => {
    const { s, removed } = store(3);
    for (const key of ['a', 'b', 'c']) s.set(key, entry(key), 1);
    expect(s.get('a', 0)?.value).toBe('a'); // a is now the most recent
    s.set('d', entry('d'), 1);
    s.set('e', entry('e'), 1);
    expect(removed).toEqual([
      ['b', 'evict'],
      ['c', 'evict'],
    ]);
    expect([...s.keys()].sort()).toEqual(['a', 'd', 'e']);
  });

  it('grows its arrays to maxEntries + 1 at most, and reuses freed slots instead of growing', () => {
    const { s } = store(1_000);
    for (let i = 0; i < 1_000; i++) s.set(`k${i}`, entry(i), 1);
    expect(s.capacity).toBeLessThanOrEqual(1_001);
    const full = s.capacity;
    for (let i = 0; i < 1_000; i++) s.delete(`k${i}`);
    expect(s.size).toBe(0);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 1_000; i++) s.set(`r${round}:${i}`, entry(i), 1);
      for (let i = 0; i < 1_000; i++) expect(s.peek(`r${round}:${i}`, 0)?.value).toBe(i);
      s.clear();
    }
    expect(s.capacity).toBe(full);
  });

  it('drops an entry at its expiry, and keeps one with a stale period for peekStale until it ends', () => {
    const { s, removed } = store(10);
    s.set('lean', entry('lean', 100), 1);
    s.set('stale', entry('stale', 100, { staleUntil: 200 }), 1);
    expect(s.get('lean', 99)).toEqual({ value: 'lean', createdAt: 5, expiresAt: 100 });
    expect(s.get('lean', 100)).toBeUndefined();
    expect(removed).toEqual([['lean', 'expire']]);
    expect(s.get('stale', 150)).toBeUndefined();
    expect(s.peekStale('stale', 150)).toEqual(entry('stale', 100, { staleUntil: 200 }));
    expect(s.get('stale', 200)).toBeUndefined();
    expect(removed).toEqual([
      ['lean', 'expire'],
      ['stale', 'expire'],
    ]);
  });

  it('answers tagged entries through the tag check, and drops them once invalidated', () => {
    const { s, removed } = store(10);
    let stale = false;
    s.tagged = () => stale;
    s.set('t', entry('v', FOREVER, { tags: ['a'] }), 1);
    expect(s.hit('t', 0)).toBeGreaterThanOrEqual(0);
    stale = true;
    expect(s.hit('t', 0)).toBe(-1);
    expect(removed).toEqual([['t', 'invalidate']]);
  });

  it('never hands a reused slot the previous key’s settled promise', async () => {
    const { s } = store(2);
    s.set('a', entry('A'), 1);
    const a = s.hit('a', 0);
    expect(s.settled(a)).toBe(s.settled(a));
    expect(await s.settled(a)).toBe('A');
    s.set('a', entry('A2'), 1);
    expect(await s.settled(s.hit('a', 0))).toBe('A2');
    s.delete('a');
    s.set('b', entry('B'), 1);
    const b = s.hit('b', 0);
    expect(b).toBe(a);
    expect(await s.settled(b)).toBe('B');
  });

  it('answers a large store’s hits with fresh promises of the slot’s current value', async () => {
    const { s } = store(100_000);
    s.set('a', entry('A'), 1);
    const a = s.hit('a', 0);
    // Past 32,768 slots no promise is kept per slot: each hit makes its own.
    expect(s.settled(a)).not.toBe(s.settled(a));
    expect(await s.settled(a)).toBe('A');
    s.set('a', entry('A2'), 1);
    expect(await s.settled(s.hit('a', 0))).toBe('A2');
  });

  it('caps every expiry with capExpiry, tagged and stale entries included', () => {
    const { s } = store(10);
    s.set('lean', entry(1, 1_000), 1);
    s.set('rich', entry(2, FOREVER, { tags: ['x'], staleUntil: FOREVER }), 1);
    s.capExpiry(50);
    expect(s.peek('lean', 0)?.expiresAt).toBe(50);
    expect(s.peek('rich', 0)?.expiresAt).toBe(50);
    expect(s.get('lean', 50)).toBeUndefined();
  });
});

/** Random operations for the model-based property: set, get, delete, clock ticks, clear. */
const ops = fc.array(
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('set' as const),
        key: fc.nat(40),
        weight: fc.integer({ min: 1, max: 60 }),
        life: fc.integer({ min: 1, max: 50 }),
        tagged: fc.boolean(),
      }),
    },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('get' as const), key: fc.nat(40) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: fc.nat(40) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), by: fc.nat(20) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear' as const) }) },
  ),
  { maxLength: 300 },
);

describe.each([
  ['lru', lruPolicy],
  ['tinylfu', tinyLfuPolicy({ seed: 3 })],
])('MemoryStore against a model (%s)', (_name, policy) => {
  it('holds what was last set for each resident key, within both bounds, and reports every removal once', () => {
    fc.assert(
      fc.property(ops, (steps) => {
        const maxEntries = 12;
        const maxWeight = 300;
        const { s, removed } = store(maxEntries, maxWeight, policy);
        /** What the store may hold: the last write of each key not removed since. */
        const model = new Map<string, { entry: Entry; weight: number }>();
        let now = 0;
        for (const step of steps) {
          if (step.kind === 'set') {
            const key = `k${step.key}`;
            const written = entry(`${key}@${now}`, now + step.life, step.tagged ? { tags: ['t'] } : {});
            s.set(key, written, step.weight);
            if (model.has(key)) expect(removed.pop()).toEqual([key, 'replace']);
            model.set(key, { entry: written, weight: step.weight });
          } else if (step.kind === 'get') {
            const key = `k${step.key}`;
            const got = s.get(key, now);
            const known = model.get(key);
            if (got !== undefined) expect(got).toEqual(known!.entry);
          } else if (step.kind === 'delete') {
            const key = `k${step.key}`;
            expect(s.delete(key)).toBe(model.has(key));
          } else if (step.kind === 'tick') {
            now += step.by;
          } else {
            s.clear();
          }
          // Whatever left was reported; whatever was reported left.
          for (const [key] of removed.splice(0)) model.delete(key);
          if (step.kind === 'clear') model.clear();
          expect(new Set(s.keys())).toEqual(new Set(model.keys()));
          let weight = 0;
          for (const [key, { entry: written, weight: w }] of model) {
            weight += w;
            const peeked = s.peekStale(key, -1);
            expect(peeked).toEqual(written);
          }
          expect(s.weight).toBe(weight);
          expect(s.size).toBeLessThanOrEqual(maxEntries);
          expect(s.weight).toBeLessThanOrEqual(maxWeight);
          expect(s.capacity).toBeLessThanOrEqual(maxEntries + 1);
        }
      }),
      { numRuns: 150, seed: 18 },
    );
  });
});

describe('MemoryStore suspects', () => {
  const stale = (value: string, staleUntil: number) => entry(value, 10, { staleUntil });

  it('demote empties the store, keeping what has a stale period aside, as no hit', () => {
    const { s, removed } = store(4);
    s.set('kept', stale('k', 100), 1);
    s.set('plain', entry('p', 50), 1);
    s.set('over', stale('o', 20), 1);
    s.demote(30, 'invalidate');
    expect(s.size).toBe(0);
    expect(removed.map(([key, reason]) => `${key}:${reason}`)).toEqual([
      'kept:invalidate',
      'plain:invalidate',
      'over:invalidate',
    ]);
    expect(s.get('kept', 30)).toBeUndefined();
    expect(s.peekStale('kept', 30)).toBeUndefined();
    expect(s.peekSuspect('kept', 30)?.value).toBe('k');
    expect(s.peekSuspect('plain', 30)).toBeUndefined();
    expect(s.peekSuspect('over', 30)).toBeUndefined();
    expect(s.peekSuspect('kept', 100)).toBeUndefined(); // its stale period is over
  });

  it('keeps at most maxEntries suspects over several demotions, the oldest going first', () => {
    const { s } = store(2);
    s.set('a', stale('a', 100), 1);
    s.set('b', stale('b', 100), 1);
    s.demote(0, 'invalidate');
    s.set('c', stale('c', 100), 1);
    s.demote(0, 'invalidate');
    expect(['a', 'b', 'c'].map((key) => s.peekSuspect(key, 0)?.value)).toEqual([undefined, 'b', 'c']);
  });

  it('forgets a suspect when its key is written, deleted, matched, or the store cleared', () => {
    const { s } = store(8);
    for (const key of ['w', 'd', 'm', 'f', 'c']) s.set(key, stale(key, 100), 1);
    s.demote(0, 'invalidate');
    s.set('w', entry('new', 1), 1);
    s.delete('w');
    s.delete('d');
    s.deleteWhere((key) => key === 'm', 'invalidate');
    s.forgetSuspect('f');
    expect(['w', 'd', 'm', 'f', 'c'].map((key) => s.peekSuspect(key, 0)?.value)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      'c',
    ]);
    s.clear();
    expect(s.peekSuspect('c', 0)).toBeUndefined();
  });

  it('never keeps one a tag invalidated', () => {
    const { s } = store(4);
    s.tagged = (e) => e.tags!.includes('gone');
    s.set('t', stale('t', 100), 1);
    s.set('u', entry('u', 10, { staleUntil: 100, tags: ['live'] }), 1);
    s.demote(0, 'invalidate');
    s.tagged = () => true;
    expect(s.peekSuspect('u', 0)).toBeUndefined();
    expect(s.peekSuspect('t', 0)?.value).toBe('t');
  });
});
