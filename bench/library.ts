/**
 * The library as users run it: the built package (dist/, which `npm run bench` builds first),
 * typed by its source. Importing the TypeScript source would time tsx's transform instead: it
 * wraps every closure the hot path creates in a naming helper, a fifth of an L2 hit's cost.
 */
import type * as Library from '../src/index.js';

// A variable, so that type-checking a fresh clone does not need dist/ to exist yet.
const built: string = '../dist/index.js';
const library = (await import(built)) as typeof Library;

export const { createCache, memoryTier, redisTier, GUARD_DEFAULTS } = library;
