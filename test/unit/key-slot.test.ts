import { describe, expect, it } from 'vitest';
import { keySlot } from '../../src/internal/key-slot.js';

describe('keySlot', () => {
  // Expected slots as `CLUSTER KEYSLOT` on a cluster-enabled Redis 7.0 answered them.
  it.each([
    ['123456789', 12739],
    ['foo', 12182],
    ['bar', 5061],
    ['{user1000}.following', 3443],
    ['{user1000}.followers', 3443],
    ['foo{}{bar}', 8363],
    ['{bar', 4015],
    ['foo{{bar}}zap', 4015],
    ['tc:product:1', 9835],
    ['ünïcødé', 1067],
  ])('%s → %d', (key, slot) => {
    expect(keySlot(key)).toBe(slot);
  });

  it('hashes the whole key when the tag is empty', () => {
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar'));
  });
});
