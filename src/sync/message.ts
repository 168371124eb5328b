import { isPosition, type LogPosition } from './replay-log.js';

/**
 * The bus's wire format, version 1. Stable: other services (and `createInvalidator`) publish it,
 * so fields are only ever added, never renamed or given a new meaning. A receiver ignores fields
 * it does not know and drops (and counts) a message whose `v` is a format it cannot read.
 *
 * One JSON object per PUBLISH:
 * ```
 * { "v": 1,                 format version
 *   "i": "k3J9…",           publisher id (random per process and cache); receivers skip their own
 *   "q": 42,                publisher's sequence number, +1 per message: a jump is a gap
 *   "k": ["user:1", …],     keys to drop from L1
 *   "c": 1,                 drop everything (clear(), or a publisher that lost track)
 *   "p": ["user:*"],        Redis glob patterns: drop every L1 key that matches
 *   "t": { "catalog": 1732… } tags and their invalidation times (epoch ms)
 *   "n": { "products": 7 }  namespaces and their new versions
 *   "h": 81234,             heartbeat (see below): the sender's own clock when it sent it
 *   "x": "42-8812…" }       position in the channel's replay log (see below)
 * ```
 * Keys are the cache's keys, without the Redis tier's prefix.
 *
 * Replay log (added in the same version: older readers ignore `"x"`): a publisher with a log
 * appends each message to a Redis Stream beside the channel and publishes it in one script,
 * which puts the entry id first, `"x":"<seq>-<nonce>"`: `seq` counts the channel's messages, and
 * the nonce tells entries of a replaced log apart. Readers with a log follow `seq` per channel
 * and replay what they missed from the stream; the entry itself holds the message without `"x"`.
 * Messages without `"x"` (older publishers) are checked by their `"q"` as before.
 *
 * Heartbeats: every cache instance publishes, every `bus.heartbeat`, one message with `"h"` and
 * nothing to invalidate on each channel it listens on, and counts its subscription as lost when
 * its own heartbeats stop coming back. A heartbeat is an ordinary (empty) message to a reader
 * that does not know `"h"`, so it must keep that reader's gap check sound:
 * - on the channel its invalidations go to, a heartbeat carries the instance's publisher id and
 *   takes the next sequence number like any message; a reader therefore notices an invalidation
 *   lost in a quiet period at the next heartbeat rather than at the next write;
 * - on the other channels (sharded pub/sub listens on several, and ordering holds only within
 *   one), it carries a publisher id of its own per channel, `<id>.<channel index>`, numbered
 *   1, 2, 3… on that channel alone, so no reader ever sees a sequence number out of order.
 * `"h"` is the sender's monotonic clock in ms; only the sender reads it (how old the newest
 * heartbeat it heard back is). Heartbeats are not counted in `messagesIn`/`messagesOut`.
 * A transport with private heartbeat channels (the Redis ones) sends them there instead, one
 * per subscriber connection, numbered on their own: no other instance hears them, so an
 * instance's idle traffic does not grow with the fleet.
 */
export const BUS_FORMAT_VERSION = 1;

export interface BusMessage {
  /** Publisher id. */
  i: string;
  /** Publisher sequence number, from 1. */
  q: number;
  k?: string[];
  c?: 1;
  p?: string[];
  t?: Record<string, number>;
  n?: Record<string, number>;
  /** Heartbeat: the sender's clock when it sent it. */
  h?: number;
  /** Position in the channel's replay log, put in by the script that appends and publishes. */
  x?: string;
}

/** What one message invalidates, before a publisher id and sequence number are attached. */
export interface Invalidation {
  keys: Set<string>;
  all: boolean;
  patterns: Set<string>;
  /** Tag → invalidation time; the later time wins when two coalesce. */
  tags: Map<string, number>;
  /** Namespace → version; the higher version wins when two coalesce. */
  namespaces: Map<string, number>;
}

export function emptyInvalidation(): Invalidation {
  return { keys: new Set(), all: false, patterns: new Set(), tags: new Map(), namespaces: new Map() };
}

