/**
 * Real redis-server processes for integration and chaos tests.
 *
 * Each server runs on its own free port on 127.0.0.1 with persistence off and its own temp dir
 * (log file, cluster or sentinel config), so test files can run in parallel and never meet the
 * developer's own Redis on 6379.
 *
 * Leftovers are the main hazard of a harness like this, so every process is registered:
 * - `stopAllRedis()` (for `afterAll`) stops clusters, sentinel setups and single servers;
 * - on process exit, and on SIGINT/SIGTERM/SIGHUP, every child still alive gets SIGKILL, which
 *   also ends a SIGSTOPped one (a stopped process would sit on SIGTERM until SIGCONT);
 * - children are not detached, so a Ctrl-C in the terminal reaches them too;
 * - a worker killed with SIGKILL runs no handler at all, so each run records its children's pids
 *   and the next run sweeps those whose owner is gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { getFreePort, LOOPBACK } from './free-port.js';
import { done, GiveUp, notYet, waitFor, withDeadline } from './wait-for.js';

export type RedisArg = string | number | Buffer;

export interface StartRedisOptions {
  /** Port to listen on. When omitted a free one is chosen, and another if it is taken first. */
  readonly port?: number;
  /** Extra command-line config, appended after the harness defaults so it can override them. */
  readonly args?: readonly string[];
  /**
   * Contents of a config file written into the server's dir and passed as the first argument.
   * Sentinel needs one, and rewrites it, so it lives in the server's writable dir.
   */
  readonly config?: string;
  /** Shown in error messages, e.g. `cluster-node-3`. @default `redis-PORT` */
  readonly label?: string;
  /** How long to wait for PING to succeed after spawning. @default 10_000 */
  readonly startTimeoutMs?: number;
}

export type RedisState = 'running' | 'paused' | 'stopped';

/** A redis-server child process, controllable from a test. */
export interface RedisProcess {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  /** The current (or, once stopped, the last) process id; a restart changes it. */
  readonly pid: number;
  readonly label: string;
  readonly state: RedisState;
  /** The server's working dir: log file, config file, cluster nodes file. */
  readonly dir: string;
  readonly logFile: string;
  /** Closes the tracked clients, then SIGTERM (no save) and waits for exit; SIGKILL if it lingers. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. Tracked clients stay open and keep reconnecting, as after a crash. */
  kill(): Promise<void>;
  /** SIGSTOP; resolves once the kernel reports the process stopped. Connections stay open but unanswered. */
  pause(): Promise<void>;
  /** SIGCONT; resolves once the process runs again. */
  resume(): Promise<void>;
  /** Starts again on the same port, args and dir after `stop()` or `kill()`; resolves when PING succeeds. */
  restart(): Promise<void>;
  /**
   * A new ioredis client for this server, closed by `stop()`. Defaults: reconnect every 100 ms
   * (servers come back fast in tests) and a no-op `error` listener (killing servers on purpose
   * would otherwise flood the output); both can be overridden.
   */
  client(options?: RedisOptions): Redis;
  /** Runs one command on a short-lived connection and returns the raw reply. */
  cli(command: string, ...args: RedisArg[]): Promise<unknown>;
  /** The last lines of the log file and of stdout/stderr, for error messages. */
  logTail(lines?: number): string;
}

