import {
  createCache,
  memoryTier,
  type BusOptions,
  type CacheError,
  type CacheOptions,
  type TierCache,
} from '../../src/index.js';
import { type BusTransport } from '../../src/extend.js';
import { FakeClock } from './fake-clock.js';

/**
 * An in-process broker for unit tests of the bus: every transport it hands out publishes to all
 * of them (its own included, as Redis does). Tests can drop, fail or corrupt traffic and switch a
 * subscriber's connection off and on, without a server or timers.
 */
export class MemoryBroker {
  readonly transports: MemoryTransport[] = [];
  /** Every payload published, in order. */
  readonly log: string[] = [];
  /** When set, publishes reject with this error. */
  failPublishes: Error | undefined;
  /** When true, publishes succeed but reach nobody (lost messages). */
  dropMessages = false;

  transport(): MemoryTransport {
    const transport = new MemoryTransport(this);
    this.transports.push(transport);
    return transport;
  }

  /** Delivers a raw payload to every subscriber, as a foreign publisher would. */
  inject(payload: string): void {
    for (const t of this.transports) t.deliver(payload);
  }
}

export class MemoryTransport implements BusTransport {
  #onMessage: ((payload: string) => void) | undefined;
  #onState: ((subscribed: boolean) => void) | undefined;
  #connected = false;
  closed = false;

  constructor(private readonly broker: MemoryBroker) {}

  /** What this transport published, in order. */
  readonly published: string[] = [];

  publish(message: string): Promise<void> {
    if (this.broker.failPublishes) return Promise.reject(this.broker.failPublishes);
    this.broker.log.push(message);
    this.published.push(message);
    if (!this.broker.dropMessages) queueMicrotask(() => this.broker.inject(message));
    return Promise.resolve();
  }

  subscribe(onMessage: (payload: string) => void, onState: (subscribed: boolean) => void): void {
    this.#onMessage = onMessage;
    this.#onState = onState;
    this.connect();
  }

  /** When true, nothing reaches this subscriber while it stays connected (a silent partition). */
  deaf = false;

  deliver(payload: string): void {
    if (this.#connected && !this.closed && !this.deaf) this.#onMessage?.(payload);
  }

  /** The subscriber connection drops. */
  disconnect(): void {
    this.#connected = false;
    this.#onState?.(false);
  }

  /** The subscriber is subscribed (again). */
  connect(): void {
    this.#connected = true;
    this.#onState?.(true);
  }

  /** Times the bus asked for a new subscriber connection. */
  reconnects = 0;

  /** A new connection: dropped and subscribed again at once; a deaf one stays deaf. */
  reconnect(): void {
    this.reconnects++;
    this.disconnect();
    queueMicrotask(() => {
      if (!this.closed) this.connect();
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/**
 * Caches with a 1 h L1 on one in-process broker, one per entry of `buses` (each its bus
 * options), on one fake clock, their errors collected. `open`, when given, receives each cache
 * for the test file to close.
 */
export function busInstances(
  buses: readonly BusOptions[],
  options: CacheOptions = {},
  open?: TierCache[],
): {
  broker: MemoryBroker;
  clock: FakeClock;
  caches: TierCache[];
  transports: MemoryTransport[];
  errors: CacheError[];
} {
  const broker = new MemoryBroker();
  const clock = new FakeClock();
  const errors: CacheError[] = [];
  const transports: MemoryTransport[] = [];
  const caches = buses.map((bus) => {
    const transport = broker.transport();
    transports.push(transport);
    const cache = createCache({
      tiers: [memoryTier({ ttl: '1h' })],
      clock: clock.read,
      bus: { transport, ...bus },
      onError: (e) => errors.push(e),
      ...options,
    });
    open?.push(cache);
    return cache;
  });
  return { broker, clock, caches, transports, errors };
}