export function isEmpty(inv: Invalidation): boolean {
  return (
    !inv.all &&
    inv.keys.size === 0 &&
    inv.patterns.size === 0 &&
    inv.tags.size === 0 &&
    inv.namespaces.size === 0
  );
}

/** Adds `from` into `into`; once `all` is set the keys and patterns it covers are dropped. */
export function mergeInvalidation(into: Invalidation, from: Invalidation): void {
  if (from.all) into.all = true;
  if (!into.all) {
    for (const key of from.keys) into.keys.add(key);
    for (const pattern of from.patterns) into.patterns.add(pattern);
  } else {
    into.keys.clear();
    into.patterns.clear();
  }
  for (const [tag, at] of from.tags) into.tags.set(tag, Math.max(at, into.tags.get(tag) ?? at));
  for (const [ns, version] of from.namespaces)
    into.namespaces.set(ns, Math.max(version, into.namespaces.get(ns) ?? version));
}

/** How many entries an invalidation holds, for bounding the retry queue. */
export function weightOf(inv: Invalidation): number {
  return inv.keys.size + inv.patterns.size + inv.tags.size + inv.namespaces.size;
}

/** A heartbeat: an empty message whose `h` only its sender reads. */
export function encodeHeartbeat(publisher: string, sequence: number, sentAt: number): string {
  return JSON.stringify({ v: BUS_FORMAT_VERSION, i: publisher, q: sequence, h: sentAt });
}

export function encodeMessage(publisher: string, sequence: number, inv: Invalidation): string {
  const message: Record<string, unknown> = { v: BUS_FORMAT_VERSION, i: publisher, q: sequence };
  if (inv.all) message['c'] = 1;
  else {
    if (inv.keys.size > 0) message['k'] = [...inv.keys];
    if (inv.patterns.size > 0) message['p'] = [...inv.patterns];
  }
  if (inv.tags.size > 0) message['t'] = Object.fromEntries(inv.tags);
  if (inv.namespaces.size > 0) message['n'] = Object.fromEntries(inv.namespaces);
  return JSON.stringify(message);
}

/** How big one message may get; see `bus.maxMessageBytes` and `bus.maxMessageNames`. */
export interface MessageLimits {
  /** UTF-8 bytes of the whole JSON message. */
  maxBytes: number;
  /** Keys, patterns, tags and namespaces together. */
  maxNames: number;
}

/**
 * Defaults of `bus.maxMessageBytes`/`bus.maxMessageNames`: JSON.parse of 512 KiB takes a few ms,
 * and 10,000 names cover a large deleteMany in a handful of messages.
 */
export const MESSAGE_LIMIT_DEFAULTS: Readonly<MessageLimits> = Object.freeze({
  maxBytes: 512 * 1024,
  maxNames: 10_000,
});

/**
 * Room kept in every message for what is not a name: `{"v":1,"i":…,"q":…,"c":1,"k":[],"p":[],
 * "t":{},"n":{}}` with a 12-character id and a 16-digit sequence number is under 100 bytes.
 */
const ENVELOPE_BYTES = 160;

/**
 * `inv` cut into invalidations that each encode within `limits`, in order. A name too big for a
 * message of its own cannot be sent: then one "drop everything" goes instead, which covers it
 * (receivers of "all" also re-read tag times and namespace versions from Redis).
 */
