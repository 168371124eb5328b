/**
 * Tag times and namespace versions live in each Redis tier under its own prefix, beside the
 * entries; cache keys may not start with these, so that no entry can overwrite them.
 */
export const TAG_KEY_PREFIX = '__tag:';
export const NAMESPACE_KEY_PREFIX = '__ns:';

export function isReserved(key: string): boolean {
  return (
    key.charCodeAt(0) === 95 /* _ */ &&
    (key.startsWith(TAG_KEY_PREFIX) || key.startsWith(NAMESPACE_KEY_PREFIX))
  );
}
