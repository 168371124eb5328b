/**
 * The Express middleware (`tiercache/express`): caches a route's responses in a TierCache, adds
 * Cache-Control/ETag/Last-Modified from each entry's metadata and answers conditional requests
 * with 304. Express is an optional peer dependency; this module only uses its types.
 *
 *   app.get('/products/:id', tierCacheMiddleware({ cache, key: (req) => `product:${req.params.id}` }), handler);
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { BODY_HEADERS, RouteCache, type Fill, type Reply, type RouteCacheOptions } from './route-cache.js';

export type TierCacheMiddlewareOptions = RouteCacheOptions<Request>;

/**
 * A middleware for the routes it is mounted on. On a miss it buffers what the handler writes
 * (res.write/res.end, which res.send and res.json use), stores it when cacheable, and sends it
 * with the caching headers; the body is held in memory, so mount it on routes whose responses
 * are of a size worth caching.
 */
export function tierCacheMiddleware(options: TierCacheMiddlewareOptions): RequestHandler {
  const route = new RouteCache(options, 'tierCacheMiddleware');
  return (req: Request, res: Response, next: NextFunction): void => {
    route.decide(req, req.method, req.headers).then((decision) => {
      if (decision.kind === 'serve') send(res, decision.reply);
      else {
        if (decision.kind === 'fill') capture(res, decision.fill);
        next();
      }
    }, next);
  };
}

function send(res: Response, reply: Reply): void {
  res.writeHead(reply.status, reply.headers);
  res.end(reply.body);
}

type Callback = (error?: Error | null) => void;

/** Buffers the handler's response, then lets the fill decide the headers before anything is sent. */
function capture(res: Response, fill: Fill): void {
  const chunks: Buffer[] = [];
  // Bound, so whatever another middleware (compression, say) installed before us comes back.
  const original = { writeHead: res.writeHead.bind(res), write: res.write.bind(res), end: res.end.bind(res) };
  const chunk = (data: unknown, encoding: unknown): void => {
    if (data === undefined || data === null || typeof data === 'function') return;
    chunks.push(
      typeof data === 'string'
        ? Buffer.from(data, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(data as Uint8Array),
    );
  };
  const restore = (): void => {
    Object.assign(res, original);
  };
  res.on('close', () => void fill.finish(undefined));

  res.writeHead = function (this: Response, status: number, ...rest: unknown[]) {
    this.statusCode = status;
    const headers = rest.find((arg) => typeof arg === 'object' && arg !== null);
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2)
        this.setHeader(String(headers[i]), headers[i + 1] as string);
    } else if (headers !== undefined) {
      for (const [name, value] of Object.entries(headers)) this.setHeader(name, value as string);
    }
    return this;
  } as Response['writeHead'];
  res.write = function (data: unknown, encoding?: unknown, callback?: unknown) {
    chunk(data, encoding);
    const done = [encoding, callback].find((f) => typeof f === 'function') as Callback | undefined;
    if (done !== undefined) process.nextTick(done);
    return true;
  } as Response['write'];
  res.end = function (this: Response, data?: unknown, encoding?: unknown, callback?: unknown) {
    chunk(data, encoding);
    restore();
    const done = [data, encoding, callback].find((f) => typeof f === 'function') as Callback | undefined;
    const body = Buffer.concat(chunks);
    const finish = (answer: Reply | undefined): void => {
      if (answer !== undefined && !this.headersSent) {
        if (answer.status === 304) {
          for (const name of BODY_HEADERS) this.removeHeader(name);
          this.statusCode = 304;
        }
        for (const [name, value] of Object.entries(answer.headers)) this.setHeader(name, value);
      }
      if (answer?.status === 304) this.end(done);
      else this.end(body, done);
    };
    fill
      .finish({ status: this.statusCode, headers: this.getHeaders(), body })
      .then(finish, () => finish(undefined));
    return this;
  } as Response['end'];
}
