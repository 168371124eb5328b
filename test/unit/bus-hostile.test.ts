/**
 * The bus channel is untrusted input (issue 19): anyone with PUBLISH on it, or a typo, can send
 * anything. Nothing may crash the receiver, flood its error hook, or poison what it believes.
 */
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BusError,
  type BusOptions,
  type CacheError,
  type CacheEvents,
  type TierCache,
} from '../../src/index.js';
import { CacheEmitter } from '../../src/events.js';
import { CacheCounters } from '../../src/metrics/stats.js';
import { InvalidationBus, type BusTarget } from '../../src/sync/bus.js';
import { decodeMessage } from '../../src/sync/message.js';
import { ReportLimiter } from '../../src/sync/report-limiter.js';
import {} from '../helpers/fake-clock.js';
import { busInstances, MemoryBroker } from '../helpers/memory-bus.js';
import { until } from '../helpers/wait-for.js';

const open: TierCache[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((cache) => cache.close()));
});

function cluster(n: number, busOptions: BusOptions = {}) {
  return busInstances(Array<BusOptions>(n).fill({ heartbeat: false, ...busOptions }), {}, open);
}

const settle = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));

describe('the receive path', () => {
  it('survives a message whose handling throws: counted, reported, L1 dropped', () => {
    const broker = new MemoryBroker();
    const transport = broker.transport();
    const calls: string[] = [];
    const target: BusTarget = {
      apply: () => {
        calls.push('apply');
        throw new SyntaxError('boom');
      },
      resync: () => calls.push('resync'),
      disconnected: () => calls.push('disconnected'),
      recovered: () => calls.push('recovered'),
    };
    const errors: CacheError[] = [];
    const bus = new InvalidationBus(
      transport,
      target,
      { disconnectedTtl: 1000, maxQueue: 10, publishTimeout: 1000 },
      new CacheEmitter(),
      (e) => errors.push(e),
      new CacheCounters([]),
    );
    expect(() => broker.inject('{"v":1,"i":"x","q":1,"k":["a"]}')).not.toThrow();
    expect(calls).toEqual(['apply', 'resync']);
    expect(bus.counters.invalid).toBe(1);
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['E_BUS', 'Invalidation bus failed receive: boom'],
    ]);
    void bus.close();
  });

  it('reports a flood of invalid messages once, then one summary per second; counts every one', async () => {
    const { broker, caches, errors } = cluster(1);
    for (let i = 0; i < 10_000; i++) broker.inject(i % 2 === 0 ? 'not json' : '{"v":1}');
    expect(caches[0]!.stats().bus.invalid).toBe(10_000);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain('not JSON');
    await until('the summary', () => errors.length === 2, 5_000);
    expect(errors[1]!.message).toContain('9999 more bad bus messages in the last 1000 ms');
    expect(errors[1]!.message).toContain('no publisher id');
  });

  it('rate-limits with one summary per interval, re-armed by a quiet interval', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const seen: string[] = [];
      const limiter = new ReportLimiter(
        (e) => seen.push(e.message),
        (held, latest) => new BusError('receive', new Error(`${held} more, latest ${latest.message}`)),
      );
      const bad = (n: number) => new BusError('receive', new Error(`bad ${n}`));
      limiter.report(bad(1));
      limiter.report(bad(2));
      limiter.report(bad(3));
      expect(seen).toHaveLength(1);
      vi.advanceTimersByTime(1000);
      expect(seen).toHaveLength(2);
      expect(seen[1]).toContain('2 more, latest Invalidation bus failed receive: bad 3');
      vi.advanceTimersByTime(1000); // quiet: nothing to summarize, and the limit lifts
      expect(seen).toHaveLength(2);
      limiter.report(bad(4));
      expect(seen).toHaveLength(3);
      limiter.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps checking for gaps after a forged message takes a publisher’s id with a huge number', async () => {
    const { broker, caches } = cluster(2);
    const [a, b] = caches;
    await a!.set('x', 1);
    await settle();
    const id = (JSON.parse(broker.log[0]!) as { i: string }).i;
    const gaps: CacheEvents['bus:gap'][] = [];
    b!.on('bus:gap', (e) => gaps.push(e));
    broker.inject(JSON.stringify({ v: 1, i: id, q: Number.MAX_SAFE_INTEGER }));
    expect(gaps).toHaveLength(1);
    // The real publisher's next message goes back: a gap again, and tracking starts over from it.
    await a!.set('x', 2);
    await settle();
    expect(gaps).toHaveLength(2);
    await b!.set('y', 1);
    await settle();
    await a!.set('x', 3);
    await settle();
    expect(gaps).toHaveLength(2);
    // A real loss is noticed again.
    broker.dropMessages = true;
    await a!.set('x', 4);
    await settle();
    broker.dropMessages = false;
    await a!.set('x', 5);
    await settle();
    expect(gaps).toHaveLength(3);
  });
});

