/**
 * The consistency checker of the multi-process bus test. Every key has one writer, so its
 * versions are totally ordered. A read is stale when it returned a version older than a write
 * of that key that had completed more than `boundMs` before the read began (or, given `y`,
 * before the reader last yielded to I/O ahead of the read). A read that found nothing is stale
 * too, unless Redis lost its data (a restart at `lostBefore`) after that write.
 */
export interface HistoryOp {
  t: 'w' | 'r';
  k: string;
  /** Version written or read; null for a read that found nothing. */
  v: number | null;
  /** Start and end, epoch ms with sub-ms precision. */
  s: number;
  e: number;
  /** False when the operation rejected; a failed write may or may not have landed. */
  ok: boolean;
  /**
   * For a read: when its process last yielded to the event loop before it. Messages are taken
   * in only then: a process descheduled between that turn of I/O and the read (a loaded machine
   * stops processes for hundreds of ms) cannot have seen what arrived meanwhile, whatever the bus
   * does, so the bound counts from here.
   */
  y?: number;
}

export interface StaleRead {
  read: HistoryOp;
  /** The write the read should have seen (or something newer). */
  missed: HistoryOp;
  process: number;
}

export function findStaleReads(
  histories: readonly (readonly HistoryOp[])[],
  boundMs: number,
  lostBefore = Number.NEGATIVE_INFINITY,
): StaleRead[] {
  const writes = new Map<string, HistoryOp[]>();
  for (const history of histories)
    for (const op of history) {
      if (op.t !== 'w' || !op.ok) continue;
      const list = writes.get(op.k) ?? [];
      list.push(op);
      writes.set(op.k, list);
    }
  for (const list of writes.values()) list.sort((a, b) => a.e - b.e);
  const stale: StaleRead[] = [];
  histories.forEach((history, process) => {
    for (const read of history) {
      if (read.t !== 'r' || !read.ok) continue;
      const list = writes.get(read.k);
      if (list === undefined) continue;
      // The latest write that completed more than boundMs before the read could take it in.
      const from = read.y ?? read.s;
      let latest: HistoryOp | undefined;
      for (const write of list) {
        if (write.e + boundMs < from) {
          if (latest === undefined || write.v! > latest.v!) latest = write;
        } else break;
      }
      if (latest === undefined) continue;
      if (read.v === null) {
        if (latest.e >= lostBefore) stale.push({ read, missed: latest, process });
      } else if (read.v < latest.v!) {
        stale.push({ read, missed: latest, process });
      }
    }
  });
  return stale;
}
