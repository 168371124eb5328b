import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, hasErrorCode, memoryTier, redisTier, type CacheError } from '../../src/index.js';
import { guardTier } from '../../src/extend.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import { remoteTierConformance, type TierContext } from '../../src/testing/index.js';
import { PATIENT, singleBackend } from '../helpers/backends.js';
import { MemoryKeyspace, MemoryRemoteTier, RawMemoryRemoteTier } from '../helpers/memory-remote-tier.js';
import { redisTierConformance } from './suites/tier-conformance.js';

describe('single Redis server', () => {
  redisTierConformance(singleBackend());
});

describe('in-memory tiers', () => {
  // One keyspace for all, as tiers under different prefixes share one Redis.
  const keyspace = new MemoryKeyspace();
  const corrupt = (tier: { inner: MemoryRemoteTier }, key: string): void =>
    tier.inner.plant(key, '\u00c1not a payload {');

  remoteTierConformance(
    'the in-memory tier',
    { describe, it },
    {
      create: ({ prefix }) => {
        const tier = new MemoryRemoteTier({ keyspace, prefix });
        return tier;
      },
      corrupt: (tier, key) => tier.plant(key, 'not a payload {'),
    },
  );

  remoteTierConformance(
    'guardTier(the in-memory tier)',
    { describe, it },
    {
      create: ({ prefix }: TierContext) => {
        const tier = guardTier(new MemoryRemoteTier({ keyspace, prefix }), { timeout: PATIENT });
        return tier;
      },
      corrupt,
    },
  );

  remoteTierConformance(
    'guardTier(the in-memory tier with raw reads, msgpack)',
    { describe, it },
    {
      create: ({ prefix }: TierContext) => {
        const inner = new RawMemoryRemoteTier({ keyspace, prefix, serializer: msgpackSerializer() });
        const tier = guardTier(inner, { timeout: PATIENT });
        return tier;
      },
      corrupt,
      unencodable: [Symbol('not storable')],
    },
  );
});

describe('stored format versions in Redis', () => {
  const backend = singleBackend();
  beforeAll(() => backend.start(), 60_000);
  afterAll(() => backend.stop());

  it('reads an entry a newer tiercache wrote as a miss, reports why, and replaces it', async () => {
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [memoryTier(), redisTier({ client: backend.client(), prefix: 'fv:', timeout: PATIENT })],
      onError: (error) => errors.push(error),
    });
    try {
      const admin = backend.admin();
      await admin.set('fv:k', JSON.stringify({ f: 2, c: Date.now(), e: null, v: 'from the future' }));
      await admin.set('fv:old', JSON.stringify({ c: Date.now(), e: null, v: 'from the past' }));
      expect(await cache.getOrSet('k', () => 'loaded')).toBe('loaded');
      expect(errors.map((e) => [e.code, e.message])).toEqual([
        [
          'E_CORRUPT_ENTRY',
          'Corrupt or foreign entry for key "k" in tier "redis": stored format version 2 is newer than this tiercache reads (up to 1); a later version wrote it',
        ],
      ]);
      expect(hasErrorCode(errors[0], 'E_CORRUPT_ENTRY')).toBe(true);
      expect(JSON.parse((await admin.get('fv:k'))!)).toMatchObject({ f: 1, v: 'loaded' });
      expect(await cache.get('old')).toBe('from the past');
    } finally {
      await cache.close();
    }
  });
});
