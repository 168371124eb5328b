/**
 * A master, one replica and a set of Redis Sentinels watching them, all real processes.
 *
 * Timeouts are cut to the bone (down after 1 s, failover timeout 3 s) so a failover test takes
 * seconds. Sentinels rewrite their config file at run time, so each one gets its own file in
 * its own writable dir.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { noop, parseInfo, registerGroup, startRedis, type RedisProcess } from './redis-server.js';
import { done, notYet, waitFor, type Probe } from './wait-for.js';

export interface StartSentinelOptions {
  /** @default 3 */
  readonly sentinels?: number;
  /** @default 'mymaster' */
  readonly masterName?: string;
  /** Sentinels that must agree the master is down. @default a majority of `sentinels` */
  readonly quorum?: number;
  /** Deadline for the setup to settle. @default 20_000 */
  readonly timeoutMs?: number;
}

export interface SentinelFailoverOptions {
  /** @default 20_000 */
  readonly timeoutMs?: number;
}

export interface RedisSentinelHandle {
  readonly masterName: string;
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly sentinelProcesses: readonly RedisProcess[];
  /** The data node the sentinels report as master; `failover()` swaps it with `replica`. */
  readonly master: RedisProcess;
  readonly replica: RedisProcess;
  /**
   * A new ioredis client that finds the master through the sentinels, closed by `stop()`.
   * Reconnects every 100 ms and has a no-op `error` listener, as `RedisProcess.client` does.
   */
  client(options?: RedisOptions): Redis;
  /** The master address the sentinels agree on right now (every running sentinel asked). */
  masterAddress(): Promise<{ host: string; port: number }>;
  /**
   * SIGKILLs the current master and resolves with the new one once every running sentinel
   * reports it and it answers ROLE as master.
   */
  failover(options?: SentinelFailoverOptions): Promise<RedisProcess>;
  stop(): Promise<void>;
}

/** SENTINEL MASTER and SENTINEL REPLICAS reply with flat [field, value, field, value, ...] arrays. */
function fields(reply: unknown): Map<string, string> {
  const list = reply as string[];
  const map = new Map<string, string>();
  for (let index = 0; index + 1 < list.length; index += 2)
    map.set(String(list[index]), String(list[index + 1]));
  return map;
}

/**
 * Starts the master, then the replica (waiting for its link to be up, so the sentinels' first
 * INFO already lists it rather than ten seconds later), then the sentinels; resolves once every
 * sentinel knows the master, the replica and all the other sentinels.
 */
