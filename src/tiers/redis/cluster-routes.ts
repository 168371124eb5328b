import { keySlot } from '../../internal/key-slot.js';
import type { RedisClusterClient, RedisConnection, RedisPipeline } from './client.js';
import type { ReplicaWait } from './replica-wait.js';

/**
 * How a Redis tier's multi-key commands reach a Cluster. A command's keys must share a slot
 * (CROSSSLOT otherwise), so keys are grouped by slot and the slots by the master serving them:
 * one pipeline per master, the masters in parallel, so a batch still costs one round trip per
 * node. Redirects are followed here too, since the client cannot follow every one (see perNode).
 */
export class ClusterRoutes {
  readonly #cluster: RedisClusterClient;
  /** WAIT after writes (RedisTierOptions.replicas): sent to the master that took the writes. */
  readonly #replicas: ReplicaWait | undefined;

  constructor(cluster: RedisClusterClient, replicas: ReplicaWait | undefined) {
    this.#cluster = cluster;
    this.#replicas = replicas;
  }

  /** The masters, each of which a SCAN must walk: it sees one node's keyspace. */
  masters(): RedisConnection[] {
    return this.#cluster.nodes('master');
  }

  /**
   * The master the client's slot map names for `key`'s slot; before the slot map is known, a
   * name of the slot's own, so it goes alone and the client routes it.
   */
  masterOf(key: string): string {
    return this.#masterOfSlot(keySlot(key));
  }

  #masterOfSlot(slot: number): string {
    return this.#cluster.slots[slot]?.[0] ?? `slot:${slot}`;
  }

  /** Asks the Cluster for its slot map again (whatever the outcome: the next send will tell). */
  refreshSlots(): Promise<void> {
    return new Promise<void>((resolve) => this.#cluster.refreshSlotsCache(() => resolve()));
  }

  /** Positions of `keys` grouped by slot. */
  slotGroups(keys: readonly string[]): number[][] {
    return [...groupBySlot(keys).values()];
  }

  /** `keys` grouped by slot: one script call (or MGET) each. */
  bySlot(keys: readonly string[]): string[][] {
    return this.slotGroups(keys).map((positions) => positions.map((i) => keys[i]!));
  }

  /** UNLINKs keys found on one master: one UNLINK per slot, in one pipeline. */
  async unlink(node: RedisConnection, keys: readonly string[]): Promise<number> {
    const pipeline = node.pipeline();
    for (const positions of groupBySlot(keys).values()) pipeline.unlink(...positions.map((i) => keys[i]!));
    const results = throwFirstError(await pipeline.exec());
    return results.reduce<number>((sum, reply) => sum + (reply as number), 0);
  }

  /**
   * Runs a multi-key operation: keys grouped by slot, slots by the master that serves them, one
   * pipeline per master, all masters in parallel. `queue` adds the commands for one slot's keys
   * and may return a handler for that command's reply.
   */
  async perNode(fullKeys: readonly string[], queue: QueueSlot): Promise<void> {
    const cluster = this.#cluster;
    const byNode = new Map<string, number[][]>();
    for (const [slot, positions] of groupBySlot(fullKeys)) {
      const node = this.#masterOfSlot(slot);
      const groups = byNode.get(node);
      if (groups === undefined) byNode.set(node, [positions]);
      else groups.push(positions);
    }
    const keysOf = (positions: number[]): string[] => positions.map((i) => fullKeys[i]!);
    await Promise.all(
      [...byNode].map(async ([node, groups]) => {
        // A pipeline spanning slots that gets MOVED (the client's slot map is stale after a
        // failover) fails as a whole in ioredis: each command's redirect names its own slot,
        // so it cannot follow them. Such a slot's commands are sent again in a pipeline of their
        // own, which ioredis does redirect (and then refreshes its slot map). A MOVED or ASK
        // command was not run, so sending it again cannot apply it twice.
        const replicas = this.#replicas === undefined ? undefined : { wait: this.#replicas, node };
        const redirected = await runGroups(cluster.pipeline(), groups, keysOf, queue, replicas);
        await Promise.all(
          redirected.map(async (positions) => {
            for (let attempt = 1; ; attempt++) {
              // The client follows no redirect of a pipeline holding WAIT (see RedisStore#exec):
              // it goes where the refreshed slot map says.
              if (replicas !== undefined) await this.refreshSlots();
              const slotNode = replicas && { ...replicas, node: this.masterOf(keysOf(positions)[0]!) };
              const again = await runGroups(cluster.pipeline(), [positions], keysOf, queue, slotNode);
              if (again.error === undefined) return;
              if (replicas === undefined || attempt >= REDIRECTS) throw again.error;
            }
          }),
        );
      }),
    );
  }
}

/** Adds one slot's commands to a pipeline, returning a handler for the reply of the first, if any. */
export type QueueSlot = (
  pipeline: RedisPipeline,
  slotKeys: string[],
  positions: number[],
) => ((reply: unknown) => void) | undefined;

/** How often writes ending in WAIT are sent to a Cluster, following redirects. */
export const REDIRECTS = 3;

/** Redis refused a command because its slot is served (or being moved) elsewhere: it did not run. */
export function isRedirect(error: Error): boolean {
  return /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(error.message);
}

/** The replies of a pipeline, or the first error it holds. */
export function throwFirstError(results: [Error | null, unknown][] | null): unknown[] {
  return (results ?? []).map(([error, reply]) => {
    if (error !== null) throw error;
    return reply;
  });
}

/** Positions of `keys` grouped by cluster slot. */
function groupBySlot(keys: readonly string[]): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  keys.forEach((key, i) => {
    const slot = keySlot(key);
    const positions = groups.get(slot);
    if (positions === undefined) groups.set(slot, [i]);
    else positions.push(i);
  });
  return groups;
}

/**
 * Queues each slot group's commands on `pipeline`, runs it, and hands each group's reply to its
 * handler. Returns the groups whose commands were redirected (with the first such error); any
 * other error is thrown.
 */
async function runGroups(
  pipeline: RedisPipeline,
  groups: readonly number[][],
  keysOf: (positions: number[]) => string[],
  queue: QueueSlot,
  replicas: { readonly wait: ReplicaWait; readonly node: string } | undefined,
): Promise<number[][] & { error?: Error }> {
  const spans = groups.map((positions) => {
    const from = pipeline.length;
    const handler = queue(pipeline, keysOf(positions), positions);
    return { from, to: pipeline.length, handler, positions };
  });
  // WAIT has no key: the pipeline goes to the master of its writes, and the WAIT after them.
  const waited = replicas?.wait.append(pipeline, replicas.node) ?? false;
  const results = (await pipeline.exec()) ?? [];
  const acknowledged = waited ? results.pop() : undefined;
  const redirected: number[][] & { error?: Error } = [];
  for (const { from, to, handler, positions } of spans) {
    const failed = results.slice(from, to).find(([error]) => error !== null)?.[0];
    if (failed) {
      if (!isRedirect(failed)) throw failed;
      redirected.error ??= failed;
      redirected.push(positions);
      continue;
    }
    // A handler covers one command; commands without handlers (SETs) only need no error.
    handler?.(results[from]?.[1]);
  }
  // Only what this node ran needs its replicas' acknowledgement.
  if (replicas !== undefined && redirected.length < spans.length) {
    if (acknowledged !== undefined && acknowledged[0] !== null) throw acknowledged[0];
    replicas.wait.check(replicas.node, waited, acknowledged?.[1]);
  }
  return redirected;
}
