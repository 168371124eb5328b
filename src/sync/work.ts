import type { RemovalReason } from '../entry.js';
import type { MemoryStore } from '../tiers/memory/memory-store.js';

/**
 * How much matching one bus message may make L1 do, in steps (about one key byte looked at).
 * Whoever can PUBLISH chooses the patterns and namespaces a message names, and matching them
 * against every L1 key costs keys × names × key length at worst: one 200-byte pattern against
 * 5,000 200-byte keys took 345 ms, and 9,000 namespaces against 2,000 keys 716 ms. Counting
 * matches (patterns × entries) bounds none of that; counting steps does. 10 million steps are
 * some tens of ms on a slow core.
 */
export const MESSAGE_WORK_STEPS = 10_000_000;

/**
 * Steps left of a message's work; matchers given one spend it, and answer false without looking
 * once it is spent (the caller then drops everything).
 */
export interface WorkBudget {
  steps: number;
}

export function workBudget(steps = MESSAGE_WORK_STEPS): WorkBudget {
  return { steps };
}

/**
 * Drops from `store` the keys `matches` picks, spending `budget`. Once it is spent the rest is
 * not matched: all of the store is dropped instead, O(1) per entry, which drops at least what
 * the message named (costing hits, never correctness). The one rule for every bus match.
 */
export function dropMatching(
  store: MemoryStore,
  matches: (key: string) => boolean,
  budget: WorkBudget,
  reason: RemovalReason,
): void {
  store.deleteWhere((key) => budget.steps >= 0 && matches(key), reason);
  if (budget.steps < 0) store.clear(reason);
}
