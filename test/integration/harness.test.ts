/**
 * The harness itself: if these fail, every integration, chaos, cluster and sentinel test built
 * on it would fail for the wrong reason.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { connect } from 'node:net';
import { startCluster, type RedisClusterHandle } from '../helpers/redis-cluster.js';
import { parseInfo, startRedis, stopAllRedis } from '../helpers/redis-server.js';
import { startSentinel, type RedisSentinelHandle } from '../helpers/redis-sentinel.js';

afterAll(stopAllRedis);

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('redis-server', () => {
  it('starts a server that answers on its port and stop() releases the port', async () => {
    const server = await startRedis();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(server.port).not.toBe(6379);
    const client = server.client();
    expect(await client.ping()).toBe('PONG');
    expect(await server.cli('CONFIG', 'GET', 'save')).toEqual(['save', '']);

    await server.stop();

    expect(server.state).toBe('stopped');
    expect(client.status).toBe('end');
    expect(isAlive(server.pid)).toBe(false);
    // Nothing listens there any more. (Binding the port to check would race other tests'
    // outgoing connections, which may be handed the freed port as their local port.)
    expect(await refusesConnections(server.port)).toBe(true);
  });

  it('restarts on the same port after kill() with the data gone', async () => {
    const server = await startRedis();
    const client = server.client();
    await client.set('survives?', 'no');
    const { port, pid } = server;

    await server.kill();
    await server.restart();

    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    expect(await server.cli('DBSIZE')).toBe(0);
    // The tracked client reconnects on its own to the new process.
    expect(await client.get('survives?')).toBeNull();
  });

  it('pause() makes commands time out and resume() makes them work again', async () => {
    const server = await startRedis();
    const client = server.client({ commandTimeout: 200 });
    expect(await client.ping()).toBe('PONG');

    await server.pause();
    expect(server.state).toBe('paused');
    await expect(client.ping()).rejects.toThrow(/timed out/i);

    await server.resume();
    expect(await client.ping()).toBe('PONG');
  });

  it('stopAllRedis() ends running and paused servers alike', async () => {
    const running = await startRedis();
    const paused = await startRedis();
    await paused.pause();

    await stopAllRedis();

    expect(isAlive(running.pid)).toBe(false);
    expect(isAlive(paused.pid)).toBe(false);
  });

  it('fails fast with the log when redis-server rejects its config', async () => {
    const started = Date.now();
    await expect(startRedis({ args: ['--no-such-directive', 'x'] })).rejects.toThrow(/Bad directive/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('redis cluster', () => {
  let cluster: RedisClusterHandle;
  let client: Cluster;
  const keys = Array.from({ length: 30 }, (_unused, index) => `key:${index}`);

  beforeAll(async () => {
    cluster = await startCluster();
    client = cluster.client();
  });

  afterAll(() => cluster.stop());

  it('starts three masters with one replica each', async () => {
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    expect(await cluster.replicas()).toHaveLength(3);
    for (const master of masters) expect(await cluster.replicasOf(master)).toHaveLength(1);
  });

  it('stores keys across slots through the Cluster client, spread over every master', async () => {
    for (const key of keys) await client.set(key, key.toUpperCase());
    for (const key of keys) expect(await client.get(key)).toBe(key.toUpperCase());

    const owners = await Promise.all(keys.map((key) => cluster.masterFor(key)));
    expect(new Set(owners.map((owner) => owner.port)).size).toBe(3);
    // masterFor() names the node that really holds the key: a plain GET there is not MOVED.
    const [first] = keys;
    const [firstOwner] = owners;
    expect(await firstOwner!.cli('GET', first!)).toBe(first!.toUpperCase());
  });

  it('failover() promotes a replica and the Cluster client keeps working', async () => {
    const key = 'failover:key';
    await client.set(key, 'before');
    const master = await cluster.masterFor(key);
    // WAIT on the connection that wrote, so the replica has the key before its master dies.
    const writer = client.nodes('master').find((node) => node.options.port === master.port);
    expect(await writer!.wait(1, 2_000)).toBe(1);
    const [replica] = await cluster.replicasOf(master);

    const promoted = await cluster.failover(master);

    expect(promoted.port).toBe(replica!.port);
    expect(master.state).toBe('stopped');
    expect((await cluster.masterFor(key)).port).toBe(promoted.port);
    expect(await client.get(key)).toBe('before');
    await client.set(key, 'after');
    expect(await client.get(key)).toBe('after');
    for (const other of keys) await client.set(other, 'still writable');
  });
});

describe('redis sentinel', () => {
  let setup: RedisSentinelHandle;

  beforeAll(async () => {
    setup = await startSentinel();
  });

  afterAll(() => setup.stop());

  it('the client finds the master through the sentinels', async () => {
    const client = setup.client();
    await client.set('greeting', 'hello');
    expect(await client.get('greeting')).toBe('hello');
    expect(Number(parseInfo(await client.info('server')).get('tcp_port'))).toBe(setup.master.port);
    expect(await setup.masterAddress()).toEqual({ host: '127.0.0.1', port: setup.master.port });
  });

  it('failover() moves the master and the client reconnects to the new one', async () => {
    const client = setup.client();
    await client.set('moved', 'yes');
    expect(await client.wait(1, 2_000)).toBe(1);
    const before = setup.master;

    const after = await setup.failover();

    expect(after.port).not.toBe(before.port);
    expect(setup.master).toBe(after);
    expect(await client.get('moved')).toBe('yes');
    expect(Number(parseInfo(await client.info('server')).get('tcp_port'))).toBe(after.port);
    expect(await client.call('ROLE')).toEqual(expect.arrayContaining(['master']));
  });
});

describe('outside vitest', () => {
  // npm run bench and npm run demo start their servers through these files in a plain Node
  // process, where importing vitest throws: a hook registered there broke the bench once.
  it('the helpers the bench and the demo import load in a plain Node process', async () => {
    const { execFile } = await import('node:child_process');
    const helpers = ['redis-server', 'redis-cluster'].map((name) => `../helpers/${name}.ts`);
    const script = helpers
      .map((helper) => `await import(${JSON.stringify(new URL(helper, import.meta.url).href)});`)
      .join(' ');
    const outcome = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = execFile(
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', script],
        { timeout: 60_000 },
        (error, _stdout, stderr) => resolve({ code: error === null ? 0 : (child.exitCode ?? 1), stderr }),
      );
    });
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
  });
});
