import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  cacheControl,
  cacheHeaders,
  entityTag,
  hasErrorCode,
  httpDate,
  isNotModified,
  notModifiedHeaders,
  valueTag,
  type CacheControlOptions,
  type EntryInfo,
} from '../../src/index.js';

const NOW = 1_700_000_000_000;

function entry(fresh: number, extra: Partial<EntryInfo> = {}): EntryInfo {
  return { value: { id: 1 }, createdAt: NOW - 10_000, expiresAt: NOW + fresh, tier: 'memory', ...extra };
}

describe('Cache-Control from entry metadata', () => {
  const cases: [string, EntryInfo, CacheControlOptions, string][] = [
    ['public with the remaining fresh time by default', entry(90_000), {}, 'public, max-age=90'],
    ['rounds the remaining time down to whole seconds', entry(90_999), {}, 'public, max-age=90'],
    ['an expired copy is max-age=0', entry(-5_000), {}, 'public, max-age=0'],
    ['forever is capped at a year', entry(Infinity), {}, 'public, max-age=31536000'],
    ['private for per-user responses', entry(30_000), { scope: 'private' }, 'private, max-age=30'],
    ['a fixed max-age below the remaining time', entry(90_000), { maxAge: '10s' }, 'public, max-age=10'],
    ['a fixed max-age never exceeds the remaining time', entry(5_000), { maxAge: '1m' }, 'public, max-age=5'],
    [
      's-maxage for shared caches, browsers revalidating',
      entry(90_000),
      { maxAge: 0, sharedMaxAge: 'remaining' },
      'public, max-age=0, s-maxage=90',
    ],
    [
      'no s-maxage on private responses',
      entry(90_000),
      { scope: 'private', sharedMaxAge: 'remaining' },
      'private, max-age=90',
    ],
    [
      'stale-while-revalidate and stale-if-error from the grace period',
      entry(60_000, { staleUntil: NOW + 360_000 }),
      {},
      'public, max-age=60, stale-while-revalidate=300, stale-if-error=300',
    ],
    [
      'grace left when the copy is already stale',
      entry(-60_000, { staleUntil: NOW + 30_000 }),
      {},
      'public, max-age=0, stale-while-revalidate=30, stale-if-error=30',
    ],
    ['no grace, no stale directives', entry(60_000), {}, 'public, max-age=60'],
    [
      'fixed stale directives',
      entry(60_000),
      { staleWhileRevalidate: '30s', staleIfError: '1d' },
      'public, max-age=60, stale-while-revalidate=30, stale-if-error=86400',
    ],
    [
      'stale directives turned off',
      entry(60_000, { staleUntil: NOW + 360_000 }),
      { staleWhileRevalidate: false, staleIfError: false },
      'public, max-age=60',
    ],
    [
      'no-store wins over everything',
      entry(60_000),
      { noStore: true, sharedMaxAge: 'remaining' },
      'no-store',
    ],
  ];
  it.each(cases)('%s', (_title, input, options, expected) => {
    expect(cacheControl(input, options, NOW)).toBe(expected);
  });

  const bad: [string, unknown, string][] = [
    ['scope', { scope: 'shared' }, 'cacheControl.scope'],
    ['maxAge', { maxAge: '10 parsecs' }, 'cacheControl.maxAge'],
    ['maxAge negative', { maxAge: -1 }, 'cacheControl.maxAge'],
    ['sharedMaxAge', { sharedMaxAge: 'grace' }, 'cacheControl.sharedMaxAge'],
    ['staleIfError', { staleIfError: true }, 'cacheControl.staleIfError'],
    ['noStore', { noStore: 'yes' }, 'cacheControl.noStore'],
  ];
  it.each(bad)('rejects a bad %s naming the option', (_title, options, option) => {
    let caught: unknown;
    try {
      cacheControl(entry(1000), options as CacheControlOptions, NOW);
    } catch (error) {
      caught = error;
    }
    expect(hasErrorCode(caught, 'E_INVALID_OPTION')).toBe(true);
    expect((caught as { option: string }).option).toBe(option);
  });
});

