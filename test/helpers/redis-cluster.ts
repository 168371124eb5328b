/**
 * A real Redis Cluster of redis-server processes, created with `redis-cli --cluster create`.
 *
 * The node timeout is 1 s instead of 15 s so a killed master is failed over in a few seconds,
 * and roles are always read live from the servers: after a failover or a restart the process
 * that was started as a master may well be a replica.
 */
import { execFile } from 'node:child_process';
import { Cluster, type ClusterOptions } from 'ioredis';
import { getFreeClusterPorts } from './free-port.js';
import {
  noop,
  parseInfo,
  registerGroup,
  RedisStartError,
  startRedis,
  type RedisProcess,
} from './redis-server.js';
import { done, notYet, waitFor, type Probe } from './wait-for.js';

export interface StartClusterOptions {
  /** @default 3 (redis-cli refuses fewer) */
  readonly masters?: number;
  /** @default 1 */
  readonly replicasPerMaster?: number;
  /** Extra config for every node. */
  readonly args?: readonly string[];
  /** `cluster-node-timeout`: how long a node may be unreachable before it is failed over. @default 1000 */
  readonly nodeTimeoutMs?: number;
  /** Deadline for creating the cluster and for it to settle. @default 30_000 */
  readonly timeoutMs?: number;
}

export interface FailoverOptions {
  /** @default 15_000 */
  readonly timeoutMs?: number;
  /**
   * How the master fails: `'kill'` (SIGKILL: its connections close at once) or `'pause'`
   * (SIGSTOP: its connections stay open and unanswered, as for a hung host or a partition;
   * `resume()` it later to see it rejoin as a replica).
   * @default 'kill'
   */
  readonly how?: 'kill' | 'pause';
}