/** Thrown when redis-server exits or stays silent while starting. */
export class RedisStartError extends Error {
  override readonly name = 'RedisStartError';
  constructor(
    message: string,
    /** True when the port was taken between choosing it and redis binding it. */
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

const REDIS_SERVER = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
const STOP_TIMEOUT_MS = 5_000;
const KILL_TIMEOUT_MS = 5_000;
const CLI_TIMEOUT_MS = 5_000;
const OUTPUT_LIMIT = 8_192;
const PID_FILE = 'harness.pid';

/** Parent of every run dir; a run dir is named `<owner pid>-<random>` so the sweep can tell whose it is. */
const HARNESS_ROOT = join(tmpdir(), 'tiercache-redis-harness');
const RUN_DIR = join(HARNESS_ROOT, `${process.pid}-${randomUUID().slice(0, 8)}`);
const KEEP_DIRS = process.env['TIERCACHE_KEEP_REDIS_DIRS'] === '1';

export const noop = (): void => {};

// ---------------------------------------------------------------------------------------------
// Registry and cleanup

/** Every process started by this module, alive or not, so `stopAllRedis` can close their clients. */
const servers = new Set<RedisServer>();
/** Children that have not exited yet: what the exit handler must kill. */
const liveChildren = new Set<ChildProcess>();
/** Clusters and sentinel setups, stopped before single servers so their clients go first. */
const groups = new Set<{ stop(): Promise<void> }>();

/** For redis-cluster.ts and redis-sentinel.ts: stop this group in `stopAllRedis`. */
export function registerGroup(group: { stop(): Promise<void> }): () => void {
  groups.add(group);
  return () => groups.delete(group);
}

/** Stops every cluster, sentinel setup and server this process started, and removes their dirs. */
export async function stopAllRedis(): Promise<void> {
  await Promise.allSettled([...groups].map((group) => group.stop()));
  groups.clear();
  const results = await Promise.allSettled([...servers].map((server) => server.stop()));
  servers.clear();
  if (!KEEP_DIRS) rmSync(RUN_DIR, { recursive: true, force: true });
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) throw failure.reason;
}

/** Synchronous, because it runs in the 'exit' handler where nothing async gets to finish. */
function cleanUpNow(): void {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // Already gone: nothing to clean.
    }
  }
  liveChildren.clear();
  if (!KEEP_DIRS) rmSync(RUN_DIR, { recursive: true, force: true });
}

let cleanupInstalled = false;

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  sweepOrphans();
  process.on('exit', cleanUpNow);
  // A forked test worker (vitest's forks pool) whose parent died is orphaned but may keep
  // running, holding its servers; losing the IPC channel is the sign.
  if (process.channel !== undefined) process.once('disconnect', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      cleanUpNow();
      // Listening for a signal replaces Node's default of exiting. If nobody else (vitest's
      // worker listens for SIGTERM) handles it, re-raise it so the process still ends.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is (still) a redis-server, so a recycled pid is never killed. Linux only. */
function isRedisServer(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('redis-server');
  } catch {
    return false;
  }
}

/** Kills redis-servers left by earlier runs whose owner died without running its exit handler. */
function sweepOrphans(): void {
  let runs: string[];
  try {
    runs = readdirSync(HARNESS_ROOT);
  } catch {
    return;
  }
  for (const run of runs) {
    const owner = Number(run.split('-')[0]);
    if (!Number.isInteger(owner) || owner === process.pid || isAlive(owner)) continue;
    const runDir = join(HARNESS_ROOT, run);
    try {
      for (const server of readdirSync(runDir)) {
        const pid = Number(readFileSync(join(runDir, server, PID_FILE), 'utf8'));
        if (Number.isInteger(pid) && pid > 0 && isRedisServer(pid)) process.kill(pid, 'SIGKILL');
      }
    } catch {
      // A half-written run dir: remove it anyway.
    }
    rmSync(runDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Kernel state of a process (`R`, `S`, `T` for stopped, ...), or undefined without /proc. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name sits in parentheses and may contain spaces: the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/**
 * Resolves when `host:port` answers an inline PING with +PONG. A bare socket rather than ioredis,
 * so a refused connection costs one syscall and leaves no reconnect timer behind.
 */
export function ping(host: string, port: number, timeoutMs = 500): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    let reply = '';
    const finish = (error?: Error): void => {
      socket.destroy();
      if (error) reject(error);
      else resolve();
    };
    socket.setTimeout(timeoutMs, () =>
      finish(new Error(`PING to ${host}:${port} got no reply in ${timeoutMs} ms`)),
    );
    socket.once('error', finish);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('latin1');
      if (!reply.includes('\r\n')) return;
      if (reply.startsWith('+PONG')) finish();
      else finish(new Error(`PING to ${host}:${port} answered ${JSON.stringify(reply.trim())}`));
    });
  });
}

