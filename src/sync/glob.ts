/**
 * Redis glob patterns (the MATCH syntax of SCAN and KEYS) as a predicate, so L1 drops exactly
 * the keys a `deleteByPattern` removed from Redis: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and `\`
 * to take the next character literally.
 */
export function globMatcher(pattern: string): (key: string) => boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (ch === '*') source += '[\\s\\S]*';
    else if (ch === '?') source += '[\\s\\S]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        source += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('^');
      if (negate) body = body.slice(1);
      // Inside a class only `\`, `]` and `^` mean something to RegExp; ranges keep their `-`.
      source += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else source += escapeRegExp(ch);
  }
  const regexp = new RegExp(`${source}$`);
  return (key) => regexp.test(key);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
