import { sequenceOf, type BusLog, type LogPosition } from './replay-log.js';

/** Entries read from the log per round trip while catching up. */
const REPLAY_BATCH = 1_000;
/** Catch-up rounds after which messages that still do not follow the log count as a loss. */
const MAX_ROUNDS = 20;
/** Positions remembered, to tell a message replayed and then delivered again from a lost log. */
const RECENT = 1_024;

/** What a held message's place needs applied: it was applied when it arrived. */
const NOTHING = (): void => {};

/** What a cursor does to the bus. */
export interface CursorHooks {
  /** Applies a message read back from the log (as published, without its position). */
  replay(message: string): void;
  /** What was published since the cursor's position cannot be told: everything must be dropped. */
  lost(): void;
}

/**
 * This instance's place in one channel's replay log. Messages arrive over pub/sub in log order
 * (each was appended and published in one script), so a position that is not the next one means
 * messages were missed: the cursor reads them from the log and applies them; the messages that
 * arrive meanwhile are applied at once and take their places after. After an outage the bus
 * asks it to catch up the same way.
 *
 * Applying an invalidation twice is harmless and skipping one is not, so a message is skipped
 * only when this very position (number and nonce) was applied already; a number that goes back
 * to one never seen means the log was replaced under a live connection, and everything is dropped.
 */
export class LogCursor {
  readonly #channel: string;
  readonly #log: BusLog;
  readonly #hooks: CursorHooks;
  #position: LogPosition | undefined;
  #sequence = 0;
  /** Sequence → position of what was applied lately. */
  readonly #recent = new Map<number, LogPosition>();
  /** While catching up: the positions of the messages that arrived (and were applied) meanwhile, in order. */
  #held: LogPosition[] | undefined;
  /** The catch-up running, if any. */
  #run: Promise<boolean> | undefined;
  /** Bumped by cancel(), so a catch-up that outlived its subscription drops its answers. */
  #generation = 0;

  constructor(channel: string, log: BusLog, hooks: CursorHooks) {
    this.#channel = channel;
    this.#log = log;
    this.#hooks = hooks;
  }

  /** The position of the newest message applied, if the cursor has one. */
  get position(): LogPosition | undefined {
    return this.#position;
  }

  /** A message heard live at `position`; `apply` applies it (once, or not at all if heard already). */
  receive(position: LogPosition, apply: () => void): void {
    if (this.#held === undefined && this.#take(position, apply, false)) return;
    // Past a gap, or while catching up: applied now, and its place taken once the log was read.
    // Invalidations may be applied early and out of order (deletes are idempotent, tag times and
    // namespace versions only rise); held back, the message would leave L1 serving what it
    // names for as long as the log read takes.
    apply();
    if (this.#held !== undefined) {
      this.#held.push(position);
      return;
    }
    this.#held = [position];
    void this.catchUp();
  }

  /**
   * Reads and applies what the log holds after the cursor's position, then what arrived
   * meanwhile. Resolves true when nothing can have been missed, false when the cursor fell back
   * (the hooks' lost() ran) or was cancelled. Without a position (before the first
   * subscription) it only takes the log's newest position: nothing before it was this
   * instance's to hear.
   */
  catchUp(): Promise<boolean> {
    if (this.#run !== undefined) return this.#run;
    this.#held ??= [];
    const run: Promise<boolean> = this.#catchUp(this.#position === undefined, this.#generation).finally(
      () => {
        if (this.#run === run) this.#run = undefined;
      },
    );
    this.#run = run;
    return run;
  }

  /** The subscription was lost: messages held are dropped (the bus catches up again once back). */
  cancel(): void {
    this.#held = undefined;
    this.#run = undefined;
    this.#generation++;
  }

  async #catchUp(initial: boolean, generation: number): Promise<boolean> {
    let complete = true;
    try {
      for (let round = 0; ; round++) {
        const read = await this.#log.read(this.#channel, this.#position, REPLAY_BATCH);
        if (generation !== this.#generation || this.#held === undefined) return false;
        if (!read.found) {
          if (!initial) {
            complete = false;
            this.#hooks.lost();
          }
          this.#recent.clear();
          this.#advance(read.tail);
        } else {
          for (const [position, message] of read.entries) {
            // A log's first entry is empty: it only gives the first reader a position.
            if (message !== '') this.#hooks.replay(message);
            this.#advance(position);
          }
          if (read.entries.length === REPLAY_BATCH) continue;
        }
        // A held message past the end of what was read means more was published since: read on.
        const held = this.#held;
        let taken = 0;
        const lenient = initial || !complete;
        while (taken < held.length && this.#take(held[taken]!, NOTHING, lenient)) taken++;
        held.splice(0, taken);
        if (held.length === 0) break;
        if (round >= MAX_ROUNDS) throw new Error('messages do not follow the log');
      }
    } catch {
      // Redis could not say what was missed (or the log does not hold what arrives): drop
      // everything (what is held was applied as it came), and take the next message heard as
      // the new start.
      if (generation !== this.#generation) return false;
      this.#hooks.lost();
      this.#position = undefined;
      this.#sequence = 0;
      this.#recent.clear();
      complete = false;
    }
    this.#held = undefined;
    return complete;
  }

  /**
   * Applies a message if it is the next one (or was applied already); false when it is past a
   * gap. `lenient` while taking in what arrived just before a new start (see below).
   */
  #take(position: LogPosition, apply: () => void, lenient: boolean): boolean {
    const sequence = sequenceOf(position);
    if (this.#position === undefined || sequence === this.#sequence + 1) {
      apply();
      this.#advance(position);
      return true;
    }
    if (sequence > this.#sequence) return false;
    if (this.#recent.get(sequence) === position) return true;
    if (lenient) {
      // Published before the start just read (a first one, or one after a loss), and after this
      // instance subscribed: apply it, nothing more to do.
      apply();
      return true;
    }
    // The numbers went back to a position never applied: the log was replaced (deleted, or lost
    // with Redis's data) while we listened, and entries of the old one may have been missed.
    this.#hooks.lost();
    apply();
    this.#recent.clear();
    this.#advance(position);
    return true;
  }

  #advance(position: LogPosition): void {
    this.#position = position;
    this.#sequence = sequenceOf(position);
    this.#recent.set(this.#sequence, position);
    if (this.#recent.size > RECENT) this.#recent.delete(this.#recent.keys().next().value!);
  }
}
