import type { RedisClient } from './redis/client.js';
import { guardSocketErrors } from '../internal/socket-errors.js';

/**
 * What a client's connection last failed with, so that a command's bare rejection ("Reached the
 * max retries per request limit", a timeout) can say why: an untrusted certificate, a server name
 * the certificate does not cover, a plaintext client on a TLS port.
 */
export interface ConnectionErrors {
  /** The connection error since the client was last ready, if any. */
  last(): Error | undefined;
  /** Stops listening (a client the tier was given outlives it). */
  dispose(): void;
}

/** Listens to `client`'s connection errors, and keeps its sockets' errors handled (socket-errors.ts). */
export function watchConnectionErrors(client: RedisClient): ConnectionErrors {
  let last: Error | undefined;
  const onError = (error: unknown): void => {
    if (error instanceof Error) last = error;
  };
  const onReady = (): void => {
    last = undefined;
  };
  client.on('error', onError);
  client.on('ready', onReady);
  const unguard = guardSocketErrors(client);
  return {
    last: () => (client.status === 'ready' ? undefined : last),
    dispose: () => {
      unguard();
      client.off('error', onError);
      client.off('ready', onReady);
    },
  };
}

/**
 * `error` with the connection's last error named in its message (and as its `cause` when it has
 * none): the message a user reads in onError then says why the call failed.
 */
export function explained(error: unknown, why: Error | undefined): unknown {
  if (why === undefined || why === error || !(error instanceof Error)) return error;
  if (error.message.includes(why.message)) return error;
  error.message += ` (the connection's last error: ${why.message})`;
  if (error.cause === undefined) {
    Object.defineProperty(error, 'cause', { value: why, writable: true, configurable: true });
  }
  return error;
}
