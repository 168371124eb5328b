import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { redisTier, type RedisTier } from '../../../src/index.js';
import type { StoredEntry } from '../../../src/tiers/tier.js';
import type { Serializer } from '../../../src/serializers/serializer.js';
import { adoptClient, type RedisClientOption } from '../../../src/tiers/redis/clients.js';
import { RedisStore } from '../../../src/tiers/redis/redis-tier.js';
import { msgpackSerializer } from '../../../src/serializers/msgpack.js';
import { remoteTierConformance, type TierContext } from '../../../src/testing/index.js';
import { PATIENT, type Backend } from '../../helpers/backends.js';

/** The tiers the suite runs on: the bare store, then the guarded tier in three encodings. */
type Variant = 'store' | 'json' | 'compressed' | 'msgpack';

/**
 * The RemoteTier conformance suite against the Redis tier on a backend: the bare store, and the
 * guarded tier the cache uses (with its raw, batched reads) under both serializers.
 * test/integration runs it on a single server, test/cluster on a three-master cluster.
 * `variants` picks some of them where time is short (each takes seconds on a cluster).
 */
export function redisTierConformance(
  backend: Backend,
  variants: readonly Variant[] = ['store', 'json', 'compressed', 'msgpack'],
): void {
  const each = (variant: Variant, register: () => void): void => {
    if (variants.includes(variant)) register();
  };
  let client: RedisClientOption | undefined;
  /** One client for every tier of the file: a tier never closes a client it was given. */
  const shared = (): RedisClientOption => (client ??= backend.client());

  beforeAll(async () => {
    await backend.start();
    // Connected before the first test: a Cluster client's clear() (SCAN on every master) before
    // it has learned the slot map failed once with "Connection is closed" (left to the tier work).
    // (Through the tier's own view of the client, whichever library made it.)
    await adoptClient(shared(), 'client').client.get('conformance:connected');
  }, 60_000);
  afterAll(() => backend.stop());

  /** Plants bytes no serializer reads as an envelope. */
  const corrupt = async (tier: RedisStore | RedisTier, key: string): Promise<void> => {
    await backend.admin().set(tier.prefix + key, '\u00c1not a payload {');
  };

  each('store', () =>
    remoteTierConformance(
      `RedisStore on ${backend.name} Redis`,
      { describe, it },
      {
        create: ({ prefix }: TierContext) => {
          const store = new RedisStore({ client: shared(), prefix });
          return store;
        },
        corrupt,
      },
    ),
  );

  each('json', () =>
    remoteTierConformance(
      `redisTier on ${backend.name} Redis (json)`,
      { describe, it },
      {
        create: ({ prefix }: TierContext) => {
          const tier = redisTier({ client: shared(), prefix, timeout: PATIENT });
          return tier;
        },
        corrupt,
        values: { date: new Date(1_700_000_000_000) },
      },
    ),
  );

  each('compressed', () =>
    remoteTierConformance(
      `redisTier on ${backend.name} Redis (json, compressed from 0 bytes)`,
      { describe, it },
      {
        create: ({ prefix }: TierContext) => {
          const tier = redisTier({
            client: shared(),
            prefix,
            timeout: PATIENT,
            compression: { threshold: 0 },
          });
          return tier;
        },
        corrupt,
        values: { date: new Date(1_700_000_000_000) },
      },
    ),
  );

  each('json', () =>
    describe(`redisTier on ${backend.name} Redis: text reads beside a peer that compresses`, () => {
      // A JSON tier without compression reads payloads as text, and a compressed payload, which
      // is not UTF-8, is read again as bytes: alone, in a tick's batch and in getMany().
      it("reads the peer's compressed entries and its own plain ones, however they are read", async () => {
        const prefix = `text-reads.${Date.now()}:`;
        const peer = redisTier({ client: shared(), prefix, timeout: PATIENT, compression: { threshold: 0 } });
        const reader = redisTier({ client: shared(), prefix, timeout: PATIENT });
        const now = Date.now();
        const entry = (value: unknown) => ({ value, createdAt: now, expiresAt: now + 60_000 });
        const values: Record<string, unknown> = {
          packed: { n: 1, text: 'é'.repeat(50) },
          plain: 'ü',
          other: [2],
        };
        await peer.setMany(
          [peer.prepare('packed', entry(values['packed'])), peer.prepare('other', entry(values['other']))],
          [60_000, 60_000],
        );
        await reader.setMany([reader.prepare('plain', entry(values['plain']))], [60_000]);
        const admin = adoptClient(shared(), 'client').client;
        assert.equal((await admin.getBuffer(`${prefix}packed`))![0], 0xc1, 'the peer compressed');
        const keys = ['packed', 'plain', 'missing', 'other', 'packed'];
        const expected = keys.map((key) => values[key]);
        const valuesOf = (found: readonly (StoredEntry | undefined)[]) =>
          found.map((one) => one?.entry.value);
        assert.deepEqual(
          valuesOf(await Promise.all(keys.map((key) => reader.get(key)))),
          expected,
          'get(), one tick',
        );
        for (const key of keys)
          assert.deepEqual((await reader.get(key))?.entry.value, values[key], `get("${key}")`);
        assert.deepEqual(valuesOf(await reader.getMany(keys)), expected, 'getMany()');
        await reader.clear();
        // Closing a tier leaves the shared client open; it removes the tier's listeners on it.
        await Promise.all([peer.close(), reader.close()]);
      });

      it('reads as bytes what a serializer writes that does not say it writes text', async () => {
        // As a JavaScript user may write one: no `binary` field, and bytes that are not UTF-8
        // after a first byte that is (a text read would hand decode() a mangled string).
        const bytes = {
          name: 'xor',
          encode: (value: unknown) =>
            Buffer.concat([Buffer.from('B'), Buffer.from(JSON.stringify(value)).map((b) => b ^ 0x80)]),
          decode: (payload: string | Buffer): unknown => {
            if (!Buffer.isBuffer(payload)) throw new TypeError('expected bytes');
            return JSON.parse(Buffer.from(payload.subarray(1).map((b) => b ^ 0x80)).toString());
          },
        } as unknown as Serializer;
        const tier = redisTier({
          client: shared(),
          prefix: `bytes.${Date.now()}:`,
          timeout: PATIENT,
          serializer: bytes,
        });
        const now = Date.now();
        const entry = { value: { s: 'é', n: [1, 2] }, createdAt: now, expiresAt: now + 60_000 };
        await tier.setMany([tier.prepare('k', entry), tier.prepare('j', entry)], [60_000, 60_000]);
        const read = await Promise.all([tier.get('k'), tier.get('j'), tier.get('none')]);
        assert.deepEqual(
          read.map((one) => one?.entry.value),
          [entry.value, entry.value, undefined],
        );
        assert.deepEqual((await tier.get('k'))?.entry.value, entry.value);
        assert.deepEqual((await tier.getMany(['k', 'j']))[1]?.entry.value, entry.value);
        await tier.clear();
        await tier.close();
      });
    }),
  );

  each('json', () =>
    describe(`redisTier on ${backend.name} Redis: reads and the writes before them`, () => {
      it('a read sees the writes sent on its client before it, though it is batched after them', async () => {
        // Reads wait for the end of the tick to go as one command, and may then skip the
        // client's auto-pipeline (direct-reads.ts): neither may let them overtake a write
        // already handed to the client, by the tier or by the application sharing the client.
        const prefix = `read-order.${Date.now()}:`;
        const tier = redisTier({ client: shared(), prefix, timeout: PATIENT });
        const admin = adoptClient(shared(), 'client').client;
        const now = Date.now();
        const entry = (value: unknown) => ({ value, createdAt: now, expiresAt: now + 60_000 });
        const write = (value: string) => [
          tier.setMany([tier.prepare('a', entry(value))], [60_000]),
          admin.set(`${prefix}b`, tier.prepare('b', entry(value)).payload as string),
        ];
        const valueOf = async (read: Promise<StoredEntry | undefined>) => (await read)?.entry.value;
        let writes = write('first');
        assert.equal(await valueOf(tier.get('a')), 'first', "a lone read of the tier's write");
        writes = [...writes, ...write('second')];
        assert.equal(await valueOf(tier.get('b')), 'second', "a lone read of the application's write");
        writes = [...writes, ...write('third')];
        assert.deepEqual(
          await Promise.all([valueOf(tier.get('a')), valueOf(tier.get('b'))]),
          ['third', 'third'],
          'a batch of reads',
        );
        await Promise.all(writes);
        await tier.clear();
        await tier.close();
      });
    }),
  );

  each('msgpack', () =>
    remoteTierConformance(
      `redisTier on ${backend.name} Redis (msgpack)`,
      { describe, it },
      {
        create: ({ prefix }: TierContext) => {
          const tier = redisTier({
            client: shared(),
            prefix,
            timeout: PATIENT,
            serializer: msgpackSerializer(),
          });
          return tier;
        },
        corrupt,
        // msgpack encodes cycles, BigInts and functions; a Symbol it refuses.
        unencodable: [Symbol('not storable')],
        values: {
          date: new Date(1_700_000_000_000),
          map: new Map<string, unknown>([
            ['a', 1],
            ['b', { c: [2] }],
          ]),
          set: new Set([1, 'two']),
          bigint: 12345678901234567890n,
          bytes: Buffer.from([0, 1, 2, 255]),
        },
      },
    ),
  );
}
