import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, redisTier, type CacheError, type TierCache } from '../../src/index.js';
import { callsIn } from '../helpers/backends.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { storedEntry } from '../helpers/stored.js';
import { until } from '../helpers/wait-for.js';

/**
 * `replicas: { wait, timeout }` sends WAIT after every write and delete, so an acknowledged
 * invalidation is on the replica before the caller hears it is done, and one the replica did
 * not acknowledge is reported and repaired (issue 19, §4: stale values after a failover).
 */
describe('redisTier replicas: WAIT after writes and deletes', () => {
  let master: RedisProcess;
  let replica: RedisProcess;
  const caches: TierCache[] = [];
  beforeAll(async () => {
    master = await startRedis({ label: 'wait-master' });
    replica = await startRedis({
      label: 'wait-replica',
      args: ['--replicaof', master.host, String(master.port)],
    });
    // Online in the master's view: it acknowledges replication offsets from then on.
    await until('the replica to be in sync', async () =>
      /slave0:.*state=online/.test(String(await master.cli('INFO', 'replication'))),
    );
  });
  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    await stopAllRedis();
  });

  /** `waitMs`: the WAIT's timeout; generous by default, as on a loaded machine a replica can take 100 ms to acknowledge. */
  function instance(prefix: string, errors: CacheError[] = [], waitMs = 1_000): TierCache {
    const cache = createCache({
      tiers: [
        redisTier({
          client: master.client(),
          prefix,
          timeout: '5s',
          replicas: { wait: 1, timeout: waitMs },
          breaker: false,
        }),
      ],
      bus: false,
      onError: (error) => errors.push(error),
    });
    caches.push(cache);
    return cache;
  }

  /** Whether the replica holds an entry under a full key (read by the CLI, so never redirected). */
  const replicaHolds = async (fullKey: string): Promise<boolean> =>
    storedEntry((await replica.cli('GET', fullKey)) as string | null);

  it('a write or delete resolves once the replica has it', async () => {
    const errors: CacheError[] = [];
    const cache = instance('w1:', errors);
    const keys = ['a', 'b', 'c'];
    // The single-key path and the pipelined multi-key path, each followed by its WAIT.
    await cache.set('one', 1);
    expect(await replica.cli('EXISTS', 'w1:one')).toBe(1);
    await cache.setMany(keys.map((key) => ({ key, value: key })));
    expect(await replica.cli('EXISTS', ...keys.map((key) => `w1:${key}`))).toBe(3);
    // A delete leaves a tombstone (see src/tiers/redis/fill-leases.ts): no entry.
    await cache.delete('one');
    expect(await replicaHolds('w1:one')).toBe(false);
    await cache.deleteMany(keys);
    for (const key of keys) expect(await replicaHolds(`w1:${key}`)).toBe(false);
    expect(errors).toEqual([]);
  });

  it('a delete the replica did not acknowledge is reported, and done again once it does', async () => {
    const errors: CacheError[] = [];
    // A short WAIT pauses WAITs to the master for 10 of these: keep that short, the repair waits it out.
    const cache = instance('w2:', errors, 200);
    await cache.set('k', 'old');
    expect(errors).toEqual([]);
    await replica.pause();
    try {
      await cache.delete('k');
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/WAIT: 0 of 1 replicas acknowledged/),
      ]);
      expect(errors[0]).toMatchObject({ code: 'E_TIER', operation: 'delete' });
      expect(cache.stats().tiers[0]).toMatchObject({ repair: { pending: 1 } });
    } finally {
      await replica.resume();
    }
    // The next call that gets through repairs the key: deleted again, with the replica's ack.
    await until(
      'the repair to run',
      async () => {
        await cache.get('other');
        return cache.stats().tiers[0]!.repair?.pending === 0;
      },
      20_000,
    );
    expect(await replicaHolds('w2:k')).toBe(false);
  });

  it('after a short WAIT, writes to that master skip WAIT for a while, so it holds no connection for its whole timeout again', async () => {
    const errors: CacheError[] = [];
    const cache = instance('w3:', errors, 200);
    const waits = async (): Promise<number> =>
      callsIn(String(await master.cli('INFO', 'commandstats')), 'wait');
    await replica.pause();
    try {
      const before = await waits();
      await cache.delete('first');
      expect(await waits()).toBe(before + 1);
      // Within the pause (2 s here): no WAIT sent, and each write still reported as unacknowledged.
      for (const key of ['a', 'b', 'c']) await cache.set(key, 1);
      await cache.deleteMany(['a', 'b']);
      expect(await waits()).toBe(before + 1);
      expect(errors.map((e) => e.message)).toEqual([
        expect.stringMatching(/WAIT: 0 of 1 replicas acknowledged/),
        ...Array.from({ length: 4 }, (): unknown =>
          expect.stringMatching(/WAIT skipped: .*fewer than 1 replicas/),
        ),
      ]);
    } finally {
      await replica.resume();
    }
    // Once the pause ends, writes WAIT again, and the replica's acknowledgement makes them good.
    await until(
      'writes to be acknowledged again',
      async () => {
        const reported = errors.length;
        await cache.set('d', 1);
        return errors.length === reported;
      },
      20_000,
    );
  });

  it('refuses replicas options that would block or mean nothing', () => {
    const client = 'redis://127.0.0.1:1';
    const make = (replicas: unknown) => () =>
      redisTier({ client, prefix: 'x:', replicas: replicas as { wait: number; timeout: number } });
    expect(make({ wait: 0, timeout: 50 })).toThrow(/replicas\.wait.*positive integer/);
    expect(make({ wait: 1, timeout: 0 })).toThrow(/replicas\.timeout/);
    expect(make({ wait: 1, timeout: 'forever' })).toThrow(/replicas\.timeout.*finite/);
    expect(make({ wait: 1, timout: 50 })).toThrow(/timout/);
  });
});
