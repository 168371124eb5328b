/**
 * Keeps a read that raced a write from filling a tier with the older value. A read takes a
 * ticket before it goes to a lower tier or the origin; a write, delete or invalidation of that
 * key (or of everything) in the meantime makes the ticket stale, and a stale ticket may not fill.
 *
 * Only keys with a read in flight are tracked, so memory is bounded by concurrency, not by the
 * key space.
 */
interface ReadRecord {
  readers: number;
  epoch: number;
}

export interface FillTicket {
  readonly key: string;
  readonly record: ReadRecord;
  readonly epoch: number;
  readonly globalEpoch: number;
}

/** The record of tickets from a guard with nothing to protect; it is never invalidated. */
const DETACHED: ReadRecord = { readers: 0, epoch: 0 };

export class FillGuard {
  readonly #reads = new Map<string, ReadRecord>();
  #globalEpoch = 0;

  begin(key: string): FillTicket {
    let record = this.#reads.get(key);
    if (record === undefined) {
      record = { readers: 0, epoch: 0 };
      this.#reads.set(key, record);
    }
    record.readers++;
    return { key, record, epoch: record.epoch, globalEpoch: this.#globalEpoch };
  }

  /**
   * A ticket for a read that can fill nothing (see TierStack.readTicket): it costs no map
   * operations, and it never goes stale, since nothing checks it.
   */
  detached(key: string): FillTicket {
    return { key, record: DETACHED, epoch: 0, globalEpoch: this.#globalEpoch };
  }

  /** True while nothing has written or invalidated the ticket's key since it was taken. */
  isCurrent(ticket: FillTicket): boolean {
    return ticket.record.epoch === ticket.epoch && ticket.globalEpoch === this.#globalEpoch;
  }

  end(ticket: FillTicket): void {
    if (ticket.record === DETACHED) return;
    if (--ticket.record.readers === 0) this.#reads.delete(ticket.key);
  }

  invalidate(key: string): void {
    const record = this.#reads.get(key);
    if (record !== undefined) record.epoch++;
  }

  invalidateAll(): void {
    this.#globalEpoch++;
  }

  /** Keys with reads in flight; exposed for leak tests. */
  get tracked(): number {
    return this.#reads.size;
  }
}
