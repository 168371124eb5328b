import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Entry } from '../entry.js';
import type { RawReads } from '../tiers/guarded-tier.js';
import type { RemoteTier, StoredEntry } from '../tiers/tier.js';

/**
 * The test functions of the runner that registers the suite: vitest's or jest's `describe` and
 * `it`, node:test's `describe` and `it`, mocha's. The suite asserts with node:assert, so it needs
 * nothing else from the runner. A test may wait up to `patience` for an expiry: give `it` a
 * longer timeout than that if the runner's default is shorter.
 */
export interface TestRegistrar {
  describe: (name: string, body: () => void) => unknown;
  it: (name: string, body: () => Promise<void>) => unknown;
}

/** What `create()` is given: where the tier's keys live. */
export interface TierContext {
  /**
   * The tier's own key space (a Redis tier's key prefix), as `name:` with no other `:`. Fresh for every tier the suite makes;
   * two tiers made with different prefixes share the store but none of its keys, and each
   * tier's `clear()` and `deleteMatching()` touch only its own.
   */
  readonly prefix: string;
}

export interface RemoteTierConformanceOptions<T extends RemoteTier = RemoteTier> {
  /** Makes a tier whose keys live under `context.prefix`. Tests make one or two each. */
  create: (context: TierContext) => T | Promise<T>;
  /**
   * Releases a tier made by `create()`, after every test, also one that failed or closed the
   * tier itself. Close clients you made for the tier here.
   * @default clears the tier (unless the test closed it), then closes it
   */
  destroy?: (tier: NoInfer<T>) => void | Promise<void>;
  /**
   * Stores under `key` (a key of `tier`, without its prefix) a payload the tier cannot decode.
   * Given, the suite checks that such a payload reads as a miss and is reported to the hooks
   * it attaches (`RemoteTier.attach`), as a cache would.
   */
  corrupt?: (tier: NoInfer<T>, key: string) => void | Promise<void>;
  /**
   * Values `prepare()` must refuse by throwing, for the tier's serializer; `[]` skips the check.
   * @default [a circular object] (JSON cannot encode it; a serializer that can needs others)
   */
  unencodable?: readonly unknown[];
  /** More values that must round-trip, by name: Dates, Maps, Sets… if the serializer keeps them. */
  values?: Readonly<Record<string, unknown>>;
  /**
   * Whether the tier can delete by pattern. A wrapper such as `guardTier()` always has the
   * method; say `false` when what it wraps has none.
   * @default true
   */
  deleteMatching?: boolean;
  /** The life, in ms, of the writes the expiry test expects to disappear. @default 50 */
  shortLife?: number;
  /** Longest wait, in ms, for a short-lived write to disappear. @default 5_000 */
  patience?: number;
}

/** Default `unencodable`: a structure JSON refuses. */
function circular(): unknown {
  const value: Record<string, unknown> = { name: 'loop' };
  value['self'] = value;
  return value;
}

/**
 * Registers tests that check a {@link RemoteTier} implementation keeps the contract the cache
 * relies on: round trips of entries with their instants and tags, misses, getMany alignment,
 * per-write lives, delete counts, clear() and deleteMatching() confined to the tier's own
 * keys, prepare() refusing what it cannot encode, corrupt payloads read as misses and
 * reported, raw reads (when the tier offers them) agreeing with get(), fill leases (when it
 * offers them: a fill refused after a delete, clear or pattern delete that followed its read),
 * and close() twice.
 *
 * ```ts
 * import { describe, it } from 'vitest';
 * import { remoteTierConformance } from 'tiercache/testing';
 *
 * remoteTierConformance('my tier', { describe, it }, {
 *   create: ({ prefix }) => myTier({ prefix }),
 * });
 * ```
 */
