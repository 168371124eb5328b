import { describe, expect, it } from 'vitest';
import {
  createCache,
  hasErrorCode,
  memoryTier,
  TierError,
  type CacheError,
  type GuardOptions,
} from '../../src/index.js';
import {
  guardTier,
  type ReadHandler,
  type PreparedWrite,
  type RemoteTier,
  type StoredEntry,
} from '../../src/extend.js';
import type { Entry } from '../../src/entry.js';
import { GuardedTier } from '../../src/tiers/guarded-tier.js';
import type { TierHooks } from '../../src/tiers/tier.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { trackUnhandled } from '../helpers/unhandled.js';

type Mode = 'ok' | 'hang' | 'fail';

/** A remote tier held in a Map, which the test can make hang or fail. */
class ScriptedTier implements RemoteTier {
  readonly kind = 'remote';
  readonly ttl = 60_000;
  mode: Mode = 'ok';
  calls = 0;
  /** Rejecters of hung calls, so a test can make them settle late. */
  readonly hung: ((error: Error) => void)[] = [];
  /** Completers of hung calls: each does the call's work and resolves it, late. */
  readonly landing: (() => void)[] = [];
  readonly entries = new Map<string, Entry>();
  attached: TierHooks | undefined;
  attach(hooks: TierHooks): () => void {
    this.attached = hooks;
    return () => (this.attached = undefined);
  }

  constructor(readonly name = 'remote') {}

  prepare(key: string, entry: Entry): PreparedWrite {
    return { key, entry, payload: JSON.stringify(entry.value) };
  }
  get(key: string): Promise<StoredEntry | undefined> {
    return this.#run(() => {
      const entry = this.entries.get(key);
      return entry === undefined ? undefined : { entry, size: 1 };
    });
  }
  getMany(keys: readonly string[]): Promise<(StoredEntry | undefined)[]> {
    return this.#run(() => keys.map((key) => this.entries.get(key)).map((e) => e && { entry: e, size: 1 }));
  }
  setMany(writes: readonly PreparedWrite[]): Promise<void> {
    return this.#run(() => {
      for (const write of writes) this.entries.set(write.key, write.entry);
    });
  }
  has(key: string): Promise<boolean> {
    return this.#run(() => this.entries.has(key));
  }
  delete(keys: readonly string[]): Promise<number> {
    return this.#run(() => keys.filter((key) => this.entries.delete(key)).length);
  }
  clear(): Promise<number> {
    return this.#run(() => {
      const n = this.entries.size;
      this.entries.clear();
      return n;
    });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  #run<R>(work: () => R): Promise<R> {
    this.calls++;
    if (this.mode === 'fail') return Promise.reject(new Error('connection refused'));
    if (this.mode === 'hang') {
      return new Promise<R>((resolve, reject) => {
        this.hung.push(reject);
        this.landing.push(() => resolve(work()));
      });
    }
    return Promise.resolve(work());
  }
}

function setup(options: GuardOptions = {}, hooks: ConstructorParameters<typeof GuardedTier>[2] = {}) {
  const clock = new FakeClock();
  const inner = new ScriptedTier();
  const tier = new GuardedTier(inner, { timeout: 20, ...options }, { clock: clock.read, ...hooks });
  const errors: CacheError[] = [];
  const states: string[] = [];
  const cache = createCache({ tiers: [tier], onError: (error) => errors.push(error) });
  cache.on('breaker', ({ tier: name, state }) => states.push(`${name}:${state}`));
  return { cache, tier, inner, clock, errors, states };
}

const unhandled = trackUnhandled().reasons;

