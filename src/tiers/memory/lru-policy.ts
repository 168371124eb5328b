import type { EvictCallback, EvictionPolicy, PolicyBounds, PolicyNode } from './policy.js';

/**
 * Plain least-recently-used: a doubly linked list through the nodes, most recent at the head.
 * Kept as the baseline and for recency-only workloads.
 */
export class LruPolicy<N extends PolicyNode> implements EvictionPolicy<N> {
  readonly name = 'lru';
  #head: PolicyNode | null = null;
  #tail: PolicyNode | null = null;
  #size = 0;
  #weight = 0;
  readonly #bounds: PolicyBounds;
  readonly #evict: EvictCallback<N>;

  constructor(bounds: PolicyBounds, evict: EvictCallback<N>) {
    this.#bounds = bounds;
    this.#evict = evict;
  }

  get size(): number {
    return this.#size;
  }

  get weight(): number {
    return this.#weight;
  }

  onHit(node: N): void {
    if (this.#head === node) return;
    this.#unlink(node);
    this.#pushHead(node);
  }

  onMiss(_key: string): void {}

  frequency(_key: string): number {
    return 0;
  }

  add(node: N): void {
    this.#pushHead(node);
    node.region = 1;
    this.#size++;
    this.#weight += node.weight;
    this.#enforce();
  }

  updateWeight(node: N, previousWeight: number): void {
    this.#weight += node.weight - previousWeight;
    this.#enforce();
  }

  remove(node: N): void {
    if (node.region === 0) return;
    this.#unlink(node);
    node.region = 0;
    this.#size--;
    this.#weight -= node.weight;
  }

  clear(): void {
    for (let node = this.#head; node !== null;) {
      const next = node.next;
      node.prev = node.next = null;
      node.region = 0;
      node = next;
    }
    this.#head = this.#tail = null;
    this.#size = 0;
    this.#weight = 0;
  }

  #enforce(): void {
    const { maxEntries, maxWeight } = this.#bounds;
    while ((this.#size > maxEntries || this.#weight > maxWeight) && this.#tail !== null) {
      const victim = this.#tail as N;
      this.remove(victim);
      this.#evict(victim);
    }
  }

  #pushHead(node: PolicyNode): void {
    node.prev = null;
    node.next = this.#head;
    if (this.#head !== null) this.#head.prev = node;
    this.#head = node;
    if (this.#tail === null) this.#tail = node;
  }

  #unlink(node: PolicyNode): void {
    if (node.prev !== null) node.prev.next = node.next;
    else this.#head = node.next;
    if (node.next !== null) node.next.prev = node.prev;
    else this.#tail = node.prev;
    node.prev = node.next = null;
  }
}
