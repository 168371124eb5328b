import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier } from '../../src/index.js';
import { startRedis, type RedisProcess } from '../helpers/redis-server.js';

let server: RedisProcess;

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await server.stop();
});

describe('lifecycle', () => {
  it('closes the connection a URL tier opened when createCache refuses its options, so the process exits', async () => {
    const child = fileURLToPath(new URL('./fixtures/refused-options-child.ts', import.meta.url));
    const proc = spawn(process.execPath, ['--import', 'tsx', child, server.url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    proc.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    // Generous: a loaded machine starts tsx slowly. A connection left open never exits at all.
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
    clearTimeout(timer);
    expect(out).toMatch(/bus\.chanel/);
    expect(out).toMatch(/sharded/);
    expect(code).toBe(0);
  }, 40_000);

  it('refuses calls through a namespace view after close(), without calling the loader', async () => {
    const cache = createCache({
      tiers: [memoryTier(), redisTier({ client: server.url, prefix: 'trustns:' })],
    });
    const ns = cache.namespace('products');
    expect(await ns.getOrSet('a', () => 1)).toBe(1);
    await cache.close();
    let calls = 0;
    const loader = (): number => ++calls;
    await expect(ns.getOrSet('b', loader)).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(ns.get('a')).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(ns.set('a', 2)).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(ns.delete('a')).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(ns.has('a')).rejects.toMatchObject({ code: 'E_CLOSED' });
    await expect(ns.clear()).rejects.toMatchObject({ code: 'E_CLOSED' });
    const wrapped = cache.wrap(async (n: number) => n, { name: 'w' });
    await expect(wrapped(1)).rejects.toMatchObject({ code: 'E_CLOSED' });
    expect(calls).toBe(0);
  });
});
