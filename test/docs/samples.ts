/**
 * Extracts the TypeScript samples of README.md and docs/*.md and writes them as a small project
 * that imports the built package by its name (`tiercache`), as a user's program does.
 *
 * A sample is a fenced block whose info string starts with `ts`. Flags after it:
 * - `no-run`: a fragment (it needs a web framework app, a database…); it must still compile.
 * Every sample is compiled; every other sample is also run and must exit by itself.
 *
 * Fragments may use the few names declared in {@link PRELUDE} (your database, your cache…), so
 * the docs stay short; a runnable sample must define everything it uses.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

export interface Sample {
  /** `README.md:42`: where the block's fence is. */
  readonly where: string;
  /** File name of the sample in the workspace, without extension. */
  readonly name: string;
  readonly code: string;
  readonly run: boolean;
}

/** The URL samples use for Redis; the test substitutes its own server's. */
export const SAMPLE_REDIS_URL = 'redis://localhost:6379';

/** Ambient names fragments may use without declaring them. */
export const PRELUDE = `// Names the docs' fragments use without declaring them.
import type { TierCache } from 'tiercache';

declare global {
  interface Product {
    id: number;
    name: string;
    price: number;
  }
  /** Your database. */
  const db: {
    product(id: number | string): Promise<Product>;
    products(ids: readonly (number | string)[]): Promise<Product[]>;
    updateProduct(id: number, patch: Partial<Product>): Promise<void>;
    search(query: string): Promise<Product[]>;
  };
  /** A cache made as in the quick start. */
  const cache: TierCache;
}
export {};
`;

/** Every sample of the given markdown files, in order. */
export function extractSamples(files: readonly string[], root: string): Sample[] {
  const samples: Sample[] = [];
  for (const file of files) {
    const relative = file.slice(root.length + 1);
    const lines = readFileSync(file, 'utf8').split('\n');
    let open: { line: number; run: boolean; body: string[] } | undefined;
    let fence: string | undefined;
    lines.forEach((text, index) => {
      if (fence === undefined) {
        const start = /^(```+|~~~+)\s*(\S*)\s*(.*)$/.exec(text);
        if (start === null) return;
        fence = start[1];
        const [lang, flags] = [start[2] ?? '', (start[3] ?? '').split(/\s+/)];
        if (lang === 'ts' || lang === 'typescript')
          open = { line: index + 1, run: !flags.includes('no-run'), body: [] };
        return;
      }
      if (text.startsWith(fence) && text.trim() === fence) {
        if (open !== undefined) {
          const name = `${basename(relative, '.md').toLowerCase()}-${open.line}`;
          samples.push({
            where: `${relative}:${open.line}`,
            name,
            code: open.body.join('\n'),
            run: open.run,
          });
        }
        open = undefined;
        fence = undefined;
        return;
      }
      open?.body.push(text);
    });
  }
  return samples;
}

/** README.md and every docs/*.md of the repository at `root`. */
export function docFiles(root: string): string[] {
  const docs = join(root, 'docs');
  return [
    join(root, 'README.md'),
    ...readdirSync(docs)
      .filter((name) => name.endsWith('.md'))
      .sort()
      .map((name) => join(docs, name)),
  ];
}

/**
 * Writes the samples (with `redisUrl` in place of {@link SAMPLE_REDIS_URL}), the prelude and a
 * tsconfig into `dir`, which must lie inside the package so `tiercache` resolves to the package
 * itself through its exports map. Returns the tsconfig's path.
 */
export function writeWorkspace(dir: string, samples: readonly Sample[], redisUrl: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const sample of samples) {
    // `export {}` makes every sample a module, so its names never meet another sample's.
    const code = `${sample.code.replaceAll(SAMPLE_REDIS_URL, redisUrl)}\nexport {};\n`;
    writeFileSync(join(dir, `${sample.name}.ts`), code);
  }
  writeFileSync(join(dir, 'prelude.d.ts'), PRELUDE);
  const tsconfig = join(dir, 'tsconfig.json');
  writeFileSync(
    tsconfig,
    JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'nodenext',
          moduleResolution: 'nodenext',
          types: ['node'],
          outDir: 'out',
          // The samples' own directory: the package's exports map (used by the self-import)
          // needs one, and it keeps out/ flat.
          rootDir: '.',
          skipLibCheck: true,
        },
        include: ['*.ts'],
      },
      null,
      2,
    ),
  );
  return tsconfig;
}
