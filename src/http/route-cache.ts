import type { TierCache } from '../cache.js';
import type { EntryInfo } from '../entry.js';
import { InvalidOptionError, describe } from '../errors.js';
import { optionNames } from '../internal/option-names.js';
import type { GetOrSetOptions } from '../options.js';
import {
  formatCacheHeaders,
  resolveHttpCache,
  type HttpCacheOptions,
  type ResolvedHttpCache,
} from './headers.js';
import { CACHE_CONTROL_OPTION_NAMES } from './cache-control.js';
import { entityTag, isNotModified, notModifiedHeaders, type RequestHeaders } from './validators.js';

/**
 * A response as a route cache stores it, in every tier (so it must survive JSON): status,
 * headers, body (UTF-8 text, or base64 for binary), and the strong ETag of the body, computed
 * once when the response is stored instead of on every hit.
 */
export interface CachedResponse {
  s: number;
  h: Record<string, string | string[]>;
  b: string;
  /** Set when `b` holds base64. */
  e?: 'base64';
  t: string;
}

/** Options shared by the Fastify plugin and the Express middleware. */
export interface RouteCacheOptions<Request> extends Omit<HttpCacheOptions, 'encode'> {
  /** The cache responses are stored in. */
  cache: TierCache;
  /**
   * The cache key of a request's response, or undefined to not cache this request. Include
   * everything the response varies on (path parameters, query, language…).
   */
  // Method syntax on purpose: a key function written for a narrower request type (a Fastify
  // request with typed route params, an Express request with typed params) is accepted.
  key(this: void, request: Request): string | undefined;
  /** Life of stored responses (one duration, or by tier name). @default the tiers' TTLs */
  ttl?: GetOrSetOptions['ttl'];
  /** Response statuses that are stored; others pass through uncached. @default [200] */
  statuses?: readonly number[];
  /**
   * A response header naming the tier that answered (`memory`, `redis`… or `origin` when the
   * handler ran), like a CDN's `X-Cache`. @default not sent
   */
  tierHeader?: string;
}

/**
 * The names of {@link RouteCacheOptions}: the Cache-Control names, `etag`, and the route's own
 * (listed against the type, so the list cannot drift from it).
 */
export const ROUTE_CACHE_OPTION_NAMES = CACHE_CONTROL_OPTION_NAMES.with(
  'etag',
  ...optionNames<Omit<RouteCacheOptions<unknown>, keyof HttpCacheOptions>>({
    cache: true,
    key: true,
    ttl: true,
    statuses: true,
    tierHeader: true,
  }).names,
);

/** A response the framework adapter captured from the route handler. */
export interface CapturedResponse {
  status: number;
  headers: Readonly<Record<string, string | number | readonly string[] | undefined>>;
  body: string | Uint8Array;
}

/** What the adapter sends: a stored response (from any tier) or the headers to add to its own. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[]>;
  /** Undefined for a 304, which has no body. */
  body: string | Buffer | undefined;
}

/** The request is the leader of its key: run the handler, then hand its response to `finish`. */
export interface Fill {
  /**
   * Stores the response (when cacheable; pass undefined when there is none) and resolves with
   * the status and headers to send, or undefined to send the handler's response unchanged.
   * Only the first call counts.
   */
  finish(response: CapturedResponse | undefined): Promise<Reply | undefined>;
}

/** What to do with a request. */
export type Decision = { kind: 'bypass' } | { kind: 'serve'; reply: Reply } | { kind: 'fill'; fill: Fill };

/** Stands for "the leader's response was not cacheable"; never stored (the loader skips it). */
const UNCACHEABLE = Object.freeze({ uncacheable: true });

/**
 * Headers that describe one transfer or one user rather than the representation (RFC 9110 §7.6.1
 * hop-by-hop fields, and RFC 9111 §3.1's advice not to store them), plus the caching headers
 * this module computes per response. They are never stored.
 */
const UNSTORED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'date',
  'age',
  'cache-control',
  'etag',
  'last-modified',
  'expires',
  'content-length',
]);

