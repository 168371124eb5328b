/**
 * Tag times, namespace versions, distributed locks and the fill generation live in each Redis tier under its own
 * prefix, beside the entries; cache keys may not start with these, so that no entry can
 * overwrite them (nor a lock be taken on an entry's key).
 */
export const TAG_KEY_PREFIX = '__tag:';
export const NAMESPACE_KEY_PREFIX = '__ns:';
export const LOCK_KEY_PREFIX = '__lock:';
/** The generation that clear() and deleteByPattern() change (see tiers/redis/fill-leases.ts). */
export const GENERATION_KEY_PREFIX = '__gen:';

/** The reserved starts of a key, for messages. */
export const RESERVED_KEY_PREFIXES = [
  TAG_KEY_PREFIX,
  NAMESPACE_KEY_PREFIX,
  LOCK_KEY_PREFIX,
  GENERATION_KEY_PREFIX,
] as const;

export function isReserved(key: string): boolean {
  return (
    key.charCodeAt(0) === 95 /* _ */ &&
    key.charCodeAt(1) === 95 &&
    (key.startsWith(TAG_KEY_PREFIX) ||
      key.startsWith(NAMESPACE_KEY_PREFIX) ||
      key.startsWith(LOCK_KEY_PREFIX) ||
      key.startsWith(GENERATION_KEY_PREFIX))
  );
}

/**
 * Where the bus's keys live by default: channel `tiercache:bus:<prefix>` and its replay log
 * `tiercache:bus:<prefix>:log`. No cache may take it as its prefix, since its clear() and
 * deleteByPattern() would delete every other cache's replay log, and a user key could overwrite one.
 */
export const BUS_KEY_SPACE = 'tiercache:';
