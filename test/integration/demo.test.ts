import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor, done, notYet } from '../helpers/wait-for.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '..', '..');

interface Demo {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const running: Demo[] = [];
afterEach(() => {
  for (const demo of running.splice(0)) if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
});

/** Runs `npm run demo`'s script with small settings so it fits a shared 2-core machine. */
function startDemo(...args: string[]): Demo {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'demo/main.ts', '--products', '500', '--concurrency', '6', ...args],
    {
      cwd: ROOT,
      env: { ...process.env, REDIS_URL: '', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const demo = { child, output: () => output, exited };
  running.push(demo);
  return demo;
}

describe('the demo service', () => {
  it('runs three instances under load, prints progress and a summary, and exits by itself', async () => {
    const demo = startDemo('--duration', '4s');
    expect(await demo.exited, demo.output()).toBe(0);
    const output = demo.output();
    expect(output).toMatch(/3 service instances, each with its own L1, sharing a private redis-server/);
    expect(output).toMatch(/instance-3: http:\/\/127\.0\.0\.1:\d+\/products\/1 {3}metrics: http/);
    expect(output).toMatch(/\d+ s +[\d,]+ req\/s +L1 +[\d.]+%/);
    // "Redis N%" is a share of reads in the progress line as in the summary, never a hit rate:
    // the three shares of a progress line add up to all reads.
    const sums = [...output.matchAll(/ L1 +([\d.]+)% +Redis +([\d.]+)% +origin +([\d.]+)%/g)]
      .map((line) => line.slice(1, 4).reduce((sum, share) => sum + Number(share), 0))
      .filter((sum) => sum > 0); // a second without reads shows 0% everywhere
    expect(sums.length, output).toBeGreaterThan(0);
    for (const sum of sums) expect(Math.abs(sum - 100)).toBeLessThan(0.5);
    const row = (label: string) => new RegExp(`${label} +([\\d,]+) +([\\d.]+)%`).exec(output);
    const l1 = row('L1 \\(memory, per instance\\)');
    const origin = row('origin \\(database\\)');
    expect(l1, output).not.toBeNull();
    expect(origin, output).not.toBeNull();
    // A skewed load over 500 products: L1 answers a good share once warm.
    expect(Number(l1![1]!.replace(/,/g, ''))).toBeGreaterThan(0);
    expect(output).toMatch(/origin calls: [\d,]+ loads/);
    expect(output).toMatch(/instance-1: L1 hit rate [\d.]+%/);
  }, 120_000);

  describe.skipIf(!existsSync(CHROMIUM))('dashboard in headless Chromium', () => {
    it('plots non-empty hit-rate, latency and origin charts, and serves Prometheus metrics', async () => {
      const demo = startDemo('--serve');
      const found = await waitFor(
        async () => {
          const url = /dashboard: +(http:\/\/\S+)/.exec(demo.output())?.[1];
          const instance = /instance-1: (http:\/\/\S+)\/products/.exec(demo.output())?.[1];
          return url !== undefined && instance !== undefined
            ? done({ url, instance })
            : notYet('no URLs printed yet');
        },
        { timeoutMs: 60_000, description: "the demo's URLs in its output" },
      );
      const metrics = await (await fetch(`${found.instance}/metrics`)).text();
      expect(metrics).toMatch(/tiercache_operations_total\{[^}]*tier="memory"/);
      expect(metrics).toMatch(/demo_database_queries_total\{instance="instance-1"\} \d+/);

      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
      const dir = mkdtempSync(join(tmpdir(), 'tiercache-dashboard-'));
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 820 } });
        await page.goto(found.url);
        // Enough points for a picture worth keeping when the README's screenshot is refreshed.
        const points = process.env['TIERCACHE_UPDATE_SCREENSHOT'] === '1' ? 20 : 4;
        await page.waitForFunction(
          `window.__dashboard.points >= ${points} && window.__dashboard.drawn['c-hit'] >= 3 &&
           window.__dashboard.drawn['c-lat'] >= 4 && window.__dashboard.drawn['c-rate'] >= 2`,
          undefined,
          { timeout: 90_000 },
        );
        // Non-empty means drawn lines, not just the grid: count pixels in each series colour.
        const coloured = await page.evaluate<number[]>(`
          ['c-hit', 'c-lat', 'c-rate'].map((id) => {
            const canvas = document.getElementById(id);
            const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let count = 0;
            for (let i = 0; i < data.length; i += 4) {
              const r = data[i], g = data[i + 1], b = data[i + 2], a = data[i + 3];
              // Series colours are saturated; the grid and labels are grey.
              if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) count++;
            }
            return count;
          })`);
        for (const count of coloured) expect(count).toBeGreaterThan(200);
        expect(await page.textContent('#t-cache')).toMatch(/^\d+%$/);
        const shot = join(dir, 'dashboard.png');
        await page.screenshot({ path: shot, fullPage: true });
        expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
        // TIERCACHE_UPDATE_SCREENSHOT=1 refreshes the README's picture.
        if (process.env['TIERCACHE_UPDATE_SCREENSHOT'] === '1')
          await page.screenshot({ path: join(ROOT, 'docs', 'dashboard.png'), fullPage: true });
      } finally {
        await browser.close();
        rmSync(dir, { recursive: true, force: true });
      }
      // --serve runs until interrupted; Ctrl-C prints the summary and stops everything.
      demo.child.kill('SIGINT');
      expect(await demo.exited, demo.output()).toBe(0);
      expect(demo.output()).toMatch(/answered by +requests/);
    }, 180_000);
  });
});
