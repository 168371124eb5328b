import { InvalidOptionError, describe } from '../errors.js';

/**
 * Which tiers a write goes to, from a `writeTo` list of tier names: a mask aligned with the
 * cache's tiers (memory first), or undefined for "every tier" so the common case costs nothing.
 * Tiers left out of a write drop their copy of the key instead, so none keeps an older value.
 */
export type WriteMask = readonly boolean[];

export function writeMask(
  writeTo: unknown,
  tierNames: readonly string[],
  option: string,
): WriteMask | undefined {
  if (writeTo === undefined) return undefined;
  if (!Array.isArray(writeTo) || writeTo.length === 0) {
    throw new InvalidOptionError(
      option,
      `expected a non-empty array of tier names, got ${describe(writeTo)}`,
    );
  }
  const mask = tierNames.map(() => false);
  for (const name of writeTo) {
    const index = tierNames.indexOf(name as string);
    if (typeof name !== 'string' || index < 0) {
      throw new InvalidOptionError(
        option,
        `no tier is named ${describe(name)} (the tiers are ${tierNames.map((n) => `"${n}"`).join(', ')})`,
      );
    }
    mask[index] = true;
  }
  return mask.every(Boolean) ? undefined : mask;
}