describe('timeouts', () => {
  it('a call that outlasts the timeout rejects with a TierTimeoutError', async () => {
    const { tier, inner } = setup({ breaker: false });
    inner.mode = 'hang';
    let thrown: unknown;
    try {
      await tier.get('k');
    } catch (error) {
      thrown = error;
    }
    expect(hasErrorCode(thrown, 'E_TIER_TIMEOUT')).toBe(true);
    expect(tier.health().timeouts).toBe(1);
  });

  it('a timed-out call that rejects later leaves no unhandled rejection', async () => {
    const { tier, inner } = setup({ breaker: false });
    inner.mode = 'hang';
    await expect(tier.getMany(['a', 'b'])).rejects.toThrow(/did not answer getMany within 20 ms/);
    for (const reject of inner.hung) reject(new Error('Connection is closed.'));
    // Two turns of the event loop: long enough for Node to report an unhandled rejection.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });

  it('getOrSet answers with the loader value when the tier hangs, and reports the timeout', async () => {
    const { cache, inner, errors } = setup({ breaker: false });
    inner.mode = 'hang';
    const started = performance.now();
    expect(await cache.getOrSet('k', () => 'origin')).toBe('origin');
    // Read and write each wait one timeout (20 ms); a generous bound for a busy machine.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(errors.map((e) => e.code)).toEqual(['E_TIER', 'E_TIER']);
    expect(hasErrorCode((errors[0] as TierError).cause, 'E_TIER_TIMEOUT')).toBe(true);
    expect(cache.stats().tiers[0]).toMatchObject({ errors: 2, timeouts: 2 });
  });

  it("takes read and write timeouts apart, and 'forever' turns them off", async () => {
    const { tier, inner } = setup({ breaker: false, timeout: { read: 10, write: 'forever' } });
    inner.mode = 'hang';
    await expect(tier.has('k')).rejects.toThrow(/within 10 ms/);
    let settled = false;
    void tier.delete(['k']).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(settled).toBe(false);
    inner.hung.at(-1)!(new Error('late'));
    await expect.poll(() => settled).toBe(true);
  });

  it('rejects bad timeouts at construction, naming the option', () => {
    expect(() => guardTier(new ScriptedTier(), { timeout: 'soon' as never })).toThrow(
      /Invalid option "remote\.timeout"/,
    );
    expect(() => guardTier(new ScriptedTier(), { timeout: { read: -5 } })).toThrow(
      /Invalid option "remote\.timeout\.read"/,
    );
  });
});

describe('circuit breaker', () => {
  it('opens after repeated failures, then skips the tier without calling or reporting it', async () => {
    const { cache, tier, inner, errors, states } = setup({ breaker: { failures: 3 } });
    inner.mode = 'fail';
    for (let i = 0; i < 3; i++) expect(await cache.getOrSet(`k${i}`, () => i)).toBe(i);
    // k0's read and write and k1's read failed: the breaker opened on k1's read.
    expect(states).toEqual(['remote:open']);
    expect(inner.calls).toBe(3);
    expect(errors).toHaveLength(3);
    for (let i = 0; i < 10; i++) expect(await cache.getOrSet(`s${i}`, () => 'origin')).toBe('origin');
    expect(inner.calls).toBe(3);
    expect(errors).toHaveLength(3);
    // k1's write, k2's read and write, then a read and a write for each of the 10 keys.
    expect(tier.health().breaker).toEqual({ state: 'open', opens: 1, skipped: 23 });
    expect(cache.stats().tiers[0]).toMatchObject({
      errors: 3,
      breaker: { state: 'open', opens: 1, skipped: 23 },
    });
  });

  it('lets a probe through after the cool-down and closes when the tier is back', async () => {
    const { cache, inner, clock, states } = setup({ breaker: { failures: 1, cooldown: '5s' } });
    inner.mode = 'fail';
    expect(await cache.get('k')).toBeUndefined();
    inner.mode = 'ok';
    inner.entries.set('k', { value: 3, createdAt: 0, expiresAt: Infinity });
    expect(await cache.get('k')).toBeUndefined();
    clock.advance(5_000);
    expect(await cache.get('k')).toBe(3);
    expect(states).toEqual(['remote:open', 'remote:half-open', 'remote:closed']);
  });

  it('a timed-out probe opens the breaker again', async () => {
    const { cache, inner, clock, states } = setup({ breaker: { failures: 1, cooldown: '1s' } });
    inner.mode = 'hang';
    expect(await cache.get('k')).toBeUndefined();
    clock.advance(1_000);
    expect(await cache.get('j')).toBeUndefined();
    expect(states).toEqual(['remote:open', 'remote:half-open', 'remote:open']);
  });

  it("rejects skipped calls when the cache asked for tierErrors: 'throw'", async () => {
    const inner = new ScriptedTier();
    const tier = guardTier(inner, { breaker: { failures: 1 } });
    const cache = createCache({ tiers: [memoryTier(), tier], tierErrors: 'throw' });
    inner.mode = 'fail';
    await expect(cache.get('k')).rejects.toThrow(/connection refused/);
    inner.mode = 'ok';
    const error: unknown = await cache.get('k').catch((e: unknown) => e);
    expect(hasErrorCode(error, 'E_TIER')).toBe(true);
    expect(hasErrorCode((error as TierError).cause, 'E_TIER_UNAVAILABLE')).toBe(true);
  });

  it('can be turned off', async () => {
    const { cache, inner, states } = setup({ breaker: false });
    inner.mode = 'fail';
    for (let i = 0; i < 20; i++) await cache.get(`k${i}`);
    expect(inner.calls).toBe(20);
    expect(states).toEqual([]);
  });
});

describe('repair of writes that missed the tier', () => {
  /** A cache without L1 over a tier whose breaker opens on the first failure. */
  function down(options: GuardOptions = {}) {
    const t = setup({ breaker: { failures: 1, cooldown: '1s' }, ...options });
    const closed = () => t.tier.health().breaker!.state === 'closed';
    return { ...t, closed };
  }

  it('deletes keys written while the tier was down before reads go back to it', async () => {
    const { cache, inner, clock, tier, closed } = down();
    await cache.set('k', 'old');
    inner.mode = 'fail';
    await cache.set('k', 'new');
    await cache.delete('gone');
    inner.mode = 'ok';
    inner.entries.set('gone', { value: 'deleted while down', createdAt: 0, expiresAt: Infinity });
    expect(tier.health().repair).toEqual({ pending: 2, done: 0 });
    clock.advance(1_000);
    // The call that found the cool-down over starts the repair as the probe and skips the tier.
    expect(await cache.get('k')).toBeUndefined();
    await expect.poll(closed).toBe(true);
    expect(inner.entries.has('k')).toBe(false);
    expect(inner.entries.has('gone')).toBe(false);
    expect(tier.health().repair).toEqual({ pending: 0, done: 1 });
    expect(await cache.get('k')).toBeUndefined();
  });

  it('keeps the breaker open while the repair fails, and repairs once the tier answers', async () => {
    const { cache, inner, clock, states, closed } = down();
    await cache.set('k', 'old');
    inner.mode = 'fail';
    await cache.set('k', 'new');
    clock.advance(1_000);
    await cache.get('x');
    await expect.poll(() => states.at(-1)).toBe('remote:open');
    inner.mode = 'ok';
    clock.advance(1_000);
    await cache.get('x');
    await expect.poll(closed).toBe(true);
    expect(inner.entries.has('k')).toBe(false);
  });

  it('repairs a write that failed while the breaker stayed closed after the next good call', async () => {
    const { cache, inner, tier } = setup({ breaker: false });
    await cache.set('k', 'old');
    inner.mode = 'fail';
    await cache.set('k', 'new');
    inner.mode = 'ok';
    await cache.get('other');
    await expect.poll(() => inner.entries.has('k')).toBe(false);
    expect(tier.health().repair.done).toBe(1);
  });

  it('deletes a write that timed out and landed later, over a newer value, again', async () => {
    const { cache, inner, tier } = setup({ breaker: false });
    await cache.set('k', 'old');
    inner.mode = 'hang';
    await cache.set('k', 'stuck'); // times out for the caller
    inner.mode = 'ok';
    await cache.get('other'); // the tier answers: the repair deletes k
    await expect.poll(() => tier.health().repair).toEqual({ pending: 0, done: 1 });
    // Another instance writes a newer value; then the stuck write lands over it.
    inner.entries.set('k', { value: 'newer', createdAt: 0, expiresAt: Infinity });
    for (const land of inner.landing) land();
    await expect.poll(() => inner.entries.has('k')).toBe(false);
    expect(tier.health().repair).toEqual({ pending: 0, done: 2 });
  });

  it('reports a failing repair once per streak, as a TierError of operation repair', async () => {
    const { cache, inner, clock, errors } = down();
    await cache.set('k', 'old');
    inner.mode = 'fail';
    await cache.set('k', 'new');
    const before = errors.length;
    for (let i = 0; i < 3; i++) {
      clock.advance(1_000);
      await cache.get('x');
      await new Promise((resolve) => setImmediate(resolve));
    }
    const repairs = errors.slice(before).filter((e) => e instanceof TierError && e.operation === 'repair');
    expect(repairs).toHaveLength(1);
    expect(repairs[0]!.message).toMatch(/failed repair: connection refused/);
  });

  it('clears the tier on recovery when more keys missed it than it remembers', async () => {
    const { cache, inner, clock, tier, closed } = down({ repairLimit: 2 });
    await cache.set('unrelated', 1);
    inner.mode = 'fail';
    await cache.setMany([1, 2, 3].map((i) => ({ key: `k${i}`, value: i })));
    expect(tier.health().repair.pending).toBe('all');
    inner.mode = 'ok';
    clock.advance(1_000);
    await cache.get('x');
    await expect.poll(closed).toBe(true);
    expect(inner.entries.size).toBe(0);
    expect(tier.health().repair.pending).toBe(0);
  });

  it('a clear that missed the tier is done on recovery', async () => {
    const { cache, inner, clock, closed } = down();
    await cache.set('k', 1);
    inner.mode = 'fail';
    await cache.clear();
    inner.mode = 'ok';
    clock.advance(1_000);
    await cache.get('x');
    await expect.poll(closed).toBe(true);
    expect(inner.entries.size).toBe(0);
  });
});

describe('fail-fast connection check', () => {
  it('fails calls at once while the client is disconnected, counting them toward the breaker', async () => {
    let connected = false;
    const { cache, inner, errors, states } = setup(
      { breaker: { failures: 2 } },
      { connected: () => connected },
    );
    expect(await cache.getOrSet('k', () => 1)).toBe(1);
    expect(inner.calls).toBe(0);
    expect(errors.map((e) => (e as TierError).cause)).toMatchObject([
      { code: 'E_TIER_UNAVAILABLE', reason: 'disconnected' },
      { code: 'E_TIER_UNAVAILABLE', reason: 'disconnected' },
    ]);
    expect(states).toEqual(['remote:open']);
    connected = true;
  });
});

describe('decorator', () => {
  it('forwards name, ttl, prepare, clear and corrupt reports to the tier it wraps', async () => {
    const inner = new ScriptedTier();
    const tier = guardTier(inner);
    expect(tier.name).toBe('remote');
    expect(tier.ttl).toBe(60_000);
    expect(tier.prepare('k', { value: 1, createdAt: 0, expiresAt: 1 }).payload).toBe('1');
    const hooks = { corrupt: () => {}, breaker: () => {}, repairError: () => {} };
    const detach = tier.attach(hooks);
    expect(inner.attached).toBe(hooks);
    detach();
    expect(inner.attached).toBeUndefined();
    inner.entries.set('k', { value: 1, createdAt: 0, expiresAt: Infinity });
    expect(await tier.clear()).toBe(1);
  });
});

/** ScriptedTier plus RawReads: the payload is the entry's JSON, or 'corrupt' to make the decoder throw. */
class RawTier extends ScriptedTier {
  rawCalls = 0;
  readRaw(key: string): Promise<string | null> {
    this.rawCalls++;
    return this.get(key).then((found) => (found === undefined ? null : JSON.stringify(found.entry)));
  }
  decodeRaw(key: string, raw: string | null): StoredEntry | undefined {
    if (raw === null) return undefined;
    if (key === 'corrupt') throw new Error('decoder exploded');
    return { entry: JSON.parse(raw) as Entry, size: raw.length };
  }
}

describe('raw reads (a tier that hands the guard its reply and a decoder)', () => {
  it('reads through readRaw and decodes in the guard', async () => {
    const inner = new RawTier();
    const tier = new GuardedTier(inner, { timeout: 20 });
    inner.entries.set('k', { value: 'v', createdAt: 1, expiresAt: 2 });
    const payload = JSON.stringify({ value: 'v', createdAt: 1, expiresAt: 2 });
    expect(await tier.get('k')).toEqual({ entry: JSON.parse(payload), size: payload.length });
    expect(await tier.get('missing')).toBeUndefined();
    expect(inner.rawCalls).toBe(2);
  });

  it('a decoder that throws fails the read (the cache degrades), never an unhandled rejection', async () => {
    const inner = new RawTier();
    const tier = new GuardedTier(inner, { timeout: 20, breaker: false });
    inner.entries.set('corrupt', { value: 'v', createdAt: 1, expiresAt: Infinity });
    await expect(tier.get('corrupt')).rejects.toThrow('decoder exploded');
    const errors: CacheError[] = [];
    const cache = createCache({ tiers: [tier], onError: (error) => errors.push(error) });
    expect(await cache.getOrSet('corrupt', () => 'from the loader')).toBe('from the loader');
    expect(errors.map((error) => error.code)).toEqual(['E_TIER']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    await cache.close();
  });
});

describe('read() (the outcome handed to a handler in the guard continuation)', () => {
  type Seen = { key: string; outcome: unknown; ms: number; token: string };
  function recorder(seen: Seen[]): ReadHandler<string, string> {
    return {
      found: (key, found, ms, token) => {
        seen.push({ key, outcome: found?.entry.value, ms, token });
        return `found:${String(found?.entry.value)}`;
      },
      failed: (key, error, ms, token) => {
        seen.push({ key, outcome: (error as CacheError).code ?? (error as Error).message, ms, token });
        return 'failed';
      },
    };
  }

  it('settles with what the handler makes of the entry, passing the duration and the token', async () => {
    const { tier, inner } = setup();
    inner.entries.set('k', { value: 'v', createdAt: 1, expiresAt: Infinity });
    const seen: Seen[] = [];
    expect(await tier.read('k', recorder(seen), 't1')).toBe('found:v');
    expect(await tier.read('missing', recorder(seen), 't2')).toBe('found:undefined');
    expect(seen.map(({ key, outcome, token }) => [key, outcome, token])).toEqual([
      ['k', 'v', 't1'],
      ['missing', undefined, 't2'],
    ]);
    expect(seen.every(({ ms }) => ms >= 0)).toBe(true);
    // A handler may go on asynchronously: the read adopts the promise it returns.
    const later: ReadHandler<undefined, string> = {
      found: () => Promise.resolve('later'),
      failed: () => 'failed',
    };
    expect(await tier.read('k', later, undefined)).toBe('later');
  });

  it('hands failures to the handler: errors, timeouts, and calls the breaker refuses without calling the tier', async () => {
    const { tier, inner } = setup({ breaker: { failures: 2 } });
    const seen: Seen[] = [];
    inner.mode = 'fail';
    expect(await tier.read('a', recorder(seen), 'fail')).toBe('failed');
    inner.mode = 'hang';
    expect(await tier.read('b', recorder(seen), 'hang')).toBe('failed');
    const calls = inner.calls;
    expect(await tier.read('c', recorder(seen), 'open')).toBe('failed');
    expect(inner.calls).toBe(calls);
    expect(seen.map(({ outcome, token }) => [token, outcome])).toEqual([
      ['fail', 'connection refused'],
      ['hang', 'E_TIER_TIMEOUT'],
      ['open', 'E_TIER_UNAVAILABLE'],
    ]);
  });

  it('rejects with what a handler throws, leaving nothing unhandled', async () => {
    const { tier, inner } = setup({ breaker: false });
    inner.entries.set('k', { value: 'v', createdAt: 1, expiresAt: Infinity });
    const throwing: ReadHandler<undefined, never> = {
      found: () => {
        throw new Error('found threw');
      },
      failed: () => {
        throw new Error('failed threw');
      },
    };
    await expect(tier.read('k', throwing, undefined)).rejects.toThrow('found threw');
    inner.mode = 'fail';
    await expect(tier.read('k', throwing, undefined)).rejects.toThrow('failed threw');
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });

  it('get() goes down a chain of guarded and unguarded tiers past a failing one, promoting the hit', async () => {
    const failing = new ScriptedTier('failing');
    failing.mode = 'fail';
    const middle = new ScriptedTier('middle');
    const unguarded = new ScriptedTier('unguarded');
    unguarded.entries.set('k', { value: 'deep', createdAt: Date.now(), expiresAt: Date.now() + 60_000 });
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [guardTier(failing, { breaker: false }), guardTier(middle), unguarded],
      onError: (error) => errors.push(error),
    });
    expect(await cache.get('k')).toBe('deep');
    expect(await cache.get('absent')).toBeUndefined();
    await expect.poll(() => middle.entries.get('k')?.value).toBe('deep');
    // Both reads failed on the first tier, and so did the hit's promotion into it.
    const failures = errors.map((error) => `${String(error.tier)}:${(error as TierError).operation}`);
    expect(failures.sort()).toEqual(['failing:get', 'failing:get', 'failing:promote']);
    expect(cache.stats().tiers.map(({ hits, misses }) => [hits, misses])).toEqual([
      [0, 0],
      [0, 2],
      [1, 1],
    ]);
    await cache.close();
  });
});

describe('batched reads (a tier that can read many raw replies at once)', () => {
  /** RawTier plus readRawMany, counting the multi-key reads it is sent. */
  class BatchTier extends RawTier {
    batches: string[][] = [];
    decoded: string[] = [];
    override decodeRaw(key: string, raw: string | null): StoredEntry | undefined {
      this.decoded.push(key);
      return super.decodeRaw(key, raw);
    }
    readRawMany(keys: readonly string[]): Promise<(string | null)[]> {
      this.batches.push([...keys]);
      return this.getMany(keys).then((found) =>
        found.map((f) => (f === undefined ? null : JSON.stringify(f.entry))),
      );
    }
  }
  const entry = (value: string): Entry => ({ value, createdAt: 1, expiresAt: Infinity });

  it('sends the reads of one tick as one multi-key read of at most batchReads keys', async () => {
    const inner = new BatchTier();
    const tier = new GuardedTier(inner, { timeout: 20, batchReads: 2 });
    inner.entries.set('a', entry('A'));
    inner.entries.set('c', entry('C'));
    const found = await Promise.all(['a', 'b', 'c'].map((key) => tier.get(key)));
    expect(found.map((f) => f?.entry.value)).toEqual(['A', undefined, 'C']);
    // A batch of one key goes as a plain single read (a GET, cheaper than an MGET of one).
    expect(inner.batches).toEqual([['a', 'b']]);
    expect(inner.rawCalls).toBe(1);
    // The next tick starts a new batch.
    await Promise.all(['a', 'c'].map((key) => tier.get(key)));
    expect(inner.batches.at(-1)).toEqual(['a', 'c']);
  });

  it('fails every read of a batch that fails or times out, counting one breaker outcome per batch', async () => {
    const inner = new BatchTier();
    const tier = new GuardedTier(inner, { timeout: 20, breaker: { failures: 2 } });
    inner.mode = 'fail';
    const failed = await Promise.all(['a', 'b', 'c'].map((key) => tier.get(key).catch((e: unknown) => e)));
    expect(failed.map((e) => (e as Error).message)).toEqual(Array(3).fill('connection refused'));
    expect(tier.health().breaker?.state).toBe('closed');
    inner.mode = 'hang';
    const timedOut = await Promise.all(['a', 'b'].map((key) => tier.get(key).catch((e: unknown) => e)));
    expect(timedOut.map((e) => (e as CacheError).code)).toEqual(['E_TIER_TIMEOUT', 'E_TIER_TIMEOUT']);
    expect(tier.health()).toMatchObject({ timeouts: 1, breaker: { state: 'open' } });
    const calls = inner.calls;
    const skipped = await Promise.all(['a', 'b'].map((key) => tier.get(key).catch((e: unknown) => e)));
    expect(skipped.map((e) => (e as CacheError).code)).toEqual(['E_TIER_UNAVAILABLE', 'E_TIER_UNAVAILABLE']);
    expect(inner.calls).toBe(calls);
    for (const reject of inner.hung) reject(new Error('late'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
  });

  it('a reply its decoder cannot read fails that read only', async () => {
    const inner = new BatchTier();
    const tier = new GuardedTier(inner, { timeout: 20 });
    inner.entries.set('good', entry('G'));
    inner.entries.set('corrupt', entry('X'));
    const [good, corrupt] = await Promise.all([
      tier.get('good'),
      tier.get('corrupt').catch((e: unknown) => e),
    ]);
    expect(good?.entry.value).toBe('G');
    expect((corrupt as Error).message).toBe('decoder exploded');
    expect(inner.batches).toEqual([['good', 'corrupt']]);
  });

  it('reads one key at a time with batchReads: false, and rejects a bad batchReads naming it', async () => {
    const inner = new BatchTier();
    const tier = new GuardedTier(inner, { timeout: 20, batchReads: false });
    await Promise.all(['a', 'b'].map((key) => tier.get(key)));
    expect([inner.batches.length, inner.rawCalls]).toEqual([0, 2]);
    expect(() => new GuardedTier(inner, { batchReads: 0 })).toThrow(
      /"remote\.batchReads".*positive integer or false/,
    );
  });

  it('reads a key once however many reads of it join the batch: named once, decoded once, every caller answered', async () => {
    const inner = new BatchTier();
    const tier = new GuardedTier(inner, { timeout: 20 });
    inner.entries.set('a', entry('A'));
    inner.entries.set('corrupt', entry('X'));
    const found = await Promise.all(
      ['a', 'b', 'a', 'corrupt', 'a', 'corrupt'].map((key) => tier.get(key).catch((e: unknown) => e)),
    );
    expect(
      found.map((f) => (f instanceof Error ? f.message : (f as StoredEntry | undefined)?.entry.value)),
    ).toEqual(['A', undefined, 'A', 'decoder exploded', 'A', 'decoder exploded']);
    expect(inner.batches).toEqual([['a', 'b', 'corrupt']]);
    expect(inner.decoded.sort()).toEqual(['a', 'b', 'corrupt']);
  });

  it('a read of a key an earlier batch of the tick names joins that batch, not the one being filled', async () => {
    const inner = new BatchTier();
    const tier = new GuardedTier(inner, { timeout: 20, batchReads: 2 });
    inner.entries.set('a', entry('A'));
    inner.entries.set('c', entry('C'));
    const found = await Promise.all(['a', 'b', 'c', 'a', 'b', 'c', 'd'].map((key) => tier.get(key)));
    expect(found.map((f) => f?.entry.value)).toEqual(['A', undefined, 'C', 'A', undefined, 'C', undefined]);
    expect(inner.batches).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(inner.decoded.sort()).toEqual(['a', 'b', 'c', 'd']);
    // Sent batches are forgotten: the next tick reads again.
    await Promise.all(['a', 'b', 'c', 'a'].map((key) => tier.get(key)));
    expect(inner.batches.slice(2)).toEqual([['a', 'b']]);
    expect(inner.rawCalls).toBe(1); // the batch of 'c' alone
  });
});

describe('deadlines that allow for the transfer', () => {
  /** A tier whose calls wait until the test answers them. */
  class HeldTier extends ScriptedTier {
    readonly answers: (() => void)[] = [];
    override setMany(): Promise<void> {
      return new Promise((resolve) => this.answers.push(resolve));
    }
    override get(): Promise<StoredEntry | undefined> {
      return new Promise((resolve) => this.answers.push(() => resolve(undefined)));
    }
  }
  const write = (key: string, bytes: number): PreparedWrite => ({
    key,
    entry: { value: 'x', createdAt: 1, expiresAt: Infinity },
    payload: 'x'.repeat(bytes),
  });

  it('a write has the time to send its payload, at minThroughput, beyond the timeout', async () => {
    const inner = new HeldTier();
    const tier = new GuardedTier(inner, { timeout: 20, minThroughput: 1000, breaker: false });
    const small = tier.setMany([write('small', 1)], [1000]);
    // The small write had 1 ms for its byte.
    await expect(small).rejects.toMatchObject({ code: 'E_TIER_TIMEOUT' });
    let bigSettled = false;
    const big = tier.setMany([write('big', 60_000)], [1000]).finally(() => (bigSettled = true));
    // The big one has a minute for its 60 kB: five timeouts later it is still waiting.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(bigSettled).toBe(false);
    for (const answer of inner.answers) answer();
    await expect(big).resolves.toBeUndefined();
    expect(tier.health().timeouts).toBe(1);
  });

  it('a call waits on while its connection keeps receiving, and times out once it stops', async () => {
    const inner = new HeldTier();
    let received = 0;
    const tier = new GuardedTier(
      inner,
      { timeout: 20, minThroughput: 1000, breaker: false, batchReads: false },
      { received: () => received },
    );
    let settled = false;
    const read = tier.get('k').finally(() => (settled = true));
    // Replies arriving (100 bytes: 100 ms more each time) for five timeouts' worth of time.
    const started = performance.now();
    while (performance.now() - started < 100) {
      received += 100;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(settled).toBe(false);
    // Nothing more arrives: the next check gives up.
    await expect(read).rejects.toMatchObject({ code: 'E_TIER_TIMEOUT' });
    expect(tier.health().timeouts).toBe(1);
  });

  it('rejects a bad minThroughput naming it', () => {
    for (const bad of [0, -1, Infinity, '10MB' as unknown as number]) {
      expect(() => new GuardedTier(new ScriptedTier(), { minThroughput: bad })).toThrow(
        /"remote\.minThroughput"/,
      );
    }
  });
});
