// Fails when package-lock.json has drifted from what `npm ci` accepts on any platform: every
// optional dependency a locked package names (the per-platform builds of esbuild, rollup,
// msgpackr-extract) must be locked too, and the root entry must carry package.json's ranges.
// A lock written on one machine with node_modules present can silently drop the other
// platforms' builds, and then `npm ci` refuses a fresh clone.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const lock = JSON.parse(readFileSync(new URL('../package-lock.json', import.meta.url), 'utf8'));
const packages = lock.packages ?? {};
const problems = [];

const root = packages[''] ?? {};
for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
  const want = pkg[field] ?? {};
  const have = root[field] ?? {};
  for (const name of new Set([...Object.keys(want), ...Object.keys(have)])) {
    if (want[name] !== have[name])
      problems.push(`root ${field}.${name}: package.json has ${want[name]}, lock has ${have[name]}`);
  }
}

/** Where Node would resolve `name` from the package at `from` (a lock path). */
function resolves(from, name) {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return true;
    const at = dir.lastIndexOf('/node_modules/');
    if (at === -1) return dir !== '' && packages[`node_modules/${name}`] !== undefined;
    dir = dir.slice(0, at);
  }
}

for (const [path, entry] of Object.entries(packages)) {
  if (path === '' || entry.link) continue;
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    if (!resolves(path, name)) problems.push(`${path} names optional ${name}, which is not locked`);
  }
}

if (problems.length > 0) {
  console.error('package-lock.json has drifted; rewrite it from scratch with');
  console.error('  rm -rf node_modules package-lock.json && npm install --package-lock-only');
  for (const problem of problems.slice(0, 20)) console.error(`  - ${problem}`);
  if (problems.length > 20) console.error(`  … and ${problems.length - 20} more`);
  process.exit(1);
}
console.log(`package-lock.json: ${Object.keys(packages).length - 1} packages, every platform locked`);
