import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCache,
  memoryTier,
  redisTier,
  type CacheEvents,
  type CacheOptions,
  type TierCache,
} from '../../src/index.js';
import { DistributedLock } from '../../src/loading/distributed-lock.js';
import { redisLocks } from '../../src/tiers/redis/coordination.js';
import { resolveLock } from '../../src/loading/load-plan.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';
import { LOAD_PATHS } from '../helpers/load-paths.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

let server: RedisProcess;
let admin: Redis;
beforeAll(async () => {
  server = await startRedis();
  admin = server.client();
});
afterAll(stopAllRedis);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loader that counts its calls and answers them all once `release` is called. */
function heldLoader<T>() {
  const answer = gate<T>();
  let calls = 0;
  const loader = () => {
    calls++;
    return answer.promise;
  };
  return { loader, release: (value: T) => answer.resolve(value), calls: () => calls };
}

/** Resolves once some instance holds the distributed lock of `key`. */
const lockTaken = (prefix: string, key: string) =>
  waitFor(
    async () => ((await admin.exists(`${prefix}__lock:${key}`)) === 1 ? done(true) : notYet('no lock')),
    {
      description: `the lock of ${key}`,
    },
  );

describe.each(LOAD_PATHS)('grace and fail-safe through Redis, through $name', ({ name, load }) => {
  it('keeps the Redis copy for its grace period and serves it stale to an instance with a cold L1', async () => {
    const clock = new FakeClock(Date.now());
    const tiers = () => [
      memoryTier({ ttl: 1000 }),
      redisTier({ client: server.url, prefix: `grace.${name}:`, ttl: 1000, timeout: '3s' }),
    ];
    const writer = createCache({ tiers: tiers(), clock: clock.read, grace: '30s' });
    const reader = createCache({ tiers: tiers(), clock: clock.read, grace: '30s' });
    try {
      await writer.set('k', 'old');
      // PX covers the life plus the grace, so the copy is still there to be served stale.
      expect(await admin.pttl(`grace.${name}:k`)).toBeGreaterThan(20_000);
      clock.advance(1500);
      const release = gate<string>();
      let calls = 0;
      const loader = () => {
        calls++;
        return release.promise;
      };
      const values = await Promise.all(Array.from({ length: 5 }, () => load(reader, 'k', loader)));
      expect(values).toEqual(Array(5).fill('old'));
      // One background refresh for the five stale answers.
      await waitFor(async () => (calls === 1 ? done(true) : notYet(`${calls} calls`)), {
        description: 'the background refresh',
        timeoutMs: 20_000,
      });
      release.resolve('new');
      await waitFor(async () => ((await reader.get('k')) === 'new' ? done(true) : notYet('old')), {
        description: 'the refreshed value',
        timeoutMs: 20_000,
      });
      // The writer's own L1 copy is stale too: its refresh finds the new value in Redis, so the
      // origin is not called again.
      await waitFor(async () => ((await load(writer, 'k', loader)) === 'new' ? done(true) : notYet('old')), {
        description: 'the refreshed value in the other L1',
        timeoutMs: 20_000,
      });
      expect(calls).toBe(1);
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  }, 60_000);

  it('fail-safe serves the value kept in Redis when the origin fails', async () => {
    const clock = new FakeClock(Date.now());
    const tiers = () => [
      memoryTier({ ttl: 1000 }),
      redisTier({ client: server.url, prefix: `fs.${name}:`, ttl: 1000, timeout: '3s' }),
    ];
    const writer = createCache({ tiers: tiers(), clock: clock.read, failSafe: { maxStaleAge: '1m' } });
    const reader = createCache({ tiers: tiers(), clock: clock.read, failSafe: { maxStaleAge: '1m' } });
    try {
      await writer.set('k', { id: 1 });
      clock.advance(5000);
      const value = await load(reader, 'k', () => {
        throw new Error('origin down');
      });
      expect(value).toEqual({ id: 1 });
      expect(reader.stats().staleServed).toBe(1);
    } finally {
      await Promise.all([writer.close(), reader.close()]);
    }
  });

  it.skipIf(name !== 'getOrSet')(
    'getManyOrSet: writes kept copies, answers from them under grace and fail-safe, refreshes in one batch',
    async () => {
      const clock = new FakeClock(Date.now());
      const tiers = () => [
        memoryTier({ ttl: 1000 }),
        redisTier({ client: server.url, prefix: `many.${name}:`, ttl: 1000, timeout: '3s' }),
      ];
      const options: CacheOptions = { grace: '30s', failSafe: { maxStaleAge: '1m' } };
      const writer = createCache({ tiers: tiers(), clock: clock.read, ...options });
      const reader = createCache({ tiers: tiers(), clock: clock.read, ...options });
      try {
        expect(await writer.getManyOrSet(['a', 'b'], async (keys) => keys.map((k) => `${k}1`))).toEqual([
          'a1',
          'b1',
        ]);
        // Written by the batch with the grace period on top of the life.
        expect(await admin.pttl(`many.${name}:a`)).toBeGreaterThan(20_000);
        clock.advance(1500);
        const release = gate<string[]>();
        const batches: string[][] = [];
        const slow = (keys: readonly string[]) => {
          batches.push([...keys]);
          return release.promise;
        };
        // The reader's L1 is cold: the stale answers come from the copies kept in Redis, at once.
        expect(await reader.getManyOrSet(['a', 'b'], slow)).toEqual(['a1', 'b1']);
        expect(batches).toEqual([['a', 'b']]);
        release.resolve(['a2', 'b2']);
        await waitFor(async () => ((await reader.get('b')) === 'b2' ? done(true) : notYet('old')), {
          description: 'the batch refresh to land',
          timeoutMs: 20_000,
        });
        // Past the grace period, within maxStaleAge: a failing origin is answered from the copies.
        clock.advance(40_000);
        const failing = () => {
          throw new Error('origin down');
        };
        expect(await reader.getManyOrSet(['a', 'b'], failing)).toEqual(['a2', 'b2']);
        // A key with nothing kept still fails the call.
        await expect(reader.getManyOrSet(['a', 'never'], failing)).rejects.toThrow(/origin down/);
        expect(reader.stats().staleServed).toBe(4 + 1);
      } finally {
        await Promise.all([writer.close(), reader.close()]);
      }
    },
    60_000,
  );
});

describe.each(LOAD_PATHS)('distributed single flight, through $name', ({ name, load }) => {
  // Timeouts far above the defaults: on a loaded 2-core machine a Redis reply can take longer
  // than 250 ms, and a lock call that times out degrades to a local load (a second loader call).
  function instances(count: number, prefix: string, lock: object | boolean = { poll: '10ms' }) {
    return Array.from({ length: count }, () =>
      createCache({
        tiers: [
          memoryTier(),
          redisTier({ client: server.client({ enableAutoPipelining: true }), prefix, timeout: '3s' }),
        ],
        lock: typeof lock === 'object' ? { timeout: '3s', ...lock } : lock,
      }),
    );
  }

  it('4 instances × 250 concurrent callers of a missing key make exactly one loader call', async () => {
    const caches = instances(4, `stampede.${name}:`);
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return { loaded: true };
    };
    try {
      const values = await Promise.all(
        caches.flatMap((cache) => Array.from({ length: 250 }, () => load(cache, 'hot', loader))),
      );
      const locks = caches.map((cache) => cache.stats().lock);
      expect(calls, JSON.stringify(locks)).toBe(1);
      expect(values.every((v) => v.loaded)).toBe(true);
      expect(locks.reduce((sum, l) => sum + l.acquired, 0)).toBeGreaterThanOrEqual(1);
      expect(locks.reduce((sum, l) => sum + l.timedOut, 0)).toBe(0);
      // The lock was released by its owner once the value was written (in the background,
      // which close() waits for).
      await Promise.all(caches.map((cache) => cache.close()));
      expect(await admin.exists(`stampede.${name}:__lock:hot`)).toBe(0);
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
    }
  });

  it.skipIf(name !== 'getOrSet')(
    'getManyOrSet batches take the lock per key: overlapping batches on 4 instances load each key once',
    async () => {
      const caches = instances(4, `batchlock.${name}:`);
      const loaded = new Map<string, number>();
      const loader = async (keys: string[]) => {
        for (const key of keys) loaded.set(key, (loaded.get(key) ?? 0) + 1);
        await sleep(50);
        return keys.map((key) => `v:${key}`);
      };
      // Each instance asks for an overlapping window of keys: k0..k5, k2..k7, k4..k9, k6..k11.
      const windows = caches.map((_, i) => Array.from({ length: 6 }, (_, j) => `k${i * 2 + j}`));
      try {
        const results = await Promise.all(caches.map((cache, i) => cache.getManyOrSet(windows[i]!, loader)));
        results.forEach((values, i) => expect(values).toEqual(windows[i]!.map((key) => `v:${key}`)));
        expect(loaded.size).toBe(12);
        expect(
          [...loaded].filter(([, n]) => n !== 1),
          JSON.stringify(caches.map((c) => c.stats().lock)),
        ).toEqual([]);
      } finally {
        await Promise.all(caches.map((cache) => cache.close()));
      }
    },
  );

  it('without the lock, the same stampede calls the loader once per instance', async () => {
    const caches = instances(4, `nolock.${name}:`, false);
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(50);
      return 1;
    };
    try {
      await Promise.all(
        caches.flatMap((cache) => Array.from({ length: 50 }, () => load(cache, 'hot', loader))),
      );
      expect(calls).toBe(4);
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
    }
  });

  it('takes the lock per call, and lets a call opt out', async () => {
    const [a, b] = instances(2, `percall.${name}:`, false) as [TierCache, TierCache];
    const held = heldLoader<string>();
    try {
      const first = load(a, 'k', held.loader, { lock: true });
      await lockTaken(`percall.${name}:`, 'k');
      const second = load(b, 'k', held.loader, { lock: true });
      const optedOut = load(b, 'other', () => 'x', { lock: false });
      expect(await optedOut).toBe('x');
      held.release('v');
      expect(await Promise.all([first, second])).toEqual(['v', 'v']);
      expect(held.calls()).toBe(1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('waiters load themselves once the lock wait runs out', async () => {
    const [a, b] = instances(2, `locktimeout.${name}:`, { wait: 200, poll: '20ms' }) as [
      TierCache,
      TierCache,
    ];
    const events: CacheEvents['lock'][] = [];
    b.on('lock', (event) => events.push(event));
    const hung = gate<string>();
    try {
      const first = load(a, 'k', () => hung.promise);
      await lockTaken(`locktimeout.${name}:`, 'k');
      expect(await load(b, 'k', () => 'loaded by b')).toBe('loaded by b');
      expect(events.map((e) => e.outcome)).toEqual(['waited', 'timedOut']);
      expect(b.stats().lock).toEqual({ acquired: 0, waited: 1, timedOut: 1 });
      hung.resolve('late');
      expect(await first).toBe('late');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('renews the lease while a loader slower than the lock ttl runs: waiters keep waiting, one loader call', async () => {
    const [a, b] = instances(2, `renew.${name}:`, { ttl: 300, wait: '20s', poll: '20ms' }) as [
      TierCache,
      TierCache,
    ];
    const slow = heldLoader<string>();
    try {
      const first = load(a, 'k', slow.loader);
      await lockTaken(`renew.${name}:`, 'k');
      const second = load(b, 'k', slow.loader);
      // Watch the lease's remaining life jump back up: eight renewals (every 100 ms) carry it
      // through more than two lives, after either of which b would have taken it and loaded.
      let renewals = 0;
      let last = Number.POSITIVE_INFINITY;
      await waitFor(
        async () => {
          const left = await admin.pttl(`renew.${name}:__lock:k`);
          if (left > last) renewals++;
          last = left;
          return renewals >= 8 ? done(true) : notYet(`${renewals} renewals, ${left} ms left`);
        },
        { description: 'eight renewals of the lease', intervalMs: 20, timeoutMs: 20_000 },
      );
      expect(await admin.exists(`renew.${name}:__lock:k`)).toBe(1);
      expect(slow.calls()).toBe(1);
      slow.release('v');
      expect(await Promise.all([first, second])).toEqual(['v', 'v']);
      expect(slow.calls()).toBe(1);
      expect(b.stats().lock.timedOut).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it.skipIf(name !== 'getOrSet')('a lease is released only by its owner', async () => {
    const client = server.client();
    const lock = new DistributedLock(
      redisLocks(client, `tc.${name}:`),
      resolveLock({ ttl: 1500, timeout: '3s' }),
    );
    const first = (await lock.acquire('owned'))!;
    expect(first).toBeDefined();
    expect(await lock.acquire('owned')).toBeUndefined();
    await waitFor(
      async () => ((await admin.exists(`tc.${name}:__lock:owned`)) === 0 ? done(true) : notYet('held')),
      {
        description: 'the lease to expire',
        timeoutMs: 20_000,
      },
    );
    const second = (await lock.acquire('owned'))!;
    expect(second).toBeDefined();
    // The first owner, late, must not delete the second owner's lock.
    expect(await lock.release(first)).toBe(false);
    expect(await admin.get(`tc.${name}:__lock:owned`)).toBe(second.token);
    expect(await lock.release(second)).toBe(true);
    expect(await admin.exists(`tc.${name}:__lock:owned`)).toBe(0);
  });

  it('degrades to local single flight when Redis is down', async () => {
    const down = await startRedis();
    const caches = Array.from({ length: 2 }, () =>
      createCache({
        tiers: [memoryTier(), redisTier({ client: down.client(), prefix: `down.${name}:` })],
        lock: true,
      }),
    );
    try {
      await Promise.all(caches.map((cache) => load(cache, 'warm', () => 1)));
      await down.kill();
      let calls = 0;
      const started = Date.now();
      const values = await Promise.all(
        caches.flatMap((cache) =>
          Array.from({ length: 20 }, () =>
            load(cache, 'k', async () => {
              calls++;
              return 'origin';
            }),
          ),
        ),
      );
      expect(values.every((v) => v === 'origin')).toBe(true);
      expect(calls).toBe(2); // one per instance: local single flight still holds
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
    }
  });

  it.skipIf(name !== 'getOrSet')(
    'holds across separate processes: 4 processes × 250 callers → one loader call',
    async () => {
      const child = fileURLToPath(new URL('./fixtures/lock-child.ts', import.meta.url));
      await admin.del('mp-test:ready', 'mp-test:go', 'mp-test:done', 'mp-test:loader-calls');
      const exits = Array.from({ length: 4 }, () => {
        const proc = spawn(process.execPath, ['--import', 'tsx', child, server.url, 'mp-key', '250'], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        return new Promise<void>((resolve, reject) =>
          proc.on('exit', (code) =>
            code === 0 ? resolve() : reject(new Error(`child exited ${code}: ${stderr}`)),
          ),
        );
      });
      await waitFor(
        async () => (Number(await admin.get('mp-test:ready')) === 4 ? done(true) : notYet('starting')),
        {
          description: 'every child at the barrier',
          timeoutMs: 90_000,
        },
      );
      await admin.rpush('mp-test:go', 1, 2, 3, 4);
      await Promise.all(exits);
      expect(Number(await admin.get('mp-test:loader-calls'))).toBe(1);
      const reports = (await admin.lrange('mp-test:done', 0, -1)).map(
        (r) => JSON.parse(r) as { wrong: number },
      );
      expect(reports).toHaveLength(4);
      expect(reports.every((r) => r.wrong === 0)).toBe(true);
    },
    150_000,
  );
});
