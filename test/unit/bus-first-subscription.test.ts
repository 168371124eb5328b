/**
 * The first subscription: until it is in place there was nothing to miss (entries filled
 * meanwhile carry the disconnected life cap), so L1 is never dropped for it, even when the first
 * attempt is cut short and only a later one completes.
 */
import { describe, expect, it } from 'vitest';
import { createCache, memoryTier } from '../../src/index.js';
import type { BusTransport } from '../../src/extend.js';
import type { BusLog, LogRead } from '../../src/sync/replay-log.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A transport with a replay log whose reads the test answers. */
class LoggedTransport implements BusTransport {
  readonly channels = ['c'];
  readonly publishChannel = 'c';
  onMessage: ((payload: string | Buffer, channel?: string) => void) | undefined;
  onState: ((subscribed: boolean) => void) | undefined;
  readonly reads: ((read: LogRead) => void)[] = [];
  readonly log: BusLog = {
    publish: () => Promise.resolve(),
    read: () => new Promise<LogRead>((resolve) => this.reads.push(resolve)),
  };

  publish(): Promise<void> {
    return Promise.resolve();
  }
  publishTo(): Promise<void> {
    return Promise.resolve();
  }
  subscribe(
    onMessage: (payload: string | Buffer, channel?: string) => void,
    onState: (subscribed: boolean) => void,
  ): void {
    this.onMessage = onMessage;
    this.onState = onState;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('the first subscription', () => {
  it('an attempt cut short and a later one that cannot vouch for everything drop nothing', async () => {
    const transport = new LoggedTransport();
    const clock = new FakeClock();
    const cache = createCache({
      tiers: [memoryTier({ ttl: '1h' })],
      clock: clock.read,
      bus: { transport, heartbeat: false },
    });
    const reconnects: boolean[] = [];
    cache.on('bus:reconnect', (e) => reconnects.push(e.replayed));
    await cache.set('kept', 1);
    transport.onState!(true); // the first attempt: its log read hangs
    await settle();
    expect(transport.reads).toHaveLength(1);
    // A peer without a log is heard: the next catch-up cannot vouch for what it sent.
    transport.onMessage!('{"v":1,"i":"older-peer","q":1,"k":["other"]}', 'c');
    transport.onState!(false);
    transport.onState!(true);
    await settle();
    expect(transport.reads).toHaveLength(2);
    transport.reads[1]!({ found: false, tail: '1-1' });
    await settle();
    expect(cache.stats().bus.subscribed).toBe(true);
    expect(reconnects).toEqual([]); // a first subscription, not a reconnect
    expect(await cache.get('kept')).toBe(1);
    await cache.close();
  });
});