/**
 * The framework-independent half of the Fastify plugin and the Express middleware: decides per
 * request whether to serve a stored response, run the handler as the key's one loader (others
 * asking for the key meanwhile wait for it, through the cache's single flight), or stay out of
 * the way; and turns stored responses and entry metadata into headers and 304s.
 */
export class RouteCache<Request> {
  readonly #cache: TierCache;
  readonly #key: (request: Request) => string | undefined;
  readonly #write: GetOrSetOptions | undefined;
  readonly #statuses: ReadonlySet<number>;
  readonly #http: ResolvedHttpCache;
  readonly #tierHeader: string | undefined;

  constructor(options: RouteCacheOptions<Request>, path: string) {
    if (typeof options !== 'object' || options === null)
      throw new InvalidOptionError(path, `expected an options object, got ${describe(options)}`);
    ROUTE_CACHE_OPTION_NAMES.check(options, path);
    const { cache, key, ttl, statuses = [200], tierHeader } = options;
    if (typeof cache !== 'object' || cache === null || typeof cache.getOrSetEntry !== 'function')
      throw new InvalidOptionError(
        `${path}.cache`,
        `expected a TierCache from createCache(), got ${describe(cache)}`,
      );
    if (typeof key !== 'function')
      throw new InvalidOptionError(`${path}.key`, `expected a function of the request, got ${describe(key)}`);
    if (!Array.isArray(statuses) || !statuses.every((s) => Number.isInteger(s) && s >= 100 && s <= 599))
      throw new InvalidOptionError(
        `${path}.statuses`,
        `expected an array of HTTP statuses, got ${describe(statuses)}`,
      );
    if (
      tierHeader !== undefined &&
      (typeof tierHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(tierHeader))
    )
      throw new InvalidOptionError(
        `${path}.tierHeader`,
        `expected a header name, got ${describe(tierHeader)}`,
      );
    this.#cache = cache;
    this.#key = key;
    // grace 0: a stale copy served under grace would start a background refresh, and a
    // response can only be refreshed by a request running the handler. Stale responses are the
    // CDN's business: Cache-Control carries stale-while-revalidate from the entry's grace.
    this.#write = ttl === undefined ? { grace: 0 } : { ttl, grace: 0 };
    this.#statuses = new Set(statuses);
    this.#http = resolveHttpCache(options, path);
    this.#tierHeader = tierHeader?.toLowerCase();
  }

