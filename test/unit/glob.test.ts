import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatcher } from '../../src/sync/glob.js';
import { GLOB_CASES as CASES } from '../helpers/glob-cases.js';

describe('the L1 glob matcher', () => {
  it('matches like Redis stringmatchlen, on UTF-8 bytes', () => {
    for (const [pattern, key, expected] of CASES)
      expect([pattern, key, globMatcher(pattern)(key)]).toEqual([pattern, key, expected]);
  });

  it('never throws for any pattern or key', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'binary' }), (p, k) => {
        expect(typeof globMatcher(p)(k)).toBe('boolean');
      }),
      { numRuns: 1_000 },
    );
  });

  it('does not backtrack exponentially (issue 19: *?*?… against a 40-character key)', () => {
    // Exponential matching needs on the order of C(60, 30) steps here: a hang, not a slow test.
    const stars = `${'*?'.repeat(30)}#`;
    expect(globMatcher(stars)('x'.repeat(60))).toBe(false);
    expect(globMatcher(stars)(`${'x'.repeat(59)}#`)).toBe(true);
    const nested = `${'*a'.repeat(40)}*b`;
    expect(globMatcher(nested)('a'.repeat(200))).toBe(false);
    expect(globMatcher('*?*?*?*?*?*?*?*?*?#')('k'.repeat(40))).toBe(false);
  });

  it('rejects a pattern needing more bytes than the key has without scanning it', () => {
    const huge = globMatcher(`${'[a-z]'.repeat(100_000)}`);
    for (let i = 0; i < 10_000; i++) expect(huge('abc')).toBe(false);
  });
});
