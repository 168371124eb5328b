import type { TierCache } from '../../src/index.js';
import { done, notYet, waitFor } from './wait-for.js';

/** Resolves once every cache's bus has subscribed (before that, messages could be missed). */
export async function subscribed(...all: TierCache[]): Promise<void> {
  await waitFor(
    async () =>
      all.every((c) => c.stats().bus.subscribed === true) ? done(undefined) : notYet('not subscribed'),
    { description: 'every bus to subscribe', timeoutMs: 10_000, intervalMs: 10 },
  );
}

/** Runs `write`, then waits until every one of `others` has received its message. */
export async function heard(others: TierCache[], write: () => Promise<unknown>): Promise<void> {
  const before = others.map((c) => c.stats().bus.messagesIn);
  await write();
  await waitFor(
    async () =>
      others.every((c, i) => c.stats().bus.messagesIn > before[i]!)
        ? done(undefined)
        : notYet('not yet heard'),
    { description: 'the others to hear the write', intervalMs: 5 },
  );
}