export function remoteTierConformance<T extends RemoteTier>(
  name: string,
  registrar: TestRegistrar,
  options: RemoteTierConformanceOptions<T>,
): void {
  const { describe, it } = registrar;
  const shortLife = options.shortLife ?? 50;
  const patience = options.patience ?? 5_000;
  const unencodable = options.unencodable ?? [circular()];
  const run = randomBytes(4).toString('hex');
  let tiers = 0;

  /** A test body run with a fresh tier factory; every tier it made is destroyed afterwards. */
  const test = (title: string, body: (scope: Scope<T>) => Promise<void>): void => {
    it(title, async () => {
      const scope = new Scope<T>(() => `tc-conformance.${run}.${++tiers}:`, options.create);
      let failure: unknown;
      try {
        await body(scope);
      } catch (error) {
        failure = error;
      }
      const released = await scope.release(options.destroy);
      // Rethrown as the runner's own failure, whatever was thrown.
      if (failure !== undefined) throw failure as Error;
      if (released !== undefined) throw released as Error;
    });
  };

  describe(`RemoteTier conformance: ${name}`, () => {
    test('has the RemoteTier shape', async ({ tier }) => {
      const t = await tier();
      assert.equal(t.kind, 'remote');
      assert.equal(typeof t.name, 'string', 'name is a string');
      assert.ok(t.name.length > 0, 'name is not empty');
      assert.ok(typeof t.ttl === 'number' && t.ttl > 0, `ttl is a positive number of ms, got ${t.ttl}`);
      for (const method of ['prepare', 'get', 'getMany', 'setMany', 'has', 'delete', 'clear', 'close']) {
        assert.equal(typeof (t as unknown as Record<string, unknown>)[method], 'function', `${method}()`);
      }
      if (options.deleteMatching !== false) assert.equal(typeof t.deleteMatching, 'function');
      if (t.health !== undefined) {
        const health = t.health();
        assert.equal(typeof health.timeouts, 'number', 'health().timeouts');
        assert.ok(health.repair.pending === 'all' || typeof health.repair.pending === 'number');
      }
    });

    test('misses keys it never stored', async ({ tier }) => {
      const t = await tier();
      assert.equal(await t.get('absent'), undefined);
      assert.equal(await t.has('absent'), false);
      assert.deepEqual(await t.getMany(['absent', 'also-absent']), [undefined, undefined]);
      assert.deepEqual(await t.getMany([]), []);
    });

    test('round-trips values of every kind, with their size', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const samples = Object.entries({ ...VALUES, ...options.values });
      const entries = samples.map(([, value]) => ({ value, createdAt: now, expiresAt: now + 60_000 }));
      await write(
        t,
        samples.map(([key]) => key),
        entries,
        60_000,
      );
      for (const [i, [key]] of samples.entries()) {
        const found = await t.get(key);
        assertEntry(found, entries[i]!, `get("${key}")`);
      }
      const many = await t.getMany(samples.map(([key]) => key));
      many.forEach((found, i) => assertEntry(found, entries[i]!, `getMany()[${i}]`));
    });

    test('round-trips instants, stale periods and tags', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const cases: Record<string, Entry> = {
        finite: { value: 1, createdAt: now - 5, expiresAt: now + 30_000 },
        forever: { value: 2, createdAt: now, expiresAt: Infinity },
        stale: { value: 3, createdAt: now, expiresAt: now + 1_000, staleUntil: now + 20_000 },
        'stale-forever': { value: 4, createdAt: now, expiresAt: now + 1_000, staleUntil: Infinity },
        tagged: { value: 5, createdAt: now, expiresAt: now + 30_000, tags: ['user:1', 'team a', 'ü'] },
        'no-tags': { value: 6, createdAt: now, expiresAt: now + 30_000, tags: [] },
        // Expiry is the cache's decision and the life is the tier's: a stale entry must stay
        // readable for its whole life, or grace and fail-safe have nothing to serve.
        expired: { value: 7, createdAt: now - 10_000, expiresAt: now - 5_000, staleUntil: now + 30_000 },
      };
      const keys = Object.keys(cases);
      await write(t, keys, Object.values(cases), 60_000);
      for (const key of keys) assertEntry(await t.get(key), cases[key]!, `get("${key}")`);
    });

    test('replaces an entry written again under the same key', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      await write(t, ['k'], [{ value: 'old', createdAt: now, expiresAt: now + 60_000, tags: ['a'] }], 60_000);
      const next: Entry = { value: 'new', createdAt: now + 1, expiresAt: Infinity };
      await write(t, ['k'], [next], 60_000);
      assertEntry(await t.get('k'), next, 'get("k") after the second write');
    });

    test('answers getMany in the order asked, with misses and repeated keys in place', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const a: Entry = { value: 'A', createdAt: now, expiresAt: now + 60_000 };
      const b: Entry = { value: { b: true }, createdAt: now, expiresAt: now + 60_000 };
      await write(t, ['a', 'b'], [a, b], 60_000);
      const found = await t.getMany(['b', 'missing', 'a', 'b', 'a']);
      assert.equal(found.length, 5, 'one result per key asked');
      assertEntry(found[0], b, 'getMany()[0]');
      assert.equal(found[1], undefined, 'getMany()[1] is a miss');
      assertEntry(found[2], a, 'getMany()[2]');
      assertEntry(found[3], b, 'getMany()[3]');
      assertEntry(found[4], a, 'getMany()[4]');
    });

    test('keeps keys apart whatever characters they hold', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const keys = ['a b', 'a:b:c', 'ключ', '🚀', '*', 'k?', '[x]', 'back\\slash', 'x'.repeat(1_000)];
      const entries = keys.map((key) => ({ value: key, createdAt: now, expiresAt: now + 60_000 }));
      await write(t, keys, entries, 60_000);
      const found = await t.getMany(keys);
      found.forEach((entry, i) => assertEntry(entry, entries[i]!, `key ${JSON.stringify(keys[i])}`));
      assert.equal(await t.delete(['*']), 1, 'delete(["*"]) removes the key "*" only');
      assert.equal(await t.has('k?'), true, 'a glob-like key is a literal key');
    });

    test('gives each write of one setMany its own life', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const short: Entry = { value: 'short', createdAt: now, expiresAt: now + shortLife };
      const long: Entry = { value: 'long', createdAt: now, expiresAt: now + 60_000 };
      const forever: Entry = { value: 'forever', createdAt: now, expiresAt: Infinity };
      await write(t, ['short', 'long', 'forever'], [short, long, forever], [shortLife, 60_000, Infinity]);
      await eventually(
        async () => (await t.get('short')) === undefined,
        patience,
        `the entry written with a ${shortLife} ms life is still there after ${patience} ms`,
      );
      assert.equal(await t.has('short'), false, 'has() of an expired write');
      assert.deepEqual((await t.getMany(['short'])).length, 1);
      assert.equal((await t.getMany(['short']))[0], undefined, 'getMany() of an expired write');
      assertEntry(await t.get('long'), long, 'the 60 s write');
      assertEntry(await t.get('forever'), forever, 'the write kept forever');
    });

    test('counts the keys delete() removed', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const entry: Entry = { value: 1, createdAt: now, expiresAt: now + 60_000 };
      await write(t, ['a', 'b', 'c'], [entry, entry, entry], 60_000);
      assert.equal(await t.delete([]), 0, 'delete([])');
      assert.equal(await t.delete(['a', 'b', 'missing']), 2, 'delete(["a", "b", "missing"])');
      assert.equal(await t.get('a'), undefined);
      assert.equal(await t.has('b'), false);
      assertEntry(await t.get('c'), entry, 'the key not deleted');
      assert.equal(await t.delete(['a']), 0, 'deleting again');
    });

    test('clears its own keys and only those', async ({ tier }) => {
      const mine = await tier();
      const other = await tier();
      const now = Date.now();
      const entry: Entry = { value: 'v', createdAt: now, expiresAt: now + 60_000 };
      const keys = Array.from({ length: 25 }, (_, i) => `key:${i}`);
      await write(
        mine,
        keys,
        keys.map(() => entry),
        60_000,
      );
      await write(other, ['key:0', 'other'], [entry, entry], 60_000);
      assert.equal(await mine.clear(), keys.length, 'clear() counts the keys it removed');
      assert.deepEqual(await mine.getMany(keys.slice(0, 3)), [undefined, undefined, undefined]);
      assertEntry(await other.get('key:0'), entry, "the other tier's key of the same name");
      assertEntry(await other.get('other'), entry, "the other tier's own key");
      assert.equal(await mine.clear(), 0, 'clear() of an empty tier');
    });

    if (options.deleteMatching !== false) {
      test('deletes the keys matching a Redis glob, and only its own', async ({ tier }) => {
        const mine = await tier();
        const other = await tier();
        const now = Date.now();
        const entry: Entry = { value: 'v', createdAt: now, expiresAt: now + 60_000 };
        const keys = [
          'user:1',
          'user:2',
          'user:10',
          'userx',
          'post:1',
          'post:a',
          'lit*',
          'litx',
          'b1',
          'c1',
          'd1',
        ];
        await write(
          mine,
          keys,
          keys.map(() => entry),
          60_000,
        );
        await write(other, ['user:1', 'post:1'], [entry, entry], 60_000);
        const present = async (): Promise<string[]> => {
          const found = await mine.getMany(keys);
          return keys.filter((_, i) => found[i] !== undefined);
        };
        const deleteMatching = (pattern: string): Promise<number> => mine.deleteMatching!(pattern);
        assert.equal(await deleteMatching('user:*'), 3, 'user:* removes user:1, user:2, user:10');
        assert.equal(await deleteMatching('post:?'), 2, 'post:? removes post:1 and post:a');
        assert.equal(await deleteMatching('lit\\*'), 1, 'lit\\* removes the key "lit*" only');
        assert.equal(await deleteMatching('[bc]1'), 2, '[bc]1 removes b1 and c1');
        assert.equal(await deleteMatching('nothing:*'), 0, 'a pattern that matches nothing');
        assert.deepEqual(await present(), ['userx', 'litx', 'd1']);
        assertEntry(await other.get('user:1'), entry, "the other tier's user:1");
        assertEntry(await other.get('post:1'), entry, "the other tier's post:1");
      });
    }

    if (unencodable.length > 0) {
      test('refuses in prepare() a value it cannot encode, writing nothing', async ({ tier }) => {
        const t = await tier();
        const now = Date.now();
        const kept: Entry = { value: 'kept', createdAt: now, expiresAt: now + 60_000 };
        await write(t, ['k'], [kept], 60_000);
        for (const value of unencodable) {
          assert.throws(
            () => t.prepare('k', { value, createdAt: now, expiresAt: now + 60_000 }),
            Error,
            'prepare() throws an Error for a value its serializer cannot encode',
          );
          assert.throws(() => t.prepare('fresh', { value, createdAt: now, expiresAt: now + 60_000 }), Error);
        }
        assertEntry(await t.get('k'), kept, 'the entry already stored under the key');
        assert.equal(await t.has('fresh'), false, 'a refused write to a new key');
      });
    }

    if (options.corrupt !== undefined) {
      const corrupt = options.corrupt;
      test('reads a corrupt payload as a miss and reports it to the attached hooks', async ({
        tier,
        reports,
      }) => {
        const t = await tier();
        const now = Date.now();
        const good: Entry = { value: 'good', createdAt: now, expiresAt: now + 60_000 };
        await write(t, ['good'], [good], 60_000);
        await corrupt(t, 'bad');
        assert.equal(await t.get('bad'), undefined, 'get() of a corrupt payload');
        assertReported(reports, 'bad', 'get()');
        reports.length = 0;
        const found = await t.getMany(['good', 'bad', 'missing']);
        assertEntry(found[0], good, 'getMany()[0] beside a corrupt payload');
        assert.equal(found[1], undefined, 'getMany()[1], the corrupt payload');
        assert.equal(found[2], undefined, 'getMany()[2], a miss');
        assertReported(reports, 'bad', 'getMany()');
        assert.ok(
          reports.every((report) => report.key === 'bad'),
          'only the corrupt key is reported',
        );
      });
    }

    test('answers raw reads like get(), when it offers them (RawReads)', async ({ tier, reports }) => {
      const t = await tier();
      if (!hasRawReads(t)) return;
      const now = Date.now();
      const entry: Entry = { value: { raw: [1, 2] }, createdAt: now, expiresAt: now + 60_000, tags: ['t'] };
      await write(t, ['k'], [entry], 60_000);
      assertEntry(t.decodeRaw('k', await t.readRaw('k')), entry, 'decodeRaw(readRaw("k"))');
      const absent = await t.readRaw('absent');
      assert.equal(absent, null, 'readRaw() of a missing key is null');
      assert.equal(t.decodeRaw('absent', absent), undefined, 'decodeRaw(null)');
      if (t.readRawMany !== undefined) {
        const raws = await t.readRawMany(['absent', 'k', 'k']);
        assert.equal(raws.length, 3);
        assert.equal(raws[0], null);
        assertEntry(t.decodeRaw('k', raws[1]!), entry, 'readRawMany()[1]');
        assertEntry(t.decodeRaw('k', raws[2]!), entry, 'readRawMany()[2]');
      }
      assert.deepEqual(reports, [], 'nothing was reported corrupt');
    });

    test('refuses a fill when a delete, clear or pattern delete came after its read, when it offers fill leases', async ({
      tier,
    }) => {
      const t = await tier();
      if (t.getLeased === undefined || t.getManyLeased === undefined || t.fillMany === undefined) return;
      const now = Date.now();
      const entry = (value: unknown): Entry => ({ value, createdAt: now, expiresAt: now + 60_000 });
      const fill = async (key: string, lease: unknown, value: unknown): Promise<boolean> => {
        const [done] = await t.fillMany!([t.prepare(key, entry(value))], [60_000], [lease]);
        assert.equal(typeof done, 'boolean', 'fillMany() resolves with a boolean per write');
        return done!;
      };
      const probe = await t.getLeased('probe');
      assert.equal(probe.found, undefined, 'getLeased() of a missing key finds nothing');
      if (probe.lease === undefined) {
        // No leases after all (a wrapper around a tier without them): fills are plain writes.
        assert.equal(await fill('probe', undefined, 1), true, 'a fill without a lease is written');
        return;
      }
      assert.equal(await fill('probe', probe.lease, 1), true, 'a fill of a key unchanged since its read');
      assertEntry(await t.get('probe'), entry(1), 'the filled key');

      const empty = await t.getLeased('gone');
      await t.delete(['gone']);
      assert.equal(
        await fill('gone', empty.lease, 'older'),
        false,
        'a delete after the read, of a missing key',
      );
      assert.equal(await t.get('gone'), undefined, 'the refused fill wrote nothing');
      assert.equal(await t.has('gone'), false, 'has() after a delete');

      await write(t, ['held'], [entry('v1')], 60_000);
      const held = await t.getLeased('held');
      assertEntry(held.found, entry('v1'), 'getLeased() finds what get() finds');
      await t.delete(['held']);
      assert.equal(
        await fill('held', held.lease, 'v1 again'),
        false,
        'a delete after the read of a stored key',
      );
      assert.equal(await t.delete(['held']), 0, 'a deleted key counts as nothing to delete');

      const first = await t.getLeased('raced');
      const second = await t.getLeased('raced');
      assert.equal(await fill('raced', second.lease, 'second'), true, 'the first fill of two');
      assert.equal(await fill('raced', first.lease, 'first'), false, 'a fill after another changed the key');
      assertEntry(await t.get('raced'), entry('second'), 'the fill that won');

      await write(t, ['set'], [entry('s1')], 60_000);
      await t.delete(['set']);
      await write(t, ['set'], [entry('s2')], 60_000);
      assertEntry(await t.get('set'), entry('s2'), 'setMany() writes over a deleted key unconditionally');

      const cleared = await t.getLeased('cleared');
      await t.clear();
      assert.equal(await fill('cleared', cleared.lease, 'older'), false, 'a clear() after the read');
      const after = await t.getLeased('cleared');
      assert.equal(await fill('cleared', after.lease, 'newer'), true, 'a read after clear() fills');

      if (t.deleteMatching !== undefined) {
        const matched = await t.getLeased('user:9');
        await t.deleteMatching('user:*');
        assert.equal(
          await fill('user:9', matched.lease, 'older'),
          false,
          'a deleteMatching() after the read',
        );
      }

      await write(t, ['b'], [entry('b0')], 60_000);
      const leased = await t.getManyLeased(['a', 'b', 'c']);
      assert.equal(leased.length, 3, 'getManyLeased() answers every key');
      assertEntry(leased[1]!.found, entry('b0'), 'getManyLeased()[1]');
      await t.delete(['c']);
      const done = await t.fillMany(
        ['a', 'b', 'c'].map((key) => t.prepare(key, entry(`${key}1`))),
        [60_000, 60_000, 60_000],
        leased.map((one) => one.lease),
      );
      assert.deepEqual(done, [true, true, false], 'fillMany() answers per write, aligned');
      assertEntry(await t.get('b'), entry('b1'), 'the batch fill of b');
      assert.equal(await t.get('c'), undefined, 'the refused fill of c');
    });

    test('keeps every value under many concurrent writes and reads', async ({ tier }) => {
      const t = await tier();
      const now = Date.now();
      const count = 100;
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          write(t, [`k${i}`], [{ value: i, createdAt: now, expiresAt: now + 60_000 }], 60_000),
        ),
      );
      const found = await Promise.all(Array.from({ length: count }, (_, i) => t.get(`k${i}`)));
      found.forEach((entry, i) => assert.equal(entry?.entry.value, i, `k${i}`));
    });

    test('closes twice without error', async ({ tier, closed }) => {
      const t = await tier();
      const now = Date.now();
      await write(t, ['k'], [{ value: 1, createdAt: now, expiresAt: now + 60_000 }], 60_000);
      await t.clear();
      closed(t);
      await t.close();
      await t.close();
    });
  });
}