/** Parses INFO or CLUSTER INFO text into a field map. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

function tail(text: string, lines: number): string {
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n')
    .trimEnd();
}

// ---------------------------------------------------------------------------------------------
// The process handle

class RedisServer implements RedisProcess {
  readonly host = LOOPBACK;
  readonly label: string;
  readonly dir: string;
  readonly logFile: string;
  readonly #args: readonly string[];
  readonly #startTimeoutMs: number;
  readonly #clients = new Set<Redis>();
  #port: number;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #exitStatus: string | undefined = 'not started';
  #output = '';
  #pid = 0;
  #paused = false;

  constructor(port: number, options: StartRedisOptions) {
    this.#port = port;
    this.label = options.label ?? `redis-${port}`;
    this.#args = options.args ?? [];
    this.#startTimeoutMs = options.startTimeoutMs ?? 10_000;
    mkdirSync(RUN_DIR, { recursive: true });
    this.dir = mkdtempSync(join(RUN_DIR, `${this.label}-`));
    this.logFile = join(this.dir, 'redis.log');
    if (options.config !== undefined) writeFileSync(join(this.dir, 'redis.conf'), options.config);
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://${this.host}:${this.#port}`;
  }

  get pid(): number {
    return this.#pid;
  }

  get state(): RedisState {
    if (this.#child === undefined) return 'stopped';
    return this.#paused ? 'paused' : 'running';
  }

  /** Spawns redis-server and waits for PING; used by startRedis (with a new port on a clash) and restart. */
  async start(): Promise<void> {
    installCleanup();
    // stopAllRedis removes the run dir; a restart after it must not fail on a missing dir.
    mkdirSync(this.dir, { recursive: true });
    const configFile = join(this.dir, 'redis.conf');
    // prettier-ignore
    const argv = [
      ...(existsSync(configFile) ? [configFile] : []),
      '--port', String(this.#port),
      '--bind', this.host,
      // No persistence: a restart must come back empty, and nothing is written outside dir.
      '--save', '',
      '--appendonly', 'no',
      '--dir', this.dir,
      '--logfile', this.logFile,
      '--daemonize', 'no',
      // Redis 7 waits up to 10 s on SIGTERM for lagging replicas (a paused one never catches up).
      '--shutdown-on-sigterm', 'nosave',
      '--shutdown-timeout', '0',
      // A master waits 5 s by default before a diskless full sync in case more replicas come;
      // every new or restarted replica in a test would pay that.
      '--repl-diskless-sync-delay', '0',
      ...this.#args,
    ];
    this.#output = '';
    this.#exitStatus = undefined;
    this.#paused = false;
    const child = spawn(REDIS_SERVER, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    liveChildren.add(child);
    const collect = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.#exited = new Promise<void>((resolve) => {
      const onGone = (status: string): void => {
        liveChildren.delete(child);
        if (this.#child === child) {
          this.#child = undefined;
          this.#paused = false;
          this.#exitStatus = status;
        }
        resolve();
      };
      // 'error' covers a failed spawn (no redis-server on PATH): 'exit' never comes then.
      child.once('error', (error) => onGone(`failed to spawn ${REDIS_SERVER}: ${error.message}`));
      child.once('exit', (code, signal) =>
        onGone(signal === null ? `exit code ${code}` : `signal ${signal}`),
      );
    });
    if (child.pid !== undefined) {
      this.#pid = child.pid;
      writeFileSync(join(this.dir, PID_FILE), String(child.pid));
    }

    await waitFor(
      async () => {
        if (this.#child !== child) {
          const log = this.logTail(20);
          throw new GiveUp(
            new RedisStartError(
              `${this.label} (${REDIS_SERVER} on port ${this.#port}) exited while starting (${this.#exitStatus}):\n${log}`,
              /Address already in use/i.test(log),
            ),
          );
        }
        await ping(this.host, this.#port);
        return done(undefined);
      },
      {
        description: `${this.label} to answer PING on port ${this.#port}`,
        timeoutMs: this.#startTimeoutMs,
        intervalMs: 20,
      },
    ).catch(async (error: unknown) => {
      if (error instanceof RedisStartError) throw error;
      // Alive but silent: do not leave it running behind a failed start.
      await this.kill();
      throw new RedisStartError(`${(error as Error).message}\n${this.logTail(20)}`, false);
    });
  }

  /** Moves a server that could not bind its port to another one (only before its first start). */
  changePort(port: number): void {
    this.#port = port;
  }

  async stop(): Promise<void> {
    this.#closeClients();
    const child = this.#child;
    if (child === undefined) return;
    // A stopped process keeps SIGTERM pending until it runs again.
    if (this.#paused) child.kill('SIGCONT');
    child.kill('SIGTERM');
    try {
      await withDeadline(this.#exited, STOP_TIMEOUT_MS, `${this.label} to exit after SIGTERM`);
    } catch {
      await this.kill();
    }
  }

  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await withDeadline(this.#exited, KILL_TIMEOUT_MS, `${this.label} to exit after SIGKILL`);
  }

  async pause(): Promise<void> {
    const child = this.#requireRunning('pause');
    child.kill('SIGSTOP');
    this.#paused = true;
    await this.#waitForKernelState((state) => state === 'T', 'stopped');
  }

  async resume(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.#paused) {
      throw new Error(`Cannot resume ${this.label}: it is ${this.state}, not paused.`);
    }
    child.kill('SIGCONT');
    this.#paused = false;
    await this.#waitForKernelState((state) => state !== 'T', 'running');
  }

  async restart(): Promise<void> {
    if (this.#child !== undefined) {
      throw new Error(`Cannot restart ${this.label}: it is ${this.state}; call stop() or kill() first.`);
    }
    // The port was ours a moment ago, but a client's ephemeral port can land on it; retry
    // rather than fail, since the same port is the point of a restart.
    await waitFor(
      async () => {
        try {
          await this.start();
          return done(undefined);
        } catch (error) {
          if (error instanceof RedisStartError && error.portInUse) return notYet(error.message);
          throw new GiveUp(error);
        }
      },
      {
        description: `${this.label} to restart on port ${this.#port}`,
        timeoutMs: this.#startTimeoutMs,
        intervalMs: 100,
      },
    );
  }

  client(options: RedisOptions = {}): Redis {
    const client = new Redis({ host: this.host, port: this.#port, retryStrategy: () => 100, ...options });
    client.on('error', noop);
    this.#clients.add(client);
    return client;
  }

  async cli(command: string, ...args: RedisArg[]): Promise<unknown> {
    const connection = new Redis({
      host: this.host,
      port: this.#port,
      lazyConnect: true,
      // One command and gone: no INFO handshake, no reconnect, no retry.
      enableReadyCheck: false,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      connectTimeout: CLI_TIMEOUT_MS,
      commandTimeout: CLI_TIMEOUT_MS,
    });
    connection.on('error', noop);
    try {
      await connection.connect();
      return await connection.call(command, ...args);
    } finally {
      connection.disconnect();
    }
  }

  logTail(lines = 30): string {
    let log = '';
    try {
      log = readFileSync(this.logFile, 'utf8');
    } catch {
      // No log yet: redis failed before opening it, and stdout/stderr say why.
    }
    return [tail(log, lines), tail(this.#output, lines)].filter((part) => part !== '').join('\n');
  }

  #closeClients(): void {
    for (const client of this.#clients) client.disconnect();
    this.#clients.clear();
  }

  #requireRunning(action: string): ChildProcess {
    if (this.#child === undefined || this.#paused) {
      throw new Error(`Cannot ${action} ${this.label}: it is ${this.state}.`);
    }
    return this.#child;
  }

  async #waitForKernelState(accept: (state: string) => boolean, description: string): Promise<void> {
    const pid = this.#pid;
    await waitFor(
      () => {
        const state = processState(pid);
        // Without /proc there is nothing to poll; the signal has been sent, which is the best we know.
        return Promise.resolve(
          state === undefined || accept(state) ? done(undefined) : notYet(`kernel state ${state}`),
        );
      },
      { description: `${this.label} (pid ${pid}) to be ${description}`, timeoutMs: 2_000, intervalMs: 5 },
    );
  }
}

/**
 * Starts redis-server on 127.0.0.1 and resolves once it answers PING. Without `options.port` a
 * free port is chosen, and another one if something else binds it first.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisProcess> {
  const server = new RedisServer(options.port ?? (await getFreePort()), options);
  servers.add(server);
  for (let attempt = 1; ; attempt++) {
    try {
      await server.start();
      return server;
    } catch (error) {
      const retry =
        options.port === undefined && attempt < 5 && error instanceof RedisStartError && error.portInUse;
      if (!retry) {
        servers.delete(server);
        throw error;
      }
      server.changePort(await getFreePort());
    }
  }
}
