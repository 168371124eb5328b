/**
 * The Fastify plugin (`tiercache/fastify`): caches chosen routes' responses in a TierCache, adds
 * Cache-Control/ETag/Last-Modified from each entry's metadata and answers conditional requests
 * with 304. Fastify is an optional peer dependency; this module only uses its types.
 *
 *   await app.register(tierCachePlugin, { cache, sharedMaxAge: 'remaining' });
 *   app.get('/products/:id', { config: { tiercache: { key: (req) => `product:${req.params.id}` } } }, handler);
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface } from 'fastify';
import { InvalidOptionError, describe } from '../errors.js';
import {
  BODY_HEADERS,
  ROUTE_CACHE_OPTION_NAMES,
  RouteCache,
  type Fill,
  type RouteCacheOptions,
} from './route-cache.js';

/** Options Fastify's register() itself reads, which it hands on to the plugin as well. */
const REGISTER_OPTION_NAMES = ['prefix', 'logLevel', 'logSerializers'];
const PLUGIN_OPTION_NAMES = ROUTE_CACHE_OPTION_NAMES.with(...REGISTER_OPTION_NAMES);

/** Plugin options: the cache and defaults for every cached route. */
export type TierCachePluginOptions = Omit<RouteCacheOptions<FastifyRequest>, 'key'>;

/**
 * A route's `config.tiercache`: its key function and any defaults it overrides. Generic over the
 * route's types, so a key function sees typed `params`, `querystring`…:
 *
 *   type ProductRoute = { Params: { id: string } };
 *   const byId: TierCacheRouteConfig<ProductRoute> = { key: (req) => `product:${req.params.id}` };
 *   app.get<ProductRoute>('/products/:id', { config: { tiercache: byId } }, handler);
 *
 * (Fastify's route `config` type cannot see the route's generics, so a key function written inline
 * in `config` gets the untyped request unless its parameter is annotated.)
 */
export type TierCacheRouteConfig<RouteGeneric extends RouteGenericInterface = RouteGenericInterface> =
  Partial<Omit<RouteCacheOptions<FastifyRequest<RouteGeneric>>, 'key'>> &
    Pick<RouteCacheOptions<FastifyRequest<RouteGeneric>>, 'key'>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Cache this route's GET/HEAD responses with tiercache (needs `tierCachePlugin`). */
    tiercache?: TierCacheRouteConfig;
  }
}

/**
 * Registers hooks for the whole application (it is not encapsulated), so it can be registered
 * before or after the routes. It answers in `preHandler`, so hooks that run before it, such as
 * authentication in `onRequest` or an earlier `preHandler`, still guard cached routes.
 */
export function tierCachePlugin(
  fastify: FastifyInstance,
  options: TierCachePluginOptions,
  done: (error?: Error) => void,
): void {
  if (typeof options !== 'object' || options === null || typeof options.cache?.getOrSetEntry !== 'function') {
    done(
      new InvalidOptionError(
        'tierCachePlugin.cache',
        `expected a TierCache, got ${describe(options?.cache)}`,
      ),
    );
    return;
  }
  try {
    PLUGIN_OPTION_NAMES.check(options, 'tierCachePlugin options');
    if ('key' in options)
      throw new InvalidOptionError(
        'tierCachePlugin options.key',
        "a key belongs in each route's config.tiercache",
      );
  } catch (error) {
    done(error as Error);
    return;
  }
  const shared: Record<string, unknown> = { ...options };
  for (const name of REGISTER_OPTION_NAMES) delete shared[name];
  const routes = new WeakMap<TierCacheRouteConfig, RouteCache<FastifyRequest>>();
  const fills = new WeakMap<FastifyRequest, Fill>();
  const routeFor = (request: FastifyRequest, config: TierCacheRouteConfig): RouteCache<FastifyRequest> => {
    let route = routes.get(config);
    if (route === undefined) {
      route = new RouteCache(
        { ...(shared as TierCachePluginOptions), ...config },
        `config.tiercache of ${request.routeOptions.url ?? 'a route'}`,
      );
      routes.set(config, route);
    }
    return route;
  };

  fastify.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    const config = request.routeOptions.config.tiercache;
    if (config === undefined) return;
    const decision = await routeFor(request, config).decide(request, request.method, request.headers);
    if (decision.kind === 'fill') fills.set(request, decision.fill);
    if (decision.kind !== 'serve') return;
    const { status, headers, body } = decision.reply;
    await reply.code(status).headers(headers).send(body);
    return reply;
  });

  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const fill = fills.get(request);
    if (fill === undefined) return payload;
    fills.delete(request);
    // Streams are not buffered into the cache; they pass through, and the key stays uncached.
    const body =
      typeof payload === 'string' || payload instanceof Uint8Array
        ? payload
        : payload == null
          ? ''
          : undefined;
    const answer = await fill.finish(
      body === undefined ? undefined : { status: reply.statusCode, headers: reply.getHeaders(), body },
    );
    if (answer === undefined) return payload;
    if (answer.status === 304) {
      for (const name of BODY_HEADERS) reply.removeHeader(name);
      reply.code(304).headers(answer.headers);
      return null;
    }
    reply.headers(answer.headers);
    return payload;
  });

  // A leader whose response never reached onSend (the client went away, the reply was hijacked)
  // must still release the requests waiting on its key.
  const release = async (request: FastifyRequest): Promise<void> => {
    const fill = fills.get(request);
    if (fill === undefined) return;
    fills.delete(request);
    await fill.finish(undefined);
  };
  fastify.addHook('onResponse', release);
  fastify.addHook('onRequestAbort', release);
  done();
}

// Like fastify-plugin: hooks apply to the whole application, not an encapsulated child context.
Object.assign(tierCachePlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'tiercache',
});

export type { RouteCacheOptions } from './route-cache.js';