/** Values every tier must round-trip, keyed by the key they are stored under. */
const VALUES: Readonly<Record<string, unknown>> = {
  string: 'hello',
  'empty string': '',
  unicode: 'zoë 🚀 ключ',
  zero: 0,
  float: -12.5,
  'large integer': Number.MAX_SAFE_INTEGER,
  true: true,
  false: false,
  null: null,
  undefined: undefined,
  'empty object': {},
  'empty array': [],
  nested: {
    user: { id: 1, roles: ['a', 'b'], address: { city: 'Oslo', zip: null } },
    list: [[1, 2], { deep: [{ x: 'y' }] }],
  },
  'mixed array': [1, 'two', null, { three: 3 }, [false]],
  'large string': 'x'.repeat(100_000),
};

/** The tiers one test made, and what their hooks received. */
class Scope<T extends RemoteTier> {
  readonly reports: { key: string; problem: string; cause?: unknown }[] = [];
  readonly #made: T[] = [];
  readonly #closed = new Set<T>();

  constructor(
    readonly prefix: () => string,
    readonly create: (context: TierContext) => T | Promise<T>,
  ) {}

  /** A fresh tier under a fresh prefix. */
  readonly tier = async (): Promise<T> => {
    const tier = await this.create({ prefix: this.prefix() });
    // As a cache that takes the tier up would: the corrupt-entry tests read what arrives.
    tier.attach?.({
      corrupt: (key, problem, cause) => this.reports.push({ key, problem, cause }),
      breaker: () => {},
      repairError: () => {},
    });
    this.#made.push(tier);
    return tier;
  };

