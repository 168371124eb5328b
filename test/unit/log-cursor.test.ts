import { describe, expect, it } from 'vitest';
import { LogCursor } from '../../src/sync/log-cursor.js';
import type { BusLog, LogRead } from '../../src/sync/replay-log.js';

/** A log whose reads the test answers, one at a time, when it chooses. */
function scriptedLog(): { log: BusLog; answer: (read: LogRead) => void; pending: () => number } {
  const waiting: ((read: LogRead) => void)[] = [];
  return {
    log: {
      publish: () => Promise.resolve(),
      read: () => new Promise<LogRead>((resolve) => waiting.push(resolve)),
    },
    answer: (read) => waiting.shift()!(read),
    pending: () => waiting.length,
  };
}

describe('LogCursor', () => {
  it('applies a message heard past a gap at once, before the log read that fills the gap answers', async () => {
    const { log, answer, pending } = scriptedLog();
    const replayed: string[] = [];
    let lost = 0;
    const cursor = new LogCursor('ch', log, { replay: (m) => replayed.push(m), lost: () => lost++ });
    // The first catch-up only takes the log's newest position.
    const first = cursor.catchUp();
    answer({ found: false, tail: '1-7' });
    expect(await first).toBe(true);

    const applied: string[] = [];
    cursor.receive('3-9', () => applied.push('3'));
    // Position 2 was missed: the log is being read, and message 3 is already applied.
    expect(pending()).toBe(1);
    expect(applied).toEqual(['3']);
    cursor.receive('4-1', () => applied.push('4'));
    expect(applied).toEqual(['3', '4']);
    answer({ found: true, entries: [['2-5', '{"m":2}']] });
    await cursor.catchUp();
    expect(replayed).toEqual(['{"m":2}']);
    // Each was applied once, and the cursor stands after the last of them.
    expect(applied).toEqual(['3', '4']);
    expect(cursor.position).toBe('4-1');
    cursor.receive('5-2', () => applied.push('5'));
    expect(applied).toEqual(['3', '4', '5']);
    expect(pending()).toBe(0);
    expect(lost).toBe(0);
  });
});