describe('forged heartbeats', () => {
  it('with a time from the future do not prove the subscription (issue 19: it would never count as lost)', async () => {
    const { broker, caches, transports } = cluster(1, { heartbeat: 20, heartbeatTimeout: 200 });
    const [a] = caches;
    await until('a heartbeat', () => transports[0]!.published.length > 0);
    const id = (JSON.parse(transports[0]!.published[0]!) as { i: string }).i;
    const lost = new Promise<CacheEvents['bus:disconnect']>((resolve) => a!.on('bus:disconnect', resolve));
    broker.dropMessages = true;
    broker.inject(JSON.stringify({ v: 1, i: id, q: 1, h: 1e15 }));
    expect((await lost).reason).toBe('heartbeat');
  });
});

describe('message size bounds', () => {
  const bytes = (message: string) => Buffer.byteLength(message);

  it('split what a publisher sends: a deleteMany of 25,000 keys goes out as 3 messages, all applied', async () => {
    const { broker, caches } = cluster(2);
    const [a, b] = caches;
    const keys = Array.from({ length: 25_000 }, (_, i) => `key:${i}`);
    await b!.setMany(keys.map((key) => ({ key, value: 1 })));
    await b!.set('other', 1);
    await settle();
    broker.log.length = 0;
    await a!.deleteMany(keys);
    await settle();
    expect(broker.log).toHaveLength(3);
    for (const message of broker.log) expect(bytes(message)).toBeLessThanOrEqual(512 * 1024);
    expect(broker.log.map((m) => (JSON.parse(m) as { q: number }).q)).toEqual([1, 2, 3]);
    expect(b!.stats().memory!.entries).toBe(1);
    expect(b!.stats().bus.gaps).toBe(0);
    expect(b!.stats().bus.oversized).toBe(0);
  });

  it('split by bytes too, and send one "drop everything" for a name too big for any message', async () => {
    const { broker, caches } = cluster(2, { maxMessageBytes: 1024 });
    const [a, b] = caches;
    const keys = Array.from({ length: 100 }, (_, i) => `${'k'.repeat(100)}${i}`);
    await a!.deleteMany(keys);
    await settle();
    expect(broker.log.length).toBeGreaterThan(5);
    for (const message of broker.log) expect(bytes(message)).toBeLessThanOrEqual(1024);
    await b!.set('survivor?', 1);
    await settle();
    broker.log.length = 0;
    await a!.delete('é'.repeat(500));
    await settle();
    expect(broker.log.map((m) => JSON.parse(m) as { c?: number; k?: string[] })).toMatchObject([{ c: 1 }]);
    expect(await b!.get('survivor?')).toBeUndefined();
  });

  it('are not read past on receipt: all of L1 is dropped and counted instead', async () => {
    const { broker, caches, errors } = cluster(1);
    const [a] = caches;
    await a!.set('k', 1);
    broker.inject(JSON.stringify({ v: 1, i: 'x', q: 1, k: ['z'.repeat(600 * 1024)] }));
    expect(a!.stats().memory!.entries).toBe(0);
    expect(a!.stats().bus.oversized).toBe(1);
    expect(errors[0]!.message).toContain('bus.maxMessageBytes is 524288');
    await a!.set('k', 1);
    const names = Array.from({ length: 10_001 }, (_, i) => String(i));
    broker.inject(
      JSON.stringify({
        v: 1,
        i: 'y',
        q: 1,
        k: names.slice(0, 5000),
        t: Object.fromEntries(names.map((n) => [n, 1])),
      }),
    );
    expect(a!.stats().memory!.entries).toBe(0);
    expect(a!.stats().bus.oversized).toBe(2);
  });

  it('match patterns exactly while that is cheap: many patterns, a small L1', async () => {
    const { broker, caches } = cluster(1);
    const [a] = caches;
    await a!.setMany(Array.from({ length: 600 }, (_, i) => ({ key: `e${i}`, value: i })));
    broker.inject(
      JSON.stringify({
        v: 1,
        i: 'x',
        q: 1,
        p: [...Array.from({ length: 2_000 }, (_, i) => `nomatch${i}*`), 'e1*'],
      }),
    );
    expect(a!.stats().memory!.entries).toBe(600 - 111);
  });

  it('drop all of L1 once matching costs more steps than a message may spend (a long pattern against long keys)', async () => {
    // Issue 19 rerun: the old bound counted matches (patterns × entries), but one match of a
    // 200-byte pattern against a 200-byte key backs up 200 times: this took 345 ms.
    const { broker, caches } = cluster(1);
    const [a] = caches;
    const long = 'a'.repeat(200);
    await a!.setMany(Array.from({ length: 5_000 }, (_, i) => ({ key: `${long}${i}`, value: i })));
    const started = performance.now();
    broker.inject(JSON.stringify({ v: 1, i: 'x', q: 1, p: [`*${long}b`] }));
    const took = performance.now() - started;
    expect(a!.stats().memory!.entries).toBe(0);
    expect(took).toBeLessThan(250);
  });

  it('match many namespaces against L1 in one pass (issue 19 rerun: 10,000 names against 5,000 entries took 5.5 s)', async () => {
    const { broker, caches } = cluster(1);
    const [a] = caches;
    const names = Array.from({ length: 10_000 }, (_, i) => `ns${i}`);
    for (const name of ['ns7', 'ns9999', 'other']) await a!.namespace(name).set('k', 1);
    await a!.setMany(Array.from({ length: 5_000 }, (_, i) => ({ key: `plain:v${i}:x`, value: i })));
    const started = performance.now();
    broker.inject(JSON.stringify({ v: 1, i: 'x', q: 1, n: Object.fromEntries(names.map((n) => [n, 5])) }));
    const took = performance.now() - started;
    expect(await a!.namespace('ns7').get('k')).toBeUndefined();
    expect(await a!.namespace('ns9999').get('k')).toBeUndefined();
    expect(await a!.namespace('other').get('k')).toBe(1);
    expect(a!.stats().memory!.entries).toBe(5_001);
    expect(took).toBeLessThan(500);
  });

  it('are options checked at construction', () => {
    expect(() => cluster(1, { maxMessageBytes: 100 })).toThrow(
      'Invalid option "bus.maxMessageBytes": expected an integer of at least 1024, got 100',
    );
    expect(() => cluster(1, { maxMessageNames: 0 })).toThrow('Invalid option "bus.maxMessageNames"');
  });
});

