import type { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createCache,
  createInvalidator,
  memoryTier,
  redisTier,
  type CacheOptions,
  type TierCache,
} from '../../../src/index.js';
import { fromWire } from '../../../src/tiers/envelope.js';
import { PATIENT, type Backend } from '../../helpers/backends.js';

/** A loader held at a gate: `started` resolves once it was called, `open()` lets it return. */
function gated<T>(value: T): { loader: () => Promise<T>; started: Promise<void>; open: () => void } {
  let open!: () => void;
  let started!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const began = new Promise<void>((resolve) => (started = resolve));
  return {
    loader: async () => {
      started();
      await gate;
      return value;
    },
    started: began,
    open,
  };
}

/**
 * Fill leases against real Redis, for any backend (test/integration: one server; test/cluster:
 * three masters): the cache-aside race of issue 15 and its relatives. Instance A loads version 1
 * of a key; meanwhile the origin moves to version 2 and instance B deletes (or clears, ...); A's
 * loader is released right after B's call resolved. A has no bus, standing for an instance whose
 * bus message has not arrived yet (in flight, or its event loop busy): only Redis can refuse
 * its fill.
 */
export function fillLeaseSuite(backend: Backend): void {
  let admin: Redis | Cluster;
  let prefixCounter = 0;
  let prefix: string;
  const caches: TierCache[] = [];

  beforeAll(async () => {
    await backend.start();
    admin = backend.admin();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(caches.map((cache) => cache.close()));
    await backend.stop();
  });

  beforeEach(() => {
    prefix = `fl${++prefixCounter}:`;
  });

  function instance(options: CacheOptions = {}): TierCache {
    const cache = createCache({
      tiers: [memoryTier({ ttl: '1h' }), redisTier({ client: backend.client(), prefix, timeout: PATIENT })],
      ...options,
    });
    caches.push(cache);
    return cache;
  }

  /** A (no bus: its message is late) and B. */
  function pair(options: CacheOptions = {}): { a: TierCache; b: TierCache } {
    return { a: instance({ bus: false, ...options }), b: instance(options) };
  }

  /** The value Redis holds under a cache key, undefined for nothing or a tombstone. */
  async function stored(key: string): Promise<unknown> {
    const raw = await admin.get(prefix + key);
    if (raw === null) return undefined;
    const entry = fromWire(JSON.parse(raw));
    if (typeof entry === 'string' || entry.expiresAt <= Date.now()) return undefined;
    return entry.value;
  }

  describe(`fill leases (${backend.name})`, () => {
    it('a load that read the key before a delete on another instance fills no tier (the race of issue 15)', async () => {
      const { a, b } = pair();
      const origin = { version: 1 };
      const load = gated({ ...origin });
      const answer = a.getOrSet('product:1', load.loader);
      await load.started;
      origin.version = 2;
      await b.delete('product:1');
      load.open();
      // A's caller still gets what its loader returned.
      expect(await answer).toEqual({ version: 1 });
      expect(await stored('product:1')).toBeUndefined();
      expect(a.stats().fillsRefused).toBe(1);
      // Neither A's L1 nor Redis serves version 1: every instance loads version 2.
      expect(await a.get('product:1')).toBeUndefined();
      expect(await b.getOrSet('product:1', () => ({ ...origin }))).toEqual({ version: 2 });
      expect(await a.get('product:1')).toEqual({ version: 2 });
    });

    it('a load that began after the delete fills as usual', async () => {
      const { a, b } = pair();
      await b.set('k', 'old');
      await b.delete('k');
      expect(await a.getOrSet('k', () => 'new')).toBe('new');
      expect(await stored('k')).toBe('new');
      expect(await b.get('k')).toBe('new');
      expect(a.stats().fillsRefused).toBe(0);
    });

    it('a miss is one read and one conditional fill: no extra round trip', async () => {
      const { a } = pair();
      const calls = async () => ({
        reads: (await backend.commandCalls('get')) + (await backend.commandCalls('mget')),
        scripts: await backend.commandCalls('evalsha'),
      });
      await a.getOrSet('warm-the-script-cache', () => 0);
      // Redis counts commands server-wide, so another cache's command (a heartbeat's, a late
      // repair's) can land in a window: the fewest seen in three tries is this miss's own.
      const seen = { reads: Infinity, scripts: Infinity };
      for (let i = 0; i < 3; i++) {
        const before = await calls();
        await a.getOrSet(`fresh:${i}`, () => 1);
        const after = await calls();
        seen.scripts = Math.min(seen.scripts, after.scripts - before.scripts);
        // Redis counts the fill script's own GET of the generation among GETs.
        seen.reads = Math.min(seen.reads, after.reads - before.reads - 1);
      }
      expect(seen).toEqual({ reads: 1, scripts: 1 });
    });

    it('getManyOrSet refuses the keys deleted after its read, fills the others, one script call per batch (per slot)', async () => {
      const { a, b } = pair();
      const keys = Array.from({ length: 12 }, (_, i) => `item:${i}`);
      await a.getOrSet('warm-the-script-cache', () => 0);
      let release!: () => void;
      let began!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const started = new Promise<void>((resolve) => (began = resolve));
      const answer = a.getManyOrSet(keys, async (missing) => {
        began();
        await gate;
        return missing.map((key) => `v1 of ${key}`);
      });
      await started;
      const before = await backend.commandCalls('evalsha');
      await b.deleteMany(['item:0', 'item:5']);
      const bury = (await backend.commandCalls('evalsha')) - before;
      release();
      expect(await answer).toEqual(keys.map((key) => `v1 of ${key}`));
      const fills = (await backend.commandCalls('evalsha')) - before - bury;
      expect(fills).toBe(backend.mgetsFor(keys.map((key) => prefix + key)));
      expect(await stored('item:0')).toBeUndefined();
      expect(await stored('item:5')).toBeUndefined();
      expect(await stored('item:1')).toBe('v1 of item:1');
      expect(await a.get('item:0')).toBeUndefined();
      expect(await a.get('item:1')).toBe('v1 of item:1');
      expect(a.stats().fillsRefused).toBe(2);
    });

    it('a refresh (grace) that read the expired copy before a delete fills no tier', async () => {
      const { a, b } = pair({ grace: '1m' });
      await a.set('k', 'v0', { ttl: 30 });
      await new Promise((resolve) => setTimeout(resolve, 40)); // let the entry expire
      const load = gated('v1');
      expect(await a.getOrSet('k', load.loader)).toBe('v0'); // stale, refreshing
      await load.started;
      await b.delete('k');
      load.open();
      await expect.poll(() => a.stats().fillsRefused).toBe(1);
      expect(await stored('k')).toBeUndefined();
      expect(await a.get('k')).toBeUndefined();
    });

    it('set() on another instance is not undone by an older fill, and set() itself is unconditional', async () => {
      const { a, b } = pair();
      const load = gated('v1');
      const answer = a.getOrSet('k', load.loader);
      await load.started;
      await b.set('k', 'v2');
      load.open();
      expect(await answer).toBe('v1');
      expect(await stored('k')).toBe('v2');
      await b.delete('k');
      await a.set('k', 'v3'); // over a tombstone: set() checks nothing
      expect(await stored('k')).toBe('v3');
    });

    it('clear() refuses fills of loads that read before it, also of keys it found empty', async () => {
      const { a, b } = pair();
      const load = gated('v1');
      const answer = a.getOrSet('never-stored', load.loader);
      await load.started;
      await b.clear();
      load.open();
      expect(await answer).toBe('v1');
      expect(await stored('never-stored')).toBeUndefined();
      expect(await a.get('never-stored')).toBeUndefined();
      // The next load learned the new generation from the refusal and fills again.
      expect(await a.getOrSet('never-stored', () => 'v2')).toBe('v2');
      expect(await stored('never-stored')).toBe('v2');
    });

    it('deleteByPattern() refuses fills of loads that read before it, also of keys it found empty', async () => {
      const { a, b } = pair();
      const load = gated('v1');
      const answer = a.getOrSet('product:7:price', load.loader);
      await load.started;
      await b.deleteByPattern('product:7:*');
      load.open();
      expect(await answer).toBe('v1');
      expect(await stored('product:7:price')).toBeUndefined();
      expect(await a.get('product:7:price')).toBeUndefined();
    });

    it('namespace clear() holds by construction: the older fill lands under the old version, which nobody reads', async () => {
      const { a, b } = pair();
      const load = gated('v1');
      const answer = a.namespace('products').getOrSet('42', load.loader);
      await load.started;
      await b.namespace('products').clear();
      load.open();
      expect(await answer).toBe('v1');
      expect(await b.namespace('products').get('42')).toBeUndefined();
      // A has no bus: it learns the version from Redis on every call.
      expect(await a.namespace('products').get('42')).toBeUndefined();
    });

    it('invalidateTags() holds by construction: a tagged fill is dated from its load start', async () => {
      const { a, b } = pair();
      const load = gated('v1');
      const answer = a.getOrSet('search:lamp', load.loader, { tags: ['catalog'] });
      await load.started;
      await new Promise((resolve) => setTimeout(resolve, 2)); // the invalidation is a later ms
      await b.invalidateTags(['catalog']);
      load.open();
      expect(await answer).toBe('v1');
      expect(await b.get('search:lamp')).toBeUndefined();
      const c = instance({ bus: false });
      expect(await c.get('search:lamp')).toBeUndefined();
    });

    it('the publish-only invalidator leaves the same tombstones: its delete refuses older fills', async () => {
      const { a } = pair();
      const invalidator = createInvalidator({ redis: backend.client(), prefix });
      try {
        const load = gated('v1');
        const answer = a.getOrSet('k', load.loader);
        await load.started;
        await invalidator.delete('k');
        load.open();
        expect(await answer).toBe('v1');
        expect(await stored('k')).toBeUndefined();
        const cleared = gated('v1');
        const second = a.getOrSet('other', cleared.loader);
        await cleared.started;
        await invalidator.clear();
        cleared.open();
        expect(await second).toBe('v1');
        expect(await stored('other')).toBeUndefined();
      } finally {
        await invalidator.close();
      }
    });

    it('a tombstone reads as nothing to every reader, and lives about the fill window', async () => {
      const { a } = pair();
      await a.set('k', 'v');
      expect(await a.deleteMany(['k'])).toBe(2); // L1 and Redis
      expect(await a.deleteMany(['k'])).toBe(0); // a tombstone is not an entry
      expect(await a.has('k')).toBe(false);
      expect(await a.get('k')).toBeUndefined();
      // A reader that predates tombstones sees an expired version-1 envelope: a miss.
      const raw = await admin.get(`${prefix}k`);
      const old = fromWire(JSON.parse(raw!));
      expect(typeof old === 'string' ? old : old.expiresAt).toBe(0);
      const ttl = await admin.pttl(`${prefix}k`);
      expect(ttl).toBeGreaterThan(5_000);
      expect(ttl).toBeLessThanOrEqual(10_000);
    });
  });
}
