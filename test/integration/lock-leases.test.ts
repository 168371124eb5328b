import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DistributedLock } from '../../src/loading/distributed-lock.js';
import { redisLocks } from '../../src/tiers/redis/coordination.js';
import { resolveLock } from '../../src/loading/load-plan.js';
import { LOCK_KEY_PREFIX } from '../../src/sync/reserved-keys.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

let server: RedisProcess;
let admin: Redis;
beforeAll(async () => {
  server = await startRedis();
  admin = server.client();
});
afterAll(stopAllRedis);

/** Where the locks of a tier with prefix `ll:` live. */
const LOCKS = `ll:${LOCK_KEY_PREFIX}`;

describe('lock leases: a lock nobody knows it holds does not outlive its acquire by long', () => {
  it('a SET NX that timed out for its caller and lands later is deleted as soon as its reply comes back', async () => {
    const lock = new DistributedLock(
      redisLocks(server.client(), 'll:'),
      resolveLock({ ttl: '30s', timeout: '500ms' }),
    );
    expect(lock.firstLease).toBe(4_000);
    await admin.ping();
    await server.pause();
    try {
      // The server hangs: the acquire gives up, its SET NX waits in the socket.
      await expect(lock.acquire('late')).rejects.toThrow(/timed out/);
    } finally {
      await server.resume();
    }
    // On resume the SET NX runs and takes the lock; its reply makes the acquire free it. Without
    // that the key would stay for its whole first lease (4 s here), blocking every waiter. (Polled
    // by acquiring: a check that the key is gone could run before the late SET NX lands.)
    const lease = await waitFor(
      async () => {
        const held = await lock.acquire('late');
        return held === undefined ? notYet('still locked') : done(held);
      },
      { description: 'the late lock to be freed', timeoutMs: 3_000, intervalMs: 10 },
    );
    expect(lease).toBeDefined();
    expect(await admin.exists(`${LOCKS}late`)).toBe(1); // ours now
  });

  it('a new lock lives a short first lease, which its owner renews to the full ttl while it holds it', async () => {
    const lock = new DistributedLock(
      redisLocks(server.client(), 'll:'),
      resolveLock({ ttl: '30s', timeout: '100ms' }),
    );
    expect(lock.firstLease).toBe(2_000);
    const key = `${LOCKS}first`;
    const lease = (await lock.acquire('first'))!;
    expect(lease).toBeDefined();
    // A SET NX whose reply is lost (the connection dropped after it ran) leaves this much.
    expect(await admin.pttl(key)).toBeLessThanOrEqual(2_000);
    const stop = lock.hold(lease);
    try {
      await waitFor(
        async () => {
          const left = await admin.pttl(key);
          return left > 2_000 ? done(undefined) : notYet(`${left} ms left`);
        },
        { description: 'the owner to renew the lease to the ttl', timeoutMs: 5_000, intervalMs: 20 },
      );
    } finally {
      stop();
    }
    expect(await lock.release(lease)).toBe(true);
  });

  it('the first lease is never longer than the ttl, and grows with the lock timeout', () => {
    const client = server.client();
    expect(new DistributedLock(redisLocks(client, 'll:'), resolveLock({ ttl: '1s' })).firstLease).toBe(1_000);
    expect(
      new DistributedLock(redisLocks(client, 'll:'), resolveLock({ ttl: '1m', timeout: '1s' })).firstLease,
    ).toBe(8_000);
  });
});
