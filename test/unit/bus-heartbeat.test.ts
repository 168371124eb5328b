import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  InvalidOptionError,
  type BusOptions,
  type CacheError,
  type CacheEvents,
  type TierCache,
} from '../../src/index.js';
import { resolveBus } from '../../src/sync/bus-options.js';
import { Heartbeat } from '../../src/sync/heartbeat.js';
import { decodeMessage, encodeHeartbeat } from '../../src/sync/message.js';
import {} from '../helpers/fake-clock.js';
import { busInstances, MemoryBroker, type MemoryTransport } from '../helpers/memory-bus.js';
import { until } from '../helpers/wait-for.js';

const open: TierCache[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((cache) => cache.close()));
});

/** Instances on one in-process broker with fast heartbeats; the cache clock is fake (L1 caps). */
function cluster(busOptions: BusOptions[]) {
  return busInstances(
    busOptions.map((options) => ({ heartbeat: 20, heartbeatTimeout: 400, ...options })),
    {},
    open,
  );
}

interface Sent {
  i: string;
  q: number;
  h?: number;
}

/** What `transport` published, decoded. */
const sent = (transport: MemoryTransport): Sent[] =>
  transport.published.map((raw) => JSON.parse(raw) as Sent);
const heartbeats = (transport: MemoryTransport): Sent[] => sent(transport).filter((m) => m.h !== undefined);

describe('heartbeat messages', () => {
  it('are empty version-1 messages: a reader that ignores "h" sees an ordinary empty invalidation', () => {
    const raw = encodeHeartbeat('p1', 8, 1234.5);
    expect(raw).toBe('{"v":1,"i":"p1","q":8,"h":1234.5}');
    const decoded = decodeMessage(raw);
    if (typeof decoded === 'string') throw new Error(decoded);
    expect(decoded).toMatchObject({ publisher: 'p1', sequence: 8, heartbeat: 1234.5 });
    expect(decoded.inv.keys.size + decoded.inv.patterns.size + decoded.inv.tags.size).toBe(0);
    expect(decoded.inv.all).toBe(false);
    expect(decodeMessage('{"v":1,"i":"p1","q":8,"h":"x"}')).toBe('heartbeat ("h") is not a number');
  });

  it('take the publisher’s next sequence number, so invalidations and heartbeats form one gapless sequence', async () => {
    const { caches, transports } = cluster([{}, {}]);
    const [a, b] = caches;
    await until('a few heartbeats', () => heartbeats(transports[0]!).length >= 2);
    await a!.set('k', 1);
    await until('more heartbeats', () => heartbeats(transports[0]!).length >= 4);
    const sequence = sent(transports[0]!).map((m) => m.q);
    expect(sequence).toEqual(sequence.map((_, i) => i + 1));
    expect(new Set(sent(transports[0]!).map((m) => m.i)).size).toBe(1);
    expect(b!.stats().bus.gaps).toBe(0);
    // Heartbeats are not invalidation messages in the stats.
    expect(b!.stats().bus.messagesIn).toBe(1);
    expect(a!.stats().bus.messagesOut).toBe(1);
  });

  it('let a receiver notice a lost invalidation in a quiet period, at the publisher’s next heartbeat', async () => {
    const { broker, caches, transports } = cluster([{}, {}]);
    const [a, b] = caches;
    const gaps: CacheEvents['bus:gap'][] = [];
    b!.on('bus:gap', (e) => gaps.push(e));
    await until('b subscribed', () => b!.stats().bus.subscribed);
    await until('b to hear a', () => heartbeats(transports[0]!).length > 0);
    await b!.set('cached', 1);
    broker.dropMessages = true;
    await a!.set('lost', 1);
    broker.dropMessages = false;
    await until('b to detect the gap', () => gaps.length > 0);
    expect(gaps[0]!.publisher).toBe(sent(transports[0]!)[0]!.i);
    expect(await b!.get('cached')).toBeUndefined();
  });
});

