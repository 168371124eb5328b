import { Redis } from 'ioredis';
import { createCache, redisTier } from './library.js';
import { comparePair, fmtRate, sequentialRate, verdict } from './harness.js';

async function calls(admin: Redis, command: string): Promise<number> {
  const line = (await admin.info('commandstats'))
    .split('\n')
    .find((l) => l.startsWith(`cmdstat_${command}:`));
  return line === undefined ? 0 : Number(/calls=(\d+)/.exec(line)![1]);
}

/** getMany of 100 keys (none in L1): counts Redis commands per call and compares with raw MGET. */
export async function getMany(url: string): Promise<boolean> {
  const prefix = 'bench-many:';
  const admin = new Redis(url);
  const raw = new Redis(url);
  const client = new Redis(url);
  const cache = createCache({ tiers: [redisTier({ client, prefix })] });
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
  await cache.setMany(keys.map((key, i) => ({ key, value: { i, name: `item ${i}` } })));
  const before = { mget: await calls(admin, 'mget'), get: await calls(admin, 'get') };
  const CALLS = 200;
  for (let i = 0; i < CALLS; i++) await cache.getMany(keys);
  const mgets = (await calls(admin, 'mget')) - before.mget;
  const gets = (await calls(admin, 'get')) - before.get;
  const result = await comparePair(
    {
      baseline: () =>
        sequentialRate(500, async () =>
          (await raw.mget(keys.map((k) => prefix + k))).map((p) => JSON.parse(p!) as unknown),
        ),
      subject: () => sequentialRate(500, () => cache.getMany(keys)),
    },
    5,
  );
  await cache.clear();
  await cache.close();
  client.disconnect();
  admin.disconnect();
  raw.disconnect();
  const ok = mgets === CALLS && gets === 0;
  console.log(
    `getMany(100 keys): ${(mgets / CALLS).toFixed(2)} MGET and ${(gets / CALLS).toFixed(2)} GET per call (target 1 round trip) ${verdict(ok)};` +
      ` ${fmtRate(result.subject)} calls vs raw MGET+parse ${fmtRate(result.baseline)} → ${result.ratio.toFixed(2)}x`,
  );
  return ok;
}
