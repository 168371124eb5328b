import { spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * Access traces for the simulator, read the way Caffeine's simulator parsers read them
 * (`simulator/.../parser/{lirs,arc,scarab}`):
 *
 * - `lines`: one key per line, any text; empty lines skipped.
 * - `lirs`: one decimal key per line; empty lines and `*` checkpoint markers skipped; CRLF ok.
 * - `arc`: `start count ignored request`, expanding to the keys `start … start+count-1`.
 * - `scarab`: big-endian signed 64-bit integers, one key each.
 *
 * `.gz` files are inflated with node:zlib and `.xz` files by a spawned `xz -dc`. Files stream:
 * only the interned trace is held, 4 bytes per request plus each distinct key once.
 */
export type TraceFormat = 'lines' | 'lirs' | 'arc' | 'scarab';

export const TRACE_FORMATS: readonly TraceFormat[] = ['lines', 'lirs', 'arc', 'scarab'];

/** A trace as dense key ids, with each distinct key's string once (what the store is given). */
export interface Trace {
  /** `ids[i]` is the key of request `i`, an index into `keys`. */
  readonly ids: Int32Array;
  readonly keys: readonly string[];
}

/** Guesses the format from the file name: `*.arc*`/`*.lis*` ARC, `*scarab*` binary, `*.trace*`/`*.lirs*` LIRS. */
export function detectFormat(file: string): TraceFormat {
  const name = basename(file)
    .toLowerCase()
    .replace(/\.(gz|xz)$/, '');
  if (/\.(arc|lis)$/.test(name)) return 'arc';
  if (name.includes('scarab')) return 'scarab';
  if (/\.(trace|lirs)$/.test(name)) return 'lirs';
  return 'lines';
}

/** Reads a whole trace file into a `Trace`. */
export async function readTrace(file: string, format: TraceFormat = detectFormat(file)): Promise<Trace> {
  const builder = new TraceBuilder();
  const input = open(file);
  if (format === 'scarab') await readScarab(input, builder);
  else await readText(input, format, builder);
  return builder.build();
}

/** Interns keys into dense ids while the trace grows. */
export class TraceBuilder {
  #ids = new Int32Array(1 << 16);
  #length = 0;
  readonly #index = new Map<string, number>();
  readonly #keys: string[] = [];

  push(key: string): void {
    let id = this.#index.get(key);
    if (id === undefined) {
      id = this.#keys.length;
      this.#keys.push(key);
      this.#index.set(key, id);
    }
    if (this.#length === this.#ids.length) {
      const grown = new Int32Array(this.#ids.length * 2);
      grown.set(this.#ids);
      this.#ids = grown;
    }
    this.#ids[this.#length++] = id;
  }

  build(): Trace {
    return { ids: this.#ids.slice(0, this.#length), keys: this.#keys };
  }
}

/** A trace from keys in memory (synthetic generators, tests). */
export function traceOf(keys: Iterable<string | number>): Trace {
  const builder = new TraceBuilder();
  for (const key of keys) builder.push(typeof key === 'string' ? key : String(key));
  return builder.build();
}

function open(file: string): Readable {
  const lower = file.toLowerCase();
  if (lower.endsWith('.xz')) return xzStream(file);
  const raw = createReadStream(file);
  if (!lower.endsWith('.gz')) return raw;
  const gunzip = createGunzip();
  raw.on('error', (error) => gunzip.destroy(error));
  return raw.pipe(gunzip);
}

function xzStream(file: string): Readable {
  const probe = spawnSync('xz', ['--version'], { stdio: 'ignore' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `Cannot read ${file}: the "xz" command is needed for .xz traces and was not found on PATH.`,
    );
  }
  const child = spawn('xz', ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.on('close', (code) => {
    if (code !== 0) child.stdout.destroy(new Error(`xz -dc ${file} failed (exit ${code}): ${stderr.trim()}`));
  });
  return child.stdout;
}

async function readText(
  input: Readable,
  format: Exclude<TraceFormat, 'scarab'>,
  builder: TraceBuilder,
): Promise<void> {
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNumber = 0;
  for await (const raw of lines) {
    lineNumber++;
    if (format === 'lines') {
      const key = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (key !== '') builder.push(key);
      continue;
    }
    const line = raw.trim();
    if (line === '') continue;
    if (format === 'lirs') {
      if (line !== '*') builder.push(line);
      continue;
    }
    const fields = line.split(/\s+/);
    const start = fields[0];
    const count = Number(fields[1]);
    if (start === undefined || !/^-?\d+$/.test(start) || !Number.isSafeInteger(count) || count < 0) {
      throw new Error(`Malformed ARC trace line ${lineNumber}: ${JSON.stringify(line.slice(0, 80))}`);
    }
    if (count === 1) {
      builder.push(start);
    } else {
      const first = BigInt(start);
      for (let i = 0; i < count; i++) builder.push(String(first + BigInt(i)));
    }
  }
}

async function readScarab(input: Readable, builder: TraceBuilder): Promise<void> {
  let carry: Buffer | null = null;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    const buffer: Buffer = carry === null ? chunk : Buffer.concat([carry, chunk]);
    const whole = buffer.length - (buffer.length % 8);
    for (let offset = 0; offset < whole; offset += 8) {
      // Keys within ±2^53 read as plain numbers; the rest go through BigInt to stay exact.
      const high = buffer.readInt32BE(offset);
      const low = buffer.readUInt32BE(offset + 4);
      const key =
        high >= -0x200000 && high < 0x200000
          ? String(high * 0x1_0000_0000 + low)
          : buffer.readBigInt64BE(offset).toString();
      builder.push(key);
    }
    carry = whole === buffer.length ? null : buffer.subarray(whole);
  }
  if (carry !== null)
    throw new Error(`Truncated scarab trace: ${carry.length} trailing bytes do not make a key.`);
}
