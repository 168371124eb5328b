/** Returns the current time in epoch milliseconds; injectable so tests can use a fake one. */
export type Clock = () => number;

export const systemClock: Clock = Date.now;

/** A monotonic clock in ms for timing calls. */
export const now: () => number = performance.now.bind(performance);

/**
 * A clock for the L1 hit path, where Date.now() would be a quarter of the cost of a hit. The
 * time is cached until an unref'd timer clears it after `resolutionMs`, and re-read at least
 * every `maxUses` calls, because timers cannot fire while a long run of microtasks (awaits on
 * settled promises) holds the event loop. Expiry checks may therefore lag by about a
 * millisecond; nothing else depends on it.
 */
export function coarseClock(resolutionMs = 1, maxUses = 1024): Clock {
  let cached = 0;
  let uses = 0;
  let timer: NodeJS.Timeout | undefined;
  const expire = (): void => {
    cached = 0;
    timer = undefined;
  };
  return () => {
    if (cached !== 0 && --uses > 0) return cached;
    cached = Date.now();
    uses = maxUses;
    if (timer === undefined) {
      timer = setTimeout(expire, resolutionMs);
      timer.unref();
    }
    return cached;
  };
}