  async decide(request: Request, method: string, headers: RequestHeaders): Promise<Decision> {
    // RFC 9111 §2: only responses to GET (and HEAD, answered from them) are cached here.
    if (method !== 'GET' && method !== 'HEAD') return { kind: 'bypass' };
    const key = this.#key(request);
    if (key === undefined) return { kind: 'bypass' };
    // A HEAD response has no body to store (frameworks drop it), so HEAD never fills a key:
    // it is answered from a stored GET response, or by the handler.
    if (method === 'HEAD') return this.#head(key, headers);
    let captured!: (response: CachedResponse | typeof UNCACHEABLE) => void;
    const response = new Promise<CachedResponse | typeof UNCACHEABLE>((resolve) => (captured = resolve));
    let leader!: () => void;
    const elected = new Promise<'leader'>((resolve) => (leader = () => resolve('leader')));
    const entry = this.#cache.getOrSetEntry<CachedResponse | typeof UNCACHEABLE>(
      key,
      async (context) => {
        leader();
        const result = await response;
        if (result === UNCACHEABLE) context.skipCache();
        return result;
      },
      this.#write,
    );
    let first: EntryInfo<CachedResponse | typeof UNCACHEABLE> | 'leader';
    try {
      first = await Promise.race([entry, elected]);
    } catch {
      // The cache failed this key (a tier fault under tierErrors:'throw', or the leader's
      // request went away): answer from the handler, uncached.
      return { kind: 'bypass' };
    }
    if (first === 'leader') return { kind: 'fill', fill: this.#fill(entry, captured, method, headers) };
    // Not the leader: should the cache still call this request's loader later (a background
    // refresh), it must get an answer rather than wait for a handler that will never run.
    captured(UNCACHEABLE);
    // The leader's response was not cacheable (an error status, say): run the handler too.
    if (first.value === UNCACHEABLE) return { kind: 'bypass' };
    return { kind: 'serve', reply: this.#reply(first as EntryInfo<CachedResponse>, method, headers) };
  }

  async #head(key: string, headers: RequestHeaders): Promise<Decision> {
    let info: EntryInfo<CachedResponse | typeof UNCACHEABLE> | undefined;
    try {
      info = await this.#cache.getEntry<CachedResponse | typeof UNCACHEABLE>(key);
    } catch {
      return { kind: 'bypass' };
    }
    if (info === undefined || info.value === UNCACHEABLE) return { kind: 'bypass' };
    return { kind: 'serve', reply: this.#reply(info as EntryInfo<CachedResponse>, 'HEAD', headers) };
  }

  #fill(
    entry: Promise<EntryInfo<CachedResponse | typeof UNCACHEABLE>>,
    captured: (response: CachedResponse | typeof UNCACHEABLE) => void,
    method: string,
    headers: RequestHeaders,
  ): Fill {
    let done: Promise<Reply | undefined> | undefined;
    return {
      finish: (response) => {
        if (done !== undefined) return done;
        const stored = response === undefined ? undefined : this.#store(response);
        captured(stored ?? UNCACHEABLE);
        done = entry.then(
          (info) => {
            if (stored === undefined || info.value === UNCACHEABLE) return undefined;
            // The cache answered with another copy than this response (a stale one under a
            // soft timeout or fail-safe): describe the body being sent, as fresh for no time.
            if ((info.value as CachedResponse).t !== stored.t) {
              const now = Date.now();
              return this.#reply(
                { value: stored, createdAt: now, expiresAt: now, tier: 'origin' },
                method,
                headers,
              );
            }
            return this.#reply(info as EntryInfo<CachedResponse>, method, headers);
          },
          () => undefined,
        );
        return done;
      },
    };
  }

  /** The stored form of a handler's response, or undefined when it must not be stored. */
  #store(response: CapturedResponse): CachedResponse | undefined {
    if (!this.#statuses.has(response.status)) return undefined;
    const h: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value === undefined) continue;
      const lower = name.toLowerCase();
      // A response that sets a cookie is for one user; one the handler marked uncacheable stays so.
      if (lower === 'set-cookie') return undefined;
      if (lower === 'cache-control' && /\b(no-store|private)\b/i.test(String(value))) return undefined;
      if (UNSTORED.has(lower) || lower === this.#tierHeader) continue;
      h[lower] = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : [...value];
    }
    const text = asText(response.body);
    const stored: CachedResponse = {
      s: response.status,
      h,
      b: text ?? Buffer.from(response.body as Uint8Array).toString('base64'),
      t: entityTag(response.body),
    };
    if (text === undefined) stored.e = 'base64';
    return stored;
  }

  /** The full response for a stored entry: caching headers from its metadata, or a 304. */
  #reply(info: EntryInfo<CachedResponse>, method: string, request: RequestHeaders): Reply {
    const stored = info.value;
    const caching = formatCacheHeaders(info, this.#http, Date.now());
    const headers: Record<string, string | string[]> = { ...stored.h, ...caching };
    if (this.#http.etag) headers['etag'] = stored.t;
    else delete headers['etag'];
    if (this.#tierHeader !== undefined) headers[this.#tierHeader] = info.tier;
    if (
      isNotModified(method, request, {
        etag: headers['etag'] as string | undefined,
        lastModified: info.createdAt,
      })
    ) {
      const kept = notModifiedHeaders(headers) as Record<string, string | string[]>;
      if (this.#tierHeader !== undefined) kept[this.#tierHeader] = info.tier;
      return { status: 304, headers: kept, body: undefined };
    }
    const body = stored.e === 'base64' ? Buffer.from(stored.b, 'base64') : stored.b;
    return { status: stored.s, headers, body };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as text when it is valid UTF-8 (JSON, HTML…), so it is stored as is, not as base64. */
function asText(body: string | Uint8Array): string | undefined {
  if (typeof body === 'string') return body;
  try {
    return utf8.decode(body);
  } catch {
    return undefined;
  }
}

/** Headers that describe a body, which a 304 must not carry (RFC 9110 §15.4.5). */
export const BODY_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'transfer-encoding',
] as const;
