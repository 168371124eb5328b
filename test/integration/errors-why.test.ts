import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createCache, redisTier, type CacheError } from '../../src/index.js';
import { getFreePort } from '../helpers/free-port.js';
import { redisFixture } from '../helpers/redis-fixture.js';
import { startRedis } from '../helpers/redis-server.js';

const redis = redisFixture();
const { track } = redis;

describe('errors say why', () => {
  it('clear() rejects when Redis refuses its SCAN, and the tier is not left waiting to clear', async () => {
    await redis.server.cli('ACL', 'SETUSER', 'noscan', 'on', '>pw', '~*', '&*', '+@all', '-scan');
    const tier = redisTier({
      client: redis.server.client({ username: 'noscan', password: 'pw' }),
      prefix: 'ns1:',
    });
    const cache = track(createCache({ tiers: [tier], bus: false }));
    await cache.set('k', 1);
    const error = (await cache.clear().catch((e: unknown) => e)) as CacheError;
    expect(error).toMatchObject({ code: 'E_TIER', tier: 'redis' });
    expect(error.message).toMatch(/NOPERM|scan/i);
    expect(await cache.get('k')).toBe(1);
    expect(cache.stats().tiers[0]).toMatchObject({ repair: { pending: 0 }, breaker: { state: 'closed' } });
  });

  it('a TLS failure reaches onError naming the certificate problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tiercache-tls-'));
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=test-ca',
    );
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    );
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '2',
      '-extfile',
      'ext.cnf',
    );
    const tlsPort = await getFreePort();
    await startRedis({
      args: [
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        join(dir, 'server.crt'),
        '--tls-key-file',
        join(dir, 'server.key'),
        '--tls-ca-cert-file',
        join(dir, 'ca.crt'),
        '--tls-auth-clients',
        'no',
      ],
    });
    // Untrusted CA: the client does not know the test CA.
    const errors: CacheError[] = [];
    const cache = createCache({
      tiers: [redisTier({ client: `rediss://127.0.0.1:${tlsPort}`, prefix: 'tls:' })],
      bus: false,
      onError: (error) => errors.push(error),
    });
    try {
      expect(await cache.getOrSet('k', () => 'origin')).toBe('origin');
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(error.message).toMatch(/certificate/);
    } finally {
      await cache.close();
    }
  });
});
