import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCache, memoryTier, redisTier, type TierCache } from '../../src/index.js';
import { tierCacheMiddleware } from '../../src/http/express.js';
import { tierCachePlugin } from '../../src/http/fastify.js';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { FakeClock, gate } from '../helpers/fake-clock.js';

/** What every test's app serves; `calls` counts handler runs (origin hits) per path. */
interface Origin {
  calls: Map<string, number>;
  /** When set, the /slow handler waits for it. */
  slow: Promise<void> | undefined;
}

interface App {
  url: string;
  close(): Promise<void>;
}

type Framework = (cache: TierCache, origin: Origin) => Promise<App>;

function count(origin: Origin, path: string): void {
  origin.calls.set(path, (origin.calls.get(path) ?? 0) + 1);
}

const products = (id: string) => ({ id, name: `Product ${id}`, price: 10 });

const fastifyApp: Framework = async (cache, origin) => {
  const app = Fastify();
  await app.register(tierCachePlugin, { cache, tierHeader: 'x-cache-tier', sharedMaxAge: 'remaining' });
  const cached = { tiercache: { key: (req: { url: string }) => req.url.split('?')[0] } };
  app.get('/products/:id', { config: cached }, async (req) => {
    count(origin, req.url);
    return products((req.params as { id: string }).id);
  });
  app.get('/slow', { config: cached }, async (req) => {
    count(origin, req.url);
    await origin.slow;
    return { slow: true };
  });
  app.get('/fails', { config: cached }, async (req, reply) => {
    count(origin, req.url);
    return reply.code(503).send({ error: 'down' });
  });
  app.get('/cookie', { config: cached }, async (req, reply) => {
    count(origin, req.url);
    return reply.header('set-cookie', 'session=1').send({ user: 1 });
  });
  app.get('/bytes', { config: cached }, async (req, reply) => {
    count(origin, req.url);
    return reply.type('application/octet-stream').send(Buffer.from([0xff, 0x00, 0xfe]));
  });
  app.get(
    '/uncached',
    { config: { tiercache: { key: () => undefined } } },
    async (req) => (count(origin, req.url), { n: origin.calls.get(req.url) }),
  );
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
};

