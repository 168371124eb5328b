import { describe, expect, it } from 'vitest';
import type { Entry } from '../../src/entry.js';
import { InvalidOptionError } from '../../src/errors.js';
import { hashKey } from '../../src/internal/hash.js';
import { mulberry32 } from '../../src/cli/synthetic.js';
import { MemoryStore } from '../../src/tiers/memory/memory-store.js';
import { lruPolicy, policies, resolvePolicy } from '../../src/tiers/memory/policies.js';
import type { EvictionPolicy, PolicyFactory } from '../../src/tiers/memory/policy.js';
import { TinyLfuPolicy, tinyLfuPolicy } from '../../src/tiers/memory/tinylfu-policy.js';

/** A key the test hands a policy directly; it gets a slot of its own the first time it is added. */
class Node {
  readonly hash: number;
  slot = -1;
  regionOf: ((slot: number) => number) | undefined;
  constructor(
    readonly key: string,
    public weight = 1,
  ) {
    this.hash = hashKey(key);
  }

  /** The policy's region for this node's slot (0: not resident). */
  get region(): number {
    return this.slot < 0 || this.regionOf === undefined ? 0 : this.regionOf(this.slot);
  }
}

const ENTRY: Entry = { value: 'v', createdAt: 0, expiresAt: Number.POSITIVE_INFINITY };

/** A policy driven with plain nodes (each its own slot) that records what it evicts. */
function harness(factory: PolicyFactory, maxEntries: number, maxWeight = Number.POSITIVE_INFINITY) {
  const evicted: Node[] = [];
  const bySlot: Node[] = [];
  let capacity = 0;
  const inner: EvictionPolicy = factory(
    { maxEntries, maxWeight },
    { hash: (slot) => bySlot[slot]!.hash, weight: (slot) => bySlot[slot]!.weight },
    (slot) => evicted.push(bySlot[slot]!),
  );
  const regionOf = (slot: number): number =>
    (inner as unknown as { regionOf(slot: number): number }).regionOf(slot);
  const slotOf = (node: Node): number => {
    if (node.slot >= 0) return node.slot;
    if (bySlot.length === capacity) inner.grow((capacity = Math.max(64, 2 * capacity)));
    node.slot = bySlot.push(node) - 1;
    node.regionOf = regionOf;
    return node.slot;
  };
  const policy = {
    get size(): number {
      return inner.size;
    },
    get weight(): number {
      return inner.weight;
    },
    add: (node: Node): void => inner.add(slotOf(node)),
    onHit: (node: Node): void => inner.onHit(slotOf(node)),
    onMiss: (key: string): void => inner.onMiss(key),
    updateWeight: (node: Node, previous: number): void => inner.updateWeight(slotOf(node), previous),
    remove: (node: Node): void => inner.remove(slotOf(node)),
    clear: (): void => inner.clear(),
  };
  return { policy, evicted, inner, slotOf };
}

/** get-then-set, the way a read-through cache drives L1. */
function access(store: MemoryStore, key: string, weight = 1): boolean {
  if (store.get(key, 0) !== undefined) return true;
  store.set(key, ENTRY, weight);
  return false;
}

