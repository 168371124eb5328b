/**
 * One instance of the product-catalogue service: a Fastify app whose product reads are cached by
 * tiercache (L1 in this process, Redis shared by all instances) through the tiercache Fastify
 * plugin, so responses carry Cache-Control/ETag/Last-Modified for a CDN in front and conditional
 * requests get 304s. Writes go to the database, then invalidate the key.
 */
import Fastify, { type FastifyRequest } from 'fastify';
import { Counter, Registry } from 'prom-client';
import { tierCachePlugin } from '../src/http/fastify.js';
import { createCache, memoryTier, redisTier, type CacheStats, type Duration } from '../src/index.js';
import { type RemoteTier } from '../src/extend.js';
import { prometheusMetrics } from '../src/metrics/prometheus.js';
import { openCatalogue, type DatabaseConfig } from './catalogue.js';

export interface InstanceConfig {
  name: string;
  /** 0 for a free port. */
  port: number;
  /** The shared Redis; undefined when the caller passes its own remote tier (in-process mode). */
  redisUrl: string | undefined;
  prefix: string;
  db: DatabaseConfig;
  dbLatencyMs: number;
  l1Entries: number;
  l1Ttl: Duration;
  redisTtl: Duration;
}

export interface InstanceStats {
  name: string;
  cache: CacheStats;
  dbQueries: number;
}

export interface RunningInstance {
  readonly name: string;
  readonly url: string;
  stats(): InstanceStats;
  close(): Promise<void>;
}

function productId(request: FastifyRequest): number | undefined {
  const id = Number((request.params as { id?: string }).id);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

export async function startInstance(config: InstanceConfig, remote?: RemoteTier): Promise<RunningInstance> {
  const catalogue = openCatalogue(config.db, config.dbLatencyMs);
  const shared =
    remote ?? redisTier({ client: config.redisUrl!, prefix: config.prefix, ttl: config.redisTtl });
  const cache = createCache({
    tiers: [memoryTier({ maxEntries: config.l1Entries, ttl: config.l1Ttl }), shared],
  });
  const registry = new Registry();
  prometheusMetrics(cache, { registry, name: 'catalogue', labels: { instance: config.name } });
  new Counter({
    name: 'demo_database_queries_total',
    help: 'Queries the demo service sent to its database (the origin).',
    registers: [registry],
    labelNames: ['instance'],
    collect() {
      this.reset();
      this.inc({ instance: config.name }, catalogue.queries);
    },
  });

  const app = Fastify();
  // Browsers revalidate after 5 s at most; a CDN keeps the response as long as the cache does.
  await app.register(tierCachePlugin, {
    cache,
    tierHeader: 'x-cache-tier',
    maxAge: '5s',
    staleWhileRevalidate: '30s',
    staleIfError: '10m',
    sharedMaxAge: 'remaining',
  });
  // Time spent in this process, so clients can tell tier latency from their own queueing.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('server-timing', `app;dur=${reply.elapsedTime.toFixed(3)}`);
    return payload;
  });
  app.get(
    '/products/:id',
    {
      config: {
        tiercache: {
          key: (request: FastifyRequest) => {
            const id = productId(request);
            return id === undefined ? undefined : `product:${id}`;
          },
        },
      },
    },
    async (request, reply) => {
      const id = productId(request);
      if (id === undefined) return reply.code(400).send({ error: 'product ids are positive integers' });
      const product = await catalogue.product(id);
      if (product === undefined) return reply.code(404).send({ error: `no product ${id}` });
      return product;
    },
  );
  app.put('/products/:id', async (request, reply) => {
    const id = productId(request);
    const price = Number((request.body as { price?: unknown } | undefined)?.price);
    if (id === undefined || !(price >= 0))
      return reply.code(400).send({ error: 'expected { price } for a product id' });
    if (!(await catalogue.setPrice(id, price))) return reply.code(404).send({ error: `no product ${id}` });
    // The database first, then the cache: a read between the two can only find the old value
    // cached, never cache it anew after the delete.
    await cache.delete(`product:${id}`);
    return reply.code(204).send();
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );
  const stats = (): InstanceStats => ({
    name: config.name,
    cache: cache.stats(),
    dbQueries: catalogue.queries,
  });
  app.get('/stats.json', async () => stats());
  await app.listen({ port: config.port, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  return {
    name: config.name,
    url: `http://127.0.0.1:${port}`,
    stats,
    async close() {
      await app.close();
      await cache.close();
      await catalogue.close();
    },
  };
}
