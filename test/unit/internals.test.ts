import { describe, expect, it } from 'vitest';
import { FillGuard } from '../../src/loading/fill-guard.js';
import { parseDuration } from '../../src/internal/duration.js';
import { stableStringify } from '../../src/internal/stable-key.js';
import { jsonSerializer } from '../../src/serializers/json.js';
import { msgpackSerializer } from '../../src/serializers/msgpack.js';
import { fromWire, toWire } from '../../src/tiers/envelope.js';

describe('parseDuration', () => {
  it.each([
    [1500, 1500],
    ['250ms', 250],
    ['10s', 10_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['forever', Number.POSITIVE_INFINITY],
  ])('reads %s as %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([0, -5, Number.POSITIVE_INFINITY, '5 weeks', '', null, {}])(
    'explains why %s is not a duration',
    (input) => {
      expect(typeof parseDuration(input)).toBe('string');
    },
  );
});

describe('stableStringify', () => {
  it('ignores object key order at every depth', () => {
    expect(stableStringify([{ b: 1, a: { d: 2, c: 3 } }])).toBe(
      stableStringify([{ a: { c: 3, d: 2 }, b: 1 }]),
    );
  });

  it('keeps apart values plain JSON would conflate', () => {
    const forms = [undefined, null, '1', 1, 1n, new Date(1), [1], new Set([1]), new Map([[1, 1]])].map((v) =>
      stableStringify([v]),
    );
    expect(new Set(forms).size).toBe(forms.length);
  });

  it('refuses circular arguments and functions with a message', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(() => stableStringify([circular])).toThrow(/circular/);
    expect(() => stableStringify([() => 1])).toThrow(/function/);
  });
});

describe.each([
  ['json', jsonSerializer()],
  ['msgpack', msgpackSerializer()],
])('%s serializer', (_, serializer) => {
  const roundTrip = (value: unknown) => serializer.decode(Buffer.from(serializer.encode(value) as string));

  it('keeps Dates as Dates, nested anywhere', () => {
    const value = { at: new Date(1_700_000_000_000), list: [new Date(0)], s: 'x' };
    const back = roundTrip(value) as typeof value;
    expect(back.at).toBeInstanceOf(Date);
    expect(back).toEqual(value);
  });

  it('round-trips plain JSON data unchanged', () => {
    const value = { a: [1, 'two', null, true, { b: -0.5 }], s: '~starts with tilde', u: 'ü→😀' };
    expect(roundTrip(value)).toEqual(value);
  });
});

describe('json serializer', () => {
  it("never takes a user's object for a Date, nor changes keys that look like its markers", () => {
    const serializer = jsonSerializer();
    const roundTrip = (value: unknown) => serializer.decode(serializer.encode(value) as string);
    const lookalikes = {
      fake: { '$tc:date': 5 },
      deeper: [{ '$tc:$tc:date': 'x', '$tc:other': 1, plain: true }],
    };
    expect(roundTrip(lookalikes)).toEqual(lookalikes);
    const withDate = { ...lookalikes, real: new Date(7) };
    const back = roundTrip(withDate) as typeof withDate;
    expect(back).toEqual(withDate);
    expect(back.fake).not.toBeInstanceOf(Date);
    expect(back.real).toBeInstanceOf(Date);
    // Plain data without such keys stays plain JSON on the wire.
    expect(serializer.encode({ a: 1 })).toBe('{"a":1}');
  });

  it('throws for values JSON cannot hold', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    expect(() => jsonSerializer().encode({ f: () => 1 })).toThrow(/function/);
    expect(() => jsonSerializer().encode(circular)).toThrow(/circular/);
  });
});

describe('wire envelope', () => {
  it('round-trips entries, including undefined values and forever', () => {
    for (const entry of [
      { value: { a: 1 }, createdAt: 1, expiresAt: 2 },
      { value: undefined, createdAt: 1, expiresAt: Number.POSITIVE_INFINITY },
    ]) {
      expect(fromWire(JSON.parse(JSON.stringify(toWire(entry))))).toEqual(entry);
    }
  });

  it.each([null, 'text', 42, [], { v: 1 }, { c: 1, e: 2 }, { c: '1', e: 2, v: 1 }])(
    'names the problem with %j',
    (raw) => {
      expect(typeof fromWire(raw)).toBe('string');
    },
  );
});

describe('FillGuard', () => {
  it('makes a ticket stale when its key is invalidated, and only its key', () => {
    const guard = new FillGuard();
    const a = guard.begin('a');
    const b = guard.begin('b');
    guard.invalidate('a');
    expect(guard.isCurrent(a)).toBe(false);
    expect(guard.isCurrent(b)).toBe(true);
    guard.invalidateAll();
    expect(guard.isCurrent(b)).toBe(false);
  });

  it('forgets a key once its last reader ends', () => {
    const guard = new FillGuard();
    const first = guard.begin('k');
    const second = guard.begin('k');
    guard.end(first);
    expect(guard.tracked).toBe(1);
    guard.end(second);
    expect(guard.tracked).toBe(0);
  });

  it('tracks no detached ticket, and ending one leaves the tracked readers of its key alone', () => {
    const guard = new FillGuard();
    const tracked = guard.begin('k');
    const detached = guard.detached('k');
    expect(guard.tracked).toBe(1);
    guard.end(detached);
    expect(guard.tracked).toBe(1);
    guard.invalidate('k');
    expect(guard.isCurrent(tracked)).toBe(false);
    guard.end(tracked);
    expect(guard.tracked).toBe(0);
  });
});
