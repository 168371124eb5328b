import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { BusError, type CacheError } from '../errors.js';
import { FOREVER } from '../internal/duration.js';
import { explained } from '../tiers/connection-errors.js';
import { within } from '../loading/deadline.js';
import type { BusOutageReason, CacheEmitter } from '../events.js';
import type { CacheCounters } from '../metrics/stats.js';
import {
  decodeMessage,
  emptyInvalidation,
  encodeHeartbeat,
  encodeMessage,
  isEmpty,
  mergeInvalidation,
  MESSAGE_LIMIT_DEFAULTS,
  splitInvalidation,
  type DecodedMessage,
  type Invalidation,
  type MessageLimits,
} from './message.js';
import { Heartbeat, type HeartbeatSend, type HeartbeatSettings, type HeartbeatStream } from './heartbeat.js';
import { LogCursor } from './log-cursor.js';
import { PublishQueue } from './publish-queue.js';
import { ReportLimiter } from './report-limiter.js';
import type { BusTransport } from './transport.js';

/** What the bus does to the local cache when another instance invalidates something. */
export interface BusTarget {
  /** Drops what `inv` names from L1 and makes in-flight reads of it stale. */
  apply(inv: Invalidation): void;
  /**
   * Drops everything from L1 as hits: messages may have been missed (gap, reconnect, a lost
   * log). Copies may stay as fail-safe-only suspects (LocalSync.resync).
   */
  resync(): void;
  /** The subscriber lost its connection: L1 can no longer be trusted beyond a short bound. */
  disconnected(): void;
  /** Everything missed since disconnected() was replayed: L1 entries get their lives back. */
  recovered(): void;
}

export interface BusSettings {
  /** Longest L1 life, in ms, while the subscriber is not subscribed. */
  disconnectedTtl: number;
  /** Bound of the publish retry queue, in invalidated names. */
  maxQueue: number;
  /** How long a PUBLISH may take before it counts as failed (and is queued for retry), in ms. */
  publishTimeout: number;
  /** Heartbeat interval and timeout; without them the bus trusts the connection state alone. */
  heartbeat?: HeartbeatSettings | undefined;
  /** Largest message sent or read, in UTF-8 bytes. @default BUS_DEFAULTS.maxMessageBytes */
  maxMessageBytes?: number;
  /** Most names (keys, patterns, tags, namespaces) in one message. @default BUS_DEFAULTS.maxMessageNames */
  maxMessageNames?: number;
}

/** Counters the bus keeps besides the cache's messagesIn/Out; plain fields, read by stats(). */
export class BusCounters {
  /**
   * Messages that could not be decoded, had a format this version cannot read, or whose handling
   * failed (then L1 was dropped).
   */
  invalid = 0;
  /** Sequence gaps detected (each dropped all of L1). */
  gaps = 0;
  /** Times the subscriber lost its connection, or its heartbeat stopped coming back. */
  disconnects = 0;
  /** Failed PUBLISH attempts (their invalidations went to the retry queue). */
  publishErrors = 0;
  /** Failed heartbeat PUBLISHes (never retried: the next heartbeat replaces them). */
  heartbeatErrors = 0;
  /**
   * Messages over `maxMessageBytes` or `maxMessageNames`: not read (or not applied name by name);
   * each dropped all of L1 instead, as a "drop everything" message would.
   */
  oversized = 0;
  /** Outages and gaps made good from the replay log, L1 kept. */
  replays = 0;
  /** Messages applied from the replay log. */
  replayed = 0;
  /**
   * Times the replay log could not say what was missed (trimmed past this instance's place, lost
   * with Redis's data, unreadable): each dropped all of L1.
   */
  logLosses = 0;
}

const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** Publishers remembered for gap detection; the oldest-heard is forgotten beyond this. */
const MAX_PUBLISHERS = 10_000;
/**
 * How long after a message without a log position (an older publisher, or one without a log)
 * an outage is still made good by dropping L1: that publisher's messages are not in the log.
 */