  /** Marks a tier the test closes itself: the default release does not clear it. */
  readonly closed = (tier: T): void => {
    this.#closed.add(tier);
  };

  /** Destroys every tier made; returns the first error, so the test's own failure comes first. */
  async release(destroy: ((tier: T) => void | Promise<void>) | undefined): Promise<unknown> {
    let first: unknown;
    for (const tier of this.#made) {
      try {
        if (destroy !== undefined) await destroy(tier);
        else {
          if (!this.#closed.has(tier)) await tier.clear();
          await tier.close();
        }
      } catch (error) {
        first ??= error;
      }
    }
    return first;
  }
}

/** Prepares and writes entries in one setMany; `lives` is one life for all or one per entry. */
async function write(
  tier: RemoteTier,
  keys: readonly string[],
  entries: readonly Entry[],
  lives: number | readonly number[],
): Promise<void> {
  const writes = keys.map((key, i) => {
    const prepared = tier.prepare(key, entries[i]!);
    assert.equal(prepared.key, key, 'prepare() returns the key it was given');
    assert.ok(
      typeof prepared.payload === 'string' || prepared.payload instanceof Uint8Array,
      'prepare() returns a string or byte payload',
    );
    return prepared;
  });
  await tier.setMany(writes, typeof lives === 'number' ? keys.map(() => lives) : lives);
}

/** Compares what the tier read with what was written, by meaning: tags `[]` equal none. */
function assertEntry(found: StoredEntry | undefined, expected: Entry, what: string): void {
  assert.ok(found !== undefined, `${what}: expected an entry, got a miss`);
  assert.ok(
    typeof found.size === 'number' && Number.isFinite(found.size) && found.size > 0,
    `${what}: size is a positive number of bytes, got ${found.size}`,
  );
  assert.deepStrictEqual(normalize(found.entry), normalize(expected), `${what}: the entry read back`);
}

function normalize(entry: Entry): Required<Entry> {
  return {
    value: entry.value,
    createdAt: entry.createdAt,
    expiresAt: entry.expiresAt,
    staleUntil: Math.max(entry.staleUntil ?? entry.expiresAt, entry.expiresAt),
    tags: entry.tags ?? [],
  };
}

function assertReported(
  reports: readonly { key: string; problem: string }[],
  key: string,
  via: string,
): void {
  const report = reports.find((r) => r.key === key);
  assert.ok(
    report !== undefined,
    `${via} of a corrupt payload was not reported: does the tier offer attach() and report corrupt payloads to the hooks it is given?`,
  );
  assert.ok(typeof report.problem === 'string' && report.problem.length > 0, 'the report says what is wrong');
}

function hasRawReads(tier: RemoteTier): tier is RemoteTier & RawReads {
  const candidate = tier as Partial<RawReads>;
  return typeof candidate.readRaw === 'function' && typeof candidate.decodeRaw === 'function';
}

/** Polls `condition` until it holds or `patience` ms pass; then fails with `message`. */
async function eventually(
  condition: () => Promise<boolean>,
  patience: number,
  message: string,
): Promise<void> {
  const deadline = Date.now() + patience;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) assert.fail(message);
    await new Promise<void>((resolve) => setTimeout(resolve, 10));
  }
}
