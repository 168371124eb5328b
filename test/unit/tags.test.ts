import { describe, expect, it } from 'vitest';
import { fromWire, toWire } from '../../src/tiers/envelope.js';
import { TagTimes, checkTags } from '../../src/sync/tags.js';
import { emptyInvalidation } from '../../src/sync/message.js';

describe('tags on the wire and in process', () => {
  it('carries tags in the envelope field t, and rejects malformed ones', () => {
    const entry = { value: 1, createdAt: 5, expiresAt: 10, tags: ['a', 'b'] };
    const wire = toWire(entry);
    expect(wire.t).toEqual(['a', 'b']);
    expect(fromWire(JSON.parse(JSON.stringify(wire)))).toEqual(entry);
    expect(toWire({ value: 1, createdAt: 5, expiresAt: 10 })).not.toHaveProperty('t');
    expect(fromWire({ c: 1, e: 2, v: 3, t: 'a' })).toMatch(/tags/);
    expect(fromWire({ c: 1, e: 2, v: 3, t: [1] })).toMatch(/tags/);
  });

  it('an entry is stale when created at or before one of its tags’ times', () => {
    const times = new TagTimes(
      undefined,
      () => 100,
      () => Number.POSITIVE_INFINITY,
    );
    const inv = emptyInvalidation();
    inv.tags.set('a', 50);
    times.learn(inv);
    expect(times.isStale({ value: 1, createdAt: 50, expiresAt: 99, tags: ['b', 'a'] })).toBe(true);
    expect(times.isStale({ value: 1, createdAt: 51, expiresAt: 99, tags: ['b', 'a'] })).toBe(false);
    // A time never moves backwards.
    inv.tags.set('a', 10);
    times.learn(inv);
    expect(times.isStale({ value: 1, createdAt: 40, expiresAt: 99, tags: ['a'] })).toBe(true);
  });

  it('forgetting a time to stay bounded can only turn hits into misses', async () => {
    const times = new TagTimes(
      undefined,
      () => 0,
      () => Number.POSITIVE_INFINITY,
    );
    await times.invalidate(['first'], 1_000);
    for (let i = 0; i < 10_000; i++) await times.invalidate([`t${i}`], 1);
    expect(times.size).toBe(10_000);
    // 'first' was forgotten; its time became the floor for every unknown tag.
    expect(times.isStale({ value: 1, createdAt: 999, expiresAt: 2_000, tags: ['first'] })).toBe(true);
    expect(times.isStale({ value: 1, createdAt: 999, expiresAt: 2_000, tags: ['never'] })).toBe(true);
    expect(times.isStale({ value: 1, createdAt: 1_001, expiresAt: 2_000, tags: ['never'] })).toBe(false);
  });

  it('checkTags names the option and the bad value', () => {
    expect(() => checkTags('a')).toThrow(/"tags".*"a"/);
    expect(() => checkTags([''], 'setTags')).toThrow(/"setTags"/);
    expect(checkTags(['a'])).toEqual(['a']);
  });
});
