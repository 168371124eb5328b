/**
 * Free TCP ports on 127.0.0.1 for the redis-server processes that integration tests start.
 *
 * The kernel picks a port when we bind to port 0; we read it and close the socket so that
 * redis-server can bind it. A port found this way can still be taken by someone else before
 * redis binds it, which is why `startRedis` retries on "Address already in use" when it chose
 * the port itself.
 */
import { createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** Redis Cluster nodes also listen on port + 10000 for the cluster bus. */
export const CLUSTER_BUS_PORT_OFFSET = 10_000;

const MAX_PORT = 65_535;

/** Binds `port` (0 = any) on 127.0.0.1 and returns the port that was bound, then releases it. */
function probe(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    // exclusive: in a node:cluster worker, a non-exclusive listen would share the primary's
    // handle and could report a port that is not really free.
    server.listen({ port, host: LOOPBACK, exclusive: true }, () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') {
          reject(new Error(`Expected a TCP address after binding port ${port}, got ${String(address)}.`));
        } else {
          resolve(address.port);
        }
      });
    });
  });
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
export async function isPortFree(port: number): Promise<boolean> {
  try {
    await probe(port);
    return true;
  } catch {
    return false;
  }
}

/** One port that was free on 127.0.0.1 when this returned. */
export function getFreePort(): Promise<number> {
  return probe(0);
}

/**
 * `count` distinct free ports. Ports are probed one after another, so the kernel could hand the
 * same one out twice; duplicates are skipped rather than trusted.
 */
export async function getFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // Bounded so that an exhausted port range fails loudly instead of spinning.
  for (let attempt = 0; ports.size < count; attempt++) {
    if (attempt > count * 20) {
      throw new Error(`Could not find ${count} distinct free ports on ${LOOPBACK}.`);
    }
    ports.add(await getFreePort());
  }
  return [...ports];
}

/**
 * `count` distinct ports for Redis Cluster nodes: each port and its cluster bus port
 * (port + 10000, which must stay ≤ 65535) are free, and no port collides with another node's
 * bus port.
 */
export async function getFreeClusterPorts(count: number): Promise<number[]> {
  const taken = new Set<number>();
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count; attempt++) {
    if (attempt > count * 50) {
      throw new Error(
        `Could not find ${count} free port pairs (port and port + ${CLUSTER_BUS_PORT_OFFSET}) on ${LOOPBACK}.`,
      );
    }
    const port = await getFreePort();
    const bus = port + CLUSTER_BUS_PORT_OFFSET;
    if (bus > MAX_PORT || taken.has(port) || taken.has(bus)) continue;
    if (!(await isPortFree(bus))) continue;
    taken.add(port);
    taken.add(bus);
    ports.push(port);
  }
  return ports;
}
