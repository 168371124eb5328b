import { describe, InvalidOptionError } from '../../errors.js';
import { LruPolicy } from './lru-policy.js';
import type { PolicyFactory } from './policy.js';
import { tinyLfuPolicy } from './tinylfu-policy.js';

/** Plain LRU as a `PolicyFactory`. */
export const lruPolicy: PolicyFactory = (bounds, slots, evict) => new LruPolicy(bounds, slots, evict);

/** The built-in policies by name. `tinylfu` (adaptive W-TinyLFU) is the default for L1. */
export const policies = Object.freeze({
  lru: lruPolicy,
  tinylfu: tinyLfuPolicy(),
}) satisfies Readonly<Record<string, PolicyFactory>>;

export type PolicyName = keyof typeof policies;

/** A policy factory from its name or the factory itself. */
export function resolvePolicy(policy: PolicyName | PolicyFactory, option = 'policy'): PolicyFactory {
  if (typeof policy === 'function') return policy;
  if (typeof policy === 'string' && Object.hasOwn(policies, policy)) return policies[policy];
  throw new InvalidOptionError(
    option,
    `expected ${Object.keys(policies)
      .map((name) => `"${name}"`)
      .join(' or ')} or a policy factory, received ${describe(policy)}.`,
  );
}
