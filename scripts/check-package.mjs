// Loads the built package the two ways users do (import and require) through its exports map,
// so a broken dual build fails the test command instead of a user's install.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const esm = await import('tiercache');
const cjs = require('tiercache');
const esmMsgpack = await import('tiercache/msgpack');
const cjsMsgpack = require('tiercache/msgpack');
const problems = [];
for (const [name, mod] of [
  ['import', esm],
  ['require', cjs],
]) {
  for (const symbol of [
    'createCache',
    'TierCache',
    'memoryTier',
    'redisTier',
    'CacheError',
    'isCacheError',
  ]) {
    if (typeof mod[symbol] !== 'function')
      problems.push(`${name}('tiercache').${symbol} is ${typeof mod[symbol]}`);
  }
}
for (const [name, mod] of [
  ['import', esmMsgpack],
  ['require', cjsMsgpack],
]) {
  if (typeof mod.msgpackSerializer !== 'function')
    problems.push(`${name}('tiercache/msgpack') has no msgpackSerializer`);
}
for (const [name, mod] of [
  ['import', await import('tiercache/prometheus')],
  ['require', require('tiercache/prometheus')],
]) {
  if (typeof mod.prometheusMetrics !== 'function')
    problems.push(`${name}('tiercache/prometheus') has no prometheusMetrics`);
}
for (const [name, mod] of [
  ['import', await import('tiercache/opentelemetry')],
  ['require', require('tiercache/opentelemetry')],
]) {
  if (typeof mod.openTelemetryMetrics !== 'function')
    problems.push(`${name}('tiercache/opentelemetry') has no openTelemetryMetrics`);
}
for (const [name, mod] of [
  ['import', await import('tiercache/testing')],
  ['require', require('tiercache/testing')],
]) {
  if (typeof mod.remoteTierConformance !== 'function')
    problems.push(`${name}('tiercache/testing') has no remoteTierConformance`);
  else {
    // Registers through the describe/it it is given, without running anything.
    const titles = [];
    const registrar = { describe: (_title, body) => body(), it: (title) => titles.push(title) };
    mod.remoteTierConformance('check', registrar, { create: () => cjs.memoryTier() });
    if (titles.length < 10) problems.push(`${name}('tiercache/testing') registered ${titles.length} tests`);
  }
}
for (const [name, mod] of [
  ['import', await import('tiercache/extend')],
  ['require', require('tiercache/extend')],
]) {
  for (const symbol of ['guardTier', 'GuardedTier', 'TierHookSlot', 'decodeStored', 'toWire'])
    if (typeof mod[symbol] !== 'function')
      problems.push(`${name}('tiercache/extend').${symbol} is ${typeof mod[symbol]}`);
}
// The main entry is what an application uses: internals and extension points stay out of it.
for (const symbol of ['RedisStore', 'OWNED_CLIENT_OPTIONS', 'BUS_FORMAT_VERSION', 'guardTier', 'escapeGlob'])
  if (symbol in esm || symbol in cjs)
    problems.push(`tiercache exports ${symbol}, which is not for applications`);
for (const [name, mod] of [
  ['import', await import('tiercache/keyv')],
  ['require', require('tiercache/keyv')],
]) {
  if (typeof mod.TierCacheKeyv !== 'function')
    problems.push(`${name}('tiercache/keyv') has no TierCacheKeyv`);
}
{
  // The CommonJS adapter over a cache of the CommonJS build, through Keyv itself.
  const { default: Keyv } = await import('keyv');
  const keyvCache = cjs.createCache();
  const keyv = new Keyv({ store: new (require('tiercache/keyv').TierCacheKeyv)(keyvCache) });
  await keyv.set('k', 'v');
  if ((await keyv.get('k')) !== 'v') problems.push('tiercache/keyv does not round-trip a value through Keyv');
  await keyvCache.close();
}
const { Registry } = require('prom-client');
const registry = new Registry();
for (const [sub, symbol] of [
  ['fastify', 'tierCachePlugin'],
  ['express', 'tierCacheMiddleware'],
]) {
  if (typeof (await import(`tiercache/${sub}`))[symbol] !== 'function')
    problems.push(`import('tiercache/${sub}').${symbol} is missing`);
  if (typeof require(`tiercache/${sub}`)[symbol] !== 'function')
    problems.push(`require('tiercache/${sub}').${symbol} is missing`);
}
for (const symbol of ['cacheHeaders', 'isNotModified', 'entityTag']) {
  if (typeof esm[symbol] !== 'function' || typeof cjs[symbol] !== 'function')
    problems.push(`tiercache does not export ${symbol} in both builds`);
}
const cache = cjs.createCache();
require('tiercache/prometheus').prometheusMetrics(cache, { registry });

await cache.set('k', 1);
if ((await cache.get('k')) !== 1) problems.push('the CommonJS build does not round-trip a value');
if (!(await registry.metrics()).includes('tiercache_entries{cache="default",tier="memory"} 1'))
  problems.push('tiercache/prometheus does not read a cache made by the main CommonJS build');
await cache.close();
// Every Redis client is an optional peer: no entry may load one when it is loaded, and a URL
// tier (the one place ioredis is loaded, on demand) must find it from either build.
const { readFileSync } = await import('node:fs');
for (const file of ['index.js', 'index.cjs', 'keyv.js', 'keyv.cjs', 'testing.js', 'testing.cjs']) {
  const text = readFileSync(`dist/${file}`, 'utf8');
  if (/^import[^;]*['"](ioredis|iovalkey|redis)['"]|require\(['"](ioredis|iovalkey|redis)['"]\)/m.test(text))
    problems.push(`dist/${file} loads a Redis client package when it is loaded`);
}
for (const [name, mod] of [
  ['import', esm],
  ['require', cjs],
]) {
  const tier = mod.redisTier({ client: 'redis://127.0.0.1:1' });
  if (typeof tier.client.status !== 'string') problems.push(`${name}('tiercache') made no client from a URL`);
  await tier.close();
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('package: ESM and CommonJS entry points load and work');
