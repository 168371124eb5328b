import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type BusOptions } from '../../src/index.js';
import { shardChannels } from '../../src/sync/sharded-transport.js';

// Clients that never connect: option checks happen at construction.
const single = new Redis({ lazyConnect: true });
const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
afterAll(() => {
  single.disconnect();
  cluster.disconnect();
});

function optionError(client: Redis | Cluster, bus: BusOptions): unknown {
  try {
    createCache({ tiers: [memoryTier(), redisTier({ client })], bus });
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('bus pub/sub options', () => {
  it('rejects sharded pub/sub on a single-node client, naming the option', () => {
    expect(optionError(single, { pubsub: 'sharded' })).toMatchObject({
      code: 'E_INVALID_OPTION',
      option: 'bus.pubsub',
    });
  });

  it('rejects an unknown mode and a bad shard channel count', () => {
    expect(optionError(cluster, { pubsub: 'fanout' as 'classic' })).toMatchObject({ option: 'bus.pubsub' });
    for (const shardChannels of [0, 1.5, 2000]) {
      expect(optionError(cluster, { shardChannels })).toMatchObject({ option: 'bus.shardChannels' });
    }
  });

  it('names shard channels with distinct hash tags', () => {
    expect(shardChannels('b:', 3)).toEqual(['b::{0}', 'b::{1}', 'b::{2}']);
  });
});