const UNLOGGED_WINDOW_MS = 60_000;

/**
 * The invalidation bus of one cache: batches this instance's invalidations into one message per
 * tick, publishes them in order (one PUBLISH in flight at a time, failures retried from a bounded
 * queue), and applies other instances' messages to the local cache, watching per-publisher
 * sequence numbers for gaps, and the subscriber connection and its own heartbeats for outages.
 */
export class InvalidationBus {
  /** This publisher's id on the wire; messages carrying it are our own and are skipped. */
  readonly id = randomBytes(9).toString('base64url');
  readonly counters = new BusCounters();
  readonly #transport: BusTransport;
  readonly #target: BusTarget;
  readonly #settings: BusSettings;
  readonly #events: CacheEmitter;
  readonly #report: (error: CacheError) => void;
  /** Reports of bad incoming messages: a peer can send any number of them, so they are limited. */
  readonly #receiveErrors: ReportLimiter;
  readonly #cacheCounters: CacheCounters;
  readonly #queue: PublishQueue;
  readonly #limits: MessageLimits;
  readonly #lastSeen = new Map<string, number>();
  readonly #heartbeat: Heartbeat | undefined;
  /** This instance's place in each channel's replay log, when the transport keeps one. */
  readonly #cursors = new Map<string, LogCursor>();
  /** When a message without a log position from another publisher was last heard (monotonic ms). */
  #unloggedAt = Number.NEGATIVE_INFINITY;
  /** The catch-up after a (re)subscription, until it ends; replaced when the subscription is lost. */
  #recovery: Promise<boolean> | undefined;
  /** Whether a heartbeat silence may reconnect the subscriber: again once one was heard back. */
  #mayReconnect = true;
  /** Invalidations of the current tick, and the promise their callers wait on. */
  #pending: Invalidation | undefined;
  #pendingDone: Promise<void> | undefined;
  #pendingResolve: (() => void) | undefined;
  /** The PUBLISH in flight, if any; the next batch goes out after it. */
  #inFlight: Promise<void> | undefined;
  #sequence = 0;
  /** What the transport last said; subscribed also needs the heartbeat to be heard. */
  #connected = false;
  #subscribed = false;
  #everSubscribed = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelay = RETRY_MIN_MS;
  #closed = false;

