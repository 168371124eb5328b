import { isCacheError, type CacheError } from '../../src/index.js';

/** The error `run` throws or rejects with; fails when it is not a CacheError, or when none comes. */
export async function refusal(run: () => unknown): Promise<CacheError> {
  try {
    await run();
  } catch (error) {
    if (isCacheError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}
