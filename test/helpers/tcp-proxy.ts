/**
 * A TCP proxy in front of one server, for faults the server itself cannot show: `blackhole()`
 * stops forwarding in both directions while every socket stays open, so a client sees neither
 * data nor a closed connection (a silent partition, a proxy or NAT that drops traffic); `heal()`
 * forwards what was held, as TCP would deliver it once the partition is over.
 * `blackhole('open')` holds only the connections open now and lets new ones through: a NAT or
 * load balancer that lost one flow's state, where reconnecting is the cure.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { LOOPBACK } from './free-port.js';

export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far (a client's reconnects show here). */
  readonly accepted: number;
  readonly blackholed: boolean;
  /** Holds every byte in both directions, on open and new connections alike ('all'), or on the open ones only. */
  blackhole(scope?: 'all' | 'open'): void;
  /** Forwards what was held, then everything as it comes. */
  heal(): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** A proxy on a kernel-chosen port of 127.0.0.1 that forwards to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  /** Per direction: the socket to write to and what waits for it while blackholed. */
  const held = new Map<Socket, Buffer[]>();
  /** Sockets held by blackhole('open'); every socket while blackholed is true. */
  const stuck = new Set<Socket>();
  let blackholed = false;
  let accepted = 0;

  const forward = (to: Socket, chunk: Buffer): void => {
    if (blackholed || stuck.has(to)) held.get(to)!.push(chunk);
    else if (!to.destroyed) to.write(chunk);
  };
  const track = (socket: Socket, peer: () => Socket): void => {
    sockets.add(socket);
    held.set(socket, []);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      held.delete(socket);
      stuck.delete(socket);
      peer().destroy();
    });
  };

  const server = createServer((client) => {
    accepted++;
    const upstream = createConnection({ host: target.host, port: target.port });
    track(client, () => upstream);
    track(upstream, () => client);
    client.on('data', (chunk: Buffer) => forward(upstream, chunk));
    upstream.on('data', (chunk: Buffer) => forward(client, chunk));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host: LOOPBACK }, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address');

  return {
    host: LOOPBACK,
    port: address.port,
    get accepted() {
      return accepted;
    },
    get blackholed() {
      return blackholed;
    },
    blackhole(scope = 'all') {
      if (scope === 'all') blackholed = true;
      else for (const socket of sockets) stuck.add(socket);
    },
    heal() {
      blackholed = false;
      stuck.clear();
      for (const [to, chunks] of held) {
        for (const chunk of chunks.splice(0)) if (!to.destroyed) to.write(chunk);
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
