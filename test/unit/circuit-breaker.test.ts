import { describe, expect, it } from 'vitest';
import { hasErrorCode } from '../../src/index.js';
import {
  CALL,
  CircuitBreaker,
  PROBE,
  SKIP,
  type BreakerOptions,
  type BreakerState,
} from '../../src/tiers/circuit-breaker.js';
import { FakeClock } from '../helpers/fake-clock.js';

function setup(options: BreakerOptions = {}) {
  const clock = new FakeClock();
  const changes: BreakerState[] = [];
  const breaker = new CircuitBreaker(options, clock.read, (state) => changes.push(state));
  const fail = (n: number) => {
    for (let i = 0; i < n; i++) breaker.record(breaker.admit(), false);
  };
  const succeed = (n: number) => {
    for (let i = 0; i < n; i++) breaker.record(breaker.admit(), true);
  };
  return { breaker, clock, changes, fail, succeed };
}

describe('opening', () => {
  it('opens after `failures` failures in the window and then skips calls', () => {
    const { breaker, changes, fail } = setup({ failures: 3 });
    fail(2);
    expect(breaker.state).toBe('closed');
    fail(1);
    expect(breaker.state).toBe('open');
    expect(changes).toEqual(['open']);
    expect(breaker.admit()).toBe(SKIP);
    expect(breaker.skipped).toBe(1);
    expect(breaker.opens).toBe(1);
  });

  it('opens on a streak of failures, however many calls succeeded before', () => {
    const { breaker, fail, succeed } = setup({ failures: 3 });
    succeed(1_000);
    fail(2);
    succeed(1);
    fail(2);
    expect(breaker.state).toBe('closed');
    fail(1);
    expect(breaker.state).toBe('open');
  });

  it('opens when scattered failures reach failureRate of the window, not before', () => {
    const mixed = (failureRate: number, every: number) => {
      const { breaker, fail, succeed } = setup({ failures: 3, failureRate });
      for (let i = 0; i < 60; i++) {
        succeed(every - 1);
        fail(1);
      }
      return breaker.state;
    };
    expect(mixed(0.5, 2)).toBe('open');
    expect(mixed(0.6, 2)).toBe('closed');
    expect(mixed(0.5, 3)).toBe('closed');
  });

  it('forgets failures that rolled out of the window', () => {
    const { breaker, clock, fail, succeed } = setup({ failures: 3, window: '10s' });
    fail(1);
    succeed(1);
    fail(1);
    succeed(1);
    clock.advance(11_000);
    fail(1);
    succeed(1);
    fail(1);
    succeed(1);
    expect(breaker.state).toBe('closed');
    fail(1);
    expect(breaker.state).toBe('open');
  });

  it('counts failures spread over the window', () => {
    const { breaker, clock, fail, succeed } = setup({ failures: 3, window: '10s' });
    fail(1);
    succeed(1);
    clock.advance(4_000);
    fail(1);
    succeed(1);
    clock.advance(4_000);
    expect(breaker.state).toBe('closed');
    fail(1);
    expect(breaker.state).toBe('open');
  });
});

describe('recovering', () => {
  it('lets one probe through after the cool-down and closes when it succeeds', () => {
    const { breaker, clock, changes, fail } = setup({ failures: 1, cooldown: '1s' });
    fail(1);
    clock.advance(999);
    expect(breaker.admit()).toBe(SKIP);
    clock.advance(1);
    const probe = breaker.admit();
    expect(probe).toBe(PROBE);
    expect(breaker.state).toBe('half-open');
    expect(breaker.admit()).toBe(SKIP);
    breaker.record(probe, true);
    expect(breaker.state).toBe('closed');
    expect(breaker.admit()).toBe(CALL);
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again for another cool-down when the probe fails', () => {
    const { breaker, clock, changes, fail } = setup({ failures: 1, cooldown: '1s' });
    fail(1);
    clock.advance(1_000);
    breaker.record(breaker.admit(), false);
    expect(breaker.state).toBe('open');
    expect(breaker.opens).toBe(2);
    clock.advance(500);
    expect(breaker.admit()).toBe(SKIP);
    clock.advance(500);
    expect(breaker.admit()).toBe(PROBE);
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open']);
  });

  it('ignores late outcomes of calls admitted before it opened', () => {
    const { breaker, clock, fail } = setup({ failures: 2, cooldown: '1s' });
    const early = [breaker.admit(), breaker.admit(), breaker.admit()];
    fail(2);
    for (const admission of early) breaker.record(admission, true);
    expect(breaker.state).toBe('open');
    clock.advance(1_000);
    const probe = breaker.admit();
    breaker.record(CALL, true);
    expect(breaker.state).toBe('half-open');
    breaker.record(probe, true);
    expect(breaker.state).toBe('closed');
  });

  it('starts from an empty window after closing', () => {
    const { breaker, clock, fail } = setup({ failures: 2, cooldown: '1s' });
    fail(2);
    clock.advance(1_000);
    breaker.record(breaker.admit(), true);
    fail(1);
    expect(breaker.state).toBe('closed');
  });

  it('lets another probe through when one never settles', () => {
    const { breaker, clock, fail } = setup({ failures: 1, cooldown: '1s' });
    fail(1);
    clock.advance(1_000);
    expect(breaker.admit()).toBe(PROBE);
    clock.advance(999);
    expect(breaker.admit()).toBe(SKIP);
    clock.advance(1);
    expect(breaker.admit()).toBe(PROBE);
  });
});

describe('options', () => {
  it.each([
    [{ failures: 0 }, 'breaker.failures'],
    [{ failures: 1.5 }, 'breaker.failures'],
    [{ failureRate: 0 }, 'breaker.failureRate'],
    [{ failureRate: 2 }, 'breaker.failureRate'],
    [{ window: 'soon' }, 'breaker.window'],
    [{ cooldown: 'forever' }, 'breaker.cooldown'],
    [{ cooldown: -1 }, 'breaker.cooldown'],
  ])('rejects %o naming %s', (options, path) => {
    let thrown: unknown;
    try {
      new CircuitBreaker(options as BreakerOptions, Date.now, () => {});
    } catch (error) {
      thrown = error;
    }
    expect(hasErrorCode(thrown, 'E_INVALID_OPTION')).toBe(true);
    expect((thrown as { option: string }).option).toBe(path);
  });
});
