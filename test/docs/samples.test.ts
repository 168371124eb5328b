/**
 * Every TypeScript sample in README.md and docs/*.md compiles with `tsc --strict` against the
 * built package's types (imported as `tiercache`, as users do), and every sample not marked
 * `no-run` runs against a real redis-server and exits by itself (samples that leave a client or
 * a timer open hang, and fail here). See test/docs/samples.ts for the conventions.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, stopAllRedis, type RedisProcess } from '../helpers/redis-server.js';
import { docFiles, extractSamples, writeWorkspace, type Sample } from './samples.js';

const ROOT = join(import.meta.dirname, '..', '..');
const WORKSPACE = join(ROOT, '.tmp', 'doc-samples');
/** How long a sample may run before it counts as hanging; generous for a loaded 2-core machine. */
const EXIT_WITHIN_MS = 20_000;
const run = promisify(execFile);

const samples = extractSamples(docFiles(ROOT), ROOT);
let redis: RedisProcess;
let compiled: { ok: boolean; output: string };

/** Newest modification time of the files under `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  return latest;
}

/** dist/ as users get it; built here when missing or older than src/ (`npm test` builds it first). */
async function ensureBuilt(): Promise<void> {
  const types = join(ROOT, 'dist', 'index.d.ts');
  if (existsSync(types) && statSync(types).mtimeMs >= newest(join(ROOT, 'src'))) return;
  await run(process.execPath, [join(ROOT, 'node_modules', 'tsup', 'dist', 'cli-default.js'), '--silent'], {
    cwd: ROOT,
  });
}

beforeAll(async () => {
  redis = await startRedis();
  await ensureBuilt();
  const tsconfig = writeWorkspace(WORKSPACE, samples, redis.url);
  // One tsc for every sample: type errors fail the samples they are in, and the emitted
  // JavaScript is what the run tests start.
  compiled = await run(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', tsconfig],
    {
      cwd: ROOT,
    },
  ).then(
    ({ stdout }) => ({ ok: true, output: stdout }),
    (error: { stdout?: string; message: string }) => ({ ok: false, output: error.stdout ?? error.message }),
  );
  runAll();
}, 180_000);

afterAll(stopAllRedis);

/** The compiler's errors that point into one sample. */
function errorsOf(sample: Sample): string[] {
  return compiled.output
    .split('\n')
    .filter((line) => line.startsWith(`${sample.name}.ts(`) || line.includes(`/${sample.name}.ts(`));
}

interface Outcome {
  /** Null when it had to be killed. */
  code: number | null;
  output: string;
}

/** Samples running at once: each is a Node process, and the machine may have two cores. */
const PARALLEL = 3;
const outcomes = new Map<string, Promise<Outcome>>();

/** Starts every runnable sample, PARALLEL at a time in document order; each test awaits its own. */
function runAll(): void {
  const waiting: (() => void)[] = [];
  let free = PARALLEL;
  const acquire = (): Promise<void> => {
    if (free > 0) {
      free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const wake = waiting.shift();
    if (wake === undefined) free++;
    else wake();
  };
  for (const sample of samples.filter((s) => s.run))
    outcomes.set(
      sample.name,
      acquire()
        .then(() => runSample(sample))
        .finally(release),
    );
}

/** Runs a compiled sample; resolves with its exit code (null when it had to be killed) and output. */
function runSample(sample: Sample): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(WORKSPACE, 'out', `${sample.name}.js`)], {
      cwd: WORKSPACE,
      env: { ...process.env, REDIS_URL: redis.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_WITHIN_MS);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('documentation samples', () => {
  it('finds samples in the README and the topic pages', () => {
    expect(samples.filter((s) => s.where.startsWith('README.md')).length).toBeGreaterThan(2);
    expect(samples.filter((s) => s.where.startsWith('docs/')).length).toBeGreaterThan(5);
    expect(samples.filter((s) => s.run).length).toBeGreaterThan(5);
  });

  it('compile together in one strict tsc run', () => {
    // Errors outside any sample (the prelude, a broken build) show here.
    expect(compiled.ok ? '' : compiled.output).toBe('');
  });

  describe.each(samples.map((sample) => [sample.where, sample] as const))('%s', (_where, sample) => {
    it('compiles with --strict', () => {
      expect(errorsOf(sample)).toEqual([]);
    });

    it.runIf(sample.run)(
      'runs and exits by itself',
      async () => {
        const { code, output } = await outcomes.get(sample.name)!;
        expect(code, `exit code (null: still running after ${EXIT_WITHIN_MS} ms)\n${output}`).toBe(0);
      },
      // It may first wait for the samples before it to free a slot.
      2 * EXIT_WITHIN_MS + 10_000,
    );
  });
});
