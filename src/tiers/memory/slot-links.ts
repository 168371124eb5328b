/**
 * Doubly linked queues of slots in one typed array: per slot its next and previous slot and one
 * state word the policy owns (region, marks), side by side so that a hit touches one cache line.
 * Queue `q`'s sentinel is node `q`; slot `s` is node `s + queues`. Each queue is circular around
 * its sentinel, least recent first.
 */
const STRIDE = 3;
const NEXT = 0;
const PREV = 1;
const STATE = 2;

export class SlotLinks {
  cells: Int32Array;
  readonly #queues: number;

  constructor(queues: number, capacity: number) {
    this.#queues = queues;
    this.cells = new Int32Array((queues + capacity) * STRIDE);
    for (let q = 0; q < queues; q++) this.#reset(q);
  }

  grow(capacity: number): void {
    const cells = new Int32Array((this.#queues + capacity) * STRIDE);
    cells.set(this.cells.subarray(0, Math.min(this.cells.length, cells.length)));
    this.cells = cells;
  }

  state(slot: number): number {
    return this.cells[(slot + this.#queues) * STRIDE + STATE]!;
  }

  setState(slot: number, state: number): void {
    this.cells[(slot + this.#queues) * STRIDE + STATE] = state;
  }

  /** The least recent slot of queue `q`, or -1 when it is empty. */
  lru(q: number): number {
    const next = this.cells[q * STRIDE + NEXT]!;
    return next < this.#queues ? -1 : next - this.#queues;
  }

  /** The slot after `slot` towards the recent end of its queue, or -1 at that end. */
  after(slot: number): number {
    const next = this.cells[(slot + this.#queues) * STRIDE + NEXT]!;
    return next < this.#queues ? -1 : next - this.#queues;
  }

  /** Whether `slot` is queue `q`'s most recent. */
  isMru(q: number, slot: number): boolean {
    return this.cells[q * STRIDE + PREV] === slot + this.#queues;
  }

  pushMru(q: number, slot: number): void {
    const cells = this.cells;
    const node = slot + this.#queues;
    const tail = cells[q * STRIDE + PREV]!;
    cells[node * STRIDE + PREV] = tail;
    cells[node * STRIDE + NEXT] = q;
    cells[tail * STRIDE + NEXT] = node;
    cells[q * STRIDE + PREV] = node;
  }

  unlink(slot: number): void {
    const cells = this.cells;
    const at = (slot + this.#queues) * STRIDE;
    const next = cells[at + NEXT]!;
    const prev = cells[at + PREV]!;
    cells[prev * STRIDE + NEXT] = next;
    cells[next * STRIDE + PREV] = prev;
  }

  moveToMru(q: number, slot: number): void {
    if (this.isMru(q, slot)) return;
    this.unlink(slot);
    this.pushMru(q, slot);
  }

  /** Empties queue `q`, calling `each` with every slot it held (least recent first). */
  clear(q: number, each: (slot: number) => void): void {
    for (let slot = this.lru(q); slot >= 0;) {
      const next = this.after(slot);
      each(slot);
      slot = next;
    }
    this.#reset(q);
  }

  #reset(q: number): void {
    this.cells[q * STRIDE + NEXT] = q;
    this.cells[q * STRIDE + PREV] = q;
  }
}