describe('TinyLfuPolicy admission', () => {
  it('keeps the hot set through a one-time scan twenty times its size', () => {
    const store = new MemoryStore({
      maxEntries: 100,
      maxWeight: Number.POSITIVE_INFINITY,
      policy: tinyLfuPolicy({ seed: 1 }),
    });
    const hot = Array.from({ length: 80 }, (_, i) => `hot:${i}`);
    for (let round = 0; round < 10; round++) for (const key of hot) access(store, key);
    for (let i = 0; i < 2_000; i++) access(store, `scan:${i}`);
    const kept = hot.filter((key) => store.peek(key, 0) !== undefined).length;
    expect(kept).toBe(hot.length);

    const lru = new MemoryStore({
      maxEntries: 100,
      maxWeight: Number.POSITIVE_INFINITY,
      policy: policies.lru,
    });
    for (let round = 0; round < 10; round++) for (const key of hot) access(lru, key);
    for (let i = 0; i < 2_000; i++) access(lru, `scan:${i}`);
    expect(hot.filter((key) => lru.peek(key, 0) !== undefined)).toHaveLength(0);
  });

  it("admits the window's candidate only when the sketch has seen it more often than the victim", () => {
    const { policy, evicted } = harness(tinyLfuPolicy({ seed: 1, adaptive: false }), 10);
    // The window holds one entry here; each newcomer pushes the previous one out as the candidate.
    const arrive = (key: string, sightings: number): Node => {
      const node = new Node(key);
      for (let i = 0; i < sightings; i++) policy.onMiss(key);
      policy.add(node);
      return node;
    };
    for (let i = 0; i < 10; i++) policy.onHit(arrive(`resident:${i}`, 1)); // seen twice each
    const pad = arrive('pad', 1);
    evicted.length = 0;
    const cold = arrive('cold', 1); // pad (seen once) is the candidate: it loses
    expect(evicted).toEqual([pad]);
    const warm = arrive('warm', 4); // cold (seen once) loses
    expect(evicted).toEqual([pad, cold]);
    arrive('next', 1); // warm (seen 4 times) beats a resident seen twice
    expect(evicted).toHaveLength(3);
    expect(evicted[2]!.key).toMatch(/^resident:/);
    expect(warm.region).not.toBe(0);
  });

  it('reports frequency() from the sketch, counting the first sighting', () => {
    const store = new MemoryStore({
      maxEntries: 1_000,
      maxWeight: Number.POSITIVE_INFINITY,
      policy: tinyLfuPolicy({ seed: 1 }),
    });
    for (let n = 1; n <= 5; n++) {
      expect(store.get('promo', 0)).toBeUndefined();
      expect(store.policy.frequency('promo')).toBe(n);
      expect(store.seenAtLeast('promo', n)).toBe(true);
      expect(store.seenAtLeast('promo', n + 1)).toBe(false);
    }
    expect(store.seenAtLeast('never', 1)).toBe(false);
    expect(store.seenAtLeast('never', 0)).toBe(true);
  });
});

describe('TinyLfuPolicy bounds', () => {
  it('never holds more than maxEntries', () => {
    const store = new MemoryStore({
      maxEntries: 50,
      maxWeight: Number.POSITIVE_INFINITY,
      policy: tinyLfuPolicy({ seed: 2 }),
    });
    const random = mulberry32(3);
    for (let i = 0; i < 20_000; i++) {
      access(store, `k${Math.floor(random() ** 2 * 500)}`);
      expect(store.size).toBeLessThanOrEqual(50);
      expect(store.policy.size).toBe(store.size);
    }
  });

  it('never holds more than maxWeight, with both bounds set', () => {
    const store = new MemoryStore({ maxEntries: 100, maxWeight: 1_000, policy: tinyLfuPolicy({ seed: 2 }) });
    const random = mulberry32(4);
    for (let i = 0; i < 20_000; i++) {
      const id = Math.floor(random() ** 2 * 500);
      access(store, `k${id}`, 1 + (id % 37));
      expect(store.weight).toBeLessThanOrEqual(1_000);
      expect(store.size).toBeLessThanOrEqual(100);
    }
    expect(store.weight).toBeGreaterThan(900);
  });

  it('rejects a candidate heavier than the whole budget without evicting anything else', () => {
    const { policy, evicted } = harness(tinyLfuPolicy({ seed: 1 }), 100, 1_000);
    const small = Array.from({ length: 5 }, (_, i) => new Node(`small:${i}`, 100));
    for (const node of small) policy.add(node);
    const huge = new Node('huge', 1_001);
    for (let i = 0; i < 10; i++) policy.onMiss(huge.key);
    policy.add(huge);
    expect(evicted).toEqual([huge]);
    expect(huge.region).toBe(0);
    expect(policy.size).toBe(5);
    expect(policy.weight).toBe(500);
  });

  it('evicts a resident node whose new weight exceeds the budget', () => {
    const { policy, evicted } = harness(tinyLfuPolicy({ seed: 1 }), 100, 1_000);
    const node = new Node('grows', 10);
    policy.add(node);
    node.weight = 2_000;
    policy.updateWeight(node, 10);
    expect(evicted).toEqual([node]);
    expect(policy.size).toBe(0);
    expect(policy.weight).toBe(0);
  });

  it('keeps size and weight exact through remove and clear', () => {
    const { policy } = harness(tinyLfuPolicy({ seed: 1 }), 10, 1_000);
    const nodes = Array.from({ length: 8 }, (_, i) => new Node(`n${i}`, 10 * (i + 1)));
    for (const node of nodes) policy.add(node);
    for (const node of nodes.slice(0, 4)) policy.onHit(node);
    policy.remove(nodes[0]!);
    policy.remove(nodes[5]!);
    policy.remove(nodes[5]!); // removing twice is a no-op
    expect(policy.size).toBe(6);
    expect(policy.weight).toBe(360 - 10 - 60);
    policy.clear();
    expect(policy.size).toBe(0);
    expect(policy.weight).toBe(0);
    expect(nodes.every((node) => node.region === 0)).toBe(true);
  });
});

