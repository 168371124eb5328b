import { randomInt } from 'node:crypto';
import { BusError } from '../errors.js';
import { isCluster, isReplyError, type RedisClient } from '../tiers/redis/client.js';
import { Script } from '../tiers/redis/script.js';

/**
 * Where a message sits in a channel's replay log: the stream entry id `<seq>-<nonce>`. `seq`
 * counts the channel's messages 1, 2, 3…; `nonce` is drawn by the publisher for each entry, so
 * two logs (one lost with a restarted or failed-over Redis and the one written since) never
 * hold the same position, even where their numbers meet.
 */
export type LogPosition = string;

/** One entry read back from the log: its position and the message as published without it. */
export type LogEntry = readonly [position: LogPosition, message: string];

/** What a replay read found after a position. */
export type LogRead =
  /** The position is still in the log: what follows it, oldest first (at most the count asked). */
  | { found: true; entries: LogEntry[] }
  /**
   * The position is not in the log (trimmed past it, or the log was lost with Redis's data):
   * what was published since cannot be told. `tail` is the log's newest position now.
   */
  | { found: false; tail: LogPosition };

/**
 * The replay log the bus keeps beside its channels: every message is appended to a Redis Stream
 * (`<channel>:log`, same hash slot as a shard channel) in the same script that publishes it, so
 * a subscriber that was away reads what it missed instead of dropping its L1.
 */
export interface BusLog {
  /** Appends `message` to `channel`'s log and publishes it with its position (`"x"`). */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Up to `count` entries after `position`, or, if that is not in the log, the log's newest
   * position. Without a position it only reads that (writing a first entry to an empty log, so
   * every subscriber starts from a position a lost log cannot repeat).
   */
  read(channel: string, position: LogPosition | undefined, count: number): Promise<LogRead>;
}

/** The sequence number of a position (0 for one that is not a log position). */
export function sequenceOf(position: LogPosition): number {
  const dash = position.indexOf('-');
  const seq = Number(position.slice(0, dash));
  return Number.isSafeInteger(seq) ? seq : 0;
}

/** Whether `text` is a position as this log writes them. */
export function isPosition(text: string): boolean {
  return /^[1-9][0-9]{0,15}-[0-9]{1,16}$/.test(text);
}

/** The log of `channel`: one key per channel, in the channel's hash slot (`…:{3}` keeps `{3}`). */
export function logKey(channel: string): string {
  return `${channel}:log`;
}

/**
 * The id of the next entry of KEYS[1] with nonce `nonce`: one past the newest entry, or past the
 * last id the stream ever generated when it is empty (trimmed to nothing: XADD refuses ids at or
 * below that). An error when that would not be a position readers accept (an entry someone else
 * added with a bigger id: Lua's numbers are doubles, and readers take at most 16 digits).
 */
const NEXT_ID = `local function nextId(key, nonce)
  local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  local last = top[1] and top[1][1]
  if not last and redis.call('EXISTS', key) == 1 then
    local info = redis.call('XINFO', 'STREAM', key)
    for i = 1, #info, 2 do if info[i] == 'last-generated-id' then last = info[i + 1] end end
  end
  local seq = 1
  if last then
    local digits = string.match(last, '^(%d+)')
    if #digits > 15 then error('the log holds an entry id no position can follow: ' .. last) end
    seq = tonumber(digits) + 1
  end
  return string.format('%d-%s', seq, nonce)
end
`;

/**
 * Appends and publishes in one step, so a message is never delivered without being in the log
 * (a subscriber that replays finds everything it could have heard). The message is a JSON object;
 * its position goes in as a first field, `"x"`, which older readers ignore.
 * KEYS[1] log; ARGV: channel, message, nonce, max length, PUBLISH or SPUBLISH.
 */
const APPEND = `${NEXT_ID}local id = nextId(KEYS[1], ARGV[3])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], id, 'm', ARGV[2])
redis.call(ARGV[5], ARGV[1], '{"x":"' .. id .. '",' .. string.sub(ARGV[2], 2))
return id`;

/**
 * What follows ARGV[1] in the log, if it is there; else the newest position, writing an empty
 * entry to an empty log so that the position returned is an entry (a later read can find it).
 * KEYS[1] log; ARGV: position or '', count, nonce, max length.
 */
const READ = `${NEXT_ID}if ARGV[1] ~= '' and #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) > 0 then
  return {1, redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])}
end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top > 0 then return {0, top[1][1]} end
local id = nextId(KEYS[1], ARGV[3])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], id, 'm', '')
return {0, id}`;

/** A stream log on the bus's own Redis client. */
export class RedisBusLog implements BusLog {
  /** Hears that messages go out without the log, and why: once per spell of refusals. */
  onUnlogged: ((error: BusError) => void) | undefined;
  readonly #client: RedisClient;
  readonly #maxLength: string;
  readonly #command: 'PUBLISH' | 'SPUBLISH';
  #unlogged = false;

  /** `sharded`: publish with SPUBLISH (a shard channel), else PUBLISH. */
  constructor(client: RedisClient, maxLength: number, sharded: boolean) {
    this.#client = client;
    this.#maxLength = String(maxLength);
    this.#command = sharded ? 'SPUBLISH' : 'PUBLISH';
  }

  /**
   * Appends and publishes; when Redis refuses the append, publishes without it. The log only
   * spares readers a dropped L1, and the message must go out whatever state the log is in: a key
   * of another type where the stream should be, an entry someone added with an id no position
   * can follow, an ACL or OOM refusing XADD (issue 19 rerun: one XADD or SET on the log key
   * stopped every invalidation, for good). The message then goes out as an older publisher's
   * would, without a position; readers check it by its sequence number, and an outage meanwhile
   * drops their L1 instead of replaying.
   */
  async publish(channel: string, message: string): Promise<void> {
    const key = logKey(channel);
    try {
      await APPEND_SCRIPT.run(
        this.#client,
        [key],
        [channel, message, nonce(), this.#maxLength, this.#command],
      );
      this.#unlogged = false;
      return;
    } catch (error) {
      if (!isReplyError(error)) throw error;
      const client = this.#client;
      if (this.#command === 'SPUBLISH' && isCluster(client)) await client.spublish(channel, message);
      else await client.publish(channel, message);
      if (this.#unlogged) return;
      this.#unlogged = true;
      const why = new Error(
        `the replay log "${key}" refused a message, which went out without it (readers drop L1 after an outage instead of replaying): ${error.message}`,
        { cause: error },
      );
      this.onUnlogged?.(new BusError('publish', why, channel));
    }
  }

  async read(channel: string, position: LogPosition | undefined, count: number): Promise<LogRead> {
    const reply = (await READ_SCRIPT.run(
      this.#client,
      [logKey(channel)],
      [position ?? '', String(count), nonce(), this.#maxLength],
    )) as [number, unknown];
    if (reply[0] === 0) return { found: false, tail: String(reply[1]) };
    const entries: LogEntry[] = [];
    for (const [id, fields] of reply[1] as [string, string[]][]) {
      // Field pairs; the first entry of a log has an empty message and nothing to apply.
      const message = fields[1];
      entries.push([id, message ?? '']);
    }
    return { found: true, entries };
  }
}

/** A per-entry nonce: 1 to 2^48, decimal. */
function nonce(): string {
  return String(randomInt(1, 2 ** 48));
}

const APPEND_SCRIPT = new Script(APPEND);
const READ_SCRIPT = new Script(READ);
