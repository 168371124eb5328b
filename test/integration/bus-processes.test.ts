import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findStaleReads, type HistoryOp } from '../helpers/history-checker.js';
import { startRedis, type RedisProcess } from '../helpers/redis-server.js';
import { done, notYet, waitFor } from '../helpers/wait-for.js';

/**
 * The bound the checker allows between a write completing and every process seeing it. On an
 * idle loopback almost every message arrives within a few ms; this machine runs these four
 * processes beside other test workers on two cores, where scheduling alone delays some messages
 * by tens of ms, so the bound has room for that. While a subscriber is disconnected the children
 * cap L1 lives to 25 ms, which (with the time to notice the lost connection) stays within it.
 */
const BOUND_MS = 150;
const PROCESSES = 4;
const RUN_MS = 3_000;
const KEYS = 8;

let server: RedisProcess;

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await server.stop();
});

interface Phase1Report {
  index: number;
  value: string;
  fromL1?: boolean;
  dropped: string[];
}

/** Starts the children; resolves when all exited (rejects with a child's stderr if one failed). */
function runChildren(prefix: string, runMs = RUN_MS, fixture = 'bus-child.ts'): Promise<void> {
  const child = fileURLToPath(new URL(`./fixtures/${fixture}`, import.meta.url));
  return Promise.all(
    Array.from({ length: PROCESSES }, (_, index) => {
      const proc = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          child,
          server.url,
          prefix,
          String(index),
          String(PROCESSES),
          String(runMs),
          String(KEYS),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      return new Promise<void>((resolve, reject) =>
        proc.on('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`child ${index} exited ${code}: ${stderr}`)),
        ),
      );
    }),
  ).then(() => undefined);
}

async function results(
  prefix: string,
): Promise<{ phase1: Phase1Report[]; histories: HistoryOp[][]; stats: unknown[]; total: number }> {
  const ns = `bus-mp:${prefix}`;
  const admin = server.client();
  const phase1 = (await admin.lrange(`${ns}:phase1`, 0, -1)).map((r) => JSON.parse(r) as Phase1Report);
  const histories: HistoryOp[][] = [];
  const stats: unknown[] = [];
  for (let i = 0; i < PROCESSES; i++) {
    const raw = await admin.get(`${ns}:history:${i}`);
    const report = JSON.parse(raw!) as { history: HistoryOp[]; stats: unknown };
    histories.push(report.history);
    stats.push(report.stats);
  }
  return { phase1, histories, stats, total: histories.reduce((sum, h) => sum + h.length, 0) };
}

function checkPhase1(phase1: Phase1Report[]): void {
  expect(phase1).toHaveLength(PROCESSES);
  for (const report of phase1) {
    expect(report.value).toBe('v2');
    if (report.index === 0) {
      // The writer ignored its own message: its fresh copy stayed in L1.
      expect(report.fromL1).toBe(true);
      expect(report.dropped).not.toContain('invalidate');
    } else {
      expect(report.dropped).toContain('invalidate');
    }
  }
}

describe('the bus across processes', () => {
  it('reaches 3 other processes, keeps the writer’s copy, and no read is older than the bus bound', async () => {
    const prefix = 'mp1:';
    await runChildren(prefix);
    const { phase1, histories, total } = await results(prefix);
    checkPhase1(phase1);
    expect(total).toBeGreaterThan(1_000);
    const writes = histories.flat().filter((op) => op.t === 'w' && op.ok).length;
    expect(writes).toBeGreaterThan(50);
    expect(findStaleReads(histories, BOUND_MS)).toEqual([]);
  }, 60_000);

  it('stays consistent through CLIENT KILL of the subscribers and a redis-server restart', async () => {
    const prefix = 'mp2:';
    const ns = `bus-mp:${prefix}`;
    const admin = server.client();
    const children = runChildren(prefix, 5_000);
    // Phase 2 starts once every child passed the last barrier.
    await waitFor(
      async () =>
        Number(await admin.get(`${ns}:phase2`)) >= PROCESSES ? done(undefined) : notYet('not started'),
      { description: 'phase 2 to start', timeoutMs: 40_000, intervalMs: 10 },
    );
    const at = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await at(700);
    const killedAt = performance.timeOrigin + performance.now();
    expect(await server.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBeGreaterThanOrEqual(PROCESSES);
    await at(700);
    const lostBefore = performance.timeOrigin + performance.now() + 1;
    await server.kill();
    await at(200);
    await server.restart();
    const upAt = performance.timeOrigin + performance.now();
    await children;
    const { histories, stats } = await results(prefix);
    // Writes that completed before the restart were lost with Redis's data: a read after it may
    // find nothing, but never an older version than one written and published after it.
    const stale = findStaleReads(histories, BOUND_MS, Math.max(lostBefore, upAt));
    // What a failure needs to be read: when the faults came, and what each bus went through.
    const context = { killedAt, lostBefore, upAt, stats };
    expect(stale, JSON.stringify(context)).toEqual([]);
    const afterRestart = histories.flat().filter((op) => op.t === 'w' && op.ok && op.s > upAt).length;
    // The caches recovered: writes reached the restarted Redis and were checked like the rest.
    expect(afterRestart).toBeGreaterThan(0);
  }, 60_000);

  it('leaves no value older than the origin in any tier of any process, under origin updates, deletes and slow loaders (fill leases)', async () => {
    const prefix = 'mp3:';
    await runChildren(prefix, RUN_MS, 'fill-child.ts');
    const admin = server.client();
    const reports = await Promise.all(
      Array.from({ length: PROCESSES }, async (_, i) => {
        const raw = await admin.get(`fill-mp:${prefix}:report:${i}`);
        return JSON.parse(raw!) as { stale: string[]; updates: number; loads: number; refused: number };
      }),
    );
    admin.disconnect();
    expect(reports.flatMap((report) => report.stale)).toEqual([]);
    // The run raced: origins moved and loaders ran, and some fills were refused in Redis.
    expect(reports.reduce((sum, r) => sum + r.updates, 0)).toBeGreaterThan(100);
    expect(reports.reduce((sum, r) => sum + r.loads, 0)).toBeGreaterThan(100);
    expect(reports.reduce((sum, r) => sum + r.refused, 0)).toBeGreaterThan(0);
  }, 60_000);
});
