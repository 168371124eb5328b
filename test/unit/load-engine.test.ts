import { describe, expect, it } from 'vitest';
import { createCache, hasErrorCode, memoryTier, type CacheOptions } from '../../src/index.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';

function setup(options: CacheOptions = {}) {
  const clock = new FakeClock();
  const cache = createCache({ tiers: [memoryTier()], clock: clock.read, ...options });
  return { cache, clock };
}

describe('loader cycles', () => {
  it('a loader that asks for its own key fails fast with E_LOADER_CYCLE instead of waiting forever', async () => {
    const { cache } = setup();
    const outcome = cache.getOrSet('a', () => cache.getOrSet('a', () => 'inner'));
    await expect(outcome).rejects.toSatisfy((error) => hasErrorCode(error, 'E_LOADER'));
    const error = await outcome.catch((e: { cause?: unknown }) => e.cause);
    expect(hasErrorCode(error, 'E_LOADER_CYCLE')).toBe(true);
    expect(await cache.getOrSet('a', () => 'fine')).toBe('fine');
  });

  it('a → b → a is a cycle; a → b → c is not', async () => {
    const { cache } = setup();
    const cycle = cache.getOrSet('a', () => cache.getOrSet('b', () => cache.getOrSet('a', () => 'x')));
    const cause = await cycle.then(
      () => undefined,
      (e: { cause?: { cause?: unknown } }) => e.cause?.cause,
    );
    expect(hasErrorCode(cause, 'E_LOADER_CYCLE')).toBe(true);
    expect(String((cause as Error).message)).toContain('"a" → "b"');
    const chain = await cache.getOrSet(
      'x',
      async () => `x+${await cache.getOrSet('y', () => cache.getOrSet('z', () => 'z'))}`,
    );
    expect(chain).toBe('x+z');
  });

  it('a cycle is still caught in a loader that outlives another one, and after every loader ended', async () => {
    const { cache } = setup();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = cache.getOrSet('slow', async () => {
      await gate;
      return cache.getOrSet('slow', () => 'inner');
    });
    // Another load starts and ends while the first one waits: its end must not lose the chain.
    expect(await cache.getOrSet('quick', () => 'q')).toBe('q');
    release();
    const cause = await slow.then(
      () => undefined,
      (e: { cause?: unknown }) => e.cause,
    );
    expect(hasErrorCode(cause, 'E_LOADER_CYCLE')).toBe(true);
    // With no loader running the chain is switched off; the next loads switch it on again.
    const again = cache.getOrSet('a', () => cache.getOrSet('a', () => 'inner'));
    const cause2 = await again.then(
      () => undefined,
      (e: { cause?: unknown }) => e.cause,
    );
    expect(hasErrorCode(cause2, 'E_LOADER_CYCLE')).toBe(true);
  });

  it('a batch loader that asks for one of its own keys fails fast', async () => {
    const { cache } = setup();
    const outcome = cache.getManyOrSet(['p', 'q'], async (keys) => {
      await cache.getOrSet('q', () => 'inner');
      return keys;
    });
    const cause = await outcome.then(
      () => undefined,
      (e: { cause?: unknown }) => e.cause,
    );
    expect(hasErrorCode(cause, 'E_LOADER_CYCLE')).toBe(true);
  });

  it('concurrent callers of one key from unrelated requests still share one flight', async () => {
    const { cache } = setup();
    const release = gate<string>();
    let calls = 0;
    const loader = () => {
      calls++;
      return release.promise;
    };
    const both = Promise.all([cache.getOrSet('k', loader), cache.getOrSet('k', loader)]);
    release.resolve('v');
    expect(await both).toEqual(['v', 'v']);
    expect(calls).toBe(1);
  });
});

describe('flights that answered early', () => {
  it('a read after a delete never joins a flight that answered stale before it (regression)', async () => {
    const { cache, clock } = setup({ grace: '10s' });
    await cache.set('k', 'old', { ttl: '1s' });
    clock.advance(1500);
    const held = gate<string>();
    // Answered at once from the kept copy; its refresh stays in flight behind the answer.
    expect(await cache.getOrSet('k', () => held.promise)).toBe('old');
    // Before the delete, callers join that flight and get the stale answer too.
    expect(await cache.getOrSet('k', () => 'not called')).toBe('old');
    await cache.delete('k');
    expect(await cache.getOrSet('k', () => 'fresh')).toBe('fresh');
    held.resolve('late');
  });
});

describe('close() and loads that never settle', () => {
  it('callers still waiting on a load get CacheClosedError once closeTimeout has passed', async () => {
    const { cache } = setup({ closeTimeout: 50 });
    const hung = cache.getOrSet('k', () => new Promise<string>(() => {}));
    const batch = cache.getManyOrSet(['m', 'n'], () => new Promise<string[]>(() => {}));
    await cache.close();
    await expect(hung).rejects.toSatisfy((error) => hasErrorCode(error, 'E_CLOSED'));
    await expect(batch).rejects.toSatisfy((error) => hasErrorCode(error, 'E_CLOSED'));
  });

  it('close() still waits for a load that finishes within closeTimeout, and its callers get the value', async () => {
    const { cache } = setup({ closeTimeout: '5s' });
    const release = gate<string>();
    const pending = cache.getOrSet('k', () => release.promise);
    const closing = cache.close();
    release.resolve('v');
    await closing;
    expect(await pending).toBe('v');
  });
});