describe.each([
  ['tinylfu', tinyLfuPolicy({ seed: 5 })],
  ['tinylfu with the hit-ratio climber', tinyLfuPolicy({ seed: 5, climber: 'hit-ratio' })],
  ['lru', lruPolicy],
])('%s under random operations', (_name, factory) => {
  it.each([1, 2, 3])('keeps size and weight equal to the resident nodes and loses none (seed %i)', (seed) => {
    const maxEntries = 40;
    const maxWeight = 400;
    const { policy, evicted } = harness(factory, maxEntries, maxWeight);
    const random = mulberry32(seed);
    const resident = new Set<Node>();
    const byKey = new Map<string, Node>();
    const problems: string[] = [];
    // Plain checks, collected: an expect() per node per step would dominate the run time.
    const check = (step: number): void => {
      for (const node of evicted.splice(0)) {
        if (!resident.delete(node)) problems.push(`${step}: evicted ${node.key}, which was not resident`);
        if (node.region !== 0) problems.push(`${step}: evicted ${node.key} still has region ${node.region}`);
        byKey.delete(node.key);
      }
      let weight = 0;
      for (const node of resident) {
        if (node.region === 0) problems.push(`${step}: resident ${node.key} has no region`);
        weight += node.weight;
      }
      if (policy.size !== resident.size) problems.push(`${step}: size ${policy.size} != ${resident.size}`);
      if (policy.weight !== weight) problems.push(`${step}: weight ${policy.weight} != ${weight}`);
      if (policy.size > maxEntries || policy.weight > maxWeight) problems.push(`${step}: over bounds`);
    };
    for (let step = 0; step < 6_000; step++) {
      const key = `k${Math.floor(random() ** 1.5 * 150)}`;
      const node = byKey.get(key);
      const roll = random();
      if (node === undefined) {
        policy.onMiss(key);
        if (roll < 0.9) {
          const fresh = new Node(key, roll < 0.01 ? 500 : 1 + Math.floor(random() * 20));
          byKey.set(key, fresh);
          resident.add(fresh);
          policy.add(fresh);
        }
      } else if (roll < 0.7) {
        policy.onHit(node);
      } else if (roll < 0.85) {
        const previous = node.weight;
        node.weight = 1 + Math.floor(random() * 30);
        policy.updateWeight(node, previous);
      } else if (roll < 0.999) {
        policy.remove(node);
        resident.delete(node);
        byKey.delete(key);
      } else {
        policy.clear();
        resident.clear();
        byKey.clear();
      }
      check(step);
      if (problems.length > 0) break;
    }
    expect(problems).toEqual([]);
    // Everything still resident can be removed, and nothing is left behind.
    for (const node of resident) policy.remove(node);
    expect(policy.size).toBe(0);
    expect(policy.weight).toBe(0);
  });
});

describe('policy registry', () => {
  it('resolves names and passes factories through', () => {
    expect(resolvePolicy('lru')).toBe(policies.lru);
    expect(resolvePolicy('tinylfu')).toBe(policies.tinylfu);
    const factory = tinyLfuPolicy();
    expect(resolvePolicy(factory)).toBe(factory);
    const { inner } = harness(resolvePolicy('tinylfu'), 10);
    expect(inner).toBeInstanceOf(TinyLfuPolicy);
  });

  it('rejects an unknown name with an option error quoting it', () => {
    expect(() => resolvePolicy('lfu' as 'lru')).toThrow(InvalidOptionError);
    expect(() => resolvePolicy('lfu' as 'lru')).toThrow(
      /"lru" or "tinylfu" or a policy factory, received "lfu"/,
    );
  });
});

