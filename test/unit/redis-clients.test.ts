import { Cluster as Ioredis6Cluster, Redis as Ioredis6 } from 'ioredis6';
import { Cluster as IoredisCluster, Redis as Ioredis } from 'ioredis';
import { Cluster as IovalkeyCluster, Redis as Iovalkey } from 'iovalkey';
import { createClient, createCluster, createSentinel } from 'redis';
import { createCluster as createCluster6, createSentinel as createSentinel6 } from 'redis6';
import { describe, expect, it } from 'vitest';
import { hasErrorCode, redisTier } from '../../src/index.js';
import type { RedisClientOption } from '../../src/tiers/redis/clients.js';

// Clients that never connect (lazyConnect, a port nobody listens on): recognition is by shape.
const nowhere = { host: '127.0.0.1', port: 1, lazyConnect: true };

describe('which Redis clients a tier accepts', () => {
  it.each([
    ['ioredis 5 Redis', () => new Ioredis(nowhere)],
    ['ioredis 5 Cluster', () => new IoredisCluster([nowhere], { lazyConnect: true })],
    ['ioredis 6 Redis', () => new Ioredis6(nowhere)],
    ['ioredis 6 Cluster', () => new Ioredis6Cluster([nowhere], { lazyConnect: true })],
    ['iovalkey Redis', () => new Iovalkey(nowhere)],
    ['iovalkey Cluster', () => new IovalkeyCluster([nowhere], { lazyConnect: true })],
  ])('accepts a client of %s, whichever copy of the package made it', async (_name, make) => {
    const client = make() as unknown as RedisClientOption & { disconnect(): void };
    const tier = redisTier({ client });
    expect(tier.client).toBe(client);
    await tier.close();
    client.disconnect();
  });

  it.each([
    ['an object with only some commands', { get() {}, mget() {} }],
    ['a URL of another scheme', 'http://127.0.0.1:6380'],
    ['null', null],
  ])('refuses %s, naming the clients it supports', (_name, client) => {
    let thrown: unknown;
    try {
      redisTier({ client: client as unknown as RedisClientOption });
    } catch (error) {
      thrown = error;
    }
    expect(hasErrorCode(thrown, 'E_INVALID_OPTION')).toBe(true);
    expect((thrown as Error).message).toMatch(
      /"redisTier\.client": expected a redis:\/\/ or rediss:\/\/ URL, a client of ioredis \(5 or 6\) or iovalkey/,
    );
  });

  it.each([
    ['redis 5', createSentinel as (options: object) => unknown],
    ['redis 6', createSentinel6 as (options: object) => unknown],
  ])('refuses a %s Sentinel that was never connected, telling it from a client', (_name, make) => {
    const sentinel = make({ name: 'm', sentinelRootNodes: [{ host: '127.0.0.1', port: 1 }] });
    expect(() => redisTier({ client: sentinel as RedisClientOption })).toThrow(
      /"redisTier\.client": the node-redis Sentinel is not open: await sentinel\.connect\(\)/,
    );
  });

  it.each([
    ['redis 5', createCluster as (options: object) => unknown],
    ['redis 6', createCluster6 as (options: object) => unknown],
  ])('refuses a %s Cluster that was never connected, telling it from a client', (_name, make) => {
    expect(() =>
      redisTier({ client: make({ rootNodes: [{ socket: { port: 1 } }] }) as RedisClientOption }),
    ).toThrow(/"redisTier\.client": the node-redis Cluster is not open: await cluster\.connect\(\)/);
  });

  it('refuses a node-redis client that was never connected, saying to connect it first', () => {
    expect(() => redisTier({ client: createClient({ socket: { port: 1 } }) })).toThrow(
      /"redisTier\.client": the node-redis client is not open: await client\.connect\(\)/,
    );
  });

  it('checks the client before the other options', () => {
    expect(() => redisTier({ client: {} as unknown as RedisClientOption, ttl: -1 })).toThrow(
      /redisTier\.client/,
    );
  });
});
