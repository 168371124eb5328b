import { describe, expect, it } from 'vitest';
import {
  createCache,
  hasErrorCode,
  InvalidOptionError,
  LoaderError,
  type LoaderTimeoutError,
  memoryTier,
  type CacheEvents,
  type CacheOptions,
} from '../../src/index.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';
import { LOAD_PATHS } from '../helpers/load-paths.js';
import { waitFor, done, notYet } from '../helpers/wait-for.js';
import { trackUnhandled } from '../helpers/unhandled.js';

function setup(options: CacheOptions = {}) {
  const clock = new FakeClock();
  const cache = createCache({ tiers: [memoryTier({ ttl: 1000 })], clock: clock.read, ...options });
  const events: { name: keyof CacheEvents; payload: unknown }[] = [];
  for (const name of ['stale', 'refresh', 'refreshFailed', 'loaderError', 'loaderTimeout'] as const) {
    cache.on(name, (payload) => events.push({ name, payload }));
  }
  return { cache, clock, events };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

const unhandled = trackUnhandled().reasons;

describe.each(LOAD_PATHS)('stale-while-revalidate (grace), through $name', ({ load }) => {
  it('returns the expired value at once and refreshes it with one loader call', async () => {
    const { cache, clock, events } = setup({ grace: '10s' });
    await cache.set('k', 'old');
    clock.advance(1500);
    const release = gate<string>();
    let calls = 0;
    const loader = () => {
      calls++;
      return release.promise;
    };
    // Ten callers while the loader is held: all get the stale value without waiting.
    const values = await Promise.all(Array.from({ length: 10 }, () => load(cache, 'k', loader)));
    expect(values).toEqual(Array(10).fill('old'));
    expect(calls).toBe(1);
    release.resolve('new');
    await waitFor(async () => ((await cache.get('k')) === 'new' ? done(true) : notYet('old value')), {
      description: 'the refreshed value',
    });
    expect(await load(cache, 'k', loader)).toBe('new');
    expect(calls).toBe(1);
    const stats = cache.stats();
    expect(stats.staleServed).toBe(10);
    expect(stats.refresh).toEqual({ started: 1, failed: 0 });
    expect(events.filter((e) => e.name === 'refresh')).toEqual([
      { name: 'refresh', payload: { key: 'k', reason: 'grace' } },
    ]);
  });

  it('waits for the loader once grace has run out, and without grace', async () => {
    for (const options of [{ grace: 500 }, {}] as CacheOptions[]) {
      const { cache, clock } = setup(options);
      await cache.set('k', 'old');
      clock.advance(1600);
      expect(await load(cache, 'k', () => 'new')).toBe('new');
    }
  });

  it('takes grace per call', async () => {
    const { cache, clock } = setup();
    await load(cache, 'k', () => 'old', { grace: '5s' });
    clock.advance(1500);
    const release = gate<string>();
    expect(await load(cache, 'k', () => release.promise, { grace: '5s' })).toBe('old');
    release.resolve('new');
    await cache.close();
  });

  it('reports a failed refresh to onError and the refreshFailed event, never to the caller', async () => {
    const errors: unknown[] = [];
    const { cache, clock, events } = setup({ grace: '10s', onError: (error) => errors.push(error) });
    await cache.set('k', 'old');
    clock.advance(1500);
    expect(
      await load(cache, 'k', () => {
        throw new Error('origin down');
      }),
    ).toBe('old');
    await waitFor(async () => (cache.stats().refresh.failed === 1 ? done(true) : notYet('no failure yet')), {
      description: 'the refresh failure',
    });
    expect(errors).toHaveLength(1);
    expect(hasErrorCode(errors[0], 'E_LOADER')).toBe(true);
    expect(events.some((e) => e.name === 'refreshFailed')).toBe(true);
    expect(await load(cache, 'k', () => 'new')).toBe('old');
  });

  it('close() waits for a background refresh', async () => {
    const { cache, clock } = setup({ grace: '10s' });
    await cache.set('k', 'old');
    clock.advance(1500);
    const release = gate<string>();
    let finished = false;
    await load(cache, 'k', async () => {
      const value = await release.promise;
      finished = true;
      return value;
    });
    setTimeout(() => release.resolve('new'), 30);
    await cache.close();
    expect(finished).toBe(true);
  });

  it('close() gives up on a refresh that never settles after closeTimeout; a late failure is reported, not unhandled', async () => {
    const errors: unknown[] = [];
    const { cache, clock } = setup({ grace: '10s', closeTimeout: 50, onError: (e) => errors.push(e) });
    await cache.set('k', 'old');
    clock.advance(1500);
    const never = gate<string>();
    expect(await load(cache, 'k', () => never.promise)).toBe('old');
    const started = performance.now();
    await cache.close();
    expect(performance.now() - started).toBeLessThan(2_000);
    // The abandoned loader fails later: reported through onError like any refresh failure.
    never.reject(new Error('origin gone'));
    await waitFor(async () => (errors.length > 0 ? done(true) : notYet('no error reported yet')), {
      description: 'the late refresh failure to be reported',
    });
    expect(unhandled).toEqual([]);
  });

  it('rejects a closeTimeout that is not a duration, naming the option', () => {
    expect(() => createCache({ closeTimeout: '5 parsecs' as never })).toThrow(InvalidOptionError);
    expect(() => createCache({ closeTimeout: '5 parsecs' as never })).toThrow(/closeTimeout/);
  });
});

describe.each(LOAD_PATHS)('fail-safe, through $name', ({ name, load }) => {
  it('serves the stale value when the loader throws, then backs off from the loader', async () => {
    const { cache, clock, events } = setup({ failSafe: { maxStaleAge: '1m', backoff: '5s' } });
    await cache.set('k', 'old');
    clock.advance(1500);
    let calls = 0;
    const failing = () => {
      calls++;
      throw new Error('origin down');
    };
    expect(await load(cache, 'k', failing)).toBe('old');
    expect(calls).toBe(1);
    expect(events).toContainEqual({ name: 'stale', payload: { key: 'k', reason: 'failSafe' } });
    expect(events.find((e) => e.name === 'loaderError')).toBeDefined();
    // Within the back-off the failing loader is left alone.
    clock.advance(4000);
    expect(await load(cache, 'k', failing)).toBe('old');
    expect(calls).toBe(1);
    expect(events).toContainEqual({ name: 'stale', payload: { key: 'k', reason: 'backoff' } });
    clock.advance(2000);
    expect(await load(cache, 'k', () => 'new')).toBe('new');
    expect(cache.stats().staleServed).toBe(2);
  });

  it.skipIf(name !== 'getOrSet')(
    'getManyOrSet backs off per key too, and loads only the keys not backing off',
    async () => {
      const { cache, clock, events } = setup({ failSafe: { maxStaleAge: '1m', backoff: '5s' } });
      await cache.setMany([
        { key: 'a', value: 'a0' },
        { key: 'b', value: 'b0' },
      ]);
      clock.advance(1500);
      const asked: string[][] = [];
      const failing = (keys: string[]) => {
        asked.push(keys);
        throw new Error('origin down');
      };
      expect(await cache.getManyOrSet(['a', 'b'], failing)).toEqual(['a0', 'b0']);
      // Within the back-off only the key that never failed reaches the loader.
      clock.advance(4000);
      expect(await cache.getManyOrSet(['a', 'b', 'c'], async (keys) => keys.map((k) => `${k}1`))).toEqual([
        'a0',
        'b0',
        'c1',
      ]);
      expect(await cache.getManyOrSet(['a', 'b'], failing)).toEqual(['a0', 'b0']);
      expect(asked).toEqual([['a', 'b']]);
      expect(events.filter((e) => e.name === 'stale').map((e) => e.payload)).toEqual([
        { key: 'a', reason: 'failSafe' },
        { key: 'b', reason: 'failSafe' },
        { key: 'a', reason: 'backoff' },
        { key: 'b', reason: 'backoff' },
        { key: 'a', reason: 'backoff' },
        { key: 'b', reason: 'backoff' },
      ]);
      // After it, they load again; a success ends the back-off.
      clock.advance(2000);
      expect(await cache.getManyOrSet(['a', 'b'], async (keys) => keys.map((k) => `${k}2`))).toEqual([
        'a2',
        'b2',
      ]);
    },
  );

  it('rejects with the LoaderError without fail-safe, or once the value is older than maxStaleAge', async () => {
    const failing = () => {
      throw new Error('origin down');
    };
    const plain = setup();
    await plain.cache.set('k', 'old');
    plain.clock.advance(1500);
    expect(await rejection(load(plain.cache, 'k', failing))).toBeInstanceOf(LoaderError);

    const aged = setup({ failSafe: { maxStaleAge: '10s' } });
    await aged.cache.set('k', 'old');
    aged.clock.advance(1000 + 10_001);
    expect(await rejection(load(aged.cache, 'k', failing))).toBeInstanceOf(LoaderError);
  });

  it('keeps stale entries in L1 only for maxStaleAge, then drops them', async () => {
    const { cache, clock } = setup({ failSafe: { maxStaleAge: '10s' } });
    await cache.set('k', 'old');
    clock.advance(5000);
    expect(await cache.get('k')).toBeUndefined(); // expired: never a hit
    expect(cache.stats().memory!.entries).toBe(1); // but kept for fail-safe
    clock.advance(6001);
    expect(await cache.get('k')).toBeUndefined();
    expect(cache.stats().memory!.entries).toBe(0);
  });
});

describe.each(LOAD_PATHS)('loader timeouts, through $name', ({ load }) => {
  it('soft timeout: returns the stale value, and caches the loader result when it lands', async () => {
    const { cache, clock, events } = setup({ failSafe: true, softTimeout: 30 });
    await cache.set('k', 'old');
    clock.advance(1500);
    const release = gate<string>();
    expect(await load(cache, 'k', () => release.promise)).toBe('old');
    expect(events).toContainEqual({ name: 'loaderTimeout', payload: { key: 'k', kind: 'soft' } });
    expect(events).toContainEqual({ name: 'stale', payload: { key: 'k', reason: 'softTimeout' } });
    release.resolve('new');
    await waitFor(async () => ((await cache.get('k')) === 'new' ? done(true) : notYet('not landed')), {
      description: 'the late loader result',
    });
    expect(cache.stats().loaderTimeouts).toEqual({ soft: 1, hard: 0 });
  });

  it('soft timeout does nothing when there is no stale value', async () => {
    const { cache } = setup({ softTimeout: 10, hardTimeout: 5000 });
    const release = gate<string>();
    const pending = load(cache, 'k', () => release.promise);
    setTimeout(() => release.resolve('v'), 60);
    expect(await pending).toBe('v');
  });

  it('hard timeout: rejects with LoaderTimeoutError, and still caches a late result', async () => {
    const { cache, events } = setup({ hardTimeout: 30 });
    const release = gate<string>();
    const error = await rejection(load(cache, 'k', () => release.promise));
    expect(hasErrorCode(error, 'E_LOADER_TIMEOUT')).toBe(true);
    expect(events).toContainEqual({ name: 'loaderTimeout', payload: { key: 'k', kind: 'hard' } });
    release.resolve('late');
    await waitFor(async () => ((await cache.get('k')) === 'late' ? done(true) : notYet('not landed')), {
      description: 'the late loader result',
    });
    expect(cache.stats().loaderTimeouts.hard).toBe(1);
  });

  it('hard timeout under fail-safe serves the stale value', async () => {
    const { cache, clock } = setup({ failSafe: true, hardTimeout: 30 });
    await cache.set('k', 'old');
    clock.advance(1500);
    expect(await load(cache, 'k', () => new Promise<string>(() => {}))).toBe('old');
  });
});

describe('loader timeouts in getManyOrSet', () => {
  it('soft timeout: keys with kept copies are answered from them; the others wait; the late result is cached', async () => {
    const { cache, clock, events } = setup({ failSafe: true, softTimeout: 30 });
    await cache.set('kept', 'old');
    clock.advance(1500);
    const release = gate<string[]>();
    const pending = cache.getManyOrSet(['kept', 'fresh'], () => release.promise);
    await waitFor(
      async () =>
        events.some((e) => e.name === 'loaderTimeout') ? done(true) : notYet('no soft timeout yet'),
      { description: 'the soft timeout' },
    );
    release.resolve(['new', 'loaded']);
    expect(await pending).toEqual(['old', 'loaded']);
    expect(events.filter((e) => e.name === 'loaderTimeout').map((e) => e.payload)).toEqual([
      { key: 'kept', kind: 'soft' },
    ]);
    expect(events).toContainEqual({ name: 'stale', payload: { key: 'kept', reason: 'softTimeout' } });
    expect(await cache.get('kept')).toBe('new');
    expect(cache.stats().loaderTimeouts).toEqual({ soft: 1, hard: 0 });
  });

  it('hard timeout: rejects with LoaderTimeoutError (kept copies under fail-safe), and still caches a late result', async () => {
    const { cache, clock, events } = setup({ failSafe: true, hardTimeout: 30 });
    await cache.set('kept', 'old');
    clock.advance(1500);
    const release = gate<string[]>();
    const error = await rejection(cache.getManyOrSet(['kept', 'fresh'], () => release.promise));
    expect(hasErrorCode(error, 'E_LOADER_TIMEOUT')).toBe(true);
    expect((error as LoaderTimeoutError).key).toBe('fresh');
    // The kept key was answered from its copy, and backs off from the loader.
    expect(events).toContainEqual({ name: 'stale', payload: { key: 'kept', reason: 'failSafe' } });
    expect(await cache.getManyOrSet(['kept'], () => Promise.reject(new Error('not asked')))).toEqual(['old']);
    release.resolve(['new', 'late']);
    await waitFor(async () => ((await cache.get('fresh')) === 'late' ? done(true) : notYet('not landed')), {
      description: 'the late batch result',
    });
    expect(cache.stats().loaderTimeouts).toEqual({ soft: 0, hard: 2 });
  });
});

describe.each(LOAD_PATHS)('eager refresh, through $name', ({ name, load }) => {
  it('refreshes a hot key in the background in the last part of its life, once', async () => {
    const { cache, clock, events } = setup({ eagerRefresh: 0.8 });
    let calls = 0;
    const release = gate<string>();
    const loader = () => (++calls === 1 ? 'v1' : release.promise);
    expect(await load(cache, 'k', loader)).toBe('v1');
    clock.advance(700);
    expect(await load(cache, 'k', loader)).toBe('v1');
    expect(calls).toBe(1);
    clock.advance(150); // 85% of the life
    for (let i = 0; i < 20; i++) expect(await load(cache, 'k', loader)).toBe('v1');
    expect(calls).toBe(2);
    expect(events).toContainEqual({ name: 'refresh', payload: { key: 'k', reason: 'eager' } });
    release.resolve('v2');
    await waitFor(async () => ((await cache.get('k')) === 'v2' ? done(true) : notYet('not refreshed')), {
      description: 'the eager refresh',
    });
    // The refreshed entry lives a full TTL from the refresh: past the first one's expiry, still a hit.
    clock.advance(700);
    expect(await load(cache, 'k', loader)).toBe('v2');
    expect(calls).toBe(2);
  });

  it.skipIf(name !== 'getOrSet')(
    'getManyOrSet refreshes its due L1 hits with one background batch call, once',
    async () => {
      const { cache, clock, events } = setup({ eagerRefresh: 0.8 });
      const asked: string[][] = [];
      const release = gate<string[]>();
      const loader = (keys: string[]) => {
        asked.push(keys);
        return asked.length === 1 ? Promise.resolve(keys.map((k) => `${k}1`)) : release.promise;
      };
      expect(await cache.getManyOrSet(['a', 'b'], loader)).toEqual(['a1', 'b1']);
      clock.advance(500);
      await cache.set('c', 'c0'); // written later: not due yet
      clock.advance(350); // 85% of a and b's life
      for (let i = 0; i < 10; i++)
        expect(await cache.getManyOrSet(['a', 'b', 'c'], loader)).toEqual(['a1', 'b1', 'c0']);
      expect(asked).toEqual([
        ['a', 'b'],
        ['a', 'b'],
      ]);
      // A getOrSet hit on a key the batch is refreshing leaves it to the batch.
      let single = 0;
      expect(await load(cache, 'a', () => `a${++single}`)).toBe('a1');
      expect(single).toBe(0);
      expect(events.filter((e) => e.name === 'refresh').map((e) => e.payload)).toEqual([
        { key: 'a', reason: 'eager' },
        { key: 'b', reason: 'eager' },
      ]);
      release.resolve(['a2', 'b2']);
      await waitFor(async () => ((await cache.get('b')) === 'b2' ? done(true) : notYet('not refreshed')), {
        description: 'the eager batch refresh',
      });
      expect(await cache.get('a')).toBe('a2');
      expect(cache.stats()).toMatchObject({ staleServed: 0, refresh: { started: 2, failed: 0 } });
    },
  );

  it.skipIf(name !== 'getOrSet')(
    'getManyOrSet reports a failed eager refresh and keeps serving the live copies',
    async () => {
      const { cache, clock, events } = setup({ eagerRefresh: 0.5 });
      await cache.setMany([
        { key: 'a', value: 'a0' },
        { key: 'b', value: 'b0' },
      ]);
      clock.advance(600);
      const failing = () => Promise.reject(new Error('origin down'));
      expect(await cache.getManyOrSet(['a', 'b'], failing)).toEqual(['a0', 'b0']);
      await waitFor(
        async () =>
          cache.stats().refresh.failed === 2 ? done(true) : notYet(`${cache.stats().refresh.failed} failed`),
        { description: 'both refreshes to fail' },
      );
      expect(events.filter((e) => e.name === 'refreshFailed').length).toBe(2);
      expect(await cache.getManyOrSet(['a', 'b'], async (keys) => keys)).toEqual(['a0', 'b0']);
      expect(unhandled).toEqual([]);
    },
  );

  it('does nothing when off', async () => {
    const { cache, clock } = setup();
    let calls = 0;
    await load(cache, 'k', () => ++calls);
    clock.advance(950);
    await load(cache, 'k', () => ++calls);
    await cache.close();
    expect(calls).toBe(1);
  });

  it('can be turned on per call', async () => {
    const { cache, clock } = setup();
    let calls = 0;
    await load(cache, 'k', () => ++calls);
    clock.advance(950);
    await load(cache, 'k', () => ++calls, { eagerRefresh: 0.5 });
    await cache.close();
    expect(calls).toBe(2);
  });
});

describe('options', () => {
  it('rejects bad resilience options at construction, naming them', () => {
    const bad: [CacheOptions, string][] = [
      [{ grace: -1 }, 'grace'],
      [{ eagerRefresh: 1.5 }, 'eagerRefresh'],
      [{ softTimeout: 100, hardTimeout: 50 }, 'softTimeout'],
      [{ failSafe: 'yes' as never }, 'failSafe'],
      [{ failSafe: { maxStaleAge: 'soon' as never } }, 'failSafe.maxStaleAge'],
      [{ lock: true }, 'lock'],
    ];
    for (const [options, option] of bad) {
      let thrown: unknown;
      try {
        createCache(options);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, option).toBeInstanceOf(InvalidOptionError);
      expect((thrown as InvalidOptionError).option).toBe(option);
    }
  });

  it('rejects a bad per-call option', async () => {
    const { cache } = setup();
    expect(await rejection(cache.getOrSet('k', () => 1, { hardTimeout: 'x' as never }))).toBeInstanceOf(
      InvalidOptionError,
    );
  });
});