describe('validators', () => {
  it('a strong ETag depends on the bytes only', () => {
    expect(entityTag('{"id":1}')).toMatch(/^"[A-Za-z0-9_-]{27}"$/);
    expect(entityTag('{"id":1}')).toBe(entityTag(Buffer.from('{"id":1}')));
    expect(entityTag('{"id":1}')).not.toBe(entityTag('{"id":2}'));
  });

  it('a value tag is the tag of its JSON body, or of the custom encoding', () => {
    expect(valueTag({ id: 1 })).toBe(entityTag('{"id":1}'));
    expect(valueTag('x')).toBe(entityTag('"x"'));
    expect(valueTag({ id: 1 }, () => 'other')).toBe(entityTag('other'));
  });

  it('Last-Modified is an IMF-fixdate', () => {
    expect(httpDate(Date.UTC(1994, 10, 6, 8, 49, 37))).toBe('Sun, 06 Nov 1994 08:49:37 GMT');
  });

  it('cacheHeaders puts the three together', () => {
    const info = entry(60_000);
    expect(cacheHeaders(info, {}, NOW)).toEqual({
      'cache-control': 'public, max-age=60',
      etag: entityTag('{"id":1}'),
      'last-modified': httpDate(info.createdAt),
    });
    expect(cacheHeaders(info, { etag: false }, NOW).etag).toBeUndefined();
  });
});

describe('conditional requests', () => {
  const etag = '"abc,1"';
  const lastModified = Date.UTC(2024, 0, 1, 12, 0, 0, 500);
  const lm = httpDate(lastModified);
  const before = httpDate(lastModified - 1000);
  const after = httpDate(lastModified + 60_000);
  const cases: [string, string, Record<string, string | string[]>, boolean][] = [
    ['no precondition', 'GET', {}, false],
    ['matching ETag', 'GET', { 'if-none-match': etag }, true],
    ['matching ETag on HEAD', 'HEAD', { 'if-none-match': etag }, true],
    [
      'matching ETag in a list (a tag may hold commas)',
      'GET',
      { 'if-none-match': '"x", "abc,1" , "y"' },
      true,
    ],
    ['a list split over two field lines', 'GET', { 'if-none-match': ['"x"', '"abc,1"'] }, true],
    ['weak comparison: W/ tag matches the strong one', 'GET', { 'if-none-match': 'W/"abc,1"' }, true],
    ['other ETags', 'GET', { 'if-none-match': '"abc", "abc,2"' }, false],
    ['* matches any current representation', 'GET', { 'if-none-match': '*' }, true],
    ['unquoted garbage matches nothing', 'GET', { 'if-none-match': 'abc,1' }, false],
    ['not modified since a later date', 'GET', { 'if-modified-since': after }, true],
    ['not modified since the same second', 'GET', { 'if-modified-since': lm }, true],
    ['modified since an earlier date', 'GET', { 'if-modified-since': before }, false],
    ['an invalid date is ignored', 'GET', { 'if-modified-since': 'yesterday-ish' }, false],
    [
      'If-Modified-Since is ignored when If-None-Match is present',
      'GET',
      { 'if-none-match': '"other"', 'if-modified-since': after },
      false,
    ],
    ['only GET and HEAD: POST', 'POST', { 'if-none-match': etag }, false],
    ['only GET and HEAD: PUT with a date', 'PUT', { 'if-modified-since': after }, false],
  ];
  it.each(cases)('%s', (_title, method, headers, expected) => {
    expect(isNotModified(method, headers, { etag, lastModified })).toBe(expected);
  });

  it('takes IncomingMessage.method as typed (string | undefined): no method is never a 304', () => {
    const request: Pick<IncomingMessage, 'method'> = {};
    expect(isNotModified(request.method, { 'if-none-match': '*' }, { etag })).toBe(false);
  });

  it('without an ETag, If-None-Match only matches *', () => {
    expect(isNotModified('GET', { 'if-none-match': '"abc"' }, { lastModified })).toBe(false);
    expect(isNotModified('GET', { 'if-none-match': '*' }, {})).toBe(true);
  });

  it('a 304 keeps the caching headers and drops the representation metadata', () => {
    const full = {
      'cache-control': 'public, max-age=5',
      etag,
      'last-modified': lm,
      'content-type': 'application/json',
      'content-length': 12,
      vary: 'accept',
    };
    expect(notModifiedHeaders(full)).toEqual({ 'cache-control': 'public, max-age=5', etag, vary: 'accept' });
    const { etag: _dropped, ...withoutTag } = full;
    expect(notModifiedHeaders(withoutTag)).toMatchObject({ 'last-modified': lm });
  });
});
