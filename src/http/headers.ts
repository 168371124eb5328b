import type { EntryInfo } from '../entry.js';
import { InvalidOptionError, describe } from '../errors.js';
import {
  formatCacheControl,
  resolveCacheControl,
  type CacheControlOptions,
  type ResolvedCacheControl,
} from './cache-control.js';
import { httpDate, valueTag } from './validators.js';
import { CACHE_CONTROL_OPTION_NAMES } from './cache-control.js';

export interface HttpCacheOptions extends CacheControlOptions {
  /** Whether to send a strong `ETag` computed from the encoded value. @default true */
  etag?: boolean;
  /** How a value is encoded in the response body, which the ETag is computed over. @default JSON */
  encode?: (value: unknown) => string | Uint8Array;
}

/**
 * Caching headers for one response, with lower-case names as Node uses them. A type alias, not an
 * interface, so it is assignable to header maps with an index signature (`res.writeHead(200,
 * headers)`, `OutgoingHttpHeaders`, `Record<string, string | undefined>`).
 */
export type CacheHeaders = {
  'cache-control': string;
  etag?: string;
  'last-modified': string;
};

export const HTTP_CACHE_OPTION_NAMES = CACHE_CONTROL_OPTION_NAMES.with('etag', 'encode');

export interface ResolvedHttpCache {
  cacheControl: ResolvedCacheControl;
  etag: boolean;
  encode: ((value: unknown) => string | Uint8Array) | undefined;
}

export function resolveHttpCache(options: HttpCacheOptions = {}, path = 'http'): ResolvedHttpCache {
  const cacheControl = resolveCacheControl(options, path);
  const { etag = true, encode } = options;
  if (typeof etag !== 'boolean')
    throw new InvalidOptionError(`${path}.etag`, `expected a boolean, got ${describe(etag)}`);
  if (encode !== undefined && typeof encode !== 'function')
    throw new InvalidOptionError(
      `${path}.encode`,
      `expected a function of the value, got ${describe(encode)}`,
    );
  return { cacheControl, etag, encode };
}

export function formatCacheHeaders(entry: EntryInfo, policy: ResolvedHttpCache, now: number): CacheHeaders {
  const headers: CacheHeaders = {
    'cache-control': formatCacheControl(entry, policy.cacheControl, now),
    // RFC 9110 §8.8.2: Last-Modified is when the origin produced this representation.
    'last-modified': httpDate(Math.min(entry.createdAt, now)),
  };
  if (policy.etag) headers.etag = valueTag(entry.value, policy.encode);
  return headers;
}

/**
 * `Cache-Control`, `ETag` and `Last-Modified` for an entry from `getEntry`/`getOrSetEntry`.
 * Pair with {@link isNotModified} to answer conditional requests with 304.
 */
export function cacheHeaders(entry: EntryInfo, options?: HttpCacheOptions, now = Date.now()): CacheHeaders {
  if (typeof options === 'object' && options !== null)
    HTTP_CACHE_OPTION_NAMES.check(options, 'cacheHeaders options');
  return formatCacheHeaders(entry, resolveHttpCache(options), now);
}
