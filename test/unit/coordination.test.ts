import { describe, expect, it } from 'vitest';
import { createCache, hasErrorCode, memoryTier, type TierCache } from '../../src/index.js';
import type {
  LockStore,
  TagTimeStore,
  TierCoordination,
  VersionStore,
} from '../../src/tiers/coordination.js';
import { MemoryBroker } from '../helpers/memory-bus.js';
import { MemoryKeyspace, MemoryRemoteTier } from '../helpers/memory-remote-tier.js';

/** What a store shared by several instances holds: locks, tag times, namespace versions. */
class SharedState {
  readonly locks = new Map<string, string>();
  readonly tags = new Map<string, number>();
  readonly versions = new Map<string, number>();
  readonly broker = new MemoryBroker();
  /** Calls of each part, to show the cache went through them. */
  readonly calls: string[] = [];

  coordination(): TierCoordination {
    const locks: LockStore = {
      acquire: async (key, token) => {
        this.calls.push(`acquire ${key}`);
        if (this.locks.has(key)) return false;
        this.locks.set(key, token);
        return true;
      },
      extend: async (key, token) => this.locks.get(key) === token,
      release: async (key, token) => this.locks.get(key) === token && this.locks.delete(key),
    };
    const tagTimes: TagTimeStore = {
      read: async (tags) => {
        this.calls.push(`read tags ${tags.join(',')}`);
        return tags.map((tag) => this.tags.get(tag) ?? 0);
      },
      raise: async (times) => {
        for (const [tag, at] of times) this.tags.set(tag, Math.max(at, this.tags.get(tag) ?? 0));
      },
    };
    const namespaces: VersionStore = {
      read: async (name) => this.versions.get(name) ?? 0,
      bump: async (name) => {
        const version = (this.versions.get(name) ?? 0) + 1;
        this.versions.set(name, version);
        return version;
      },
    };
    return { locks, tagTimes, namespaces, busTransport: () => this.broker.transport() };
  }
}

/** A scripted remote tier that offers `coordination`, over a keyspace shared with others. */
class CoordinatedTier extends MemoryRemoteTier {
  constructor(
    keyspace: MemoryKeyspace,
    readonly coordination: TierCoordination | undefined,
  ) {
    super({ keyspace, name: 'shared' });
  }
}

function instances(shared: SharedState | undefined, count = 2, l1 = true): TierCache[] {
  const keyspace = new MemoryKeyspace();
  return Array.from({ length: count }, () =>
    createCache({
      tiers: [...(l1 ? [memoryTier()] : []), new CoordinatedTier(keyspace, shared?.coordination())],
      ...(shared ? { lock: { ttl: '5s', poll: '5ms', wait: '5s' } } : {}),
    }),
  );
}

describe('coordination through the tier, not through a Redis class', () => {
  it('a custom tier that offers locks holds the distributed single flight: one loader call across instances', async () => {
    const shared = new SharedState();
    const [a, b] = instances(shared);
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const loader = async () => {
      calls++;
      await gate;
      return 'v';
    };
    const first = a!.getOrSet('k', loader);
    await new Promise<void>((resolve) => setImmediate(resolve));
    const second = b!.getOrSet('k', loader);
    await new Promise<void>((resolve) => setImmediate(resolve));
    release();
    expect(await Promise.all([first, second])).toEqual(['v', 'v']);
    expect(calls).toBe(1);
    expect(shared.calls.filter((call) => call === 'acquire k').length).toBeGreaterThanOrEqual(2);
    expect(shared.locks.size).toBe(0);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('tag times and namespace versions go to the tier that offers them, so other instances see them', async () => {
    const shared = new SharedState();
    // No L1: every read reaches the shared tier, and tag times are checked there.
    const [a, b] = instances(shared, 2, false);
    await a!.set('p', 'tagged', { tags: ['t'] });
    expect(await b!.get('p')).toBe('tagged');
    await a!.invalidateTags(['t']);
    expect(shared.tags.get('t')).toBeGreaterThan(0);
    expect(await b!.get('p')).toBeUndefined();
    expect(shared.calls).toContain('read tags t');

    await a!.namespace('n').set('k', 1);
    expect(await b!.namespace('n').get('k')).toBe(1);
    await a!.namespace('n').clear();
    expect(shared.versions.get('n')).toBe(1);
    expect(await b!.namespace('n').get('k')).toBeUndefined();
    await Promise.all([a!.close(), b!.close()]);
  });

  it("the bus runs on the tier's transport: a write on one instance drops the other's L1 copy", async () => {
    const shared = new SharedState();
    const [a, b] = instances(shared);
    await a!.set('k', 1);
    expect(await b!.get('k')).toBe(1);
    await a!.set('k', 2);
    await expect.poll(() => b!.get('k')).toBe(2);
    expect(shared.broker.transports.length).toBe(2);
    await Promise.all([a!.close(), b!.close()]);
  });

  it('a tier without coordination still caches: no lock (refused if asked for), local tag times and namespaces, no bus', async () => {
    const [a] = instances(undefined, 1);
    const keyspace = new MemoryKeyspace();
    let refused: unknown;
    try {
      createCache({ tiers: [memoryTier(), new CoordinatedTier(keyspace, undefined)], lock: true });
    } catch (error) {
      refused = error;
    }
    expect(hasErrorCode(refused, 'E_INVALID_OPTION')).toBe(true);
    expect((refused as Error).message).toMatch(/holds locks/);
    expect(a!.stats().bus.subscribed).toBe(false);
    await a!.set('p', 'tagged', { tags: ['t'] });
    await a!.invalidateTags(['t']);
    expect(await a!.get('p')).toBeUndefined();
    await a!.namespace('n').set('k', 1);
    await a!.namespace('n').clear();
    expect(await a!.namespace('n').get('k')).toBeUndefined();
    await a!.close();
  });
});
