/**
 * `tiercache/keyv`: a Keyv storage adapter, so Keyv, cache-manager (v7) and NestJS's cache module
 * can keep their API with a TierCache underneath. Needs `keyv` (5 or later) installed.
 */
export { TierCacheKeyv } from './keyv-store.js';
