import { afterEach, beforeEach } from 'vitest';

/**
 * Records the unhandled promise rejections of each test of the calling file: `reasons` is
 * emptied before every test and the listener removed after it. Tests assert on it where a
 * rejection could go unobserved (timeouts, background work, faults).
 */
export function trackUnhandled(): { readonly reasons: unknown[] } {
  const tracked = { reasons: [] as unknown[] };
  const listener = (reason: unknown): void => {
    tracked.reasons.push(reason);
  };
  beforeEach(() => {
    tracked.reasons.length = 0;
    process.on('unhandledRejection', listener);
  });
  afterEach(() => {
    process.off('unhandledRejection', listener);
  });
  return tracked;
}