describe('the heartbeat watching the subscription', () => {
  it('treats a subscriber that hears nothing as disconnected, then resyncs once it hears again', async () => {
    const { caches, transports, clock } = cluster([{}, { disconnectedTtl: '1s' }]);
    const [, b] = caches;
    const events: string[] = [];
    b!.on('bus:disconnect', (e) => events.push(`disconnect:${e.reason}`));
    b!.on('bus:reconnect', () => events.push('reconnect'));
    await until('b subscribed', () => b!.stats().bus.subscribed);
    await b!.set('old', 1);
    transports[1]!.deaf = true;
    await until('b to miss its heartbeat', () => !b!.stats().bus.subscribed);
    expect(events.at(-1)).toBe('disconnect:heartbeat');
    // L1 lives are capped from the moment the heartbeat was missed, as after a lost connection.
    await b!.set('during', 2);
    clock.advance(1_001);
    expect(await b!.get('old')).toBeUndefined();
    expect(await b!.get('during')).toBeUndefined();
    await b!.set('again', 3);
    transports[1]!.deaf = false;
    await until('b to hear its heartbeat again', () => b!.stats().bus.subscribed);
    expect(events.at(-1)).toBe('reconnect');
    expect(await b!.get('again')).toBeUndefined();
  });

  it('asks for a new subscriber connection once per outage, and not at all while heartbeats cannot be published', async () => {
    const { broker, caches, transports } = cluster([{}]);
    const [a] = caches;
    const events: string[] = [];
    a!.on('bus:disconnect', (e) => events.push(`disconnect:${e.reason}`));
    a!.on('bus:reconnect', () => events.push('reconnect'));
    await until('a subscribed', () => a!.stats().bus.subscribed);
    // Deaf on the new connection too: one reconnect, one resync, then it stays disconnected.
    transports[0]!.deaf = true;
    await until('a second silence', () => events.length >= 3);
    // Measured in its own heartbeats (every 20 ms), which go out while it cannot hear them.
    const sentThen = heartbeats(transports[0]!).length;
    await until('three more heartbeat timeouts', () => heartbeats(transports[0]!).length >= sentThen + 65);
    expect(transports[0]!.reconnects).toBe(1);
    expect(events).toEqual(['disconnect:heartbeat', 'reconnect', 'disconnect:heartbeat']);
    // Heard again: the next outage may reconnect once more.
    transports[0]!.deaf = false;
    await until('a to hear its heartbeat', () => a!.stats().bus.subscribed);
    transports[0]!.deaf = true;
    await until('the second reconnect', () => transports[0]!.reconnects === 2);
    transports[0]!.deaf = false;
    await until('a subscribed again', () => a!.stats().bus.subscribed);
    // Heartbeats that cannot go out say nothing about the subscriber connection.
    broker.failPublishes = new Error('down');
    await until('a to give up on its subscription', () => !a!.stats().bus.subscribed);
    const failedThen = a!.stats().bus.heartbeatErrors;
    await until('two more heartbeat timeouts', () => a!.stats().bus.heartbeatErrors >= failedThen + 45);
    expect(transports[0]!.reconnects).toBe(2);
  });

  it('reports one outage per heartbeat failure streak, counts every failure and queues nothing', async () => {
    const { broker, caches, errors } = cluster([{}]);
    const [a] = caches;
    const reasons: string[] = [];
    a!.on('bus:disconnect', (e) => reasons.push(e.reason));
    await until('a subscribed', () => a!.stats().bus.subscribed);
    broker.failPublishes = new Error('down');
    await until('several failures', () => a!.stats().bus.heartbeatErrors >= 6);
    const heartbeatErrors = () =>
      errors.filter(
        (e) => e.code === 'E_BUS' && (e as CacheError & { operation: string }).operation === 'heartbeat',
      );
    expect(heartbeatErrors()).toHaveLength(1);
    expect(a!.stats().bus.queued).toBe(0);
    expect(a!.stats().bus.publishErrors).toBe(0);
    // A heartbeat that cannot be published cannot be heard back either.
    await until('a to give up on its subscription', () => !a!.stats().bus.subscribed);
    expect(reasons).toContain('heartbeat');
    expect(reasons).not.toContain('connection');
    broker.failPublishes = undefined;
    await until('a to recover', () => a!.stats().bus.subscribed);
    broker.failPublishes = new Error('down again');
    await until('the second outage reported', () => heartbeatErrors().length === 2);
  });

  it('leaves connection outages to the connection: one disconnect, reason connection', async () => {
    const { caches, transports } = cluster([{}]);
    const [a] = caches;
    const events: string[] = [];
    a!.on('bus:disconnect', (e) => events.push(`disconnect:${e.reason}`));
    a!.on('bus:reconnect', () => events.push('reconnect'));
    await until('a subscribed', () => a!.stats().bus.subscribed);
    transports[0]!.disconnect();
    expect(a!.stats().bus.heartbeatErrors).toBe(0);
    // Long enough for a heartbeat timeout to pass: it must not add a second outage. Heartbeats
    // go out whatever the subscriber's state: 45 of them span two timeouts.
    const sentThen = heartbeats(transports[0]!).length;
    await until('two heartbeat timeouts', () => heartbeats(transports[0]!).length >= sentThen + 45);
    transports[0]!.connect();
    expect(events).toEqual(['disconnect:connection', 'reconnect']);
    expect(a!.stats().bus.subscribed).toBe(true);
  });

  it('is off with heartbeat: false (nothing published, only the connection counts) and stops on close()', async () => {
    const { caches, transports } = cluster([{ heartbeat: false }, {}, {}]);
    const [quiet, beating] = caches;
    transports[0]!.deaf = true;
    await until('several heartbeats of the other', () => heartbeats(transports[1]!).length >= 12);
    expect(transports[0]!.published).toEqual([]);
    expect(quiet!.stats().bus.subscribed).toBe(true);
    await beating!.close();
    const after = transports[1]!.published.length;
    // The third instance's heartbeats tell the time: several intervals pass, and nothing more
    // comes from the closed one.
    const third = heartbeats(transports[2]!).length;
    await until('several intervals', () => heartbeats(transports[2]!).length >= third + 6);
    expect(transports[1]!.published.length).toBe(after);
  });
});

