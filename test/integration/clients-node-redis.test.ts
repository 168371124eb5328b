import { createClient, createClientPool, RESP_TYPES } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCache,
  hasErrorCode,
  memoryTier,
  redisTier,
  type CacheError,
  type TierCache,
} from '../../src/index.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import { nodeRedis5, nodeRedis6 } from '../helpers/client-libraries.js';
import { startRedis, type RedisProcess } from '../helpers/redis-server.js';
import { subscribed } from '../helpers/bus-waits.js';
import { until } from '../helpers/wait-for.js';
import { clientSuite } from './suites/client-suite.js';

// The suites every supported client runs (suites/client-suite.ts), with node-redis clients:
// the package's current major in full, the next one (redis@6, same API) on the same suites.
describe('redis 5', () => clientSuite(nodeRedis5));
describe('redis 6', () => clientSuite(nodeRedis6));

describe('node-redis clients the tier cannot use, and the connections it makes', () => {
  let server: RedisProcess;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(() => server.stop());

  const connected = async (options: object = {}) => {
    const client = createClient({ socket: { host: server.host, port: server.port }, ...options });
    client.on('error', () => {});
    await client.connect();
    return client;
  };
  const refusal = (client: unknown): unknown => {
    try {
      redisTier({ client: client as never });
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it('refuses a client that was never connected, saying to connect it first', () => {
    const error = refusal(createClient({ socket: { host: server.host, port: server.port } }));
    expect(hasErrorCode(error, 'E_INVALID_OPTION')).toBe(true);
    expect((error as Error).message).toContain('await client.connect() before giving it to the tier');
  });

  it('refuses a client that was closed', async () => {
    const client = await connected();
    await client.close();
    expect((refusal(client) as Error).message).toContain('is not open');
  });

  it('refuses a RESP3 client-side-caching client, which keeps a cache of its own', async () => {
    const client = await connected({ RESP: 3, clientSideCache: { ttl: 0, maxEntries: 0 } });
    try {
      expect((refusal(client) as Error).message).toContain('clientSideCache');
    } finally {
      await client.close();
    }
  });

  it('refuses a client pool and a legacy-mode client, saying what to give instead', async () => {
    const pool = createClientPool({ socket: { host: server.host, port: server.port } });
    pool.on('error', () => {});
    await pool.connect();
    const client = await connected();
    try {
      const pooled = refusal(pool) as Error;
      expect(hasErrorCode(pooled, 'E_INVALID_OPTION')).toBe(true);
      expect(pooled.message).toContain('client pool (createClientPool) cannot serve a tier');
      expect((refusal(client.legacy()) as Error).message).toContain('the client .legacy() was called on');
    } finally {
      pool.destroy();
      await client.close();
    }
  });

  it('works on a client whose commands default to Buffer replies, and on a withTypeMapping() proxy', async () => {
    const buffers = { [RESP_TYPES.BLOB_STRING]: Buffer };
    const client = await connected({ commandOptions: { typeMapping: buffers } });
    const base = await connected();
    const caches: TierCache[] = [];
    try {
      for (const [i, given] of [client, base.withTypeMapping(buffers)].entries()) {
        const prefix = `mapped${i}:`;
        const writer = createCache({ tiers: [memoryTier(), redisTier({ client: given, prefix })] });
        // Redis alone, so that every read below goes through the mapped client.
        const reader = createCache({ tiers: [redisTier({ client: given, prefix })], bus: false });
        caches.push(writer, reader);
        await writer.set('k', { s: 'é' });
        expect(await writer.getOrSet('loaded', () => 'v')).toBe('v');
        expect(await reader.get('k')).toEqual({ s: 'é' });
        expect(await Promise.all(['k', 'loaded', 'none'].map((key) => reader.get(key)))).toEqual([
          { s: 'é' },
          'v',
          undefined,
        ]);
        expect(await reader.deleteByPattern('k*')).toBe(1);
        expect(await reader.getMany(['k', 'loaded'])).toEqual([undefined, 'v']);
      }
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
      await client.close();
      await base.close();
    }
  });

  it('works on a RESP3 client as on RESP2: reads, batches, scripts, deleteByPattern and the bus', async () => {
    const client = await connected({ RESP: 3 });
    const make = () =>
      createCache({
        tiers: [memoryTier(), redisTier({ client, prefix: 'resp3:', serializer: msgpackSerializer() })],
      });
    const [a, b] = [make(), make()];
    try {
      await subscribed(a, b);
      await a.setMany([1, 2, 3].map((i) => ({ key: `k${i}`, value: { i, at: new Date(i) } })));
      expect(await b.getMany(['k1', 'k2', 'k3', 'none'])).toEqual([
        { i: 1, at: new Date(1) },
        { i: 2, at: new Date(2) },
        { i: 3, at: new Date(3) },
        undefined,
      ]);
      expect(await b.getOrSet('loaded', () => 'v')).toBe('v');
      await a.deleteByPattern('k*');
      await until('b to hear the pattern delete', async () => (await b.get('k1')) === undefined);
      expect(await a.getMany(['k2', 'loaded'])).toEqual([undefined, 'v']);
      // JSON payloads are read as text: RESP3's replies to that as RESP2's.
      const json = createCache({ tiers: [redisTier({ client, prefix: 'resp3-json:' })], bus: false });
      try {
        await json.setMany([1, 2].map((i) => ({ key: `j${i}`, value: { i, s: 'é' } })));
        expect(await Promise.all(['j1', 'j2', 'none'].map((key) => json.get(key)))).toEqual([
          { i: 1, s: 'é' },
          { i: 2, s: 'é' },
          undefined,
        ]);
        expect(await json.get('j1')).toEqual({ i: 1, s: 'é' });
      } finally {
        await json.close();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
      await client.close();
    }
  });

  it('degrades to the origin, without waiting, once the client it was given is closed', async () => {
    const client = await connected();
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [memoryTier(), redisTier({ client, prefix: 'closed:', timeout: '5s' })],
      onError: (error) => errors.push(error),
    });
    try {
      await cache.set('k', 1);
      await client.close();
      const started = performance.now();
      expect(await cache.getOrSet('cold', () => 'origin')).toBe('origin');
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(errors.some((e) => e.code === 'E_TIER')).toBe(true);
    } finally {
      await cache.close();
    }
  });

  it("opens the bus's subscriber connection with duplicate() and closes it with the cache", async () => {
    const client = await connected();
    const pubsub = async () =>
      (await client.sendCommand<string>(['CLIENT', 'LIST', 'TYPE', 'pubsub']))
        .split('\n')
        .filter((line) => line.trim() !== '').length;
    try {
      const cache = createCache({ tiers: [memoryTier(), redisTier({ client, prefix: 'dup:' })] });
      await subscribed(cache);
      expect(await pubsub()).toBe(1);
      await cache.close();
      // The server notices the closed socket on its own time.
      await until('the subscriber connection to close', async () => (await pubsub()) === 0);
      expect(client.isReady).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('leaves no connection open when a cache closes while its subscriber is still connecting', async () => {
    const client = await connected();
    const connections = async () =>
      (await client.sendCommand<string>(['CLIENT', 'LIST'])).split('\n').filter((line) => line.trim() !== '')
        .length;
    try {
      const before = await connections();
      // Closed at once: node-redis finishes making a socket it was told to destroy meanwhile.
      for (let i = 0; i < 10; i++) {
        const cache = createCache({ tiers: [memoryTier(), redisTier({ client, prefix: `early${i}:` })] });
        await cache.set('k', i);
        await cache.close();
      }
      await until('every subscriber connection to close', async () => (await connections()) === before);
    } finally {
      await client.close();
    }
  });
});
