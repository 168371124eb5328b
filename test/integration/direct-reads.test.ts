import assert from 'node:assert/strict';
import { Redis as Ioredis6 } from 'ioredis6';
import { Redis as Ioredis } from 'ioredis';
import { Redis as Iovalkey } from 'iovalkey';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { redisTier, type RedisTier, type RedisTierOptions } from '../../src/index.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import type { Serializer } from '../../src/serializers/serializer.js';
import { PATIENT } from '../helpers/backends.js';
import { noop, startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';

/** What the tests use of a client of the ioredis family. */
interface FamilyClient {
  readonly autoPipelineQueueSize: number;
  get(key: string): Promise<string | null>;
  set(key: string, value: string): Promise<unknown>;
  on(event: string, listener: () => void): unknown;
  connect(): Promise<void>;
  disconnect(): void;
}

type FamilyClass = new (options: object) => FamilyClient;

const FAMILY: readonly [string, FamilyClass][] = [
  ['ioredis', Ioredis],
  ['ioredis 6', Ioredis6],
  ['iovalkey', Iovalkey],
];

let server: RedisProcess;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(() => stopAllRedis());

const now = Date.now();
const entry = (value: unknown) => ({ value, createdAt: now, expiresAt: now + 60_000 });
/** Resolves after the tick's `process.nextTick` callbacks (the tier's read batches among them) ran. */
const afterTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

// The tier sends its reads itself on these clients, skipping the auto-pipeline (direct-reads.ts).
describe.each(FAMILY)('reads sent at once on %s', (_name, Client) => {
  const clients: FamilyClient[] = [];
  const tiers: RedisTier[] = [];
  const client = (options: object = {}): FamilyClient => {
    const made = new Client({ port: server.port, enableAutoPipelining: true, ...options });
    made.on('error', noop);
    clients.push(made);
    return made;
  };
  const tier = (made: FamilyClient, serializer?: Serializer): RedisTier => {
    const options: RedisTierOptions = { client: made as never, prefix: 'direct:', timeout: PATIENT };
    const one = redisTier(serializer === undefined ? options : { ...options, serializer });
    tiers.push(one);
    return one;
  };
  afterAll(async () => {
    await Promise.all(tiers.map((one) => one.close()));
    for (const made of clients) made.disconnect();
  });

  it("leave nothing in the client's auto-pipeline, alone or batched, as text or bytes", async () => {
    const made = client();
    for (const serializer of [undefined, msgpackSerializer()]) {
      const one = tier(made, serializer);
      await one.setMany(
        ['x', 'y'].map((key) => one.prepare(key, entry(key))),
        [60_000, 60_000],
      );
      const alone = one.get('x');
      await afterTick();
      assert.equal(made.autoPipelineQueueSize, 0, 'a lone read went out in its tick');
      const batch = Promise.all([one.get('x'), one.get('y'), one.get('none')]);
      await afterTick();
      assert.equal(made.autoPipelineQueueSize, 0, 'a batch went out in its tick');
      assert.equal((await alone)?.entry.value, 'x');
      assert.deepEqual(
        (await batch).map((found) => found?.entry.value),
        ['x', 'y', undefined],
      );
    }
  });

  it('queue behind a write waiting in the auto-pipeline, and read what it wrote', async () => {
    const made = client();
    const one = tier(made);
    await one.setMany([one.prepare('w', entry('old'))], [60_000]);
    const written = made.set('direct:w', one.prepare('w', entry('new')).payload as string);
    const read = one.get('w');
    await afterTick();
    assert.equal(made.autoPipelineQueueSize, 2, 'the write, then the read behind it');
    assert.equal((await read)?.entry.value, 'new');
    await written;
  });

  it('but not unbatched: each read then joins the auto-pipeline with the others of its tick', async () => {
    const made = client();
    const one = redisTier({ client: made as never, prefix: 'direct:', timeout: PATIENT, batchReads: false });
    tiers.push(one);
    await one.setMany([one.prepare('u', entry('unbatched'))], [60_000]);
    const reads = Promise.all([one.get('u'), one.get('u')]);
    assert.equal(made.autoPipelineQueueSize, 2, 'both reads wait for the one write of the tick');
    assert.deepEqual(
      (await reads).map((found) => found?.entry.value),
      ['unbatched', 'unbatched'],
    );
  });

  it("apply the client's keyPrefix, as its own commands do", async () => {
    const made = client({ keyPrefix: 'app:' });
    const one = tier(made);
    await one.setMany([one.prepare('p', entry('prefixed'))], [60_000]);
    assert.notEqual(await server.cli('GET', 'app:direct:p'), null, 'the write went under the prefix');
    assert.equal((await one.get('p'))?.entry.value, 'prefixed');
    const both = await Promise.all([one.get('p'), one.get('none')]);
    assert.deepEqual(
      both.map((found) => found?.entry.value),
      ['prefixed', undefined],
    );
  });

  it('wait for a client not yet connected, and read once it is', async () => {
    const writer = tier(client());
    await writer.setMany([writer.prepare('lazy', entry('later'))], [60_000]);
    const lazy = client({ lazyConnect: true });
    const reader = tier(lazy);
    const read = Promise.all([reader.get('lazy'), reader.get('none')]);
    assert.deepEqual(
      (await read).map((found) => found?.entry.value),
      ['later', undefined],
    );
  });
});