describe('TinyLfuPolicy protected region', () => {
  // Region numbers of tinylfu-policy.ts.
  const PROTECTED = 3;

  it('lets hits overflow protected and demotes the overflow at the next write, least recent first, giving read ones a second chance', () => {
    const { policy } = harness(tinyLfuPolicy({ seed: 1, adaptive: false }), 100);
    const nodes = Array.from({ length: 100 }, (_, i) => new Node(`k${i}`));
    for (const node of nodes) policy.add(node);
    for (const node of nodes) policy.onHit(node);
    // Hits only promote: protected's share is 0.8 × 0.99 × 100 = 79.2 entries, and it now holds
    // every node that was in probation.
    const promoted = nodes.filter((node) => node.region === PROTECTED);
    expect(promoted.length).toBeGreaterThan(90);
    const [oldest, ...rest] = promoted;
    policy.onHit(oldest!); // read: kept when the overflow is demoted
    policy.add(new Node('k100'));
    expect(nodes.filter((node) => node.region === PROTECTED).length).toBeLessThanOrEqual(79);
    expect(oldest!.region).toBe(PROTECTED);
    // The demoted nodes are the least recent ones after `oldest`, and only those.
    const kept = rest.findIndex((node) => node.region === PROTECTED);
    expect(kept).toBeGreaterThan(10);
    expect(rest.slice(0, kept).every((node) => node.region !== PROTECTED)).toBe(true);
    expect(rest.slice(kept).every((node) => node.region === PROTECTED)).toBe(true);
  });
});

describe('the L1 hit path', () => {
  it('does not allocate in TinyLfuPolicy.onHit', () => {
    const { policy, inner, slotOf } = harness(tinyLfuPolicy({ seed: 1 }), 1_000);
    const nodes = Array.from({ length: 1_000 }, (_, i) => new Node(`k${i}`));
    for (const node of nodes) policy.add(node);
    const slots = nodes.map(slotOf);
    const hit = (): void => {
      for (let round = 0; round < 200; round++) for (const slot of slots) inner.onHit(slot);
    };
    hit(); // warm up the JIT
    // The least growth of a few rounds: on a loaded machine the optimizing compiler may finish
    // in the middle of one and allocate there; an allocation per hit shows up in every round.
    let grown = Number.POSITIVE_INFINITY;
    for (let trial = 0; trial < 5; trial++) {
      const before = process.memoryUsage().heapUsed;
      hit();
      grown = Math.min(grown, process.memoryUsage().heapUsed - before);
    }
    // 200,000 hits; a single allocation per hit would be several MB.
    expect(grown).toBeLessThan(256 * 1024);
  });
});

describe('TinyLfuPolicy window floor', () => {
  it('never lets the climber shrink the window below minWindow (0.3% by default)', () => {
    const store = new MemoryStore({
      maxEntries: 2_000,
      maxWeight: Number.POSITIVE_INFINITY,
      policy: tinyLfuPolicy({ seed: 1 }),
    });
    const policy = store.policy as TinyLfuPolicy;
    let lowest = policy.windowShare;
    // A loop longer than the cache: the ghost climber walks the window down to its floor.
    for (let i = 0; i < 100_000; i++) {
      access(store, `loop:${i % 2_400}`);
      lowest = Math.min(lowest, policy.windowShare);
    }
    expect(lowest).toBeCloseTo(0.003, 6);

    const slots = { hash: () => 0, weight: () => 1 };
    const custom = new TinyLfuPolicy(
      { maxEntries: 100, maxWeight: Number.POSITIVE_INFINITY },
      slots,
      () => {},
      {
        minWindow: 0.2,
        initialWindow: 0.01,
      },
    );
    expect(custom.windowShare).toBeCloseTo(0.2, 6);
  });
});

describe('TinyLfuPolicy sketch sizing', () => {
  const entry: Entry = { value: 1, createdAt: 0, expiresAt: Number.POSITIVE_INFINITY };

  it('is sized for maxEntries up front under an entry bound, and grows with the store under a byte bound', () => {
    const byEntries = new MemoryStore({ maxEntries: 100_000, maxWeight: Infinity, policy: tinyLfuPolicy() });
    const byBytes = new MemoryStore({ maxEntries: 10_000_000, maxWeight: 1e9, policy: tinyLfuPolicy() });
    const sketch = (store: MemoryStore) => (store.policy as TinyLfuPolicy).sketchBytes;
    expect(sketch(byEntries)).toBeGreaterThanOrEqual(100_000 * 5);
    // A sketch for the ten-million ceiling would be 50 MB; it starts at 1,024 entries' worth.
    expect(sketch(byBytes)).toBeLessThanOrEqual(1_024 * 20);
    for (let i = 0; i < 20_000; i++) byBytes.set(`k${i}`, entry, 1);
    expect(sketch(byBytes)).toBeGreaterThanOrEqual(20_000 * 5);
    expect(sketch(byBytes)).toBeLessThan(10_000_000 * 5);
    expect(byBytes.size).toBe(20_000);
  });
});
