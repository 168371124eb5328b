/**
 * Fill leases on Redis (after memcache's leases, Nishtala et al., "Scaling Memcache at Facebook",
 * NSDI 2013): a loader's fill is written only if the key still holds what the load's miss read
 * saw, checked inside Redis by one script, so a fill can never put a value older than a delete
 * into the tier, whichever instance deleted it and whenever its bus message arrives.
 *
 * - A delete leaves a **tombstone** under the key itself (never a second key: on a Cluster it is
 *   in the key's slot by construction): a stored-format envelope that is expired at birth and
 *   carries a random nonce, so every delete leaves a different one. Readers of any version see an
 *   expired entry, which is a miss. It lives `tombstoneTtl`.
 * - A miss read notes what it saw: nothing, or the bytes of a tombstone, an expired copy, a copy
 *   due for refresh (their SHA-1 is taken only when a fill needs it). The read itself is the
 *   GET (or MGET) the miss makes anyway.
 * - `clear()` and `deleteByPattern()` cannot leave a tombstone under keys that do not exist, so
 *   they first set the tier's **generation** to a new random token: one key on a single server,
 *   one per hash slot on a Cluster (each named with a hash tag of that slot), living as long as a
 *   tombstone. A lease carries the generation the instance last learned, from the replies of
 *   its own fills (a stale one only costs a refused fill, whose reply teaches the current one):
 *   a generation known before the read began, so any clear after the read differs from it.
 * - The fill script compares both, per key, and writes only where they hold.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Script } from './script.js';
import { keySlot, SLOTS } from '../../internal/key-slot.js';
import type { Serializer } from '../../serializers/serializer.js';
import { GENERATION_KEY_PREFIX } from '../../sync/reserved-keys.js';
import { STORED_FORMAT_VERSION } from '../envelope.js';
import type { Entry } from '../../entry.js';
import type { RawReply } from '../read-batch.js';
import { UNREAD_LEASE } from '../tier.js';
import { MIN_FILL_WINDOW } from '../../loading/load-plan.js';

/**
 * What a miss read saw, handed back to the fill: the reply (null: nothing) and the generation
 * known when the read began. `reply` is undefined for a reply that cannot be compared (a value
 * too large to transfer): that fill checks the generation only.
 */
export interface RedisLease {
  readonly reply: string | Buffer | null | undefined;
  readonly generation: string;
}

/**
 * Default life of a tombstone, in ms; the owning cache raises it to cover its load timeouts and
 * its lock lease (see TierCache). A loader that read the key while it held nothing, and runs
 * longer than this after a delete, can still fill: the bound stated in docs/consistency.md.
 */
export const TOMBSTONE_TTL = MIN_FILL_WINDOW;

/** The envelope of a tombstone: created and expired at epoch 0, no value, a nonce in `d`. */
function tombstoneEnvelope(nonce: string): object {
  return { f: STORED_FORMAT_VERSION, c: 0, e: 0, u: 1, d: nonce };
}

/** Whether a decoded entry is a tombstone (no real entry is created and expires at epoch 0). */
export function isTombstone(entry: Entry): boolean {
  return entry.expiresAt === 0 && entry.createdAt === 0;
}

/** A tombstone payload in `serializer`'s encoding, new for every delete. */
export function tombstone(serializer: Serializer): string | Buffer {
  return toBody(serializer.encode(tombstoneEnvelope(randomBytes(9).toString('base64url'))));
}

/**
 * The bytes every tombstone of `serializer` starts with (the common start of two encodings that
 * differ only in their nonce): the delete script counts the keys that held something else.
 */
export function tombstoneMark(serializer: Serializer): string | Buffer {
  const a = toBody(serializer.encode(tombstoneEnvelope('AAAAAAAAAAAA')));
  const b = toBody(serializer.encode(tombstoneEnvelope('BBBBBBBBBBBB')));
  let n = 0;
  const at = (body: string | Buffer, i: number): number =>
    typeof body === 'string' ? body.charCodeAt(i) : body[i]!;
  while (n < a.length && n < b.length && at(a, n) === at(b, n)) n++;
  return a.slice(0, Math.max(n, 1));
}

function toBody(payload: string | Uint8Array): string | Buffer {
  return typeof payload === 'string' || Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
}

/**
 * The condition a fill sends for what its read saw: '' nothing (also when the read failed, so
 * that only an empty key is filled), '*' anything (the reply was not kept), else the SHA-1 of
 * the bytes, which the script compares with redis.sha1hex of the key.
 */
