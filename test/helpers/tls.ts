import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getFreePort } from './free-port.js';
import { startRedis, type RedisProcess } from './redis-server.js';

/** A throwaway CA and a server certificate it signed, for `localhost` and 127.0.0.1. */
export interface TestCertificates {
  readonly dir: string;
  /** PEM of the CA, for a client that should trust the server. */
  readonly ca: Buffer;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Generates the CA and server certificate with openssl (valid 2 days) in a new temp dir. */
export function testCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'tiercache-tls-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const newKey = ['-newkey', 'rsa:2048', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...newKey,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=test-ca',
  );
  openssl('req', ...newKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    'x509',
    ...['-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'],
    ...['-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf'],
  );
  return {
    dir,
    ca: readFileSync(join(dir, 'ca.crt')),
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
  };
}

/** A redis-server that also listens for TLS (clients not asked for certificates) on `tlsPort`. */
export async function startTlsRedis(
  certificates: TestCertificates,
): Promise<{ server: RedisProcess; tlsPort: number }> {
  const tlsPort = await getFreePort();
  const server = await startRedis({
    args: [
      ...['--tls-port', String(tlsPort), '--tls-cert-file', certificates.certFile],
      ...['--tls-key-file', certificates.keyFile, '--tls-ca-cert-file', certificates.caFile],
      ...['--tls-auth-clients', 'no'],
    ],
  });
  return { server, tlsPort };
}