export function splitInvalidation(inv: Invalidation, limits: MessageLimits): Invalidation[] {
  const room = limits.maxBytes - ENVELOPE_BYTES;
  const parts: Invalidation[] = [];
  let part = emptyInvalidation();
  let bytes = 0;
  let names = 0;
  const add = (size: number, put: (into: Invalidation) => void): boolean => {
    if (size > room) return false;
    if (names > 0 && (bytes + size > room || names + 1 > limits.maxNames)) {
      parts.push(part);
      part = emptyInvalidation();
      bytes = 0;
      names = 0;
    }
    put(part);
    bytes += size;
    names++;
    return true;
  };
  const sizeOf = (name: string): number => Buffer.byteLength(JSON.stringify(name)) + 1;
  let fits = true;
  part.all = inv.all;
  if (!inv.all) {
    for (const key of inv.keys) fits &&= add(sizeOf(key), (p) => p.keys.add(key));
    for (const pattern of inv.patterns) fits &&= add(sizeOf(pattern), (p) => p.patterns.add(pattern));
  }
  for (const [tag, at] of inv.tags) fits &&= add(sizeOf(tag) + 24, (p) => p.tags.set(tag, at));
  for (const [ns, version] of inv.namespaces)
    fits &&= add(sizeOf(ns) + 24, (p) => p.namespaces.set(ns, version));
  if (!fits) {
    const all = emptyInvalidation();
    all.all = true;
    return [all];
  }
  parts.push(part);
  return parts;
}

export interface DecodedMessage {
  publisher: string;
  sequence: number;
  inv: Invalidation;
  /** Set on a heartbeat: the sender's clock when it sent it. */
  heartbeat?: number;
  /** Its position in the channel's replay log, when it was published with one. */
  position?: LogPosition;
}

/** The message in `raw`, or a sentence saying why it is not one this version can apply. */
export function decodeMessage(raw: string | Buffer): DecodedMessage | string {
  const text = typeof raw === 'string' ? raw : raw.toString('utf8');
  if (!shallow(text)) return `nested deeper than ${MAX_DEPTH} levels`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'not an object';
  const m = parsed as Record<string, unknown>;
  if (m['v'] !== BUS_FORMAT_VERSION) return `unknown format version ${JSON.stringify(m['v'])}`;
  if (typeof m['i'] !== 'string' || m['i'] === '') return 'no publisher id';
  const sequence = m['q'];
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 1)
    return 'no sequence number';
  const inv = emptyInvalidation();
  inv.all = m['c'] === 1;
  if (!stringsInto(m['k'], inv.keys)) return 'keys ("k") are not an array of strings';
  if (!stringsInto(m['p'], inv.patterns)) return 'patterns ("p") are not an array of strings';
  if (!numbersInto(m['t'], inv.tags, isTime)) return 'tags ("t") are not an object of times';
  if (!numbersInto(m['n'], inv.namespaces, Number.isSafeInteger))
    return 'namespaces ("n") are not an object of versions (non-negative integers)';
  const decoded: DecodedMessage = { publisher: m['i'], sequence, inv };
  const heartbeat = m['h'];
  if (heartbeat !== undefined) {
    if (typeof heartbeat !== 'number' || !Number.isFinite(heartbeat))
      return 'heartbeat ("h") is not a number';
    decoded.heartbeat = heartbeat;
  }
  const position = m['x'];
  if (position !== undefined) {
    if (typeof position !== 'string' || !isPosition(position)) return 'log position ("x") is not one';
    decoded.position = position;
  }
  return decoded;
}

/** A message is an object of arrays and objects of scalars: depth 2. Leeway for added fields. */
const MAX_DEPTH = 4;

/**
 * Whether `text` nests no deeper than MAX_DEPTH, in one pass over its characters (strings
 * skipped). JSON.parse of 400 KB of `[[[[…` takes most of a second, well within the size bound.
 */
function shallow(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > MAX_DEPTH) return false;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return true;
}

function stringsInto(value: unknown, into: Set<string>): boolean {
  if (value === undefined) return true;
  if (!Array.isArray(value)) return false;
  for (const item of value) {
    if (typeof item !== 'string') return false;
    into.add(item);
  }
  return true;
}

/** A tag time: epoch ms, finite, not negative (how far in the future is judged on receipt). */
function isTime(n: number): boolean {
  return Number.isFinite(n);
}

function numbersInto(value: unknown, into: Map<string, number>, valid: (n: number) => boolean): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const [name, n] of Object.entries(value as Record<string, unknown>)) {
    if (typeof n !== 'number' || n < 0 || !valid(n)) return false;
    into.set(name, n);
  }
  return true;
}
