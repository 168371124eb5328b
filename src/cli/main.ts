import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe } from '../errors.js';
import { policies, type PolicyName } from '../tiers/memory/policies.js';
import { simulate, type SimulationResult } from './simulate.js';
import { TRACE_FORMATS, type TraceFormat } from './trace.js';

const USAGE = `Usage: tiercache simulate --trace FILE --capacity N[,N...] [--policy lru,tinylfu] [--format lines|lirs|arc|scarab] [--no-opt]

Replays a key trace through the L1 store with each policy and prints hit ratios beside
Belady's optimal. .gz traces are inflated in process, .xz ones with xz -dc.`;

/** Output sinks, injectable for tests. */
export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const STDIO: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs the CLI on `argv` as `process.argv` has it (node, script, arguments…); resolves to an exit code. */
export async function main(argv: readonly string[], io: CliIo = STDIO): Promise<number> {
  const args = argv.slice(2);
  const command = args.shift();
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    io.out(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'simulate') {
    io.err(`Unknown command ${describe(command)}.\n\n${USAGE}`);
    return 2;
  }
  let options: SimulateArgs;
  try {
    options = parseSimulateArgs(args);
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  try {
    const started = performance.now();
    const result = await simulate(options);
    for (const line of formatTable(result, options.policies)) io.out(line);
    io.out(
      `${result.requests.toLocaleString('en-US')} requests, ${result.distinctKeys.toLocaleString('en-US')} distinct keys, ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return 0;
  } catch (error) {
    io.err(error instanceof Error ? error.message : String(error));
    return 1;
  }
}

interface SimulateArgs {
  traceFile: string;
  format: TraceFormat | undefined;
  capacities: number[];
  policies: PolicyName[];
  opt: boolean;
}

export function parseSimulateArgs(args: readonly string[]): SimulateArgs {
  let traceFile: string | undefined;
  let format: TraceFormat | undefined;
  let capacities: number[] | undefined;
  let names: PolicyName[] = ['lru', 'tinylfu'];
  let opt = true;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = (): string => {
      const v = eq === -1 ? args[++i] : arg.slice(eq + 1);
      if (v === undefined || v === '') throw new TypeError(`${flag} needs a value.`);
      return v;
    };
    switch (flag) {
      case '--trace':
        traceFile = value();
        break;
      case '--format': {
        const v = value();
        if (!(TRACE_FORMATS as readonly string[]).includes(v)) {
          throw new TypeError(
            `--format must be one of ${TRACE_FORMATS.join(', ')}; received ${describe(v)}.`,
          );
        }
        format = v as TraceFormat;
        break;
      }
      case '--capacity':
        capacities = value()
          .split(',')
          .map((part) => {
            const n = Number(part.replace(/_/g, ''));
            if (!Number.isSafeInteger(n) || n < 1)
              throw new TypeError(`--capacity takes positive integers; received ${describe(part)}.`);
            return n;
          });
        break;
      case '--policy':
        names = value()
          .split(',')
          .map((name) => {
            if (!Object.hasOwn(policies, name)) {
              throw new TypeError(
                `--policy takes ${Object.keys(policies).join(', ')}; received ${describe(name)}.`,
              );
            }
            return name as PolicyName;
          });
        break;
      case '--no-opt':
        opt = false;
        break;
      default:
        throw new TypeError(`Unknown option ${describe(arg)}.`);
    }
  }
  if (traceFile === undefined) throw new TypeError('--trace is required.');
  if (capacities === undefined) throw new TypeError('--capacity is required.');
  return { traceFile, format, capacities, policies: names, opt };
}

export function formatTable(result: SimulationResult, names: readonly string[]): string[] {
  const columns = [...names, ...(result.results[0]?.opt === undefined ? [] : ['OPT'])];
  const header = ['capacity', ...columns];
  const rows = result.results.map((row) => [
    row.capacity.toLocaleString('en-US'),
    ...names.map((name) => percent(row.policies[name]?.hitRatio)),
    ...(row.opt === undefined ? [] : [percent(row.opt.hitRatio)]),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padStart(widths[i]!)).join('  ');
  return [line(header), ...rows.map(line)];
}

function percent(ratio: number | undefined): string {
  return ratio === undefined ? '–' : `${(100 * ratio).toFixed(2)}%`;
}

// Run when executed directly (`npx tsx src/cli/main.ts …`); bin/tiercache.mjs imports and calls
// main itself. In the CJS build import.meta is empty, so this is skipped there.
if (isDirectRun()) {
  main(process.argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}

function isDirectRun(): boolean {
  const url = (import.meta as { url?: string }).url;
  const script = process.argv[1];
  if (typeof url !== 'string' || script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(url));
  } catch {
    return false;
  }
}