export async function startSentinel(options: StartSentinelOptions = {}): Promise<RedisSentinelHandle> {
  const count = options.sentinels ?? 3;
  const masterName = options.masterName ?? 'mymaster';
  const quorum = options.quorum ?? Math.floor(count / 2) + 1;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const started: RedisProcess[] = [];
  try {
    const master = await startRedis({ label: 'sentinel-master' });
    started.push(master);
    const replica = await startRedis({
      label: 'sentinel-replica',
      args: ['--replicaof', master.host, String(master.port)],
    });
    started.push(replica);
    await waitFor(
      async () => {
        const status = parseInfo(String(await replica.cli('INFO', 'replication'))).get('master_link_status');
        return status === 'up' ? done(undefined) : notYet(`master_link_status:${status}`);
      },
      { description: `${replica.label} to sync with ${master.label}`, timeoutMs },
    );

    const config = [
      // Only IPs are used here; with resolution off sentinel never tries DNS on them.
      'sentinel resolve-hostnames no',
      `sentinel monitor ${masterName} ${master.host} ${master.port} ${quorum}`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 3000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n');
    const sentinels = await Promise.all(
      Array.from({ length: count }, (_unused, index) =>
        startRedis({ label: `sentinel-${index + 1}`, config, args: ['--sentinel'] }),
      ),
    );
    started.push(...sentinels);

    const handle = new RedisSentinel(masterName, master, replica, sentinels);
    await waitFor(() => handle.settled(), {
      description: `every sentinel to see ${masterName}, its replica and its peers`,
      timeoutMs,
      intervalMs: 100,
    });
    return handle;
  } catch (error) {
    await Promise.allSettled(started.reverse().map((node) => node.stop()));
    throw error;
  }
}

class RedisSentinel implements RedisSentinelHandle {
  readonly masterName: string;
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly sentinelProcesses: readonly RedisProcess[];
  #master: RedisProcess;
  #replica: RedisProcess;
  readonly #clients = new Set<Redis>();
  readonly #unregister: () => void;

  constructor(
    masterName: string,
    master: RedisProcess,
    replica: RedisProcess,
    sentinels: readonly RedisProcess[],
  ) {
    this.masterName = masterName;
    this.#master = master;
    this.#replica = replica;
    this.sentinelProcesses = sentinels;
    this.sentinels = sentinels.map((sentinel) => ({ host: sentinel.host, port: sentinel.port }));
    this.#unregister = registerGroup(this);
  }

  get master(): RedisProcess {
    return this.#master;
  }

  get replica(): RedisProcess {
    return this.#replica;
  }

  #runningSentinels(): RedisProcess[] {
    return this.sentinelProcesses.filter((sentinel) => sentinel.state === 'running');
  }

  /** Probe: every sentinel sees the master up, the replica up and all its peers. */
  async settled(): Promise<Probe<undefined>> {
    const peers = String(this.sentinelProcesses.length - 1);
    for (const sentinel of this.#runningSentinels()) {
      const master = fields(await sentinel.cli('SENTINEL', 'MASTER', this.masterName));
      for (const [field, wanted] of [
        ['port', String(this.#master.port)],
        ['flags', 'master'],
        ['num-slaves', '1'],
        ['num-other-sentinels', peers],
      ] as const) {
        if (master.get(field) !== wanted) {
          return notYet(`${sentinel.label}: ${field} ${master.get(field)}, want ${wanted}`);
        }
      }
      const replicas = (await sentinel.cli('SENTINEL', 'REPLICAS', this.masterName)) as unknown[];
      const replica = fields(replicas[0]);
      // Without the replica's own INFO the sentinel would not pick it in a failover.
      if (replica.get('flags') !== 'slave' || replica.get('master-link-status') !== 'ok') {
        return notYet(
          `${sentinel.label}: replica flags ${replica.get('flags')}, link ${replica.get('master-link-status')}`,
        );
      }
    }
    return done(undefined);
  }

  client(options: RedisOptions = {}): Redis {
    const client = new Redis({
      sentinels: this.sentinels.map((sentinel) => ({ ...sentinel })),
      name: this.masterName,
      retryStrategy: () => 100,
      sentinelRetryStrategy: () => 100,
      ...options,
    });
    client.on('error', noop);
    this.#clients.add(client);
    return client;
  }

  async masterAddress(): Promise<{ host: string; port: number }> {
    const answers = await Promise.all(
      this.#runningSentinels().map(async (sentinel) => {
        const reply = (await sentinel.cli('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName)) as
          [string, string] | null;
        return reply === null ? 'none' : `${reply[0]}:${reply[1]}`;
      }),
    );
    const distinct = new Set(answers);
    const [only] = distinct;
    if (distinct.size !== 1 || only === undefined || only === 'none') {
      throw new Error(`Sentinels disagree on the master of ${this.masterName}: ${answers.join(', ')}`);
    }
    const colon = only.lastIndexOf(':');
    return { host: only.slice(0, colon), port: Number(only.slice(colon + 1)) };
  }

  async failover(options: SentinelFailoverOptions = {}): Promise<RedisProcess> {
    const { port } = await this.masterAddress();
    const [oldMaster, newMaster] =
      port === this.#master.port ? [this.#master, this.#replica] : [this.#replica, this.#master];
    await oldMaster.kill();
    await waitFor(
      async () => {
        const address = await this.masterAddress();
        if (address.port !== newMaster.port) return notYet(`sentinels still report port ${address.port}`);
        const [role] = (await newMaster.cli('ROLE')) as [string];
        return role === 'master' ? done(undefined) : notYet(`${newMaster.label} reports role ${role}`);
      },
      {
        description: `the sentinels to promote ${newMaster.label}`,
        timeoutMs: options.timeoutMs ?? 20_000,
        intervalMs: 100,
      },
    );
    this.#master = newMaster;
    this.#replica = oldMaster;
    return newMaster;
  }

  async stop(): Promise<void> {
    this.#unregister();
    for (const client of this.#clients) client.disconnect();
    this.#clients.clear();
    // Sentinels first, so they do not start a failover while the data nodes go down.
    await Promise.all(this.sentinelProcesses.map((sentinel) => sentinel.stop()));
    await Promise.all([this.#master.stop(), this.#replica.stop()]);
  }
}