export function seenOf(lease: RedisLease | typeof UNREAD_LEASE | undefined): string {
  if (lease === UNREAD_LEASE) return '';
  const reply = lease?.reply;
  if (reply === undefined) return '*';
  if (reply === null) return '';
  return createHash('sha1').update(reply).digest('hex');
}

/** The lease of a read reply, with the generation known when the read began. */
export function leaseOf(reply: RawReply, generation: string): RedisLease {
  return { reply: typeof reply === 'number' ? undefined : reply, generation };
}

/**
 * Deletes by tombstone: KEYS are the keys, ARGV[1] the tombstone, ARGV[2] its life in ms,
 * ARGV[3] the start every tombstone has. Returns how many keys held something else (what a plain
 * delete would have removed). GETRANGE reads only the start of a value, however large; a key of
 * another type (a hash, a list…: its GETRANGE fails) counts as held and is replaced too, rather
 * than failing the delete of every key after it.
 */
export const BURY = `local n = 0
for i = 1, #KEYS do
  local head = redis.pcall('GETRANGE', KEYS[i], 0, #ARGV[3] - 1)
  if type(head) ~= 'string' or (head ~= '' and head ~= ARGV[3]) then n = n + 1 end
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
return n`;

/**
 * The conditional fill: KEYS[1] is the generation key of the keys' slot, KEYS[2..] the keys;
 * ARGV holds four values per key: the generation its read knew, what it saw ('' nothing, '*'
 * anything: the value was too large to read back, so only the generation is checked, else a
 * SHA-1; a key that now holds another type is refused), the payload and its life in ms ('' forever). Returns a flag per key
 * (1 written, 0 refused) and then the current generation, which the caller learns.
 */
export const FILL = `local g = redis.call('GET', KEYS[1]) or ''
local out = {}
local all = 1
for i = 2, #KEYS do
  local a = (i - 2) * 4
  local seen = ARGV[a + 2]
  local ok = ARGV[a + 1] == g
  if ok and seen == '' then ok = redis.call('EXISTS', KEYS[i]) == 0
  elseif ok and seen ~= '*' then
    local cur = redis.pcall('GET', KEYS[i])
    ok = type(cur) == 'string' and redis.sha1hex(cur) == seen
  end
  if ok then
    if ARGV[a + 4] == '' then redis.call('SET', KEYS[i], ARGV[a + 3])
    else redis.call('SET', KEYS[i], ARGV[a + 3], 'PX', ARGV[a + 4]) end
    out[i - 1] = 1
  else
    out[i - 1] = 0
    all = 0
  end
end
if all == 1 then return 1 end
out[#KEYS] = g
return out`;

export const BURY_SCRIPT = new Script(BURY);
export const FILL_SCRIPT = new Script(FILL);

/** A new random generation, set by clear() and deleteByPattern(). */
export function newGeneration(): string {
  return randomBytes(12).toString('base64url');
}

let tags: string[] | undefined;

/**
 * For each Cluster hash slot, a short string whose own slot it is: the hash tag that puts a
 * generation key in that slot. Found once per process by counting up (about 10^5 CRCs).
 */
function slotTags(): string[] {
  if (tags !== undefined) return tags;
  const found = new Array<string>(SLOTS);
  let left = SLOTS;
  for (let i = 0; left > 0; i++) {
    const tag = i.toString(36);
    const slot = keySlot(tag);
    if (found[slot] === undefined) {
      found[slot] = tag;
      left--;
    }
  }
  return (tags = found);
}

/**
 * The generation key beside `fullKey`: the only one on a single server; on a Cluster the one of
 * the key's hash slot (when the prefix holds a hash tag every key, and this one, shares its slot).
 */
export function generationKey(prefix: string, fullKey: string, cluster: boolean): string {
  if (!cluster) return prefix + GENERATION_KEY_PREFIX;
  return `${prefix}${GENERATION_KEY_PREFIX}{${slotTags()[keySlot(fullKey)]!}}`;
}

/** Every generation key of a tier: one, or one per hash slot on a Cluster. */
export function generationKeys(prefix: string, cluster: boolean): string[] {
  if (!cluster) return [prefix + GENERATION_KEY_PREFIX];
  return slotTags().map((tag) => `${prefix}${GENERATION_KEY_PREFIX}{${tag}}`);
}
