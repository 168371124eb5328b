import { InvalidOptionError } from '../errors.js';

/**
 * The option names of type `T`, listed once: the mapped type makes the compiler insist on every
 * name of `T` and refuse any other, so the list cannot drift from the interface.
 */
export function optionNames<T extends object>(names: { [K in keyof Required<T>]: true }): OptionNames {
  return new OptionNames(Object.keys(names));
}

/**
 * The names an options object may hold. A misspelled option is otherwise silently ignored,
 * and the default it leaves in place can be the opposite of what was asked (a `hardtimeut`
 * leaves a hung loader hanging), so every options object the library takes is checked
 * against one of these.
 */
export class OptionNames {
  readonly #names: ReadonlySet<string>;

  constructor(names: readonly string[]) {
    this.#names = new Set(names);
  }

  get names(): string[] {
    return [...this.#names];
  }

  /** The same names plus `more` (for an options type that extends another). */
  with(...more: string[]): OptionNames {
    return new OptionNames([...this.#names, ...more]);
  }

  /**
   * Throws `InvalidOptionError` for the first name of `options` that is not known, naming it as
   * `${path}.${name}` and suggesting the closest known name. `for...in` over an object literal
   * allocates nothing, so per-call checks stay cheap; inherited enumerable names count, since
   * `options.name` reads them as well.
   */
  check(options: object, path: string): void {
    for (const name in options) {
      if (!this.#names.has(name)) throw unknownOption(name, this.#names, path);
    }
  }
}

function unknownOption(name: string, known: ReadonlySet<string>, path: string): InvalidOptionError {
  const guess = closest(name, known);
  return new InvalidOptionError(
    path === '' ? name : `${path}.${name}`,
    guess === undefined
      ? `unknown option; the known ones are ${[...known].sort().join(', ')}`
      : `unknown option; did you mean "${guess}"?`,
  );
}

/** The known name nearest to `name` (case ignored), if it is within a typo's reach. */
export function closest(name: string, known: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // Two edits, or a third of a longer name: `ttll` → `ttl`, `hardtimeut` → `hardTimeout`.
  const reach = Math.max(2, Math.floor(name.length / 3));
  if (bestDistance <= reach) return best;
  // A name cut short or run on: `maxStale` → `maxStaleAge`.
  if (lower.length < 3) return undefined;
  for (const candidate of known) {
    const other = candidate.toLowerCase();
    if (other.startsWith(lower) || lower.startsWith(other)) return candidate;
  }
  return undefined;
}

/** Optimal string alignment distance: Levenshtein plus transposition of adjacent characters. */
export function distance(a: string, b: string): number {
  if (a === b) return 0;
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        d[(i - 1) * cols + j]! + 1,
        d[i * cols + j - 1]! + 1,
        d[(i - 1) * cols + j - 1]! + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1]!;
}