  constructor(
    transport: BusTransport,
    target: BusTarget,
    settings: BusSettings,
    events: CacheEmitter,
    report: (error: CacheError) => void,
    cacheCounters: CacheCounters,
  ) {
    this.#cacheCounters = cacheCounters;
    this.#transport = transport;
    this.#target = target;
    this.#settings = settings;
    this.#events = events;
    this.#report = report;
    this.#receiveErrors = new ReportLimiter(report, (held, latest, interval) => {
      const cause = latest.cause instanceof Error ? latest.cause.message : latest.message;
      return new BusError(
        'receive',
        new Error(`${held} more bad bus messages in the last ${interval} ms; the latest: ${cause}`),
      );
    });
    this.#queue = new PublishQueue(settings.maxQueue);
    this.#limits = {
      maxBytes: settings.maxMessageBytes ?? MESSAGE_LIMIT_DEFAULTS.maxBytes,
      maxNames: settings.maxMessageNames ?? MESSAGE_LIMIT_DEFAULTS.maxNames,
    };
    const log = transport.log;
    if (log !== undefined) {
      const hooks = {
        replay: (message: string) => this.#replay(message),
        lost: () => {
          this.counters.logLosses++;
          this.#target.resync();
        },
      };
      for (const channel of transport.channels ?? [])
        this.#cursors.set(channel, new LogCursor(channel, log, hooks));
    }
    if (settings.heartbeat !== undefined) {
      this.#heartbeat = new Heartbeat(this.#heartbeatStreams(), settings.heartbeat, {
        silent: () => {
          this.#update('heartbeat');
          // The socket may be open and dead: only a new connection would find out. Once per
          // outage, and only when heartbeats go out: if they cannot be published (or come back
          // too slowly even on a new connection), reconnecting again and again would resync L1
          // on every confirmed resubscription and only add load.
          if (this.#mayReconnect && this.#heartbeat!.publishing) {
            this.#mayReconnect = false;
            this.#transport.reconnect?.();
          }
        },
        heard: () => this.#update('heartbeat'),
        failed: (error, first) => {
          this.counters.heartbeatErrors++;
          if (first) this.#report(this.#failed('heartbeat', error));
        },
      });
    }
    transport.subscribe(
      (payload, channel) => this.#receive(payload, channel),
      (connected) => this.#onConnection(connected),
      (error) => {
        if (!this.#closed) this.#report(error);
      },
    );
  }

  /** Whether the subscriber is subscribed, so L1 hears every invalidation. */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** Names held for retry after failed publishes. */
  get queued(): number {
    return this.#queue.size;
  }

  get overflows(): number {
    return this.#queue.overflows;
  }

  /**
   * The latest expiry L1 may give an entry now: unbounded while subscribed, `now` plus the
   * disconnected bound while not (a missed invalidation then lives no longer than that).
   */
  lifeCap(now: number): number {
    return this.#subscribed ? Number.POSITIVE_INFINITY : now + this.#settings.disconnectedTtl;
  }

  /**
   * Sends `inv` to every other instance, batched with the rest of this tick. Resolves once the
   * batch was published or, if that failed, queued for retry; never rejects.
   */
  publish(inv: Invalidation): Promise<void> {
    if (this.#closed || isEmpty(inv)) return Promise.resolve();
    if (this.#pending === undefined) {
      this.#pending = emptyInvalidation();
      this.#pendingDone = new Promise<void>((resolve) => (this.#pendingResolve = resolve));
      // After this tick's callbacks and their continuations, which all join this batch; before
      // the I/O that follows them, so the message joins the writes it announces in ioredis's
      // auto-pipeline (sent on a later setImmediate), rather than waiting a round trip for them.
      process.nextTick(() => void this.#flush());
    }
    mergeInvalidation(this.#pending, inv);
    return this.#pendingDone!;
  }

  /** Publishes what is pending (one last try), stops retrying and unsubscribes. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#heartbeat?.close();
    await this.#inFlight;
    if (this.#pending !== undefined || !this.#queue.empty) await this.#flush();
    this.#closed = true;
    this.#receiveErrors.close();
    clearTimeout(this.#retryTimer);
    await this.#transport.close();
  }

  async #flush(): Promise<void> {
    // One PUBLISH at a time keeps sequence numbers in send order, so a receiver's gap check
    // only fires for messages that were really lost.
    while (this.#inFlight !== undefined) await this.#inFlight;
    const batch = this.#pending;
    const resolve = this.#pendingResolve;
    this.#pending = this.#pendingDone = this.#pendingResolve = undefined;
    const inv = this.#queue.take();
    if (batch !== undefined) mergeInvalidation(inv, batch);
    if (isEmpty(inv)) {
      resolve?.();
      return;
    }
    const sent = this.#send(inv);
    this.#inFlight = sent;
    try {
      await sent;
    } finally {
      this.#inFlight = undefined;
      resolve?.();
    }
  }

  async #send(inv: Invalidation): Promise<void> {
    // Within the bounds every receiver reads; each part takes its own sequence number. If one
    // fails, all of `inv` is queued again: parts already sent are then sent twice, harmlessly,
    // and the failed part's number was not consumed, so receivers see no gap.
    const parts = splitInvalidation(inv, this.#limits);
    try {
      for (const part of parts) {
        const sequence = this.#sequence + 1;
        await withTimeout(
          this.#transport.publish(encodeMessage(this.id, sequence, part)),
          this.#settings.publishTimeout,
        );
        this.#sequence = sequence;
        this.#cacheCounters.busMessagesOut++;
      }
      this.#retryDelay = RETRY_MIN_MS;
    } catch (error) {
      this.counters.publishErrors++;
      this.#transport.publishFailed?.();
      if (this.#queue.hold(inv)) {
        this.#events.emit('bus:overflow', { limit: this.#settings.maxQueue });
      }
      this.#report(this.#failed('publish', error));
      this.#scheduleRetry();
    }
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== undefined) return;
    const delay = this.#retryDelay;
    this.#retryDelay = Math.min(RETRY_MAX_MS, delay * 2);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed && !this.#queue.empty) void this.#flush();
    }, delay);
    this.#retryTimer.unref();
  }

  /**
   * One message from the channel. Anything can arrive there (anyone with PUBLISH on it, or a
   * typo), so nothing it carries may throw out of here: the transport's event handler would
   * turn that into an uncaught exception and end the process.
   */
  #receive(payload: string | Buffer, channel: string | undefined): void {
    if (this.#closed) return;
    try {
      this.#handle(payload, channel);
    } catch (error) {
      // Some of the message may have been applied and some not: only dropping L1 is safe.
      this.counters.invalid++;
      this.#receiveErrors.report(new BusError('receive', error));
      try {
        this.#target.resync();
      } catch {
        // Nothing more to do; the next message or heartbeat tries again.
      }
    }
  }

  #handle(payload: string | Buffer, channel: string | undefined): void {
    const decoded = this.#read(payload);
    if (decoded === undefined) return;
    const { publisher, sequence, inv, heartbeat, position } = decoded;
    if (heartbeat !== undefined && this.#heartbeat?.hear(publisher, heartbeat) === true) {
      this.#mayReconnect = true;
      return;
    }
    const cursor = position === undefined || channel === undefined ? undefined : this.#cursors.get(channel);
    if (cursor !== undefined) {
      // Logged: ordered by its place in the channel's log (own messages take places too), and
      // what was missed is read back from the log rather than paid for with L1.
      cursor.receive(position!, () => {
        if (publisher === this.id) return;
        this.#cacheCounters.busMessagesIn++;
        this.#target.apply(inv);
      });
      return;
    }
    if (publisher === this.id) return;
    if (this.#cursors.size > 0) this.#unloggedAt = performance.now();
    if (heartbeat === undefined) this.#cacheCounters.busMessagesIn++;
    const last = this.#lastSeen.get(publisher);
    // Re-inserting keeps the map in order of last message, so the oldest is forgotten first.
    // The number kept is the latest, not the highest: a forged message with a publisher's id and
    // a huge number must not blind the gap check for the real publisher's later messages.
    this.#lastSeen.delete(publisher);
    this.#lastSeen.set(publisher, sequence);
    if (this.#lastSeen.size > MAX_PUBLISHERS) this.#lastSeen.delete(this.#lastSeen.keys().next().value!);
    // A number may repeat (a PUBLISH that timed out but was delivered is sent again with its
    // number) but never go back: that, like a jump, means messages this instance cannot vouch for.
    if (last !== undefined && (sequence > last + 1 || sequence < last)) {
      this.counters.gaps++;
      this.#events.emit('bus:gap', { publisher, expected: last + 1, received: sequence });
      this.#target.resync();
    }
    if (heartbeat === undefined || !isEmpty(inv)) this.#target.apply(inv);
  }

  /** A message read back from the log; handled like a live one, except for its order. */
  #replay(message: string): void {
    try {
      const decoded = this.#read(message);
      if (decoded === undefined || decoded.publisher === this.id) return;
      this.counters.replayed++;
      this.#target.apply(decoded.inv);
    } catch (error) {
      this.counters.invalid++;
      this.#receiveErrors.report(new BusError('receive', error));
      this.#target.resync();
    }
  }

  /** The message in `payload` within the bounds, or undefined (counted, reported) when it is not one. */
  #read(payload: string | Buffer): DecodedMessage | undefined {
    const { maxBytes, maxNames } = this.#limits;
    // Chars never outnumber UTF-8 bytes, and take at most 3 each: count bytes only in between.
    const size =
      typeof payload !== 'string'
        ? payload.length
        : payload.length > maxBytes
          ? payload.length
          : payload.length * 3 <= maxBytes
            ? 0
            : Buffer.byteLength(payload);
    if (size > maxBytes) {
      // Reading it could take seconds (a million keys took 1.2 s): drop L1 in O(1) instead.
      this.#oversized(`${size} bytes (bus.maxMessageBytes is ${maxBytes})`);
      return undefined;
    }
    const decoded = decodeMessage(payload);
    if (typeof decoded === 'string') {
      this.counters.invalid++;
      this.#receiveErrors.report(new BusError('receive', new Error(`ignored a bus message: ${decoded}`)));
      return undefined;
    }
    const { inv } = decoded;
    const names = inv.keys.size + inv.patterns.size + inv.tags.size + inv.namespaces.size;
    if (names > maxNames) {
      this.#oversized(`${names} names (bus.maxMessageNames is ${maxNames})`);
      return undefined;
    }
    return decoded;
  }

  /**
   * A message over the bounds: dropped unread, and all of L1 with it, since it may have named
   * anything. Its sequence number is not recorded, so a real publisher's next message looks
   * like a gap, which drops L1 again: harmless, and no state is taken from an unread message.
   */
  #oversized(what: string): void {
    this.counters.oversized++;
    this.#receiveErrors.report(
      new BusError('receive', new Error(`dropped all of L1 for a bus message over the bounds: ${what}`)),
    );
    this.#target.resync();
  }

  #onConnection(connected: boolean): void {
    if (this.#closed) return;
    this.#connected = connected;
    // A confirmed SUBSCRIBE proves the subscription as well as a heartbeat heard back would.
    if (connected) this.#heartbeat?.watch();
    else this.#heartbeat?.unwatch();
    this.#update('connection');
    if (connected) this.#retryNow();
  }

  /**
   * Redis answers again: what failed to publish goes now, not after the back-off (up to 2 s),
   * during which every other instance's L1 would go on serving what those writes replaced.
   */
  #retryNow(): void {
    if (this.#closed || this.#queue.empty) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retryDelay = RETRY_MIN_MS;
    void this.#flush();
  }

  /**
   * A publish or heartbeat that failed, as reported: naming the transport's connection error
   * while its connection is down, so "the Redis client is reconnecting" or a PUBLISH timeout
   * says why (NOAUTH, an untrusted certificate, a refused connection).
   */
  #failed(operation: 'publish' | 'heartbeat', error: unknown): BusError {
    return new BusError(operation, explained(error, this.#transport.lastError?.()));
  }

  /** Trusts L1 again, or stops, once the connection or the heartbeat changed what we know. */
  #update(reason: BusOutageReason): void {
    if (this.#closed) return;
    const up = this.#connected && this.#heartbeat?.silent !== true;
    if (!up) {
      this.#recovery = undefined;
      for (const cursor of this.#cursors.values()) cursor.cancel();
      if (!this.#subscribed) return;
      this.#subscribed = false;
      this.counters.disconnects++;
      this.#target.disconnected();
      this.#events.emit('bus:disconnect', { reason });
      return;
    }
    if (this.#subscribed || this.#recovery !== undefined) return;
    // Still the first while no subscription completed: an attempt cut short (its catch-up
    // interrupted) left nothing to miss, as entries filled meanwhile carry the capped life.
    const first = !this.#everSubscribed;
    if (this.#cursors.size === 0) {
      this.#resubscribed(first, false);
      return;
    }
    // Subscribed again, but trusted only once what was missed meanwhile was read from the log.
    const recovery = this.#catchUp();
    this.#recovery = recovery;
    void recovery.then((replayed) => {
      if (this.#recovery !== recovery || this.#closed) return;
      this.#recovery = undefined;
      this.#resubscribed(first, replayed);
    });
  }

  /** Every channel caught up from its log; true when nothing missed can be left in L1. */
  async #catchUp(): Promise<boolean> {
    const caughtUp = await Promise.all([...this.#cursors.values()].map((cursor) => cursor.catchUp()));
    // What a publisher without a log sent meanwhile is in no log.
    return caughtUp.every(Boolean) && performance.now() - this.#unloggedAt > UNLOGGED_WINDOW_MS;
  }

  #resubscribed(first: boolean, replayed: boolean): void {
    this.#subscribed = true;
    this.#everSubscribed = true;
    // Before the first subscription there was nothing to miss but the first few ms; entries
    // filled meanwhile carry the capped life, so a fresh instance keeps its warm L1.
    if (first) return;
    if (replayed) {
      this.counters.replays++;
      this.#target.recovered();
    } else {
      // Whatever was published while we were away is lost: start over, sequence tracking too.
      this.#lastSeen.clear();
      this.#target.resync();
    }
    this.#events.emit('bus:reconnect', { replayed });
  }

  /**
   * The heartbeats to send: one per private heartbeat channel when the transport has them, else
   * one per channel the transport listens on.
   */
  #heartbeatStreams(): HeartbeatStream[] {
    const transport = this.#transport;
    const { channels, publishChannel, heartbeatChannels } = transport;
    const publishTo = transport.publishTo?.bind(transport);
    const stream = (publisher: string, channel: string): HeartbeatStream =>
      sequencedStream(publisher, this.#settings.publishTimeout, (message) => publishTo!(channel, message));
    if (heartbeatChannels !== undefined && publishTo !== undefined)
      return heartbeatChannels.map((channel, index) => stream(`${this.id}.h${index}`, channel));
    const main: HeartbeatStream = { publisher: this.id, send: (sentAt) => this.#beat(sentAt) };
    if (channels === undefined || publishTo === undefined) return [main];
    const streams = [main];
    for (const [index, channel] of channels.entries()) {
      // Own publisher id per channel: see the wire format (message.ts) for why.
      if (channel !== publishChannel) streams.push(stream(`${this.id}.${index}`, channel));
    }
    return streams;
  }

  /**
   * A heartbeat on the channel invalidations go to: it takes the next sequence number, so it
   * waits for the PUBLISH in flight, and holds the next one for at most publishTimeout.
   */
  #beat(sentAt: number): HeartbeatSend {
    const issued = (async () => {
      while (this.#inFlight !== undefined) await this.#inFlight;
      if (this.#closed) return undefined;
      const sequence = this.#sequence + 1;
      const work = this.#transport.publish(encodeHeartbeat(this.id, sequence, sentAt));
      const result = withTimeout(work, this.#settings.publishTimeout).then(() => {
        this.#sequence = Math.max(this.#sequence, sequence);
      });
      const guarded = result.catch(() => {});
      this.#inFlight = guarded;
      // Registered before any waiter's await, so waiters find the slot free when they resume.
      void guarded.then(() => {
        if (this.#inFlight === guarded) this.#inFlight = undefined;
      });
      return { work, result };
    })();
    return { result: issued.then((sent) => sent?.result), settled: issued.then((sent) => sent?.work) };
  }
}

/** Heartbeats numbered 1, 2, 3… by their own publisher id, on a channel no invalidation uses. */
function sequencedStream(
  publisher: string,
  publishTimeout: number,
  publish: (message: string) => Promise<void>,
): HeartbeatStream {
  let sequence = 0;
  return {
    publisher,
    send(sentAt) {
      const next = sequence + 1;
      const settled = publish(encodeHeartbeat(publisher, next, sentAt)).then(() => {
        sequence = Math.max(sequence, next);
      });
      return { settled, result: withTimeout(settled, publishTimeout) };
    },
  };
}

/** `work`, or a rejection once `ms` pass: a hung Redis must not hold up the writes that publish. */
function withTimeout(work: Promise<void>, ms: number): Promise<void> {
  return ms === FOREVER ? work : within(work, ms, `PUBLISH did not complete within ${ms} ms`);
}