export interface RedisClusterHandle {
  /** Every node, in start order; roles change, so ask `masters()`/`replicas()` for them. */
  readonly nodes: readonly RedisProcess[];
  readonly startupNodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** Running nodes that currently report the master role (paused and stopped nodes are skipped). */
  masters(): Promise<RedisProcess[]>;
  /** Running nodes that currently report the replica role. */
  replicas(): Promise<RedisProcess[]>;
  /** Running replicas currently attached to `master`. */
  replicasOf(master: RedisProcess): Promise<RedisProcess[]>;
  /** The node that currently serves the slot of `key`, per CLUSTER KEYSLOT and CLUSTER SLOTS. */
  masterFor(key: string): Promise<RedisProcess>;
  /**
   * A new ioredis Cluster client on all nodes, closed by `stop()`. A no-op `error` listener is
   * attached because chaos tests make nodes fail on purpose.
   */
  client(options?: ClusterOptions): Cluster;
  /**
   * SIGKILLs (or SIGSTOPs, `how: 'pause'`) `master` and resolves with the replica that took over
   * once every running node reports `cluster_state:ok` and no longer routes a slot to it.
   */
  failover(master: RedisProcess, options?: FailoverOptions): Promise<RedisProcess>;
  /** Waits until every running node agrees the cluster is whole (after a restart, say). */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const SLOT_COUNT = 16_384;
const NODE_START_ATTEMPTS = 5;

type SlotRange = [
  start: number,
  end: number,
  master: [host: string, port: number, ...rest: unknown[]],
  ...replicas: unknown[],
];

function run(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`));
      } else {
        resolve(stdout);
      }
    });
  });
}

/** `ROLE` reply: ['master', offset, replicas] or ['slave', masterHost, masterPort, state, offset]. */
async function roleOf(
  node: RedisProcess,
): Promise<{ role: string; masterPort?: number; linkState?: string }> {
  const reply = (await node.cli('ROLE')) as unknown[];
  const role = String(reply[0]);
  if (role !== 'slave') return { role };
  return { role, masterPort: Number(reply[2]), linkState: String(reply[3]) };
}

async function startNode(
  port: number,
  label: string,
  args: readonly string[],
  usedPorts: Set<number>,
): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedis({
        port,
        label,
        args: [...args, '--cluster-config-file', `nodes-${port}.conf`],
      });
    } catch (error) {
      // The ports were free when chosen; another test file may have bound one since.
      if (!(error instanceof RedisStartError && error.portInUse) || attempt >= NODE_START_ATTEMPTS) {
        throw error;
      }
      let next: number | undefined;
      while (next === undefined || usedPorts.has(next)) [next] = await getFreeClusterPorts(1);
      usedPorts.add(next);
      port = next;
    }
  }
}

/**
 * Starts `masters × (1 + replicasPerMaster)` nodes, joins them with `redis-cli --cluster create`,
 * and resolves once every node reports the cluster ok, every slot served and every replica attached.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisClusterHandle> {
  const masterCount = options.masters ?? 3;
  const replicasPerMaster = options.replicasPerMaster ?? 1;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const total = masterCount * (1 + replicasPerMaster);
  if (masterCount < 3) {
    throw new TypeError(
      `startCluster: options.masters must be at least 3 (redis-cli refuses fewer), got ${masterCount}.`,
    );
  }

  // prettier-ignore
  const nodeArgs = [
    '--cluster-enabled', 'yes',
    '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1_000),
    // A replica whose link looks stale refuses to take over by default; a test that kills a
    // master right after pausing a replica still wants a failover, so always allow it.
    '--cluster-replica-validity-factor', '0',
    ...(options.args ?? []),
  ];
  const ports = await getFreeClusterPorts(total);
  const usedPorts = new Set(ports);
  const started = await Promise.allSettled(
    // The nodes file path is relative, so it lands in each node's own --dir.
    ports.map((port, index) => startNode(port, `cluster-node-${index + 1}`, nodeArgs, usedPorts)),
  );
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    throw failed.reason;
  }

  const handle = new RedisCluster(nodes, masterCount);
  try {
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((node) => `${node.host}:${node.port}`),
        '--cluster-replicas',
        String(replicasPerMaster),
        // Answers the "Can I set the above configuration?" prompt.
        '--cluster-yes',
      ],
      timeoutMs,
    );
    await handle.waitUntilHealthy(timeoutMs);
  } catch (error) {
    await handle.stop();
    throw error;
  }
  return handle;
}

class RedisCluster implements RedisClusterHandle {
  readonly nodes: readonly RedisProcess[];
  readonly startupNodes: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly #masterCount: number;
  readonly #clients = new Set<Cluster>();
  readonly #unregister: () => void;

  constructor(nodes: readonly RedisProcess[], masterCount: number) {
    this.nodes = nodes;
    this.startupNodes = nodes.map((node) => ({ host: node.host, port: node.port }));
    this.#masterCount = masterCount;
    this.#unregister = registerGroup(this);
  }

  #running(): RedisProcess[] {
    return this.nodes.filter((node) => node.state === 'running');
  }

  #byPort(port: number): RedisProcess | undefined {
    return this.nodes.find((node) => node.port === port);
  }

  async #withRole(wanted: string): Promise<RedisProcess[]> {
    const running = this.#running();
    const roles = await Promise.all(running.map(roleOf));
    return running.filter((_node, index) => roles[index]?.role === wanted);
  }

  masters(): Promise<RedisProcess[]> {
    return this.#withRole('master');
  }

  replicas(): Promise<RedisProcess[]> {
    return this.#withRole('slave');
  }

  async replicasOf(master: RedisProcess): Promise<RedisProcess[]> {
    const running = this.#running();
    const roles = await Promise.all(running.map(roleOf));
    return running.filter((_node, index) => roles[index]?.masterPort === master.port);
  }

  async masterFor(key: string): Promise<RedisProcess> {
    const [node] = await this.masters();
    if (node === undefined) throw new Error('No running master to ask which node serves a key.');
    const slot = Number(await node.cli('CLUSTER', 'KEYSLOT', key));
    const ranges = (await node.cli('CLUSTER', 'SLOTS')) as SlotRange[];
    const range = ranges.find(([start, end]) => start <= slot && slot <= end);
    if (range === undefined) {
      throw new Error(`No node serves slot ${slot} (key ${JSON.stringify(key)}) according to ${node.label}.`);
    }
    const owner = this.#byPort(Number(range[2][1]));
    if (owner === undefined) {
      throw new Error(
        `Slot ${slot} is served by ${range[2][0]}:${range[2][1]}, which is not a node of this cluster.`,
      );
    }
    return owner;
  }

  client(options: ClusterOptions = {}): Cluster {
    const client = new Cluster([...this.startupNodes], options);
    client.on('error', noop);
    this.#clients.add(client);
    return client;
  }

  async failover(master: RedisProcess, options: FailoverOptions = {}): Promise<RedisProcess> {
    const candidates = await this.replicasOf(master);
    if (candidates.length === 0) throw new Error(`${master.label} has no running replica to fail over to.`);
    if (options.how === 'pause') await master.pause();
    else await master.kill();
    const promoted = await waitFor(
      async () => {
        const roles = await Promise.all(candidates.map(roleOf));
        const winner = candidates.find((_node, index) => roles[index]?.role === 'master');
        return winner === undefined ? notYet(`no replica of ${master.label} promoted yet`) : done(winner);
      },
      { description: `a replica of ${master.label} to be promoted`, timeoutMs: options.timeoutMs ?? 15_000 },
    );
    await this.waitUntilHealthy(options.timeoutMs ?? 15_000);
    return promoted;
  }

  /**
   * Healthy means, on every running node: cluster_state:ok, all slots ok, every node known and
   * none in handshake, and no slot routed to a node that is not running; plus the expected number
   * of running masters, and every running replica's link to its master up (ROLE says connected).
   * Dead masters are not waited for, so a failed-over cluster is healthy without a restart.
   */
  async waitUntilHealthy(timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.#health(), {
      description: 'the cluster to be healthy',
      timeoutMs,
      intervalMs: 100,
    });
  }

  async #health(): Promise<Probe<undefined>> {
    const running = this.#running();
    const runningPorts = new Set(running.map((node) => node.port));
    for (const node of running) {
      const info = parseInfo(String(await node.cli('CLUSTER', 'INFO')));
      for (const [field, wanted] of [
        ['cluster_state', 'ok'],
        ['cluster_slots_ok', String(SLOT_COUNT)],
        ['cluster_known_nodes', String(this.nodes.length)],
      ] as const) {
        if (info.get(field) !== wanted) {
          return notYet(`${node.label}: ${field}:${info.get(field)}, want ${wanted}`);
        }
      }
      const ranges = (await node.cli('CLUSTER', 'SLOTS')) as SlotRange[];
      const stale = ranges.find((range) => !runningPorts.has(Number(range[2][1])));
      if (stale) {
        return notYet(`${node.label} routes slots ${stale[0]}-${stale[1]} to stopped port ${stale[2][1]}`);
      }
      const joining = String(await node.cli('CLUSTER', 'NODES'))
        .split('\n')
        .find((line) => line.includes('handshake'));
      if (joining !== undefined) return notYet(`${node.label} is still in handshake: ${joining}`);
    }
    const roles = await Promise.all(running.map(roleOf));
    const masters = roles.filter((role) => role.role === 'master').length;
    if (masters !== this.#masterCount) return notYet(`${masters} running masters, want ${this.#masterCount}`);
    const detached = running.find(
      (_node, index) => roles[index]?.role === 'slave' && roles[index].linkState !== 'connected',
    );
    if (detached) return notYet(`${detached.label} is not yet connected to its master`);
    return done(undefined);
  }

  async stop(): Promise<void> {
    this.#unregister();
    for (const client of this.#clients) client.disconnect();
    this.#clients.clear();
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}
