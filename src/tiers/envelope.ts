import type { Entry } from '../entry.js';

/**
 * The wire form of an entry in a remote tier. Short field names keep payloads small; the format
 * is `{ c: createdAt, e: expiresAt | null (forever), v: value }`, with `u: 1` standing for an
 * `undefined` value (negative caching), which JSON cannot carry, and `g` for the end of the
 * stale period (grace / fail-safe) when the entry has one past `e`, and `t` for its tags.
 */
export interface WireEnvelope {
  c: number;
  e: number | null;
  g?: number | null;
  v?: unknown;
  u?: 1;
  t?: string[];
}

export function toWire(entry: Entry): WireEnvelope {
  const e = entry.expiresAt === Number.POSITIVE_INFINITY ? null : entry.expiresAt;
  const wire: WireEnvelope =
    entry.value === undefined ? { c: entry.createdAt, e, u: 1 } : { c: entry.createdAt, e, v: entry.value };
  const g = entry.staleUntil;
  if (g !== undefined && g > entry.expiresAt) wire.g = g === Number.POSITIVE_INFINITY ? null : g;
  if (entry.tags !== undefined) wire.t = entry.tags as string[];
  return wire;
}

/** The entry a decoded payload holds, or a sentence saying why it is not one of ours. */
export function fromWire(raw: unknown): Entry | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return 'payload is not an envelope object';
  const wire = raw as Partial<WireEnvelope>;
  if (typeof wire.c !== 'number') return 'envelope has no creation time';
  if (typeof wire.e !== 'number' && wire.e !== null) return 'envelope has no expiry';
  if (wire.g !== undefined && typeof wire.g !== 'number' && wire.g !== null)
    return 'envelope has a malformed stale period';
  const expiresAt = wire.e ?? Number.POSITIVE_INFINITY;
  if (!('v' in wire) && wire.u !== 1) return 'envelope has no value';
  const value = wire.u === 1 ? undefined : wire.v;
  const t = wire.t;
  if (t !== undefined && (!Array.isArray(t) || !t.every((tag) => typeof tag === 'string')))
    return 'envelope has malformed tags';
  const entry: Entry =
    wire.g === undefined
      ? { value, createdAt: wire.c, expiresAt }
      : { value, createdAt: wire.c, expiresAt, staleUntil: wire.g ?? Number.POSITIVE_INFINITY };
  return t === undefined ? entry : { ...entry, tags: t };
}
