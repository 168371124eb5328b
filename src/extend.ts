/**
 * `tiercache/extend`: what people who extend the cache build on: the remote tier contract and
 * its coordination seam, the guard around a tier, L1 eviction policies, bus transports and the
 * stored-entry format. Applications need none of it (they use `tiercache`); tier authors also
 * have the conformance suite in `tiercache/testing`. See docs/writing-a-tier.md.
 */
export type { Entry } from './entry.js';
export type { Leased, PreparedWrite, RemoteTier, StoredEntry, TierHealth, TierHooks } from './tiers/tier.js';
export { TierHookSlot, UNREAD_LEASE } from './tiers/tier.js';
export type {
  BusTransportRequest,
  LockStore,
  TagTimeStore,
  TierCoordination,
  VersionStore,
} from './tiers/coordination.js';
export { guardTier, GuardedTier } from './tiers/guarded-tier.js';
export type { GuardHooks, RawReads, ReadHandler } from './tiers/guarded-tier.js';
export type { RawReply } from './tiers/read-batch.js';
export type {
  EvictionPolicy,
  EvictCallback,
  PolicyBounds,
  PolicyFactory,
  PolicySlots,
} from './tiers/memory/policy.js';
export type { BusTransport } from './sync/transport.js';
export { STORED_FORMAT_VERSION, decodeStored, toWire } from './tiers/envelope.js';