describe('forged fields', () => {
  it('deep nesting is refused before JSON.parse (400 KB of [[[[ took most of a second)', () => {
    expect(decodeMessage(`{"v":1,"i":"x","q":1,"k":${'['.repeat(100_000)}${']'.repeat(100_000)}}`)).toBe(
      'nested deeper than 4 levels',
    );
    expect(typeof decodeMessage('{"v":1,"i":"x","q":1,"k":["[[[[[[[[", "{{{{{{\\""]}')).toBe('object');
  });

  it('a tag time far in the future counts as "invalidated now", not for ever (issue 19: 8.64e15)', async () => {
    const { broker, caches, clock } = cluster(1);
    const [a] = caches;
    await a!.set('old', 1, { tags: ['catalog'] });
    clock.advance(1);
    broker.inject(JSON.stringify({ v: 1, i: 'x', q: 1, t: { catalog: 8.64e15 } }));
    expect(await a!.get('old')).toBeUndefined();
    clock.advance(1);
    await a!.set('new', 2, { tags: ['catalog'] });
    expect(await a!.get('new')).toBe(2);
    // Within the clock-skew allowance a time is taken as it is.
    broker.inject(JSON.stringify({ v: 1, i: 'x', q: 2, t: { catalog: clock.read() + 5_000 } }));
    clock.advance(1);
    await a!.set('soon', 3, { tags: ['catalog'] });
    expect(await a!.get('soon')).toBeUndefined();
  });

  it('a namespace version that is not a non-negative integer makes the message malformed (issue 19: 1e300)', async () => {
    const { broker, caches } = cluster(2);
    const [a, b] = caches;
    for (const version of [1e300, 1.5, -1, 'NaN', null]) {
      broker.inject(`{"v":1,"i":"x","q":1,"n":{"products":${JSON.stringify(version)}}}`);
    }
    expect(b!.stats().bus.invalid).toBe(5);
    await b!.namespace('products').set('p', 1);
    expect(await b!.namespace('products').get('p')).toBe(1);
    await a!.namespace('products').clear();
    await settle();
    expect(await b!.namespace('products').get('p')).toBeUndefined();
  });
});