describe('heartbeat options', () => {
  const transport = new MemoryBroker().transport();
  const resolve = (options: BusOptions) => resolveBus({ transport, ...options }, [])?.heartbeat;

  it('default to a 1 s interval and a timeout of three intervals', () => {
    expect(resolve({})).toEqual({ interval: 1_000, timeout: 3_000 });
    expect(resolve({ heartbeat: '100ms' })).toEqual({ interval: 100, timeout: 300 });
    expect(resolve({ heartbeat: '100ms', heartbeatTimeout: '250ms' })).toEqual({
      interval: 100,
      timeout: 250,
    });
    expect(resolve({ heartbeat: false })).toBeUndefined();
  });

  it.each<[BusOptions, string]>([
    [{ heartbeat: 0 }, 'bus.heartbeat'],
    [{ heartbeat: 'often' as never }, 'bus.heartbeat'],
    [{ heartbeat: 'forever' }, 'bus.heartbeat'],
    [{ heartbeat: true as never }, 'bus.heartbeat'],
    [{ heartbeat: '1s', heartbeatTimeout: '1s' }, 'bus.heartbeatTimeout'],
    [{ heartbeatTimeout: '500ms' }, 'bus.heartbeatTimeout'],
    [{ heartbeatTimeout: -1 }, 'bus.heartbeatTimeout'],
    [{ heartbeatTimeout: 'forever' }, 'bus.heartbeatTimeout'],
    [{ heartbeat: false, heartbeatTimeout: 'soon' as never }, 'bus.heartbeatTimeout'],
  ])('reject %j naming %s', (options, name) => {
    let thrown: unknown;
    try {
      resolve(options);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidOptionError);
    expect((thrown as InvalidOptionError).option).toBe(name);
  });
});

describe('the silence check', () => {
  it('reads a heartbeat that came back while the event loop stalled before calling the subscription silent', async () => {
    // A real socket carries the heartbeat back, so it is read as a subscriber's reply would be:
    // in the poll phase, after the timers of the same turn.
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const accepted = once(server, 'connection');
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const [socket] = (await accepted) as [Socket];
    if (client.connecting) await once(client, 'connect');
    let silences = 0;
    // Long enough for the kernel to deliver the heartbeat within the stall even on a loaded
    // machine: at 100 ms, with both cores busy, it once arrived after the stall had ended.
    const timeout = 300;
    const heartbeat = new Heartbeat(
      [{ publisher: 'p', send: () => ({ result: Promise.resolve(), settled: Promise.resolve() }) }],
      { interval: 60_000, timeout },
      { silent: () => silences++, heard: () => {}, failed: () => {} },
    );
    try {
      const watched = performance.now();
      heartbeat.watch();
      // Stalled for 1.3 timeouts; a heartbeat sent 0.6 timeouts in comes back during the stall.
      // Read, it proves the subscription until 1.6 timeouts: nothing was missed.
      while (performance.now() < watched + 0.6 * timeout);
      const sentAt = performance.now();
      const heard = new Promise<void>((resolve) =>
        socket.once('data', () => {
          heartbeat.hear('p', sentAt);
          resolve();
        }),
      );
      client.write('heartbeat');
      while (performance.now() < watched + 1.3 * timeout);
      await heard;
      await new Promise((resolve) => setImmediate(resolve));
      expect(silences).toBe(0);
      // Nothing heard after it: silent once its proof runs out.
      await until('the subscription to go silent', () => silences === 1);
    } finally {
      heartbeat.close();
      client.destroy();
      socket.destroy();
      server.close();
    }
  });
});
