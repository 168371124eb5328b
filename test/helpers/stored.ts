import type { Cluster, Redis } from 'ioredis';
import { GENERATION_KEY_PREFIX } from '../../src/sync/reserved-keys.js';
import { fromWire } from '../../src/tiers/envelope.js';
import { isTombstone } from '../../src/tiers/redis/fill-leases.js';

/**
 * Whether Redis holds an entry (JSON-encoded, expired or not) under a full key: a deleted key
 * holds its tombstone for a while (see src/tiers/redis/fill-leases.ts), which is no entry.
 */
export async function holdsEntry(admin: Redis | Cluster, fullKey: string): Promise<boolean> {
  return storedEntry(await admin.get(fullKey));
}

/** Whether a raw JSON payload (null: none) is an entry rather than nothing or a tombstone. */
export function storedEntry(raw: string | null): boolean {
  if (raw === null) return false;
  const entry = fromWire(JSON.parse(raw));
  return typeof entry === 'string' || !isTombstone(entry);
}

/**
 * Keys without the fill generation that clear() and deleteByPattern() leave for the length of
 * the fill window (see src/tiers/redis/fill-leases.ts).
 */
export function withoutGenerations(keys: readonly string[]): string[] {
  return keys.filter((key) => !key.includes(GENERATION_KEY_PREFIX));
}
