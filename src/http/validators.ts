import { createHash } from 'node:crypto';

/**
 * A strong entity tag (RFC 9110 §8.8.3) for a representation's bytes: a SHA-1 of the body,
 * base64url. Derived from content only, never from the instance or the time, so every instance
 * behind a CDN produces the same tag for the same data and revalidations succeed across them.
 * SHA-1 runs natively at about a gigabyte a second; collisions only need to be unlikely here,
 * not infeasible to forge.
 */
export function entityTag(body: string | Uint8Array): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

const valueTags = new WeakMap<object, string>();

/**
 * The entity tag of a value as `encode` (JSON by default) would send it. Tags of object values
 * are remembered per object, so serving the same L1 entry again hashes nothing; cached values
 * must not be mutated in place anyway (see `valueMode`).
 */
export function valueTag(value: unknown, encode: (value: unknown) => string | Uint8Array = jsonBody): string {
  if (typeof value !== 'object' || value === null) return entityTag(encode(value));
  let tag = valueTags.get(value);
  if (tag === undefined) {
    tag = entityTag(encode(value));
    valueTags.set(value, tag);
  }
  return tag;
}

function jsonBody(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/**
 * An HTTP-date in the preferred IMF-fixdate form (RFC 9110 §5.6.7), e.g.
 * `Sun, 06 Nov 1994 08:49:37 GMT`, for `Last-Modified` (§8.8.2).
 */
export function httpDate(epochMs: number): string {
  return new Date(epochMs).toUTCString();
}

/** Request headers as Node, Fastify and Express expose them: lower-case names. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** The validators of the representation the server would send. */
export interface Validators {
  /** The current entity tag, with quotes (and `W/` if weak). */
  etag?: string | undefined;
  /** When the representation last changed, epoch ms. */
  lastModified?: number | undefined;
}

/**
 * Whether a GET or HEAD request's preconditions let the server answer 304 Not Modified
 * (RFC 9110 §15.4.5), evaluated in the order of §13.2.2:
 * - `If-None-Match` (§13.1.2) is false, so 304, when `*` is listed (a current representation
 *   exists) or when a listed tag matches the current one by weak comparison (§8.8.3.2);
 * - `If-Modified-Since` (§13.1.3) is only evaluated without `If-None-Match`, only for GET and
 *   HEAD, and is ignored when it is not a valid HTTP-date; 304 when the representation has not
 *   changed since that date (compared in whole seconds, the date's resolution).
 * Other methods (and none: `IncomingMessage.method` may be undefined) always get false: for
 * them a failed If-None-Match means 412, which is the
 * handler's business, not a cache's.
 */
export function isNotModified(
  method: string | undefined,
  headers: RequestHeaders,
  validators: Validators,
): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const ifNoneMatch = joined(headers['if-none-match']);
  if (ifNoneMatch !== undefined) {
    const tags = parseTagList(ifNoneMatch);
    if (tags === '*') return true;
    const current = validators.etag === undefined ? undefined : opaque(validators.etag);
    return current !== undefined && tags.some((tag) => tag === current);
  }
  const ifModifiedSince = joined(headers['if-modified-since']);
  if (ifModifiedSince === undefined || validators.lastModified === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  if (Number.isNaN(since)) return false;
  return Math.floor(validators.lastModified / 1000) * 1000 <= since;
}

/** Field lines repeated in a request combine as one comma-separated list (RFC 9110 §5.3). */
function joined(value: string | readonly string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.join(', ');
}

/**
 * The opaque-tags of an `If-None-Match` list (RFC 9110 §8.8.3: `entity-tag = [ "W/" ]
 * DQUOTE *etagc DQUOTE`), weak prefixes dropped since If-None-Match compares weakly; or `*`.
 * A tag may contain commas, so the list is scanned quote by quote rather than split. Members
 * that are not valid entity tags are skipped.
 */
export function parseTagList(field: string): string[] | '*' {
  if (field.trim() === '*') return '*';
  const tags: string[] = [];
  let i = 0;
  while (i < field.length) {
    const open = field.indexOf('"', i);
    if (open === -1) break;
    const close = field.indexOf('"', open + 1);
    if (close === -1) break;
    tags.push(field.slice(open + 1, close));
    i = close + 1;
  }
  return tags;
}

/** The opaque-tag of an entity tag, without `W/` and quotes. */
function opaque(tag: string): string {
  const start = tag.startsWith('W/') ? 2 : 0;
  return tag.slice(start).replace(/^"|"$/g, '');
}

/**
 * The headers a 304 carries (RFC 9110 §15.4.5): those that would have been sent with a 200 among
 * Cache-Control, Content-Location, Date, ETag, Expires and Vary, plus Last-Modified only when
 * there is no ETag. The caller picks them from the full response headers (lower-case names).
 */
export function notModifiedHeaders(
  headers: Readonly<Record<string, string | number | readonly string[] | undefined>>,
): Record<string, string | number | readonly string[]> {
  const kept: Record<string, string | number | readonly string[]> = {};
  for (const name of NOT_MODIFIED_FIELDS) {
    const value = headers[name];
    if (value !== undefined) kept[name] = value;
  }
  if (headers['etag'] === undefined && headers['last-modified'] !== undefined)
    kept['last-modified'] = headers['last-modified'];
  return kept;
}

const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary'] as const;