const expressApp: Framework = async (cache, origin) => {
  const app = express();
  const cached = tierCacheMiddleware({
    cache,
    key: (req) => req.path,
    tierHeader: 'x-cache-tier',
    sharedMaxAge: 'remaining',
  });
  app.get('/products/:id', cached, (req, res) => {
    count(origin, req.path);
    res.json(products(String(req.params['id'])));
  });
  app.get('/slow', cached, (req, res, next) => {
    count(origin, req.path);
    void Promise.resolve(origin.slow).then(() => res.json({ slow: true }), next);
  });
  app.get('/fails', cached, (req, res) => {
    count(origin, req.path);
    res.status(503).json({ error: 'down' });
  });
  app.get('/cookie', cached, (req, res) => {
    count(origin, req.path);
    res.cookie('session', '1').json({ user: 1 });
  });
  app.get('/bytes', cached, (req, res) => {
    count(origin, req.path);
    // Written in two pieces to exercise res.write buffering.
    res.type('application/octet-stream');
    res.write(Buffer.from([0xff]));
    res.end(Buffer.from([0x00, 0xfe]));
  });
  app.get('/uncached', tierCacheMiddleware({ cache, key: () => undefined }), (req, res) => {
    count(origin, req.path);
    res.json({ n: origin.calls.get(req.path) });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};

let redis: RedisProcess;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(stopAllRedis);

let prefixes = 0;

describe.each([
  ['fastify', fastifyApp],
  ['express', expressApp],
] as const)('%s integration', (_name, framework) => {
  async function start(tiers?: () => Parameters<typeof createCache>[0]) {
    const origin: Origin = { calls: new Map(), slow: undefined };
    const cache = createCache(tiers?.() ?? { tiers: [memoryTier({ ttl: '1m' })] });
    const app = await framework(cache, origin);
    return {
      origin,
      cache,
      app,
      get: (path: string, headers: Record<string, string> = {}, method = 'GET') =>
        fetch(app.url + path, { headers, method }),
      async close() {
        await app.close();
        await cache.close();
      },
    };
  }

  it('calls the handler on a miss only, and serves hits with the caching headers', async () => {
    const t = await start();
    try {
      const first = await t.get('/products/1');
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual(products('1'));
      expect(first.headers.get('x-cache-tier')).toBe('origin');
      expect(first.headers.get('cache-control')).toMatch(/^public, max-age=(59|60), s-maxage=(59|60)$/);
      const etag = first.headers.get('etag');
      expect(etag).toMatch(/^"[\w-]{27}"$/);
      expect(Date.parse(first.headers.get('last-modified')!)).toBeGreaterThan(Date.now() - 5_000);
      expect(first.headers.get('content-type')).toMatch(/^application\/json/);

      const second = await t.get('/products/1');
      expect(second.status).toBe(200);
      expect(await second.json()).toEqual(products('1'));
      expect(second.headers.get('x-cache-tier')).toBe('memory');
      expect(second.headers.get('etag')).toBe(etag);
      expect(second.headers.get('content-type')).toMatch(/^application\/json/);
      expect(second.headers.get('set-cookie')).toBeNull();
      expect(t.origin.calls.get('/products/1')).toBe(1);

      await t.get('/products/2');
      expect(t.origin.calls.get('/products/2')).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('answers If-None-Match and If-Modified-Since with 304 and the caching headers', async () => {
    const t = await start();
    try {
      const first = await t.get('/products/1');
      const etag = first.headers.get('etag')!;
      const lastModified = first.headers.get('last-modified')!;
      await first.arrayBuffer();

      const byTag = await t.get('/products/1', { 'if-none-match': `"nope", W/${etag}` });
      expect(byTag.status).toBe(304);
      expect(await byTag.text()).toBe('');
      expect(byTag.headers.get('etag')).toBe(etag);
      expect(byTag.headers.get('cache-control')).toMatch(/^public, max-age=\d+, s-maxage=\d+$/);
      expect(byTag.headers.get('content-type')).toBeNull();

      const byDate = await t.get('/products/1', { 'if-modified-since': lastModified });
      expect(byDate.status).toBe(304);
      await byDate.arrayBuffer();

      const stale = await t.get('/products/1', {
        'if-none-match': '"other"',
        'if-modified-since': lastModified,
      });
      expect(stale.status).toBe(200);
      expect(await stale.json()).toEqual(products('1'));

      const cold = await t.get('/products/9', { 'if-none-match': '*' });
      expect(cold.status).toBe(304);
      expect(t.origin.calls.get('/products/1')).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('serves HEAD from the stored GET response without calling the handler again', async () => {
    const t = await start();
    try {
      // A HEAD of a cold key runs the handler but stores nothing: its body is dropped.
      const cold = await t.get('/products/1', {}, 'HEAD');
      expect(cold.status).toBe(200);
      expect(cold.headers.get('x-cache-tier')).toBeNull();
      expect(await (await t.get('/products/1')).json()).toEqual(products('1'));
      expect(t.origin.calls.get('/products/1')).toBe(2);
      const head = await t.get('/products/1', {}, 'HEAD');
      expect(head.status).toBe(200);
      expect(head.headers.get('etag')).toMatch(/^"/);
      expect(await head.text()).toBe('');
      expect(head.headers.get('x-cache-tier')).toBe('memory');
      expect(t.origin.calls.get('/products/1')).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('runs the handler once for concurrent requests of a cold key', async () => {
    const t = await start();
    const release = gate();
    t.origin.slow = release.promise;
    try {
      const pending = Array.from({ length: 8 }, () => t.get('/slow'));
      // The leader is inside the handler; the others wait for it in the cache's single flight.
      const deadline = Date.now() + 10_000;
      while ((t.origin.calls.get('/slow') ?? 0) === 0 && Date.now() < deadline)
        await new Promise((resolve) => setImmediate(resolve));
      release.resolve();
      const responses = await Promise.all(pending);
      for (const response of responses) expect(await response.json()).toEqual({ slow: true });
      expect(t.origin.calls.get('/slow')).toBe(1);
      expect(responses.map((r) => r.headers.get('etag'))).toEqual(
        Array(8).fill(responses[0]!.headers.get('etag')),
      );
    } finally {
      await t.close();
    }
  });

  it('does not store error statuses or responses that set cookies', async () => {
    const t = await start();
    try {
      for (let i = 0; i < 2; i++) {
        const failed = await t.get('/fails');
        expect(failed.status).toBe(503);
        expect(failed.headers.get('cache-control')).toBeNull();
        await failed.arrayBuffer();
        const cookie = await t.get('/cookie');
        expect(cookie.headers.get('set-cookie')).toMatch(/session=1/);
        await cookie.arrayBuffer();
      }
      expect(t.origin.calls.get('/fails')).toBe(2);
      expect(t.origin.calls.get('/cookie')).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('stores binary bodies byte for byte', async () => {
    const t = await start();
    try {
      const first = Buffer.from(await (await t.get('/bytes')).arrayBuffer());
      const second = await t.get('/bytes');
      expect(second.headers.get('x-cache-tier')).toBe('memory');
      expect(Buffer.from(await second.arrayBuffer())).toEqual(first);
      expect([...first]).toEqual([0xff, 0x00, 0xfe]);
    } finally {
      await t.close();
    }
  });

  it('leaves other methods and requests without a key alone', async () => {
    const t = await start();
    try {
      for (let i = 1; i <= 2; i++) expect(await (await t.get('/uncached')).json()).toEqual({ n: i });
      const post = await t.get('/products/1', {}, 'POST');
      expect(post.status).toBe(404);
      await post.arrayBuffer();
      expect(t.origin.calls.get('/products/1')).toBeUndefined();
    } finally {
      await t.close();
    }
  });

  it('with cache-wide grace, an expired response is reloaded by its request (a background refresh could not run the handler)', async () => {
    const clock = new FakeClock(Date.now());
    const t = await start(() => ({ tiers: [memoryTier({ ttl: '10s' })], clock: clock.read, grace: '1m' }));
    try {
      const first = await t.get('/products/3');
      expect(first.headers.get('x-cache-tier')).toBe('origin');
      await first.arrayBuffer();
      clock.advance(11_000);
      const reloaded = await t.get('/products/3');
      expect(reloaded.headers.get('x-cache-tier')).toBe('origin');
      await reloaded.arrayBuffer();
      expect(t.origin.calls.get('/products/3')).toBe(2);
      const hit = await t.get('/products/3');
      expect(hit.headers.get('x-cache-tier')).toBe('memory');
      await hit.arrayBuffer();
    } finally {
      await t.close();
    }
  });

  it('a second instance serves the first one’s response from Redis with the same ETag', async () => {
    const prefix = `http${++prefixes}:`;
    const tiers = () => ({ tiers: [memoryTier(), redisTier({ client: redis.url, prefix, ttl: '2m' })] });
    const a = await start(tiers);
    const b = await start(tiers);
    try {
      const first = await a.get('/products/7');
      const etag = first.headers.get('etag')!;
      await first.arrayBuffer();
      const other = await b.get('/products/7');
      expect(other.headers.get('x-cache-tier')).toBe('redis');
      expect(other.headers.get('etag')).toBe(etag);
      expect(await other.json()).toEqual(products('7'));
      const revalidated = await b.get('/products/7', { 'if-none-match': etag });
      expect(revalidated.status).toBe(304);
      expect(b.origin.calls.get('/products/7')).toBeUndefined();
      expect(a.origin.calls.get('/products/7')).toBe(1);
    } finally {
      await a.cache.clear();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('option mistakes', () => {
  it('are reported at construction, naming the option', () => {
    const cache = createCache();
    expect(() => tierCacheMiddleware({ cache, key: 'path' as never })).toThrow(/tierCacheMiddleware\.key/);
    expect(() => tierCacheMiddleware({ cache: {} as never, key: () => 'k' })).toThrow(
      /tierCacheMiddleware\.cache/,
    );
    expect(() => tierCacheMiddleware({ cache, key: () => 'k', statuses: [700] })).toThrow(/statuses/);
    expect(() => tierCacheMiddleware({ cache, key: () => 'k', maxAge: 'soon' as never })).toThrow(
      /tierCacheMiddleware\.maxAge/,
    );
  });

  it('the Fastify plugin refuses to register without a cache', async () => {
    const app = Fastify();
    await expect(app.register(tierCachePlugin, {} as never).ready()).rejects.toThrow(
      /tierCachePlugin\.cache/,
    );
    await app.close();
  });
});
