import { describe, expect, it } from 'vitest';
import { findStaleReads, type HistoryOp } from '../helpers/history-checker.js';

const w = (k: string, v: number, s: number, e: number): HistoryOp => ({ t: 'w', k, v, s, e, ok: true });
const r = (k: string, v: number | null, s: number): HistoryOp => ({ t: 'r', k, v, s, e: s + 1, ok: true });

describe('the history checker of the multi-process bus test', () => {
  it('flags a read older than a write completed more than the bound before it began', () => {
    const writer = [w('a', 1, 0, 10), w('a', 2, 20, 30)];
    expect(findStaleReads([writer, [r('a', 1, 100)]], 50)).toHaveLength(1);
    expect(findStaleReads([writer, [r('a', null, 100)]], 50)).toHaveLength(1);
  });

  it('allows old reads within the bound, newer reads, and reads of lost data after a restart', () => {
    const writer = [w('a', 1, 0, 10), w('a', 2, 20, 30)];
    expect(findStaleReads([writer, [r('a', 1, 70), r('a', 2, 100), r('b', null, 100)]], 50)).toEqual([]);
    expect(findStaleReads([writer, [r('a', null, 100)]], 50, 40)).toEqual([]);
    expect(findStaleReads([writer, [r('a', 1, 100)]], 50, 40)).toHaveLength(1);
    const failed: HistoryOp = { ...w('a', 3, 40, 45), ok: false };
    expect(findStaleReads([[...writer, failed], [r('a', 2, 200)]], 50)).toEqual([]);
  });

  it('counts the bound from when the reader last yielded to I/O, when known', () => {
    const writer = [w('a', 1, 0, 10), w('a', 2, 20, 30)];
    // Yielded at 60, then descheduled until 300: the write that completed at 30 is within the bound of 60.
    expect(findStaleReads([writer, [{ ...r('a', 1, 300), y: 60 }]], 50)).toEqual([]);
    // Yielded at 90: the write completed 60 ms before, beyond the bound.
    expect(findStaleReads([writer, [{ ...r('a', 1, 300), y: 90 }]], 50)).toHaveLength(1);
  });
});
