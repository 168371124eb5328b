import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, type Deadline } from '../../src/tiers/deadlines.js';

function call(expired: string[], name: string): Deadline {
  return { at: 0, previous: null, next: null, expire: () => expired.push(name) };
}

describe('Deadlines', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  it('expires the calls still in flight, oldest first, and none that settled', () => {
    const expired: string[] = [];
    const deadlines = new Deadlines(100);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((name) => call(expired, name));
    deadlines.start(a!);
    deadlines.start(b!);
    vi.advanceTimersByTime(50);
    deadlines.start(c!);
    deadlines.start(d!);
    deadlines.settle(b!); // from the middle
    deadlines.settle(d!); // the last
    deadlines.settle(d!); // twice is harmless
    vi.advanceTimersByTime(60);
    expect(expired).toEqual(['a']); // c has 40 ms left
    vi.advanceTimersByTime(50);
    expect(expired).toEqual(['a', 'c']);
  });

  it('holds nothing once every call has settled: a settled call is unlinked at once', () => {
    const expired: string[] = [];
    const deadlines = new Deadlines(100);
    const calls = Array.from({ length: 5 }, (_, i) => call(expired, `k${i}`));
    for (const c of calls) deadlines.start(c);
    for (const c of calls) deadlines.settle(c);
    for (const c of calls) expect([c.previous, c.next]).toEqual([null, null]);
    // A call started afterwards is the only one left, first and last.
    const late = call(expired, 'late');
    deadlines.start(late);
    expect([late.previous, late.next]).toEqual([null, null]);
    vi.advanceTimersByTime(200);
    expect(expired).toEqual(['late']);
  });
});
